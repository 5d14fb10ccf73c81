/*
 * The scheduling engine: VMs and their parameters, observation of every vCPU at each tick
 * (how long it ran and waited since the last one), accounting, and the per-policy decisions
 * (gates and affinity).  Pure: the caller feeds observations and applies decisions, so the
 * same code runs in lockstepd's scheduler thread and in unit tests on a simulated clock.
 *
 *   host      gates open, the VM's allowed CPUs (or its pins); Linux schedules the threads
 *   pinned    gates open, each vCPU on its pinned or placed CPU
 *   gang      all vCPUs of a VM run in the same slices, on distinct placed CPUs; VMs rotate,
 *             and one with an interrupt waiting may have its slice brought forward (boost)
 *   relaxed   a vCPU that runs ahead of its slowest active sibling by more than the skew
 *             bound is co-stopped until the sibling catches up (sched/relaxed.c)
 *   mux       at most as many vCPUs run as the VM has CPUs, switched at the guest's release
 *             points, lock holders never stopped before the grace period (sched/mux.c and,
 *             for the gates, sched/mux_gate.c)
 *   adaptive  host until a costly preemption episode is reported (one whose spinning burns
 *             SCHED_MIN_PRESSURE of the VM's time), then co-scheduled (gang when the VM fits
 *             its CPUs, with the preempted vCPU run first; mux when it is wider, for any
 *             episode, or its vCPUs queueing for CPUs while siblings sleep in pv WAITs
 *             (sched/mux.c): the multiplexer idles no CPU, so even sleeping waiters gain;
 *             relaxed for a worker without the multiplexer); co-scheduled throughout where
 *             no episode can come (no pvlock channel, no PLE on the host)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/engine_internal.h"

static const char *const ple_names[] = { "unknown", "expected", "absent" };

const char *sched_ple_name(enum sched_ple ple)
{
	return (unsigned)ple < 3 ? ple_names[ple] : "unknown";
}

int sched_new(const struct sched_host *host, struct sched **out)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->host = *host;
	*out = s;
	return 0;
}

static void vm_free(struct engine_vm *vm)
{
	if (!vm)
		return;
	free(vm->pin);
	free(vm->place);
	free(vm->v);
	free(vm->decisions);
	free(vm);
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->nr_vms; i++)
		vm_free(s->vms[i]);
	free(s->vms);
	free(s);
}

struct engine_vm *engine_find(const struct sched *s, int id)
{
	for (unsigned i = 0; i < s->nr_vms; i++)
		if (s->vms[i]->id == id)
			return s->vms[i];
	return NULL;
}

void engine_allowed(const struct sched *s, const struct engine_vm *vm, struct util_cpuset *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < s->host.nr_cpus; i++) {
		unsigned cpu = s->host.cpu[i].os_index;

		if (!vm->p.has_cpus || util_cpuset_has(&vm->p.cpus, cpu))
			util_cpuset_add(out, cpu);
	}
}

bool engine_in_gang(const struct engine_vm *vm, uint64_t now)
{
	if (vm->p.policy == VMDEF_SCHED_GANG)
		return true;
	return vm->p.policy == VMDEF_SCHED_ADAPTIVE && now < vm->cosched_until &&
	       vm->distinct_cpus >= vm->p.nr_vcpus;
}

/* Checks a policy against the VM's size; fills err for a person. */
static int check_policy(const struct sched *s, const struct sched_vm_params *p, char *err,
			size_t err_len)
{
	struct engine_vm probe = { .p = *p };
	struct util_cpuset allowed;
	unsigned cpus;

	engine_allowed(s, &probe, &allowed);
	cpus = util_cpuset_count(&allowed);
	if (cpus == 0) {
		snprintf(err, err_len, "none of the VM's CPUs exists on this host");
		return -EINVAL;
	}
	if (p->policy == VMDEF_SCHED_MUX && p->no_mux) {
		snprintf(err, err_len,
			 "this VM's worker was started by an older lockstep that cannot multiplex "
			 "its vCPUs; restart the VM for \"mux\", or use \"relaxed\"");
		return -EOPNOTSUPP;
	}
	if (p->policy == VMDEF_SCHED_GANG && p->nr_vcpus > cpus) {
		snprintf(
			err, err_len,
			"gang scheduling runs every vCPU at once, so it needs a host CPU per vCPU: "
			"this VM has %u vCPUs and %u host CPUs; use \"mux\", \"relaxed\" or "
			"\"adaptive\"",
			p->nr_vcpus, cpus);
		return -E2BIG;
	}
	return 0;
}

