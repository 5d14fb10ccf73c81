/*
 * lockstep-bench wake: how long a plain eventfd wake takes between two host threads, the
 * yardstick for lockstep's pv KICK (a guest vCPU asleep in WAIT woken through the same kind
 * of eventfd, by an ioeventfd).  Two threads ping-pong over a pair of eventfds, each blocking
 * in read(); one wake-up is half a round trip.  Measured with both threads on one CPU and on
 * two different CPUs.
 *
 *   lockstep-bench wake [--rounds N] [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clients/bench/bench.h"
#include "util/util.h"

struct pingpong {
	int ping, pong; /* eventfds */
	int cpu;	/* where the partner runs */
	uint64_t rounds;
};

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *partner(void *arg)
{
	struct pingpong *p = arg;
	uint64_t v;

	pin(p->cpu);
	for (uint64_t i = 0; i < p->rounds; i++) {
		if (read(p->ping, &v, sizeof(v)) != sizeof(v))
			break;
		v = 1;
		if (write(p->pong, &v, sizeof(v)) != sizeof(v))
			break;
	}
	return NULL;
}

/* One-way wake-up times in ns (half of each round trip), both threads pinned. */
static int measure(int cpu_a, int cpu_b, uint64_t rounds, struct bench_samples *out)
{
	struct pingpong p = { .cpu = cpu_b, .rounds = rounds };
	pthread_t t;
	uint64_t v = 1;
	int ret = 0;

	p.ping = eventfd(0, EFD_CLOEXEC);
	p.pong = eventfd(0, EFD_CLOEXEC);
	if (p.ping < 0 || p.pong < 0 || pthread_create(&t, NULL, partner, &p)) {
		ret = -errno;
		goto out;
	}
	pin(cpu_a);
	for (uint64_t i = 0; i < rounds && !ret; i++) {
		uint64_t t0 = bench_now_ns();

		if (write(p.ping, &v, sizeof(v)) != sizeof(v) ||
		    read(p.pong, &v, sizeof(v)) != sizeof(v))
			ret = -EIO;
		else if (i >= rounds / 10) /* the first tenth warms up */
			bench_samples_add(out, (bench_now_ns() - t0) / 2);
	}
	pthread_join(t, NULL);
out:
	if (p.ping >= 0)
		close(p.ping);
	if (p.pong >= 0)
		close(p.pong);
	return ret;
}

int bench_wake(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct bench_samples same = { 0 }, cross = { 0 };
	uint64_t rounds = 20000;
	bool json = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'r' && !util_parse_u64(optarg, 100, 10000000, &rounds))
			continue;
		if (opt == 'j') {
			json = true;
			continue;
		}
		fputs("usage: lockstep-bench wake [--rounds N] [--json]\n",
		      opt == 'h' ? stdout : stderr);
		return opt == 'h' ? 0 : 2;
	}
	ret = measure(0, 0, rounds, &same);
	if (!ret && cpus > 1)
		ret = measure(0, 1, rounds, &cross);
	if (ret) {
		fprintf(stderr, "lockstep-bench wake: %s\n", strerror(-ret));
		goto out;
	}
	if (json) {
		bench_print_json(json_pack("{s:s, s:I, s:o, s:o}", "benchmark", "wake", "rounds",
					   (json_int_t)rounds, "same_cpu",
					   bench_latency_json(&same), "cross_cpu",
					   cross.n ? bench_latency_json(&cross) : json_null()));
	} else {
		printf("eventfd wake between two host threads (one way, us)\n%-10s %s\n", "",
		       bench_latency_header);
		printf("%-10s ", "same CPU");
		bench_latency_row(stdout, &same);
		putchar('\n');
		if (cross.n) {
			printf("%-10s ", "two CPUs");
			bench_latency_row(stdout, &cross);
			putchar('\n');
		}
	}
out:
	bench_samples_free(&same);
	bench_samples_free(&cross);
	return ret ? 1 : 0;
}
