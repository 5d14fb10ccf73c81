/*
 * Fuzz target: what lockstepd turns into its own data from a worker's (and its guest's) bytes
 * other than protocol lines — a /proc/PID/stat line, whose comm field the worker names itself
 * (prctl), parsed by util_proc_stat_parse for CPU times, states and start times; and guest
 * console bytes, turned into JSON strings by console_text_json (vm.console, console.output).
 * The input is used whole for both.
 *
 * Invariants: a stat line parses or is refused with -EIO, and a parsed state is the byte after
 * the last ") "; console text is always a JSON string, at most three bytes per input byte, and
 * input that is valid UTF-8 without NUL comes back unchanged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void stat_line(const uint8_t *data, size_t size)
{
	struct util_proc_stat st;
	char *line = malloc(size + 1);
	const char *paren;
	int ret;

	if (!line)
		return;
	memcpy(line, data, size);
	line[size] = '\0';
	ret = util_proc_stat_parse(line, &st);
	paren = strrchr(line, ')');
	if (ret && ret != -EIO)
		abort();
	if (!ret && (!paren || paren[1] != ' ' || st.state != paren[2]))
		abort();
	free(line);
}

/* Whether `p` is UTF-8 as console_text_json keeps it: no NUL, no overlong forms, no
 * surrogates, nothing past U+10FFFF. */
static bool plain_utf8(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len;

		if (p[i] == 0)
			return false;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0)
			len = 2, cp = p[i] & 0x1f;
		else if ((p[i] & 0xf0) == 0xe0)
			len = 3, cp = p[i] & 0x0f;
		else if ((p[i] & 0xf8) == 0xf0)
			len = 4, cp = p[i] & 0x07;
		else
			return false;
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static void console_text(const uint8_t *data, size_t size)
{
	json_t *s = console_text_json(data, size);

	if (!s)
		return; /* out of memory */
	if (!json_is_string(s) || json_string_length(s) > size * 3)
		abort();
	if (plain_utf8(data, size) &&
	    (json_string_length(s) != size || memcmp(json_string_value(s), data, size) != 0))
		abort();
	json_decref(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	stat_line(data, size);
	console_text(data, size);
	return 0;
}
