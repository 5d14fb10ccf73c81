/*
 * The simulated host's paged VMs (see sim.h): a real sched page whose gates the multiplexer's
 * gate side drives as lockstep-vm's vCPU threads would, a guest that loops on one ticket lock,
 * and the scheduler's decisions applied as lockstepd applies them (daemon/scheduler.c): slots,
 * lent slots, requests with the guest's hint bit, kicks for CHECK and FORCE.  Deterministic.
 *
 * Ground truth kept for the tests: the most gates ever open at once, holders and spinning
 * waiters stopped other than by a FORCE (never, if the multiplexer keeps its promise), and
 * whether a sleeping waiter's CPU went to the lock's holder or a waiter ahead of it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pvlock/abi.h"
#include "tests/unit/sched/sim.h"

struct locks_arg {
	struct sim *sim;
	struct sim_vm *vm;
};

bool sim_gate_open(const struct sim_vm *vm, uint32_t i)
{
	return __atomic_load_n(&vm->page->slot[i].gate, __ATOMIC_ACQUIRE) == SCHED_GATE_OPEN;
}

/* What the guest publishes: the lock is GPA 1, the barrier 2; waiters queue in ticket order. */
static void activity(void *arg, uint32_t i, struct sched_lock_activity *out)
{
	struct sim_vm *vm = arg;
	const struct sim_vcpu *v = &vm->v[i];

	*out = (struct sched_lock_activity){ 0 };
	if (vm->guest.barrier) {
		if (v->phase == SIM_QUEUED || v->phase == SIM_ASLEEP)
			*out = (struct sched_lock_activity){ .flags = SCHED_LOCK_BARRIER,
							     .lock = 2 };
		return;
	}
	switch (v->phase) {
	case SIM_CS:
		*out = (struct sched_lock_activity){ .flags = SCHED_LOCK_HOLDING, .lock = 1 };
		break;
	case SIM_QUEUED:
	case SIM_ASLEEP:
		*out = (struct sched_lock_activity){ .flags = SCHED_LOCK_QUEUED,
						     .lock = 1,
						     .since = v->wait_since };
		break;
	default:
		break;
	}
}

static struct sched_mux_locks locks_of(struct sim_vm *vm)
{
	return (struct sched_mux_locks){ .activity = activity, .arg = vm };
}

int sim_add_guest(struct sim *sim, int id, uint32_t nr, enum vmdef_sched_policy policy,
		  const struct sim_guest *guest, char *err, size_t err_len)
{
	struct sim_vm *vm = &sim->vm[id];
	int ret = sim_add(sim, id, nr, policy, err, err_len);

	if (ret)
		return ret;
	ret = sched_page_create(nr, &vm->page_fd, &vm->page);
	if (ret) {
		sim_remove(sim, id);
		return ret;
	}
	vm->paged = true;
	vm->guest = *guest;
	vm->holder = -1;
	for (uint32_t i = 0; i < nr; i++) {
		vm->v[i].phase = SIM_NCS;
		vm->v[i].left = guest->ncs_steps ? guest->ncs_steps : 1;
		vm->v[i].was_open = true;
		sched_slot_set_state(&vm->page->slot[i], SCHED_VCPU_RUNNING);
	}
	return 0;
}

/* The thread switches away at the guest's release point if the host asked. */
static bool release_point(struct sim *sim, struct sim_vm *vm, uint32_t i)
{
	struct sched_mux_locks locks = locks_of(vm);

	if (!vm->guest.hints || !lks_hint_test(sched_page_hints(vm->page)->switch_req, i))
		return false;
	sched_mux_switch(vm->page, i, SCHED_OUT_RELEASE, -1, &locks, sim->now);
	return !sim_gate_open(vm, i);
}

static void take_ticket(struct sim *sim, struct sim_vm *vm, uint32_t i)
{
	struct sim_vcpu *v = &vm->v[i];

	v->wait_since = sim->now * 16 + i; /* distinct, in queueing order */
	v->ticket = vm->tail++;
	v->phase = SIM_QUEUED;
	v->spun = 0;
}

