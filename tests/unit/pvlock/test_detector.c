/*
 * The lock-holder-preemption detector on recorded sample sequences: lock-holder preemption,
 * lock-waiter preemption (a FIFO hand-off to a preempted waiter), barrier preemption, episodes
 * that begin, last and end with their durations, the pause-loop-exit path fed with
 * directed-yield statistics as KVM reports them on hosts with PLE (the machines lockstep is
 * developed on report none, so these recorded sequences are how that path is verified), and
 * the KVM pv path: a Linux guest's hypercalls and yields around a vCPU KVM reports preempted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pvlock/pvlock.h"

#define MS 1000000ull
#define LOCK_A 0x200000ull
#define LOCK_B 0x200040ull
#define BARRIER 0x300000ull

struct recorder {
	struct pvlock_event ev[64];
	unsigned n;
};

static void record(void *opaque, const struct pvlock_event *ev)
{
	struct recorder *r = opaque;

	if (r->n < 64)
		r->ev[r->n++] = *ev;
}

static void holds(struct pvlock_sample *s, uint64_t lock)
{
	s->pub.holding = lock;
}

static void waits(struct pvlock_sample *s, uint64_t lock, uint32_t state, uint64_t since)
{
	s->pub.waiting = lock;
	s->pub.state = state;
	s->pub.wait_start_tsc = since;
}

static void lock_holder_preemption(void **state)
{
	struct pvlock_sample s[4];
	struct pvlock_detector *det;
	struct pvlock_vcpu_detect d;
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(4, record, &r, &det), 0);
	memset(s, 0, sizeof(s));
	for (int i = 0; i < 4; i++)
		s[i].run = PVLOCK_RUN_RUNNING;
	/* vCPU 1 holds A and runs; 0 and 2 spin on A: contention, not preemption. */
	holds(&s[1], LOCK_A);
	waits(&s[0], LOCK_A, LKS_STATE_SPINNING, 10);
	waits(&s[2], LOCK_A, LKS_STATE_SPINNING, 20);
	pvlock_detector_feed(det, 1 * MS, s);
	assert_int_equal(r.n, 0);
	/* The host preempts vCPU 1: one episode begins, and lasts over three samples. */
	s[1].run = PVLOCK_RUN_PREEMPTED;
	for (int t = 2; t <= 4; t++)
		pvlock_detector_feed(det, (uint64_t)t * MS, s);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].kind, PVLOCK_LHP);
	assert_false(r.ev[0].ended);
	assert_int_equal(r.ev[0].culprit, 1);
	assert_int_equal(r.ev[0].lock, LOCK_A);
	assert_int_equal(r.ev[0].nr_waiters, 2);
	/* It runs again: the episode ends after 3 ms. */
	s[1].run = PVLOCK_RUN_RUNNING;
	pvlock_detector_feed(det, 5 * MS, s);
	assert_int_equal(r.n, 2);
	assert_true(r.ev[1].ended);
	assert_int_equal(r.ev[1].duration_ns, 3 * MS);
	pvlock_detector_vcpu(det, 1, &d);
	assert_int_equal(d.events[PVLOCK_LHP], 1);
	assert_int_equal(d.ns[PVLOCK_LHP], 3 * MS);
	pvlock_detector_vcpu(det, 0, &d);
	assert_int_equal(d.events[PVLOCK_LHP], 0);
	pvlock_detector_free(det);
}

static void preempted_holder_nobody_waits(void **state)
{
	struct pvlock_sample s[2];
	struct pvlock_detector *det;
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(2, record, &r, &det), 0);
	memset(s, 0, sizeof(s));
	holds(&s[0], LOCK_A);
	s[0].run = PVLOCK_RUN_PREEMPTED;
	s[1].run = PVLOCK_RUN_RUNNING;
	waits(&s[1], LOCK_B, LKS_STATE_SPINNING, 1); /* another lock, held by nobody */
	pvlock_detector_feed(det, 1 * MS, s);
	pvlock_detector_feed(det, 2 * MS, s);
	assert_int_equal(r.n, 0);
	pvlock_detector_free(det);
}

