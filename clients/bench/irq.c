/*
 * lockstep-bench irq: device interrupt delivery under lockstepd — latency from the device
 * thread's irqfd write to the guest's handler (irqlat, guest/programs/irqlat.c, with
 * lockstep's testdev raising at a fixed period), and interrupts delivered per second.
 *
 *   lockstep-bench irq [--socket S] [--guest-dir DIR] [--scenarios floor,gang,wide]
 *                      [--wide-policy POLICY] [--period-us N] [--count N] [--json]
 *
 * Scenarios:
 *   floor  one 2-vCPU VM on the host policy, nothing else running: MSI-X, MSI, INTx and
 *          KVM_SIGNAL_MSI to a vCPU spinning at ring 3, and MSI-X to a halted vCPU (the HLT
 *          wake-up floor)
 *   gang   2x overcommit under gang: the measured 2-vCPU VM and a CPU-bound 2-vCPU VM rotate
 *          through gang slices; a redirectable MSI-X (lowest priority, every vCPU), steering
 *          on and then off, in the same run
 *   wide   2x overcommit of one VM: 4 vCPUs on the host's 2 CPUs under a policy that runs
 *          only some of them at a time (--wide-policy, default relaxed), steering on and off
 * Under gang every vCPU of a VM runs in the same slices, so while the VM is descheduled a
 * steered interrupt has nowhere better to go by itself: with steering on, the scheduler
 * brings the VM's slice forward (interrupt boost, sched/gang.c); boosts, the raise -> gates
 * open latency the scheduler measured, and the share of its run the VM's gates were open
 * (fair: 0.5) are printed under each gang run.
 * The target: p99 with steering at least 5x lower than without, in the same run.
 *
 * Every figure comes from a machine that may be busy: the host's load before each run and
 * the CPU time others took during it are printed with it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/bench/bench.h"
#include "clients/bench/matrix.h"
#include "util/util.h"
#include "vmdef/vmdef.h"

#define RUN_TIMEOUT_S 300
#define MAX_RUNS 16

struct irq_opts {
	const char *socket;
	char guest_dir[PATH_MAX];
	const char *scenarios;
	const char *wide_policy;
	unsigned period_us, count;
	unsigned quantum_us; /* the gang VMs' sched.quantum_us; 0: lockstepd's default */
	bool json;
};

/* One VM running irqlat, and what it measured. */
struct irq_run {
	char label[48];
	char policy[16];
	const char *args; /* irqlat's command line */
	int steering;	  /* -1: not relevant */
	unsigned vcpus;
	bool with_load; /* a CPU-bound second VM (gang) */
	/* results */
	bool ok;
	double p50_us, p99_us, max_us, rate;
	uint64_t delivered, raised, coalesced;
	uint64_t to_gated, to_gated_switching, steer_commits;
	/* gang: interrupt boosts (the measured VM's scheduler stats), and the share of its run
	 * its gates were open (the CPU-bound VM beside it all along: fair is 0.5) */
	uint64_t boosts, boost_refused, boost_deferred;
	double boost_wait_p99_us, run_share, boosted_ms;
	double load1, foreign_cpus;
	char reason[256];
	json_t *record;
};

static void usage(FILE *out)
{
	fputs("usage: lockstep-bench irq [--socket PATH] [--guest-dir DIR]\n"
	      "                          [--scenarios floor,gang,wide] [--wide-policy POLICY]\n"
	      "                          [--period-us N] [--count N] [--quantum-us N] [--json]\n"
	      "Device interrupt delivery latency (p50/p99) and rate under lockstepd: the floor\n"
	      "(INTx, MSI, MSI-X, KVM_SIGNAL_MSI, HLT wake-up) and steering on vs off at 2x\n"
	      "overcommit, under gang and with one VM wider than the host.\n"
	      "  --socket PATH      a running lockstepd (default: start one of our own)\n"
	      "  --wide-policy P    the policy of the wide scenario (default relaxed)\n"
	      "  --period-us N      one raise every N us (default 1000)\n"
	      "  --count N          deliveries per run (default 3000)\n"
	      "  --quantum-us N     the gang VMs' slice (sched.quantum_us; default lockstepd's)\n",
	      out);
}

