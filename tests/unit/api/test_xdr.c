/*
 * XDR as libvirt's remote protocol uses it (api/xdr.c): the exact bytes of every putter
 * (big-endian, 4-byte padding, lengths, rpcgen's chars-as-ints, remote_nonnull_domain), the
 * getters reading them back, and the reader refusing what a hostile peer sends — lengths past
 * the packet or past their bound, strings with a NUL, truncated integers — with the failure
 * sticky so that a decoder checks once.  The writer's cap, and UUIDs in both text forms.
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

static void test_putters(void **state)
{
	static const uint8_t want[] = {
		0x12, 0x34, 0x56, 0x78,				/* u32 */
		0xff, 0xff, 0xff, 0xfe,				/* i32 -2 */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* u64 */
		0xaa, 0xbb, 0xcc, 0x00,				/* fixed[3] + pad */
		0x00, 0x00, 0x00, 0x05, 'h',  'e',  'l',  'l',
		'o',  0,    0,	  0,	/* string */
		0x00, 0x00, 0x00, 0x00, /* empty var */
		0x00, 0x00, 0x00, 0x02, 0,    0,    0,	  'a',
		0,    0,    0,	  0, /* chars<n> "a" + NUL */
	};
	static const uint8_t three[3] = { 0xaa, 0xbb, 0xcc };
	struct api_xdr_out out;

	api_xdr_out_init(&out, 1024);
	api_xdr_put_u32(&out, 0x12345678);
	api_xdr_put_i32(&out, -2);
	api_xdr_put_u64(&out, 0x0102030405060708ull);
	api_xdr_put_fixed(&out, three, 3);
	api_xdr_put_string(&out, "hello");
	api_xdr_put_var(&out, NULL, 0);
	api_xdr_put_chars(&out, "a", 8, false);
	assert_false(out.failed);
	assert_int_equal(out.len, sizeof(want));
	assert_memory_equal(out.buf, want, sizeof(want));
	api_xdr_out_fini(&out);
}

static void test_round_trip(void **state)
{
	uint8_t uuid[16], got_uuid[16];
	struct api_xdr_out out;
	struct api_xdr_in in;
	const uint8_t *data;
	uint32_t u, len;
	uint64_t v;
	int32_t i;
	char *s;

	for (int k = 0; k < 16; k++)
		uuid[k] = (uint8_t)(k * 17);
	api_xdr_out_init(&out, 1024);
	api_xdr_put_domain(&out, "web-1", uuid, 7);
	api_xdr_put_u64(&out, UINT64_MAX - 1);
	api_xdr_put_var(&out, "xyz", 3);
	api_xdr_in_init(&in, out.buf, out.len);
	assert_int_equal(api_xdr_get_string(&in, 64, &s), 0);
	assert_string_equal(s, "web-1");
	free(s);
	assert_int_equal(api_xdr_get_fixed(&in, got_uuid, 16), 0);
	assert_memory_equal(got_uuid, uuid, 16);
	assert_int_equal(api_xdr_get_i32(&in, &i), 0);
	assert_int_equal(i, 7);
	assert_int_equal(api_xdr_get_u64(&in, &v), 0);
	assert_true(v == UINT64_MAX - 1);
	assert_int_equal(api_xdr_get_var(&in, 3, &data, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "xyz", 3);
	assert_true(api_xdr_finished(&in));
	/* Past the end: refused, and it stays refused. */
	assert_int_equal(api_xdr_get_u32(&in, &u), -EBADMSG);
	assert_false(api_xdr_finished(&in));
	api_xdr_out_fini(&out);
}

static void test_hostile(void **state)
{
	static const uint8_t huge_len[] = { 0x7f, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd' };
	static const uint8_t over_bound[] = { 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0 };
	static const uint8_t with_nul[] = { 0, 0, 0, 3, 'a', 0, 'c', 0 };
	static const uint8_t short_pad[] = { 0, 0, 0, 3, 'a', 'b', 'c' };
	static const uint8_t three_bytes[] = { 0, 0, 1 };
	struct api_xdr_in in;
	const uint8_t *data;
	uint32_t u, len;
	char *s = NULL;

	api_xdr_in_init(&in, huge_len, sizeof(huge_len));
	assert_int_equal(api_xdr_get_var(&in, UINT32_MAX, &data, &len), -EBADMSG);
	api_xdr_in_init(&in, over_bound, sizeof(over_bound));
	assert_int_equal(api_xdr_get_string(&in, 4, &s), -EBADMSG);
	assert_null(s);
	assert_int_equal(api_xdr_get_u32(&in, &u), -EBADMSG); /* sticky */
	api_xdr_in_init(&in, with_nul, sizeof(with_nul));
	assert_int_equal(api_xdr_get_string(&in, 64, &s), -EBADMSG);
	assert_null(s);
	api_xdr_in_init(&in, short_pad, sizeof(short_pad));
	assert_int_equal(api_xdr_get_var(&in, 64, &data, &len), -EBADMSG);
	api_xdr_in_init(&in, three_bytes, sizeof(three_bytes));
	assert_int_equal(api_xdr_get_u32(&in, &u), -EBADMSG);
	/* Bytes left over are not "finished". */
	api_xdr_in_init(&in, over_bound, sizeof(over_bound));
	assert_int_equal(api_xdr_get_u32(&in, &u), 0);
	assert_false(api_xdr_finished(&in));
}

static void test_writer_cap(void **state)
{
	struct api_xdr_out out;

	api_xdr_out_init(&out, 8);
	api_xdr_put_u64(&out, 1);
	assert_false(out.failed);
	api_xdr_put_u32(&out, 2);
	assert_true(out.failed);
	assert_int_equal(out.len, 8);
	api_xdr_put_u32(&out, 3); /* dropped after a failure */
	assert_int_equal(out.len, 8);
	api_xdr_out_fini(&out);

	api_xdr_out_init(&out, 1024);
	api_xdr_put_chars(&out, "toolong", 4, true); /* 7 chars + NUL in a char[4] */
	assert_true(out.failed);
	api_xdr_out_fini(&out);
}

static void test_uuids(void **state)
{
	uint8_t a[16], b[16];
	char text[37];

	assert_int_equal(api_virt_uuid_parse("8f3169e4-9e17-5347-A623-47fff434bb04", a), 0);
	api_virt_uuid_format(a, text);
	assert_string_equal(text, "8f3169e4-9e17-5347-a623-47fff434bb04");
	assert_int_equal(api_virt_uuid_parse("8f3169e49e175347a62347fff434bb04", b), 0);
	assert_memory_equal(a, b, 16);
	assert_int_equal(api_virt_uuid_parse("8f3169e4-9e17-5347-a623-47fff434bb0", a), -EINVAL);
	assert_int_equal(api_virt_uuid_parse("8f3169e4+9e17-5347-a623-47fff434bb04", a), -EINVAL);
	assert_int_equal(api_virt_uuid_parse("8f3169e4-9e17-5347-a623-47fff434bbzz", a), -EINVAL);
	assert_int_equal(api_virt_uuid_parse("", a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_putters), cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_hostile), cmocka_unit_test(test_writer_cap),
		cmocka_unit_test(test_uuids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
