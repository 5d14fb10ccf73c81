/*
 * The multiplexer's rules on the simulated host (sim.c, sim_mux.c): a VM of 4 or 6 vCPUs on 2
 * host CPUs whose guest loops on one ticket lock, its gates driven by sched/mux_gate.c on a
 * real sched page as in lockstep-vm, its requests by the engine as in lockstepd.
 *
 *  - no gate is ever opened beyond the slots (host CPUs);
 *  - a vCPU that holds the lock or spins for it is never stopped before it reaches a release
 *    point, unless the grace period ran out (and then it is counted), whether or not the
 *    guest switches at release points;
 *  - nobody starves over many quanta: every vCPU runs its share, and the longest a ready vCPU
 *    waits is bounded;
 *  - a waiter whose holder was stopped hands its CPU to that holder (directed switch);
 *  - a slot lent while a vCPU looked halted is lent for that opening of its gate only, and
 *    the scheduler counts as running beyond the slots only what no lend accounts for;
 *  - adaptive multiplexes a wide VM on the first episode, even a light one, and lets go; and
 *    by itself when its pv waiters sleep while siblings queue for CPUs;
 *  - a policy switch away from mux gives the gates back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/sched/sim.h"

#define MS 1000000ull
#define SETTLE_MS 50 /* the VM starts with every gate open: the excess parks first */

static const struct sim_guest pv_guest = {
	.cs_steps = 1, .ncs_steps = 2, .spin_steps = 3, .pv = true, .hints = true
};

static void stats(struct sim *sim, int id, struct sched_vm_stats *st, struct sched_vcpu_stats *v,
		  uint32_t n)
{
	assert_int_equal(sched_vm_stats(sim->s, id, st, v, n), 0);
}

static uint64_t page_sum(const struct sim_vm *vm, size_t offset)
{
	const struct sched_mux *mux = sched_page_mux(vm->page);
	uint64_t sum = 0;

	for (uint32_t i = 0; i < vm->nr; i++)
		sum += *(const uint64_t *)((const char *)&mux->vcpu[i] + offset);
	return sum;
}

#define PAGE_SUM(vm, field) page_sum(vm, offsetof(struct sched_mux_vcpu, field))

static void settle(struct sim *sim, int id)
{
	sim_run(sim, SETTLE_MS * MS);
	sim->vm[id].open_max = 0;
	sim->vm[id].over_opens = 0;
}

static void never_more_open_gates_than_cpus(void **state)
{
	for (uint32_t n = 3; n <= 6; n++) {
		struct sched_vm_stats st;
		struct sim sim;
		char err[256];

		sim_init(&sim, 2, 1);
		assert_int_equal(
			sim_add_guest(&sim, 0, n, VMDEF_SCHED_MUX, &pv_guest, err, sizeof(err)), 0);
		settle(&sim, 0);
		sim_run(&sim, 2000 * MS);
		stats(&sim, 0, &st, NULL, 0);
		assert_true(st.multiplexed);
		assert_int_equal(st.mux_slots, 2);
		/* Ground truth, the worker's count and the scheduler's samples agree. */
		assert_int_equal(sim.vm[0].over_opens, 0);
		assert_true(sim.vm[0].open_max <= 2);
		assert_true(sched_page_mux(sim.vm[0].page)->open_max <= 2);
		assert_true(st.busy_open_max <= n); /* the start, before the excess parked */
		assert_int_equal(st.over_unlent, 0);
		assert_true(sim.vm[0].acquisitions > 1000);
		sim_fini(&sim);
	}
}

