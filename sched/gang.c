/*
 * Gang slices: the VMs taking part in gang scheduling (policy gang, or adaptive while it
 * co-schedules and fits) rotate through time slices of their quantum.  A slice holds as many
 * of them as fit at once: their vCPU counts add up to no more than the host's CPUs and their
 * placed CPUs do not overlap.  Within a slice every vCPU of each chosen VM has its gate open;
 * every other participant's gates are closed.  A slice ends early when its VMs' vCPUs all
 * went idle, so halted guests do not waste the machine.
 *
 * Every slice is logged with its VMs; gang_account measures what the others ran meanwhile,
 * which is how "VMs never interleave within a slice" is checked against reality.
 */
#include <string.h>

#include "sched/engine_internal.h"

static bool overlaps(const struct engine_vm *a, const struct engine_vm *b)
{
	for (uint32_t i = 0; i < a->p.nr_vcpus; i++)
		for (uint32_t j = 0; j < b->p.nr_vcpus; j++)
			if (a->place[i] == b->place[j])
				return true;
	return false;
}

/* Whether every vCPU of the slice idled through a whole sample interval within the slice
 * (an interval that began before it saw them stopped at their gates). */
static bool slice_idle(const struct sched *s)
{
	for (unsigned k = 0; k < s->slice_n; k++) {
		const struct engine_vm *vm = engine_find(s, s->slice_vm[k]);

		if (!vm || vm->prev_sample_ns < s->slice_start)
			return false;
		for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
			if (vm->v[i].act != ACT_IDLE)
				return false;
	}
	return true;
}

static void log_slice(struct sched *s, uint64_t now)
{
	struct sched_slice_record *r;

	if (!s->slice_n)
		return;
	r = &s->log[s->log_head];
	s->log_head = (s->log_head + 1) % SLICE_LOG;
	if (s->log_count < SLICE_LOG)
		s->log_count++;
	r->start_ns = s->slice_start;
	r->end_ns = now;
	for (unsigned k = 0; k < SLICE_VMS; k++)
		r->vm[k] = k < s->slice_n ? s->slice_vm[k] : -1;
}

/*
 * Closes the slice that ends now: did anyone outside it run meanwhile?  Only the settled part
 * of the slice counts: its first SLICE_SETTLE_NS hold the switch itself (the outgoing vCPUs
 * leaving KVM_RUN) and samples that straddle it.
 */
static void end_slice(struct sched *s, uint64_t now)
{
	uint64_t len = now - s->slice_start;
	bool interleaved = false;

	len = len > SLICE_SETTLE_NS ? len - SLICE_SETTLE_NS : 0;
	for (unsigned k = 0; k < s->nr_vms; k++) {
		struct engine_vm *vm = s->vms[k];

		if (!vm->in_slice && len && vm->slice_exec * 10 > len && engine_in_gang(vm, now))
			interleaved = true;
		vm->slice_exec = 0;
	}
	for (unsigned k = 0; k < s->slice_n; k++) {
		struct engine_vm *vm = engine_find(s, s->slice_vm[k]);

		if (vm && interleaved)
			vm->st.interleaved_slices++;
	}
	log_slice(s, now);
	s->slice_n = 0;
}

static void start_slice(struct sched *s, uint64_t now)
{
	uint32_t cpus = 0;

	for (unsigned k = 0; k < s->nr_vms; k++)
		s->vms[k]->in_slice = false;
	for (unsigned n = 0; n < s->nr_vms && s->slice_n < SLICE_VMS; n++) {
		unsigned idx = (s->rr + n) % s->nr_vms;
		struct engine_vm *vm = s->vms[idx];
		bool fits = cpus + vm->p.nr_vcpus <= s->host.nr_cpus;

		if (!engine_in_gang(vm, now) || !fits)
			continue;
		for (unsigned k = 0; k < s->slice_n && fits; k++)
			fits = !overlaps(vm, engine_find(s, s->slice_vm[k]));
		if (!fits)
			continue;
		if (s->slice_n == 0) {
			s->rr = idx + 1; /* the next slice starts after the first VM of this one */
			s->slice_end = now + vm->p.quantum_ns;
		}
		s->slice_vm[s->slice_n++] = vm->id;
		vm->in_slice = true;
		vm->costart_at = now;
		vm->st.slices++;
		for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
			vm->v[i].st.slices++;
	}
	s->slice_start = now;
}

void gang_tick(struct sched *s, uint64_t now)
{
	unsigned participants = 0;
	bool current_valid = s->slice_n > 0;

	for (unsigned k = 0; k < s->nr_vms; k++)
		participants += engine_in_gang(s->vms[k], now);
	for (unsigned k = 0; k < s->slice_n && current_valid; k++) {
		const struct engine_vm *vm = engine_find(s, s->slice_vm[k]);

		current_valid = vm && engine_in_gang(vm, now);
	}
	if (current_valid && now < s->slice_end &&
	    !(participants > s->slice_n && now > s->slice_start && slice_idle(s)))
		return;
	if (s->slice_n)
		end_slice(s, now);
	if (participants)
		start_slice(s, now);
}

void gang_account(struct sched *s, struct engine_vm *vm, uint64_t now)
{
	/* Only run time measured wholly inside the settled part of the slice counts. */
	if (vm->in_slice || vm->prev_sample_ns < s->slice_start + SLICE_SETTLE_NS)
		return;
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
		vm->slice_exec += vm->v[i].d_exec;
}

bool sched_vm_gated_out(const struct sched *s, int id, uint64_t now)
{
	const struct engine_vm *vm = engine_find(s, id);

	return vm && engine_in_gang(vm, now) && !vm->in_slice;
}

void gang_forget(struct sched *s, int id)
{
	for (unsigned k = 0; k < s->slice_n; k++) {
		if (s->slice_vm[k] != id)
			continue;
		s->slice_vm[k] = s->slice_vm[--s->slice_n];
		break;
	}
	for (unsigned k = 0; k < s->nr_vms; k++)
		if (s->vms[k]->id == id)
			s->vms[k]->in_slice = false;
}

unsigned sched_recent_slices(const struct sched *s, struct sched_slice_record *out, unsigned n)
{
	unsigned count = n < s->log_count ? n : s->log_count;
	unsigned start = (s->log_head + SLICE_LOG - count) % SLICE_LOG;

	for (unsigned i = 0; i < count; i++)
		out[i] = s->log[(start + i) % SLICE_LOG];
	return count;
}
