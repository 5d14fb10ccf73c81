/*
 * The control channel between lockstep-vm and lockstepd: newline-delimited JSON over a unix
 * socket.  The daemon's end arrives as an inherited socketpair fd (--control-fd); after a
 * daemon restart the new daemon reconnects through the worker's private socket in the run
 * directory (--control-socket, mode 0600), which is why a worker listens at all.  One
 * controller at a time: a new connection replaces the old one.
 *
 * Worker -> daemon events:  {"event":"hello", "pid", "name", "vcpus":[{"vcpu","tid"}]}
 *                           {"event":"stopped", "reason", "status", "preserved",
 *                            "stats"} (the end-of-run report: it outlives the worker)
 * Daemon -> worker requests {"id":N, "cmd":"info"|"stats"|"powerdown"|"stop"|"ping"}
 *                  replies  {"id":N, "result":{...}} or {"id":N, "error":"...", "errno":E}
 *
 * Runs on the control thread only; sockets are non-blocking and a controller that stops
 * reading is dropped (it can reconnect) rather than stalling the VM's control.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vm/vm_internal.h"

#define CONTROL_MSG_MAX (64u << 10)
/* Largest end-of-run report sent with "stopped": well inside a socket's send buffer. */
#define CONTROL_REPORT_MAX (64u << 10)

static const char *const stop_reason_names[] = {
	[VM_STOP_NONE] = "running",
	[VM_STOP_GUEST_EXIT] = "guest-exit",
	[VM_STOP_GUEST_RESET] = "guest-reset",
	[VM_STOP_GUEST_POWEROFF] = "guest-poweroff",
	[VM_STOP_GUEST_CRASH] = "guest-crash",
	[VM_STOP_REQUEST] = "requested",
	[VM_STOP_ERROR] = "error",
	[VM_STOP_TIMEOUT] = "timeout",
};

const char *vm_stop_reason_name(enum vm_stop_reason reason)
{
	if ((unsigned)reason < sizeof(stop_reason_names) / sizeof(stop_reason_names[0]))
		return stop_reason_names[reason];
	return "unknown";
}

static void drop_conn(struct vm_control *ctl)
{
	if (ctl->conn_fd >= 0)
		close(ctl->conn_fd);
	ctl->conn_fd = -1;
	ctl->inlen = 0;
	ctl->hello_sent = false;
}

static void set_conn(struct vm_control *ctl, int fd)
{
	drop_conn(ctl);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	ctl->conn_fd = fd;
}

static int listen_on(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 4) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

int vm_control_init(struct vm_control *ctl, struct vm *vm, int control_fd, const char *socket_path)
{
	*ctl = (struct vm_control){ .vm = vm, .conn_fd = -1, .listen_fd = -1 };
	if (control_fd >= 0)
		set_conn(ctl, control_fd);
	if (socket_path) {
		ctl->listen_fd = listen_on(socket_path);
		if (ctl->listen_fd < 0) {
			int ret = ctl->listen_fd;

			drop_conn(ctl);
			return ret;
		}
		ctl->listen_path = strdup(socket_path);
	}
	return 0;
}

void vm_control_fini(struct vm_control *ctl)
{
	drop_conn(ctl);
	if (ctl->listen_fd >= 0) {
		close(ctl->listen_fd);
		unlink(ctl->listen_path);
	}
	free(ctl->listen_path);
	ctl->listen_fd = -1;
	ctl->listen_path = NULL;
}

void vm_control_send(struct vm_control *ctl, json_t *msg)
{
	char *text;
	size_t len, off = 0;

	if (ctl->conn_fd < 0 || !msg) {
		json_decref(msg);
		return;
	}
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!text)
		return;
	len = strlen(text);
	text[len++] = '\n';
	while (off < len) {
		ssize_t n = send(ctl->conn_fd, text + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			drop_conn(ctl); /* full or gone: the controller can reconnect */
			break;
		}
		off += (size_t)n;
	}
	free(text);
}

static json_t *vcpu_list(struct vm *vm)
{
	json_t *list = json_array();

	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		json_array_append_new(list, json_pack("{s:i, s:i}", "vcpu", (int)i, "tid",
						      atomic_load(&vm->vcpus[i].tid)));
	return list;
}

static json_t *info_json(struct vm *vm)
{
	return json_pack("{s:i, s:s, s:s, s:o, s:i}", "pid", (int)getpid(), "name", vm->cfg.name,
			 "state", vm_stop_reason_name(atomic_load(&vm->stop_reason)), "vcpus",
			 vcpu_list(vm), "sched_fd", vm->sched_fd);
}

