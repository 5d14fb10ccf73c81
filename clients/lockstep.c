/*
 * lockstep: the command-line client of lockstepd.  Tables for people, --json for scripts.
 *
 *   lockstep [--socket PATH] [--json] vm list [--state STATE]
 *   lockstep vm define FILE | start NAME | shutdown NAME [--timeout S] | destroy NAME
 *   lockstep vm undefine NAME | info NAME | console NAME [-f] [--tail BYTES]
 *   lockstep vm pin NAME VCPU CPUS [--config]
 *   lockstep sched show NAME | set NAME [POLICY] [--quantum US] [--skew US] [--config]
 *   lockstep sched stats [NAME]
 *   lockstep events | daemon info
 *   lockstep host check [--json] [--verbose]
 *
 * Exit status: 0 done, 1 lockstepd refused (its message is printed), 2 bad usage,
 * 3 lockstepd unreachable.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/client.h"
#include "util/util.h"

#include "clients/cli.h"

void usage(FILE *out)
{
	fputs("usage: lockstep [--socket PATH] [--json] COMMAND\n\n"
	      "  vm list [--state STATE]           defined VMs (state: running, shutoff, ...)\n"
	      "  vm define FILE                    define or update a VM from a JSON file\n"
	      "  vm start NAME                     start a VM and wait until it runs\n"
	      "  vm shutdown NAME [--timeout S]    ask the guest to power off, and wait\n"
	      "  vm destroy NAME                   stop a VM at once\n"
	      "  vm undefine NAME                  forget a stopped VM\n"
	      "  vm info NAME                      state, vCPU threads, KVM statistics\n"
	      "  vm console NAME [-f] [--tail N]   the serial console (-f: keep following)\n"
	      "  vm pin NAME VCPU CPUS [--config]  pin a vCPU to host CPUs (--config: persist)\n"
	      "  vm irqs NAME [--steering on|off [--config]]\n"
	      "                                    interrupt routes, counters, PCI devices;\n"
	      "                                    or steering switched (--config: also store)\n"
	      "  vm devices NAME                   DMA remapping of its passthrough devices: the\n"
	      "                                    IOMMU, domain, maps, interrupts, faults\n"
	      "  sched show NAME                   a VM's scheduling policy and parameters\n"
	      "  sched set NAME [POLICY] [--quantum US] [--skew US] [--config]\n"
	      "                                    change them (policy: host, pinned, gang,\n"
	      "                                    relaxed, adaptive, mux; --config: also\n"
	      "                                    store)\n"
	      "  sched stats [NAME]                co-run, skew, gate latency, slices\n"
	      "  device list NAME                  a VM's devices and where each is on the host\n"
	      "  device attach NAME BDF [--slot N] [--managed] [--reset auto|on|off]\n"
	      "                [--rom-file PATH | --no-rom]\n"
	      "                                    add a PCI device to pass through (VM shut off)\n"
	      "  device detach NAME BDF            remove it (VM shut off)\n"
	      "  device host                       the host's PCI devices: IOMMU group, driver,\n"
	      "                                    whether each can be passed through\n"
	      "  events                            print lifecycle events as they happen\n"
	      "  daemon info                       version, host topology, counts\n"
	      "  host check [--json] [--verbose]   what this host's virtualization gives SMP\n"
	      "                                    guests, each fact with its source\n\n"
	      "The socket is $LOCKSTEP_SOCKET or /run/lockstep/lockstepd.sock by default.\n"
	      "Exit status: 0 done, 1 refused by lockstepd, 2 bad usage, 3 lockstepd unreachable.\n",
	      out);
}

static int connect_daemon(struct cli *cli)
{
	int ret = api_client_connect(cli->socket, &cli->c);

	if (ret) {
		fprintf(stderr, "lockstep: cannot reach lockstepd at %s: %s\n", cli->socket,
			strerror(-ret));
		return EXIT_UNREACHABLE;
	}
	return 0;
}

/* Calls a method; prints the error and returns an exit status on failure. */
int call(struct cli *cli, const char *method, json_t *params, json_t **result)
{
	json_t *error = NULL;
	int ret;

	if (!cli->c && (ret = connect_daemon(cli))) {
		json_decref(params); /* api_client_call would have taken it */
		return ret;
	}
	ret = api_client_call(cli->c, method, params, result, &error);
	if (ret == -EPROTO) {
		fprintf(stderr, "lockstep: %s\n", api_client_error_message(error));
		json_decref(error);
		return EXIT_REFUSED;
	}
	if (ret) {
		fprintf(stderr, "lockstep: lost lockstepd: %s\n", strerror(-ret));
		return EXIT_UNREACHABLE;
	}
	return 0;
}

