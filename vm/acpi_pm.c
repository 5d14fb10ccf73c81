/*
 * ACPI fixed-feature power management registers (PM1a event and control blocks and the PM
 * timer, described by the FADT): the power button, by which lockstepd's vm.shutdown asks a
 * guest to shut down as libvirt does through QEMU, soft-off (SLP_TYP 5 + SLP_EN), by which the
 * guest powers off, and the 32-bit PM timer at 3.579545 MHz that calibrating kernels read
 * (counting from the VM's start; no carry interrupt: TMR_STS stays clear).
 *
 * The SCI is level-triggered on ISA IRQ 9: asserted while an enabled status bit is set, so the
 * line follows (PM1_STS & PM1_EN).  The control thread presses the button, vCPU threads access
 * the registers; one mutex covers both.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm_internal.h"

#define PM1_PWRBTN (1u << 8)
#define PM1_STS_WRITABLE 0x8d31u /* TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK */
#define PM1_EN_WRITABLE 0x0521u	 /* TMR, GBL, PWRBTN, SLPBTN, RTC */
#define PM1_CNT_SCI_EN (1u << 0)
#define PM1_CNT_SLP_TYP(v) (((v) >> 10) & 7u)
#define PM1_CNT_SLP_EN (1u << 13)
#define SLP_TYP_SOFT_OFF 5
#define PM_TMR_OFFSET 8 /* from the PM1a event block: 0x608 */
#define PM_TMR_HZ 3579545ull

struct vm_acpi_pm {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t sts, en, cnt;
	bool sci;
};

int vm_acpi_pm_new(struct vm *vm, struct vm_acpi_pm **out)
{
	struct vm_acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return -ENOMEM;
	pm->vm = vm;
	pm->cnt = PM1_CNT_SCI_EN; /* no SMM: always in ACPI mode */
	pthread_mutex_init(&pm->lock, NULL);
	*out = pm;
	return 0;
}

void vm_acpi_pm_free(struct vm_acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

/* Called with the lock held: drives the SCI line from the enabled status bits. */
static void update_sci(struct vm_acpi_pm *pm)
{
	bool level = (pm->sts & pm->en) != 0;

	if (level == pm->sci)
		return;
	pm->sci = level;
	hv_vm_irq_line(pm->vm->hv, VM_ACPI_SCI_IRQ, level);
}

void vm_acpi_pm_power_button(struct vm_acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= PM1_PWRBTN;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static uint32_t pm_timer(const struct vm_acpi_pm *pm)
{
	uint64_t ns = util_now_ns() - pm->vm->start_ns;

	return (uint32_t)(ns / 1000000000ull * PM_TMR_HZ +
			  ns % 1000000000ull * PM_TMR_HZ / 1000000000ull);
}

static uint16_t read16(const struct vm_acpi_pm *pm, uint64_t reg)
{
	switch (reg) {
	case PM_TMR_OFFSET:
		return (uint16_t)pm_timer(pm);
	case PM_TMR_OFFSET + 2:
		return (uint16_t)(pm_timer(pm) >> 16);
	case 0:
		return pm->sts;
	case 2:
		return pm->en;
	case 4:
		return pm->cnt;
	default:
		return 0;
	}
}

static void write16(struct vm_acpi_pm *pm, uint64_t reg, uint16_t v)
{
	switch (reg) {
	case 0:
		pm->sts &= (uint16_t) ~(v & PM1_STS_WRITABLE); /* write 1 to clear */
		break;
	case 2:
		pm->en = v & PM1_EN_WRITABLE;
		break;
	case 4:
		pm->cnt = (uint16_t)((v & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN);
		if ((v & PM1_CNT_SLP_EN) && PM1_CNT_SLP_TYP(v) == SLP_TYP_SOFT_OFF)
			vm_request_stop(pm->vm, VM_STOP_GUEST_POWEROFF, 0);
		break;
	default:
		break;
	}
	update_sci(pm);
}

void vm_acpi_pm_io(void *opaque, struct vm_io *io)
{
	struct vm_acpi_pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	for (uint32_t i = 0; i < io->count; i++) {
		uint8_t *data = io->data + (size_t)i * io->size;
		/* Registers are 16 bits wide; byte accesses reach either half. */
		uint64_t reg = io->offset & ~1ull;
		unsigned shift = (io->offset & 1) * 8;
		uint16_t v = read16(pm, reg);

		if (!io->write && reg == PM_TMR_OFFSET && io->size == 4) {
			uint32_t t = pm_timer(pm);

			memcpy(data, &t, 4); /* one reading, not two halves */
			continue;
		}
		if (!io->write) {
			uint32_t out = io->size == 4 ?
					       (uint32_t)v | (uint32_t)read16(pm, reg + 2) << 16 :
					       (uint32_t)(v >> shift);

			memcpy(data, &out, io->size < 4 ? io->size : 4);
			continue;
		}
		if (io->size == 1) {
			uint16_t mask = (uint16_t)(0xff << shift);

			/* Status bits clear only where the byte writes ones. */
			v = reg == 0 ? (uint16_t)(data[0] << shift) :
				       (uint16_t)((v & ~mask) | (data[0] << shift));
			write16(pm, reg, v);
		} else {
			uint32_t in = 0;

			memcpy(&in, data, io->size < 4 ? io->size : 4);
			write16(pm, reg, (uint16_t)in);
			if (io->size == 4)
				write16(pm, reg + 2, (uint16_t)(in >> 16));
		}
	}
	pthread_mutex_unlock(&pm->lock);
}
