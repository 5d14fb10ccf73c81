/*
 * vCPU threads: one per vCPU, each looping on KVM_RUN and dispatching exits to the buses.
 *
 * A vCPU thread owns its hv_vcpu (KVM takes the vCPU mutex for the whole of KVM_RUN, so no
 * other thread could use it anyway) and its counters.  Other threads reach it only by a kick
 * (a signal that interrupts KVM_RUN) and by the VM's stop flag, which the thread checks after
 * every exit.  An exit the guest can provoke never ends the process: unassigned I/O is
 * answered with all-ones, guest crashes stop this VM with a report.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm/vm_internal.h"

/* Flat 4 GiB segment in the form KVM_SET_SREGS takes. */
static struct kvm_segment flat_segment(uint16_t selector, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = 1,
		.s = 1,
		.l = 0,
		.g = 1,
		.avl = 0,
		.unusable = 0,
	};
}

/*
 * The boot processor's state at the kernel's entry, as every protocol lockstep boots wants it:
 * 32-bit protected mode, paging off, flat segments, interrupts off.  Linux's 32-bit boot entry
 * wants its selectors (__BOOT_CS 0x10, __BOOT_DS 0x18) in a loaded GDT; PVH wants a 32-bit TSS
 * of 0x68 bytes in TR.  Multiboot leaves the GDT to the kernel.
 */
static int set_boot_state(struct vm_vcpu *vcpu)
{
	const struct vm_boot_entry *boot = &vcpu->vm->boot;
	bool linux_boot = boot->kind != VM_BOOT_MULTIBOOT;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = boot->entry,
		.rax = boot->eax,
		.rbx = boot->ebx,
		.rsi = boot->esi,
		.rflags = 0x2,
	};
	int ret;

	ret = hv_vcpu_get_sregs(vcpu->hv, &sregs);
	if (ret)
		return ret;
	sregs.cs = flat_segment(linux_boot ? 0x10 : 0x08, 0xb);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
		flat_segment(linux_boot ? 0x18 : 0x10, 0x3);
	if (linux_boot) {
		sregs.gdt.base = VM_BOOT_GDT;
		sregs.gdt.limit = 4 * 8 - 1;
		sregs.tr.base = 0;
		sregs.tr.limit = 0x67;
		sregs.tr.type = 0xb; /* 32-bit TSS, busy */
		sregs.tr.present = 1;
		sregs.tr.s = 0;
		sregs.tr.unusable = 0;
	}
	sregs.cr0 = 0x11; /* PE, ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	ret = hv_vcpu_set_sregs(vcpu->hv, &sregs);
	if (ret)
		return ret;
	return hv_vcpu_set_regs(vcpu->hv, &regs);
}

int vm_vcpu_init(struct vm *vm, struct vm_vcpu *vcpu, uint32_t index)
{
	vcpu->vm = vm;
	vcpu->index = index;
	vm_runstate_init(vcpu);
	return hv_vcpu_create(vm->hv, index, &vcpu->hv);
}

int vm_vcpu_setup(struct vm_vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct kvm_cpuid2 *cpuid = NULL;
	uint32_t index = vcpu->index;
	int ret;

	ret = vm_cpuid_build(vm->supported_cpuid, &vm->cfg, index, vm->tsc_khz, &cpuid);
	if (!ret)
		ret = hv_vcpu_set_cpuid(vcpu->hv, cpuid);
	free(cpuid);
	/*
	 * KVM's map from APIC id to vCPU, which KVM_HC_KICK_CPU uses to find a pv spinlock
	 * waiter, is rebuilt when a LAPIC's state is set: each vCPU's creation rebuilt it
	 * without the vCPUs created after it.  Setting the state back once every vCPU exists
	 * rebuilds it whole, before the guest could kick anyone.
	 */
	if (!ret) {
		struct kvm_lapic_state lapic;

		ret = hv_vcpu_get_lapic(vcpu->hv, &lapic);
		if (!ret)
			ret = hv_vcpu_set_lapic(vcpu->hv, &lapic);
	}
	/* Statistics must be opened before the vCPU's first KVM_RUN; they are optional. */
	if (!ret && hv_vcpu_stats_open(vcpu->hv, &vcpu->stats))
		vcpu->stats = NULL;
	/* Application processors wait in KVM for INIT-SIPI-SIPI; only the BSP is set up. */
	if (!ret && index == 0)
		ret = set_boot_state(vcpu);
	return ret;
}

void vm_vcpu_fini(struct vm_vcpu *vcpu)
{
	vm_seccomp_free(vcpu->filter);
	vcpu->filter = NULL;
	vm_runstate_fini(vcpu);
	hv_stats_close(vcpu->stats);
	vcpu->stats = NULL;
	hv_vcpu_destroy(vcpu->hv);
	vcpu->hv = NULL;
}

