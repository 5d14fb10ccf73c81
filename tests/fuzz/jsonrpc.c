/*
 * Fuzz target: lockstepd's JSON-RPC endpoint, from the bytes a client sends to the methods
 * that act on them.  The session is a real in-process client of the daemon's JSON-RPC front
 * end (rpc_client_open: the method table, the subscriptions, the followers), on a real
 * in-process struct daemon (daemon_init with temporary run and
 * state directories in /dev/shm, so definitions are written and fsync'ed for real but
 * cheaply).  vm.start is harmless: the worker binary is /bin/false, which exits at once, so
 * starts, on_crash restarts, destroys and the replies parked on them all run their course.
 *
 * Input: one flags byte, then the bytes of the connection.  Every 0xff byte in them (never
 * valid in UTF-8 JSON) is a read boundary: the session is fed the pieces between them one by
 * one, with a turn of the event loop in between, so the fuzzer chooses where frames split.
 *   flags bit 0  the session is read-only (state-changing methods are refused)
 *   flags bit 1  the client goes away before its parked calls are answered
 *   flags bit 2  tight limits: 256-byte frames, 4 calls in flight, batches of 4
 *
 * Every frame the daemon sends must be one line of JSON: a response (jsonrpc "2.0", an id,
 * exactly one of result/error, an error with a known code and a message), a batch of them,
 * or a notification.  After each input every worker is gone, every call answered, and the
 * registry, the directories and the client are torn down, so inputs do not leak into each
 * other (and LeakSanitizer sees a clean slate).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/rpc/rpc.h"
#include "tests/fuzz/fuzz_daemon.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPLIT 0xff

enum {
	FLAG_READ_ONLY = 1 << 0,
	FLAG_HANG_UP = 1 << 1,
	FLAG_TIGHT = 1 << 2,
};

static struct daemon *fuzzd; /* libFuzzer offers no context pointer */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzzd = fuzz_daemon_start(false); /* JSON-RPC only: no libvirt socket */
	return 0;
}

static bool known_code(json_int_t code)
{
	return (code >= API_PARSE_ERROR && code <= -32600 &&
		(code == API_PARSE_ERROR || code >= API_INTERNAL_ERROR)) ||
	       (code >= API_UNSUPPORTED && code <= API_NO_SUCH_VM);
}

/* One response object: jsonrpc 2.0, an id, exactly one of result and error. */
static void check_response(json_t *r)
{
	json_t *error = json_object_get(r, "error");

	if (!json_is_object(r) || !json_is_string(json_object_get(r, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
		abort();
	if (json_object_get(r, "method")) {
		/* A notification: events and console output, always with params. */
		if (json_object_get(r, "id") || !json_is_object(json_object_get(r, "params")))
			abort();
		return;
	}
	if (!json_object_get(r, "id") || !error == !json_object_get(r, "result"))
		abort();
	if (error && (!json_is_integer(json_object_get(error, "code")) ||
		      !known_code(json_integer_value(json_object_get(error, "code"))) ||
		      !json_is_string(json_object_get(error, "message")) ||
		      !json_string_length(json_object_get(error, "message"))))
		abort();
}

static void check_frame(void *opaque, const char *frame, size_t len)
{
	json_error_t jerr;
	json_t *msg;
	size_t i;
	json_t *r;

	if (len < 2 || frame[len - 1] != '\n' || memchr(frame, '\n', len - 1))
		abort();
	msg = json_loadb(frame, len - 1, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!msg)
		abort();
	if (json_is_array(msg)) {
		if (!json_array_size(msg))
			abort();
		json_array_foreach(msg, i, r)
			if (json_object_get(r, "method"))
				abort(); /* a batch holds responses only */
			else
				check_response(r);
	} else {
		check_response(msg);
	}
	json_decref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_limits limits = API_LIMITS_DEFAULT;
	struct rpc_server *srv = fuzzd->rpc;
	struct rpc_client *c;
	size_t start = 1;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	limits.max_frame = fuzzd->opts.max_frame;
	if (flags & FLAG_TIGHT)
		limits = (struct api_limits){ .max_frame = 256, .max_pending = 4, .max_batch = 4 };
	if (rpc_client_open(srv, check_frame, NULL, &limits, flags & FLAG_READ_ONLY, &c))
		return 0;

	while (start <= size) {
		const uint8_t *end = memchr(data + start, SPLIT, size - start);
		size_t len = end ? (size_t)(end - (data + start)) : size - start;

		if (len)
			api_session_feed(c->session, (const char *)data + start, len);
		uv_run(fuzzd->loop, UV_RUN_NOWAIT);
		start += len + 1;
	}

	/* The client leaves now (its parked calls are cancelled) or after its answers. */
	if (flags & FLAG_HANG_UP) {
		rpc_client_close(c);
		fuzz_daemon_settle(fuzzd, fuzz_daemon_has_workers);
	} else {
		fuzz_daemon_settle(fuzzd, fuzz_daemon_has_workers);
		if (api_session_pending(c->session))
			abort(); /* a call that is never answered */
		rpc_client_close(c);
	}
	fuzz_daemon_teardown_vms(fuzzd);
	if (!util_list_empty(&srv->follows) || srv->nr_clients)
		abort();
	return 0;
}
