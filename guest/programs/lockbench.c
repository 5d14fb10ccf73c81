/*
 * lockbench: throughput and fairness of one contended spinlock on every CPU.
 *
 * Every CPU loops { lock; `cs=` cycles of work; shared counter++; unlock; `ncs=` cycles of
 * work } from a common start until a common deadline (`duration_ms=` after the start, checked
 * before each acquisition).  The counter is incremented without atomics, inside the lock, so
 * it equals the sum of the CPUs' acquisitions exactly when the lock excluded properly.
 *
 *   lock=ticket|mcs       (default ticket)
 *   mode=plain|pv|published  (default plain; published spins like plain and publishes in the
 *                         shared page like pv, for the host's preemption detector)
 *   cs=, ncs=             work in TSC cycles (defaults 2000, 2000), as calibrated loop counts
 *   duration_ms=          (default 2000)
 *   spin=                 pv: PAUSEs before sleeping (default LK_DEFAULT_SPIN)
 *   prewake=0|1           pv: kick the next waiter when the lock is taken (default 0)
 *   wake_ahead=N          pv: at release also kick the sleepers N places behind the next
 *                         waiter (default 0)
 *   backend=runtime       pv: use the runtime's HLT/IPI fallback even under lockstep
 *   timeout_us=           pv: bound on one sleep (default none)
 *
 *   cpu N: acq=... share=... mean_wait_ns=... max_wait_us=... sleeps=... kicks=...
 *   result: program=lockbench lock=... mode=... cpus=N backend=... acquisitions=...
 *           acq_per_s=... fairness=<min/max> jain=... max_wait_us=... counter_ok=1
 *
 * Exit 0 iff the counter is exact.
 */
#include "guest/locks.h"
#include "guest/programs/bench.h"

#define NS_PER_MS 1000000ul

struct cpu_result {
	uint64_t acquisitions;
	uint64_t wait_cycles;	  /* total time from lock() called to lock taken */
	uint64_t max_wait_cycles; /* longest single wait */
	uint64_t end_tsc;
} __attribute__((aligned(RT_CACHE_LINE)));

struct lockbench {
	bool mcs;
	enum lk_mode mode;
	uint64_t cs_iterations, ncs_iterations;
	struct lk_domain *domain;
	struct lk_ticket ticket;
	struct lk_mcs mcs_lock;
	struct bench_start start;
	volatile uint64_t counter __attribute__((aligned(RT_CACHE_LINE)));
	struct cpu_result *cpu;
};

static void lock(struct lockbench *bench)
{
	if (bench->mcs)
		lk_mcs_lock(&bench->mcs_lock);
	else
		lk_ticket_lock(&bench->ticket);
}

static void unlock(struct lockbench *bench)
{
	if (bench->mcs)
		lk_mcs_unlock(&bench->mcs_lock);
	else
		lk_ticket_unlock(&bench->ticket);
}

static void run(void *arg)
{
	struct lockbench *bench = arg;
	struct cpu_result *mine = &bench->cpu[rt_cpu_index()];
	uint64_t deadline, acquisitions = 0, total = 0, longest = 0;

	bench_start_wait(&bench->start);
	deadline = bench->start.deadline_tsc;
	for (;;) {
		uint64_t before = rt_rdtsc(), waited;

		if (before >= deadline)
			break;
		lock(bench);
		waited = rt_rdtsc() - before;
		bench_work(bench->cs_iterations);
		bench->counter++;
		unlock(bench);
		acquisitions++;
		total += waited;
		if (waited > longest)
			longest = waited;
		bench_work(bench->ncs_iterations);
	}
	mine->end_tsc = rt_rdtsc();
	mine->acquisitions = acquisitions;
	mine->wait_cycles = total;
	mine->max_wait_cycles = longest;
}

static bool parse_args(struct lockbench *bench, struct lk_config *config)
{
	const char *lock = rt_arg("lock"), *backend = rt_arg("backend");
	int mode;

	if (lock && strcmp(lock, "ticket") && strcmp(lock, "mcs")) {
		rt_printf("lockbench: lock=%s: expected ticket or mcs\n", lock);
		return false;
	}
	if (!bench_parse_mode("lockbench", &mode))
		return false;
	if (backend && strcmp(backend, "runtime") && strcmp(backend, "auto")) {
		rt_printf("lockbench: backend=%s: expected runtime or auto\n", backend);
		return false;
	}
	bench->mcs = lock && !strcmp(lock, "mcs");
	bench->mode = mode;
	config->spin_threshold = rt_arg_u64("spin", LK_DEFAULT_SPIN);
	config->prewake = rt_arg_u64("prewake", 0);
	config->wake_ahead = rt_arg_u64("wake_ahead", 0);
	config->wait_timeout_ns = rt_arg_u64("timeout_us", 0) * 1000;
	config->force_runtime = backend && !strcmp(backend, "runtime");
	return true;
}

