/*
 * hv — the hardware-assisted core: the only code in lockstep that issues KVM ioctls.
 *
 * Three objects mirror KVM's three fd levels: struct hv_sys (/dev/kvm), struct hv_vm (a VM fd)
 * and struct hv_vcpu (a vCPU fd with its mmapped kvm_run).  Everything returns 0 or -errno and
 * logs nothing: callers decide what a failure means.  hv_vcpu functions are called only from the
 * vCPU's own thread, except hv_vcpu_kick(), which any thread may call.
 *
 * Binary statistics (KVM_GET_STATS_FD) are read by name through struct hv_stats.
 */
#ifndef LOCKSTEP_HV_H
#define LOCKSTEP_HV_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

struct hv_sys;
struct hv_vm;
struct hv_vcpu;
struct hv_stats;

/* ---- system (/dev/kvm) ---- */

/* Opens /dev/kvm (or `path`) and checks the API version and the capabilities lockstep needs.
 * On failure, `why` (if not NULL) says which requirement failed, in words a person can act on. */
int hv_sys_open(const char *path, struct hv_sys **out, char *why, size_t why_len);
/* The same without the capability checks (for the host check, which reports what is missing);
 * the API version must still match. */
int hv_sys_open_unchecked(const char *path, struct hv_sys **out, char *why, size_t why_len);
/* 0, or -ENOTSUP with `why` naming the first capability lockstep needs that KVM lacks. */
int hv_sys_check_requirements(struct hv_sys *sys, char *why, size_t why_len);
int hv_sys_api_version(struct hv_sys *sys);
void hv_sys_close(struct hv_sys *sys);
/*
 * What lockstep needs of a KVM (`what`, for the message): the API version it reports and the
 * capabilities that are not optional, each asked of `check_cap` (KVM_CHECK_EXTENSION: > 0 means
 * present).  0, or -EPROTO (another API version; its -errno if it gave one) or -ENOTSUP, with
 * `why` naming the first requirement that failed.
 */
int hv_requirements_check(const char *what, int api_version, int (*check_cap)(void *arg, long cap),
			  void *arg, char *why, size_t why_len);
/* KVM_CHECK_EXTENSION on /dev/kvm: >= 0 value, or -errno. */
int hv_sys_check_cap(struct hv_sys *sys, long cap);
/* Largest vCPU count KVM allows for one VM. */
int hv_sys_max_vcpus(struct hv_sys *sys);
/* KVM_GET_SUPPORTED_CPUID; the caller frees *out with free(). */
int hv_sys_supported_cpuid(struct hv_sys *sys, struct kvm_cpuid2 **out);

/* ---- VM ---- */

int hv_vm_create(struct hv_sys *sys, struct hv_vm **out);
void hv_vm_destroy(struct hv_vm *vm);
struct hv_sys *hv_vm_sys(struct hv_vm *vm);
/* The VM fd, for a seccomp filter that pins ioctls to it; hv/ remains their only issuer. */
int hv_vm_fd(const struct hv_vm *vm);
int hv_vm_check_cap(struct hv_vm *vm, long cap);

int hv_vm_set_memory(struct hv_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
		     bool readonly);
/* Registers a VFIO group fd (type1) or device cdev fd (iommufd) with KVM's VFIO device. */
int hv_vm_vfio_add(struct hv_vm *vm, int fd);
/* In-kernel LAPIC/IOAPIC/PIC and the PIT (KVM_CREATE_IRQCHIP + KVM_CREATE_PIT2). */
int hv_vm_create_irqchip(struct hv_vm *vm);
int hv_vm_irq_line(struct hv_vm *vm, uint32_t gsi, bool level);
/* KVM_IRQ_LINE_STATUS: > 0 delivered, 0 coalesced or masked, -errno. */
int hv_vm_irq_line_status(struct hv_vm *vm, uint32_t gsi, bool level);
/* KVM_SIGNAL_MSI: > 0 delivered, 0 blocked by the guest (masked), -errno. */
int hv_vm_signal_msi(struct hv_vm *vm, uint64_t address, uint32_t data);
/* Replaces the whole GSI routing table (KVM_SET_GSI_ROUTING). */
int hv_vm_set_gsi_routing(struct hv_vm *vm, const struct kvm_irq_routing *routing);
/* The in-kernel IOAPIC's state (KVM_GET_IRQCHIP), read only: redirection table, IRR. */
int hv_vm_get_ioapic(struct hv_vm *vm, struct kvm_ioapic_state *out);

struct hv_ioeventfd {
	uint64_t addr;
	uint32_t len; /* 0 (any length, MMIO only), 1, 2, 4 or 8 */
	bool pio;
	bool datamatch;
	uint64_t data;
	int fd;
};
int hv_vm_ioeventfd(struct hv_vm *vm, const struct hv_ioeventfd *io, bool assign);
int hv_vm_irqfd(struct hv_vm *vm, int fd, uint32_t gsi, int resample_fd, bool assign);

