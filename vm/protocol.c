/*
 * The control protocol between lockstepd and lockstep-vm (vm/protocol.h says what it is):
 * the names of its messages and stop reasons, and every message's encoding and decoding.
 * Linked into both ends (lockstep_vmproto), so that the two cannot drift apart.  No I/O but
 * the exit file; no state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/protocol.h"

static const char *const cmd_names[VM_CMDS] = {
	[VM_CMD_PING] = "ping",
	[VM_CMD_INFO] = "info",
	[VM_CMD_STATS] = "stats",
	[VM_CMD_POWERDOWN] = "powerdown",
	[VM_CMD_STOP] = "stop",
	[VM_CMD_IRQS] = "irqs",
	[VM_CMD_IRQ_STEERING] = "irq-steering",
	[VM_CMD_DEVICES] = "devices",
};

static const char *const event_names[VM_EVENTS] = {
	[VM_EVENT_HELLO] = "hello",
	[VM_EVENT_PVLOCK] = "pvlock",
	[VM_EVENT_STOPPED] = "stopped",
};

static const char *const stop_reason_names[VM_STOP_REASONS] = {
	[VM_STOP_NONE] = "running",
	[VM_STOP_GUEST_EXIT] = "guest-exit",
	[VM_STOP_GUEST_RESET] = "guest-reset",
	[VM_STOP_GUEST_POWEROFF] = "guest-poweroff",
	[VM_STOP_GUEST_CRASH] = "guest-crash",
	[VM_STOP_REQUEST] = "requested",
	[VM_STOP_ERROR] = "error",
	[VM_STOP_TIMEOUT] = "timeout",
	[VM_STOP_SECCOMP] = "seccomp",
};

static int lookup(const char *s, const char *const *names, int n)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

const char *vm_proto_cmd_name(enum vm_proto_cmd cmd)
{
	return (unsigned)cmd < VM_CMDS ? cmd_names[cmd] : "?";
}

const char *vm_stop_reason_name(enum vm_stop_reason reason)
{
	return (unsigned)reason < VM_STOP_REASONS ? stop_reason_names[reason] : "unknown";
}

int vm_stop_reason_parse(const char *name, enum vm_stop_reason *out)
{
	int i = lookup(name, stop_reason_names, VM_STOP_REASONS);

	if (i < 0)
		return -EINVAL;
	*out = (enum vm_stop_reason)i;
	return 0;
}

bool vm_stop_reason_is_crash(enum vm_stop_reason reason)
{
	return reason == VM_STOP_GUEST_CRASH || reason == VM_STOP_ERROR ||
	       reason == VM_STOP_SECCOMP;
}

static int fail(char *why, size_t why_len, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t why_len, int code, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* The line for a message (stolen): compact JSON and its '\n'. */
static char *line(json_t *msg, size_t *len)
{
	char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;

	json_decref(msg);
	if (!text)
		return NULL;
	*len = strlen(text);
	text[(*len)++] = '\n'; /* json_dumps leaves room for exactly this: the NUL is replaced */
	return text;
}

static json_t *event(enum vm_proto_event ev)
{
	return json_pack("{s:s}", "event", event_names[ev]);
}

/* ---- requests and replies ---- */

char *vm_proto_request_encode(uint64_t id, enum vm_proto_cmd cmd, size_t *len)
{
	return line(json_pack("{s:I, s:s}", "id", (json_int_t)id, "cmd", vm_proto_cmd_name(cmd)),
		    len);
}

char *vm_proto_steering_encode(uint64_t id, bool steering, size_t *len)
{
	return line(json_pack("{s:I, s:s, s:b}", "id", (json_int_t)id, "cmd",
			      vm_proto_cmd_name(VM_CMD_IRQ_STEERING), "steering", steering),
		    len);
}

int vm_proto_request_decode(const char *text, size_t len, struct vm_proto_request *req, char *why,
			    size_t why_len)
{
	json_t *msg = json_loadb(text, len, 0, NULL);
	json_t *id = json_object_get(msg, "id");
	int cmd = lookup(json_string_value(json_object_get(msg, "cmd")), cmd_names, VM_CMDS);
	int ret = 0;

	*req = (struct vm_proto_request){ .id = json_incref(id ? id : json_null()) };
	if (!json_is_object(msg))
		ret = fail(why, why_len, -EPROTO, "a request must be a JSON object");
	else if (!id || !json_object_get(msg, "cmd"))
		ret = fail(why, why_len, -EPROTO, "a request needs \"id\" and \"cmd\"");
	else if (cmd < 0)
		ret = fail(why, why_len, -EPROTO, "unknown command");
	else if (cmd == VM_CMD_IRQ_STEERING && !json_is_boolean(json_object_get(msg, "steering")))
		ret = fail(why, why_len, -EPROTO, "irq-steering needs \"steering\": true or false");
	else
		req->cmd = (enum vm_proto_cmd)cmd;
	if (!ret && cmd == VM_CMD_IRQ_STEERING)
		req->steering = json_is_true(json_object_get(msg, "steering"));
	json_decref(msg);
	return ret;
}

