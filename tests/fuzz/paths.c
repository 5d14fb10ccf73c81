/*
 * Fuzz target: the rule for files a client names in a definition (sandbox_paths_check, which
 * lockstepd applies to `kernel` and `serial.log` at define time, and lockstep-vm again before
 * it opens them), with the administrator's allowed directories (sandbox_paths_add) from the
 * same input.
 *
 * Input: lines.  Every line but the last is a directory to allow (refused ones are skipped,
 * as lockstepd refuses to start with them); the last line is the client's path.  A NUL ends
 * a line early, as it ends the C string a JSON or XML parser hands on.
 *
 * Invariants: a directory that was added is absolute and canonical; an accepted path is
 * absolute, has no empty, "." or ".." component and no trailing '/', and begins with the
 * allowed directory it was matched to followed by '/' (so it lies beneath it whatever the
 * file system holds, symbolic links aside, which sandbox_open refuses); a refused path gets
 * -EPERM and a message naming the key, and only when no allowed directory has it beneath.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The rule, written again independently: absolute, every component non-empty, not "." or "..". */
static bool canonical(const char *path)
{
	size_t len = strlen(path);
	size_t start = 1;

	if (len < 2 || path[0] != '/' || path[len - 1] == '/')
		return false;
	for (size_t i = 1; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		if (i == start || (i - start == 1 && path[start] == '.') ||
		    (i - start == 2 && path[start] == '.' && path[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sandbox_paths allowed;
	char line[SANDBOX_DIR_MAX + 64], err[1024];
	size_t pos = 0;
	unsigned which = ~0u;
	int ret;

	memset(&allowed, 0, sizeof(allowed));
	for (;;) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t n = (nl ? (size_t)(nl - data) : size) - pos;

		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, data + pos, n);
		line[n] = '\0';
		if (!nl)
			break;
		pos = (size_t)(nl - data) + 1;
		err[0] = '\0';
		ret = sandbox_paths_add(&allowed, line, err, sizeof(err));
		if (ret && (ret != -EINVAL && ret != -ENAMETOOLONG && ret != -E2BIG))
			abort();
		if (ret && !err[0])
			abort();
	}
	for (unsigned i = 0; i < allowed.nr; i++)
		if (!canonical(allowed.dir[i]))
			abort();

	err[0] = '\0';
	ret = sandbox_paths_check(&allowed, "serial.log", line, &which, err, sizeof(err));
	if (ret == 0) {
		size_t n;

		if (which >= allowed.nr || !canonical(line))
			abort();
		n = strlen(allowed.dir[which]);
		if (strncmp(line, allowed.dir[which], n) != 0 || line[n] != '/')
			abort();
	} else {
		if (ret != -EPERM || !strstr(err, "\"serial.log\""))
			abort();
		/* Nor is anything refused that the rule allows. */
		for (unsigned i = 0; i < allowed.nr && canonical(line); i++) {
			size_t n = strlen(allowed.dir[i]);

			if (strncmp(line, allowed.dir[i], n) == 0 && line[n] == '/')
				abort();
		}
	}
	return 0;
}
