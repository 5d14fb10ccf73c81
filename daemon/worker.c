/*
 * Workers: one lockstep-vm process per running VM.  This file spawns them (own session, so
 * they outlive the daemon), re-attaches to survivors after a daemon restart, carries requests
 * and events over their control channel (vm/protocol.h, the daemon's end), and notices their
 * end through a pidfd at once.
 *
 * A worker's end is decided by the pidfd, never by the channel: the channel can close while
 * the process runs on (a preserved crash, a daemon restart).  Exit status comes from waitid()
 * for our own children and from the worker's exit file or "stopped" event otherwise.
 * What the worker says goes to its VM through the struct worker_events it was spawned or
 * re-attached with (the registry's); this file calls nothing above the store.  Loop thread
 * only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define WORKER_KILL_GRACE_MS 3000
#define WORKER_READ_BUF (64u << 10)

/* starttime (field 22) of /proc/PID/stat: a pid and this together name one process. */
static int proc_start_ticks(pid_t pid, uint64_t *ticks)
{
	struct util_proc_stat st;
	int ret = util_proc_stat_read((int)pid, 0, &st);

	if (!ret)
		*ticks = st.start_ticks;
	return ret;
}

/* The owner (its VM) and each initialised libuv handle hold a reference. */
static void worker_unref(struct worker *w)
{
	if (--w->refs == 0) {
		util_lines_fini(&w->lines);
		free(w->rbuf);
		free(w->tids);
		free(w);
	}
}

static void handle_closed(uv_handle_t *h)
{
	worker_unref(h->data);
}

static void maybe_finish(struct worker *w);

static void fail_requests(struct worker *w, const char *why)
{
	while (!util_list_empty(&w->requests)) {
		struct worker_request *r =
			util_container_of(w->requests.next, struct worker_request, link);

		util_list_del(&r->link);
		r->fn(w->vm, r->arg, NULL, why, EPIPE);
		free(r);
	}
}

static void close_chan(struct worker *w)
{
	if (!w->chan_open)
		return;
	w->chan_open = false;
	uv_close((uv_handle_t *)&w->chan, handle_closed);
	fail_requests(w, "the VM's worker process went away");
	maybe_finish(w);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	confine_worker_free(w);
	w->finished = true; /* nothing more is reported for a worker being freed */
	close_chan(w);
	w->vm = NULL;
	if (w->pid_watch_init)
		uv_close((uv_handle_t *)&w->pid_watch, handle_closed);
	uv_close((uv_handle_t *)&w->kill_timer, handle_closed);
	/* uv_poll does not own the fd; closing it now is safe, the handle is stopped. */
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
	worker_unref(w);
}

static void write_done(uv_write_t *req, int status)
{
	free(req->data);
	free(req);
}

static void hello(struct worker *w, struct vm_proto_hello *h)
{
	free(w->tids);
	w->tids = h->tids; /* taken from the message */
	w->nr_vcpus = h->nr_vcpus;
	h->tids = NULL;
	confine_host_tids(w);
	w->events->hello(w->vm, h);
}

static void stopped(struct worker *w, const struct vm_proto_stopped *st)
{
	w->stop_reason = st->reason;
	w->stop_status = st->status;
	w->stopped_event = true;
	w->preserved = st->preserved;
	w->events->stopped(w->vm, st);
}

static void handle_reply(struct worker *w, const struct vm_proto_msg *msg)
{
	struct util_list *pos;

	util_list_for_each(pos, &w->requests) {
		struct worker_request *r = util_container_of(pos, struct worker_request, link);

		if (r->id != msg->id)
			continue;
		util_list_del(&r->link);
		r->fn(w->vm, r->arg, msg->result, msg->error, msg->error ? msg->err : 0);
		free(r);
		return;
	}
}

/*
 * A worker of another protocol version: one this daemon spawned is ended (its start fails);
 * one that outlived an older daemon keeps running, unreachable, until it is destroyed.
 */
static void incompatible(struct worker *w, const char *why)
{
	struct dvm *vm = w->vm;

	util_log(&vm->d->log, UTIL_LOG_ERROR, "VM %s: %s; not talking to it", vm->cfg.name, why);
	close_chan(w);
	if (w->child)
		pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0);
	else
		w->events->unreachable(vm, why);
}

