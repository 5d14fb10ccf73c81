/*
 * lockstep-vm's side of pvlock: it gives the pvlock calls their environment (guest memory,
 * sleeping a vCPU thread out of KVM_RUN, scheduler hints), and runs the lock-holder-preemption
 * detector from the control thread on every run-state sample (vm/runstate.c: every 2 ms, or
 * faster while lockstepd's scheduler asks) once the guest registered its shared page, or
 * pause-loop statistics are watched, or the guest made KVM pv calls (a Linux guest's pv
 * spinlock kicks, PV IPIs and yields, which only KVM's statistics show: looked for every
 * 100 ms until the first), with episodes forwarded to lockstepd as "pvlock" events
 * (rate-limited; the counters stay exact).
 *
 * The calls run on vCPU threads, the detector on the control thread; they share only the
 * pvlock_vm, whose shared-page pointer is atomic.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm_internal.h"

#define EVENTS_PER_S 100
#define KVM_PV_LOOK_NS 100000000ull
/* KVM_FEATURE_* bits whose use shows as hypercalls: PV_UNHALT (kicks), PV_SEND_IPI,
 * PV_SCHED_YIELD. */
#define KVM_PV_CALL_FEATURES ((1u << 7) | (1u << 11) | (1u << 13))

struct vm_lockwatch {
	struct vm *vm;
	struct pvlock_vm *pv;
	struct pvlock_detector *det;
	struct pvlock_sampler *sampler;
	struct pvlock_sample *samples;
	bool stats_known;
	bool kvm_pv;		 /* the guest makes KVM pv calls: sample their statistics */
	bool kvm_pv_possible;	 /* its CPUID offers them */
	uint64_t kvm_pv_look_ns; /* when to look for the first one again */
	struct util_ratelimit event_limit;
	struct vm_control *ctl; /* during a tick: where events go */
	uint64_t events_dropped;
};

static void *guest_ptr(void *opaque, uint64_t gpa, uint64_t len)
{
	struct vm *vm = opaque;

	return vm_memory_ptr(&vm->mem, gpa, len);
}

/* Sleeps a vCPU thread on its kick eventfd; the VMM's kick signal interrupts it. */
static int sleep_vcpu(void *opaque, uint32_t vcpu, int fd, uint64_t timeout_ns)
{
	struct vm *vm = opaque;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000ull),
			       .tv_nsec = (long)(timeout_ns % 1000000000ull) };
	uint64_t start;
	sigset_t mask;
	int ret;

	if (vm_stopping(vm))
		return -EINTR;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	sigdelset(&mask, vm->kick_signal);
	/* Asleep in WAIT a vCPU needs no host CPU: the scheduler may give its slot away, and
	 * the multiplexer gives it away at once. */
	sched_slot_set_state(vm->vcpus[vcpu].slot, SCHED_VCPU_PVWAIT);
	vm_mux_sleeping(vm, vcpu);
	start = util_now_ns();
	ret = ppoll(&pfd, 1, timeout_ns ? &ts : NULL, &mask);
	__atomic_add_fetch(&vm->vcpus[vcpu].slot->pvwait_ns, util_now_ns() - start,
			   __ATOMIC_RELAXED);
	vm_mux_awake(vm, vcpu);
	if (ret < 0) {
		if (errno == EINTR)
			vm_vcpu_note_kick(&vm->vcpus[vcpu]);
		return -EINTR;
	}
	return ret > 0 ? 1 : 0;
}

/* YIELD_TO: under the multiplexer, a switch to that vCPU now if it is stopped and ready;
 * otherwise the scheduler reads the request from the sched page at its next tick. */
static void yield_to(void *opaque, uint32_t from, uint32_t to)
{
	struct vm *vm = opaque;

	if (vm_mux_yield_to(vm, from, to))
		return;
	__atomic_store_n(&vm->sched_page->yield_to, to + 1, __ATOMIC_RELEASE);
}

static int64_t switch_cpu(void *opaque, uint32_t vcpu)
{
	return vm_mux_switch_call(opaque, vcpu);
}

