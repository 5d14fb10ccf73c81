/*
 * lockstep sched show|set|stats: a VM's scheduling policy (the running VM's, with its stored
 * settings where they differ), changing it while the VM runs, and the scheduler's accounting
 * (co-run fraction, sibling skew, gate latency, slices).
 */
#include <string.h>

#include "clients/cli.h"
#include "util/util.h"

static const char *const name_arg[] = { "NAME", NULL };

/* "policy gang, quantum 5000 us, skew bound 2000 us, CPUs 0-1" */
static void print_settings(json_t *s)
{
	printf("policy %s, quantum %lld us, skew bound %lld us", str(s, "policy"),
	       num(s, "quantum_us"), num(s, "skew_us"));
	if (json_object_get(s, "cpus"))
		printf(", CPUs %s", str(s, "cpus"));
}

static void print_pending(json_t *pending)
{
	const char *key;
	json_t *v;
	bool first = true;

	if (!json_object_size(pending))
		return;
	printf("  stored for its next start:");
	json_object_foreach(pending, key, v) {
		printf("%s %s ", first ? "" : ",", key);
		if (json_is_string(v))
			printf("%s", json_string_value(v));
		else if (json_is_integer(v))
			printf("%lld", (long long)json_integer_value(v));
		else
			printf("(none)");
		first = false;
	}
	putchar('\n');
}

static int sched_show(struct cli *cli, int argc, char **argv)
{
	json_t *r;
	int ret;

	if ((ret = parse_args(cli, argc, argv, NULL, 1, 1, name_arg)) < 0)
		return -ret;
	ret = call(cli, "sched.get", json_pack("{s:s}", "name", argv[1]), &r);
	if (ret)
		return ret;
	if (cli->json) {
		print_json(r);
	} else {
		printf("%s: ", str(r, "name"));
		print_settings(r);
		printf("%s\n", json_is_true(json_object_get(r, "scheduled")) ? " (scheduled now)" :
			       json_is_true(json_object_get(r, "running"))   ? " (running)" :
									       " (stored)");
		print_pending(json_object_get(r, "pending"));
	}
	json_decref(r);
	return 0;
}

static int sched_set(struct cli *cli, int argc, char **argv)
{
	const char *quantum = NULL, *skew = NULL;
	bool config = false;
	const struct cli_opt opts[] = { { "quantum", 0, true, &quantum, NULL },
					{ "skew", 0, true, &skew, NULL },
					{ "config", 0, false, NULL, &config },
					{ 0 } };
	static const char *const names[] = { "NAME", "POLICY", NULL };
	json_t *params, *r;
	uint64_t v;
	int n, ret;

	if ((n = parse_args(cli, argc, argv, opts, 1, 2, names)) < 0)
		return -n;
	if (n == 1 && !quantum && !skew)
		return usage_error(cli, "nothing to set: give a POLICY, --quantum or --skew");
	params = json_pack("{s:s, s:b}", "name", argv[1], "config", config);
	if (n == 2)
		json_object_set_new(params, "policy", json_string(argv[2]));
	if (quantum) {
		if (util_parse_u64(quantum, 100, 1000000, &v)) {
			json_decref(params);
			return usage_error(cli, "--quantum takes 100 to 1000000 us, not '%s'",
					   quantum);
		}
		json_object_set_new(params, "quantum_us", json_integer((json_int_t)v));
	}
	if (skew) {
		if (util_parse_u64(skew, 10, 1000000, &v)) {
			json_decref(params);
			return usage_error(cli, "--skew takes 10 to 1000000 us, not '%s'", skew);
		}
		json_object_set_new(params, "skew_us", json_integer((json_int_t)v));
	}
	ret = call(cli, "sched.set", params, &r);
	if (ret)
		return ret;
	if (cli->json) {
		print_json(r);
	} else {
		/* Every value in force, so nothing set is left to guess. */
		printf("%s: ", argv[1]);
		print_settings(json_object_get(r, "sched"));
		printf("%s%s\n", json_is_true(json_object_get(r, "live")) ? " (now)" : "",
		       json_is_true(json_object_get(r, "config")) ? " (stored)" : "");
		print_pending(json_object_get(r, "pending"));
	}
	json_decref(r);
	return 0;
}