static int on_line(void *arg, const char *line, size_t len, int err)
{
	struct worker *w = arg;
	struct vm_proto_msg msg;
	char why[128];
	int ret;

	if (err) {
		util_log(&w->vm->d->log, UTIL_LOG_WARN,
			 "VM %s: a message from the worker over %u bytes; closing its channel",
			 w->vm->cfg.name, VM_PROTO_MSG_MAX);
		close_chan(w);
		return 1;
	}
	ret = vm_proto_msg_decode(line, len, &msg, why, sizeof(why));
	if (ret == -EPROTONOSUPPORT)
		incompatible(w, why);
	else if (ret)
		util_log(&w->vm->d->log, UTIL_LOG_WARN, "VM %s: malformed message from worker: %s",
			 w->vm->cfg.name, why);
	else if (!msg.is_event)
		handle_reply(w, &msg);
	else if (msg.event == VM_EVENT_HELLO)
		hello(w, &msg.hello);
	else if (msg.event == VM_EVENT_PVLOCK)
		w->events->pvlock(w->vm, &msg.pvlock);
	else
		stopped(w, &msg.stopped);
	vm_proto_msg_fini(&msg);
	return !w->chan_open;
}

static void chan_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct worker *w = h->data;

	*buf = uv_buf_init(w->rbuf, WORKER_READ_BUF);
}

static void chan_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct worker *w = s->data;

	if (n < 0) {
		close_chan(w); /* the process's end is the pidfd's to report */
		return;
	}
	util_lines_feed(&w->lines, buf->base, (size_t)n, on_line, w);
}

static int open_chan(struct worker *w, int fd)
{
	struct daemon *d = w->vm->d;
	int ret;

	if (!w->rbuf && !(w->rbuf = malloc(WORKER_READ_BUF))) {
		close(fd);
		return -ENOMEM;
	}
	util_lines_reset(&w->lines);
	ret = uv_pipe_init(d->loop, &w->chan, 0);
	if (ret) {
		close(fd);
		return ret;
	}
	w->refs++;
	w->chan.data = w;
	ret = uv_pipe_open(&w->chan, fd);
	if (!ret)
		ret = uv_read_start((uv_stream_t *)&w->chan, chan_alloc, chan_read);
	w->chan_open = true;
	if (ret)
		close_chan(w);
	return ret;
}

/*
 * The end of a worker is known once the process has exited (pidfd) and its channel has been
 * read to the end, so its last words ("stopped") are never lost to ordering.
 */
static void maybe_finish(struct worker *w)
{
	enum vm_stop_reason reason;
	bool have_exit;
	char text[48];
	int status, nr;

	if (!w->exited || w->chan_open || w->finished || !w->vm)
		return;
	w->finished = true;
	have_exit = store_read_exit(w->vm, &reason, &status, &nr) == 0;
	if (have_exit && reason == VM_STOP_SECCOMP) {
		/* Its seccomp filter stopped it: its SIGSYS handler wrote the exit file. */
		w->events->ended(w->vm, true, confine_stop_reason(reason, nr, text, sizeof(text)),
				 w->exit_code >= 0 ? w->exit_code : status);
	} else if (w->stopped_event) {
		w->events->ended(w->vm, vm_stop_reason_is_crash(w->stop_reason),
				 vm_stop_reason_name(w->stop_reason),
				 w->exit_code >= 0 ? w->exit_code : w->stop_status);
	} else if (have_exit) {
		/* It told its exit file rather than us (no controller was connected). */
		w->events->ended(w->vm, vm_stop_reason_is_crash(reason),
				 vm_stop_reason_name(reason),
				 w->exit_code >= 0 ? w->exit_code : status);
	} else {
		/* Killed, or died on a bug: no last word. */
		w->events->ended(w->vm, true, "worker-died", w->exit_code);
	}
}

