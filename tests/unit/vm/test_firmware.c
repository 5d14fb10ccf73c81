/*
 * vm_firmware_build: the ACPI and MP tables a guest reads to find its processors, parsed back
 * the way a guest would.  For 1, 4 and 254 vCPUs: the RSDP at 0xE0000 with a valid checksum,
 * RSDT -> MADT with valid checksums, exactly N enabled local APICs with ids 0..N-1, one IOAPIC
 * at 0xFEC00000 with id N, the IRQ0 -> GSI 2 override; the MP floating pointer found by
 * scanning 0xF0000-0xFFFFF, the configuration table's checksum, N processor entries with only
 * CPU 0 the BSP, the IOAPIC and its IRQ0 -> pin 2 assignment.  0 and 255 vCPUs are refused.
 * The PCI description: level/active-high overrides for IRQs 5, 9, 10, 11, the MCFG's ECAM
 * window, the DSDT's PCI0 with a _PRT that agrees with vm_pci_intx_irq() for every slot and
 * pin, and the MP table's PCI bus with one entry per device pin.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/vm/vmtest.h"
#include "vm/pci.h"

#define MIB (1ull << 20)

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static const uint8_t *guest(const struct vm_memory *mem, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = vm_memory_ptr(mem, gpa, len);

	assert_non_null(p);
	return p;
}

/* An ACPI table at `gpa`: signature, length within the firmware area, checksum. */
static const uint8_t *acpi_table(const struct vm_memory *mem, uint32_t gpa, const char *sig,
				 uint32_t *len)
{
	const uint8_t *t = guest(mem, gpa, 36);

	assert_memory_equal(t, sig, 4);
	*len = rd32(t + 4);
	assert_true(*len >= 36);
	assert_true(gpa >= 0xe0000 && gpa + *len <= 0x100000);
	t = guest(mem, gpa, *len);
	assert_int_equal(sum8(t, *len), 0);
	assert_memory_equal(t + 10, "LKSTEP", 6); /* OEM id */
	return t;
}

/* The table with signature `sig` among the RSDT's entries; exactly one must exist. */
static const uint8_t *rsdt_find(const struct vm_memory *mem, const uint8_t *rsdt, uint32_t rsdt_len,
				const char *sig, uint32_t *len)
{
	const uint8_t *found = NULL;

	for (uint32_t off = 36; off < rsdt_len; off += 4) {
		uint32_t addr = rd32(rsdt + off);

		assert_true(addr >= 0xe0000 && addr < 0x100000);
		if (memcmp(guest(mem, addr, 4), sig, 4) != 0)
			continue;
		assert_null(found);
		found = acpi_table(mem, addr, sig, len);
	}
	if (!found)
		fail_msg("no %s table in the RSDT", sig);
	return found;
}

static const uint8_t *find_rsdt(const struct vm_memory *mem, uint32_t *len)
{
	const uint8_t *rsdp = guest(mem, 0xe0000, 20), *rsdt;

	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(sum8(rsdp, 20), 0);
	assert_int_equal(rsdp[15], 0); /* revision 0: ACPI 1.0, 20 bytes */
	rsdt = acpi_table(mem, rd32(rsdp + 16), "RSDT", len);
	assert_int_equal((*len - 36) % 4, 0);
	/* Every table the RSDT lists is whole and checksummed. */
	for (uint32_t off = 36; off < *len; off += 4) {
		uint32_t addr = rd32(rsdt + off), tlen;
		char sig[4];

		memcpy(sig, guest(mem, addr, 4), 4);
		acpi_table(mem, addr, sig, &tlen);
	}
	return rsdt;
}

