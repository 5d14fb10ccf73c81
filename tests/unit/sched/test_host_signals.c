/*
 * What the engine learns from lockstepd's host check: whether PLE statistics can come (on a
 * software KVM such as PVM they cannot), so adaptive does not wait under host scheduling for
 * episodes that no source can report; and how many of a gang VM's vCPUs share a core with a
 * sibling vCPU (SMT), which sched.stats warns about.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/sched/sim.h"

#define MS 1000000ull

/* A simulated host whose check said `ple`. */
static void sim_host(struct sim *sim, unsigned cpus, unsigned smt, enum sched_ple ple)
{
	sim_init(sim, cpus, smt);
	sched_free(sim->s);
	sim->host.ple = ple;
	assert_int_equal(sched_new(&sim->host, &sim->s), 0);
}

static struct sched_vm_stats stats(struct sim *sim, int id)
{
	struct sched_vm_stats st;

	assert_int_equal(sched_vm_stats(sim->s, id, &st, NULL, 0), 0);
	return st;
}

static void adaptive_without_signals_coschedules(void **state)
{
	struct sched_vm_stats st;
	struct sim sim;
	char err[256];
	bool closed = false;

	sim_host(&sim, 2, 1, SCHED_PLE_ABSENT);
	sim.no_mux = true; /* a worker without the multiplexer: relaxed rules (mux below) */
	assert_int_equal(sim_add(&sim, 0, 4, VMDEF_SCHED_ADAPTIVE, err, sizeof(err)), 0);
	for (int step = 0; step < 100; step++) {
		sim_run(&sim, 1 * MS);
		for (int i = 0; i < 4; i++)
			closed |= !sim.vm[0].v[i].gate_open;
	}
	st = stats(&sim, 0);
	assert_int_equal(st.ple, SCHED_PLE_ABSENT);
	assert_true(st.no_signals);
	assert_true(st.coscheduling);
	assert_true(closed); /* 4 busy vCPUs on 2 CPUs: relaxed keeps 2 running at a time */
	/* An episode cannot come; if one did, it would change nothing. */
	sched_vm_preempted(sim.s, 0, 1, 0.5, sim.now);
	assert_int_equal(stats(&sim, 0).boosts, 0);
	/* Another policy and back: still co-scheduled throughout. */
	assert_int_equal(sched_vm_set_policy(sim.s, 0, VMDEF_SCHED_RELAXED, 0, 0, err, sizeof(err)),
			 0);
	assert_false(stats(&sim, 0).no_signals);
	assert_int_equal(
		sched_vm_set_policy(sim.s, 0, VMDEF_SCHED_ADAPTIVE, 0, 0, err, sizeof(err)), 0);
	sim_run(&sim, 10 * MS);
	st = stats(&sim, 0);
	assert_true(st.no_signals && st.coscheduling);
	sim_fini(&sim);

	/* With the multiplexer, a VM wider than its CPUs is multiplexed throughout. */
	sim_host(&sim, 2, 1, SCHED_PLE_ABSENT);
	assert_int_equal(sim_add(&sim, 0, 4, VMDEF_SCHED_ADAPTIVE, err, sizeof(err)), 0);
	sim_run(&sim, 10 * MS);
	st = stats(&sim, 0);
	assert_true(st.no_signals && st.coscheduling && st.multiplexed);
	assert_int_equal(st.mux_slots, 2);
	sim_fini(&sim);
}

