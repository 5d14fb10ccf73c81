/*
 * SMP: starting the application processors, and how CPUs hand each other work, sleep and
 * wake.
 *
 * Start-up (rt_smp_init, BSP, ring 3): the MADT's enabled LAPICs become CPUs 1..n-1 in table
 * order, each with a per-CPU area from the heap; the trampoline goes to
 * RT_TRAMPOLINE_BASE; every AP gets INIT then SIPI at once (no firmware-era delays: KVM and
 * QEMU queue the SIPI behind the INIT), and a second SIPI if it has not checked in after
 * AP_SECOND_SIPI_NS.
 *
 * Waiting: with more vCPUs than host CPUs a spinning vCPU takes the host CPU away from the
 * vCPU it waits for, so waiters spin only briefly and then halt (RT_SYS_WAIT).  A sleeper
 * publishes what it sleeps on; whoever changes that word calls rt_wake, which sends
 * RT_VEC_WAKE to the sleepers.  The sleeper's "sleeping" store and the waker's word store are
 * each followed by a full fence, so one of them always sees the other (no lost wake-up), and
 * RT_SYS_WAIT re-checks the word with interrupts off before its sti; hlt.
 *
 * Work: each AP runs an idle loop at ring 3 around a one-slot mailbox (work_posted /
 * work_done sequence numbers).  CPU 0 runs main() and takes no posted work.
 */
#include "guest/rt/internal.h"

#define ICR_FIXED 0x0000
#define ICR_INIT 0x0500
#define ICR_STARTUP 0x0600
#define ICR_ASSERT 0x4000
#define ICR_LEVEL 0x8000
#define AP_SECOND_SIPI_NS 100000000ull /* 100 ms */
#define AP_START_TIMEOUT_NS 5000000000ull

static struct rt_cpu *cpu_by_index(unsigned index)
{
	if (index >= rt_state.cpu_count)
		rt_panic("no CPU %u (%u CPUs)", index, rt_state.cpu_count);
	return rt_state.cpu[index];
}

unsigned rt_cpu_count(void)
{
	return rt_state.cpu_count;
}

unsigned rt_cpu_apic_id(unsigned cpu)
{
	return cpu_by_index(cpu)->apic_id;
}

void rt_send_icr(uint32_t apic_id, uint32_t icr_low)
{
	rt_syscall(RT_SYS_SEND_IPI, apic_id, icr_low, 0);
}

void rt_send_ipi(unsigned cpu, unsigned vector)
{
	if (vector < RT_VEC_USER_FIRST || vector > RT_VEC_USER_LAST)
		rt_panic("IPI vector %#x outside %#x-%#x", vector, RT_VEC_USER_FIRST,
			 RT_VEC_USER_LAST);
	rt_send_icr(cpu_by_index(cpu)->apic_id, ICR_FIXED | ICR_ASSERT | vector);
}

const volatile uint32_t *rt_irq_count_word(unsigned cpu, unsigned vector)
{
	return &cpu_by_index(cpu)->irq_count[vector & 0xff];
}

uint32_t rt_irq_count(unsigned cpu, unsigned vector)
{
	return *rt_irq_count_word(cpu, vector);
}

uint64_t rt_irq_tsc(unsigned cpu, unsigned vector)
{
	if (vector < RT_VEC_TS_FIRST || vector > RT_VEC_LEVEL_LAST)
		return 0;
	return cpu_by_index(cpu)->irq_tsc[vector - RT_VEC_TS_FIRST];
}

void rt_irq_eoi(void)
{
	rt_syscall(RT_SYS_APIC_WRITE, RT_APIC_EOI, 0, 0);
}

void rt_apic_write(unsigned reg, uint32_t value)
{
	rt_syscall(RT_SYS_APIC_WRITE, reg, value, 0);
}

/* ---- Sleeping and waking ------------------------------------------------------------------ */

