/*
 * vm/protocol.h, the control protocol between lockstepd and lockstep-vm: every message
 * encoded by one end decodes at the other to the same fields (requests, replies, hello,
 * pvlock, stopped), a hello of another version is refused with -EPROTONOSUPPORT, malformed
 * lines with -EPROTO and a reason, "stats" too large for one send is left out of "stopped",
 * and the exit file round-trips (or is reported missing).  Lines end in exactly one '\n'.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vm/protocol.h"

/* Checks the line's framing and decodes it as the daemon does. */
static void decode(char *line, size_t len, struct vm_proto_msg *msg)
{
	char why[128] = "";

	assert_non_null(line);
	assert_true(len > 1 && line[len - 1] == '\n');
	assert_null(memchr(line, '\n', len - 1));
	assert_int_equal(vm_proto_msg_decode(line, len - 1, msg, why, sizeof(why)), 0);
	free(line);
}

static void test_names(void **state)
{
	enum vm_stop_reason r;

	for (int i = 0; i < VM_STOP_REASONS; i++) {
		assert_int_equal(vm_stop_reason_parse(vm_stop_reason_name(i), &r), 0);
		assert_int_equal(r, i);
	}
	assert_string_equal(vm_stop_reason_name(VM_STOP_GUEST_RESET), "guest-reset");
	assert_int_equal(vm_stop_reason_parse("guest-Reset", &r), -EINVAL);
	assert_int_equal(vm_stop_reason_parse(NULL, &r), -EINVAL);
	assert_true(vm_stop_reason_is_crash(VM_STOP_GUEST_CRASH));
	assert_true(vm_stop_reason_is_crash(VM_STOP_ERROR));
	assert_false(vm_stop_reason_is_crash(VM_STOP_GUEST_EXIT));
	assert_false(vm_stop_reason_is_crash(VM_STOP_TIMEOUT));
	assert_string_equal(vm_proto_cmd_name(VM_CMD_POWERDOWN), "powerdown");
	assert_string_equal(vm_proto_cmd_name(VM_CMDS), "?");
}

static void test_requests(void **state)
{
	struct vm_proto_request req;
	const char *text;
	char why[128];
	size_t len;

	for (int cmd = 0; cmd < VM_CMDS; cmd++) {
		char *line = cmd == VM_CMD_IRQ_STEERING ?
				     vm_proto_steering_encode(40 + (uint64_t)cmd, cmd & 1, &len) :
				     vm_proto_request_encode(40 + (uint64_t)cmd, cmd, &len);

		assert_non_null(line);
		assert_true(line[len - 1] == '\n');
		assert_int_equal(vm_proto_request_decode(line, len - 1, &req, why, sizeof(why)), 0);
		assert_int_equal(req.cmd, cmd);
		assert_int_equal(json_integer_value(req.id), 40 + cmd);
		vm_proto_request_fini(&req);
		free(line);
	}
	/* irq-steering carries its setting, and needs it */
	text = "{\"id\":1,\"cmd\":\"irq-steering\",\"steering\":false}";
	assert_int_equal(vm_proto_request_decode(text, strlen(text), &req, why, sizeof(why)), 0);
	assert_int_equal(req.cmd, VM_CMD_IRQ_STEERING);
	assert_false(req.steering);
	vm_proto_request_fini(&req);
	text = "{\"id\":1,\"cmd\":\"irq-steering\",\"steering\":1}";
	assert_int_equal(vm_proto_request_decode(text, strlen(text), &req, why, sizeof(why)),
			 -EPROTO);
	assert_non_null(strstr(why, "steering"));
	vm_proto_request_fini(&req);
	/* Errors keep the id to answer with (or JSON null), and say what is wrong. */
	text = "{\"id\":\"x\",\"cmd\":\"reboot\"}";
	assert_int_equal(vm_proto_request_decode(text, strlen(text), &req, why, sizeof(why)),
			 -EPROTO);
	assert_string_equal(json_string_value(req.id), "x");
	assert_string_equal(why, "unknown command");
	vm_proto_request_fini(&req);
	assert_int_equal(vm_proto_request_decode("{\"cmd\":\"ping\"}", 14, &req, why, sizeof(why)),
			 -EPROTO);
	assert_true(json_is_null(req.id));
	assert_non_null(strstr(why, "\"id\""));
	vm_proto_request_fini(&req);
	assert_int_equal(vm_proto_request_decode("[1]", 3, &req, why, sizeof(why)), -EPROTO);
	vm_proto_request_fini(&req);
	assert_int_equal(vm_proto_request_decode("{\"id\":", 6, &req, why, sizeof(why)), -EPROTO);
	vm_proto_request_fini(&req);
}