static void check_acpi(const struct vm_memory *mem, uint32_t vcpus)
{
	const uint8_t *rsdt, *madt, *e, *end;
	uint32_t rsdt_len, madt_len, lapics = 0, ioapics = 0, nmis = 0, level_irqs = 0;
	bool irq0_to_gsi2 = false;

	rsdt = find_rsdt(mem, &rsdt_len);
	madt = rsdt_find(mem, rsdt, rsdt_len, "APIC", &madt_len);
	assert_int_equal(rd32(madt + 36), 0xfee00000); /* local APIC address */
	assert_int_equal(rd32(madt + 40) & 1, 1);      /* PCAT_COMPAT */

	end = madt + madt_len;
	for (e = madt + 44; e < end; e += e[1]) {
		assert_true(e[1] >= 2 && e + e[1] <= end);
		switch (e[0]) {
		case 0: /* processor local APIC */
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics); /* ACPI processor id */
			assert_int_equal(e[3], lapics); /* APIC id */
			assert_int_equal(rd32(e + 4) & 1, 1);
			lapics++;
			break;
		case 1: /* IOAPIC */
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], vcpus);
			assert_int_equal(rd32(e + 4), 0xfec00000);
			assert_int_equal(rd32(e + 8), 0); /* GSI base */
			ioapics++;
			break;
		case 2: /* interrupt source override */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0); /* ISA */
			if (e[3] == 0) {
				assert_false(irq0_to_gsi2);
				assert_int_equal(rd32(e + 4), 2);
				assert_int_equal(rd16(e + 8), 0); /* conforms to the bus */
				irq0_to_gsi2 = true;
			} else {
				/* the SCI and the PCI IRQs: identity, level, active high */
				assert_true(VM_PCI_ISA_IRQ_MASK >> e[3] & 1);
				assert_int_equal(rd32(e + 4), e[3]);
				assert_int_equal(rd16(e + 8), 0xd);
				level_irqs |= 1u << e[3];
			}
			break;
		case 4: /* local APIC NMI */
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	assert_ptr_equal(e, end);
	assert_int_equal(lapics, vcpus);
	assert_int_equal(ioapics, 1);
	assert_true(irq0_to_gsi2);
	assert_int_equal(nmis, 1);
	assert_int_equal(level_irqs, VM_PCI_ISA_IRQ_MASK);
}

/* AML: a package length at p (ACPI 20.2.4); *n receives its size in bytes. */
static uint32_t pkglen(const uint8_t *p, unsigned *n)
{
	uint32_t len = p[0] & 0x3f;

	*n = 1 + (p[0] >> 6);
	if (*n > 1) {
		len = p[0] & 0x0f;
		for (unsigned i = 1; i < *n; i++)
			len |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	}
	return len;
}

/* AML: an integer (ZeroOp, OneOp, Byte/Word/DWord prefix) at *p, which moves past it. */
static uint32_t aml_int(const uint8_t **p)
{
	const uint8_t *q = *p;

	switch (q[0]) {
	case 0x00:
	case 0x01:
		*p += 1;
		return q[0];
	case 0x0a:
		*p += 2;
		return q[1];
	case 0x0b:
		*p += 3;
		return rd16(q + 1);
	case 0x0c:
		*p += 5;
		return rd32(q + 1);
	default:
		fail_msg("not an AML integer: opcode %#x", q[0]);
		return 0;
	}
}

/* The MCFG's one ECAM window, and the DSDT's host bridge and _PRT. */
static void check_pci_acpi(const struct vm_memory *mem)
{
	const uint8_t *rsdt, *mcfg, *fadt, *dsdt, *p, *end;
	uint32_t rsdt_len, len, dsdt_len, n;
	unsigned k;

	rsdt = find_rsdt(mem, &rsdt_len);
	mcfg = rsdt_find(mem, rsdt, rsdt_len, "MCFG", &len);
	assert_int_equal(len, 60);
	assert_int_equal(rd32(mcfg + 44) | (uint64_t)rd32(mcfg + 48) << 32, VM_PCI_ECAM_BASE);
	assert_int_equal(rd16(mcfg + 52), 0); /* segment */
	assert_int_equal(mcfg[54], 0);	      /* buses 0 .. */
	assert_int_equal(mcfg[55], 255);
	fadt = rsdt_find(mem, rsdt, rsdt_len, "FACP", &len);
	dsdt = acpi_table(mem, rd32(fadt + 40), "DSDT", &dsdt_len);
	assert_non_null(memmem(dsdt + 36, dsdt_len - 36, "PCI0", 4));
	assert_non_null(memmem(dsdt + 36, dsdt_len - 36, "\x41\xd0\x0a\x03", 4)); /* PNP0A03 */
	p = memmem(dsdt + 36, dsdt_len - 36, "_PRT", 4);
	assert_non_null(p);
	p += 4;
	assert_int_equal(*p++, 0x12); /* PackageOp */
	end = p + pkglen(p, &k);
	assert_true(end <= dsdt + dsdt_len);
	p += k;
	n = *p++;
	assert_int_equal(n, 32 * 4);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *next;
		uint32_t addr, pin;

		assert_int_equal(*p++, 0x12);
		next = p + pkglen(p, &k);
		p += k;
		assert_int_equal(*p++, 4);
		addr = aml_int(&p);
		pin = aml_int(&p);
		assert_int_equal(aml_int(&p), 0); /* no link device: a GSI */
		assert_int_equal(addr & 0xffff, 0xffff);
		assert_true(pin < 4);
		assert_int_equal(aml_int(&p), vm_pci_intx_irq(addr >> 16, pin + 1));
		assert_ptr_equal(p, next);
	}
	assert_ptr_equal(p, end);
}