/* Waiters asleep in a pv WAIT burn nothing: a preempted holder then is no episode. */
static void sleeping_waiters_are_no_episode(void **state)
{
	struct pvlock_sample s[3];
	struct pvlock_detector *det;
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(3, record, &r, &det), 0);
	memset(s, 0, sizeof(s));
	holds(&s[0], LOCK_A);
	s[0].run = PVLOCK_RUN_PREEMPTED;
	waits(&s[1], LOCK_A, LKS_STATE_SLEEPING, 1);
	waits(&s[2], LOCK_A, LKS_STATE_SLEEPING, 2);
	s[1].run = s[2].run = PVLOCK_RUN_IDLE;
	pvlock_detector_feed(det, 1 * MS, s);
	assert_int_equal(r.n, 0);
	/* One waiter wakes and spins: now the holder's preemption costs a CPU. */
	memset(s, 0, sizeof(s));
	holds(&s[0], LOCK_A);
	s[0].run = PVLOCK_RUN_PREEMPTED;
	waits(&s[1], LOCK_A, LKS_STATE_SPINNING, 1);
	s[1].run = PVLOCK_RUN_RUNNING;
	pvlock_detector_feed(det, 3 * MS, s);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].kind, PVLOCK_LHP);
	pvlock_detector_free(det);
}

static void lock_waiter_preemption(void **state)
{
	struct pvlock_sample s[4];
	struct pvlock_detector *det;
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(4, record, &r, &det), 0);
	memset(s, 0, sizeof(s));
	/* A ticket lock was just released to vCPU 3 (waiting longest) which is preempted; 0 and 1
	 * spin behind it; nobody holds A. */
	waits(&s[3], LOCK_A, LKS_STATE_SPINNING, 100);
	waits(&s[2], LOCK_A, LKS_STATE_SLEEPING, 300); /* preempted too, but came later */
	waits(&s[0], LOCK_A, LKS_STATE_SPINNING, 200);
	waits(&s[1], LOCK_A, LKS_STATE_SPINNING, 400);
	s[0].run = s[1].run = PVLOCK_RUN_RUNNING;
	s[2].run = s[3].run = PVLOCK_RUN_PREEMPTED;
	pvlock_detector_feed(det, 1 * MS, s);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].kind, PVLOCK_LWP);
	assert_int_equal(r.ev[0].culprit, 3);
	assert_int_equal(r.ev[0].nr_waiters, 4);
	/* Everyone asleep in WAIT (pv lock): nobody burns a CPU, nothing to report anew. */
	s[0].run = s[1].run = PVLOCK_RUN_IDLE;
	pvlock_detector_feed(det, 2 * MS, s);
	assert_int_equal(r.n, 2);
	assert_true(r.ev[1].ended);
	assert_int_equal(r.ev[1].duration_ns, 1 * MS);
	pvlock_detector_free(det);
}

static void barrier_preemption(void **state)
{
	struct pvlock_sample s[4];
	struct pvlock_detector *det;
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(4, record, &r, &det), 0);
	memset(s, 0, sizeof(s));
	for (int i = 0; i < 3; i++) {
		waits(&s[i], BARRIER, LKS_STATE_BARRIER, 0);
		s[i].run = PVLOCK_RUN_RUNNING;
	}
	s[3].run = PVLOCK_RUN_PREEMPTED; /* the one the others wait for */
	pvlock_detector_feed(det, 1 * MS, s);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].kind, PVLOCK_LWP);
	assert_int_equal(r.ev[0].lock, BARRIER);
	assert_int_equal(r.ev[0].culprit, 3);
	assert_int_equal(r.ev[0].nr_waiters, 3);
	/*
	 * Arrivals that sleep wait just the same: nobody passes a barrier before the
	 * latecomer arrives.  Still the same episode.
	 */
	for (int i = 0; i < 3; i++)
		s[i].run = PVLOCK_RUN_IDLE;
	pvlock_detector_feed(det, 2 * MS, s);
	assert_int_equal(r.n, 1);
	assert_true(pvlock_detector_pressure(det) > 0);
	pvlock_detector_free(det);
}

/*
 * Sense-reversing barrier on 2 vCPUs at 2x overcommit: vCPU 1 was preempted while waiting, the
 * round ended, and vCPU 0 waits for the next round.  vCPU 1 still shows the barrier, but for
 * the old sense: it is the latecomer of the new round, not an arrival.
 */
