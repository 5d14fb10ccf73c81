/*
 * JSON-RPC 2.0 sessions: framing (one JSON text per line, bounded), request validation,
 * batches, notifications, dispatch through a method table, and replies that may come later.
 *
 * A session is owned by its transport (the daemon's connection code, a test, a fuzzer).  Each
 * unanswered call holds a reference, so a client that disconnects while a guest is shutting
 * down leaves the call valid: its reply is dropped when it comes.  Single-threaded: the
 * owner's loop thread is the only caller.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/util.h"

struct api_session {
	const struct api_method *methods;
	size_t nr_methods;
	void *ctx;
	struct api_session_ops ops;
	void *opaque;
	struct api_limits limits;
	bool closed, read_only;
	unsigned refs; /* the owner's, plus one per unanswered call */
	unsigned pending;
	struct util_lines lines; /* frames */
};

struct api_batch {
	json_t *replies;
	unsigned outstanding;
};

struct api_call {
	struct api_session *s;
	json_t *id; /* NULL for a notification */
	struct api_batch *batch;
};

static void session_unref(struct api_session *s)
{
	if (--s->refs)
		return;
	util_lines_fini(&s->lines);
	free(s);
}

int api_session_new(const struct api_method *methods, size_t nr_methods, void *ctx,
		    const struct api_session_ops *ops, void *opaque,
		    const struct api_limits *limits, struct api_session **out)
{
	struct api_session *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	*s = (struct api_session){
		.methods = methods,
		.nr_methods = nr_methods,
		.ctx = ctx,
		.ops = *ops,
		.opaque = opaque,
		.limits = limits ? *limits : API_LIMITS_DEFAULT,
		.refs = 1,
	};
	util_lines_init(&s->lines, s->limits.max_frame);
	*out = s;
	return 0;
}

void api_session_close(struct api_session *s)
{
	if (!s || s->closed)
		return;
	s->closed = true;
	util_lines_reset(&s->lines);
	session_unref(s);
}

void api_session_set_read_only(struct api_session *s, bool read_only)
{
	s->read_only = read_only;
}

void *api_session_opaque(const struct api_session *s)
{
	return s->opaque;
}

bool api_session_closed(const struct api_session *s)
{
	return s->closed;
}

unsigned api_session_pending(const struct api_session *s)
{
	return s->pending;
}

static void send_json(struct api_session *s, json_t *msg)
{
	char *text;
	size_t len;

	if (s->closed) {
		json_decref(msg);
		return;
	}
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!text)
		return;
	len = strlen(text);
	text[len] = '\n'; /* json_dumps leaves room for exactly this: the NUL is replaced */
	s->ops.send(s->opaque, text, len + 1);
	free(text);
}

static json_t *error_object(int code, const char *message, int err)
{
	json_t *e = json_pack("{s:i, s:s}", "code", code, "message", message);

	if (e && err > 0)
		json_object_set_new(e, "data",
				    json_pack("{s:i, s:s}", "errno", err, "error", strerror(err)));
	return e;
}

static json_t *response(json_t *id, const char *key, json_t *value)
{
	return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), key,
			 value ? value : json_null());
}

/* Errors found before a call object exists (parse errors, invalid requests). */
static void send_error(struct api_session *s, struct api_batch *batch, json_t *id, int code,
		       const char *message)
{
	json_t *r = response(id, "error", error_object(code, message, 0));

	if (!r)
		return;
	if (batch)
		json_array_append_new(batch->replies, r);
	else
		send_json(s, r);
}

static void batch_done(struct api_session *s, struct api_batch *batch)
{
	if (--batch->outstanding)
		return;
	if (json_array_size(batch->replies))
		send_json(s, batch->replies);
	else
		json_decref(batch->replies);
	free(batch);
}

/* Delivers a finished call's response (or drops it) and frees the call. */
static void finish(struct api_call *call, json_t *msg)
{
	struct api_session *s = call->s;

	if (call->batch) {
		if (msg && call->id && !s->closed)
			json_array_append(call->batch->replies, msg);
		batch_done(s, call->batch);
	} else if (msg && call->id) {
		json_incref(msg);
		send_json(s, msg);
	}
	json_decref(msg);
	json_decref(call->id);
	s->pending--;
	free(call);
	session_unref(s);
}