void vm_proto_request_fini(struct vm_proto_request *req)
{
	json_decref(req->id);
	req->id = NULL;
}

char *vm_proto_reply_encode(const json_t *id, json_t *result, size_t *len)
{
	return line(json_pack("{s:O, s:o}", "id", id, "result", result ? result : json_object()),
		    len);
}

char *vm_proto_error_encode(const json_t *id, const char *error, int err, size_t *len)
{
	json_t *msg = json_pack("{s:O, s:s}", "id", id, "error", error);

	if (msg && err)
		json_object_set_new(msg, "errno", json_integer(err));
	return line(msg, len);
}

/* ---- events ---- */

json_t *vm_proto_info_json(const struct vm_proto_hello *h)
{
	json_t *vcpus = json_array();

	for (uint32_t i = 0; vcpus && i < h->nr_vcpus; i++)
		json_array_append_new(vcpus,
				      json_pack("{s:i, s:i}", "vcpu", (int)i, "tid", h->tids[i]));
	return json_pack("{s:i, s:s, s:s, s:o, s:i}", "pid", h->pid, "name", h->name, "state",
			 vm_stop_reason_name(h->state), "vcpus", vcpus, "sched_fd", h->sched_fd);
}

char *vm_proto_hello_encode(const struct vm_proto_hello *h, size_t *len)
{
	json_t *msg = vm_proto_info_json(h);

	if (msg && (json_object_set_new(msg, "event", json_string(event_names[VM_EVENT_HELLO])) ||
		    json_object_set_new(msg, "version", json_integer(h->version)))) {
		json_decref(msg);
		msg = NULL;
	}
	return line(msg, len);
}

char *vm_proto_pvlock_encode(const struct vm_proto_pvlock *ev, size_t *len)
{
	json_t *msg = event(VM_EVENT_PVLOCK);

	if (msg &&
	    json_object_update_new(
		    msg, json_pack("{s:s, s:b, s:I, s:i, s:i, s:I, s:f}", "kind", ev->kind, "ended",
				   ev->ended, "lock", (json_int_t)ev->lock, "culprit",
				   (int)ev->culprit, "waiters", (int)ev->waiters, "duration_ns",
				   (json_int_t)ev->duration_ns, "pressure", ev->pressure))) {
		json_decref(msg);
		msg = NULL;
	}
	return line(msg, len);
}

char *vm_proto_stopped_encode(const struct vm_proto_stopped *st, size_t *len)
{
	json_t *msg = event(VM_EVENT_STOPPED);
	/* A send that fills the socket drops the connection, and this event with it. */
	bool stats =
		st->stats && json_dumpb(st->stats, NULL, 0, JSON_COMPACT) <= VM_PROTO_REPORT_MAX;

	if (msg && json_object_update_new(msg, json_pack("{s:s, s:i, s:b, s:O*}", "reason",
							 vm_stop_reason_name(st->reason), "status",
							 st->status, "preserved", st->preserved,
							 "stats", stats ? st->stats : NULL))) {
		json_decref(msg);
		msg = NULL;
	}
	return line(msg, len);
}

/* ---- decoding what the worker sends ---- */

static int decode_hello(json_t *m, struct vm_proto_hello *h, char *why, size_t why_len)
{
	json_t *version = json_object_get(m, "version");
	json_t *vcpus = json_object_get(m, "vcpus");
	json_t *fd = json_object_get(m, "sched_fd");
	const char *name = json_string_value(json_object_get(m, "name"));
	size_t i;
	json_t *e;

	if (!json_is_integer(version) || json_integer_value(version) != VM_PROTO_VERSION)
		return fail(why, why_len, -EPROTONOSUPPORT,
			    "the worker speaks protocol version %lld, this lockstepd %u",
			    json_is_integer(version) ? (long long)json_integer_value(version) : 0ll,
			    VM_PROTO_VERSION);
	if (!json_is_array(vcpus) || !json_is_integer(json_object_get(m, "pid")))
		return fail(why, why_len, -EPROTO, "a hello needs \"pid\" and \"vcpus\"");
	*h = (struct vm_proto_hello){
		.version = VM_PROTO_VERSION,
		.pid = (int)json_integer_value(json_object_get(m, "pid")),
		.nr_vcpus = (uint32_t)json_array_size(vcpus),
		.sched_fd = json_is_integer(fd) ? (int)json_integer_value(fd) : -1,
	};
	snprintf(h->name, sizeof(h->name), "%s", name ? name : "");
	if (vm_stop_reason_parse(json_string_value(json_object_get(m, "state")), &h->state))
		h->state = VM_STOP_NONE;
	h->tids = calloc(h->nr_vcpus ? h->nr_vcpus : 1, sizeof(*h->tids));
	if (!h->tids)
		return -ENOMEM;
	json_array_foreach(vcpus, i, e)
		h->tids[i] = (int)json_integer_value(json_object_get(e, "tid"));
	return 0;
}

