/*
 * One libvirt remote-protocol connection, as bytes in and packets out: framing (a 4-byte length
 * that counts itself), header checks, keepalive (PING -> PONG), the connection procedures
 * every client starts with (AUTH_LIST, SUPPORTS_FEATURE, CONNECT_OPEN ...), read-only
 * enforcement, dispatch of domain and host procedures to the owner's handler table, and the
 * packets of streams (STREAM, in both directions) that such a procedure opened, which the
 * owner matches to its streams by procedure and serial.
 *
 * Calls are objects that live until answered, so a slow operation (a start waits for the guest)
 * does not hold up later calls on the same connection: replies go out in completion order and
 * the client matches them by serial.  A peer that breaks framing, sends an unknown program or
 * arguments that do not decode gets an error reply and the owner is told to close; nothing the
 * peer sends reaches past this connection.  Independent of libuv: lockstepd's
 * daemon/virt/server.c owns the socket, the fuzzers feed bytes directly.  Single-threaded.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/virt.h"

#define ERROR_TEXT_MAX 1024
#define REPLY_MAX VIRT_PACKET_MAX
#define BUFFER_KEEP 4096 /* what an idle connection keeps of its receive buffer */

struct api_virt_session {
	struct api_virt_config cfg;
	struct api_virt_session_ops ops;
	void *opaque;
	bool closed, failed, opened, read_only;
	char *uri;
	unsigned refs; /* the owner's, plus one per unanswered call */
	unsigned pending;
	uint8_t *buf;
	size_t start, len, cap; /* unprocessed bytes are buf[start, len) */
	char error[192];
};

struct virt_header {
	uint32_t len, prog, vers;
	int32_t proc, type;
	uint32_t serial;
	int32_t status;
};

struct api_virt_call {
	struct api_virt_session *s;
	struct virt_header h;
};

static void drop_buffer(struct api_virt_session *s)
{
	free(s->buf);
	s->buf = NULL;
	s->start = s->len = s->cap = 0;
}

static void session_unref(struct api_virt_session *s)
{
	if (--s->refs)
		return;
	free(s->buf);
	free(s->uri);
	free(s);
}

int api_virt_session_new(const struct api_virt_config *cfg, const struct api_virt_session_ops *ops,
			 void *opaque, struct api_virt_session **out)
{
	struct api_virt_session *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.max_packet || s->cfg.max_packet > VIRT_PACKET_MAX)
		s->cfg.max_packet = VIRT_PACKET_MAX;
	if (!s->cfg.max_packet_unopened || s->cfg.max_packet_unopened > VIRT_PACKET_MAX_UNOPENED)
		s->cfg.max_packet_unopened = VIRT_PACKET_MAX_UNOPENED;
	if (!s->cfg.max_packet_read_only || s->cfg.max_packet_read_only > VIRT_PACKET_MAX_READ_ONLY)
		s->cfg.max_packet_read_only = VIRT_PACKET_MAX_READ_ONLY;
	if (!s->cfg.max_pending)
		s->cfg.max_pending = 64;
	s->ops = *ops;
	s->opaque = opaque;
	s->read_only = cfg->read_only;
	s->refs = 1;
	*out = s;
	return 0;
}

void api_virt_session_close(struct api_virt_session *s)
{
	if (!s || s->closed)
		return;
	s->closed = true;
	drop_buffer(s);
	session_unref(s);
}

const char *api_virt_session_error(const struct api_virt_session *s)
{
	return s->error;
}

bool api_virt_session_read_only(const struct api_virt_session *s)
{
	return s->read_only;
}

bool api_virt_session_open(const struct api_virt_session *s)
{
	return s->opened && !s->closed;
}

unsigned api_virt_session_pending(const struct api_virt_session *s)
{
	return s->pending;
}

size_t api_virt_session_buffered(const struct api_virt_session *s)
{
	return s->cap;
}

/* The largest packet this session takes now: who the peer is decides what it may cost. */
static size_t packet_max(const struct api_virt_session *s)
{
	if (!s->opened)
		return s->cfg.max_packet_unopened;
	return s->read_only ? s->cfg.max_packet_read_only : s->cfg.max_packet;
}