void api_call_reply(struct api_call *call, json_t *result)
{
	finish(call, response(call->id, "result", result));
}

static void fail_v(struct api_call *call, int code, int err, const char *fmt, va_list ap)
{
	char message[512];
	int n = vsnprintf(message, sizeof(message), fmt, ap);

	if (err > 0 && n >= 0 && (size_t)n < sizeof(message))
		snprintf(message + n, sizeof(message) - (size_t)n, ": %s", strerror(err));
	finish(call, response(call->id, "error", error_object(code, message, err)));
}

void api_call_fail(struct api_call *call, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail_v(call, code, 0, fmt, ap);
	va_end(ap);
}

void api_call_fail_errno(struct api_call *call, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail_v(call, API_SYSTEM_ERROR, err < 0 ? -err : err, fmt, ap);
	va_end(ap);
}

int api_code_from_errno(int err)
{
	switch (err) {
	case -ENOENT:
		return API_NO_SUCH_VM;
	case -EEXIST:
		return API_VM_EXISTS;
	case -EBUSY:
	case -ECHILD:
		return API_BAD_STATE;
	case -EINVAL:
	case -E2BIG:
		return API_BAD_DEFINITION;
	case -EPERM:
		return API_PERMISSION;
	case -ERANGE:
		return API_INVALID_PARAMS;
	case -EUSERS:
		return API_LIMIT;
	case -ETIMEDOUT:
		return API_TIMEOUT;
	case -ESHUTDOWN:
		return API_INTERNAL_ERROR;
	case -EOPNOTSUPP:
		return API_UNSUPPORTED;
	default:
		return API_SYSTEM_ERROR;
	}
}

void api_call_fail_err(struct api_call *call, int err, const char *message)
{
	int code = api_code_from_errno(err);

	finish(call, response(call->id, "error",
			      error_object(code, message ? message : "the operation failed",
					   code == API_SYSTEM_ERROR ? -err : 0)));
}

struct api_session *api_call_session(const struct api_call *call)
{
	return call->s->closed ? NULL : call->s;
}

bool api_call_cancelled(const struct api_call *call)
{
	return call->s->closed;
}

void api_session_notify(struct api_session *s, const char *method, json_t *params)
{
	json_t *msg;

	if (s->closed) {
		json_decref(params);
		return;
	}
	msg = json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", method, "params",
			params ? params : json_object());
	if (msg)
		send_json(s, msg);
}

static const struct api_method *find_method(const struct api_session *s, const char *name)
{
	for (size_t i = 0; i < s->nr_methods; i++)
		if (strcmp(s->methods[i].name, name) == 0)
			return &s->methods[i];
	return NULL;
}

/* Handlers borrow params for the duration of the call; incref to keep them longer. */
static void call_with_empty_params(struct api_session *s, const struct api_method *m,
				   struct api_call *call)
{
	json_t *empty = json_object();

	m->fn(s->ctx, call, empty);
	json_decref(empty);
}

static bool id_valid(const json_t *id)
{
	return json_is_string(id) || json_is_number(id) || json_is_null(id);
}

