/*
 * Firmware tables a guest uses to find its processors and interrupt controllers: ACPI (RSDP,
 * RSDT, MADT) and the Intel MultiProcessor Specification 1.4 table, as a PC BIOS would leave
 * them.  Both describe the same machine: vCPU n has APIC id n, the IOAPIC takes id `vcpus`,
 * and ISA IRQ 0 arrives on IOAPIC pin 2.
 *
 * The FADT (ACPI 5.0 layout) describes the ACPI PM registers of vm/acpi_pm.c (power button,
 * soft-off, PM timer), the reset register (0xCF9) and what the machine lacks: no i8042
 * keyboard controller, no CMOS RTC, no VGA.  Linux reads those boot-architecture flags only
 * from an FADT longer than ACPI 1.0's, and would otherwise probe for both devices, for
 * seconds when every port access exits to the VMM.  The DSDT carries the \_S5 sleep package,
 * which is what a guest needs to power off, and the PCI host bridge with its interrupt
 * routing table (_PRT).  The MCFG gives the ECAM window.
 *
 * PCI interrupts are described as QEMU's PC machine describes them after SeaBIOS: INTx of
 * slot s, pin p arrives on ISA IRQ 10 or 11 (vm_pci_intx_irq), which the MADT overrides to
 * level-triggered, active high (as it does IRQ 5 and the SCI's 9), each device's interrupt
 * line register holds that IRQ, and the MP table lists the PCI bus and every device's pin.
 *
 * Placement follows where guests search: the RSDP in 0xE0000-0xFFFFF (ACPI), the MP floating
 * pointer in 0xF0000-0xFFFFF (MP spec).
 */
#include <errno.h>
#include <string.h>

#include "vm/pci.h"
#include "vm/vm_internal.h"

#define RSDP_ADDR VM_ACPI_RSDP_ADDR
#define RSDT_ADDR 0xe0040u
#define FACS_ADDR 0xe00c0u /* 64-byte aligned, as ACPI requires */
#define MADT_ADDR 0xe0100u
#define FADT_ADDR 0xe1100u
#define FADT_SIZE 0x200u
#define MCFG_ADDR 0xe1300u
#define DSDT_ADDR 0xe2000u
#define DSDT_SIZE 0x2000u
#define MPFP_ADDR 0xf0000u
#define MPC_ADDR 0xf0010u

#define LAPIC_ADDR 0xfee00000u
#define IOAPIC_ADDR 0xfec00000u
#define IOAPIC_PINS 24

static const char oem_id[6] = { 'L', 'K', 'S', 'T', 'E', 'P' };
static const char oem_table_id[8] = { 'L', 'O', 'C', 'K', 'S', 'T', 'E', 'P' };

/* A little-endian byte writer over one guest-memory window. */
struct blob {
	uint8_t *base;
	size_t len, cap;
};

static void put(struct blob *b, const void *data, size_t n)
{
	if (b->len + n <= b->cap)
		memcpy(b->base + b->len, data, n);
	b->len += n; /* past cap: caught by the caller's overflow check */
}

