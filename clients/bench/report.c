/*
 * What a matrix run says: per cell the median and range of its efficiency over the
 * repetitions, per workload the reference it was scored against, the targets
 * evaluated on the medians, and the noise the run saw (reference spread, the outer
 * hypervisor's cache-latency states, other load).  Written as table.md for people and as a
 * summary record for results.jsonl; plot.c draws the same medians.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/bench/matrix.h"

#define MAX_LAYOUTS (2 * MX_MAX_OVERCOMMIT)
/* Below this efficiency every policy is at the floor, and ratios between them are noise. */
#define REPORT_FLOOR 0.1

struct series {
	double eff[MX_MAX_REPS], thr[MX_MAX_REPS], conc[MX_MAX_REPS];
	unsigned n, failed;
	bool na;
	char na_why[48];
	char backend[24];
};

struct mx_report {
	const struct mx_options *o;
	const struct mx_layout *layouts;
	unsigned nr_layouts, host_cpus;
	struct series cell[MX_MAX_WORKLOADS][MX_NR_POLICIES][MAX_LAYOUTS];
	double ref[MX_MAX_WORKLOADS][MX_MAX_REPS]; /* per block: the mean of its two runs */
	unsigned nr_ref[MX_MAX_WORKLOADS];
	double ref_runs[MX_MAX_WORKLOADS][2 * MX_MAX_REPS];
	unsigned nr_ref_runs[MX_MAX_WORKLOADS];
	double pp_min[MX_MAX_REPS], pp_max[MX_MAX_REPS], load[MX_MAX_REPS];
	unsigned reps_done;
	double foreign_max;
	/* Every measurement's ping-pong, to tell the host's fast state from its slow one. */
	double *pingpong;
	size_t nr_pingpong, cap_pingpong;
	char qemu_status[512];
	json_t *run;
};

struct mx_report *mx_report_new(const struct mx_options *o, const struct mx_layout *layouts,
				unsigned nr_layouts, unsigned host_cpus)
{
	struct mx_report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	*r = (struct mx_report){
		.o = o, .layouts = layouts, .nr_layouts = nr_layouts, .host_cpus = host_cpus
	};
	return r;
}

void mx_report_free(struct mx_report *r)
{
	if (r) {
		json_decref(r->run);
		free(r->pingpong);
	}
	free(r);
}

void mx_report_set_run(struct mx_report *r, json_t *run)
{
	json_decref(r->run);
	r->run = json_incref(run);
}

void mx_report_add(struct mx_report *r, size_t w, enum mx_policy p, unsigned layout,
		   const struct mx_measurement *m, const struct mx_host_sample *h)
{
	struct series *s = &r->cell[w][p][layout];
	double foreign = h->elapsed_s > 0 ? h->foreign_s / h->elapsed_s : 0;

	r->foreign_max = fmax(r->foreign_max, foreign);
	if (h->pingpong_ns > 0 && r->nr_pingpong == r->cap_pingpong) {
		size_t cap = r->cap_pingpong ? 2 * r->cap_pingpong : 1024;
		double *grown = realloc(r->pingpong, cap * sizeof(*grown));

		if (grown) {
			r->pingpong = grown;
			r->cap_pingpong = cap;
		}
	}
	if (h->pingpong_ns > 0 && r->nr_pingpong < r->cap_pingpong)
		r->pingpong[r->nr_pingpong++] = h->pingpong_ns;
	if (m->status != MX_OK) {
		s->failed++;
		return;
	}
	if (s->n == MX_MAX_REPS)
		return;
	s->eff[s->n] = m->efficiency;
	s->thr[s->n] = m->throughput;
	s->conc[s->n] = m->concurrency;
	s->n++;
	snprintf(s->backend, sizeof(s->backend), "%s", m->vm[0].backend);
}

