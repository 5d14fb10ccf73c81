/*
 * ACPI power management for guest programs: the fixed-feature power button (how lockstepd's
 * vm.shutdown and QEMU's system_powerdown ask a guest to stop), soft-off through PM1a_CNT,
 * and the other ways a machine ends: reset through port 0xCF9 and a deliberate triple fault.
 *
 * Everything is found in the firmware's tables, as an operating system would, so the same
 * image works under lockstep and under QEMU (pc or q35): the FADT (through the RSDT/XSDT)
 * names the PM1a event and control blocks, the SCI's ISA IRQ and the SMI command that switches
 * legacy firmware into ACPI mode; the DSDT's \_S5 package gives the SLP_TYP of soft-off
 * (lockstep 5, QEMU 0); the MADT says which IOAPIC pin the SCI arrives on.
 *
 * The SCI is routed edge-triggered to RT_VEC_SCI on CPU 0 even though the line is a level
 * one: the runtime's interrupt handler only counts and EOIs (guest/rt/entry.S), and a level
 * entry would fire again at every EOI until ring 3 got round to clearing PWRBTN_STS.  With an
 * edge entry each press is one interrupt, which wakes CPU 0 from rt_wait_while on the count.
 *
 * All of this runs at ring 3 on one CPU (programs call it from CPU 0): table parsing is native
 * there, the IOAPIC's registers are identity-mapped MMIO, and only the PM port accesses go
 * through the runtime's port-I/O syscalls.  State lives in rt_state.acpi_pm.
 */
#include "guest/rt/acpi.h"

#define PM1_STS_PWRBTN (1u << 8)
#define PM1_EN_PWRBTN (1u << 8)
#define PM1_CNT_SCI_EN (1u << 0)
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP_MASK (7u << PM1_CNT_SLP_TYP_SHIFT)
#define PM1_CNT_SLP_EN (1u << 13)

#define ACPI_MODE_TIMEOUT_NS 100000000ull /* for SCI_EN after the SMI command */
#define STOP_GRACE_NS 200000000ull	  /* for the VMM to act on soft-off or reset */

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REG_VERSION 0x01
#define IOAPIC_REG_REDIR(pin) (0x10 + 2 * (pin))
#define IOAPIC_REDIR_ACTIVE_LOW (1u << 13)

#define RESET_CONTROL_PORT 0xcf9
#define RESET_CONTROL_HARD 0x06 /* SYS_RST | RST_CPU */
#define I8042_COMMAND_PORT 0x64
#define I8042_PULSE_RESET 0xfe

#define AML_NAME_OP 0x08
#define AML_ROOT_CHAR '\\'
#define AML_PACKAGE_OP 0x12
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c

/*
 * SLP_TYPa of soft-off: the first element of `Name (\_S5, Package () {...})` in the DSDT.
 * A byte scan for the name, as small kernels do, rather than an AML interpreter: firmware
 * writes \_S5 as a plain top-level Name.  -1 when not found.
 */
static int s5_sleep_type(const struct acpi_header *dsdt)
{
	const uint8_t *aml = (const uint8_t *)(dsdt + 1);
	const uint8_t *end = (const uint8_t *)dsdt + dsdt->length;

	for (const uint8_t *p = aml + 1; p + 4 <= end; p++) {
		const uint8_t *q = p + 4;

		if (memcmp(p, "_S5_", 4))
			continue;
		if (p[-1] != AML_NAME_OP &&
		    !(p[-1] == AML_ROOT_CHAR && p - 2 >= aml && p[-2] == AML_NAME_OP))
			continue;
		if (q >= end || *q++ != AML_PACKAGE_OP || q >= end)
			continue;
		q += 1 + (*q >> 6); /* PkgLength: the lead byte says how many bytes follow */
		q++;		    /* NumElements */
		if (q + 2 > end)
			continue;
		switch (q[0]) {
		case AML_ZERO_OP:
			return 0;
		case AML_ONE_OP:
			return 1;
		case AML_BYTE_PREFIX:
		case AML_WORD_PREFIX:
		case AML_DWORD_PREFIX:
			return q[1] & 7;
		default:
			continue;
		}
	}
	return -1;
}

/* A PM1 block's I/O port: the ACPI 1.0 field, else the extended one if it is in I/O space. */
static uint16_t pm1_port(const struct acpi_fadt *fadt, uint32_t legacy, size_t x_offset)
{
	const struct acpi_gas *gas = (const void *)((const uint8_t *)fadt + x_offset);

	if (legacy)
		return legacy <= 0xffff ? legacy : 0;
	if (fadt->header.length >= x_offset + sizeof(*gas) && gas->space_id == ACPI_GAS_SYSTEM_IO &&
	    gas->address && gas->address <= 0xffff)
		return gas->address;
	return 0;
}

