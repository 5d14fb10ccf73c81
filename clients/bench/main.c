/*
 * lockstep-bench: lockstep's benchmark runner.  `lockstep-bench SUBCOMMAND [options]` runs
 * one benchmark; each lives in a file of its own and registers here in `subcommands`.
 * Also the helpers every benchmark shares (samples, percentiles, output), declared in
 * bench.h.
 *
 *   lockstep-bench api --socket S --method vm.list|vm.info --clients N --seconds S [--json]
 *   lockstep-bench start-latency --socket S --kernel K [--runs N] [--json]
 *   lockstep-bench matrix [--socket S | --spawn] [--preset quick|full] ... (matrix.c)
 *   lockstep-bench wake [--rounds N] [--json]                                 (wake.c)
 *   lockstep-bench irq [--socket S] [--scenarios floor,gang,wide] ...          (irq.c)
 *   lockstep-bench sandbox [--reps N] [--kicks N] [--json]                 (sandbox.c)
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/bench/bench.h"

static const struct {
	const char *name;
	bench_fn fn;
	const char *summary;
} subcommands[] = {
	{ "api", bench_api, "JSON-RPC throughput and latency of one method, N clients at once" },
	{ "start-latency", bench_start_latency,
	  "time from vm.start to the guest's first serial byte" },
	{ "matrix", bench_matrix,
	  "workloads x policies x overcommit, scored against the fair-share bound" },
	{ "wake", bench_wake, "eventfd wake-up between two host threads (pv KICK's yardstick)" },
	{ "irq", bench_irq,
	  "device interrupt latency and rate; steering on vs off at 2x overcommit" },
	{ "sandbox", bench_sandbox,
	  "the worker sandbox's cost: doorbell, kick, start (--sandbox vs --no-sandbox)" },
};

#define NR_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	fputs("usage: lockstep-bench SUBCOMMAND [options]   (SUBCOMMAND --help for its options)\n\n",
	      out);
	for (size_t i = 0; i < NR_SUBCOMMANDS; i++)
		fprintf(out, "  %-15s %s\n", subcommands[i].name, subcommands[i].summary);
	fputs("\nExit status: 0 done, 1 the benchmark failed, 2 bad usage, 3 lockstepd "
	      "unreachable.\n",
	      out);
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_samples_add(struct bench_samples *s, uint64_t value)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = value;
	s->sorted = false;
	return 0;
}

int bench_samples_merge(struct bench_samples *to, const struct bench_samples *from)
{
	for (size_t i = 0; i < from->n; i++)
		if (bench_samples_add(to, from->v[i]))
			return -ENOMEM;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench_samples_percentile(struct bench_samples *s, double p)
{
	size_t rank;

	if (!s->n)
		return 0;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
		s->sorted = true;
	}
	/* Nearest rank: the smallest sample with at least p% of the samples at or below it. */
	rank = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	return s->v[rank ? (rank > s->n ? s->n : rank) - 1 : 0];
}

double bench_samples_mean(const struct bench_samples *s)
{
	double sum = 0;

	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	return s->n ? sum / (double)s->n : 0;
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	*s = (struct bench_samples){ 0 };
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

json_t *bench_latency_json(struct bench_samples *s)
{
	return json_pack(
		"{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "min", us(bench_samples_percentile(s, 0)),
		"p50", us(bench_samples_percentile(s, 50)), "p90",
		us(bench_samples_percentile(s, 90)), "p99", us(bench_samples_percentile(s, 99)),
		"p999", us(bench_samples_percentile(s, 99.9)), "max",
		us(bench_samples_percentile(s, 100)), "mean", bench_samples_mean(s) / 1000.0);
}

const char bench_latency_header[] = "   min µs   p50 µs   p90 µs   p99 µs p99.9 µs   max µs";

void bench_latency_row(FILE *out, struct bench_samples *s)
{
	static const double ps[] = { 0, 50, 90, 99, 99.9, 100 };

	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		fprintf(out, " %8.1f", us(bench_samples_percentile(s, ps[i])));
}

void bench_print_json(json_t *doc)
{
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
	json_decref(doc);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? BENCH_EXIT_USAGE : 0;
	}
	for (size_t i = 0; i < NR_SUBCOMMANDS; i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "lockstep-bench: no subcommand \"%s\"\n", argv[1]);
	usage(stderr);
	return BENCH_EXIT_USAGE;
}
