/*
 * lockstep vm ...: defining VMs (from a JSON file, standard input, or libvirt domain XML),
 * their lifecycle (start, shutdown, reboot, destroy, autostart), what they are and do (list,
 * info, console) and pinning their vCPUs.  While a VM runs, what it runs with and what its
 * stored definition would change at its next start are shown apart, as libvirt does.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli.h"
#include "util/util.h"

static const char *const states[] = { "shutoff", "starting", "running", "stopping",
				      "crashed", "failed",   "active",	NULL };
static const char *const name_arg[] = { "NAME", NULL };

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static int vm_list(struct cli *cli, int argc, char **argv)
{
	const char *state = NULL;
	const struct cli_opt opts[] = { { "state", 0, true, &state, NULL }, { 0 } };
	json_t *params = json_object(), *result, *vm;
	bool pending = false;
	size_t i;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 0, 0, NULL)) < 0) {
		json_decref(params);
		return -ret;
	}
	if (state && !in_list(state, states)) {
		json_decref(params);
		return usage_error(cli,
				   "no state '%s': shutoff, starting, running, stopping, crashed, "
				   "failed, or active (any with a worker)",
				   state);
	}
	if (state)
		json_object_set_new(params, "state", json_string(state));
	ret = call(cli, "vm.list", params, &result);
	if (ret)
		return ret;
	if (cli->json) {
		print_json(result);
		json_decref(result);
		return 0;
	}
	printf("%-4s %-24s %-9s %5s %8s %-9s %-9s %s\n", "ID", "NAME", "STATE", "VCPUS", "MEMORY",
	       "POLICY", "AUTOSTART", "REASON");
	json_array_foreach(result, i, vm) {
		bool differs = json_object_get(vm, "pending") != NULL;
		char id[16] = "-", policy[16];

		if (num(vm, "id") > 0)
			snprintf(id, sizeof(id), "%lld", num(vm, "id"));
		snprintf(policy, sizeof(policy), "%s%s", str(vm, "policy"), differs ? "*" : "");
		pending |= differs;
		printf("%-4s %-24s %-9s %5lld %6lldMi %-9s %-9s %s\n", id, str(vm, "name"),
		       str(vm, "state"), num(vm, "vcpus"), num(vm, "memory_mib"), policy,
		       json_is_true(json_object_get(vm, "autostart")) ? "yes" : "no",
		       str(vm, "reason"));
	}
	if (pending)
		printf("* runs with other settings than its stored definition, which applies at "
		       "its next start (lockstep vm info NAME)\n");
	json_decref(result);
	return 0;
}

/* ---- define ---- */

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);

	while (buf) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (n < cap) {
			if (ferror(f)) {
				free(buf);
				return NULL;
			}
			break;
		}
		if (cap >= (64u << 20)) { /* far beyond any definition */
			free(buf);
			errno = EFBIG;
			return NULL;
		}
		cap *= 2;
		char *bigger = realloc(buf, cap + 1);

		if (!bigger)
			free(buf);
		buf = bigger;
	}
	if (buf) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

/* `path` made absolute against `dir` and canonical (as lockstepd wants it), as far as what
 * exists allows. */
static void resolve_path(json_t *obj, const char *key, const char *dir)
{
	const char *path = json_string_value(json_object_get(obj, key));
	char joined[2 * PATH_MAX + 2], real[PATH_MAX], *slash;

	if (!path || !path[0])
		return;
	if (path[0] == '/')
		snprintf(joined, sizeof(joined), "%s", path);
	else
		snprintf(joined, sizeof(joined), "%s/%s", dir, path);
	if (realpath(joined, real)) {
		json_object_set_new(obj, key, json_string(real));
		return;
	}
	/* A file to be made (a serial log): its folder made canonical, then its name. */
	slash = strrchr(joined, '/');
	if (slash && slash != joined) {
		*slash = '\0';
		if (realpath(joined, real) && strlen(real) + strlen(slash + 1) + 2 < sizeof(real)) {
			strcat(real, "/");
			strcat(real, slash + 1);
			json_object_set_new(obj, key, json_string(real));
			return;
		}
		*slash = '/';
	}
	json_object_set_new(obj, key, json_string(joined));
}

/* The folder relative paths in the file are relative to: the file's own (as named, made
 * absolute), or the current one for standard input. */
