/*
 * daemon/listener.h — the unix-socket listener both front ends serve on (daemon/rpc/ for
 * JSON-RPC, daemon/virt/ for libvirt's protocol): binding (modes, group "lockstep", never
 * another live daemon's socket), accepting, the peer's credentials, the cap on connections,
 * bounded write backlogs, half-closes and the sweeping of finished connections.  What a
 * connection's bytes mean is its endpoint's, through struct listener_ops.  Loop thread only.
 */
#ifndef LOCKSTEP_DAEMON_LISTENER_H
#define LOCKSTEP_DAEMON_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <uv.h>

#include "util/util.h"

struct daemon;
struct listener;

/* One client connection. */
struct conn {
	struct util_list link; /* listener->conns */
	struct listener *l;
	uv_pipe_t pipe;
	void *data;	/* the endpoint's per-connection state */
	bool read_only; /* came in through a read-only socket */
	uid_t uid;
	pid_t pid;
	bool closing, dead;
	bool eof;      /* half-closed by the client: closed once its replies are out */
	bool flushing; /* closing after a protocol error, once queued replies are written */
	char *rbuf;
};

struct listener_ops {
	/* A connection was admitted: set up its session (c->data); -errno refuses it. */
	int (*open)(void *arg, struct conn *c);
	/* Bytes from the client; < 0 is a protocol error: the connection closes once what was
	 * queued for it (an error reply) is written. */
	int (*feed)(struct conn *c, const char *data, size_t len);
	/* Calls still to be answered: a half-closed connection waits for them. */
	unsigned (*pending)(const struct conn *c);
	/* The connection goes: end its session. */
	void (*close)(struct conn *c);
	/* Every handle is closed: the owner may free the listener's memory. */
	void (*released)(void *arg);
};

struct listener_config {
	const char *name; /* "JSON-RPC", "libvirt": for the log */
	unsigned max_conns;
	size_t write_backlog_max; /* unread replies beyond this disconnect a client */
	/* Sent to a client turned away before closing (NULL: just close). */
	const char *refuse_denied; /* not root, the daemon's user or in group "lockstep" */
	const char *refuse_full;   /* max_conns reached, or its session could not be made */
};

struct listener_socket {
	struct listener *l;
	uv_pipe_t pipe;
	bool open, read_only;
	char path[108];
	dev_t dev; /* what we bound, so we never unlink another daemon's socket */
	ino_t ino;
};

struct listener {
	struct daemon *d;
	struct listener_config cfg;
	const struct listener_ops *ops;
	void *arg;
	gid_t group; /* "lockstep", or -1 */
	struct listener_socket sockets[2];
	unsigned nr_sockets;
	struct util_list conns; /* struct conn */
	unsigned nr_conns;
	uv_check_t sweeper; /* closes dead and finished connections */
	bool sweeper_init;
	struct util_ratelimit complaints; /* misbehaving clients */
	unsigned refs;			  /* the owner's, plus one per open libuv handle */
};

void listener_init(struct listener *l, struct daemon *d, const struct listener_config *cfg,
		   const struct listener_ops *ops, void *arg);
/*
 * Listens on `path`: mode 0660 with group "lockstep" (root, the daemon's user and the group
 * may connect), or 0666 for a read-only socket (anyone may; its connections are read-only).
 * A socket a live server answers on is -EADDRINUSE; a stale one is replaced.
 */
int listener_add_socket(struct listener *l, const char *path, bool read_only);
/* Stops listening and closes every connection; `released` follows once all is closed. */
void listener_close(struct listener *l);

/* Root, the daemon's own user, and processes holding group "lockstep". */
bool listener_peer_allowed(const struct listener *l, int fd, struct ucred *cred);

/* Sends bytes (malloc'ed; taken).  A client that leaves too much unread is disconnected. */
void conn_send(struct conn *c, void *data, size_t len);
/* Closes a connection from outside its session (the sweeper does it from inside). */
void conn_close(struct conn *c);

#endif /* LOCKSTEP_DAEMON_LISTENER_H */
