/*
 * Relaxed co-scheduling (as VMware ESX does it) and the adaptive policy built on it.
 *
 * Relaxed: each vCPU's progress is its run time while active.  An idle vCPU (halted, asleep
 * in a pv WAIT) holds nobody back; when it becomes active again it resumes at the progress of
 * its slowest active sibling.  A vCPU more than the skew bound ahead of the slowest active
 * sibling is co-stopped (its gate closed) until its lead falls below half the bound, which
 * hands its CPU to the laggards.
 *
 * Adaptive: plain host scheduling until a preemption episode is reported; then, for a hold
 * time after the last episode, co-scheduling (gang slices when the VM fits its CPUs, relaxed
 * otherwise), and for a few milliseconds the preempted vCPU runs first: its running siblings
 * (spinning on what it holds) are stopped to hand it their CPU.
 */
#include "sched/engine_internal.h"

static bool active(const struct engine_vcpu *v)
{
	return v->costopped || v->act != ACT_IDLE;
}

void relaxed_decide(struct engine_vm *vm, uint64_t dt)
{
	uint64_t min_progress = UINT64_MAX;
	uint32_t n = vm->p.nr_vcpus;

	for (uint32_t i = 0; i < n; i++) {
		struct engine_vcpu *v = &vm->v[i];

		if (active(v) && v->was_active)
			v->progress += v->d_exec;
		if (active(v) && v->was_active && v->progress < min_progress)
			min_progress = v->progress;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct engine_vcpu *v = &vm->v[i];

		/* Back from idle: level with the slowest active sibling. */
		if (active(v) && !v->was_active)
			v->progress = min_progress != UINT64_MAX ? min_progress : v->progress;
		v->was_active = active(v);
		if (v->was_active && v->progress < min_progress)
			min_progress = v->progress;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct engine_vcpu *v = &vm->v[i];
		uint64_t lead;

		if (!v->was_active) {
			v->costopped = false;
			v->gate_open = true;
			continue;
		}
		lead = v->progress - min_progress;
		if (lead > v->st.max_skew_ns)
			v->st.max_skew_ns = lead;
		if (lead > vm->st.max_skew_ns)
			vm->st.max_skew_ns = lead;
		if (!v->costopped && lead > vm->p.skew_ns) {
			v->costopped = true;
			v->st.slices++; /* each co-stop ends one stretch of running */
		} else if (v->costopped && lead * 2 <= vm->p.skew_ns) {
			v->costopped = false;
		}
		v->gate_open = !v->costopped;
	}
	(void)dt;
}

void adaptive_decide(struct engine_vm *vm, uint64_t now, uint64_t dt)
{
	uint32_t n = vm->p.nr_vcpus;

	if (now < vm->boost_until && vm->boost_vcpu < n) {
		for (uint32_t i = 0; i < n; i++)
			vm->v[i].gate_open = i == vm->boost_vcpu || vm->v[i].act == ACT_IDLE;
		return;
	}
	if (now < vm->cosched_until) {
		relaxed_decide(vm, dt);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		vm->v[i].gate_open = true;
		vm->v[i].costopped = false;
		vm->v[i].was_active = false;
	}
}
