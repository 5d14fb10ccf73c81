/*
 * The host check in lockstepd (host/ does the checking).  At start, the facts that sysfs,
 * /proc and CPUID tell at once, so the scheduler knows before the first VM whether PLE
 * statistics can come; then, and for every host.check, `lockstep-vm --host-probe` for what only
 * /dev/kvm can tell, since lockstepd never opens a KVM fd.  One probe runs at a time; calls
 * that arrive meanwhile wait for it; each gets the report as JSON through its callback (the
 * JSON-RPC front end answers host.check with it).  The latest report feeds daemon.info.
 *
 * Loop thread only.  A probe's libuv handles hold references on it: a daemon that stops
 * mid-probe kills the process and closes the handles, and the last close frees the probe.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "host/host.h"

#define PROBE_TIMEOUT_MS 20000
#define PROBE_OUTPUT_MAX (1u << 20)

struct probe;

struct hostcheck {
	struct daemon *d;
	struct host_cpuid cpuid;
	struct host_topology topology;
	struct host_report *report; /* the latest */
	struct probe *probe;	    /* running, or NULL */
	struct util_list waiters;   /* struct waiter: callers of hostcheck_run() */
	bool reported;		    /* a complete report was logged */
};

struct waiter {
	struct util_list link;
	hostcheck_done_fn done;
	void *arg;
};

struct probe {
	struct hostcheck *hc; /* NULL once the daemon stopped waiting for it */
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer;
	char *buf;
	size_t len;
	bool exited, eof, timed_out, too_long;
	int64_t status;
	int term_signal;
	unsigned refs; /* one per initialised handle */
};

static void topology_from_host(const struct sched_host *host, struct host_topology *t)
{
	bool core_seen[SCHED_MAX_CPUS] = { false }, node_seen[SCHED_MAX_CPUS] = { false };

	*t = (struct host_topology){ .cpus = host->nr_cpus };
	snprintf(t->source, sizeof(t->source), "hwloc (the CPUs lockstepd may use)");
	for (uint32_t i = 0; i < host->nr_cpus; i++) {
		uint32_t core = host->cpu[i].core, node = host->cpu[i].numa;

		if (core < SCHED_MAX_CPUS && !core_seen[core]) {
			core_seen[core] = true;
			t->cores++;
		}
		if (node < SCHED_MAX_CPUS && !node_seen[node]) {
			node_seen[node] = true;
			t->numa_nodes++;
		}
	}
}

/* With the probe's answer, or without one (kvm NULL) and why not. */
static void run_check(struct hostcheck *hc, const struct host_kvm *kvm, const char *why_not)
{
	struct host_input in = {
		.root = "",
		.cpuid = &hc->cpuid,
		.kvm = kvm,
		.kvm_error = why_not,
		.topology = &hc->topology,
	};

	host_check(&in, hc->report);
}

/* Each waiter gets the report (its own copy), or `error` when there is none to give. */
static void answer_waiters(struct hostcheck *hc, const char *error)
{
	while (!util_list_empty(&hc->waiters)) {
		struct waiter *w = util_container_of(hc->waiters.next, struct waiter, link);
		json_t *report = error ? NULL : host_report_json(hc->report);

		util_list_del(&w->link);
		w->done(w->arg, report, report ? NULL : error ? error : "out of memory");
		free(w);
	}
}

static void probe_unref(struct probe *p)
{
	if (--p->refs == 0) {
		free(p->buf);
		free(p);
	}
}

static void probe_closed(uv_handle_t *h)
{
	probe_unref(h->data);
}

/*
 * What the probe said, as struct host_kvm; false with `why` when it said nothing usable (it
 * did not run to the end, or its answer does not parse).  /dev/kvm's own failures are in the
 * answer (host_kvm.error).
 */