/*
 * Adaptive acts on preemption episodes, which come from the pvlock channel (guests that
 * publish their locks, pv waits and kicks) and from KVM's PLE statistics.  With neither, no
 * episode can ever come: rather than stay under host scheduling waiting for one, it
 * co-schedules throughout.
 */
static bool adaptive_without_signals(const struct sched *s, const struct engine_vm *vm)
{
	return vm->p.policy == VMDEF_SCHED_ADAPTIVE && !vm->p.pvlock &&
	       s->host.ple == SCHED_PLE_ABSENT;
}

static void adaptive_start(const struct sched *s, struct engine_vm *vm)
{
	vm->cosched_until = vm->boost_until = vm->hold_ns = 0;
	if (adaptive_without_signals(s, vm))
		vm->cosched_until = UINT64_MAX;
}

static void place(struct sched *s, struct engine_vm *vm)
{
	struct util_cpuset allowed;

	engine_allowed(s, vm, &allowed);
	vm->distinct_cpus = sched_place(&s->host, &allowed, vm->p.nr_vcpus, vm->place);
}

int sched_vm_add(struct sched *s, int id, const struct sched_vm_params *params, uint64_t now,
		 char *err, size_t err_len)
{
	uint32_t n = params->nr_vcpus;
	struct engine_vm *vm;
	int ret;

	if (n == 0 || engine_find(s, id))
		return -EINVAL;
	ret = check_policy(s, params, err, err_len);
	if (ret)
		return ret;
	if (s->nr_vms == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 8;
		struct engine_vm **vms = realloc(s->vms, cap * sizeof(*vms));

		if (!vms)
			return -ENOMEM;
		s->vms = vms;
		s->cap = cap;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->id = id;
	vm->p = *params;
	vm->p.pin = NULL;
	vm->pin = calloc(n, sizeof(*vm->pin));
	vm->place = calloc(n, sizeof(*vm->place));
	vm->v = calloc(n, sizeof(*vm->v));
	vm->decisions = calloc(n, sizeof(*vm->decisions));
	if (!vm->pin || !vm->place || !vm->v || !vm->decisions) {
		vm_free(vm);
		return -ENOMEM;
	}
	if (params->pin)
		memcpy(vm->pin, params->pin, n * sizeof(*vm->pin));
	if (!vm->p.quantum_ns)
		vm->p.quantum_ns = 5000000ull;
	if (!vm->p.skew_ns)
		vm->p.skew_ns = 2000000ull;
	for (uint32_t i = 0; i < n; i++) {
		vm->v[i].gate_open = true;
		vm->v[i].was_active = true; /* until seen idle: a new VM's vCPUs are busy booting */
	}
	vm->st.policy = params->policy;
	vm->st.irq_boost = params->irq_boost;
	place(s, vm);
	adaptive_start(s, vm);
	s->vms[s->nr_vms++] = vm;
	(void)now;
	return 0;
}

void sched_vm_remove(struct sched *s, int id)
{
	for (unsigned i = 0; i < s->nr_vms; i++) {
		if (s->vms[i]->id != id)
			continue;
		gang_forget(s, id);
		vm_free(s->vms[i]);
		s->vms[i] = s->vms[--s->nr_vms];
		if (s->rr > s->nr_vms)
			s->rr = 0;
		return;
	}
}

int sched_vm_set_policy(struct sched *s, int id, enum vmdef_sched_policy policy,
			uint64_t quantum_ns, uint64_t skew_ns, char *err, size_t err_len)
{
	struct engine_vm *vm = engine_find(s, id);
	struct sched_vm_params p;
	int ret;

	if (!vm) {
		snprintf(err, err_len, "the scheduler does not know this VM");
		return -ENOENT;
	}
	p = vm->p;
	p.policy = policy;
	if (quantum_ns)
		p.quantum_ns = quantum_ns;
	if (skew_ns)
		p.skew_ns = skew_ns;
	ret = check_policy(s, &p, err, err_len);
	if (ret)
		return ret;
	vm->p = p;
	vm->st.policy = policy;
	adaptive_start(s, vm);
	for (uint32_t i = 0; i < p.nr_vcpus; i++) {
		vm->v[i].costopped = false;
		vm->v[i].affinity_sent = false; /* the new policy places the threads anew */
	}
	if (policy != VMDEF_SCHED_GANG)
		gang_forget(s, id);
	return 0;
}

void sched_vm_set_irq_boost(struct sched *s, int id, bool on)
{
	struct engine_vm *vm = engine_find(s, id);

	if (!vm)
		return;
	vm->p.irq_boost = vm->st.irq_boost = on;
	/* A debt already run up is still paid back: turning it off takes no time back. */
	if (!on)
		vm->irq_pending = vm->irq_refused = vm->irq_deferred = false;
}

bool sched_vm_irq_watch(const struct sched *s, int id, uint64_t now)
{
	const struct engine_vm *vm = engine_find(s, id);

	return vm && vm->p.irq_boost && engine_in_gang(vm, now) && !vm->in_slice &&
	       !vm->irq_pending && !vm->irq_refused;
}

void sched_vm_irq_pending(struct sched *s, int id, uint64_t now)
{
	struct engine_vm *vm = engine_find(s, id);

	if (!vm || !sched_vm_irq_watch(s, id, now))
		return;
	vm->irq_pending = true;
	vm->st.irq_requests++;
}

void sched_vm_set_pin(struct sched *s, int id, uint32_t vcpu, const struct util_cpuset *cpus)
{
	struct engine_vm *vm = engine_find(s, id);

	if (!vm || vcpu >= vm->p.nr_vcpus)
		return;
	vm->pin[vcpu] = *cpus;
	vm->v[vcpu].affinity_sent = false;
}

void sched_vm_preempted(struct sched *s, int id, uint32_t culprit, double pressure, uint64_t now)
{
	struct engine_vm *vm = engine_find(s, id);

	if (!vm)
		return;
	vm->st.lhp_events++;
	/*
	 * Waiters that sleep (pv locks) waste little while a holder waits for a CPU, and
	 * co-scheduling them would stop vCPUs that have work: only spinning that burns a real
	 * share of the VM's time is worth it.  Except in a VM wider than its CPUs, which the
	 * multiplexer co-schedules: it idles no CPU (a stopped vCPU's CPU goes to a sibling),
	 * and every hand-off of a lock to a waiter that is not running costs a host slice.
	 */
	if (pressure < SCHED_MIN_PRESSURE) {
		vm->st.light_events++;
		if (vm->distinct_cpus >= vm->p.nr_vcpus || vm->p.no_mux)
			return;
	}
	if (vm->p.policy != VMDEF_SCHED_ADAPTIVE || adaptive_without_signals(s, vm))
		return;
	engine_adaptive_episode(vm, now);
	/* The multiplexer runs a stopped lock holder by itself. */
	if (culprit < vm->p.nr_vcpus && !engine_in_gang(vm, now) && !engine_mux_slots(vm, now)) {
		vm->boost_vcpu = culprit;
		vm->boost_until = now + ADAPTIVE_BOOST_NS;
		vm->st.boosts++;
	}
}

void engine_adaptive_episode(struct engine_vm *vm, uint64_t now)
{
	/*
	 * Co-scheduled vCPUs stop spinning for preempted siblings, so the episodes that started
	 * it stop too and the hold runs out.  A VM that relapses right after release needed it
	 * all along: hold twice as long next time, so the probes back to host cost less.  A
	 * quiet spell starts again from the shortest hold.
	 */
	if (!vm->hold_ns ||
	    (now >= vm->cosched_until && now - vm->cosched_until > ADAPTIVE_CALM_NS))
		vm->hold_ns = ADAPTIVE_HOLD_NS;
	else if (now >= vm->cosched_until && now - vm->cosched_until < ADAPTIVE_RELAPSE_NS &&
		 vm->hold_ns < ADAPTIVE_HOLD_MAX_NS)
		vm->hold_ns *= 2;
	vm->cosched_until = now + vm->hold_ns;
}

/* How the vCPU spent the interval, from its cumulative run and wait times. */
static void observe(struct engine_vm *vm, uint32_t i, const struct sched_obs *o, uint64_t dt)
{
	struct engine_vcpu *v = &vm->v[i];
	uint64_t d_exec = 0, d_wait = 0;

	if (v->valid && o->exec_ns >= v->last_exec && o->wait_ns >= v->last_wait) {
		d_exec = o->exec_ns - v->last_exec;
		d_wait = o->wait_ns - v->last_wait;
	}
	v->valid = true;
	v->last_exec = o->exec_ns;
	v->last_wait = o->wait_ns;
	if (d_exec > dt)
		d_exec = dt; /* sampling jitter */
	v->d_exec = d_exec;
	v->d_wait = d_wait;
	if (o->run == SCHED_RUN_RUNNING)
		v->act = ACT_RUNNING;
	else if (o->run == SCHED_RUN_PREEMPTED)
		v->act = ACT_PREEMPTED;
	else if (o->run == SCHED_RUN_IDLE)
		v->act = ACT_IDLE;
	else if (d_wait > d_exec)
		v->act = ACT_PREEMPTED;
	else if (d_exec * 2 > dt || (d_exec && o->state == SCHED_VCPU_RUNNING))
		v->act = ACT_RUNNING;
	else
		v->act = ACT_IDLE;
	v->st.run_ns += d_exec;
	v->st.wait_ns += d_wait;
	if (!v->gate_open) {
		v->st.stopped_ns += dt;
		/*
		 * Leaked: ran in an interval that began after the vCPU had had SLICE_SETTLE_NS
		 * to leave KVM_RUN.  vm->sample_ns still holds when the interval began (samples
		 * can be older than the tick that reads them).
		 */
		if (vm->sample_ns && vm->sample_ns >= v->closed_at + SLICE_SETTLE_NS &&
		    !vm->st.multiplexed) /* the worker's gates flip between ticks */
			vm->st.leak_ns += d_exec;
	}
}

static void account_vm(struct engine_vm *vm, uint64_t dt)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		uint64_t e = vm->v[i].d_exec;

		if (e < lo)
			lo = e;
		if (e > hi)
			hi = e;
	}
	vm->st.watched_ns += dt;
	vm->st.run_ns += hi;
	vm->st.corun_ns += lo;
}

