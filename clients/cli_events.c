/*
 * lockstep events and lockstep daemon info.  events prints what happens to VMs as it happens,
 * one line each with the local time: lifecycle events (state changes and why) and the
 * lock-holder and lock-waiter preemption episodes lockstep's pvlock detector reports, each
 * with its fields; --kind and --vm choose which.  daemon info prints lockstepd's version,
 * directories, log, host topology and counts.
 */
#include <stdlib.h>
#include <string.h>

#include "clients/cli.h"

static const char *const lifecycle_events[] = { "defined",	   "undefined", "starting",
						"started",	   "stopping",	"stopped",
						"crashed",	   "failed",	"restarted",
						"restart-pending", "rebooted",	NULL };
static const char *const pvlock_kinds[] = { "lhp", "lwp", "ple", NULL };

static bool listed(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* Whether an event passes --kind: its type, its lifecycle event or its pvlock kind. */
static bool wanted(json_t *ev, char **kinds, int n)
{
	if (!n)
		return true;
	for (int i = 0; i < n; i++)
		if (strcmp(kinds[i], str(ev, "type")) == 0 ||
		    strcmp(kinds[i], str(ev, "event")) == 0 ||
		    (strcmp(str(ev, "type"), "pvlock") == 0 &&
		     strcmp(kinds[i], str(ev, "kind")) == 0))
			return true;
	return false;
}

static void print_lifecycle(json_t *ev)
{
	printf("%-16s %s (%s)", str(ev, "event"), str(ev, "state"), str(ev, "reason"));
	if (strcmp(str(ev, "event"), "restart-pending") == 0)
		printf(": restart %lld in %.0f s, after a %s", num(ev, "attempt"),
		       json_number_value(json_object_get(ev, "delay_s")), str(ev, "after"));
	if (json_object_get(ev, "error"))
		printf(": %s", str(ev, "error"));
}

static void print_pvlock(json_t *ev)
{
	const char *kind = str(ev, "kind");
	bool ended = json_is_true(json_object_get(ev, "ended"));
	const char *what = strcmp(kind, "lhp") == 0 ? "lock holder preempted" :
			   strcmp(kind, "lwp") == 0 ? "next waiter preempted" :
			   strcmp(kind, "ple") == 0 ? "pause-loop spinning" :
						      kind;

	printf("%-16s %s%s: vCPU %lld", ended ? "pvlock-ended" : "pvlock", what,
	       ended ? " (over)" : "", num(ev, "culprit"));
	if (num(ev, "lock"))
		printf(", lock 0x%llx", (unsigned long long)num(ev, "lock"));
	if (num(ev, "waiters"))
		printf(", %lld waiting", num(ev, "waiters"));
	if (ended)
		printf(", lasted %.3f ms", (double)num(ev, "duration_ns") / 1e6);
	else
		printf(", spin pressure %.2f", json_number_value(json_object_get(ev, "pressure")));
}

static int events(struct cli *cli, int argc, char **argv)
{
	const char *kind_arg = NULL, *vm = NULL;
	const struct cli_opt opts[] = { { "kind", 'k', true, &kind_arg, NULL },
					{ "vm", 0, true, &vm, NULL },
					{ 0 } };
	char *kinds[32], *copy = NULL, *save = NULL;
	json_t *result, *msg;
	int n = 0, ret;

	if ((ret = parse_args(cli, argc, argv, opts, 0, 0, NULL)) < 0)
		return -ret;
	if (kind_arg) {
		copy = strdup(kind_arg);
		for (char *k = strtok_r(copy, ",", &save); k && n < 32;
		     k = strtok_r(NULL, ",", &save)) {
			if (strcmp(k, "lifecycle") && strcmp(k, "pvlock") &&
			    !listed(k, lifecycle_events) && !listed(k, pvlock_kinds)) {
				ret = usage_error(
					cli,
					"no event kind '%s': lifecycle, pvlock, a lifecycle "
					"event (started, crashed, ...) or a pvlock kind "
					"(lhp, lwp, ple)",
					k);
				free(copy);
				return ret;
			}
			kinds[n++] = k;
		}
	}
	ret = call(cli, "events.subscribe", NULL, &result);
	if (ret) {
		free(copy);
		return ret;
	}
	json_decref(result);
	for (;;) {
		json_t *ev;
		char when[40];

		ret = api_client_next_notification(cli->c, -1, &msg);
		if (ret) {
			fprintf(stderr, "lockstep: lost lockstepd: %s\n", strerror(-ret));
			free(copy);
			return EXIT_UNREACHABLE;
		}
		ev = json_object_get(msg, "params");
		if (strcmp(str(msg, "method"), "event") != 0 || !wanted(ev, kinds, n) ||
		    (vm && strcmp(vm, str(ev, "vm")) != 0)) {
			json_decref(msg);
			continue;
		}
		if (cli->json) {
			json_dumpf(ev, stdout, JSON_COMPACT);
			putchar('\n');
		} else {
			format_time(json_number_value(json_object_get(ev, "time")), when,
				    sizeof(when));
			printf("%s  %-16s %-10s ", when, str(ev, "vm"), str(ev, "type"));
			if (strcmp(str(ev, "type"), "pvlock") == 0)
				print_pvlock(ev);
			else
				print_lifecycle(ev);
			putchar('\n');
		}
		fflush(stdout);
		json_decref(msg);
	}
}

/* How workers start (docs/security.md): one line. */
static void print_confinement(json_t *c)
{
	json_t *dir;
	size_t i;

	if (!json_is_object(c))
		return;
	printf("workers: %s as user %s; definitions may name files beneath: ",
	       json_is_true(json_object_get(c, "sandbox")) ? "sandboxed" : "not sandboxed",
	       str(c, "worker_user"));
	if (!json_array_size(json_object_get(c, "allowed_paths")))
		printf("none");
	json_array_foreach(json_object_get(c, "allowed_paths"), i, dir)
		printf("%s%s", i ? ", " : "", json_string_value(dir));
	printf("\n");
}

static int daemon_info(struct cli *cli, int argc, char **argv)
{
	json_t *r, *topo, *host;
	int ret;

	if ((ret = parse_args(cli, argc, argv, NULL, 0, 0, NULL)) < 0)
		return -ret;
	ret = call(cli, "daemon.info", NULL, &r);
	if (ret)
		return ret;
	if (cli->json) {
		print_json(r);
	} else {
		topo = json_object_get(r, "topology");
		printf("lockstepd %s, pid %lld, up %.0f s\n", str(r, "version"), num(r, "pid"),
		       json_real_value(json_object_get(r, "uptime_s")));
		printf("socket %s\nrun directory %s, state directory %s\nlog %s\n",
		       str(r, "socket"), str(r, "run_dir"), str(r, "state_dir"), str(r, "log"));
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
		print_confinement(json_object_get(r, "confinement"));
	}
	json_decref(r);
	return 0;
}

const struct command cli_top_commands[] = {
	{ NULL, "events", "[--kind KINDS] [--vm NAME]", "print events as they happen",
	  "Prints one line per event until interrupted: the local time, the VM, the event's\n"
	  "type, then\n"
	  "  lifecycle  the event (defined, starting, started, stopping, stopped, crashed,\n"
	  "             failed, restarted, restart-pending, rebooted, undefined), the state it\n"
	  "             left the VM in and why; a failed start or a crash adds the worker's\n"
	  "             own error, a waiting restart its attempt and delay\n"
	  "  pvlock     a preemption episode the pvlock detector saw: lhp (a lock's holder is\n"
	  "             preempted while others wait), lwp (the next waiter is preempted), ple\n"
	  "             (pause-loop exits); the vCPU, the lock, how many wait and the spin\n"
	  "             pressure, and when it is over (pvlock-ended) how long it lasted\n"
	  "With --json each event is one JSON object per line, with \"time\" in seconds since\n"
	  "the epoch (docs/api.md lists every field).\n\n"
	  "  -k, --kind KINDS   only these (comma-separated): lifecycle, pvlock, a lifecycle\n"
	  "                     event such as crashed, or a pvlock kind (lhp, lwp, ple)\n"
	  "      --vm NAME      only this VM's\n",
	  events },
	{ 0 },
};

const struct command cli_daemon_commands[] = {
	{ "daemon", "info", "", "version, directories, log, host topology, counts",
	  "Prints lockstepd's version, pid and uptime, its socket, run and state directories,\n"
	  "where it logs, the VMs defined and running, the clients connected, the host's\n"
	  "topology and the summary of lockstep host check.\n",
	  daemon_info },
	{ 0 },
};
