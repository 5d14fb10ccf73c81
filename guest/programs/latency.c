/*
 * latency: the cost of leaving ring 3, measured at ring 3 with the TSC on CPU 0.
 *
 * - doorbell: the round trip of LKS_CALL_NOP through lockstep's MMIO doorbell (one 8-byte read,
 *   one exit to the VMM and back).  Only under lockstep; elsewhere the doorbell is absent and
 *   only the syscall is measured.
 * - syscall: RT_SYS_NOP, ring 3 -> ring 0 -> ring 3 (the runtime's ud2 trap in, IRETQ out).
 *
 * `samples=` (default 2000) timed calls each, after a short warm-up; median, min and p99 in TSC
 * cycles and in ns (TSC kHz from CPUID leaf LKS_CPUID_INFO, else calibrated).
 *
 *   result: program=latency cpus=N samples=S tsc_khz=K doorbell_ns_median=... doorbell_ns_min=...
 *           doorbell_ns_p99=... (and _cycles_) syscall_ns_median=... ...
 *
 * Exit 0 when the measurements ran (the doorbell answered PROBE correctly), 1 otherwise.
 */
#include "guest/guest.h"

#define DEFAULT_SAMPLES 2000
#define WARMUP_CALLS 100

static unsigned measure_doorbell(const volatile uint8_t *doorbell, uint64_t *cycles, size_t n)
{
	unsigned errors = 0;

	for (unsigned i = 0; i < WARMUP_CALLS; i++)
		rt_doorbell_call(doorbell, LKS_CALL_NOP, 0, 0, 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t start = rt_rdtsc_ordered();
		int64_t result = rt_doorbell_call(doorbell, LKS_CALL_NOP, 0, 0, 0);

		cycles[i] = rt_rdtsc_ordered() - start;
		errors += result != 0;
	}
	return errors;
}

static void measure_syscall(uint64_t *cycles, size_t n)
{
	for (unsigned i = 0; i < WARMUP_CALLS; i++)
		rt_syscall_nop();
	for (size_t i = 0; i < n; i++) {
		uint64_t start = rt_rdtsc_ordered();

		rt_syscall_nop();
		cycles[i] = rt_rdtsc_ordered() - start;
	}
}

/* Appends "name_ns_median=... name_ns_min=... name_ns_p99=..." and the same in cycles. */
static size_t format_summary(char *buf, size_t size, const char *name, const struct rt_summary *s)
{
	return rt_snprintf(buf, size,
			   " %s_ns_median=%lu %s_ns_min=%lu %s_ns_p99=%lu"
			   " %s_cycles_median=%lu %s_cycles_min=%lu %s_cycles_p99=%lu",
			   name, rt_cycles_to_ns(s->median), name, rt_cycles_to_ns(s->min), name,
			   rt_cycles_to_ns(s->p99), name, s->median, name, s->min, name, s->p99);
}

/* The TSC rate lockstep announced, checked against its host clock over the measurement. */
static void report_tsc_check(const volatile uint8_t *doorbell, uint64_t tsc0, int64_t ns0)
{
	uint64_t tsc1 = rt_rdtsc_ordered();
	int64_t ns1 = rt_doorbell_call(doorbell, LKS_CALL_TIME_NS, 0, 0, 0);

	if (ns0 < 0 || ns1 <= ns0) {
		rt_printf("latency: LKS_CALL_TIME_NS returned %ld then %ld\n", ns0, ns1);
		return;
	}
	rt_printf("latency: tsc %lu kHz announced, %lu kHz against the host clock\n", rt_tsc_khz(),
		  (tsc1 - tsc0) * 1000000 / (uint64_t)(ns1 - ns0));
}

int main(void)
{
	const struct rt_lockstep *ls = rt_lockstep();
	size_t n = rt_arg_u64("samples", DEFAULT_SAMPLES);
	uint64_t *cycles = rt_alloc((n ? n : 1) * sizeof(uint64_t), RT_CACHE_LINE);
	struct rt_summary doorbell, syscall;
	char line[768];
	size_t len;
	unsigned errors = 0;

	len = rt_snprintf(line, sizeof(line),
			  "result: program=latency cpus=%u samples=%zu tsc_khz=%lu", rt_cpu_count(),
			  n, rt_tsc_khz());
	if (ls->present) {
		int64_t probe = rt_doorbell_call(ls->doorbell, LKS_CALL_PROBE, 0, 0, 0);
		uint64_t tsc0 = rt_rdtsc_ordered();
		int64_t ns0 = rt_doorbell_call(ls->doorbell, LKS_CALL_TIME_NS, 0, 0, 0);

		if ((uint64_t)probe != LKS_PROBE_VALUE) {
			rt_printf("latency: PROBE returned %#lx, expected %#llx\n", probe,
				  (unsigned long long)LKS_PROBE_VALUE);
			return RT_EXIT_FAIL;
		}
		errors = measure_doorbell(ls->doorbell, cycles, n);
		report_tsc_check(ls->doorbell, tsc0, ns0);
		rt_summarize(cycles, n, &doorbell);
		len += format_summary(line + len, sizeof(line) - len, "doorbell", &doorbell);
		if (errors)
			rt_printf("latency: %u NOP calls returned an error\n", errors);
	} else {
		rt_printf("latency: lockstep doorbell absent (CPUID leaf %#x has no lockstep "
			  "signature): measuring the syscall only\n",
			  LKS_CPUID_BASE);
		len += rt_snprintf(line + len, sizeof(line) - len, " doorbell=absent");
	}
	measure_syscall(cycles, n);
	rt_summarize(cycles, n, &syscall);
	format_summary(line + len, sizeof(line) - len, "syscall", &syscall);
	rt_printf("%s\n", line);
	return errors ? RT_EXIT_FAIL : RT_EXIT_PASS;
}
