/*
 * The JSON-RPC endpoint: a unix socket on the shared listener (mode 0660, group "lockstep"
 * when it exists), one api_session per client over the daemon's method table, limits on
 * clients and frames, and the event fan-out to clients that subscribed.  In-process clients
 * (tests, fuzzers) get the same sessions without a socket.
 *
 * A client that misbehaves loses its own connection and nothing else.  Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/rpc/rpc.h"

#define CLIENT_WRITE_BACKLOG_MAX (16u << 20)

static void client_send(void *opaque, const char *frame, size_t len)
{
	struct rpc_client *c = opaque;
	char *copy;

	if (!c->conn) {
		c->sink(c->sink_arg, frame, len);
		return;
	}
	copy = malloc(len);
	if (!copy)
		return;
	memcpy(copy, frame, len);
	conn_send(c->conn, copy, len);
}

static int client_new(struct rpc_server *srv, const struct api_limits *limits, bool read_only,
		      struct rpc_client **out)
{
	static const struct api_session_ops ops = { .send = client_send };
	struct api_limits lim = API_LIMITS_DEFAULT;
	struct rpc_client *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->srv = srv;
	util_list_init(&c->follows);
	util_list_init(&c->consoles);
	lim.max_frame = srv->d->opts.max_frame;
	ret = api_session_new(rpc_methods, rpc_nr_methods, srv->d, &ops, c, limits ? limits : &lim,
			      &c->session);
	if (ret) {
		free(c);
		return ret;
	}
	api_session_set_read_only(c->session, read_only);
	util_list_add_tail(&srv->clients, &c->link);
	srv->nr_clients++;
	*out = c;
	return 0;
}

int rpc_client_open(struct rpc_server *srv, rpc_sink_fn sink, void *arg,
		    const struct api_limits *limits, bool read_only, struct rpc_client **out)
{
	int ret = client_new(srv, limits, read_only, out);

	if (!ret) {
		(*out)->sink = sink;
		(*out)->sink_arg = arg;
	}
	return ret;
}

void rpc_client_close(struct rpc_client *c)
{
	if (!c)
		return;
	rpc_unfollow_client(c);
	rpc_console_detach_client(c);
	util_list_del(&c->link);
	c->srv->nr_clients--;
	api_session_close(c->session);
	free(c);
}

/* ---- the listener's hooks ---- */

static int conn_open(void *arg, struct conn *conn)
{
	struct rpc_client *c;
	int ret = client_new(arg, NULL, conn->read_only, &c);

	if (ret)
		return ret;
	c->conn = conn;
	conn->data = c;
	conn_established(conn); /* its peer's credentials were its handshake */
	return 0;
}

static int conn_feed(struct conn *conn, const char *data, size_t len)
{
	struct rpc_client *c = conn->data;

	api_session_feed(c->session, data, len);
	return 0;
}

static unsigned conn_pending(const struct conn *conn)
{
	const struct rpc_client *c = conn->data;

	return api_session_pending(c->session);
}

static void conn_gone(struct conn *conn)
{
	rpc_client_close(conn->data);
}

static size_t conn_buffered(const struct conn *conn)
{
	const struct rpc_client *c = conn->data;

	return api_session_buffered(c->session);
}

static void conn_fail(struct conn *conn, const char *why)
{
	struct rpc_client *c = conn->data;

	api_session_abort(c->session, why);
}

/* The listener and the console timer each hold the endpoint until they have closed. */
static void server_unref(struct rpc_server *srv)
{
	if (--srv->refs == 0)
		free(srv);
}

static void released(void *arg)
{
	server_unref(arg);
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

/* ---- events to subscribers ---- */

static void on_event(void *arg, json_t *event)
{
	struct rpc_server *srv = arg;
	struct util_list *pos;

	util_list_for_each(pos, &srv->clients) {
		struct rpc_client *c = util_container_of(pos, struct rpc_client, link);

		if (c->subscribed && !(c->conn && c->conn->dead))
			api_session_notify(c->session, "event", json_incref(event));
	}
}

int rpc_server_start(struct daemon *d)
{
	struct listener_config cfg = {
		.name = "JSON-RPC",
		.max_per_uid = d->opts.max_clients_per_user,
		.write_backlog_max = CLIENT_WRITE_BACKLOG_MAX,
		.write_backlog_read_only = CLIENT_WRITE_BACKLOG_MAX,
		.refuse_denied = LISTENER_TEXT(
			"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32006,\"message\":"
			"\"not allowed: only root, lockstepd's user and group lockstep may connect\"}}\n"),
		.refuse_full = LISTENER_TEXT("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
					     "-32007,\"message\":\"too many clients\"}}\n"),
		.refuse_user = LISTENER_TEXT(
			"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32007,\"message\":"
			"\"too many connections of this user\"}}\n"),
	};
	struct rpc_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return -ENOMEM;
	srv->d = d;
	srv->refs = 2; /* the listener's and the console timer's */
	util_list_init(&srv->clients);
	util_list_init(&srv->follows);
	uv_timer_init(d->loop, &srv->console_timer);
	srv->console_timer.data = srv;
	listener_init(&srv->listener, d, &cfg, &listener_ops, srv, &d->client_budget);
	srv->events = (struct daemon_listener){ .fn = on_event, .arg = srv };
	daemon_add_listener(d, &srv->events);
	d->rpc = srv;
	return listener_add_socket(&srv->listener, d->opts.socket_path, false, d->opts.max_clients);
}

static void timer_closed(uv_handle_t *h)
{
	server_unref(h->data);
}

void rpc_server_stop(struct daemon *d)
{
	struct rpc_server *srv = d->rpc;

	if (!srv)
		return;
	d->rpc = NULL;
	daemon_remove_listener(&srv->events);
	/* Socket clients go with their connections; in-process ones are their owners' to close
	 * before the daemon goes. */
	listener_close(&srv->listener);
	uv_close((uv_handle_t *)&srv->console_timer, timer_closed);
}
