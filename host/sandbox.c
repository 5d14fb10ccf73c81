/*
 * What the kernel offers a sandbox around each lockstep-vm worker: cgroup v2 and its
 * controllers (cpu and cpuset for placement and shares, memory, pids), user, pid and mount
 * namespaces, and seccomp filters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"

static const char *const needed_controllers[] = { "cpu", "cpuset", "memory", "pids" };

static void cgroup_fact(struct gather *g)
{
	char *mounts = gather_text(g, "/proc/mounts");
	char v2[256] = "", controllers[512] = "", v1[512] = "", missing[64] = "";
	struct host_fact *f;
	bool hybrid;

	for (char *line = mounts, *next; line && *line; line = next) {
		char dev[64], dir[256], type[32], opts[512];

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line, "%63s %255s %31s %511s", dev, dir, type, opts) != 4)
			continue;
		if (strcmp(type, "cgroup2") == 0 && !v2[0]) {
			snprintf(v2, sizeof(v2), "%s", dir);
		} else if (strcmp(type, "cgroup") == 0) {
			/* v1: the controllers are among the mount options. */
			for (size_t i = 0; i < 4; i++)
				if (strstr(opts, needed_controllers[i]) &&
				    !has_word(v1, needed_controllers[i]))
					snprintf(v1 + strlen(v1), sizeof(v1) - strlen(v1), "%s%s",
						 v1[0] ? " " : "", needed_controllers[i]);
		}
	}
	free(mounts);
	if (v2[0]) {
		char path[300];

		snprintf(path, sizeof(path), "%s/cgroup.controllers", v2);
		gather_line(g, path, controllers, sizeof(controllers));
	}
	for (size_t i = 0; i < 4; i++)
		if (!has_word(controllers, needed_controllers[i]))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 "%s%s", missing[0] ? " " : "", needed_controllers[i]);
	hybrid = v2[0] && strcmp(v2, "/sys/fs/cgroup") != 0;
	f = fact_new(g, "sandbox.cgroup2", v2[0] && !missing[0] ? HOST_PASS : HOST_WARN);
	if (!v2[0])
		fact_value(f, "no cgroup v2 mounted%s%s", v1[0] ? "; cgroup v1 has " : "", v1);
	else
		fact_value(f, "cgroup v2 at %s%s: %s%s%s%s", v2, hybrid ? " (hybrid)" : "",
			   controllers[0] ? controllers : "no controllers",
			   missing[0] ? "; lacks " : "", missing,
			   missing[0] && v1[0] ? " (they are on cgroup v1)" : "");
	fact_source(f, "/proc/mounts (cgroup2, cgroup); %s/cgroup.controllers",
		    v2[0] ? v2 : "/sys/fs/cgroup");
	fact_meaning(f, "A cgroup per worker bounds a VM's CPUs (cpuset), its share of them "
			"(cpu), its memory and its threads, so one VM cannot starve the others or "
			"the scheduler thread.");
	if (!v2[0] || missing[0])
		fact_fix(f,
			 "boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all) "
			 "so cgroup v2 holds %s",
			 missing[0] ? missing : "every controller");
}

static void namespace_fact(struct gather *g)
{
	static const char *const kinds[] = { "user", "pid", "mnt", "net", "ipc", "uts", "cgroup" };
	char have[96] = "", lack[96] = "", path[64];
	uint64_t max_user = 0;
	bool user_ok =
		gather_u64(g, "/proc/sys/user/max_user_namespaces", &max_user) == 0 && max_user > 0;
	struct host_fact *f;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char *list = NULL;

		snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[i]);
		list = gather_exists(g, path) ? have : lack;
		snprintf(list + strlen(list), 96 - strlen(list), "%s%s", list[0] ? " " : "",
			 kinds[i]);
	}
	f = fact_new(g, "sandbox.namespaces",
		     user_ok && has_word(have, "pid") && has_word(have, "mnt") ? HOST_PASS :
										 HOST_WARN);
	fact_value(f, "%s%s%s; max_user_namespaces=%llu", have, lack[0] ? "; lacks " : "", lack,
		   (unsigned long long)max_user);
	fact_source(f, "/proc/self/ns/*; /proc/sys/user/max_user_namespaces");
	fact_meaning(f, "A worker in its own user, pid and mount namespaces sees only its VM's "
			"files and processes, and is nobody on the host: a guest that escapes "
			"into it has not escaped.");
	if (!user_ok)
		fact_fix(f, "sysctl user.max_user_namespaces=1024");
}

static void seccomp_fact(struct gather *g)
{
	char *status = gather_text(g, "/proc/self/status");
	char actions[256] = "";
	bool mode = status && (strncmp(status, "Seccomp:", 8) == 0 || strstr(status, "\nSeccomp:"));
	bool filters = gather_line(g, "/proc/sys/kernel/seccomp/actions_avail", actions,
				   sizeof(actions)) == 0;
	bool ok =
		mode && filters && has_word(actions, "kill_process") && has_word(actions, "errno");
	struct host_fact *f = fact_new(g, "sandbox.seccomp", ok ? HOST_PASS : HOST_WARN);

	free(status);
	if (!mode)
		fact_value(f, "no seccomp");
	else if (!filters)
		fact_value(f, "seccomp without filters");
	else
		fact_value(f, "seccomp filters: %s", actions);
	fact_source(f, "/proc/self/status (Seccomp:); /proc/sys/kernel/seccomp/actions_avail");
	fact_meaning(f, "A seccomp filter confines a worker to the system calls a VMM makes (KVM "
			"ioctls, its fds, memory), so a guest that subverts its VMM reaches little "
			"of the kernel.");
	if (!ok)
		fact_fix(f, "a kernel built with CONFIG_SECCOMP_FILTER");
}

void gather_sandbox_facts(struct gather *g)
{
	cgroup_fact(g);
	namespace_fact(g);
	seccomp_fact(g);
}
