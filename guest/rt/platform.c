/*
 * What the guest learns about its platform, and the ring-0 services programs call: lockstep
 * detection (CPUID leaves LKS_CPUID_BASE/INFO, executed at ring 0 because ring-3 CPUID is not
 * intercepted on every host), the TSC rate, and thin wrappers around the syscalls.
 *
 * The TSC rate comes from lockstep's CPUID leaf when present.  Otherwise it is calibrated once
 * against the LAPIC timer, which KVM and QEMU both clock at 1 GHz: two reads of the timer's
 * current count bracketed by RDTSC, a few milliseconds apart, median of five rounds.
 */
#include "guest/rt/internal.h"

#define CALIBRATION_CYCLES 5000000ull /* ~2 ms at 2.5 GHz */
#define CALIBRATION_ROUNDS 5
#define DEFAULT_SPIN_US 20

void rt_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	rt_syscall(RT_SYS_CPUID, leaf, subleaf, (long)out);
}

uint32_t rt_pio_in(uint16_t port, unsigned width)
{
	return rt_syscall(RT_SYS_PIO_IN, port, width, 0);
}

void rt_pio_out(uint16_t port, unsigned width, uint32_t value)
{
	rt_syscall(RT_SYS_PIO_OUT, port, width, value);
}

uint64_t rt_rdmsr(uint32_t msr)
{
	return rt_syscall(RT_SYS_RDMSR, msr, 0, 0);
}

void rt_wrmsr(uint32_t msr, uint64_t value)
{
	rt_syscall(RT_SYS_WRMSR, msr, value, 0);
}

uint32_t rt_apic_read(unsigned reg)
{
	return rt_syscall(RT_SYS_APIC_READ, reg, 0, 0);
}

long rt_syscall_nop(void)
{
	return rt_syscall(RT_SYS_NOP, 0, 0, 0);
}

const struct rt_lockstep *rt_lockstep(void)
{
	return &rt_state.lockstep;
}

uint64_t rt_tsc_khz(void)
{
	return rt_state.tsc_khz;
}

uint64_t rt_cycles_to_ns(uint64_t cycles)
{
	uint64_t khz = rt_state.tsc_khz ? rt_state.tsc_khz : 1000000;

	/* cycles * 1e6 / khz without overflowing for runs shorter than ~5 hours at 1 GHz */
	return cycles / khz * 1000000 + cycles % khz * 1000000 / khz;
}

uint64_t rt_ns_to_cycles(uint64_t ns)
{
	uint64_t khz = rt_state.tsc_khz ? rt_state.tsc_khz : 1000000;

	return ns / 1000000 * khz + ns % 1000000 * khz / 1000000;
}

static void lockstep_detect(void)
{
	struct rt_lockstep *ls = &rt_state.lockstep;
	uint64_t hints_gpa;
	uint32_t regs[4], max_leaf;

	rt_cpuid(LKS_CPUID_BASE, 0, regs);
	if (regs[1] != LKS_CPUID_SIG_EBX || regs[2] != LKS_CPUID_SIG_ECX ||
	    regs[3] != LKS_CPUID_SIG_EDX || regs[0] < LKS_CPUID_INFO)
		return;
	max_leaf = regs[0];
	rt_cpuid(LKS_CPUID_INFO, 0, regs);
	ls->abi_version = regs[0];
	ls->tsc_khz = regs[1];
	ls->doorbell_gpa = (uint64_t)regs[3] << 32 | regs[2];
	if (ls->abi_version != LKS_ABI_VERSION) {
		rt_printf("rt: lockstep ABI version %u, runtime speaks %u: doorbell not used\n",
			  ls->abi_version, LKS_ABI_VERSION);
		return;
	}
	if (!ls->doorbell_gpa || (ls->doorbell_gpa & (LKS_DOORBELL_SIZE - 1)) ||
	    ls->doorbell_gpa >= 0x100000000ull) {
		rt_printf("rt: lockstep doorbell at %#lx is outside the identity map: not used\n",
			  ls->doorbell_gpa);
		return;
	}
	ls->doorbell = (volatile uint8_t *)(uintptr_t)ls->doorbell_gpa;
	ls->present = true;
	if (max_leaf < LKS_CPUID_FEATURES)
		return; /* a host from before features: none */
	rt_cpuid(LKS_CPUID_FEATURES, 0, regs);
	ls->features = regs[0];
	hints_gpa = (uint64_t)regs[2] << 32 | regs[1];
	if ((ls->features & LKS_FEATURE_SCHED) && hints_gpa && !(hints_gpa & 0xfff) &&
	    hints_gpa < 0x100000000ull && regs[3] >= sizeof(struct lks_sched_hints) &&
	    ((const volatile struct lks_sched_hints *)(uintptr_t)hints_gpa)->magic ==
		    LKS_HINTS_MAGIC)
		ls->hints = (const volatile struct lks_sched_hints *)(uintptr_t)hints_gpa;
	else
		ls->features &= ~LKS_FEATURE_SCHED;
}

static uint32_t apic_timer_now(uint64_t *tsc_mid)
{
	uint64_t before = rt_rdtsc_ordered();
	uint32_t count = rt_apic_read(RT_APIC_TIMER_CURRENT);
	uint64_t after = rt_rdtsc_ordered();

	*tsc_mid = before + (after - before) / 2;
	return count;
}

/* TSC kHz against the LAPIC timer's 1 GHz count-down; 0 if the timer does not count. */
static uint64_t tsc_calibrate_once(void)
{
	uint64_t tsc0, tsc1, start = rt_rdtsc();
	uint32_t count0, count1;

	rt_syscall(RT_SYS_APIC_WRITE, RT_APIC_TIMER_INIT, 0xffffffffu, 0);
	count0 = apic_timer_now(&tsc0);
	while (rt_rdtsc() - start < CALIBRATION_CYCLES)
		rt_pause();
	count1 = apic_timer_now(&tsc1);
	rt_syscall(RT_SYS_APIC_WRITE, RT_APIC_TIMER_INIT, 0, 0);
	if (count1 >= count0 || tsc1 <= tsc0)
		return 0;
	return (tsc1 - tsc0) * 1000000 / (count0 - count1);
}

/*
 * A host deschedule between reading the timer and the TSC skews one
 * calibration by orders of magnitude, so take the median of several.
 */
static uint64_t tsc_calibrate(void)
{
	uint64_t khz[CALIBRATION_ROUNDS];

	for (int i = 0; i < CALIBRATION_ROUNDS; i++) {
		uint64_t value = tsc_calibrate_once();
		int j = i;

		if (!value)
			return 0;
		for (; j > 0 && khz[j - 1] > value; j--)
			khz[j] = khz[j - 1];
		khz[j] = value;
	}
	return khz[CALIBRATION_ROUNDS / 2];
}

void rt_platform_init(void)
{
	lockstep_detect();
	if (rt_state.lockstep.present && rt_state.lockstep.tsc_khz) {
		rt_state.tsc_khz = rt_state.lockstep.tsc_khz;
		rt_state.tsc_source = "lockstep";
	} else if ((rt_state.tsc_khz = tsc_calibrate())) {
		rt_state.tsc_source = "calibrated";
	} else {
		rt_state.tsc_source = "unknown";
	}
	rt_state.spin_cycles = rt_ns_to_cycles(rt_arg_u64("spin_us", DEFAULT_SPIN_US) * 1000);
}
