/*
 * The worker's sandbox (docs/security.md), entered once the machine is built: /dev/kvm, the
 * images, the serial logs, the control socket and the report files are open; nothing in the
 * host's file system is opened afterwards.  In order:
 *
 *   pid namespace   made by whoever started the worker: lockstepd (clone3), or the relay
 *                   below when lockstep-vm runs by hand as root; the worker is its pid 1
 *   cgroup          joined before the worker ran (memory and pids limits)
 *   mnt, net, ipc   new namespaces; the root becomes an empty read-only tmpfs (pivot_root);
 *                   /proc/self/task of the worker's own pid namespace stays open for
 *                   run-state sampling, from a procfs that is never attached to the tree
 *   rlimits         NOFILE (what is open plus room for run-state files and a controller),
 *                   FSIZE (SIGXFSZ ignored: a write past it fails), CORE 0, MEMLOCK's hard
 *                   limit down to its soft one (guest RAM more where the VM has passthrough
 *                   devices: vm/passthrough.c raised it to pin RAM for DMA), RTPRIO 1
 *                   where it may (the steering thread's priority, kept as the worker user)
 *   user            setgroups/setresgid/setresuid to the unprivileged worker user: every
 *                   capability goes; checked with capget()
 *   no_new_privs, not dumpable, SIGSYS handler; then each thread kind's seccomp filter
 *                   (vm/seccomp.c)
 *
 * Started by someone who is not root, the worker does what needs no privilege: rlimits,
 * no_new_privs and seccomp.  Control thread only, while it is the only thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/vm_internal.h"

#define JAIL_FSIZE_MAX (128ull << 20) /* above the serial logs' own 64 MiB cap */
#define JAIL_ROOT "/tmp"	      /* where the new root is mounted before pivot_root */

static int fail(char *err, size_t err_len, int ret, const char *what)
{
	return util_error(err, err_len, ret, "sandbox: %s: %s", what, strerror(-ret));
}

int vm_jail_relay(struct vm_jail *j, const struct vmdef *cfg, int *status)
{
	struct sandbox_cgroup cg;
	char leaf[128], err[512];
	sigset_t relayed, old;
	siginfo_t si;
	pid_t child;
	int st = 0, own_ns;

	snprintf(leaf, sizeof(leaf), "%s.%d", cfg->name, (int)getpid());
	if (sandbox_cgroup_create(leaf, sandbox_memory_max(cfg->memory, cfg->vcpus),
				  sandbox_pids_max(cfg->vcpus), &cg, err, sizeof(err))) {
		fprintf(stderr, "lockstep-vm: %s (or run it with --no-sandbox)\n", err);
		*status = VM_EXIT_SANDBOX;
		return 1;
	}
	sigemptyset(&relayed);
	sigaddset(&relayed, SIGINT);
	sigaddset(&relayed, SIGTERM);
	sigaddset(&relayed, SIGHUP);
	sigaddset(&relayed, SIGCHLD);
	sigprocmask(SIG_BLOCK, &relayed, &old);
	/* Only the next child goes into the new namespace, as its pid 1; later children of the
	 * relay (a sanitizer's helper, say) must not try to join a namespace whose init is gone. */
	own_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	child = own_ns >= 0 && unshare(CLONE_NEWPID) == 0 ? fork() : -1;
	if (child > 0 && setns(own_ns, CLONE_NEWPID) < 0)
		fprintf(stderr, "lockstep-vm: sandbox: back to our pid namespace: %s\n",
			strerror(errno));
	if (own_ns >= 0)
		close(own_ns);
	if (child < 0) {
		fprintf(stderr, "lockstep-vm: sandbox: a pid namespace: %s\n", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		sandbox_cgroup_remove(&cg);
		*status = VM_EXIT_SANDBOX;
		return 1;
	}
	if (child == 0) {
		/* The VM goes with whoever started it by hand, even with a SIGKILL (set again
		 * once its credentials have changed, which clears it). */
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		j->relayed = true;
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (sandbox_cgroup_join(&cg) < 0) {
			fprintf(stderr, "lockstep-vm: sandbox: joining %s: %s\n", cg.memory_dir,
				strerror(errno));
			_exit(VM_EXIT_SANDBOX);
		}
		sandbox_cgroup_close(&cg);
		return 0;
	}
	sandbox_cgroup_close(&cg);
	for (;;) {
		if (sigwaitinfo(&relayed, &si) < 0)
			continue;
		if (si.si_signo != SIGCHLD) {
			kill(child, si.si_signo);
			continue;
		}
		if (waitpid(child, &st, WNOHANG) == child)
			break;
	}
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (sandbox_cgroup_remove(&cg))
		fprintf(stderr, "lockstep-vm: cannot remove %s: %s\n", cg.memory_dir,
			strerror(errno));
	return 1;
}

/* The highest open descriptor (read before the root goes away). */
static int highest_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int max = 2;

	if (!d)
		return 1023;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (fd > max)
			max = fd;
	}
	closedir(d);
	return max;
}