static void log_guest_state(struct vm_vcpu *vcpu, enum util_log_level level, const char *what)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (hv_vcpu_get_regs(vcpu->hv, &regs) || hv_vcpu_get_sregs(vcpu->hv, &sregs)) {
		util_log(&vcpu->vm->log, level, "vCPU %u: %s", vcpu->index, what);
		return;
	}
	/*
	 * AMD's KVM re-initialises a vCPU when it intercepts a shutdown (the VMCB is undefined
	 * after one), so a triple fault there reports the state after INIT: say so rather than
	 * let 0xfff0 pass for where the guest failed.
	 */
	bool reset = regs.rip == 0xfff0 && sregs.cs.selector == 0xf000 && !(sregs.cr0 & 1);

	util_log(&vcpu->vm->log, level,
		 "vCPU %u: %s at rip=0x%llx rsp=0x%llx cs=0x%x cr0=0x%llx cr3=0x%llx cr4=0x%llx "
		 "efer=0x%llx%s",
		 vcpu->index, what, (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
		 sregs.cs.selector, (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr3,
		 (unsigned long long)sregs.cr4, (unsigned long long)sregs.efer,
		 reset ? " (the state after INIT: KVM re-initialised the vCPU, the fault's "
			 "registers are lost)" :
			 "");
}

static void guest_crash(struct vm_vcpu *vcpu, const char *what)
{
	log_guest_state(vcpu, UTIL_LOG_ERROR, what);
	vm_request_stop(vcpu->vm, VM_STOP_GUEST_CRASH, VM_EXIT_GUEST_CRASH);
}

static void unassigned(struct vm_vcpu *vcpu, const char *space, uint64_t addr, struct vm_io *io)
{
	vcpu->counters.unassigned_io++;
	if (!io->write)
		memset(io->data, 0xff, (size_t)io->size * io->count);
	util_log_limited(&vcpu->vm->log, &vcpu->vm->guest_log_limit, UTIL_LOG_DEBUG,
			 "vCPU %u: %s %s of %u bytes at 0x%llx: nothing there", vcpu->index,
			 io->write ? "write" : "read", space, io->size, (unsigned long long)addr);
}

static void handle_pio(struct vm_vcpu *vcpu, struct kvm_run *run)
{
	struct vm_io io = {
		.size = run->io.size,
		.count = run->io.count,
		.write = run->io.direction == KVM_EXIT_IO_OUT,
		.data = (uint8_t *)run + run->io.data_offset,
		.vcpu = vcpu,
	};

	vcpu->counters.exits_io++;
	if (!vm_bus_dispatch(&vcpu->vm->pio, run->io.port, &io))
		unassigned(vcpu, "port", run->io.port, &io);
}

static void handle_mmio(struct vm_vcpu *vcpu, struct kvm_run *run)
{
	struct vm_io io = {
		.size = run->mmio.len,
		.count = 1,
		.write = run->mmio.is_write,
		.data = run->mmio.data,
		.vcpu = vcpu,
	};

	vcpu->counters.exits_mmio++;
	if (io.size == 0 || io.size > sizeof(run->mmio.data)) {
		unassigned(vcpu, "mmio", run->mmio.phys_addr, &io);
		return;
	}
	if (!vm_bus_dispatch(&vcpu->vm->mmio, run->mmio.phys_addr, &io))
		unassigned(vcpu, "mmio", run->mmio.phys_addr, &io);
}

static void handle_system_event(struct vm_vcpu *vcpu, struct kvm_run *run)
{
	switch (run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vcpu->vm, VM_STOP_GUEST_EXIT, 0);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(vcpu->vm, VM_STOP_GUEST_RESET, 0);
		break;
	default:
		guest_crash(vcpu, "guest reported a crash");
		break;
	}
}

/* Handles one exit; false when the vCPU must stop running. */
static bool handle_exit(struct vm_vcpu *vcpu, struct kvm_run *run)
{
	char what[96];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_pio(vcpu, run);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu, run);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		vcpu->counters.exits_intr++;
		return true;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(vcpu, run);
		return false;
	case KVM_EXIT_SHUTDOWN:
		guest_crash(vcpu, "triple fault");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "invalid guest state (entry failure 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		guest_crash(vcpu, what);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error %u (%s)", run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
				 "instruction emulation failed" :
				 "see the KVM documentation");
		guest_crash(vcpu, what);
		return false;
	default:
		vcpu->counters.exits_other++;
		snprintf(what, sizeof(what), "unexpected exit reason %u", run->exit_reason);
		guest_crash(vcpu, what);
		return false;
	}
}