/* With or without the guest's help: held locks and queued waiters keep their CPU. */
static void holders_not_stopped_before_release_or_grace(void **state)
{
	static const struct sim_guest unhinted = {
		.cs_steps = 1, .ncs_steps = 2, .spin_steps = 3, .pv = false, .hints = false
	};
	const struct sim_guest *guests[] = { &pv_guest, &unhinted };

	for (int g = 0; g < 2; g++) {
		struct sched_vm_stats st;
		struct sim sim;
		char err[256];

		sim_init(&sim, 2, 1);
		assert_int_equal(
			sim_add_guest(&sim, 0, 4, VMDEF_SCHED_MUX, guests[g], err, sizeof(err)), 0);
		sim_run(&sim, 2000 * MS);
		stats(&sim, 0, &st, NULL, 0);
		assert_int_equal(sim.vm[0].gated_holding, 0);
		assert_int_equal(PAGE_SUM(&sim.vm[0], out_holding), 0);
		assert_true(st.mux_requests > 50); /* it rotated */
		if (g == 0) {
			/* Release points come every few steps: nobody needs a kick. */
			assert_int_equal(st.grace_overruns, 0);
			assert_true(
				sched_page_mux(sim.vm[0].page)->vcpu[0].outs[SCHED_OUT_RELEASE] >
				0);
		} else {
			/* Kicked and checked: stopped between critical sections, or forced. */
			assert_true(st.mux_checks > 0);
			assert_true(PAGE_SUM(&sim.vm[0], outs[SCHED_OUT_CHECK]) +
					    PAGE_SUM(&sim.vm[0], outs[SCHED_OUT_FORCE]) >
				    0);
			assert_int_equal(PAGE_SUM(&sim.vm[0], outs[SCHED_OUT_RELEASE]), 0);
			/* Forced stops are counted as grace overruns, holders among them too. */
			assert_int_equal(PAGE_SUM(&sim.vm[0], outs[SCHED_OUT_FORCE]) <=
						 st.grace_overruns,
					 true);
			assert_true(PAGE_SUM(&sim.vm[0], forced_holding) <=
				    PAGE_SUM(&sim.vm[0], outs[SCHED_OUT_FORCE]));
		}
		sim_fini(&sim);
	}
}

static void nobody_starves(void **state)
{
	for (uint32_t n = 3; n <= 6; n += 3) {
		struct sched_vcpu_stats v[SIM_MAX_VCPUS];
		struct sched_vm_stats st;
		uint64_t total = 0;
		struct sim sim;
		char err[256];

		sim_init(&sim, 2, 1);
		assert_int_equal(
			sim_add_guest(&sim, 0, n, VMDEF_SCHED_MUX, &pv_guest, err, sizeof(err)), 0);
		sim_run(&sim, 3000 * MS);
		stats(&sim, 0, &st, v, n);
		for (uint32_t i = 0; i < n; i++)
			total += v[i].run_ns;
		for (uint32_t i = 0; i < n; i++) {
			double share = (double)v[i].run_ns / (double)total;

			assert_true(share > 0.7 / n && share < 1.3 / n);
			assert_true(sim.vm[0].v[i].acquisitions > 0);
		}
		/* A ready vCPU waits for the others' quanta at most, plus the switch. */
		assert_true(st.ready_max_ns <= (n / 2 + 1) * 5 * MS + SCHED_MUX_GRACE_NS);
		sim_fini(&sim);
	}
}

/* A holder forced out by a long critical section: its waiters give it their CPUs. */
static void waiters_hand_their_cpu_to_the_holder(void **state)
{
	static const struct sim_guest long_cs = {
		.cs_steps = 80, .ncs_steps = 2, .spin_steps = 1000, .pv = true, .hints = true
	};
	struct sched_vm_stats st;
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add_guest(&sim, 0, 4, VMDEF_SCHED_MUX, &long_cs, err, sizeof(err)), 0);
	sim_run(&sim, 3000 * MS);
	stats(&sim, 0, &st, NULL, 0);
	/* 8 ms critical sections: some 375 in 3 s, if the lock never stalls. */
	assert_true(sim.vm[0].acquisitions > 300);
	assert_true(st.grace_overruns > 0);
	assert_true(PAGE_SUM(&sim.vm[0], forced_holding) > 0);
	/* Every sleeping waiter's CPU went to the holder or to a waiter ahead of it: when it
	 * fell asleep, or later, taken by the holder when it was ready to run again. */
	assert_int_equal(sim.vm[0].handoff_wrong, 0);
	assert_true(PAGE_SUM(&sim.vm[0], handoff_holder) > 0);
	assert_int_equal(PAGE_SUM(&sim.vm[0], handoff_astray), 0);
	assert_int_equal(sim.vm[0].gated_holding, 0);
	sim_fini(&sim);
}

