/*
 * The machine the figures come from.  Every measurement is bracketed by a reading of the CPU
 * time the whole host spent (/proc/stat) and the time our own processes spent (this one,
 * lockstepd and its workers, QEMU children): the difference is load that was not ours, and
 * it ruins overcommit figures (nice does not help under autogroup), so a measurement that saw
 * some is re-run.  Steal time says what the outer hypervisor took.  A cache-line ping-pong
 * between two CPUs tells the outer hypervisor's fast state from its slow one, which moves
 * every figure by ~15 %.  Also the run's description of the host for results.jsonl.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "clients/bench/matrix.h"
#include "util/util.h"

#define PINGPONG_BATCHES 7
#define PINGPONG_TRIPS 2000
#define PINGPONG_GIVE_UP_NS 500000000ull

/* user nice system idle iowait irq softirq steal, over all CPUs. */
static void read_proc_stat(uint64_t *busy, uint64_t *steal, uint64_t *total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");

	if (f) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			   &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
			memset(v, 0, sizeof(v));
		fclose(f);
	}
	*busy = v[0] + v[1] + v[2] + v[5] + v[6];
	*steal = v[7];
	*total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

/* utime + stime + cutime + cstime of a process (its reaped children included). */
static uint64_t process_ticks(int pid)
{
	struct util_proc_stat st;

	if (util_proc_stat_read(pid, 0, &st))
		return 0;
	return st.utime + st.stime + st.cutime + st.cstime;
}

void mx_cpu_clock_read(struct mx_cpu_clock *c, int daemon_pid)
{
	read_proc_stat(&c->busy, &c->steal, &c->total);
	c->ours = process_ticks(getpid());
	if (daemon_pid > 0)
		c->ours += process_ticks(daemon_pid);
	c->at_ns = util_now_ns();
}

void mx_cpu_clock_diff(const struct mx_cpu_clock *a, const struct mx_cpu_clock *b,
		       struct mx_host_sample *out)
{
	double tick = 1.0 / (double)sysconf(_SC_CLK_TCK);
	double busy = (double)(b->busy - a->busy) * tick, ours = (double)(b->ours - a->ours) * tick;

	out->busy_s = busy;
	out->ours_s = ours;
	/* Per-CPU ticks are sampled and process times exact: allow for a tick either way. */
	out->foreign_s = busy - ours > 2 * tick ? busy - ours - 2 * tick : 0;
	out->steal_s = (double)(b->steal - a->steal) * tick;
	out->elapsed_s = (double)(b->at_ns - a->at_ns) / 1e9;
}

/* ---- cache-line ping-pong ---- */

struct pingpong {
	_Atomic uint64_t word __attribute__((aligned(64)));
	int cpu[2];
	atomic_bool failed;
	uint64_t batch_ns[PINGPONG_BATCHES];
};

static bool pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

/* Waits for the word to reach `want`; false if the partner vanished (preempted for long). */
static bool await(struct pingpong *pp, uint64_t want, uint64_t give_up_ns)
{
	unsigned spins = 0;

	while (atomic_load_explicit(&pp->word, memory_order_acquire) != want) {
		if (++spins % 4096 == 0 &&
		    (atomic_load(&pp->failed) || util_now_ns() > give_up_ns)) {
			atomic_store(&pp->failed, true);
			return false;
		}
	}
	return true;
}

static void *pong(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t give_up = util_now_ns() + PINGPONG_GIVE_UP_NS;

	if (!pin_to(pp->cpu[1]))
		atomic_store(&pp->failed, true);
	for (uint64_t i = 0; i < (uint64_t)PINGPONG_BATCHES * PINGPONG_TRIPS; i++) {
		if (!await(pp, 2 * i + 1, give_up))
			return NULL;
		atomic_store_explicit(&pp->word, 2 * i + 2, memory_order_release);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

double mx_pingpong_ns(void)
{
	struct pingpong *pp = aligned_alloc(64, sizeof(*pp));
	cpu_set_t mine, saved;
	uint64_t give_up, n = 0;
	pthread_t thread;
	double result = -1;
	int found = 0;

	if (!pp)
		return -1;
	memset(pp, 0, sizeof(*pp));
	if (sched_getaffinity(0, sizeof(mine), &mine)) {
		free(pp);
		return -1;
	}
	saved = mine;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
		if (CPU_ISSET(c, &mine))
			pp->cpu[found++] = c;
	if (found < 2 || !pin_to(pp->cpu[0]) || pthread_create(&thread, NULL, pong, pp)) {
		sched_setaffinity(0, sizeof(saved), &saved);
		free(pp);
		return -1;
	}
	give_up = util_now_ns() + PINGPONG_GIVE_UP_NS;
	for (unsigned b = 0; b < PINGPONG_BATCHES && !atomic_load(&pp->failed); b++) {
		uint64_t t0 = util_now_ns();

		for (unsigned i = 0; i < PINGPONG_TRIPS; i++, n++) {
			atomic_store_explicit(&pp->word, 2 * n + 1, memory_order_release);
			if (!await(pp, 2 * n + 2, give_up))
				break;
		}
		pp->batch_ns[b] = util_now_ns() - t0;
	}
	pthread_join(thread, NULL);
	/* Restore the whole mask: vm.start threads and children inherit it. */
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	if (!atomic_load(&pp->failed)) {
		qsort(pp->batch_ns, PINGPONG_BATCHES, sizeof(uint64_t), cmp_u64);
		result = (double)pp->batch_ns[PINGPONG_BATCHES / 2] / PINGPONG_TRIPS;
	}
	free(pp);
	return result;
}

double mx_load1(void)
{
	double load = -1;
	FILE *f = fopen("/proc/loadavg", "re");

	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = -1;
		fclose(f);
	}
	return load;
}

unsigned mx_host_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	return (unsigned)CPU_COUNT(&set);
}

