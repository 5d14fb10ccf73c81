/*
 * Reading /proc, /sys, /dev and /lib/modules below the check's root directory: first lines,
 * numbers, Y/N module parameters, symbolic-link names, sorted directory listings, and the
 * kernel command line.  A file that cannot be read is an answer ("absent"), never an error the
 * check stops for.  Called by the gatherers of one check, on the caller's thread.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/host_internal.h"
#include "util/util.h"

bool gather_path(const struct gather *g, const char *path, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s%s", g->root, path);

	if (n < 0 || (size_t)n >= size) {
		buf[0] = '\0';
		return false;
	}
	return true;
}

bool gather_exists(const struct gather *g, const char *path)
{
	char full[PATH_MAX];
	struct stat st;

	/* lstat: the links in /proc/self/ns point at no path. */
	return gather_path(g, path, full, sizeof(full)) && lstat(full, &st) == 0;
}

char *gather_text(const struct gather *g, const char *path)
{
	char full[PATH_MAX];
	char *text = NULL;

	if (gather_path(g, path, full, sizeof(full)) &&
	    util_read_text(full, HOST_TEXT_MAX, &text, NULL) == 0)
		return text;
	return strdup("");
}

int gather_line(const struct gather *g, const char *path, char *buf, size_t size)
{
	char full[PATH_MAX];
	char *text = NULL, *nl;
	int ret;

	buf[0] = '\0';
	if (!gather_path(g, path, full, sizeof(full)))
		return -ENAMETOOLONG;
	ret = util_read_text(full, HOST_TEXT_MAX, &text, NULL);
	if (ret)
		return ret;
	nl = strchr(text, '\n');
	if (nl)
		*nl = '\0';
	ret = util_strlcpy(buf, text, size) ? -EOVERFLOW : 0;
	free(text);
	return ret;
}

int gather_u64(const struct gather *g, const char *path, uint64_t *out)
{
	char line[64];
	int ret = gather_line(g, path, line, sizeof(line));

	if (ret)
		return ret;
	return util_parse_u64(line, 0, UINT64_MAX, out);
}

int gather_bool(const struct gather *g, const char *path, bool *out)
{
	char line[16];
	int ret = gather_line(g, path, line, sizeof(line));

	if (ret)
		return ret;
	if (strcmp(line, "Y") == 0 || strcmp(line, "y") == 0 || strcmp(line, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(line, "N") == 0 || strcmp(line, "n") == 0 || strcmp(line, "0") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

int gather_link_name(const struct gather *g, const char *path, char *buf, size_t size)
{
	char full[PATH_MAX], target[PATH_MAX];
	const char *slash;
	ssize_t n;

	buf[0] = '\0';
	if (!gather_path(g, path, full, sizeof(full)))
		return -ENAMETOOLONG;
	n = readlink(full, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	slash = strrchr(target, '/');
	return util_strlcpy(buf, slash ? slash + 1 : target, size) ? -EOVERFLOW : 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

unsigned gather_list(const struct gather *g, const char *dir, char (*names)[64], unsigned max)
{
	char full[PATH_MAX];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	if (!gather_path(g, dir, full, sizeof(full)) || !(d = opendir(full)))
		return 0;
	while (n < max && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    util_strlcpy(names[n], e->d_name, sizeof(names[n])))
			continue;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	return n;
}

bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += len) {
		bool starts = p == list || p[-1] == ' ' || p[-1] == '\t';
		bool ends = p[len] == '\0' || p[len] == ' ' || p[len] == '\t' || p[len] == '\n';

		if (starts && ends)
			return true;
	}
	return false;
}

bool cmdline_param(const char *cmdline, const char *key, char *val, size_t size)
{
	size_t klen = strlen(key);
	const char *p = cmdline;
	bool found = false;

	val[0] = '\0';
	/* The last occurrence wins, as in the kernel; "--" ends the kernel's part. */
	while (*p) {
		const char *end;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		end = p;
		while (*end && *end != ' ' && *end != '\t' && *end != '\n')
			end++;
		if (end - p == 2 && strncmp(p, "--", 2) == 0)
			break;
		if ((size_t)(end - p) >= klen && strncmp(p, key, klen) == 0 &&
		    (p[klen] == '=' || p + klen == end)) {
			size_t n = p + klen == end ? 0 : (size_t)(end - p) - klen - 1;

			if (n >= size)
				n = size - 1;
			memcpy(val, p + klen + (p + klen == end ? 0 : 1), n);
			val[n] = '\0';
			found = true;
		}
		p = end;
	}
	return found;
}