/* Fixed lock activity for the gate-side tests: what each vCPU holds or waits for. */
static void fixed_activity(void *arg, uint32_t i, struct sched_lock_activity *out)
{
	*out = ((const struct sched_lock_activity *)arg)[i];
}

/*
 * A waiter that falls asleep gives its slot to the lock's stopped holder -- when it has a slot
 * to give: while the VM runs more vCPUs than slots (at its start every gate is open) its close
 * only brings the VM back to its slots; no gate opens and no hand-off went astray.
 */
static void a_sleeping_waiter_hands_its_slot_to_the_holder(void **state)
{
	struct sched_lock_activity act[4] = {
		[0] = { .flags = SCHED_LOCK_QUEUED, .lock = 1, .since = 10 },
		[3] = { .flags = SCHED_LOCK_HOLDING, .lock = 1 },
	};
	const struct sched_mux_locks locks = { .activity = fixed_activity, .arg = act };

	for (int over = 0; over <= 1; over++) {
		struct sched_page *page;
		struct sched_mux *mux;
		int fd;

		assert_int_equal(sched_page_create(4, &fd, &page), 0);
		mux = sched_page_mux(page);
		__atomic_store_n(&mux->slots, 2, __ATOMIC_SEQ_CST);
		for (uint32_t i = 0; i < 4; i++)
			sched_slot_set_state(&page->slot[i], SCHED_VCPU_RUNNING);
		/* vCPUs 0 and 1 run (and 2 too when over), 3 holds the lock and is parked. */
		if (!over)
			sched_gate_close(page, 2, 1);
		sched_gate_close(page, 3, 1);
		sched_slot_set_state(&page->slot[2], SCHED_VCPU_STOPPED);
		sched_slot_set_state(&page->slot[3], SCHED_VCPU_STOPPED);

		assert_int_equal(sched_mux_switch(page, 0, SCHED_OUT_WAIT, -1, &locks, 2),
				 over ? -1 : 3);
		assert_int_equal(page->slot[0].gate, SCHED_GATE_CLOSED);
		assert_int_equal(page->slot[3].gate, over ? SCHED_GATE_CLOSED : SCHED_GATE_OPEN);
		assert_int_equal(sched_mux_count_open(page), 2);
		assert_true(mux->open_max <= 2);
		assert_int_equal(mux->vcpu[0].handoff_holder, over ? 0 : 1);
		assert_int_equal(mux->vcpu[0].handoff_astray, 0);
		sched_page_unmap(page, page->nr_vcpus, SCHED_PAGE_VERSION);
		close(fd);
	}
}

/* Gates open that take a slot: all but those whose slot is lent behind this very opening. */
static uint32_t unlent_open(const struct sched_page *page)
{
	const struct sched_mux *mux = sched_page_mux(page);
	uint32_t n = 0;

	for (uint32_t i = 0; i < page->nr_vcpus; i++)
		n += page->slot[i].gate == SCHED_GATE_OPEN &&
		     !(mux->vcpu[i].idle && mux->vcpu[i].idle_open_ns == page->slot[i].open_ns);
	return n;
}

static void ask_out(struct sched_page *page, uint32_t i, uint32_t successor, uint64_t now)
{
	struct sched_mux_vcpu *mv = &sched_page_mux(page)->vcpu[i];

	mv->successor = successor;
	mv->request_ns = now;
	__atomic_store_n(&mv->request, SCHED_MUX_YIELD, __ATOMIC_SEQ_CST);
	sched_hint_switch(page, i, true);
}

/*
 * A slot is lent behind one opening of a gate.  The scheduler lends the slots of vCPUs it saw
 * halted (on a loaded host: threads that ran little and were found blocked, while they run
 * guest code); one of them switches out, and the multiplexer lets it in again before the
 * scheduler's next tick lowers its flag: it takes a slot like any other, and a lent vCPU that
 * switches out next has no slot to hand on.  Counted as lent still, the readmitted vCPU made
 * room for a third: three vCPUs ran on two slots until the scheduler asked the excess out.
 */
