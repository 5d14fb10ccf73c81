/*
 * The interrupt controller and bus programs program themselves: the IOAPIC's redirection table
 * (identity-mapped MMIO, so ring 3 writes it directly: IOREGSEL then IOWIN) and PCI
 * configuration space on bus 0, through ECAM when the ACPI MCFG gives a window (MMIO, any
 * ring) or else through ports 0xCF8/0xCFC (port I/O: ring 0, one syscall per access), which
 * is what QEMU's PC machine has.
 *
 * The IOAPIC's address comes from the MADT (the one serving GSI 0); the ECAM window from the
 * MCFG's first allocation, if it covers bus 0 below 4 GiB (the identity map).  Both are looked
 * up once, on first use, from the CPU that first calls (programs call from CPU 0).
 */
#include "guest/rt/acpi.h"

#define IOAPIC_DEFAULT 0xfec00000u
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REDIR(pin) (0x10 + 2 * (pin))
#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_CAP_LIST (1u << 4)

struct mcfg_alloc {
	uint64_t base;
	uint16_t segment;
	uint8_t bus_start, bus_end;
	uint32_t reserved;
} __attribute__((packed));

static volatile uint32_t *ioapic(void)
{
	if (!rt_state.ioapic_base) {
		struct rt_irq_route route;

		rt_state.ioapic_base = rt_acpi_isa_irq_route(0, false, &route) ?
					       route.ioapic_address :
					       IOAPIC_DEFAULT;
	}
	return (volatile uint32_t *)rt_state.ioapic_base;
}

uint32_t rt_ioapic_read(unsigned reg)
{
	volatile uint32_t *io = ioapic();

	io[IOAPIC_REGSEL / 4] = reg;
	return io[IOAPIC_WINDOW / 4];
}

void rt_ioapic_write(unsigned reg, uint32_t value)
{
	volatile uint32_t *io = ioapic();

	io[IOAPIC_REGSEL / 4] = reg;
	io[IOAPIC_WINDOW / 4] = value;
}

void rt_ioapic_route(unsigned pin, uint32_t low, uint8_t dest_apic_id)
{
	rt_ioapic_write(IOAPIC_REDIR(pin), low | RT_IOAPIC_MASKED);
	rt_ioapic_write(IOAPIC_REDIR(pin) + 1, (uint32_t)dest_apic_id << 24);
	rt_ioapic_write(IOAPIC_REDIR(pin), low);
}

uint64_t rt_ioapic_rte(unsigned pin)
{
	uint64_t hi = rt_ioapic_read(IOAPIC_REDIR(pin) + 1);

	return hi << 32 | rt_ioapic_read(IOAPIC_REDIR(pin));
}

bool rt_pci_ecam(void)
{
	if (!rt_state.ecam_base) {
		const struct acpi_header *mcfg = rt_acpi_find("MCFG");
		const struct mcfg_alloc *a = (const void *)((const uint8_t *)mcfg + 44);

		rt_state.ecam_base = 1;
		if (mcfg && mcfg->length >= 44 + sizeof(*a) && a->segment == 0 &&
		    a->bus_start == 0 && a->base && a->base < 0x100000000ull - (1u << 20))
			rt_state.ecam_base = (uintptr_t)a->base;
	}
	return rt_state.ecam_base > 1;
}

static uint32_t port_address(unsigned slot, unsigned off)
{
	return 0x80000000u | (slot & 31) << 11 | (off & 0xfc);
}

uint32_t rt_pci_read(unsigned slot, unsigned off, unsigned width)
{
	if (rt_pci_ecam()) {
		uintptr_t a = rt_state.ecam_base + ((slot & 31) << 15) + (off & 0xfff);

		if (width == 1)
			return *(volatile uint8_t *)a;
		if (width == 2)
			return *(volatile uint16_t *)a;
		return *(volatile uint32_t *)a;
	}
	rt_pio_out(PCI_CONFIG_ADDRESS, 4, port_address(slot, off));
	return rt_pio_in(PCI_CONFIG_DATA + (off & 3), width);
}

void rt_pci_write(unsigned slot, unsigned off, unsigned width, uint32_t value)
{
	if (rt_pci_ecam()) {
		uintptr_t a = rt_state.ecam_base + ((slot & 31) << 15) + (off & 0xfff);

		if (width == 1)
			*(volatile uint8_t *)a = (uint8_t)value;
		else if (width == 2)
			*(volatile uint16_t *)a = (uint16_t)value;
		else
			*(volatile uint32_t *)a = value;
		return;
	}
	rt_pio_out(PCI_CONFIG_ADDRESS, 4, port_address(slot, off));
	rt_pio_out(PCI_CONFIG_DATA + (off & 3), width, value);
}

int rt_pci_find(uint16_t vendor, uint16_t device, unsigned nth)
{
	for (unsigned slot = 0; slot < 32; slot++) {
		uint32_t id = rt_pci_read(slot, 0, 4);

		if (id == ((uint32_t)device << 16 | vendor) && nth-- == 0)
			return (int)slot;
	}
	return -1;
}

uint64_t rt_pci_bar(unsigned slot, unsigned bar)
{
	uint32_t lo = rt_pci_read(slot, 0x10 + 4 * bar, 4);

	if (lo & 1)
		return lo & ~3u;
	if ((lo & 6) == 4 && bar < 5)
		return (lo & ~0xfull) | (uint64_t)rt_pci_read(slot, 0x14 + 4 * bar, 4) << 32;
	return lo & ~0xfull;
}

unsigned rt_pci_find_cap(unsigned slot, uint8_t id)
{
	unsigned off, guard = 48;

	if (!(rt_pci_read(slot, 0x06, 2) & PCI_CAP_LIST))
		return 0;
	for (off = rt_pci_read(slot, 0x34, 1) & 0xfc; off && guard--;
	     off = rt_pci_read(slot, off + 1, 1) & 0xfc)
		if (rt_pci_read(slot, off, 1) == id)
			return off;
	return 0;
}
