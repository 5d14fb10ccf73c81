/*
 * The line reader for every newline-delimited stream in the tree: JSON-RPC sessions
 * (api/jsonrpc.c) and the lockstep client (api/client.c), and both ends of the worker
 * protocol (daemon/worker.c, vm/control.c).  Bytes go in as they arrive; complete lines come
 * out through a callback, straight from the caller's buffer when a line lies wholly in it and
 * from the reader's own buffer when it spans reads.  A line longer than the limit is refused
 * as soon as it is known to be too long, so a peer cannot make the reader hold more than the
 * limit.  The owner's thread only; no I/O.  A callback must not free the reader.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void util_lines_init(struct util_lines *l, size_t max)
{
	*l = (struct util_lines){ .max = max };
}

void util_lines_fini(struct util_lines *l)
{
	free(l->buf);
	util_lines_init(l, l->max);
}

void util_lines_reset(struct util_lines *l)
{
	l->len = 0;
	l->skipping = false;
}

#define LINES_KEEP 4096 /* what an idle reader keeps of its buffer */

void util_lines_trim(struct util_lines *l)
{
	if (l->len || l->cap <= LINES_KEEP)
		return;
	free(l->buf);
	l->buf = NULL;
	l->cap = 0;
}

/* Makes room for `more` bytes of the incomplete line; the buffer never exceeds max. */
static int reserve(struct util_lines *l, size_t more)
{
	size_t cap = l->cap ? l->cap : 4096;
	char *p;

	if (l->len + more <= l->cap)
		return 0;
	while (cap < l->len + more)
		cap *= 2;
	if (cap > l->max)
		cap = l->max;
	p = realloc(l->buf, cap ? cap : 1);
	if (!p)
		return -ENOMEM;
	l->buf = p;
	l->cap = cap;
	return 0;
}

int util_lines_feed(struct util_lines *l, const void *data, size_t len, util_line_fn fn, void *arg)
{
	const char *p = data;
	int ret = 0;

	while (len && !ret) {
		const char *nl = memchr(p, '\n', len);
		size_t chunk = nl ? (size_t)(nl - p) : len; /* this line's bytes in `data` */
		size_t used = chunk + (nl ? 1 : 0);

		if (l->skipping) {
			l->skipping = !nl;
		} else if (l->len + chunk > l->max) {
			l->len = 0;
			l->skipping = !nl;
			ret = fn(arg, NULL, 0, -EMSGSIZE);
		} else if (nl && !l->len) {
			ret = fn(arg, p, chunk, 0); /* whole in the caller's buffer: no copy */
		} else if (reserve(l, chunk)) {
			l->len = 0;
			l->skipping = !nl;
			ret = fn(arg, NULL, 0, -ENOMEM);
		} else {
			memcpy(l->buf + l->len, p, chunk);
			l->len += chunk;
			if (nl) {
				size_t line = l->len;

				l->len = 0; /* a callback that resets the reader finds it empty */
				ret = fn(arg, l->buf, line, 0);
			}
		}
		p += used;
		len -= used;
	}
	if (ret)
		util_lines_reset(l);
	return ret;
}
