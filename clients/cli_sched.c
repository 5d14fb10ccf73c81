/*
 * lockstep sched show|set|stats: a VM's scheduling policy, changing it while the VM runs, and
 * the scheduler's accounting (co-run fraction, sibling skew, gate latency, slices).
 */
#include <string.h>

#include "clients/cli.h"
#include "util/util.h"

static int sched_show(struct cli *cli, const char *name)
{
	json_t *r;
	int ret = call(cli, "sched.get", json_pack("{s:s}", "name", name), &r);

	if (ret)
		return ret;
	if (cli->json)
		print_json(r);
	else
		printf("%s: policy %s, quantum %lld us, skew bound %lld us%s%s%s\n", str(r, "name"),
		       str(r, "policy"), num(r, "quantum_us"), num(r, "skew_us"),
		       json_object_get(r, "cpus") ? ", CPUs " : "",
		       json_object_get(r, "cpus") ? str(r, "cpus") : "",
		       json_is_true(json_object_get(r, "scheduled")) ? " (scheduled now)" : "");
	json_decref(r);
	return 0;
}

static int sched_set(struct cli *cli, int argc, char **argv)
{
	json_t *params = json_pack("{s:s}", "name", argv[1]), *r;
	uint64_t v;
	int ret;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0) {
			json_object_set_new(params, "config", json_true());
		} else if ((strcmp(argv[i], "--quantum") == 0 || strcmp(argv[i], "--skew") == 0) &&
			   i + 1 < argc && !util_parse_u64(argv[i + 1], 1, 1000000, &v)) {
			json_object_set_new(params, argv[i][2] == 'q' ? "quantum_us" : "skew_us",
					    json_integer((json_int_t)v));
			i++;
		} else if (argv[i][0] != '-' && !json_object_get(params, "policy")) {
			json_object_set_new(params, "policy", json_string(argv[i]));
		} else {
			json_decref(params);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	ret = call(cli, "sched.set", params, &r);
	if (ret)
		return ret;
	if (cli->json)
		print_json(r);
	else
		printf("%s: policy %s%s%s\n", argv[1], str(json_object_get(r, "sched"), "policy"),
		       json_is_true(json_object_get(r, "live")) ? " (now)" : "",
		       json_is_true(json_object_get(r, "config")) ? " (stored)" : "");
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

static int sched_stats(struct cli *cli, const char *name)
{
	json_t *params = name ? json_pack("{s:s}", "name", name) : json_object(), *r, *vm;
	size_t i;
	int ret = call(cli, "sched.stats", params, &r);

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

int sched_command(struct cli *cli, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";

	if (strcmp(sub, "show") == 0 && argc == 2)
		return sched_show(cli, argv[1]);
	if (strcmp(sub, "set") == 0 && argc >= 3)
		return sched_set(cli, argc, argv);
	if (strcmp(sub, "stats") == 0 && argc <= 2)
		return sched_stats(cli, argc == 2 ? argv[1] : NULL);
	usage(stderr);
	return EXIT_USAGE;
}
