/*
 * JSON-RPC 2.0 sessions (api/jsonrpc.c, api/params.c), fed bytes and answering through a send
 * callback: requests, string and number ids, notifications that get no reply, every kind of
 * invalid request with its code, batches (mixed, empty, too large, all notifications), frames
 * split anywhere or several per read, a frame over the limit refused at once and the session
 * going on, read-only sessions, the limit on calls in flight, replies that come after the
 * client left, notifications to the client, and the parameter helpers' messages.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"

#define PARKED_MAX 8

struct fixture {
	struct api_session *s;
	json_t *frames; /* what the session sent, parsed */
	struct api_call *parked[PARKED_MAX];
	unsigned nr_parked;
};

static void capture(void *opaque, const char *frame, size_t len)
{
	struct fixture *f = opaque;

	assert_true(len > 0 && frame[len - 1] == '\n');
	assert_null(memchr(frame, '\n', len - 1));
	json_array_append_new(f->frames, json_loadb(frame, len, JSON_DECODE_ANY, NULL));
}

static void echo(void *ctx, struct api_call *call, json_t *params)
{
	api_call_reply(call, json_incref(params));
}

static void later(void *ctx, struct api_call *call, json_t *params)
{
	struct fixture *f = ctx;

	assert_true(f->nr_parked < PARKED_MAX);
	f->parked[f->nr_parked++] = call;
}

static void typed(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "n", "flag", NULL };
	const char *name;
	uint64_t n = 0;
	bool flag = false;

	if (api_params_only(call, params, allowed) &&
	    api_param_string(call, params, "name", true, 8, &name) &&
	    api_param_uint(call, params, "n", false, 1, 10, &n) &&
	    api_param_bool(call, params, "flag", false, &flag))
		api_call_reply(call, json_pack("{s:s, s:I, s:b}", "name", name, "n", (json_int_t)n,
					       "flag", flag));
}

static void system_error(void *ctx, struct api_call *call, json_t *params)
{
	api_call_fail_errno(call, -EACCES, "cannot open %s", "the file");
}

static const struct api_method methods[] = {
	{ "echo", echo, false }, { "later", later, false },	    { "typed", typed, false },
	{ "write", echo, true }, { "syserr", system_error, false },
};

static int open_session(struct fixture *f, const struct api_limits *limits)
{
	static const struct api_session_ops ops = { .send = capture };

	return api_session_new(methods, sizeof(methods) / sizeof(methods[0]), f, &ops, f, limits,
			       &f->s);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->frames = json_array();
	assert_int_equal(open_session(f, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	api_session_close(f->s);
	for (unsigned i = 0; i < f->nr_parked; i++)
		api_call_reply(f->parked[i], NULL); /* dropped: the session is gone */
	json_decref(f->frames);
	free(f);
	return 0;
}

static void feed(struct fixture *f, const char *text)
{
	api_session_feed(f->s, text, strlen(text));
}

/* The one frame sent since the last call, taken. */
static json_t *take(struct fixture *f)
{
	json_t *frame;

	assert_int_equal(json_array_size(f->frames), 1);
	frame = json_incref(json_array_get(f->frames, 0));
	json_array_clear(f->frames);
	return frame;
}

static void expect_error(struct fixture *f, const char *text, int code, const char *needle)
{
	json_t *r, *e;

	feed(f, text);
	r = take(f);
	e = json_object_get(r, "error");
	assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
	assert_int_equal(json_integer_value(json_object_get(e, "code")), code);
	if (needle)
		assert_non_null(strstr(json_string_value(json_object_get(e, "message")), needle));
	json_decref(r);
}

static void test_requests(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	feed(f, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"echo\",\"params\":{\"a\":1}}\n");
	r = take(f);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "a")), 1);
	assert_null(json_object_get(r, "error"));
	json_decref(r);

	/* A string id, no params (the method sees {}), a trailing CR. */
	feed(f, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"echo\"}\r\n");
	r = take(f);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "x");
	assert_int_equal(json_object_size(json_object_get(r, "result")), 0);
	json_decref(r);

	/* A notification gets no reply, even a failing one; blank lines are nothing. */
	feed(f, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}\n\n  \n");
	feed(f, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n");
	assert_int_equal(json_array_size(f->frames), 0);
}

static void test_invalid(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "{\"jsonrpc\":\n", API_PARSE_ERROR, "parse error");
	expect_error(f, "5\n", API_INVALID_REQUEST, NULL);
	expect_error(f, "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"echo\"}\n", API_INVALID_REQUEST,
		     "\"2.0\"");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}\n", API_INVALID_REQUEST,
		     "\"method\"");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\"}\n",
		     API_INVALID_REQUEST, NULL);
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"x\":1}\n",
		     API_INVALID_REQUEST, NULL);
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}\n",
		     API_INVALID_PARAMS, "named parameters");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}\n",
		     API_METHOD_NOT_FOUND, "no method \"nope\"");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"id\":2}\n",
		     API_PARSE_ERROR, NULL); /* duplicate keys are refused */
	/* After all that, the session still works. */
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"syserr\"}\n", API_SYSTEM_ERROR,
		     "cannot open the file: Permission denied");
}

