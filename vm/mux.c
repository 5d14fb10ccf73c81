/*
 * lockstep-vm's side of the multiplexer (sched/mux_gate.c does the switching): the VM's mux
 * lock around every gate change its vCPU threads make, the guest's lock activity as the
 * multiplexer needs it (read from the guest's shared page, pvlock/abi.h), the scheduling hints
 * page mapped read-only into the guest, and the hand-off latency.
 *
 * Entry points, all on the vCPU's own thread while it is out of KVM_RUN: its closed gate
 * (vm_mux_try_open, looking for a free slot), a kick (vm_mux_kicked: the scheduler's CHECK or
 * FORCE), and the doorbell calls SWITCH, YIELD_TO and WAIT (vm_mux_switch_call, vm_mux_yield_to,
 * vm_mux_sleeping).  The control thread writes the per-vCPU lock summary the scheduler reads
 * (vm_mux_sample), and lets go of the gates if lockstepd's scheduler stopped deciding without
 * handing them back (it died).  Nothing here runs while lockstepd's scheduler owns the gates
 * (slots 0).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pvlock/abi.h"
#include "vm/vm_internal.h"

#define SLOT_HINTS 2 /* KVM memory slot of the hints page (vm/memory.c uses 0 and 1) */

struct vm_mux {
	struct vm *vm;
	pthread_mutex_t lock;
	struct sched_mux *area; /* in the sched page */
	struct sched_mux_locks locks;
	bool hints_mapped;
};

/* What the guest published for vCPU i: holding, queued for a lock, or at a barrier. */
static void activity(void *arg, uint32_t i, struct sched_lock_activity *out)
{
	struct vm *vm = arg;
	uint32_t nr = 0, state;
	const struct lks_shared_page *page =
		vm->lockwatch ? vm_lockwatch_shared(vm->lockwatch, &nr) : NULL;
	const volatile struct lks_vcpu_pub *pub;
	uint64_t holding, waiting;

	*out = (struct sched_lock_activity){ 0 };
	if (!page || i >= nr)
		return;
	pub = &page->vcpu[i];
	holding = pub->holding;
	waiting = pub->waiting;
	state = pub->state;
	out->since = pub->wait_start_tsc;
	if (holding) {
		out->flags |= SCHED_LOCK_HOLDING;
		out->lock = holding;
	}
	if (waiting && state == LKS_STATE_BARRIER) {
		out->flags |= SCHED_LOCK_BARRIER;
		out->lock = waiting;
	} else if (waiting && (state == LKS_STATE_SPINNING || state == LKS_STATE_SLEEPING)) {
		out->flags |= SCHED_LOCK_QUEUED;
		out->lock = waiting; /* the one it waits for counts, even holding another */
	}
}

int vm_mux_new(struct vm *vm, struct vm_mux **out)
{
	struct lks_sched_hints *hints = sched_page_hints(vm->sched_page);
	struct vm_mux *mx = calloc(1, sizeof(*mx));
	int ret;

	if (!mx)
		return -ENOMEM;
	mx->vm = vm;
	mx->area = sched_page_mux(vm->sched_page);
	mx->locks = (struct sched_mux_locks){ .activity = activity, .arg = vm };
	pthread_mutex_init(&mx->lock, NULL);
	/* Read-only for the guest; a KVM without read-only slots gets a writable one, which a
	 * guest can only use to mislead itself: the host never reads the hints back. */
	ret = hv_vm_set_memory(vm->hv, SLOT_HINTS, LKS_HINTS_GPA_DEFAULT, LKS_HINTS_SIZE, hints,
			       true);
	if (ret)
		ret = hv_vm_set_memory(vm->hv, SLOT_HINTS, LKS_HINTS_GPA_DEFAULT, LKS_HINTS_SIZE,
				       hints, false);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "cannot map the scheduling hints page: %s",
			 strerror(-ret));
		vm_mux_free(mx);
		return ret;
	}
	mx->hints_mapped = true;
	*out = mx;
	return 0;
}

void vm_mux_free(struct vm_mux *mx)
{
	if (!mx)
		return;
	pthread_mutex_destroy(&mx->lock);
	free(mx);
}

static bool active(const struct vm_mux *mx)
{
	return mx && __atomic_load_n(&mx->area->slots, __ATOMIC_ACQUIRE);
}

bool vm_mux_try_open(struct vm_vcpu *vcpu)
{
	struct vm_mux *mx = vcpu->vm->mux;
	bool opened;

	if (!active(mx))
		return false;
	pthread_mutex_lock(&mx->lock);
	opened = sched_mux_admit(vcpu->vm->sched_page, vcpu->index, vcpu->mux_woken, &mx->locks,
				 util_now_ns());
	pthread_mutex_unlock(&mx->lock);
	vcpu->mux_self_opened |= opened;
	return opened;
}

