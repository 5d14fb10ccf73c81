/*
 * The guest lock library: spinlocks and barriers for guest programs, each in a plain form
 * (spin until done: the baseline that suffers from lock-holder and waiter preemption) and a
 * paravirtual form that spins for a while, then sleeps in the host and is kicked awake.
 *
 * - ticket lock: FIFO by ticket number; pv waiters sleep with LKS_CALL_WAIT on the
 *   now-serving word, and the unlocker kicks the one CPU whose ticket comes next.
 * - MCS (queued) lock: each waiter spins on its own node; pv waiters sleep on their node and
 *   the unlocker kicks its successor.
 * - sense-reversing barrier: pv waiters sleep on the sense word; the last CPU to arrive kicks
 *   every sleeper.
 *
 * A third mode, LK_PUBLISHED, spins like the plain form and publishes like the pv one.
 *
 * Under lockstep's multiplexer (a VM with more vCPUs than host CPUs, LKS_FEATURE_SCHED) pv
 * locks and barriers also read the host's scheduling hints (pvlock/abi.h): after an unlock or
 * a barrier -- a release point, where the CPU holds nothing and waits for nothing -- a CPU the
 * host asked to switch gives its host CPU away (LKS_CALL_SWITCH); a waiter whose lock holder
 * the host has stopped, or whose lock stays free because the next waiter is stopped, or that
 * waits at a barrier for a stopped latecomer, sleeps at once instead of spinning, and the
 * host hands its CPU to the vCPU it waits for; a barrier arrival gives its CPU straight to a
 * stopped latecomer.  Publication brackets every lock operation:
 * `waiting` is set before a CPU joins a lock's queue and cleared after `holding` is set, and
 * `holding` is cleared only after the lock is released, so at every instruction the page
 * tells whether the CPU holds a lock or is queued for one (the host stops no such CPU at a
 * request before its grace period ends).
 *
 * All locks of a program share one struct lk_domain: the per-CPU records that kickers read to
 * find whom to wake, the MCS queue nodes, and the pv plumbing.  Under lockstep the domain
 * registers the shared page (pvlock/abi.h, LKS_CALL_SHARED_SETUP) in which every pv lock
 * operation publishes what its CPU holds and waits for, so the host can see lock-holder
 * preemption; it waits with LKS_CALL_WAIT and kicks through the in-kernel fast path (a 4-byte
 * write of the vCPU number to the doorbell's LKS_DB_KICK).  Where lockstep's pv calls are
 * missing (QEMU, or a host without them) pv locks fall back to the runtime's own sleep and
 * wake (rt_wait_while, rt_wake_cpu: HLT and an IPI); lk_backend_name() says which is used.
 *
 * Everything runs at ring 3.  Locks are not reentrant; MCS locks nest up to LK_MCS_DEPTH deep
 * per CPU and are released in reverse order.  A CPU's index (rt_cpu_index) names it.
 */
#ifndef LOCKSTEP_GUEST_LOCKS_H
#define LOCKSTEP_GUEST_LOCKS_H

#include "guest/guest.h"

#define LK_DEFAULT_SPIN 1024		/* PAUSEs a pv waiter spins before it sleeps */
#define LK_DEFAULT_WAIT_TIMEOUT_NS 0ull /* no bound on one sleep */
#define LK_MCS_DEPTH 4			/* MCS locks one CPU may hold at once */

enum lk_mode {
	LK_PLAIN, /* spin until done */
	LK_PV,	  /* spin up to the domain's threshold, then sleep until kicked */
	/*
	 * Spin until done like LK_PLAIN, but publish holding and waiting like LK_PV: the host's
	 * preemption detector sees a spinning workload, which on hosts without pause-loop
	 * exits it otherwise cannot.
	 */
	LK_PUBLISHED,
};

enum lk_backend {
	LK_BACKEND_LOCKSTEP, /* LKS_CALL_WAIT and the KICK doorbell */
	LK_BACKEND_RUNTIME,  /* no lockstep pv calls: rt_wait_while / rt_wake_cpu */
};

struct lk_config {
	uint32_t spin_threshold;  /* PAUSE iterations before sleeping; 0 = LK_DEFAULT_SPIN */
	uint64_t wait_timeout_ns; /* bound on one sleep (a safety net), 0 = none */
	/*
	 * Kick the next waiter when a lock is *taken*, not only when it is released: its wake-up
	 * (tens of µs under overcommit) then overlaps the critical section instead of following
	 * it.  The waiter, once awake, spins again before it goes back to sleep.  The kick is
	 * made by the new holder, so its cost (a doorbell write) lands inside the critical
	 * section.
	 */
	bool prewake;
	/*
	 * At release, besides the next waiter, kick the sleepers queued up to this many places
	 * behind it (ticket locks: tickets next+1 .. next+wake_ahead; MCS: the successor's
	 * successors).  The same head start as prewake, paid for outside the critical section by
	 * the releaser.  0 = only the next waiter.
	 */
	uint32_t wake_ahead;
	bool force_runtime; /* use the runtime fallback even where lockstep offers pv calls */
};