/*
 * A procfs of the worker's own pid namespace (only its pids: subset=pid), never attached to
 * the tree: the new mount API gives a descriptor of a detached mount, through which
 * /proc/self/task is opened for vm/runstate.c.  Returns the mount's descriptor.
 */
static int own_procfs(struct vm *vm, char *err, size_t err_len)
{
	int fs = fsopen("proc", FSOPEN_CLOEXEC), mnt, task;

	if (fs < 0)
		return fail(err, err_len, -errno, "a procfs for the pid namespace");
	fsconfig(fs, FSCONFIG_SET_STRING, "subset", "pid", 0); /* 5.8+; a full one otherwise */
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
	    (mnt = fsmount(fs, FSMOUNT_CLOEXEC,
			   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)) < 0) {
		close(fs);
		return fail(err, err_len, -errno, "a procfs for the pid namespace");
	}
	close(fs);
	task = openat(mnt, "self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (task < 0) {
		close(mnt);
		return fail(err, err_len, -errno, "/proc/self/task");
	}
	if (vm->task_dir_fd >= 0)
		close(vm->task_dir_fd);
	vm->task_dir_fd = task;
	return mnt;
}

/*
 * An empty, read-only root.  Sanitizer builds put the worker's procfs at /proc in it, where
 * LeakSanitizer looks for the threads it must stop.
 */
static int empty_root(struct vm *vm, char *err, size_t err_len)
{
	int proc, ret = 0;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(err, err_len, -errno, "making mounts private");
	proc = own_procfs(vm, err, err_len);
	if (proc < 0)
		return proc;
	if (mount("lockstep", JAIL_ROOT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=16k,nr_inodes=16") < 0)
		ret = fail(err, err_len, -errno, "an empty tmpfs for the root");
	else if (chdir(JAIL_ROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
		 umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		ret = fail(err, err_len, -errno, "pivot_root");
#ifdef LOCKSTEP_SANITIZE
	else if (mkdir("/proc", 0555) < 0 ||
		 move_mount(proc, "", AT_FDCWD, "/proc", MOVE_MOUNT_F_EMPTY_PATH) < 0)
		ret = fail(err, err_len, -errno, "/proc for the sanitizers");
#endif
	else if (mount(NULL, "/", NULL,
		       MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		       NULL) < 0)
		ret = fail(err, err_len, -errno, "making the root read-only");
	close(proc);
	return ret;
}

static int set_limit(int resource, uint64_t value)
{
	struct rlimit rl = { .rlim_cur = value, .rlim_max = value };

	return setrlimit(resource, &rl) < 0 ? -errno : 0;
}

/* The unprivileged user, for good: real, effective, saved and file-system ids, groups. */
static int become_user(const struct sandbox_user *u, char *err, size_t err_len)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2];
	uid_t r, e, s;

	/* Nothing but what the next three calls need, in any set: the bounding set too, so that
	 * not even an execve() (which seccomp forbids anyway) could bring a capability back. */
	if (sandbox_caps_limit((const int[]){ CAP_SETUID, CAP_SETGID }, 2, true) < 0)
		return fail(err, err_len, -errno, "trimming capabilities");
	if (setgroups((size_t)u->ngroups, u->groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0)
		return fail(err, err_len, -errno, "becoming the worker user");
	if (getresuid(&r, &e, &s) < 0 || r != u->uid || e != u->uid || s != u->uid)
		return fail(err, err_len, -EPERM, "the worker user's ids did not stick");
	if (syscall(SYS_capget, &hdr, caps) < 0)
		return fail(err, err_len, -errno, "capget");
	for (int i = 0; i < 2; i++)
		if (caps[i].effective || caps[i].permitted || caps[i].inheritable)
			return fail(err, err_len, -EPERM, "capabilities left after dropping root");
	return 0;
}

int vm_jail_enter(struct vm_jail *j, struct vm *vm, char *err, size_t err_len)
{
	struct rlimit memlock;
	int ret;

	signal(SIGXFSZ, SIG_IGN);
	j->nofile = (uint64_t)highest_fd() + 1 + vm->nr_vcpus + 16;
	j->fsize = JAIL_FSIZE_MAX;
	if (j->privileged) {
		if (getpid() != 1)
			return util_error(
				err, err_len, -EINVAL,
				"sandbox: lockstep-vm must be the first process of a pid "
				"namespace of its own (lockstepd and the relay see to it)");
		ret = sandbox_cgroup_of(0, &j->cgroup);
		if (ret)
			return util_error(err, err_len, ret,
					  "sandbox: lockstep-vm runs in no lockstep cgroup");
		if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) < 0)
			return fail(err, err_len, -errno, "mount, network and IPC namespaces");
		j->namespaces = true;
		ret = empty_root(vm, err, err_len);
		if (ret)
			return ret;
	}
	if (getrlimit(RLIMIT_MEMLOCK, &memlock) < 0)
		return fail(err, err_len, -errno, "rlimits");
	j->memlock = memlock.rlim_cur;
	if ((ret = set_limit(RLIMIT_NOFILE, j->nofile)) ||
	    (ret = set_limit(RLIMIT_FSIZE, j->fsize)) || (ret = set_limit(RLIMIT_CORE, 0)) ||
	    (ret = set_limit(RLIMIT_MEMLOCK, j->memlock)))
		return fail(err, err_len, ret, "rlimits");
	/* The steering thread's real-time priority 1 (vm/steering.c), which it sets before its
	 * filter; no other thread's list has sched_setscheduler().  Raising the hard limit takes
	 * CAP_SYS_RESOURCE, which a container may withhold: then that thread runs as any other. */
	if (j->privileged)
		set_limit(RLIMIT_RTPRIO, 1);
	if (j->privileged && (ret = become_user(&j->user, err, err_len)))
		return ret;
	if (j->relayed && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail(err, err_len, -errno, "dying with the relay");
	j->uid = getuid(); /* for reports: the filters will not allow asking later */
	j->gid = getgid();
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, err_len, -errno, "no_new_privs");
	ret = vm_seccomp_trap_init();
	if (ret)
		return fail(err, err_len, ret, "the SIGSYS handler");
	return 0;
}

int vm_jail_filters(struct vm_jail *j, struct vm *vm)
{
	int ret = 0;

	for (uint32_t i = 0; i < vm->nr_vcpus && !ret; i++)
		ret = vm_seccomp_build(vm, VM_THREAD_VCPU, &vm->vcpus[i], &vm->vcpus[i].filter,
				       &j->syscalls[VM_THREAD_VCPU]);
	for (int kind = 0; kind < VM_THREAD_KINDS && !ret; kind++)
		if (kind != VM_THREAD_VCPU)
			ret = vm_seccomp_build(vm, kind, NULL, &j->filter[kind],
					       &j->syscalls[kind]);
	return ret;
}

static const char *const kind_names[VM_THREAD_KINDS] = {
	[VM_THREAD_CONTROL] = "control",
	[VM_THREAD_VCPU] = "vcpu",
	[VM_THREAD_DEVICES] = "devices",
	[VM_THREAD_STEERING] = "irq-steer",
};

int vm_jail_lock_thread(struct vm *vm, enum vm_thread_kind kind)
{
	struct vm_jail *j = vm->jail;
	int ret;

	if (!j || !j->filter[kind])
		return 0;
	ret = vm_seccomp_install(j->filter[kind]);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "sandbox: the %s thread's seccomp filter: %s",
			 kind_names[kind], strerror(-ret));
		vm_request_stop(vm, VM_STOP_ERROR, VM_EXIT_SANDBOX);
		return ret;
	}