/* A multiplexed VM's second line: its slots and the multiplexer's promises. */
static void mux_line(json_t *mux)
{
	if (!json_is_true(json_object_get(mux, "active")))
		return;
	printf("  mux: %lld slots, open max %lld, %lld requests, %lld grace overruns, "
	       "%lld hand-offs (p50 %.0f us), holders stopped early %lld, astray %lld, "
	       "longest ready wait %.1f ms\n",
	       num(mux, "slots"), num(mux, "open_max"), num(mux, "requests"),
	       num(mux, "grace_overruns"), num(mux, "handoffs"),
	       json_real_value(json_object_get(mux, "handoff_us_p50")), num(mux, "out_holding"),
	       num(mux, "handoff_astray"),
	       json_real_value(json_object_get(mux, "ready_max_us")) / 1e3);
}

static int sched_stats(struct cli *cli, int argc, char **argv)
{
	static const char *const names[] = { "NAME", NULL };
	json_t *params, *r, *vm;
	size_t i;
	int n, ret;

	if ((n = parse_args(cli, argc, argv, NULL, 0, 1, names)) < 0)
		return -n;
	params = n ? json_pack("{s:s}", "name", argv[1]) : json_object();
	ret = call(cli, "sched.stats", params, &r);
	if (ret)
		return ret;
	if (cli->json) {
		print_json(r);
		json_decref(r);
		return 0;
	}
	printf("%-16s %-9s %7s %8s %7s %6s %9s %9s %9s\n", "VM", "POLICY", "RUN s", "CO-RUN",
	       "SLICES", "INTER", "SKEW us", "GATE us", "COSTART");
	json_array_foreach(json_object_get(r, "vms"), i, vm) {
		double gate = 0;
		size_t k;
		json_t *v;

		json_array_foreach(json_object_get(vm, "vcpu"), k, v)
			if (json_real_value(json_object_get(v, "gate_latency_us_mean")) > gate)
				gate = json_real_value(json_object_get(v, "gate_latency_us_mean"));
		printf("%-16s %-9s %7.2f %8.3f %7lld %6lld %9.0f %9.0f %9.0f\n", str(vm, "name"),
		       str(vm, "policy"), json_real_value(json_object_get(vm, "run_ms")) / 1e3,
		       json_real_value(json_object_get(vm, "corun_fraction")), num(vm, "slices"),
		       num(vm, "interleaved_slices"),
		       json_real_value(json_object_get(vm, "max_skew_us")), gate,
		       json_real_value(json_object_get(vm, "costart_skew_us_mean")));
		mux_line(json_object_get(vm, "mux"));
	}
	vm = json_object_get(r, "scheduler");
	printf("scheduler: %.2f ms CPU per s, %lld switches, mean switch wait %.0f us\n",
	       json_real_value(json_object_get(vm, "cpu_ms_per_s")), num(vm, "switches"),
	       json_real_value(json_object_get(vm, "switch_wait_us_mean")));
	json_decref(r);
	return 0;
}

const struct command cli_sched_commands[] = {
	{ "sched", "show", "NAME", "a VM's scheduling policy and parameters",
	  "Prints the policy, gang quantum, relaxed skew bound and allowed CPUs the VM runs\n"
	  "with (its stored ones when it does not run), whether the scheduler has it now, and\n"
	  "stored settings that differ from the running ones (they apply at its next start).\n",
	  sched_show },
	{ "sched", "set", "NAME [POLICY] [--quantum US] [--skew US] [--config]",
	  "change a VM's scheduling",
	  "Changes the running VM's scheduling at once (a VM that does not run: its stored\n"
	  "definition) and prints every setting then in force.  POLICY is host, pinned, gang,\n"
	  "relaxed, adaptive or mux (docs/scheduling.md).\n\n"
	  "  --quantum US   gang time slice (100-1000000 us)\n"
	  "  --skew US      relaxed co-stop bound (10-1000000 us)\n"
	  "  --config       also store the change in the definition\n",
	  sched_set },
	{ "sched", "stats", "[NAME]", "co-run, skew, gate latency, slices",
	  "Prints the scheduler's accounting of each scheduled VM (or of NAME, also after its\n"
	  "run ended): run time, co-run fraction, slices, interleaved slices, worst sibling\n"
	  "skew, gate latency, co-start skew, and a multiplexed VM's slots, requests, grace\n"
	  "overruns and hand-offs; then the scheduler's own cost.\n",
	  sched_stats },
	{ 0 },
};
