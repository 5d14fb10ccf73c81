/*
 * A KVM VM fd: memory slots, the in-kernel irqchip and PIT, interrupt injection, ioeventfd and
 * irqfd registration, and the per-VM capabilities lockstep tunes (exits, halt polling).
 *
 * Called by vm/ (setup, on the main thread) and irq/ (routing).  KVM serialises VM ioctls
 * itself, so struct hv_vm needs no lock.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/hv_internal.h"

/* Three pages below 4 GiB that Intel's real-mode emulation needs; unused by every guest RAM
 * layout lockstep builds (RAM stops at 3 GiB, MMIO ends at 0xFEF00000). */
#define HV_TSS_ADDR 0xfffbd000ul

int hv_vm_create(struct hv_sys *sys, struct hv_vm **out)
{
	struct hv_vm *vm;
	int ret;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->sys = sys;
	vm->vfio_fd = -1;
	vm->fd = hv_ioctl(sys->fd, KVM_CREATE_VM, (void *)0);
	if (vm->fd < 0) {
		ret = vm->fd;
		goto err_free;
	}
	if (hv_ioctl(vm->fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_SET_TSS_ADDR) > 0) {
		ret = hv_ioctl(vm->fd, KVM_SET_TSS_ADDR, (void *)HV_TSS_ADDR);
		if (ret < 0)
			goto err_close;
	}
	ret = hv_ioctl(vm->fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_SYNC_REGS);
	vm->sync_regs = ret > 0 && (ret & KVM_SYNC_X86_REGS);
	*out = vm;
	return 0;

err_close:
	close(vm->fd);
err_free:
	free(vm);
	return ret;
}

void hv_vm_destroy(struct hv_vm *vm)
{
	if (!vm)
		return;
	if (vm->vfio_fd >= 0)
		close(vm->vfio_fd);
	close(vm->fd);
	free(vm);
}

struct hv_sys *hv_vm_sys(struct hv_vm *vm)
{
	return vm->sys;
}

int hv_vm_fd(const struct hv_vm *vm)
{
	return vm->fd;
}

int hv_vm_check_cap(struct hv_vm *vm, long cap)
{
	return hv_ioctl(vm->fd, KVM_CHECK_EXTENSION, (void *)cap);
}

int hv_vm_set_memory(struct hv_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
		     bool readonly)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = readonly ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return hv_ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region);
}

int hv_vm_create_irqchip(struct hv_vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int ret;

	ret = hv_ioctl(vm->fd, KVM_CREATE_IRQCHIP, NULL);
	if (ret < 0)
		return ret;
	return hv_ioctl(vm->fd, KVM_CREATE_PIT2, &pit);
}

int hv_vm_irq_line(struct hv_vm *vm, uint32_t gsi, bool level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	return hv_ioctl(vm->fd, KVM_IRQ_LINE, &irq);
}

int hv_vm_irq_line_status(struct hv_vm *vm, uint32_t gsi, bool level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };
	int ret = hv_ioctl(vm->fd, KVM_IRQ_LINE_STATUS, &irq);

	return ret < 0 ? ret : irq.status;
}

int hv_vm_signal_msi(struct hv_vm *vm, uint64_t address, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)address,
		.address_hi = (uint32_t)(address >> 32),
		.data = data,
	};

	return hv_ioctl(vm->fd, KVM_SIGNAL_MSI, &msi);
}

int hv_vm_set_gsi_routing(struct hv_vm *vm, const struct kvm_irq_routing *routing)
{
	return hv_ioctl(vm->fd, KVM_SET_GSI_ROUTING, (void *)routing);
}

int hv_vm_get_ioapic(struct hv_vm *vm, struct kvm_ioapic_state *out)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
	int ret = hv_ioctl(vm->fd, KVM_GET_IRQCHIP, &chip);

	if (ret < 0)
		return ret;
	memcpy(out, &chip.chip.ioapic, sizeof(*out));
	return 0;
}

int hv_vm_ioeventfd(struct hv_vm *vm, const struct hv_ioeventfd *io, bool assign)
{
	struct kvm_ioeventfd req = {
		.datamatch = io->data,
		.addr = io->addr,
		.len = io->len,
		.fd = io->fd,
		.flags = (io->pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (io->datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (io->len != 0 && io->len != 1 && io->len != 2 && io->len != 4 && io->len != 8)
		return -EINVAL;
	if (io->len == 0 && (io->pio || io->datamatch))
		return -EINVAL;
	return hv_ioctl(vm->fd, KVM_IOEVENTFD, &req);
}

int hv_vm_irqfd(struct hv_vm *vm, int fd, uint32_t gsi, int resample_fd, bool assign)
{
	struct kvm_irqfd req = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (assign && resample_fd >= 0) {
		req.flags |= KVM_IRQFD_FLAG_RESAMPLE;
		req.resamplefd = (uint32_t)resample_fd;
	}
	return hv_ioctl(vm->fd, KVM_IRQFD, &req);
}

static int enable_cap(struct hv_vm *vm, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap req = { .cap = cap, .args = { arg0 } };

	return hv_ioctl(vm->fd, KVM_ENABLE_CAP, &req);
}

int hv_vm_disable_exits(struct hv_vm *vm, uint32_t mask)
{
	int supported =
		hv_ioctl(vm->fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_X86_DISABLE_EXITS);

	if (supported < 0)
		return supported;
	if ((mask & ~(uint32_t)supported) != 0)
		return -EOPNOTSUPP;
	return enable_cap(vm, KVM_CAP_X86_DISABLE_EXITS, mask);
}

int hv_vm_set_halt_poll(struct hv_vm *vm, uint32_t max_ns)
{
	if (hv_ioctl(vm->fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_HALT_POLL) <= 0)
		return -EOPNOTSUPP;
	return enable_cap(vm, KVM_CAP_HALT_POLL, max_ns);
}

int hv_vm_stats_open(struct hv_vm *vm, struct hv_stats **out)
{
	int fd = hv_ioctl(vm->fd, KVM_GET_STATS_FD, NULL);

	if (fd < 0)
		return fd;
	return hv_stats_from_fd(fd, out);
}

/*
 * KVM's VFIO device tells KVM which VFIO groups (or device cdevs) the VM's devices come from:
 * KVM then knows DMA may be non-coherent (and honours guest WBINVD and memory types) and
 * hands the groups to code that needs them.  One device per VM, made on first use.
 */
int hv_vm_vfio_add(struct hv_vm *vm, int fd)
{
	struct kvm_create_device create = { .type = KVM_DEV_TYPE_VFIO };
	int32_t file = fd;
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = KVM_DEV_VFIO_GROUP_ADD, /* KVM_DEV_VFIO_FILE_ADD from Linux 6.6: the same */
		.addr = (uintptr_t)&file,
	};
	int ret;

	if (vm->vfio_fd < 0) {
		ret = hv_ioctl(vm->fd, KVM_CREATE_DEVICE, &create);
		if (ret < 0)
			return ret;
		vm->vfio_fd = (int)create.fd;
	}
	ret = hv_ioctl(vm->vfio_fd, KVM_SET_DEVICE_ATTR, &attr);
	return ret < 0 ? ret : 0;
}