bool mx_wait_idle(unsigned wait_s, unsigned quiet_s, double limit, int daemon_pid, bool verbose,
		  double *seen)
{
	uint64_t give_up = util_now_ns() + (uint64_t)wait_s * 1000000000ull;
	unsigned quiet = 0;
	bool said = false;

	for (;;) {
		struct mx_cpu_clock a, b;
		struct mx_host_sample s;
		struct timespec second = { .tv_sec = 1 };

		mx_cpu_clock_read(&a, daemon_pid);
		nanosleep(&second, NULL);
		mx_cpu_clock_read(&b, daemon_pid);
		mx_cpu_clock_diff(&a, &b, &s);
		*seen = s.foreign_s / s.elapsed_s;
		quiet = *seen < limit ? quiet + 1 : 0;
		if (quiet >= quiet_s)
			return true;
		if (util_now_ns() >= give_up)
			return false;
		if (verbose && !quiet && !said) {
			fprintf(stderr,
				"lockstep-bench: the machine is busy (%.2f CPUs of other work); "
				"waiting up to %u s for a quiet spell\n",
				*seen, wait_s);
			said = true;
		}
	}
}

int mx_sibling_path(const char *name, char *buf, size_t size)
{
	return util_exe_relative(name, buf, size);
}

/* The first line of a command's output, or NULL. */
static json_t *command_line(const char *cmd)
{
	char line[512];
	json_t *out = NULL;
	FILE *p = popen(cmd, "r");

	if (!p)
		return NULL;
	if (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			out = json_string(line);
	}
	pclose(p);
	return out;
}

static json_t *cpuinfo_field(const char *field)
{
	char line[512];
	json_t *out = NULL;
	FILE *f = fopen("/proc/cpuinfo", "re");

	while (f && !out && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, field, strlen(field)) == 0 && colon) {
			line[strcspn(line, "\n")] = '\0';
			out = json_string(colon + 2);
		}
	}
	if (f)
		fclose(f);
	return out;
}

/* KVM modules, loaded or built in ("kvm_amd", "kvm_pvm"...): which /dev/kvm this is. */
static json_t *kvm_modules(void)
{
	json_t *list = json_array();
	DIR *dir = opendir("/sys/module");
	struct dirent *d;

	while (dir && (d = readdir(dir)))
		if (strncmp(d->d_name, "kvm", 3) == 0)
			json_array_append_new(list, json_string(d->d_name));
	if (dir)
		closedir(dir);
	return list;
}

json_t *mx_host_json(void)
{
	struct utsname u;
	json_t *host = json_object();

	if (uname(&u) == 0)
		json_object_set_new(host, "kernel",
				    json_pack("{s:s, s:s, s:s}", "release", u.release, "version",
					      u.version, "machine", u.machine));
	json_object_set_new(host, "cpu_model", cpuinfo_field("model name"));
	json_object_set_new(host, "cpu_mhz", cpuinfo_field("cpu MHz"));
	json_object_set_new(host, "cpus", json_integer(mx_host_cpus()));
	json_object_set_new(host, "clk_tck", json_integer(sysconf(_SC_CLK_TCK)));
	json_object_set_new(host, "kvm_modules", kvm_modules());
	json_object_set_new(host, "clocksource",
			    command_line("cat /sys/devices/system/clocksource/clocksource0/"
					 "current_clocksource 2>/dev/null"));
	json_object_set_new(host, "gnuplot", command_line("gnuplot --version 2>/dev/null"));
#ifdef LOCKSTEP_SOURCE_DIR
	json_object_set_new(host, "source_commit",
			    command_line("git -C '" LOCKSTEP_SOURCE_DIR
					 "' describe --always --dirty --abbrev=12 2>/dev/null"));
#endif
	return host;
}