static int parse(struct irq_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "guest-dir", required_argument, NULL, 'g' },
		{ "scenarios", required_argument, NULL, 'c' },
		{ "wide-policy", required_argument, NULL, 'w' },
		{ "period-us", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "quantum-us", required_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *guest_dir = NULL;
	uint64_t v;
	int opt;

	*o = (struct irq_opts){ .scenarios = "floor,gang,wide",
				.wide_policy = "relaxed",
				.period_us = 1000,
				.count = 3000 };
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->socket = optarg;
			break;
		case 'g':
			guest_dir = optarg;
			break;
		case 'c':
			o->scenarios = optarg;
			break;
		case 'w':
			o->wide_policy = optarg;
			break;
		case 'p':
		case 'n':
			if (util_parse_u64(optarg, 1, 1000000, &v)) {
				fprintf(stderr, "lockstep-bench irq: bad --%s %s\n",
					opt == 'p' ? "period-us" : "count", optarg);
				return -EINVAL;
			}
			*(opt == 'p' ? &o->period_us : &o->count) = (unsigned)v;
			break;
		case 'q':
			if (util_parse_u64(optarg, VMDEF_QUANTUM_US_MIN, VMDEF_QUANTUM_US_MAX,
					   &v)) {
				fprintf(stderr, "lockstep-bench irq: bad --quantum-us %s (%u-%u)\n",
					optarg, VMDEF_QUANTUM_US_MIN, VMDEF_QUANTUM_US_MAX);
				return -EINVAL;
			}
			o->quantum_us = (unsigned)v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (!guest_dir) {
		char rel[PATH_MAX];

		if (mx_sibling_path("../guest", rel, sizeof(rel)) || !realpath(rel, o->guest_dir)) {
			fprintf(stderr, "lockstep-bench irq: no guest images beside this program: "
					"give --guest-dir\n");
			return -ENOENT;
		}
	} else if (!realpath(guest_dir, o->guest_dir)) {
		fprintf(stderr, "lockstep-bench irq: %s: %s\n", guest_dir, strerror(errno));
		return -errno;
	}
	return 0;
}

/* A gang VM's definition with --quantum-us, when given. */
static json_t *with_quantum(const struct irq_opts *o, const char *policy, json_t *def)
{
	if (def && o->quantum_us && strcmp(policy, "gang") == 0)
		json_object_set_new(json_object_get(def, "sched"), "quantum_us",
				    json_integer(o->quantum_us));
	return def;
}

static json_t *irqlat_definition(const struct irq_opts *o, const struct irq_run *r,
				 const char *name)
{
	char kernel[PATH_MAX + 16], cmdline[256];

	snprintf(kernel, sizeof(kernel), "%s/irqlat.elf", o->guest_dir);
	snprintf(cmdline, sizeof(cmdline), "%s period_us=%u count=%u seconds=120", r->args,
		 o->period_us, o->count);
	return with_quantum(o, r->policy,
			    json_pack("{s:s, s:i, s:s, s:s, s:s, s:{s:s}, s:{s:b}, s:[{s:s}]}",
				      "name", name, "vcpus", (int)r->vcpus, "memory", "64M",
				      "kernel", kernel, "cmdline", cmdline, "sched", "policy",
				      r->policy, "irq", "steering", r->steering != 0, "devices",
				      "type", "testdev"));
}

/* The CPU-bound companion of the gang scenario: a plain ticket lock, stopped when irqlat is. */
static json_t *load_definition(const struct irq_opts *o, const char *name, unsigned ms)
{
	char kernel[PATH_MAX + 16], cmdline[128];

	snprintf(kernel, sizeof(kernel), "%s/lockbench.elf", o->guest_dir);
	snprintf(cmdline, sizeof(cmdline), "lock=ticket mode=plain duration_ms=%u", ms);
	return with_quantum(o, "gang",
			    json_pack("{s:s, s:i, s:s, s:s, s:s, s:{s:s}}", "name", name, "vcpus",
				      2, "memory", "64M", "kernel", kernel, "cmdline", cmdline,
				      "sched", "policy", "gang"));
}