bool rt_wait_while(const volatile uint32_t *word, uint32_t value, uint64_t timeout_ns)
{
	struct rt_cpu *cpu = rt_this_cpu();
	uint64_t start = rt_rdtsc();

	while (*word == value) {
		if (rt_rdtsc() - start < rt_state.spin_cycles) {
			rt_pause();
			continue;
		}
		cpu->wait_word = word;
		__atomic_store_n(&cpu->sleeping, 1, __ATOMIC_SEQ_CST);
		if (*word == value)
			rt_syscall(RT_SYS_WAIT, (long)word, value, timeout_ns);
		__atomic_store_n(&cpu->sleeping, 0, __ATOMIC_RELAXED);
		break;
	}
	return *word != value;
}

void rt_wake(const volatile uint32_t *word)
{
	struct rt_cpu *self = rt_this_cpu();

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < rt_state.cpu_count; i++) {
		struct rt_cpu *cpu = rt_state.cpu[i];

		if (cpu != self && cpu->sleeping && cpu->wait_word == word)
			rt_send_icr(cpu->apic_id, ICR_FIXED | ICR_ASSERT | RT_VEC_WAKE);
	}
}

void rt_wake_cpu(unsigned index, const volatile uint32_t *word)
{
	struct rt_cpu *cpu = cpu_by_index(index);

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (cpu != rt_this_cpu() && cpu->sleeping && cpu->wait_word == word)
		rt_send_icr(cpu->apic_id, ICR_FIXED | ICR_ASSERT | RT_VEC_WAKE);
}

void rt_barrier_init(struct rt_barrier *barrier, unsigned parties)
{
	barrier->parties = parties;
	barrier->arrived = 0;
	barrier->generation = 0;
}

/* Sense by generation: the last to arrive resets the count, then opens the next generation. */
void rt_barrier_wait(struct rt_barrier *barrier)
{
	uint32_t generation = __atomic_load_n(&barrier->generation, __ATOMIC_ACQUIRE);

	if (__atomic_add_fetch(&barrier->arrived, 1, __ATOMIC_ACQ_REL) == barrier->parties) {
		barrier->arrived = 0;
		__atomic_store_n(&barrier->generation, generation + 1, __ATOMIC_RELEASE);
		rt_wake(&barrier->generation);
		return;
	}
	while (barrier->generation == generation)
		rt_wait_while(&barrier->generation, generation, 0);
}

/* ---- Work dispatch ------------------------------------------------------------------------ */

void rt_wait_done(unsigned index)
{
	struct rt_cpu *cpu = cpu_by_index(index);

	for (;;) {
		uint32_t done = __atomic_load_n(&cpu->work_done, __ATOMIC_ACQUIRE);

		if (done == cpu->work_posted)
			return;
		rt_wait_while(&cpu->work_done, done, 0);
	}
}

void rt_post(unsigned index, rt_work_fn fn, void *arg)
{
	struct rt_cpu *cpu = cpu_by_index(index);

	if (index == 0 || cpu == rt_this_cpu())
		rt_panic("rt_post to CPU %u from CPU %u: CPU 0 and the caller take no posted work",
			 index, rt_cpu_index());
	rt_wait_done(index);
	cpu->work_fn = fn;
	cpu->work_arg = arg;
	__atomic_store_n(&cpu->work_posted, cpu->work_posted + 1, __ATOMIC_RELEASE);
	rt_wake(&cpu->work_posted);
}

void rt_on_cpu(unsigned index, rt_work_fn fn, void *arg)
{
	if (index == rt_cpu_index()) {
		fn(arg);
		return;
	}
	rt_post(index, fn, arg);
	rt_wait_done(index);
}

void rt_on_each_cpu(rt_work_fn fn, void *arg)
{
	unsigned self = rt_cpu_index();

	for (unsigned i = 0; i < rt_state.cpu_count; i++)
		if (i != self)
			rt_post(i, fn, arg);
	fn(arg);
	for (unsigned i = 0; i < rt_state.cpu_count; i++)
		if (i != self)
			rt_wait_done(i);
}

static __attribute__((noreturn)) void idle_loop(struct rt_cpu *cpu)
{
	for (;;) {
		uint32_t posted = __atomic_load_n(&cpu->work_posted, __ATOMIC_ACQUIRE);

		if (posted == cpu->work_done) {
			rt_wait_while(&cpu->work_posted, posted, 0);
			continue;
		}
		cpu->work_fn(cpu->work_arg);
		__atomic_store_n(&cpu->work_done, posted, __ATOMIC_RELEASE);
		rt_wake(&cpu->work_done);
	}
}

