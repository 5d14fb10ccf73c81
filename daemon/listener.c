/*
 * The listener both front ends serve on (daemon/listener.h): sockets, connections, peer
 * credentials, caps, back-pressure, half-closes and sweeping.  The JSON-RPC endpoint
 * (daemon/rpc/) and the libvirt endpoint (daemon/virt/) each own one and give it their session
 * hooks; a client that misbehaves loses its own connection and nothing else.
 *
 * Nobody may lock others out: each socket has its own cap (the read-only socket, open to
 * every local user, never takes the read-write socket's room), the last slots of each are
 * kept for root and the daemon's user, one user holds at most max_per_uid connections, and a
 * connection that does not finish its handshake in time is dropped.  What clients make the
 * daemon hold (requests arriving, replies unread) is charged to one budget shared by every
 * listener; a connection that adds to it past its end is dropped.
 *
 * A connection marked dead from inside its own session (it stopped reading its replies) is
 * closed by the sweeper, a check handle, so a session is never freed under its own feet.  The
 * listener counts its open handles and tells its owner when the last one has closed.
 * Loop thread only.
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

#include "daemon/daemon.h"
#include "daemon/listener.h"

#define LISTEN_BACKLOG 64
#define READ_BUF (64u << 10)
#define HANDSHAKE_BACKLOG_MAX (64u << 10)  /* unread replies before a handshake is done */
#define FLUSH_GRACE_NS (5 * 1000000000ull) /* a last error reply's time to be read */
#define DEADLINE_CHECK_MS 1000u

struct conn_write {
	uv_write_t req;
	struct conn *c;
	void *data;
};

static void unref(struct listener *l)
{
	if (--l->refs == 0 && l->ops->released)
		l->ops->released(l->arg);
}

/* ---- connections ---- */

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct listener *l = c->l;

	l->budget->used -= c->charged;
	free(c->rbuf);
	free(c);
	unref(l);
}

/* Brings the connection's share of the budget to what it holds now. */
static void charge(struct conn *c)
{
	size_t now = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);

	if (!c->closing && c->data)
		now += c->l->ops->buffered(c);
	c->l->budget->used = c->l->budget->used - c->charged + now;
	c->charged = now;
}

static bool over_budget(const struct listener *l)
{
	return l->budget->max && l->budget->used > l->budget->max;
}

void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->l->ops->close(c);
	c->data = NULL;
	util_list_del(&c->link);
	c->l->nr_conns--;
	c->ls->nr_conns--;
	uv_close((uv_handle_t *)&c->pipe, conn_closed);
	charge(c); /* its unread replies are dropped now (write_done runs with ECANCELED) */
}

static void flushed(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	free(req);
	conn_close(c);
}

/* Closes a connection once what was already queued for it (an error reply) is written. */
static void flush_and_close(struct conn *c)
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
	c->flushing_ns = util_now_ns();
}

static void write_done(uv_write_t *req, int status)
{
	struct conn_write *w = util_container_of(req, struct conn_write, req);

	charge(w->c);
	free(w->data);
	free(w);
}

/* Unread replies beyond this disconnect the client. */
static size_t backlog_max(const struct conn *c)
{
	size_t max = c->read_only ? c->l->cfg.write_backlog_read_only : c->l->cfg.write_backlog_max;

	return !c->established && max > HANDSHAKE_BACKLOG_MAX ? HANDSHAKE_BACKLOG_MAX : max;
}

void conn_send(struct conn *c, void *data, size_t len)
{
	size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
	struct conn_write *w;
	uv_buf_t buf;

	if (c->closing || c->dead) {
		free(data);
		return;
	}
	/* A client that reads nothing while replies pile up loses its connection: past its own
	 * cap, or, while the daemon holds its whole budget, at its second unread reply. */
	if (queued > backlog_max(c) || (queued && over_budget(c->l))) {
		util_log_limited(
			&c->l->d->log, &c->l->complaints, UTIL_LOG_WARN,
			"%s client pid %d does not read its replies; disconnecting it%s",
			c->l->cfg.name, (int)c->pid,
			queued > backlog_max(c) ? "" : " (the daemon's buffer budget is spent)");
		c->dead = true; /* closed by the sweeper, not from inside its own session */
		uv_read_stop((uv_stream_t *)&c->pipe);
		free(data);
		return;
	}
	w = malloc(sizeof(*w));
	if (!w) {
		free(data);
		return;
	}
	w->c = c;
	w->data = data;
	buf = uv_buf_init(data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, write_done)) {
		free(data);
		free(w);
		return;
	}
	charge(c);
}

void conn_established(struct conn *c)
{
	c->established = true;
}

