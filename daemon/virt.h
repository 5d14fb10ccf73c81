/*
 * lockstepd's libvirt endpoint, internal to daemon/virt_*.c: the two sockets and their
 * connections (virt_server.c), events (virt_events.c), and the handlers that turn libvirt
 * procedures into registry lookups and VM operations (virt_domain.c, virt_define.c,
 * virt_lifecycle.c, virt_node.c, virt_vcpu.c).  The protocol itself (framing, XDR, the
 * connection procedures) is api/virt.h's.  Loop thread only.
 */
#ifndef LOCKSTEP_DAEMON_VIRT_H
#define LOCKSTEP_DAEMON_VIRT_H

#include <sys/types.h>

#include "api/virt.h"
#include "daemon/daemon.h"

#define VIRT_DEFAULT_SOCKET "/run/libvirt/virtlockstepd-sock"
#define VIRT_DOMAIN_SCHEMA "/usr/share/libvirt/schemas/domain.rng"
#define VIRT_CALLBACKS_MAX 64 /* event callbacks per connection */

struct virt_server;

struct virt_socket {
	struct virt_server *srv;
	uv_pipe_t pipe;
	bool open;
	bool read_only;
	char path[108];
	dev_t dev; /* what we bound, so we never unlink another daemon's socket */
	ino_t ino;
};

struct virt_server {
	struct daemon *d;
	struct virt_socket sockets[2]; /* read-write, read-only */
	struct util_list conns;	       /* struct virt_conn */
	unsigned nr_conns;
	struct api_virt_handlers handlers;
	struct daemon_listener listener;
	bool listening;
	uv_check_t sweeper; /* closes dead connections */
	bool sweeper_init;
	uint64_t version;
	struct util_ratelimit complaints; /* misbehaving clients */
	unsigned refs;			  /* the daemon's, plus one per open libuv handle */
};

struct virt_conn {
	struct util_list link;
	struct virt_server *srv;
	uv_pipe_t pipe;
	struct api_virt_session *session;
	bool closing, dead;
	bool eof;      /* half-closed by the client: closed once its replies are out */
	bool flushing; /* closing after a protocol error, once the error reply is written */
	struct virt_read_buf *rbuf;
	uid_t uid;
	pid_t pid;
	struct util_list callbacks; /* struct virt_callback */
	unsigned nr_callbacks;
	int32_t next_callback;
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
extern const struct api_virt_handler virt_event_handlers[];
extern const size_t virt_nr_event_handlers;

/* ---- events (virt_events.c) ---- */

/* The daemon's event listener: lifecycle events to the callbacks registered for them. */
void virt_on_event(void *arg, json_t *event);

/* ---- shared by the handlers (virt_domain.c) ---- */

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
/* Created by CREATE_XML, or undefined while running: it goes when it stops. */
bool virt_transient(const struct dvm *vm);

/* ---- definitions (virt_define.c) ---- */

/* Domain XML from a call into `cfg` (define --validate checks libvirt's schema too); fails the
 * call with the reason and returns false if the XML is refused. */
bool virt_parse_xml(struct api_virt_call *call, const char *xml, bool validate, struct vmdef *cfg);

/* ---- host facts (virt_node.c) ---- */

/* CPU time (ns), the CPU it last ran on and its scheduler state letter, from /proc. */
int virt_thread_stat(pid_t pid, pid_t tid, uint64_t *cpu_ns, int *cpu, char *state);

#endif /* LOCKSTEP_DAEMON_VIRT_H */
