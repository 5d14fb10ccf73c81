/*
 * The lock library's internals (guest/locks/): the domain, the per-CPU records kickers read,
 * the MCS nodes, and the cheap inline pieces every pv lock path uses: publication to the
 * shared page, the sleep protocol's waiter states, and the kick.
 *
 * Sleep protocol (no lost wake-ups).  A waiter sets its state to LK_SLEEPING and counts
 * itself in the object's `sleepers`, a locked add that is also a full fence, and only then
 * re-reads the word it waits on; a releaser stores the word, fences, and only then reads
 * `sleepers` and the states.  Of two such fenced store-then-load sequences at least one sees
 * the other's store: either the waiter sees the new word and does not sleep, or the releaser
 * sees the sleeper and kicks it.  The sleep itself (LKS_CALL_WAIT, or the runtime's
 * rt_wait_while) returns at once if the word changed after the re-read, and under lockstep a
 * kick that arrives before the sleep is kept for it.  Every return is re-checked.
 *
 * Under lockstep a kicker first claims the sleeper (compare-and-swap LK_SLEEPING ->
 * LK_RUNNING), so that a waiter is kicked once however many CPUs see it asleep; lockstep
 * keeps a kick for the next WAIT, so a claim is never wasted.  The runtime fallback's wake-up
 * IPI is not kept, so there kickers do not claim and the runtime's own handshake
 * (rt_wait_while / rt_wake_cpu) closes the race.
 */
#ifndef LOCKSTEP_GUEST_LOCKS_INTERNAL_H
#define LOCKSTEP_GUEST_LOCKS_INTERNAL_H

#include "guest/locks.h"

#define LK_SPIN_PUBLISH_MASK 255 /* publish `spins` every 256 PAUSEs */
/* Under the multiplexer a waiter looks at the host's hints every 64 PAUSEs (~1.6 us here):
 * about one critical section of the benchmarks, so a lock that stayed free that long is not
 * being taken by a running CPU. */
#define LK_HINT_CHECK_MASK 63

/* A waiter's state as kickers see it. */
enum lk_waiter_state {
	LK_RUNNING = 0,	 /* not asleep (maybe spinning): nothing to kick */
	LK_SLEEPING = 1, /* in (or entering) a sleep on its object's word */
};

/* An MCS queue node, one cache line.  Queue links are encoded node numbers (mcs.c). */
struct lk_mcs_node {
	volatile uint32_t next;	      /* the successor's code; 0 until it links itself in */
	volatile uint32_t granted;    /* set by the predecessor: the lock is ours */
	volatile uint32_t state;      /* enum lk_waiter_state, waiting for `granted` */
	volatile uint32_t link_state; /* enum lk_waiter_state, the holder waiting for `next` */
} __attribute__((aligned(RT_CACHE_LINE)));

/*
 * One CPU's record.  The first line is written by its CPU and read by kickers; the MCS nodes
 * are written by the queue neighbours; the rest is private to the CPU.
 */
struct lk_cpu {
	const volatile void *wait_object; /* the ticket lock or barrier waited for */
	volatile uint32_t want;		  /* the ticket waited for (ticket locks) */
	volatile uint32_t state;	  /* enum lk_waiter_state */
	uint32_t index;			  /* rt_cpu_index() */
	uint32_t vcpu;			  /* lockstep's vCPU number: the APIC id */

	struct lk_mcs_node mcs[LK_MCS_DEPTH];

	uint32_t mcs_depth __attribute__((aligned(RT_CACHE_LINE)));
	volatile struct lks_vcpu_pub *pub; /* this CPU's slot in the shared page */
	struct lk_stats stats;
};

struct lk_domain {
	enum lk_backend backend;
	/* LKS_FEATURE_SCHED with the lockstep backend: the host's hints; else NULL */
	const volatile struct lks_sched_hints *hints;
	bool kick_by_call; /* LKS_CALL_KICK instead of the LKS_DB_KICK write */
	bool prewake;
	uint32_t wake_ahead;
	uint32_t spin_threshold;
	uint64_t wait_timeout_ns;
	volatile uint8_t *doorbell;
	char reason[96];

	struct lks_shared_page *shared;
	int64_t shared_status;
	struct lks_vcpu_pub spare_pub; /* for a CPU the shared page has no slot for */

	unsigned nr_cpus;
	struct lk_cpu *cpu[RT_MAX_CPUS];
};

static inline struct lk_cpu *lk_this_cpu(const struct lk_domain *domain)
{
	return domain->cpu[rt_cpu_index()];
}

/* ---- Publication: plain stores to this CPU's own line of the shared page --------------- */