/* The unlock's hand-off: the next ticket's holder wakes if it sleeps. */
static void unlock(struct sim_vm *vm)
{
	vm->head++;
	vm->holder = -1;
	for (uint32_t k = 0; k < vm->nr; k++) {
		struct sim_vcpu *w = &vm->v[k];

		if (w->phase == SIM_ASLEEP && w->ticket == vm->head) {
			w->phase = SIM_QUEUED;
			w->woken = true;
			sched_mux_awake(vm->page, k);
		}
	}
}

/* A sleeping waiter's CPU must go to the holder or to a waiter ahead of it. */
static void check_handoff(struct sim_vm *vm, uint32_t from, int succ)
{
	const struct sim_vcpu *w = &vm->v[from], *s;

	if (succ < 0)
		return;
	s = &vm->v[succ];
	if (s->phase == SIM_CS || ((s->phase == SIM_QUEUED || s->phase == SIM_ASLEEP) &&
				   s->ticket - vm->head < w->ticket - vm->head))
		vm->handoffs_to_holder++;
	else
		vm->handoff_wrong++;
}

static void spin(struct sim *sim, struct sim_vm *vm, uint32_t i)
{
	struct sim_vcpu *v = &vm->v[i];
	struct sched_mux_locks locks = locks_of(vm);
	bool holder_stopped;
	int succ;

	if (vm->head == v->ticket) {
		v->phase = SIM_CS;
		v->left = vm->guest.cs_steps ? vm->guest.cs_steps : 1;
		vm->holder = (int)i;
		v->acquisitions++;
		vm->acquisitions++;
		return;
	}
	v->spun++;
	holder_stopped = vm->guest.hints && vm->holder >= 0 &&
			 lks_hint_test(sched_page_hints(vm->page)->gated, (uint32_t)vm->holder);
	if (!vm->guest.pv || (v->spun < vm->guest.spin_steps && !holder_stopped))
		return;
	v->phase = SIM_ASLEEP;
	sched_slot_set_state(&vm->page->slot[i], SCHED_VCPU_PVWAIT);
	succ = sched_mux_switch(vm->page, i, SCHED_OUT_WAIT, -1, &locks, sim->now);
	if (succ != -EAGAIN)
		check_handoff(vm, i, succ);
}

/* A barrier sleeper's CPU must go to a latecomer. */
static void check_barrier_handoff(struct sim_vm *vm, int succ)
{
	if (succ >= 0 && vm->v[succ].phase != SIM_NCS)
		vm->handoffs_early++;
}

/*
 * Barrier rounds: work, arrive; the last arrival releases the round; a waiter gives its CPU to
 * a stopped latecomer (YIELD_TO, as guest/locks/barrier.c), else spins, and (pv) sleeps after
 * spin_steps.
 */
static void barrier_step(struct sim *sim, struct sim_vm *vm, uint32_t i)
{
	struct sim_vcpu *v = &vm->v[i];
	struct sched_mux_locks locks = locks_of(vm);
	const struct lks_sched_hints *hints = sched_page_hints(vm->page);
	int late = -1, succ;

	if (v->phase == SIM_NCS) {
		if (--v->left)
			return;
		v->left = vm->guest.ncs_steps ? vm->guest.ncs_steps : 1;
		if (++vm->arrived == vm->nr) {
			vm->arrived = 0;
			vm->rounds++;
			for (uint32_t k = 0; k < vm->nr; k++) {
				if (vm->v[k].phase == SIM_ASLEEP)
					sched_mux_awake(vm->page, k);
				if (k != i)
					vm->v[k].phase = SIM_NCS;
			}
			v->round++;
			release_point(sim, vm, i);
			return;
		}
		v->phase = SIM_QUEUED;
		v->spun = 0;
	}
	if (v->phase != SIM_QUEUED)
		return;
	for (uint32_t k = 0; k < vm->nr && vm->guest.hints && late < 0; k++)
		if (vm->v[k].phase == SIM_NCS && lks_hint_test(hints->gated, k))
			late = (int)k;
	if (late >= 0 && vm->guest.pv) {
		succ = sched_mux_switch(vm->page, i, SCHED_OUT_DIRECTED, late, &locks, sim->now);
		if (succ != -EAGAIN)
			check_barrier_handoff(vm, succ);
		return;
	}
	if (!vm->guest.pv || ++v->spun < vm->guest.spin_steps)
		return;
	v->phase = SIM_ASLEEP;
	sched_slot_set_state(&vm->page->slot[i], SCHED_VCPU_PVWAIT);
	succ = sched_mux_switch(vm->page, i, SCHED_OUT_WAIT, -1, &locks, sim->now);
	if (succ != -EAGAIN)
		check_barrier_handoff(vm, succ);
}