void print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	putchar('\n');
}

const char *str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

long long num(json_t *obj, const char *key)
{
	return (long long)json_integer_value(json_object_get(obj, key));
}

static int vm_list(struct cli *cli, int argc, char **argv)
{
	json_t *params = json_object(), *result;
	size_t i;
	json_t *vm;
	int ret;

	if (argc == 3 && strcmp(argv[1], "--state") == 0)
		json_object_set_new(params, "state", json_string(argv[2]));
	else if (argc != 1) {
		json_decref(params);
		usage(stderr);
		return EXIT_USAGE;
	}
	ret = call(cli, "vm.list", params, &result);
	if (ret)
		return ret;
	if (cli->json) {
		print_json(result);
	} else {
		printf("%-4s %-24s %-9s %5s %8s %-9s %s\n", "ID", "NAME", "STATE", "VCPUS",
		       "MEMORY", "POLICY", "REASON");
		json_array_foreach(result, i, vm) {
			char id[16] = "-";

			if (num(vm, "id") > 0)
				snprintf(id, sizeof(id), "%lld", num(vm, "id"));
			printf("%-4s %-24s %-9s %5lld %6lldMi %-9s %s\n", id, str(vm, "name"),
			       str(vm, "state"), num(vm, "vcpus"), num(vm, "memory_mib"),
			       str(vm, "policy"), str(vm, "reason"));
		}
	}
	json_decref(result);
	return 0;
}

/* Paths in a definition file are relative to the current directory; the daemon needs them
 * absolute. */
static void absolutize(json_t *obj, const char *key)
{
	const char *path = json_string_value(json_object_get(obj, key));
	char resolved[PATH_MAX], cwd[PATH_MAX];

	if (!path || path[0] == '/')
		return;
	if (realpath(path, resolved)) {
		json_object_set_new(obj, key, json_string(resolved));
	} else if (getcwd(cwd, sizeof(cwd))) {
		char joined[2 * PATH_MAX + 2];

		snprintf(joined, sizeof(joined), "%s/%s", cwd, path);
		json_object_set_new(obj, key, json_string(joined));
	}
}

static int vm_define(struct cli *cli, const char *file)
{
	json_error_t jerr;
	json_t *def, *result;
	int ret;

	def = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
	if (!def) {
		fprintf(stderr, "lockstep: %s: line %d: %s\n", file, jerr.line, jerr.text);
		return EXIT_USAGE;
	}
	if (json_is_object(def)) {
		absolutize(def, "kernel");
		absolutize(json_object_get(def, "serial"), "log");
	}
	ret = call(cli, "vm.define", json_pack("{s:o}", "definition", def), &result);
	if (ret)
		return ret;
	if (cli->json)
		print_json(result);
	else
		printf("%s VM %s (uuid %s)\n",
		       json_is_true(json_object_get(result, "created")) ? "defined" : "updated",
		       str(result, "name"), str(result, "uuid"));
	json_decref(result);
	return 0;
}

/* start, shutdown, destroy, undefine: a name in, a state out. */
static int vm_simple(struct cli *cli, const char *method, const char *name, json_t *extra,
		     const char *done)
{
	json_t *params = extra ? extra : json_object(), *result;
	int ret;

	json_object_set_new(params, "name", json_string(name));
	ret = call(cli, method, params, &result);
	if (ret)
		return ret;
	if (cli->json)
		print_json(result);
	else
		printf("%s %s%s%s\n", done, name, json_object_get(result, "state") ? ": " : "",
		       json_object_get(result, "state") ? str(result, "state") : "");
	json_decref(result);
	return 0;
}

