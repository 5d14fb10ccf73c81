/*
 * Sampling for the detector: which vCPU threads are running, preempted or idle, and what the
 * guest published.  Without a gang scheduler, run states come from the kernel's per-thread
 * scheduling statistics (/proc/self/task/TID/schedstat: time on a CPU, time waiting on a run
 * queue): over one sample interval a thread that waited for a CPU longer than it ran is
 * preempted, one that ran is running, one that did neither is idle (halted or asleep).
 * KVM's directed-yield statistics are read when pause-loop exits are on.
 *
 * The files stay open and are re-read with pread(), a few microseconds per vCPU.  Called from
 * one thread (the worker's control thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pvlock/pvlock.h"
#include "pvlock/sampler.h"

struct sampler_vcpu {
	int schedstat_fd;
	struct hv_stats *stats;
	int idx_attempted, idx_successful, idx_exits, idx_halts, idx_preempt;
	bool valid;
	uint64_t exec_ns, wait_ns;
};

struct pvlock_sampler {
	uint32_t nr_vcpus;
	struct sampler_vcpu *vcpu;
};

int pvlock_sampler_new(uint32_t nr_vcpus, struct pvlock_sampler **out)
{
	struct pvlock_sampler *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->nr_vcpus = nr_vcpus;
	s->vcpu = calloc(nr_vcpus ? nr_vcpus : 1, sizeof(*s->vcpu));
	if (!s->vcpu) {
		free(s);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nr_vcpus; i++)
		s->vcpu[i].schedstat_fd = -1;
	*out = s;
	return 0;
}

void pvlock_sampler_free(struct pvlock_sampler *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->nr_vcpus; i++)
		if (s->vcpu[i].schedstat_fd >= 0)
			close(s->vcpu[i].schedstat_fd);
	free(s->vcpu);
	free(s);
}

int pvlock_sampler_set_thread(struct pvlock_sampler *s, uint32_t vcpu, int tid)
{
	char path[64];
	int fd;

	if (vcpu >= s->nr_vcpus)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (s->vcpu[vcpu].schedstat_fd >= 0)
		close(s->vcpu[vcpu].schedstat_fd);
	s->vcpu[vcpu].schedstat_fd = fd;
	s->vcpu[vcpu].valid = false;
	return 0;
}

void pvlock_sampler_set_stats(struct pvlock_sampler *s, uint32_t vcpu, struct hv_stats *stats)
{
	struct sampler_vcpu *v = &s->vcpu[vcpu];

	if (vcpu >= s->nr_vcpus || !stats)
		return;
	v->stats = stats;
	v->idx_attempted = hv_stats_find(stats, "directed_yield_attempted");
	v->idx_successful = hv_stats_find(stats, "directed_yield_successful");
	v->idx_exits = hv_stats_find(stats, "exits");
	v->idx_halts = hv_stats_find(stats, "halt_exits");
	v->idx_preempt = hv_stats_find(stats, "preemption_reported");
}

enum pvlock_run_state pvlock_classify(uint64_t d_exec_ns, uint64_t d_wait_ns)
{
	if (d_wait_ns > d_exec_ns)
		return PVLOCK_RUN_PREEMPTED;
	if (d_exec_ns > 0)
		return PVLOCK_RUN_RUNNING;
	return PVLOCK_RUN_IDLE;
}

static enum pvlock_run_state run_state(struct sampler_vcpu *v)
{
	char buf[128];
	unsigned long long exec, wait;
	enum pvlock_run_state st;
	ssize_t n;

	if (v->schedstat_fd < 0)
		return PVLOCK_RUN_UNKNOWN;
	n = pread(v->schedstat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return PVLOCK_RUN_UNKNOWN;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &exec, &wait) != 2)
		return PVLOCK_RUN_UNKNOWN;
	st = v->valid ? pvlock_classify(exec - v->exec_ns, wait - v->wait_ns) : PVLOCK_RUN_UNKNOWN;
	v->exec_ns = exec;
	v->wait_ns = wait;
	v->valid = true;
	return st;
}

static uint64_t stat_at(const uint64_t *values, int n, int idx)
{
	return idx >= 0 && idx < n ? values[idx] : 0;
}

static void read_ple(struct sampler_vcpu *v, struct pvlock_sample *out)
{
	uint64_t values[128];
	int n;

	if (!v->stats || v->idx_attempted < 0)
		return;
	n = hv_stats_read(v->stats, values, 128);
	if (n <= 0)
		return;
	out->has_ple = true;
	out->directed_yield_attempted = stat_at(values, n, v->idx_attempted);
	out->directed_yield_successful = stat_at(values, n, v->idx_successful);
	out->exits = stat_at(values, n, v->idx_exits);
	out->halt_exits = stat_at(values, n, v->idx_halts);
	out->preemption_reported = stat_at(values, n, v->idx_preempt);
}

void pvlock_sampler_sample(struct pvlock_sampler *s, const struct pvlock_vm *pv, bool ple,
			   struct pvlock_sample *out)
{
	uint32_t nr_pub = 0;
	const struct lks_shared_page *page = pv ? pvlock_shared_page(pv, &nr_pub) : NULL;

	for (uint32_t i = 0; i < s->nr_vcpus; i++) {
		struct pvlock_sample *o = &out[i];

		memset(o, 0, sizeof(*o));
		o->run = run_state(&s->vcpu[i]);
		/* The guest writes the page as we read it: a torn copy only misleads its own
		 * scheduling, and the next sample corrects it. */
		if (page && i < nr_pub)
			memcpy(&o->pub, (const void *)&page->vcpu[i], sizeof(o->pub));
		if (ple)
			read_ple(&s->vcpu[i], o);
	}
}