void vm_vcpu_note_kick(struct vm_vcpu *vcpu)
{
	uint64_t sent = atomic_exchange(&vcpu->kick_sent_ns, 0);

	vcpu->counters.kicks++;
	/* A kick from lockstepd's scheduler comes with a gate closed since the last entry. */
	if (!sent && __atomic_load_n(&vcpu->slot->gate, __ATOMIC_ACQUIRE) == SCHED_GATE_CLOSED) {
		uint64_t closed = __atomic_load_n(&vcpu->slot->close_ns, __ATOMIC_RELAXED);

		if (closed > __atomic_load_n(&vcpu->slot->entry_ns, __ATOMIC_RELAXED))
			sent = closed;
	}
	if (sent)
		util_samples_add(&vcpu->kick_latency, util_now_ns() - sent);
}

static bool keep_waiting(void *arg)
{
	struct vm_vcpu *vcpu = arg;

	return !vm_stopping(vcpu->vm);
}

static bool try_open(void *arg)
{
	return vm_mux_try_open(arg);
}

static void *vcpu_thread(void *arg)
{
	struct vm_vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	struct kvm_run *run = hv_vcpu_run_area(vcpu->hv);
	const struct sched_gate_hooks hooks = { .keep_waiting = keep_waiting,
						.try_open = try_open };
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	ret = hv_vcpu_set_kick_signal(vcpu->hv, vm->kick_signal);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "vCPU %u: cannot set up kicks: %s", vcpu->index,
			 strerror(-ret));
		vm_request_stop(vm, VM_STOP_ERROR, VM_EXIT_INTERNAL);
		return NULL;
	}
	/* Its own seccomp filter before it first enters the guest (vm/seccomp.c). */
	if (vcpu->filter && (ret = vm_seccomp_install(vcpu->filter))) {
		util_log(&vm->log, UTIL_LOG_ERROR, "vCPU %u: cannot install its seccomp filter: %s",
			 vcpu->index, strerror(-ret));
		vm_request_stop(vm, VM_STOP_ERROR, VM_EXIT_SANDBOX);
		return NULL;
	}
#ifdef LOCKSTEP_TEST_HOOKS
	if (vcpu->filter && vcpu->index == 0 && vm->jail &&
	    vm->jail->test_trap == VM_THREAD_VCPU + 1)
		syscall(SYS_getpgrp); /* forbidden: the SIGSYS handler ends the process */
#endif
	/* Reported (hello) once confined: a worker that says hello runs filtered. */
	atomic_store(&vcpu->tid, (int)syscall(SYS_gettid));
	sched_slot_set_state(vcpu->slot, SCHED_VCPU_RUNNING);
	__atomic_store_n(&vcpu->slot->tid, (uint32_t)atomic_load(&vcpu->tid), __ATOMIC_RELEASE);
	while (!vm_stopping(vm)) {
		uint64_t stops = vcpu->slot->stops;

		/* The scheduler's gate: KVM_RUN is entered only while it is open. */
		if (!sched_gate_pass(vcpu->slot, &hooks, vcpu))
			break;
		vm_mux_passed(vcpu, vcpu->slot->stops != stops);
		__atomic_store_n(&vcpu->slot->in_host, 0, __ATOMIC_RELAXED);
		ret = hv_vcpu_run(vcpu->hv);
		__atomic_store_n(&vcpu->slot->in_host, 1, __ATOMIC_RELAXED);
		vm_steering_note_exit(vcpu);
		if (ret == -EINTR) {
			vm_vcpu_note_kick(vcpu);
			vm_mux_kicked(vcpu);
			continue;
		}
		if (ret == -EAGAIN)
			continue;
		if (ret < 0) {
			util_log(&vm->log, UTIL_LOG_ERROR, "vCPU %u: KVM_RUN failed: %s",
				 vcpu->index, strerror(-ret));
			vm_request_stop(vm, VM_STOP_ERROR, VM_EXIT_INTERNAL);
			break;
		}
		if (!handle_exit(vcpu, run))
			break;
	}
	/* Where a guest that overran its time limit was: the first clue to what it waited for. */
	if (atomic_load(&vm->stop_reason) == VM_STOP_TIMEOUT)
		log_guest_state(vcpu, UTIL_LOG_WARN, "at the time limit");
	sched_slot_set_state(vcpu->slot, SCHED_VCPU_EXITED);
	return NULL;
}

int vm_vcpu_start(struct vm_vcpu *vcpu)
{
	int ret = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (ret)
		return -ret;
	vcpu->thread_started = true;
	return 0;
}

int vm_vcpu_kick(struct vm_vcpu *vcpu)
{
	uint64_t expected = 0;

	/* Latency is measured from the first of several unconsumed kicks. */
	atomic_compare_exchange_strong(&vcpu->kick_sent_ns, &expected, util_now_ns());
	sched_gate_nudge(vcpu->slot); /* in case it waits at a closed gate */
	return hv_vcpu_kick(vcpu->hv);
}

void vm_vcpu_join(struct vm_vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}