/* Scans for "_MP_" as a guest does: 16-byte boundaries, valid checksum. */
static const uint8_t *find_mp(const struct vm_memory *mem)
{
	const uint8_t *found = NULL;

	for (uint32_t a = 0xf0000; a < 0x100000; a += 16) {
		const uint8_t *p = guest(mem, a, 16);

		if (memcmp(p, "_MP_", 4) != 0)
			continue;
		assert_null(found); /* exactly one */
		assert_int_equal(p[8], 1);
		assert_int_equal(sum8(p, 16), 0);
		found = p;
	}
	assert_non_null(found);
	return found;
}

static void check_mp(const struct vm_memory *mem, uint32_t vcpus, const struct vm_firmware_pci *pci)
{
	const uint8_t *fp = find_mp(mem), *t, *e;
	uint32_t cpus = 0, ioapics = 0, buses = 0, count = 0, pci_pins = 0;
	bool irq0_to_pin2 = false;
	uint16_t len, entries;

	assert_int_equal(fp[9], 4);  /* spec 1.4 */
	assert_int_equal(fp[11], 0); /* a configuration table is present */
	t = guest(mem, rd32(fp + 4), 44);
	assert_memory_equal(t, "PCMP", 4);
	len = rd16(t + 4);
	entries = rd16(t + 34);
	assert_true(rd32(fp + 4) + len <= 0x100000);
	t = guest(mem, rd32(fp + 4), len);
	assert_int_equal(sum8(t, len), 0);
	assert_int_equal(t[6], 4);
	assert_int_equal(rd32(t + 36), 0xfee00000);

	for (e = t + 44; e < t + len; count++) {
		switch (e[0]) {
		case 0:						   /* processor */
			assert_int_equal(e[1], cpus);		   /* APIC id */
			assert_int_equal(e[3] & 1, 1);		   /* enabled */
			assert_int_equal(!!(e[3] & 2), cpus == 0); /* BSP: CPU 0 only */
			cpus++;
			e += 20;
			break;
		case 1: /* bus: 0 PCI (its bus number), 1 ISA */
			assert_memory_equal(e + 2, e[1] == 0 ? "PCI   " : "ISA   ", 6);
			assert_int_equal(e[1], buses);
			buses++;
			e += 8;
			break;
		case 2: /* IOAPIC */
			assert_int_equal(e[1], vcpus);
			assert_int_equal(e[3] & 1, 1);
			assert_int_equal(rd32(e + 4), 0xfec00000);
			ioapics++;
			e += 8;
			break;
		case 3:				       /* I/O interrupt assignment */
			assert_int_equal(e[6], vcpus); /* destination IOAPIC id */
			if (e[4] == 1 && e[1] == 0 && e[5] == 0)
				irq0_to_pin2 = e[7] == 2;
			if (e[4] == 1 && e[1] == 0)
				assert_int_equal(rd16(e + 2),
						 VM_PCI_ISA_IRQ_MASK >> e[5] & 1 ? 0xd : 0);
			if (e[4] == 0) { /* a PCI device's pin: device << 2 | pin */
				bool listed = false;

				for (unsigned i = 0; pci && i < pci->nr; i++)
					listed |= pci->intx[i].slot == e[5] >> 2 &&
						  pci->intx[i].pin == (e[5] & 3) + 1;
				assert_true(listed);
				assert_int_equal(rd16(e + 2), 0xd); /* level, active high */
				assert_int_equal(e[7], vm_pci_intx_irq(e[5] >> 2, (e[5] & 3) + 1));
				pci_pins++;
			}
			e += 8;
			break;
		case 4: /* local interrupt assignment */
			e += 8;
			break;
		default:
			fail_msg("unexpected MP entry type %u", e[0]);
		}
	}
	assert_ptr_equal(e, t + len);
	assert_int_equal(count, entries);
	assert_int_equal(cpus, vcpus);
	assert_int_equal(buses, 2);
	assert_int_equal(ioapics, 1);
	assert_true(irq0_to_pin2);
	assert_int_equal(pci_pins, pci ? pci->nr : 0);
}

