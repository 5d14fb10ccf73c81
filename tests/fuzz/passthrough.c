/*
 * Fuzz target: a passthrough device whose configuration space and VFIO facts come from the
 * input — the device is not trusted — described (vm_vfio_describe) and put on the PCI
 * platform, then driven by the guest: configuration reads and writes through ECAM (the
 * platform's part and the device's, which a stand-in forwards to a copy of the input), BAR
 * and ROM accesses, MSI and MSI-X programmed and masked, each change handed to the device
 * (irqs_changed, with the wiring it would give VFIO read back).
 *
 * Input: 256 bytes of configuration space; 8 bytes of facts (bytes 0-5: BAR i's size is
 * 1 << byte when not 0; byte 6: MSI messages VFIO offers; byte 7: MSI-X vectors, bit 7 of
 * byte 6 INTx); then 8-byte operations as in tests/fuzz/pci.c: op & 7 = 0 ECAM access to the
 * device (bytes 1-2 register, byte 3 size class, 4-7 value, write when op & 8), 1 a BAR access
 * (byte 3: BAR 0-6, offset bytes 1-2), 2 a raise of vector byte 1, 3 a failing commit next.
 * Invariants: the host bridge reads back, the device's vendor reads back as the input's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/vm/vmtest.h"
#include "vm/pci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fake {
	int fail_next;
	uint8_t cfg[PCI_CFG_SIZE]; /* the device's own configuration space */
	unsigned wired;		   /* irqs_changed calls */
};

static int set_routing(void *ctx, const struct kvm_irq_routing *r)
{
	struct fake *f = ctx;

	if (f->fail_next) {
		f->fail_next = 0;
		return -ENOMEM;
	}
	return 0;
}

static int irqfd(void *ctx, int fd, uint32_t gsi, int resample_fd, bool assign)
{
	return 0;
}

static int signal_msi(void *ctx, const struct irq_msi *msg)
{
	return 1;
}

static int set_line(void *ctx, uint32_t gsi, bool level)
{
	return 1;
}

static const struct irq_ops irq_ops = { set_routing, irqfd, signal_msi, set_line, NULL };

static bool cfg_read(struct vm_pci_dev *dev, uint32_t off, uint32_t size, uint32_t *val)
{
	struct fake *f = dev->opaque;

	if (off + size > PCI_CFG_LEGACY_SIZE)
		return false;
	*val = 0;
	memcpy(val, f->cfg + off, size);
	return true;
}

static void cfg_write(struct vm_pci_dev *dev, uint32_t off, uint32_t size, uint32_t val)
{
	struct fake *f = dev->opaque;

	if (!vm_pci_config_owned(dev, off) && off + size <= PCI_CFG_LEGACY_SIZE)
		memcpy(f->cfg + off, &val, size);
}

static void bar_io(struct vm_pci_dev *dev, unsigned bar, struct vm_io *io)
{
	if (!io->write)
		memset(io->data, 0x5a, (size_t)io->size * io->count);
}

static void irqs_changed(struct vm_pci_dev *dev)
{
	struct fake *f = dev->opaque;
	struct vm_pci_irq_state st;

	vm_pci_irq_state_locked(dev, &st);
	if (st.vectors > VM_PCI_MSIX_MAX)
		abort();
	for (unsigned i = 0; i < st.vectors; i++)
		if (st.line[i] && irq_line_fd(st.line[i]) < 0)
			abort();
	f->wired++;
}

static const struct vm_pci_dev_ops dev_ops = {
	.bar_io = bar_io,
	.config_read = cfg_read,
	.config_write = cfg_write,
	.irqs_changed = irqs_changed,
};

static void guest_access(struct vm *vm, const struct vm_bus *bus, uint64_t addr, uint32_t size,
			 bool write, uint32_t value, struct vm_vcpu *vcpu)
{
	uint64_t buf = value;
	struct vm_io io = vmtest_io(write, size, 1, &buf, vcpu);

	vm_bus_dispatch(bus, addr, &io);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sizes[4] = { 1, 2, 4, 8 };
	struct irq_params params = { .max_routes = 120, .nr_vcpus = 2, .steering = true };
	struct vm_pci_dev_desc d = { .name = "pt", .slot = 3, .ops = &dev_ops };
	struct vm_vcpu vcpu = { .index = 0 };
	struct vm_vfio_facts facts = { 0 };
	struct fake *f = calloc(1, sizeof(*f));
	struct vm_pci_dev *pt = NULL;
	struct vm *vm;
	char why[256];
	int null_fd;

	if (size < PCI_CFG_LEGACY_SIZE + 8 || !f) {
		free(f);
		return 0;
	}
	memcpy(f->cfg, data, PCI_CFG_LEGACY_SIZE);
	for (unsigned i = 0; i < VM_PCI_BARS; i++)
		facts.bar_size[i] = data[256 + i] ? 1ull << (data[256 + i] % 48) : 0;
	facts.nr_msi = data[262] & 0x3f;
	facts.nr_intx = data[262] >> 7;
	facts.nr_msix = data[263] * 9;
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	vm = vmtest_vm_new("fuzz", 2, 2u << 20, null_fd, 10);
	if (null_fd < 0 || !vm || irq_new(&irq_ops, f, &params, &vm->irq) ||
	    vm_pci_new(vm, &vm->pci) || vm_pci_register(vm->pci))
		abort();
	vcpu.vm = vm;
	d.opaque = f;
	d.config = f->cfg;
	d.config_len = PCI_CFG_LEGACY_SIZE;
	memcpy(&d.vendor, f->cfg, 2);
	memcpy(&d.device, f->cfg + 2, 2);
	if (vm_vfio_describe(f->cfg, &facts, &d, why, sizeof(why)) == 0) {
		d.rom_size = data[256] & 1 ? 4096 : 0;
		if (vm_pci_add(vm->pci, &d, &pt))
			pt = NULL; /* a description the platform refuses: nothing was added */
	}
	for (size_t pos = PCI_CFG_LEGACY_SIZE + 8; pt && pos + 8 <= size; pos += 8) {
		const uint8_t *op = data + pos;
		uint32_t value = get32(op + 4), off = (uint32_t)(op[1] | op[2] << 8);
		bool write = op[0] & 8;
		unsigned bar = op[3] % (VM_PCI_BARS + 1);

		switch (op[0] & 3) {
		case 0:
			guest_access(vm, &vm->mmio, VM_PCI_ECAM_BASE + (3u << 15) + (off & 0xfff),
				     sizes[op[3] & 3], write, value, &vcpu);
			break;
		case 1:
			if (pt->bar[bar].decoded)
				guest_access(vm,
					     pt->bar[bar].flags & VM_PCI_BAR_IO ? &vm->pio :
										  &vm->mmio,
					     pt->bar[bar].decoded + off % pt->bar[bar].size,
					     sizes[op[3] >> 4 & 3] > 4 &&
							     (pt->bar[bar].flags & VM_PCI_BAR_IO) ?
						     4 :
						     sizes[op[3] >> 4 & 3],
					     write, value, &vcpu);
			break;
		case 2:
			vm_pci_raise(pt, op[1] % 80);
			break;
		default:
			f->fail_next = op[1] & 1;
			break;
		}
		if (vm_pci_config_read(vm->pci, 0, 0, 4) != 0x00081b36u ||
		    (vm_pci_config_read(vm->pci, 3 << 3, 0, 2) & 0xffff) != d.vendor)
			abort();
	}
	vm_pci_free(vm->pci);
	irq_free(vm->irq);
	vmtest_vm_free(vm);
	close(null_fd);
	free(f);
	return 0;
}