static int base_dir(const char *file, char *dir, size_t size)
{
	char cwd[PATH_MAX], joined[2 * PATH_MAX + 2];
	const char *slash = strrchr(file, '/');
	int n;

	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if (strcmp(file, "-") == 0 || !slash)
		n = snprintf(joined, sizeof(joined), "%s", cwd);
	else if (file[0] == '/')
		n = snprintf(joined, sizeof(joined), "%.*s",
			     slash == file ? 1 : (int)(slash - file), file);
	else
		n = snprintf(joined, sizeof(joined), "%s/%.*s", cwd, (int)(slash - file), file);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	memcpy(dir, joined, (size_t)n + 1);
	return 0;
}

static bool looks_like_xml(const char *text)
{
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	return *text == '<';
}

static int vm_define(struct cli *cli, int argc, char **argv)
{
	bool xml = false;
	const struct cli_opt opts[] = { { "xml", 0, false, NULL, &xml }, { 0 } };
	static const char *const names[] = { "FILE (or - for standard input)", NULL };
	const char *file;
	char dir[PATH_MAX], *text;
	json_error_t jerr;
	json_t *def, *params, *result;
	size_t len = 0;
	FILE *f;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 1, 1, names)) < 0)
		return -ret;
	file = argv[1];
	f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (!f) {
		fprintf(stderr, "lockstep: %s: %s\n", file, strerror(errno));
		return EXIT_USAGE;
	}
	text = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (!text) {
		fprintf(stderr, "lockstep: %s: %s\n", file, strerror(errno));
		return EXIT_USAGE;
	}
	if (xml) {
		params = json_pack("{s:s}", "xml", text);
	} else if (looks_like_xml(text)) {
		fprintf(stderr,
			"lockstep: %s is XML, not a lockstep definition (JSON): for libvirt domain "
			"XML use\n  lockstep vm define --xml %s\nor\n  virsh -c lockstep:///system "
			"define %s\n",
			file, file, file);
		free(text);
		return EXIT_USAGE;
	} else {
		def = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!def) {
			fprintf(stderr, "lockstep: %s: line %d, column %d: %s\n",
				strcmp(file, "-") == 0 ? "standard input" : file, jerr.line,
				jerr.column, jerr.text);
			free(text);
			return EXIT_USAGE;
		}
		/* Paths are relative to the file's folder; lockstepd wants them absolute. */
		if (json_is_object(def) && !base_dir(file, dir, sizeof(dir))) {
			resolve_path(def, "kernel", dir);
			resolve_path(def, "initrd", dir);
			resolve_path(json_object_get(def, "serial"), "log", dir);
		}
		params = json_pack("{s:o}", "definition", def);
	}
	free(text);
	ret = call(cli, "vm.define", params, &result);
	if (ret)
		return ret;
	if (cli->json) {
		print_json(result);
	} else {
		printf("%s VM %s (uuid %s)\n",
		       json_is_true(json_object_get(result, "created")) ? "defined" : "updated",
		       str(result, "name"), str(result, "uuid"));
		if (json_is_true(json_object_get(result, "pending")))
			printf("VM %s runs on as it was started: the new definition applies at its "
			       "next start (lockstep vm info %s shows what differs)\n",
			       str(result, "name"), str(result, "name"));
	}
	json_decref(result);
	return 0;
}

/* ---- lifecycle ---- */

/* start, shutdown, reboot, destroy, undefine: a name in, a state out.  `waiting` (may be
 * NULL) is shown while the call takes long on a terminal. */
static int vm_simple(struct cli *cli, const char *method, const char *name, json_t *params,
		     const char *done, const char *waiting)
{
	json_t *result;
	char what[128];
	int ret;

	if (!params)
		params = json_object();
	json_object_set_new(params, "name", json_string(name));
	if (waiting) {
		snprintf(what, sizeof(what), waiting, name);
		ret = call_waiting(cli, method, params, &result, what);
	} else {
		ret = call(cli, method, params, &result);
	}
	if (ret)
		return ret;
	if (cli->json)
		print_json(result);
	else if (json_object_get(result, "state"))
		printf("%s %s: %s%s%s%s\n", done, name, str(result, "state"),
		       json_object_get(result, "reason") ? " (" : "",
		       json_object_get(result, "reason") ? str(result, "reason") : "",
		       json_object_get(result, "reason") ? ")" : "");
	else
		printf("%s %s\n", done, name);
	json_decref(result);
	return 0;
}

static int vm_start(struct cli *cli, int argc, char **argv)
{
	int ret = parse_args(cli, argc, argv, NULL, 1, 1, name_arg);

	return ret < 0 ? -ret : vm_simple(cli, "vm.start", argv[1], NULL, "started", "starting %s");
}