/* "key=value" of the last result line of `console`. */
static double result_value(const char *console, const char *key)
{
	const char *line = NULL, *p = console;
	char pat[64];

	while (p && (p = strstr(p, "result: program=irqlat"))) {
		line = p;
		p++;
	}
	if (!line)
		return -1;
	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	if (!p || (strchr(line, '\n') && p > strchr(line, '\n')))
		return -1;
	return strtod(p + strlen(pat), NULL);
}

static void read_irq_report(struct irq_run *r, json_t *info)
{
	json_t *irq =
		json_object_get(json_object_get(json_object_get(info, "last_run"), "stats"), "irq");
	json_t *route;
	size_t i;

	r->steer_commits =
		json_integer_value(json_object_get(json_object_get(irq, "steer"), "commits"));
	json_array_foreach(json_object_get(irq, "routes"), i, route) {
		json_t *g = json_object_get(route, "to_gated");

		r->to_gated += json_integer_value(json_object_get(g, "total"));
		r->to_gated_switching += json_integer_value(json_object_get(g, "switching"));
	}
}

static void read_boost_report(struct irq_run *r, json_t *info)
{
	json_t *sched = json_object_get(json_object_get(info, "last_run"), "sched");
	json_t *b = json_object_get(sched, "irq_boost");
	double run = json_number_value(json_object_get(b, "slice_ms"));
	double watched = json_number_value(json_object_get(sched, "watched_ms"));

	r->boosts = json_integer_value(json_object_get(b, "granted"));
	r->boost_refused = json_integer_value(json_object_get(b, "refused"));
	r->boost_deferred = json_integer_value(json_object_get(b, "deferred"));
	r->boost_wait_p99_us =
		json_number_value(json_object_get(json_object_get(b, "wait"), "us_p99"));
	r->run_share = watched > 0 ? run / watched : 0;
	r->boosted_ms = json_number_value(json_object_get(b, "boosted_ms"));
}