static void print_info(json_t *info)
{
	json_t *vcpus = json_object_get(info, "vcpu"), *stats = json_object_get(info, "stats");
	size_t i;
	json_t *v;

	printf("name:       %s\nuuid:       %s\nstate:      %s (%s)\n", str(info, "name"),
	       str(info, "uuid"), str(info, "state"), str(info, "reason"));
	printf("vcpus:      %lld\nmemory:     %lld MiB\npolicy:     %s\non_crash:   %s\n",
	       num(info, "vcpus"), num(info, "memory_mib"), str(info, "policy"),
	       str(info, "on_crash"));
	if (num(info, "pid"))
		printf("worker pid: %lld\ndomain id:  %lld\n", num(info, "pid"), num(info, "id"));
	if (json_array_size(vcpus)) {
		printf("\n%-5s %-8s %-6s %-4s %-10s", "VCPU", "TID", "STATE", "CPU", "AFFINITY");
		printf(" %10s %10s %10s\n", "EXITS", "HALTS", "KICKS");
		json_array_foreach(vcpus, i, v) {
			json_t *s = json_array_get(json_object_get(stats, "vcpu"), i);
			json_t *kvm = json_object_get(s, "kvm");

			printf("%-5lld %-8lld %-6s %-4lld %-10s %10lld %10lld %10lld\n",
			       num(v, "vcpu"), num(v, "tid"), str(v, "thread_state"), num(v, "cpu"),
			       str(v, "affinity"), num(kvm, "exits"), num(kvm, "halt_exits"),
			       num(s, "kicks"));
		}
	}
	if (json_object_get(info, "stats_error"))
		printf("\nstatistics unavailable: %s\n", str(info, "stats_error"));
}

static int vm_info(struct cli *cli, const char *name)
{
	json_t *result;
	int ret = call(cli, "vm.info", json_pack("{s:s}", "name", name), &result);

	if (ret)
		return ret;
	if (cli->json)
		print_json(result);
	else
		print_info(result);
	json_decref(result);
	return 0;
}

static int vm_console(struct cli *cli, int argc, char **argv)
{
	json_t *params = json_object(), *result, *msg;
	const char *name = NULL;
	bool follow = false;
	uint64_t tail;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0) {
			follow = true;
		} else if (strcmp(argv[i], "--tail") == 0 && i + 1 < argc &&
			   !util_parse_u64(argv[i + 1], 1, 1u << 20, &tail)) {
			json_object_set_new(params, "tail", json_integer((json_int_t)tail));
			i++;
		} else if (!name && argv[i][0] != '-') {
			name = argv[i];
		} else {
			json_decref(params);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!name) {
		json_decref(params);
		usage(stderr);
		return EXIT_USAGE;
	}
	json_object_set_new(params, "name", json_string(name));
	json_object_set_new(params, "follow", json_boolean(follow));
	ret = call(cli, "vm.console", params, &result);
	if (ret)
		return ret;
	fputs(str(result, "data"), stdout);
	fflush(stdout);
	json_decref(result);
	while (follow) {
		ret = api_client_next_notification(cli->c, -1, &msg);
		if (ret) {
			fprintf(stderr, "lockstep: lost lockstepd: %s\n", strerror(-ret));
			return EXIT_UNREACHABLE;
		}
		fputs(str(json_object_get(msg, "params"), "data"), stdout);
		fflush(stdout);
		json_decref(msg);
	}
	return 0;
}

