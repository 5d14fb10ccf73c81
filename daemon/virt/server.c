/*
 * lockstepd's libvirt endpoint: the read-write and read-only unix sockets that virsh and the
 * libvirt client library find at /run/libvirt/virtlockstepd-sock[-ro], on the shared listener
 * (daemon/listener.c: accept, peer credentials, caps, back-pressure), one api_virt_session per
 * connection, and lifecycle events fanned out to the connections that registered callbacks
 * for them (virt/events.c).
 *
 * The read-write socket (0660, group "lockstep") admits the users the JSON-RPC socket admits;
 * the read-only one (0666) admits anyone and its sessions refuse every state change.  A default
 * socket that another live lockstepd already serves is left to it (this daemon then has no
 * libvirt endpoint); a stale one is replaced.  A client that breaks the protocol gets an error
 * reply and loses its own connection.  Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/virt/virt.h"

#define CONN_WRITE_BACKLOG_MAX (16u << 20)
#define CONN_WRITE_BACKLOG_READ_ONLY (1u << 20) /* no read-only reply is near this */
#define CONN_MAX_PENDING 64

static void conn_send_packet(void *opaque, uint8_t *packet, size_t len)
{
	struct virt_conn *c = opaque;

	if (c->conn)
		conn_send(c->conn, packet, len);
	else
		c->sink(c->sink_arg, packet, len);
}

static void conn_stream(void *opaque, int32_t proc, uint32_t serial, int32_t status,
			const uint8_t *data, size_t len)
{
	virt_stream_packet(opaque, proc, serial, status, data, len);
}

static int conn_new(struct virt_server *srv, bool read_only, unsigned max_pending,
		    struct virt_conn **out)
{
	static const struct api_virt_session_ops ops = { .send = conn_send_packet,
							 .stream = conn_stream };
	struct virt_conn *c = calloc(1, sizeof(*c));
	struct api_virt_config cfg = {
		.handlers = &srv->handlers,
		.ctx = c,
		.type = "lockstep",
		.scheme = "lockstep",
		.version = srv->version,
		.read_only = read_only,
		.max_pending = max_pending ? max_pending : CONN_MAX_PENDING,
		.max_packet = VIRT_PACKET_MAX,
	};
	int ret;

	if (!c)
		return -ENOMEM;
	c->srv = srv;
	util_list_init(&c->callbacks);
	util_list_init(&c->streams);
	ret = api_virt_session_new(&cfg, &ops, c, &c->session);
	if (ret) {
		free(c);
		return ret;
	}
	util_list_add_tail(&srv->conns, &c->link);
	srv->nr_conns++;
	*out = c;
	return 0;
}

int virt_conn_open(struct virt_server *srv, virt_sink_fn sink, void *arg, bool read_only,
		   unsigned max_pending, struct virt_conn **out)
{
	int ret = conn_new(srv, read_only, max_pending, out);

	if (!ret) {
		(*out)->sink = sink;
		(*out)->sink_arg = arg;
	}
	return ret;
}

void virt_conn_close(struct virt_conn *c)
{
	if (!c)
		return;
	virt_streams_close(c);
	api_virt_session_close(c->session);
	while (!util_list_empty(&c->callbacks)) {
		struct virt_callback *cb =
			util_container_of(c->callbacks.next, struct virt_callback, link);

		util_list_del(&cb->link);
		free(cb);
	}
	util_list_del(&c->link);
	c->srv->nr_conns--;
	free(c);
}

/* ---- the listener's hooks ---- */

static int conn_open(void *arg, struct conn *conn)
{
	struct virt_conn *c;
	int ret = conn_new(arg, conn->read_only, 0, &c);

	if (ret)
		return ret;
	c->conn = conn;
	conn->data = c;
	return 0;
}

static int conn_feed(struct conn *conn, const char *data, size_t len)
{
	struct virt_conn *c = conn->data;
	int ret = api_virt_session_feed(c->session, data, len);

	if (ret < 0)
		util_log_limited(&c->srv->d->log, &conn->l->complaints, UTIL_LOG_WARN,
				 "libvirt client pid %d: %s; closing its connection",
				 (int)conn->pid, api_virt_session_error(c->session));
	else if (!conn->established && api_virt_session_open(c->session))
		conn_established(conn);
	return ret;
}

static unsigned conn_pending(const struct conn *conn)
{
	const struct virt_conn *c = conn->data;

	return api_virt_session_pending(c->session);
}

static void conn_gone(struct conn *conn)
{
	virt_conn_close(conn->data);
}

static size_t conn_buffered(const struct conn *conn)
{
	const struct virt_conn *c = conn->data;

	return api_virt_session_buffered(c->session);
}

static void conn_fail(struct conn *conn, const char *why)
{
	struct virt_conn *c = conn->data;

	api_virt_session_abort(c->session, why);
}

static void released(void *arg)
{
	struct virt_server *srv = arg;

	for (size_t i = 0; i < sizeof(srv->refusals) / sizeof(srv->refusals[0]); i++)
		free((void *)srv->refusals[i].data);
	free(srv);
}

