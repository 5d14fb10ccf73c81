/*
 * Gang slices: the VMs taking part in gang scheduling (policy gang, or adaptive while it
 * co-schedules and fits) rotate through time slices of their quantum.  A slice holds as many
 * of them as fit at once: their vCPU counts add up to no more than the host's CPUs and their
 * placed CPUs do not overlap.  Within a slice every vCPU of each chosen VM has its gate open;
 * every other participant's gates are closed.  A slice ends early when its VMs' vCPUs all
 * went idle, so halted guests do not waste the machine.
 *
 * Interrupt boost: a VM with boost on (its interrupt steering is) that has an interrupt
 * raised while it is gated out gets a short slice of its own at once -- once the running slice
 * has run its minimum and has as much left, so two interrupt-heavy VMs cannot thrash -- and
 * the preempted slice then resumes for the time it had left.  Fairness is kept by accounting,
 * as Xen's credit scheduler boosts only VMs under their share: the boosted time is a debt
 * paid from the VM's next regular slices (shortened, or skipped once a whole quantum is owed),
 * and a VM two quanta ahead is refused until its regular turn.  Over any run a VM gets its
 * rotation's share within about two quanta plus a boost slice.
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
		if (vm)
			vm->st.slice_ns += now - s->slice_start;
	}
	log_slice(s, now);
	s->slice_n = 0;
}

static void enter_slice(struct sched *s, struct engine_vm *vm, uint64_t now)
{
	s->slice_vm[s->slice_n++] = vm->id;
	vm->in_slice = true;
	vm->costart_at = now;
	/* Running: whatever interrupt waited is delivered now. */
	vm->irq_pending = vm->irq_refused = vm->irq_deferred = false;
}

/*
 * The shortest a slice runs before a boost may cut it, and the least it must have left: at
 * least as long as the last boosted slice lasted, switches included (which a busy host
 * stretches), so the preempted VM runs as much between boosts as the boosted one did, and
 * the shares stay even without refusals; at most a quarter of a quantum and four minimum
 * runs.  At half a quantum a slice would have no moment with both its minimum run behind it
 * and as much left: one boosted slice stretched past that by a late wake-up stopped every
 * later boost (boost_ran is only renewed by a boost), and interrupts waited whole slices.
 */
static uint64_t boost_min_run(const struct sched *s, uint64_t quantum)
{
	uint64_t min_run =
		s->boost_ran > SCHED_BOOST_MIN_RUN_NS ? s->boost_ran : SCHED_BOOST_MIN_RUN_NS;
	uint64_t most =
		quantum / 4 < 4 * SCHED_BOOST_MIN_RUN_NS ? quantum / 4 : 4 * SCHED_BOOST_MIN_RUN_NS;

	return min_run < most ? min_run : most;
}

/* A whole quantum run ahead in boosts: it skips a regular slice to pay it back. */
static bool pays_back(const struct engine_vm *vm)
{
	return vm->irq_debt >= vm->p.quantum_ns;
}

static void skip_slice_to_pay(struct engine_vm *vm)
{
	vm->irq_debt -= vm->p.quantum_ns;
	vm->st.irq_boost_paid_slices++;
}

/*
 * Two quanta ahead: no more boosts until its turn.  Not one: boosted slices run a little
 * over when the scheduler wakes late, and a VM whose device keeps raising would then be
 * refused every few slices, its interrupts waiting a slice each time.
 */
static bool over_share(const struct engine_vm *vm)
{
	return vm->irq_debt >= 2 * vm->p.quantum_ns;
}

/*
 * The next regular slice, in rotation.  A VM that boosted a quantum's worth ahead skips its
 * turn (while anyone else can run: VMs that boost into each other's slices pay a quantum
 * each instead), and one that boosted less has its slice shortened by its debt (down to the
 * minimum run): boosts move a VM's time forward, they do not add to it.
 */
static void start_slice(struct sched *s, uint64_t now)
{
	uint32_t cpus = 0;
	unsigned eligible = 0;
	uint64_t len = 0, cut = 0;

	for (unsigned k = 0; k < s->nr_vms; k++) {
		s->vms[k]->in_slice = false;
		eligible += engine_in_gang(s->vms[k], now) && !pays_back(s->vms[k]);
	}
	for (unsigned k = 0; k < s->nr_vms && !eligible; k++) {
		struct engine_vm *vm = s->vms[k];

		if (engine_in_gang(vm, now) && pays_back(vm))
			skip_slice_to_pay(vm);
	}
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
		if (eligible && pays_back(vm)) {
			skip_slice_to_pay(vm);
			continue;
		}
		if (s->slice_n == 0) {
			uint64_t most = vm->p.quantum_ns - boost_min_run(s, vm->p.quantum_ns);

			s->rr = idx + 1; /* the next slice starts after the first VM of this one */
			cut = vm->irq_debt < most ? vm->irq_debt : most;
			len = vm->p.quantum_ns - cut;
		}
		enter_slice(s, vm, now);
		vm->irq_debt -= vm->irq_debt < cut ? vm->irq_debt : cut;
		vm->st.slices++;
		for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
			vm->v[i].st.slices++;
	}
	s->slice_start = now;
	s->slice_end = now + len;
}

