/*
 * Serial consoles.  Two ways in for the front ends:
 *  - the console log, which the worker writes: vm.console reads it and its followers
 *    (daemon/rpc/follow.c) poll it;
 *  - live sessions: one client at a time attached to a running VM's console through the
 *    worker's console socket (NAME.cons, vm/console.c on the other end), getting the output
 *    as the guest writes it and typing into the guest.  `lockstep vm console` (JSON-RPC) and
 *    `virsh console` (a libvirt stream) both end here; ops_console_open() applies the rules.
 * Guest output is arbitrary bytes; JSON strings must be UTF-8, so invalid sequences become
 * U+FFFD, and offsets always count the log's bytes.
 *
 * A session outlives neither its VM's worker (it reads what the worker wrote, then ends) nor
 * its client (who closes it).  Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t console_utf8_tail(const unsigned char *buf, size_t len)
{
	/* Look back at most 3 bytes for a lead byte whose sequence is not complete yet. */
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = buf[len - back];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: keep looking for its lead */
		need = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
		return need > back ? back : 0;
	}
	return 0;
}

json_t *console_text_json(const unsigned char *buf, size_t len)
{
	char *out = malloc(len * 3 + 1);
	size_t o = 0;
	json_t *s;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(buf + i, len - i);

		if (n == 0 || (n == 1 && buf[i] == 0)) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(out + o, buf + i, n);
		o += n;
		i += n;
	}
	s = json_stringn(out, o);
	free(out);
	return s;
}

int console_read(const struct dvm *vm, uint64_t offset, size_t max, unsigned char **data,
		 size_t *len, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	*data = NULL;
	*len = 0;
	/* Never through a link, never waiting on a FIFO: the loop thread must not block. */
	fd = open(store_console_path(vm, path, sizeof(path)),
		  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*size = 0;
		return errno == ENOENT ? 0 : -errno; /* never started: an empty console */
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*size = 0;
		ret = -EINVAL;
		goto out;
	}
	*size = (uint64_t)st.st_size;
	if (offset >= *size)
		goto out;
	if (max > *size - offset)
		max = (size_t)(*size - offset);
	*data = malloc(max ? max : 1);
	if (!*data) {
		ret = -ENOMEM;
		goto out;
	}
	n = pread(fd, *data, max, (off_t)offset);
	if (n < 0)
		ret = -errno;
	else
		*len = (size_t)n;
out:
	close(fd);
	if (ret) {
		free(*data);
		*data = NULL;
	}
	return ret;
}

/* ---- live sessions ---- */

#define SESSION_READ_BUF (64u << 10)
#define SESSION_BACKLOG_MAX (1u << 20) /* typed bytes the worker has not taken yet */

struct console_session {
	struct dvm *vm; /* NULL once the VM's worker is gone */
	struct console_client client;
	bool client_gone; /* closed by its client: nothing more is delivered */
	bool ended;	  /* `ended` was called (or will not be) */
	bool stopped;	  /* it ends because the VM stopped */
	char why[160];	  /* why it ends, once known */
	uv_pipe_t pipe;
	uv_connect_t connect;
	bool connected;
	size_t backlog;
	unsigned char rbuf[SESSION_READ_BUF];
};

struct session_write {
	uv_write_t req;
	struct console_session *s;
	size_t len;
	char data[];
};

static void session_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Tells the client (once) and lets the session go. */
static void session_end(struct console_session *s, const char *why)
{
	if (s->vm && s->vm->console == s)
		s->vm->console = NULL;
	s->vm = NULL;
	if (!s->ended) {
		s->ended = true;
		if (!s->client_gone && s->client.ended)
			s->client.ended(s->client.arg, s->stopped, s->why[0] ? s->why : why);
	}
	if (!uv_is_closing((uv_handle_t *)&s->pipe))
		uv_close((uv_handle_t *)&s->pipe, session_closed);
}

static void session_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct console_session *s = h->data;

	*buf = uv_buf_init((char *)s->rbuf, sizeof(s->rbuf));
}

static void session_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct console_session *s = stream->data;
	char why[160];

	if (n > 0) {
		if (!s->client_gone && s->client.output)
			s->client.output(s->client.arg, (const unsigned char *)buf->base,
					 (size_t)n);
		return;
	}
	if (n == 0)
		return;
	if (n == UV_EOF) {
		snprintf(why, sizeof(why), "the VM stopped");
		s->stopped = true;
	} else {
		snprintf(why, sizeof(why), "the console connection failed: %s",
			 uv_strerror((int)n));
	}
	session_end(s, why);
}

static void session_connected(uv_connect_t *req, int status)
{
	struct console_session *s = req->data;
	char why[160];

	if (s->ended)
		return;
	if (status < 0) {
		snprintf(why, sizeof(why), "cannot reach the VM's console: %s",
			 uv_strerror(status));
		session_end(s, why);
		return;
	}
	s->connected = true;
	uv_read_start((uv_stream_t *)&s->pipe, session_alloc, session_read);
}

int console_session_open(struct dvm *vm, const struct console_client *client,
			 struct console_session **out)
{
	struct console_session *s = calloc(1, sizeof(*s));
	char path[PATH_MAX];
	int ret;

	if (!s)
		return -ENOMEM;
	ret = uv_pipe_init(vm->d->loop, &s->pipe, 0);
	if (ret) {
		free(s);
		return ret;
	}
	s->pipe.data = s;
	s->connect.data = s;
	s->vm = vm;
	s->client = *client;
	store_run_path(vm, ".cons", path, sizeof(path));
	/* The worker's socket is its to create; a failed connect ends the session later. */
	uv_pipe_connect(&s->connect, &s->pipe, path, session_connected);
	vm->console = s;
	*out = s;
	return 0;
}

static void session_wrote(uv_write_t *req, int status)
{
	struct session_write *w = util_container_of(req, struct session_write, req);
	struct console_session *s = w->s;

	s->backlog -= w->len;
	free(w);
	if (status < 0 && status != UV_ECANCELED && !s->ended) {
		char why[160];

		snprintf(why, sizeof(why), "the console connection failed: %s",
			 uv_strerror(status));
		session_end(s, why);
	}
}

int console_session_write(struct console_session *s, const void *data, size_t len)
{
	struct session_write *w;
	uv_buf_t buf;
	int ret;

	if (s->ended)
		return -EPIPE;
	if (!len)
		return 0;
	if (s->backlog + len > SESSION_BACKLOG_MAX)
		return -ENOBUFS;
	w = malloc(sizeof(*w) + len);
	if (!w)
		return -ENOMEM;
	w->s = s;
	w->len = len;
	memcpy(w->data, data, len);
	buf = uv_buf_init(w->data, (unsigned)len);
	/* Before the connection is up libuv queues writes on the pipe: nothing is lost. */
	ret = uv_write(&w->req, (uv_stream_t *)&s->pipe, &buf, 1, session_wrote);
	if (ret) {
		free(w);
		return ret;
	}
	s->backlog += len;
	return 0;
}

void console_session_close(struct console_session *s)
{
	if (!s)
		return;
	s->client_gone = true;
	session_end(s, "closed by its client");
}

void console_session_end(struct dvm *vm, const char *why)
{
	if (vm->console)
		session_end(vm->console, why);
}

void console_vm_stopped(struct dvm *vm)
{
	struct console_session *s = vm->console;

	if (!s)
		return;
	/* What the worker wrote last is still in the socket: read it, then end at EOF. */
	vm->console = NULL;
	s->vm = NULL;
	s->stopped = true;
	util_strlcpy(s->why, "the VM stopped", sizeof(s->why));
	if (!s->connected)
		session_end(s, s->why);
}