static void released_waiter_is_late(void **state)
{
	struct pvlock_sample s[2];
	struct pvlock_detector *det;
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(2, record, &r, &det), 0);
	memset(s, 0, sizeof(s));
	waits(&s[1], BARRIER, LKS_STATE_BARRIER, 100);
	s[1].pub.wait_value = 1;
	s[1].run = PVLOCK_RUN_PREEMPTED;
	waits(&s[0], BARRIER, LKS_STATE_BARRIER, 200);
	s[0].pub.wait_value = 0;
	s[0].run = PVLOCK_RUN_RUNNING;
	pvlock_detector_feed(det, 1 * MS, s);
	pvlock_detector_feed(det, 2 * MS, s);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].kind, PVLOCK_LWP);
	assert_int_equal(r.ev[0].culprit, 1);
	assert_int_equal(r.ev[0].nr_waiters, 1);
	assert_true(pvlock_detector_pressure(det) > 0);
	/* Both wait for the same round: the preempted one has arrived, nobody is late. */
	s[0].pub.wait_value = 1;
	pvlock_detector_feed(det, 3 * MS, s);
	assert_int_equal(r.n, 2);
	assert_true(r.ev[1].ended);
	pvlock_detector_free(det);
}

/*
 * A recorded PLE sequence: per-vCPU directed_yield_attempted every 10 ms on a 4-vCPU VM with
 * a preempted ticket-lock holder.  vCPU 2 spins on the lock (PLE exits, ~5 yields per ms),
 * vCPU 0 idles, vCPU 1 does light work (40 per second, below the threshold).
 */
static const uint64_t ple_attempted[][4] = {
	{ 0, 0, 0, 0 },	  { 0, 0, 52, 0 },  { 0, 1, 101, 0 }, { 0, 1, 149, 0 },
	{ 0, 1, 200, 0 }, { 0, 2, 200, 0 }, { 0, 2, 200, 0 }, { 0, 2, 200, 0 },
};

static void ple_spinning_from_statistics(void **state)
{
	struct pvlock_sample s[4];
	struct pvlock_detector *det;
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(4, record, &r, &det), 0);
	for (unsigned t = 0; t < sizeof(ple_attempted) / sizeof(ple_attempted[0]); t++) {
		memset(s, 0, sizeof(s));
		for (int i = 0; i < 4; i++) {
			s[i].run = PVLOCK_RUN_RUNNING;
			s[i].has_ple = true;
			s[i].directed_yield_attempted = ple_attempted[t][i];
		}
		pvlock_detector_feed(det, (t + 1) * 10 * MS, s);
	}
	/* One episode for vCPU 2 while it exited ~5,000 times a second: from the 2nd sample
	 * (the first is the baseline) to the 6th, when its counter stopped moving. */
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ev[0].kind, PVLOCK_PLE);
	assert_int_equal(r.ev[0].culprit, 2);
	assert_true(r.ev[1].ended);
	assert_int_equal(r.ev[1].duration_ns, 40 * MS);
	pvlock_detector_free(det);
}

static void ple_threshold_and_hysteresis(void **state)
{
	static const uint64_t seq[] = { 0, 30, 60, 75, 90, 91, 91 }; /* per 10 ms */
	struct pvlock_detector *det;
	struct pvlock_sample s[1];
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(1, record, &r, &det), 0);
	pvlock_detector_set_ple_rate(det, 2500); /* 25 per 10 ms */
	for (unsigned t = 0; t < sizeof(seq) / sizeof(seq[0]); t++) {
		memset(s, 0, sizeof(s));
		s[0].has_ple = true;
		s[0].directed_yield_attempted = seq[t];
		pvlock_detector_feed(det, (t + 1) * 10 * MS, s);
	}
	/* 30/10ms begins it; 15/10ms (above half the rate) keeps it; 1/10ms ends it. */
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ev[1].duration_ns, 40 * MS);
	pvlock_detector_free(det);
}

