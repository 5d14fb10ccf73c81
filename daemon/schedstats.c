/*
 * The scheduler's accounting as JSON (sched.stats, lockstep sched stats): the engine's figures
 * of a VM, its page's per-gate and multiplexer counters, the gang switch latency, the
 * scheduler thread's own cost and its recent slices.  Called from the loop thread; each query
 * holds the scheduler's mutex while it copies.
 */
#include <stdlib.h>

#include "daemon/scheduler.h"
#include "daemon/scheduler_internal.h"

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static const char *const out_names[SCHED_OUT_NR] = {
	[SCHED_OUT_RELEASE] = "release",   [SCHED_OUT_CHECK] = "check", [SCHED_OUT_FORCE] = "force",
	[SCHED_OUT_DIRECTED] = "directed", [SCHED_OUT_WAIT] = "wait",
};

/* A vCPU's multiplexer figures: the worker's counters from the page and the engine's. */
static json_t *mux_vcpu_json(const struct sched_mux_vcpu *mv, const struct sched_vcpu_stats *vs,
			     double share)
{
	json_t *outs = json_object();

	for (int r = 0; r < SCHED_OUT_NR; r++)
		json_object_set_new(outs, out_names[r], json_integer((json_int_t)mv->outs[r]));
	return json_pack(
		"{s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "ins", (json_int_t)mv->ins,
		"outs", outs, "out_holding", (json_int_t)mv->out_holding, "forced_holding",
		(json_int_t)mv->forced_holding, "handoff_holder", (json_int_t)mv->handoff_holder,
		"handoff_astray", (json_int_t)mv->handoff_astray, "requests",
		(json_int_t)vs->requests, "ready_ms", ms(vs->ready_ns), "ready_max_us",
		us(vs->ready_max_ns), "run_share", share);
}

static json_t *vcpus_json(const struct sched_entry *e, const struct sched_vcpu_stats *vs)
{
	json_t *list = json_array();
	uint64_t total = 0;

	for (uint32_t i = 0; i < e->nr; i++)
		total += vs[i].run_ns;
	for (uint32_t i = 0; i < e->nr; i++) {
		const struct sched_slot *slot = &e->page->slot[i];
		uint64_t stops = slot->stops;
		json_t *v =
			json_pack("{s:i, s:f, s:f, s:f, s:I, s:f, s:I, s:f, s:f}", "vcpu", (int)i,
				  "run_ms", ms(vs[i].run_ns), "stopped_ms", ms(vs[i].stopped_ns),
				  "preempted_ms", ms(vs[i].wait_ns), "slices",
				  (json_int_t)vs[i].slices, "max_skew_us", us(vs[i].max_skew_ns),
				  "gate_stops", (json_int_t)stops, "gate_latency_us_mean",
				  stops ? (double)slot->gate_latency_ns / (double)stops / 1e3 : 0.0,
				  "gate_latency_us_max", us(slot->gate_latency_max_ns));

		if (e->mux)
			json_object_set_new(
				v, "mux",
				mux_vcpu_json(&e->mux->vcpu[i], &vs[i],
					      total ? (double)vs[i].run_ns / (double)total : 0.0));
		json_array_append_new(list, v);
	}
	return list;
}

/* What a person should know about how the VM is scheduled on this host. */
static json_t *warnings_json(const struct sched_vm_stats *st)
{
	json_t *list = json_array();

	if (st->smt_shared_vcpus)
		json_array_append_new(
			list,
			json_sprintf("%u of its vCPUs share cores with sibling vCPUs (SMT) in "
				     "its gang slices, where they run at unequal speed: give "
				     "it no more vCPUs than cores in sched.cpus",
				     st->smt_shared_vcpus));
	if (st->no_signals)
		json_array_append_new(
			list, json_string("adaptive gets no preemption signal here (pvlock "
					  "is off, and this host takes no pause-loop exits): "
					  "it co-schedules throughout"));
	return list;
}