static int vm_shutdown(struct cli *cli, int argc, char **argv)
{
	const char *timeout = NULL;
	const struct cli_opt opts[] = { { "timeout", 't', true, &timeout, NULL }, { 0 } };
	json_t *params = json_object();
	uint64_t t;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 1, 1, name_arg)) < 0) {
		json_decref(params);
		return -ret;
	}
	if (timeout) {
		if (util_parse_u64(timeout, 1, 3600, &t)) {
			json_decref(params);
			return usage_error(cli, "--timeout takes 1 to 3600 seconds, not '%s'",
					   timeout);
		}
		json_object_set_new(params, "timeout", json_integer((json_int_t)t));
	}
	return vm_simple(cli, "vm.shutdown", argv[1], params, "shut down",
			 "waiting for %s to power off");
}

static int vm_reboot(struct cli *cli, int argc, char **argv)
{
	int ret = parse_args(cli, argc, argv, NULL, 1, 1, name_arg);

	return ret < 0 ? -ret :
			 vm_simple(cli, "vm.reboot", argv[1], NULL, "rebooted", "rebooting %s");
}

static int vm_destroy(struct cli *cli, int argc, char **argv)
{
	int ret = parse_args(cli, argc, argv, NULL, 1, 1, name_arg);

	return ret < 0 ? -ret :
			 vm_simple(cli, "vm.destroy", argv[1], NULL, "destroyed", "stopping %s");
}

static int vm_undefine(struct cli *cli, int argc, char **argv)
{
	int ret = parse_args(cli, argc, argv, NULL, 1, 1, name_arg);

	return ret < 0 ? -ret : vm_simple(cli, "vm.undefine", argv[1], NULL, "undefined", NULL);
}

static int vm_autostart(struct cli *cli, int argc, char **argv)
{
	bool disable = false;
	const struct cli_opt opts[] = { { "disable", 0, false, NULL, &disable }, { 0 } };
	json_t *result;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 1, 1, name_arg)) < 0)
		return -ret;
	ret = call(cli, "vm.autostart",
		   json_pack("{s:s, s:b}", "name", argv[1], "enabled", !disable), &result);
	if (ret)
		return ret;
	if (cli->json)
		print_json(result);
	else
		printf("VM %s %s with lockstepd\n", argv[1],
		       disable ? "no longer starts" : "starts");
	json_decref(result);
	return 0;
}

/* ---- info ---- */

static void print_pending(json_t *pending)
{
	const char *key;
	json_t *v;

	if (!json_object_size(pending))
		return;
	printf("\nstored definition (applies at the next start):\n");
	json_object_foreach(pending, key, v) {
		char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

		printf("  %-20s %s\n", key, text ? text : "?");
		free(text);
	}
}

static void print_info(json_t *info)
{
	json_t *vcpus = json_object_get(info, "vcpu"), *stats = json_object_get(info, "stats");
	json_t *restart = json_object_get(info, "restart");
	bool running = num(info, "pid") > 0;
	size_t i;
	json_t *v;

	printf("name:       %s\nuuid:       %s\nstate:      %s (%s)\n", str(info, "name"),
	       str(info, "uuid"), str(info, "state"), str(info, "reason"));
	if (json_object_get(info, "error"))
		printf("error:      %s\n", str(info, "error"));
	if (restart) {
		char when[40];

		format_time((double)num(restart, "at"), when, sizeof(when));
		printf("restart:    attempt %lld after a %s, at %s\n", num(restart, "attempt"),
		       str(restart, "after"), when);
	}
	printf("vcpus:      %lld\nmemory:     %lld MiB\npolicy:     %s\non_crash:   %s\n"
	       "autostart:  %s\n",
	       num(info, "vcpus"), num(info, "memory_mib"), str(info, "policy"),
	       str(info, "on_crash"),
	       json_is_true(json_object_get(info, "autostart")) ? "yes" : "no");
	if (running)
		printf("worker pid: %lld\ndomain id:  %lld\n", num(info, "pid"), num(info, "id"));
	if (json_array_size(vcpus)) {
		printf("\n%-5s %-8s %-6s %-4s %-10s", "VCPU", "TID", "STATE", "CPU", "AFFINITY");
		printf(" %10s %10s %10s %10s\n", "EXITS", "HALTS", "HCALLS", "KICKS");
		json_array_foreach(vcpus, i, v) {
			json_t *s = json_array_get(json_object_get(stats, "vcpu"), i);
			json_t *kvm = json_object_get(s, "kvm");

			printf("%-5lld %-8lld %-6s %-4lld %-10s %10lld %10lld %10lld %10lld\n",
			       num(v, "vcpu"), num(v, "tid"), str(v, "thread_state"), num(v, "cpu"),
			       str(v, "affinity"), num(kvm, "exits"), num(kvm, "halt_exits"),
			       num(kvm, "hypercalls"), num(s, "kicks"));
		}
	}
	if (json_object_get(info, "stats_error"))
		printf("\nstatistics unavailable: %s\n", str(info, "stats_error"));
	print_pending(json_object_get(info, "pending"));
}