static void a_lent_slot_ends_with_its_gates_opening(void **state)
{
	const struct sched_lock_activity act[4] = { { 0 } };
	const struct sched_mux_locks locks = { .activity = fixed_activity, .arg = (void *)act };
	struct sched_page *page;
	struct sched_mux *mux;
	int fd;

	assert_int_equal(sched_page_create(4, &fd, &page), 0);
	mux = sched_page_mux(page);
	__atomic_store_n(&mux->slots, 2, __ATOMIC_SEQ_CST);
	/* vCPUs 0 and 1 are parked at their gates; 2 and 3 run, both seen halted: lent. */
	for (uint32_t i = 0; i < 4; i++) {
		sched_gate_close(page, i, 1);
		sched_slot_set_state(&page->slot[i],
				     i < 2 ? SCHED_VCPU_STOPPED : SCHED_VCPU_RUNNING);
	}
	for (uint32_t i = 2; i < 4; i++) {
		sched_gate_open(page, i, 10);
		mux->vcpu[i].idle_open_ns = 10;
		__atomic_store_n(&mux->vcpu[i].idle, 1, __ATOMIC_RELEASE);
	}
	assert_int_equal(sched_mux_count_open(page), 0);

	/* 3 switches out at a release point in favour of 1, and is let in again at its gate:
	 * the lent slots make the room for both. */
	ask_out(page, 3, 1 + 1, 20);
	assert_int_equal(sched_mux_switch(page, 3, SCHED_OUT_RELEASE, -1, &locks, 21), 1);
	sched_slot_set_state(&page->slot[3], SCHED_VCPU_STOPPED);
	assert_true(sched_mux_admit(page, 3, false, &locks, 22));
	assert_int_equal(page->slot[3].gate, SCHED_GATE_OPEN);
	assert_int_equal(sched_mux_count_open(page), 2); /* 1 and 3; 2 is still lent */
	assert_int_equal(unlent_open(page), 2);

	/* 2, lent, switches out: no slot to hand to 0, which stays parked. */
	ask_out(page, 2, 0, 23);
	assert_int_equal(sched_mux_switch(page, 2, SCHED_OUT_RELEASE, -1, &locks, 24), -1);
	assert_int_equal(page->slot[0].gate, SCHED_GATE_CLOSED);
	assert_false(sched_mux_admit(page, 0, false, &locks, 25));
	assert_int_equal(page->slot[0].gate, SCHED_GATE_CLOSED);
	assert_int_equal(unlent_open(page), 2);
	assert_true(mux->open_max <= 2);
	sched_page_unmap(page, page->nr_vcpus, SCHED_PAGE_VERSION);
	close(fd);
}

/* Observations made by hand for the engine alone, and the decisions it hands back. */
struct by_hand {
	struct sched_obs obs[4];
	struct sched_decision d[4];
	uint64_t now;
};

static const struct sched_obs *by_hand_obs(void *arg, int id)
{
	struct by_hand *h = arg;

	(void)id;
	for (uint32_t i = 0; i < 4; i++) {
		h->obs[i].sample_ns = h->now;
		/* Running behind an open gate: a millisecond more of CPU; else halted or parked. */
		if (h->obs[i].gate_open && h->obs[i].run == SCHED_RUN_RUNNING)
			h->obs[i].exec_ns += MS;
		h->obs[i].state = h->obs[i].gate_open ? SCHED_VCPU_RUNNING : SCHED_VCPU_STOPPED;
	}
	return h->obs;
}

static void by_hand_decide(void *arg, int id, const struct sched_decision *d)
{
	(void)id;
	memcpy(((struct by_hand *)arg)->d, d, sizeof(((struct by_hand *)arg)->d));
}

static void by_hand_tick(struct sched *s, struct by_hand *h)
{
	h->now += MS;
	sched_tick(s, h->now, by_hand_obs, by_hand_decide, h);
}

static void by_hand_gate(struct by_hand *h, uint32_t i, bool open, enum sched_run run)
{
	if (open && !h->obs[i].gate_open)
		h->obs[i].open_ns = h->now + MS / 2; /* between two ticks */
	h->obs[i].gate_open = open;
	h->obs[i].run = run;
}

