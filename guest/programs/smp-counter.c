/*
 * smp-counter: every CPU performs `iterations=` (default 1,000,000) locked increments of one
 * shared 64-bit counter at ring 3, all starting together from a barrier; CPU 0 then checks
 * that the counter holds exactly cpus * iterations.
 *
 *   cpu N: increments=... cycles=...
 *   result: program=smp-counter cpus=N iterations=I expected=E total=T cycles_max=C ok=1
 *
 * Exit 0 when the total is exact, 1 otherwise.
 */
#include "guest/guest.h"

struct per_cpu {
	uint64_t increments;
	uint64_t cycles;
} __attribute__((aligned(RT_CACHE_LINE)));

struct counter_test {
	uint64_t counter __attribute__((aligned(RT_CACHE_LINE)));
	struct rt_barrier start __attribute__((aligned(RT_CACHE_LINE)));
	uint64_t iterations;
	struct per_cpu *cpu;
};

static void count(void *arg)
{
	struct counter_test *test = arg;
	struct per_cpu *mine = &test->cpu[rt_cpu_index()];
	uint64_t n = test->iterations, begin;

	rt_barrier_wait(&test->start);
	begin = rt_rdtsc();
	for (uint64_t i = 0; i < n; i++)
		__asm__ __volatile__("lock incq %0" : "+m"(test->counter));
	mine->cycles = rt_rdtsc() - begin;
	mine->increments = n;
}

int main(void)
{
	unsigned cpus = rt_cpu_count();
	struct counter_test *test = rt_alloc(sizeof(*test), RT_CACHE_LINE);
	uint64_t expected, sum = 0, cycles_max = 0;

	test->iterations = rt_arg_u64("iterations", 1000000);
	test->cpu = rt_alloc(cpus * sizeof(*test->cpu), RT_CACHE_LINE);
	rt_barrier_init(&test->start, cpus);
	rt_on_each_cpu(count, test);

	for (unsigned cpu = 0; cpu < cpus; cpu++) {
		const struct per_cpu *c = &test->cpu[cpu];

		rt_printf("cpu %u: increments=%lu cycles=%lu\n", cpu, c->increments, c->cycles);
		sum += c->increments;
		if (c->cycles > cycles_max)
			cycles_max = c->cycles;
	}
	expected = test->iterations * cpus;
	rt_printf("result: program=smp-counter cpus=%u iterations=%lu expected=%lu total=%lu "
		  "increments=%lu cycles_max=%lu ok=%d\n",
		  cpus, test->iterations, expected, test->counter, sum, cycles_max,
		  test->counter == expected);
	return test->counter == expected ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
