/*
 * Sense-reversing barrier, plain and paravirtual.
 *
 * Each CPU flips its own sense on arrival and counts itself in `arrived`; the last to arrive
 * resets the count and sets the shared `sense` to the new value, which releases the others.
 * The count is reset before the sense flips, and no CPU can arrive for the next round before
 * it has seen the flip, so rounds never mix.  `sense` has a cache line of its own: waiters
 * read it while arrivals hammer `arrived`.
 *
 * Plain waiters spin on `sense`, which under overcommit means a round can end only once every
 * vCPU has had a host time slice since the previous one.  pv waiters spin up to the domain's
 * threshold, then sleep with WAIT(&sense, old sense) after marking themselves asleep in their
 * CPU record; the last arrival flips the sense, fences, and kicks every CPU whose record says
 * it sleeps at this barrier (`sleepers` spares the scan when nobody does).  Waiters publish
 * LKS_STATE_BARRIER with `waiting` = the barrier and `wait_value` = the sense they wait for
 * while they wait; published waiters (LK_PUBLISHED) do that too, but spin until released.
 *
 * Under the multiplexer, a pv waiter that arrives while the host has stopped a CPU that has
 * not arrived yet (a latecomer) gives that latecomer its CPU at once (YIELD_TO), and so does a
 * spinning one as soon as it sees one.  Passing the barrier is a release point.
 */
#include "guest/locks/internal.h"

#define SENSE_STRIDE (RT_CACHE_LINE / sizeof(uint32_t))

void lk_barrier_init(struct lk_barrier *barrier, struct lk_domain *domain, enum lk_mode mode,
		     unsigned parties)
{
	barrier->arrived = 0;
	barrier->parties = parties;
	barrier->mode = mode;
	barrier->domain = domain;
	barrier->local_sense = rt_alloc(domain->nr_cpus * RT_CACHE_LINE, RT_CACHE_LINE);
	barrier->sense = 0;
	barrier->sleepers = 0;
}

static void release_sleepers(struct lk_barrier *barrier)
{
	struct lk_domain *domain = barrier->domain;
	struct lk_cpu *me = lk_this_cpu(domain);

	for (unsigned i = 0; i < domain->nr_cpus; i++) {
		struct lk_cpu *cpu = domain->cpu[i];

		if (cpu != me && cpu->state == LK_SLEEPING && cpu->wait_object == barrier)
			lk_kick_sleeper(domain, me, cpu, &cpu->state, &barrier->sense);
	}
}

/*
 * A CPU the host has stopped that has not arrived for the round ending in `sense` (one
 * released from the previous round but not run since still shows this barrier, with the
 * previous round's sense) and is not asleep in a WAIT: the latecomer to give our CPU to.
 * NULL if there is none.
 */
static struct lk_cpu *stopped_latecomer(const struct lk_barrier *barrier, uint32_t sense)
{
	const struct lk_domain *domain = barrier->domain;

	for (unsigned i = 0; i < domain->nr_cpus; i++) {
		struct lk_cpu *cpu = domain->cpu[i];

		if (lk_gated(domain, cpu->vcpu) && cpu->state != LK_SLEEPING &&
		    !(cpu->wait_object == barrier && cpu->pub->wait_value == sense))
			return cpu;
	}
	return NULL;
}

/*
 * The wait of a visible (pv or published) waiter: published, and for pv ending in sleeps.
 * Under the multiplexer a stopped latecomer gets this CPU at once (YIELD_TO): this waiter
 * stays ready to run rather than asleep, so nobody has to wake it when the round ends, and
 * the round costs one switch per CPU.
 */
static void wait_visible(struct lk_barrier *barrier, uint32_t sense)
{
	const struct lk_domain *domain = barrier->domain;
	struct lk_cpu *me = lk_this_cpu(domain);
	bool hinted = barrier->mode == LK_PV && domain->hints;
	struct lk_cpu *late = NULL;
	uint64_t spins = 0;

	me->wait_object = barrier;
	/* The sense names the round: a waiter released but not yet running again still
	 * shows the barrier, and only the sense tells the host it is late for the next. */
	me->pub->wait_value = sense;
	lk_pub_wait_begin(me, barrier, LKS_STATE_BARRIER);
	while (barrier->sense != sense) {
		if (hinted && (late || (late = stopped_latecomer(barrier, sense)))) {
			lk_yield_to(domain, me, late);
			late = NULL;
			continue;
		}
		for (uint32_t i = 0; i < domain->spin_threshold && !late; i++) {
			if (barrier->sense == sense)
				goto released;
			rt_pause();
			lk_pub_spins(me, ++spins);
			if (hinted && !(spins & LK_HINT_CHECK_MASK))
				late = stopped_latecomer(barrier, sense);
		}
		if (barrier->mode != LK_PV || late || barrier->sense == sense)
			continue;
		lk_sleep_on(domain, me, &me->state, &barrier->sleepers, &barrier->sense, sense ^ 1,
			    LKS_STATE_BARRIER);
	}
released:
	me->wait_object = NULL;
	lk_pub_wait_end(me);
	if (barrier->mode == LK_PV)
		lk_release_point(domain, me);
}

void lk_barrier_wait(struct lk_barrier *barrier)
{
	volatile uint32_t *local = &barrier->local_sense[rt_cpu_index() * SENSE_STRIDE];
	uint32_t sense = *local ^ 1;

	*local = sense;
	if (__atomic_add_fetch(&barrier->arrived, 1, __ATOMIC_ACQ_REL) == barrier->parties) {
		barrier->arrived = 0;
		__atomic_store_n(&barrier->sense, sense, __ATOMIC_RELEASE);
		if (barrier->mode == LK_PV) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (barrier->sleepers)
				release_sleepers(barrier);
			lk_release_point(barrier->domain, lk_this_cpu(barrier->domain));
		}
		return;
	}
	if (barrier->mode != LK_PLAIN) {
		wait_visible(barrier, sense);
		return;
	}
	while (__atomic_load_n(&barrier->sense, __ATOMIC_ACQUIRE) != sense)
		rt_pause();
}
