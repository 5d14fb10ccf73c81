/*
 * lockstepd's side of confinement (docs/security.md): which files a definition may name, how
 * a worker is started into its sandbox, what is cleaned up after it, and the daemon's own
 * capabilities.
 *
 *   - definitions: kernel, initrd and serial.log must lie beneath an allowed directory
 *     (--allow-path, allow_path in lockstepd.conf); the worker checks again and opens them as
 *     its user;
 *   - start: the worker user must exist; the VM gets cgroup lockstep/NAME.UUID (memory and
 *     pids limits, sandbox/cgroup.c), and the worker starts as pid 1 of a new pid namespace
 *     in that cgroup, with a clean environment and the sandbox flags (lockstep-vm confines
 *     itself the rest of the way, vm/jail.c); without root (or with --no-sandbox) it starts
 *     plainly and confines what it can;
 *   - the worker reports its vCPU threads' ids as its namespace numbers them; they are
 *     translated to the ids this daemon (and its scheduler) sees through /proc's NSpid;
 *   - after the worker: its cgroup and its control socket's file (it can no longer reach it);
 *   - the daemon keeps only the capabilities that starting and steering workers need.
 *
 * Loop thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define ARGV_MAX (32 + 2 * SANDBOX_PATHS_MAX)

extern char **environ;

/* Passed on to workers; everything else of lockstepd's environment stays behind. */
static const char *const kept_environment[] = {
	"ASAN_OPTIONS",
	"UBSAN_OPTIONS",
	"LSAN_OPTIONS",
#ifdef LOCKSTEP_TEST_HOOKS
	"LOCKSTEP_TEST_SECCOMP_TRAP",
#endif
	NULL,
};

bool confine_sandboxed(const struct daemon *d)
{
	return geteuid() == 0 && !d->opts.no_sandbox;
}

static const char *worker_user(const struct daemon *d)
{
	return d->opts.worker_user[0] ? d->opts.worker_user : SANDBOX_USER_DEFAULT;
}

int confine_check_definition(struct daemon *d, const struct vmdef *cfg, char *err, size_t err_len)
{
	int ret = 0;

	if (cfg->kernel)
		ret = sandbox_paths_check(&d->opts.allowed, "kernel", cfg->kernel, NULL, err,
					  err_len);
	if (!ret && cfg->initrd)
		ret = sandbox_paths_check(&d->opts.allowed, "initrd", cfg->initrd, NULL, err,
					  err_len);
	if (!ret && cfg->serial_log)
		ret = sandbox_paths_check(&d->opts.allowed, "serial.log", cfg->serial_log, NULL,
					  err, err_len);
	for (uint32_t i = 0; !ret && i < cfg->nr_devices; i++)
		if (cfg->devices[i].rom_file)
			ret = sandbox_paths_check(&d->opts.allowed, "devices[].rom.file",
						  cfg->devices[i].rom_file, NULL, err, err_len);
	return ret;
}

int confine_ready(struct daemon *d, char *err, size_t err_len)
{
	struct sandbox_user u;

	/* Root opens a definition's files as that user even without the rest of the sandbox. */
	if (geteuid() != 0)
		return 0;
	return sandbox_user_lookup(worker_user(d), &u, err, err_len) ? -ECHILD : 0;
}

/* Whether user `u` may read a file of this owner and mode (classic permission bits). */
static bool user_may_read(const struct sandbox_user *u, const struct stat *st)
{
	if (st->st_uid == u->uid)
		return st->st_mode & S_IRUSR;
	if (st->st_gid == u->gid)
		return st->st_mode & S_IRGRP;
	for (int i = 0; i < u->ngroups; i++)
		if (u->groups[i] == st->st_gid)
			return st->st_mode & S_IRGRP;
	return st->st_mode & S_IROTH;
}

