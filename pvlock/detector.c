/*
 * Lock-holder and lock-waiter preemption detection.
 *
 * Each sample says, per vCPU, whether it is running, preempted (runnable, waiting for a host
 * CPU) or idle, and what it published in the guest's shared page.  From that:
 *   LHP  a vCPU holds lock L, is preempted, and another vCPU spins for L;
 *   LWP  nobody holds L, a waiter of L is preempted and another waiter of L runs (with FIFO
 *        locks the free lock belongs to the preempted one: everyone behind it spins);
 *   barrier preemption is reported as LWP on the barrier's address: vCPUs spin at a barrier
 *        while a vCPU that has not arrived is preempted;
 *   PLE  (pvlock/ple.c) KVM's directed-yield statistics show a vCPU spinning;
 *   KVM  (pvlock/kvm.c) a Linux guest's pv calls (kicks, PV IPIs, yields), which KVM handles
 *        itself, happen around a vCPU that KVM reports preempted.
 * A condition that holds in consecutive samples is one episode: reported when it begins and
 * when it ends, with its duration and culprit.  The spin pressure, a decaying average of the
 * share of vCPUs spinning for preempted ones, tells a scheduler whether the episodes cost
 * enough CPU to be worth co-scheduling for; episodes begin after it takes in their sample.  Pure logic, no I/O: unit-tested with recorded
 * sample sequences.  One thread (the sampler's) calls in.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pvlock/pvlock_internal.h"

#define MAX_EPISODES 256

static const char *const event_names[] = { "lhp", "lwp", "ple", "kvm" };

const char *pvlock_event_name(enum pvlock_event_kind kind)
{
	return (unsigned)kind < PVLOCK_EVENT_KINDS ? event_names[kind] : "unknown";
}

int pvlock_detector_new(uint32_t nr_vcpus, pvlock_event_fn fn, void *opaque,
			struct pvlock_detector **out)
{
	struct pvlock_detector *det = calloc(1, sizeof(*det));

	if (!det)
		return -ENOMEM;
	det->nr_vcpus = nr_vcpus;
	det->fn = fn;
	det->opaque = opaque;
	det->ple_rate = PVLOCK_PLE_RATE_DEFAULT;
	det->vcpu = calloc(nr_vcpus ? nr_vcpus : 1, sizeof(*det->vcpu));
	det->episodes = calloc(MAX_EPISODES, sizeof(*det->episodes));
	if (!det->vcpu || !det->episodes) {
		pvlock_detector_free(det);
		return -ENOMEM;
	}
	*out = det;
	return 0;
}

void pvlock_detector_free(struct pvlock_detector *det)
{
	if (!det)
		return;
	free(det->vcpu);
	free(det->episodes);
	free(det);
}

void pvlock_detector_set_ple_rate(struct pvlock_detector *det, uint64_t attempts_per_s)
{
	det->ple_rate = attempts_per_s;
}

double pvlock_detector_pressure(const struct pvlock_detector *det)
{
	return det->pressure;
}

void pvlock_detector_vcpu(const struct pvlock_detector *det, uint32_t vcpu,
			  struct pvlock_vcpu_detect *out)
{
	if (vcpu < det->nr_vcpus)
		*out = det->vcpu[vcpu].stats;
	else
		memset(out, 0, sizeof(*out));
}

static struct pvlock_episode *find_episode(const struct pvlock_detector *det,
					   enum pvlock_event_kind kind, uint64_t lock,
					   uint32_t culprit)
{
	for (unsigned i = 0; i < det->nr_episodes; i++) {
		struct pvlock_episode *e = &det->episodes[i];

		if (e->kind == kind && e->lock == lock && e->culprit == culprit)
			return e;
	}
	return NULL;
}

bool pvlock_detector_active(const struct pvlock_detector *det, enum pvlock_event_kind kind,
			    uint64_t lock, uint32_t culprit)
{
	return find_episode(det, kind, lock, culprit) != NULL;
}

/* Marks a condition as holding in this sample; begins an episode if it is new. */
void pvlock_detector_observe(struct pvlock_detector *det, uint64_t now_ns,
			     enum pvlock_event_kind kind, uint64_t lock, uint32_t culprit,
			     uint32_t nr_waiters)
{
	struct pvlock_episode *e = find_episode(det, kind, lock, culprit);

	if (e) {
		e->seen = det->generation;
		e->nr_waiters = nr_waiters;
		return;
	}
	if (det->nr_episodes == MAX_EPISODES || culprit >= det->nr_vcpus)
		return; /* more simultaneous episodes than any sane guest has: drop, keep going */
	e = &det->episodes[det->nr_episodes++];
	*e = (struct pvlock_episode){ .kind = kind,
				      .lock = lock,
				      .culprit = culprit,
				      .nr_waiters = nr_waiters,
				      .start_ns = now_ns,
				      .seen = det->generation };
	det->vcpu[culprit].stats.events[kind]++;
}