static const struct vm_firmware_pci two_devices = {
	.nr = 2,
	.intx = { { .slot = 3, .pin = 1 }, { .slot = 5, .pin = 2 } },
};

static void build_and_check(uint32_t vcpus)
{
	struct vm_memory mem;

	assert_int_equal(vm_memory_init(&mem, 8 * MIB), 0);
	/* Leftovers in the area must not survive. */
	memset(vm_memory_ptr(&mem, 0xe0000, 0x20000), 0x5a, 0x20000);
	assert_int_equal(vm_firmware_build(&mem, vcpus, &two_devices), 0);
	check_acpi(&mem, vcpus);
	check_pci_acpi(&mem);
	check_mp(&mem, vcpus, &two_devices);
	vm_memory_fini(&mem);
}

static void test_one_vcpu(void **state)
{
	build_and_check(1);
}

static void test_four_vcpus(void **state)
{
	build_and_check(4);
}

static void test_max_vcpus(void **state)
{
	build_and_check(254);
}

/* Building again with fewer vCPUs leaves no entry of the larger machine behind. */
static void test_rebuild_smaller(void **state)
{
	struct vm_memory mem;

	assert_int_equal(vm_memory_init(&mem, 8 * MIB), 0);
	assert_int_equal(vm_firmware_build(&mem, 254, &two_devices), 0);
	assert_int_equal(vm_firmware_build(&mem, 2, NULL), 0);
	check_acpi(&mem, 2);
	check_mp(&mem, 2, NULL);
	/* Nothing outside the firmware area was written. */
	assert_int_equal(*(const uint8_t *)guest(&mem, 0xdffff, 1), 0);
	assert_int_equal(*(const uint8_t *)guest(&mem, 0x100000, 1), 0);
	vm_memory_fini(&mem);
}

/* The RSDT entry with signature `sig`, or 0. */
static uint32_t rsdt_lookup(const struct vm_memory *mem, const char *sig)
{
	uint32_t rsdt_len;
	const uint8_t *rsdt = find_rsdt(mem, &rsdt_len);

	for (uint32_t off = 36; off < rsdt_len; off += 4)
		if (memcmp(guest(mem, rd32(rsdt + off), 4), sig, 4) == 0)
			return rd32(rsdt + off);
	return 0;
}

/*
 * The FADT (the PM registers of the power button, soft-off and the PM timer): ACPI 5.0's 268
 * bytes with every field at its offset in the specification (ACPI 5.0 table 5-34), the FACS
 * 64-byte aligned, the DSDT whole; the boot-architecture flags that keep Linux from probing
 * an i8042 and a CMOS RTC the machine lacks, the reset register, the 64-bit block forms.
 */
