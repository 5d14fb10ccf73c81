/*
 * api — lockstep's wire protocols.  This header: JSON-RPC 2.0 sessions over a byte stream
 * (newline-delimited frames), independent of any event loop: the owner feeds received bytes
 * in and supplies a send callback.  Methods are a table of handlers that answer at once or
 * later (a call object lives until it is answered), so a slow operation such as a guest
 * shutdown does not block the session's other requests.
 *
 * Error codes: the JSON-RPC 2.0 ones plus lockstep's in the server range -32000..-32099,
 * which carry `data.errno` (a positive errno value) when a system call failed.
 * Only api/ turns -errno into wire errors: api_code_from_errno is the one table, after the
 * errno convention of lockstepd's operations (daemon/ops.h).
 */
#ifndef LOCKSTEP_API_H
#define LOCKSTEP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum api_code {
	API_PARSE_ERROR = -32700,
	API_INVALID_REQUEST = -32600,
	API_METHOD_NOT_FOUND = -32601,
	API_INVALID_PARAMS = -32602,
	API_INTERNAL_ERROR = -32603,
	/* lockstep */
	API_NO_SUCH_VM = -32001,     /* no VM of that name */
	API_VM_EXISTS = -32002,	     /* a VM of that name is already defined */
	API_BAD_STATE = -32003,	     /* not possible in the VM's current state */
	API_SYSTEM_ERROR = -32004,   /* a system call failed: data.errno says which error */
	API_TIMEOUT = -32005,	     /* the operation did not finish in time */
	API_PERMISSION = -32006,     /* not allowed for this client or socket */
	API_LIMIT = -32007,	     /* a limit was hit: too many requests, VMs, clients */
	API_BAD_DEFINITION = -32008, /* a VM definition was rejected */
	API_UNSUPPORTED = -32009,    /* not available on this host or build */
};

struct api_session;
struct api_call;

typedef void (*api_method_fn)(void *ctx, struct api_call *call, json_t *params);

struct api_method {
	const char *name;
	api_method_fn fn;
	bool changes_state; /* refused on read-only sessions */
};

struct api_limits {
	size_t max_frame;     /* bytes in one frame (one line) */
	unsigned max_pending; /* calls in flight per session */
	unsigned max_batch;   /* requests in one batch */
};

#define API_LIMITS_DEFAULT \
	((struct api_limits){ .max_frame = 1u << 20, .max_pending = 256, .max_batch = 64 })

struct api_session_ops {
	/* Sends a complete frame (JSON text + '\n').  Must not call back into the session. */
	void (*send)(void *opaque, const char *frame, size_t len);
};

int api_session_new(const struct api_method *methods, size_t nr_methods, void *ctx,
		    const struct api_session_ops *ops, void *opaque,
		    const struct api_limits *limits, struct api_session **out);
/* Closes the session: pending calls are cancelled (their replies dropped) and freed when their
 * owners answer them; the session memory goes when the last call is gone. */
void api_session_close(struct api_session *s);
/* Feeds received bytes; complete frames are parsed and dispatched at once. */
void api_session_feed(struct api_session *s, const char *data, size_t len);
void api_session_set_read_only(struct api_session *s, bool read_only);
/* Sends a notification (no id) to the client: events, console output.  Steals `params`. */
void api_session_notify(struct api_session *s, const char *method, json_t *params);
void *api_session_opaque(const struct api_session *s);
bool api_session_closed(const struct api_session *s);
/* Calls in flight, for tests and limits. */
unsigned api_session_pending(const struct api_session *s);
/* Bytes the session holds of frames still arriving (memory a client makes the daemon keep). */
size_t api_session_buffered(const struct api_session *s);
/* The owner drops the connection (a limit of its own): tells the client why, as an error
 * response with a null id and code API_LIMIT, and reads nothing more. */
void api_session_abort(struct api_session *s, const char *why);

/* Answers a call; steals `result` (NULL means JSON null).  Each call is answered once. */
void api_call_reply(struct api_call *call, json_t *result);
void api_call_fail(struct api_call *call, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A system failure: API_SYSTEM_ERROR with data.errno = -err and the message + strerror. */
void api_call_fail_errno(struct api_call *call, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * The JSON-RPC code for an operation's -errno:
 *   -ENOENT no such VM, -EEXIST exists, -EBUSY and -ECHILD wrong state, -EINVAL and -E2BIG
 *   bad definition, -ERANGE bad parameter, -EUSERS limit, -ETIMEDOUT timeout, -ESHUTDOWN
 *   internal error (the daemon is stopping), -EOPNOTSUPP unsupported; any other errno is a
 *   system error.
 */
int api_code_from_errno(int err);
/* Fails a call with the code for `err` and the message as it is; a system error also carries
 * data.errno. */
void api_call_fail_err(struct api_call *call, int err, const char *message);
/* The session the call came from, or NULL once that session has closed. */
struct api_session *api_call_session(const struct api_call *call);
bool api_call_cancelled(const struct api_call *call);

/*
 * Parameter helpers: look up a named parameter and check its type, failing the call with
 * API_INVALID_PARAMS and a message that names the parameter.  Return false if they failed it.
 */
bool api_param_string(struct api_call *call, json_t *params, const char *name, bool required,
		      size_t max_len, const char **out);
bool api_param_uint(struct api_call *call, json_t *params, const char *name, bool required,
		    uint64_t min, uint64_t max, uint64_t *out);
bool api_param_bool(struct api_call *call, json_t *params, const char *name, bool required,
		    bool *out);
/* Fails the call if params has a key not in the NULL-terminated list. */
bool api_params_only(struct api_call *call, json_t *params, const char *const *names);

#endif /* LOCKSTEP_API_H */