/* Reports the episodes that began in this sample, now that the pressure includes it. */
static void announce_new(struct pvlock_detector *det)
{
	for (unsigned i = 0; i < det->nr_episodes; i++) {
		struct pvlock_episode *e = &det->episodes[i];
		struct pvlock_event ev;

		if (e->announced)
			continue;
		e->announced = true;
		ev = (struct pvlock_event){ .kind = e->kind,
					    .lock = e->lock,
					    .culprit = e->culprit,
					    .nr_waiters = e->nr_waiters,
					    .pressure = det->pressure };
		if (det->fn)
			det->fn(det->opaque, &ev);
	}
}

/*
 * Folds this sample's spinning vCPUs into the pressure: an exponential average with time
 * constant PVLOCK_PRESSURE_NS, weighted by the time the sample stands for.
 */
static void update_pressure(struct pvlock_detector *det, uint64_t now_ns)
{
	double share = det->nr_vcpus ? (double)det->spinning / det->nr_vcpus : 0;
	uint64_t dt;

	if (det->last_ns && now_ns > det->last_ns) {
		dt = now_ns - det->last_ns;
		if (dt > PVLOCK_PRESSURE_NS)
			dt = PVLOCK_PRESSURE_NS;
		det->pressure +=
			(share - det->pressure) * (double)dt / (double)(PVLOCK_PRESSURE_NS + dt);
	}
	det->last_ns = now_ns;
}

/* Ends the episodes whose condition did not hold in the sample just fed. */
static void end_stale(struct pvlock_detector *det, uint64_t now_ns)
{
	for (unsigned i = 0; i < det->nr_episodes;) {
		struct pvlock_episode *e = &det->episodes[i];
		struct pvlock_event ev;

		if (e->seen == det->generation) {
			i++;
			continue;
		}
		ev = (struct pvlock_event){ .kind = e->kind,
					    .ended = true,
					    .lock = e->lock,
					    .culprit = e->culprit,
					    .nr_waiters = e->nr_waiters,
					    .duration_ns = now_ns - e->start_ns,
					    .pressure = det->pressure };
		det->vcpu[e->culprit].stats.ns[e->kind] += ev.duration_ns;
		*e = det->episodes[--det->nr_episodes];
		if (det->fn)
			det->fn(det->opaque, &ev);
	}
}

static bool waits_for(const struct pvlock_sample *s, uint64_t lock)
{
	return s->pub.waiting == lock &&
	       (s->pub.state == LKS_STATE_SPINNING || s->pub.state == LKS_STATE_SLEEPING);
}

/* Lock episodes for the lock vCPU `first` waits for (only the first waiter of each lock
 * looks, so every lock is examined once per sample). */
