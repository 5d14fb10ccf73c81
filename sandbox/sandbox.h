/*
 * sandbox — the confinement that lockstepd and lockstep-vm share (docs/security.md):
 *
 *   - which directories a client may name files in (struct sandbox_paths) and how such a file
 *     is opened: relative to the allowed directory with openat2(RESOLVE_BENEATH |
 *     RESOLVE_NO_SYMLINKS), never following a link, never blocking, regular files only, and
 *     with the file-system identity of the worker's unprivileged user, never as root;
 *   - the worker's user (struct sandbox_user);
 *   - the cgroup a VM runs in, with memory and pids limits: cgroup v2 where it has those
 *     controllers, else the v1 memory and pids hierarchies (struct sandbox_cgroup);
 *   - starting a worker in a pid namespace of its own, inside its cgroup, with a clean
 *     environment and only the descriptors it is given (sandbox_spawn).
 *
 * The worker's own last steps (an empty root, rlimits, dropping root, seccomp) are lockstep-vm's
 * (vm/jail.c).  Nothing here keeps state: every object is a struct its caller holds.
 */
#ifndef LOCKSTEP_SANDBOX_H
#define LOCKSTEP_SANDBOX_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_USER_DEFAULT "lockstep-vm"
#define SANDBOX_PATHS_MAX 32
#define SANDBOX_DIR_MAX 1024

/* ---- allowed directories (sandbox/paths.c) ---- */

struct sandbox_paths {
	unsigned nr;
	char dir[SANDBOX_PATHS_MAX][SANDBOX_DIR_MAX];
};

/*
 * Adds a directory beneath which clients may name files.  It must be absolute and canonical
 * (no ".", ".." or empty components, no trailing '/') and not "/" itself; repeats are ignored.
 */
int sandbox_paths_add(struct sandbox_paths *p, const char *dir, char *err, size_t err_len);
/* "DIR, DIR, ..." for messages ("none" when empty). */
void sandbox_paths_format(const struct sandbox_paths *p, char *buf, size_t size);
/*
 * Whether `path` (the value of definition key `key`) lies beneath an allowed directory, judged
 * on its text: absolute, canonical, and below one of them.  0 and the index of that directory
 * in *which (if not NULL), or -EPERM with a message that names the key and the rule.
 */
int sandbox_paths_check(const struct sandbox_paths *p, const char *key, const char *path,
			unsigned *which, char *err, size_t err_len);

/* ---- the worker's user (sandbox/identity.c) ---- */

#define SANDBOX_GROUPS_MAX 64

struct sandbox_user {
	char name[64];
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[SANDBOX_GROUPS_MAX];
};

/* Looks the user up (passwd and group databases); -ENOENT with a message if there is none. */
int sandbox_user_lookup(const char *name, struct sandbox_user *u, char *err, size_t err_len);

/*
 * Limits the calling thread's capabilities to the CAP_* numbers in `keep`: effective and
 * permitted sets, no inheritable or ambient ones, and with `bounding` the bounding set too, so
 * that no program it executes regains more.  Capabilities belong to threads: threads created
 * afterwards inherit the result, threads that exist keep theirs.
 */
int sandbox_caps_limit(const int *keep, unsigned n, bool bounding);
/* Whether the calling thread has the CAP_* number `cap` in its effective set. */
bool sandbox_cap_effective(int cap);

/*
 * Opens a file a client named (definition key `key`), as `flags`/`mode` of open(2) ask: it
 * must lie beneath one of `paths` (checked again here, at open time), is resolved relative to
 * that directory with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS and
 * O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, and must turn out to be a regular file.  With `as`, the
 * calling thread takes that user's file-system identity (fsuid, fsgid and groups) for the
 * lookups and the open, so the kernel checks that user's permissions; it needs root and a
 * single-threaded process (setgroups() applies to every thread).  Returns the descriptor, or
 * -errno with a message naming the key.
 */
int sandbox_open(const struct sandbox_paths *paths, const struct sandbox_user *as, const char *key,
		 const char *path, int flags, mode_t mode, char *err, size_t err_len);

/* ---- cgroups (sandbox/cgroup.c) ---- */