static void put8(struct blob *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put16(struct blob *b, uint16_t v)
{
	put(b, &v, 2);
}

static void put32(struct blob *b, uint32_t v)
{
	put(b, &v, 4);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum += *p++;
	return (uint8_t)-sum;
}

static void acpi_header(struct blob *b, const char sig[4], uint8_t revision)
{
	put(b, sig, 4);
	put32(b, 0); /* length, patched */
	put8(b, revision);
	put8(b, 0); /* checksum, patched */
	put(b, oem_id, 6);
	put(b, oem_table_id, 8);
	put32(b, 1);	   /* OEM revision */
	put(b, "LKSP", 4); /* creator */
	put32(b, 1);
}

static void acpi_finish(struct blob *b)
{
	uint32_t len = (uint32_t)b->len;

	memcpy(b->base + 4, &len, 4);
	b->base[9] = checksum(b->base, b->len);
}

static int build_madt(struct blob *b, uint32_t vcpus)
{
	acpi_header(b, "APIC", 3);
	put32(b, LAPIC_ADDR);
	put32(b, 1); /* PCAT_COMPAT: the 8259s exist */
	for (uint32_t i = 0; i < vcpus; i++) {
		put8(b, 0); /* processor local APIC */
		put8(b, 8);
		put8(b, (uint8_t)i); /* ACPI processor id */
		put8(b, (uint8_t)i); /* APIC id */
		put32(b, 1);	     /* enabled */
	}
	put8(b, 1); /* IOAPIC */
	put8(b, 12);
	put8(b, (uint8_t)vcpus);
	put8(b, 0);
	put32(b, IOAPIC_ADDR);
	put32(b, 0); /* GSI base */
	put8(b, 2);  /* interrupt source override: ISA IRQ 0 -> GSI 2 */
	put8(b, 10);
	put8(b, 0);
	put8(b, 0);
	put32(b, 2);
	put16(b, 0);
	/* The SCI (9) and the PCI interrupts (5, 10, 11): level, active high, as on QEMU's PC. */
	for (uint8_t irq = 1; irq < 16; irq++) {
		if (!(VM_PCI_ISA_IRQ_MASK >> irq & 1))
			continue;
		put8(b, 2);
		put8(b, 10);
		put8(b, 0);
		put8(b, irq);
		put32(b, irq);
		put16(b, 0xd);
	}
	put8(b, 4); /* local APIC NMI on LINT1 of every processor */
	put8(b, 6);
	put8(b, 0xff);
	put16(b, 0);
	put8(b, 1);
	if (b->len > b->cap)
		return -ENOSPC;
	acpi_finish(b);
	return 0;
}

/* A Generic Address Structure for a block in I/O space, `bytes` wide (0: none).  The access
 * size stays undefined, as QEMU leaves it: ACPICA then splits PM1 blocks into their 16-bit
 * registers itself. */
static void put_gas_io(struct blob *b, uint32_t port, unsigned bytes)
{
	uint64_t address = port;

	put8(b, port ? 1 : 0); /* system I/O */
	put8(b, (uint8_t)(bytes * 8));
	put8(b, 0); /* bit offset */
	put8(b, 0); /* access size */
	put(b, &address, 8);
}

/*
 * ACPI 5.0 FADT (revision 5, 268 bytes): fixed-feature power button, PM1a blocks, PM timer,
 * SCI 9, reset through 0xCF9, and IAPC_BOOT_ARCH: legacy devices (COM1) beyond the
 * namespace, no i8042, no VGA, no CMOS RTC.  Each block also in its 64-bit (X_) form.
 */
#define FADT_BOOT_LEGACY_DEVICES (1u << 0)
#define FADT_BOOT_NO_VGA (1u << 2)
#define FADT_BOOT_NO_CMOS_RTC (1u << 5)
/* WBINVD, PROC_C1, no sleep button (the power button is fixed), TMR_VAL_EXT (32 bits),
 * RESET_REG_SUP */
#define FADT_FLAGS 0x525u
#define RESET_PORT 0xcf9
#define RESET_VALUE 0x06 /* reset (bit 2) with a full reset (bit 1), as QEMU's */

static void build_fadt(struct blob *b)
{
	static const uint8_t zeros[8] = { 0 };
	uint64_t facs = FACS_ADDR, dsdt = DSDT_ADDR;

	acpi_header(b, "FACP", 5);
	put32(b, FACS_ADDR);
	put32(b, DSDT_ADDR);
	put8(b, 0); /* INT_MODEL (ACPI 1.0) */
	put8(b, 0); /* preferred PM profile: unspecified */
	put16(b, VM_ACPI_SCI_IRQ);
	put32(b, 0);	  /* SMI_CMD: no SMM, the machine is always in ACPI mode */
	put(b, zeros, 4); /* ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT */
	put32(b, VM_ACPI_PM1_EVT);
	put32(b, 0); /* PM1b_EVT_BLK */
	put32(b, VM_ACPI_PM1_CNT);
	put32(b, 0);		  /* PM1b_CNT_BLK */
	put32(b, 0);		  /* PM2_CNT_BLK */
	put32(b, VM_ACPI_PM_TMR); /* PM_TMR_BLK */
	put32(b, 0);		  /* GPE0_BLK */
	put32(b, 0);		  /* GPE1_BLK */
	put8(b, 4);		  /* PM1_EVT_LEN */
	put8(b, 2);		  /* PM1_CNT_LEN */
	put8(b, 0);		  /* PM2_CNT_LEN */
	put8(b, 4);		  /* PM_TMR_LEN */
	put(b, zeros, 4);	  /* GPE0_BLK_LEN .. CST_CNT */
	put16(b, 101);		  /* P_LVL2_LAT > 100: no C2 */
	put16(b, 1001);		  /* P_LVL3_LAT > 1000: no C3 */
	put(b, zeros, 8);	  /* FLUSH_SIZE, FLUSH_STRIDE, DUTY_OFFSET/WIDTH, DAY/MON_ALRM */
	put8(b, 0);		  /* CENTURY */
	put16(b, FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_NO_VGA | FADT_BOOT_NO_CMOS_RTC);
	put8(b, 0);
	put32(b, FADT_FLAGS);
	put_gas_io(b, RESET_PORT, 1);
	put8(b, RESET_VALUE);
	put(b, zeros, 3);		   /* ARM_BOOT_ARCH, minor version */
	put(b, &facs, 8);		   /* X_FIRMWARE_CTRL */
	put(b, &dsdt, 8);		   /* X_DSDT */
	put_gas_io(b, VM_ACPI_PM1_EVT, 4); /* X_PM1a_EVT_BLK */
	put_gas_io(b, 0, 0);		   /* X_PM1b_EVT_BLK */
	put_gas_io(b, VM_ACPI_PM1_CNT, 2); /* X_PM1a_CNT_BLK */
	put_gas_io(b, 0, 0);		   /* X_PM1b_CNT_BLK */
	put_gas_io(b, 0, 0);		   /* X_PM2_CNT_BLK */
	put_gas_io(b, VM_ACPI_PM_TMR, 4);  /* X_PM_TMR_BLK */
	put_gas_io(b, 0, 0);		   /* X_GPE0_BLK */
	put_gas_io(b, 0, 0);		   /* X_GPE1_BLK */
	put_gas_io(b, 0, 0);		   /* SLEEP_CONTROL_REG: not reduced hardware */
	put_gas_io(b, 0, 0);		   /* SLEEP_STATUS_REG */
	acpi_finish(b);
}

/* AML package lengths: 1 to 4 bytes, the count including themselves (ACPI 20.2.4). */
static size_t pkglen_size(size_t content)
{
	return content + 1 < 0x40 ? 1 : content + 2 < 0x1000 ? 2 : content + 3 < 0x100000 ? 3 : 4;
}

/* Opens an AML package: room for the longest length; aml_close() moves the content back. */
static size_t aml_open(struct blob *b)
{
	put(b, "\0\0\0\0", 4);
	return b->len;
}

static void aml_close(struct blob *b, size_t start)
{
	size_t content = b->len - start, n = pkglen_size(content), total = content + n;
	uint8_t *at = b->base + start - 4;

	if (b->len > b->cap)
		return; /* overflowed: the caller's check fails */
	memmove(at + n, b->base + start, content);
	if (n == 1) {
		at[0] = (uint8_t)total;
	} else {
		at[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (size_t i = 1; i < n; i++)
			at[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	b->len = start - 4 + n + content;
}

static void aml_integer(struct blob *b, uint32_t v)
{
	if (v <= 1) {
		put8(b, (uint8_t)v); /* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		put8(b, 0x0a);
		put8(b, (uint8_t)v);
	} else {
		put8(b, 0x0c);
		put32(b, v);
	}
}

/* Name (seg, value) with an integer value. */
static void aml_name_integer(struct blob *b, const char seg[4], uint32_t v)
{
	put8(b, 0x08); /* NameOp */
	put(b, seg, 4);
	aml_integer(b, v);
}

/*
 * Scope (\_SB) { Device (PCI0) { _HID PNP0A03, _ADR 0, _UID 0, _PRT } }: the host bridge and
 * where each slot's INTA-INTD arrive, as GSIs (no link devices: the routing is fixed).
 */
static void build_pci0(struct blob *b)
{
	size_t scope, dev, prt;

	put8(b, 0x10); /* ScopeOp */
	scope = aml_open(b);
	put(b, "\\_SB_", 5);
	put8(b, 0x5b); /* ExtOpPrefix, DeviceOp */
	put8(b, 0x82);
	dev = aml_open(b);
	put(b, "PCI0", 4);
	aml_name_integer(b, "_HID", 0x030ad041); /* EISAID("PNP0A03") */
	aml_name_integer(b, "_ADR", 0);
	aml_name_integer(b, "_UID", 0);
	put8(b, 0x08);
	put(b, "_PRT", 4);
	put8(b, 0x12); /* PackageOp */
	prt = aml_open(b);
	put8(b, VM_PCI_SLOTS * 4);
	for (unsigned slot = 0; slot < VM_PCI_SLOTS; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			size_t entry;

			put8(b, 0x12);
			entry = aml_open(b);
			put8(b, 4);
			aml_integer(b, slot << 16 | 0xffff); /* address: any function */
			aml_integer(b, pin);
			aml_integer(b, 0); /* source: none, a GSI follows */
			aml_integer(b, vm_pci_intx_irq(slot, pin + 1));
			aml_close(b, entry);
		}
	}
	aml_close(b, prt);
	aml_close(b, dev);
	aml_close(b, scope);
}

static int build_dsdt(struct blob *b)
{
	/* Name (\_S5, Package () { 5, 5, 0, 0 }): SLP_TYP 5 is soft-off in vm/acpi_pm.c. */
	static const uint8_t s5[] = { 0x08, '_',  'S',	'5',  '_',  0x12, 0x08,
				      0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00 };

	acpi_header(b, "DSDT", 1);
	put(b, s5, sizeof(s5));
	build_pci0(b);
	if (b->len > b->cap)
		return -ENOSPC;
	acpi_finish(b);
	return 0;
}

/* MCFG: one ECAM window, segment 0, buses 0-255 (PCI Firmware Specification 3.0, 4.1.2). */
static void build_mcfg(struct blob *b)
{
	static const uint8_t reserved[8] = { 0 };

	acpi_header(b, "MCFG", 1);
	put(b, reserved, 8);
	put32(b, (uint32_t)VM_PCI_ECAM_BASE);
	put32(b, (uint32_t)(VM_PCI_ECAM_BASE >> 32));
	put16(b, 0);					       /* PCI segment */
	put8(b, 0);					       /* first bus */
	put8(b, (uint8_t)(VM_PCI_ECAM_SIZE / (1u << 20) - 1)); /* last bus */
	put32(b, 0);
	acpi_finish(b);
}

static void build_facs(uint8_t *facs)
{
	uint32_t len = 64;

	memset(facs, 0, 64);
	memcpy(facs, "FACS", 4);
	memcpy(facs + 4, &len, 4);
}

static int build_acpi(struct vm_memory *mem, uint32_t vcpus)
{
	struct blob madt = { vm_memory_ptr(mem, MADT_ADDR, 0x1000), 0, 0x1000 };
	struct blob rsdt = { vm_memory_ptr(mem, RSDT_ADDR, 0x80), 0, 0x80 };
	struct blob fadt = { vm_memory_ptr(mem, FADT_ADDR, FADT_SIZE), 0, FADT_SIZE };
	struct blob dsdt = { vm_memory_ptr(mem, DSDT_ADDR, DSDT_SIZE), 0, DSDT_SIZE };
	struct blob mcfg = { vm_memory_ptr(mem, MCFG_ADDR, 0x100), 0, 0x100 };
	uint8_t *rsdp = vm_memory_ptr(mem, RSDP_ADDR, 20);
	uint32_t rsdt_addr = RSDT_ADDR;
	int ret;

	ret = build_madt(&madt, vcpus);
	if (ret)
		return ret;
	build_fadt(&fadt);
	ret = build_dsdt(&dsdt);
	if (ret)
		return ret;
	build_mcfg(&mcfg);
	build_facs(vm_memory_ptr(mem, FACS_ADDR, 64));
	acpi_header(&rsdt, "RSDT", 1);
	put32(&rsdt, FADT_ADDR);
	put32(&rsdt, MADT_ADDR);
	put32(&rsdt, MCFG_ADDR);
	acpi_finish(&rsdt);

	memcpy(rsdp, "RSD PTR ", 8);
	rsdp[8] = 0; /* checksum */
	memcpy(rsdp + 9, oem_id, 6);
	rsdp[15] = 0; /* revision 0: ACPI 1.0, RSDT only */
	memcpy(rsdp + 16, &rsdt_addr, 4);
	rsdp[8] = checksum(rsdp, 20);
	return 0;
}

#define MP_BUS_PCI 0 /* PCI bus ids are their bus numbers */
#define MP_BUS_ISA 1
#define MP_LEVEL_HIGH 0xd /* active high, level-triggered (0: conforms to the bus) */

static void mp_io_interrupt(struct blob *b, uint8_t type, uint16_t flags, uint8_t bus, uint8_t irq,
			    uint8_t ioapic, uint8_t pin)
{
	put8(b, 3);
	put8(b, type);
	put16(b, flags);
	put8(b, bus);
	put8(b, irq);
	put8(b, ioapic);
	put8(b, pin);
}

static void mp_local_interrupt(struct blob *b, uint8_t type, uint8_t lint)
{
	put8(b, 4);
	put8(b, type);
	put16(b, 0);
	put8(b, 0);
	put8(b, 0);
	put8(b, 0xff); /* every local APIC */
	put8(b, lint);
}

static int build_mptable(struct vm_memory *mem, uint32_t vcpus, const struct vm_firmware_pci *pci)
{
	struct blob b = { vm_memory_ptr(mem, MPC_ADDR, 0x4000), 0, 0x4000 };
	uint8_t *fp = vm_memory_ptr(mem, MPFP_ADDR, 16);
	uint8_t ioapic = (uint8_t)vcpus;
	uint16_t entries = 0;
	uint32_t addr = MPC_ADDR;

	put(&b, "PCMP", 4);
	put16(&b, 0); /* base table length, patched */
	put8(&b, 4);  /* spec 1.4 */
	put8(&b, 0);  /* checksum, patched */
	put(&b, "LOCKSTEP", 8);
	put(&b, "LOCKSTEP VM ", 12);
	put32(&b, 0);
	put16(&b, 0);
	put16(&b, 0); /* entry count, patched */
	put32(&b, LAPIC_ADDR);
	put16(&b, 0);
	put8(&b, 0);
	put8(&b, 0);
	for (uint32_t i = 0; i < vcpus; i++, entries++) {
		put8(&b, 0); /* processor */
		put8(&b, (uint8_t)i);
		put8(&b, 0x14);		  /* local APIC version */
		put8(&b, i == 0 ? 3 : 1); /* enabled, boot processor */
		put32(&b, 0x600);	  /* family 6 */
		put32(&b, 0x201);	  /* FPU, APIC */
		put32(&b, 0);
		put32(&b, 0);
	}
	put8(&b, 1);
	put8(&b, MP_BUS_PCI);
	put(&b, "PCI   ", 6);
	put8(&b, 1);
	put8(&b, MP_BUS_ISA);
	put(&b, "ISA   ", 6);
	put8(&b, 2); /* the IOAPIC */
	put8(&b, ioapic);
	put8(&b, 0x11);
	put8(&b, 1);
	put32(&b, IOAPIC_ADDR);
	entries += 3;
	mp_io_interrupt(&b, 3, 0, MP_BUS_ISA, 0, ioapic, 0); /* the 8259 as ExtINT on pin 0 */
	entries++;
	for (uint8_t irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue; /* the cascade: ISA IRQ 0 owns pin 2 */
		mp_io_interrupt(&b, 0, VM_PCI_ISA_IRQ_MASK >> irq & 1 ? MP_LEVEL_HIGH : 0,
				MP_BUS_ISA, irq, ioapic, irq == 0 ? 2 : irq);
		entries++;
	}
	/* Each PCI device's pin: source IRQ = device << 2 | pin (INTA = 0). */
	for (unsigned i = 0; pci && i < pci->nr; i++) {
		mp_io_interrupt(&b, 0, MP_LEVEL_HIGH, MP_BUS_PCI,
				(uint8_t)(pci->intx[i].slot << 2 | (pci->intx[i].pin - 1)), ioapic,
				(uint8_t)vm_pci_intx_irq(pci->intx[i].slot, pci->intx[i].pin));
		entries++;
	}
	mp_local_interrupt(&b, 3, 0); /* ExtINT -> LINT0 */
	mp_local_interrupt(&b, 1, 1); /* NMI -> LINT1 */
	entries += 2;
	if (b.len > b.cap)
		return -ENOSPC;
	b.base[4] = (uint8_t)b.len;
	b.base[5] = (uint8_t)(b.len >> 8);
	b.base[34] = (uint8_t)entries;
	b.base[35] = (uint8_t)(entries >> 8);
	b.base[7] = checksum(b.base, b.len);

	memset(fp, 0, 16);
	memcpy(fp, "_MP_", 4);
	memcpy(fp + 4, &addr, 4);
	fp[8] = 1; /* length in 16-byte units */
	fp[9] = 4; /* spec 1.4 */
	fp[10] = checksum(fp, 16);
	return 0;
}

int vm_firmware_build(struct vm_memory *mem, uint32_t vcpus, const struct vm_firmware_pci *pci)
{
	int ret;

	if (vcpus == 0 || vcpus > VMDEF_VCPUS_MAX)
		return -EINVAL;
	if (!vm_memory_ptr(mem, VM_FIRMWARE_BASE, VM_FIRMWARE_SIZE))
		return -ENOMEM;
	memset(vm_memory_ptr(mem, VM_FIRMWARE_BASE, VM_FIRMWARE_SIZE), 0, VM_FIRMWARE_SIZE);
	ret = build_acpi(mem, vcpus);
	if (ret)
		return ret;
	return build_mptable(mem, vcpus, pci);
}
