/*
 * Fuzz target: lockstepd's libvirt endpoint, from the bytes a client sends to the handlers
 * that act on them.  The session is a real api_virt_session (framing, XDR decoding, the
 * connection procedures, dispatch) over the daemon's own handler tables, on a real in-process
 * struct daemon (daemon_init with temporary directories in /dev/shm and its libvirt sockets
 * there).  The worker binary is /bin/false, so a start runs its course at once: spawn, exit,
 * the parked call answered.
 *
 * Input: one flags byte, then the bytes of the connection.
 *   flags bit 0  the connection is on the read-only socket
 *   flags bit 1  the client goes away before its parked calls are answered
 *   flags bit 2  the bytes arrive in pieces of (flags >> 3) + 1 bytes, with a turn of the
 *                event loop in between
 *
 * Every packet the daemon sends must be well-formed: its length word right, a REPLY or a
 * MESSAGE, and every error a complete remote_error with a code and a message.  A session that
 * reports a protocol error is fed nothing more (the server closes it).  After each input every
 * worker is gone, every call answered and every VM undefined, so inputs do not leak into each
 * other.  libFuzzer offers no context pointer, so the daemon lives in one file-scope struct.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/virt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SETTLE_TURNS_MAX 10000

enum {
	FLAG_READ_ONLY = 1 << 0,
	FLAG_HANG_UP = 1 << 1,
	FLAG_PIECES = 1 << 2,
};

static struct {
	struct daemon d;
	char root[64];
} fz;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void remove_root(void)
{
	daemon_fini(&fz.d);
	nftw(fz.root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void empty_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dp = opendir(dir);

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(dp);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct daemon_options o = {
		.log_level = UTIL_LOG_ERROR,
		.foreground = true,
		.max_clients = 16,
		.max_vms = 64,
		.max_frame = 1u << 16,
		.shutdown_timeout_ms = 1000,
	};
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	signal(SIGPIPE, SIG_IGN);
	snprintf(fz.root, sizeof(fz.root), "%s/lockstep-fuzz-XXXXXX", base);
	if (!mkdtemp(fz.root))
		abort();
	snprintf(o.run_dir, sizeof(o.run_dir), "%s/run", fz.root);
	snprintf(o.state_dir, sizeof(o.state_dir), "%s/state", fz.root);
	snprintf(o.socket_path, sizeof(o.socket_path), "%s/run/sock", fz.root);
	snprintf(o.virt_socket, sizeof(o.virt_socket), "%s/virt", fz.root);
	strcpy(o.vm_binary, access("/bin/false", X_OK) == 0 ? "/bin/false" : "/usr/bin/false");
	if (mkdir(o.run_dir, 0755) < 0 || daemon_init(&fz.d, &o) != 0 || !fz.d.virt)
		abort();
	uv_signal_stop(&fz.d.sig_term);
	uv_signal_stop(&fz.d.sig_int);
	fz.d.log.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	atexit(remove_root);
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A remote_error with nothing after it: code, domain, message, level, then empty pointers. */
static void check_error(const uint8_t *p, size_t len)
{
	struct api_xdr_in in;
	uint32_t u, present;
	int32_t code;
	char *msg = NULL;

	api_xdr_in_init(&in, p, len);
	if (api_xdr_get_i32(&in, &code) || code <= 0 || api_xdr_get_u32(&in, &u) ||
	    api_xdr_get_u32(&in, &present) || present != 1 || api_xdr_get_string(&in, 4096, &msg) ||
	    !msg[0] || api_xdr_get_u32(&in, &u) || u != 2)
		abort();
	free(msg);
	for (int i = 0; i < 4; i++)
		if (api_xdr_get_u32(&in, &u) || u != 0)
			abort();
	if (api_xdr_get_u32(&in, &u) || api_xdr_get_u32(&in, &u) || api_xdr_get_u32(&in, &u) ||
	    u != 0 || !api_xdr_finished(&in))
		abort();
}

