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
 * head + 1 and kicks it: only that CPU can proceed, so no other is disturbed.  With prewake,
 * the CPU that takes ticket t also kicks the sleeper holding ticket t + 1, so that it is
 * awake and spinning when t is released.  The host sees the hand-off through the shared
 * page: `waiting` = this lock while waiting (SPINNING or SLEEPING), `holding` once taken.
 */
#include "guest/locks/internal.h"

void lk_ticket_init(struct lk_ticket *lock, struct lk_domain *domain, enum lk_mode mode)
{
	lock->head = 0;
	lock->tail = 0;
	lock->sleepers = 0;
	lock->mode = mode;
	lock->domain = domain;
}

/* Kicks the CPU sleeping for `ticket`, if there is one (there is at most one). */
static bool kick_ticket_holder(struct lk_ticket *lock, struct lk_cpu *me, uint32_t ticket)
{
	struct lk_domain *domain = lock->domain;

	for (unsigned i = 0; i < domain->nr_cpus; i++) {
		struct lk_cpu *cpu = domain->cpu[i];

		if (cpu->state == LK_SLEEPING && cpu->wait_object == lock && cpu->want == ticket)
			return lk_kick_sleeper(domain, me, cpu, &cpu->state, &lock->head);
	}
	return false;
}

static void ticket_wait_pv(struct lk_ticket *lock, struct lk_cpu *me, uint32_t ticket)
{
	const struct lk_domain *domain = lock->domain;
	uint64_t spins = 0;

	me->wait_object = lock;
	me->want = ticket;
	me->stats.contended++;
	lk_pub_wait_begin(me, lock, LKS_STATE_SPINNING);
	for (;;) {
		for (uint32_t i = 0; i < domain->spin_threshold; i++) {
			if (__atomic_load_n(&lock->head, __ATOMIC_ACQUIRE) == ticket)
				goto served;
			rt_pause();
			lk_pub_spins(me, ++spins);
		}
		uint32_t head = __atomic_load_n(&lock->head, __ATOMIC_ACQUIRE);

		if (head == ticket)
			break;
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
	uint32_t ticket = __atomic_fetch_add(&lock->tail, 1, __ATOMIC_ACQUIRE);
	struct lk_cpu *me;

	if (lock->mode == LK_PLAIN) {
		while (__atomic_load_n(&lock->head, __ATOMIC_ACQUIRE) != ticket)
			rt_pause();
		return;
	}
	me = lk_this_cpu(lock->domain);
	if (__atomic_load_n(&lock->head, __ATOMIC_ACQUIRE) != ticket)
		ticket_wait_pv(lock, me, ticket);
	lk_pub_acquired(me, lock);
	if (lock->domain->prewake && lock->sleepers && kick_ticket_holder(lock, me, ticket + 1))
		me->stats.prewakes++;
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
	lk_pub_released(me);
	/* The store, then the fence, then `sleepers`: the releaser's half of the protocol. */
	__atomic_store_n(&lock->head, next, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (lock->sleepers)
		kick_ticket_holder(lock, me, next);
}