/*
 * Feeds 1 ms samples for `ms` milliseconds of a 4-vCPU VM whose holder (vCPU 1) of A is
 * preempted for 3 of every `period` samples while vCPUs 0 and 2 wait for A: spinning on a CPU
 * for the first `spin` samples of each preemption, asleep after that.  Returns the highest
 * pressure any episode began with after the first 100 ms.
 */
static double pressure_of(unsigned period, unsigned spin, unsigned ms, double *end_pressure)
{
	struct pvlock_sample s[4];
	struct pvlock_detector *det;
	double max = 0;

	assert_int_equal(pvlock_detector_new(4, NULL, NULL, &det), 0);
	for (unsigned t = 1; t <= ms; t++) {
		unsigned phase = t % period;
		bool preempted = phase < 3, spinning = phase < spin;

		memset(s, 0, sizeof(s));
		for (int i = 0; i < 4; i++)
			s[i].run = PVLOCK_RUN_RUNNING;
		holds(&s[1], LOCK_A);
		s[1].run = preempted ? PVLOCK_RUN_PREEMPTED : PVLOCK_RUN_RUNNING;
		for (int i = 0; i <= 2; i += 2) {
			waits(&s[i], LOCK_A, spinning ? LKS_STATE_SPINNING : LKS_STATE_SLEEPING,
			      (uint64_t)i);
			if (!spinning)
				s[i].run = PVLOCK_RUN_IDLE;
		}
		pvlock_detector_feed(det, t * MS, s);
		/* A detector without a callback still computes pressure: read it as episodes begin. */
		if (t > 100 && preempted && phase == 0 && spinning &&
		    pvlock_detector_pressure(det) > max)
			max = pvlock_detector_pressure(det);
	}
	*end_pressure = pvlock_detector_pressure(det);
	pvlock_detector_free(det);
	return max;
}

static void spin_pressure(void **state)
{
	struct pvlock_sample s[4];
	struct pvlock_detector *det;
	struct recorder r = { .n = 0 };
	double end;

	/* Spinning through every preemption (3 of 6 ms), two of four vCPUs: 0.25 of the time. */
	assert_true(pressure_of(6, 3, 500, &end) > 0.2);
	assert_true(end > 0.2 && end < 0.3);
	/* Waiters that spin 1 ms of a preemption every 50 ms and then sleep (pv) cost ~1 %. */
	assert_true(pressure_of(50, 1, 500, &end) < 0.05);
	assert_true(end < 0.05);

	/* Episodes carry the pressure, and it decays once the spinning stops. */
	assert_int_equal(pvlock_detector_new(4, record, &r, &det), 0);
	memset(s, 0, sizeof(s));
	for (int i = 0; i < 4; i++)
		s[i].run = PVLOCK_RUN_RUNNING;
	holds(&s[1], LOCK_A);
	s[1].run = PVLOCK_RUN_PREEMPTED;
	waits(&s[0], LOCK_A, LKS_STATE_SPINNING, 10);
	for (unsigned t = 1; t <= 200; t++)
		pvlock_detector_feed(det, t * MS, s);
	assert_int_equal(r.n, 1);
	assert_true(r.ev[0].pressure < 0.01); /* it began in the second sample */
	assert_true(pvlock_detector_pressure(det) > 0.2);
	s[1].run = PVLOCK_RUN_RUNNING;
	pvlock_detector_feed(det, 201 * MS, s);
	assert_int_equal(r.n, 2);
	assert_true(r.ev[1].ended);
	assert_true(r.ev[1].pressure > 0.2);
	for (unsigned t = 202; t <= 700; t++)
		pvlock_detector_feed(det, t * MS, s);
	assert_true(pvlock_detector_pressure(det) < 0.01);
	pvlock_detector_free(det);
}

/*
 * A 4-vCPU Linux guest, per 2 ms sample: hypercalls (pv kicks, PV IPIs), directed yields (PV
 * sched yield) and preemption_reported per vCPU.  Samples 0-1: kicks between running vCPUs,
 * nobody preempted; 2-4: vCPU 3 preempted (its counter rises in 2, its thread waits for a
 * CPU in 3-4) while 0 and 1 kick and 1 yields to it; 5: all run, no calls.
 */
