/*
 * Files a client names: the directories the administrator allows (lockstepd --allow-path,
 * allow_path in lockstepd.conf) and the one way such a file is opened.  lockstepd checks a
 * definition's paths with sandbox_paths_check() when it is defined; lockstep-vm opens them with
 * sandbox_open() before it drops root, which checks again (the text may have been allowed under
 * another configuration) and lets the kernel enforce the rest: no symbolic link anywhere on the
 * way, no escape from the directory, the worker user's permissions, no blocking on a FIFO.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/util.h"

/* Absolute, no empty, "." or ".." component, no trailing '/'.  "/" itself is not. */
static bool canonical(const char *path)
{
	const char *c = path + 1;

	if (path[0] != '/')
		return false;
	for (;;) {
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!*end)
			return true;
		c = end + 1;
	}
}

int sandbox_paths_add(struct sandbox_paths *p, const char *dir, char *err, size_t err_len)
{
	if (strcmp(dir, "/") == 0)
		return util_error(err, err_len, -EINVAL,
				  "allowed directory \"/\" would allow every file: name the "
				  "directories clients may use");
	if (!canonical(dir))
		return util_error(err, err_len, -EINVAL,
				  "allowed directory \"%.200s\" must be an absolute path without "
				  "\".\", \"..\", \"//\" or a trailing \"/\"",
				  dir);
	if (strlen(dir) >= SANDBOX_DIR_MAX)
		return util_error(err, err_len, -ENAMETOOLONG,
				  "allowed directory \"%.200s...\" is longer than %d bytes", dir,
				  SANDBOX_DIR_MAX - 1);
	for (unsigned i = 0; i < p->nr; i++)
		if (strcmp(p->dir[i], dir) == 0)
			return 0;
	if (p->nr == SANDBOX_PATHS_MAX)
		return util_error(err, err_len, -E2BIG, "at most %d allowed directories",
				  SANDBOX_PATHS_MAX);
	strcpy(p->dir[p->nr++], dir);
	return 0;
}

void sandbox_paths_format(const struct sandbox_paths *p, char *buf, size_t size)
{
	size_t len = 0;

	snprintf(buf, size, "none");
	for (unsigned i = 0; i < p->nr && len < size; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", p->dir[i]);

		if (n < 0)
			break;
		len += (size_t)n;
	}
}

int sandbox_paths_check(const struct sandbox_paths *p, const char *key, const char *path,
			unsigned *which, char *err, size_t err_len)
{
	char allowed[512];

	if (!canonical(path))
		return util_error(err, err_len, -EPERM,
				  "\"%s\": \"%.200s\" must be an absolute path without \".\", "
				  "\"..\", \"//\" or a trailing \"/\"",
				  key, path);
	for (unsigned i = 0; i < p->nr; i++) {
		size_t n = strlen(p->dir[i]);

		/* canonical() made sure that what follows the '/' is a whole component. */
		if (strncmp(path, p->dir[i], n) == 0 && path[n] == '/') {
			if (which)
				*which = i;
			return 0;
		}
	}
	if (!p->nr)
		return util_error(
			err, err_len, -EPERM,
			"\"%s\": \"%.200s\" is refused: lockstepd allows no client-chosen "
			"files (the administrator names directories with --allow-path or "
			"allow_path in lockstepd.conf)",
			key, path);
	sandbox_paths_format(p, allowed, sizeof(allowed));
	return util_error(err, err_len, -EPERM,
			  "\"%s\": \"%.200s\" is not beneath a directory lockstepd allows (%s)",
			  key, path, allowed);
}

struct fs_identity {
	int ngroups;
	gid_t groups[SANDBOX_GROUPS_MAX];
};

/* The thread takes `u`'s file-system identity; what it had is saved in `saved`. */
static int become(const struct sandbox_user *u, struct fs_identity *saved)
{
	saved->ngroups = getgroups(SANDBOX_GROUPS_MAX, saved->groups);
	if (saved->ngroups < 0)
		return -errno;
	if (setgroups((size_t)u->ngroups, u->groups) < 0)
		return -errno;
	setfsgid(u->gid);
	setfsuid(u->uid);
	/* setfsuid() reports no error: ask for the value it now has. */
	if ((uid_t)setfsuid((uid_t)-1) != u->uid || (gid_t)setfsgid((gid_t)-1) != u->gid)
		return -EPERM;
	return 0;
}

static void restore(const struct fs_identity *saved)
{
	setfsuid(geteuid());
	setfsgid(getegid());
	if (setgroups((size_t)saved->ngroups, saved->groups) < 0) {
		/* Root could set them; a process that is not root took no identity. */
	}
}

static int open_beneath(const char *dir, const char *rel, int flags, mode_t mode, int *dir_errno)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int dfd, fd;

	*dir_errno = 0;
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		*dir_errno = errno;
		return -errno;
	}
	fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	if (fd < 0)
		fd = -errno;
	close(dfd);
	return fd;
}

int sandbox_open(const struct sandbox_paths *paths, const struct sandbox_user *as, const char *key,
		 const char *path, int flags, mode_t mode, char *err, size_t err_len)
{
	struct fs_identity saved;
	struct stat st;
	unsigned which;
	int fd, ret, dir_errno;

	ret = sandbox_paths_check(paths, key, path, &which, err, err_len);
	if (ret)
		return ret;
	if (as) {
		ret = become(as, &saved);
		if (ret) {
			restore(&saved);
			return util_error(err, err_len, ret,
					  "\"%s\": cannot take the identity of user %s to open "
					  "%.200s: %s",
					  key, as->name, path, strerror(-ret));
		}
	}
	fd = open_beneath(paths->dir[which], path + strlen(paths->dir[which]) + 1, flags, mode,
			  &dir_errno);
	if (as)
		restore(&saved);
	if (fd < 0 && dir_errno)
		return util_error(err, err_len, fd, "\"%s\": allowed directory %s: %s%s%s", key,
				  paths->dir[which], strerror(dir_errno), as ? " for user " : "",
				  as ? as->name : "");
	if (fd == -ELOOP || fd == -EXDEV)
		return util_error(err, err_len, fd,
				  "\"%s\": %.200s is refused: a symbolic link or a way out of %s "
				  "is on its path",
				  key, path, paths->dir[which]);
	if (fd < 0)
		return util_error(err, err_len, fd, "\"%s\": %.200s: %s%s%s%s", key, path,
				  strerror(-fd), as ? " (opened as user " : "", as ? as->name : "",
				  as ? ")" : "");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return util_error(err, err_len, -EINVAL, "\"%s\": %.200s is not a regular file",
				  key, path);
	}
	return fd;
}
