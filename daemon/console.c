/*
 * Serial consoles: vm.console reads a VM's console log (the worker writes it), and followers
 * get what is appended as "console.output" notifications, polled every 100 ms while anyone
 * follows.  Guest output is arbitrary bytes; JSON strings must be UTF-8, so invalid sequences
 * become U+FFFD and offsets always count the log's bytes.  Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define CONSOLE_POLL_MS 100
#define CONSOLE_CHUNK (64u << 10)

struct follow {
	struct util_list link;	      /* daemon->follows */
	struct util_list client_link; /* client->follows */
	struct client *c;
	struct dvm *vm;
	uint64_t offset;
};

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

/* The bytes as a JSON string, invalid UTF-8 replaced by U+FFFD. */
static json_t *text_json(const unsigned char *buf, size_t len)
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

/* Reads [offset, offset+max) of the VM's console log; *size receives the log's size. */
static int read_log(struct dvm *vm, uint64_t offset, size_t max, unsigned char **data, size_t *len,
		    uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	*data = NULL;
	*len = 0;
	fd = open(dvm_console_path(vm, path, sizeof(path)), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*size = 0;
		return errno == ENOENT ? 0 : -errno; /* never started: an empty console */
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
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
	return ret;
}

void console_read(struct dvm *vm, struct api_call *call, uint64_t offset, uint64_t max)
{
	unsigned char *data;
	uint64_t size;
	size_t len;
	int ret = read_log(vm, offset, (size_t)max, &data, &len, &size);

	if (ret) {
		api_call_fail_errno(call, ret, "cannot read the console of %s", vm->cfg.name);
		return;
	}
	api_call_reply(call,
		       json_pack("{s:s, s:o, s:I, s:I, s:I}", "vm", vm->cfg.name, "data",
				 text_json(data, len), "offset", (json_int_t)offset, "next_offset",
				 (json_int_t)(offset + len), "size", (json_int_t)size));
	free(data);
}

static void poll_followers(uv_timer_t *t)
{
	struct daemon *d = t->data;
	struct util_list *pos;

	util_list_for_each(pos, &d->follows) {
		struct follow *f = util_container_of(pos, struct follow, link);
		unsigned char *data;
		uint64_t size;
		size_t len;

		if (read_log(f->vm, f->offset, CONSOLE_CHUNK, &data, &len, &size))
			continue;
		if (size < f->offset) {
			f->offset = 0; /* the VM restarted with a fresh log */
		} else if (len) {
			api_session_notify(f->c->session, "console.output",
					   json_pack("{s:s, s:o, s:I}", "vm", f->vm->cfg.name,
						     "data", text_json(data, len), "offset",
						     (json_int_t)f->offset));
			f->offset += len;
		}
		free(data);
	}
}

int console_follow(struct client *c, struct dvm *vm, uint64_t offset)
{
	struct daemon *d = c->d;
	struct follow *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->c = c;
	f->vm = vm;
	f->offset = offset;
	util_list_add_tail(&d->follows, &f->link);
	util_list_add_tail(&c->follows, &f->client_link);
	if (!d->console_timer_on) {
		uv_timer_start(&d->console_timer, poll_followers, CONSOLE_POLL_MS, CONSOLE_POLL_MS);
		d->console_timer_on = true;
	}
	return 0;
}

static void drop(struct daemon *d, struct follow *f)
{
	util_list_del(&f->link);
	util_list_del(&f->client_link);
	free(f);
	if (util_list_empty(&d->follows) && d->console_timer_on) {
		uv_timer_stop(&d->console_timer);
		d->console_timer_on = false;
	}
}

void console_unfollow_client(struct client *c)
{
	while (!util_list_empty(&c->follows))
		drop(c->d, util_container_of(c->follows.next, struct follow, client_link));
}

void console_unfollow_vm(struct daemon *d, struct dvm *vm)
{
	struct util_list *pos, *tmp;

	util_list_for_each_safe(pos, tmp, &d->follows) {
		struct follow *f = util_container_of(pos, struct follow, link);

		if (f->vm == vm)
			drop(d, f);
	}
}