/* After a boosted slice: the slice it preempted runs on for the time it had left. */
static bool resume_slice(struct sched *s, uint64_t now)
{
	for (unsigned k = 0; k < s->nr_vms; k++)
		s->vms[k]->in_slice = false;
	for (unsigned k = 0; k < s->resume_n; k++) {
		struct engine_vm *vm = engine_find(s, s->resume_vm[k]);

		if (vm && engine_in_gang(vm, now))
			enter_slice(s, vm, now);
	}
	s->resume_n = 0;
	if (!s->slice_n)
		return false;
	s->slice_start = now;
	s->slice_end = now + s->resume_left;
	return true;
}

/* The VM an interrupt boost would run now, if any: the first in rotation with one pending. */
static struct engine_vm *boost_candidate(const struct sched *s, uint64_t now)
{
	for (unsigned n = 0; n < s->nr_vms; n++) {
		struct engine_vm *vm = s->vms[(s->rr + n) % s->nr_vms];

		if (vm->irq_pending && !vm->in_slice && engine_in_gang(vm, now))
			return vm;
	}
	return NULL;
}

uint64_t gang_boost_due(const struct sched *s, uint64_t now)
{
	const struct engine_vm *first = s->slice_n ? engine_find(s, s->slice_vm[0]) : NULL;
	uint64_t due, min_run;

	if (s->boosting || !first || !boost_candidate(s, now))
		return 0;
	min_run = boost_min_run(s, first->p.quantum_ns);
	due = s->slice_start + min_run;
	return due > now && due + min_run <= s->slice_end ? due : 0;
}

/*
 * Brings forward the slice of a VM with an interrupt pending, if the running slice has run
 * its minimum and has as much left (else the request is held: the slice's end comes soon
 * enough) and the VM has not run two quanta ahead already (else it is refused: its regular
 * slice comes).
 */
static void boost_try(struct sched *s, uint64_t now)
{
	const struct engine_vm *first = s->slice_n ? engine_find(s, s->slice_vm[0]) : NULL;
	struct engine_vm *vm;
	uint64_t min_run;

	if (!first)
		return;
	min_run = boost_min_run(s, first->p.quantum_ns);
	while ((vm = boost_candidate(s, now))) {
		if (now - s->slice_start < min_run || s->slice_end - now < min_run) {
			vm->st.irq_boost_deferred += !vm->irq_deferred;
			vm->irq_deferred = true;
			return;
		}
		if (!over_share(vm))
			break;
		vm->irq_pending = false;
		vm->irq_refused = true;
		vm->st.irq_boost_refused++;
	}
	if (!vm)
		return;
	s->resume_n = s->slice_n;
	memcpy(s->resume_vm, s->slice_vm, sizeof(s->resume_vm));
	s->resume_left = s->slice_end - now;
	for (unsigned k = 0; k < s->slice_n; k++) {
		struct engine_vm *out = engine_find(s, s->slice_vm[k]);

		if (out)
			out->st.irq_boost_preempted++;
	}
	end_slice(s, now);
	for (unsigned k = 0; k < s->nr_vms; k++)
		s->vms[k]->in_slice = false;
	enter_slice(s, vm, now);
	vm->st.irq_boosts++;
	s->boosting = true;
	s->slice_start = now;
	s->slice_end = now + (vm->p.quantum_ns < SCHED_BOOST_SLICE_NS ? vm->p.quantum_ns :
									SCHED_BOOST_SLICE_NS);
}

/* A boosted slice ends: its VM ran that much ahead of its turn. */
static void charge_boost(struct sched *s, uint64_t now)
{
	s->boost_ran = now - s->slice_start;
	for (unsigned k = 0; k < s->slice_n; k++) {
		struct engine_vm *vm = engine_find(s, s->slice_vm[k]);

		if (vm) {
			vm->irq_debt += now - s->slice_start;
			vm->st.irq_boost_ns += now - s->slice_start;
		}
	}
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
	    !(participants > s->slice_n && now > s->slice_start && slice_idle(s))) {
		if (!s->boosting)
			boost_try(s, now);
		return;
	}
	if (s->boosting)
		charge_boost(s, now);
	if (s->slice_n)
		end_slice(s, now);
	if (s->boosting) {
		s->boosting = false;
		if (resume_slice(s, now))
			return;
	}
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
	for (unsigned k = 0; k < s->resume_n; k++) {
		if (s->resume_vm[k] != id)
			continue;
		s->resume_vm[k] = s->resume_vm[--s->resume_n];
		break;
	}
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
