/*
 * Logging and rate limits.  A message is formatted into one buffer and written with a single
 * write(2), so lines from different threads never interleave.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void util_log_init(struct util_log *log, const char *prefix, enum util_log_level level, int fd)
{
	util_strlcpy(log->prefix, prefix ? prefix : "lockstep", sizeof(log->prefix));
	log->level = level;
	log->fd = fd;
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
	n = snprintf(line, sizeof(line), "%s: %s: ", log->prefix, level_names[level]);
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