static void pid_exited(uv_poll_t *h, int status, int events)
{
	struct worker *w = h->data;
	siginfo_t si = { 0 };

	uv_poll_stop(h);
	w->exited = true;
	if (w->child && waitid(P_PIDFD, (id_t)w->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid)
		w->exit_code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	maybe_finish(w);
}

static int watch_pid(struct worker *w)
{
	int ret = uv_poll_init(w->vm->d->loop, &w->pid_watch, w->pidfd);

	if (ret)
		return ret;
	w->pid_watch_init = true;
	w->refs++;
	w->pid_watch.data = w;
	return uv_poll_start(&w->pid_watch, UV_READABLE, pid_exited);
}

static struct worker *worker_new(struct dvm *vm, const struct worker_events *events)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->vm = vm;
	w->events = events;
	w->pidfd = -1;
	w->exit_code = -1;
	util_lines_init(&w->lines, VM_PROTO_MSG_MAX);
	util_list_init(&w->requests);
	w->refs = 2; /* the VM's, and the kill timer's */
	uv_timer_init(vm->d->loop, &w->kill_timer);
	w->kill_timer.data = w;
	return w;
}

int worker_spawn(struct dvm *vm, const struct worker_events *events)
{
	struct daemon *d = vm->d;
	char def[PATH_MAX], console[PATH_MAX], ctl[PATH_MAX], exitf[PATH_MAX], logf[PATH_MAX],
		cons[PATH_MAX];
	char fd_arg[16];
	char *argv[] = { d->opts.vm_binary,
			 "--config",
			 def,
			 "--console-log",
			 console,
			 "--console-append",
			 "--control-fd",
			 fd_arg,
			 "--control-socket",
			 ctl,
			 "--console-socket",
			 cons,
			 "--exit-file",
			 exitf,
			 NULL };
	struct worker *w;
	int sv[2], ret;
	pid_t pid;

	snprintf(fd_arg, sizeof(fd_arg), "%d", VM_PROTO_CONTROL_FD);
	/* The worker boots the run's definition (store_save_live wrote it) and appends its
	 * console to lockstepd's copy in the run directory (store_begin_run marked this run). */
	store_run_path(vm, ".def.json", def, sizeof(def));
	store_console_path(vm, console, sizeof(console));
	store_run_path(vm, ".ctl", ctl, sizeof(ctl));
	store_run_path(vm, ".cons", cons, sizeof(cons));
	store_run_path(vm, ".exit", exitf, sizeof(exitf));
	store_run_path(vm, ".log", logf, sizeof(logf));
	unlink(exitf);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	w = worker_new(vm, events);
	if (!w) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	/* Its own session (a daemon killed with its process group leaves VMs running), and its
	 * sandbox: daemon/confine.c. */
	ret = confine_spawn(w, argv, logf, sv[1], &pid, &w->pidfd);
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		worker_free(w);
		return ret;
	}
	w->pid = pid;
	w->child = true;
	proc_start_ticks(pid, &w->start_ticks);
	ret = watch_pid(w);
	if (ret)
		close(sv[0]);
	if (ret || open_chan(w, sv[0])) {
		pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0);
		waitpid(pid, NULL, 0);
		w->exited = true;
		worker_free(w);
		return -EIO;
	}
	vm->worker = w;
	return 0;
}

