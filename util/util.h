/*
 * util — small helpers every host module shares: logging with levels and rate limits, clocks,
 * latency sample sets with percentiles, strict number/size parsing, CPU sets, /proc parsing,
 * and the one reader of newline-delimited streams.
 *
 * No state lives here: a logger, a rate limit or a sample set is a struct its owner holds.
 */
#ifndef LOCKSTEP_UTIL_H
#define LOCKSTEP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ---- intrusive doubly linked lists (as in the kernel) ---- */

struct util_list {
	struct util_list *prev, *next;
};

#define UTIL_LIST_INIT(name)     \
	{                        \
		&(name), &(name) \
	}
#define util_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define util_list_for_each(pos, head) \
	for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define util_list_for_each_safe(pos, tmp, head)                          \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
	     (pos) = (tmp), (tmp) = (pos)->next)

static inline void util_list_init(struct util_list *head)
{
	head->prev = head->next = head;
}

static inline bool util_list_empty(const struct util_list *head)
{
	return head->next == head;
}

static inline void util_list_add_tail(struct util_list *head, struct util_list *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

static inline void util_list_del(struct util_list *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

/* ---- clocks ---- */

static inline uint64_t util_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- logging ---- */

enum util_log_level {
	UTIL_LOG_ERROR = 0,
	UTIL_LOG_WARN = 1,
	UTIL_LOG_INFO = 2,
	UTIL_LOG_DEBUG = 3,
};

/* What starts a line: nothing, the local time, or a priority journald reads (it keeps the
 * time itself). */
enum util_log_stamp {
	UTIL_LOG_STAMP_NONE = 0,
	UTIL_LOG_STAMP_TIME,	/* "2026-12-05T14:45:00.123+01:00 " */
	UTIL_LOG_STAMP_JOURNAL, /* "<6>", as sd-daemon(3) describes */
};

/* Where a component's messages go, and with what prefix ("lockstep-vm[demo]"). */
struct util_log {
	char prefix[96];
	enum util_log_level level;
	int fd; /* usually 2 */
	enum util_log_stamp stamp;
};

/* A logger without stamps (util_log_stamp_auto or .stamp choose them). */
void util_log_init(struct util_log *log, const char *prefix, enum util_log_level level, int fd);
/*
 * Stamps for where log->fd goes: journald's priorities when it is the stream systemd's
 * $JOURNAL_STREAM names, no stamp on a terminal unless `tty_too`, the time otherwise (a file,
 * a pipe): lines kept somewhere say when they happened.
 */
void util_log_stamp_auto(struct util_log *log, bool tty_too);
/* Parses "error", "warn", "info", "debug"; -EINVAL otherwise. */
int util_log_level_parse(const char *s, enum util_log_level *out);
void util_logv(const struct util_log *log, enum util_log_level level, const char *fmt, va_list ap);
void util_log(const struct util_log *log, enum util_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A rate limit for messages a guest or a client can trigger at will: at most `burst` messages
 * per `interval_ns`; the next message after a quiet interval says how many were dropped.
 * Thread-safe (atomics), so vCPU threads can share one.
 */
struct util_ratelimit {
	uint64_t interval_ns;
	uint32_t burst;
	uint64_t window_start; /* atomic */
	uint32_t in_window;    /* atomic */
	uint64_t suppressed;   /* atomic */
};

void util_ratelimit_init(struct util_ratelimit *rl, uint64_t interval_ns, uint32_t burst);
/* True if a message may be printed now; *suppressed receives how many were dropped before. */
bool util_ratelimit_allow(struct util_ratelimit *rl, uint64_t *suppressed);
void util_log_limited(const struct util_log *log, struct util_ratelimit *rl,
		      enum util_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- latency samples ---- */

#define UTIL_SAMPLES_MAX 4096

/* Keeps the most recent UTIL_SAMPLES_MAX samples of one latency, plus exact count/min/max. */
struct util_samples {
	uint64_t count;
	uint64_t min, max;
	uint64_t sum;
	uint32_t next;
	uint64_t ring[UTIL_SAMPLES_MAX];
};

void util_samples_add(struct util_samples *s, uint64_t value);
/* p in [0, 100]; over the retained samples.  0 when there are none. */
uint64_t util_samples_percentile(const struct util_samples *s, double p);

/* ---- parsing ---- */

/* Decimal (or 0x hex) unsigned integer filling the whole string, within [min, max]. */
int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/*
 * A size: a number with an optional unit K, M, G or T (KiB...; also "KiB", "MiB", "GiB",
 * "TiB", "KB"... read as binary units).  A bare number means `default_unit` bytes.
 */
int util_parse_size(const char *s, uint64_t default_unit, uint64_t *bytes);

/* Whether a PCI address is in the kernel's sysfs form, "dddd:bb:ss.f" in lower-case hex
 * with a slot below 0x20: the only spelling a client's device name is taken in. */
bool util_pci_address_valid(const char *s);

/* Copies at most size-1 bytes and always terminates; -ENAMETOOLONG if `src` did not fit. */
int util_strlcpy(char *dst, const char *src, size_t size);

/* ---- CPU sets ---- */

#define UTIL_CPUSET_MAX 1024

/* A set of host CPUs, as in the kernel's cpu_set_t but fixed at 1024 and comparable. */
struct util_cpuset {
	uint64_t bits[UTIL_CPUSET_MAX / 64];
};

static inline void util_cpuset_add(struct util_cpuset *set, unsigned cpu)
{
	if (cpu < UTIL_CPUSET_MAX)
		set->bits[cpu / 64] |= 1ull << (cpu % 64);
}

static inline bool util_cpuset_has(const struct util_cpuset *set, unsigned cpu)
{
	return cpu < UTIL_CPUSET_MAX && (set->bits[cpu / 64] >> (cpu % 64)) & 1;
}

unsigned util_cpuset_count(const struct util_cpuset *set);
/* "0-3,6,8-9" (libvirt/taskset list syntax); -EINVAL on anything else or an empty string,
 * -ERANGE for a CPU of 1024 or more. */
int util_cpuset_parse(const char *s, struct util_cpuset *set);
/* The list form of `set`, in canonical ranges; -ENAMETOOLONG if it did not fit. */
int util_cpuset_format(const struct util_cpuset *set, char *buf, size_t size);

/* Formats a message into err (if err and err_len) and returns `code`: the one-line way for
 * parsers to fail with a reason. */
int util_error(char *err, size_t err_len, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- newline-delimited streams (JSON-RPC, the worker protocol) ---- */

/*
 * Called for each complete line, in order: `line` and `len` without the '\n' (not
 * NUL-terminated, valid during the call), err 0.  A line the reader cannot hold gets one call
 * with line NULL and err -EMSGSIZE (longer than the limit: known as soon as it is too long)
 * or -ENOMEM; the rest of that line is skipped.  A non-zero return stops the feed.
 */
typedef int (*util_line_fn)(void *arg, const char *line, size_t len, int err);

struct util_lines {
	size_t max; /* longest line, without its '\n' */
	char *buf;  /* the incomplete line so far */
	size_t len, cap;
	bool skipping; /* inside a line that was refused, until its '\n' */
};

void util_lines_init(struct util_lines *l, size_t max);
void util_lines_fini(struct util_lines *l);
/* Forgets an incomplete line (a new connection starts afresh). */
void util_lines_reset(struct util_lines *l);
/* Splits received bytes into lines for `fn`.  Returns 0, or fn's non-zero return, at once: the
 * bytes after that line and any incomplete line are dropped (the stream is over for its
 * owner; util_lines_reset before feeding it again). */
int util_lines_feed(struct util_lines *l, const void *data, size_t len, util_line_fn fn, void *arg);
/* Bytes of an incomplete line held. */
static inline size_t util_lines_pending(const struct util_lines *l)
{
	return l->len;
}
/* Bytes the reader has allocated (what it costs its owner's memory). */
static inline size_t util_lines_allocated(const struct util_lines *l)
{
	return l->cap;
}
/* Gives back a buffer that a long line grew, once no incomplete line is held in it. */
void util_lines_trim(struct util_lines *l);

/* ---- /proc/PID[/task/TID]/stat ---- */

struct util_proc_stat {
	char state;		 /* field 3: R, S, D, Z, ... */
	int cpu;		 /* field 39: where it runs or last ran */
	uint64_t utime, stime;	 /* fields 14, 15: CPU time in clock ticks */
	uint64_t cutime, cstime; /* fields 16, 17: of its children that it reaped */
	uint64_t start_ticks;	 /* field 22: with the pid, names one process */
};

/* Parses a stat line (the command name in field 2 may hold spaces and parentheses). */
int util_proc_stat_parse(const char *line, struct util_proc_stat *out);
/* Reads /proc/PID/stat (tid 0) or /proc/PID/task/TID/stat. */
int util_proc_stat_read(int pid, int tid, struct util_proc_stat *out);

/* Thread TID of process PID (as this process sees them) in the innermost pid namespace it
 * belongs to: /proc/PID/task/TID/status, the last number of "NSpid:". */
int util_proc_ns_tid(int pid, int tid, int *ns_tid);
/*
 * A path relative to the folder of the running program (/proc/self/exe), if something is
 * there: how a build tree's programs find each other ("lockstep-vm", "../guest") and how an
 * installed one finds its files ("../bin/lockstep-vm", "../share/lockstep/guests", from the
 * install layout), canonical (no "..", no symlink).  -ENOENT when nothing is there.
 */
int util_exe_relative(const char *rel, char *buf, size_t size);

/* Reads a whole file (at most `max` bytes; -EFBIG beyond).  *out is malloc'ed, NUL-terminated. */
int util_read_file(const char *path, size_t max, char **out, size_t *len);
/* The same from an open descriptor (a regular file; not closed). */
int util_read_fd(int fd, size_t max, char **out, size_t *len);

/*
 * Reads a file to its end (at most `max` bytes; -EFBIG beyond), for /proc and sysfs files whose
 * stat() size is 0 or a page.  Opened non-blocking: a device node answers -EAGAIN, not a hang.
 */
int util_read_text(const char *path, size_t max, char **out, size_t *len);

/* mkdir -p: the missing parents with mode 0755, `path` itself with `mode`; 0 if it exists. */
int util_mkdir_p(const char *path, mode_t mode);

#endif /* LOCKSTEP_UTIL_H */