/* The costart spread: from the gates opening to the last vCPU passing its gate. */
static void account_costart(struct engine_vm *vm, const struct sched_obs *obs, uint64_t now)
{
	uint64_t first = UINT64_MAX, last = 0, spread;

	if (!vm->costart_at)
		return;
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		if (obs[i].entry_ns < vm->costart_at) {
			/* Not through yet; a vCPU asleep in a pv WAIT may never come: give up. */
			if (now - vm->costart_at > vm->p.quantum_ns)
				vm->costart_at = 0;
			return;
		}
		if (obs[i].entry_ns < first)
			first = obs[i].entry_ns;
		if (obs[i].entry_ns > last)
			last = obs[i].entry_ns;
	}
	spread = last - first;
	vm->st.costarts++;
	vm->st.costart_skew_ns_total += spread;
	if (spread > vm->st.costart_skew_ns_max)
		vm->st.costart_skew_ns_max = spread;
	vm->costart_at = 0;
}

static void decide_affinity(struct sched *s, struct engine_vm *vm, uint64_t now,
			    struct sched_decision *d, uint32_t i)
{
	struct util_cpuset want;
	bool dedicated = vm->p.policy == VMDEF_SCHED_PINNED || engine_in_gang(vm, now);

	memset(&want, 0, sizeof(want));
	if (util_cpuset_count(&vm->pin[i]))
		want = vm->pin[i];
	else if (dedicated)
		util_cpuset_add(&want, vm->place[i]);
	else
		engine_allowed(s, vm, &want);
	d->affinity = want;
	d->affinity_changed =
		!vm->v[i].affinity_sent || memcmp(&want, &vm->v[i].affinity, sizeof(want)) != 0;
	vm->v[i].affinity = want;
	vm->v[i].affinity_sent = true;
}

