/*
 * Fuzz target: the PCI platform as a guest drives it — configuration space through ECAM and
 * through ports 0xCF8/0xCFC, BAR accesses (lockstep's testdev registers, its MSI-X table and
 * PBA, QEMU's pci-testdev), raises from the device side — on a KVM-less VM whose routing
 * table commits to recording ops that sometimes refuse (so every rollback path runs).
 *
 * Each operation is 8 bytes: op, then 7 bytes of operands:
 *   op & 7 = 0  ECAM access: bytes 1-2 register (12 bits), byte 3 size class (bits 0-1)
 *               and slot (bits 2-6), 4-7 value (writes when op & 8)
 *   1           port access: CONFIG_ADDRESS write of bytes 4-7, or CONFIG_DATA at byte 1 & 3
 *   2           testdev BAR 0 or BAR 2 (MSI-X) access at its decoded address, offset bytes 1-2
 *   3           pci-testdev BAR access (memory or ports)
 *   4           device raises vector byte 1 (testdev), or sets INTx wanted from bit 0
 *   5           the next routing commit fails when byte 1 is odd
 *   6, 7        an access anywhere in the 32-bit BAR window
 * Invariants after each operation: the host bridge's and testdev's identity read back, the
 * routing table never holds more routes than it may, and every MSI route with a line is one
 * irq/ knows.
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
	uint32_t routes;
};

static int set_routing(void *ctx, const struct kvm_irq_routing *r)
{
	struct fake *f = ctx;

	if (f->fail_next) {
		f->fail_next = 0;
		return -ENOMEM;
	}
	f->routes = r->nr;
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

static const struct irq_ops ops = { set_routing, irqfd, signal_msi, set_line, NULL };

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void guest_access(struct vm *vm, const struct vm_bus *bus, uint64_t addr, uint32_t size,
			 bool write, uint32_t value, struct vm_vcpu *vcpu)
{
	uint64_t buf = value;
	struct vm_io io = vmtest_io(write, size, 1, &buf, vcpu);

	vm_bus_dispatch(bus, addr, &io);
}

static void check(struct vm *vm, struct fake *f)
{
	struct irq_stats st;

	if (vm_pci_config_read(vm->pci, 0, 0, 4) != 0x00081b36u)
		abort();
	if ((vm_pci_config_read(vm->pci, 3 << 3, 0, 4) & 0xffff) != 0x1234)
		abort();
	irq_get_stats(vm->irq, &st);
	if (st.routes > st.max_routes || f->routes > 2 * st.max_routes)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sizes[4] = { 1, 2, 4, 8 };
	struct vm_vcpu vcpu = { .index = 0 };
	struct irq_params params = { .max_routes = 40, .nr_vcpus = 4, .steering = true };
	int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct vm *vm = vmtest_vm_new("fuzz", 4, 2u << 20, null_fd, 10);
	struct vm_pci_dev *td, *pt;
	struct fake f = { 0 };

	if (null_fd < 0 || !vm || irq_new(&ops, &f, &params, &vm->irq) ||
	    vm_pci_new(vm, &vm->pci) || vm_pci_register(vm->pci) ||
	    vm_testdev_add(vm, 3, "testdev") || vm_pci_testdev_add(vm, 4, "pci-testdev"))
		abort();
	td = vm_pci_dev_at(vm->pci, 1);
	pt = vm_pci_dev_at(vm->pci, 2);
	vcpu.vm = vm;
	for (size_t pos = 0; pos + 8 <= size; pos += 8) {
		const uint8_t *d = data + pos;
		uint32_t value = get32(d + 4), off = (uint32_t)(d[1] | d[2] << 8);
		bool write = d[0] & 8;

		switch (d[0] & 7) {
		case 0:
			guest_access(vm, &vm->mmio,
				     VM_PCI_ECAM_BASE + ((uint64_t)(d[3] >> 2 & 31) << 15) +
					     (off & 0xfff),
				     sizes[d[3] & 3], write, value, &vcpu);
			break;
		case 1:
			if (write && (d[3] & 1))
				guest_access(vm, &vm->pio, VM_PCI_CONFIG_ADDRESS, 4, true, value,
					     &vcpu);
			else
				guest_access(vm, &vm->pio, VM_PCI_CONFIG_DATA + (d[1] & 3),
					     sizes[d[3] & 3] > 4 ? 4 : sizes[d[3] & 3], write,
					     value, &vcpu);
			break;
		case 2: {
			unsigned bar = d[3] & 1 ? 2 : 0;

			if (td->bar[bar].decoded)
				guest_access(vm, &vm->mmio, td->bar[bar].decoded + (off % 4096),
					     sizes[d[3] >> 1 & 3], write, value, &vcpu);
			break;
		}
		case 3: {
			unsigned bar = d[3] & 1;

			if (pt->bar[bar].decoded)
				guest_access(vm, bar ? &vm->pio : &vm->mmio,
					     pt->bar[bar].decoded + off % pt->bar[bar].size,
					     sizes[d[3] >> 1 & 3] > 4 ? 4 : sizes[d[3] >> 1 & 3],
					     write, value, &vcpu);
			break;
		}
		case 4:
			if (d[3] & 1)
				vm_pci_intx_set(td, d[1] & 1);
			else
				vm_pci_raise(td, d[1] % 80);
			break;
		case 5:
			f.fail_next = d[1] & 1;
			break;
		default:
			guest_access(vm, &vm->mmio, VM_PCI_MMIO_BASE + (value % 0x10000),
				     sizes[d[3] & 3], write, value, &vcpu);
			break;
		}
		check(vm, &f);
	}
	vm_pci_free(vm->pci);
	irq_free(vm->irq);
	vmtest_vm_free(vm);
	close(null_fd);
	return 0;
}
