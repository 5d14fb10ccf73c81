/*
 * hello: every CPU reports in.  Each CPU reads its APIC id at ring 0 twice, from its LAPIC's
 * ID register and from CPUID leaf 1 (ring-3 CPUID may answer with the outer host's values),
 * and its IA32_APIC_BASE MSR; CPU 0 checks the ids against the one the MADT gave that CPU,
 * that all ids differ, and that only CPU 0 carries the BSP flag.  The boot-CPU count from
 * fw_cfg, when the platform has it, is printed for comparison, and so is the command line's
 * first word's file name, which QEMU (and lockstep) make the image's name.
 *
 *   result: program=hello cpus=N reported=N apic_ids=0,1,... fw_cfg_cpus=N image=NAME ok=1
 *
 * Exit 0 when every CPU reported consistent, distinct ids.
 */
#include "guest/guest.h"

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_BSP 0x100
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_NB_CPUS 0x05

/* The command line's first word without its directories: the image's file name. */
static const char *image_name(char *name, size_t size)
{
	const char *w = rt_cmdline(), *base = w;
	size_t n = 0;

	for (const char *p = w; *p && *p != ' '; p++)
		if (*p == '/')
			base = p + 1;
	while (base[n] && base[n] != ' ' && n < size - 1) {
		name[n] = base[n];
		n++;
	}
	name[n] = '\0';
	return n ? name : "-";
}

struct report {
	volatile uint32_t reported;
	uint32_t lapic_id;
	uint32_t cpuid_apic_id;
	bool bsp_flag;
};

static void report_in(void *arg)
{
	struct report *report = (struct report *)arg + rt_cpu_index();
	uint32_t regs[4];

	rt_cpuid(1, 0, regs);
	report->lapic_id = rt_apic_read(RT_APIC_ID) >> 24;
	report->cpuid_apic_id = regs[1] >> 24;
	report->bsp_flag = rt_rdmsr(MSR_APIC_BASE) & APIC_BASE_BSP;
	__atomic_store_n(&report->reported, 1, __ATOMIC_RELEASE);
}

static bool check_cpu(const struct report *reports, unsigned cpu)
{
	const struct report *r = &reports[cpu];
	unsigned madt_id = rt_cpu_apic_id(cpu);
	bool ok = r->reported && r->lapic_id == madt_id && r->cpuid_apic_id == madt_id &&
		  r->bsp_flag == (cpu == 0);

	for (unsigned other = 0; other < cpu; other++)
		if (reports[other].lapic_id == r->lapic_id)
			ok = false;
	if (r->reported)
		rt_printf("hello from cpu %u: apic_id=%u (lapic %u, cpuid %u, madt %u)%s%s\n", cpu,
			  r->lapic_id, r->lapic_id, r->cpuid_apic_id, madt_id,
			  r->bsp_flag ? " bsp" : "", ok ? "" : "  MISMATCH");
	else
		rt_printf("cpu %u (madt apic id %u) did not report\n", cpu, madt_id);
	return ok;
}

/* fw_cfg's boot-CPU count (QEMU's interface, which lockstep also offers); 0 without fw_cfg. */
static unsigned fw_cfg_cpus(void)
{
	static const char signature[4] = { 'Q', 'E', 'M', 'U' };
	unsigned cpus = 0;

	rt_pio_out(FW_CFG_SELECTOR, 2, FW_CFG_SIGNATURE);
	for (unsigned i = 0; i < sizeof(signature); i++)
		if (rt_pio_in(FW_CFG_DATA, 1) != (uint8_t)signature[i])
			return 0;
	rt_pio_out(FW_CFG_SELECTOR, 2, FW_CFG_NB_CPUS);
	cpus = rt_pio_in(FW_CFG_DATA, 1);
	return cpus | rt_pio_in(FW_CFG_DATA, 1) << 8;
}

int main(void)
{
	unsigned cpus = rt_cpu_count(), reported = 0, good = 0;
	struct report *reports = rt_alloc(cpus * sizeof(*reports), RT_CACHE_LINE);
	char ids[4 * RT_MAX_CPUS + 1], image[64];
	size_t len = 0;

	rt_on_each_cpu(report_in, reports);
	ids[0] = '\0';
	for (unsigned cpu = 0; cpu < cpus; cpu++) {
		reported += reports[cpu].reported;
		good += check_cpu(reports, cpu);
		len += rt_snprintf(ids + len, sizeof(ids) - len, "%s%u", cpu ? "," : "",
				   reports[cpu].lapic_id);
	}
	rt_printf("result: program=hello cpus=%u reported=%u apic_ids=%s fw_cfg_cpus=%u "
		  "image=%s ok=%d\n",
		  cpus, reported, ids, fw_cfg_cpus(), image_name(image, sizeof(image)),
		  good == cpus);
	return good == cpus ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
