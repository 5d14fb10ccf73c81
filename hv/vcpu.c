/*
 * A vCPU fd: its mmapped kvm_run, register state, CPUID, MSRs, MP state, KVM_RUN and kicks.
 *
 * Every function except hv_vcpu_kick() runs on the vCPU's own thread: KVM holds the vCPU mutex
 * for the whole of KVM_RUN, so an ioctl from another thread would wait for the guest to exit.
 * The kick is a thread-directed signal that KVM unblocks only inside KVM_RUN (see hv.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/hv_internal.h"

int hv_vcpu_create(struct hv_vm *vm, uint32_t id, struct hv_vcpu **out)
{
	struct hv_vcpu *vcpu;
	int ret;

	vcpu = calloc(1, sizeof(*vcpu));
	if (!vcpu)
		return -ENOMEM;
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = hv_ioctl(vm->fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);
	if (vcpu->fd < 0) {
		ret = vcpu->fd;
		goto err_free;
	}
	vcpu->run_size = vm->sys->run_size;
	vcpu->run =
		mmap(NULL, (size_t)vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	*out = vcpu;
	return 0;

err_close:
	close(vcpu->fd);
err_free:
	free(vcpu);
	return ret;
}

void hv_vcpu_destroy(struct hv_vcpu *vcpu)
{
	if (!vcpu)
		return;
	munmap(vcpu->run, (size_t)vcpu->run_size);
	close(vcpu->fd);
	free(vcpu);
}

uint32_t hv_vcpu_id(const struct hv_vcpu *vcpu)
{
	return vcpu->id;
}

int hv_vcpu_fd(const struct hv_vcpu *vcpu)
{
	return vcpu->fd;
}

struct kvm_run *hv_vcpu_run_area(struct hv_vcpu *vcpu)
{
	return vcpu->run;
}

int hv_vcpu_get_regs(struct hv_vcpu *vcpu, struct kvm_regs *regs)
{
	return hv_ioctl(vcpu->fd, KVM_GET_REGS, regs);
}

int hv_vcpu_set_regs(struct hv_vcpu *vcpu, const struct kvm_regs *regs)
{
	return hv_ioctl(vcpu->fd, KVM_SET_REGS, (void *)regs);
}

int hv_vcpu_get_sregs(struct hv_vcpu *vcpu, struct kvm_sregs *sregs)
{
	return hv_ioctl(vcpu->fd, KVM_GET_SREGS, sregs);
}

int hv_vcpu_set_sregs(struct hv_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	return hv_ioctl(vcpu->fd, KVM_SET_SREGS, (void *)sregs);
}

int hv_vcpu_set_cpuid(struct hv_vcpu *vcpu, const struct kvm_cpuid2 *cpuid)
{
	return hv_ioctl(vcpu->fd, KVM_SET_CPUID2, (void *)cpuid);
}

/* struct kvm_msrs ends in a flexible array: room for one entry behind it. */
union one_msr {
	struct kvm_msrs hdr;
	uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
};

int hv_vcpu_get_msr(struct hv_vcpu *vcpu, uint32_t index, uint64_t *value)
{
	union one_msr m = { .hdr.nmsrs = 1 };
	int ret;

	m.hdr.entries[0].index = index;
	ret = hv_ioctl(vcpu->fd, KVM_GET_MSRS, &m);
	if (ret < 0)
		return ret;
	if (ret != 1)
		return -EINVAL; /* KVM returns how many it read: 0 = not an MSR it knows */
	*value = m.hdr.entries[0].data;
	return 0;
}

int hv_vcpu_set_msr(struct hv_vcpu *vcpu, uint32_t index, uint64_t value)
{
	union one_msr m = { .hdr.nmsrs = 1 };
	int ret;

	m.hdr.entries[0].index = index;
	m.hdr.entries[0].data = value;
	ret = hv_ioctl(vcpu->fd, KVM_SET_MSRS, &m);
	if (ret < 0)
		return ret;
	return ret == 1 ? 0 : -EINVAL;
}