/* An AP's first ring-3 code (from trampoline.S): check in, then wait for work. */
void rt_ap_start(struct rt_cpu *cpu)
{
	cpu->online = 1;
	__atomic_add_fetch(&rt_state.cpus_online, 1, __ATOMIC_SEQ_CST);
	rt_wake(&rt_state.cpus_online);
	idle_loop(cpu);
}

/* ---- Start-up ----------------------------------------------------------------------------- */

static void add_cpu(struct rt_cpu *cpu, uint32_t apic_id)
{
	unsigned index = rt_state.cpu_count++;

	cpu->index = index;
	cpu->apic_id = apic_id;
	rt_state.cpu[index] = cpu;
	rt_state.apic_to_cpu[apic_id] = index;
}

static bool wait_online(uint64_t timeout_ns)
{
	uint64_t start = rt_rdtsc(), limit = rt_ns_to_cycles(timeout_ns);

	for (;;) {
		uint32_t online = rt_state.cpus_online;
		uint64_t elapsed = rt_rdtsc() - start;

		if (online == rt_state.cpu_count)
			return true;
		if (elapsed >= limit)
			return false;
		rt_wait_while(&rt_state.cpus_online, online, rt_cycles_to_ns(limit - elapsed));
	}
}

static void start_aps(void)
{
	memcpy((void *)RT_TRAMPOLINE_BASE, rt_trampoline_start,
	       rt_trampoline_end - rt_trampoline_start);
	for (unsigned i = 1; i < rt_state.cpu_count; i++)
		rt_send_icr(rt_state.cpu[i]->apic_id, ICR_INIT | ICR_LEVEL | ICR_ASSERT);
	for (unsigned i = 1; i < rt_state.cpu_count; i++)
		rt_send_icr(rt_state.cpu[i]->apic_id, ICR_STARTUP | RT_TRAMPOLINE_SIPI_VECTOR);
	if (wait_online(AP_SECOND_SIPI_NS))
		return;
	for (unsigned i = 1; i < rt_state.cpu_count; i++)
		if (!rt_state.cpu[i]->online)
			rt_send_icr(rt_state.cpu[i]->apic_id,
				    ICR_STARTUP | RT_TRAMPOLINE_SIPI_VECTOR);
	if (wait_online(AP_START_TIMEOUT_NS))
		return;
	for (unsigned i = 1; i < rt_state.cpu_count; i++)
		if (!rt_state.cpu[i]->online)
			rt_printf("rt: cpu %u (APIC id %u) did not start\n", i,
				  rt_state.cpu[i]->apic_id);
	rt_panic("%u of %u CPUs started", rt_state.cpus_online, rt_state.cpu_count);
}

void rt_smp_init(void)
{
	struct rt_cpu *bsp = (struct rt_cpu *)rt_bsp_area;
	uint8_t apic_ids[RT_MAX_CPUS];
	unsigned found = rt_acpi_cpu_apic_ids(apic_ids, RT_MAX_CPUS);
	uint64_t limit = rt_arg_u64("cpus", RT_MAX_CPUS);
	bool bsp_listed = false;

	memset(rt_state.apic_to_cpu, 0xff, sizeof(rt_state.apic_to_cpu));
	bsp->apic_id = bsp->boot_apic_id;
	bsp->online = 1;
	rt_state.cpu[0] = bsp;
	rt_state.apic_to_cpu[bsp->apic_id] = 0;
	rt_state.cpu_count = 1;
	rt_state.cpus_online = 1;
	if (!found) {
		rt_printf("rt: no ACPI MADT found: running on the boot CPU only\n");
		return;
	}
	for (unsigned i = 0; i < found; i++) {
		if (apic_ids[i] == bsp->apic_id) {
			bsp_listed = true;
			continue;
		}
		if (rt_state.cpu_count >= limit)
			continue;
		add_cpu(rt_alloc(RT_CPU_AREA_SIZE, RT_CPU_AREA_SIZE), apic_ids[i]);
	}
	if (!bsp_listed)
		rt_printf("rt: the boot CPU (APIC id %u) is not in the MADT\n", bsp->apic_id);
	if (rt_state.cpu_count > 1)
		start_aps();
}
