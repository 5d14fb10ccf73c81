/*
 * Host CPU sets: util_cpuset_parse, util_cpuset_format and util_cpuset_count.  The list syntax
 * ("0-3,6") is what users type in definitions and what lockstep prints back, so parse and
 * format must round-trip to the canonical form, reject every malformed list with the set
 * untouched, and stop at CPU 1023.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

static void expect_members(const struct util_cpuset *set, const unsigned *cpus, unsigned n)
{
	unsigned k = 0;

	for (unsigned c = 0; c < UTIL_CPUSET_MAX; c++) {
		bool want = k < n && cpus[k] == c;

		if (util_cpuset_has(set, c) != want)
			fail_msg("CPU %u: expected %s", c, want ? "present" : "absent");
		if (want)
			k++;
	}
	assert_int_equal(util_cpuset_count(set), n);
}

static void test_parse_members(void **state)
{
	static const unsigned want[] = { 0, 1, 2, 3, 6 };
	static const unsigned want2[] = { 5, 64, 65, 127, 128, 1023 };
	struct util_cpuset set;

	assert_int_equal(util_cpuset_parse("0-3,6", &set), 0);
	expect_members(&set, want, 5);
	assert_int_equal(util_cpuset_parse("1023,5,64-65,127-128", &set), 0);
	expect_members(&set, want2, 6);
	assert_int_equal(util_cpuset_parse("7", &set), 0);
	expect_members(&set, (const unsigned[]){ 7 }, 1);
	assert_int_equal(util_cpuset_parse("4-4", &set), 0);
	expect_members(&set, (const unsigned[]){ 4 }, 1);
	assert_int_equal(util_cpuset_parse("0-1023", &set), 0);
	assert_int_equal(util_cpuset_count(&set), 1024);
	assert_true(util_cpuset_has(&set, 1023));
	assert_false(util_cpuset_has(&set, 1024));
}

/* Parses `in`, formats it and expects the canonical `out`. */
static void expect_round_trip(const char *in, const char *out)
{
	struct util_cpuset set, again;
	char buf[4096];

	assert_int_equal(util_cpuset_parse(in, &set), 0);
	assert_int_equal(util_cpuset_format(&set, buf, sizeof(buf)), 0);
	assert_string_equal(buf, out);
	/* The canonical form parses to the same set. */
	assert_int_equal(util_cpuset_parse(buf, &again), 0);
	assert_memory_equal(&set, &again, sizeof(set));
}

static void test_round_trip(void **state)
{
	expect_round_trip("0-3,6", "0-3,6");
	expect_round_trip("6,0-3", "0-3,6");
	expect_round_trip("1,2,3", "1-3");
	expect_round_trip("3,1,2,2,1-2", "1-3");
	expect_round_trip("0-2,3-5", "0-5");
	expect_round_trip("0", "0");
	expect_round_trip("1023", "1023");
	expect_round_trip("62-65", "62-65");
	expect_round_trip("0,2,4", "0,2,4");
	expect_round_trip("0-1023", "0-1023");
	expect_round_trip("1022-1023,0", "0,1022-1023");
}

static void test_parse_rejects(void **state)
{
	static const struct {
		const char *s;
		int err;
	} bad[] = {
		{ "", -EINVAL },       { ",", -EINVAL },      { "1,,2", -EINVAL },
		{ "3-1", -EINVAL },    { "a", -EINVAL },      { "1,", -EINVAL },
		{ ",1", -EINVAL },     { "-1", -EINVAL },     { "1-", -EINVAL },
		{ " 1", -EINVAL },     { "1 ", -EINVAL },     { "1-3-5", -EINVAL },
		{ "0x1", -EINVAL },    { "1;2", -EINVAL },    { "+1", -EINVAL },
		{ "1024", -ERANGE },   { "0-1024", -ERANGE }, { "99999999999", -ERANGE },
		{ "5,1024", -ERANGE },
	};
	struct util_cpuset set, before;

	assert_int_equal(util_cpuset_parse("2,9", &set), 0);
	before = set;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = util_cpuset_parse(bad[i].s, &set);

		if (ret != bad[i].err)
			fail_msg("util_cpuset_parse(\"%s\") = %d, expected %d", bad[i].s, ret,
				 bad[i].err);
		/* A failed parse leaves the caller's set alone. */
		assert_memory_equal(&set, &before, sizeof(set));
	}
	assert_int_equal(util_cpuset_parse(NULL, &set), -EINVAL);
}

static void test_format_sizes(void **state)
{
	struct util_cpuset set = { { 0 } };
	char buf[16];

	/* The empty set formats as "". */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(util_cpuset_format(&set, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");

	assert_int_equal(util_cpuset_parse("0-3,6", &set), 0);
	assert_int_equal(util_cpuset_format(&set, buf, 6), 0); /* "0-3,6" + NUL */
	assert_string_equal(buf, "0-3,6");
	assert_int_equal(util_cpuset_format(&set, buf, 5), -ENAMETOOLONG);
	assert_int_equal(util_cpuset_format(&set, buf, 4), -ENAMETOOLONG);
	assert_int_equal(util_cpuset_format(&set, buf, 0), -ENAMETOOLONG);
}

/* The longest list: every other CPU, 512 entries, "0,2,...,1022". */
static void test_format_longest(void **state)
{
	struct util_cpuset set = { { 0 } }, again;
	char buf[4096], want[4096];
	size_t n = 0;

	for (unsigned c = 0; c < UTIL_CPUSET_MAX; c += 2) {
		util_cpuset_add(&set, c);
		n += (size_t)snprintf(want + n, sizeof(want) - n, "%s%u", c ? "," : "", c);
	}
	assert_int_equal(util_cpuset_count(&set), 512);
	assert_int_equal(util_cpuset_format(&set, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
	assert_int_equal(strlen(buf), n);
	assert_int_equal(util_cpuset_format(&set, buf, n), -ENAMETOOLONG);
	assert_int_equal(util_cpuset_format(&set, buf, n + 1), 0);
	assert_int_equal(util_cpuset_parse(buf, &again), 0);
	assert_memory_equal(&set, &again, sizeof(set));
}

static void test_add_has_bounds(void **state)
{
	struct util_cpuset set = { { 0 } }, empty = { { 0 } };

	util_cpuset_add(&set, 1024); /* out of range: ignored */
	util_cpuset_add(&set, 5000);
	assert_memory_equal(&set, &empty, sizeof(set));
	assert_false(util_cpuset_has(&set, 1024));
	util_cpuset_add(&set, 63);
	util_cpuset_add(&set, 64);
	assert_int_equal(set.bits[0], 1ull << 63);
	assert_int_equal(set.bits[1], 1ull);
	assert_int_equal(util_cpuset_count(&set), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_members),  cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_parse_rejects),  cmocka_unit_test(test_format_sizes),
		cmocka_unit_test(test_format_longest), cmocka_unit_test(test_add_has_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
