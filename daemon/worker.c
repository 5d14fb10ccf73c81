/*
 * Workers: one lockstep-vm process per running VM.  This file spawns them (own session, so
 * they outlive the daemon), re-attaches to survivors after a daemon restart, carries requests
 * and events over their control channel, and notices their end through a pidfd at once.
 *
 * A worker's end is decided by the pidfd, never by the channel: the channel can close while
 * the process runs on (a preserved crash, a daemon restart).  Exit status comes from waitid()
 * for our own children and from the worker's exit file or "stopped" event otherwise.
 * Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define WORKER_MSG_MAX (1u << 20)
#define WORKER_KILL_GRACE_MS 3000

extern char **environ;

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
		free(w->inbuf);
		json_decref(w->vcpus);
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

static void handle_event(struct worker *w, json_t *msg, const char *event)
{
	struct dvm *vm = w->vm;

	if (strcmp(event, "hello") == 0) {
		json_t *fd = json_object_get(msg, "sched_fd");

		json_decref(w->vcpus);
		w->vcpus = json_incref(json_object_get(msg, "vcpus"));
		dvm_sched_attach(vm, fd ? (int)json_integer_value(fd) : -1);
		if (vm->state == DVM_STARTING)
			dvm_set_state(vm, DVM_RUNNING, "booted");
	} else if (strcmp(event, "pvlock") == 0) {
		/* Lock-holder/waiter preemption seen by the worker's detector: pass it on. */
		json_t *ev = json_deep_copy(msg);

		json_object_del(ev, "event");
		json_object_set_new(ev, "type", json_string("pvlock"));
		json_object_set_new(ev, "vm", json_string(vm->cfg.name));
		vm->pvlock_events++;
		if (!json_is_true(json_object_get(msg, "ended")) && vm->scheduled)
			scheduler_preempted(
				vm->d->scheduler, vm->domain_id,
				(uint32_t)json_integer_value(json_object_get(msg, "culprit")),
				json_number_value(json_object_get(msg, "pressure")));
		events_emit(vm->d, ev);
	} else if (strcmp(event, "stopped") == 0) {
		const char *reason = json_string_value(json_object_get(msg, "reason"));

		util_strlcpy(w->stop_reason, reason ? reason : "unknown", sizeof(w->stop_reason));
		w->stop_status = (int)json_integer_value(json_object_get(msg, "status"));
		w->stopped_event = true;
		w->preserved = json_is_true(json_object_get(msg, "preserved"));
		if (json_is_object(json_object_get(msg, "stats"))) {
			json_decref(vm->last_stats);
			vm->last_stats = json_incref(json_object_get(msg, "stats"));
		}
		if (w->preserved)
			dvm_set_state(vm, DVM_CRASHED, "guest-crash");
	}
}

static void handle_reply(struct worker *w, json_t *msg)
{
	uint64_t id = (uint64_t)json_integer_value(json_object_get(msg, "id"));
	struct util_list *pos;

	util_list_for_each(pos, &w->requests) {
		struct worker_request *r = util_container_of(pos, struct worker_request, link);
		const char *error;

		if (r->id != id)
			continue;
		util_list_del(&r->link);
		error = json_string_value(json_object_get(msg, "error"));
		r->fn(w->vm, r->arg, json_object_get(msg, "result"), error,
		      error ? (int)json_integer_value(json_object_get(msg, "errno")) : 0);
		free(r);
		return;
	}
}

static void handle_line(struct worker *w, const char *line, size_t len)
{
	json_t *msg = json_loadb(line, len, 0, NULL);
	const char *event;

	if (!json_is_object(msg)) {
		util_log(&w->vm->d->log, UTIL_LOG_WARN, "VM %s: malformed message from worker",
			 w->vm->cfg.name);
	} else if ((event = json_string_value(json_object_get(msg, "event")))) {
		handle_event(w, msg, event);
	} else if (json_object_get(msg, "id")) {
		handle_reply(w, msg);
	}
	json_decref(msg);
}

static void chan_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct worker *w = h->data;
	size_t want = w->inlen + 65536;

	if (want > WORKER_MSG_MAX + 65536)
		want = WORKER_MSG_MAX + 65536;
	char *p = realloc(w->inbuf, want);

	if (!p) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	w->inbuf = p;
	*buf = uv_buf_init(w->inbuf + w->inlen, (unsigned)(want - w->inlen));
}

static void chan_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct worker *w = s->data;
	char *nl;

	if (n < 0) {
		close_chan(w); /* the process's end is the pidfd's to report */
		return;
	}
	w->inlen += (size_t)n;
	while (w->chan_open && (nl = memchr(w->inbuf, '\n', w->inlen))) {
		size_t len = (size_t)(nl - w->inbuf);

		handle_line(w, w->inbuf, len);
		memmove(w->inbuf, nl + 1, w->inlen - len - 1);
		w->inlen -= len + 1;
	}
	if (w->inlen > WORKER_MSG_MAX)
		close_chan(w);
}