int hv_vcpu_get_mp_state(struct hv_vcpu *vcpu, uint32_t *state)
{
	struct kvm_mp_state mp;
	int ret = hv_ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp);

	if (ret == 0)
		*state = mp.mp_state;
	return ret;
}

int hv_vcpu_set_mp_state(struct hv_vcpu *vcpu, uint32_t state)
{
	struct kvm_mp_state mp = { .mp_state = state };

	return hv_ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp);
}

int hv_vcpu_get_lapic(struct hv_vcpu *vcpu, struct kvm_lapic_state *lapic)
{
	return hv_ioctl(vcpu->fd, KVM_GET_LAPIC, lapic);
}

int hv_vcpu_set_lapic(struct hv_vcpu *vcpu, const struct kvm_lapic_state *lapic)
{
	return hv_ioctl(vcpu->fd, KVM_SET_LAPIC, (void *)lapic);
}

int hv_vcpu_tsc_khz(struct hv_vcpu *vcpu)
{
	return hv_ioctl(vcpu->fd, KVM_GET_TSC_KHZ, NULL);
}

int hv_vcpu_exit_regs(struct hv_vcpu *vcpu, struct kvm_regs *regs)
{
	if (vcpu->vm->sync_regs && (vcpu->run->kvm_valid_regs & KVM_SYNC_X86_REGS)) {
		*regs = vcpu->run->s.regs.regs;
		return 0;
	}
	return hv_vcpu_get_regs(vcpu, regs);
}

static void kick_handler(int signo)
{
	(void)signo; /* the signal's only job is to interrupt KVM_RUN */
}

int hv_vcpu_set_kick_signal(struct hv_vcpu *vcpu, int signo)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	/* struct kvm_signal_mask ends in the kernel's 8-byte sigset, not glibc's sigset_t. */
	union {
		struct kvm_signal_mask hdr;
		uint8_t bytes[sizeof(struct kvm_signal_mask) + 8];
	} mask;
	sigset_t blocked, inside;
	int ret;

	/* Handler first: a kick delivered outside KVM_RUN must not take the default action. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(signo, &sa, NULL) < 0)
		return -errno;
	sigemptyset(&blocked);
	sigaddset(&blocked, signo);
	ret = pthread_sigmask(SIG_BLOCK, &blocked, NULL);
	if (ret)
		return -ret;

	/* Inside KVM_RUN: the thread's mask minus the kick signal. */
	pthread_sigmask(SIG_BLOCK, NULL, &inside);
	sigdelset(&inside, signo);
	mask.hdr.len = 8;
	memcpy(mask.bytes + sizeof(struct kvm_signal_mask), &inside, 8);
	ret = hv_ioctl(vcpu->fd, KVM_SET_SIGNAL_MASK, &mask);
	if (ret < 0)
		return ret;
	vcpu->thread = pthread_self();
	__atomic_store_n(&vcpu->kick_signo, signo, __ATOMIC_RELEASE);
	return 0;
}

int hv_vcpu_kick(struct hv_vcpu *vcpu)
{
	int signo = __atomic_load_n(&vcpu->kick_signo, __ATOMIC_ACQUIRE);

	if (!signo)
		return -ENOTCONN;
	return -pthread_kill(vcpu->thread, signo);
}

/* Eats the kick signal left pending (blocked again) after KVM_RUN returned -EINTR. */
static void consume_kick(struct hv_vcpu *vcpu)
{
	const struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, vcpu->kick_signo);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
}

int hv_vcpu_run(struct hv_vcpu *vcpu)
{
	int ret;

	if (vcpu->vm->sync_regs)
		vcpu->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	ret = ioctl(vcpu->fd, KVM_RUN, 0);
	if (ret == 0)
		return 0;
	ret = -errno;
	if (ret == -EINTR && vcpu->kick_signo)
		consume_kick(vcpu);
	return ret;
}

int hv_vcpu_stats_open(struct hv_vcpu *vcpu, struct hv_stats **out)
{
	int fd = hv_ioctl(vcpu->fd, KVM_GET_STATS_FD, NULL);

	if (fd < 0)
		return fd;
	return hv_stats_from_fd(fd, out);
}