/* Fills rt_state.acpi_pm from the FADT and DSDT, once; prints what is missing. */
static struct rt_acpi_pm *pm_probe(void)
{
	struct rt_acpi_pm *pm = &rt_state.acpi_pm;
	const struct acpi_fadt *fadt;
	const struct acpi_header *dsdt = NULL;

	if (pm->probed)
		return pm;
	pm->probed = true;
	pm->s5_sleep_type = -1;
	fadt = (const struct acpi_fadt *)rt_acpi_find("FACP");
	if (!fadt || fadt->header.length < __builtin_offsetof(struct acpi_fadt, reset_reg)) {
		rt_printf("rt: acpi: no FADT\n");
		return pm;
	}
	pm->pm1a_evt = pm1_port(fadt, fadt->pm1a_evt_blk,
				__builtin_offsetof(struct acpi_fadt, x_pm1a_evt_blk));
	pm->pm1a_cnt = pm1_port(fadt, fadt->pm1a_cnt_blk,
				__builtin_offsetof(struct acpi_fadt, x_pm1a_cnt_blk));
	pm->pm1a_en = fadt->pm1_evt_len >= 4 ? pm->pm1a_evt + fadt->pm1_evt_len / 2 : 0;
	pm->sci_irq = fadt->sci_int;
	pm->smi_cmd = fadt->smi_cmd <= 0xffff ? fadt->smi_cmd : 0;
	pm->acpi_enable = fadt->acpi_enable;
	pm->fixed_power_button = !(fadt->flags & ACPI_FADT_PWR_BUTTON);
	if (fadt->header.length >= __builtin_offsetof(struct acpi_fadt, x_pm1a_evt_blk) &&
	    fadt->x_dsdt)
		dsdt = rt_acpi_table_at(fadt->x_dsdt, "DSDT");
	if (!dsdt)
		dsdt = rt_acpi_table_at(fadt->dsdt, "DSDT");
	if (dsdt)
		pm->s5_sleep_type = s5_sleep_type(dsdt);
	if (!pm->pm1a_evt || !pm->pm1a_en || !pm->pm1a_cnt)
		rt_printf("rt: acpi: the FADT has no PM1a blocks\n");
	else if (pm->s5_sleep_type < 0)
		rt_printf("rt: acpi: no \\_S5 in the DSDT: soft-off unavailable\n");
	return pm;
}

/* Legacy firmware (SeaBIOS) leaves the machine in SMM mode until the OS asks for ACPI mode. */
static bool acpi_mode_on(const struct rt_acpi_pm *pm)
{
	uint64_t start = rt_rdtsc(), limit = rt_ns_to_cycles(ACPI_MODE_TIMEOUT_NS);

	if (rt_pio_in(pm->pm1a_cnt, 2) & PM1_CNT_SCI_EN)
		return true;
	if (!pm->smi_cmd || !pm->acpi_enable)
		return false;
	rt_pio_out(pm->smi_cmd, 1, pm->acpi_enable);
	while (rt_rdtsc() - start < limit)
		if (rt_pio_in(pm->pm1a_cnt, 2) & PM1_CNT_SCI_EN)
			return true;
	return false;
}

static uint32_t ioapic_read(uint32_t base, uint32_t reg)
{
	volatile uint32_t *ioapic = (volatile uint32_t *)(uintptr_t)base;

	ioapic[IOAPIC_REGSEL / 4] = reg;
	return ioapic[IOAPIC_WINDOW / 4];
}

static void ioapic_write(uint32_t base, uint32_t reg, uint32_t value)
{
	volatile uint32_t *ioapic = (volatile uint32_t *)(uintptr_t)base;

	ioapic[IOAPIC_REGSEL / 4] = reg;
	ioapic[IOAPIC_WINDOW / 4] = value;
}

