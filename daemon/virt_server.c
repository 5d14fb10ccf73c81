/*
 * lockstepd's libvirt endpoint: the read-write and read-only unix sockets that virsh and the
 * libvirt client library find at /run/libvirt/virtlockstepd-sock[-ro], one api_virt_session
 * per connection, peer credentials, back-pressure, and lifecycle events fanned out to the
 * connections that registered callbacks for them.
 *
 * The read-write socket (0660, group "lockstep") admits the users the JSON-RPC socket admits;
 * the read-only one (0666) admits anyone and its sessions refuse every state change.  A default
 * socket that another live lockstepd already serves is left to it (this daemon then has no
 * libvirt endpoint); a stale one is replaced.  A client that breaks the protocol gets an error
 * reply and loses its own connection.  Loop thread only.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/virt.h"

#define CONN_WRITE_BACKLOG_MAX (16u << 20)
#define CONN_MAX_PENDING 64

struct virt_read_buf {
	char data[65536];
};

static void server_unref(struct virt_server *srv);

/* ---- connections ---- */

static void conn_closed(uv_handle_t *h)
{
	struct virt_conn *c = h->data;
	struct virt_server *srv = c->srv;

	free(c->rbuf);
	free(c);
	server_unref(srv);
}

static void conn_close(struct virt_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	api_virt_session_close(c->session);
	c->session = NULL;
	while (!util_list_empty(&c->callbacks)) {
		struct virt_callback *cb =
			util_container_of(c->callbacks.next, struct virt_callback, link);

		util_list_del(&cb->link);
		free(cb);
	}
	util_list_del(&c->link);
	c->srv->nr_conns--;
	uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void flushed(uv_shutdown_t *req, int status)
{
	struct virt_conn *c = req->data;

	free(req);
	conn_close(c);
}

/* Closes a connection once what was already queued for it (an error reply) is written. */
static void conn_flush_and_close(struct virt_conn *c)
{
	uv_shutdown_t *req = malloc(sizeof(*req));

	c->dead = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (!req || uv_shutdown(req, (uv_stream_t *)&c->pipe, flushed)) {
		free(req);
		conn_close(c);
		return;
	}
	req->data = c;
	c->flushing = true;
}

static void write_done(uv_write_t *req, int status)
{
	free(req->data);
	free(req);
}

static void conn_send(void *opaque, uint8_t *packet, size_t len)
{
	struct virt_conn *c = opaque;
	uv_write_t *req;
	uv_buf_t buf;

	if (c->closing || c->dead) {
		free(packet);
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > CONN_WRITE_BACKLOG_MAX) {
		util_log_limited(
			&c->srv->d->log, &c->srv->complaints, UTIL_LOG_WARN,
			"libvirt client pid %d does not read its replies; disconnecting it",
			(int)c->pid);
		c->dead = true; /* closed by the sweeper, not from inside its own session */
		uv_read_stop((uv_stream_t *)&c->pipe);
		free(packet);
		return;
	}
	req = malloc(sizeof(*req));
	if (!req) {
		free(packet);
		return;
	}
	req->data = packet;
	buf = uv_buf_init((char *)packet, (unsigned)len);
	if (uv_write(req, (uv_stream_t *)&c->pipe, &buf, 1, write_done)) {
		free(packet);
		free(req);
	}
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct virt_conn *c = h->data;

	*buf = uv_buf_init(c->rbuf->data, sizeof(c->rbuf->data));
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct virt_conn *c = s->data;

	if (n > 0 && !c->dead) {
		if (api_virt_session_feed(c->session, buf->base, (size_t)n) < 0) {
			util_log_limited(&c->srv->d->log, &c->srv->complaints, UTIL_LOG_WARN,
					 "libvirt client pid %d: %s; closing its connection",
					 (int)c->pid, api_virt_session_error(c->session));
			conn_flush_and_close(c);
		}
	} else if (n == UV_EOF) {
		/* A half-close ends the calls, not the replies: the sweeper closes later. */
		c->eof = true;
		uv_read_stop(s);
	} else if (n < 0) {
		conn_close(c);
	}
}

static void sweep(uv_check_t *h);

static void on_connection(uv_stream_t *server, int status)
{
	static const struct api_virt_session_ops ops = { .send = conn_send };
	struct virt_socket *vs = server->data;
	struct virt_server *srv = vs->srv;
	struct daemon *d = srv->d;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1 };
	struct api_virt_config cfg = {
		.handlers = &srv->handlers,
		.type = "lockstep",
		.scheme = "lockstep",
		.version = srv->version,
		.read_only = vs->read_only,
		.max_pending = CONN_MAX_PENDING,
		.max_packet = VIRT_PACKET_MAX,
	};
	struct virt_conn *c;
	uv_os_fd_t fd;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->srv = srv;
	srv->refs++;
	util_list_init(&c->callbacks);
	util_list_init(&c->link);
	c->rbuf = malloc(sizeof(*c->rbuf));
	uv_pipe_init(d->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->closing = true; /* until it is accepted, closing it touches nothing else */
	if (!c->rbuf || uv_accept(server, (uv_stream_t *)&c->pipe)) {
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
		return;
	}
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) ||
	    (!server_peer_allowed(d, fd, &cred) && (!vs->read_only || cred.uid == (uid_t)-1))) {
		util_log_limited(
			&d->log, &srv->complaints, UTIL_LOG_WARN,
			"refused a libvirt client (uid %d) on %s: not root, not the "
			"daemon's user, not in group lockstep (the -ro socket is open to all)",
			(int)cred.uid, vs->path);
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
		return;
	}
	c->uid = cred.uid;
	c->pid = cred.pid;
	cfg.ctx = c;
	if (srv->nr_conns >= d->opts.max_clients ||
	    api_virt_session_new(&cfg, &ops, c, &c->session)) {
		util_log_limited(&d->log, &srv->complaints, UTIL_LOG_WARN,
				 "refused a libvirt client (pid %d): %u connections are open",
				 (int)cred.pid, srv->nr_conns);
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
		return;
	}
	c->closing = false;
	util_list_add_tail(&srv->conns, &c->link);
	srv->nr_conns++;
	uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