static void test_batches(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	feed(f, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"},"
		"{\"jsonrpc\":\"2.0\",\"method\":\"echo\"},"
		"3,"
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}]\n");
	r = take(f);
	assert_true(json_is_array(r));
	assert_int_equal(json_array_size(r), 3); /* the notification has no entry */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "id")), 1);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_array_get(r, 1), "error"), "code")),
			 API_INVALID_REQUEST);
	json_decref(r);

	feed(f, "[{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}]\n");
	assert_int_equal(json_array_size(f->frames), 0); /* only notifications: no reply */
	expect_error(f, "[]\n", API_INVALID_REQUEST, "empty batch");
}

/* A batch waits for its slowest call. */
static void test_batch_waits(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	feed(f, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"later\"},"
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}]\n");
	assert_int_equal(json_array_size(f->frames), 0);
	assert_int_equal(api_session_pending(f->s), 1);
	api_call_reply(f->parked[--f->nr_parked], json_string("done"));
	r = take(f);
	assert_int_equal(json_array_size(r), 2);
	json_decref(r);
}

static void test_split_frames(void **state)
{
	static const char text[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n"
				   "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}\n";
	struct fixture *f = *state;
	size_t first = (size_t)(strchr(text, '\n') - text); /* the first frame's newline */

	for (size_t i = 0; i < sizeof(text) - 1; i++) {
		api_session_feed(f->s, text + i, 1);
		assert_int_equal(json_array_size(f->frames), i < first		  ? 0 :
							     i < sizeof(text) - 2 ? 1 :
										    2);
	}
	assert_int_equal(json_integer_value(json_object_get(json_array_get(f->frames, 1), "id")),
			 2);
}

static void test_limits(void **state)
{
	struct fixture *f = *state;
	struct api_limits lim = { .max_frame = 64, .max_pending = 2, .max_batch = 2 };
	char big[200];

	api_session_close(f->s);
	assert_int_equal(open_session(f, &lim), 0);
	/* Over the limit: refused as soon as it is known, the rest of it skipped. */
	memset(big, 'x', sizeof(big));
	api_session_feed(f->s, big, sizeof(big));
	expect_error(f, "", API_INVALID_REQUEST, "frame larger than 64 bytes");
	feed(f, "more of the same\n");
	assert_int_equal(json_array_size(f->frames), 0);
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}\n",
		     API_METHOD_NOT_FOUND, NULL);
	expect_error(f, "[1,2,3]\n", API_INVALID_REQUEST, "batch too large");

	/* Two calls in flight, the third refused; answered, the session takes more. */
	feed(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"later\"}\n");
	feed(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"later\"}\n");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\"}\n", API_LIMIT,
		     "in flight");
	api_call_reply(f->parked[--f->nr_parked], NULL);
	json_decref(take(f));
	feed(f, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"echo\"}\n");
	json_decref(take(f));
}

static void test_read_only(void **state)
{
	struct fixture *f = *state;

	api_session_set_read_only(f->s, true);
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"write\"}\n", API_PERMISSION,
		     "read-only");
	feed(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}\n");
	json_decref(take(f));
}

/* A client that leaves before its answer: the call stays valid, the reply is dropped. */
static void test_reply_after_close(void **state)
{
	struct fixture *f = *state;
	struct api_call *call;

	feed(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"later\"}\n");
	call = f->parked[--f->nr_parked];
	api_session_close(f->s);
	assert_true(api_call_cancelled(call));
	assert_null(api_call_session(call));
	api_call_reply(call, json_string("too late"));
	assert_int_equal(json_array_size(f->frames), 0);
	assert_int_equal(open_session(f, NULL), 0); /* for the teardown */
}

static void test_notify(void **state)
{
	struct fixture *f = *state;
	json_t *n;

	api_session_notify(f->s, "event", json_pack("{s:s}", "type", "lifecycle"));
	n = take(f);
	assert_string_equal(json_string_value(json_object_get(n, "method")), "event");
	assert_null(json_object_get(n, "id"));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(n, "params"), "type")),
		"lifecycle");
	json_decref(n);
}

static void test_params(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"typed\",\"params\":{}}\n",
		     API_INVALID_PARAMS, "missing parameter \"name\"");
	expect_error(f,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"typed\","
		     "\"params\":{\"name\":\"abcdefghi\"}}\n",
		     API_INVALID_PARAMS, "parameter \"name\" must be at most 8 bytes");
	expect_error(f,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"typed\","
		     "\"params\":{\"name\":\"a\",\"n\":11}}\n",
		     API_INVALID_PARAMS, "parameter \"n\" must be an integer from 1 to 10");
	expect_error(f,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"typed\","
		     "\"params\":{\"name\":\"a\",\"flag\":1}}\n",
		     API_INVALID_PARAMS, "parameter \"flag\" must be true or false");
	expect_error(f,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"typed\","
		     "\"params\":{\"name\":\"a\",\"other\":1}}\n",
		     API_INVALID_PARAMS, "unknown parameter \"other\"");
	feed(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"typed\","
		"\"params\":{\"name\":\"a\",\"n\":3,\"flag\":true}}\n");
	r = take(f);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "n")), 3);
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_after_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
