/*
 * The gate side of the multiplexer: what a worker's vCPU threads do to the gates of a VM whose
 * vCPUs are multiplexed on fewer host CPUs (sched_mux.slots > 0), on the sched page itself, so
 * that lockstep-vm and the scheduler's simulated host in the unit tests run the same code.
 *
 * A vCPU thread comes here when it is out of KVM_RUN anyway: at a doorbell exit (the guest
 * switching at a release point, handing its CPU to a stopped lock holder, going to sleep in a
 * pv WAIT), after a kick from the scheduler (a CHECK or FORCE request), and at its closed
 * gate (looking for a free slot).  So a switch costs one exit and one futex wake of a thread
 * that will run on the CPU this one leaves, not a round trip through lockstepd.
 *
 * The promises, kept here and counted in struct sched_mux so that tests can check them:
 *  - at most `slots` gates are open, vCPUs the scheduler saw halted not counted (their slots
 *    are lent until they run again);
 *  - a vCPU that holds a published lock or waits for one is not stopped by a request unless
 *    the grace period ran out (FORCE): a CHECK finds it busy and leaves it running, and a
 *    switch at a release point is the guest's own word that it holds nothing (out_holding
 *    counts the exceptions: a guest that published late);
 *  - a vCPU that gives up its CPU, and with it a slot, while it waits for a lock hands it to
 *    a stopped vCPU that holds that lock or waits for it ahead, if one is ready
 *    (handoff_astray counts misses).
 *
 * The caller serialises every function here per VM (the worker's mux lock) and holds nothing
 * across KVM_RUN.  The scheduler never writes these gates while slots > 0; when it sets slots
 * to 0 it takes them back, and a switch that raced with that undoes its own close.
 */
#include <errno.h>

#include "sched/sched.h"

static bool is_open(const struct sched_page *page, uint32_t i)
{
	return __atomic_load_n(&page->slot[i].gate, __ATOMIC_ACQUIRE) == SCHED_GATE_OPEN;
}

/*
 * Parked and able to run as soon as its gate opens: waiting at its gate, or still on its way
 * there (its gate just closed; once there it finds the gate open again and goes on).  Not
 * asleep in a pv WAIT, not gone.  Waiting for a vCPU to reach its gate would cost a host time
 * slice where both threads share a CPU.
 */
static bool is_ready(const struct sched_page *page, uint32_t i)
{
	uint32_t state = __atomic_load_n(&page->slot[i].state, __ATOMIC_ACQUIRE);

	return !is_open(page, i) && (state == SCHED_VCPU_STOPPED || state == SCHED_VCPU_RUNNING);
}

static struct sched_lock_activity activity(const struct sched_mux_locks *locks, uint32_t i)
{
	struct sched_lock_activity a = { 0 };

	if (locks && locks->activity)
		locks->activity(locks->arg, i, &a);
	return a;
}

static bool busy_with_lock(const struct sched_lock_activity *a)
{
	return a->flags & (SCHED_LOCK_HOLDING | SCHED_LOCK_QUEUED);
}

/*
 * Whether vCPU i's slot is lent: the scheduler saw it halted behind the current opening of its
 * gate.  A lend belongs to that opening.  Once the gate closed, the slot was the
 * multiplexer's again, and the vCPU it lets in next takes a slot like any other, although
 * the scheduler's flag stays up until its next tick: counted as lent, it would make room
 * for one vCPU more than the slots (the scheduler's misjudged vCPUs -- a loaded host's
 * threads that ran little and were found blocked -- are switched out and in again at once).
 */
static bool lent(const struct sched_page *page, uint32_t i)
{
	const struct sched_mux_vcpu *mv = &sched_page_mux(page)->vcpu[i];

	return __atomic_load_n(&mv->idle, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&mv->idle_open_ns, __ATOMIC_RELAXED) ==
		       __atomic_load_n(&page->slot[i].open_ns, __ATOMIC_RELAXED);
}

static uint32_t slots_of(const struct sched_mux *mux)
{
	return __atomic_load_n(&mux->slots, __ATOMIC_SEQ_CST);
}

uint32_t sched_mux_count_open(const struct sched_page *page)
{
	const struct sched_mux *mux = sched_page_mux(page);
	uint32_t n = 0;

	for (uint32_t i = 0; mux && i < page->nr_vcpus; i++)
		n += is_open(page, i) && !lent(page, i);
	return n;
}

