/*
 * QEMU's test devices, register-compatible, so that interrupt and I/O tests written for QEMU
 * (kvm-unit-tests and the like) run unchanged:
 *
 * pc-testdev (ISA, fixed addresses):
 *   ports 0xE0-0xE3   a 32-bit data register, any access size at any byte offset
 *   ports 0xE4-0xE7   flush: a 4-byte write of a guest-physical address makes the host drop
 *                     its mapping of that page (mprotect round trip), as QEMU does
 *   ports 0xE8-0xEB   the same data register, accessed byte by byte
 *   ports 0x2000-0x2017  IRQ lines: a byte write of V to 0x2000 + n sets GSI n to !!V
 *                     (KVM_IRQ_LINE: ISA IRQs on PIC and IOAPIC, 16-23 on the IOAPIC)
 *   MMIO 0xFF000000   64 KiB of scratch memory
 *
 * pci-testdev (PCI 1b36:0005, class 0xff): BAR 0 (4 KiB MMIO) and BAR 1 (256 ports) each
 * offer three tests, selected by writing 0-2 to offset 0, whose header (test, width, offset,
 * data, count, name) reads back byte by byte; writes of the header's data to its offset count.
 * QEMU services the "eventfd" variants with an ioeventfd, so its count may stay 0 where
 * lockstep's counts the writes; tests accept either.
 *
 * pc-testdev's ports and memory are vCPU-thread accesses only; each device has one mutex.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vm/pci.h"
#include "vm/vm_internal.h"

#define PC_TESTDEV_DATA 0xe0
#define PC_TESTDEV_FLUSH 0xe4
#define PC_TESTDEV_DATA_BYTE 0xe8
#define PC_TESTDEV_IRQ 0x2000
#define PC_TESTDEV_IRQ_LINES 24
#define PC_TESTDEV_IOMEM 0xff000000ull
#define PC_TESTDEV_IOMEM_SIZE 0x10000

#define PCI_TESTDEV_VENDOR 0x1b36
#define PCI_TESTDEV_DEVICE 0x0005
#define PCI_TESTDEV_CLASS 0xff0000
#define PCI_TESTDEV_MMIO_SIZE 4096 /* two 2048-byte halves, as QEMU's */
#define PCI_TESTDEV_IO_SIZE 256
#define PCI_TESTDEV_TESTS 3 /* per BAR: no-eventfd, wildcard-eventfd, datamatch-eventfd */
#define PCI_TESTDEV_DATAMATCH 0xfa
#define PCI_TESTDEV_NOMATCH 0xce

struct vm_pc_testdev {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t data;
	uint8_t iomem[PC_TESTDEV_IOMEM_SIZE];
};

/* ---- pc-testdev ---- */

static void data_access(struct vm_pc_testdev *t, unsigned byte, struct vm_io *io, uint32_t i)
{
	uint8_t *p = io->data + (size_t)i * io->size;

	for (uint32_t k = 0; k < io->size && byte + k < 4; k++) {
		unsigned shift = (byte + k) * 8;

		if (io->write)
			t->data = (t->data & ~(0xffu << shift)) | (uint32_t)p[k] << shift;
		else
			p[k] = (uint8_t)(t->data >> shift);
	}
}

static void pc_data_io(void *opaque, struct vm_io *io)
{
	struct vm_pc_testdev *t = opaque;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < io->count; i++)
		data_access(t, (unsigned)io->offset, io, i);
	pthread_mutex_unlock(&t->lock);
}

static void pc_flush_io(void *opaque, struct vm_io *io)
{
	struct vm_pc_testdev *t = opaque;
	uint32_t gpa;
	void *page;

	if (!io->write) {
		memset(io->data, 0xff, (size_t)io->size * io->count);
		return;
	}
	if (io->size != 4 || io->offset != 0)
		return;
	memcpy(&gpa, io->data + (size_t)(io->count - 1) * 4, 4);
	page = vm_memory_ptr(&t->vm->mem, gpa & ~0xfffu, 4096);
	if (!page)
		return; /* not RAM: nothing to flush */
	/* The host mapping changes, so KVM drops its translation of the page. */
	mprotect(page, 4096, PROT_NONE);
	mprotect(page, 4096, PROT_READ | PROT_WRITE);
}

static void pc_irq_io(void *opaque, struct vm_io *io)
{
	struct vm_pc_testdev *t = opaque;

	if (!io->write) {
		memset(io->data, 0xff, (size_t)io->size * io->count);
		return;
	}
	if (io->size != 1)
		return; /* QEMU takes byte writes only */
	for (uint32_t i = 0; i < io->count; i++)
		irq_set_level(t->vm->irq, (uint32_t)io->offset, io->data[i] != 0);
}

static void pc_iomem_io(void *opaque, struct vm_io *io)
{
	struct vm_pc_testdev *t = opaque;

	if (io->offset + io->size > PC_TESTDEV_IOMEM_SIZE)
		return;
	pthread_mutex_lock(&t->lock);
	if (io->write)
		memcpy(t->iomem + io->offset, io->data, io->size);
	else
		memcpy(io->data, t->iomem + io->offset, io->size);
	pthread_mutex_unlock(&t->lock);
}