static void adaptive_waits_where_signals_can_come(void **state)
{
	struct sched_vm_stats st;
	struct sim sim;
	char err[256];

	/* PLE expected: host scheduling until an episode. */
	sim_host(&sim, 2, 1, SCHED_PLE_EXPECTED);
	assert_int_equal(sim_add(&sim, 0, 4, VMDEF_SCHED_ADAPTIVE, err, sizeof(err)), 0);
	sim_run(&sim, 100 * MS);
	st = stats(&sim, 0);
	assert_int_equal(st.ple, SCHED_PLE_EXPECTED);
	assert_false(st.no_signals);
	assert_false(st.coscheduling);
	sim_fini(&sim);

	/* No PLE, but the pvlock channel: the same.  An episode co-schedules the VM: it is
	 * wider than its CPUs, so it is multiplexed (a worker without the multiplexer: relaxed
	 * rules, the preempted vCPU run first). */
	for (int no_mux = 0; no_mux <= 1; no_mux++) {
		sim_host(&sim, 2, 1, SCHED_PLE_ABSENT);
		sim.pvlock = true;
		sim.no_mux = no_mux;
		assert_int_equal(sim_add(&sim, 0, 4, VMDEF_SCHED_ADAPTIVE, err, sizeof(err)), 0);
		sim_run(&sim, 10 * MS);
		st = stats(&sim, 0);
		assert_false(st.no_signals || st.coscheduling);
		sched_vm_preempted(sim.s, 0, 1, 0.5, sim.now);
		sim_run(&sim, 2 * MS);
		st = stats(&sim, 0);
		assert_true(st.coscheduling);
		assert_int_equal(st.multiplexed, !no_mux);
		assert_int_equal(st.boosts, no_mux);
		sim_fini(&sim);
	}

	/* Before the host check has said anything, nothing is assumed absent. */
	sim_host(&sim, 2, 1, SCHED_PLE_UNKNOWN);
	assert_int_equal(sim_add(&sim, 0, 2, VMDEF_SCHED_ADAPTIVE, err, sizeof(err)), 0);
	assert_false(stats(&sim, 0).no_signals);
	sim_fini(&sim);
}

static void smt_siblings_in_gang_slices(void **state)
{
	struct util_cpuset pin[2] = { { { 0 } } };
	struct sched_vm_params p = { .nr_vcpus = 2, .policy = VMDEF_SCHED_ADAPTIVE, .pin = pin };
	struct sim sim;
	char err[256];

	/* 2 cores x 2 threads: CPUs 0 and 1 are siblings, 2 and 3 too. */
	sim_host(&sim, 4, 2, SCHED_PLE_EXPECTED);
	assert_int_equal(sim_add(&sim, 0, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	assert_int_equal(sim_add(&sim, 1, 4, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	assert_int_equal(sim_add(&sim, 2, 4, VMDEF_SCHED_HOST, err, sizeof(err)), 0);
	sim_run(&sim, 20 * MS);
	/* Placement takes distinct cores first: two vCPUs fit. */
	assert_int_equal(stats(&sim, 0).smt_shared_vcpus, 0);
	/* Four do not: every vCPU shares its core with a sibling vCPU. */
	assert_int_equal(stats(&sim, 1).smt_shared_vcpus, 4);
	/* Host scheduling places nothing. */
	assert_int_equal(stats(&sim, 2).smt_shared_vcpus, 0);
	/* Pins count as placement: adaptive that would gang on two siblings. */
	util_cpuset_add(&pin[0], 0);
	util_cpuset_add(&pin[1], 1);
	assert_int_equal(sched_vm_add(sim.s, 3, &p, sim.now, err, sizeof(err)), 0);
	assert_int_equal(stats(&sim, 3).smt_shared_vcpus, 2);
	sched_vm_set_pin(sim.s, 3, 1, &(struct util_cpuset){ .bits = { 1ull << 2 } });
	assert_int_equal(stats(&sim, 3).smt_shared_vcpus, 0);
	sim_fini(&sim);
}

static void names(void **state)
{
	assert_string_equal(sched_ple_name(SCHED_PLE_UNKNOWN), "unknown");
	assert_string_equal(sched_ple_name(SCHED_PLE_EXPECTED), "expected");
	assert_string_equal(sched_ple_name(SCHED_PLE_ABSENT), "absent");
	assert_string_equal(sched_ple_name((enum sched_ple)7), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(adaptive_without_signals_coschedules),
		cmocka_unit_test(adaptive_waits_where_signals_can_come),
		cmocka_unit_test(smt_siblings_in_gang_slices),
		cmocka_unit_test(names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
