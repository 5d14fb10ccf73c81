/*
 * A stand-in for lockstep-vm in the daemon's unit tests: started by lockstepd exactly as the
 * real worker is (the same command line, the control channel on fd 3), it speaks the worker's
 * side of vm/protocol.h with the protocol's own encoders, but runs no guest, so the registry's
 * state machine and the operations can be driven without KVM.  What the "guest" does is the
 * definition's cmdline:
 *
 *   run            hello, then answer requests until "stop" (or the power button)
 *   crash          hello, then a guest crash (exit status 80)
 *   reset          hello, then a guest reset (exit status 0)
 *   deaf           hello, then ignore the power button (a shutdown times out)
 *   fail           exit at once with status 70, no hello (a start that fails)
 *   version=N      a hello of protocol version N, then as "run"
 *
 * The real worker and the real protocol are tested end to end by the integration tests.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/util.h"
#include "vm/protocol.h"
#include "vmdef/vmdef.h"

struct stand_in {
	int fd;
	const char *exit_file;
	struct vmdef def;
	struct util_lines lines;
	bool deaf;
	bool done;
	enum vm_stop_reason reason;
	int status;
};

static void send_line(struct stand_in *s, char *line, size_t len)
{
	if (line && send(s->fd, line, len, MSG_NOSIGNAL) != (ssize_t)len)
		s->done = true;
	free(line);
}

static void hello(struct stand_in *s, uint32_t version)
{
	int tids[VMDEF_VCPUS_MAX];
	struct vm_proto_hello h = {
		.version = version,
		.pid = (int)getpid(),
		.nr_vcpus = s->def.vcpus,
		.tids = tids,
		.sched_fd = -1,
	};
	size_t len;
	char *line;

	for (uint32_t i = 0; i < s->def.vcpus; i++)
		tids[i] = (int)syscall(SYS_gettid); /* one thread stands in for every vCPU */
	util_strlcpy(h.name, s->def.name, sizeof(h.name));
	line = vm_proto_hello_encode(&h, &len);
	send_line(s, line, len);
}

static void stop(struct stand_in *s, enum vm_stop_reason reason, int status)
{
	struct vm_proto_stopped st = {
		.reason = reason,
		.status = status,
		.stats = json_pack("{s:i}", "run_ms", 1),
	};
	size_t len;
	char *line = vm_proto_stopped_encode(&st, &len);

	json_decref(st.stats);
	send_line(s, line, len);
	s->reason = reason;
	s->status = status;
	s->done = true;
}

static int on_request(void *arg, const char *line, size_t len, int err)
{
	struct stand_in *s = arg;
	struct vm_proto_request req;
	char why[128], *reply;
	size_t n;

	if (err || vm_proto_request_decode(line, len, &req, why, sizeof(why))) {
		vm_proto_request_fini(&req);
		return 0;
	}
	reply = vm_proto_reply_encode(req.id, json_pack("{s:i}", "run_ms", 1), &n);
	send_line(s, reply, n);
	if (req.cmd == VM_CMD_POWERDOWN && !s->deaf)
		stop(s, VM_STOP_GUEST_POWEROFF, 0);
	else if (req.cmd == VM_CMD_STOP)
		stop(s, VM_STOP_REQUEST, 0);
	vm_proto_request_fini(&req);
	return 0;
}

static void serve(struct stand_in *s)
{
	char buf[4096];

	while (!s->done) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 10000) <= 0)
			break; /* a test that forgot us: go */
		n = recv(s->fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		util_lines_feed(&s->lines, buf, (size_t)n, on_request, s);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "serial-log", required_argument, NULL, 's' },
		{ "control-fd", required_argument, NULL, 'f' },
		{ "control-socket", required_argument, NULL, 'k' },
		{ "exit-file", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	struct stand_in s = { .fd = -1, .reason = VM_STOP_REQUEST };
	const char *config = NULL, *what;
	char err[256];
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'c')
			config = optarg;
		else if (opt == 'f')
			s.fd = atoi(optarg);
		else if (opt == 'e')
			s.exit_file = optarg;
	}
	vmdef_init(&s.def);
	if (!config || vmdef_load(&s.def, config, err, sizeof(err)) || s.fd < 0) {
		fprintf(stderr, "stand-in worker: %s\n", config ? err : "no --config");
		return 64;
	}
	util_lines_init(&s.lines, VM_PROTO_REQUEST_MAX);
	what = s.def.cmdline ? s.def.cmdline : "run";
	if (strcmp(what, "fail") == 0) {
		s.reason = VM_STOP_ERROR;
		s.status = 70;
	} else {
		hello(&s, strncmp(what, "version=", 8) == 0 ? (uint32_t)atoi(what + 8) :
							      VM_PROTO_VERSION);
		s.deaf = strcmp(what, "deaf") == 0;
		if (strcmp(what, "crash") == 0)
			stop(&s, VM_STOP_GUEST_CRASH, 80);
		else if (strcmp(what, "reset") == 0)
			stop(&s, VM_STOP_GUEST_RESET, 0);
		serve(&s);
	}
	if (s.exit_file)
		vm_proto_exit_write(s.exit_file, s.reason, s.status);
	util_lines_fini(&s.lines);
	vmdef_fini(&s.def);
	return s.status;
}
