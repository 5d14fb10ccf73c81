/*
 * The scheduling engine's policies on a simulated 2-CPU host (sim.c): gang co-runs a VM's
 * vCPUs and never interleaves VMs, host does not; relaxed bounds sibling skew; adaptive
 * co-schedules only after preemption is reported and runs the preempted vCPU first; pinned
 * and gang place vCPUs on distinct cores; wide VMs are refused gang with the alternatives
 * named; VMs come and go and policies change while others run; nobody starves.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/sched/sim.h"

#define MS 1000000ull

static void gang_coruns_and_never_interleaves(void **state)
{
	struct sim sim;
	struct sched_vm_stats a, b;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add(&sim, 0, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	assert_int_equal(sim_add(&sim, 1, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	sim.watch_interleave = true;
	sim_run(&sim, 2000 * MS);
	assert_int_equal(sched_vm_stats(sim.s, 0, &a, NULL, 0), 0);
	assert_int_equal(sched_vm_stats(sim.s, 1, &b, NULL, 0), 0);
	/* The schedule's own accounting and the simulation's ground truth agree. */
	assert_true(sim_corun_fraction(&sim, 0) >= 0.9);
	assert_true(sim_corun_fraction(&sim, 1) >= 0.9);
	assert_true((double)sim.vm[0].corun_true / (double)sim.vm[0].run_true >= 0.9);
	assert_int_equal(sim.interleave_ns, 0);
	assert_int_equal(a.interleaved_slices + b.interleaved_slices, 0);
	assert_true(sim.gated_out > 400); /* one of the two at each of the ~500 ticks (4 ms) */
	assert_int_equal(sim.gate_overlaps, 0);
	/* 5 ms slices over 2 s, alternating: ~200 each, equal shares. */
	assert_in_range(a.slices, 180, 220);
	assert_in_range(b.slices, 180, 220);
	assert_true(sim_share(&sim, 0) > 0.45 && sim_share(&sim, 0) < 0.55);
	sim_fini(&sim);
}

