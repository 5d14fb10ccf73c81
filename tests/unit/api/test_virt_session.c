/*
 * libvirt remote-protocol sessions (api/virt_session.c, api/virt_proto.c), fed packets and
 * answering through a send callback: the connection procedures a client starts with, calls
 * before CONNECT_OPEN, dispatch to a handler table with decoded arguments and a reply that
 * comes later, replies matched by serial, procedures lockstep does not know (NO_SUPPORT, so
 * clients fall back), read-only connections, unsupported flags, keepalive, a peer that
 * breaks framing (an error reply, then nothing more is read), the packet size each kind of
 * peer may send (small before CONNECT_OPEN and on read-only connections) and what a session
 * keeps buffered, and an owner's abort.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/virt.h"

#define SENT_MAX 16

struct sent {
	int32_t proc, type, status;
	uint32_t prog, serial;
	uint8_t *payload;
	size_t len;
};

struct fixture {
	struct api_virt_handlers handlers;
	struct api_virt_session *s;
	struct sent sent[SENT_MAX];
	unsigned nr_sent;
	struct api_virt_call *parked;
	char looked_up[64];
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void capture(void *opaque, uint8_t *pkt, size_t len)
{
	struct fixture *f = opaque;
	struct sent *s = &f->sent[f->nr_sent++];

	assert_true(f->nr_sent <= SENT_MAX);
	assert_true(len >= VIRT_HEADER_LEN && be32(pkt) == len);
	*s = (struct sent){ .prog = be32(pkt + 4),
			    .proc = (int32_t)be32(pkt + 12),
			    .type = (int32_t)be32(pkt + 16),
			    .serial = be32(pkt + 20),
			    .status = (int32_t)be32(pkt + 24),
			    .len = len - VIRT_HEADER_LEN };
	s->payload = malloc(s->len ? s->len : 1);
	memcpy(s->payload, pkt + VIRT_HEADER_LEN, s->len);
	free(pkt);
}

/* DOMAIN_LOOKUP_BY_NAME: answered later, with the domain. */
static void lookup(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct fixture *f = ctx;

	snprintf(f->looked_up, sizeof(f->looked_up), "%s", a->str);
	f->parked = call;
}

static void destroy(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	api_virt_reply(call, NULL);
}

static const struct api_virt_handler table[] = {
	{ VIRT_PROC_DOMAIN_LOOKUP_BY_NAME, lookup, 0 },
	{ VIRT_PROC_DOMAIN_DESTROY, destroy, 0 },
	{ VIRT_PROC_DOMAIN_DESTROY_FLAGS, destroy, VIRT_DESTROY_GRACEFUL },
};