static void run_one(struct mx_lockstep *ls, const struct irq_opts *o, struct irq_run *r)
{
	json_t *defs[2], *records[2] = { NULL, NULL };
	struct mx_cpu_clock before, after;
	struct mx_host_sample sample;
	char name[2][64];
	unsigned n = 1;
	const char *console;
	int ret;

	snprintf(name[0], sizeof(name[0]), "lsb%d-irq", (int)getpid());
	snprintf(name[1], sizeof(name[1]), "lsb%d-irq-load", (int)getpid());
	defs[0] = irqlat_definition(o, r, name[0]);
	if (r->with_load)
		defs[n++] = load_definition(o, name[1], RUN_TIMEOUT_S * 1000);
	r->load1 = mx_load1();
	mx_cpu_clock_read(&before, mx_lockstep_daemon_pid(ls));
	ret = mx_lockstep_run_definitions(ls, defs, n, 1, RUN_TIMEOUT_S, records, r->reason,
					  sizeof(r->reason));
	mx_cpu_clock_read(&after, mx_lockstep_daemon_pid(ls));
	mx_cpu_clock_diff(&before, &after, &sample);
	r->foreign_cpus = sample.elapsed_s > 0 ? sample.foreign_s / sample.elapsed_s : 0;
	for (unsigned i = 0; i < n; i++)
		json_decref(defs[i]);
	console = json_string_value(json_object_get(records[0], "console"));
	if (!ret && console && result_value(console, "ok") == 1) {
		r->ok = true;
		r->p50_us = result_value(console, "lat_ns_p50") / 1e3;
		r->p99_us = result_value(console, "lat_ns_p99") / 1e3;
		r->max_us = result_value(console, "lat_ns_max") / 1e3;
		r->rate = result_value(console, "rate_per_s");
		r->delivered = (uint64_t)result_value(console, "delivered");
		r->raised = (uint64_t)result_value(console, "raised");
		r->coalesced = (uint64_t)result_value(console, "coalesced");
		read_irq_report(r, json_object_get(records[0], "info"));
		if (r->with_load)
			read_boost_report(r, json_object_get(records[0], "info"));
	} else if (!r->reason[0]) {
		snprintf(r->reason, sizeof(r->reason), "irqlat did not finish (see the console)");
	}
	r->record = json_pack(
		"{s:s, s:s, s:s, s:i, s:b, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:I, "
		"s:I, s:I, s:f, s:f, s:s, s:O*, s:I, s:I, s:I, s:f, s:f, s:f}",
		"label", r->label, "policy", r->policy, "args", r->args, "steering", r->steering,
		"ok", r->ok, "p50_us", r->p50_us, "p99_us", r->p99_us, "max_us", r->max_us,
		"rate_per_s", r->rate, "delivered", (json_int_t)r->delivered, "raised",
		(json_int_t)r->raised, "coalesced", (json_int_t)r->coalesced, "to_gated",
		(json_int_t)r->to_gated, "to_gated_switching", (json_int_t)r->to_gated_switching,
		"steer_commits", (json_int_t)r->steer_commits, "host_load1", r->load1,
		"foreign_cpus", r->foreign_cpus, "reason", r->reason, "console",
		json_object_get(records[0], "console"), "boosts", (json_int_t)r->boosts,
		"boost_refused", (json_int_t)r->boost_refused, "boost_deferred",
		(json_int_t)r->boost_deferred, "boost_wait_p99_us", r->boost_wait_p99_us,
		"run_share", r->run_share, "boosted_ms", r->boosted_ms);
	for (unsigned i = 0; i < n; i++)
		json_decref(records[i]);
}

static unsigned plan(const struct irq_opts *o, struct irq_run *runs)
{
	static const struct {
		const char *label, *args;
	} floor_runs[] = {
		{ "floor msix", "mode=msix cpu=1" },
		{ "floor msi", "mode=msi cpu=1" },
		{ "floor intx", "mode=intx cpu=0" },
		{ "floor signal_msi", "mode=signal cpu=1" },
		{ "floor msix halted", "mode=msix cpu=1 wait=halt" },
	};
	unsigned n = 0;

	if (strstr(o->scenarios, "floor"))
		for (size_t i = 0; i < sizeof(floor_runs) / sizeof(floor_runs[0]); i++)
			runs[n++] = (struct irq_run){ .args = floor_runs[i].args,
						      .steering = -1,
						      .vcpus = 2,
						      .policy = "host" };
	for (unsigned i = 0; i < n; i++)
		snprintf(runs[i].label, sizeof(runs[i].label), "%s", floor_runs[i].label);
	for (int s = 1; s >= 0 && strstr(o->scenarios, "gang"); s--) {
		runs[n] = (struct irq_run){ .args = "mode=msix steer=1",
					    .steering = s,
					    .vcpus = 2,
					    .with_load = true,
					    .policy = "gang" };
		snprintf(runs[n++].label, sizeof(runs[0].label), "gang 2x steering %s",
			 s ? "on" : "off");
	}
	for (int s = 1; s >= 0 && strstr(o->scenarios, "wide"); s--) {
		runs[n] =
			(struct irq_run){ .args = "mode=msix steer=1", .steering = s, .vcpus = 4 };
		util_strlcpy(runs[n].policy, o->wide_policy, sizeof(runs[n].policy));
		snprintf(runs[n++].label, sizeof(runs[0].label), "wide 4/2 steering %s",
			 s ? "on" : "off");
	}
	return n;
}

