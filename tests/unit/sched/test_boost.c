/*
 * Interrupt boost (sched/gang.c) on the simulated 2-CPU host (sim.c): two 2-vCPU gang VMs
 * alternate, a device in one of them raises an interrupt every millisecond, and the test
 * plays the scheduler thread's part: a raise while the VM is gated out is handed to the engine
 * when it would act on it (sched_vm_irq_watch), and wakes it at once.  Checked: a boost is
 * granted once the running slice ran its minimum, held before that, refused to a VM two
 * quanta ahead, never made with boost off; and every VM keeps its share over many slices.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/sched/sim.h"

#define MS 1000000ull
#define US 1000ull

/* What a device raising in VM `id` sees: how long each interrupt waited for the VM to run. */
struct device {
	int id;
	uint64_t period, next_raise;
	uint64_t waiting_since; /* the oldest raise not yet able to run; 0 = none */
	uint64_t *waits;
	unsigned nr_waits, cap;
};

static void device_init(struct device *d, int id, uint64_t period, uint64_t start)
{
	*d = (struct device){ .id = id, .period = period, .next_raise = start, .cap = 8192 };
	d->waits = calloc(d->cap, sizeof(*d->waits));
	assert_non_null(d->waits);
}

/* The raise: counted as waiting while the VM is gated out; the request, as lockstepd takes it. */
static void device_step(struct sim *sim, struct device *d)
{
	bool gated = sched_vm_gated_out(sim->s, d->id, sim->now);

	if (!gated && d->waiting_since) {
		if (d->nr_waits < d->cap)
			d->waits[d->nr_waits++] = sim->now - d->waiting_since;
		d->waiting_since = 0;
	}
	if (sim->now < d->next_raise)
		return;
	d->next_raise += d->period;
	if (!gated) {
		if (d->nr_waits < d->cap)
			d->waits[d->nr_waits++] = 0;
		return;
	}
	if (!d->waiting_since)
		d->waiting_since = sim->now;
	if (sched_vm_irq_watch(sim->s, d->id, sim->now)) {
		sched_vm_irq_pending(sim->s, d->id, sim->now);
		sim->next_tick = sim->now; /* the futex wake */
	}
}

