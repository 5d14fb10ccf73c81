/*
 * hello: every CPU reports in.  Each CPU reads its APIC id at ring 0 twice, from its LAPIC's
 * ID register and from CPUID leaf 1 (ring-3 CPUID may answer with the outer host's values), and
 * CPU 0 checks both against the id the MADT gave that CPU and that all ids differ.
 *
 *   result: program=hello cpus=N reported=N apic_ids=0,1,... ok=1
 *
 * Exit 0 when every CPU reported consistent, distinct ids.
 */
#include "guest/guest.h"

struct report {
	volatile uint32_t reported;
	uint32_t lapic_id;
	uint32_t cpuid_apic_id;
};

static void report_in(void *arg)
{
	struct report *report = (struct report *)arg + rt_cpu_index();
	uint32_t regs[4];

	rt_cpuid(1, 0, regs);
	report->lapic_id = rt_apic_read(RT_APIC_ID) >> 24;
	report->cpuid_apic_id = regs[1] >> 24;
	__atomic_store_n(&report->reported, 1, __ATOMIC_RELEASE);
}

static bool check_cpu(const struct report *reports, unsigned cpu)
{
	const struct report *r = &reports[cpu];
	unsigned madt_id = rt_cpu_apic_id(cpu);
	bool ok = r->reported && r->lapic_id == madt_id && r->cpuid_apic_id == madt_id;

	for (unsigned other = 0; other < cpu; other++)
		if (reports[other].lapic_id == r->lapic_id)
			ok = false;
	if (r->reported)
		rt_printf("hello from cpu %u: apic_id=%u (lapic %u, cpuid %u, madt %u)%s\n", cpu,
			  r->lapic_id, r->lapic_id, r->cpuid_apic_id, madt_id,
			  ok ? "" : "  MISMATCH");
	else
		rt_printf("cpu %u (madt apic id %u) did not report\n", cpu, madt_id);
	return ok;
}

int main(void)
{
	unsigned cpus = rt_cpu_count(), reported = 0, good = 0;
	struct report *reports = rt_alloc(cpus * sizeof(*reports), RT_CACHE_LINE);
	char ids[4 * RT_MAX_CPUS + 1];
	size_t len = 0;

	rt_on_each_cpu(report_in, reports);
	ids[0] = '\0';
	for (unsigned cpu = 0; cpu < cpus; cpu++) {
		reported += reports[cpu].reported;
		good += check_cpu(reports, cpu);
		len += rt_snprintf(ids + len, sizeof(ids) - len, "%s%u", cpu ? "," : "",
				   reports[cpu].lapic_id);
	}
	rt_printf("result: program=hello cpus=%u reported=%u apic_ids=%s ok=%d\n", cpus, reported,
		  ids, good == cpus);
	return good == cpus ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
