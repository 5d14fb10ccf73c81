/*
 * Latency sample sets (util_samples_*), rate limits (util_ratelimit_*, util_log_limited) and
 * the logger (util_log*).  Percentiles are checked as exact values on known data, including
 * after the ring of retained samples wraps; the rate limit is driven by moving its window
 * start rather than by sleeping, so the test is deterministic; log lines are read back from a
 * pipe byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/util.h"

static void test_samples_empty(void **state)
{
	struct util_samples *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(util_samples_percentile(s, 0), 0);
	assert_int_equal(util_samples_percentile(s, 50), 0);
	assert_int_equal(util_samples_percentile(s, 100), 0);
	free(s);
}

static void test_samples_known(void **state)
{
	struct util_samples *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	/* 1..100 in a scrambled order: percentiles must not depend on arrival order. */
	for (unsigned i = 0; i < 100; i++)
		util_samples_add(s, (i * 37) % 100 + 1);
	assert_int_equal(s->count, 100);
	assert_int_equal(s->min, 1);
	assert_int_equal(s->max, 100);
	assert_int_equal(s->sum, 5050);
	/* Nearest rank on n-1 = 99 steps: index round(p / 100 * 99). */
	assert_int_equal(util_samples_percentile(s, 0), 1);
	assert_int_equal(util_samples_percentile(s, 25), 26);
	assert_int_equal(util_samples_percentile(s, 50), 51);
	assert_int_equal(util_samples_percentile(s, 90), 90);
	assert_int_equal(util_samples_percentile(s, 99), 99);
	assert_int_equal(util_samples_percentile(s, 100), 100);
	/* Out-of-range percentiles clamp. */
	assert_int_equal(util_samples_percentile(s, -5), 1);
	assert_int_equal(util_samples_percentile(s, 250), 100);
	free(s);
}

static void test_samples_single_and_min(void **state)
{
	struct util_samples *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	util_samples_add(s, 0);
	assert_int_equal(s->min, 0);
	assert_int_equal(s->max, 0);
	util_samples_add(s, 7);
	util_samples_add(s, 3);
	assert_int_equal(s->min, 0);
	assert_int_equal(s->max, 7);
	assert_int_equal(util_samples_percentile(s, 50), 3);
	free(s);

	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	util_samples_add(s, 42);
	assert_int_equal(s->min, 42); /* the first sample sets min even though min starts at 0 */
	assert_int_equal(util_samples_percentile(s, 0), 42);
	assert_int_equal(util_samples_percentile(s, 100), 42);
	free(s);
}

/* Past UTIL_SAMPLES_MAX, percentiles cover the most recent samples; count/min/max/sum all. */
static void test_samples_ring_wrap(void **state)
{
	struct util_samples *s = calloc(1, sizeof(*s));
	uint64_t sum = 0;

	assert_non_null(s);
	for (uint64_t v = 0; v < UTIL_SAMPLES_MAX; v++) {
		util_samples_add(s, v);
		sum += v;
	}
	assert_int_equal(util_samples_percentile(s, 0), 0);
	assert_int_equal(util_samples_percentile(s, 100), UTIL_SAMPLES_MAX - 1);
	assert_int_equal(s->next, 0);
	/* Ten more overwrite the ten oldest (0..9). */
	for (uint64_t v = 10000; v < 10010; v++) {
		util_samples_add(s, v);
		sum += v;
	}
	assert_int_equal(s->count, UTIL_SAMPLES_MAX + 10);
	assert_int_equal(s->next, 10);
	assert_int_equal(s->min, 0);
	assert_int_equal(s->max, 10009);
	assert_int_equal(s->sum, sum);
	assert_int_equal(util_samples_percentile(s, 0), 10);
	assert_int_equal(util_samples_percentile(s, 100), 10009);
	/* Retained: 10..4095 (4086 values), then 10000..10009; index round(0.5 * 4095) = 2048. */
	assert_int_equal(util_samples_percentile(s, 50), 2058);
	/* index round(0.999 * 4095) = 4091 -> the 6th of the new values. */
	assert_int_equal(util_samples_percentile(s, 99.9), 10005);
	free(s);
}

static void test_ratelimit_burst_then_suppress(void **state)
{
	struct util_ratelimit rl;
	uint64_t dropped = 99;

	util_ratelimit_init(&rl, 3600ull * 1000000000ull, 3);
	rl.window_start = util_now_ns(); /* a window that has just begun */
	for (int i = 0; i < 3; i++) {
		assert_true(util_ratelimit_allow(&rl, &dropped));
		assert_int_equal(dropped, 0);
	}
	for (int i = 0; i < 7; i++) {
		assert_false(util_ratelimit_allow(&rl, &dropped));
		assert_int_equal(dropped, 0);
	}
	assert_int_equal(rl.suppressed, 7);

	/* The window has passed: the next message goes out and reports the 7 dropped. */
	rl.window_start = util_now_ns() - rl.interval_ns;
	assert_true(util_ratelimit_allow(&rl, &dropped));
	assert_int_equal(dropped, 7);
	assert_int_equal(rl.suppressed, 0);
	/* A fresh burst of 3, the first of which was just used. */
	assert_true(util_ratelimit_allow(&rl, &dropped));
	assert_int_equal(dropped, 0);
	assert_true(util_ratelimit_allow(&rl, &dropped));
	assert_false(util_ratelimit_allow(&rl, &dropped));
	assert_int_equal(rl.suppressed, 1);
}

