/*
 * The pause-loop-exit path of the detector, for hosts whose CPUs have Intel PLE or AMD pause
 * filtering.  KVM handles those exits in the kernel (kvm_vcpu_on_spin: a directed yield to a
 * vCPU of the same VM that was preempted), so userspace sees them only as statistics:
 * directed_yield_attempted and directed_yield_successful climb while a vCPU spins.  A vCPU
 * whose attempt rate exceeds the threshold is spinning; that is a PLE episode, and a
 * successful yield rate shows the holder was indeed preempted.
 *
 * The hosts lockstep is developed on report no pause-loop exits at all (both statistics stay
 * 0), so this logic is verified with recorded statistic sequences in the unit tests.
 */
#include "pvlock/pvlock_internal.h"

void pvlock_ple_feed(struct pvlock_detector *det, uint64_t now_ns,
		     const struct pvlock_sample *samples)
{
	for (uint32_t i = 0; i < det->nr_vcpus; i++) {
		const struct pvlock_sample *s = &samples[i];
		struct pvlock_detector_vcpu *v = &det->vcpu[i];
		uint64_t dt, attempts;

		if (!s->has_ple) {
			v->ple_valid = false;
			continue;
		}
		if (v->ple_valid && now_ns > v->ple_ns &&
		    s->directed_yield_attempted >= v->ple_attempted) {
			dt = now_ns - v->ple_ns;
			attempts = s->directed_yield_attempted - v->ple_attempted;
			/*
			 * attempts / dt above the rate begins an episode; it lasts while the rate
			 * stays above half of it, so one quiet sample does not split an episode.
			 */
			if (attempts * 1000000000ull > det->ple_rate * dt ||
			    (pvlock_detector_active(det, PVLOCK_PLE, 0, i) &&
			     attempts * 2000000000ull > det->ple_rate * dt)) {
				pvlock_detector_observe(det, now_ns, PVLOCK_PLE, 0, i, 0);
				det->spinning++;
			}
		}
		v->ple_valid = true;
		v->ple_ns = now_ns;
		v->ple_attempted = s->directed_yield_attempted;
		v->ple_successful = s->directed_yield_successful;
	}
}