/* KVM_CAP_X86_DISABLE_EXITS: `mask` of KVM_X86_DISABLE_EXITS_*; must precede vCPU creation. */
int hv_vm_disable_exits(struct hv_vm *vm, uint32_t mask);
/* KVM_CAP_HALT_POLL: per-VM halt polling limit in ns (0 = never poll). */
int hv_vm_set_halt_poll(struct hv_vm *vm, uint32_t max_ns);
/* Opens the VM's binary statistics. */
int hv_vm_stats_open(struct hv_vm *vm, struct hv_stats **out);

/* ---- vCPU ---- */

int hv_vcpu_create(struct hv_vm *vm, uint32_t id, struct hv_vcpu **out);
void hv_vcpu_destroy(struct hv_vcpu *vcpu);
uint32_t hv_vcpu_id(const struct hv_vcpu *vcpu);
/* The vCPU fd, for a seccomp filter that pins its thread's ioctls to it. */
int hv_vcpu_fd(const struct hv_vcpu *vcpu);
struct kvm_run *hv_vcpu_run_area(struct hv_vcpu *vcpu);

int hv_vcpu_get_regs(struct hv_vcpu *vcpu, struct kvm_regs *regs);
int hv_vcpu_set_regs(struct hv_vcpu *vcpu, const struct kvm_regs *regs);
int hv_vcpu_get_sregs(struct hv_vcpu *vcpu, struct kvm_sregs *sregs);
int hv_vcpu_set_sregs(struct hv_vcpu *vcpu, const struct kvm_sregs *sregs);
int hv_vcpu_set_cpuid(struct hv_vcpu *vcpu, const struct kvm_cpuid2 *cpuid);
int hv_vcpu_get_msr(struct hv_vcpu *vcpu, uint32_t index, uint64_t *value);
int hv_vcpu_set_msr(struct hv_vcpu *vcpu, uint32_t index, uint64_t value);
int hv_vcpu_get_mp_state(struct hv_vcpu *vcpu, uint32_t *state);
int hv_vcpu_set_mp_state(struct hv_vcpu *vcpu, uint32_t state);
int hv_vcpu_get_lapic(struct hv_vcpu *vcpu, struct kvm_lapic_state *lapic);
int hv_vcpu_set_lapic(struct hv_vcpu *vcpu, const struct kvm_lapic_state *lapic);
int hv_vcpu_tsc_khz(struct hv_vcpu *vcpu);

/*
 * The general-purpose registers as of the last exit, without an ioctl when KVM syncs them into
 * kvm_run (KVM_CAP_SYNC_REGS); falls back to KVM_GET_REGS.  Valid until the next hv_vcpu_run().
 */
int hv_vcpu_exit_regs(struct hv_vcpu *vcpu, struct kvm_regs *regs);

/*
 * Kicks: the vCPU thread blocks `signo` in its own mask and calls hv_vcpu_set_kick_signal() so
 * that KVM unblocks it only inside KVM_RUN.  hv_vcpu_kick() from any thread then makes a running
 * KVM_RUN return -EINTR at once, and a kick sent while the vCPU is outside KVM_RUN makes the
 * next KVM_RUN return -EINTR immediately: no kick is lost.  hv_vcpu_run() consumes the pending
 * signal when it returns -EINTR.
 */
int hv_vcpu_set_kick_signal(struct hv_vcpu *vcpu, int signo);
int hv_vcpu_kick(struct hv_vcpu *vcpu);
/* KVM_RUN. 0 = an exit to handle in hv_vcpu_run_area(vcpu)->exit_reason; -EINTR = kicked. */
int hv_vcpu_run(struct hv_vcpu *vcpu);
/* Opens the vCPU's binary statistics; call before the vCPU first runs (it blocks otherwise). */
int hv_vcpu_stats_open(struct hv_vcpu *vcpu, struct hv_stats **out);

/* ---- binary statistics ---- */

/* Index of the statistic called `name`, or -ENOENT. */
int hv_stats_find(const struct hv_stats *stats, const char *name);
int hv_stats_count(const struct hv_stats *stats);
const char *hv_stats_name(const struct hv_stats *stats, int index);
/* Reads every statistic's first value (histograms are skipped: 0). */
int hv_stats_read(struct hv_stats *stats, uint64_t *values, int count);
/* Reads one statistic by name. */
int hv_stats_read_one(struct hv_stats *stats, const char *name, uint64_t *value);
void hv_stats_close(struct hv_stats *stats);

#endif /* LOCKSTEP_HV_H */