/* One step of a guest whose vCPU is on a host CPU. */
static void guest_step(struct sim *sim, struct sim_vm *vm, uint32_t i)
{
	struct sim_vcpu *v = &vm->v[i];
	struct sched_mux_locks locks = locks_of(vm);
	uint32_t request =
		__atomic_load_n(&sched_page_mux(vm->page)->vcpu[i].request, __ATOMIC_ACQUIRE);

	if (v->kicked) {
		v->kicked = false;
		if (sched_mux_kicked(vm->page, i, &locks, sim->now) != -EAGAIN &&
		    request == SCHED_MUX_FORCE)
			v->forced = true;
	}
	if (!sim_gate_open(vm, i))
		return;
	if (vm->guest.barrier) {
		barrier_step(sim, vm, i);
		return;
	}
	switch (v->phase) {
	case SIM_NCS:
		if (v->resume_lock || --v->left == 0) {
			v->resume_lock = false;
			if (release_point(sim, vm, i)) {
				v->resume_lock = true;
				break;
			}
			take_ticket(sim, vm, i);
			spin(sim, vm, i);
		}
		break;
	case SIM_QUEUED:
		spin(sim, vm, i);
		break;
	case SIM_CS:
		if (--v->left)
			break;
		unlock(vm);
		v->phase = SIM_NCS;
		v->left = vm->guest.ncs_steps ? vm->guest.ncs_steps : 1;
		release_point(sim, vm, i);
		break;
	default:
		break;
	}
}

/*
 * Gates that closed this step: a holder or spinning waiter only by a FORCE.  Gates that
 * opened: never beyond the slots (vCPUs whose slots the scheduler lent not counted).
 */
static void check_gates(struct sim_vm *vm)
{
	const struct sched_mux *mux = sched_page_mux(vm->page);
	uint32_t open = 0, counted = 0;
	bool opened = false;

	for (uint32_t i = 0; i < vm->nr; i++) {
		struct sim_vcpu *v = &vm->v[i];
		bool now_open = sim_gate_open(vm, i);

		open += now_open;
		/* Lent: seen halted behind this very opening of its gate. */
		counted += now_open && !(mux->vcpu[i].idle &&
					 mux->vcpu[i].idle_open_ns == vm->page->slot[i].open_ns);
		opened |= now_open && !v->was_open;
		if (v->was_open && !now_open && !v->forced &&
		    (v->phase == SIM_CS || v->phase == SIM_QUEUED))
			vm->gated_holding++;
		if (!now_open)
			v->forced = false;
		v->was_open = now_open;
	}
	if (open > vm->open_max)
		vm->open_max = open;
	if (opened && mux->slots && counted > mux->slots)
		vm->over_opens++;
}