int confine_check_kernel(struct daemon *d, const char *path, char *err, size_t err_len)
{
	struct sandbox_user u;
	struct stat st;
	int fd, ret;

	if (!path)
		return 0;
	fd = sandbox_open(&d->opts.allowed, NULL, "kernel", path, O_RDONLY | O_NOCTTY, 0, err,
			  err_len);
	/* Missing, or not a regular file (a directory, a FIFO): err says which and why. */
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -EINVAL)
		return -EINVAL;
	if (fd < 0) {
		err[0] = '\0'; /* a symbolic link on the way...: the worker's refusal at start */
		return 0;
	}
	/* lockstepd reads for its root clients only what the worker's user may read. */
	if (geteuid() == 0 &&
	    (fstat(fd, &st) < 0 || sandbox_user_lookup(worker_user(d), &u, NULL, 0) ||
	     !user_may_read(&u, &st))) {
		close(fd);
		return 0;
	}
	ret = vmdef_kernel_check_fd(fd, path, err, err_len);
	close(fd);
	return ret;
}

void confine_init(struct daemon *d)
{
	char dirs[1024], err[512];
	int version;

	/* The VMs' parent cgroup: making it may take privileges lockstepd is about to drop. */
	if (confine_sandboxed(d) && sandbox_cgroup_prepare(&version, err, sizeof(err)))
		util_log(&d->log, UTIL_LOG_WARN, "%s; VMs cannot start until then", err);
	else if (confine_sandboxed(d))
		util_log(&d->log, UTIL_LOG_INFO, "VM cgroups: cgroup v%d, memory and pids limits",
			 version);
	sandbox_paths_format(&d->opts.allowed, dirs, sizeof(dirs));
	if (confine_sandboxed(d))
		util_log(&d->log, UTIL_LOG_INFO,
			 "workers run sandboxed as user %s; definitions may name files beneath: %s",
			 worker_user(d), dirs);
	else
		util_log(
			&d->log, UTIL_LOG_WARN,
			"workers run without a sandbox (%s); definitions may name files beneath: %s",
			geteuid() ? "lockstepd is not root" : "--no-sandbox", dirs);
	if (confine_ready(d, err, sizeof(err)))
		util_log(&d->log, UTIL_LOG_WARN, "%s; VMs cannot start until then", err);
}

/* The VM's cgroup: lockstep/NAME.UUID, the same for every start of the VM. */
static void cgroup_leaf(const struct dvm *vm, char *buf, size_t size)
{
	snprintf(buf, size, "%s.%s", vm->cfg.name, vm->cfg.uuid);
}

void confine_forget(struct dvm *vm)
{
	char leaf[128];

	if (!confine_sandboxed(vm->d))
		return;
	cgroup_leaf(vm, leaf, sizeof(leaf));
	sandbox_cgroup_remove_leaf(leaf);
}

static char **worker_environment(void)
{
	size_t n = 1;
	char **env =
		calloc(sizeof(kept_environment) / sizeof(kept_environment[0]) + 1, sizeof(*env));

	if (!env)
		return NULL;
	env[0] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	for (char **e = environ; *e; e++)
		for (const char *const *k = kept_environment; *k; k++) {
			size_t len = strlen(*k);

			if (strncmp(*e, *k, len) == 0 && (*e)[len] == '=')
				env[n++] = *e;
		}
	return env;
}