struct sandbox_cgroup {
	int version; /* 1 or 2; 0 = none */
	/* The VM's cgroup directories (the same directory twice under v2). */
	char memory_dir[PATH_MAX];
	char pids_dir[PATH_MAX];
	uint64_t memory_max, pids_max;
	int procs_fd[2]; /* the leaves' cgroup.procs, open for the new process to join; -1 */
};

/*
 * Makes the parent of the VMs' cgroups (lockstep/, placed as below) with the controllers
 * enabled; *version says which hierarchy (1 or 2).  A hierarchy's root directory takes
 * CAP_DAC_OVERRIDE to write to, so lockstepd does this before it drops its capabilities;
 * sandbox_cgroup_create() does it too, harmlessly where it is done.
 */
int sandbox_cgroup_prepare(int *version, char *err, size_t err_len);
/*
 * Creates cgroup lockstep/`leaf` with the limits and opens its cgroup.procs for a new process
 * to write itself into.  Under v2 it goes beside the caller's own cgroup (a cgroup that holds
 * processes cannot have children with controllers), under v1 beneath it in the memory and
 * pids hierarchies.  An existing empty leaf is reused; one with processes is -EBUSY.  Refuses
 * (-ENOTSUP, message) if neither v2 with memory and pids nor both v1 hierarchies exist.
 */
int sandbox_cgroup_create(const char *leaf, uint64_t memory_max, uint64_t pids_max,
			  struct sandbox_cgroup *cg, char *err, size_t err_len);
/*
 * The VM cgroup that process `pid` (0: the caller) runs in, with its limits as set: for
 * sandbox_cgroup_remove() and for reports.  -ENOENT if it is in none.
 */
int sandbox_cgroup_of(pid_t pid, struct sandbox_cgroup *cg);
/* A VM's limits: guest RAM + 1/16 of it + 256 MiB + 4 MiB per vCPU for the worker and KVM's
 * own structures (shadow page tables are charged too); its threads plus a margin. */
uint64_t sandbox_memory_max(uint64_t guest_ram, uint32_t vcpus);
uint64_t sandbox_pids_max(uint32_t vcpus);
/* Removes cgroup lockstep/`leaf` where sandbox_cgroup_create() would put it, if it exists and
 * is empty (a VM whose worker ended while nobody watched); -EBUSY while a process is in it. */
int sandbox_cgroup_remove_leaf(const char *leaf);
/* The new process joins: writes "0" to each cgroup.procs.  Async-signal-safe. */
int sandbox_cgroup_join(const struct sandbox_cgroup *cg);
/* Closes the cgroup.procs descriptors. */
void sandbox_cgroup_close(struct sandbox_cgroup *cg);
/* Removes the leaves once their processes are gone (-EBUSY while one is left). */
int sandbox_cgroup_remove(struct sandbox_cgroup *cg);
/* "v1 memory:/a/lockstep/x pids:/lockstep/x" or "v2 /lockstep/x", for logs. */
void sandbox_cgroup_describe(const struct sandbox_cgroup *cg, char *buf, size_t size);

/* ---- starting a worker (sandbox/spawn.c) ---- */

struct sandbox_spawn {
	char *const *argv; /* argv[0] is the program's path */
	char *const *envp;
	const int *fds; /* become descriptors 0..nr_fds-1; every other one is closed */
	unsigned nr_fds;
	bool new_pid_ns; /* the process is pid 1 of a new pid namespace (needs CAP_SYS_ADMIN) */
	const struct sandbox_cgroup *cgroup; /* joined before exec, or NULL */
};

/*
 * Starts the program in a session of its own with default signal handling and an empty signal
 * mask.  *pidfd is a pidfd for it (CLONE_PIDFD: no pid-reuse race).  An exec failure is
 * reported here (-errno with a message), not as an exit status.  Safe in a multithreaded
 * process: the child does nothing but async-signal-safe calls before execve().
 */
int sandbox_spawn(const struct sandbox_spawn *s, pid_t *pid, int *pidfd, char *err, size_t err_len);

/* The name of system call `nr` on this architecture ("openat"), or "#NR" if it has none. */
void sandbox_syscall_name(int nr, char *buf, size_t size);

#endif /* LOCKSTEP_SANDBOX_H */
