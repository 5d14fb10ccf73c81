/*
 * irqlat: device interrupt delivery latency — from the device thread's write of the irqfd
 * (lockstep's testdev timestamps every raise with the host TSC just before it) to the guest's
 * handler (the runtime's handler reads the TSC on entry) — and interrupts delivered per second.
 *
 *   mode=msix|msi|intx|signal   how the device interrupts (signal: MSI-X vector 0 sent with
 *                               KVM_SIGNAL_MSI by the device thread instead of an irqfd)
 *   cpu=N        the destination (default 0), or
 *   steer=1      a redirectable message: lowest priority to every CPU, logical flat mode
 *                (each CPU's LDR gets bit n for CPU n; up to 8 CPUs; MSI/MSI-X)
 *   period_us=P  one raise every P µs from the device thread (default 1000)
 *   count=C      stop after C deliveries (default 2000); seconds=S bounds the run (default 60)
 *   wait=spin|halt  how the CPUs wait for interrupts: spinning at ring 3 (the interrupt
 *                   arrives in a running guest) or halted (HLT: the wake-up is measured too)
 *
 * Every CPU takes the interrupts that reach it: it reads its handler's TSC, finds the oldest
 * raise not yet acknowledged (raises that came while one was pending merged with it: counted
 * as coalesced), and acknowledges the raises up to the last that precedes its handler.
 * Before measuring, the TSCs are checked: the host's (read through the device) must lie between
 * two guest reads, and the handler's (ring 0) between the ring-3 reads around a self-IPI; where
 * they do not, the measured offset is subtracted and reported.
 *
 *   result: program=irqlat mode=M target=T wait=W period_us=P delivered=D raised=R coalesced=K
 *           stale=S rate_per_s=... lat_ns_p50=... lat_ns_p99=... lat_ns_max=... lat_ns_min=...
 *           per_cpu=a,b,... tsc_host_offset=O tsc_ring0_ok=0|1 ok=0|1
 */
#include "guest/programs/irqtest.h"

#define VEC_MEASURE 0xc5
#define VEC_LEVEL_MEASURE 0xe5
#define VEC_TSC_CHECK 0xc6
#define TD_METHOD 0x3c
#define METHOD_SIGNAL_MSI 1

struct run {
	struct testdev dev;
	unsigned vector;
	bool level, spin;
	uint32_t count;
	uint64_t deadline;
	int64_t host_offset; /* host TSC - guest TSC */
	volatile uint32_t lock;
	volatile uint32_t delivered, stale, coalesced, stop;
	uint64_t *lat[RT_MAX_CPUS];
	uint32_t n[RT_MAX_CPUS];
};

static void lock(volatile uint32_t *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		rt_pause();
}