/* Closes connections marked dead inside their session, and half-closed ones that are done. */
static void sweep(uv_check_t *h)
{
	struct virt_server *srv = h->data;
	struct util_list *pos, *tmp;

	util_list_for_each_safe(pos, tmp, &srv->conns) {
		struct virt_conn *c = util_container_of(pos, struct virt_conn, link);

		if (c->flushing)
			continue;
		if (c->dead || (c->eof && !api_virt_session_pending(c->session) &&
				!uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe)))
			conn_close(c);
	}
}

/* ---- sockets ---- */

/* 1 if a live server answers on `path`, 0 if nothing does (absent or stale), or -errno. */
static int socket_in_use(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (util_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 1 : -errno;
	close(fd);
	if (ret == -ECONNREFUSED || ret == -ENOENT)
		return 0;
	return ret;
}

static void socket_closed(uv_handle_t *h)
{
	struct virt_socket *vs = h->data;

	server_unref(vs->srv);
}

static int listen_on(struct virt_server *srv, struct virt_socket *vs, gid_t group)
{
	struct stat st;
	int ret;

	ret = socket_in_use(vs->path);
	if (ret)
		return ret > 0 ? -EADDRINUSE : ret;
	if (unlink(vs->path) < 0 && errno != ENOENT)
		return -errno;
	ret = uv_pipe_init(srv->d->loop, &vs->pipe, 0);
	if (ret)
		return ret;
	vs->pipe.data = vs;
	vs->open = true;
	srv->refs++;
	ret = uv_pipe_bind(&vs->pipe, vs->path);
	if (ret)
		return ret;
	if (stat(vs->path, &st) < 0 || chmod(vs->path, vs->read_only ? 0666 : 0660) < 0)
		return -errno;
	vs->dev = st.st_dev;
	vs->ino = st.st_ino;
	if (!vs->read_only && group != (gid_t)-1 && chown(vs->path, (uid_t)-1, group) < 0)
		return -errno;
	return uv_listen((uv_stream_t *)&vs->pipe, 64, on_connection);
}

static void unlisten(struct virt_socket *vs)
{
	struct stat st;

	if (!vs->open)
		return;
	vs->open = false;
	/* Only our own socket: a later daemon may have taken over a path we gave up. */
	if (stat(vs->path, &st) == 0 && st.st_dev == vs->dev && st.st_ino == vs->ino)
		unlink(vs->path);
	uv_close((uv_handle_t *)&vs->pipe, socket_closed);
}

static void server_unref(struct virt_server *srv)
{
	if (--srv->refs == 0)
		free(srv);
}

static void sweeper_closed(uv_handle_t *h)
{
	server_unref(h->data);
}

static int socket_paths(struct virt_server *srv, bool *defaults)
{
	const struct daemon_options *o = &srv->d->opts;
	char *rw = srv->sockets[0].path, *ro = srv->sockets[1].path;

	*defaults = !o->virt_socket[0];
	util_strlcpy(rw, *defaults ? VIRT_DEFAULT_SOCKET : o->virt_socket,
		     sizeof(srv->sockets[0].path));
	if (o->virt_socket_ro[0])
		util_strlcpy(ro, o->virt_socket_ro, sizeof(srv->sockets[1].path));
	else if (snprintf(ro, sizeof(srv->sockets[1].path), "%s-ro", rw) >=
		 (int)sizeof(srv->sockets[1].path))
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
	    api_virt_handlers_add(h, virt_event_handlers, virt_nr_event_handlers))
		return -EINVAL;
	return 0;
}

