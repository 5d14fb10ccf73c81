/*
 * util_parse_u64, util_parse_size and util_strlcpy: the strict parsers behind every number a
 * user types (definitions, command-line flags).  Each case pins the exact value or the exact
 * errno: accepted ranges and bases, and the inputs that must never be read as a number
 * ("", "-1", "+1", " 1", "12abc", overflow, leading zeros, junk after a unit).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

#define NOT_SET 0x5a5a5a5a5a5a5a5aull

static void expect_u64(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
	uint64_t v = NOT_SET;

	assert_int_equal(util_parse_u64(s, min, max, &v), 0);
	assert_int_equal(v, want);
}

static void expect_u64_error(const char *s, uint64_t min, uint64_t max, int err)
{
	uint64_t v = NOT_SET;

	assert_int_equal(util_parse_u64(s, min, max, &v), err);
	assert_int_equal(v, NOT_SET); /* nothing written on failure */
}

static void test_u64_decimal(void **state)
{
	expect_u64("0", 0, UINT64_MAX, 0);
	expect_u64("1", 0, UINT64_MAX, 1);
	expect_u64("4096", 0, UINT64_MAX, 4096);
	expect_u64("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);
}

static void test_u64_hex(void **state)
{
	expect_u64("0x10", 0, UINT64_MAX, 16);
	expect_u64("0X1f", 0, UINT64_MAX, 31);
	expect_u64("0xffffffffffffffff", 0, UINT64_MAX, UINT64_MAX);
	expect_u64_error("0x", 0, UINT64_MAX, -EINVAL);
	expect_u64_error("0xg", 0, UINT64_MAX, -EINVAL);
}

/* "Decimal (or 0x hex)": a leading zero does not switch to octal. */
static void test_u64_leading_zero_is_decimal(void **state)
{
	expect_u64("010", 0, UINT64_MAX, 10);
	expect_u64("08", 0, UINT64_MAX, 8);
	expect_u64("00", 0, UINT64_MAX, 0);
}

static void test_u64_range(void **state)
{
	expect_u64("1", 1, 254, 1);
	expect_u64("254", 1, 254, 254);
	expect_u64_error("0", 1, 254, -ERANGE);
	expect_u64_error("255", 1, 254, -ERANGE);
	expect_u64_error("18446744073709551616", 0, UINT64_MAX, -ERANGE);
	expect_u64_error("99999999999999999999999", 0, UINT64_MAX, -ERANGE);
	expect_u64_error("0x10000000000000000", 0, UINT64_MAX, -ERANGE);
}

static void test_u64_rejects(void **state)
{
	static const char *const bad[] = { "",	  "-1",	 "+1",	" 1",  "1 ",  "12abc",
					   "abc", "1.5", "1e3", "\t1", "1\n", "--1" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_u64_error(bad[i], 0, UINT64_MAX, -EINVAL);
	expect_u64_error(NULL, 0, UINT64_MAX, -EINVAL);
}

static void expect_size(const char *s, uint64_t unit, uint64_t want)
{
	uint64_t v = NOT_SET;

	assert_int_equal(util_parse_size(s, unit, &v), 0);
	assert_int_equal(v, want);
}

static void expect_size_error(const char *s, uint64_t unit, int err)
{
	uint64_t v = NOT_SET;

	assert_int_equal(util_parse_size(s, unit, &v), err);
	assert_int_equal(v, NOT_SET);
}

static void test_size_units(void **state)
{
	expect_size("1K", 1, 1024);
	expect_size("3M", 1, 3ull << 20);
	expect_size("2G", 1, 2ull << 30);
	expect_size("5T", 1, 5ull << 40);
	expect_size("0K", 1, 0);
	/* Lower case, the "i" and the "B" are optional; all of them mean binary units. */
	expect_size("7k", 1, 7ull << 10);
	expect_size("512KiB", 1, 512ull << 10);
	expect_size("512KB", 1, 512ull << 10);
	expect_size("2MiB", 1, 2ull << 20);
	expect_size("2MB", 1, 2ull << 20);
	expect_size("2mb", 1, 2ull << 20);
	expect_size("2mib", 1, 2ull << 20);
	expect_size("1Gi", 1, 1ull << 30);
	expect_size("1GiB", 1, 1ull << 30);
	expect_size("1TiB", 1, 1ull << 40);
}

static void test_size_default_unit(void **state)
{
	expect_size("512", 1u << 20, 512ull << 20);
	expect_size("5", 4096, 5 * 4096);
	expect_size("5", 1, 5);
	/* An explicit unit overrides the default. */
	expect_size("5K", 1u << 20, 5 << 10);
	expect_size("010", 1, 10);
	expect_size("010K", 1, 10 << 10);
}

static void test_size_overflow(void **state)
{
	expect_size("17179869183G", 1, 17179869183ull << 30);
	expect_size_error("17179869184G", 1, -ERANGE);
	expect_size_error("16777216T", 1, -ERANGE);
	expect_size("18446744073709551615", 1, UINT64_MAX);
	expect_size_error("18446744073709551615", 2, -ERANGE);
	expect_size_error("18446744073709551616", 1, -ERANGE);
	expect_size_error("9223372036854775808", 1u << 20, -ERANGE);
}

static void test_size_junk(void **state)
{
	static const char *const bad[] = {
		"",    "K",    "M1",	"-1K",	 "+1K",	   " 1K", "1 K",
		"1K ", "1.5G", "1KiBx", "1KBB",	 "1iB",	   "1P",  "1E",
		"1X",  "0x10", "1KIBB", "12abc", "1GiB\n", "1Bi", "1KiBi"
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = NOT_SET;

		if (util_parse_size(bad[i], 1, &v) != -EINVAL)
			fail_msg("util_parse_size(\"%s\") accepted junk or gave the wrong error",
				 bad[i]);
		assert_int_equal(v, NOT_SET);
	}
	expect_size_error(NULL, 1, -EINVAL);
	/* More digits than any 64-bit number has. */
	expect_size_error("1000000000000000000000000000000000000000", 1, -EINVAL);
}

static void test_strlcpy(void **state)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(util_strlcpy(buf, "abc", sizeof(buf)), 0);
	assert_string_equal(buf, "abc");

	/* Exactly size-1 characters fit. */
	assert_int_equal(util_strlcpy(buf, "1234567", sizeof(buf)), 0);
	assert_string_equal(buf, "1234567");

	/* One more is truncated, terminated and reported. */
	assert_int_equal(util_strlcpy(buf, "12345678", sizeof(buf)), -ENAMETOOLONG);
	assert_string_equal(buf, "1234567");

	assert_int_equal(util_strlcpy(buf, "", sizeof(buf)), 0);
	assert_string_equal(buf, "");

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(util_strlcpy(buf, "a", 1), -ENAMETOOLONG);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(buf[1], 'x');
	assert_int_equal(util_strlcpy(buf, "", 1), 0);
	assert_int_equal(buf[0], '\0');

	/* Size 0: nothing may be written at all. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(util_strlcpy(buf, "a", 0), -ENAMETOOLONG);
	assert_int_equal(buf[0], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64_decimal),
		cmocka_unit_test(test_u64_hex),
		cmocka_unit_test(test_u64_leading_zero_is_decimal),
		cmocka_unit_test(test_u64_range),
		cmocka_unit_test(test_u64_rejects),
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_size_default_unit),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_size_junk),
		cmocka_unit_test(test_strlcpy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