/* Drops a connection for a reason of the listener's, telling the client through its session. */
static void drop(struct conn *c, const char *why)
{
	if (c->closing || c->flushing)
		return;
	util_log_limited(&c->l->d->log, &c->l->complaints, UTIL_LOG_WARN,
			 "%s client pid %d (uid %d): %s; closing its connection", c->l->cfg.name,
			 (int)c->pid, (int)c->uid, why);
	if (!c->dead)
		c->l->ops->fail(c, why);
	flush_and_close(c);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	*buf = uv_buf_init(c->rbuf, READ_BUF);
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (n > 0 && !c->dead) {
		if (c->l->ops->feed(c, buf->base, (size_t)n) < 0) {
			flush_and_close(c);
			return;
		}
		if (c->closing || c->flushing)
			return;
		charge(c);
		/* The daemon holds what its budget allows: whoever is sending more goes. */
		if (over_budget(c->l) && c->l->ops->buffered(c))
			drop(c, "lockstepd holds as much of its clients' data as it may");
	} else if (n == UV_EOF) {
		/* A half-close ends the calls, not the replies: the sweeper closes later. */
		c->eof = true;
		uv_read_stop(s);
	} else if (n < 0) {
		conn_close(c);
	}
}

bool listener_peer_allowed(const struct listener *l, int fd, struct ucred *cred)
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
	if (l->group == (gid_t)-1)
		return false;
	if (cred->gid == l->group)
		return true;
	/* The groups the peer process holds now, not what the group database says of its user:
	 * a process that dropped its groups is not let in. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0)
		return false;
	for (size_t i = 0; i < glen / sizeof(groups[0]); i++)
		if (groups[i] == l->group)
			return true;
	return false;
}

static const char per_uid_full[] = "its user holds as many connections as one user may";

/* Why the socket has no room for `c`, or NULL if it has. */
static const char *over_cap(const struct listener *l, const struct listener_socket *ls,
			    const struct conn *c)
{
	unsigned reserve = ls->max_conns / LISTENER_ADMIN_SHARE, mine = 0;
	const struct util_list *pos;

	if (ls->nr_conns >= ls->max_conns)
		return "the socket's connection cap is reached";
	if (c->admin)
		return NULL;
	if (ls->max_conns > 1 && reserve == 0)
		reserve = 1;
	if (ls->nr_conns >= ls->max_conns - reserve)
		return "the socket's remaining connections are kept for root";
	if (!l->cfg.max_per_uid)
		return NULL;
	util_list_for_each(pos, &l->conns)
		mine += util_container_of(pos, struct conn, link)->uid == c->uid;
	return mine >= l->cfg.max_per_uid ? per_uid_full : NULL;
}

/* Tells a client why it is turned away, then closes it. */
static void refuse(struct conn *c, const struct listener_message *why)
{
	if (why->len) {
		uv_buf_t buf = uv_buf_init((char *)why->data, (unsigned)why->len);

		uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
	}
	uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener_socket *ls = server->data;
	struct listener *l = ls->l;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	const char *full;
	struct conn *c;
	uv_os_fd_t fd;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->l = l;
	c->ls = ls;
	l->refs++;
	util_list_init(&c->link);
	c->read_only = ls->read_only;
	c->accepted_ns = util_now_ns();
	c->closing = true; /* until it is admitted, closing it touches nothing else */
	c->rbuf = malloc(READ_BUF);
	uv_pipe_init(l->d->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (!c->rbuf || uv_accept(server, (uv_stream_t *)&c->pipe)) {
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
		return;
	}
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) ||
	    (!listener_peer_allowed(l, fd, &cred) && (!ls->read_only || cred.uid == (uid_t)-1))) {
		util_log_limited(&l->d->log, &l->complaints, UTIL_LOG_WARN,
				 "refused a %s client (uid %d) on %s: not root, not the daemon's "
				 "user, not in group lockstep",
				 l->cfg.name, (int)cred.uid, ls->path);
		refuse(c, &l->cfg.refuse_denied);
		return;
	}
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->admin = cred.uid == 0 || cred.uid == geteuid();
	full = over_cap(l, ls, c);
	if (full || l->ops->open(l->arg, c)) {
		util_log_limited(&l->d->log, &l->complaints, UTIL_LOG_WARN,
				 "refused a %s client (pid %d, uid %d) on %s: %s", l->cfg.name,
				 (int)cred.pid, (int)cred.uid, ls->path,
				 full ? full : "its session could not be made");
		refuse(c, full == per_uid_full ? &l->cfg.refuse_user : &l->cfg.refuse_full);
		return;
	}
	c->closing = false;
	util_list_add_tail(&l->conns, &c->link);
	l->nr_conns++;
	ls->nr_conns++;
	uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

/* Closes connections marked dead inside their session, and half-closed ones that are done. */
static void sweep(uv_check_t *h)
{
	struct listener *l = h->data;
	struct util_list *pos, *tmp;

	util_list_for_each_safe(pos, tmp, &l->conns) {
		struct conn *c = util_container_of(pos, struct conn, link);

		if (c->flushing)
			continue;
		if (c->dead || (c->eof && !l->ops->pending(c) &&
				!uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe)))
			conn_close(c);
	}
}

/* Drops connections that did not finish their handshake in time, and closes those whose last
 * error reply the client leaves unread. */
