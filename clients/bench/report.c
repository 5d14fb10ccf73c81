/*
 * What a matrix run says: per cell the median and range of its efficiency over the
 * repetitions, per workload the reference it was scored against, for barriers the physical
 * bound of each cell and the efficiency as a fraction of it, the targets evaluated on the
 * medians, and the noise the run saw (reference spread, the outer hypervisor's cache-latency
 * states, other load).  Written as table.md for people and as a summary record for
 * results.jsonl; plot.c draws the same medians.
 *
 * The bound (bench/README.md derives it): V vCPUs of one VM on h < V host CPUs meeting at a
 * barrier each round switch at least V - h times per round, each switch costing S of a CPU's
 * time, so with R of work per vCPU and round (the reference's round: h / its throughput) the
 * best any schedule can do is V R / (V R + (V - h) S) of the reference.  Every other cell's
 * bound is 1.  S is switchbench's median, measured in the same run.
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
	double switch_in[MX_MAX_REPS]; /* gang: gate close -> next slice's vCPUs running, us */
	unsigned n, failed, n_switch_in;
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
	double switch_ns[MX_MAX_REPS]; /* S, per repetition */
	unsigned nr_switch;
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

/*
 * Gang's switch latency in one measurement: for each VM the median (over its slices) from the
 * gates of the slice before closing to its last vCPU running; the mean over the VMs, in us.
 * 0 when no VM measured a switch.
 */
static double switch_in_of(const struct mx_measurement *m)
{
	double sum = 0;
	unsigned n = 0;
	size_t i;
	json_t *vm;

	json_array_foreach(m->vms_json, i, vm) {
		json_t *sw = json_object_get(
			json_object_get(json_object_get(vm, "last_run"), "sched"), "switch_in");

		if (json_integer_value(json_object_get(sw, "count")) > 0) {
			sum += json_number_value(json_object_get(sw, "us_p50"));
			n++;
		}
	}
	return n ? sum / n : 0;
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
	if (switch_in_of(m) > 0)
		s->switch_in[s->n_switch_in++] = switch_in_of(m);
	snprintf(s->backend, sizeof(s->backend), "%s", m->vm[0].backend);
}