static void run(struct sim *sim, struct device *dev, unsigned nr_dev, uint64_t ns)
{
	for (uint64_t end = sim->now + ns; sim->now < end;) {
		for (unsigned i = 0; i < nr_dev; i++)
			device_step(sim, &dev[i]);
		sim_run(sim, SIM_STEP_NS);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t percentile(struct device *d, unsigned p)
{
	if (!d->nr_waits)
		return 0;
	qsort(d->waits, d->nr_waits, sizeof(*d->waits), cmp_u64);
	return d->waits[(d->nr_waits - 1) * p / 100];
}

static void two_gang_vms(struct sim *sim, bool boost)
{
	char err[256];

	sim_init(sim, 2, 1);
	assert_int_equal(sim_add(sim, 0, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	assert_int_equal(sim_add(sim, 1, 2, VMDEF_SCHED_GANG, err, sizeof(err)), 0);
	sched_vm_set_irq_boost(sim->s, 1, boost);
	sim->watch_interleave = true;
	sim_run(sim, 20 * MS);
}

/* Steps until VM `id` has just been gated out (its slice ended at this step's tick). */
static void until_gated_out(struct sim *sim, int id)
{
	while (sched_vm_gated_out(sim->s, id, sim->now))
		sim_run(sim, SIM_STEP_NS);
	while (!sched_vm_gated_out(sim->s, id, sim->now))
		sim_run(sim, SIM_STEP_NS);
}

static void stats(struct sim *sim, int id, struct sched_vm_stats *st)
{
	assert_int_equal(sched_vm_stats(sim->s, id, st, NULL, 0), 0);
}

static void boost_granted_after_minimum_run(void **state)
{
	struct sched_vm_stats a, b;
	struct sim sim;

	(void)state;
	two_gang_vms(&sim, true);
	until_gated_out(&sim, 1);
	/* VM 0's slice just began: a raise now is held for its minimum run... */
	assert_true(sched_vm_irq_watch(sim.s, 1, sim.now));
	sched_vm_irq_pending(sim.s, 1, sim.now);
	sim.next_tick = sim.now;
	sim_run(&sim, SIM_STEP_NS);
	assert_true(sched_vm_gated_out(sim.s, 1, sim.now));
	assert_false(sched_vm_irq_watch(sim.s, 1, sim.now)); /* held: no need to look again */
	stats(&sim, 1, &b);
	assert_int_equal(b.irq_requests, 1);
	assert_int_equal(b.irq_boost_deferred, 1);
	assert_int_equal(b.irq_boosts, 0);
	/* ... and granted once it ran it, without another raise. */
	sim_run(&sim, SCHED_BOOST_MIN_RUN_NS);
	assert_false(sched_vm_gated_out(sim.s, 1, sim.now));
	assert_true(sched_vm_gated_out(sim.s, 0, sim.now));
	stats(&sim, 0, &a);
	stats(&sim, 1, &b);
	assert_int_equal(b.irq_boosts, 1);
	assert_int_equal(a.irq_boost_preempted, 1);
	/* The boosted slice lasts SCHED_BOOST_SLICE_NS; then VM 0's slice resumes. */
	sim_run(&sim, SCHED_BOOST_SLICE_NS + SIM_STEP_NS);
	assert_true(sched_vm_gated_out(sim.s, 1, sim.now));
	assert_false(sched_vm_gated_out(sim.s, 0, sim.now));
	stats(&sim, 1, &b);
	assert_in_range(b.irq_boost_ns, SCHED_BOOST_SLICE_NS, SCHED_BOOST_SLICE_NS + SIM_STEP_NS);
	assert_int_equal(b.irq_boost_debt_ns, b.irq_boost_ns);
	/* VM 0 gets the rest of its quantum: 5 ms of slice besides the boost. */
	until_gated_out(&sim, 0);
	stats(&sim, 1, &b);
	/* VM 1's regular slice paid the debt back (it is shorter by the boosted time). */
	assert_int_equal(b.irq_boost_debt_ns, 0);
	assert_int_equal(sim.interleave_ns, 0);
	assert_int_equal(sim.gate_overlaps, 0);
	sim_fini(&sim);
}

/*
 * A raise every millisecond for 2 s: with boost, no interrupt waits much longer than the
 * minimum run, and each VM's share of the run time stays within 5 % of half; without, waits
 * are up to a slice.  Neither interleaves VMs.
 */
static void boost_keeps_shares_fair(void **state)
{
	struct sched_vm_stats a, b;
	struct device dev;
	struct sim on, off;

	(void)state;
	two_gang_vms(&on, true);
	device_init(&dev, 1, 1 * MS, on.now + 37 * US);
	run(&on, &dev, 1, 2000 * MS);
	stats(&on, 0, &a);
	stats(&on, 1, &b);
	assert_true(b.irq_boosts > 500);
	assert_int_equal(b.irq_boost_refused, 0);
	assert_true(a.irq_boost_preempted == b.irq_boosts);
	assert_int_equal(a.irq_boosts, 0);
	assert_true(sim_share(&on, 1) > 0.45 && sim_share(&on, 1) < 0.55);
	/* The scheduler's own account agrees: gate-open time within two quanta and a slice. */
	assert_true(a.slice_ns + 2 * 5 * MS + SCHED_BOOST_SLICE_NS >= b.slice_ns &&
		    b.slice_ns + 2 * 5 * MS + SCHED_BOOST_SLICE_NS >= a.slice_ns);
	assert_true(percentile(&dev, 99) <= SCHED_BOOST_MIN_RUN_NS + 2 * SIM_STEP_NS);
	assert_int_equal(on.interleave_ns, 0);
	assert_int_equal(on.gate_overlaps, 0);
	free(dev.waits);
	sim_fini(&on);

	two_gang_vms(&off, false);
	device_init(&dev, 1, 1 * MS, off.now + 37 * US);
	run(&off, &dev, 1, 2000 * MS);
	stats(&off, 1, &b);
	assert_int_equal(b.irq_boosts + b.irq_requests + b.irq_boost_deferred, 0);
	assert_true(sim_share(&off, 1) > 0.45 && sim_share(&off, 1) < 0.55);
	/* A quarter of the raises land in the other VM's slice's first half: p99 ~ a slice. */
	assert_true(percentile(&dev, 99) >= 4 * MS);
	free(dev.waits);
	sim_fini(&off);
}

/* Boost is only on while the VM's steering is: turned off live, nothing more is granted. */
static void no_boost_with_steering_off(void **state)
{
	struct sched_vm_stats b;
	struct device dev;
	struct sim sim;

	(void)state;
	two_gang_vms(&sim, true);
	device_init(&dev, 1, 1 * MS, sim.now);
	run(&sim, &dev, 1, 100 * MS);
	stats(&sim, 1, &b);
	assert_true(b.irq_boosts > 0);
	sched_vm_set_irq_boost(sim.s, 1, false);
	assert_false(sched_vm_irq_watch(sim.s, 1, sim.now));
	{
		uint64_t before = b.irq_boosts;

		run(&sim, &dev, 1, 200 * MS);
		stats(&sim, 1, &b);
		assert_int_equal(b.irq_boosts, before);
		assert_false(b.irq_boost);
	}
	free(dev.waits);
	sim_fini(&sim);
}

/*
 * A VM with a short quantum next to one with a long one: it boosts until it is two
 * quanta ahead, then it is refused and waits for its turn, so its share stays near what its
 * quantum gives it (1/21) however often its device raises.
 */
static void boost_refused_two_quanta_ahead(void **state)
{
	struct sched_vm_stats b;
	struct device dev;
	struct sim sim;
	char err[256];

	(void)state;
	two_gang_vms(&sim, true);
	assert_int_equal(
		sched_vm_set_policy(sim.s, 0, VMDEF_SCHED_GANG, 20 * MS, 0, err, sizeof(err)), 0);
	assert_int_equal(
		sched_vm_set_policy(sim.s, 1, VMDEF_SCHED_GANG, 1 * MS, 0, err, sizeof(err)), 0);
	device_init(&dev, 1, 200 * US, sim.now);
	run(&sim, &dev, 1, 2000 * MS);
	stats(&sim, 1, &b);
	assert_true(b.irq_boosts > 0);
	assert_true(b.irq_boost_refused > 0);
	assert_true(b.irq_boost_paid_slices > 0);
	assert_true(sim_share(&sim, 1) < 1.0 / 21 + 0.03);
	assert_int_equal(sim.interleave_ns, 0);
	free(dev.waits);
	sim_fini(&sim);
}

/* Two interrupt-heavy VMs: boosts no more often than the minimum run allows, equal shares,
 * and both wait little (one boosts into the other's slices, whose own turn has shrunk to
 * the minimum run by its debt). */
static void two_boosting_vms_share_evenly(void **state)
{
	struct sched_vm_stats a, b;
	struct device dev[2];
	struct sim sim;

	(void)state;
	two_gang_vms(&sim, true);
	sched_vm_set_irq_boost(sim.s, 0, true);
	device_init(&dev[0], 0, 300 * US, sim.now);
	device_init(&dev[1], 1, 300 * US, sim.now + 150 * US);
	run(&sim, dev, 2, 2000 * MS);
	stats(&sim, 0, &a);
	stats(&sim, 1, &b);
	assert_true(a.irq_boosts + b.irq_boosts > 0);
	/* A boost at most once per minimum run plus boosted slice. */
	assert_true(a.irq_boosts + b.irq_boosts <=
		    2000 * MS / (SCHED_BOOST_MIN_RUN_NS + SCHED_BOOST_SLICE_NS) + 1);
	assert_true(sim_share(&sim, 0) > 0.45 && sim_share(&sim, 0) < 0.55);
	/* Each waits at most for the other's minimum run or boosted slice. */
	assert_true(percentile(&dev[0], 99) <= SCHED_BOOST_MIN_RUN_NS + SCHED_BOOST_SLICE_NS);
	assert_true(percentile(&dev[1], 99) <= SCHED_BOOST_MIN_RUN_NS + SCHED_BOOST_SLICE_NS);
	assert_int_equal(sim.interleave_ns, 0);
	assert_int_equal(sim.gate_overlaps, 0);
	free(dev[0].waits);
	free(dev[1].waits);
	sim_fini(&sim);
}

/*
 * The scheduler thread wakes 3 ms late inside a boosted slice, so that slice lasts 3 ms: the
 * minimum run that follows the last boosted slice's length must still leave a moment to boost
 * in a 5 ms slice.  (Capped at half a quantum it left none, and boost_ran, renewed only by a
 * boost, kept it so: every later interrupt waited for the VM's own slice.)
 */
static void boost_survives_a_stretched_boosted_slice(void **state)
{
	struct sched_vm_stats b;
	struct device dev;
	struct sim sim;
	uint64_t before;

	(void)state;
	two_gang_vms(&sim, true);
	device_init(&dev, 1, 1 * MS, sim.now + 37 * US);
	do {
		device_step(&sim, &dev);
		sim_run(&sim, SIM_STEP_NS);
		stats(&sim, 1, &b);
	} while (!b.irq_boosts);
	sim.next_tick = sim.now + 3 * MS; /* the late wake-up */
	run(&sim, &dev, 1, 3 * MS + SIM_STEP_NS);
	stats(&sim, 1, &b);
	before = b.irq_boosts;
	dev.nr_waits = 0;
	/* The next 20 ms: no interrupt waits for the VM's own slice. */
	run(&sim, &dev, 1, 20 * MS);
	assert_true(dev.nr_waits > 0);
	assert_true(percentile(&dev, 100) <= 4 * SCHED_BOOST_MIN_RUN_NS + SIM_STEP_NS);
	run(&sim, &dev, 1, 500 * MS);
	stats(&sim, 1, &b);
	assert_true(b.irq_boosts > before + 100);
	assert_true(percentile(&dev, 99) <= 4 * SCHED_BOOST_MIN_RUN_NS);
	free(dev.waits);
	sim_fini(&sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(boost_granted_after_minimum_run),
		cmocka_unit_test(boost_keeps_shares_fair),
		cmocka_unit_test(no_boost_with_steering_off),
		cmocka_unit_test(boost_refused_two_quanta_ahead),
		cmocka_unit_test(two_boosting_vms_share_evenly),
		cmocka_unit_test(boost_survives_a_stretched_boosted_slice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