void mx_report_reference(struct mx_report *r, size_t w, double reference, double first, double last)
{
	if (reference > 0 && r->nr_ref[w] < MX_MAX_REPS)
		r->ref[w][r->nr_ref[w]++] = reference;
	if (first > 0 && r->nr_ref_runs[w] < 2 * MX_MAX_REPS)
		r->ref_runs[w][r->nr_ref_runs[w]++] = first;
	if (last > 0 && r->nr_ref_runs[w] < 2 * MX_MAX_REPS)
		r->ref_runs[w][r->nr_ref_runs[w]++] = last;
}

void mx_report_na(struct mx_report *r, size_t w, enum mx_policy p, unsigned layout, const char *why)
{
	r->cell[w][p][layout].na = true;
	snprintf(r->cell[w][p][layout].na_why, sizeof(r->cell[w][p][layout].na_why), "%s", why);
}

void mx_report_qemu_status(struct mx_report *r, const char *status)
{
	snprintf(r->qemu_status, sizeof(r->qemu_status), "%s", status);
}

void mx_report_rep_state(struct mx_report *r, unsigned rep, double pingpong_min,
			 double pingpong_max, double load1)
{
	if (rep >= MX_MAX_REPS)
		return;
	r->pp_min[rep] = pingpong_min;
	r->pp_max[rep] = pingpong_max;
	r->load[rep] = load1;
	r->reps_done = rep + 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void mx_stat_of(const double *v, unsigned n, struct mx_stat *out)
{
	double sorted[2 * MX_MAX_REPS]; /* the reference runs are the longest list */

	*out = (struct mx_stat){ .n = n };
	if (!n)
		return;
	memcpy(sorted, v, n * sizeof(*v));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	out->median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	out->min = sorted[0];
	out->max = sorted[n - 1];
}

bool mx_report_cell(const struct mx_report *r, size_t w, enum mx_policy p, unsigned layout,
		    struct mx_stat *eff)
{
	const struct series *s = &r->cell[w][p][layout];

	mx_stat_of(s->eff, s->n, eff);
	return s->n > 0;
}

static void throughput_of(const struct mx_report *r, size_t w, enum mx_policy p, unsigned l,
			  struct mx_stat *out)
{
	mx_stat_of(r->cell[w][p][l].thr, r->cell[w][p][l].n, out);
}

/* ---- table.md ---- */

static const char *si(double v, char *buf, size_t size)
{
	if (v >= 1e6)
		snprintf(buf, size, "%.3g M", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, size, "%.3g k", v / 1e3);
	else
		snprintf(buf, size, "%.3g", v);
	return buf;
}

static const char *vm_shape(const struct mx_layout *l, char *buf, size_t size)
{
	size_t len = 0;

	if (l->nr_vms == 1) {
		snprintf(buf, size, "1 VM × %u", l->vcpus[0]);
		return buf;
	}
	len += (size_t)snprintf(buf, size, "%u VMs: ", l->nr_vms);
	for (unsigned i = 0; i < l->nr_vms && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%u", i ? "+" : "", l->vcpus[i]);
	return buf;
}

/* "0.93 (0.91–0.95)", "n/a", "—", with a mark for poorly overlapping VM windows. */
static void cell_text(const struct mx_report *r, size_t w, enum mx_policy p, unsigned l, char *buf,
		      size_t size)
{
	const struct series *s = &r->cell[w][p][l];
	struct mx_stat e, c;

	if (s->na) {
		snprintf(buf, size, "n/a");
		return;
	}
	if (!s->n) {
		snprintf(buf, size, s->failed ? "failed" : "—");
		return;
	}
	mx_stat_of(s->eff, s->n, &e);
	mx_stat_of(s->conc, s->n, &c);
	if (s->n > 1)
		snprintf(buf, size, "%.2f (%.2f–%.2f)%s%s", e.median, e.min, e.max,
			 c.median < 0.9 ? " †" : "", s->failed ? " ‡" : "");
	else
		snprintf(buf, size, "%.2f%s%s", e.median, c.median < 0.9 ? " †" : "",
			 s->failed ? " ‡" : "");
}

static bool qemu_column(const struct mx_report *r)
{
	return r->o->qemu != 0;
}

static void workload_table(FILE *f, const struct mx_report *r, size_t w)
{
	const struct mx_workload *wl = &mx_workloads[w];
	struct mx_stat ref;
	char a[32], b[32], c[32];

	mx_stat_of(r->ref[w], r->nr_ref[w], &ref);
	fprintf(f, "\n### %s (`%s`)\n\nReference: %s %s", wl->title, wl->name,
		si(ref.median, a, sizeof(a)), wl->unit);
	if (ref.n > 1)
		fprintf(f, " (median of %u blocks, %s–%s)", ref.n, si(ref.min, b, sizeof(b)),
			si(ref.max, c, sizeof(c)));
	fprintf(f, ".\n\n| overcommit | VMs × vCPUs |");
	for (enum mx_policy p = MX_HOST; p < MX_QEMU; p++)
		if (r->o->policies[p])
			fprintf(f, " %s |", mx_policy_name(p));
	if (qemu_column(r))
		fprintf(f, " QEMU |");
	fprintf(f, "\n|---|---|");
	for (enum mx_policy p = MX_HOST; p < MX_QEMU; p++)
		if (r->o->policies[p])
			fprintf(f, "---|");
	fprintf(f, qemu_column(r) ? "---|\n" : "\n");
	for (unsigned l = 0; l < r->nr_layouts; l++) {
		char shape[64], text[64];

		fprintf(f, "| %s | %s |", r->layouts[l].label,
			vm_shape(&r->layouts[l], shape, sizeof(shape)));
		for (enum mx_policy p = MX_HOST; p < MX_NR_POLICIES; p++) {
			if (p == MX_QEMU ? !qemu_column(r) : !r->o->policies[p])
				continue;
			cell_text(r, w, p, l, text, sizeof(text));
			fprintf(f, " %s |", text);
		}
		fputc('\n', f);
	}
	if (wl->pv && qemu_column(r) && r->cell[w][MX_QEMU][0].backend[0])
		fprintf(f, "\nUnder QEMU the guest's pv backend was `%s` (no lockstep doorbell).\n",
			r->cell[w][MX_QEMU][0].backend);
}

/* The best of lockstep's policies for a cell, by median efficiency; -1 if none ran. */
static int best_policy(const struct mx_report *r, size_t w, unsigned l, struct mx_stat *best)
{
	int which = -1;

	*best = (struct mx_stat){ 0 };
	for (enum mx_policy p = MX_HOST; p < MX_QEMU; p++) {
		struct mx_stat e;

		if (mx_report_cell(r, w, p, l, &e) && (which < 0 || e.median > best->median)) {
			*best = e;
			which = (int)p;
		}
	}
	return which;
}

static void targets(FILE *f, const struct mx_report *r, json_t *summary)
{
	json_t *t = json_array();
	bool any = false;

	fprintf(f, "\n## Targets\n\nAt 2× overcommit, lock- and barrier-bound workloads "
		   "(efficiency ≥ 0.9 for the best policy; ticket-plain ≥ 5× the `host` "
		   "policy's throughput):\n\n| workload | layout | best policy | efficiency | "
		   "≥ 0.9 | × host throughput |\n|---|---|---|---|---|---|\n");
	for (size_t w = 0; w < mx_nr_workloads; w++) {
		if (!r->o->workloads[w] || !mx_workloads[w].contended)
			continue;
		for (unsigned l = 0; l < r->nr_layouts; l++) {
			struct mx_stat best, bt, ht;
			char factor[32] = "";
			int p;

			if (fabs(r->layouts[l].overcommit - 2.0) > 1e-9)
				continue;
			p = best_policy(r, w, l, &best);
			if (p < 0)
				continue;
			any = true;
			throughput_of(r, w, (enum mx_policy)p, l, &bt);
			throughput_of(r, w, MX_HOST, l, &ht);
			if (ht.n && ht.median > 0)
				snprintf(factor, sizeof(factor), "%.1f×", bt.median / ht.median);
			fprintf(f, "| %s | %s | %s | %.2f | %s | %s |\n", mx_workloads[w].name,
				r->layouts[l].label, mx_policy_name((enum mx_policy)p), best.median,
				best.median >= 0.9 ? "yes" : "**no**", factor);
			json_array_append_new(
				t,
				json_pack("{s:s, s:s, s:s, s:f, s:o*}", "workload",
					  mx_workloads[w].name, "layout", r->layouts[l].label,
					  "best", mx_policy_name((enum mx_policy)p), "efficiency",
					  best.median, "times_host",
					  ht.n && ht.median > 0 ? json_real(bt.median / ht.median) :
								  NULL));
		}
	}
	if (!any)
		fprintf(f, "| (2× was not measured) | | | | | |\n");
	json_object_set_new(summary, "targets_2x", t);

	t = json_array();
	fprintf(f,
		"\n`adaptive` against the best policy of each cell (target: within 10 %%), "
		"and against `host` where there are no locks (target: no worse; marked "
		"worse below 0.95, the noise allowance).  Cells where no policy reaches "
		"%.2f are left out: there the ratio is one of noise (0.00 against 0.01), "
		"and the tables show them.\n\n",
		REPORT_FLOOR);
	fprintf(f, "| workload | worst adaptive / best | at | adaptive / host (no locks) |\n"
		   "|---|---|---|---|\n");
	for (size_t w = 0; w < mx_nr_workloads && r->o->policies[MX_ADAPTIVE]; w++) {
		double worst = DBL_MAX, vs_host = DBL_MAX;
		const char *at = "";

		if (!r->o->workloads[w])
			continue;
		for (unsigned l = 0; l < r->nr_layouts; l++) {
			struct mx_stat best, ad, host;

			if (best_policy(r, w, l, &best) < 0 ||
			    !mx_report_cell(r, w, MX_ADAPTIVE, l, &ad) ||
			    best.median < REPORT_FLOOR)
				continue;
			if (ad.median / best.median < worst) {
				worst = ad.median / best.median;
				at = r->layouts[l].label;
			}
			if (!mx_workloads[w].contended && mx_report_cell(r, w, MX_HOST, l, &host) &&
			    host.median > 0)
				vs_host = fmin(vs_host, ad.median / host.median);
		}
		if (worst == DBL_MAX)
			continue;
		fprintf(f, "| %s | %.2f%s | %s |", mx_workloads[w].name, worst,
			worst >= 0.9 ? "" : " **(miss)**", at);
		if (vs_host < DBL_MAX)
			fprintf(f, " %.2f%s |\n", vs_host, vs_host >= 0.95 ? "" : " **(worse)**");
		else
			fprintf(f, " |\n");
		json_array_append_new(t, json_pack("{s:s, s:f, s:s, s:o*}", "workload",
						   mx_workloads[w].name, "adaptive_over_best",
						   worst, "at", at, "adaptive_over_host",
						   vs_host < DBL_MAX ? json_real(vs_host) : NULL));
	}
	json_object_set_new(summary, "targets_adaptive", t);
}

static void noise(FILE *f, const struct mx_report *r, double seconds, unsigned discarded,
		  unsigned failed_once, json_t *summary)
{
	double pp_lo = 0, pp_hi = 0, worst_ref = 0;
	size_t slow = 0;

	for (unsigned i = 0; i < r->reps_done; i++) {
		if (r->pp_min[i] > 0 && (pp_lo == 0 || r->pp_min[i] < pp_lo))
			pp_lo = r->pp_min[i];
		pp_hi = fmax(pp_hi, r->pp_max[i]);
	}
	fprintf(f,
		"\n## Noise\n\n- The reference (one VM, %u vCPUs pinned, no overcommit) "
		"over all its runs, (max − min) / median:",
		r->host_cpus);
	for (size_t w = 0; w < mx_nr_workloads; w++) {
		struct mx_stat s;

		if (!r->o->workloads[w])
			continue;
		mx_stat_of(r->ref_runs[w], r->nr_ref_runs[w], &s);
		if (s.n > 1 && s.median > 0) {
			fprintf(f, " %s %.0f %%;", mx_workloads[w].name,
				100 * (s.max - s.min) / s.median);
			worst_ref = fmax(worst_ref, (s.max - s.min) / s.median);
		}
	}
	for (size_t i = 0; i < r->nr_pingpong; i++)
		slow += r->pingpong[i] > 2 * pp_lo;
	fprintf(f,
		"\n- Cache-line round trip between two host CPUs, measured before every "
		"measurement: %.0f–%.0f ns; %.0f %% of the measurements ran in the slow state "
		"(over twice the fastest round trip).\n",
		pp_lo, pp_hi, r->nr_pingpong ? 100.0 * (double)slow / (double)r->nr_pingpong : 0.0);
	fprintf(f,
		"- Other load: %u measurement%s discarded and run again because other "
		"processes used more than %.2f CPUs meanwhile; the most any kept one saw was "
		"%.2f CPUs.\n",
		discarded, discarded == 1 ? " was" : "s were", r->o->noisy_fraction,
		r->foreign_max);
	if (failed_once)
		fprintf(f,
			"- %u measurement%s failed once and %s run again (the reasons are in "
			"results.jsonl: discarded records with status \"failed\").\n",
			failed_once, failed_once == 1 ? "" : "s",
			failed_once == 1 ? "was" : "were");
	fprintf(f, "- The run took %.0f min.\n", seconds / 60);
	json_object_set_new(summary, "noise",
			    json_pack("{s:f, s:f, s:f, s:f, s:i, s:i, s:f, s:f}", "pingpong_ns_min",
				      pp_lo, "pingpong_ns_max", pp_hi, "pingpong_slow_fraction",
				      r->nr_pingpong ? (double)slow / (double)r->nr_pingpong : 0.0,
				      "reference_spread_max", worst_ref, "discarded",
				      (int)discarded, "failed_once", (int)failed_once,
				      "foreign_cpus_max", r->foreign_max, "seconds", seconds));
}

static void header(FILE *f, const struct mx_report *r)
{
	json_t *host = json_object_get(r->run, "host");
	json_t *kernel = json_object_get(host, "kernel");
	json_t *mods = json_object_get(host, "kvm_modules"), *m;
	json_t *opts = json_object_get(r->run, "options");
	time_t started = (time_t)json_integer_value(json_object_get(r->run, "started"));
	char when[64];
	size_t i;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M %Z", localtime(&started));
	fprintf(f, "# lockstep-bench matrix\n\n");
	fprintf(f, "- Machine: %s, %u host CPUs, Linux %s, KVM:",
		json_string_value(json_object_get(host, "cpu_model")) ?: "?", r->host_cpus,
		json_string_value(json_object_get(kernel, "release")) ?: "?");
	json_array_foreach(mods, i, m)
		fprintf(f, " %s", json_string_value(m));
	fprintf(f, "\n- lockstep %s (%s); QEMU: %s\n",
		json_string_value(json_object_get(r->run, "version")) ?: "?",
		json_string_value(json_object_get(host, "source_commit")) ?: "commit unknown",
		r->qemu_status[0] ? r->qemu_status : "not run");
	fprintf(f, "- Preset `%s`: %d repetition(s) of %d ms per guest, started %s\n",
		json_string_value(json_object_get(opts, "preset")) ?: "?",
		(int)json_integer_value(json_object_get(opts, "reps")),
		(int)json_integer_value(json_object_get(opts, "duration_ms")), when);
	fprintf(f,
		"\n**Efficiency** = a VM's throughput (work items per second: lock "
		"acquisitions, barrier arrivals = rounds × vCPUs, IPIs) ÷ (the reference "
		"throughput × the VM's share of the host).  The reference is the same workload in "
		"one VM with as many vCPUs as host CPUs (%u), policy `pinned`, no overcommit, "
		"measured at the start and the end of each workload's block in every repetition "
		"(the mean of the two scores the block).  A VM's share is min(its vCPUs ÷ all "
		"vCPUs of the cell, its vCPUs ÷ host CPUs).  A cell's efficiency is the "
		"share-weighted mean over its VMs = their summed throughput ÷ the reference.  "
		"1.0 is what the machine does for this workload at full contention; above 1 "
		"happens where vCPUs of different VMs share the host instead of contending for "
		"one lock (pv waiters sleep and let another VM's vCPU run).  `ipi` mostly waits "
		"for interrupts, so no share bounds it: each of its VMs counts with share 1 and "
		"the cell shows their mean.  Cells show the median over repetitions "
		"and (min–max).  n/a: `gang` needs a host CPU per vCPU and lockstepd refuses "
		"wider VMs.  †: the VMs' measurement windows overlapped less than 90 %%.  ‡: "
		"some repetitions failed (see results.jsonl).  QEMU: `-accel kvm -smp N`, "
		"Linux's scheduling, same guest images, scored against the same reference.\n",
		r->host_cpus);
}

int mx_report_write(struct mx_report *r, const char *dir, double seconds, unsigned discarded,
		    unsigned failed_once, json_t **summary)
{
	char path[4200], err[256];
	json_t *sum = json_pack("{s:s}", "type", "summary"), *cells = json_array();
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "%s/table.md", dir);
	f = fopen(path, "we");
	if (!f) {
		ret = -errno;
		fprintf(stderr, "lockstep-bench matrix: %s: %s\n", path, strerror(errno));
		json_decref(sum);
		json_decref(cells);
		return ret;
	}
	header(f, r);
	if (r->o->qemu != 0 && strncmp(r->qemu_status, "ran", 3))
		fprintf(f, "\n**QEMU baseline not run:** %s.\n", r->qemu_status);
	fprintf(f, "\n## Efficiency\n\n![efficiency vs overcommit](efficiency.svg)\n");
	for (size_t w = 0; w < mx_nr_workloads; w++) {
		if (!r->o->workloads[w])
			continue;
		workload_table(f, r, w);
		for (enum mx_policy p = MX_HOST; p < MX_NR_POLICIES; p++) {
			for (unsigned l = 0; l < r->nr_layouts; l++) {
				const struct series *s = &r->cell[w][p][l];
				struct mx_stat e, t;

				if (!s->n && !s->na && !s->failed)
					continue;
				mx_stat_of(s->eff, s->n, &e);
				mx_stat_of(s->thr, s->n, &t);
				json_array_append_new(
					cells,
					json_pack(
						"{s:s, s:s, s:s, s:b, s:i, s:i, s:f, s:f, s:f, s:f}",
						"workload", mx_workloads[w].name, "policy",
						mx_policy_name(p), "layout", r->layouts[l].label,
						"na", s->na, "reps", (int)s->n, "failed",
						(int)s->failed, "efficiency_median", e.median,
						"efficiency_min", e.min, "efficiency_max", e.max,
						"throughput_median", t.median));
			}
		}
	}
	json_object_set_new(sum, "cells", cells);
	targets(f, r, sum);
	noise(f, r, seconds, discarded, failed_once, sum);
	ret = mx_plot_write(r, r->o, r->layouts, r->nr_layouts, r->host_cpus, dir, err,
			    sizeof(err));
	if (ret) {
		fprintf(f, "\n(No plot: %s.)\n", err);
		fprintf(stderr, "lockstep-bench matrix: no plot: %s\n", err);
	}
	if (fclose(f) && !ret)
		ret = -EIO;
	*summary = sum;
	return ret;
}
