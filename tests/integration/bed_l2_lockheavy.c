/*
 * A lock-heavy static program for the test bed's L2 Linux guests: THREADS threads, pinned
 * round-robin to the online CPUs, each duplicating and closing a file descriptor in a loop
 * for SECONDS.  Both take the process's file-table spinlock (files->file_lock), so the
 * threads contend on one kernel spinlock: under vCPU overcommit its holder is preempted, and
 * a guest with KVM's pv spinlocks halts its waiters and kicks them (KVM_HC_KICK_CPU) -- what
 * lockstep's per-vCPU statistics are to show.  Prints one line:
 *
 *   lockheavy: threads=N cpus=M seconds=S ops=X ops_per_s=Y
 *
 * usage: lockheavy THREADS SECONDS
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct worker {
	pthread_t thread;
	int cpu, fd;
	unsigned long long ops;
};

static atomic_int stop;

static void *work(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int fd = dup(w->fd);

		if (fd >= 0)
			close(fd);
		w->ops++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct timespec t0, t1;
	unsigned long long ops = 0;
	struct worker *w;
	double secs;
	int n, seconds, fd;

	if (argc != 3 || (n = atoi(argv[1])) < 1 || (seconds = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: lockheavy THREADS SECONDS\n");
		return 2;
	}
	fd = open("/dev/null", O_RDONLY);
	w = calloc((size_t)n, sizeof(*w));
	if (fd < 0 || !w || cpus < 1) {
		perror("lockheavy");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		w[i].cpu = (int)(i % cpus);
		w[i].fd = fd;
		if (pthread_create(&w[i].thread, NULL, work, &w[i])) {
			perror("lockheavy: pthread_create");
			return 1;
		}
	}
	sleep((unsigned)seconds);
	atomic_store(&stop, 1);
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		ops += w[i].ops;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("lockheavy: threads=%d cpus=%ld seconds=%.2f ops=%llu ops_per_s=%.0f\n", n, cpus,
	       secs, ops, (double)ops / secs);
	return 0;
}
