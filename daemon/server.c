/*
 * The JSON-RPC endpoint: a unix socket (mode 0660, group "lockstep" when it exists), one
 * api_session per client, peer credentials checked at accept, limits on clients and on what a
 * client may leave unread.  Also the event fan-out to subscribed clients.
 *
 * A client that misbehaves loses its own connection and nothing else.  Loop thread only.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define CLIENT_WRITE_BACKLOG_MAX (16u << 20)

static void client_closed(uv_handle_t *h)
{
	struct client *c = h->data;

	free(c);
}

static void client_close(struct client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	console_unfollow_client(c);
	api_session_close(c->session);
	c->session = NULL;
	util_list_del(&c->link);
	c->d->nr_clients--;
	uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static void write_done(uv_write_t *req, int status)
{
	free(req->data);
	free(req);
}

static void client_send(void *opaque, const char *frame, size_t len)
{
	struct client *c = opaque;
	uv_write_t *req;
	uv_buf_t buf;
	char *copy;

	if (c->closing || c->dead)
		return;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > CLIENT_WRITE_BACKLOG_MAX) {
		util_log(&c->d->log, UTIL_LOG_WARN,
			 "client pid %d does not read its replies; disconnecting it", (int)c->pid);
		c->dead = true; /* closed by the sweeper, not from inside its own session */
		uv_read_stop((uv_stream_t *)&c->pipe);
		return;
	}
	copy = malloc(len);
	req = malloc(sizeof(*req));
	if (!copy || !req) {
		free(copy);
		free(req);
		return;
	}
	memcpy(copy, frame, len);
	req->data = copy;
	buf = uv_buf_init(copy, (unsigned)len);
	if (uv_write(req, (uv_stream_t *)&c->pipe, &buf, 1, write_done)) {
		free(copy);
		free(req);
	}
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	buf->base = malloc(65536);
	buf->len = buf->base ? 65536 : 0;
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *c = s->data;

	if (n > 0 && !c->dead)
		api_session_feed(c->session, buf->base, (size_t)n);
	free(buf->base);
	if (n == UV_EOF) {
		/* A half-close ends the requests, not the replies: the sweeper closes the
		 * connection once every call is answered and written. */
		c->eof = true;
		uv_read_stop(s);
	} else if (n < 0) {
		client_close(c);
	}
}

/* Root, the daemon's own user, and members of the "lockstep" group may drive lockstepd. */
bool server_peer_allowed(struct daemon *d, int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);
	gid_t groups[256];
	socklen_t glen = sizeof(groups);

	memset(cred, 0, sizeof(*cred));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0) {
		cred->uid = (uid_t)-1;
		return false;
	}
	if (cred->uid == 0 || cred->uid == geteuid())
		return true;
	if (d->group == (gid_t)-1)
		return false;
	if (cred->gid == d->group)
		return true;
	/* The groups the peer process holds now, not what the group database says of its user:
	 * a process that dropped its groups is not let in. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0)
		return false;
	for (size_t i = 0; i < glen / sizeof(groups[0]); i++)
		if (groups[i] == d->group)
			return true;
	return false;
}

/* Tells a client why it is turned away (a JSON-RPC error with a null id), then closes it. */
static void refuse(struct client *c, const char *frame)
{
	uv_buf_t buf = uv_buf_init((char *)frame, (unsigned)strlen(frame));

	uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
	uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
	static const struct api_session_ops ops = { .send = client_send };
	struct daemon *d = server->data;
	struct api_limits limits = API_LIMITS_DEFAULT;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	struct client *c;
	uv_os_fd_t fd;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->d = d;
	util_list_init(&c->follows);
	uv_pipe_init(d->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
		uv_close((uv_handle_t *)&c->pipe, client_closed);
		return;
	}
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) || !server_peer_allowed(d, fd, &cred)) {
		util_log(&d->log, UTIL_LOG_WARN,
			 "refused a client (uid %d): not root, not the "
			 "daemon's user, not in group lockstep",
			 (int)cred.uid);
		refuse(c, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32006,"
			  "\"message\":\"not allowed: only root, lockstepd's user and group "
			  "lockstep may connect\"}}\n");
		return;
	}
	c->uid = cred.uid;
	c->pid = cred.pid;
	limits.max_frame = d->opts.max_frame;
	if (d->nr_clients >= d->opts.max_clients ||
	    api_session_new(daemon_methods, daemon_nr_methods, d, &ops, c, &limits, &c->session)) {
		refuse(c, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32007,"
			  "\"message\":\"too many clients\"}}\n");
		return;
	}
	util_list_add_tail(&d->clients, &c->link);
	d->nr_clients++;
	uv_read_start((uv_stream_t *)&c->pipe, client_alloc, client_read);
}

