/*
 * util_read_file: whole-file reads of definitions and guest images.  Covers the exact errno
 * for a missing file, a directory, a device and a file over the size limit (at the limit is
 * fine), that the buffer is NUL-terminated with the exact length, and that binary contents
 * with NUL bytes come back intact.  Files live in a private mkdtemp directory.
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

struct fixture {
	char dir[64];
	char path[128];
};

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/lockstep-test-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_read_whole(void **state)
{
	struct fixture *f = *state;
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(write_file(f->path, "hello\n", 6), 0);
	assert_int_equal(util_read_file(f->path, 1 << 20, &text, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(text, "hello\n", 7); /* includes the terminating NUL */
	free(text);

	/* `len` may be NULL. */
	assert_int_equal(util_read_file(f->path, 6, &text, NULL), 0);
	assert_string_equal(text, "hello\n");
	free(text);
}

static void test_read_binary(void **state)
{
	struct fixture *f = *state;
	static const uint8_t data[] = { 0x7f, 'E', 0, 0, 0xff, 0, 1 };
	char *buf = NULL;
	size_t len = 0;

	assert_int_equal(write_file(f->path, data, sizeof(data)), 0);
	assert_int_equal(util_read_file(f->path, sizeof(data), &buf, &len), 0);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(buf, data, sizeof(data));
	assert_int_equal(buf[len], '\0');
	free(buf);
}

static void test_read_empty(void **state)
{
	struct fixture *f = *state;
	char *buf = NULL;
	size_t len = 99;

	assert_int_equal(write_file(f->path, "", 0), 0);
	assert_int_equal(util_read_file(f->path, 0, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
}

static void test_size_limit(void **state)
{
	struct fixture *f = *state;
	char *buf = (char *)0x1;
	size_t len = 99;

	assert_int_equal(write_file(f->path, "12345", 5), 0);
	assert_int_equal(util_read_file(f->path, 4, &buf, &len), -EFBIG);
	/* Outputs untouched on failure. */
	assert_ptr_equal(buf, (char *)0x1);
	assert_int_equal(len, 99);
	assert_int_equal(util_read_file(f->path, 0, &buf, &len), -EFBIG);
	assert_int_equal(util_read_file(f->path, 5, &buf, &len), 0);
	assert_int_equal(len, 5);
	free(buf);
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	char missing[160];
	char *buf = NULL;
	size_t len = 0;

	snprintf(missing, sizeof(missing), "%s/missing", f->dir);
	assert_int_equal(util_read_file(missing, 1 << 20, &buf, &len), -ENOENT);
	assert_int_equal(util_read_file(f->dir, 1 << 20, &buf, &len), -EISDIR);
	assert_int_equal(util_read_file("/dev/null", 1 << 20, &buf, &len), -EINVAL);
	assert_int_equal(util_read_file("", 1 << 20, &buf, &len), -ENOENT);
	assert_null(buf);
}

/* util_read_text: files whose stat() size means nothing (/proc), growth past the first page,
 * and the limit counted in bytes read. */
static void test_read_text(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(10000), *buf = NULL;
	size_t len = 0;

	assert_int_equal(util_read_text("/proc/self/status", 1 << 20, &buf, &len), 0);
	assert_true(len > 0 && strlen(buf) == len);
	assert_non_null(strstr(buf, "Pid:"));
	free(buf);

	assert_non_null(big);
	for (int i = 0; i < 10000; i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(write_file(f->path, big, 10000), 0);
	assert_int_equal(util_read_text(f->path, 10000, &buf, &len), 0);
	assert_int_equal(len, 10000);
	assert_memory_equal(buf, big, 10000);
	assert_int_equal(buf[len], '\0');
	free(buf);
	buf = NULL;
	assert_int_equal(util_read_text(f->path, 9999, &buf, &len), -EFBIG);
	assert_null(buf);
	assert_int_equal(util_read_text(f->path, 100, &buf, &len), -EFBIG);
	assert_int_equal(write_file(f->path, "", 0), 0);
	assert_int_equal(util_read_text(f->path, 0, &buf, &len), 0);
	assert_int_equal(len, 0);
	free(buf);
	assert_int_equal(util_read_text(f->dir, 100, &buf, &len), -EISDIR);
	free(big);
}

/* mkdir -p: parents 0755, the leaf with its own mode, an existing path is fine. */
static void test_mkdir_p(void **state)
{
	struct fixture *f = *state;
	char leaf[192], mid[192], top[192], clash[192];
	struct stat st;
	char *huge = calloc(1, 8192);

	snprintf(top, sizeof(top), "%s/a", f->dir);
	snprintf(mid, sizeof(mid), "%s/a/b", f->dir);
	snprintf(leaf, sizeof(leaf), "%s/a/b/c", f->dir);
	assert_int_equal(util_mkdir_p(leaf, 0700), 0);
	assert_int_equal(stat(leaf, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(mid, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755 & ~umask(022));
	assert_int_equal(util_mkdir_p(leaf, 0700), 0);
	/* A file where a directory must go. */
	assert_int_equal(write_file(f->path, "x", 1), 0);
	snprintf(clash, sizeof(clash), "%s/sub", f->path);
	assert_int_equal(util_mkdir_p(clash, 0755), -ENOTDIR);
	assert_non_null(huge);
	memset(huge, 'a', 8191);
	huge[0] = '/';
	assert_int_equal(util_mkdir_p(huge, 0755), -ENAMETOOLONG);
	free(huge);
	rmdir(leaf);
	rmdir(mid);
	rmdir(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