/*
 * Before the multiplexer opens a gate: the gates open, the one about to open included.  Its
 * maximum is the multiplexer's promise (no more than the slots); it is taken where gates open,
 * the multiplexer's own doing, not where vCPUs it found running leave, and not counting vCPUs
 * the scheduler saw idle, whose slots it lends (they count again once they run, and the
 * scheduler asks the excess out then: sched_vm_stats' busy_open_max, over_ticks and
 * over_unlent).
 */
static void note_opening(struct sched_mux *mux, const struct sched_page *page)
{
	uint32_t n = sched_mux_count_open(page) + 1;

	if (n > mux->open_max)
		__atomic_store_n(&mux->open_max, n, __ATOMIC_RELAXED);
}

static void note_open(struct sched_mux *mux, const struct sched_page *page)
{
	__atomic_store_n(&mux->open, sched_mux_count_open(page), __ATOMIC_RELAXED);
}

/*
 * Whether vCPU i is one a waiter `w` for a lock should hand its CPU to: it holds that lock, or
 * waits for it and began waiting earlier (FIFO locks serve it first).
 */
static bool serves(const struct sched_lock_activity *i, const struct sched_lock_activity *w)
{
	if (!w->lock || i->lock != w->lock)
		return false;
	return (i->flags & SCHED_LOCK_HOLDING) ||
	       ((i->flags & SCHED_LOCK_QUEUED) && i->since < w->since);
}

/*
 * Who gets the slot vCPU `from` gives up: `want` if it is ready; for a lock waiter, a ready
 * holder of its lock, else the ready vCPU queued for it longest (ahead of it), else nobody:
 * a vCPU that would only queue behind it is better left parked; the successor the scheduler
 * named; a ready vCPU that holds any lock; for a barrier waiter, a latecomer (a ready vCPU
 * not at that barrier); else the ready vCPU that has run least.  -1 if nobody.
 */
static int pick(const struct sched_page *page, uint32_t from, int want,
		const struct sched_mux_locks *locks)
{
	const struct sched_mux *mux = sched_page_mux(page);
	uint32_t n = page->nr_vcpus;
	uint32_t named = __atomic_load_n(&mux->vcpu[from].successor, __ATOMIC_RELAXED);
	struct sched_lock_activity me = activity(locks, from), best_q = { 0 };
	int lock_holder = -1, lock_queued = -1, any_holder = -1, late = -1, fair = -1;

	if (want >= 0 && (uint32_t)want < n && (uint32_t)want != from && is_ready(page, want))
		return want;
	for (uint32_t i = 0; i < n; i++) {
		struct sched_lock_activity a;

		if (i == from || !is_ready(page, i))
			continue;
		a = activity(locks, i);
		if ((me.flags & SCHED_LOCK_QUEUED) && serves(&a, &me)) {
			if ((a.flags & SCHED_LOCK_HOLDING) && lock_holder < 0)
				lock_holder = (int)i;
			else if (lock_queued < 0 || a.since < best_q.since) {
				lock_queued = (int)i;
				best_q = a;
			}
		}
		if ((a.flags & SCHED_LOCK_HOLDING) && any_holder < 0)
			any_holder = (int)i;
		if ((me.flags & SCHED_LOCK_BARRIER) &&
		    !((a.flags & SCHED_LOCK_BARRIER) && a.lock == me.lock) &&
		    (late < 0 || page->slot[i].cpu_ns < page->slot[late].cpu_ns))
			late = (int)i;
		if (fair < 0 || page->slot[i].cpu_ns < page->slot[fair].cpu_ns)
			fair = (int)i;
	}
	if (me.flags & SCHED_LOCK_QUEUED)
		return lock_holder >= 0 ? lock_holder : lock_queued;
	if (named && named <= n && named - 1 != from && is_ready(page, named - 1))
		return (int)named - 1;
	if (any_holder >= 0)
		return any_holder;
	if (me.flags & SCHED_LOCK_BARRIER)
		return late;
	return fair;
}

/* Counts a hand-off by a lock waiter: to the lock's holder (or a waiter ahead), or astray. */
static void count_handoff(const struct sched_page *page, struct sched_mux_vcpu *mv, uint32_t from,
			  int succ, const struct sched_mux_locks *locks)
{
	struct sched_lock_activity me = activity(locks, from), a;
	bool server_ready = false;

	if (!(me.flags & SCHED_LOCK_QUEUED) || !me.lock)
		return;
	if (succ >= 0 && (a = activity(locks, (uint32_t)succ), serves(&a, &me))) {
		mv->handoff_holder++;
		return;
	}
	for (uint32_t i = 0; i < page->nr_vcpus && !server_ready; i++)
		server_ready =
			i != from && is_ready(page, i) && (a = activity(locks, i), serves(&a, &me));
	mv->handoff_astray += server_ready;
}