static void test_replies(void **state)
{
	json_t *id = json_integer(7);
	struct vm_proto_msg msg;
	size_t len;
	char *line;

	line = vm_proto_reply_encode(id, json_pack("{s:i}", "run_ms", 12), &len);
	decode(line, len, &msg);
	assert_false(msg.is_event);
	assert_int_equal(msg.id, 7);
	assert_null(msg.error);
	assert_int_equal(json_integer_value(json_object_get(msg.result, "run_ms")), 12);
	vm_proto_msg_fini(&msg);

	line = vm_proto_reply_encode(id, NULL, &len);
	decode(line, len, &msg);
	assert_true(json_is_object(msg.result) && json_object_size(msg.result) == 0);
	vm_proto_msg_fini(&msg);

	line = vm_proto_error_encode(id, "unknown command", EINVAL, &len);
	decode(line, len, &msg);
	assert_int_equal(msg.id, 7);
	assert_null(msg.result);
	assert_string_equal(msg.error, "unknown command");
	assert_int_equal(msg.err, EINVAL);
	vm_proto_msg_fini(&msg);
	json_decref(id);
}

static void test_hello(void **state)
{
	int tids[3] = { 101, 102, 103 };
	struct vm_proto_hello h = {
		.version = VM_PROTO_VERSION,
		.pid = 100,
		.name = "web-1",
		.state = VM_STOP_NONE,
		.nr_vcpus = 3,
		.tids = tids,
		.sched_fd = 9,
	};
	struct vm_proto_msg msg;
	char why[128], expect[128], *line, *newer;
	json_t *info;
	size_t len;

	line = vm_proto_hello_encode(&h, &len);
	decode(line, len, &msg);
	assert_true(msg.is_event);
	assert_int_equal(msg.event, VM_EVENT_HELLO);
	assert_int_equal(msg.hello.pid, 100);
	assert_string_equal(msg.hello.name, "web-1");
	assert_int_equal(msg.hello.nr_vcpus, 3);
	assert_memory_equal(msg.hello.tids, tids, sizeof(tids));
	assert_int_equal(msg.hello.sched_fd, 9);
	vm_proto_msg_fini(&msg);

	/* "info" answers with the same fields, without the version. */
	info = vm_proto_info_json(&h);
	assert_null(json_object_get(info, "version"));
	assert_int_equal(json_array_size(json_object_get(info, "vcpus")), 3);
	json_decref(info);

	/* Another version: refused, with both versions named; no version at all likewise. */
	line = "{\"event\":\"hello\",\"version\":2,\"pid\":1,\"vcpus\":[]}";
	assert_int_equal(vm_proto_msg_decode(line, strlen(line), &msg, why, sizeof(why)),
			 -EPROTONOSUPPORT);
	assert_non_null(strstr(why, "version 2"));
	vm_proto_msg_fini(&msg);
	line = "{\"event\":\"hello\",\"pid\":1,\"vcpus\":[]}";
	assert_int_equal(vm_proto_msg_decode(line, strlen(line), &msg, why, sizeof(why)),
			 -EPROTONOSUPPORT);
	vm_proto_msg_fini(&msg);

	/* A worker of another version says hello with the same encoder: refused all the same,
	 * which is what makes lockstepd end that worker and fail its start (daemon/worker.c). */
	h.version = VM_PROTO_VERSION + 6;
	newer = vm_proto_hello_encode(&h, &len);
	assert_non_null(newer);
	assert_int_equal(vm_proto_msg_decode(newer, len - 1, &msg, why, sizeof(why)),
			 -EPROTONOSUPPORT);
	snprintf(expect, sizeof(expect), "the worker speaks protocol version %u, this lockstepd %u",
		 VM_PROTO_VERSION + 6, VM_PROTO_VERSION);
	assert_string_equal(why, expect);
	vm_proto_msg_fini(&msg);
	free(newer);
}

static void test_pvlock(void **state)
{
	struct vm_proto_pvlock ev = {
		.kind = "holder",
		.ended = true,
		.lock = 0x1234567890ull,
		.culprit = 3,
		.waiters = 2,
		.duration_ns = 5000000,
		.pressure = 0.25,
	};
	struct vm_proto_msg msg;
	size_t len;
	char *line = vm_proto_pvlock_encode(&ev, &len);

	decode(line, len, &msg);
	assert_int_equal(msg.event, VM_EVENT_PVLOCK);
	assert_string_equal(msg.pvlock.kind, "holder");
	assert_true(msg.pvlock.ended);
	assert_int_equal(msg.pvlock.lock, 0x1234567890ull);
	assert_int_equal(msg.pvlock.culprit, 3);
	assert_int_equal(msg.pvlock.waiters, 2);
	assert_int_equal(msg.pvlock.duration_ns, 5000000);
	assert_true(msg.pvlock.pressure == 0.25);
	vm_proto_msg_fini(&msg);
}