int virt_server_start(struct daemon *d)
{
	struct group *gr = getgrnam("lockstep");
	struct virt_server *srv = calloc(1, sizeof(*srv));
	bool defaults = true;
	int ret;

	if (!srv)
		return -ENOMEM;
	srv->d = d;
	srv->refs = 1;
	srv->version = api_virt_version_number(LOCKSTEP_VERSION);
	util_list_init(&srv->conns);
	util_ratelimit_init(&srv->complaints, 10ull * 1000000000ull, 10);
	srv->sockets[0].srv = srv->sockets[1].srv = srv;
	srv->sockets[1].read_only = true;
	d->virt = srv;
	ret = add_handlers(srv);
	if (!ret)
		ret = socket_paths(srv, &defaults);
	for (int i = 0; i < 2 && !ret; i++)
		ret = listen_on(srv, &srv->sockets[i], gr ? gr->gr_gid : (gid_t)-1);
	if (ret) {
		util_log(&d->log, defaults ? UTIL_LOG_WARN : UTIL_LOG_ERROR,
			 "libvirt endpoint: cannot listen on %s: %s%s", srv->sockets[0].path,
			 strerror(-ret),
			 ret == -EADDRINUSE ? " (another lockstepd serves it)" : "");
		virt_server_stop(d);
		return defaults ? 0 : ret;
	}
	uv_check_init(d->loop, &srv->sweeper);
	srv->sweeper.data = srv;
	srv->refs++;
	uv_check_start(&srv->sweeper, sweep);
	uv_unref((uv_handle_t *)&srv->sweeper);
	srv->sweeper_init = true;
	srv->listener = (struct daemon_listener){ .fn = virt_on_event, .arg = srv };
	daemon_add_listener(d, &srv->listener);
	srv->listening = true;
	util_log(&d->log, UTIL_LOG_INFO, "libvirt endpoint on %s (read-only: %s)",
		 srv->sockets[0].path, srv->sockets[1].path);
	return 0;
}

void virt_server_stop(struct daemon *d)
{
	struct virt_server *srv = d->virt;
	struct util_list *pos, *tmp;

	if (!srv)
		return;
	d->virt = NULL;
	if (srv->listening)
		daemon_remove_listener(&srv->listener);
	util_list_for_each_safe(pos, tmp, &srv->conns)
		conn_close(util_container_of(pos, struct virt_conn, link));
	for (int i = 0; i < 2; i++)
		unlisten(&srv->sockets[i]);
	if (srv->sweeper_init)
		uv_close((uv_handle_t *)&srv->sweeper, sweeper_closed);
	server_unref(srv);
}