static void decide_gates(struct engine_vm *vm, uint64_t now, uint64_t dt)
{
	if (!engine_mux_slots(vm, now) && vm->st.multiplexed) {
		/* Leaving the multiplexer: the policy's gates from now on, all open to start. */
		mux_leave(vm);
		for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
			vm->v[i].gate_open = true;
			vm->v[i].costopped = false;
		}
	}
	/* The first look at a VM sets the baselines its run times are measured from: policies
	 * that decide from run times wait for the next. */
	if (!vm->baseline_taken) {
		vm->baseline_taken = true;
		if (!engine_in_gang(vm, now))
			return;
	}
	if (engine_in_gang(vm, now)) {
		for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
			vm->v[i].gate_open = vm->in_slice;
		return;
	}
	if (engine_mux_slots(vm, now)) {
		mux_decide(vm, now);
		return;
	}
	switch (vm->p.policy) {
	case VMDEF_SCHED_RELAXED:
		relaxed_decide(vm, dt);
		break;
	case VMDEF_SCHED_ADAPTIVE:
		adaptive_decide(vm, now, dt);
		break;
	default:
		for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
			vm->v[i].gate_open = true;
		break;
	}
}

uint64_t sched_vm_sample_period(const struct sched *s, int id)
{
	const struct engine_vm *vm = engine_find(s, id);

	/*
	 * Relaxed and adaptive decide from run states every tick; host VMs are watched as finely
	 * for a co-run figure that can be compared.  Gang and pinned VMs only need accounting:
	 * one host tick (4 ms) resolves it, and every sample costs the VM a wake-up.
	 */
	if (vm && (vm->p.policy == VMDEF_SCHED_GANG || vm->p.policy == VMDEF_SCHED_PINNED))
		return SCHED_COARSE_TICK_NS;
	return SCHED_TICK_NS;
}