int confine_spawn(struct worker *w, char *const *base_argv, const char *log_path, int chan_fd,
		  pid_t *pid, int *pidfd)
{
	struct dvm *vm = w->vm;
	struct daemon *d = vm->d;
	bool jail = confine_sandboxed(d);
	struct sandbox_cgroup *cg = NULL;
	char *argv[ARGV_MAX], leaf[128], err[768], where[2 * PATH_MAX + 32];
	char **env = worker_environment();
	int fds[VM_PROTO_CONTROL_FD + 1] = { -1, -1, -1 }, n = 0, ret;

	fds[VM_PROTO_CONTROL_FD] = chan_fd;
	for (; *base_argv && n < ARGV_MAX - 8; base_argv++)
		argv[n++] = *base_argv;
	argv[n++] = jail ? "--sandbox" : "--no-sandbox";
	argv[n++] = "--user";
	argv[n++] = (char *)worker_user(d);
	argv[n++] = "--confine-paths";
	for (unsigned i = 0; i < d->opts.allowed.nr; i++) {
		argv[n++] = "--allow-path";
		argv[n++] = d->opts.allowed.dir[i];
	}
	argv[n] = NULL;
	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = fds[2] =
		open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (!env || fds[0] < 0 || fds[1] < 0) {
		ret = !env ? -ENOMEM : -errno;
		util_log(&d->log, UTIL_LOG_ERROR, "VM %s: cannot prepare its worker: %s",
			 vm->cfg.name, strerror(-ret));
		goto out;
	}
	if (jail) {
		cg = calloc(1, sizeof(*cg));
		cgroup_leaf(vm, leaf, sizeof(leaf));
		ret = !cg ? -ENOMEM :
			    sandbox_cgroup_create(
				    leaf,
				    sandbox_memory_max(dvm_def(vm)->memory, dvm_def(vm)->vcpus),
				    sandbox_pids_max(dvm_def(vm)->vcpus), cg, err, sizeof(err));
		if (ret) {
			util_log(&d->log, UTIL_LOG_ERROR, "VM %s: %s", vm->cfg.name,
				 cg ? err : "out of memory");
			goto out;
		}
	}
	ret = sandbox_spawn(&(struct sandbox_spawn){ .argv = argv,
						     .envp = env,
						     .fds = fds,
						     .nr_fds = VM_PROTO_CONTROL_FD + 1,
						     .new_pid_ns = jail,
						     .cgroup = cg },
			    pid, pidfd, err, sizeof(err));
	if (ret) {
		util_log(&d->log, UTIL_LOG_ERROR, "VM %s: %s", vm->cfg.name, err);
		if (cg)
			sandbox_cgroup_remove(cg);
		goto out;
	}
	if (cg) {
		sandbox_cgroup_close(cg);
		sandbox_cgroup_describe(cg, where, sizeof(where));
		util_log(&d->log, UTIL_LOG_INFO,
			 "VM %s: worker pid %d, pid namespace of its own, user %s, %s (memory %llu "
			 "MiB, %llu tasks)",
			 vm->cfg.name, (int)*pid, worker_user(d), where,
			 (unsigned long long)(cg->memory_max >> 20),
			 (unsigned long long)cg->pids_max);
		w->cgroup = cg;
		cg = NULL;
	}
out:
	free(cg);
	free(env);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return ret;
}

void confine_attach(struct worker *w)
{
	struct sandbox_cgroup cg;

	/* Found by where the process is: a daemon before us may have named it otherwise. */
	if (sandbox_cgroup_of(w->pid, &cg) == 0 && (w->cgroup = malloc(sizeof(cg))))
		*w->cgroup = cg;
}

void confine_worker_free(struct worker *w)
{
	char path[PATH_MAX];

	if (w->exited && w->cgroup && sandbox_cgroup_remove(w->cgroup))
		util_log(&w->vm->d->log, UTIL_LOG_WARN, "VM %s: cannot remove %s: %s",
			 w->vm->cfg.name, w->cgroup->memory_dir, strerror(errno));
	else if (w->exited && !w->cgroup && w->vm)
		confine_forget(w->vm); /* re-attached as it ended: where its cgroup is named */
	free(w->cgroup);
	w->cgroup = NULL;
	if (w->exited && w->vm && confine_sandboxed(w->vm->d)) {
		/* Its control socket: a confined worker cannot reach the file to remove it. */
		store_run_path(w->vm, ".ctl", path, sizeof(path));
		unlink(path);
	}
}

void confine_host_tids(struct worker *w)
{
	int *host = calloc(w->nr_vcpus ? w->nr_vcpus : 1, sizeof(*host));
	struct dirent *de;
	char dir[64];
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)w->pid);
	d = host ? opendir(dir) : NULL;
	while (d && (de = readdir(d))) {
		int tid = atoi(de->d_name), ns_tid;

		if (tid <= 0 || util_proc_ns_tid((int)w->pid, tid, &ns_tid))
			continue;
		for (uint32_t i = 0; i < w->nr_vcpus; i++)
			if (w->tids[i] == ns_tid)
				host[i] = tid;
	}
	if (d)
		closedir(d);
	/* A tid that names no thread of the worker is not believed (nor signalled). */
	for (uint32_t i = 0; host && i < w->nr_vcpus; i++)
		w->tids[i] = host[i];
	free(host);
}

