/*
 * Serial consoles: reading a VM's console log (the worker writes it) for the front ends —
 * vm.console and its followers (daemon/rpc/follow.c).  Guest output is arbitrary bytes; JSON
 * strings must be UTF-8, so invalid sequences become U+FFFD, and offsets always count the
 * log's bytes.  Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
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