static int vm_info(struct cli *cli, int argc, char **argv)
{
	json_t *result;
	int ret;

	if ((ret = parse_args(cli, argc, argv, NULL, 1, 1, name_arg)) < 0)
		return -ret;
	ret = call(cli, "vm.info", json_pack("{s:s}", "name", argv[1]), &result);
	if (ret)
		return ret;
	if (cli->json)
		print_json(result);
	else
		print_info(result);
	json_decref(result);
	return 0;
}

/* ---- console ---- */

static int vm_console(struct cli *cli, int argc, char **argv)
{
	bool follow = false, all = false, force = false;
	const char *tail = NULL;
	const struct cli_opt opts[] = { { "follow", 'f', false, NULL, &follow },
					{ "tail", 'n', true, &tail, NULL },
					{ "all", 0, false, NULL, &all },
					{ "force", 0, false, NULL, &force },
					{ 0 } };
	json_t *params, *result, *msg;
	uint64_t lines = 0;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 1, 1, name_arg)) < 0)
		return -ret;
	if (tail && util_parse_u64(tail, 1, 1000000, &lines))
		return usage_error(cli, "--tail takes a number of lines (1-1000000), not '%s'",
				   tail);
	if (tail && all)
		return usage_error(cli, "--tail and --all exclude each other");
	if (force && (follow || tail || all))
		return usage_error(cli, "--force is for the interactive console, not the log");
	if (!follow && !tail && !all && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		return console_interactive(cli, argv[1], force);
	params = json_pack("{s:s, s:b}", "name", argv[1], "follow", follow);
	if (lines)
		json_object_set_new(params, "lines", json_integer((json_int_t)lines));
	if (all)
		json_object_set_new(params, "all", json_true());
	ret = call(cli, "vm.console", params, &result);
	while (!ret) {
		json_int_t next = json_integer_value(json_object_get(result, "next_offset"));
		json_int_t size = json_integer_value(json_object_get(result, "size"));

		fputs(str(result, "data"), stdout);
		fflush(stdout);
		json_decref(result);
		/* A read is at most 1 MiB; without -f the rest follows in further reads. */
		if (follow || next >= size)
			break;
		ret = call(cli, "vm.console",
			   json_pack("{s:s, s:I}", "name", argv[1], "offset", next), &result);
	}
	if (ret)
		return ret;
	while (follow) {
		json_t *p;

		ret = api_client_next_notification(cli->c, -1, &msg);
		if (ret) {
			fprintf(stderr, "lockstep: lost lockstepd: %s\n", strerror(-ret));
			return EXIT_UNREACHABLE;
		}
		p = json_object_get(msg, "params");
		if (strcmp(str(msg, "method"), "console.end") == 0) {
			if (cli->interactive)
				fprintf(stderr, "\nlockstep: VM %s is %s (%s)\n", argv[1],
					str(p, "state"), str(p, "reason"));
			json_decref(msg);
			break;
		}
		fputs(str(p, "data"), stdout);
		fflush(stdout);
		json_decref(msg);
	}
	return 0;
}

static int vm_pin(struct cli *cli, int argc, char **argv)
{
	bool config = false;
	const struct cli_opt opts[] = { { "config", 0, false, NULL, &config }, { 0 } };
	static const char *const names[] = { "NAME", "VCPU", "CPUS", NULL };
	uint64_t vcpu;
	json_t *result;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 3, 3, names)) < 0)
		return -ret;
	if (util_parse_u64(argv[2], 0, 1023, &vcpu))
		return usage_error(cli, "VCPU must be a vCPU number, not '%s'", argv[2]);
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

