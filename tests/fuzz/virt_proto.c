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
 * Every packet the daemon sends must be well-formed: its length word right, a REPLY, a
 * MESSAGE or a STREAM packet of the console procedure (data, an empty confirmation, or an
 * error), and every error a complete remote_error with a code and a message.  A session that
 * reports a protocol error is fed nothing more (the server closes it).  After each input every
 * worker is gone, every call answered and every VM undefined, so inputs do not leak into each
 * other.  The daemon is fuzz_daemon.h's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/virt/virt.h"
#include "tests/fuzz/fuzz_daemon.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	FLAG_READ_ONLY = 1 << 0,
	FLAG_HANG_UP = 1 << 1,
	FLAG_PIECES = 1 << 2,
};

static struct daemon *fuzzd; /* libFuzzer offers no context pointer */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzzd = fuzz_daemon_start(true);
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
	} else if (type == VIRT_STREAM) {
		if (prog != VIRT_PROGRAM_REMOTE ||
		    be32(pkt + 12) != VIRT_PROC_DOMAIN_OPEN_CONSOLE ||
		    (status == VIRT_OK && len != VIRT_HEADER_LEN) || status > VIRT_CONTINUE)
			abort();
		if (status == VIRT_ERROR)
			check_error(pkt + VIRT_HEADER_LEN, len - VIRT_HEADER_LEN);
	} else if (type != VIRT_REPLY || status > VIRT_ERROR) {
		abort();
	} else if (status == VIRT_ERROR) {
		check_error(pkt + VIRT_HEADER_LEN, len - VIRT_HEADER_LEN);
	} else if (prog != VIRT_PROGRAM_REMOTE) {
		abort(); /* only REMOTE calls succeed */
	}
	free(pkt);
}

/* Reboots deferred to the check phase count as well as workers. */
static bool busy(const struct daemon *d)
{
	return !util_list_empty(&d->deferred) || fuzz_daemon_has_workers(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virt_conn *c;
	size_t pos = 1, piece;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	piece = flags & FLAG_PIECES ? (size_t)(flags >> 3) + 1 : size;
	if (virt_conn_open(fuzzd->virt, check_packet, NULL, flags & FLAG_READ_ONLY, 8, &c))
		return 0;
	while (pos < size) {
		size_t len = size - pos < piece ? size - pos : piece;

		if (api_virt_session_feed(c->session, data + pos, len) < 0) {
			if (!api_virt_session_error(c->session)[0])
				abort(); /* a failure must say why */
			break;
		}
		uv_run(fuzzd->loop, UV_RUN_NOWAIT);
		pos += len;
	}
	if (flags & FLAG_HANG_UP) {
		virt_conn_close(c);
		fuzz_daemon_settle(fuzzd, busy);
	} else {
		fuzz_daemon_settle(fuzzd, busy);
		if (api_virt_session_pending(c->session))
			abort(); /* a call that is never answered */
		virt_conn_close(c);
	}
	fuzz_daemon_teardown_vms(fuzzd);
	if (fuzzd->virt->nr_conns)
		abort();
	return 0;
}
