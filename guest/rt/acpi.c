/*
 * The CPU list from ACPI: find the RSDP (0xE0000-0xFFFFF on 16-byte boundaries, where lockstep
 * and SeaBIOS put it; the EBDA is not searched because page 0, which holds the BIOS data area's
 * pointer to it, is unmapped to catch NULL pointers), follow the XSDT (revision 2+) or the RSDT
 * to the MADT ("APIC"), and collect the APIC ids of the enabled Processor Local APIC (and
 * x2APIC) entries in table order.
 *
 * Runs once on the BSP at ring 3: the firmware areas and the tables are identity-mapped and
 * user-readable, and the scan is a few thousand native instructions there.  Tables whose
 * checksum fails are ignored, like a missing table.
 */
#include "guest/rt/internal.h"

#define BIOS_AREA_START 0xe0000
#define BIOS_AREA_END 0x100000
#define IDENTITY_MAP_END 0x100000000ull

#define MADT_LOCAL_APIC 0
#define MADT_LOCAL_X2APIC 9
#define MADT_ENABLED 0x1

struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* over the first 20 bytes */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	/* revision >= 2 */
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_madt {
	struct acpi_header header;
	uint32_t lapic_address;
	uint32_t flags;
	uint8_t entries[];
} __attribute__((packed));

struct madt_local_apic {
	uint8_t type, length;
	uint8_t processor_id;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));

struct madt_local_x2apic {
	uint8_t type, length;
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t processor_uid;
} __attribute__((packed));

static bool checksum_ok(const void *data, size_t len)
{
	const uint8_t *bytes = data;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += bytes[i];
	return sum == 0;
}

static const struct acpi_rsdp *rsdp_scan(uintptr_t start, uintptr_t end)
{
	for (uintptr_t addr = start; addr + 20 <= end; addr += 16) {
		const struct acpi_rsdp *rsdp = (const void *)addr;

		if (!memcmp(rsdp->signature, "RSD PTR ", 8) && checksum_ok(rsdp, 20))
			return rsdp;
	}
	return NULL;
}

static const struct acpi_header *table_at(uint64_t addr, const char *signature)
{
	const struct acpi_header *table = (const void *)(uintptr_t)addr;

	if (!addr || addr + sizeof(*table) > IDENTITY_MAP_END)
		return NULL;
	if (signature && memcmp(table->signature, signature, 4))
		return NULL;
	if (table->length < sizeof(*table) || addr + table->length > IDENTITY_MAP_END)
		return NULL;
	return checksum_ok(table, table->length) ? table : NULL;
}

static const struct acpi_madt *madt_find(void)
{
	const struct acpi_rsdp *rsdp = rsdp_scan(BIOS_AREA_START, BIOS_AREA_END);
	const struct acpi_header *root;
	size_t entry_size;

	if (!rsdp)
		return NULL;
	if (rsdp->revision >= 2 && rsdp->xsdt_address &&
	    (root = table_at(rsdp->xsdt_address, "XSDT"))) {
		entry_size = 8;
	} else {
		root = table_at(rsdp->rsdt_address, "RSDT");
		entry_size = 4;
	}
	if (!root)
		return NULL;
	for (size_t off = sizeof(*root); off + entry_size <= root->length; off += entry_size) {
		const uint8_t *entry = (const uint8_t *)root + off;
		uint64_t addr = 0;

		memcpy(&addr, entry, entry_size);
		const struct acpi_header *table = table_at(addr, "APIC");
		if (table && table->length >= sizeof(struct acpi_madt))
			return (const struct acpi_madt *)table;
	}
	return NULL;
}

unsigned rt_acpi_cpu_apic_ids(uint8_t *apic_ids, unsigned max)
{
	const struct acpi_madt *madt = madt_find();
	const uint8_t *pos, *end;
	unsigned count = 0;

	if (!madt)
		return 0;
	if (madt->lapic_address != RT_LAPIC_BASE)
		rt_printf("rt: MADT puts the local APIC at %#x; using %#x\n", madt->lapic_address,
			  RT_LAPIC_BASE);
	pos = madt->entries;
	end = (const uint8_t *)madt + madt->header.length;
	while (pos + 2 <= end && pos[1] >= 2 && pos + pos[1] <= end) {
		uint32_t apic_id = UINT32_MAX, flags = 0;

		if (pos[0] == MADT_LOCAL_APIC && pos[1] >= sizeof(struct madt_local_apic)) {
			const struct madt_local_apic *lapic = (const void *)pos;

			apic_id = lapic->apic_id;
			flags = lapic->flags;
		} else if (pos[0] == MADT_LOCAL_X2APIC &&
			   pos[1] >= sizeof(struct madt_local_x2apic)) {
			const struct madt_local_x2apic *x2apic = (const void *)pos;

			apic_id = x2apic->x2apic_id;
			flags = x2apic->flags;
		}
		pos += pos[1];
		if (apic_id == UINT32_MAX || !(flags & MADT_ENABLED))
			continue;
		if (apic_id >= 255) {
			rt_printf("rt: MADT: APIC id %u needs x2APIC mode; CPU ignored\n", apic_id);
			continue;
		}
		for (unsigned i = 0; i < count; i++)
			if (apic_ids[i] == apic_id)
				goto next; /* listed twice (LAPIC and x2APIC entries) */
		if (count == max) {
			rt_printf("rt: MADT lists more than %u CPUs; using the first %u\n", max,
				  max);
			break;
		}
		apic_ids[count++] = apic_id;
	next:;
	}
	return count;
}