static bool probe_result(struct probe *p, struct host_kvm *k, char *why, size_t why_len)
{
	json_error_t jerr;
	char err[200];
	json_t *j;

	if (p->timed_out) {
		snprintf(why, why_len, "lockstep-vm --host-probe did not answer within %d s",
			 PROBE_TIMEOUT_MS / 1000);
		return false;
	}
	if (p->term_signal || p->status) {
		snprintf(why, why_len, "lockstep-vm --host-probe %s %d",
			 p->term_signal ? "died of signal" : "exited with status",
			 p->term_signal ? p->term_signal : (int)p->status);
		return false;
	}
	if (p->too_long) {
		snprintf(why, why_len, "lockstep-vm --host-probe said too much");
		return false;
	}
	j = json_loadb(p->buf ? p->buf : "", p->len, 0, &jerr);
	if (!j) {
		snprintf(why, why_len, "lockstep-vm --host-probe: not JSON: %s", jerr.text);
		return false;
	}
	if (host_kvm_from_json(j, k, err, sizeof(err))) {
		snprintf(why, why_len, "lockstep-vm --host-probe: %s", err);
		json_decref(j);
		return false;
	}
	json_decref(j);
	return true;
}

/* The first complete report at info level (what the host gives, in one line), later ones at
 * debug: every host.check makes one. */
static void log_report(struct hostcheck *hc)
{
	const struct host_report *r = hc->report;
	unsigned count[4] = { 0 };

	for (unsigned i = 0; i < r->nr; i++)
		count[r->fact[i].verdict & 3]++;
	util_log(&hc->d->log, hc->reported ? UTIL_LOG_DEBUG : UTIL_LOG_INFO,
		 "host check: %s KVM, %u pass, %u warn, %u fail, %u n/a%s%s",
		 host_flavour_name(r->flavour), count[HOST_PASS], count[HOST_WARN],
		 count[HOST_FAIL], count[HOST_NA],
		 r->kvm_probed ? "" : "; /dev/kvm: ", r->kvm_probed ? "" : r->kvm_error);
	hc->reported = true;
}