static int connect_control(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (util_strlcpy(addr.sun_path, path, sizeof(addr.sun_path)))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

/* Whether `pid` runs lockstepd's worker binary (the same file; or the one its path named
 * before it was replaced, which the kernel reports as "PATH (deleted)"). */
static bool runs_worker_binary(const struct daemon *d, pid_t pid)
{
	char exe[64], target[PATH_MAX + 16], deleted[PATH_MAX + 16];
	struct stat a, b;
	ssize_t n;

	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	if (stat(exe, &a) == 0 && stat(d->opts.vm_binary, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return true;
	n = readlink(exe, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	snprintf(deleted, sizeof(deleted), "%s (deleted)", d->opts.vm_binary);
	return strcmp(target, deleted) == 0;
}

/* Whether the process's command line names `ctl` (its VM's control socket) as an argument. */
static bool names_control_socket(pid_t pid, const char *ctl)
{
	char path[64], *args = NULL;
	size_t len = 0;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (util_read_text(path, 1u << 20, &args, &len))
		return false;
	for (size_t off = 0; off < len && !found; off += strlen(args + off) + 1)
		found = strcmp(args + off, ctl) == 0;
	free(args);
	return found;
}

/* The pid of the process that listens at the other end of `fd` (SO_PEERCRED). */
static pid_t peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : -1;
}

int worker_attach(struct dvm *vm, const struct store_runtime *rec,
		  const struct worker_events *events, bool *reachable)
{
	char ctl[PATH_MAX];
	uint64_t ticks;
	struct worker *w;
	int fd, ret;

	if (rec->pid <= 1 || proc_start_ticks(rec->pid, &ticks) || ticks != rec->start_ticks)
		return -ESRCH; /* gone, or the pid now names another process */
	/* NAME.run is only a file: believe it about a process that is this VM's worker, which
	 * runs lockstep-vm with this VM's control socket and listens there itself. */
	store_run_path(vm, ".ctl", ctl, sizeof(ctl));
	if (!runs_worker_binary(vm->d, rec->pid) || !names_control_socket(rec->pid, ctl)) {
		util_log(&vm->d->log, UTIL_LOG_WARN,
			 "VM %s: pid %d is not its worker (not %s with --control-socket %s): not "
			 "re-attached",
			 vm->cfg.name, (int)rec->pid, vm->d->opts.vm_binary, ctl);
		return -EPERM;
	}
	fd = connect_control(ctl);
	if (fd >= 0 && peer_pid(fd) != rec->pid) {
		util_log(&vm->d->log, UTIL_LOG_WARN,
			 "VM %s: %s is served by pid %d, not by its worker %d: not re-attached",
			 vm->cfg.name, ctl, (int)peer_pid(fd), (int)rec->pid);
		close(fd);
		return -EPERM;
	}
	w = worker_new(vm, events);
	if (!w) {
		ret = -ENOMEM;
		goto err_fd;
	}
	w->pid = rec->pid;
	w->start_ticks = rec->start_ticks;
	w->pidfd = pidfd_open(w->pid, 0);
	if (w->pidfd < 0) {
		ret = -errno;
		goto err_worker;
	}
	ret = watch_pid(w);
	if (ret)
		goto err_worker;
	confine_attach(w);
	vm->worker = w;
	/* Alive but unreachable (a preserved crash that lost its socket) is still ours. */
	*reachable = fd >= 0 && open_chan(w, fd) == 0;
	return 0;

err_worker:
	worker_free(w);
err_fd:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Sends one encoded request (text, stolen) and files it for its reply. */
static int send_request(struct worker *w, char *text, size_t len, worker_reply_fn fn, void *arg)
{
	struct worker_request *r;
	uv_write_t *req;
	uv_buf_t buf;
	int ret;

	r = calloc(1, sizeof(*r));
	req = calloc(1, sizeof(*req));
	if (!text || !r || !req) {
		free(text);
		free(r);
		free(req);
		return -ENOMEM;
	}
	r->id = ++w->next_request;
	r->fn = fn;
	r->arg = arg;
	buf = uv_buf_init(text, (unsigned)len);
	req->data = text;
	ret = uv_write(req, (uv_stream_t *)&w->chan, &buf, 1, write_done);
	if (ret) {
		free(text);
		free(req);
		free(r);
		return ret;
	}
	util_list_add_tail(&w->requests, &r->link);
	return 0;
}

int worker_request(struct worker *w, enum vm_proto_cmd cmd, worker_reply_fn fn, void *arg)
{
	size_t len = 0;
	char *text;

	if (!w->chan_open)
		return -ENOTCONN;
	text = vm_proto_request_encode(w->next_request + 1, cmd, &len);
	return send_request(w, text, len, fn, arg);
}

int worker_request_steering(struct worker *w, bool on, worker_reply_fn fn, void *arg)
{
	size_t len = 0;
	char *text;

	if (!w->chan_open)
		return -ENOTCONN;
	text = vm_proto_steering_encode(w->next_request + 1, on, &len);
	return send_request(w, text, len, fn, arg);
}

static void kill_timeout(uv_timer_t *t)
{
	struct worker *w = t->data;

	if (!w->exited && w->pidfd >= 0)
		pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0);
}

static void stop_replied(struct dvm *vm, void *arg, json_t *result, const char *error, int err)
{
	/* The process ends on its own; the pidfd reports it. */
}

void worker_destroy(struct worker *w)
{
	if (w->exited)
		return;
	if (worker_request(w, VM_CMD_STOP, stop_replied, NULL) != 0 && w->pidfd >= 0)
		pidfd_send_signal(w->pidfd, SIGTERM, NULL, 0);
	uv_timer_start(&w->kill_timer, kill_timeout, WORKER_KILL_GRACE_MS, 0);
}