/* Validates and dispatches one request object (alone or inside a batch). */
static void dispatch(struct api_session *s, struct api_batch *batch, json_t *req)
{
	json_t *id = json_object_get(req, "id");
	json_t *version = json_object_get(req, "jsonrpc");
	json_t *method = json_object_get(req, "method");
	json_t *params = json_object_get(req, "params");
	const struct api_method *m;
	struct api_call *call;
	const char *key;
	json_t *v;

	if (!json_is_object(req) || (id && !id_valid(id))) {
		send_error(s, batch, NULL, API_INVALID_REQUEST,
			   "a request must be an object "
			   "with a string or number id");
		return;
	}
	json_object_foreach(req, key, v) {
		if (strcmp(key, "jsonrpc") && strcmp(key, "id") && strcmp(key, "method") &&
		    strcmp(key, "params")) {
			send_error(s, batch, id, API_INVALID_REQUEST,
				   "a request has only jsonrpc, id, method and params");
			return;
		}
	}
	if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0) {
		send_error(s, batch, id, API_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
		return;
	}
	if (!json_is_string(method)) {
		send_error(s, batch, id, API_INVALID_REQUEST, "\"method\" must be a string");
		return;
	}
	if (params && !json_is_object(params)) {
		send_error(s, batch, id, API_INVALID_PARAMS,
			   "\"params\" must be an object: lockstep takes named parameters");
		return;
	}
	call = calloc(1, sizeof(*call));
	if (!call) {
		send_error(s, batch, id, API_INTERNAL_ERROR, "out of memory");
		return;
	}
	call->s = s;
	call->id = id ? json_incref(id) : NULL;
	call->batch = batch;
	s->refs++;
	s->pending++;
	if (batch)
		batch->outstanding++;
	m = find_method(s, json_string_value(method));
	if (!m)
		api_call_fail(call, API_METHOD_NOT_FOUND, "no method \"%.64s\"",
			      json_string_value(method));
	else if (m->changes_state && s->read_only)
		api_call_fail(call, API_PERMISSION,
			      "%s changes state: not allowed on a "
			      "read-only connection",
			      m->name);
	else if (s->pending > s->limits.max_pending)
		api_call_fail(call, API_LIMIT, "more than %u requests in flight",
			      s->limits.max_pending);
	else if (params)
		m->fn(s->ctx, call, params);
	else
		call_with_empty_params(s, m, call);
}

static void handle_frame(struct api_session *s, const char *frame, size_t len)
{
	json_error_t jerr;
	json_t *msg;

	while (len && (frame[len - 1] == '\r' || frame[len - 1] == ' ' || frame[len - 1] == '\t'))
		len--;
	if (len == 0)
		return;
	msg = json_loadb(frame, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!msg) {
		char why[200];

		snprintf(why, sizeof(why), "parse error at column %d: %s", jerr.column, jerr.text);
		send_error(s, NULL, NULL, API_PARSE_ERROR, why);
		return;
	}
	if (json_is_array(msg)) {
		struct api_batch *batch;
		size_t i;
		json_t *req;

		if (json_array_size(msg) == 0 || json_array_size(msg) > s->limits.max_batch) {
			send_error(s, NULL, NULL, API_INVALID_REQUEST,
				   json_array_size(msg) ? "batch too large" : "empty batch");
			json_decref(msg);
			return;
		}
		batch = calloc(1, sizeof(*batch));
		if (!batch || !(batch->replies = json_array())) {
			free(batch);
			send_error(s, NULL, NULL, API_INTERNAL_ERROR, "out of memory");
			json_decref(msg);
			return;
		}
		/* Held until every request was dispatched, so early replies do not send it. */
		batch->outstanding = 1;
		json_array_foreach(msg, i, req)
			dispatch(s, batch, req);
		batch_done(s, batch);
	} else {
		dispatch(s, NULL, msg);
	}
	json_decref(msg);
}

/* One frame from the line reader, or the reason it could not hold one. */
static int on_frame(void *arg, const char *frame, size_t len, int err)
{
	struct api_session *s = arg;

	if (err == -EMSGSIZE) {
		char why[96];

		snprintf(why, sizeof(why), "frame larger than %zu bytes", s->limits.max_frame);
		send_error(s, NULL, NULL, API_INVALID_REQUEST, why);
	} else if (err) {
		send_error(s, NULL, NULL, API_INTERNAL_ERROR, "out of memory");
	} else {
		handle_frame(s, frame, len);
	}
	return s->closed;
}

void api_session_feed(struct api_session *s, const char *data, size_t len)
{
	if (s->closed)
		return;
	s->refs++; /* a method may not free the session under us */
	util_lines_feed(&s->lines, data, len, on_frame, s);
	util_lines_trim(&s->lines); /* a long frame's buffer does not stay with an idle client */
	session_unref(s);
}

size_t api_session_buffered(const struct api_session *s)
{
	return util_lines_allocated(&s->lines);
}

void api_session_abort(struct api_session *s, const char *why)
{
	if (s->closed)
		return;
	send_error(s, NULL, NULL, API_LIMIT, why);
	util_lines_reset(&s->lines);
	util_lines_trim(&s->lines);
}