static void host_policy_coruns_far_less(void **state)
{
	struct sim gang, host;
	char err[256];

	sim_init(&gang, 2, 1);
	sim_init(&host, 2, 1);
	for (int id = 0; id < 2; id++) {
		assert_int_equal(sim_add(&gang, id, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
		assert_int_equal(sim_add(&host, id, 2, VMDEF_SCHED_HOST, err, sizeof(err)), 0);
	}
	host.watch_interleave = true;
	sim_run(&gang, 1000 * MS);
	sim_run(&host, 1000 * MS);
	assert_true(sim_corun_fraction(&host, 0) < 0.75);
	assert_true(sim_corun_fraction(&gang, 0) > sim_corun_fraction(&host, 0) + 0.2);
	assert_true(host.interleave_ns > 0); /* the host does mix VMs on its CPUs */
	sim_fini(&gang);
	sim_fini(&host);
}

static void gang_refuses_wide_vm(void **state)
{
	struct sim sim;
	char err[256] = "";

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add(&sim, 0, 4, VMDEF_SCHED_GANG, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "4 vCPUs and 2 host CPUs"));
	assert_non_null(strstr(err, "\"relaxed\""));
	assert_non_null(strstr(err, "\"adaptive\""));
	/* The same VM may be relaxed, and switching it to gang is refused likewise. */
	assert_int_equal(sim_add(&sim, 0, 4, VMDEF_SCHED_RELAXED, err, sizeof(err)), 0);
	assert_int_equal(sched_vm_set_policy(sim.s, 0, VMDEF_SCHED_GANG, 0, 0, err, sizeof(err)),
			 -E2BIG);
	sim_fini(&sim);
}

static void relaxed_bounds_skew(void **state)
{
	struct sched_vcpu_stats v[4];
	struct sched_vm_stats st;
	struct sim relaxed, host;
	char err[256];

	/* One VM x 4 vCPUs on 2 CPUs, skew bound 1 ms, against the same VM left to the host. */
	sim_init(&relaxed, 2, 1);
	sim_init(&host, 2, 1);
	assert_int_equal(sim_add(&relaxed, 0, 4, VMDEF_SCHED_RELAXED, err, sizeof(err)), 0);
	assert_int_equal(
		sched_vm_set_policy(relaxed.s, 0, VMDEF_SCHED_RELAXED, 0, 1 * MS, err, sizeof(err)),
		0);
	assert_int_equal(sim_add(&host, 0, 4, VMDEF_SCHED_HOST, err, sizeof(err)), 0);
	sim_run(&relaxed, 2000 * MS);
	sim_run(&host, 2000 * MS);
	assert_int_equal(sched_vm_stats(relaxed.s, 0, &st, v, 4), 0);
	/* A lead past the bound is seen and stopped at the next 1 ms tick. */
	assert_true(st.max_skew_ns > 0);
	assert_true(st.max_skew_ns <= 1 * MS + 1 * MS);
	/* The threads' real run times agree, and the host alone lets them drift twice as far. */
	assert_true(relaxed.vm[0].max_spread <= 2 * MS);
	assert_true(host.vm[0].max_spread >= 4 * MS);
	for (int i = 0; i < 4; i++)
		assert_true(v[i].stopped_ns > 0); /* every vCPU was co-stopped at some point */
	sim_fini(&relaxed);
	sim_fini(&host);
}

static void adaptive_coschedules_after_preemption(void **state)
{
	struct sched_vm_stats st;
	struct sim sim;
	char err[256];

	/* A worker without the multiplexer: a wide VM is co-scheduled by relaxed rules (the
	 * multiplexer's own adaptive test is in test_mux.c). */
	sim_init(&sim, 2, 1);
	sim.no_mux = true;
	assert_int_equal(sim_add(&sim, 0, 4, VMDEF_SCHED_ADAPTIVE, err, sizeof(err)), 0);
	sim_run(&sim, 100 * MS);
	assert_int_equal(sched_vm_stats(sim.s, 0, &st, NULL, 0), 0);
	assert_false(st.coscheduling);
	for (int i = 0; i < 4; i++)
		assert_true(sim.vm[0].v[i].gate_open);
	/* An episode whose waiters hardly spin (pv locks sleep) changes nothing. */
	sched_vm_preempted(sim.s, 0, 3, 0.01, sim.now);
	sim_run(&sim, 10 * MS);
	assert_int_equal(sched_vm_stats(sim.s, 0, &st, NULL, 0), 0);
	assert_false(st.coscheduling);
	assert_int_equal(st.light_events, 1);
	assert_int_equal(st.boosts, 0);
	for (int i = 0; i < 4; i++)
		assert_true(sim.vm[0].v[i].gate_open);
	/* vCPU 3 holds a lock and was preempted: it runs first, its siblings wait. */
	sched_vm_preempted(sim.s, 0, 3, 0.5, sim.now);
	sim_run(&sim, 1 * MS + SIM_STEP_NS);
	assert_true(sim.vm[0].v[3].gate_open);
	for (int i = 0; i < 3; i++)
		assert_false(sim.vm[0].v[i].gate_open);
	assert_int_equal(sched_vm_stats(sim.s, 0, &st, NULL, 0), 0);
	assert_int_equal(st.boosts, 1);
	assert_true(st.coscheduling);
	/* Then relaxed co-scheduling until the hold time passes without another episode. */
	sim_run(&sim, 100 * MS);
	assert_int_equal(sched_vm_stats(sim.s, 0, &st, NULL, 0), 0);
	assert_true(st.coscheduling);
	sim_run(&sim, 600 * MS);
	assert_int_equal(sched_vm_stats(sim.s, 0, &st, NULL, 0), 0);
	assert_false(st.coscheduling);
	for (int i = 0; i < 4; i++)
		assert_true(sim.vm[0].v[i].gate_open);
	sim_fini(&sim);
}

static bool coscheduling(struct sim *sim, int id)
{
	struct sched_vm_stats st;

	assert_int_equal(sched_vm_stats(sim->s, id, &st, NULL, 0), 0);
	return st.coscheduling;
}

static void adaptive_hold_grows_while_it_relapses(void **state)
{
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add(&sim, 0, 2, VMDEF_SCHED_ADAPTIVE, err, sizeof(err)), 0);
	sim_run(&sim, 100 * MS);
	/* 500 ms, then back to host. */
	sched_vm_preempted(sim.s, 0, 1, 0.5, sim.now);
	sim_run(&sim, 450 * MS);
	assert_true(coscheduling(&sim, 0));
	sim_run(&sim, 100 * MS);
	assert_false(coscheduling(&sim, 0));
	/* Spinning again 50 ms after release: a relapse, held twice as long (1 s). */
	sched_vm_preempted(sim.s, 0, 1, 0.5, sim.now);
	sim_run(&sim, 950 * MS);
	assert_true(coscheduling(&sim, 0));
	sim_run(&sim, 100 * MS);
	assert_false(coscheduling(&sim, 0));
	/* And again: 2 s. */
	sched_vm_preempted(sim.s, 0, 1, 0.5, sim.now);
	sim_run(&sim, 1950 * MS);
	assert_true(coscheduling(&sim, 0));
	sim_run(&sim, 100 * MS);
	assert_false(coscheduling(&sim, 0));
	/* Calm for over a second after release: from 500 ms again. */
	sim_run(&sim, 1100 * MS);
	sched_vm_preempted(sim.s, 0, 1, 0.5, sim.now);
	sim_run(&sim, 450 * MS);
	assert_true(coscheduling(&sim, 0));
	sim_run(&sim, 100 * MS);
	assert_false(coscheduling(&sim, 0));
	sim_fini(&sim);
}

