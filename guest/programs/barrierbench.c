/*
 * barrierbench: rounds per second of a barrier that every CPU meets after `work=` cycles.
 *
 * Every CPU loops { work; count its arrival; barrier; check the round }.  CPU 0 decides when
 * to stop: once past the deadline it names the current round as the last one before it
 * arrives, so every CPU reads the same decision after that round's barrier and all leave
 * together (a CPU that left a round early would strand the others at the next barrier).
 *
 * The check: each CPU adds 1 to a shared arrival count before each barrier, so after the
 * barrier of round r (from 0) the count must be at least (r + 1) * N -- everyone arrived --
 * and below (r + 2) * N -- nobody got past the next barrier.  Every CPU checks that every
 * round, and all must end with the same number of rounds.
 *
 *   mode=plain|pv|published   (default plain; see lockbench)
 *   work=           cycles of work per round on each CPU (default 2000)
 *   duration_ms=    (default 2000)
 *   spin=, backend=runtime, timeout_us=   pv options as in lockbench
 *
 *   cpu N: rounds=... errors=... sleeps=... kicks=...
 *   result: program=barrierbench mode=... cpus=N backend=... rounds=... rounds_per_s=...
 *           errors=0 ok=1
 *
 * Exit 0 iff every round checked out on every CPU.
 */
#include "guest/locks.h"
#include "guest/programs/bench.h"

#define NS_PER_MS 1000000ul
#define NOT_YET UINT64_MAX

struct cpu_result {
	uint64_t rounds;
	uint64_t errors;
	uint64_t end_tsc;
} __attribute__((aligned(RT_CACHE_LINE)));

struct barrierbench {
	enum lk_mode mode;
	unsigned cpus;
	uint64_t work_iterations;
	struct lk_domain *domain;
	struct lk_barrier barrier;
	struct bench_start start;
	volatile uint64_t last_round __attribute__((aligned(RT_CACHE_LINE)));
	volatile uint64_t arrivals __attribute__((aligned(RT_CACHE_LINE)));
	struct cpu_result *cpu;
};

static void run(void *arg)
{
	struct barrierbench *bench = arg;
	unsigned self = rt_cpu_index();
	struct cpu_result *mine = &bench->cpu[self];
	uint64_t n = bench->cpus, errors = 0, round = 0, deadline;

	bench_start_wait(&bench->start);
	deadline = bench->start.deadline_tsc;
	for (;; round++) {
		uint64_t seen;

		bench_work(bench->work_iterations);
		if (self == 0 && bench->last_round == NOT_YET && rt_rdtsc() >= deadline)
			bench->last_round = round;
		__atomic_add_fetch(&bench->arrivals, 1, __ATOMIC_RELAXED);
		lk_barrier_wait(&bench->barrier);
		seen = __atomic_load_n(&bench->arrivals, __ATOMIC_RELAXED);
		if (seen < (round + 1) * n || seen >= (round + 2) * n)
			errors++;
		if (bench->last_round == round)
			break;
	}
	mine->end_tsc = rt_rdtsc();
	mine->rounds = round + 1;
	mine->errors = errors;
}

static bool parse_args(struct barrierbench *bench, struct lk_config *config)
{
	const char *backend = rt_arg("backend");
	int mode;

	if (!bench_parse_mode("barrierbench", &mode))
		return false;
	if (backend && strcmp(backend, "runtime") && strcmp(backend, "auto")) {
		rt_printf("barrierbench: backend=%s: expected runtime or auto\n", backend);
		return false;
	}
	bench->mode = mode;
	config->spin_threshold = rt_arg_u64("spin", LK_DEFAULT_SPIN);
	config->wait_timeout_ns = rt_arg_u64("timeout_us", 0) * 1000;
	config->force_runtime = backend && !strcmp(backend, "runtime");
	return true;
}

/* Prints the per-CPU lines and the result line; returns whether every check passed. */
static bool report(const struct barrierbench *bench)
{
	uint64_t rounds = bench->cpu[0].rounds, errors = 0, end = 0, sleeps = 0, kicks = 0;
	uint64_t switches = 0, yields = 0;
	uint64_t elapsed_ns;
	bool same_rounds = true, ok;

	for (unsigned i = 0; i < bench->cpus; i++) {
		const struct cpu_result *r = &bench->cpu[i];
		struct lk_stats st;

		lk_stats(bench->domain, i, &st);
		errors += r->errors;
		same_rounds &= r->rounds == rounds;
		end = r->end_tsc > end ? r->end_tsc : end;
		sleeps += st.sleeps;
		kicks += st.kicks;
		switches += st.switches;
		yields += st.yields;
		rt_printf("cpu %u: rounds=%lu errors=%lu sleeps=%lu woken=%lu changed=%lu "
			  "timeouts=%lu kicks=%lu switches=%lu yields=%lu\n",
			  i, r->rounds, r->errors, st.sleeps, st.woken, st.changed, st.timeouts,
			  st.kicks, st.switches, st.yields);
	}
	ok = !errors && same_rounds && bench->arrivals == rounds * bench->cpus;
	elapsed_ns = rt_cycles_to_ns(end - bench->start.start_tsc);
	rt_printf("result: program=barrierbench mode=%s cpus=%u backend=%s kick=%s work=%lu "
		  "spin=%u duration_ms=%lu rounds=%lu rounds_per_s=%lu sleeps=%lu kicks=%lu "
		  "switches=%lu yields=%lu errors=%lu same_rounds=%d ok=%d\n",
		  bench_mode_name(bench->mode), bench->cpus,
		  bench->mode == LK_PV ? lk_backend_name(bench->domain) : "none",
		  bench->mode == LK_PV ? lk_kick_method(bench->domain) : "none",
		  rt_arg_u64("work", 2000), lk_spin_threshold(bench->domain),
		  elapsed_ns / NS_PER_MS, rounds,
		  elapsed_ns ? rounds * 1000000000ul / elapsed_ns : 0, sleeps, kicks, switches,
		  yields, errors, same_rounds, ok);
	return ok;
}

int main(void)
{
	struct barrierbench *bench = rt_alloc(sizeof(*bench), RT_CACHE_LINE);
	struct lk_config config = { 0 };

	if (!parse_args(bench, &config))
		return RT_EXIT_ERROR;
	bench->cpus = rt_cpu_count();
	bench->domain = lk_domain_new(&config);
	if (bench->mode == LK_PV)
		rt_printf("barrierbench: pv backend %s (%s), kicks by %s\n",
			  lk_backend_name(bench->domain), lk_backend_reason(bench->domain),
			  lk_kick_method(bench->domain));
	lk_barrier_init(&bench->barrier, bench->domain, bench->mode, bench->cpus);
	bench->work_iterations = bench_iterations_for(rt_arg_u64("work", 2000));
	bench->last_round = NOT_YET;
	bench->cpu = rt_alloc(bench->cpus * sizeof(*bench->cpu), RT_CACHE_LINE);
	bench_start_init(&bench->start, bench->cpus, rt_arg_u64("duration_ms", 2000) * NS_PER_MS);
	rt_on_each_cpu(run, bench);
	return report(bench) ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