static void maybe_hello(struct vm_control *ctl)
{
	struct vm *vm = ctl->vm;
	json_t *msg;

	if (ctl->hello_sent || ctl->conn_fd < 0)
		return;
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		if (!atomic_load(&vm->vcpus[i].tid) && vm->vcpus[i].thread_started)
			return; /* not every vCPU thread has reported its id yet */
	msg = info_json(vm);
	json_object_set_new(msg, "event", json_string("hello"));
	ctl->hello_sent = true;
	vm_control_send(ctl, msg);
}

static void reply(struct vm_control *ctl, json_t *id, json_t *result, const char *error, int err)
{
	json_t *msg = json_pack("{s:O}", "id", id);

	if (error) {
		json_object_set_new(msg, "error", json_string(error));
		if (err)
			json_object_set_new(msg, "errno", json_integer(err));
		json_decref(result);
	} else {
		json_object_set_new(msg, "result", result ? result : json_object());
	}
	vm_control_send(ctl, msg);
}

static void handle_request(struct vm_control *ctl, json_t *req)
{
	struct vm *vm = ctl->vm;
	json_t *id = json_object_get(req, "id");
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!id || !cmd) {
		reply(ctl, id ? id : json_null(), NULL, "a request needs \"id\" and \"cmd\"",
		      EINVAL);
		return;
	}
	if (strcmp(cmd, "ping") == 0) {
		reply(ctl, id, NULL, NULL, 0);
	} else if (strcmp(cmd, "info") == 0) {
		reply(ctl, id, info_json(vm), NULL, 0);
	} else if (strcmp(cmd, "stats") == 0) {
		reply(ctl, id, vm_report_json(vm), NULL, 0);
	} else if (strcmp(cmd, "powerdown") == 0) {
		vm_acpi_pm_power_button(vm->acpi_pm);
		reply(ctl, id, NULL, NULL, 0);
	} else if (strcmp(cmd, "stop") == 0) {
		ctl->release = true;
		vm_request_stop(vm, VM_STOP_REQUEST, 0);
		reply(ctl, id, NULL, NULL, 0);
	} else {
		reply(ctl, id, NULL, "unknown command", EINVAL);
	}
}

static void read_conn(struct vm_control *ctl)
{
	for (;;) {
		ssize_t n = recv(ctl->conn_fd, ctl->inbuf + ctl->inlen,
				 sizeof(ctl->inbuf) - ctl->inlen, 0);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			drop_conn(ctl); /* the daemon went away; the VM runs on */
			return;
		}
		ctl->inlen += (size_t)n;
		while (ctl->conn_fd >= 0 && (nl = memchr(ctl->inbuf, '\n', ctl->inlen))) {
			size_t line = (size_t)(nl - ctl->inbuf);
			json_t *req = json_loadb(ctl->inbuf, line, 0, NULL);

			if (json_is_object(req))
				handle_request(ctl, req);
			json_decref(req);
			memmove(ctl->inbuf, nl + 1, ctl->inlen - line - 1);
			ctl->inlen -= line + 1;
		}
		if (ctl->inlen == sizeof(ctl->inbuf))
			drop_conn(ctl); /* a line longer than any request: not our daemon */
		if (ctl->conn_fd < 0)
			return;
	}
}

int vm_control_pollfds(struct vm_control *ctl, struct pollfd *pfd)
{
	int n = 0;

	maybe_hello(ctl);
	if (ctl->conn_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = ctl->conn_fd, .events = POLLIN };
	if (ctl->listen_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = ctl->listen_fd, .events = POLLIN };
	return n;
}

void vm_control_handle(struct vm_control *ctl, const struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == ctl->listen_fd) {
			int fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0)
				set_conn(ctl, fd);
		} else if (pfd[i].fd == ctl->conn_fd) {
			read_conn(ctl);
		}
	}
	maybe_hello(ctl);
}

void vm_control_stopped(struct vm_control *ctl, int status, bool preserved)
{
	struct vm *vm = ctl->vm;
	/* The vCPU threads are joined: the report's counters are final. */
	json_t *report = vm_report_json(vm);

	/* A send that fills the socket drops the connection, and this event with it. */
	if (report && json_dumpb(report, NULL, 0, JSON_COMPACT) > CONTROL_REPORT_MAX) {
		json_decref(report);
		report = NULL;
	}
	vm_control_send(ctl, json_pack("{s:s, s:s, s:i, s:b, s:o*}", "event", "stopped", "reason",
				       vm_stop_reason_name(atomic_load(&vm->stop_reason)), "status",
				       status, "preserved", preserved, "stats", report));
}
