/*
 * Logging and rate limits.  A message is formatted into one buffer and written with a single
 * write(2), so lines from different threads never interleave.  A line may start with the
 * local time (logs kept in files) or with a priority for journald (which stamps it itself).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void util_log_init(struct util_log *log, const char *prefix, enum util_log_level level, int fd)
{
	util_strlcpy(log->prefix, prefix ? prefix : "lockstep", sizeof(log->prefix));
	log->level = level;
	log->fd = fd;
	log->stamp = UTIL_LOG_STAMP_NONE;
}

/* Whether fd is the stream $JOURNAL_STREAM ("DEVICE:INODE") names. */
static bool is_journal(int fd)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void util_log_stamp_auto(struct util_log *log, bool tty_too)
{
	if (is_journal(log->fd))
		log->stamp = UTIL_LOG_STAMP_JOURNAL;
	else if (!tty_too && isatty(log->fd))
		log->stamp = UTIL_LOG_STAMP_NONE;
	else
		log->stamp = UTIL_LOG_STAMP_TIME;
	/* The time zone is read now (/etc/localtime, once): a worker that confines itself later
	 * has an empty root and a seccomp list without open, and localtime_r would try then. */
	if (log->stamp == UTIL_LOG_STAMP_TIME)
		tzset();
}

/* The line's stamp into buf; its length. */
static int stamp(const struct util_log *log, enum util_log_level level, char *buf, size_t size)
{
	static const int priorities[] = { 3, 4, 6, 7 }; /* syslog's err, warning, info, debug */
	struct timespec ts;
	struct tm tm;
	char zone[8];
	size_t n;

	if (log->stamp == UTIL_LOG_STAMP_JOURNAL)
		return snprintf(buf, size, "<%d>", priorities[level]);
	if (log->stamp != UTIL_LOG_STAMP_TIME)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!localtime_r(&ts.tv_sec, &tm))
		return 0;
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	/* strftime's %z is "+0100"; ISO 8601 wants "+01:00". */
	if (!n || !strftime(zone, sizeof(zone), "%z", &tm) || strlen(zone) != 5)
		return (int)n;
	return (int)n +
	       snprintf(buf + n, size - n, ".%03ld%.3s:%s ", ts.tv_nsec / 1000000, zone, zone + 3);
}

int util_log_level_parse(const char *s, enum util_log_level *out)
{
	for (int i = 0; i <= UTIL_LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum util_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void util_logv(const struct util_log *log, enum util_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (!log || level > log->level)
		return;
	n = stamp(log, level, line, 64);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "%s: %s: ", log->prefix,
		      level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(log->fd, line, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
}

void util_log(const struct util_log *log, enum util_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	util_logv(log, level, fmt, ap);
	va_end(ap);
}

void util_ratelimit_init(struct util_ratelimit *rl, uint64_t interval_ns, uint32_t burst)
{
	*rl = (struct util_ratelimit){ .interval_ns = interval_ns, .burst = burst };
}

bool util_ratelimit_allow(struct util_ratelimit *rl, uint64_t *suppressed)
{
	uint64_t now = util_now_ns();
	uint64_t start = __atomic_load_n(&rl->window_start, __ATOMIC_RELAXED);

	*suppressed = 0;
	if (now - start >= rl->interval_ns &&
	    __atomic_compare_exchange_n(&rl->window_start, &start, now, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED)) {
		__atomic_store_n(&rl->in_window, 0, __ATOMIC_RELAXED);
		*suppressed = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);
	}
	if (__atomic_add_fetch(&rl->in_window, 1, __ATOMIC_RELAXED) <= rl->burst)
		return true;
	__atomic_add_fetch(&rl->suppressed, 1, __ATOMIC_RELAXED);
	return false;
}

void util_log_limited(const struct util_log *log, struct util_ratelimit *rl,
		      enum util_log_level level, const char *fmt, ...)
{
	uint64_t dropped;
	va_list ap;

	if (!util_ratelimit_allow(rl, &dropped))
		return;
	if (dropped)
		util_log(log, level, "(%llu similar messages suppressed)",
			 (unsigned long long)dropped);
	va_start(ap, fmt);
	util_logv(log, level, fmt, ap);
	va_end(ap);
}