/* Per-CPU counts of what the pv paths did (plain locks count nothing). */
struct lk_stats {
	uint64_t acquisitions; /* pv lock acquisitions */
	uint64_t contended;    /* ... that had to wait */
	uint64_t sleeps;       /* WAITs (or runtime sleeps) entered */
	uint64_t woken;	       /* WAIT returned LKS_WAIT_WOKEN */
	uint64_t changed;      /* WAIT returned LKS_WAIT_CHANGED at once */
	uint64_t timeouts;     /* WAIT returned LKS_WAIT_TIMEOUT */
	uint64_t errors;       /* WAIT returned an error */
	uint64_t kicks;	       /* kicks sent */
	uint64_t prewakes;     /* ... of which ahead of the waiter's turn (prewake, wake_ahead) */
	uint64_t switches;     /* CPU given away at a release point, as the host asked */
	uint64_t early_sleeps; /* WAITs entered at once: what it waited for could not run */
	uint64_t yields;       /* CPU given to a stopped barrier latecomer (YIELD_TO) */
};

struct lk_domain;

/*
 * Creates the domain: call once, on CPU 0, before any CPU uses a lock.  Under lockstep it
 * probes WAIT and the KICK fast path and registers the shared page.  NULL config = defaults.
 */
struct lk_domain *lk_domain_new(const struct lk_config *config);
enum lk_backend lk_backend(const struct lk_domain *domain);
/* "lockstep" or "runtime", and why in a sentence (e.g. "lockstep host lacks WAIT (-38)"). */
const char *lk_backend_name(const struct lk_domain *domain);
const char *lk_backend_reason(const struct lk_domain *domain);
/* How kicks are sent under lockstep: "ioeventfd" (the 4-byte write) or "call". */
const char *lk_kick_method(const struct lk_domain *domain);
uint32_t lk_spin_threshold(const struct lk_domain *domain); /* PAUSEs, as configured */
/* LKS_CALL_SHARED_SETUP's result: 0 = the host reads the shared page; < 0 = it does not. */
int64_t lk_shared_page_status(const struct lk_domain *domain);
void lk_stats(const struct lk_domain *domain, unsigned cpu, struct lk_stats *out);

/* ---- Ticket lock ------------------------------------------------------------------------- */

struct lk_ticket {
	volatile uint32_t head;	    /* the ticket being served: what pv waiters WAIT on */
	volatile uint32_t tail;	    /* the next ticket to hand out */
	volatile uint32_t sleepers; /* pv waiters inside (or entering) a sleep */
	volatile uint32_t owner;    /* pv, published: the holder's vCPU + 1, 0 = free */
	enum lk_mode mode;
	struct lk_domain *domain;
} __attribute__((aligned(RT_CACHE_LINE)));

void lk_ticket_init(struct lk_ticket *lock, struct lk_domain *domain, enum lk_mode mode);
void lk_ticket_lock(struct lk_ticket *lock);
void lk_ticket_unlock(struct lk_ticket *lock);

/* ---- MCS queued lock --------------------------------------------------------------------- */

struct lk_mcs {
	volatile uint32_t tail;	 /* the last queued CPU's node (encoded), 0 = free */
	volatile uint32_t owner; /* pv, published: the holder's vCPU + 1, 0 = free or passing */
	enum lk_mode mode;
	struct lk_domain *domain;
} __attribute__((aligned(RT_CACHE_LINE)));

void lk_mcs_init(struct lk_mcs *lock, struct lk_domain *domain, enum lk_mode mode);
void lk_mcs_lock(struct lk_mcs *lock);
void lk_mcs_unlock(struct lk_mcs *lock);

/* ---- Sense-reversing barrier ------------------------------------------------------------- */

struct lk_barrier {
	volatile uint32_t arrived; /* CPUs at the barrier this round */
	uint32_t parties;
	enum lk_mode mode;
	struct lk_domain *domain;
	volatile uint32_t *local_sense; /* per CPU, one cache line apart */
	/* On its own line: waiters read it while arrivals update `arrived`. */
	volatile uint32_t sense __attribute__((aligned(RT_CACHE_LINE))); /* flips each round */
	volatile uint32_t sleepers;
} __attribute__((aligned(RT_CACHE_LINE)));

/* parties = how many CPUs wait at it each round (CPUs 0 .. parties-1 or any such set). */
void lk_barrier_init(struct lk_barrier *barrier, struct lk_domain *domain, enum lk_mode mode,
		     unsigned parties);
void lk_barrier_wait(struct lk_barrier *barrier);

#endif /* LOCKSTEP_GUEST_LOCKS_H */