/* The hand-off latency's percentile from the page's 2 us histogram (bucket midpoints). */
static double handoff_percentile(const struct sched_mux *mux, double p)
{
	uint64_t total = 0, seen = 0;

	for (int b = 0; b < SCHED_MUX_HIST; b++)
		total += mux->handoff_hist[b];
	for (int b = 0; b < SCHED_MUX_HIST && total; b++) {
		seen += mux->handoff_hist[b];
		if ((double)seen >= p / 100.0 * (double)total)
			return us(SCHED_MUX_HIST_NS * (uint64_t)b + SCHED_MUX_HIST_NS / 2);
	}
	return 0.0;
}

static json_t *mux_json(const struct sched_entry *e, const struct sched_vm_stats *st)
{
	uint64_t out_holding = 0, forced_holding = 0, holder = 0, astray = 0;
	const struct sched_mux *mux = e->mux;

	for (uint32_t i = 0; i < e->nr; i++) {
		out_holding += mux->vcpu[i].out_holding;
		forced_holding += mux->vcpu[i].forced_holding;
		holder += mux->vcpu[i].handoff_holder;
		astray += mux->vcpu[i].handoff_astray;
	}
	return json_pack(
		"{s:b, s:i, s:I, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, "
		"s:I, s:I, s:f, s:f, s:f}",
		"active", st->multiplexed, "slots", (int)st->mux_slots, "ticks",
		(json_int_t)st->mux_ticks, "open_max", (int)mux->open_max, "busy_open_max",
		(int)st->busy_open_max, "over_ticks", (json_int_t)st->over_ticks, "over_unlent",
		(json_int_t)st->over_unlent, "requests", (json_int_t)st->mux_requests, "checks",
		(json_int_t)st->mux_checks, "grace_overruns", (json_int_t)st->grace_overruns,
		"admits", (json_int_t)st->mux_admits, "ready_max_us", us(st->ready_max_ns),
		"out_holding", (json_int_t)out_holding, "forced_holding",
		(json_int_t)forced_holding, "handoff_holder", (json_int_t)holder, "handoff_astray",
		(json_int_t)astray, "handoffs", (json_int_t)mux->handoffs, "handoff_us_mean",
		mux->handoffs ? us(mux->handoff_ns) / (double)mux->handoffs : 0.0, "handoff_us_p50",
		handoff_percentile(mux, 50), "handoff_us_max", us(mux->handoff_max_ns));
}

/* Interrupt boost: requests, what became of them, the time moved, and raise -> gates open. */
static json_t *irq_boost_json(const struct sched_entry *e, const struct sched_vm_stats *st)
{
	const struct util_samples *w = e->irq_wait;

	return json_pack("{s:b, s:f, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, "
			 "s:{s:I, s:f, s:f, s:f}}",
			 "on", st->irq_boost, "slice_ms", ms(st->slice_ns), "requests",
			 (json_int_t)st->irq_requests, "granted", (json_int_t)st->irq_boosts,
			 "refused", (json_int_t)st->irq_boost_refused, "deferred",
			 (json_int_t)st->irq_boost_deferred, "boosted_ms", ms(st->irq_boost_ns),
			 "debt_ms", ms(st->irq_boost_debt_ns), "paid_slices",
			 (json_int_t)st->irq_boost_paid_slices, "preempted",
			 (json_int_t)st->irq_boost_preempted, "wait", "count", (json_int_t)w->count,
			 "us_p50", us(util_samples_percentile(w, 50)), "us_p99",
			 us(util_samples_percentile(w, 99)), "us_max", us(w->max));
}

