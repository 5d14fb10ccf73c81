/*
 * The multiplexer, scheduler side: for a VM with more vCPUs than host CPUs (policy mux, or
 * adaptive while it co-schedules such a VM), at most `slots` (its CPUs) vCPUs run at once, so
 * the host never time-slices them against each other, and lockstep chooses which.
 *
 * The gates themselves belong to the worker while the VM is multiplexed (sched/mux_gate.c: a
 * vCPU gives up its CPU at a release point, when it sleeps in a pv WAIT, or to a stopped lock
 * holder, and a parked vCPU takes a free slot).  This side decides, every tick, from what the
 * sched page shows:
 *
 *  - fairness: a parked vCPU that is ready to run takes the place of an admitted one that has
 *    had its quantum, the one that has run most; the request goes to the guest's hints page
 *    (switch at your next release point), and escalates to a kick and a check after
 *    SCHED_MUX_CHECK_NS (stopped only if it holds no lock and waits for none) and to a forced
 *    stop after SCHED_MUX_GRACE_NS, which is counted (grace_overruns);
 *  - a parked vCPU that holds a lock does not wait for a quantum;
 *  - free slots (a vCPU went to sleep with nobody to hand its CPU to) are filled at once;
 *  - an admitted vCPU that halts in KVM needs no CPU: its slot is lent (sched_mux_vcpu.idle)
 *    until it runs again, and if the VM then runs more vCPUs than slots, the one that has run
 *    most among those holding nothing is asked to switch out.
 *
 * It never writes a gate: its decisions are requests (struct sched_decision), which the caller
 * writes to the page, with a kick for CHECK and FORCE and a nudge for ADMIT.
 */
#include "sched/engine_internal.h"

#define MUX_ADMIT_NS 1000000ull /* a nudged vCPU that found no slot by then stops asking */

uint32_t engine_mux_slots(const struct engine_vm *vm, uint64_t now)
{
	uint32_t cpus = vm->distinct_cpus ? vm->distinct_cpus : 1;

	if (vm->p.no_mux || (vm->p.policy != VMDEF_SCHED_MUX &&
			     !(vm->p.policy == VMDEF_SCHED_ADAPTIVE && now < vm->cosched_until &&
			       vm->distinct_cpus < vm->p.nr_vcpus)))
		return 0;
	return cpus < vm->p.nr_vcpus ? cpus : vm->p.nr_vcpus;
}

static void request(struct engine_vm *vm, uint32_t i, uint32_t req, int successor, uint64_t now)
{
	struct engine_vcpu *v = &vm->v[i];

	v->req = req;
	v->req_succ = successor >= 0 ? (uint32_t)successor + 1 : 0;
	v->req_at = now;
	v->req_new = true;
	if (req == SCHED_MUX_YIELD) {
		v->st.requests++;
		vm->st.mux_requests++;
	}
}

static bool leaving(const struct engine_vcpu *v)
{
	return v->req == SCHED_MUX_YIELD || v->req == SCHED_MUX_CHECK || v->req == SCHED_MUX_FORCE;
}

static bool holds(const struct sched_obs *o)
{
	return o->lock & (SCHED_LOCK_HOLDING | SCHED_LOCK_QUEUED);
}

/* Whether some pending request already makes room for parked vCPU r. */
static bool room_coming(const struct engine_vm *vm, uint32_t r)
{
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
		if (leaving(&vm->v[i]) && vm->v[i].req_succ == r + 1)
			return true;
	return vm->v[r].req == SCHED_MUX_ADMIT;
}

/* The admitted, running vCPU to ask out: no request yet, has had `min_stint` since its gate
 * opened, holds nothing if possible, has run most.  -1 if none. */
static int victim(const struct engine_vm *vm, uint64_t now, uint64_t min_stint)
{
	int best = -1;

	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		const struct engine_vcpu *v = &vm->v[i];
		const struct sched_obs *o = &vm->obs[i];

		/* Asleep in a pv WAIT it reaches no release point and takes no kick. */
		if (!o->gate_open || v->idle || v->req != SCHED_MUX_NONE ||
		    o->state != SCHED_VCPU_RUNNING || now - o->open_ns < min_stint)
			continue;
		if (best < 0 || holds(&vm->obs[best]) > holds(o) ||
		    (holds(&vm->obs[best]) == holds(o) && v->st.run_ns > vm->v[best].st.run_ns))
			best = (int)i;
	}
	return best;
}

/* The parked, ready vCPU to run next: a lock holder first, then the one that has run least. */
static int next_ready(const struct engine_vm *vm)
{
	int best = -1;

	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		const struct sched_obs *o = &vm->obs[i];
		bool held;

		if (!vm->v[i].ready_since || room_coming(vm, i))
			continue;
		held = o->lock & SCHED_LOCK_HOLDING;
		if (best < 0 || (held && !(vm->obs[best].lock & SCHED_LOCK_HOLDING)) ||
		    (held == !!(vm->obs[best].lock & SCHED_LOCK_HOLDING) &&
		     vm->v[i].st.run_ns < vm->v[best].st.run_ns))
			best = (int)i;
	}
	return best;
}