static void on_event(void *opaque, const struct pvlock_event *ev)
{
	struct vm_lockwatch *lw = opaque;
	struct vm_proto_pvlock msg;
	uint64_t dropped;
	size_t len;
	char *line;

	if (!lw->ctl || lw->ctl->conn_fd < 0)
		return;
	if (!util_ratelimit_allow(&lw->event_limit, &dropped)) {
		lw->events_dropped++;
		return;
	}
	msg = (struct vm_proto_pvlock){
		.ended = ev->ended,
		.lock = ev->lock,
		.culprit = ev->culprit,
		.waiters = ev->nr_waiters,
		.duration_ns = ev->duration_ns,
		.pressure = ev->pressure,
	};
	util_strlcpy(msg.kind, pvlock_event_name(ev->kind), sizeof(msg.kind));
	line = vm_proto_pvlock_encode(&msg, &len);
	vm_control_send(lw->ctl, line, len);
}

int vm_lockwatch_new(struct vm *vm, struct vm_lockwatch **out)
{
	const struct pvlock_env env = {
		.opaque = vm,
		.guest_ptr = guest_ptr,
		.sleep = sleep_vcpu,
		.yield_to = yield_to,
		.switch_cpu = switch_cpu,
	};
	struct vm_lockwatch *lw = calloc(1, sizeof(*lw));
	int ret;

	if (!lw)
		return -ENOMEM;
	lw->vm = vm;
	lw->kvm_pv_possible = vm_kvm_features(vm) & KVM_PV_CALL_FEATURES;
	util_ratelimit_init(&lw->event_limit, 1000000000ull, EVENTS_PER_S);
	lw->samples = calloc(vm->cfg.vcpus, sizeof(*lw->samples));
	if (!lw->samples) {
		free(lw);
		return -ENOMEM;
	}
	ret = pvlock_detector_new(vm->cfg.vcpus, on_event, lw, &lw->det);
	if (!ret)
		ret = pvlock_sampler_new(vm->cfg.vcpus, &lw->sampler);
	if (!ret && vm->cfg.pvlock.enabled)
		ret = pvlock_vm_new(&env, vm->hv, vm->cfg.vcpus, LKS_DOORBELL_GPA_DEFAULT, &lw->pv);
	if (ret) {
		vm_lockwatch_free(lw);
		return ret;
	}
	*out = lw;
	return 0;
}

void vm_lockwatch_free(struct vm_lockwatch *lw)
{
	if (!lw)
		return;
	pvlock_vm_free(lw->pv);
	pvlock_sampler_free(lw->sampler);
	pvlock_detector_free(lw->det);
	free(lw->samples);
	free(lw);
}

int64_t vm_lockwatch_call(struct vm_lockwatch *lw, struct vm_vcpu *vcpu, uint32_t nr)
{
	struct kvm_regs regs;

	if (!lw->pv)
		return LKS_ENOSYS; /* pvlock is disabled for this VM */
	if (hv_vcpu_exit_regs(vcpu->hv, &regs))
		return LKS_EFAULT;
	return pvlock_call(lw->pv, vcpu->index, nr, regs.rdi, regs.rsi, regs.rdx);
}

void vm_lockwatch_bad_kick(struct vm_lockwatch *lw, struct vm_vcpu *vcpu, uint64_t value)
{
	if (lw->pv)
		pvlock_bad_kick(lw->pv, vcpu->index, value);
}

const struct lks_shared_page *vm_lockwatch_shared(struct vm_lockwatch *lw, uint32_t *nr)
{
	*nr = 0;
	return lw->pv ? pvlock_shared_page(lw->pv, nr) : NULL;
}

bool vm_lockwatch_wants_samples(struct vm_lockwatch *lw)
{
	uint32_t nr_pub = 0;

	return (lw->pv && pvlock_shared_page(lw->pv, &nr_pub)) || lw->vm->pause_exits || lw->kvm_pv;
}

/* Whether the guest has begun making KVM pv calls (any vCPU's hypercalls above 0). */
static void look_for_kvm_pv(struct vm_lockwatch *lw)
{
	struct vm *vm = lw->vm;
	uint64_t now = util_now_ns(), calls = 0;

	if (lw->kvm_pv || !lw->kvm_pv_possible || now < lw->kvm_pv_look_ns)
		return;
	lw->kvm_pv_look_ns = now + KVM_PV_LOOK_NS;
	for (uint32_t i = 0; i < vm->nr_vcpus && !calls; i++)
		if (vm->vcpus[i].stats)
			hv_stats_read_one(vm->vcpus[i].stats, "hypercalls", &calls);
	if (!calls)
		return;
	lw->kvm_pv = true;
	util_log(&vm->log, UTIL_LOG_INFO,
		 "the guest makes KVM pv calls: their statistics feed the preemption detector");
}