static inline void lk_pub_wait_begin(struct lk_cpu *me, const volatile void *object, uint32_t state)
{
	volatile struct lks_vcpu_pub *pub = me->pub;

	pub->waiting = (uintptr_t)object;
	pub->wait_start_tsc = rt_rdtsc();
	pub->spins = 0;
	pub->state = state;
	pub->seq++;
}

static inline void lk_pub_state(struct lk_cpu *me, uint32_t state)
{
	me->pub->state = state;
	me->pub->seq++;
}

static inline void lk_pub_spins(struct lk_cpu *me, uint64_t spins)
{
	if (!(spins & LK_SPIN_PUBLISH_MASK)) {
		me->pub->spins = spins;
		me->pub->seq++;
	}
}

static inline void lk_pub_wait_end(struct lk_cpu *me)
{
	me->pub->waiting = 0;
	me->pub->state = LKS_STATE_NONE;
	me->pub->seq++;
}

/* `holding` before `waiting` is cleared: the CPU never looks free while it owns the lock. */
static inline void lk_pub_acquired(struct lk_cpu *me, const volatile void *lock)
{
	volatile struct lks_vcpu_pub *pub = me->pub;

	pub->holding = (uintptr_t)lock;
	pub->waiting = 0;
	pub->state = LKS_STATE_NONE;
	pub->hold_start_tsc = rt_rdtsc();
	pub->acquisitions++;
	pub->seq++;
	me->stats.acquisitions++;
}

/* Call after the store that released the lock. */
static inline void lk_pub_released(struct lk_cpu *me)
{
	me->pub->holding = 0;
	me->pub->seq++;
}

/* ---- The host's scheduling hints (LKS_FEATURE_SCHED) ------------------------------------- */

/* Whether the host has stopped vCPU `vcpu` (0 without hints). */
static inline bool lk_gated(const struct lk_domain *domain, uint32_t vcpu)
{
	return domain->hints && lks_hint_test(domain->hints->gated, vcpu);
}

void lk_switch(const struct lk_domain *domain, struct lk_cpu *me);
/* Gives this CPU's host CPU to `target`, which the host has stopped (LKS_CALL_YIELD_TO). */
void lk_yield_to(const struct lk_domain *domain, struct lk_cpu *me, const struct lk_cpu *target);

/* A release point: this CPU holds nothing and waits for nothing.  Switch if asked. */
static inline void lk_release_point(const struct lk_domain *domain, struct lk_cpu *me)
{
	if (domain->hints && lks_hint_test(domain->hints->switch_req, me->vcpu) &&
	    !me->pub->holding)
		lk_switch(domain, me);
}

/* ---- Sleeping and kicking (domain.c) ----------------------------------------------------- */

/* One sleep while *word == value; the caller re-checks whatever it waits for. */
void lk_sleep(const struct lk_domain *domain, struct lk_cpu *me, const volatile uint32_t *word,
	      uint32_t value);

/*
 * Wakes `target` if it sleeps (its `state` word says so) on `word`.  Returns whether a kick
 * went out.  Call after storing the new value of `word` and a full fence.
 */
bool lk_kick_sleeper(const struct lk_domain *domain, struct lk_cpu *me, struct lk_cpu *target,
		     volatile uint32_t *state, const volatile uint32_t *word);

/*
 * The waiter's side of the protocol around one sleep: mark this CPU asleep in *state and
 * count it in *sleepers (or, for objects without a count, fence), and sleep unless *word moved
 * from `value` meanwhile.  Publishes the sleep to the host (`pub_state` while spinning:
 * SPINNING, or BARRIER which stays as it is).  The caller re-checks afterwards.
 */
static inline void lk_sleep_on(const struct lk_domain *domain, struct lk_cpu *me,
			       volatile uint32_t *state, volatile uint32_t *sleepers,
			       const volatile uint32_t *word, uint32_t value, uint32_t pub_state)
{
	uint32_t asleep = pub_state == LKS_STATE_BARRIER ? LKS_STATE_BARRIER : LKS_STATE_SLEEPING;

	if (sleepers) {
		*state = LK_SLEEPING;
		__atomic_add_fetch(sleepers, 1, __ATOMIC_SEQ_CST);
	} else {
		__atomic_exchange_n(state, LK_SLEEPING, __ATOMIC_SEQ_CST);
	}
	if (*word == value) {
		lk_pub_state(me, asleep);
		lk_sleep(domain, me, word, value);
		lk_pub_state(me, pub_state);
	}
	*state = LK_RUNNING;
	if (sleepers)
		__atomic_sub_fetch(sleepers, 1, __ATOMIC_RELAXED);
}

#endif /* LOCKSTEP_GUEST_LOCKS_INTERNAL_H */
