/*
 * Starting a worker: clone3() with CLONE_PIDFD (the pidfd comes with the process, so a reused
 * pid can never be mistaken for it) and, for a confined worker, CLONE_NEWPID, so the worker is
 * pid 1 of a namespace of its own and sees no other process; under cgroup v2 also
 * CLONE_INTO_CGROUP, so it is born in its cgroup (moving a process later waits for RCU grace
 * periods: milliseconds).  Between clone3() and execve() the child joins its cgroup (v1, or a
 * kernel without CLONE_INTO_CGROUP), starts a session, puts the given descriptors at 0..n-1, marks
 * every other one close-on-exec and resets signal dispositions and mask: only
 * async-signal-safe calls, because lockstepd, the caller, has other threads whose locks the
 * child's copy of memory may hold.  An execve() failure travels back through a pipe, so the
 * caller gets an error rather than a worker that exits 127.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/util.h"

#define SPAWN_FDS_MAX 16

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ull
#endif

/* struct clone_args up to its cgroup field (CLONE_ARGS_SIZE_VER2). */
struct clone_args_v2 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

static __attribute__((noreturn)) void child(const struct sandbox_spawn *s, bool in_cgroup,
					    int errfd)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int moved[SPAWN_FDS_MAX], e;
	sigset_t none;

	if (s->cgroup && !in_cgroup && sandbox_cgroup_join(s->cgroup) < 0)
		goto fail;
	if (setsid() < 0)
		goto fail;
	/* Out of the way of the targets first: a source may sit where another one goes. */
	errfd = fcntl(errfd, F_DUPFD_CLOEXEC, (int)s->nr_fds);
	for (unsigned i = 0; i < s->nr_fds; i++)
		if ((moved[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, (int)s->nr_fds)) < 0)
			goto fail;
	for (unsigned i = 0; i < s->nr_fds; i++)
		if (dup2(moved[i], (int)i) < 0)
			goto fail;
	if (syscall(SYS_close_range, s->nr_fds, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		goto fail;
	sigemptyset(&dfl.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL); /* glibc's reserved signals fail: harmless */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(s->argv[0], s->argv, s->envp);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0) {
		/* The parent sees the pipe close without a word and reports a failure anyway. */
	}
	_exit(127);
}

int sandbox_spawn(const struct sandbox_spawn *s, pid_t *pid, int *pidfd, char *err, size_t err_len)
{
	int pipefd[2], child_pidfd = -1, child_errno = 0, cgroup_fd = -1;
	struct clone_args_v2 args = {
		.flags = CLONE_PIDFD | (s->new_pid_ns ? CLONE_NEWPID : 0),
		.pidfd = (uint64_t)(uintptr_t)&child_pidfd,
		.exit_signal = SIGCHLD,
	};
	ssize_t n;
	long ret;

	if (s->nr_fds > SPAWN_FDS_MAX)
		return util_error(err, err_len, -EINVAL, "too many descriptors for a worker");
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return util_error(err, err_len, -errno, "pipe: %s", strerror(errno));
	if (s->cgroup && s->cgroup->version == 2)
		cgroup_fd = open(s->cgroup->memory_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
	}
	ret = syscall(SYS_clone3, &args, sizeof(args));
	if (ret < 0 && cgroup_fd >= 0 && (errno == EINVAL || errno == E2BIG)) {
		/* A kernel before 5.7: the child joins by itself. */
		args.flags &= ~CLONE_INTO_CGROUP;
		args.cgroup = 0;
		ret = syscall(SYS_clone3, &args, sizeof(args));
	}
	if (ret == 0)
		child(s, args.flags & CLONE_INTO_CGROUP, pipefd[1]);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	close(pipefd[1]);
	if (ret < 0) {
		ret = -errno;
		close(pipefd[0]);
		return util_error(err, err_len, (int)ret, "cannot start %s: clone3: %s%s",
				  s->argv[0], strerror((int)-ret),
				  ret == -EPERM && s->new_pid_ns ?
					  " (a pid namespace needs CAP_SYS_ADMIN)" :
					  "");
	}
	do
		n = read(pipefd[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n != 0) {
		/* It never ran the program: reap it here. */
		waitpid((pid_t)ret, NULL, 0);
		close(child_pidfd);
		if (n != (ssize_t)sizeof(child_errno) || !child_errno)
			child_errno = EIO;
		return util_error(err, err_len, -child_errno, "cannot start %s: %s", s->argv[0],
				  strerror(child_errno));
	}
	*pid = (pid_t)ret;
	*pidfd = child_pidfd;
	return 0;
}

void sandbox_syscall_name(int nr, char *buf, size_t size)
{
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	if (name)
		util_strlcpy(buf, name, size);
	else
		snprintf(buf, size, "#%d", nr);
	free(name);
}
