/*
 * The worker's end of the control channel to lockstepd (vm/protocol.h is the protocol): the
 * daemon's end arrives as an inherited socketpair fd (--control-fd); after a daemon restart
 * the new daemon reconnects through the worker's private socket in the run directory
 * (--control-socket, mode 0600), which is why a worker listens at all.  One controller at a
 * time: a new connection replaces the old one.  This file sends hello on each connection,
 * answers requests and tells the controller when the VM stopped; vm/lockwatch.c sends the
 * pvlock events through it.
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

static void drop_conn(struct vm_control *ctl)
{
	if (ctl->conn_fd >= 0)
		close(ctl->conn_fd);
	ctl->conn_fd = -1;
	util_lines_reset(&ctl->lines);
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
	util_lines_init(&ctl->lines, VM_PROTO_REQUEST_MAX);
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
	util_lines_fini(&ctl->lines);
	if (ctl->listen_fd >= 0) {
		close(ctl->listen_fd);
		/* A sandboxed worker no longer sees the path: its starter removes the file. */
		if (!ctl->keep_socket_file)
			unlink(ctl->listen_path);
	}
	free(ctl->listen_path);
	ctl->listen_fd = -1;
	ctl->listen_path = NULL;
}

void vm_control_send(struct vm_control *ctl, char *line, size_t len)
{
	size_t off = 0;

	if (ctl->conn_fd < 0 || !line) {
		free(line);
		return;
	}
	while (off < len) {
		ssize_t n = send(ctl->conn_fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			drop_conn(ctl); /* full or gone: the controller can reconnect */
			break;
		}
		off += (size_t)n;
	}
	free(line);
}

/* What hello and "info" say: the process, the VM's name and state, the vCPU threads. */
static void describe(struct vm *vm, struct vm_proto_hello *h, int *tids)
{
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		tids[i] = atomic_load(&vm->vcpus[i].tid);
	*h = (struct vm_proto_hello){
		.version = VM_PROTO_VERSION,
		.pid = (int)getpid(),
		.state = (enum vm_stop_reason)atomic_load(&vm->stop_reason),
		.nr_vcpus = vm->nr_vcpus,
		.tids = tids,
		.sched_fd = vm->sched_fd,
	};
	util_strlcpy(h->name, vm->cfg.name, sizeof(h->name));
}

static void maybe_hello(struct vm_control *ctl)
{
	struct vm *vm = ctl->vm;
	int tids[VMDEF_VCPUS_MAX];
	struct vm_proto_hello h;
	size_t len;
	char *line;

	if (ctl->hello_sent || ctl->conn_fd < 0)
		return;
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		if (!atomic_load(&vm->vcpus[i].tid) && vm->vcpus[i].thread_started)
			return; /* not every vCPU thread has reported its id yet */
	describe(vm, &h, tids);
	line = vm_proto_hello_encode(&h, &len);
	ctl->hello_sent = true;
	vm_control_send(ctl, line, len);
}

static void reply(struct vm_control *ctl, const json_t *id, json_t *result)
{
	size_t len;
	char *line = vm_proto_reply_encode(id, result, &len);

	vm_control_send(ctl, line, len);
}

static void reply_error(struct vm_control *ctl, const json_t *id, const char *error, int err)
{
	size_t len;
	char *line = vm_proto_error_encode(id, error, err, &len);

	vm_control_send(ctl, line, len);
}

static void handle_request(struct vm_control *ctl, const struct vm_proto_request *req)
{
	struct vm *vm = ctl->vm;
	int tids[VMDEF_VCPUS_MAX];
	struct vm_proto_hello h;

	switch (req->cmd) {
	case VM_CMD_PING:
		reply(ctl, req->id, NULL);
		break;
	case VM_CMD_INFO:
		describe(vm, &h, tids);
		reply(ctl, req->id, vm_proto_info_json(&h));
		break;
	case VM_CMD_STATS:
		reply(ctl, req->id, vm_report_json(vm));
		break;
	case VM_CMD_POWERDOWN:
		vm_acpi_pm_power_button(vm->acpi_pm);
		reply(ctl, req->id, NULL);
		break;
	case VM_CMD_STOP:
		ctl->release = true;
		vm_request_stop(vm, VM_STOP_REQUEST, 0);
		reply(ctl, req->id, NULL);
		break;
	case VM_CMD_IRQS:
		reply(ctl, req->id, vm_irq_json(vm));
		break;
	case VM_CMD_IRQ_STEERING: {
		int ret = vm_steering_set(vm, req->steering);

		if (ret)
			reply_error(ctl, req->id, "the routing table refused the change", -ret);
		else
			reply(ctl, req->id, vm_irq_json(vm));
		break;
	}
	case VM_CMD_DEVICES: {
		json_t *report = vm_passthrough_json(vm);

		reply(ctl, req->id, report ? report : json_object());
		break;
	}
	default:
		reply_error(ctl, req->id, "unknown command", EINVAL);
		break;
	}
}

/* One line from the controller; an over-long one means it is not our daemon. */
static int on_line(void *arg, const char *line, size_t len, int err)
{
	struct vm_control *ctl = arg;
	struct vm_proto_request req;
	char why[128];

	if (err) {
		drop_conn(ctl);
		return 1;
	}
	if (vm_proto_request_decode(line, len, &req, why, sizeof(why)))
		reply_error(ctl, req.id, why, EINVAL);
	else
		handle_request(ctl, &req);
	vm_proto_request_fini(&req);
	return ctl->conn_fd < 0;
}

static void read_conn(struct vm_control *ctl)
{
	for (;;) {
		ssize_t n = recv(ctl->conn_fd, ctl->rbuf, sizeof(ctl->rbuf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			drop_conn(ctl); /* the daemon went away; the VM runs on */
			return;
		}
		if (util_lines_feed(&ctl->lines, ctl->rbuf, (size_t)n, on_line, ctl) ||
		    ctl->conn_fd < 0)
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
	struct vm_proto_stopped st = {
		.reason = (enum vm_stop_reason)atomic_load(&vm->stop_reason),
		.status = status,
		.preserved = preserved,
		.stats = vm_report_json(vm),
	};
	size_t len;
	char *line = vm_proto_stopped_encode(&st, &len);

	json_decref(st.stats);
	vm_control_send(ctl, line, len);
}