static void check_packet(void *opaque, uint8_t *pkt, size_t len)
{
	uint32_t prog, type, status;

	if (len < VIRT_HEADER_LEN || be32(pkt) != len)
		abort();
	prog = be32(pkt + 4);
	type = be32(pkt + 16);
	status = be32(pkt + 24);
	/* Errors echo the header they answer, however odd; everything else is version 1. */
	if (status != VIRT_ERROR && be32(pkt + 8) != VIRT_PROTOCOL_VERSION)
		abort();
	if (type == VIRT_MESSAGE) {
		if (status != VIRT_OK || (prog == VIRT_PROGRAM_KEEPALIVE && len != VIRT_HEADER_LEN))
			abort();
	} else if (type != VIRT_REPLY || status > VIRT_ERROR) {
		abort();
	} else if (status == VIRT_ERROR) {
		check_error(pkt + VIRT_HEADER_LEN, len - VIRT_HEADER_LEN);
	} else if (prog != VIRT_PROGRAM_REMOTE) {
		abort(); /* only REMOTE calls succeed */
	}
	free(pkt);
}

static bool busy(void)
{
	struct util_list *pos;

	if (!util_list_empty(&fz.d.virt->deferred))
		return true;
	util_list_for_each(pos, &fz.d.vms)
		if (util_container_of(pos, struct dvm, link)->worker)
			return true;
	return false;
}

static void settle(void)
{
	for (unsigned turns = 0; busy(); turns++) {
		if (turns == SETTLE_TURNS_MAX)
			abort();
		uv_run(fz.d.loop, UV_RUN_ONCE);
	}
	uv_run(fz.d.loop, UV_RUN_NOWAIT);
}

static void teardown_vms(void)
{
	char dir[PATH_MAX];

	while (!util_list_empty(&fz.d.vms)) {
		struct dvm *vm = util_container_of(fz.d.vms.next, struct dvm, link);

		if (registry_undefine(vm) != 0)
			abort();
	}
	uv_run(fz.d.loop, UV_RUN_NOWAIT);
	snprintf(dir, sizeof(dir), "%s/vms", fz.d.opts.run_dir);
	empty_dir(dir);
	snprintf(dir, sizeof(dir), "%s/vms", fz.d.opts.state_dir);
	empty_dir(dir);
}

static void drop_callbacks(struct virt_conn *c)
{
	while (!util_list_empty(&c->callbacks)) {
		struct virt_callback *cb =
			util_container_of(c->callbacks.next, struct virt_callback, link);

		util_list_del(&cb->link);
		free(cb);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct api_virt_session_ops ops = { .send = check_packet };
	struct virt_server *srv = fz.d.virt;
	struct api_virt_config cfg;
	struct virt_conn *c;
	size_t pos = 1, piece;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	piece = flags & FLAG_PIECES ? (size_t)(flags >> 3) + 1 : size;
	c = calloc(1, sizeof(*c));
	if (!c)
		return 0;
	c->srv = srv;
	util_list_init(&c->callbacks);
	cfg = (struct api_virt_config){ .handlers = &srv->handlers,
					.ctx = c,
					.type = "lockstep",
					.scheme = "lockstep",
					.version = srv->version,
					.read_only = flags & FLAG_READ_ONLY,
					.max_pending = 8,
					.max_packet = VIRT_PACKET_MAX };
	if (api_virt_session_new(&cfg, &ops, c, &c->session)) {
		free(c);
		return 0;
	}
	util_list_add_tail(&srv->conns, &c->link); /* so events reach it */
	srv->nr_conns++;
	while (pos < size) {
		size_t len = size - pos < piece ? size - pos : piece;

		if (api_virt_session_feed(c->session, data + pos, len) < 0) {
			if (!api_virt_session_error(c->session)[0])
				abort(); /* a failure must say why */
			break;
		}
		uv_run(fz.d.loop, UV_RUN_NOWAIT);
		pos += len;
	}
	util_list_del(&c->link);
	srv->nr_conns--;
	drop_callbacks(c);
	if (flags & FLAG_HANG_UP) {
		api_virt_session_close(c->session);
		settle();
	} else {
		settle();
		if (api_virt_session_pending(c->session))
			abort(); /* a call that is never answered */
		api_virt_session_close(c->session);
	}
	teardown_vms();
	free(c);
	return 0;
}
