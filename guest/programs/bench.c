/*
 * Shared pieces of the lock benchmarks (see bench.h): work calibration, the start line, and
 * integer-only statistics.
 */
#include "guest/locks.h"
#include "guest/programs/bench.h"

static const char *const mode_names[] = {
	[LK_PLAIN] = "plain",
	[LK_PV] = "pv",
	[LK_PUBLISHED] = "published",
};

bool bench_parse_mode(const char *program, int *mode)
{
	const char *text = rt_arg("mode");

	*mode = LK_PLAIN;
	if (!text)
		return true;
	for (unsigned i = 0; i < RT_ARRAY_SIZE(mode_names); i++) {
		if (!strcmp(text, mode_names[i])) {
			*mode = i;
			return true;
		}
	}
	rt_printf("%s: mode=%s: expected plain, pv or published\n", program, text);
	return false;
}

const char *bench_mode_name(int mode)
{
	return (unsigned)mode < RT_ARRAY_SIZE(mode_names) ? mode_names[mode] : "?";
}

#define CALIBRATION_ITERATIONS 1000000ull
#define CALIBRATION_RUNS 7

/* The fastest of a few timed runs: a run the host preempted only ever looks slower. */
uint64_t bench_iterations_for(uint64_t cycles)
{
	uint64_t best = UINT64_MAX;

	for (unsigned run = 0; run < CALIBRATION_RUNS; run++) {
		uint64_t start = rt_rdtsc_ordered();

		bench_work(CALIBRATION_ITERATIONS);
		uint64_t took = rt_rdtsc_ordered() - start;

		if (took < best)
			best = took;
	}
	if (!best)
		best = 1;
	return cycles * CALIBRATION_ITERATIONS / best;
}

void bench_start_init(struct bench_start *start, unsigned parties, uint64_t duration_ns)
{
	start->arrived = 0;
	start->go = 0;
	start->parties = parties;
	start->duration_cycles = rt_ns_to_cycles(duration_ns);
}

uint64_t bench_start_wait(struct bench_start *start)
{
	if (__atomic_add_fetch(&start->arrived, 1, __ATOMIC_ACQ_REL) == start->parties) {
		start->start_tsc = rt_rdtsc();
		start->deadline_tsc = start->start_tsc + start->duration_cycles;
		__atomic_store_n(&start->go, 1, __ATOMIC_RELEASE);
		rt_wake(&start->go);
	}
	while (!__atomic_load_n(&start->go, __ATOMIC_ACQUIRE))
		rt_wait_while(&start->go, 0, 0);
	return start->start_tsc;
}

const char *bench_milli(char *buf, size_t size, uint64_t milli)
{
	rt_snprintf(buf, size, "%lu.%03lu", milli / 1000, milli % 1000);
	return buf;
}

/*
 * (sum x)^2 / (n * sum x^2).  The values are scaled to at most 2^16 first so that the
 * squares, times 1000, fit in 64 bits for up to RT_MAX_CPUS values.
 */
uint64_t bench_jain_milli(const uint64_t *values, unsigned n)
{
	uint64_t max = 0, scale, sum = 0, squares = 0;

	for (unsigned i = 0; i < n; i++)
		if (values[i] > max)
			max = values[i];
	if (!max)
		return 0;
	scale = max / 65536 + 1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = values[i] / scale;

		sum += v;
		squares += v * v;
	}
	return squares ? sum * sum * 1000 / (n * squares) : 0;
}

uint64_t bench_min_max_milli(const uint64_t *values, unsigned n)
{
	uint64_t min = UINT64_MAX, max = 0;

	for (unsigned i = 0; i < n; i++) {
		if (values[i] < min)
			min = values[i];
		if (values[i] > max)
			max = values[i];
	}
	return max ? min * 1000 / max : 0;
}