static void probe_finish(struct probe *p)
{
	struct hostcheck *hc = p->hc;
	struct host_kvm *k;

	if (!p->exited || !p->eof)
		return;
	uv_close((uv_handle_t *)&p->timer, probe_closed);
	uv_close((uv_handle_t *)&p->proc, probe_closed);
	if (!hc)
		return;
	hc->probe = NULL;
	k = malloc(sizeof(*k));
	if (k) {
		char why[256];

		if (probe_result(p, k, why, sizeof(why)))
			run_check(hc, k, NULL);
		else
			run_check(hc, NULL, why);
		free(k);
	}
	log_report(hc);
	answer_waiters(hc, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct probe *p = h->data;
	size_t want = p->len + 16384;
	char *bigger = want <= PROBE_OUTPUT_MAX + 16384 ? realloc(p->buf, want) : NULL;

	(void)suggested;
	if (!bigger) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	p->buf = bigger;
	*buf = uv_buf_init(p->buf + p->len, 16384);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct probe *p = s->data;

	(void)buf;
	if (n > 0) {
		p->len += (size_t)n;
		if (p->len <= PROBE_OUTPUT_MAX)
			return;
		p->too_long = true;
	} else if (n == 0) {
		return;
	}
	/* EOF, an error, or more than any probe says: done reading. */
	uv_read_stop(s);
	uv_close((uv_handle_t *)s, probe_closed);
	p->eof = true;
	probe_finish(p);
}

static void probe_exited(uv_process_t *proc, int64_t status, int term_signal)
{
	struct probe *p = proc->data;

	p->exited = true;
	p->status = status;
	p->term_signal = term_signal;
	uv_timer_stop(&p->timer);
	probe_finish(p);
}

static void on_timeout(uv_timer_t *t)
{
	struct probe *p = t->data;

	p->timed_out = true;
	uv_process_kill(&p->proc, SIGKILL);
}

static int probe_start(struct hostcheck *hc)
{
	struct daemon *d = hc->d;
	char *args[] = { d->opts.vm_binary, "--host-probe", NULL };
	uv_stdio_container_t stdio[3];
	uv_process_options_t opts;
	struct probe *p;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->hc = hc;
	uv_pipe_init(d->loop, &p->out, 0);
	p->out.data = p;
	p->refs++;
	uv_timer_init(d->loop, &p->timer);
	p->timer.data = p;
	p->refs++;
	stdio[0] = (uv_stdio_container_t){ .flags = UV_IGNORE };
	stdio[1] = (uv_stdio_container_t){ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
					   .data.stream = (uv_stream_t *)&p->out };
	stdio[2] = (uv_stdio_container_t){ .flags = UV_INHERIT_FD, .data.fd = 2 };
	opts = (uv_process_options_t){
		.file = d->opts.vm_binary,
		.args = args,
		.exit_cb = probe_exited,
		.stdio_count = 3,
		.stdio = stdio,
	};
	p->proc.data = p;
	ret = uv_spawn(d->loop, &p->proc, &opts);
	if (ret) {
		/* The process handle still has to close; it holds no reference yet. */
		p->refs++;
		uv_close((uv_handle_t *)&p->proc, probe_closed);
		uv_close((uv_handle_t *)&p->out, probe_closed);
		uv_close((uv_handle_t *)&p->timer, probe_closed);
		return ret;
	}
	p->refs++;
	uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
	uv_timer_start(&p->timer, on_timeout, PROBE_TIMEOUT_MS, 0);
	hc->probe = p;
	return 0;
}

/* Starts a probe unless one runs; a probe that cannot start still answers, with why. */
static void probe(struct hostcheck *hc)
{
	int ret;

	if (hc->probe)
		return;
	ret = probe_start(hc);
	if (ret) {
		char why[256];

		snprintf(why, sizeof(why), "cannot run %.160s --host-probe: %s",
			 hc->d->opts.vm_binary, uv_strerror(ret));
		run_check(hc, NULL, why);
		log_report(hc);
		answer_waiters(hc, NULL);
	}
}

int hostcheck_init(struct daemon *d)
{
	struct hostcheck *hc = calloc(1, sizeof(*hc));

	if (!hc || !(hc->report = calloc(1, sizeof(*hc->report)))) {
		free(hc);
		return -ENOMEM;
	}
	hc->d = d;
	util_list_init(&hc->waiters);
	host_cpuid_read(&hc->cpuid);
	topology_from_host(&d->host, &hc->topology);
	run_check(hc, NULL, NULL);
	d->hostcheck = hc;
	d->host.ple = hc->report->ple_expected ? SCHED_PLE_EXPECTED : SCHED_PLE_ABSENT;
	util_log(&d->log, UTIL_LOG_INFO, "host: %s KVM; PLE statistics %s (%s)",
		 host_flavour_name(hc->report->flavour),
		 hc->report->ple_expected ? "expected" : "not expected", hc->report->ple_why);
	probe(hc);
	return 0;
}

void hostcheck_fini(struct daemon *d)
{
	struct hostcheck *hc = d->hostcheck;

	if (!hc)
		return;
	if (hc->probe) {
		struct probe *p = hc->probe;

		/* Its handles close now, with the callbacks that free it; nobody waits for it. */
		p->hc = NULL;
		uv_process_kill(&p->proc, SIGKILL);
		if (!p->eof)
			uv_close((uv_handle_t *)&p->out, probe_closed);
		uv_close((uv_handle_t *)&p->timer, probe_closed);
		uv_close((uv_handle_t *)&p->proc, probe_closed);
	}
	answer_waiters(hc, "lockstepd is stopping");
	free(hc->report);
	free(hc);
	d->hostcheck = NULL;
}

int hostcheck_run(struct daemon *d, hostcheck_done_fn done, void *arg)
{
	struct hostcheck *hc = d->hostcheck;
	struct waiter *w;

	if (!hc)
		return -ENODEV;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->done = done;
	w->arg = arg;
	util_list_add_tail(&hc->waiters, &w->link);
	probe(hc);
	return 0;
}

json_t *hostcheck_summary_json(struct daemon *d)
{
	struct hostcheck *hc = d->hostcheck;
	json_t *s;

	if (!hc)
		return json_null();
	s = host_summary_json(hc->report);
	if (s)
		json_object_set_new(s, "probing", json_boolean(hc->probe != NULL));
	return s ? s : json_null();
}

const char *hostcheck_ple_why(struct daemon *d)
{
	return d->hostcheck ? d->hostcheck->report->ple_why : "no host check";
}

int hostcheck_iommu_ready(struct daemon *d, const char *bdf, char *why, size_t why_len)
{
	(void)d;
	return host_iommu_ready("", bdf, why, why_len);
}
