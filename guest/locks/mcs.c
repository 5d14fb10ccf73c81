/*
 * MCS queued spinlock, plain and paravirtual.
 *
 * The lock word is the tail of a queue of nodes, one per waiting CPU; a newcomer swaps itself
 * in as the tail and links itself behind its predecessor, then waits on its own node's
 * `granted`, so each waiter spins on its own cache line.  The holder hands the lock to its
 * successor by setting the successor's `granted`; with no successor it swings the tail back
 * to 0, or, if a newcomer has swapped in but not linked yet, waits for the link.
 *
 * Nodes live in the domain's per-CPU records, LK_MCS_DEPTH per CPU (one per lock a CPU may
 * hold at once), so the tail and the links are small codes, (CPU index + 1) << 2 | depth,
 * and every word anyone waits on is a u32, as LKS_CALL_WAIT wants.
 *
 * pv: a waiter spins up to the domain's threshold on `granted`, then sleeps with
 * WAIT(&node->granted, 0); the releaser sets `granted`, fences and kicks the successor if its
 * node says it sleeps.  The rare wait of a releaser for its successor's link sleeps the same
 * way on `next`, and the successor kicks it after linking.  With prewake, a CPU that takes
 * the lock kicks its already-linked successor if it sleeps, so that successor is awake when
 * the lock comes; with wake_ahead = N the releaser also kicks the sleepers linked up to N
 * places behind its successor.  Published waiters (LK_PUBLISHED) spin like plain ones and
 * publish like pv ones.  Publication to the shared page: `waiting` = this lock from before the
 * CPU swaps itself into the queue until it holds the lock, `holding` from then until after it
 * handed the lock on (see guest/locks/internal.h); `owner` names the holder once it runs.
 *
 * Under the multiplexer a pv waiter sleeps at once when the host stopped the holder, or when
 * the lock has no running owner for LK_HINT_CHECK_MASK + 1 PAUSEs (it was granted to a
 * stopped successor): the host gives its CPU to that vCPU.  Unlock ends with a release point,
 * and taking an outermost lock begins with one.
 */
#include "guest/locks/internal.h"

#define DEPTH_BITS 2
_Static_assert(LK_MCS_DEPTH == 1 << DEPTH_BITS, "an MCS node code holds the depth in 2 bits");

static uint32_t node_code(const struct lk_cpu *cpu, unsigned depth)
{
	return (cpu->index + 1) << DEPTH_BITS | depth;
}

static struct lk_cpu *code_cpu(const struct lk_domain *domain, uint32_t code)
{
	return domain->cpu[(code >> DEPTH_BITS) - 1];
}

static struct lk_mcs_node *code_node(const struct lk_domain *domain, uint32_t code)
{
	return &code_cpu(domain, code)->mcs[code & (LK_MCS_DEPTH - 1)];
}

void lk_mcs_init(struct lk_mcs *lock, struct lk_domain *domain, enum lk_mode mode)
{
	lock->tail = 0;
	lock->owner = 0;
	lock->mode = mode;
	lock->domain = domain;
}

/* Whether a pv waiter should stop spinning: the holder is stopped, or nobody has owned the
 * lock since the last look (it is on its way to a successor that cannot run). */
static bool waiting_in_vain(const struct lk_mcs *lock, bool *ownerless)
{
	uint32_t owner = lock->owner;
	bool was = *ownerless;

	*ownerless = !owner;
	return (owner && lk_gated(lock->domain, owner - 1)) || (was && !owner);
}

/* The wait of a visible (pv or published) waiter, published since before it queued; for pv
 * ending in sleeps. */
static void wait_granted_visible(struct lk_mcs *lock, struct lk_cpu *me, struct lk_mcs_node *node)
{
	const struct lk_domain *domain = lock->domain;
	bool ownerless = false;
	uint64_t spins = 0;

	me->stats.contended++;
	for (;;) {
		bool in_vain = false;

		for (uint32_t i = 0; i < domain->spin_threshold; i++) {
			if (__atomic_load_n(&node->granted, __ATOMIC_ACQUIRE))
				return;
			rt_pause();
			lk_pub_spins(me, ++spins);
			if (lock->mode == LK_PV && domain->hints && !(spins & LK_HINT_CHECK_MASK) &&
			    (in_vain = waiting_in_vain(lock, &ownerless)))
				break;
		}
		if (lock->mode != LK_PV)
			continue;
		me->stats.early_sleeps += in_vain;
		lk_sleep_on(domain, me, &node->state, NULL, &node->granted, 0, LKS_STATE_SPINNING);
		if (__atomic_load_n(&node->granted, __ATOMIC_ACQUIRE))
			return;
	}
}