void vm_mux_kicked(struct vm_vcpu *vcpu)
{
	struct vm_mux *mx = vcpu->vm->mux;

	if (!active(mx))
		return;
	pthread_mutex_lock(&mx->lock);
	sched_mux_kicked(vcpu->vm->sched_page, vcpu->index, &mx->locks, util_now_ns());
	pthread_mutex_unlock(&mx->lock);
}

int64_t vm_mux_switch_call(struct vm *vm, uint32_t vcpu)
{
	struct vm_mux *mx = vm->mux;
	int ret;

	if (!active(mx))
		return LKS_SWITCH_NOT_ASKED;
	pthread_mutex_lock(&mx->lock);
	ret = sched_mux_switch(vm->sched_page, vcpu, SCHED_OUT_RELEASE, -1, &mx->locks,
			       util_now_ns());
	pthread_mutex_unlock(&mx->lock);
	return ret == -EAGAIN ? LKS_SWITCH_NOT_ASKED : LKS_SWITCH_DONE;
}

bool vm_mux_yield_to(struct vm *vm, uint32_t from, uint32_t to)
{
	struct vm_mux *mx = vm->mux;
	int ret;

	if (!active(mx))
		return false;
	pthread_mutex_lock(&mx->lock);
	ret = sched_mux_switch(vm->sched_page, from, SCHED_OUT_DIRECTED, (int)to, &mx->locks,
			       util_now_ns());
	pthread_mutex_unlock(&mx->lock);
	return ret >= 0;
}

void vm_mux_sleeping(struct vm *vm, uint32_t vcpu)
{
	struct vm_mux *mx = vm->mux;

	if (!active(mx))
		return;
	pthread_mutex_lock(&mx->lock);
	sched_mux_switch(vm->sched_page, vcpu, SCHED_OUT_WAIT, -1, &mx->locks, util_now_ns());
	pthread_mutex_unlock(&mx->lock);
	vm->vcpus[vcpu].mux_woken = true; /* whatever wakes it, it will want a slot back */
}

void vm_mux_awake(struct vm *vm, uint32_t vcpu)
{
	struct vm_mux *mx = vm->mux;

	if (!active(mx)) {
		sched_slot_set_state(vm->vcpus[vcpu].slot, SCHED_VCPU_RUNNING);
		return;
	}
	pthread_mutex_lock(&mx->lock);
	sched_mux_awake(vm->sched_page, vcpu);
	pthread_mutex_unlock(&mx->lock);
}

/* Gate opened by another vCPU's hand-off -> this one passed it: the host's share of a switch. */
void vm_mux_passed(struct vm_vcpu *vcpu, bool waited)
{
	struct vm_mux *mx = vcpu->vm->mux;
	struct sched_mux *area;
	uint64_t entry, opened, lat, max;
	unsigned bucket;

	if (waited && !vcpu->mux_self_opened && active(mx)) {
		area = mx->area;
		entry = __atomic_load_n(&vcpu->slot->entry_ns, __ATOMIC_RELAXED);
		opened = __atomic_load_n(&vcpu->slot->open_ns, __ATOMIC_RELAXED);
		lat = entry > opened ? entry - opened : 0;
		bucket = (unsigned)(lat / SCHED_MUX_HIST_NS);
		if (bucket >= SCHED_MUX_HIST)
			bucket = SCHED_MUX_HIST - 1;
		__atomic_add_fetch(&area->handoff_hist[bucket], 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&area->handoff_ns, lat, __ATOMIC_RELAXED);
		max = __atomic_load_n(&area->handoff_max_ns, __ATOMIC_RELAXED);
		while (lat > max &&
		       !__atomic_compare_exchange_n(&area->handoff_max_ns, &max, lat, false,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	vcpu->mux_self_opened = false;
	vcpu->mux_woken = false;
}

void vm_mux_sample(struct vm *vm)
{
	struct vm_mux *mx = vm->mux;
	bool orphaned;

	if (!mx)
		return;
	if (active(mx)) {
		pthread_mutex_lock(&mx->lock);
		orphaned = sched_mux_orphaned(vm->sched_page, util_now_ns());
		pthread_mutex_unlock(&mx->lock);
		if (orphaned)
			util_log(&vm->log, UTIL_LOG_WARN,
				 "lockstepd's scheduler stopped multiplexing the vCPUs without a "
				 "word: they run unmultiplexed");
	}
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		struct sched_lock_activity a;

		activity(vm, i, &a);
		__atomic_store_n(&mx->area->vcpu[i].lock, a.flags, __ATOMIC_RELAXED);
	}
}

bool vm_mux_hints_mapped(const struct vm_mux *mx)
{
	return mx && mx->hints_mapped;
}
