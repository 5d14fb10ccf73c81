/*
 * A blocking JSON-RPC 2.0 client for lockstepd's socket: used by the lockstep CLI, the
 * benchmarks and tests.  One request at a time; notifications that arrive while waiting for a
 * reply are queued for api_client_next_notification().
 */
#ifndef LOCKSTEP_API_CLIENT_H
#define LOCKSTEP_API_CLIENT_H

#include <stddef.h>

#include <jansson.h>

struct api_client;

/* The socket a client uses when not told: $LOCKSTEP_SOCKET, else lockstepd's default. */
const char *api_client_default_socket(void);
int api_client_connect(const char *path, struct api_client **out);
void api_client_close(struct api_client *c);

/*
 * Calls `method` with `params` (stolen; NULL = none).  Returns 0 and *result (owned by the
 * caller), or -EPROTO with *error set to the JSON-RPC error object (owned by the caller), or
 * another -errno if the connection failed.
 */
int api_client_call(struct api_client *c, const char *method, json_t *params, json_t **result,
		    json_t **error);
/* The same, calling tick(arg, elapsed_ms) every tick_ms while the reply has not come (a
 * progress line for a person waiting on a terminal). */
typedef void (*api_client_tick_fn)(void *arg, unsigned elapsed_ms);
int api_client_call_ticking(struct api_client *c, const char *method, json_t *params,
			    json_t **result, json_t **error, unsigned tick_ms,
			    api_client_tick_fn tick, void *arg);
/* Waits up to timeout_ms (-1 = forever) for a notification; 0 and *msg, or -ETIMEDOUT.  With
 * timeout 0 it takes what has arrived: call it until -ETIMEDOUT before polling the fd. */
int api_client_next_notification(struct api_client *c, int timeout_ms, json_t **msg);

/* The connection's socket, to poll beside other fds. */
int api_client_fd(const struct api_client *c);

/* "message (errno text)" of an error object, for people. */
const char *api_client_error_message(const json_t *error);

#endif /* LOCKSTEP_API_CLIENT_H */