/* p99 without steering over p99 with it, for the scenario whose runs start with `prefix`. */
static json_t *ratio(const struct irq_run *runs, unsigned n, const char *prefix, FILE *out)
{
	const struct irq_run *on = NULL, *off = NULL;
	double r;

	for (unsigned i = 0; i < n; i++) {
		if (strncmp(runs[i].label, prefix, strlen(prefix)) || !runs[i].ok)
			continue;
		if (runs[i].steering == 1)
			on = &runs[i];
		else if (runs[i].steering == 0)
			off = &runs[i];
	}
	if (!on || !off || on->p99_us <= 0)
		return json_null();
	r = off->p99_us / on->p99_us;
	if (out)
		fprintf(out, "%s: p99 without steering / with steering = %.2f (target >= 5: %s)\n",
			prefix, r, r >= 5 ? "met" : "not met");
	return json_real(r);
}

int bench_irq(int argc, char **argv)
{
	struct mx_options mo = { 0 };
	struct irq_run runs[MAX_RUNS];
	struct mx_lockstep *ls;
	struct irq_opts o;
	char err[512] = "";
	json_t *list;
	unsigned n;
	int ret, failed = 0;

	if (parse(&o, argc, argv))
		return BENCH_EXIT_USAGE;
	mo.socket = o.socket;
	mo.guest_dir = o.guest_dir;
	mo.memory = "64M";
	mo.force = true;
	ret = mx_lockstep_open(&mo, "/tmp", &ls, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "lockstep-bench irq: %s\n", err);
		return o.socket ? BENCH_EXIT_UNREACHABLE : BENCH_EXIT_FAILED;
	}
	n = plan(&o, runs);
	if (!o.json)
		printf("%-22s %-8s %9s %8s %9s %9s %9s %8s %6s %6s\n", "run", "policy", "delivered",
		       "rate/s", "p50 us", "p99 us", "max us", "to_gated", "load1", "others");
	list = json_array();
	for (unsigned i = 0; i < n; i++) {
		run_one(ls, &o, &runs[i]);
		failed += !runs[i].ok;
		json_array_append_new(list, runs[i].record);
		if (o.json)
			continue;
		if (!runs[i].ok) {
			printf("%-22s %-8s failed: %s\n", runs[i].label, runs[i].policy,
			       runs[i].reason);
			continue;
		}
		printf("%-22s %-8s %9llu %8.0f %9.1f %9.1f %9.1f %8llu %6.2f %6.2f\n",
		       runs[i].label, runs[i].policy, (unsigned long long)runs[i].delivered,
		       runs[i].rate, runs[i].p50_us, runs[i].p99_us, runs[i].max_us,
		       (unsigned long long)runs[i].to_gated, runs[i].load1, runs[i].foreign_cpus);
		if (runs[i].with_load)
			printf("%-22s boosts %llu (refused %llu, held %llu, %.2f ms each), "
			       "raise->gates open p99 %.1f us, slice share %.3f\n",
			       "", (unsigned long long)runs[i].boosts,
			       (unsigned long long)runs[i].boost_refused,
			       (unsigned long long)runs[i].boost_deferred,
			       runs[i].boosts ? runs[i].boosted_ms / (double)runs[i].boosts : 0.0,
			       runs[i].boost_wait_p99_us, runs[i].run_share);
		fflush(stdout);
	}
	mx_lockstep_close(ls);
	if (o.json)
		bench_print_json(json_pack("{s:o, s:o, s:o, s:i, s:i}", "runs", list, "gang_ratio",
					   ratio(runs, n, "gang", NULL), "wide_ratio",
					   ratio(runs, n, "wide", NULL), "period_us",
					   (int)o.period_us, "count", (int)o.count));
	else {
		json_decref(ratio(runs, n, "gang", stdout));
		json_decref(ratio(runs, n, "wide", stdout));
		json_decref(list);
		printf("load1: the host's load average before the run; others: CPUs' worth of "
		       "time taken by processes other than lockstep's during it\n");
	}
	return failed ? BENCH_EXIT_FAILED : 0;
}