json_t *scheduler_stats_json(struct scheduler *sch, int id)
{
	struct sched_vcpu_stats *vs;
	struct sched_vm_stats st;
	struct sched_entry *e;
	json_t *out = NULL;

	pthread_mutex_lock(&sch->lock);
	e = scheduler_find(sch, id);
	vs = e ? calloc(e->nr, sizeof(*vs)) : NULL;
	if (e && vs && sched_vm_stats(sch->engine, id, &st, vs, e->nr) == 0) {
		double run = (double)st.run_ns;
		const struct util_samples *sw = e->switch_in;

		out = json_pack(
			"{s:s, s:b, s:f, s:f, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:f, s:I, "
			"s:I, s:I, s:I, s:o}",
			"policy", vmdef_sched_policy_name(st.policy), "coscheduling",
			st.coscheduling, "watched_ms", ms(st.watched_ns), "run_ms", ms(st.run_ns),
			"corun_fraction", run > 0 ? (double)st.corun_ns / run : 0.0, "corun_ms",
			ms(st.corun_ns), "slices", (json_int_t)st.slices, "interleaved_slices",
			(json_int_t)st.interleaved_slices, "leak_ms", ms(st.leak_ns), "max_skew_us",
			us(st.max_skew_ns), "costart_skew_us_max", us(st.costart_skew_ns_max),
			"costart_skew_us_mean",
			st.costarts ? (double)st.costart_skew_ns_total / (double)st.costarts / 1e3 :
				      0.0,
			"preemption_events", (json_int_t)st.lhp_events, "light_preemption_events",
			(json_int_t)st.light_events, "boosts", (json_int_t)st.boosts, "kicks",
			(json_int_t)e->kicks, "vcpu", vcpus_json(e, vs));
		json_object_update_new(
			out,
			json_pack("{s:s, s:b, s:I, s:o}", "ple_statistics", sched_ple_name(st.ple),
				  "adaptive_without_signals", st.no_signals, "smt_shared_vcpus",
				  (json_int_t)st.smt_shared_vcpus, "warnings", warnings_json(&st)));
		json_object_set_new(out, "contention_events",
				    json_integer((json_int_t)st.contention_events));
		/* Gang: a slice's gates closed -> every vCPU of this VM, which came next, ran. */
		json_object_set_new(
			out, "switch_in",
			json_pack("{s:I, s:f, s:f, s:f}", "count", (json_int_t)sw->count, "us_p50",
				  us(util_samples_percentile(sw, 50)), "us_p90",
				  us(util_samples_percentile(sw, 90)), "us_max", us(sw->max)));
		json_object_set_new(out, "irq_boost", irq_boost_json(e, &st));
		if (e->mux)
			json_object_set_new(out, "mux", mux_json(e, &st));
	}
	pthread_mutex_unlock(&sch->lock);
	free(vs);
	return out;
}

json_t *scheduler_self_json(struct scheduler *sch)
{
	json_t *out;
	double elapsed;

	pthread_mutex_lock(&sch->lock);
	elapsed = (double)(util_now_ns() - sch->started_ns) / 1e9;
	out = json_pack(
		"{s:I, s:I, s:f, s:f, s:I, s:f, s:I, s:I, s:I}", "vms", (json_int_t)sch->nr_vms,
		"ticks", (json_int_t)sch->ticks, "cpu_ms", ms(sch->cpu_ns), "cpu_ms_per_s",
		elapsed > 0 ? ms(sch->cpu_ns) / elapsed : 0.0, "switches",
		(json_int_t)sch->switches, "switch_wait_us_mean",
		sch->switches ? (double)sch->switch_wait_ns / (double)sch->switches / 1e3 : 0.0,
		"switch_timeouts", (json_int_t)sch->switch_timeouts, "gate_checks",
		(json_int_t)sch->gate_checks, "gate_overlaps", (json_int_t)sch->gate_overlaps);
	pthread_mutex_unlock(&sch->lock);
	return out;
}

json_t *scheduler_slices_json(struct scheduler *sch, unsigned n)
{
	struct sched_slice_record rec[256];
	json_t *list = json_array();
	unsigned got;

	if (n > 256)
		n = 256;
	pthread_mutex_lock(&sch->lock);
	got = sched_recent_slices(sch->engine, rec, n);
	pthread_mutex_unlock(&sch->lock);
	for (unsigned i = 0; i < got; i++) {
		json_t *vms = json_array();

		for (int k = 0; k < 4; k++)
			if (rec[i].vm[k] >= 0)
				json_array_append_new(vms, json_integer(rec[i].vm[k]));
		json_array_append_new(list, json_pack("{s:I, s:I, s:o}", "start_ns",
						      (json_int_t)rec[i].start_ns, "end_ns",
						      (json_int_t)rec[i].end_ns, "vms", vms));
	}
	return list;
}