static void unlock(volatile uint32_t *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* One interrupt taken on this CPU at guest TSC `t`: which raises it answers. */
static void take(struct run *r, unsigned cpu, uint64_t t)
{
	uint32_t raised, acked, last = 0;
	uint64_t first_tsc = 0;

	lock(&r->lock);
	raised = td_read(&r->dev, TD_RAISED);
	acked = td_read(&r->dev, TD_ACKED);
	for (uint32_t s = acked + 1; (int32_t)(raised - s) >= 0; s++) {
		uint64_t raise = td_raise_tsc(&r->dev, s) - (uint64_t)r->host_offset;

		if (raise > t)
			break; /* raised after this handler ran: its own interrupt follows */
		if (!last)
			first_tsc = raise;
		last = s;
	}
	if (!last) {
		r->stale++;
	} else {
		td_write(&r->dev, TD_ACK, last);
		r->coalesced += last - (acked + 1);
		if (r->n[cpu] < r->count)
			r->lat[cpu][r->n[cpu]++] = t - first_tsc;
		r->delivered++;
	}
	if (r->delivered >= r->count || rt_rdtsc() > r->deadline)
		r->stop = 1;
	unlock(&r->lock);
}

static void receive(void *arg)
{
	struct run *r = arg;
	unsigned cpu = rt_cpu_index();
	const volatile uint32_t *w = rt_irq_count_word(cpu, r->vector);
	uint32_t seen = *w;

	while (!r->stop) {
		if (r->spin) {
			while (*w == seen && !r->stop)
				rt_pause();
		} else {
			rt_wait_while(w, seen, 1000000);
		}
		if (*w == seen)
			continue;
		seen = *w;
		take(r, cpu, rt_irq_tsc(cpu, r->vector));
		if (r->level)
			rt_irq_eoi(); /* acknowledged: the level is gone */
	}
}

/* Host TSC minus guest TSC, 0 when the host's lies between two guest reads. */
static int64_t host_tsc_offset(const struct testdev *d)
{
	uint64_t best = ~0ull;
	int64_t offset = 0;

	for (int i = 0; i < 16; i++) {
		uint64_t g0 = rt_rdtsc_ordered();
		uint64_t h = *(volatile uint64_t *)(uintptr_t)((uintptr_t)d->regs + TD_HOST_TSC);
		uint64_t g1 = rt_rdtsc_ordered();

		if (g1 - g0 >= best)
			continue;
		best = g1 - g0;
		offset = h >= g0 && h <= g1 ? 0 : (int64_t)(h - (g0 + (g1 - g0) / 2));
	}
	return offset;
}

/* Whether the ring-0 handler's TSC lies between the ring-3 reads around a self-IPI. */
static bool ring0_tsc_ok(void)
{
	uint32_t c = rt_irq_count(0, VEC_TSC_CHECK);
	uint64_t g0 = rt_rdtsc_ordered(), t, g1;

	rt_send_ipi(0, VEC_TSC_CHECK);
	wait_count(0, VEC_TSC_CHECK, c, 1000000000ull);
	g1 = rt_rdtsc_ordered();
	t = rt_irq_tsc(0, VEC_TSC_CHECK);
	return t >= g0 && t <= g1;
}

/* Flat logical mode: CPU n answers to logical destination bit n. */
static void set_ldr(void *arg)
{
	rt_apic_write(0xe0, 0xffffffffu); /* DFR: flat */
	rt_apic_write(0xd0, (1u << rt_cpu_index()) << 24);
}

static void program(struct run *r, const char *mode, bool steer, unsigned target)
{
	const struct testdev *d = &r->dev;
	uint32_t all = (1u << rt_cpu_count()) - 1;
	uint32_t address =
		steer ? MSI_ADDR(all) | MSI_ADDR_LOGICAL : MSI_ADDR(rt_cpu_apic_id(target));
	uint32_t data = r->vector | (steer ? MSI_LOWEST : 0);

	if (steer)
		rt_on_each_cpu(set_ldr, NULL);
	if (!strcmp(mode, "intx")) {
		rt_ioapic_route(d->irq, r->vector | RT_IOAPIC_LEVEL,
				(uint8_t)rt_cpu_apic_id(target));
	} else if (!strcmp(mode, "msi")) {
		td_msi(d, address, data, true);
	} else {
		td_msix_ctrl(d, MSIX_ENABLE | MSIX_MASKALL);
		td_msix_entry(d, 0, address, data, false);
		td_msix_ctrl(d, MSIX_ENABLE);
	}
	td_write(d, TD_METHOD, !strcmp(mode, "signal") ? METHOD_SIGNAL_MSI : 0);
	td_write(d, TD_VECTOR, 0);
}

int main(void)
{
	const char *mode = rt_arg("mode") ? rt_arg("mode") : "msix";
	const char *wait = rt_arg("wait") ? rt_arg("wait") : "spin";
	bool steer = rt_arg_u64("steer", 0);
	unsigned target = (unsigned)rt_arg_u64("cpu", 0), ncpu = rt_cpu_count();
	uint32_t period = (uint32_t)rt_arg_u64("period_us", 1000);
	uint64_t seconds = rt_arg_u64("seconds", 60), start, elapsed, total = 0;
	struct run *r = rt_alloc(sizeof(*r), RT_CACHE_LINE);
	uint64_t *all;
	struct rt_summary sum = { 0 };
	char per_cpu[256];
	size_t pos = 0;
	bool tsc_ok;
	uint32_t raised0;

	r->count = (uint32_t)rt_arg_u64("count", 2000);
	r->spin = strcmp(wait, "halt") != 0;
	r->level = !strcmp(mode, "intx");
	r->vector = r->level ? VEC_LEVEL_MEASURE : VEC_MEASURE;
	if (!testdev_open(&r->dev, 0)) {
		rt_printf("irqlat: no lockstep testdev (\"devices\": [{\"type\": \"testdev\"}])\n");
		return RT_EXIT_ERROR;
	}
	if (target >= ncpu || (steer && (r->level || ncpu > 8)) || !r->count || !period ||
	    (strcmp(mode, "msix") && strcmp(mode, "msi") && strcmp(mode, "intx") &&
	     strcmp(mode, "signal"))) {
		rt_printf("irqlat: bad arguments\n");
		return RT_EXIT_ERROR;
	}
	r->host_offset = host_tsc_offset(&r->dev);
	tsc_ok = ring0_tsc_ok();
	for (unsigned c = 0; c < ncpu; c++)
		r->lat[c] = rt_alloc(r->count * sizeof(uint64_t), RT_CACHE_LINE);
	program(r, mode, steer, target);
	raised0 = td_read(&r->dev, TD_RAISED);
	td_write(&r->dev, TD_ACK, raised0);
	start = rt_rdtsc();
	r->deadline = start + rt_ns_to_cycles(seconds * 1000000000ull);
	for (unsigned c = 1; c < ncpu; c++)
		rt_post(c, receive, r);
	td_write(&r->dev, TD_PERIOD_US, period);
	receive(r);
	td_write(&r->dev, TD_PERIOD_US, 0);
	elapsed = rt_rdtsc() - start;
	for (unsigned c = 1; c < ncpu; c++)
		rt_wait_done(c);

	for (unsigned c = 0; c < ncpu; c++) {
		total += r->n[c];
		pos += rt_snprintf(per_cpu + pos, sizeof(per_cpu) - pos, "%s%u", c ? "," : "",
				   r->n[c]);
	}
	all = rt_alloc((total ? total : 1) * sizeof(uint64_t), RT_CACHE_LINE);
	for (unsigned c = 0, k = 0; c < ncpu; c++)
		for (uint32_t i = 0; i < r->n[c]; i++)
			all[k++] = r->lat[c][i];
	if (total)
		rt_summarize(all, total, &sum);
	rt_printf("result: program=irqlat mode=%s target=%s wait=%s period_us=%u delivered=%u "
		  "raised=%u coalesced=%u stale=%u rate_per_s=%lu lat_ns_p50=%lu lat_ns_p99=%lu "
		  "lat_ns_max=%lu lat_ns_min=%lu per_cpu=%s tsc_host_offset=%ld tsc_ring0_ok=%d "
		  "ok=%d\n",
		  mode, steer ? "steer" : "fixed", wait, period, r->delivered,
		  td_read(&r->dev, TD_RAISED) - raised0, r->coalesced, r->stale,
		  elapsed ? (uint64_t)r->delivered * 1000000000ul / rt_cycles_to_ns(elapsed) : 0,
		  rt_cycles_to_ns(sum.median), rt_cycles_to_ns(sum.p99), rt_cycles_to_ns(sum.max),
		  rt_cycles_to_ns(sum.min), per_cpu, r->host_offset, tsc_ok, total > 0);
	return total > 0 ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
