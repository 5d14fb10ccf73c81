/*
 * Runs a planned matrix: checks the machine is quiet, brings up lockstepd (and QEMU when it
 * can run guests here), then repetition after repetition runs each workload's block --
 * reference, every cell in a rotating order, reference again -- scores the block against the
 * mean of its two references, and writes each measurement to results.jsonl.  Measurements
 * during which other processes took CPU time are written as discarded and run again after
 * the machine has been quiet for a while.  Shows a progress bar on a terminal and plain
 * lines otherwise.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clients/bench/bench.h"
#include "clients/bench/matrix.h"
#include "util/util.h"

#define QUIET_SECONDS 3
/*
 * VMs of one cell whose measurement windows overlapped less than this ran partly alone
 * (one booted late), which inflates the cell: such a measurement counts as failed.
 */
#define MIN_CONCURRENCY 0.8
#define RETRY_QUIET_SECONDS 2
#define REFERENCE UINT_MAX /* a cell's layout index for the reference runs */
#define MAX_CELLS (MX_NR_POLICIES * 2 * MX_MAX_OVERCOMMIT + 2)

struct cell {
	enum mx_policy policy;
	unsigned layout; /* index into mx->layouts, or REFERENCE */
};

struct run {
	struct mx_matrix *mx;
	const struct mx_options *o;
	struct mx_lockstep *ls;
	struct mx_qemu *qemu;
	char qemu_status[512];
	struct mx_report *report;
	FILE *jsonl;
	char out_dir[PATH_MAX];
	unsigned total, done, discarded, failed, failed_once;
	uint64_t started_ns;
	double pingpong_min, pingpong_max, foreign_max;
};

static const struct mx_layout *layout_of(const struct run *r, unsigned layout)
{
	return layout == REFERENCE ? &r->mx->reference : &r->mx->layouts[layout];
}

static bool too_wide_for_gang(const struct run *r, const struct mx_layout *l)
{
	for (unsigned i = 0; i < l->nr_vms; i++)
		if (l->vcpus[i] > r->mx->host_cpus)
			return true;
	return false;
}

/* The cells of one workload's block, not counting the references; n/a ones left out. */
static unsigned plan_block(const struct run *r, struct cell *cells)
{
	unsigned n = 0;

	for (enum mx_policy p = MX_HOST; p < MX_NR_POLICIES; p++) {
		if (p == MX_QEMU ? !r->qemu : !r->o->policies[p])
			continue;
		for (unsigned l = 0; l < r->mx->nr_layouts; l++)
			if (p != MX_GANG || !too_wide_for_gang(r, &r->mx->layouts[l]))
				cells[n++] = (struct cell){ p, l };
	}
	return n;
}

/* Writes and releases `rec`. */
static void write_record(struct run *r, json_t *rec)
{
	char *text = json_dumps(rec, JSON_COMPACT);

	if (text) {
		fputs(text, r->jsonl);
		fputc('\n', r->jsonl);
		fflush(r->jsonl);
		free(text);
	}
	json_decref(rec);
}

static json_t *measurement_json(const struct run *r, unsigned rep, size_t w, struct cell c,
				const struct mx_measurement *m, const struct mx_host_sample *h,
				unsigned attempt, bool discarded, double reference)
{
	static const char *const status_names[] = { "ok", "failed", "n/a", "skipped" };
	const struct mx_layout *l = layout_of(r, c.layout);
	json_t *vms = json_array(), *rec;

	for (unsigned i = 0; i < m->nr_vms; i++) {
		const struct mx_vm_result *v = &m->vm[i];
		json_t *vm = json_deep_copy(json_array_get(m->vms_json, i));

		if (!vm)
			vm = json_object();
		json_object_update_new(vm, json_pack("{s:f, s:f, s:s, s:f}", "share", v->share,
						     "throughput", v->throughput, "backend",
						     v->backend, "seconds", v->seconds));
		if (reference > 0)
			json_object_set_new(vm, "efficiency", json_real(v->efficiency));
		json_array_append_new(vms, vm);
	}
	rec = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:f, s:b, s:i, s:i, s:b, s:i, s:b, s:s, "
			"s:s, s:f, s:f, s:f, s:{s:f, s:f, s:f, s:f, s:f, s:f}, s:o}",
			"type", "measurement", "rep", (int)rep, "workload", mx_workloads[w].name,
			"policy", mx_policy_name(c.policy), "vmm",
			c.policy == MX_QEMU ? "qemu" : "lockstep", "layout", l->label, "overcommit",
			l->overcommit, "several", l->several, "vcpus_total", (int)l->total_vcpus,
			"vms_count", (int)l->nr_vms, "reference_run", c.layout == REFERENCE,
			"attempt", (int)attempt, "discarded", discarded, "status",
			status_names[m->status], "reason", m->reason, "throughput", m->throughput,
			"concurrency", m->concurrency, "wall_s", m->wall_s, "host", "pingpong_ns",
			h->pingpong_ns, "load1", h->load1, "busy_cpus",
			h->elapsed_s > 0 ? h->busy_s / h->elapsed_s : 0, "ours_cpus",
			h->elapsed_s > 0 ? h->ours_s / h->elapsed_s : 0, "foreign_cpus",
			h->elapsed_s > 0 ? h->foreign_s / h->elapsed_s : 0, "steal_cpus",
			h->elapsed_s > 0 ? h->steal_s / h->elapsed_s : 0, "vms", vms);
	if (reference > 0) {
		json_object_set_new(rec, "reference_throughput", json_real(reference));
		json_object_set_new(rec, "efficiency", json_real(m->efficiency));
	}
	return rec;
}