const char *confine_stop_reason(enum vm_stop_reason reason, int syscall, char *buf, size_t size)
{
	char name[32];

	if (reason != VM_STOP_SECCOMP)
		return vm_stop_reason_name(reason);
	sandbox_syscall_name(syscall, name, sizeof(name));
	snprintf(buf, size, "seccomp: %s", name);
	return buf;
}

/*
 * What the loop thread keeps: CAP_SYS_ADMIN to start workers in pid namespaces (and for them
 * to build their empty root), CAP_SETUID/CAP_SETGID for workers to become their user (and to
 * open definitions' files as it), CAP_KILL to signal workers that run as another user,
 * CAP_SYS_NICE to pin their threads, CAP_SYS_PTRACE to take their sched pages (pidfd_getfd),
 * CAP_SYSLOG for a worker with passthrough devices to open the kernel log (the IOMMU's faults)
 * before it drops every capability.  Sandboxed workers pin guest RAM for DMA within
 * RLIMIT_MEMLOCK, which each sets for itself (vm_jail_memlock: guest RAM only where the VM has
 * passthrough devices), so the hard limit they inherit is lifted here, while lockstepd may.
 * Unsandboxed, workers keep CAP_IPC_LOCK instead (VFIO counts nothing against the rlimit then).
 * A worker never has more: lockstepd sets no_new_privs, so an execve() cannot raise them.
 */
int confine_drop_privileges(struct daemon *d)
{
	static const int sandboxed[] = { CAP_SYS_ADMIN, CAP_SETUID,	CAP_SETGID, CAP_KILL,
					 CAP_SYS_NICE,	CAP_SYS_PTRACE, CAP_SYSLOG };
	static const int plain[] = { CAP_SETUID,     CAP_SETGID,   CAP_KILL,  CAP_SYS_NICE,
				     CAP_SYS_PTRACE, CAP_IPC_LOCK, CAP_SYSLOG };
	bool jail = confine_sandboxed(d);
	struct rlimit memlock;
	int ret = 0;

	if (geteuid() == 0) {
		if (jail && getrlimit(RLIMIT_MEMLOCK, &memlock) == 0) {
			memlock.rlim_max = RLIM_INFINITY;
			if (setrlimit(RLIMIT_MEMLOCK, &memlock) < 0)
				util_log(
					&d->log, UTIL_LOG_INFO,
					"RLIMIT_MEMLOCK's hard limit stays as it is (%s): workers "
					"with passthrough devices cannot pin more guest RAM for DMA",
					strerror(errno));
		}
		ret = jail ? sandbox_caps_limit(sandboxed, 7, true) :
			     sandbox_caps_limit(plain, 7, true);
		if (ret) {
			util_log(&d->log, UTIL_LOG_ERROR, "cannot drop capabilities: %s",
				 strerror(-ret));
			return ret;
		}
		util_log(
			&d->log, UTIL_LOG_INFO,
			"capabilities kept: %skill, setuid, setgid, sys_nice, sys_ptrace, %ssyslog",
			jail ? "sys_admin, " : "", jail ? "" : "ipc_lock, ");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		ret = -errno;
		util_log(&d->log, UTIL_LOG_ERROR, "no_new_privs: %s", strerror(errno));
	}
	return ret;
}

json_t *confine_json(struct daemon *d)
{
	json_t *dirs = json_array();

	for (unsigned i = 0; i < d->opts.allowed.nr; i++)
		json_array_append_new(dirs, json_string(d->opts.allowed.dir[i]));
	return json_pack("{s:b, s:s, s:o}", "sandbox", confine_sandboxed(d), "worker_user",
			 worker_user(d), "allowed_paths", dirs);
}
