/*
 * util_lines: the line reader of every newline-delimited stream.  Lines split across reads,
 * several lines in one read, empty lines, a line of exactly the limit (accepted) and one byte
 * over (refused at once, before its newline arrives, and skipped to its end across reads),
 * a callback that stops the feed (the rest dropped), reset, and lines that lie wholly in the
 * caller's buffer handed over without a copy.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

#define MAX_SEEN 16

/* What the callback saw: each line's text, or "<EMSGSIZE>". */
struct seen {
	char line[MAX_SEEN][128];
	const char *ptr[MAX_SEEN];
	unsigned n;
	unsigned stop_after; /* return 1 from the call with this count (0: never) */
};

static int collect(void *arg, const char *line, size_t len, int err)
{
	struct seen *s = arg;

	assert_true(s->n < MAX_SEEN);
	if (err) {
		assert_null(line);
		snprintf(s->line[s->n], sizeof(s->line[0]), "<%s>",
			 err == -EMSGSIZE ? "EMSGSIZE" : "ENOMEM");
	} else {
		assert_non_null(line);
		assert_true(len < sizeof(s->line[0]));
		memcpy(s->line[s->n], line, len);
		s->line[s->n][len] = '\0';
	}
	s->ptr[s->n] = line;
	s->n++;
	return s->stop_after && s->n == s->stop_after;
}

static void feed(struct util_lines *l, struct seen *s, const char *text)
{
	assert_int_equal(util_lines_feed(l, text, strlen(text), collect, s), 0);
}

static void test_split_and_joined(void **state)
{
	struct util_lines l;
	struct seen s = { .n = 0 };

	util_lines_init(&l, 64);
	feed(&l, &s, "one\ntw");
	assert_int_equal(s.n, 1);
	assert_int_equal(util_lines_pending(&l), 2);
	feed(&l, &s, "o");
	feed(&l, &s, "\n\nthree\nfour");
	assert_int_equal(s.n, 4);
	assert_string_equal(s.line[0], "one");
	assert_string_equal(s.line[1], "two");
	assert_string_equal(s.line[2], "");
	assert_string_equal(s.line[3], "three");
	assert_int_equal(util_lines_pending(&l), 4);
	feed(&l, &s, "\n");
	assert_int_equal(s.n, 5);
	assert_string_equal(s.line[4], "four");
	assert_int_equal(util_lines_pending(&l), 0);
	util_lines_fini(&l);
}

static void test_no_copy_when_whole(void **state)
{
	static const char text[] = "alpha\nbeta\n";
	struct util_lines l;
	struct seen s = { .n = 0 };

	util_lines_init(&l, 64);
	assert_int_equal(util_lines_feed(&l, text, strlen(text), collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_ptr_equal(s.ptr[0], text);
	assert_ptr_equal(s.ptr[1], text + 6);
	util_lines_fini(&l);
}

static void test_limit(void **state)
{
	char exact[17], over[18];
	struct util_lines l;
	struct seen s = { .n = 0 };

	memset(exact, 'x', 16);
	exact[16] = '\0';
	memset(over, 'y', 17);
	over[17] = '\0';
	util_lines_init(&l, 16);
	feed(&l, &s, exact);
	feed(&l, &s, "\n");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.line[0], exact);

	/* One byte over: refused as soon as it is known, the rest skipped across reads. */
	feed(&l, &s, over);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.line[1], "<EMSGSIZE>");
	assert_int_equal(util_lines_pending(&l), 0);
	feed(&l, &s, "more of the same line");
	assert_int_equal(s.n, 2);
	feed(&l, &s, " still\nnext\n");
	assert_int_equal(s.n, 3);
	assert_string_equal(s.line[2], "next");

	/* Too long with its newline in the same read, then a good line. */
	feed(&l, &s, "0123456789abcdefXYZ\nok\n");
	assert_int_equal(s.n, 5);
	assert_string_equal(s.line[3], "<EMSGSIZE>");
	assert_string_equal(s.line[4], "ok");

	/* Too long only once the held part and the new part add up. */
	feed(&l, &s, "0123456789");
	feed(&l, &s, "0123456789\nafter\n");
	assert_int_equal(s.n, 7);
	assert_string_equal(s.line[5], "<EMSGSIZE>");
	assert_string_equal(s.line[6], "after");
	util_lines_fini(&l);
}

static void test_stop_and_reset(void **state)
{
	struct util_lines l;
	struct seen s = { .n = 0, .stop_after = 2 };

	util_lines_init(&l, 64);
	assert_int_equal(util_lines_feed(&l, "a\nb\nc\npartial", 13, collect, &s), 1);
	assert_int_equal(s.n, 2); /* c and the partial line are dropped */
	assert_int_equal(util_lines_pending(&l), 0);
	s.stop_after = 0;
	feed(&l, &s, "d\n");
	assert_int_equal(s.n, 3);
	assert_string_equal(s.line[2], "d");

	feed(&l, &s, "half");
	util_lines_reset(&l);
	feed(&l, &s, "whole\n");
	assert_int_equal(s.n, 4);
	assert_string_equal(s.line[3], "whole");
	util_lines_fini(&l);
	util_lines_fini(&l); /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_and_joined),
		cmocka_unit_test(test_no_copy_when_whole),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_stop_and_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