/* When the engine wants to look again: every millisecond while a VM decides from run states,
 * else at the end of the gang slice or after one host tick. */
static uint64_t next_tick(const struct sched *s, uint64_t now)
{
	uint64_t next = s->nr_vms ? SCHED_COARSE_TICK_NS : SCHED_IDLE_TICK_NS, due;

	for (unsigned k = 0; k < s->nr_vms; k++)
		if (sched_vm_sample_period(s, s->vms[k]->id) < next)
			next = sched_vm_sample_period(s, s->vms[k]->id);
	if (s->slice_n && s->slice_end > now && s->slice_end - now < next)
		next = s->slice_end - now;
	/* An interrupt boost held for the running slice's minimum run. */
	due = gang_boost_due(s, now);
	if (due > now && due - now < next)
		next = due - now;
	return next;
}

uint64_t sched_tick(struct sched *s, uint64_t now, sched_obs_fn obs_fn, sched_decide_fn decide,
		    void *arg)
{
	uint64_t dt = s->last_tick && now > s->last_tick ? now - s->last_tick : 0;

	s->last_tick = now;
	for (unsigned k = 0; k < s->nr_vms; k++) {
		struct engine_vm *vm = s->vms[k];
		const struct sched_obs *obs = obs_fn(arg, vm->id);

		vm->obs = obs;
		if (!obs)
			continue;
		for (uint32_t i = 0; i < vm->p.nr_vcpus; i++)
			observe(vm, i, &obs[i], dt);
		vm->prev_sample_ns = vm->sample_ns;
		vm->sample_ns = obs[0].sample_ns ? obs[0].sample_ns : now;
		account_vm(vm, dt);
		account_costart(vm, obs, now);
		mux_watch(vm, now);
		gang_account(s, vm, now);
	}
	gang_tick(s, now);
	for (unsigned k = 0; k < s->nr_vms; k++) {
		struct engine_vm *vm = s->vms[k];
		struct sched_decision *d = vm->decisions;
		uint32_t slots;

		if (!vm->obs)
			continue; /* not observed this tick: nothing to decide from */
		decide_gates(vm, now, dt);
		slots = engine_mux_slots(vm, now);
		vm->st.coscheduling =
			engine_in_gang(vm, now) || vm->p.policy == VMDEF_SCHED_RELAXED || slots ||
			(vm->p.policy == VMDEF_SCHED_ADAPTIVE && now < vm->cosched_until);
		for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
			struct engine_vcpu *v = &vm->v[i];

			if (!v->gate_open && (d[i].gate_open || !v->closed_at))
				v->closed_at = now;
			d[i].gate_open = v->gate_open;
			d[i].mux_slots = slots;
			d[i].request_changed = slots && v->req_new;
			d[i].request = v->req;
			d[i].successor = v->req_succ;
			d[i].idle = slots && v->idle;
			d[i].idle_open_ns = d[i].idle ? vm->obs[i].open_ns : 0;
			v->req_new = false;
			decide_affinity(s, vm, now, &d[i], i);
		}
		decide(arg, vm->id, d);
	}
	return next_tick(s, now);
}

