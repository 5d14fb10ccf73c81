/*
 * The KVM-native paravirtual path of the detector, for Linux guests.  KVM handles their pv
 * spinlock waits (HLT, woken by PV_UNHALT) and kicks (KVM_HC_KICK_CPU), PV IPIs
 * (KVM_HC_SEND_IPI) and PV sched yields (KVM_HC_SCHED_YIELD: a directed yield to a vCPU the
 * guest sees preempted) in the kernel; userspace sees them only in each vCPU's statistics:
 * hypercalls, halt_exits, halt_wakeup, directed_yield_attempted/successful, and
 * preemption_reported (KVM marked the vCPU preempted in the guest's steal-time area when the
 * host scheduled it out while it ran).
 *
 * A KVM episode: a vCPU was preempted during the sample (its preemption_reported rose, or
 * its thread waited for a host CPU) while other vCPUs of the VM made paravirtual calls in it
 * (hypercalls or directed yields): they kick, send IPIs and yield around the missing vCPU,
 * which is the culprit, and they are its waiters.  Those of them that ran and yielded count
 * as spinning for the pressure: a PV sched yield is a vCPU waiting for a preempted one (the
 * answer to an IPI) that would otherwise spin; a pv lock waiter halts, and costs no CPU.
 *
 * Verified with recorded statistic sequences (tests/unit/pvlock) and with Linux guests in the
 * nested test bed, where KICK_CPU and PV IPIs reach KVM.
 */
#include "pvlock/pvlock_internal.h"

void pvlock_kvm_feed(struct pvlock_detector *det, uint64_t now_ns,
		     const struct pvlock_sample *samples)
{
	uint32_t callers = 0, yielders = 0, preempted = 0;

	for (uint32_t i = 0; i < det->nr_vcpus; i++) {
		const struct pvlock_sample *s = &samples[i];
		struct pvlock_detector_vcpu *v = &det->vcpu[i];
		bool counted = v->kvm_valid && s->hypercalls >= v->kvm_hypercalls &&
			       s->directed_yield_attempted >= v->kvm_yields &&
			       s->preemption_reported >= v->kvm_preempted;

		v->kvm_calls = v->kvm_yielding = v->kvm_was_preempted = false;
		if (!s->has_kvm) {
			v->kvm_valid = false;
			continue;
		}
		if (counted) {
			v->kvm_calls = s->hypercalls > v->kvm_hypercalls ||
				       s->directed_yield_attempted > v->kvm_yields;
			v->kvm_yielding = s->directed_yield_attempted > v->kvm_yields &&
					  s->run == PVLOCK_RUN_RUNNING;
			v->kvm_was_preempted = s->preemption_reported > v->kvm_preempted ||
					       s->run == PVLOCK_RUN_PREEMPTED;
		}
		v->kvm_valid = true;
		v->kvm_hypercalls = s->hypercalls;
		v->kvm_yields = s->directed_yield_attempted;
		v->kvm_preempted = s->preemption_reported;
		callers += v->kvm_calls;
		yielders += v->kvm_yielding;
		preempted += v->kvm_was_preempted;
	}
	if (!preempted || !callers)
		return;
	for (uint32_t i = 0; i < det->nr_vcpus; i++) {
		const struct pvlock_detector_vcpu *v = &det->vcpu[i];
		uint32_t waiters = callers - v->kvm_calls;

		if (v->kvm_was_preempted && waiters)
			pvlock_detector_observe(det, now_ns, PVLOCK_KVM, 0, i, waiters);
	}
	det->spinning += yielders;
}
