/*
 * Fuzz target: guest-controlled device registers.  The input is a sequence of accesses, as
 * vCPU exits would deliver them, against the UART, fw_cfg, the platform ports (debug exit,
 * reset, i8042, POST), the ACPI PM registers (PM1 event and control blocks, PM timer) and the
 * doorbell of one KVM-less VM (tests/unit/vm/vmtest_machine.c), dispatched through the
 * port-I/O and MMIO buses at lockstep-vm's addresses.
 *
 * Each access is a 3-byte header then, for writes, its data:
 *   byte 0: bits 0-1 target (0 COM1, 1 fw_cfg, 2 platform port, 3 doorbell), bit 2 write;
 *           port I/O: bits 3-4 size (1, 2, 4, 4), bits 5-7 repeat count class;
 *           MMIO: bits 3-5 size - 1 (1 to 8 bytes)
 *   bytes 1-2: offset within the target (little-endian, reduced to its range, a little past
 *           its end so unassigned neighbours are hit too); for target 2, bit 15 selects the
 *           ACPI PM block instead of the platform ports, and bit 14 with it first presses the
 *           power button (as vm.shutdown does from the control thread), so the SCI moves
 * Sizes and counts stay within what KVM delivers: port I/O of 1, 2 or 4 bytes repeated so the
 * data fits a page, MMIO of 1 to 8 bytes once.  Besides the sanitizers, three invariants are
 * checked after every access: LSR says the transmitter is empty (0x60) with no framing, parity
 * or break errors (data ready and overrun come from MCR's loopback), PM1_CNT reads with SCI_EN
 * set (no SMM: always in ACPI mode) and the PROBE call answers LKS_PROBE_VALUE.
 *
 * The VM has no KVM: its hv_vm has no fd, so the SCI's KVM_IRQ_LINE fails with EBADF and is
 * dropped, as a line change is on a VM whose fd is gone.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/hv_internal.h"
#include "pvlock/abi.h"
#include "tests/unit/vm/vmtest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t platform_ports[] = { 0xf4, 0xf5, 0xf7, 0xcf9, 0x60, 0x64, 0x80, 0x61 };
static const uint32_t counts[] = { 1, 1, 1, 1, 2, 3, 17, 300 };

static void check_invariants(struct vm *vm, struct vm_vcpu *vcpu)
{
	uint64_t v = 0;
	struct vm_io io = vmtest_io(false, 1, 1, &v, vcpu);

	if (!vm_bus_dispatch(&vm->pio, VMTEST_COM1_PORT + 5, &io) || (v & 0x60) != 0x60 ||
	    (v & 0x9c))
		abort();
	v = 0;
	io = vmtest_io(false, 2, 1, &v, vcpu);
	if (!vm_bus_dispatch(&vm->pio, VM_ACPI_PM1_EVT + 4, &io) || !(v & 1))
		abort();
	io = vmtest_io(false, 8, 1, &v, vcpu);
	if (!vm_bus_dispatch(&vm->mmio, LKS_DOORBELL_GPA_DEFAULT + LKS_DB_CALL(LKS_CALL_PROBE),
			     &io) ||
	    v != LKS_PROBE_VALUE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[4096];
	struct vm_vcpu vcpu = { .index = 0 };
	int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct vm *vm = vmtest_vm_new("fuzz", 4, 2u << 20, null_fd, 10);
	struct hv_vm hv = { .fd = -1 };
	size_t pos = 0;

	if (null_fd < 0 || !vm)
		abort();
	vm->hv = &hv;
	if (vmtest_vm_add_devices(vm, null_fd))
		abort();
	vcpu.vm = vm;
	while (pos + 3 <= size) {
		uint8_t op = data[pos];
		uint16_t off = (uint16_t)(data[pos + 1] | data[pos + 2] << 8);
		unsigned target = op & 3;
		bool write = op & 4;
		uint32_t width = 1u << ((op >> 3) & 3), count = counts[op >> 5];
		const struct vm_bus *bus = &vm->pio;
		uint64_t addr;
		struct vm_io io;
		size_t len;

		pos += 3;
		if (target == 3) { /* MMIO: one access of 1..8 bytes */
			bus = &vm->mmio;
			width = ((op >> 3) & 7) + 1u;
			count = 1;
			addr = LKS_DOORBELL_GPA_DEFAULT + off % (LKS_DOORBELL_SIZE + 16);
		} else {
			if (width > 4)
				width = 4;
			if (target == 0)
				addr = VMTEST_COM1_PORT + off % 9;
			else if (target == 1)
				addr = VMTEST_FWCFG_PORT + off % 13;
			else if (!(off & 0x8000))
				addr = platform_ports[off % 8];
			else
				addr = VM_ACPI_PM1_EVT + (off & 0x3fff) % 13;
			if (target == 2 && (off & 0xc000) == 0xc000)
				vm_acpi_pm_power_button(vm->acpi_pm);
		}
		len = (size_t)width * count;
		memset(buf, 0, len);
		if (write) {
			size_t n = size - pos < len ? size - pos : len;

			memcpy(buf, data + pos, n);
			pos += n;
		}
		io = vmtest_io(write, width, count, buf, &vcpu);
		vm_bus_dispatch(bus, addr, &io);
		check_invariants(vm, &vcpu);
	}
	vmtest_vm_free(vm);
	close(null_fd);
	return 0;
}