/* The PLE statistics need each vCPU's KVM statistics, known once the vCPUs exist. */
static void learn_stats(struct vm_lockwatch *lw)
{
	struct vm *vm = lw->vm;

	if (lw->stats_known)
		return;
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		pvlock_sampler_set_stats(lw->sampler, i, vm->vcpus[i].stats);
	lw->stats_known = true;
}

uint64_t vm_lockwatch_tick(struct vm_lockwatch *lw, struct vm_control *ctl)
{
	struct vm *vm = lw->vm;
	enum pvlock_run_state run[VMDEF_VCPUS_MAX];

	look_for_kvm_pv(lw);
	if (!vm_lockwatch_wants_samples(lw))
		return 0;
	if (!vm->runstate_fresh)
		return VM_LOCKWATCH_PERIOD_NS; /* the run-state sampler decides the pace */
	vm->runstate_fresh = false;
	learn_stats(lw);
	/* enum sched_run and enum pvlock_run_state name the same states in the same order. */
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		run[i] = (enum pvlock_run_state)vm->vcpus[i].run.state;
	pvlock_sampler_sample(lw->sampler, lw->pv, vm->pause_exits, lw->kvm_pv, run, lw->samples);
	lw->ctl = ctl;
	pvlock_detector_feed(lw->det, vm->vcpus[0].run.sample_ns, lw->samples);
	lw->ctl = NULL;
	return VM_LOCKWATCH_PERIOD_NS;
}

static json_t *vcpu_json(struct vm_lockwatch *lw, uint32_t i)
{
	struct pvlock_vcpu_calls c = { 0 };
	struct pvlock_vcpu_detect d;
	json_t *events = json_object(), *ms = json_object();

	if (lw->pv)
		pvlock_vcpu_calls(lw->pv, i, &c);
	pvlock_detector_vcpu(lw->det, i, &d);
	for (int k = 0; k < PVLOCK_EVENT_KINDS; k++) {
		json_object_set_new(events, pvlock_event_name(k),
				    json_integer((json_int_t)d.events[k]));
		json_object_set_new(ms, pvlock_event_name(k), json_real((double)d.ns[k] / 1e6));
	}
	return json_pack("{s:i, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
			 "vcpu", (int)i, "waits", (json_int_t)c.waits, "waits_changed",
			 (json_int_t)c.waits_changed, "waits_woken", (json_int_t)c.waits_woken,
			 "waits_timeout", (json_int_t)c.waits_timeout, "wait_ms",
			 (double)c.wait_ns / 1e6, "kicks", (json_int_t)c.kicks, "yields",
			 (json_int_t)c.yields, "switches", (json_int_t)c.switches,
			 "switches_not_asked", (json_int_t)c.switches_not_asked, "errors",
			 (json_int_t)c.errors, "culprit_events", events, "culprit_ms", ms);
}

json_t *vm_lockwatch_json(struct vm_lockwatch *lw)
{
	json_t *vcpus = json_array();
	uint32_t nr_pub = 0;

	for (uint32_t i = 0; i < lw->vm->nr_vcpus; i++)
		json_array_append_new(vcpus, vcpu_json(lw, i));
	return json_pack("{s:b, s:b, s:b, s:b, s:I, s:o}", "enabled", lw->pv != NULL, "shared_page",
			 lw->pv && pvlock_shared_page(lw->pv, &nr_pub), "pause_exits",
			 lw->vm->pause_exits, "kvm_pv", lw->kvm_pv, "events_dropped",
			 (json_int_t)lw->events_dropped, "vcpu", vcpus);
}

uint32_t vm_kvm_features(const struct vm *vm)
{
	const struct kvm_cpuid2 *c = vm->supported_cpuid;
	uint32_t eax = 0;

	for (uint32_t i = 0; c && i < c->nent; i++)
		if (c->entries[i].function == 0x40000001u)
			eax = c->entries[i].eax;
	if (vm->cfg.pvlock.kvm_features != VMDEF_KVM_FEATURES_HOST)
		eax &= vm->cfg.pvlock.kvm_features;
	return eax;
}

json_t *vm_kvm_features_json(struct vm *vm)
{
	json_t *list = json_array();
	uint32_t eax = vm_kvm_features(vm);

	for (unsigned bit = 0; bit < 32; bit++) {
		const char *name = vmdef_kvm_feature_name(bit);

		if (eax & (1u << bit))
			json_array_append_new(list, name ? json_string(name) :
							   json_sprintf("bit%u", bit));
	}
	return list;
}