static void decode_pvlock(json_t *m, struct vm_proto_pvlock *ev)
{
	const char *kind = json_string_value(json_object_get(m, "kind"));

	*ev = (struct vm_proto_pvlock){
		.ended = json_is_true(json_object_get(m, "ended")),
		.lock = (uint64_t)json_integer_value(json_object_get(m, "lock")),
		.culprit = (uint32_t)json_integer_value(json_object_get(m, "culprit")),
		.waiters = (uint32_t)json_integer_value(json_object_get(m, "waiters")),
		.duration_ns = (uint64_t)json_integer_value(json_object_get(m, "duration_ns")),
		.pressure = json_number_value(json_object_get(m, "pressure")),
	};
	snprintf(ev->kind, sizeof(ev->kind), "%s", kind ? kind : "");
}

static int decode_stopped(json_t *m, struct vm_proto_stopped *st, char *why, size_t why_len)
{
	json_t *stats = json_object_get(m, "stats");

	*st = (struct vm_proto_stopped){
		.status = (int)json_integer_value(json_object_get(m, "status")),
		.preserved = json_is_true(json_object_get(m, "preserved")),
		.stats = json_is_object(stats) ? stats : NULL,
	};
	if (vm_stop_reason_parse(json_string_value(json_object_get(m, "reason")), &st->reason))
		return fail(why, why_len, -EPROTO, "\"stopped\" without a known \"reason\"");
	return 0;
}

int vm_proto_msg_decode(const char *text, size_t len, struct vm_proto_msg *msg, char *why,
			size_t why_len)
{
	json_t *m = json_loadb(text, len, 0, NULL);
	json_t *ev, *id;
	int ret = 0, i;

	*msg = (struct vm_proto_msg){ .json = m };
	if (!json_is_object(m))
		return fail(why, why_len, -EPROTO, "a message must be a JSON object");
	ev = json_object_get(m, "event");
	id = json_object_get(m, "id");
	if (ev) {
		i = lookup(json_string_value(ev), event_names, VM_EVENTS);
		if (i < 0)
			return fail(why, why_len, -EPROTO, "unknown event");
		msg->is_event = true;
		msg->event = (enum vm_proto_event)i;
		if (msg->event == VM_EVENT_HELLO)
			ret = decode_hello(m, &msg->hello, why, why_len);
		else if (msg->event == VM_EVENT_PVLOCK)
			decode_pvlock(m, &msg->pvlock);
		else
			ret = decode_stopped(m, &msg->stopped, why, why_len);
		return ret;
	}
	if (!json_is_integer(id))
		return fail(why, why_len, -EPROTO, "a message is an event or a reply with an id");
	msg->id = (uint64_t)json_integer_value(id);
	msg->error = json_string_value(json_object_get(m, "error"));
	if (msg->error)
		msg->err = (int)json_integer_value(json_object_get(m, "errno"));
	else
		msg->result = json_object_get(m, "result");
	return 0;
}

void vm_proto_msg_fini(struct vm_proto_msg *msg)
{
	if (msg->is_event && msg->event == VM_EVENT_HELLO)
		free(msg->hello.tids);
	json_decref(msg->json);
	*msg = (struct vm_proto_msg){ .json = NULL };
}

/* ---- the exit file ---- */

int vm_proto_exit_write_fd(int fd, enum vm_stop_reason reason, int status)
{
	json_t *rec =
		json_pack("{s:s, s:i}", "reason", vm_stop_reason_name(reason), "status", status);
	char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0;
	ssize_t n = text ? pwrite(fd, text, len, 0) : 0;
	int ret = 0;

	if (!text)
		ret = -ENOMEM;
	else if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	else if (ftruncate(fd, (off_t)len) < 0)
		ret = -errno;
	free(text);
	json_decref(rec);
	return ret;
}

int vm_proto_exit_read(const char *path, enum vm_stop_reason *reason, int *status, int *syscall)
{
	json_t *rec, *nr;
	int fd, ret;

	/* The worker wrote it: never through a link, never waiting on a FIFO. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EPROTO : -errno;
	rec = json_loadfd(fd, 0, NULL);
	close(fd);
	ret = vm_stop_reason_parse(json_string_value(json_object_get(rec, "reason")), reason) ?
		      -EPROTO :
		      0;
	nr = json_object_get(rec, "syscall");
	if (!ret && *reason == VM_STOP_SECCOMP && !json_is_integer(nr))
		ret = -EPROTO;
	if (!ret)
		*status = (int)json_integer_value(json_object_get(rec, "status"));
	if (!ret && syscall)
		*syscall = *reason == VM_STOP_SECCOMP ? (int)json_integer_value(nr) : -1;
	json_decref(rec);
	return ret;
}