static void examine_lock(struct pvlock_detector *det, uint64_t now_ns,
			 const struct pvlock_sample *s, uint32_t first)
{
	uint64_t lock = s[first].pub.waiting;
	uint32_t waiters = 0, running_waiters = 0, holder = UINT32_MAX, late = UINT32_MAX;

	for (uint32_t i = 0; i < det->nr_vcpus; i++) {
		if (i < first && waits_for(&s[i], lock))
			return; /* examined already */
		if (s[i].pub.holding == lock && holder == UINT32_MAX)
			holder = i;
		if (!waits_for(&s[i], lock))
			continue;
		waiters++;
		if (s[i].run == PVLOCK_RUN_RUNNING)
			running_waiters++;
		/* The preempted waiter that has waited longest is the one next in line. */
		if (s[i].run == PVLOCK_RUN_PREEMPTED &&
		    (late == UINT32_MAX || s[i].pub.wait_start_tsc < s[late].pub.wait_start_tsc))
			late = i;
	}
	/*
	 * Only episodes that burn CPU count: a waiter that runs (spins) while the one it waits
	 * for cannot.  Waiters asleep in a pv WAIT cost nothing, and co-scheduling them would
	 * only take CPUs from work that can run.
	 */
	if (holder != UINT32_MAX) {
		if (s[holder].run != PVLOCK_RUN_PREEMPTED || !running_waiters)
			return;
		pvlock_detector_observe(det, now_ns, PVLOCK_LHP, lock, holder, waiters);
	} else if (late != UINT32_MAX && running_waiters) {
		pvlock_detector_observe(det, now_ns, PVLOCK_LWP, lock, late, waiters);
	} else {
		return;
	}
	det->spinning += running_waiters;
}

static bool at_barrier(const struct pvlock_sample *s, uint64_t barrier)
{
	return s->pub.state == LKS_STATE_BARRIER && s->pub.waiting == barrier;
}

/* Whether the vCPU waits at `barrier` for `round` (the sense that ends its wait). */
static bool arrived(const struct pvlock_sample *s, uint64_t barrier, uint64_t round)
{
	return at_barrier(s, barrier) && s->pub.wait_value == round;
}

/*
 * Barrier episodes: vCPUs wait at `barrier` while one that has not arrived is preempted.
 * Unlike a lock, where the vCPUs that do not wait go on working, a barrier stops every one
 * of its parties until the latecomer arrives: the waiters count whether they spin or sleep
 * (a sleeper also pays a wake-up per round, which co-scheduling saves).
 */
static void examine_barrier(struct pvlock_detector *det, uint64_t now_ns,
			    const struct pvlock_sample *s, uint32_t first)
{
	uint64_t barrier = s[first].pub.waiting, round;
	uint32_t waiters = 0, newest = first;
	bool blocked = false;

	for (uint32_t i = 0; i < det->nr_vcpus; i++) {
		if (!at_barrier(&s[i], barrier))
			continue;
		if (i < first)
			return;
		if (s[i].pub.wait_start_tsc > s[newest].pub.wait_start_tsc)
			newest = i;
	}
	/*
	 * The newest arrival waits for the current round.  One still showing an older round
	 * (another `wait_value`) was released but has not run since: it is late for this one.
	 */
	round = s[newest].pub.wait_value;
	for (uint32_t i = 0; i < det->nr_vcpus; i++)
		waiters += arrived(&s[i], barrier, round);
	for (uint32_t i = 0; i < det->nr_vcpus; i++) {
		if (!arrived(&s[i], barrier, round) && s[i].run == PVLOCK_RUN_PREEMPTED) {
			pvlock_detector_observe(det, now_ns, PVLOCK_LWP, barrier, i, waiters);
			blocked = true;
		}
	}
	if (blocked)
		det->spinning += waiters;
}

void pvlock_detector_feed(struct pvlock_detector *det, uint64_t now_ns,
			  const struct pvlock_sample *samples)
{
	det->generation++;
	det->spinning = 0;
	for (uint32_t i = 0; i < det->nr_vcpus; i++) {
		const struct lks_vcpu_pub *pub = &samples[i].pub;

		if (!pub->waiting)
			continue;
		if (pub->state == LKS_STATE_SPINNING || pub->state == LKS_STATE_SLEEPING)
			examine_lock(det, now_ns, samples, i);
		else if (pub->state == LKS_STATE_BARRIER)
			examine_barrier(det, now_ns, samples, i);
	}
	pvlock_ple_feed(det, now_ns, samples);
	pvlock_kvm_feed(det, now_ns, samples);
	update_pressure(det, now_ns);
	announce_new(det);
	end_stale(det, now_ns);
}