void lk_mcs_lock(struct lk_mcs *lock)
{
	struct lk_domain *domain = lock->domain;
	struct lk_cpu *me = lk_this_cpu(domain);
	unsigned depth = me->mcs_depth;
	struct lk_mcs_node *node = &me->mcs[depth];
	uint32_t code = node_code(me, depth), prev;

	if (depth >= LK_MCS_DEPTH)
		rt_panic("lk_mcs_lock: cpu %u holds %u MCS locks already", me->index, depth);
	me->mcs_depth = depth + 1;
	node->next = 0;
	node->granted = 0;
	node->state = LK_RUNNING;
	node->link_state = LK_RUNNING;
	/* Holding nothing yet (outermost lock): a release point, as in lk_ticket_lock. */
	if (lock->mode == LK_PV && depth == 0)
		lk_release_point(domain, me);
	/* Queued from here on, as far as the host can tell. */
	if (lock->mode != LK_PLAIN)
		lk_pub_wait_begin(me, lock, LKS_STATE_SPINNING);
	prev = __atomic_exchange_n(&lock->tail, code, __ATOMIC_ACQ_REL);
	if (prev) {
		struct lk_mcs_node *pred = code_node(domain, prev);

		__atomic_store_n(&pred->next, code, __ATOMIC_RELEASE);
		if (lock->mode == LK_PLAIN) {
			while (!__atomic_load_n(&node->granted, __ATOMIC_ACQUIRE))
				rt_pause();
			return;
		}
		if (lock->mode == LK_PV) {
			/* Our half of the link-wait protocol: the link, the fence, its state. */
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			lk_kick_sleeper(domain, me, code_cpu(domain, prev), &pred->link_state,
					&pred->next);
		}
		wait_granted_visible(lock, me, node);
	} else if (lock->mode == LK_PLAIN) {
		return;
	}
	lk_pub_acquired(me, lock);
	lock->owner = me->vcpu + 1;
	if (lock->mode == LK_PV && domain->prewake) {
		uint32_t next = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE);

		if (next && lk_kick_sleeper(domain, me, code_cpu(domain, next),
					    &code_node(domain, next)->state,
					    &code_node(domain, next)->granted))
			me->stats.prewakes++;
	}
}

/*
 * Kicks the sleepers up to `count` places behind `node` in the queue, ahead of their turn.
 * The links may be stale by the time they are read (a node further on may have been granted,
 * released and reused): the worst that does is a spurious kick, which its CPU re-checks.
 */
static void wake_queue_ahead(const struct lk_domain *domain, struct lk_cpu *me,
			     struct lk_mcs_node *node, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		uint32_t next = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE);

		if (!next)
			return;
		node = code_node(domain, next);
		if (lk_kick_sleeper(domain, me, code_cpu(domain, next), &node->state,
				    &node->granted))
			me->stats.prewakes++;
	}
}

/* The tail says a successor has swapped itself in: wait until it has linked itself to us. */
static uint32_t wait_link(struct lk_mcs *lock, struct lk_cpu *me, struct lk_mcs_node *node)
{
	const struct lk_domain *domain = lock->domain;
	uint32_t next;

	if (lock->mode == LK_PLAIN) {
		while (!(next = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE)))
			rt_pause();
		return next;
	}
	lk_pub_wait_begin(me, lock, LKS_STATE_SPINNING);
	for (;;) {
		for (uint32_t i = 0; i < domain->spin_threshold; i++) {
			if ((next = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE)))
				goto linked;
			rt_pause();
		}
		if (lock->mode != LK_PV)
			continue;
		lk_sleep_on(domain, me, &node->link_state, NULL, &node->next, 0,
			    LKS_STATE_SPINNING);
		if ((next = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE)))
			break;
	}
linked:
	lk_pub_wait_end(me);
	return next;
}

void lk_mcs_unlock(struct lk_mcs *lock)
{
	struct lk_domain *domain = lock->domain;
	struct lk_cpu *me = lk_this_cpu(domain);
	unsigned depth = me->mcs_depth - 1;
	struct lk_mcs_node *node = &me->mcs[depth], *succ;
	uint32_t code = node_code(me, depth), next;

	if (!me->mcs_depth)
		rt_panic("lk_mcs_unlock: cpu %u holds no MCS lock", me->index);
	me->mcs_depth = depth;
	if (lock->mode != LK_PLAIN)
		lock->owner = 0;
	next = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE);
	if (!next) {
		uint32_t expected = code;

		if (__atomic_compare_exchange_n(&lock->tail, &expected, 0, false, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED)) {
			if (lock->mode == LK_PLAIN)
				return;
			lk_pub_released(me);
			if (lock->mode == LK_PV)
				lk_release_point(domain, me);
			return;
		}
		next = wait_link(lock, me, node);
	}
	succ = code_node(domain, next);
	__atomic_store_n(&succ->granted, 1, __ATOMIC_RELEASE);
	if (lock->mode == LK_PLAIN)
		return;
	lk_pub_released(me);
	if (lock->mode != LK_PV)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	lk_kick_sleeper(domain, me, code_cpu(domain, next), &succ->state, &succ->granted);
	wake_queue_ahead(domain, me, succ, domain->wake_ahead);
	lk_release_point(domain, me);
}
