/*
 * lockstepd's configuration file (default /etc/lockstep/lockstepd.conf; docs/security.md):
 * "key = value" lines, '#' comments, blank lines.  Keys:
 *
 *   allow_path = DIR    a directory beneath which definitions may name files (repeatable)
 *   worker_user = NAME  the unprivileged user VM workers run as (default lockstep-vm)
 *
 * The command line adds to allow_path and overrides worker_user.  An unknown key, a bad value
 * or a file that someone other than root (or lockstepd's own user) could have written is an
 * error that stops lockstepd: the file decides what clients may reach.  Read once at start,
 * before the loop runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define CONF_SIZE_MAX (64u << 10)

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static int apply(struct daemon_options *o, bool user_given, const char *key, const char *value,
		 char *err, size_t err_len)
{
	if (strcmp(key, "allow_path") == 0)
		return sandbox_paths_add(&o->allowed, value, err, err_len);
	if (strcmp(key, "worker_user") == 0) {
		if (!value[0] || util_strlcpy(o->worker_user, user_given ? o->worker_user : value,
					      sizeof(o->worker_user)))
			return util_error(err, err_len, -EINVAL, "bad worker_user \"%.64s\"",
					  value);
		return 0;
	}
	return util_error(err, err_len, -EINVAL,
			  "unknown key \"%.64s\" (known: allow_path, worker_user)", key);
}

/* Who may have written it: root or this daemon's user, and nobody else. */
static int check_owner(int fd, const char *path, char *err, size_t err_len)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return util_error(err, err_len, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return util_error(err, err_len, -EINVAL, "%s is not a regular file", path);
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return util_error(err, err_len, -EPERM,
				  "%s must belong to root (or lockstepd's user) and be writable by "
				  "no one else: it decides which files clients may name",
				  path);
	return 0;
}

int conf_load(struct daemon_options *o, const char *path, bool must_exist, bool user_given,
	      char *err, size_t err_len)
{
	char *text, *line, *next, msg[512];
	size_t len;
	int fd, ret, n = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return util_error(err, err_len, -errno, "%s: %s", path, strerror(errno));
	}
	ret = check_owner(fd, path, err, err_len);
	if (!ret && (ret = util_read_fd(fd, CONF_SIZE_MAX, &text, &len)))
		util_error(err, err_len, ret, "%s: %s", path, strerror(-ret));
	close(fd);
	if (ret)
		return ret;
	for (line = text; line && !ret; line = next) {
		char *eq, *key;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		n++;
		line = trim(line);
		if (!line[0] || line[0] == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			ret = util_error(err, err_len, -EINVAL, "%s:%d: expected \"key = value\"",
					 path, n);
			break;
		}
		*eq = '\0';
		key = trim(line);
		ret = apply(o, user_given, key, trim(eq + 1), msg, sizeof(msg));
		if (ret)
			util_error(err, err_len, ret, "%s:%d: %s", path, n, msg);
	}
	free(text);
	return ret;
}
