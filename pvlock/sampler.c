/*
 * Sampling for the detector: what each vCPU published in the guest's shared page, and KVM's
 * statistics (directed yields when pause exits are on; the pv calls of a Linux guest that
 * KVM handles itself, once the VMM saw one), next to the run states the VMM sampled
 * (exact thread CPU time and thread state; see vm/runstate.c).  Called from one thread (the
 * worker's control thread).
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
	struct hv_stats *stats;
	int idx_attempted, idx_successful, idx_exits, idx_halts, idx_preempt;
	int idx_hypercalls, idx_wakeups, idx_injections;
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
	*out = s;
	return 0;
}

void pvlock_sampler_free(struct pvlock_sampler *s)
{
	if (!s)
		return;
	free(s->vcpu);
	free(s);
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
	v->idx_hypercalls = hv_stats_find(stats, "hypercalls");
	v->idx_wakeups = hv_stats_find(stats, "halt_wakeup");
	v->idx_injections = hv_stats_find(stats, "irq_injections");
}

static uint64_t stat_at(const uint64_t *values, int n, int idx)
{
	return idx >= 0 && idx < n ? values[idx] : 0;
}

static void read_stats(struct sampler_vcpu *v, bool ple, bool kvm, struct pvlock_sample *out)
{
	uint64_t values[128];
	int n;

	if (!v->stats || v->idx_attempted < 0)
		return;
	n = hv_stats_read(v->stats, values, 128);
	if (n <= 0)
		return;
	out->has_ple = ple;
	out->has_kvm = kvm && v->idx_hypercalls >= 0 && v->idx_preempt >= 0;
	out->hypercalls = stat_at(values, n, v->idx_hypercalls);
	out->halt_wakeup = stat_at(values, n, v->idx_wakeups);
	out->irq_injections = stat_at(values, n, v->idx_injections);
	out->directed_yield_attempted = stat_at(values, n, v->idx_attempted);
	out->directed_yield_successful = stat_at(values, n, v->idx_successful);
	out->exits = stat_at(values, n, v->idx_exits);
	out->halt_exits = stat_at(values, n, v->idx_halts);
	out->preemption_reported = stat_at(values, n, v->idx_preempt);
}

void pvlock_sampler_sample(struct pvlock_sampler *s, const struct pvlock_vm *pv, bool ple, bool kvm,
			   const enum pvlock_run_state *run, struct pvlock_sample *out)
{
	uint32_t nr_pub = 0;
	const struct lks_shared_page *page = pv ? pvlock_shared_page(pv, &nr_pub) : NULL;

	for (uint32_t i = 0; i < s->nr_vcpus; i++) {
		struct pvlock_sample *o = &out[i];

		memset(o, 0, sizeof(*o));
		o->run = run[i];
		/* The guest writes the page as we read it: a torn copy only misleads its own
		 * scheduling, and the next sample corrects it. */
		if (page && i < nr_pub)
			memcpy(&o->pub, (const void *)&page->vcpu[i], sizeof(o->pub));
		if (ple || kvm)
			read_stats(&s->vcpu[i], ple, kvm, o);
	}
}