/*
 * More vCPUs ran behind open gates than slots: accounted for by vCPUs whose slots were lent
 * (halted, then running again) or whose gates were open when the multiplexer took over,
 * until the excess is gone.  Anything beyond those is counted: the multiplexer's promise.
 */
static void account_excess(struct engine_vm *vm, uint32_t busy, uint32_t slots)
{
	uint32_t excused = 0;

	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		struct engine_vcpu *v = &vm->v[i];
		const struct sched_obs *o = &vm->obs[i];

		if (!o->gate_open || (v->excess_ok && v->excess_open_ns != o->open_ns))
			v->excess_ok = false;
		if (!vm->st.multiplexed && o->gate_open) { /* taking over: gates open from before */
			v->excess_ok = true;
			v->excess_open_ns = o->open_ns;
		}
		if (v->idle) { /* lent: it counts again when it runs */
			v->excess_ok = true;
			v->excess_open_ns = o->open_ns;
			continue;
		}
		/*
		 * No excess left to account for -- unless its slot went out lent with the last
		 * decisions: the worker goes by those until the caller writes this tick's, and
		 * may let a vCPU in on the lent slot meanwhile (excused until the excess is gone).
		 */
		if (o->gate_open && busy <= slots && !v->lent_published)
			v->excess_ok = false;
		excused += o->gate_open && v->excess_ok;
	}
	vm->st.over_ticks += busy > slots;
	vm->st.over_unlent += busy > slots + excused;
}

/* What the page says: requests served or made by the worker, who is idle, ready, admitted. */
static uint32_t observe_mux(struct engine_vm *vm, uint64_t now, uint32_t *ready)
{
	bool fresh = vm->sample_ns != vm->prev_sample_ns;
	uint32_t busy = 0;

	*ready = 0;
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		struct engine_vcpu *v = &vm->v[i];
		const struct sched_obs *o = &vm->obs[i];
		bool is_ready = !o->gate_open && o->state == SCHED_VCPU_STOPPED;

		v->req_new = false;
		if (o->request == SCHED_MUX_NONE) {
			v->req = SCHED_MUX_NONE;
		} else if (o->request != v->req) {
			/* A request the worker made (a woken lock waiter wanting a slot). */
			v->req = o->request;
			v->req_succ = 0;
			v->req_at = o->request_ns && o->request_ns <= now ? o->request_ns : now;
		}
		if (!o->gate_open && leaving(v))
			v->req = SCHED_MUX_NONE; /* served: it is out */
		/* A nudge finds the slot taken again (its idle owner woke up): withdrawn. */
		if (v->req == SCHED_MUX_ADMIT && !o->gate_open && now - v->req_at >= MUX_ADMIT_NS) {
			v->req = SCHED_MUX_NONE;
			v->req_new = true;
		}
		/*
		 * Halted in KVM: lent.  Asleep in a pv WAIT it keeps its slot (sched/mux_gate.c),
		 * so blocked time spent there does not count, nor blocked in the host at all (on
		 * the worker's lock behind a thread the host preempted).  Idle (blocked, and ran under a
		 * tenth of the interval) through two samples with its gate open all along: a vCPU
		 * that came through its gate during an interval ran little of it without being
		 * idle, and a thread that shares its CPU with other load runs little and is often
		 * found blocked for a moment.
		 */
		if (!fresh)
			; /* the same sample as at the last tick: nothing new */
		else if (o->gate_open && v->act == ACT_IDLE && o->state == SCHED_VCPU_RUNNING &&
			 !o->in_host && o->open_ns < vm->prev_sample_ns &&
			 o->pvwait_ns == v->last_pvwait &&
			 v->d_exec * 10 < vm->sample_ns - vm->prev_sample_ns)
			v->idle_ticks++;
		else
			v->idle_ticks = 0;
		v->last_pvwait = o->pvwait_ns;
		v->idle = v->idle_ticks >= 2;
		busy += o->gate_open && !v->idle;
		if (is_ready && !v->ready_since)
			v->ready_since = now;
		if (!is_ready && v->ready_since) {
			uint64_t waited = now - v->ready_since;

			v->st.ready_ns += waited;
			if (waited > v->st.ready_max_ns)
				v->st.ready_max_ns = waited;
			if (waited > vm->st.ready_max_ns)
				vm->st.ready_max_ns = waited;
			v->ready_since = 0;
		}
		*ready += is_ready;
	}
	return busy;
}