static void test_fadt_layout(void **state)
{
	struct vm_memory mem;
	const uint8_t *fadt, *facs, *dsdt;
	uint32_t addr, len, dsdt_len;

	assert_int_equal(vm_memory_init(&mem, 8 * MIB), 0);
	assert_int_equal(vm_firmware_build(&mem, 4, NULL), 0);
	addr = rsdt_lookup(&mem, "FACP");
	if (!addr) {
		vm_memory_fini(&mem);
		skip(); /* no FADT in this machine */
	}
	fadt = acpi_table(&mem, addr, "FACP", &len);
	assert_int_equal(len, 268);
	assert_int_equal(fadt[8], 5); /* revision: ACPI 5.0 */

	facs = guest(&mem, rd32(fadt + 36), 64);
	assert_int_equal(rd32(fadt + 36) % 64, 0);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(rd32(facs + 4), 64);
	dsdt = acpi_table(&mem, rd32(fadt + 40), "DSDT", &dsdt_len);
	assert_non_null(memmem(dsdt + 36, dsdt_len - 36, "_S5_", 4));

	assert_int_equal(rd16(fadt + 46), 9);	  /* SCI_INT */
	assert_int_equal(rd32(fadt + 48), 0);	  /* SMI_CMD: always in ACPI mode */
	assert_int_equal(rd32(fadt + 56), 0x600); /* PM1a_EVT_BLK */
	assert_int_equal(rd32(fadt + 64), 0x604); /* PM1a_CNT_BLK */
	assert_int_equal(rd32(fadt + 76), 0x608); /* PM_TMR_BLK */
	assert_int_equal(fadt[88], 4);		  /* PM1_EVT_LEN */
	assert_int_equal(fadt[89], 2);		  /* PM1_CNT_LEN */
	assert_int_equal(fadt[91], 4);		  /* PM_TM_LEN */
	assert_true(rd16(fadt + 96) > 100);	  /* P_LVL2_LAT: no C2 */
	assert_true(rd16(fadt + 98) > 1000);	  /* P_LVL3_LAT: no C3 */
	/* IAPC_BOOT_ARCH: legacy devices, no VGA, no CMOS RTC -- and no i8042 (bit 1 clear) */
	assert_int_equal(rd16(fadt + 109), 0x25);
	/* flags: WBINVD, PROC_C1, SLP_BUTTON, TMR_VAL_EXT, RESET_REG_SUP */
	assert_int_equal(rd32(fadt + 112), 0x525);
	/* RESET_REG: I/O port 0xCF9, 8 bits; RESET_VALUE 6 */
	assert_int_equal(fadt[116], 1);
	assert_int_equal(fadt[117], 8);
	assert_int_equal(rd64(fadt + 120), 0xcf9);
	assert_int_equal(fadt[128], 6);
	/* The 64-bit forms agree with the 32-bit ones. */
	assert_int_equal(rd64(fadt + 132), rd32(fadt + 36)); /* X_FIRMWARE_CTRL */
	assert_int_equal(rd64(fadt + 140), rd32(fadt + 40)); /* X_DSDT */
	assert_int_equal(fadt[148], 1);			     /* X_PM1a_EVT_BLK: I/O */
	assert_int_equal(fadt[149], 32);
	assert_int_equal(rd64(fadt + 152), 0x600);
	assert_int_equal(fadt[173], 16); /* X_PM1a_CNT_BLK */
	assert_int_equal(rd64(fadt + 176), 0x604);
	assert_int_equal(fadt[209], 32); /* X_PM_TMR_BLK */
	assert_int_equal(rd64(fadt + 212), 0x608);
	for (unsigned off = 160; off < 268; off += 12) /* PM1b, PM2, GPEs, sleep registers */
		if (off != 172 && off != 208)
			assert_int_equal(rd64(fadt + off + 4), 0);
	vm_memory_fini(&mem);
}

static void test_refused(void **state)
{
	struct vm_memory mem;

	assert_int_equal(vm_memory_init(&mem, 8 * MIB), 0);
	assert_int_equal(vm_firmware_build(&mem, 0, NULL), -EINVAL);
	assert_int_equal(vm_firmware_build(&mem, 255, NULL), -EINVAL);
	assert_int_equal(vm_firmware_build(&mem, UINT32_MAX, NULL), -EINVAL);
	vm_memory_fini(&mem);

	/* RAM that does not reach the top of the firmware area. */
	assert_int_equal(vm_memory_init(&mem, 0x100000 - 0x1000), 0);
	assert_int_equal(vm_firmware_build(&mem, 1, NULL), -ENOMEM);
	vm_memory_fini(&mem);
	assert_int_equal(vm_memory_init(&mem, 0x100000), 0);
	assert_int_equal(vm_firmware_build(&mem, 1, NULL), 0);
	check_acpi(&mem, 1);
	vm_memory_fini(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_vcpu),    cmocka_unit_test(test_four_vcpus),
		cmocka_unit_test(test_max_vcpus),   cmocka_unit_test(test_rebuild_smaller),
		cmocka_unit_test(test_fadt_layout), cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