static int vm_pin(struct cli *cli, int argc, char **argv)
{
	bool config = argc == 5 && strcmp(argv[4], "--config") == 0;
	uint64_t vcpu;
	json_t *result;
	int ret;

	if ((argc != 4 && !config) || util_parse_u64(argv[2], 0, 1023, &vcpu)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	ret = call(cli, "vcpu.pin",
		   json_pack("{s:s, s:I, s:s, s:b}", "name", argv[1], "vcpu", (json_int_t)vcpu,
			     "cpus", argv[3], "config", config),
		   &result);
	if (ret)
		return ret;
	if (cli->json)
		print_json(result);
	else
		printf("vCPU %llu of %s pinned to CPUs %s%s%s\n", (unsigned long long)vcpu, argv[1],
		       argv[3], json_is_true(json_object_get(result, "live")) ? " (now)" : "",
		       json_is_true(json_object_get(result, "config")) ? " (stored)" : "");
	json_decref(result);
	return 0;
}

static int events(struct cli *cli)
{
	json_t *result, *msg;
	int ret = call(cli, "events.subscribe", NULL, &result);

	if (ret)
		return ret;
	json_decref(result);
	for (;;) {
		json_t *ev;

		ret = api_client_next_notification(cli->c, -1, &msg);
		if (ret) {
			fprintf(stderr, "lockstep: lost lockstepd: %s\n", strerror(-ret));
			return EXIT_UNREACHABLE;
		}
		ev = json_object_get(msg, "params");
		if (cli->json) {
			json_dumpf(ev, stdout, JSON_COMPACT);
			putchar('\n');
		} else {
			printf("%.3f %-10s %-20s %-9s %s\n",
			       json_real_value(json_object_get(ev, "time")), str(ev, "type"),
			       str(ev, "vm"), str(ev, "event"), str(ev, "reason"));
		}
		fflush(stdout);
		json_decref(msg);
	}
}

static int daemon_info(struct cli *cli)
{
	json_t *r, *topo, *host;
	int ret = call(cli, "daemon.info", NULL, &r);

	if (ret)
		return ret;
	if (cli->json) {
		print_json(r);
	} else {
		topo = json_object_get(r, "topology");
		printf("lockstepd %s, pid %lld, up %.0f s\nsocket %s\n", str(r, "version"),
		       num(r, "pid"), json_real_value(json_object_get(r, "uptime_s")),
		       str(r, "socket"));
		printf("VMs: %lld defined, %lld running; %lld clients\n",
		       num(json_object_get(r, "vms"), "defined"),
		       num(json_object_get(r, "vms"), "running"), num(r, "clients"));
		printf("host: %lld package(s), %lld cores, %lld CPUs (%s), %zu NUMA node(s)\n",
		       num(topo, "packages"), num(topo, "cores"), num(topo, "cpus"),
		       str(topo, "allowed_cpus"),
		       json_array_size(json_object_get(topo, "numa_nodes")));
		host = json_object_get(r, "host");
		if (json_is_object(host))
			printf("host check: %s KVM; %lld pass, %lld warn, %lld fail, %lld n/a; PLE "
			       "statistics %s (lockstep host check)\n",
			       str(host, "flavour"), num(host, "pass"), num(host, "warn"),
			       num(host, "fail"), num(host, "na"),
			       json_is_true(json_object_get(host, "ple_expected")) ?
				       "expected" :
				       "not expected");
	}
	json_decref(r);
	return 0;
}

static int vm_command(struct cli *cli, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";

	if (strcmp(sub, "list") == 0)
		return vm_list(cli, argc, argv);
	if (strcmp(sub, "console") == 0)
		return vm_console(cli, argc, argv);
	if (strcmp(sub, "pin") == 0)
		return vm_pin(cli, argc, argv);
	if (strcmp(sub, "irqs") == 0)
		return irq_command(cli, argc - 1, argv + 1);
	if (strcmp(sub, "devices") == 0 && argc == 2)
		return vm_devices_command(cli, argv[1]);
	if (strcmp(sub, "shutdown") == 0 && (argc == 2 || argc == 4)) {
		uint64_t t;
		json_t *extra = NULL;

		if (argc == 4) {
			if (strcmp(argv[2], "--timeout") || util_parse_u64(argv[3], 1, 3600, &t)) {
				usage(stderr);
				return EXIT_USAGE;
			}
			extra = json_pack("{s:I}", "timeout", (json_int_t)t);
		}
		return vm_simple(cli, "vm.shutdown", argv[1], extra, "shut down");
	}
	if (argc != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "define") == 0)
		return vm_define(cli, argv[1]);
	if (strcmp(sub, "start") == 0)
		return vm_simple(cli, "vm.start", argv[1], NULL, "started");
	if (strcmp(sub, "destroy") == 0)
		return vm_simple(cli, "vm.destroy", argv[1], NULL, "destroyed");
	if (strcmp(sub, "undefine") == 0)
		return vm_simple(cli, "vm.undefine", argv[1], NULL, "undefined");
	if (strcmp(sub, "info") == 0)
		return vm_info(cli, argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { .socket = api_client_default_socket() };
	int opt, ret;

	signal(SIGPIPE, SIG_IGN);
	/* Options come before the command; the command's own arguments are its business. */
	while ((opt = getopt_long(argc, argv, "+s:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			cli.socket = optarg;
			break;
		case 'j':
			cli.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc >= 1 && strcmp(argv[0], "vm") == 0)
		ret = vm_command(&cli, argc - 1, argv + 1);
	else if (argc >= 1 && strcmp(argv[0], "sched") == 0)
		ret = sched_command(&cli, argc - 1, argv + 1);
	else if (argc >= 1 && strcmp(argv[0], "host") == 0)
		ret = host_command(&cli, argc - 1, argv + 1);
	else if (argc >= 1 && strcmp(argv[0], "device") == 0)
		ret = device_command(&cli, argc - 1, argv + 1);
	else if (argc == 1 && strcmp(argv[0], "events") == 0)
		ret = events(&cli);
	else if (argc == 2 && strcmp(argv[0], "daemon") == 0 && strcmp(argv[1], "info") == 0)
		ret = daemon_info(&cli);
	else {
		usage(stderr);
		ret = EXIT_USAGE;
	}
	api_client_close(cli.c);
	return ret;
}