/*
 * The scheduler's count of vCPUs running beyond the slots (over_unlent), from its samples.  A
 * lent vCPU runs again at the tick the VM is back within its slots; the worker still goes by
 * the lend until this tick's decisions are written, and lets a parked vCPU in on the lent
 * slot: not counted.  Once the excess is gone, a third vCPU let in is.
 */
static void over_unlent_counts_only_what_no_lend_accounts_for(void **state)
{
	struct sched_host host = { .nr_cpus = 2 };
	struct sched_vm_params p = { .nr_vcpus = 4,
				     .policy = VMDEF_SCHED_MUX,
				     .quantum_ns = 5 * MS };
	struct by_hand h = { .now = 1000 * MS };
	struct sched_vm_stats st;
	struct sched *s;
	char err[256];

	for (uint32_t c = 0; c < 2; c++)
		host.cpu[c] = (struct sched_cpu){ .os_index = c, .core = c };
	assert_int_equal(sched_new(&host, &s), 0);
	assert_int_equal(sched_vm_add(s, 0, &p, h.now, err, sizeof(err)), 0);
	/* 0 and 1 run, 2 and 3 are parked; 1 halts. */
	by_hand_gate(&h, 0, true, SCHED_RUN_RUNNING);
	by_hand_gate(&h, 1, true, SCHED_RUN_IDLE);
	h.obs[0].open_ns = h.obs[1].open_ns = 0;
	for (int t = 0; t < 4; t++)
		by_hand_tick(s, &h);
	assert_true(h.d[1].idle); /* lent */
	assert_int_equal(h.d[1].idle_open_ns, 0);
	/* 2 takes the lent slot, runs, and parks again as 1 wakes up. */
	by_hand_gate(&h, 2, true, SCHED_RUN_RUNNING);
	by_hand_tick(s, &h);
	by_hand_gate(&h, 2, false, SCHED_RUN_IDLE);
	by_hand_gate(&h, 1, true, SCHED_RUN_RUNNING);
	by_hand_tick(s, &h);
	assert_false(h.d[1].idle);
	/* Before those decisions reached the page, 3 was let in on 1's lent slot. */
	by_hand_gate(&h, 3, true, SCHED_RUN_RUNNING);
	by_hand_tick(s, &h);
	assert_int_equal(sched_vm_stats(s, 0, &st, NULL, 0), 0);
	assert_int_equal(st.over_ticks, 1);
	assert_int_equal(st.over_unlent, 0);
	/* 3 goes (the excess asked out); then 2 is let in beyond the slots, lent none. */
	by_hand_gate(&h, 3, false, SCHED_RUN_IDLE);
	by_hand_tick(s, &h);
	by_hand_gate(&h, 2, true, SCHED_RUN_RUNNING);
	by_hand_tick(s, &h);
	by_hand_tick(s, &h);
	assert_int_equal(sched_vm_stats(s, 0, &st, NULL, 0), 0);
	assert_int_equal(st.over_ticks, 3);
	assert_int_equal(st.over_unlent, 2);
	sched_free(s);
}

/* At a barrier, arrivals give their CPUs to the latecomers (directed switches), and rounds
 * keep coming at nearly the rate the CPUs' work allows. */
static void barrier_arrivals_give_way_to_latecomers(void **state)
{
	static const struct sim_guest barrier = {
		.ncs_steps = 5, .spin_steps = 3, .pv = true, .hints = true, .barrier = true
	};

	for (uint32_t n = 3; n <= 6; n++) {
		struct sched_vm_stats st;
		/* Each round is n x 5 steps of work on 2 CPUs. */
		uint64_t ideal = 2000 * MS / (n * 5 * SIM_STEP_NS / 2);
		struct sim sim;
		char err[256];

		sim_init(&sim, 2, 1);
		assert_int_equal(
			sim_add_guest(&sim, 0, n, VMDEF_SCHED_MUX, &barrier, err, sizeof(err)), 0);
		settle(&sim, 0);
		sim_run(&sim, 2000 * MS);
		stats(&sim, 0, &st, NULL, 0);
		print_message("barrier %u vCPUs: %llu rounds of %llu\n", n,
			      (unsigned long long)sim.vm[0].rounds, (unsigned long long)ideal);
		assert_true(sim.vm[0].rounds > ideal * 3 / 4);
		assert_int_equal(sim.vm[0].handoffs_early, 0);
		assert_int_equal(sim.vm[0].over_opens, 0);
		assert_int_equal(st.over_unlent, 0);
		assert_true(PAGE_SUM(&sim.vm[0], outs[SCHED_OUT_DIRECTED]) > 0);
		sim_fini(&sim);
	}
}