/* The SCI's IOAPIC pin -> RT_VEC_SCI on CPU 0, edge-triggered (see the top of the file). */
static bool route_sci(const struct rt_acpi_pm *pm)
{
	struct rt_irq_route route;
	uint32_t pin, max_pin, low;

	if (!rt_acpi_isa_irq_route(pm->sci_irq, true, &route)) {
		rt_printf("rt: acpi: no IOAPIC for the SCI (IRQ %u) in the MADT\n", pm->sci_irq);
		return false;
	}
	pin = route.gsi - route.ioapic_gsi_base;
	max_pin = (ioapic_read(route.ioapic_address, IOAPIC_REG_VERSION) >> 16) & 0xff;
	if (pin > max_pin) {
		rt_printf("rt: acpi: SCI GSI %u is beyond the IOAPIC's %u pins\n", route.gsi,
			  max_pin + 1);
		return false;
	}
	low = RT_VEC_SCI | (route.active_low ? IOAPIC_REDIR_ACTIVE_LOW : 0);
	ioapic_write(route.ioapic_address, IOAPIC_REG_REDIR(pin) + 1, rt_cpu_apic_id(0) << 24);
	ioapic_write(route.ioapic_address, IOAPIC_REG_REDIR(pin), low);
	return true;
}

bool rt_power_button_enable(void)
{
	struct rt_acpi_pm *pm = pm_probe();

	if (pm->button_enabled)
		return true;
	if (!pm->pm1a_evt || !pm->pm1a_en || !pm->pm1a_cnt)
		return false;
	if (!pm->fixed_power_button) {
		rt_printf("rt: acpi: the power button is a control-method device: unsupported\n");
		return false;
	}
	if (!acpi_mode_on(pm)) {
		rt_printf("rt: acpi: the firmware did not enter ACPI mode (SMI command %#x)\n",
			  pm->smi_cmd);
		return false;
	}
	if (!route_sci(pm))
		return false;
	/* A press that came before this raises the SCI now: it is not lost. */
	rt_pio_out(pm->pm1a_en, 2, rt_pio_in(pm->pm1a_en, 2) | PM1_EN_PWRBTN);
	pm->button_enabled = true;
	return true;
}

const volatile uint32_t *rt_power_button_word(void)
{
	return rt_irq_count_word(0, RT_VEC_SCI);
}

bool rt_power_button_pressed(void)
{
	const struct rt_acpi_pm *pm = &rt_state.acpi_pm;

	if (!pm->button_enabled || !(rt_pio_in(pm->pm1a_evt, 2) & PM1_STS_PWRBTN))
		return false;
	rt_pio_out(pm->pm1a_evt, 2, PM1_STS_PWRBTN); /* write 1 to clear */
	return true;
}

/* Sleeps this CPU for about ns: the machine should have stopped by then. */
static void grace_period(uint64_t ns)
{
	uint64_t start = rt_rdtsc(), limit = rt_ns_to_cycles(ns);
	volatile uint32_t never_changes = 0;

	while (rt_rdtsc() - start < limit)
		rt_wait_while(&never_changes, 0, rt_cycles_to_ns(limit - (rt_rdtsc() - start)));
}

void rt_poweroff(void)
{
	const struct rt_acpi_pm *pm = pm_probe();

	if (pm->pm1a_cnt && pm->s5_sleep_type >= 0) {
		uint32_t cnt =
			rt_pio_in(pm->pm1a_cnt, 2) & ~(PM1_CNT_SLP_TYP_MASK | PM1_CNT_SLP_EN);

		cnt |= (uint32_t)pm->s5_sleep_type << PM1_CNT_SLP_TYP_SHIFT;
		rt_pio_out(pm->pm1a_cnt, 2, cnt);
		rt_pio_out(pm->pm1a_cnt, 2, cnt | PM1_CNT_SLP_EN);
		grace_period(STOP_GRACE_NS);
		rt_printf("rt: ACPI soft-off did not stop the machine\n");
	}
	rt_printf("rt: powering off through the debug-exit port\n");
	rt_exit(RT_EXIT_PASS);
}

void rt_reset(void)
{
	rt_pio_out(RESET_CONTROL_PORT, 1, RESET_CONTROL_HARD);
	grace_period(STOP_GRACE_NS);
	rt_printf("rt: port %#x reset did not happen; trying the keyboard controller\n",
		  RESET_CONTROL_PORT);
	rt_pio_out(I8042_COMMAND_PORT, 1, I8042_PULSE_RESET);
	grace_period(STOP_GRACE_NS);
	rt_printf("rt: no reset: triple fault\n");
	rt_triple_fault();
}

void rt_triple_fault(void)
{
	rt_syscall(RT_SYS_TRIPLE_FAULT, 0, 0, 0);
	for (;;)
		rt_syscall(RT_SYS_EXIT, RT_EXIT_CRASH, 0, 0);
}