static int setup(void **state)
{
	static const struct api_virt_session_ops ops = { .send = capture };
	struct fixture *f = calloc(1, sizeof(*f));
	struct api_virt_config cfg = {
		.handlers = &f->handlers,
		.ctx = f,
		.type = "lockstep",
		.scheme = "lockstep",
		.version = 1002003,
		.max_pending = 4,
		.max_packet = 4096,
	};

	assert_int_equal(api_virt_handlers_add(&f->handlers, table, 3), 0);
	assert_int_equal(api_virt_session_new(&cfg, &ops, f, &f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	api_virt_session_close(f->s);
	if (f->parked)
		api_virt_reply(f->parked, NULL); /* dropped: the session is gone */
	for (unsigned i = 0; i < f->nr_sent; i++)
		free(f->sent[i].payload);
	free(f);
	return 0;
}

/* Sends a CALL of the REMOTE program with `args` (consumed; NULL for none). */
static int call(struct fixture *f, int32_t proc, uint32_t serial, struct api_xdr_out *args)
{
	struct api_xdr_out pkt;
	int ret;

	api_xdr_out_init(&pkt, 1 << 20);
	api_xdr_put_u32(&pkt, VIRT_HEADER_LEN + (args ? (uint32_t)args->len : 0));
	api_xdr_put_u32(&pkt, VIRT_PROGRAM_REMOTE);
	api_xdr_put_u32(&pkt, VIRT_PROTOCOL_VERSION);
	api_xdr_put_i32(&pkt, proc);
	api_xdr_put_i32(&pkt, VIRT_CALL);
	api_xdr_put_u32(&pkt, serial);
	api_xdr_put_i32(&pkt, VIRT_OK);
	if (args) {
		api_xdr_put_fixed(&pkt, args->buf, args->len);
		api_xdr_out_fini(args);
	}
	ret = api_virt_session_feed(f->s, pkt.buf, pkt.len);
	api_xdr_out_fini(&pkt);
	return ret;
}

static void open_connection(struct fixture *f, uint32_t flags)
{
	struct api_xdr_out a;

	api_xdr_out_init(&a, 4096);
	api_xdr_put_u32(&a, 1); /* remote_string present */
	api_xdr_put_string(&a, "lockstep:///system");
	api_xdr_put_u32(&a, flags);
	assert_int_equal(call(f, VIRT_PROC_CONNECT_OPEN, 1, &a), 0);
	assert_int_equal(f->sent[f->nr_sent - 1].status, VIRT_OK);
}

/* The last packet is an error reply to `serial`: its code, and its message contains `needle`. */
static void expect_error(struct fixture *f, uint32_t serial, int code, const char *needle)
{
	struct sent *s = &f->sent[f->nr_sent - 1];
	struct api_xdr_in in;
	uint32_t present;
	int32_t got;
	char *msg;

	assert_int_equal(s->type, VIRT_REPLY);
	assert_int_equal(s->status, VIRT_ERROR);
	assert_int_equal(s->serial, serial);
	api_xdr_in_init(&in, s->payload, s->len);
	assert_int_equal(api_xdr_get_i32(&in, &got), 0);
	assert_int_equal(got, code);
	assert_int_equal(api_xdr_get_i32(&in, &got), 0); /* the error domain */
	assert_int_equal(api_xdr_get_u32(&in, &present), 0);
	assert_int_equal(present, 1);
	assert_int_equal(api_xdr_get_string(&in, 4096, &msg), 0);
	if (!strstr(msg, needle))
		fail_msg("\"%s\" lacks \"%s\"", msg, needle);
	free(msg);
}

static void test_connection(void **state)
{
	struct fixture *f = *state;
	struct api_xdr_in in;
	uint64_t version;
	char *type;

	assert_int_equal(call(f, VIRT_PROC_CONNECT_GET_TYPE, 5, NULL), 0);
	expect_error(f, 5, VIRT_ERR_NO_CONNECT, "before CONNECT_OPEN");
	open_connection(f, 0);
	assert_true(api_virt_session_open(f->s));
	assert_int_equal(call(f, VIRT_PROC_CONNECT_GET_TYPE, 6, NULL), 0);
	api_xdr_in_init(&in, f->sent[f->nr_sent - 1].payload, f->sent[f->nr_sent - 1].len);
	assert_int_equal(api_xdr_get_string(&in, 64, &type), 0);
	assert_string_equal(type, "lockstep");
	free(type);
	assert_int_equal(call(f, VIRT_PROC_CONNECT_GET_VERSION, 7, NULL), 0);
	api_xdr_in_init(&in, f->sent[f->nr_sent - 1].payload, f->sent[f->nr_sent - 1].len);
	assert_int_equal(api_xdr_get_u64(&in, &version), 0);
	assert_int_equal(version, 1002003);
	assert_int_equal(f->sent[f->nr_sent - 1].serial, 7);
}

static void test_dispatch_later(void **state)
{
	struct fixture *f = *state;
	struct api_xdr_out a, r;
	uint8_t uuid[16] = { 1, 2, 3 };

	open_connection(f, 0);
	api_xdr_out_init(&a, 4096);
	api_xdr_put_string(&a, "web-1");
	assert_int_equal(call(f, VIRT_PROC_DOMAIN_LOOKUP_BY_NAME, 42, &a), 0);
	assert_string_equal(f->looked_up, "web-1");
	assert_int_equal(api_virt_session_pending(f->s), 1);
	assert_int_equal(api_virt_call_proc(f->parked), VIRT_PROC_DOMAIN_LOOKUP_BY_NAME);
	/* Another call goes through meanwhile; the late reply keeps its own serial. */
	assert_int_equal(call(f, VIRT_PROC_CONNECT_GET_TYPE, 43, NULL), 0);
	assert_int_equal(f->sent[f->nr_sent - 1].serial, 43);
	api_xdr_out_init(&r, 4096);
	api_xdr_put_domain(&r, "web-1", uuid, 4);
	api_virt_reply(f->parked, &r);
	f->parked = NULL;
	assert_int_equal(f->sent[f->nr_sent - 1].serial, 42);
	assert_int_equal(f->sent[f->nr_sent - 1].status, VIRT_OK);
	assert_int_equal(api_virt_session_pending(f->s), 0);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	uint8_t uuid[16] = { 0 };
	struct api_xdr_out a;

	open_connection(f, VIRT_CONNECT_RO);
	assert_true(api_virt_session_read_only(f->s));
	api_xdr_out_init(&a, 4096);
	api_xdr_put_domain(&a, "web-1", uuid, 4);
	assert_int_equal(call(f, VIRT_PROC_DOMAIN_DESTROY, 8, &a), 0);
	expect_error(f, 8, VIRT_ERR_OPERATION_DENIED, "read only access prevents");
	/* A known procedure without a handler, and one lockstep does not know. */
	api_xdr_out_init(&a, 4096);
	api_xdr_put_i32(&a, 1); /* need_results */
	api_xdr_put_u32(&a, 0); /* flags */
	assert_int_equal(call(f, VIRT_PROC_CONNECT_LIST_ALL_DOMAINS, 9, &a), 0);
	expect_error(f, 9, VIRT_ERR_NO_SUPPORT, "CONNECT_LIST_ALL_DOMAINS");
	assert_int_equal(call(f, 400, 10, NULL), 0);
	expect_error(f, 10, VIRT_ERR_NO_SUPPORT, "procedure 400");
}

static void test_flags(void **state)
{
	struct fixture *f = *state;
	uint8_t uuid[16] = { 0 };
	struct api_xdr_out a;

	open_connection(f, 0);
	api_xdr_out_init(&a, 4096);
	api_xdr_put_domain(&a, "web-1", uuid, 4);
	api_xdr_put_u32(&a, 0x10);
	assert_int_equal(call(f, VIRT_PROC_DOMAIN_DESTROY_FLAGS, 11, &a), 0);
	expect_error(f, 11, VIRT_ERR_INVALID_ARG, "unsupported flags (0x10)");
}

static void test_keepalive(void **state)
{
	static const uint8_t ping[] = {
		0, 0, 0, 28, 0x6b, 0x65, 0x65, 0x70, 0, 0, 0, 1, 0, 0, 0, 1, /* PING */
		0, 0, 0, 2,  0,	   0,	 0,    0,    0, 0, 0, 0,
	};
	struct fixture *f = *state;

	assert_int_equal(api_virt_session_feed(f->s, ping, sizeof(ping)), 0);
	assert_int_equal(f->sent[f->nr_sent - 1].prog, VIRT_PROGRAM_KEEPALIVE);
	assert_int_equal(f->sent[f->nr_sent - 1].proc, VIRT_KEEPALIVE_PONG);
	assert_int_equal(f->sent[f->nr_sent - 1].type, VIRT_MESSAGE);
}

static void test_broken_framing(void **state)
{
	static const uint8_t too_long[] = { 0, 1, 0, 0, 0x20, 0, 0x80, 0x86, 0, 0, 0, 1 };
	static const uint8_t more[] = { 0, 0, 0, 28 };
	struct fixture *f = *state;

	assert_int_equal(api_virt_session_feed(f->s, too_long, sizeof(too_long)), -EPROTO);
	assert_true(strstr(api_virt_session_error(f->s), "out of range") != NULL);
	assert_int_equal(f->sent[f->nr_sent - 1].status, VIRT_ERROR);
	/* Nothing more is read after a protocol error. */
	assert_int_equal(api_virt_session_feed(f->s, more, sizeof(more)), -EPROTO);
}

/* A session with the daemon's packet limits (setup's is smaller). */
static void big_session(struct fixture *f)
{
	static const struct api_virt_session_ops ops = { .send = capture };
	struct api_virt_config cfg = {
		.handlers = &f->handlers,
		.ctx = f,
		.type = "lockstep",
		.scheme = "lockstep",
		.version = 1,
	};

	api_virt_session_close(f->s);
	assert_int_equal(api_virt_session_new(&cfg, &ops, f, &f->s), 0);
}

static void feed_length(struct fixture *f, uint32_t len, int want)
{
	const uint8_t word[4] = { len >> 24, len >> 16, len >> 8, len };

	assert_int_equal(api_virt_session_feed(f->s, word, 4), want);
}

static void test_packet_caps(void **state)
{
	struct fixture *f = *state;
	size_t big = 1u << 20;
	uint8_t *pkt = calloc(1, big);

	/* Before CONNECT_OPEN: refused from the length word alone, nothing buffered. */
	big_session(f);
	feed_length(f, VIRT_PACKET_MAX, -EPROTO);
	assert_non_null(strstr(api_virt_session_error(f->s), "(28..4096 before CONNECT_OPEN)"));
	assert_int_equal(f->sent[f->nr_sent - 1].status, VIRT_ERROR);
	/* Open read-only: 64 KiB. */
	big_session(f);
	open_connection(f, VIRT_CONNECT_RO);
	feed_length(f, VIRT_PACKET_MAX_READ_ONLY + 1, -EPROTO);
	assert_non_null(strstr(api_virt_session_error(f->s), "on a read-only connection"));
	/* Open read-write: a 1 MiB packet is taken whole, and its buffer given back after. */
	big_session(f);
	open_connection(f, 0);
	pkt[0] = 0, pkt[1] = 0x10, pkt[2] = 0, pkt[3] = 0; /* 1 MiB */
	memcpy(pkt + 4, (const uint8_t[]){ 0x20, 0, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 1, 0x90 }, 12);
	pkt[23] = 77; /* serial */
	assert_int_equal(api_virt_session_feed(f->s, pkt, big / 2), 0);
	assert_true(api_virt_session_buffered(f->s) >= big / 2);
	assert_int_equal(api_virt_session_feed(f->s, pkt + big / 2, big / 2), 0);
	expect_error(f, 77, VIRT_ERR_NO_SUPPORT, "procedure 400");
	assert_true(api_virt_session_buffered(f->s) <= 4096);
	free(pkt);
}

static void test_abort(void **state)
{
	static const uint8_t partial[] = { 0, 0, 1, 0,	0x20, 0, 0x80, 0x86, 0, 0, 0, 1,
					   0, 0, 0, 23, 0,    0, 0,    0,    0, 0, 0, 9 };
	struct fixture *f = *state;

	open_connection(f, 0);
	assert_int_equal(api_virt_session_feed(f->s, partial, sizeof(partial)), 0);
	api_virt_session_abort(f->s, "no handshake in time");
	expect_error(f, 9, VIRT_ERR_RPC, "no handshake in time");
	assert_int_equal(api_virt_session_feed(f->s, partial, 4), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packet_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
