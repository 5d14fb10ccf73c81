/*
 * switchbench: what one vCPU switch costs under lockstep's multiplexer, measured from inside
 * the guest: from the moment a vCPU asks to give its host CPU to another (a doorbell call,
 * as at a release point) until that other vCPU runs guest code again -- the exit, the host's
 * hand-over and the other vCPU's return into the guest, S in lockstep-bench's bounds.
 *
 * Meant for more vCPUs than host CPUs under policy mux (lockstep-bench runs 2 vCPUs on one
 * host CPU).  The vCPUs pass a baton around `passes=` times (default 2000): the holder stamps
 * the time, hands the baton to the next vCPU and YIELD_TOs it; a vCPU without the baton
 * YIELD_TOs its holder.  The next vCPU, once it runs and finds the baton, takes the time
 * since the stamp as one sample.  Where vCPUs run at once (no multiplexer) the baton passes
 * without switches and the samples are tiny: the figure means something only under mux.
 *
 *   result: program=switchbench cpus=N passes=P samples=S switch_ns_median=M switch_ns_mean=A
 *           switch_ns_p99=Q ok=1
 *
 * ok=0 (exit 1) without lockstep's scheduling feature (LKS_FEATURE_SCHED) or if a call failed.
 */
#include "guest/guest.h"
#include "guest/programs/bench.h"

#define NS_PER_MS 1000000ul

struct switchbench {
	unsigned cpus;
	uint64_t passes;
	struct bench_start start;
	volatile uint32_t baton __attribute__((aligned(RT_CACHE_LINE)));
	volatile uint64_t stamp;  /* when the baton was handed on */
	volatile uint64_t passed; /* hand-overs so far */
	volatile uint32_t errors;
	uint64_t *samples; /* one per hand-over, by the receiver */
};

static void yield_to(struct switchbench *bench, unsigned cpu)
{
	if (rt_lockstep_call(LKS_CALL_YIELD_TO, rt_cpu_apic_id(cpu), 0, 0) != 0)
		__atomic_add_fetch(&bench->errors, 1, __ATOMIC_RELAXED);
}

static void run(void *arg)
{
	struct switchbench *bench = arg;
	unsigned self = rt_cpu_index(), next = (self + 1) % bench->cpus;
	bool receiving = false;

	bench_start_wait(&bench->start);
	while (__atomic_load_n(&bench->passed, __ATOMIC_ACQUIRE) < bench->passes) {
		uint32_t holder = __atomic_load_n(&bench->baton, __ATOMIC_ACQUIRE);
		uint64_t n;

		if (holder != self) {
			/* Whoever has the baton cannot run while we do: give it our CPU. */
			yield_to(bench, holder);
			receiving = true;
			continue;
		}
		n = bench->passed;
		if (receiving && n)
			bench->samples[n - 1] = rt_rdtsc_ordered() - bench->stamp;
		receiving = false;
		bench->stamp = rt_rdtsc_ordered();
		__atomic_store_n(&bench->passed, n + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&bench->baton, next, __ATOMIC_RELEASE);
		yield_to(bench, next);
		receiving = true; /* back: the baton went round (or nobody switched) */
	}
}

int main(void)
{
	struct switchbench *bench = rt_alloc(sizeof(*bench), RT_CACHE_LINE);
	const struct rt_lockstep *ls = rt_lockstep();
	struct rt_summary s = { 0 };
	uint64_t count = 0;
	bool ok;

	bench->cpus = rt_cpu_count();
	bench->passes = rt_arg_u64("passes", 2000);
	if (!ls->present || !(ls->features & LKS_FEATURE_SCHED) || bench->cpus < 2 ||
	    !bench->passes) {
		rt_printf("switchbench: needs lockstep's multiplexer (LKS_FEATURE_SCHED) and 2 "
			  "CPUs\n");
		rt_printf("result: program=switchbench cpus=%u passes=0 samples=0 ok=0\n",
			  bench->cpus);
		return RT_EXIT_FAIL;
	}
	bench->samples = rt_alloc(bench->passes * sizeof(uint64_t), RT_CACHE_LINE);
	bench_start_init(&bench->start, bench->cpus, 0);
	rt_on_each_cpu(run, bench);
	/* Samples left 0 were hand-overs to a vCPU that was running anyway. */
	for (uint64_t i = 0; i < bench->passes; i++)
		if (bench->samples[i])
			bench->samples[count++] = rt_cycles_to_ns(bench->samples[i]);
	if (count)
		rt_summarize(bench->samples, count, &s);
	ok = !bench->errors && count > 0;
	rt_printf("result: program=switchbench cpus=%u passes=%lu samples=%lu switch_ns_median=%lu "
		  "switch_ns_mean=%lu switch_ns_p99=%lu errors=%u ok=%d\n",
		  bench->cpus, bench->passes, count, s.median, s.mean, s.p99, bench->errors, ok);
	return ok ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
