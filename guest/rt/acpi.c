/*
 * Finding ACPI tables, and what the MADT says: find the RSDP (0xE0000-0xFFFFF on 16-byte
 * boundaries, where lockstep and SeaBIOS put it; the EBDA is not searched because page 0, which
 * holds the BIOS data area's pointer to it, is unmapped to catch NULL pointers), follow the XSDT
 * (revision 2+) or the RSDT to a table by signature.  From the MADT ("APIC"): the APIC ids of
 * the enabled Processor Local APIC (and x2APIC) entries in table order (the CPU list), and how
 * an ISA interrupt reaches an IOAPIC pin (the SCI, guest/rt/power.c).
 *
 * Runs on the BSP at ring 3: the firmware areas and the tables are identity-mapped and
 * user-readable, and a scan is a few thousand native instructions there.  Tables whose
 * checksum fails are ignored, like a missing table.
 */
#include "guest/rt/acpi.h"

#define BIOS_AREA_START 0xe0000
#define BIOS_AREA_END 0x100000
#define IDENTITY_MAP_END 0x100000000ull

#define MADT_LOCAL_APIC 0
#define MADT_IOAPIC 1
#define MADT_SOURCE_OVERRIDE 2
#define MADT_LOCAL_X2APIC 9
#define MADT_ENABLED 0x1
#define MADT_POLARITY_MASK 0x3 /* override flags: 0 bus default, 1 high, 3 low */
#define MADT_POLARITY_LOW 0x3
#define MADT_TRIGGER_MASK 0xc /* 0 bus default, 4 edge, 0xc level */
#define MADT_TRIGGER_SHIFT 2
#define MADT_TRIGGER_LEVEL 0x3
#define MADT_FLAGS_DEFAULT 0x0

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

struct madt_local_apic {
	uint8_t type, length;
	uint8_t processor_id;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type, length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct madt_source_override {
	uint8_t type, length;
	uint8_t bus; /* 0: ISA */
	uint8_t source;
	uint32_t gsi;
	uint16_t flags;
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

const struct acpi_header *rt_acpi_table_at(uint64_t addr, const char *signature)
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

const struct acpi_header *rt_acpi_find(const char *signature)
{
	const struct acpi_rsdp *rsdp = rsdp_scan(BIOS_AREA_START, BIOS_AREA_END);
	const struct acpi_header *root;
	size_t entry_size;

	if (!rsdp)
		return NULL;
	if (rsdp->revision >= 2 && rsdp->xsdt_address &&
	    (root = rt_acpi_table_at(rsdp->xsdt_address, "XSDT"))) {
		entry_size = 8;
	} else {
		root = rt_acpi_table_at(rsdp->rsdt_address, "RSDT");
		entry_size = 4;
	}
	if (!root)
		return NULL;
	for (size_t off = sizeof(*root); off + entry_size <= root->length; off += entry_size) {
		const uint8_t *entry = (const uint8_t *)root + off;
		uint64_t addr = 0;

		memcpy(&addr, entry, entry_size);
		const struct acpi_header *table = rt_acpi_table_at(addr, signature);
		if (table)
			return table;
	}
	return NULL;
}

static const struct acpi_madt *madt_find(void)
{
	const struct acpi_header *table = rt_acpi_find("APIC");

	if (!table || table->length < sizeof(struct acpi_madt))
		return NULL;
	return (const struct acpi_madt *)table;
}

/* Calls visit(entry, arg) for each well-formed MADT entry until it returns true. */
static bool madt_each(const struct acpi_madt *madt, bool (*visit)(const uint8_t *entry, void *arg),
		      void *arg)
{
	const uint8_t *pos = madt->entries;
	const uint8_t *end = (const uint8_t *)madt + madt->header.length;

	for (; pos + 2 <= end && pos[1] >= 2 && pos + pos[1] <= end; pos += pos[1])
		if (visit(pos, arg))
			return true;
	return false;
}

static bool find_override(const uint8_t *entry, void *arg)
{
	const struct madt_source_override *o = (const void *)entry;
	struct rt_irq_route *route = arg;

	if (entry[0] != MADT_SOURCE_OVERRIDE || entry[1] < sizeof(*o) || o->bus != 0 ||
	    o->source != route->gsi)
		return false;
	route->gsi = o->gsi;
	if ((o->flags & MADT_POLARITY_MASK) != MADT_FLAGS_DEFAULT)
		route->active_low = (o->flags & MADT_POLARITY_MASK) == MADT_POLARITY_LOW;
	if ((o->flags & MADT_TRIGGER_MASK) != MADT_FLAGS_DEFAULT)
		route->level = ((o->flags & MADT_TRIGGER_MASK) >> MADT_TRIGGER_SHIFT) ==
			       MADT_TRIGGER_LEVEL;
	return true;
}

/* IOAPICs do not say in the MADT how many pins they have: take the one with the highest base
 * at or below the GSI, the caller checks the pin against the IOAPIC's version register. */
static bool find_ioapic(const uint8_t *entry, void *arg)
{
	const struct madt_ioapic *io = (const void *)entry;
	struct rt_irq_route *route = arg;

	if (entry[0] != MADT_IOAPIC || entry[1] < sizeof(*io) || io->gsi_base > route->gsi)
		return false;
	if (!route->ioapic_address || io->gsi_base >= route->ioapic_gsi_base) {
		route->ioapic_address = io->address;
		route->ioapic_gsi_base = io->gsi_base;
	}
	return false;
}

bool rt_acpi_isa_irq_route(unsigned irq, bool sci, struct rt_irq_route *out)
{
	const struct acpi_madt *madt = madt_find();

	if (!madt)
		return false;
	*out = (struct rt_irq_route){ .gsi = irq, .active_low = sci, .level = sci };
	madt_each(madt, find_override, out);
	madt_each(madt, find_ioapic, out);
	return out->ioapic_address != 0;
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