/* Requests not served in time: a kick and a check, then a forced stop. */
static void escalate(struct engine_vm *vm, uint64_t now)
{
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		struct engine_vcpu *v = &vm->v[i];

		if (!leaving(v) || !vm->obs[i].gate_open || v->req == SCHED_MUX_FORCE)
			continue;
		if (now - v->req_at >= SCHED_MUX_GRACE_NS) {
			v->req = SCHED_MUX_FORCE;
			v->req_new = true;
			vm->st.grace_overruns++;
		} else if (now - v->req_at >= SCHED_MUX_CHECK_NS) {
			/* Checked again at every tick: it may have let go of its lock meanwhile. */
			v->req = SCHED_MUX_CHECK;
			v->req_new = true;
			vm->st.mux_checks++;
		}
	}
}

void mux_decide(struct engine_vm *vm, uint64_t now)
{
	uint32_t slots = engine_mux_slots(vm, now), ready, busy, leave = 0;
	int r, o;

	busy = observe_mux(vm, now, &ready);
	account_excess(vm, busy, slots);
	vm->st.multiplexed = true;
	vm->st.mux_slots = slots;
	vm->st.mux_ticks++;
	if (busy > vm->st.busy_open_max)
		vm->st.busy_open_max = busy;
	escalate(vm, now);
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
		leave += vm->obs[i].gate_open && !vm->v[i].idle && leaving(&vm->v[i]);
	/*
	 * More running than slots (an idle vCPU woke up): ask the excess out -- once it lasted
	 * two samples.  A guest whose vCPUs mostly wait for interrupts (IPIs) runs more than
	 * slots of them for moments only, and a vCPU parked then misses its interrupts.
	 */
	if (vm->sample_ns != vm->prev_sample_ns)
		vm->over_samples = busy > slots ? vm->over_samples + 1 : 0;
	while (vm->over_samples >= 2 && busy - leave > slots && (o = victim(vm, now, 0)) >= 0) {
		request(vm, (uint32_t)o, SCHED_MUX_YIELD, -1, now);
		leave++;
	}
	/* Free slots go to ready vCPUs at once. */
	while (busy < slots && (r = next_ready(vm)) >= 0) {
		request(vm, (uint32_t)r, SCHED_MUX_ADMIT, -1, now);
		vm->st.mux_admits++;
		busy++;
	}
	/* Fairness: each ready vCPU replaces one that has had its quantum (a holder at once). */
	while ((r = next_ready(vm)) >= 0) {
		bool urgent = vm->obs[r].lock & SCHED_LOCK_HOLDING;

		o = victim(vm, now, urgent ? 0 : vm->p.quantum_ns);
		if (o < 0)
			break;
		request(vm, (uint32_t)o, SCHED_MUX_YIELD, r, now);
	}
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		vm->v[i].lent_published = vm->v[i].idle;
		vm->v[i].gate_open = vm->obs[i].gate_open; /* as the worker keeps them */
		if (vm->v[i].gate_open && vm->v[i].ready_since)
			vm->v[i].ready_since = 0;
	}
}

/*
 * Adaptive's own signal for a VM wider than its CPUs.  The pvlock detector reports only
 * episodes that burn CPU (waiters that spin), but in a wide VM pv locks collapse with every
 * waiter asleep: each hand-off goes to a waiter the host then has to find a CPU for, behind
 * its siblings (a convoy), and a barrier's arrivals sleep while latecomers queue.  What shows
 * it is vCPUs waiting for host CPUs while others sleep in pv WAITs, at a quarter of a vCPU
 * each or more, two samples in a row.  Multiplexing idles no CPU, so a false alarm costs
 * little; the hold and its relapse doubling are adaptive's.
 */
void mux_watch(struct engine_vm *vm, uint64_t now)
{
	uint64_t interval = vm->sample_ns - vm->prev_sample_ns, waiting = 0, asleep = 0;

	if (vm->p.policy != VMDEF_SCHED_ADAPTIVE || vm->p.no_mux ||
	    vm->distinct_cpus >= vm->p.nr_vcpus || now < vm->cosched_until) {
		vm->contended = 0;
		return;
	}
	if (!interval || vm->sample_ns < vm->prev_sample_ns)
		return; /* the same sample as at the last tick */
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		struct engine_vcpu *v = &vm->v[i];
		uint64_t pvwait = vm->obs[i].pvwait_ns;

		waiting += v->d_wait;
		asleep += pvwait > v->last_pvwait ? pvwait - v->last_pvwait : 0;
		v->last_pvwait = pvwait;
	}
	vm->contended = waiting * 4 >= interval && asleep * 4 >= interval ? vm->contended + 1 : 0;
	if (vm->contended < 2)
		return;
	vm->contended = 0;
	vm->st.contention_events++;
	engine_adaptive_episode(vm, now);
}

void mux_leave(struct engine_vm *vm)
{
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		vm->v[i].req = SCHED_MUX_NONE;
		vm->v[i].req_new = false;
		vm->v[i].idle = false;
		vm->v[i].ready_since = 0;
		vm->v[i].excess_ok = false;
		vm->v[i].lent_published = false;
	}
	vm->st.multiplexed = false;
	vm->st.mux_slots = 0;
}