/* `scored`: m->efficiency holds a provisional figure (against the block's first reference). */
static void progress(struct run *r, unsigned rep, size_t w, struct cell c,
		     const struct mx_measurement *m, bool scored)
{
	double elapsed = (double)(util_now_ns() - r->started_ns) / 1e9;
	double eta = r->done ? elapsed / r->done * (r->total - r->done) : 0;
	const struct mx_layout *l = layout_of(r, c.layout);
	char what[96], figure[64];

	snprintf(what, sizeof(what), "%s %s %s", mx_workloads[w].name,
		 c.layout == REFERENCE ? "reference" : mx_policy_name(c.policy), l->label);
	if (m->status != MX_OK)
		snprintf(figure, sizeof(figure), "FAILED");
	else if (scored && c.layout != REFERENCE)
		snprintf(figure, sizeof(figure), "%.3g %s, eff %.2f", m->throughput,
			 mx_workloads[w].unit, m->efficiency);
	else
		snprintf(figure, sizeof(figure), "%.3g %s", m->throughput, mx_workloads[w].unit);
	if (r->o->progress_bar) {
		unsigned width = 24, filled = r->total ? r->done * width / r->total : 0;
		char bar[32];

		for (unsigned i = 0; i < width; i++)
			bar[i] = i < filled ? '#' : '.';
		bar[width] = '\0';
		fprintf(stderr, "\r\033[K[%s] %u/%u rep %u/%u  %.40s: %.30s  eta %um%02us", bar,
			r->done, r->total, rep + 1, r->o->reps, what, figure, (unsigned)eta / 60,
			(unsigned)eta % 60);
	} else {
		fprintf(stderr, "[%u/%u] rep %u/%u %s: %s (%.1f s)\n", r->done, r->total, rep + 1,
			r->o->reps, what, figure, m->wall_s);
		if (m->status != MX_OK)
			fprintf(stderr, "    %s\n", m->reason);
	}
}

/*
 * One measurement of one cell, again while other processes disturbed it (up to --retries
 * times, each after a quiet spell), and once more if it failed.  The attempts not kept are
 * written as discarded, with their reason.
 */
static void measure(struct run *r, unsigned rep, size_t w, struct cell c, struct mx_measurement *m,
		    struct mx_host_sample *h)
{
	const struct mx_layout *l = layout_of(r, c.layout);
	int daemon_pid = mx_lockstep_daemon_pid(r->ls);
	bool failed_before = false;