static void adaptive_multiplexes_a_wide_vm(void **state)
{
	static const struct sim_guest spinning = { .cs_steps = 1, .ncs_steps = 2, .spin_steps = 3 };
	struct sched_vm_stats st;
	struct sim sim;
	char err[256];

	/* Waiters that spin: nothing adaptive sees by itself, host scheduling. */
	sim_init(&sim, 2, 1);
	assert_int_equal(
		sim_add_guest(&sim, 0, 4, VMDEF_SCHED_ADAPTIVE, &spinning, err, sizeof(err)), 0);
	sim_run(&sim, 100 * MS);
	stats(&sim, 0, &st, NULL, 0);
	assert_false(st.multiplexed);
	assert_int_equal(st.contention_events, 0);
	for (uint32_t i = 0; i < 4; i++)
		assert_true(sim_gate_open(&sim.vm[0], i));
	/* Any episode is enough, a light one too: the multiplexer idles no CPU. */
	sched_vm_preempted(sim.s, 0, 3, 0.01, sim.now);
	sim_run(&sim, 100 * MS);
	stats(&sim, 0, &st, NULL, 0);
	assert_true(st.multiplexed && st.coscheduling);
	assert_int_equal(st.boosts, 0);
	assert_int_equal(sim.vm[0].gated_holding, 0);
	assert_true(sched_page_mux(sim.vm[0].page)->slots == 2);
	/* The hold runs out: host scheduling, every gate open, the worker's gates given back. */
	sim_run(&sim, 600 * MS);
	stats(&sim, 0, &st, NULL, 0);
	assert_false(st.multiplexed);
	assert_int_equal(sched_page_mux(sim.vm[0].page)->slots, 0);
	for (uint32_t i = 0; i < 4; i++)
		assert_true(sim_gate_open(&sim.vm[0], i));
	sim_fini(&sim);

	/*
	 * pv waiters sleep, and siblings queue for the CPUs behind them (a convoy): no
	 * detector episode (nobody spins), adaptive sees it itself and multiplexes, again
	 * after each hold while it lasts.
	 */
	sim_init(&sim, 2, 1);
	assert_int_equal(
		sim_add_guest(&sim, 0, 4, VMDEF_SCHED_ADAPTIVE, &pv_guest, err, sizeof(err)), 0);
	sim_run(&sim, 100 * MS);
	stats(&sim, 0, &st, NULL, 0);
	assert_true(st.multiplexed && st.contention_events > 0);
	assert_int_equal(st.lhp_events, 0);
	sim_run(&sim, 2000 * MS);
	stats(&sim, 0, &st, NULL, 0);
	assert_true(st.mux_ticks > 1800);
	assert_int_equal(sim.vm[0].gated_holding, 0);
	assert_int_equal(sim.vm[0].over_opens, 0);
	assert_int_equal(st.over_unlent, 0);
	sim_fini(&sim);
}

