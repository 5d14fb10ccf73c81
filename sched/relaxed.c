/*
 * Relaxed co-scheduling (as VMware ESX does it) and the adaptive policy built on it.
 *
 * Relaxed: each vCPU's progress is its run time while active.  An idle vCPU (halted, asleep
 * in a pv WAIT) holds nobody back; when it becomes active again it resumes at the progress of
 * its slowest active sibling.  A vCPU more than the skew bound ahead of a sibling that waits
 * is co-stopped (its gate closed), which hands its CPU to the laggard; a VM wider than its
 * CPUs keeps only as many vCPUs running as it has CPUs, the least advanced ones.
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

/*
 * Progress accounting: run time while active.  An idle vCPU resumes level with the slowest
 * active sibling, so time it spent halted does not count against it.
 */
static uint64_t update_progress(struct engine_vm *vm)
{
	uint64_t min_progress = UINT64_MAX;
	uint32_t n = vm->p.nr_vcpus;

	for (uint32_t i = 0; i < n; i++) {
		struct engine_vcpu *v = &vm->v[i];

		if (v->was_active)
			v->progress += v->d_exec;
		if (v->was_active && v->progress < min_progress)
			min_progress = v->progress;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct engine_vcpu *v = &vm->v[i];

		if (active(v) && !v->was_active && min_progress != UINT64_MAX)
			v->progress = min_progress;
		v->was_active = active(v);
		if (v->was_active && v->progress < min_progress)
			min_progress = v->progress;
	}
	return min_progress;
}

/* The active vCPU with the most (most == true) or least progress among open or closed ones. */
static int pick(const struct engine_vm *vm, bool open, bool most)
{
	int best = -1;

	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		const struct engine_vcpu *v = &vm->v[i];

		if (!v->was_active || v->costopped == open)
			continue;
		if (best < 0 || (most ? v->progress > vm->v[best].progress :
					v->progress < vm->v[best].progress))
			best = (int)i;
	}
	return best;
}

/*
 * Which gates are open: never more active vCPUs than the VM has CPUs (more would only be
 * time-sliced by the host, which lets siblings drift apart by whole host slices), the slowest
 * first; a running vCPU gives way to a stopped one once it leads it by more than the bound,
 * and any vCPU leading the slowest active one by more than the bound stops (its siblings may
 * have lost their CPUs to other work).
 */
void relaxed_decide(struct engine_vm *vm, uint64_t dt)
{
	uint32_t n = vm->p.nr_vcpus, cpus = vm->distinct_cpus ? vm->distinct_cpus : 1, open = 0;
	uint64_t min_progress = update_progress(vm);
	/* A lead grows for another interval before a co-stop lands: act one interval early. */
	uint64_t limit = vm->p.skew_ns > 2 * dt ? vm->p.skew_ns - dt : vm->p.skew_ns / 2;
	int o, c;

	for (uint32_t i = 0; i < n; i++) {
		struct engine_vcpu *v = &vm->v[i];

		if (!v->was_active) {
			v->costopped = false; /* idle: it needs no CPU and holds nobody back */
			continue;
		}
		if (v->progress - min_progress > v->st.max_skew_ns)
			v->st.max_skew_ns = v->progress - min_progress;
		if (v->progress - min_progress > vm->st.max_skew_ns)
			vm->st.max_skew_ns = v->progress - min_progress;
		if (!v->costopped && v->progress - min_progress > limit) {
			v->costopped = true;
			v->st.slices++;
		}
		open += !v->costopped;
	}
	for (; open > cpus && (o = pick(vm, true, true)) >= 0; open--) {
		vm->v[o].costopped = true;
		vm->v[o].st.slices++;
	}
	for (; open < cpus && (c = pick(vm, false, false)) >= 0 &&
	       vm->v[c].progress - min_progress <= vm->p.skew_ns;
	     open++)
		vm->v[c].costopped = false;
	while ((o = pick(vm, true, true)) >= 0 && (c = pick(vm, false, false)) >= 0 &&
	       vm->v[o].progress > vm->v[c].progress + limit) {
		vm->v[o].costopped = true;
		vm->v[o].st.slices++;
		vm->v[c].costopped = false;
	}
	for (uint32_t i = 0; i < n; i++)
		vm->v[i].gate_open = !vm->v[i].costopped;
}

void adaptive_decide(struct engine_vm *vm, uint64_t now, uint64_t dt)
{
	uint32_t n = vm->p.nr_vcpus;

	if (now < vm->boost_until && vm->boost_vcpu < n) {
		for (uint32_t i = 0; i < n; i++)
			vm->v[i].gate_open = i == vm->boost_vcpu;
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