	for (unsigned attempt = 0;; attempt++) {
		struct mx_cpu_clock a, b;
		double foreign, seen;

		mx_measurement_init(m, l);
		*h = (struct mx_host_sample){ .pingpong_ns = mx_pingpong_ns(),
					      .load1 = mx_load1() };
		mx_cpu_clock_read(&a, daemon_pid);
		if (c.policy == MX_QEMU)
			mx_qemu_run(r->qemu, &mx_workloads[w], l, r->o->duration_ms, m);
		else
			mx_lockstep_run(r->ls, &mx_workloads[w], c.policy, l, r->o->duration_ms, m);
		mx_cpu_clock_read(&b, daemon_pid);
		mx_cpu_clock_diff(&a, &b, h);
		if (m->status == MX_OK && mx_workloads[w].cpu_bound && m->nr_vms > 1 &&
		    m->concurrency < MIN_CONCURRENCY) {
			m->status = MX_FAILED;
			snprintf(m->reason, sizeof(m->reason),
				 "the VMs' measurement windows overlapped only %.0f %%",
				 100 * m->concurrency);
		}
		foreign = h->elapsed_s > 0 ? h->foreign_s / h->elapsed_s : 0;
		if (h->pingpong_ns > 0) {
			r->pingpong_min = r->pingpong_min > 0 && r->pingpong_min < h->pingpong_ns ?
						  r->pingpong_min :
						  h->pingpong_ns;
			r->pingpong_max = fmax(r->pingpong_max, h->pingpong_ns);
		}
		/* A failure is run once more, so one broken start does not cost a cell. */
		if (m->status == MX_FAILED && !failed_before) {
			failed_before = true;
			r->failed_once++;
			write_record(r, measurement_json(r, rep, w, c, m, h, attempt, true, 0));
			if (!r->o->progress_bar)
				fprintf(stderr, "    failed (%s); once more\n", m->reason);
			mx_measurement_fini(m);
			continue;
		}
		if (foreign <= r->o->noisy_fraction || attempt >= r->o->retries) {
			r->foreign_max = fmax(r->foreign_max, foreign);
			return;
		}
		r->discarded++;
		write_record(r, measurement_json(r, rep, w, c, m, h, attempt, true, 0));
		if (!r->o->progress_bar)
			fprintf(stderr,
				"    discarded: %.2f CPUs of other load; again when quiet\n",
				foreign);
		mx_measurement_fini(m);
		mx_wait_idle(r->o->wait_idle_s, RETRY_QUIET_SECONDS, r->o->noisy_fraction,
			     daemon_pid, !r->o->progress_bar, &seen);
	}
}

struct block_entry {
	struct cell cell;
	struct mx_measurement m;
	struct mx_host_sample h;
};

static double reference_of(const struct block_entry *a, const struct block_entry *b)
{
	double sum = 0;
	int n = 0;

	if (a->m.status == MX_OK)
		sum += a->m.throughput, n++;
	if (b->m.status == MX_OK)
		sum += b->m.throughput, n++;
	return n ? sum / n : 0;
}

/* One workload in one repetition: reference, cells (rotated by `rep`), reference. */
static void run_block(struct run *r, unsigned rep, size_t w)
{
	struct cell cells[MAX_CELLS];
	unsigned n = plan_block(r, cells);
	struct block_entry *e = calloc(n + 2, sizeof(*e));
	double reference;

	if (!e)
		return;
	e[0].cell = e[n + 1].cell = (struct cell){ MX_PINNED, REFERENCE };
	for (unsigned i = 0; i < n; i++)
		e[i + 1].cell = cells[(i + rep * 7) % n]; /* 7: coprime with most block sizes */
	for (unsigned i = 0; i < n + 2; i++) {
		measure(r, rep, w, e[i].cell, &e[i].m, &e[i].h);
		r->done++;
		r->failed += e[i].m.status != MX_OK;
		if (e[0].m.status == MX_OK && i > 0)
			mx_measurement_score(&e[i].m, e[0].m.throughput);
		progress(r, rep, w, e[i].cell, &e[i].m, e[0].m.status == MX_OK);
	}
	reference = reference_of(&e[0], &e[n + 1]);
	mx_report_reference(r->report, w, reference, e[0].m.status == MX_OK ? e[0].m.throughput : 0,
			    e[n + 1].m.status == MX_OK ? e[n + 1].m.throughput : 0);
	for (unsigned i = 0; i < n + 2; i++) {
		mx_measurement_score(&e[i].m, reference);
		write_record(r, measurement_json(r, rep, w, e[i].cell, &e[i].m, &e[i].h, 0, false,
						 reference));
		if (e[i].cell.layout != REFERENCE && reference > 0)
			mx_report_add(r->report, w, e[i].cell.policy, e[i].cell.layout, &e[i].m,
				      &e[i].h);
		mx_measurement_fini(&e[i].m);
	}
	free(e);
}

/*
 * S, one vCPU switch under the multiplexer, once per repetition (the bounds of barrier
 * cells need it, measured on this machine in this run); again once if it failed.
 */