/* Around every change of several gates: a reader that saw the same even value before and
 * after it read them saw one consistent set. */
static void changing(struct sched_mux *mux)
{
	__atomic_add_fetch(&mux->seq, 1, __ATOMIC_SEQ_CST);
}

static void open_for(struct sched_page *page, struct sched_mux *mux, uint32_t i, uint64_t now)
{
	struct sched_mux_vcpu *mv = &mux->vcpu[i];
	uint32_t admit = SCHED_MUX_ADMIT;

	/* A pending ADMIT is served; a request to switch out is not its to keep. */
	__atomic_compare_exchange_n(&mv->request, &admit, SCHED_MUX_NONE, false, __ATOMIC_ACQ_REL,
				    __ATOMIC_RELAXED);
	mv->ins++;
	sched_gate_open(page, i, now);
}

int sched_mux_switch(struct sched_page *page, uint32_t from, enum sched_mux_out reason, int want,
		     const struct sched_mux_locks *locks, uint64_t now)
{
	struct sched_mux *mux = sched_page_mux(page);
	struct sched_lock_activity act;
	struct sched_mux_vcpu *mv;
	uint32_t request;
	bool room;
	int succ;

	if (!mux || from >= page->nr_vcpus || !slots_of(mux) || !is_open(page, from) ||
	    reason >= SCHED_OUT_NR)
		return -EAGAIN;
	mv = &mux->vcpu[from];
	request = __atomic_load_n(&mv->request, __ATOMIC_ACQUIRE);
	if (reason == SCHED_OUT_RELEASE && request != SCHED_MUX_YIELD &&
	    request != SCHED_MUX_CHECK && request != SCHED_MUX_FORCE) {
		sched_hint_switch(page, from, false); /* a hint left over from a served request */
		return -EAGAIN;
	}
	/* Handing the CPU to a vCPU that cannot take it would only stop this one. */
	if (reason == SCHED_OUT_DIRECTED &&
	    (want < 0 || (uint32_t)want >= page->nr_vcpus || !is_ready(page, (uint32_t)want)))
		return -EAGAIN;
	act = activity(locks, from);
	/* Asked out while the VM runs more vCPUs than slots (an idle one woke up): just park. */
	if ((reason == SCHED_OUT_RELEASE || reason == SCHED_OUT_CHECK ||
	     reason == SCHED_OUT_FORCE) &&
	    sched_mux_count_open(page) > slots_of(mux))
		succ = -1;
	else
		succ = pick(page, from, want, locks);
	/*
	 * Nobody to run instead: asked to make room for somebody no longer waiting, there is
	 * nothing to do (unless the VM runs more vCPUs than slots: an idle one woke up, and one
	 * must stop).  Going to sleep for a lock, the vCPU keeps its slot, gate open, for when
	 * it wakes: asleep it needs no CPU, and a vCPU let in would only queue behind it (the
	 * lock's holder takes the slot if it needs one: sched_mux_admit) -- if it is a slot:
	 * where the VM runs more vCPUs than slots (at its start every gate is open) it frees it.
	 * At a barrier it frees the slot for the latecomers still on their way to their gates.
	 */
	if (succ < 0 && reason == SCHED_OUT_WAIT && (act.flags & SCHED_LOCK_QUEUED) &&
	    sched_mux_count_open(page) <= slots_of(mux))
		return -EAGAIN;
	if (succ < 0 && reason != SCHED_OUT_DIRECTED && reason != SCHED_OUT_WAIT &&
	    sched_mux_count_open(page) <= slots_of(mux)) {
		sched_hint_switch(page, from, false);
		__atomic_store_n(&mv->successor, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&mv->request, SCHED_MUX_NONE, __ATOMIC_RELEASE);
		return -EAGAIN;
	}
	mv->outs[reason]++;
	changing(mux);
	if ((reason == SCHED_OUT_RELEASE || reason == SCHED_OUT_CHECK) && busy_with_lock(&act))
		mv->out_holding++;
	if (reason == SCHED_OUT_FORCE && busy_with_lock(&act))
		mv->forced_holding++;
	sched_gate_close(page, from, now);
	sched_hint_switch(page, from, false);
	__atomic_store_n(&mv->successor, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&mv->request, SCHED_MUX_NONE, __ATOMIC_RELEASE);
	/*
	 * A slot to hand on: not if the scheduler saw this vCPU idle and lent its slot already,
	 * nor while the VM runs more vCPUs than slots (at its start, or when a vCPU whose slot
	 * was lent runs again): then this close only brings it back towards its slots.
	 */
	room = sched_mux_count_open(page) < slots_of(mux);
	if (succ >= 0 && room) {
		note_opening(mux, page);
		open_for(page, mux, (uint32_t)succ, now);
		mux->handoffs++;
	} else {
		succ = -1;
	}
	changing(mux);
	if ((reason == SCHED_OUT_DIRECTED || reason == SCHED_OUT_WAIT) && room)
		count_handoff(page, mv, from, succ, locks);
	note_open(mux, page);
	/*
	 * The scheduler took the gates back meanwhile (slots 0, then it opened what its new
	 * policy wants): it may have done so before our close, so undo it.  Its store of 0
	 * precedes its gate writes and our close precedes this load, so one of us sees the other.
	 */
	if (!slots_of(mux)) {
		sched_gate_open(page, from, now);
		return -EAGAIN;
	}
	return succ;
}

