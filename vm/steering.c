/*
 * Interrupt steering in the worker: a thread of its own ("irq-steer") that tells irq/ which
 * vCPUs can take an interrupt now, so that redirectable MSIs go to one of them.
 *
 * The schedule comes from the sched page: lockstepd's scheduler publishes the set of vCPUs it
 * is switching to before it moves this VM's gates, and the set of open gates after (sched/
 * page.c), each with a new generation.  The thread sleeps on that generation (a futex in the
 * shared page) and re-steers at each — one KVM_SET_GSI_ROUTING at most, only if a destination
 * moved — so an interrupt raised during the switch already goes to a vCPU that is about to
 * run; and it looks once more a millisecond later, when the vCPUs that halted again in the
 * new slice show it.  It runs at real-time priority when it may, as the scheduler does, so
 * that it re-steers at once when every host CPU is busy with vCPUs.  Without a scheduler (generation 0, or policies that leave
 * the gates open) it looks every 10 ms.  Within what may run it prefers vCPUs that are not
 * halted (KVM's "blocking" statistic) nor, when the control thread samples run states,
 * idle or waiting for a host CPU; a vCPU asleep in a pvlock WAIT or gone never takes one.
 *
 * This thread is never on an injection's path: device threads raise lines with a write(), and
 * irq/ reads only the routes' published state there (vm_steering_gate_probe below feeds the
 * "delivered to a gated vCPU" counters).
 *
 * The logical destination registers the choice needs for logical-mode messages are read by
 * each vCPU thread from its own LAPIC (KVM_GET_LAPIC is a vCPU ioctl) every 50 ms, after an
 * exit; x2APIC mode leaves them unknown, and logical messages unsteered.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm_internal.h"

#define STEER_POLL_NS 10000000ull    /* without a schedule change, look this often */
#define STEER_RECHECK_NS 1000000ull  /* after one, look again this soon */
#define LAPIC_REFRESH_NS 50000000ull /* vCPU threads re-read LDR/DFR this often */
#define SAMPLE_FRESH_NS 20000000ull  /* a run-state sample older than this is ignored */
#define LAPIC_LDR 0xd0
#define LAPIC_DFR 0xe0
#define MSR_APIC_BASE 0x1b
#define APIC_BASE_X2APIC (1ull << 10)

bool vm_steering_gate_probe(void *arg, uint32_t vcpu, uint64_t *gen)
{
	struct vm *vm = arg;
	uint32_t g;
	bool open;

	if (vcpu >= vm->nr_vcpus) {
		*gen = 0;
		return true;
	}
	open = sched_page_gate_open(vm->sched_page, vcpu, &g);
	*gen = g;
	return open;
}

/* An interrupt went to a gated vCPU with steering on: the scheduler may bring the VM's slice
 * forward (one store and a futex wake, once until the scheduler takes it). */
void vm_steering_gated(void *arg, uint64_t raise_ns)
{
	struct vm *vm = arg;

	sched_page_irq_wait(vm->sched_page, raise_ns);
}

void vm_steering_note_exit(struct vm_vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint64_t now = util_now_ns(), base = 0;
	uint32_t ldr, dfr;

	if (now - vcpu->lapic_read_ns < LAPIC_REFRESH_NS)
		return;
	vcpu->lapic_read_ns = now;
	if (hv_vcpu_get_lapic(vcpu->hv, &lapic) || hv_vcpu_get_msr(vcpu->hv, MSR_APIC_BASE, &base))
		return;
	if (base & APIC_BASE_X2APIC) {
		atomic_store(&vcpu->ldr_valid, false);
		return;
	}
	memcpy(&ldr, lapic.regs + LAPIC_LDR, 4);
	memcpy(&dfr, lapic.regs + LAPIC_DFR, 4);
	atomic_store(&vcpu->ldr, ldr);
	atomic_store(&vcpu->dfr, dfr);
	atomic_store(&vcpu->ldr_valid, true);
}

/* What may run now, as of generation `gen` and its runnable set. */
static void build_views(struct vm *vm, uint32_t gen, const uint64_t *runnable,
			struct irq_vcpu_view *views)
{
	uint64_t now = util_now_ns();
	uint64_t sample = __atomic_load_n(&vm->sched_page->sample_ns, __ATOMIC_ACQUIRE);
	bool fresh = sample && now - sample < SAMPLE_FRESH_NS;

	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		struct vm_vcpu *v = &vm->vcpus[i];
		uint32_t state = __atomic_load_n(&v->slot->state, __ATOMIC_ACQUIRE);
		uint32_t run = __atomic_load_n(&v->slot->run, __ATOMIC_RELAXED);
		uint64_t blocking = 0;
		bool can = (!gen || (runnable[i / 64] >> (i % 64) & 1)) &&
			   state != SCHED_VCPU_PVWAIT && state != SCHED_VCPU_EXITED;

		if (v->stats && hv_stats_read_one(v->stats, "blocking", &blocking))
			blocking = 0;
		views[i] = (struct irq_vcpu_view){
			.runnable = can,
			.busy = can && !blocking &&
				!(fresh && (run == SCHED_RUN_IDLE || run == SCHED_RUN_PREEMPTED)),
			.ldr_valid = atomic_load(&v->ldr_valid),
			.ldr = atomic_load(&v->ldr),
			.dfr = atomic_load(&v->dfr),
		};
	}
}

static void *steer_thread(void *arg)
{
	struct vm *vm = arg;
	struct irq_vcpu_view *views = calloc(vm->nr_vcpus, sizeof(*views));
	uint32_t seen = UINT32_MAX;
	uint64_t last = 0;
	bool recheck = false;

	struct sched_param rt = { .sched_priority = 1 };

	pthread_setname_np(pthread_self(), "irq-steer");
	/* Without the privilege it runs as a normal thread. */
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt);
	if (vm_jail_lock_thread(vm, VM_THREAD_STEERING) || !views) {
		free(views);
		return NULL; /* the VM stops (no memory: it runs unsteered) */
	}
	while (!atomic_load(&vm->steer_stop)) {
		uint64_t runnable[4], now = util_now_ns();
		bool switching;
		uint32_t gen = sched_page_runnable(vm->sched_page, runnable, &switching);
		bool changed = gen != seen;

		if (changed || recheck || now - last >= STEER_POLL_NS) {
			build_views(vm, gen, runnable, views);
			/* A refused commit leaves the routes as they were; the next pass tries. */
			irq_steer(vm->irq, views, gen, NULL);
			atomic_fetch_add(&vm->steer_passes, 1);
			recheck = changed;
			seen = gen;
			last = now;
		}
		sched_page_wait_switch(vm->sched_page, gen,
				       recheck ? STEER_RECHECK_NS : STEER_POLL_NS);
	}
	free(views);
	return NULL;
}

int vm_steering_start(struct vm *vm)
{
	int ret;

	atomic_store(&vm->steer_stop, false);
	ret = pthread_create(&vm->steer_thread, NULL, steer_thread, vm);
	if (ret)
		return -ret;
	vm->steer_started = true;
	return 0;
}

void vm_steering_stop(struct vm *vm)
{
	if (!vm->steer_started)
		return;
	atomic_store(&vm->steer_stop, true);
	pthread_join(vm->steer_thread, NULL);
	vm->steer_started = false;
}

int vm_steering_set(struct vm *vm, bool on)
{
	int ret = irq_set_steering(vm->irq, on);

	if (!ret)
		vm->cfg.irq.steering = on;
	return ret;
}