static uint32_t core_of(const struct sched_host *host, uint32_t os_index, bool *found)
{
	for (uint32_t i = 0; i < host->nr_cpus; i++) {
		if (host->cpu[i].os_index == os_index) {
			*found = true;
			return host->cpu[i].core;
		}
	}
	*found = false;
	return 0;
}

/* The one host CPU a vCPU runs on under dedicated placement, or false if it may move. */
static bool dedicated_cpu(const struct engine_vm *vm, uint32_t i, uint32_t *cpu)
{
	unsigned pinned = util_cpuset_count(&vm->pin[i]);

	if (pinned > 1)
		return false;
	if (pinned == 0) {
		*cpu = vm->place[i];
		return true;
	}
	for (unsigned c = 0; c < UTIL_CPUSET_MAX; c++) {
		if (util_cpuset_has(&vm->pin[i], c)) {
			*cpu = c;
			return true;
		}
	}
	return false;
}

/* vCPUs on a CPU whose core also runs another of the VM's vCPUs on another CPU. */
static uint32_t smt_shared(const struct sched *s, const struct engine_vm *vm, uint64_t now)
{
	uint32_t n = 0;

	/* Gang VMs, and adaptive ones that would co-schedule as gang. */
	if (!engine_in_gang(vm, now) &&
	    !(vm->p.policy == VMDEF_SCHED_ADAPTIVE && vm->distinct_cpus >= vm->p.nr_vcpus))
		return 0;
	for (uint32_t i = 0; i < vm->p.nr_vcpus; i++) {
		uint32_t a, b, core_a;
		bool found_a, found_b;

		if (!dedicated_cpu(vm, i, &a))
			continue;
		core_a = core_of(&s->host, a, &found_a);
		for (uint32_t j = 0; found_a && j < vm->p.nr_vcpus; j++) {
			if (j == i || !dedicated_cpu(vm, j, &b) || b == a)
				continue;
			if (core_of(&s->host, b, &found_b) == core_a && found_b) {
				n++;
				break;
			}
		}
	}
	return n;
}

int sched_vm_stats(const struct sched *s, int id, struct sched_vm_stats *st,
		   struct sched_vcpu_stats *vcpus, uint32_t nr)
{
	const struct engine_vm *vm = engine_find(s, id);

	if (!vm)
		return -ENOENT;
	*st = vm->st;
	st->ple = s->host.ple;
	st->no_signals = adaptive_without_signals(s, vm);
	st->smt_shared_vcpus = smt_shared(s, vm, s->last_tick);
	st->irq_boost_debt_ns = vm->irq_debt;
	for (uint32_t i = 0; vcpus && i < nr && i < vm->p.nr_vcpus; i++)
		vcpus[i] = vm->v[i].st;
	return 0;
}