void sched_mux_awake(struct sched_page *page, uint32_t vcpu)
{
	sched_slot_set_state(&page->slot[vcpu], SCHED_VCPU_RUNNING);
}

int sched_mux_kicked(struct sched_page *page, uint32_t vcpu, const struct sched_mux_locks *locks,
		     uint64_t now)
{
	struct sched_mux *mux = sched_page_mux(page);
	struct sched_lock_activity act;
	uint32_t request;

	if (!mux || vcpu >= page->nr_vcpus)
		return -EAGAIN;
	request = __atomic_load_n(&mux->vcpu[vcpu].request, __ATOMIC_ACQUIRE);
	if (request == SCHED_MUX_FORCE)
		return sched_mux_switch(page, vcpu, SCHED_OUT_FORCE, -1, locks, now);
	if (request != SCHED_MUX_CHECK)
		return -EAGAIN;
	/* Delayed preemption: busy with a lock, it runs on until its release point (the guest
	 * sees its switch_req bit) or the grace period's end. */
	act = activity(locks, vcpu);
	if (busy_with_lock(&act))
		return -EAGAIN;
	return sched_mux_switch(page, vcpu, SCHED_OUT_CHECK, -1, locks, now);
}

/* An admitted vCPU that holds nothing and has not been asked yet, the one that has run most. */
static int victim(const struct sched_page *page, uint32_t self, const struct sched_mux_locks *locks)
{
	const struct sched_mux *mux = sched_page_mux(page);
	int best = -1;

	for (uint32_t i = 0; i < page->nr_vcpus; i++) {
		struct sched_lock_activity act;

		if (i == self || !is_open(page, i) || lent(page, i) ||
		    __atomic_load_n(&mux->vcpu[i].request, __ATOMIC_ACQUIRE) != SCHED_MUX_NONE)
			continue;
		act = activity(locks, i);
		if (busy_with_lock(&act))
			continue;
		if (best < 0 || page->slot[i].cpu_ns > page->slot[best].cpu_ns)
			best = (int)i;
	}
	return best;
}

/*
 * A vCPU asleep in a pv WAIT that kept its slot (nobody useful to hand it to when it fell
 * asleep) whose slot `vcpu` may take: it waits for the lock `vcpu` holds or waits for ahead of
 * it.  Its thread is in the host's poll, not in the guest: closing its gate stops nothing, and
 * it sees the closed gate when it wakes (sched_mux_awake() orders the two under the caller's
 * lock).  -1 if none.
 */
static int sleeper_for(const struct sched_page *page, uint32_t vcpu,
		       const struct sched_mux_locks *locks)
{
	struct sched_lock_activity me = activity(locks, vcpu);

	for (uint32_t i = 0; i < page->nr_vcpus; i++) {
		struct sched_lock_activity a;

		/* (One whose slot was lent already has none to give.) */
		if (i == vcpu || !is_open(page, i) ||
		    __atomic_load_n(&page->slot[i].state, __ATOMIC_ACQUIRE) != SCHED_VCPU_PVWAIT ||
		    lent(page, i))
			continue;
		a = activity(locks, i);
		if ((a.flags & SCHED_LOCK_QUEUED) && serves(&me, &a))
			return (int)i;
	}
	return -1;
}