/* Whether the host reads the shared page: registered, refused (with the error) or absent. */
static const char *shared_page_state(const struct lk_domain *domain, char *buf, size_t size)
{
	int64_t status = lk_shared_page_status(domain);

	if (!rt_lockstep()->present)
		return "absent";
	if (status == 0)
		return "registered";
	rt_snprintf(buf, size, "refused(%ld)", status);
	return buf;
}

/* Prints the per-CPU lines and the result line; returns whether the counter is exact. */
static bool report(const struct lockbench *bench, const struct lk_config *config)
{
	unsigned cpus = rt_cpu_count();
	uint64_t acq[RT_MAX_CPUS], sum = 0, longest = 0, end = 0, elapsed_ns, sleeps = 0, kicks = 0;
	uint64_t switches = 0, early = 0;
	char fairness[24], jain[24], shared[24];

	for (unsigned i = 0; i < cpus; i++) {
		const struct cpu_result *r = &bench->cpu[i];
		struct lk_stats st;

		lk_stats(bench->domain, i, &st);
		acq[i] = r->acquisitions;
		sum += r->acquisitions;
		longest = r->max_wait_cycles > longest ? r->max_wait_cycles : longest;
		end = r->end_tsc > end ? r->end_tsc : end;
		sleeps += st.sleeps;
		kicks += st.kicks;
		switches += st.switches;
		early += st.early_sleeps;
		rt_printf("cpu %u: acq=%lu mean_wait_ns=%lu max_wait_us=%lu sleeps=%lu woken=%lu "
			  "changed=%lu timeouts=%lu errors=%lu kicks=%lu prewakes=%lu switches=%lu "
			  "early_sleeps=%lu\n",
			  i, r->acquisitions,
			  r->acquisitions ? rt_cycles_to_ns(r->wait_cycles / r->acquisitions) : 0,
			  rt_cycles_to_ns(r->max_wait_cycles) / 1000, st.sleeps, st.woken,
			  st.changed, st.timeouts, st.errors, st.kicks, st.prewakes, st.switches,
			  st.early_sleeps);
	}
	elapsed_ns = rt_cycles_to_ns(end - bench->start.start_tsc);
	rt_printf(
		"result: program=lockbench lock=%s mode=%s cpus=%u backend=%s kick=%s "
		"shared=%s cs=%lu ncs=%lu spin=%u prewake=%d wake_ahead=%u duration_ms=%lu acquisitions=%lu "
		"acq_per_s=%lu fairness=%s jain=%s max_wait_us=%lu sleeps=%lu kicks=%lu "
		"switches=%lu early_sleeps=%lu counter=%lu counter_ok=%d\n",
		bench->mcs ? "mcs" : "ticket", bench_mode_name(bench->mode), cpus,
		bench->mode == LK_PV ? lk_backend_name(bench->domain) : "none",
		bench->mode == LK_PV ? lk_kick_method(bench->domain) : "none",
		shared_page_state(bench->domain, shared, sizeof(shared)), rt_arg_u64("cs", 2000),
		rt_arg_u64("ncs", 2000), lk_spin_threshold(bench->domain), config->prewake,
		config->wake_ahead, elapsed_ns / NS_PER_MS, sum,
		elapsed_ns ? sum * 1000000000ul / elapsed_ns : 0,
		bench_milli(fairness, sizeof(fairness), bench_min_max_milli(acq, cpus)),
		bench_milli(jain, sizeof(jain), bench_jain_milli(acq, cpus)),
		rt_cycles_to_ns(longest) / 1000, sleeps, kicks, switches, early, bench->counter,
		bench->counter == sum);
	return bench->counter == sum;
}

int main(void)
{
	struct lockbench *bench = rt_alloc(sizeof(*bench), RT_CACHE_LINE);
	struct lk_config config = { 0 };
	unsigned cpus = rt_cpu_count();
	char shared[24];

	if (!parse_args(bench, &config))
		return RT_EXIT_ERROR;
	bench->domain = lk_domain_new(&config);
	if (bench->mode == LK_PV)
		rt_printf("lockbench: pv backend %s (%s), kicks by %s, shared page %s\n",
			  lk_backend_name(bench->domain), lk_backend_reason(bench->domain),
			  lk_kick_method(bench->domain),
			  shared_page_state(bench->domain, shared, sizeof(shared)));
	lk_ticket_init(&bench->ticket, bench->domain, bench->mode);
	lk_mcs_init(&bench->mcs_lock, bench->domain, bench->mode);
	bench->cs_iterations = bench_iterations_for(rt_arg_u64("cs", 2000));
	bench->ncs_iterations = bench_iterations_for(rt_arg_u64("ncs", 2000));
	bench->cpu = rt_alloc(cpus * sizeof(*bench->cpu), RT_CACHE_LINE);
	bench_start_init(&bench->start, cpus, rt_arg_u64("duration_ms", 2000) * NS_PER_MS);
	rt_on_each_cpu(run, bench);
	return report(bench, &config) ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