/* ---- sending ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Frames a header and payload into one packet for the owner. */
static void send_packet(struct api_virt_session *s, const struct virt_header *h,
			const uint8_t *payload, size_t len)
{
	size_t total = VIRT_HEADER_LEN + len;
	uint8_t *pkt;

	if (s->closed || total > REPLY_MAX)
		return;
	pkt = malloc(total);
	if (!pkt)
		return;
	put_be32(pkt, (uint32_t)total);
	put_be32(pkt + 4, h->prog);
	put_be32(pkt + 8, h->vers);
	put_be32(pkt + 12, (uint32_t)h->proc);
	put_be32(pkt + 16, (uint32_t)h->type);
	put_be32(pkt + 20, h->serial);
	put_be32(pkt + 24, (uint32_t)h->status);
	if (len)
		memcpy(pkt + VIRT_HEADER_LEN, payload, len);
	s->ops.send(s->opaque, pkt, total);
}

static void send_reply(struct api_virt_session *s, const struct virt_header *call,
		       struct api_xdr_out *ret)
{
	struct virt_header h = *call;

	h.type = VIRT_REPLY;
	h.status = VIRT_OK;
	send_packet(s, &h, ret ? ret->buf : NULL, ret ? ret->len : 0);
}

static int error_domain(int code)
{
	switch (code) {
	case VIRT_ERR_XML_ERROR:
	case VIRT_ERR_XML_INVALID_SCHEMA:
	case VIRT_ERR_CONFIG_UNSUPPORTED:
		return VIRT_FROM_DOMAIN;
	case VIRT_ERR_RPC:
	case VIRT_ERR_NO_SUPPORT:
	case VIRT_ERR_NO_CONNECT:
		return VIRT_FROM_RPC;
	default:
		return VIRT_FROM_DOM;
	}
}

/* A remote_error: code, domain, message, level 2 (error), and no optional parts. */
static void put_error(struct api_xdr_out *out, int code, const char *detail)
{
	const char *prefix = api_virt_error_prefix(code);
	char text[ERROR_TEXT_MAX];

	if (prefix)
		snprintf(text, sizeof(text), "%s: %s", prefix, detail);
	else
		snprintf(text, sizeof(text), "%s", detail);
	api_xdr_out_init(out, ERROR_TEXT_MAX * 2);
	api_xdr_put_i32(out, code);
	api_xdr_put_i32(out, error_domain(code));
	api_xdr_put_u32(out, 1);
	api_xdr_put_string(out, text);
	api_xdr_put_i32(out, 2);
	for (int i = 0; i < 4; i++) /* dom, str1, str2, str3 */
		api_xdr_put_u32(out, 0);
	api_xdr_put_i32(out, 0);
	api_xdr_put_i32(out, 0);
	api_xdr_put_u32(out, 0); /* net */
}

/* A remote_error as the reply to a call, or (type VIRT_STREAM) as the end of a stream. */
static void send_error_as(struct api_virt_session *s, const struct virt_header *call, int32_t type,
			  int code, const char *detail)
{
	struct virt_header h = *call;
	struct api_xdr_out out;

	put_error(&out, code, detail);
	h.type = type;
	h.status = VIRT_ERROR;
	if (!out.failed)
		send_packet(s, &h, out.buf, out.len);
	api_xdr_out_fini(&out);
}

uint8_t *api_virt_refusal_packet(int code, const char *detail, size_t *len)
{
	struct api_xdr_out out;
	uint8_t *pkt = NULL;

	put_error(&out, code, detail);
	if (!out.failed)
		pkt = malloc(VIRT_HEADER_LEN + out.len);
	if (pkt) {
		*len = VIRT_HEADER_LEN + out.len;
		put_be32(pkt, (uint32_t)*len);
		put_be32(pkt + 4, VIRT_PROGRAM_REMOTE);
		put_be32(pkt + 8, VIRT_PROTOCOL_VERSION);
		put_be32(pkt + 12, VIRT_PROC_AUTH_LIST);
		put_be32(pkt + 16, VIRT_REPLY);
		put_be32(pkt + 20, 0);
		put_be32(pkt + 24, VIRT_ERROR);
		memcpy(pkt + VIRT_HEADER_LEN, out.buf, out.len);
	}
	api_xdr_out_fini(&out);
	return pkt;
}