/*
 * More gates open than slots (the VM starts with every gate open, and vCPUs asleep then kept
 * theirs): vCPUs asleep in a pv WAIT need none, and their threads are not in the guest, so
 * their gates close at once, most recently run first.
 */
static void trim_sleepers(struct sched_page *page, struct sched_mux *mux, uint64_t now)
{
	while (sched_mux_count_open(page) > slots_of(mux)) {
		int v = -1;

		for (uint32_t i = 0; i < page->nr_vcpus; i++)
			if (is_open(page, i) && !lent(page, i) &&
			    __atomic_load_n(&page->slot[i].state, __ATOMIC_ACQUIRE) ==
				    SCHED_VCPU_PVWAIT &&
			    (v < 0 || page->slot[i].cpu_ns > page->slot[v].cpu_ns))
				v = (int)i;
		if (v < 0)
			return;
		mux->vcpu[v].outs[SCHED_OUT_WAIT]++;
		changing(mux);
		sched_gate_close(page, (uint32_t)v, now);
		changing(mux);
	}
}

bool sched_mux_admit(struct sched_page *page, uint32_t vcpu, bool urgent,
		     const struct sched_mux_locks *locks, uint64_t now)
{
	struct sched_mux *mux = sched_page_mux(page);
	struct sched_lock_activity act;
	uint32_t slots;
	int v;

	if (!mux || vcpu >= page->nr_vcpus || !(slots = slots_of(mux)))
		return false;
	if (is_open(page, vcpu))
		return true;
	trim_sleepers(page, mux, now);
	if (sched_mux_count_open(page) < slots) {
		note_opening(mux, page);
		open_for(page, mux, vcpu, now);
		note_open(mux, page);
		return true;
	}
	act = activity(locks, vcpu);
	if (!urgent && !(act.flags & SCHED_LOCK_HOLDING))
		return false;
	/* A sleeper waits for what this vCPU holds (or will get first): its slot is ours -- if
	 * it is a slot: the VM may run more vCPUs than slots for a moment (an idle one woke). */
	v = sleeper_for(page, vcpu, locks);
	if (v >= 0 && sched_mux_count_open(page) <= slots) {
		struct sched_mux_vcpu *sv = &mux->vcpu[v];

		sv->outs[SCHED_OUT_WAIT]++;
		sv->handoff_holder++;
		changing(mux);
		sched_gate_close(page, (uint32_t)v, now);
		note_opening(mux, page);
		open_for(page, mux, vcpu, now);
		changing(mux);
		mux->handoffs++;
		note_open(mux, page);
		return true;
	}
	/* Somebody is already on the way out in our favour: wait for it. */
	for (uint32_t i = 0; i < page->nr_vcpus; i++)
		if (__atomic_load_n(&mux->vcpu[i].successor, __ATOMIC_RELAXED) == vcpu + 1 &&
		    __atomic_load_n(&mux->vcpu[i].request, __ATOMIC_ACQUIRE) != SCHED_MUX_NONE)
			return false;
	v = victim(page, vcpu, locks);
	if (v < 0)
		return false;
	__atomic_store_n(&mux->vcpu[v].successor, vcpu + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&mux->vcpu[v].request_ns, now, __ATOMIC_RELAXED);
	__atomic_store_n(&mux->vcpu[v].request, SCHED_MUX_YIELD, __ATOMIC_RELEASE);
	sched_hint_switch(page, (uint32_t)v, true);
	return false;
}

bool sched_mux_orphaned(struct sched_page *page, uint64_t now)
{
	struct sched_mux *mux = sched_page_mux(page);
	uint64_t alive;

	if (!mux || !slots_of(mux))
		return false;
	alive = __atomic_load_n(&mux->alive_ns, __ATOMIC_ACQUIRE);
	if (now < alive || now - alive < SCHED_MUX_ORPHAN_NS)
		return false;
	__atomic_store_n(&mux->slots, 0, __ATOMIC_SEQ_CST);
	sched_hint_slots(page, 0);
	changing(mux);
	for (uint32_t i = 0; i < page->nr_vcpus; i++) {
		__atomic_store_n(&mux->vcpu[i].request, SCHED_MUX_NONE, __ATOMIC_RELEASE);
		__atomic_store_n(&mux->vcpu[i].idle, 0, __ATOMIC_RELAXED);
		sched_hint_switch(page, i, false);
		sched_gate_open(page, i, now);
	}
	changing(mux);
	return true;
}