/* The refusals a libvirt client reports as the error of its first call. */
static void make_refusals(struct virt_server *srv, struct listener_config *cfg)
{
	static const struct {
		int code;
		const char *why;
	} text[] = {
		{ VIRT_ERR_OPERATION_DENIED,
		  "only root, lockstepd's user and group lockstep may use this socket" },
		{ VIRT_ERR_OPERATION_FAILED, "too many clients on this socket" },
		{ VIRT_ERR_OPERATION_FAILED, "too many connections of this user" },
	};
	struct listener_message *out[] = { &cfg->refuse_denied, &cfg->refuse_full,
					   &cfg->refuse_user };

	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		size_t len = 0;
		uint8_t *pkt = api_virt_refusal_packet(text[i].code, text[i].why, &len);

		srv->refusals[i] = (struct listener_message){ .data = (const char *)pkt,
							      .len = pkt ? len : 0 };
		*out[i] = srv->refusals[i];
	}
}

static const struct listener_ops listener_ops = {
	.open = conn_open,
	.feed = conn_feed,
	.pending = conn_pending,
	.close = conn_gone,
	.buffered = conn_buffered,
	.fail = conn_fail,
	.released = released,
};

/* ---- the endpoint ---- */

static int socket_paths(const struct daemon_options *o, char *rw, char *ro, size_t size,
			bool *defaults)
{
	*defaults = !o->virt_socket[0];
	util_strlcpy(rw, *defaults ? VIRT_DEFAULT_SOCKET : o->virt_socket, size);
	if (o->virt_socket_ro[0])
		util_strlcpy(ro, o->virt_socket_ro, size);
	else if (snprintf(ro, size, "%s-ro", rw) >= (int)size)
		return -ENAMETOOLONG;
	if (*defaults && mkdir("/run/libvirt", 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int add_handlers(struct virt_server *srv)
{
	struct api_virt_handlers *h = &srv->handlers;

	if (api_virt_handlers_add(h, virt_domain_handlers, virt_nr_domain_handlers) ||
	    api_virt_handlers_add(h, virt_define_handlers, virt_nr_define_handlers) ||
	    api_virt_handlers_add(h, virt_lifecycle_handlers, virt_nr_lifecycle_handlers) ||
	    api_virt_handlers_add(h, virt_host_handlers, virt_nr_host_handlers) ||
	    api_virt_handlers_add(h, virt_vcpu_handlers, virt_nr_vcpu_handlers) ||
	    api_virt_handlers_add(h, virt_stats_handlers, virt_nr_stats_handlers) ||
	    api_virt_handlers_add(h, virt_event_handlers, virt_nr_event_handlers) ||
	    api_virt_handlers_add(h, virt_console_handlers, virt_nr_console_handlers))
		return -EINVAL;
	return 0;
}

int virt_server_start(struct daemon *d)
{
	struct listener_config cfg = {
		.name = "libvirt",
		.max_per_uid = d->opts.max_clients_per_user,
		.handshake_ms = d->opts.handshake_timeout_ms,
		.write_backlog_max = CONN_WRITE_BACKLOG_MAX,
		.write_backlog_read_only = CONN_WRITE_BACKLOG_READ_ONLY,
	};
	struct virt_server *srv = calloc(1, sizeof(*srv));
	char rw[108] = "", ro[108] = "";
	bool defaults = true;
	int ret;

	if (!srv)
		return -ENOMEM;
	srv->d = d;
	srv->version = api_virt_version_number(LOCKSTEP_VERSION);
	util_list_init(&srv->conns);
	make_refusals(srv, &cfg);
	listener_init(&srv->listener, d, &cfg, &listener_ops, srv, &d->client_budget);
	srv->events = (struct daemon_listener){ .fn = virt_on_event, .arg = srv };
	daemon_add_listener(d, &srv->events);
	d->virt = srv;
	ret = add_handlers(srv);
	if (!ret)
		ret = socket_paths(&d->opts, rw, ro, sizeof(rw), &defaults);
	if (!ret)
		ret = listener_add_socket(&srv->listener, rw, false, d->opts.max_clients);
	if (!ret)
		ret = listener_add_socket(&srv->listener, ro, true, d->opts.max_clients_ro);
	if (ret) {
		util_log(&d->log, defaults ? UTIL_LOG_WARN : UTIL_LOG_ERROR,
			 "libvirt endpoint: cannot listen on %s: %s%s", rw, strerror(-ret),
			 ret == -EADDRINUSE ? " (another lockstepd serves it)" : "");
		virt_server_stop(d);
		return defaults ? 0 : ret;
	}
	util_log(&d->log, UTIL_LOG_INFO, "libvirt endpoint on %s (read-only: %s)", rw, ro);
	return 0;
}

void virt_server_stop(struct daemon *d)
{
	struct virt_server *srv = d->virt;

	if (!srv)
		return;
	d->virt = NULL;
	daemon_remove_listener(&srv->events);
	/* Socket connections go with the listener (freeing srv once all is closed);
	 * in-process ones are their owners' to close before the daemon goes. */
	listener_close(&srv->listener);
}