void mx_report_switch_cost(struct mx_report *r, double ns)
{
	if (ns > 0 && r->nr_switch < MX_MAX_REPS)
		r->switch_ns[r->nr_switch++] = ns;
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

/* The median of `v`; 0 when it is empty. */
static double median_of(const double *v, unsigned n)
{
	struct mx_stat st;

	mx_stat_of(v, n, &st);
	return st.median;
}

static bool wide_one(const struct mx_report *r, unsigned l)
{
	return r->layouts[l].nr_vms == 1 && r->layouts[l].vcpus[0] > r->host_cpus;
}

/* The cell's physical bound (see the top of this file); -1 when S or R is not known. */
static double bound_of(const struct mx_report *r, size_t w, unsigned l)
{
	double h = r->host_cpus, v = r->layouts[l].vcpus[0], ref, round_s, switch_s;

	if (!mx_workloads[w].barrier || !wide_one(r, l))
		return 1;
	ref = median_of(r->ref[w], r->nr_ref[w]);
	switch_s = median_of(r->switch_ns, r->nr_switch) / 1e9;
	if (ref <= 0 || switch_s <= 0)
		return -1;
	round_s = h / ref;
	return v * round_s / (v * round_s + (v - h) * switch_s);
}

/* The barrier tables' companion: each cell's efficiency as a fraction of its bound. */
static void bound_table(FILE *f, const struct mx_report *r, size_t w)
{
	double h = r->host_cpus, ref = median_of(r->ref[w], r->nr_ref[w]);
	bool any = false;

	for (unsigned l = 0; l < r->nr_layouts; l++)
		any |= bound_of(r, w, l) != 1;
	if (!mx_workloads[w].barrier || !any)
		return;
	fprintf(f,
		"\nPhysical bound of one VM wider than the host: S = %.1f µs per switch, R = %.2f "
		"µs of work per vCPU and round (the reference's round).  Efficiency ÷ bound:\n\n"
		"| overcommit | VMs × vCPUs | bound |",
		median_of(r->switch_ns, r->nr_switch) / 1e3, ref > 0 ? h / ref * 1e6 : 0.0);
	for (enum mx_policy p = MX_HOST; p < MX_NR_POLICIES; p++)
		if (p == MX_QEMU ? qemu_column(r) : r->o->policies[p])
			fprintf(f, " %s |", p == MX_QEMU ? "QEMU" : mx_policy_name(p));
	fprintf(f, "\n|---|---|---|");
	for (enum mx_policy p = MX_HOST; p < MX_NR_POLICIES; p++)
		if (p == MX_QEMU ? qemu_column(r) : r->o->policies[p])
			fprintf(f, "---|");
	fputc('\n', f);
	for (unsigned l = 0; l < r->nr_layouts; l++) {
		double bound = bound_of(r, w, l);
		char shape[64];

		if (bound == 1)
			continue;
		fprintf(f, "| %s | %s | %.3f |", r->layouts[l].label,
			vm_shape(&r->layouts[l], shape, sizeof(shape)), bound);
		for (enum mx_policy p = MX_HOST; p < MX_NR_POLICIES; p++) {
			struct mx_stat e;

			if (p == MX_QEMU ? !qemu_column(r) : !r->o->policies[p])
				continue;
			if (r->cell[w][p][l].na)
				fprintf(f, " n/a |");
			else if (bound > 0 && mx_report_cell(r, w, p, l, &e))
				fprintf(f, " %.2f |", e.median / bound);
			else
				fprintf(f, " — |");
		}
		fputc('\n', f);
	}
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
	bound_table(f, r, w);
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

static const char *yes_no(bool met)
{
	return met ? "yes" : "**no**";
}

/* The median efficiency of a cell, or -1 if it did not run. */
static double cell_median(const struct mx_report *r, size_t w, enum mx_policy p, unsigned l)
{
	struct mx_stat e;

	return mx_report_cell(r, w, p, l, &e) ? e.median : -1;
}

static void figure(FILE *f, double v)
{
	if (v < 0)
		fprintf(f, " — |");
	else
		fprintf(f, " %.2f |", v);
}

/*
 * One VM wider than the host: pv locks at 0.9 of their fair share, pv barriers at 0.9 of
 * their physical bound (both for the best policy), ipi under mux no worse than under host
 * (0.95: the noise allowance).
 */
static void targets_wide(FILE *f, const struct mx_report *r, json_t *out)
{
	fprintf(f, "\n### One VM wider than the host\n\n"
		   "| workload | VM | target | figure | met | best policy | efficiency | bound | "
		   "mux | adaptive | host | QEMU |\n"
		   "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (size_t w = 0; w < mx_nr_workloads; w++) {
		const struct mx_workload *wl = &mx_workloads[w];
		bool locks = wl->pv && !wl->barrier && wl->contended,
		     barrier = wl->pv && wl->barrier;
		bool ipi = wl->program == MX_IPI;

		if (!r->o->workloads[w] || !(locks || barrier || ipi))
			continue;
		for (unsigned l = 0; l < r->nr_layouts; l++) {
			double bound = bound_of(r, w, l), mux = cell_median(r, w, MX_MUX, l);
			double host = cell_median(r, w, MX_HOST, l), value;
			struct mx_stat best;
			const char *target;
			char shape[64];
			int p;

			if (!wide_one(r, l))
				continue;
			if ((p = best_policy(r, w, l, &best)) < 0) {
				/* Every measurement of the cell failed: the target stays in view. */
				fprintf(f,
					"| %s | %s | — | — | not measured | — | — | — | — | — | — | — |\n",
					wl->name, vm_shape(&r->layouts[l], shape, sizeof(shape)));
				continue;
			}
			if (ipi) {
				target = "mux ÷ host ≥ 0.95";
				value = host > 0 && mux >= 0 ? mux / host : -1;
			} else if (barrier) {
				target = "best ÷ bound ≥ 0.9";
				value = bound > 0 ? best.median / bound : -1;
			} else {
				target = "best ≥ 0.9";
				value = best.median;
			}
			fprintf(f, "| %s | %s | %s |", wl->name,
				vm_shape(&r->layouts[l], shape, sizeof(shape)), target);
			figure(f, value);
			fprintf(f, " %s | %s | %.2f |", yes_no(value >= (ipi ? 0.95 : 0.9)),
				mx_policy_name((enum mx_policy)p), best.median);
			if (bound > 0)
				fprintf(f, " %.3f |", bound);
			else
				fprintf(f, " ? |");
			figure(f, mux);
			figure(f, cell_median(r, w, MX_ADAPTIVE, l));
			figure(f, host);
			figure(f, cell_median(r, w, MX_QEMU, l));
			fputc('\n', f);
			json_array_append_new(
				out, json_pack("{s:s, s:s, s:s, s:f, s:b, s:s, s:f, s:f, s:f, s:f}",
					       "workload", wl->name, "layout", r->layouts[l].label,
					       "target", target, "value", value, "met",
					       value >= (ipi ? 0.95 : 0.9), "best",
					       mx_policy_name((enum mx_policy)p), "efficiency",
					       best.median, "bound", bound, "mux", mux, "qemu",
					       cell_median(r, w, MX_QEMU, l)));
		}
	}
}

/* Two VMs of h vCPUs: gang on plain ticket locks, and how fast gang switches slices. */
static void targets_gang(FILE *f, const struct mx_report *r, json_t *summary)
{
	double lat[MX_MAX_WORKLOADS * MX_MAX_REPS];
	unsigned n = 0;
	int two = -1;

	for (unsigned l = 0; l < r->nr_layouts; l++)
		if (r->layouts[l].nr_vms == 2 && r->layouts[l].vcpus[0] == r->host_cpus &&
		    r->layouts[l].vcpus[1] == r->host_cpus)
			two = (int)l;
	if (two < 0)
		return;
	for (size_t w = 0; w < mx_nr_workloads; w++) {
		const struct series *s = &r->cell[w][MX_GANG][two];

		for (unsigned i = 0; i < s->n_switch_in && n < MX_MAX_WORKLOADS * MX_MAX_REPS; i++)
			lat[n++] = s->switch_in[i];
	}
	fprintf(f, "\n### Two VMs × %u vCPUs (%s)\n\n| target | figure | met |\n|---|---|---|\n",
		r->host_cpus, r->layouts[two].label);
	for (size_t w = 0; w < mx_nr_workloads; w++) {
		double gang = cell_median(r, w, MX_GANG, (unsigned)two);
		double qemu = cell_median(r, w, MX_QEMU, (unsigned)two);

		if (!r->o->workloads[w] || strcmp(mx_workloads[w].name, "ticket-plain") ||
		    !r->o->policies[MX_GANG])
			continue;
		if (gang < 0) {
			fprintf(f, "| `gang` ≥ 0.98 on ticket-plain | — | not measured |\n");
			continue;
		}
		fprintf(f, "| `gang` ≥ 0.98 on ticket-plain | %.2f (QEMU ", gang);
		if (qemu < 0)
			fprintf(f, "—");
		else
			fprintf(f, "%.2f", qemu);
		fprintf(f, ") | %s |\n", yes_no(gang >= 0.98));
		json_object_set_new(summary, "gang_ticket_plain", json_real(gang));
	}
	if (n) {
		double median = median_of(lat, n);

		fprintf(f,
			"| gate close → all of the next slice's vCPUs running ≤ 20 µs (p50 of "
			"each VM's switches, median over %u gang measurements) | %.1f µs | %s |\n",
			n, median, yes_no(median <= 20));
		json_object_set_new(summary, "gang_switch_in_us_p50", json_real(median));
	} else if (r->o->policies[MX_GANG]) {
		fprintf(f, "| gate close → all of the next slice's vCPUs running ≤ 20 µs | — | "
			   "not measured |\n");
	}
}

static void targets(FILE *f, const struct mx_report *r, json_t *summary)
{
	struct mx_stat sw;
	json_t *t = json_array();

	mx_stat_of(r->switch_ns, r->nr_switch, &sw);
	fprintf(f, "\n## Targets\n\n");
	if (sw.n)
		fprintf(f,
			"S, one vCPU switch under `mux` (a vCPU's doorbell call → the vCPU it hands "
			"its host CPU to running guest code; switchbench, 2 vCPUs on one host CPU): "
			"%.1f µs, median of %u repetitions (%.1f–%.1f).\n",
			sw.median / 1e3, sw.n, sw.min / 1e3, sw.max / 1e3);
	else
		fprintf(f, "S was not measured (or failed): no bounds.\n");
	json_object_set_new(summary, "switch_ns",
			    json_pack("{s:f, s:f, s:f, s:i}", "median", sw.median, "min", sw.min,
				      "max", sw.max, "n", (int)sw.n));
	targets_wide(f, r, t);
	json_object_set_new(summary, "targets_wide", t);
	targets_gang(f, r, summary);

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