static int open_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	return 0;
}

/* Everything in the pipe so far, NUL-terminated. */
static size_t drain(int fd, char *buf, size_t size)
{
	ssize_t n = read(fd, buf, size - 1);

	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return (size_t)n;
}

static void test_log_limited_reports_suppressed(void **state)
{
	struct util_ratelimit rl;
	struct util_log log;
	char out[4096];
	int fds[2];

	assert_int_equal(open_pipe(fds), 0);
	util_log_init(&log, "vm[t]", UTIL_LOG_INFO, fds[1]);
	util_ratelimit_init(&rl, 3600ull * 1000000000ull, 2);
	rl.window_start = util_now_ns();
	for (int i = 0; i < 5; i++)
		util_log_limited(&log, &rl, UTIL_LOG_WARN, "bad access %d", i);
	drain(fds[0], out, sizeof(out));
	assert_string_equal(out, "vm[t]: warn: bad access 0\nvm[t]: warn: bad access 1\n");

	rl.window_start = util_now_ns() - rl.interval_ns;
	util_log_limited(&log, &rl, UTIL_LOG_WARN, "bad access %d", 5);
	drain(fds[0], out, sizeof(out));
	assert_string_equal(out, "vm[t]: warn: (3 similar messages suppressed)\n"
				 "vm[t]: warn: bad access 5\n");
	close(fds[0]);
	close(fds[1]);
}

static void test_log_levels_and_format(void **state)
{
	enum util_log_level level = UTIL_LOG_ERROR;
	struct util_log log;
	char out[4096], big[2000];
	int fds[2];

	assert_int_equal(open_pipe(fds), 0);
	util_log_init(&log, NULL, UTIL_LOG_WARN, fds[1]);
	assert_string_equal(log.prefix, "lockstep");
	util_log(&log, UTIL_LOG_ERROR, "e%d", 1);
	util_log(&log, UTIL_LOG_WARN, "w");
	util_log(&log, UTIL_LOG_INFO, "dropped");
	util_log(&log, UTIL_LOG_DEBUG, "dropped");
	util_log(NULL, UTIL_LOG_ERROR, "no logger: ignored");
	drain(fds[0], out, sizeof(out));
	assert_string_equal(out, "lockstep: error: e1\nlockstep: warn: w\n");

	/* A message longer than a line is cut to 1023 bytes, newline included. */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	util_log(&log, UTIL_LOG_ERROR, "%s", big);
	assert_int_equal(drain(fds[0], out, sizeof(out)), 1023);
	assert_int_equal(out[1022], '\n');
	assert_memory_equal(out, "lockstep: error: zzz", 20);

	assert_int_equal(util_log_level_parse("debug", &level), 0);
	assert_int_equal(level, UTIL_LOG_DEBUG);
	assert_int_equal(util_log_level_parse("warn", &level), 0);
	assert_int_equal(level, UTIL_LOG_WARN);
	assert_int_equal(util_log_level_parse("WARN", &level), -EINVAL);
	assert_int_equal(util_log_level_parse("", &level), -EINVAL);
	assert_int_equal(level, UTIL_LOG_WARN);
	close(fds[0]);
	close(fds[1]);
}

/* Lines kept in a file carry the local time; journald gets a priority and stamps them itself. */
static void test_log_stamps(void **state)
{
	struct util_log log;
	struct stat st;
	char out[4096], env[64];
	int fds[2];

	assert_int_equal(open_pipe(fds), 0);
	util_log_init(&log, "d", UTIL_LOG_INFO, fds[1]);
	unsetenv("JOURNAL_STREAM");
	util_log_stamp_auto(&log, false); /* a pipe is no terminal */
	assert_int_equal(log.stamp, UTIL_LOG_STAMP_TIME);
	util_log(&log, UTIL_LOG_INFO, "hello");
	drain(fds[0], out, sizeof(out));
	/* "2026-12-05T14:45:00.123+01:00 d: info: hello\n" */
	assert_int_equal(strlen(out), 30 + strlen("d: info: hello\n"));
	assert_true(out[4] == '-' && out[7] == '-' && out[10] == 'T' && out[13] == ':' &&
		    out[16] == ':' && out[19] == '.' && (out[23] == '+' || out[23] == '-') &&
		    out[26] == ':' && out[29] == ' ');
	assert_string_equal(out + 30, "d: info: hello\n");

	assert_int_equal(fstat(fds[1], &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	util_log_stamp_auto(&log, false);
	unsetenv("JOURNAL_STREAM");
	assert_int_equal(log.stamp, UTIL_LOG_STAMP_JOURNAL);
	util_log(&log, UTIL_LOG_ERROR, "e");
	util_log(&log, UTIL_LOG_INFO, "i");
	drain(fds[0], out, sizeof(out));
	assert_string_equal(out, "<3>d: error: e\n<6>d: info: i\n");
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_empty),
		cmocka_unit_test(test_samples_known),
		cmocka_unit_test(test_samples_single_and_min),
		cmocka_unit_test(test_samples_ring_wrap),
		cmocka_unit_test(test_ratelimit_burst_then_suppress),
		cmocka_unit_test(test_log_limited_reports_suppressed),
		cmocka_unit_test(test_log_levels_and_format),
		cmocka_unit_test(test_log_stamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
