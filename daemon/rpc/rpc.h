/*
 * daemon/rpc — lockstepd's JSON-RPC 2.0 front end: the endpoint on the shared listener
 * (server.c: one api_session per client, event notifications to subscribers), the methods
 * (methods.c, methods_sched.c, methods_host.c, methods_irq.c, methods_device.c), the console
 * followers (follow.c) and the interactive consoles (console.c).  Methods translate
 * parameters into daemon/ops.h calls and -errno back out through api_call_fail_err, the one
 * table; they read the registry directly.  Loop thread only.
 */
#ifndef LOCKSTEP_DAEMON_RPC_H
#define LOCKSTEP_DAEMON_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "api/virt.h" /* domain XML for vm.define */
#include "daemon/daemon.h"
#include "daemon/listener.h"

struct rpc_server {
	struct daemon *d;
	struct listener listener;
	struct daemon_listener events;
	struct util_list clients; /* struct rpc_client, on a socket or in-process */
	unsigned nr_clients;
	struct util_list follows; /* console followers (follow.c) */
	uv_timer_t console_timer;
	bool console_timer_on;
	unsigned refs; /* the listener's and the console timer's, until each has closed */
};

/* Where an in-process client's frames go (tests and fuzzers have no socket). */
typedef void (*rpc_sink_fn)(void *arg, const char *frame, size_t len);

struct rpc_client {
	struct util_list link; /* rpc_server->clients */
	struct rpc_server *srv;
	struct conn *conn; /* NULL for an in-process client */
	rpc_sink_fn sink;
	void *sink_arg;
	struct api_session *session;
	bool subscribed;	   /* events.subscribe: lifecycle and pvlock notifications */
	struct util_list follows;  /* its console followers */
	struct util_list consoles; /* its interactive consoles (console.c) */
};

/* Listens on opts.socket_path. */
int rpc_server_start(struct daemon *d);
void rpc_server_stop(struct daemon *d);
/* A client without a socket: the daemon's methods on a real session whose frames go to
 * `sink`.  `limits` NULL: the daemon's. */
int rpc_client_open(struct rpc_server *srv, rpc_sink_fn sink, void *arg,
		    const struct api_limits *limits, bool read_only, struct rpc_client **out);
/* The client leaves: its parked calls are cancelled, their replies dropped. */
void rpc_client_close(struct rpc_client *c);

/* ---- methods (methods.c, methods_sched.c, methods_host.c) ---- */

extern const struct api_method rpc_methods[];
extern const size_t rpc_nr_methods;
/* The VM named by params.name, or NULL with the call failed (missing name, no such VM). */
struct dvm *rpc_find_vm(struct daemon *d, struct api_call *call, json_t *params);
/* The client a call came from, or NULL once it has gone.  Inline: the method files read it
 * without calling into server.c, which calls them (check_calls.py: no circle). */
static inline struct rpc_client *rpc_call_client(struct api_call *call)
{
	struct api_session *s = api_call_session(call);

	return s ? api_session_opaque(s) : NULL;
}
/* A VM in a line: state, what it runs with (the stored definition when it does not run),
 * the worker's error, a pending restart, and "pending". */
json_t *rpc_vm_summary(struct dvm *vm);
/* The stored definition's values that differ from the running VM's ({"sched.policy":
 * "gang", ...}: they apply at its next start), or NULL when none differ or it does not run. */
json_t *rpc_vm_pending(struct dvm *vm);
void rpc_sched_get(void *ctx, struct api_call *call, json_t *params);
void rpc_sched_set(void *ctx, struct api_call *call, json_t *params);
void rpc_sched_stats(void *ctx, struct api_call *call, json_t *params);
void rpc_host_check(void *ctx, struct api_call *call, json_t *params);
void rpc_irq_get(void *ctx, struct api_call *call, json_t *params);
void rpc_irq_set(void *ctx, struct api_call *call, json_t *params);
void rpc_device_list(void *ctx, struct api_call *call, json_t *params);
void rpc_device_attach(void *ctx, struct api_call *call, json_t *params);
void rpc_device_detach(void *ctx, struct api_call *call, json_t *params);
void rpc_device_host(void *ctx, struct api_call *call, json_t *params);

/* ---- consoles (follow.c) ---- */

#define RPC_FOLLOWS_PER_CLIENT 16
#define RPC_FOLLOWS_PER_VM 64

/*
 * Answers vm.console with [offset, offset + max) of the VM's console log as it is now.  With
 * a `follower`, that client then gets what follows the bytes of the reply as
 * "console.output" notifications, or the call fails with -EUSERS past
 * RPC_FOLLOWS_PER_CLIENT or RPC_FOLLOWS_PER_VM.
 */
void rpc_console_reply(struct dvm *vm, struct api_call *call, uint64_t offset, uint64_t max,
		       struct rpc_client *follower);
void rpc_unfollow_client(struct rpc_client *c);

/* ---- interactive consoles (console.c) ---- */

void rpc_console_attach(void *ctx, struct api_call *call, json_t *params);
void rpc_console_input(void *ctx, struct api_call *call, json_t *params);
void rpc_console_detach(void *ctx, struct api_call *call, json_t *params);
/* The client leaves: its consoles are let go. */
void rpc_console_detach_client(struct rpc_client *c);

#endif /* LOCKSTEP_DAEMON_RPC_H */
