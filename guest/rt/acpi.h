/*
 * ACPI table layouts the runtime reads (internal to guest/rt): the common header, the MADT and
 * the fields of the FADT that power management needs, and the lookups acpi.c offers the
 * runtime's other files.  Only what the runtime uses is spelled out.
 */
#ifndef LOCKSTEP_GUEST_RT_ACPI_H
#define LOCKSTEP_GUEST_RT_ACPI_H

#include "guest/rt/internal.h"

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

/* ACPI's generic address structure (FADT revision 3+). */
struct acpi_gas {
	uint8_t space_id; /* 0 memory, 1 system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

/*
 * The FADT up to the extended PM1 blocks.  ACPI 1.0 tables end after `flags` (116 bytes); the
 * fields after it exist only when header.length covers them.
 */
struct acpi_fadt {
	struct acpi_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t int_model;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved;
	uint32_t flags; /* offset 112 */
	/* ACPI 2.0+ */
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint8_t reserved2[3];
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt; /* offset 140 */
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
} __attribute__((packed));

#define ACPI_FADT_PWR_BUTTON (1u << 4) /* set: the power button is a control-method device */
#define ACPI_GAS_SYSTEM_IO 1

/* Where an ISA interrupt arrives: its GSI, the IOAPIC that has it, and how it signals. */
struct rt_irq_route {
	uint32_t gsi;
	uint32_t ioapic_address;
	uint32_t ioapic_gsi_base;
	bool active_low;
	bool level;
};

/* A table the RSDT/XSDT lists, checksum verified; NULL if absent. */
const struct acpi_header *rt_acpi_find(const char *signature);
/* The table at a physical address if its signature (when given) and checksum match. */
const struct acpi_header *rt_acpi_table_at(uint64_t addr, const char *signature);
/*
 * How ISA IRQ `irq` is wired, from the MADT's interrupt source overrides and IOAPIC entries.
 * `sci` picks the defaults ACPI gives the SCI when no override names it (level, active low)
 * instead of ISA's (edge, active high).  False without a MADT or an IOAPIC serving the GSI.
 */
bool rt_acpi_isa_irq_route(unsigned irq, bool sci, struct rt_irq_route *out);

#endif /* LOCKSTEP_GUEST_RT_ACPI_H */
