/*
 * daemon/virt — lockstepd's libvirt front end: the endpoint on the shared listener, with its
 * read-write and read-only sockets (server.c), events (events.c), and the handlers that turn
 * libvirt procedures into registry lookups and daemon/ops.h calls (domain.c, define.c,
 * lifecycle.c, node.c, vcpu.c, stats.c, console.c), -errno back out through virt_fail_err, the one table.  The
 * protocol itself (framing, XDR, the connection procedures) is api/virt.h's.  Loop thread
 * only.
 */
#ifndef LOCKSTEP_DAEMON_VIRT_H
#define LOCKSTEP_DAEMON_VIRT_H

#include <sys/types.h>

#include "api/virt.h"
#include "daemon/daemon.h"
#include "daemon/listener.h"

#define VIRT_DEFAULT_SOCKET "/run/libvirt/virtlockstepd-sock"
#define VIRT_DOMAIN_SCHEMA "/usr/share/libvirt/schemas/domain.rng"
#define VIRT_CALLBACKS_MAX 64 /* event callbacks per connection */

struct virt_server {
	struct daemon *d;
	struct listener listener;
	struct util_list conns; /* struct virt_conn, on a socket or in-process */
	unsigned nr_conns;
	struct api_virt_handlers handlers;
	struct daemon_listener events;
	uint64_t version;
	/* What a client turned away at connect reads (the listener's refuse_*). */
	struct listener_message refusals[3];
};

/* Where an in-process connection's packets go (fuzzers have no socket); `packet` is taken. */
typedef void (*virt_sink_fn)(void *arg, uint8_t *packet, size_t len);

struct virt_conn {
	struct util_list link; /* virt_server->conns */
	struct virt_server *srv;
	struct conn *conn; /* NULL for an in-process connection */
	virt_sink_fn sink;
	void *sink_arg;
	struct api_virt_session *session;
	struct util_list callbacks; /* struct virt_callback */
	unsigned nr_callbacks;
	int32_t next_callback;
	struct util_list streams; /* struct virt_stream: its consoles (console.c) */
};

struct virt_callback {
	struct util_list link;
	int32_t id, event_id;
	bool has_dom;
	uint8_t uuid[VIRT_UUID_LEN];
};

/* Handler tables, one per file. */
extern const struct api_virt_handler virt_domain_handlers[];
extern const size_t virt_nr_domain_handlers;
extern const struct api_virt_handler virt_define_handlers[];
extern const size_t virt_nr_define_handlers;
extern const struct api_virt_handler virt_lifecycle_handlers[];
extern const size_t virt_nr_lifecycle_handlers;
extern const struct api_virt_handler virt_host_handlers[];
extern const size_t virt_nr_host_handlers;
extern const struct api_virt_handler virt_vcpu_handlers[];
extern const size_t virt_nr_vcpu_handlers;
extern const struct api_virt_handler virt_stats_handlers[];
extern const size_t virt_nr_stats_handlers;
extern const struct api_virt_handler virt_event_handlers[];
extern const size_t virt_nr_event_handlers;
extern const struct api_virt_handler virt_console_handlers[];
extern const size_t virt_nr_console_handlers;

/* ---- the endpoint (virt/server.c) ---- */

/* Listens on the libvirt sockets; a default path that another daemon serves is skipped. */
int virt_server_start(struct daemon *d);
void virt_server_stop(struct daemon *d);
/* A connection without a socket: the endpoint's handlers on a real session whose packets go
 * to `sink`; max_pending 0 is the endpoint's limit on calls in flight. */
int virt_conn_open(struct virt_server *srv, virt_sink_fn sink, void *arg, bool read_only,
		   unsigned max_pending, struct virt_conn **out);
/* The connection leaves: its parked calls are cancelled, their replies dropped. */
void virt_conn_close(struct virt_conn *c);

/* ---- consoles (virt/console.c) ---- */

/* A stream packet from the client (api_virt_session_ops.stream). */
void virt_stream_packet(struct virt_conn *c, int32_t proc, uint32_t serial, int32_t status,
			const uint8_t *data, size_t len);
/* The connection goes: its consoles are let go. */
void virt_streams_close(struct virt_conn *c);

/* ---- events (virt/events.c) ---- */

/* The daemon's event listener: lifecycle events to the callbacks registered for them. */
void virt_on_event(void *arg, json_t *event);

/* ---- shared by the handlers (virt/domain.c) ---- */

/* The VM a call names, by UUID (the id and name in the call may be stale); fails the call
 * with VIRT_ERR_NO_DOMAIN and returns NULL if there is none. */
struct dvm *virt_find(struct virt_conn *c, struct api_virt_call *call,
		      const struct api_virt_args *args);
void virt_put_domain(struct api_xdr_out *out, const struct dvm *vm);
void virt_reply_domain(struct api_virt_call *call, const struct dvm *vm);
void virt_reply_int(struct api_virt_call *call, int32_t value);
void virt_reply_u64(struct api_virt_call *call, uint64_t value);
/* Fails a call with the libvirt code for an operation's -errno (api_virt_error_from_errno,
 * the one table). */
void virt_fail_err(struct api_virt_call *call, int err, const char *message);
/* virDomainState and its reason, from the VM's state and why it is in it. */
int virt_domain_state(const struct dvm *vm, int *reason);
bool virt_active(const struct dvm *vm);
/* Whether a domain passes CONNECT_LIST_ALL_DOMAINS's filter flags (VIRT_LIST_*). */
bool virt_list_matches(const struct dvm *vm, uint32_t flags);
/* Created by CREATE_XML, or undefined while running: it goes when it stops. */
bool virt_transient(const struct dvm *vm);
/* CPU time (ns), the CPU it last ran on and its scheduler state letter, from /proc. */
int virt_thread_stat(pid_t pid, pid_t tid, uint64_t *cpu_ns, int *cpu, char *state);

/* ---- definitions (virt/define.c) ---- */

/* Domain XML from a call into `cfg` (define --validate checks libvirt's schema too); fails the
 * call with the reason and returns false if the XML is refused. */
bool virt_parse_xml(struct api_virt_call *call, const char *xml, bool validate, struct vmdef *cfg);

#endif /* LOCKSTEP_DAEMON_VIRT_H */
