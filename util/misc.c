/*
 * Latency sample sets, strict number and size parsing, bounded string copies, whole-file
 * reads (regular files, and /proc or sysfs files whose size stat() does not know) and
 * mkdir -p.  Parsing is strict on purpose: "12abc" or "-1" in a config file is an error, never
 * silently 12 or 2^64-1.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

void util_samples_add(struct util_samples *s, uint64_t value)
{
	if (s->count == 0 || value < s->min)
		s->min = value;
	if (value > s->max)
		s->max = value;
	s->count++;
	s->sum += value;
	s->ring[s->next] = value;
	s->next = (s->next + 1) % UTIL_SAMPLES_MAX;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t util_samples_percentile(const struct util_samples *s, double p)
{
	size_t n = s->count < UTIL_SAMPLES_MAX ? (size_t)s->count : UTIL_SAMPLES_MAX;
	uint64_t *sorted, result;
	size_t idx;

	if (n == 0)
		return 0;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return 0;
	memcpy(sorted, s->ring, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	idx = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	result = sorted[idx];
	free(sorted);
	return result;
}

int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0' || end == s)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int unit_shift(const char *u, unsigned *shift)
{
	static const char *const units = "KMGT";
	const char *p;

	if (!*u)
		return -EINVAL;
	p = strchr(units, toupper((unsigned char)u[0]));
	if (!p)
		return -EINVAL;
	*shift = 10 * (unsigned)(p - units + 1);
	u++;
	if (*u == 'i' || *u == 'I')
		u++;
	if (*u == 'B' || *u == 'b')
		u++;
	return *u ? -EINVAL : 0;
}

int util_parse_size(const char *s, uint64_t default_unit, uint64_t *bytes)
{
	char digits[32];
	size_t n = 0;
	uint64_t value, mult = default_unit;
	unsigned shift;
	int ret;

	if (!s)
		return -EINVAL;
	while (isdigit((unsigned char)s[n]) && n < sizeof(digits) - 1) {
		digits[n] = s[n];
		n++;
	}
	if (n == 0 || isdigit((unsigned char)s[n]))
		return -EINVAL;
	digits[n] = '\0';
	ret = util_parse_u64(digits, 0, UINT64_MAX, &value);
	if (ret)
		return ret;
	if (s[n]) {
		ret = unit_shift(s + n, &shift);
		if (ret)
			return ret;
		mult = 1ull << shift;
	}
	if (mult && value > UINT64_MAX / mult)
		return -ERANGE;
	*bytes = value * mult;
	return 0;
}

int util_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size == 0)
		return -ENAMETOOLONG;
	if (len >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

int util_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (util_strlcpy(buf, path, sizeof(buf)))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int util_read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = util_read_fd(fd, max, out, len);
	close(fd);
	return ret;
}

int util_read_fd(int fd, size_t max, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break; /* the file shrank: take what is there */
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	if (len)
		*len = got;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	return ret;
}

int util_read_text(const char *path, size_t max, char **out, size_t *len)
{
	size_t got = 0, cap = 0;
	char *buf = NULL;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		/* Room for one byte past `max`, so a file of exactly `max` bytes reads fine. */
		if (got + 1 >= cap) {
			size_t want = cap ? cap * 2 : 4096;
			char *bigger;

			if (want > max + 2)
				want = max + 2;
			if (want <= cap) {
				ret = -EFBIG;
				goto out;
			}
			bigger = realloc(buf, want);
			if (!bigger) {
				ret = -ENOMEM;
				goto out;
			}
			buf = bigger;
			cap = want;
		}
		n = read(fd, buf + got, cap - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > max) {
			ret = -EFBIG;
			goto out;
		}
	}
	buf[got] = '\0';
	*out = buf;
	if (len)
		*len = got;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

int util_error(char *err, size_t err_len, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && err_len) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return code;
}

int util_proc_stat_parse(const char *line, struct util_proc_stat *out)
{
	const char *p = strrchr(line, ')');
	unsigned long long start = 0, utime = 0, stime = 0, cutime = 0, cstime = 0;
	int field = 2, cpu = -1;
	char state;

	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	state = p[2];
	/* Fields from 3 on are separated by single spaces. */
	for (p += 1; *p; p++) {
		if (*p != ' ')
			continue;
		field++;
		if (field == 14)
			utime = strtoull(p + 1, NULL, 10);
		else if (field == 15)
			stime = strtoull(p + 1, NULL, 10);
		else if (field == 16)
			cutime = strtoull(p + 1, NULL, 10);
		else if (field == 17)
			cstime = strtoull(p + 1, NULL, 10);
		else if (field == 22)
			start = strtoull(p + 1, NULL, 10);
		else if (field == 39)
			cpu = atoi(p + 1);
	}
	if (field < 22)
		return -EIO;
	*out = (struct util_proc_stat){ .state = state,
					.cpu = cpu,
					.utime = utime,
					.stime = stime,
					.cutime = cutime,
					.cstime = cstime,
					.start_ticks = start };
	return 0;
}

int util_proc_stat_read(int pid, int tid, struct util_proc_stat *out)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	return util_proc_stat_parse(buf, out);
}

int util_proc_ns_tid(int pid, int tid, int *ns_tid)
{
	char path[64], buf[4096], *line;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	line = strstr(buf, "\nNSpid:");
	if (!line)
		return -ENOENT;
	line += 7;
	*ns_tid = -1;
	/* Outermost first: the last number is the innermost namespace's. */
	while (*line && *line != '\n') {
		char *end;
		long v = strtol(line, &end, 10);

		if (end == line)
			break;
		*ns_tid = (int)v;
		line = end;
	}
	return *ns_tid > 0 ? 0 : -EIO;
}

int util_exe_relative(const char *rel, char *buf, size_t size)
{
	char self[PATH_MAX], joined[PATH_MAX], resolved[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if (snprintf(joined, sizeof(joined), "%s/%s", self, rel) >= (int)sizeof(joined))
		return -ENAMETOOLONG;
	/* Canonical, so that ps and logs show /usr/bin/lockstep-vm, not /usr/sbin/../bin/... */
	if (!realpath(joined, resolved))
		return -ENOENT;
	return util_strlcpy(buf, resolved, size);
}

bool util_pci_address_valid(const char *s)
{
	static const char pattern[] = "hhhh:hh:hh.o";

	if (!s || strlen(s) != sizeof(pattern) - 1)
		return false;
	for (size_t i = 0; pattern[i]; i++) {
		char c = s[i];

		if (pattern[i] == 'h' && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		if (pattern[i] == 'o' && !(c >= '0' && c <= '7'))
			return false;
		if (pattern[i] != 'h' && pattern[i] != 'o' && c != pattern[i])
			return false;
	}
	/* slot 0x00-0x1f */
	return (s[8] >= '0' && s[8] <= '1');
}