static void measure_switch_cost(struct run *r, unsigned rep)
{
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		struct mx_cpu_clock a, b;
		struct mx_host_sample h;
		json_t *rec = NULL;
		double ns;

		mx_cpu_clock_read(&a, mx_lockstep_daemon_pid(r->ls));
		ns = mx_lockstep_switch_cost(r->ls, &rec);
		mx_cpu_clock_read(&b, mx_lockstep_daemon_pid(r->ls));
		mx_cpu_clock_diff(&a, &b, &h);
		json_object_update_new(
			rec, json_pack("{s:s, s:i, s:i, s:f}", "type", "switch-cost", "rep",
				       (int)rep, "attempt", (int)attempt, "foreign_cpus",
				       h.elapsed_s > 0 ? h.foreign_s / h.elapsed_s : 0));
		write_record(r, rec);
		if (!r->o->progress_bar)
			fprintf(stderr, "rep %u/%u: switch cost S %s%.1f us\n", rep + 1, r->o->reps,
				ns > 0 ? "" : "FAILED ", ns / 1e3);
		if (ns > 0) {
			mx_report_switch_cost(r->report, ns);
			return;
		}
	}
}

/* Gang cells of VMs wider than the host: n/a, and lockstepd must refuse them. */
static void check_gang_refusals(struct run *r)
{
	for (unsigned l = 0; r->o->policies[MX_GANG] && l < r->mx->nr_layouts; l++) {
		const struct mx_layout *lay = &r->mx->layouts[l];
		unsigned widest = 0;
		char *refusal, why[600];

		if (!too_wide_for_gang(r, lay))
			continue;
		for (unsigned i = 0; i < lay->nr_vms; i++)
			widest = lay->vcpus[i] > widest ? lay->vcpus[i] : widest;
		refusal = mx_lockstep_gang_refusal(r->ls, widest);
		snprintf(why, sizeof(why), "%s", refusal ? refusal : "lockstepd ACCEPTED it");
		write_record(r, json_pack("{s:s, s:s, s:i, s:b, s:s}", "type", "gang-check",
					  "layout", lay->label, "vcpus", (int)widest, "refused",
					  refusal != NULL, "answer", why));
		if (!refusal)
			fprintf(stderr,
				"lockstep-bench matrix: lockstepd accepted a gang VM of %u "
				"vCPUs on %u host CPUs\n",
				widest, r->mx->host_cpus);
		for (size_t w = 0; w < mx_nr_workloads; w++)
			if (r->o->workloads[w])
				mx_report_na(r->report, w, MX_GANG, l,
					     refusal ? "refused by lockstepd" : "accepted!");
		free(refusal);
	}
}

static json_t *options_json(const struct mx_options *o)
{
	json_t *wl = json_array(), *pol = json_array(), *oc = json_array();

	for (size_t i = 0; i < mx_nr_workloads; i++)
		if (o->workloads[i])
			json_array_append_new(wl, json_string(mx_workloads[i].name));
	for (enum mx_policy p = MX_HOST; p < MX_QEMU; p++)
		if (o->policies[p])
			json_array_append_new(pol, json_string(mx_policy_name(p)));
	for (unsigned i = 0; i < o->nr_overcommit; i++)
		json_array_append_new(oc, json_real(o->overcommit[i]));
	return json_pack("{s:s, s:o, s:o, s:o, s:b, s:b, s:i, s:i, s:s, s:s, s:s, s:i, s:f}",
			 "preset", o->preset, "workloads", wl, "policies", pol, "overcommit", oc,
			 "layout_one", o->layout_one, "layout_several", o->layout_several, "reps",
			 (int)o->reps, "duration_ms", (int)o->duration_ms, "daemon",
			 o->socket ? o->socket : "spawned", "guest_dir", o->guest_dir, "memory",
			 o->memory, "retries", (int)o->retries, "noisy_cpus", o->noisy_fraction);
}

