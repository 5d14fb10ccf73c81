/*
 * Ticket spinlock, plain and paravirtual.
 *
 * lock: take a ticket (atomic increment of `tail`), wait until `head` says it is served.
 * unlock: `head` + 1.  FIFO, one cache line.
 *
 * Plain waiters spin on `head`.  Under overcommit that is the worst case lockstep exists for:
 * the lock goes, in ticket order, to waiters whose vCPUs may not be running, and everyone
 * behind them spins away their host time slices.
 *
 * pv waiters spin up to the domain's threshold, then sleep with WAIT(&head, observed head),
 * having written into their CPU's record (guest/locks/internal.h) which lock and which ticket
 * they wait for.  The unlocker stores the new `head`, fences, and, only if the lock's
 * `sleepers` count says anyone sleeps, scans the CPU records for the one sleeping for ticket
 * head + 1 and kicks it: only that CPU can proceed, so no other is disturbed.  Two options
 * give sleepers a head start on their wake-up, which under overcommit takes far longer than
 * a critical section: with prewake the CPU that takes ticket t kicks the sleeper holding
 * t + 1 (from inside its critical section); with wake_ahead = N the releaser also kicks the
 * sleepers holding the N tickets after the next one (outside it).  Published waiters
 * (LK_PUBLISHED) spin like plain ones and publish like pv ones.  The host sees the hand-off
 * through the shared page: `waiting` = this lock from before the CPU takes a ticket until it
 * holds the lock (SPINNING or SLEEPING), `holding` from then until after the release, and
 * `owner` in the lock names the holder.
 *
 * Under the multiplexer a pv waiter checks, every LK_HINT_CHECK_MASK + 1 PAUSEs, whether the
 * host stopped the holder, or whether the lock stayed free for that long (its next waiter
 * cannot run), and then sleeps at once: the host gives its CPU to the stopped holder, or to
 * the stopped waiter that queued first.  Unlock ends with a release point, and lock begins
 * with one (outside every lock, before joining the queue).
 */
#include "guest/locks/internal.h"

void lk_ticket_init(struct lk_ticket *lock, struct lk_domain *domain, enum lk_mode mode)
{
	lock->head = 0;
	lock->tail = 0;
	lock->sleepers = 0;
	lock->owner = 0;
	lock->mode = mode;
	lock->domain = domain;
}

/*
 * Kicks the CPUs sleeping for tickets first .. first + count - 1 (one CPU holds each ticket),
 * in one pass over the CPU records.  Returns how many kicks went out for tickets after
 * `first` + `ahead_from` - 1, i.e. ahead of their turn.
 */
static unsigned kick_ticket_holders(struct lk_ticket *lock, struct lk_cpu *me, uint32_t first,
				    uint32_t count, uint32_t ahead_from)
{
	struct lk_domain *domain = lock->domain;
	unsigned ahead = 0;

	for (unsigned i = 0; i < domain->nr_cpus; i++) {
		struct lk_cpu *cpu = domain->cpu[i];
		uint32_t place;

		/* state first: the waiter writes wait_object and want before it. */
		if (__atomic_load_n(&cpu->state, __ATOMIC_ACQUIRE) != LK_SLEEPING ||
		    cpu->wait_object != lock)
			continue;
		place = cpu->want - first;
		if (place < count && lk_kick_sleeper(domain, me, cpu, &cpu->state, &lock->head))
			ahead += place >= ahead_from;
	}
	return ahead;
}

/*
 * Whether a pv waiter should stop spinning now: the holder is stopped by the host, or the
 * lock has been free since the last look (`head` unchanged, no owner): its next waiter cannot
 * take it.
 */
static bool waiting_in_vain(const struct lk_ticket *lock, uint32_t *last_head)
{
	uint32_t owner = lock->owner, head = lock->head;
	bool free_since = !owner && head == *last_head;

	*last_head = head;
	return (owner && lk_gated(lock->domain, owner - 1)) || free_since;
}

/* The wait of a visible (pv or published) waiter, published since before it took its ticket;
 * for pv ending in sleeps. */
static void ticket_wait_visible(struct lk_ticket *lock, struct lk_cpu *me, uint32_t ticket)
{
	const struct lk_domain *domain = lock->domain;
	uint32_t last_head = ~lock->head;
	uint64_t spins = 0;

	me->wait_object = lock;
	me->want = ticket;
	me->stats.contended++;
	for (;;) {
		bool in_vain = false;

		for (uint32_t i = 0; i < domain->spin_threshold; i++) {
			if (__atomic_load_n(&lock->head, __ATOMIC_ACQUIRE) == ticket)
				goto served;
			rt_pause();
			lk_pub_spins(me, ++spins);
			if (lock->mode == LK_PV && domain->hints && !(spins & LK_HINT_CHECK_MASK) &&
			    (in_vain = waiting_in_vain(lock, &last_head)))
				break;
		}
		if (lock->mode != LK_PV)
			continue;
		uint32_t head = __atomic_load_n(&lock->head, __ATOMIC_ACQUIRE);

		if (head == ticket)
			break;
		me->stats.early_sleeps += in_vain;
		lk_sleep_on(domain, me, &me->state, &lock->sleepers, &lock->head, head,
			    LKS_STATE_SPINNING);
		if (__atomic_load_n(&lock->head, __ATOMIC_ACQUIRE) == ticket)
			break;
	}
served:
	me->wait_object = NULL;
}

void lk_ticket_lock(struct lk_ticket *lock)
{
	struct lk_cpu *me;
	uint32_t ticket;

	if (lock->mode == LK_PLAIN) {
		ticket = __atomic_fetch_add(&lock->tail, 1, __ATOMIC_ACQUIRE);
		while (__atomic_load_n(&lock->head, __ATOMIC_ACQUIRE) != ticket)
			rt_pause();
		return;
	}
	me = lk_this_cpu(lock->domain);
	/* Before joining the queue the CPU holds nothing: switching now, if asked, beats
	 * switching after the next critical section with a queue behind it. */
	if (lock->mode == LK_PV)
		lk_release_point(lock->domain, me);
	/* Queued from here on, as far as the host can tell. */
	lk_pub_wait_begin(me, lock, LKS_STATE_SPINNING);
	ticket = __atomic_fetch_add(&lock->tail, 1, __ATOMIC_ACQUIRE);
	if (__atomic_load_n(&lock->head, __ATOMIC_ACQUIRE) != ticket)
		ticket_wait_visible(lock, me, ticket);
	lk_pub_acquired(me, lock);
	lock->owner = me->vcpu + 1;
	if (lock->mode == LK_PV && lock->domain->prewake && lock->sleepers)
		me->stats.prewakes += kick_ticket_holders(lock, me, ticket + 1, 1, 0);
}

void lk_ticket_unlock(struct lk_ticket *lock)
{
	uint32_t next = lock->head + 1;
	struct lk_cpu *me;

	if (lock->mode == LK_PLAIN) {
		__atomic_store_n(&lock->head, next, __ATOMIC_RELEASE);
		return;
	}
	me = lk_this_cpu(lock->domain);
	lock->owner = 0;
	/* The store, then the fence, then `sleepers`: the releaser's half of the protocol. */
	__atomic_store_n(&lock->head, next, __ATOMIC_RELEASE);
	lk_pub_released(me);
	if (lock->mode != LK_PV)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (lock->sleepers)
		me->stats.prewakes +=
			kick_ticket_holders(lock, me, next, 1 + lock->domain->wake_ahead, 1);
	lk_release_point(lock->domain, me);
}