static void send_error(struct api_virt_session *s, const struct virt_header *call, int code,
		       const char *detail)
{
	send_error_as(s, call, VIRT_REPLY, code, detail);
}

static void send_errorf(struct api_virt_session *s, const struct virt_header *call, int code,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void send_errorf(struct api_virt_session *s, const struct virt_header *call, int code,
			const char *fmt, ...)
{
	char detail[ERROR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	send_error(s, call, code, detail);
}

/* The peer broke the protocol: tell it why (if the header allows a reply) and stop reading. */
static int protocol_error(struct api_virt_session *s, const struct virt_header *h, const char *fmt,
			  ...) __attribute__((format(printf, 3, 4)));

static int protocol_error(struct api_virt_session *s, const struct virt_header *h, const char *fmt,
			  ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	s->failed = true;
	if (h)
		send_error(s, h, VIRT_ERR_RPC, s->error);
	return -EPROTO;
}

void api_virt_session_send_event(struct api_virt_session *s, int32_t proc,
				 struct api_xdr_out *payload)
{
	struct virt_header h = { .prog = VIRT_PROGRAM_REMOTE,
				 .vers = VIRT_PROTOCOL_VERSION,
				 .proc = proc,
				 .type = VIRT_MESSAGE };

	if (api_virt_session_open(s) && !s->failed && !payload->failed)
		send_packet(s, &h, payload->buf, payload->len);
	api_xdr_out_fini(payload);
}

/* ---- calls ---- */

static void call_free(struct api_virt_call *call)
{
	struct api_virt_session *s = call->s;

	s->pending--;
	free(call);
	session_unref(s);
}

void api_virt_reply(struct api_virt_call *call, struct api_xdr_out *ret)
{
	struct api_virt_session *s = call->s;

	if (ret && ret->failed) {
		send_errorf(s, &call->h, VIRT_ERR_INTERNAL_ERROR,
			    "the reply to %s could not be built (out of memory or too large)",
			    api_virt_proc_name(call->h.proc));
	} else {
		send_reply(s, &call->h, ret);
	}
	if (ret)
		api_xdr_out_fini(ret);
	call_free(call);
}

void api_virt_fail(struct api_virt_call *call, int code, const char *fmt, ...)
{
	char detail[ERROR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	send_error(call->s, &call->h, code, detail);
	call_free(call);
}

bool api_virt_call_cancelled(const struct api_virt_call *call)
{
	return call->s->closed;
}

int32_t api_virt_call_proc(const struct api_virt_call *call)
{
	return call->h.proc;
}

uint32_t api_virt_call_serial(const struct api_virt_call *call)
{
	return call->h.serial;
}

/* ---- streams ---- */

static void send_stream(struct api_virt_session *s, int32_t proc, uint32_t serial, int32_t status,
			const void *data, size_t len)
{
	struct virt_header h = { .prog = VIRT_PROGRAM_REMOTE,
				 .vers = VIRT_PROTOCOL_VERSION,
				 .proc = proc,
				 .type = VIRT_STREAM,
				 .serial = serial,
				 .status = status };

	if (!s->failed)
		send_packet(s, &h, data, len);
}

void api_virt_stream_data(struct api_virt_session *s, int32_t proc, uint32_t serial,
			  const void *data, size_t len)
{
	/* Large writes go in packets of libvirt's stream chunk size (256 KiB). */
	do {
		size_t n = len > (256u << 10) ? (256u << 10) : len;

		send_stream(s, proc, serial, VIRT_CONTINUE, data, n);
		data = (const uint8_t *)data + n;
		len -= n;
	} while (len);
}

void api_virt_stream_confirm(struct api_virt_session *s, int32_t proc, uint32_t serial)
{
	send_stream(s, proc, serial, VIRT_OK, NULL, 0);
}

void api_virt_stream_error(struct api_virt_session *s, int32_t proc, uint32_t serial, int code,
			   const char *fmt, ...)
{
	struct virt_header h = { .prog = VIRT_PROGRAM_REMOTE,
				 .vers = VIRT_PROTOCOL_VERSION,
				 .proc = proc,
				 .serial = serial };
	char detail[ERROR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (!s->failed)
		send_error_as(s, &h, VIRT_STREAM, code, detail);
}

static int handle_stream(struct api_virt_session *s, const struct virt_header *h,
			 const uint8_t *payload, size_t len)
{
	if (!s->ops.stream || !s->opened || !api_virt_proc_streams(h->proc))
		return protocol_error(s, h, "a stream packet for procedure %d, which has no stream",
				      h->proc);
	if (h->status != VIRT_CONTINUE && h->status != VIRT_OK && h->status != VIRT_ERROR)
		return protocol_error(s, NULL, "stream packet with status %d", h->status);
	if (h->status != VIRT_CONTINUE)
		len = 0; /* a finish has no payload; an abort's error is the client's business */
	s->ops.stream(s->opaque, h->proc, h->serial, h->status, payload, len);
	return 0;
}

/* ---- the connection procedures ---- */

/* CONNECT_OPEN's name is the client's URI minus its transport: "lockstep:///system",
 * possibly with query parameters, or "" when the client had no URI. */
static bool uri_is_ours(const struct api_virt_session *s, const char *name)
{
	size_t n = strlen(s->cfg.scheme);

	return !name[0] || (strncmp(name, s->cfg.scheme, n) == 0 && name[n] == ':');
}

static void connect_open(struct api_virt_session *s, const struct virt_header *h,
			 const struct api_virt_args *a)
{
	const char *name = a->has_str ? a->str : "";

	if (s->opened) {
		send_error(s, h, VIRT_ERR_OPERATION_INVALID, "the connection is already open");
		return;
	}
	if (!uri_is_ours(s, name)) {
		send_errorf(s, h, VIRT_ERR_NO_CONNECT,
			    "lockstepd serves %s:/// URIs only, not '%.200s'", s->cfg.scheme, name);
		return;
	}
	free(s->uri);
	if (name[0]) {
		s->uri = strdup(name);
	} else {
		size_t n = strlen(s->cfg.scheme) + sizeof(":///system");

		s->uri = malloc(n);
		if (s->uri)
			snprintf(s->uri, n, "%s:///system", s->cfg.scheme);
	}
	if (!s->uri) {
		send_error(s, h, VIRT_ERR_NO_MEMORY, "cannot open the connection");
		return;
	}
	if (a->flags & VIRT_CONNECT_RO)
		s->read_only = true;
	s->opened = true;
	send_reply(s, h, NULL);
}

/* Answers the procedures the session handles itself; false if `proc` is not one of them. */
static bool builtin(struct api_virt_session *s, const struct virt_header *h,
		    const struct api_virt_args *a)
{
	struct api_xdr_out out;

	api_xdr_out_init(&out, 4096);
	switch (h->proc) {
	case VIRT_PROC_AUTH_LIST:
		/* No SASL or polkit: lockstepd checks the peer's credentials itself. */
		api_xdr_put_u32(&out, 1);
		api_xdr_put_i32(&out, 0);
		break;
	case VIRT_PROC_CONNECT_SUPPORTS_FEATURE:
		api_xdr_put_i32(&out, a->num[0] == VIRT_FEATURE_PROGRAM_KEEPALIVE ||
					      a->num[0] == VIRT_FEATURE_REMOTE_EVENT_CALLBACK);
		break;
	case VIRT_PROC_CONNECT_OPEN:
		connect_open(s, h, a);
		api_xdr_out_fini(&out);
		return true;
	default:
		if (!s->opened) {
			api_xdr_out_fini(&out);
			return false;
		}
		switch (h->proc) {
		case VIRT_PROC_CONNECT_CLOSE:
			s->opened = false;
			break;
		case VIRT_PROC_CONNECT_GET_URI:
			api_xdr_put_string(&out, s->uri);
			break;
		case VIRT_PROC_CONNECT_GET_TYPE:
			api_xdr_put_string(&out, s->cfg.type);
			break;
		case VIRT_PROC_CONNECT_GET_VERSION:
		case VIRT_PROC_CONNECT_GET_LIB_VERSION:
			api_xdr_put_u64(&out, s->cfg.version);
			break;
		case VIRT_PROC_CONNECT_IS_SECURE:
			api_xdr_put_i32(&out, 1); /* a local unix socket */
			break;
		default:
			api_xdr_out_fini(&out);
			return false;
		}
	}
	send_reply(s, h, &out);
	api_xdr_out_fini(&out);
	return true;
}

static void dispatch_call(struct api_virt_session *s, const struct virt_header *h,
			  const struct api_virt_args *args, const struct api_virt_handler *fn)
{
	const char *name = api_virt_proc_name(h->proc);
	struct api_virt_call *call;

	if (!s->opened) {
		send_errorf(s, h, VIRT_ERR_NO_CONNECT, "%s before CONNECT_OPEN", name);
		return;
	}
	if (!fn) {
		send_errorf(s, h, VIRT_ERR_NO_SUPPORT, "lockstep does not implement %s", name);
		return;
	}
	if (s->read_only && !api_virt_read_only_allows(h->proc, args)) {
		if (api_virt_proc_writes(h->proc))
			send_errorf(
				s, h, VIRT_ERR_OPERATION_DENIED,
				"read only access prevents %s: connect to the read-write socket",
				name);
		else
			send_errorf(s, h, VIRT_ERR_OPERATION_DENIED,
				    "read only access prevents %s for secured data or the guest's "
				    "agent (flags 0x%x): connect to the read-write socket",
				    name, args->flags);
		return;
	}
	if (args->flags & ~fn->flags) {
		send_errorf(s, h, VIRT_ERR_INVALID_ARG, "unsupported flags (0x%x) in %s",
			    args->flags & ~fn->flags, name);
		return;
	}
	if (s->pending >= s->cfg.max_pending) {
		send_errorf(s, h, VIRT_ERR_OPERATION_FAILED,
			    "%u calls are in flight on this connection: wait for their replies",
			    s->pending);
		return;
	}
	call = malloc(sizeof(*call));
	if (!call) {
		send_error(s, h, VIRT_ERR_NO_MEMORY, "cannot take the call");
		return;
	}
	call->s = s;
	call->h = *h;
	s->refs++;
	s->pending++;
	fn->fn(s->cfg.ctx, call, args);
}

static int handle_call(struct api_virt_session *s, const struct virt_header *h,
		       const uint8_t *payload, size_t len)
{
	const char *name = api_virt_proc_name(h->proc);
	struct api_virt_args args;
	int ret;

	if (!name) {
		/* Named, so a person can tell which call their client made. */
		if (api_virt_proc_label(h->proc))
			send_errorf(s, h, VIRT_ERR_NO_SUPPORT,
				    "lockstep does not implement %s (procedure %d)",
				    api_virt_proc_label(h->proc), h->proc);
		else
			send_errorf(s, h, VIRT_ERR_NO_SUPPORT,
				    "lockstep does not implement procedure %d, which libvirt 9.0.0 "
				    "does not know either",
				    h->proc);
		return 0;
	}
	ret = api_virt_args_decode(h->proc, payload, len, &args);
	if (ret == -EBADMSG)
		ret = protocol_error(s, h, "cannot decode the arguments of %s (%zu bytes)", name,
				     len);
	else if (ret)
		send_error(s, h, VIRT_ERR_NO_MEMORY, "cannot decode the call");
	else if (!builtin(s, h, &args))
		dispatch_call(s, h, &args, s->cfg.handlers->by_proc[h->proc]);
	api_virt_args_free(&args);
	return s->failed ? -EPROTO : 0;
}

static int handle_keepalive(struct api_virt_session *s, const struct virt_header *h)
{
	struct virt_header pong = *h;

	if (h->vers != VIRT_PROTOCOL_VERSION || h->type != VIRT_MESSAGE || h->status != VIRT_OK ||
	    h->len != VIRT_HEADER_LEN)
		return protocol_error(s, NULL, "malformed keepalive packet");
	if (h->proc == VIRT_KEEPALIVE_PING) {
		pong.proc = VIRT_KEEPALIVE_PONG;
		send_packet(s, &pong, NULL, 0);
		return 0;
	}
	if (h->proc == VIRT_KEEPALIVE_PONG)
		return 0;
	return protocol_error(s, NULL, "unknown keepalive procedure %d", h->proc);
}

static int handle_packet(struct api_virt_session *s, const uint8_t *pkt, size_t len)
{
	struct virt_header h = {
		.len = (uint32_t)len,
		.prog = get_be32(pkt + 4),
		.vers = get_be32(pkt + 8),
		.proc = (int32_t)get_be32(pkt + 12),
		.type = (int32_t)get_be32(pkt + 16),
		.serial = get_be32(pkt + 20),
		.status = (int32_t)get_be32(pkt + 24),
	};

	if (h.prog == VIRT_PROGRAM_KEEPALIVE)
		return handle_keepalive(s, &h);
	if (h.prog != VIRT_PROGRAM_REMOTE) {
		if ((h.prog == VIRT_PROGRAM_QEMU || h.prog == VIRT_PROGRAM_LXC) &&
		    h.vers == VIRT_PROTOCOL_VERSION && h.type == VIRT_CALL) {
			send_errorf(s, &h, VIRT_ERR_NO_SUPPORT,
				    "lockstep has no QEMU or LXC specific procedures");
			return 0;
		}
		return protocol_error(s, &h, "unknown program 0x%08x", h.prog);
	}
	if (h.vers != VIRT_PROTOCOL_VERSION)
		return protocol_error(s, &h, "unknown protocol version %u", h.vers);
	if (h.type == VIRT_STREAM)
		return handle_stream(s, &h, pkt + VIRT_HEADER_LEN, len - VIRT_HEADER_LEN);
	if (h.type != VIRT_CALL || h.status != VIRT_OK)
		return protocol_error(s, &h, "unexpected message type %d, status %d from a client",
				      h.type, h.status);
	return handle_call(s, &h, pkt + VIRT_HEADER_LEN, len - VIRT_HEADER_LEN);
}

void api_virt_session_abort(struct api_virt_session *s, const char *why)
{
	struct virt_header h = { .prog = VIRT_PROGRAM_REMOTE, .vers = VIRT_PROTOCOL_VERSION };
	const uint8_t *p = s->buf + s->start;

	if (s->closed || s->failed)
		return;
	/* The call it was sending, if its serial came, gets the error. */
	if (s->len - s->start >= 24) {
		h.proc = (int32_t)get_be32(p + 12);
		h.serial = get_be32(p + 20);
	}
	protocol_error(s, &h, "%s", why);
}

/* Keeps the unprocessed bytes, growing the buffer only as far as one packet needs. */
static int buffer_append(struct api_virt_session *s, const void *data, size_t len)
{
	if (s->start) {
		memmove(s->buf, s->buf + s->start, s->len - s->start);
		s->len -= s->start;
		s->start = 0;
	}
	if (len > s->cap - s->len) {
		size_t cap = s->cap ? s->cap : 4096;
		uint8_t *p;

		while (cap - s->len < len)
			cap *= 2;
		p = realloc(s->buf, cap);
		if (!p)
			return -ENOMEM;
		s->buf = p;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return 0;
}

int api_virt_session_feed(struct api_virt_session *s, const void *data, size_t len)
{
	int ret = 0;

	if (s->closed || s->failed)
		return -EPROTO;
	if (buffer_append(s, data, len))
		return protocol_error(s, NULL, "out of memory for a packet");
	s->refs++; /* a handler may close the session under us */
	while (!ret && !s->closed && s->len - s->start >= 4) {
		const uint8_t *p = s->buf + s->start;
		size_t have = s->len - s->start;
		uint32_t plen = get_be32(p);

		if (plen < VIRT_HEADER_LEN || plen > packet_max(s)) {
			struct virt_header h = { .prog = VIRT_PROGRAM_REMOTE,
						 .vers = VIRT_PROTOCOL_VERSION };

			if (have >= VIRT_HEADER_LEN && plen >= VIRT_HEADER_LEN) {
				h.proc = (int32_t)get_be32(p + 12);
				h.serial = get_be32(p + 20);
			}
			ret = protocol_error(s, &h, "packet length %u is out of range (%u..%zu%s)",
					     plen, VIRT_HEADER_LEN, packet_max(s),
					     !s->opened	  ? " before CONNECT_OPEN" :
					     s->read_only ? " on a read-only connection" :
							    "");
			break;
		}
		if (have < plen)
			break;
		s->start += plen;
		ret = handle_packet(s, p, plen);
	}
	if (s->closed)
		ret = -EPROTO;
	else if (s->start == s->len && s->cap > BUFFER_KEEP)
		drop_buffer(s); /* a large packet's buffer does not stay with an idle client */
	session_unref(s);
	return ret;
}
