/*
 * daemon/listener.h — the unix-socket listener both front ends serve on (daemon/rpc/ for
 * JSON-RPC, daemon/virt/ for libvirt's protocol): binding (modes, group "lockstep", never
 * another live daemon's socket), accepting, the peer's credentials, the caps on connections
 * (each socket its own, room kept on each for root and the daemon's user, one per user), the
 * deadline for a connection's handshake, bounded write backlogs, the memory budget every
 * connection of the daemon shares, half-closes and the sweeping of finished connections.
 * What a connection's bytes mean is its endpoint's, through struct listener_ops.  Loop thread
 * only.
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

struct listener_socket;

/* One client connection. */
struct conn {
	struct util_list link; /* listener->conns */
	struct listener *l;
	struct listener_socket *ls; /* the socket it came in through */
	uv_pipe_t pipe;
	void *data;	/* the endpoint's per-connection state */
	bool read_only; /* came in through a read-only socket */
	uid_t uid;
	pid_t pid;
	bool admin; /* root or the daemon's own user: never capped out */
	bool closing, dead;
	bool eof;	      /* half-closed by the client: closed once its replies are out */
	bool flushing;	      /* closing after a protocol error, once queued replies are written */
	uint64_t flushing_ns; /* since when: a client that never reads them is closed anyway */
	/* The endpoint's handshake is done (libvirt: CONNECT_OPEN); until then the connection
	 * lives at most handshake_ms and its unread replies are capped low. */
	bool established;
	uint64_t accepted_ns;
	size_t charged; /* what it holds of the daemon's buffer budget */
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
	/* Bytes the session holds of requests still arriving. */
	size_t (*buffered)(const struct conn *c);
	/* The listener drops the connection (handshake deadline, buffer budget): tell the
	 * client why, in its protocol.  The listener closes it once that is written. */
	void (*fail)(struct conn *c, const char *why);
	/* Every handle is closed: the owner may free the listener's memory. */
	void (*released)(void *arg);
};

/*
 * What clients may make the daemon hold in memory, over every connection of every listener:
 * requests still arriving and replies not yet read.  Past `max`, a connection that adds to it
 * is dropped (its session says why).
 */
struct listener_budget {
	size_t used, max;
};

/* Bytes sent to a client that is turned away, before it is closed (len 0: nothing). */
struct listener_message {
	const char *data;
	size_t len;
};

#define LISTENER_TEXT(text) ((struct listener_message){ .data = text, .len = sizeof(text) - 1 })

struct listener_config {
	const char *name; /* "JSON-RPC", "libvirt": for the log */
	/* Connections one user other than root and the daemon's own may hold on the listener's
	 * sockets together; 0 = no cap. */
	unsigned max_per_uid;
	/* A connection not established within this is dropped; 0 = no deadline. */
	uint64_t handshake_ms;
	size_t write_backlog_max;	/* unread replies beyond this disconnect a client */
	size_t write_backlog_read_only; /* the same on a read-only socket */
	/* Sent to a client turned away before closing. */
	struct listener_message refuse_denied; /* not root, the daemon's user or group "lockstep" */
	struct listener_message refuse_full;   /* its socket's cap reached, or no session for it */
	struct listener_message refuse_user;   /* max_per_uid reached */
};

struct listener_socket {
	struct listener *l;
	uv_pipe_t pipe;
	bool open, read_only;
	char path[108];
	dev_t dev; /* what we bound, so we never unlink another daemon's socket */
	ino_t ino;
	/* Its own cap: connections on another socket never take its room.  The last
	 * max_conns / LISTENER_ADMIN_SHARE (at least one) are for root and the daemon's user. */
	unsigned max_conns, nr_conns;
};

#define LISTENER_ADMIN_SHARE 16

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
	struct listener_budget *budget; /* the daemon's, shared with its other listeners */
	uv_check_t sweeper;		/* closes dead and finished connections */
	bool sweeper_init;
	uv_timer_t deadlines; /* drops connections past their handshake or flushing deadline */
	bool deadlines_init;
	struct util_ratelimit complaints; /* misbehaving clients */
	unsigned refs;			  /* the owner's, plus one per open libuv handle */
};

void listener_init(struct listener *l, struct daemon *d, const struct listener_config *cfg,
		   const struct listener_ops *ops, void *arg, struct listener_budget *budget);
/*
 * Listens on `path`, for at most `max_conns` connections: mode 0660 with group "lockstep"
 * (root, the daemon's user and the group may connect), or 0666 for a read-only socket (anyone
 * may; its connections are read-only).  A socket a live server answers on is -EADDRINUSE; a
 * stale one is replaced.
 */
int listener_add_socket(struct listener *l, const char *path, bool read_only, unsigned max_conns);
/* Stops listening and closes every connection; `released` follows once all is closed. */
void listener_close(struct listener *l);

/* Root, the daemon's own user, and processes holding group "lockstep". */
bool listener_peer_allowed(const struct listener *l, int fd, struct ucred *cred);

/* Sends bytes (malloc'ed; taken).  A client that leaves too much unread is disconnected. */
void conn_send(struct conn *c, void *data, size_t len);
/* The endpoint's handshake is done: no deadline any more, the socket's own backlog cap. */
void conn_established(struct conn *c);
/* Closes a connection from outside its session (the sweeper does it from inside). */
void conn_close(struct conn *c);

#endif /* LOCKSTEP_DAEMON_LISTENER_H */
