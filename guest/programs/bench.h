/*
 * Helpers the lock benchmarks share (lockbench, barrierbench): calibrated busy work, a
 * start line that releases every CPU at once with a common deadline, and fixed-point
 * formatting (guest code has no floating point).
 */
#ifndef LOCKSTEP_GUEST_PROGRAMS_BENCH_H
#define LOCKSTEP_GUEST_PROGRAMS_BENCH_H

#include "guest/guest.h"

/* Busy work of a fixed number of loop iterations (not of elapsed time: a preempted vCPU
 * still owes its work when it runs again). */
static inline void bench_work(uint64_t iterations)
{
	for (uint64_t i = 0; i < iterations; i++)
		__asm__ __volatile__("");
}

/* Loop iterations that take `cycles` TSC cycles on this machine (calibrated once). */
uint64_t bench_iterations_for(uint64_t cycles);

/*
 * The start line: every CPU calls bench_start_wait(); the last to arrive sets the deadline
 * (now + duration) and releases the others, who sleep meanwhile.  Returns the start TSC.
 */
struct bench_start {
	volatile uint32_t arrived;
	volatile uint32_t go;
	uint64_t start_tsc;
	uint64_t deadline_tsc;
	uint64_t duration_cycles;
	unsigned parties;
};

void bench_start_init(struct bench_start *start, unsigned parties, uint64_t duration_ns);
uint64_t bench_start_wait(struct bench_start *start);

/* mode=plain|pv|published as an enum lk_mode (plain when absent); false if malformed. */
bool bench_parse_mode(const char *program, int *mode);
const char *bench_mode_name(int mode);

/* "0.912" from 912 (thousandths), into buf. */
const char *bench_milli(char *buf, size_t size, uint64_t milli);

/* Jain's fairness index of values[0..n-1] and min/max, in thousandths. */
uint64_t bench_jain_milli(const uint64_t *values, unsigned n);
uint64_t bench_min_max_milli(const uint64_t *values, unsigned n);

#endif /* LOCKSTEP_GUEST_PROGRAMS_BENCH_H */