static void check_deadlines(uv_timer_t *t)
{
	struct listener *l = t->data;
	uint64_t now = util_now_ns(), limit = l->cfg.handshake_ms * 1000000ull;
	struct util_list *pos, *tmp;
	char why[96];

	util_list_for_each_safe(pos, tmp, &l->conns) {
		struct conn *c = util_container_of(pos, struct conn, link);

		if (c->flushing && now - c->flushing_ns > FLUSH_GRACE_NS) {
			conn_close(c);
			continue;
		}
		if (!limit || c->established || c->closing || c->flushing ||
		    now - c->accepted_ns < limit)
			continue;
		snprintf(why, sizeof(why), "no handshake within %llu ms of connecting",
			 (unsigned long long)l->cfg.handshake_ms);
		drop(c, why);
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

static void handle_closed(uv_handle_t *h)
{
	unref(h->data);
}

static void socket_closed(uv_handle_t *h)
{
	struct listener_socket *ls = h->data;

	unref(ls->l);
}

void listener_init(struct listener *l, struct daemon *d, const struct listener_config *cfg,
		   const struct listener_ops *ops, void *arg, struct listener_budget *budget)
{
	struct group *gr = getgrnam("lockstep");
	uint64_t every;

	*l = (struct listener){
		.d = d,
		.cfg = *cfg,
		.ops = ops,
		.arg = arg,
		.group = gr ? gr->gr_gid : (gid_t)-1,
		.budget = budget,
		.refs = 1,
	};
	util_list_init(&l->conns);
	util_ratelimit_init(&l->complaints, 10ull * 1000000000ull, 10);
	uv_check_init(d->loop, &l->sweeper);
	l->sweeper.data = l;
	l->refs++;
	uv_check_start(&l->sweeper, sweep);
	uv_unref((uv_handle_t *)&l->sweeper);
	l->sweeper_init = true;
	every = cfg->handshake_ms && cfg->handshake_ms / 4 < DEADLINE_CHECK_MS ?
			(cfg->handshake_ms / 4 ? cfg->handshake_ms / 4 : 1) :
			DEADLINE_CHECK_MS;
	uv_timer_init(d->loop, &l->deadlines);
	l->deadlines.data = l;
	l->refs++;
	uv_timer_start(&l->deadlines, check_deadlines, every, every);
	uv_unref((uv_handle_t *)&l->deadlines);
	l->deadlines_init = true;
}

int listener_add_socket(struct listener *l, const char *path, bool read_only, unsigned max_conns)
{
	struct listener_socket *ls;
	struct stat st;
	int ret;

	if (l->nr_sockets == sizeof(l->sockets) / sizeof(l->sockets[0]))
		return -ENOSPC;
	ls = &l->sockets[l->nr_sockets++];
	*ls = (struct listener_socket){ .l = l, .read_only = read_only, .max_conns = max_conns };
	if (util_strlcpy(ls->path, path, sizeof(ls->path)))
		return -ENAMETOOLONG;
	ret = socket_in_use(ls->path);
	if (ret)
		return ret > 0 ? -EADDRINUSE : ret;
	if (unlink(ls->path) < 0 && errno != ENOENT)
		return -errno;
	ret = uv_pipe_init(l->d->loop, &ls->pipe, 0);
	if (ret)
		return ret;
	ls->pipe.data = ls;
	ls->open = true;
	l->refs++;
	ret = uv_pipe_bind(&ls->pipe, ls->path);
	if (ret)
		return ret;
	if (stat(ls->path, &st) < 0 || chmod(ls->path, read_only ? 0666 : 0660) < 0)
		return -errno;
	ls->dev = st.st_dev;
	ls->ino = st.st_ino;
	if (!read_only && l->group != (gid_t)-1 && chown(ls->path, (uid_t)-1, l->group) < 0)
		return -errno;
	return uv_listen((uv_stream_t *)&ls->pipe, LISTEN_BACKLOG, on_connection);
}

static void unlisten(struct listener_socket *ls)
{
	struct stat st;

	if (!ls->open)
		return;
	ls->open = false;
	/* Only our own socket: a later daemon may have taken over a path we gave up. */
	if (stat(ls->path, &st) == 0 && st.st_dev == ls->dev && st.st_ino == ls->ino)
		unlink(ls->path);
	uv_close((uv_handle_t *)&ls->pipe, socket_closed);
}

void listener_close(struct listener *l)
{
	struct util_list *pos, *tmp;

	util_list_for_each_safe(pos, tmp, &l->conns)
		conn_close(util_container_of(pos, struct conn, link));
	for (unsigned i = 0; i < l->nr_sockets; i++)
		unlisten(&l->sockets[i]);
	if (l->sweeper_init) {
		l->sweeper_init = false;
		l->sweeper.data = l;
		uv_close((uv_handle_t *)&l->sweeper, handle_closed);
	}
	if (l->deadlines_init) {
		l->deadlines_init = false;
		uv_close((uv_handle_t *)&l->deadlines, handle_closed);
	}
	unref(l);
}