/* Opens the output, waits for quiet, starts lockstepd and QEMU's probe. */
static int setup(struct run *r)
{
	char path[PATH_MAX + 16], err[512] = "";
	double busy = 0;
	int ret;

	if (r->o->out_dir) {
		util_strlcpy(r->out_dir, r->o->out_dir, sizeof(r->out_dir));
	} else {
		time_t now = time(NULL);
		struct tm tm;

		localtime_r(&now, &tm);
		strftime(r->out_dir, sizeof(r->out_dir), "bench/results/%Y%m%d-%H%M%S", &tm);
	}
	ret = util_mkdir_p(r->out_dir, 0755);
	if (ret) {
		fprintf(stderr, "lockstep-bench matrix: %s: %s\n", r->out_dir, strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/results.jsonl", r->out_dir);
	r->jsonl = fopen(path, "we");
	if (!r->jsonl) {
		fprintf(stderr, "lockstep-bench matrix: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!mx_wait_idle(r->o->wait_idle_s, QUIET_SECONDS, r->o->noisy_fraction, 0, true, &busy)) {
		if (!r->o->force) {
			fprintf(stderr,
				"lockstep-bench matrix: the machine stayed busy (%.2f CPUs of other "
				"work): every figure would be wrong.  Wait for a quiet machine, or "
				"--force to run anyway.\n",
				busy);
			return -EBUSY;
		}
		fprintf(stderr,
			"lockstep-bench matrix: WARNING: running on a busy machine (%.2f "
			"CPUs of other work): the figures will be wrong\n",
			busy);
	}
	r->report = mx_report_new(r->o, r->mx->layouts, r->mx->nr_layouts, r->mx->host_cpus);
	if (!r->report)
		return -ENOMEM;
	ret = mx_lockstep_open(r->o, r->out_dir, &r->ls, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "lockstep-bench matrix: %s\n", err);
		return ret;
	}
	r->qemu = mx_qemu_open(r->o, r->out_dir, r->qemu_status, sizeof(r->qemu_status));
	if (r->qemu)
		snprintf(r->qemu_status, sizeof(r->qemu_status), "ran: %s, firmware %s",
			 mx_qemu_version(r->qemu), mx_qemu_firmware(r->qemu));
	else if (r->o->qemu == 1)
		fprintf(stderr, "lockstep-bench matrix: QEMU: %s\n", r->qemu_status);
	mx_report_qemu_status(r->report, r->qemu_status);
	return 0;
}

static void teardown(struct run *r)
{
	mx_qemu_close(r->qemu);
	mx_lockstep_close(r->ls);
	mx_report_free(r->report);
	if (r->jsonl)
		fclose(r->jsonl);
}

int mx_matrix_run(struct mx_matrix *mx)
{
	struct run r = { .mx = mx, .o = mx->o };
	struct cell cells[MAX_CELLS];
	unsigned per_rep = 0;
	json_t *summary = NULL, *run_record;
	int ret = setup(&r);

	if (ret) {
		teardown(&r);
		return ret == -ECONNREFUSED || ret == -ENOENT ? BENCH_EXIT_UNREACHABLE :
								BENCH_EXIT_FAILED;
	}
	run_record = json_pack("{s:s, s:s, s:i, s:o, s:o, s:o*, s:s, s:s}", "type", "run",
			       "version", LOCKSTEP_VERSION, "started", (int)time(NULL), "options",
			       options_json(mx->o), "host", mx_host_json(), "lockstepd",
			       mx_lockstep_info(r.ls), "qemu", r.qemu_status, "efficiency",
			       "per VM: throughput / (reference x min(vCPUs / all vCPUs, vCPUs / "
			       "host CPUs)); per cell: share-weighted mean over its VMs");
	mx_report_set_run(r.report, run_record);
	write_record(&r, run_record);
	check_gang_refusals(&r);
	for (size_t w = 0; w < mx_nr_workloads; w++)
		per_rep += mx->o->workloads[w] ? plan_block(&r, cells) + 2 : 0;
	r.total = per_rep * mx->o->reps;
	r.started_ns = util_now_ns();
	for (unsigned rep = 0; rep < mx->o->reps; rep++) {
		uint64_t t0 = util_now_ns();

		r.pingpong_min = r.pingpong_max = r.foreign_max = 0;
		measure_switch_cost(&r, rep);
		for (size_t i = 0; i < mx_nr_workloads; i++) {
			size_t w = (i + rep) % mx_nr_workloads;

			if (mx->o->workloads[w])
				run_block(&r, rep, w);
		}
		mx_report_rep_state(r.report, rep, r.pingpong_min, r.pingpong_max, mx_load1());
		write_record(&r, json_pack("{s:s, s:i, s:f, s:{s:f, s:f}, s:f, s:f}", "type", "rep",
					   "rep", (int)rep, "seconds",
					   (double)(util_now_ns() - t0) / 1e9, "pingpong_ns", "min",
					   r.pingpong_min, "max", r.pingpong_max,
					   "foreign_cpus_max", r.foreign_max, "load1", mx_load1()));
	}
	if (mx->o->progress_bar)
		fputc('\n', stderr);
	ret = mx_report_write(r.report, r.out_dir, (double)(util_now_ns() - r.started_ns) / 1e9,
			      r.discarded, r.failed_once, &summary);
	if (summary)
		write_record(&r, summary);
	fprintf(stderr,
		"lockstep-bench matrix: %u measurements (%u failed, %u run again after a failure, "
		"%u discarded for other load) in %.0f s; results in %s\n",
		r.done, r.failed, r.failed_once, r.discarded,
		(double)(util_now_ns() - r.started_ns) / 1e9, r.out_dir);
	teardown(&r);
	if (ret)
		return BENCH_EXIT_FAILED;
	return r.failed ? BENCH_EXIT_FAILED : 0;
}