static int open_chan(struct worker *w, int fd)
{
	struct daemon *d = w->vm->d;
	int ret;

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
	char reason[32];
	int status;

	if (!w->exited || w->chan_open || w->finished || !w->vm)
		return;
	w->finished = true;
	if (w->stopped_event) {
		dvm_worker_gone(w->vm, dvm_reason_is_crash(w->stop_reason), w->stop_reason,
				w->exit_code >= 0 ? w->exit_code : w->stop_status);
	} else if (store_read_exit(w->vm, reason, sizeof(reason), &status) == 0) {
		/* It told its exit file rather than us (no controller was connected). */
		dvm_worker_gone(w->vm, dvm_reason_is_crash(reason), reason,
				w->exit_code >= 0 ? w->exit_code : status);
	} else {
		/* Killed, or died on a bug: no last word. */
		dvm_worker_gone(w->vm, true, "worker-died", w->exit_code);
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

static struct worker *worker_new(struct dvm *vm)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->vm = vm;
	w->pidfd = -1;
	w->exit_code = -1;
	util_list_init(&w->requests);
	w->refs = 2; /* the VM's, and the kill timer's */
	uv_timer_init(vm->d->loop, &w->kill_timer);
	w->kill_timer.data = w;
	return w;
}

static int spawn_args(struct dvm *vm, char *def_path, size_t def_size, char *console,
		      size_t console_size)
{
	struct vmdef cfg;
	json_t *json;
	int ret;

	/* The worker boots the definition as it is now, with its console in the run dir. */
	ret = vmdef_copy(&cfg, &vm->cfg);
	if (ret)
		return ret;
	cfg.serial_stdout = false;
	json = vmdef_to_json(&cfg);
	vmdef_fini(&cfg);
	if (!json)
		return -ENOMEM;
	dvm_run_path(vm, ".def.json", def_path, def_size);
	ret = store_write_atomic(def_path, json);
	json_decref(json);
	dvm_console_path(vm, console, console_size);
	return ret;
}

int worker_spawn(struct dvm *vm)
{
	struct daemon *d = vm->d;
	char def[PATH_MAX], console[PATH_MAX], ctl[PATH_MAX], exitf[PATH_MAX], logf[PATH_MAX];
	char *argv[] = { d->opts.vm_binary,
			 "--config",
			 def,
			 "--serial-log",
			 console,
			 "--control-fd",
			 "3",
			 "--control-socket",
			 ctl,
			 "--exit-file",
			 exitf,
			 NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	struct worker *w;
	int sv[2], ret;
	pid_t pid;

	ret = spawn_args(vm, def, sizeof(def), console, sizeof(console));
	if (ret)
		return ret;
	dvm_run_path(vm, ".ctl", ctl, sizeof(ctl));
	dvm_run_path(vm, ".exit", exitf, sizeof(exitf));
	dvm_run_path(vm, ".log", logf, sizeof(logf));
	unlink(exitf);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	w = worker_new(vm);
	if (!w) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&dflt);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	/* Its own session: a daemon killed with its process group leaves VMs running. */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
						POSIX_SPAWN_SETSIGDEF);
	ret = -posix_spawn(&pid, d->opts.vm_binary, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		worker_free(w);
		return ret;
	}
	w->pid = pid;
	w->child = true;
	proc_start_ticks(pid, &w->start_ticks);
	w->pidfd = pidfd_open(pid, 0);
	if (w->pidfd < 0 || watch_pid(w) || open_chan(w, sv[0])) {
		ret = w->pidfd < 0 ? -errno : -EIO;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (w->pidfd < 0)
			close(sv[0]);
		worker_free(w);
		return ret;
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

int worker_attach(struct dvm *vm, pid_t pid, uint64_t start_ticks)
{
	char ctl[PATH_MAX];
	uint64_t ticks;
	struct worker *w;
	int fd, ret;

	if (proc_start_ticks(pid, &ticks) || ticks != start_ticks)
		return -ESRCH; /* gone, or the pid now names another process */
	w = worker_new(vm);
	if (!w)
		return -ENOMEM;
	w->pid = pid;
	w->start_ticks = start_ticks;
	w->pidfd = pidfd_open(pid, 0);
	if (w->pidfd < 0) {
		ret = -errno;
		worker_free(w);
		return ret;
	}
	ret = watch_pid(w);
	if (ret) {
		worker_free(w);
		return ret;
	}
	vm->worker = w;
	dvm_run_path(vm, ".ctl", ctl, sizeof(ctl));
	fd = connect_control(ctl);
	if (fd >= 0 && open_chan(w, fd) == 0) {
		dvm_set_state(vm, DVM_RUNNING, "re-attached");
	} else {
		/* Alive but unreachable (a preserved crash that lost its socket): still ours. */
		dvm_set_state(vm, DVM_CRASHED, "unreachable");
	}
	return 0;
}

int worker_request(struct worker *w, const char *cmd, json_t *args, worker_reply_fn fn, void *arg)
{
	struct worker_request *r;
	json_t *msg;
	char *text;
	uv_buf_t buf;
	uv_write_t *req;
	size_t len;
	int ret;

	if (!w->chan_open) {
		json_decref(args);
		return -ENOTCONN;
	}
	msg = args ? args : json_object();
	json_object_set_new(msg, "id", json_integer((json_int_t)++w->next_request));
	json_object_set_new(msg, "cmd", json_string(cmd));
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	r = calloc(1, sizeof(*r));
	req = calloc(1, sizeof(*req));
	if (!text || !r || !req) {
		free(text);
		free(r);
		free(req);
		return -ENOMEM;
	}
	r->id = w->next_request;
	r->fn = fn;
	r->arg = arg;
	len = strlen(text);
	text[len] = '\n'; /* replaces the NUL: the buffer is sent by length */
	buf = uv_buf_init(text, (unsigned)len + 1);
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
	if (worker_request(w, "stop", NULL, stop_replied, NULL) != 0 && w->pidfd >= 0)
		pidfd_send_signal(w->pidfd, SIGTERM, NULL, 0);
	uv_timer_start(&w->kill_timer, kill_timeout, WORKER_KILL_GRACE_MS, 0);
}