#ifdef LOCKSTEP_TEST_HOOKS
	if (j->test_trap == (int)kind + 1)
		syscall(SYS_getpgrp); /* forbidden: the SIGSYS handler ends the process */
#endif
	return 0;
}

void vm_jail_fini(struct vm_jail *j)
{
	for (int kind = 0; kind < VM_THREAD_KINDS; kind++) {
		vm_seccomp_free(j->filter[kind]);
		j->filter[kind] = NULL;
	}
}

json_t *vm_jail_json(const struct vm_jail *j)
{
	json_t *out, *cg = json_null();

	if (!j || !j->enabled)
		return json_pack("{s:b}", "enabled", false);
	if (j->cgroup.version)
		cg = json_pack("{s:i, s:s, s:s, s:I, s:I}", "version", j->cgroup.version, "memory",
			       j->cgroup.memory_dir, "pids", j->cgroup.pids_dir, "memory_max",
			       (json_int_t)j->cgroup.memory_max, "pids_max",
			       (json_int_t)j->cgroup.pids_max);
	out = json_pack("{s:b, s:i, s:i, s:b, s:{s:i, s:i, s:i, s:i}, s:o, s:{s:I, s:I, s:i, s:I}}",
			"enabled", true, "uid", (int)j->uid, "gid", (int)j->gid, "no_new_privs",
			true, "seccomp", "control", (int)j->syscalls[VM_THREAD_CONTROL], "vcpu",
			(int)j->syscalls[VM_THREAD_VCPU], "devices",
			(int)j->syscalls[VM_THREAD_DEVICES], "irq_steer",
			(int)j->syscalls[VM_THREAD_STEERING], "cgroup", cg, "rlimits", "nofile",
			(json_int_t)j->nofile, "fsize", (json_int_t)j->fsize, "core", 0, "memlock",
			(json_int_t)j->memlock);
	if (j->privileged)
		json_object_set_new(out, "user", json_string(j->user.name));
	json_object_set_new(out, "namespaces",
			    j->namespaces ? json_pack("[s, s, s, s]", "pid", "mnt", "net", "ipc") :
					    json_array());
	json_object_set_new(out, "root", json_string(j->namespaces ? "empty" : "host"));
	return out;
}