/* From host scheduling, where waiters sleep with their gates open, to the multiplexer. */
static void takes_over_a_vm_whose_waiters_sleep(void **state)
{
	static const struct sim_guest long_cs = {
		.cs_steps = 80, .ncs_steps = 2, .spin_steps = 3, .pv = true, .hints = true
	};
	struct sched_vm_stats st;
	uint64_t before;
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add_guest(&sim, 0, 4, VMDEF_SCHED_HOST, &long_cs, err, sizeof(err)),
			 0);
	sim_run(&sim, 300 * MS);
	assert_int_equal(sched_vm_set_policy(sim.s, 0, VMDEF_SCHED_MUX, 0, 0, err, sizeof(err)), 0);
	sim_run(&sim, 100 * MS);
	before = sim.vm[0].acquisitions;
	sim_run(&sim, 2000 * MS);
	stats(&sim, 0, &st, NULL, 0);
	/* 8 ms critical sections: some 250 in 2 s when the lock never stalls. */
	assert_true(sim.vm[0].acquisitions - before > 150);
	assert_int_equal(sched_mux_count_open(sim.vm[0].page) <= 2, true);
	assert_int_equal(sim.vm[0].over_opens, 0);
	assert_int_equal(st.over_unlent, 0);
	assert_int_equal(sim.vm[0].gated_holding, 0);
	sim_fini(&sim);
}

/* lockstepd died mid-run: after SCHED_MUX_ORPHAN_NS without a decision the worker lets go. */
static void worker_lets_go_when_the_scheduler_is_gone(void **state)
{
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add_guest(&sim, 0, 4, VMDEF_SCHED_MUX, &pv_guest, err, sizeof(err)),
			 0);
	sim_run(&sim, 200 * MS);
	assert_int_equal(sched_mux_count_open(sim.vm[0].page), 2);
	assert_false(sched_mux_orphaned(sim.vm[0].page, sim.now + 10 * MS));
	assert_true(sched_mux_orphaned(sim.vm[0].page, sim.now + SCHED_MUX_ORPHAN_NS + MS));
	assert_int_equal(sched_page_mux(sim.vm[0].page)->slots, 0);
	for (uint32_t i = 0; i < 4; i++)
		assert_true(sim_gate_open(&sim.vm[0], i));
	/* The scheduler, back, multiplexes it again. */
	sim_run(&sim, 100 * MS);
	assert_int_equal(sched_page_mux(sim.vm[0].page)->slots, 2);
	sim_fini(&sim);
}

static void switching_away_gives_the_gates_back(void **state)
{
	struct sched_vm_stats st;
	struct sim sim;
	char err[256];

	sim_init(&sim, 2, 1);
	assert_int_equal(sim_add_guest(&sim, 0, 4, VMDEF_SCHED_MUX, &pv_guest, err, sizeof(err)),
			 0);
	sim_run(&sim, 200 * MS);
	assert_int_equal(sched_vm_set_policy(sim.s, 0, VMDEF_SCHED_RELAXED, 0, 0, err, sizeof(err)),
			 0);
	sim_run(&sim, 20 * MS);
	stats(&sim, 0, &st, NULL, 0);
	assert_false(st.multiplexed);
	assert_int_equal(sched_page_mux(sim.vm[0].page)->slots, 0);
	/* Relaxed keeps as many running as CPUs, by its own rules, through the page. */
	sim_run(&sim, 500 * MS);
	assert_true(sim.vm[0].acquisitions > 1000);
	/* A worker without the multiplexer cannot have it. */
	sim.no_mux = true;
	assert_int_equal(sim_add(&sim, 1, 4, VMDEF_SCHED_MUX, err, sizeof(err)), -EOPNOTSUPP);
	assert_non_null(strstr(err, "\"relaxed\""));
	sim_fini(&sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(never_more_open_gates_than_cpus),
		cmocka_unit_test(holders_not_stopped_before_release_or_grace),
		cmocka_unit_test(nobody_starves),
		cmocka_unit_test(waiters_hand_their_cpu_to_the_holder),
		cmocka_unit_test(a_sleeping_waiter_hands_its_slot_to_the_holder),
		cmocka_unit_test(a_lent_slot_ends_with_its_gates_opening),
		cmocka_unit_test(over_unlent_counts_only_what_no_lend_accounts_for),
		cmocka_unit_test(barrier_arrivals_give_way_to_latecomers),
		cmocka_unit_test(adaptive_multiplexes_a_wide_vm),
		cmocka_unit_test(takes_over_a_vm_whose_waiters_sleep),
		cmocka_unit_test(worker_lets_go_when_the_scheduler_is_gone),
		cmocka_unit_test(switching_away_gives_the_gates_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
