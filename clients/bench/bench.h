/*
 * lockstep-bench: benchmarks as commands, one subcommand per file (clients/bench/<name>.c),
 * dispatched by clients/bench/main.c.  This header is what they share: the subcommand
 * signature, latency sample sets with exact percentiles, and output helpers.  Every
 * subcommand prints a table for people, or with --json one JSON document for scripts.
 *
 * Exit status: 0 done, 1 the benchmark failed (lockstepd refused, a VM did not behave),
 * 2 bad usage, 3 lockstepd unreachable.
 */
#ifndef LOCKSTEP_BENCH_H
#define LOCKSTEP_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum {
	BENCH_EXIT_FAILED = 1,
	BENCH_EXIT_USAGE = 2,
	BENCH_EXIT_UNREACHABLE = 3,
};

/* A subcommand: argv[0] is its name; returns an exit status. */
typedef int (*bench_fn)(int argc, char **argv);

int bench_api(int argc, char **argv);
int bench_start_latency(int argc, char **argv);
int bench_matrix(int argc, char **argv);
int bench_wake(int argc, char **argv);
int bench_irq(int argc, char **argv);
int bench_sandbox(int argc, char **argv);

/* Every sample, kept (a run is bounded by its duration), for exact percentiles. */
struct bench_samples {
	uint64_t *v;
	size_t n, cap;
	bool sorted;
};

int bench_samples_add(struct bench_samples *s, uint64_t value);
/* Appends all of `from` to `to`. */
int bench_samples_merge(struct bench_samples *to, const struct bench_samples *from);
/* Nearest-rank percentile, p in [0, 100]; 0 for an empty set.  Sorts the set. */
uint64_t bench_samples_percentile(struct bench_samples *s, double p);
double bench_samples_mean(const struct bench_samples *s);
void bench_samples_free(struct bench_samples *s);

/* {"min","p50","p90","p99","p999","max","mean"} of a set of nanosecond samples, in µs. */
json_t *bench_latency_json(struct bench_samples *s);
/* The same as one table row: "min p50 p90 p99 p99.9 max" in µs, right-aligned. */
void bench_latency_row(FILE *out, struct bench_samples *s);
extern const char bench_latency_header[];

uint64_t bench_now_ns(void);
void bench_print_json(json_t *doc); /* steals doc */

#endif /* LOCKSTEP_BENCH_H */