static const struct {
	uint64_t hypercalls[4], yields[4], preempted[4];
	enum pvlock_run_state run3;
} kvm_seq[] = {
	{ { 10, 10, 5, 5 }, { 0, 0, 0, 0 }, { 1, 1, 1, 1 }, PVLOCK_RUN_RUNNING },
	{ { 12, 11, 5, 5 }, { 0, 0, 0, 0 }, { 1, 1, 1, 1 }, PVLOCK_RUN_RUNNING },
	{ { 14, 13, 5, 5 }, { 0, 1, 0, 0 }, { 1, 1, 1, 2 }, PVLOCK_RUN_RUNNING },
	{ { 15, 15, 5, 5 }, { 0, 3, 0, 0 }, { 1, 1, 1, 2 }, PVLOCK_RUN_PREEMPTED },
	{ { 17, 16, 5, 5 }, { 0, 4, 0, 0 }, { 1, 1, 1, 2 }, PVLOCK_RUN_PREEMPTED },
	{ { 17, 16, 5, 5 }, { 0, 4, 0, 0 }, { 1, 1, 1, 2 }, PVLOCK_RUN_RUNNING },
};

static void kvm_pv_calls_around_a_preempted_vcpu(void **state)
{
	struct pvlock_sample s[4];
	struct pvlock_detector *det;
	struct pvlock_vcpu_detect d;
	struct recorder r = { .n = 0 };

	assert_int_equal(pvlock_detector_new(4, record, &r, &det), 0);
	for (unsigned t = 0; t < sizeof(kvm_seq) / sizeof(kvm_seq[0]); t++) {
		memset(s, 0, sizeof(s));
		for (int i = 0; i < 4; i++) {
			s[i].run = i == 3 ? kvm_seq[t].run3 : PVLOCK_RUN_RUNNING;
			s[i].has_kvm = true;
			s[i].hypercalls = kvm_seq[t].hypercalls[i];
			s[i].directed_yield_attempted = kvm_seq[t].yields[i];
			s[i].preemption_reported = kvm_seq[t].preempted[i];
		}
		pvlock_detector_feed(det, (t + 1) * 2 * MS, s);
		/* Without a preempted vCPU calls are no episode (samples 0 and 1). */
		if (t == 1)
			assert_int_equal(r.n, 0);
	}
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ev[0].kind, PVLOCK_KVM);
	assert_string_equal(pvlock_event_name(PVLOCK_KVM), "kvm");
	assert_int_equal(r.ev[0].culprit, 3);
	assert_int_equal(r.ev[0].nr_waiters, 2);
	assert_int_equal(r.ev[0].lock, 0);
	assert_true(r.ev[0].pressure > 0); /* vCPU 1 yielded while running: it counts */
	assert_true(r.ev[1].ended);
	assert_int_equal(r.ev[1].duration_ns, 6 * MS);
	pvlock_detector_vcpu(det, 3, &d);
	assert_int_equal(d.events[PVLOCK_KVM], 1);
	assert_int_equal(d.ns[PVLOCK_KVM], 6 * MS);
	pvlock_detector_vcpu(det, 1, &d);
	assert_int_equal(d.events[PVLOCK_KVM], 0);

	/* A vCPU without KVM statistics, or whose counters went back (a new run), is skipped. */
	memset(s, 0, sizeof(s));
	for (int i = 0; i < 4; i++)
		s[i].run = PVLOCK_RUN_PREEMPTED;
	s[0].has_kvm = true;
	s[0].hypercalls = 1;
	pvlock_detector_feed(det, 20 * MS, s);
	pvlock_detector_feed(det, 22 * MS, s);
	assert_int_equal(r.n, 2);
	pvlock_detector_free(det);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lock_holder_preemption),
		cmocka_unit_test(preempted_holder_nobody_waits),
		cmocka_unit_test(sleeping_waiters_are_no_episode),
		cmocka_unit_test(lock_waiter_preemption),
		cmocka_unit_test(barrier_preemption),
		cmocka_unit_test(released_waiter_is_late),
		cmocka_unit_test(ple_spinning_from_statistics),
		cmocka_unit_test(ple_threshold_and_hysteresis),
		cmocka_unit_test(spin_pressure),
		cmocka_unit_test(kvm_pv_calls_around_a_preempted_vcpu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