int vm_pc_testdev_new(struct vm *vm, struct vm_pc_testdev **out)
{
	struct vm_pc_testdev *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	t->vm = vm;
	pthread_mutex_init(&t->lock, NULL);
	ret = vm_bus_add(&vm->pio, PC_TESTDEV_DATA, 4, pc_data_io, t, "pc-testdev");
	if (!ret)
		ret = vm_bus_add(&vm->pio, PC_TESTDEV_FLUSH, 4, pc_flush_io, t, "pc-testdev-flush");
	if (!ret)
		ret = vm_bus_add(&vm->pio, PC_TESTDEV_DATA_BYTE, 4, pc_data_io, t,
				 "pc-testdev-byte");
	if (!ret)
		ret = vm_bus_add(&vm->pio, PC_TESTDEV_IRQ, PC_TESTDEV_IRQ_LINES, pc_irq_io, t,
				 "pc-testdev-irq");
	if (!ret)
		ret = vm_bus_add(&vm->mmio, PC_TESTDEV_IOMEM, PC_TESTDEV_IOMEM_SIZE, pc_iomem_io, t,
				 "pc-testdev-iomem");
	if (ret) {
		vm_pc_testdev_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

void vm_pc_testdev_free(struct vm_pc_testdev *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* ---- pci-testdev ---- */

/* One test's header as QEMU lays it out, followed by its name. */
struct pci_testdev_test {
	uint8_t buf[48];
	unsigned len; /* header + name + NUL */
	uint32_t offset;
	uint8_t width, data;
	bool match_data;
};

struct vm_pci_testdev {
	pthread_mutex_t lock;
	int current; /* index into test[], -1 = none */
	struct pci_testdev_test test[2 * PCI_TESTDEV_TESTS];
};

static void init_tests(struct vm_pci_testdev *d)
{
	static const char *const kinds[] = { "no-eventfd", "wildcard-eventfd",
					     "datamatch-eventfd" };

	for (unsigned i = 0; i < 2 * PCI_TESTDEV_TESTS; i++) {
		struct pci_testdev_test *t = &d->test[i];
		const char *kind = kinds[i % PCI_TESTDEV_TESTS];
		bool pio = i >= PCI_TESTDEV_TESTS;
		int n;

		t->match_data = strcmp(kind, "wildcard-eventfd") != 0;
		t->width = 1;
		t->data = t->match_data ? PCI_TESTDEV_DATAMATCH : PCI_TESTDEV_NOMATCH;
		t->offset = (pio ? 128 : 2048) + i; /* past the header, one byte per test */
		t->buf[0] = (uint8_t)i;
		t->buf[1] = t->width;
		memcpy(t->buf + 4, &t->offset, 4);
		t->buf[8] = t->data;
		n = snprintf((char *)t->buf + 16, sizeof(t->buf) - 16, "%s-%s",
			     pio ? "portio" : "mmio", kind);
		t->len = 16 + (unsigned)n + 1;
	}
}

/* QEMU handles this BAR a byte at a time: so does this. */
static void pci_testdev_byte(struct vm_pci_testdev *d, unsigned type, uint32_t addr, uint8_t *b,
			     bool write)
{
	struct pci_testdev_test *t;

	if (write && addr == 0) {
		d->current = *b < PCI_TESTDEV_TESTS ? (int)(type * PCI_TESTDEV_TESTS + *b) : -1;
		if (d->current >= 0)
			memset(d->test[d->current].buf + 12, 0, 4); /* count */
		return;
	}
	if (d->current < 0) {
		if (!write)
			*b = 0;
		return;
	}
	t = &d->test[d->current];
	if (!write) {
		*b = addr + 1 >= t->len ? 0 : t->buf[addr];
		return;
	}
	/* Split into bytes, every write has the tests' width (1). */
	if (addr != t->offset || (t->match_data && *b != t->data))
		return;
	{
		uint32_t count;

		memcpy(&count, t->buf + 12, 4);
		count++;
		memcpy(t->buf + 12, &count, 4);
	}
}

static void pci_testdev_bar_io(struct vm_pci_dev *dev, unsigned bar, struct vm_io *io)
{
	struct vm_pci_testdev *d = dev->opaque;

	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < io->count; i++)
		for (uint32_t k = 0; k < io->size; k++)
			pci_testdev_byte(d, bar, (uint32_t)io->offset + k,
					 io->data + (size_t)i * io->size + k, io->write);
	pthread_mutex_unlock(&d->lock);
}

static void pci_testdev_free(struct vm_pci_dev *dev)
{
	struct vm_pci_testdev *d = dev->opaque;

	pthread_mutex_destroy(&d->lock);
	free(d);
}

static const struct vm_pci_dev_ops pci_testdev_ops = {
	.bar_io = pci_testdev_bar_io,
	.free = pci_testdev_free,
};

int vm_pci_testdev_add(struct vm *vm, int slot, const char *name)
{
	struct vm_pci_dev_desc desc = {
		.name = name,
		.slot = slot,
		.vendor = PCI_TESTDEV_VENDOR,
		.device = PCI_TESTDEV_DEVICE,
		.subsys_vendor = 0x1af4, /* QEMU's default subsystem ids */
		.subsys = 0x1100,
		.class_code = PCI_TESTDEV_CLASS,
		.bar = { [0] = { .size = PCI_TESTDEV_MMIO_SIZE },
			 [1] = { .size = PCI_TESTDEV_IO_SIZE, .flags = VM_PCI_BAR_IO } },
		.ops = &pci_testdev_ops,
	};
	struct vm_pci_testdev *d = calloc(1, sizeof(*d));
	struct vm_pci_dev *dev;
	int ret;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->current = -1;
	init_tests(d);
	desc.opaque = d;
	ret = vm_pci_add(vm->pci, &desc, &dev);
	if (ret) {
		pthread_mutex_destroy(&d->lock);
		free(d);
	}
	return ret;
}