const struct command cli_vm_commands[] = {
	{ "vm", "list", "[--state STATE]", "the defined VMs, one line each",
	  "Prints one line per VM: its domain id (while it runs), name, state, vCPUs, memory,\n"
	  "scheduling policy, whether it starts with lockstepd, and the reason for its state.\n"
	  "A running VM shows what it runs with; a policy marked * differs from its stored\n"
	  "definition, which applies at its next start.\n\n"
	  "  --state STATE   only VMs in this state: shutoff, starting, running, stopping,\n"
	  "                  crashed, failed, or active (any that has a worker)\n",
	  vm_list },
	{ "vm", "define", "FILE|- [--xml]", "define a VM, or update its definition",
	  "Reads a VM definition (JSON, see docs/vm.schema.json) from FILE, or from standard\n"
	  "input for '-'.  Relative paths in it (kernel, initrd, serial.log) are relative to\n"
	  "the file's folder (to the current one for standard input).  lockstepd checks the\n"
	  "definition, including that the kernel exists and is a bootable image, and stores it.\n"
	  "Defining a running VM's name stores the new definition for its next start.\n\n"
	  "  --xml    FILE is libvirt domain XML (as virsh define takes it)\n",
	  vm_define },
	{ "vm", "undefine", "NAME", "forget a VM that does not run",
	  "Removes the VM's stored definition.  A running VM must be stopped first.\n",
	  vm_undefine },
	{ "vm", "start", "NAME", "start a VM and wait until it runs",
	  "Starts the VM's worker with its stored definition and waits until the guest runs.\n"
	  "If it does not, the VM is left 'failed' and the worker's own error is printed.\n",
	  vm_start },
	{ "vm", "shutdown", "NAME [--timeout S]", "ask the guest to power off, and wait",
	  "Presses the guest's ACPI power button and waits until it has powered off.  On a\n"
	  "terminal the seconds waited are shown.  A guest that ignores the button runs on.\n\n"
	  "  --timeout S   wait at most S seconds (default: lockstepd's, 30)\n",
	  vm_shutdown },
	{ "vm", "reboot", "NAME", "restart a running VM",
	  "Stops the VM's worker and starts it again with the definition it ran with (a\n"
	  "stored definition that differs waits for the next start), and waits until it runs.\n",
	  vm_reboot },
	{ "vm", "destroy", "NAME", "stop a VM at once",
	  "Ends the VM's worker at once (the guest is not asked).  On a crashed or failed VM it\n"
	  "forgets the crash, and a restart that waits for its turn.\n",
	  vm_destroy },
	{ "vm", "autostart", "NAME [--disable]", "start a VM with lockstepd, or not",
	  "Marks the VM to be started whenever lockstepd starts (--disable: not).\n",
	  vm_autostart },
	{ "vm", "info", "NAME", "state, settings, vCPU threads, KVM statistics",
	  "Prints the VM's state and why, the worker's error if its last start failed or it\n"
	  "crashed, a restart waiting for its turn, what it runs with (while it runs), its\n"
	  "worker, and per vCPU thread: its id, state, host CPU, affinity, exits, halts and\n"
	  "kicks.  Stored settings that differ from the running ones are listed last.\n",
	  vm_info },
	{ "vm", "console", "NAME [--force] | NAME [-f] [--tail N] [--all]", "the serial console",
	  "On a terminal, attaches to the VM's serial console: what the guest writes is shown\n"
	  "as it comes and every key goes to the guest; Ctrl-] detaches.  One client has the\n"
	  "console at a time.  Otherwise (or with -f, --tail or --all) prints the console log\n"
	  "from the start of its current (or last) run.\n\n"
	  "      --force     take the console from the client that has it\n"
	  "  -f, --follow    then print what the guest writes, until the VM stops\n"
	  "  -n, --tail N    only the last N lines\n"
	  "      --all       every run lockstepd kept, each after a line marking its start\n",
	  vm_console },
	{ "vm", "pin", "NAME VCPU CPUS [--config]", "pin a vCPU to host CPUs",
	  "Pins vCPU VCPU to the host CPUs CPUS (a list such as 0-3,6): the running vCPU\n"
	  "thread, or the stored definition of a VM that does not run.\n\n"
	  "  --config   also store the pin in the definition\n",
	  vm_pin },
	{ "vm", "irqs", "NAME [--steering on|off [--config]]", "interrupt routes, or steering",
	  "Prints the VM's interrupt routes with their counters and destinations, its PCI\n"
	  "devices, whether steering is on and whether the host could post interrupts; or\n"
	  "switches steering (docs/scheduling.md).\n\n"
	  "  --steering on|off   route redirectable interrupts to running vCPUs, or not\n"
	  "  --config            also store it in the definition\n",
	  irq_command },
	{ "vm", "devices", "NAME", "DMA remapping of its passthrough devices",
	  "Prints the DMA remapping report of the VM's passthrough devices (docs/passthrough.md):\n"
	  "per device the IOMMU in front of it, its domain, the DMA maps of guest RAM, how its\n"
	  "interrupts are wired, its BARs and ROM, and the faults logged since the VM started;\n"
	  "the last run's report when it does not run.\n",
	  vm_devices_command },
	{ 0 },
};
