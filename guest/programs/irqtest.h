/*
 * Shared by the interrupt test programs (irqtest, irqlat): lockstep's PCI test device
 * (docs/guest-platform.md), its MSI and MSI-X capabilities, and waiting for a count to move.
 */
#ifndef LOCKSTEP_GUEST_IRQTEST_H
#define LOCKSTEP_GUEST_IRQTEST_H

#include "guest/guest.h"

#define TESTDEV_VENDOR 0x1234
#define TESTDEV_DEVICE 0x4c53
#define TESTDEV_ID 0x5453544cu

/* Registers in BAR 0. */
#define TD_ID 0x00
#define TD_VECTOR 0x08
#define TD_RAISE 0x0c
#define TD_RAISE_DEV 0x10
#define TD_ACK 0x14
#define TD_PERIOD_US 0x18
#define TD_LIMIT 0x1c
#define TD_RAISED 0x20
#define TD_ACKED 0x24
#define TD_ACKS 0x28
#define TD_OVERRUNS 0x2c
#define TD_STATUS 0x30
#define TD_MODE 0x34
#define TD_HOST_TSC 0x38
#define TD_TSC_RING 0x100
#define TD_TSC_RING_SIZE 256

#define MSI_CTRL 2
#define MSI_ADDR_LO 4
#define MSI_ADDR_HI 8
#define MSI_DATA 12
#define MSI_MASK 16
#define MSI_PENDING 20
#define MSIX_CTRL 2
#define MSIX_ENABLE 0x8000u
#define MSIX_MASKALL 0x4000u
#define MSI_ADDR(apic_id) (0xfee00000u | (uint32_t)(apic_id) << 12)
#define MSI_ADDR_LOGICAL 0x4u
#define MSI_LOWEST (1u << 8)

struct testdev {
	int slot;
	volatile uint32_t *regs;  /* BAR 0 */
	volatile uint32_t *table; /* MSI-X table (4 dwords per vector) */
	volatile uint64_t *pba;
	unsigned msi, msix; /* capability offsets */
	unsigned irq;	    /* INTx: the interrupt line register */
};

static inline bool testdev_open(struct testdev *d, unsigned nth)
{
	uint64_t bar0, bar;
	uint32_t table, pba;

	d->slot = rt_pci_find(TESTDEV_VENDOR, TESTDEV_DEVICE, nth);
	if (d->slot < 0)
		return false;
	bar0 = rt_pci_bar((unsigned)d->slot, 0);
	d->regs = (volatile uint32_t *)(uintptr_t)bar0;
	d->msi = rt_pci_find_cap((unsigned)d->slot, 0x05);
	d->msix = rt_pci_find_cap((unsigned)d->slot, 0x11);
	d->irq = rt_pci_read((unsigned)d->slot, 0x3c, 1);
	table = rt_pci_read((unsigned)d->slot, d->msix + 4, 4);
	pba = rt_pci_read((unsigned)d->slot, d->msix + 8, 4);
	bar = rt_pci_bar((unsigned)d->slot, table & 7);
	d->table = (volatile uint32_t *)(uintptr_t)(bar + (table & ~7u));
	d->pba = (volatile uint64_t *)(uintptr_t)(rt_pci_bar((unsigned)d->slot, pba & 7) +
						  (pba & ~7u));
	return bar0 && bar0 < 0x100000000ull && d->regs[TD_ID / 4] == TESTDEV_ID;
}

static inline uint32_t td_read(const struct testdev *d, unsigned reg)
{
	return d->regs[reg / 4];
}

static inline void td_write(const struct testdev *d, unsigned reg, uint32_t v)
{
	d->regs[reg / 4] = v;
}

static inline uint64_t td_raise_tsc(const struct testdev *d, uint32_t seq)
{
	return *(volatile uint64_t *)(uintptr_t)((uintptr_t)d->regs + TD_TSC_RING +
						 8 * (seq % TD_TSC_RING_SIZE));
}

/* MSI: one message to `apic_id`, enabled (or disabled with enable = false). */
static inline void td_msi(const struct testdev *d, uint32_t address, uint32_t data, bool enable)
{
	unsigned s = (unsigned)d->slot;

	rt_pci_write(s, d->msi + MSI_CTRL, 2, rt_pci_read(s, d->msi + MSI_CTRL, 2) & ~1u);
	rt_pci_write(s, d->msi + MSI_ADDR_LO, 4, address);
	rt_pci_write(s, d->msi + MSI_ADDR_HI, 4, 0);
	rt_pci_write(s, d->msi + MSI_DATA, 2, data);
	if (enable)
		rt_pci_write(s, d->msi + MSI_CTRL, 2, rt_pci_read(s, d->msi + MSI_CTRL, 2) | 1u);
}

/* MSI-X vector v: message and mask bit. */
static inline void td_msix_entry(const struct testdev *d, unsigned v, uint32_t address,
				 uint32_t data, bool masked)
{
	d->table[4 * v + 3] = 1;
	d->table[4 * v + 0] = address;
	d->table[4 * v + 1] = 0;
	d->table[4 * v + 2] = data;
	d->table[4 * v + 3] = masked;
}

static inline void td_msix_ctrl(const struct testdev *d, uint16_t value)
{
	rt_pci_write((unsigned)d->slot, d->msix + MSIX_CTRL, 2, value);
}

/*
 * Waits up to timeout_ns for cpu's count of `vector` to differ from `old`; returns it.  Spins
 * rather than halting: with a level vector in service (EOI not yet sent) the LAPIC timer that
 * would end a halt cannot interrupt.
 */
static inline uint32_t wait_count(unsigned cpu, unsigned vector, uint32_t old, uint64_t timeout_ns)
{
	uint64_t end = rt_rdtsc() + rt_ns_to_cycles(timeout_ns);
	const volatile uint32_t *w = rt_irq_count_word(cpu, vector);

	while (*w == old && rt_rdtsc() < end)
		rt_pause();
	return *w;
}

#endif /* LOCKSTEP_GUEST_IRQTEST_H */