void sim_guest_step(struct sim *sim)
{
	for (int id = 0; id < SIM_MAX_VMS; id++) {
		struct sim_vm *vm = &sim->vm[id];
		struct sched_mux_locks locks = locks_of(vm);

		if (!vm->present || !vm->paged)
			continue;
		for (uint32_t i = 0; i < vm->nr; i++) {
			struct sim_vcpu *v = &vm->v[i];
			struct sched_slot *slot = &vm->page->slot[i];

			if (v->cpu >= 0)
				guest_step(sim, vm, i);
			/*
			 * Its thread at the closed gate looks for a free slot when it gets there
			 * (once off its CPU: leaving the guest takes a step), when woken there (a
			 * nudge), and every GATE_RECHECK_NS, as in sched_gate_pass().
			 */
			if (v->phase != SIM_ASLEEP && !sim_gate_open(vm, i) && v->cpu < 0 &&
			    (!v->at_gate || v->nudged || sim->now >= v->recheck)) {
				if (!v->at_gate)
					sched_slot_set_state(slot, SCHED_VCPU_STOPPED);
				v->at_gate = true;
				v->nudged = false;
				v->recheck = sim->now + 50 * 1000000ull;
				if (sched_mux_admit(vm->page, i, v->woken, &locks, sim->now))
					v->entry = sim->now;
			}
			if (sim_gate_open(vm, i) && v->phase != SIM_ASLEEP) {
				sched_slot_set_state(slot, SCHED_VCPU_RUNNING);
				v->woken = false;
				v->at_gate = false;
			}
			v->busy = v->phase != SIM_ASLEEP;
			if (!v->busy)
				slot->pvwait_ns += SIM_STEP_NS; /* as the worker counts a pv WAIT */
			v->gate_open = sim_gate_open(vm, i);
			__atomic_store_n(&slot->cpu_ns, v->exec, __ATOMIC_RELAXED);
		}
		check_gates(vm);
	}
}

void sim_guest_observe(struct sim *sim, int id)
{
	struct sim_vm *vm = &sim->vm[id];
	const struct sched_mux *mux = sched_page_mux(vm->page);

	for (uint32_t i = 0; i < vm->nr; i++) {
		struct sched_obs *o = &vm->obs[i];
		const struct sched_slot *slot = &vm->page->slot[i];
		struct sched_lock_activity a;

		activity(vm, i, &a);
		o->gate_open = sim_gate_open(vm, i);
		o->state = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
		o->open_ns = slot->open_ns;
		o->pvwait_ns = slot->pvwait_ns;
		o->request = __atomic_load_n(&mux->vcpu[i].request, __ATOMIC_ACQUIRE);
		o->request_ns = mux->vcpu[i].request_ns;
		o->lock = a.flags;
	}
}

/* As daemon/scheduler.c applies a VM's decisions. */
void sim_guest_decide(struct sim *sim, int id, const struct sched_decision *d)
{
	struct sim_vm *vm = &sim->vm[id];
	struct sched_mux *mux = sched_page_mux(vm->page);

	for (uint32_t i = 0; i < vm->nr; i++)
		if (d[i].affinity_changed)
			vm->v[i].affinity = d[i].affinity;
	if (d[0].mux_slots) {
		mux->alive_ns = sim->now;
		__atomic_store_n(&mux->slots, d[0].mux_slots, __ATOMIC_SEQ_CST);
		for (uint32_t i = 0; i < vm->nr; i++) {
			__atomic_store_n(&mux->vcpu[i].idle_open_ns, d[i].idle_open_ns,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&mux->vcpu[i].idle, d[i].idle, __ATOMIC_RELEASE);
			if (!d[i].request_changed)
				continue;
			mux->vcpu[i].successor = d[i].successor;
			mux->vcpu[i].request_ns = sim->now;
			__atomic_store_n(&mux->vcpu[i].request, d[i].request, __ATOMIC_SEQ_CST);
			sched_hint_switch(vm->page, i,
					  d[i].request != SCHED_MUX_ADMIT &&
						  d[i].request != SCHED_MUX_NONE);
			if (d[i].request == SCHED_MUX_CHECK || d[i].request == SCHED_MUX_FORCE)
				vm->v[i].kicked = true;
			if (d[i].request == SCHED_MUX_ADMIT)
				vm->v[i].nudged = true;
		}
		return;
	}
	__atomic_store_n(&mux->slots, 0, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < vm->nr; i++) {
		mux->vcpu[i].request = SCHED_MUX_NONE;
		sched_hint_switch(vm->page, i, false);
		if (d[i].gate_open)
			sched_gate_open(vm->page, i, sim->now);
		else
			sched_gate_close(vm->page, i, sim->now);
		vm->v[i].nudged = true; /* an opened gate wakes its thread */
	}
}