/* Closes clients marked dead while the loop was inside their session, and half-closed ones
 * that have nothing more coming. */
static void sweep_dead_clients(uv_check_t *h)
{
	struct daemon *d = h->data;
	struct util_list *pos, *tmp;

	util_list_for_each_safe(pos, tmp, &d->clients) {
		struct client *c = util_container_of(pos, struct client, link);

		if (c->dead || (c->eof && !api_session_pending(c->session) &&
				!uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe)))
			client_close(c);
	}
}

int server_listen(struct daemon *d)
{
	struct group *gr = getgrnam("lockstep");
	int ret;

	d->group = gr ? gr->gr_gid : (gid_t)-1;
	uv_check_init(d->loop, &d->sweeper);
	d->sweeper.data = d;
	uv_check_start(&d->sweeper, sweep_dead_clients);
	uv_unref((uv_handle_t *)&d->sweeper);
	unlink(d->opts.socket_path);
	ret = uv_pipe_init(d->loop, &d->server, 0);
	if (ret)
		return ret;
	d->server.data = d;
	d->server_open = true;
	ret = uv_pipe_bind(&d->server, d->opts.socket_path);
	if (ret)
		return ret;
	if (chmod(d->opts.socket_path, 0660) < 0)
		return -errno;
	if (gr && chown(d->opts.socket_path, (uid_t)-1, gr->gr_gid) < 0)
		return -errno;
	return uv_listen((uv_stream_t *)&d->server, 64, on_connection);
}

void server_close(struct daemon *d)
{
	struct util_list *pos, *tmp;

	if (d->server_open) {
		uv_close((uv_handle_t *)&d->sweeper, NULL);
		uv_close((uv_handle_t *)&d->server, NULL);
		unlink(d->opts.socket_path);
		d->server_open = false;
	}
	util_list_for_each_safe(pos, tmp, &d->clients)
		client_close(util_container_of(pos, struct client, link));
}

void daemon_add_listener(struct daemon *d, struct daemon_listener *l)
{
	util_list_add_tail(&d->listeners, &l->link);
}

void daemon_remove_listener(struct daemon_listener *l)
{
	util_list_del(&l->link);
}

void events_emit(struct daemon *d, json_t *event)
{
	struct util_list *pos, *tmp;

	util_list_for_each_safe(pos, tmp, &d->listeners) {
		struct daemon_listener *l = util_container_of(pos, struct daemon_listener, link);

		l->fn(l->arg, event);
	}
	util_list_for_each(pos, &d->clients) {
		struct client *c = util_container_of(pos, struct client, link);

		if (c->subscribed && !c->dead)
			api_session_notify(c->session, "event", json_incref(event));
	}
	json_decref(event);
}

void events_lifecycle(struct dvm *vm, const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	events_emit(vm->d, json_pack("{s:s, s:s, s:s, s:s, s:s, s:f}", "type", "lifecycle", "vm",
				     vm->cfg.name, "event", what, "state",
				     dvm_state_name(vm->state), "reason", vm->reason, "time",
				     (double)ts.tv_sec + (double)ts.tv_nsec / 1e9));
}