static void adaptive_narrow_vm_becomes_gang(void **state)
{
	struct sched_vm_stats st;
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add(&sim, 0, 2, VMDEF_SCHED_ADAPTIVE, err, sizeof(err)), 0);
	assert_int_equal(sim_add(&sim, 1, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	sim_run(&sim, 50 * MS);
	sched_vm_preempted(sim.s, 0, 1, 0.5, sim.now);
	sim.watch_interleave = true;
	sim_run(&sim, 300 * MS);
	assert_int_equal(sched_vm_stats(sim.s, 0, &st, NULL, 0), 0);
	assert_true(st.coscheduling);
	assert_true(st.slices > 20);	/* it takes gang slices with the gang VM */
	assert_int_equal(st.boosts, 0); /* co-running makes boosting pointless */
	assert_int_equal(sim.interleave_ns, 0);
	sim_fini(&sim);
}

static void gang_leak_is_run_time_behind_a_closed_gate(void **state)
{
	struct sched_vm_stats st0, st1;
	uint64_t truth;
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	/* 20 ms slices: gang VMs are observed every 4 ms, so most of a slice is checked. */
	assert_int_equal(sim_add(&sim, 0, 1, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	assert_int_equal(sim_add(&sim, 1, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	for (int id = 0; id < 2; id++)
		assert_int_equal(sched_vm_set_policy(sim.s, id, VMDEF_SCHED_GANG, 20 * MS, 0, err,
						     sizeof(err)),
				 0);
	/* VM 1's vCPUs run on through their closed gates: one of them on an idle CPU. */
	sim.vm[1].v[0].ignores_gate = true;
	sim.vm[1].v[1].ignores_gate = true;
	sim_run(&sim, 1000 * MS);
	assert_int_equal(sched_vm_stats(sim.s, 0, &st0, NULL, 0), 0);
	assert_int_equal(sched_vm_stats(sim.s, 1, &st1, NULL, 0), 0);
	truth = sim.vm[1].v[0].exec_closed + sim.vm[1].v[1].exec_closed;
	/* Gates that stop their vCPUs leak nothing. */
	assert_int_equal(st0.leak_ns, 0);
	/* What the others ran is seen, but for the first interval after each close. */
	assert_true(truth > 300 * MS);
	assert_true(st1.leak_ns <= truth);
	assert_true(st1.leak_ns >= truth / 2);
	sim_fini(&sim);
}

static void pinned_and_gang_use_distinct_cores(void **state)
{
	uint32_t place[2];
	struct sim sim;
	char err[256];

	/* 4 CPUs, 2 per core: CPUs 0,1 share core 0; 2,3 share core 1. */
	sim_init(&sim, 4, 2);
	assert_int_equal(sched_place(&sim.host, NULL, 2, place), 2);
	assert_int_equal(place[0], 0);
	assert_int_equal(place[1], 2);
	assert_int_equal(sim_add(&sim, 0, 2, VMDEF_SCHED_PINNED, err, sizeof(err)), 0);
	sim_run(&sim, 20 * MS);
	assert_int_equal(util_cpuset_count(&sim.vm[0].v[0].affinity), 1);
	assert_true(util_cpuset_has(&sim.vm[0].v[0].affinity, 0));
	assert_true(util_cpuset_has(&sim.vm[0].v[1].affinity, 2));
	/* Back to host: the threads may use every CPU again. */
	assert_int_equal(sched_vm_set_policy(sim.s, 0, VMDEF_SCHED_HOST, 0, 0, err, sizeof(err)),
			 0);
	sim_run(&sim, 20 * MS);
	assert_int_equal(util_cpuset_count(&sim.vm[0].v[0].affinity), 4);
	sim_fini(&sim);
}

static void policy_switch_while_running(void **state)
{
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add(&sim, 0, 2, VMDEF_SCHED_HOST, err, sizeof(err)), 0);
	assert_int_equal(sim_add(&sim, 1, 2, VMDEF_SCHED_HOST, err, sizeof(err)), 0);
	sim_run(&sim, 300 * MS);
	assert_true(sim_corun_fraction(&sim, 0) < 0.75);
	assert_int_equal(sched_vm_set_policy(sim.s, 0, VMDEF_SCHED_GANG, 0, 0, err, sizeof(err)),
			 0);
	assert_int_equal(sched_vm_set_policy(sim.s, 1, VMDEF_SCHED_GANG, 0, 0, err, sizeof(err)),
			 0);
	sim.watch_interleave = true;
	sim_run(&sim, 500 * MS);
	assert_int_equal(sim.interleave_ns, 0);
	assert_int_equal(sched_vm_set_policy(sim.s, 1, VMDEF_SCHED_HOST, 0, 0, err, sizeof(err)),
			 0);
	sim_run(&sim, 50 * MS);
	for (int i = 0; i < 2; i++)
		assert_true(sim.vm[1].v[i].gate_open);
	sim_fini(&sim);
}

static void vms_come_and_go_and_nobody_starves(void **state)
{
	struct sched_vm_stats st;
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add(&sim, 0, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	assert_int_equal(sim_add(&sim, 1, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	assert_int_equal(sim_add(&sim, 2, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	sim_run(&sim, 1500 * MS);
	for (int id = 0; id < 3; id++)
		assert_true(sim_share(&sim, id) > 0.30 && sim_share(&sim, id) < 0.37);
	/* One leaves in the middle of a slice: the others carry on and share alike. */
	sim_remove(&sim, 1);
	for (int id = 0; id < 3; id += 2)
		for (int i = 0; i < 2; i++)
			sim.vm[id].v[i].exec = 0;
	sim_run(&sim, 1000 * MS);
	assert_true(sim_share(&sim, 0) > 0.45 && sim_share(&sim, 0) < 0.55);
	/* An idle gang VM gives its slices back at once. */
	sim.vm[2].v[0].busy = sim.vm[2].v[1].busy = false;
	sim_run(&sim, 500 * MS);
	assert_int_equal(sched_vm_stats(sim.s, 0, &st, NULL, 0), 0);
	assert_true(sim_share(&sim, 0) > 0.60);
	sim_fini(&sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gang_coruns_and_never_interleaves),
		cmocka_unit_test(host_policy_coruns_far_less),
		cmocka_unit_test(gang_refuses_wide_vm),
		cmocka_unit_test(relaxed_bounds_skew),
		cmocka_unit_test(adaptive_coschedules_after_preemption),
		cmocka_unit_test(adaptive_hold_grows_while_it_relapses),
		cmocka_unit_test(adaptive_narrow_vm_becomes_gang),
		cmocka_unit_test(gang_leak_is_run_time_behind_a_closed_gate),
		cmocka_unit_test(pinned_and_gang_use_distinct_cores),
		cmocka_unit_test(policy_switch_while_running),
		cmocka_unit_test(vms_come_and_go_and_nobody_starves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