static void test_stopped(void **state)
{
	struct vm_proto_stopped st = {
		.reason = VM_STOP_GUEST_CRASH,
		.status = 80,
		.preserved = true,
		.stats = json_pack("{s:i}", "run_ms", 5),
	};
	struct vm_proto_msg msg;
	char big[VM_PROTO_REPORT_MAX], *line;
	size_t len;

	line = vm_proto_stopped_encode(&st, &len);
	decode(line, len, &msg);
	assert_int_equal(msg.event, VM_EVENT_STOPPED);
	assert_int_equal(msg.stopped.reason, VM_STOP_GUEST_CRASH);
	assert_int_equal(msg.stopped.status, 80);
	assert_true(msg.stopped.preserved);
	assert_int_equal(json_integer_value(json_object_get(msg.stopped.stats, "run_ms")), 5);
	vm_proto_msg_fini(&msg);
	json_decref(st.stats);

	/* A report that would not fit one send is left out, the rest still goes. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	st.stats = json_pack("{s:s}", "padding", big);
	line = vm_proto_stopped_encode(&st, &len);
	assert_true(len < VM_PROTO_REPORT_MAX);
	decode(line, len, &msg);
	assert_null(msg.stopped.stats);
	assert_int_equal(msg.stopped.status, 80);
	vm_proto_msg_fini(&msg);
	json_decref(st.stats);

	line = "{\"event\":\"stopped\",\"reason\":\"melted\",\"status\":1}";
	assert_int_equal(vm_proto_msg_decode(line, strlen(line), &msg, big, 128), -EPROTO);
	vm_proto_msg_fini(&msg);
}

static void test_malformed(void **state)
{
	static const char *const lines[] = {
		"", "not json", "[]", "{}", "{\"event\":\"bye\"}", "{\"id\":\"7\",\"result\":{}}",
	};
	struct vm_proto_msg msg;
	char why[128];

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		why[0] = '\0';
		assert_int_equal(
			vm_proto_msg_decode(lines[i], strlen(lines[i]), &msg, why, sizeof(why)),
			-EPROTO);
		assert_true(why[0]);
		vm_proto_msg_fini(&msg);
	}
}

static void test_exit_file(void **state)
{
	char dir[] = "/tmp/lockstep-proto-XXXXXX", path[64];
	enum vm_stop_reason reason;
	int status = 0, nr = 0, fd;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.exit", dir);
	assert_int_equal(vm_proto_exit_read(path, &reason, &status, NULL), -ENOENT);
	/* Opened at start, empty until the end: not an exit record yet. */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(vm_proto_exit_read(path, &reason, &status, NULL), -EPROTO);
	assert_int_equal(vm_proto_exit_write_fd(fd, VM_STOP_GUEST_POWEROFF, 0), 0);
	assert_int_equal(vm_proto_exit_read(path, &reason, &status, &nr), 0);
	assert_int_equal(reason, VM_STOP_GUEST_POWEROFF);
	assert_int_equal(nr, -1);
	assert_int_equal(vm_proto_exit_write_fd(fd, VM_STOP_TIMEOUT, 124), 0);
	assert_int_equal(vm_proto_exit_read(path, &reason, &status, NULL), 0);
	assert_int_equal(reason, VM_STOP_TIMEOUT);
	assert_int_equal(status, 124);
	close(fd);
	/* What the worker's SIGSYS handler writes. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"reason\":\"seccomp\",\"syscall\":110,\"status\":159}\n", f);
	fclose(f);
	assert_int_equal(vm_proto_exit_read(path, &reason, &status, &nr), 0);
	assert_int_equal(reason, VM_STOP_SECCOMP);
	assert_true(vm_stop_reason_is_crash(reason));
	assert_int_equal(nr, 110);
	assert_int_equal(status, VM_PROTO_EXIT_SECCOMP);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"reason\":\"seccomp\",\"status\":159}", f);
	fclose(f);
	assert_int_equal(vm_proto_exit_read(path, &reason, &status, &nr), -EPROTO);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"status\": 3}", f);
	fclose(f);
	assert_int_equal(vm_proto_exit_read(path, &reason, &status, NULL), -EPROTO);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),	  cmocka_unit_test(test_requests),
		cmocka_unit_test(test_replies),	  cmocka_unit_test(test_hello),
		cmocka_unit_test(test_pvlock),	  cmocka_unit_test(test_stopped),
		cmocka_unit_test(test_malformed), cmocka_unit_test(test_exit_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
