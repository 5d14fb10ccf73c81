/*
 * Host CPU sets in the list syntax people type ("0-3,6") and taskset/libvirt print.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

unsigned util_cpuset_count(const struct util_cpuset *set)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(set->bits) / sizeof(set->bits[0]); i++)
		n += (unsigned)__builtin_popcountll(set->bits[i]);
	return n;
}

static int parse_cpu(const char **p, unsigned *cpu)
{
	unsigned v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (unsigned)(*s - '0');
		if (v >= UTIL_CPUSET_MAX)
			return -ERANGE;
		s++;
	}
	*p = s;
	*cpu = v;
	return 0;
}

int util_cpuset_parse(const char *s, struct util_cpuset *set)
{
	struct util_cpuset tmp = { { 0 } };
	const char *p = s;
	int ret;

	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		unsigned lo, hi;

		ret = parse_cpu(&p, &lo);
		if (ret)
			return ret;
		hi = lo;
		if (*p == '-') {
			p++;
			ret = parse_cpu(&p, &hi);
			if (ret)
				return ret;
			if (hi < lo)
				return -EINVAL;
		}
		for (unsigned c = lo; c <= hi; c++)
			util_cpuset_add(&tmp, c);
		if (*p == '\0')
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
	*set = tmp;
	return 0;
}

int util_cpuset_format(const struct util_cpuset *set, char *buf, size_t size)
{
	size_t used = 0;
	bool first = true;

	if (size == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	for (unsigned c = 0; c < UTIL_CPUSET_MAX; c++) {
		unsigned end = c;
		int n;

		if (!util_cpuset_has(set, c))
			continue;
		while (end + 1 < UTIL_CPUSET_MAX && util_cpuset_has(set, end + 1))
			end++;
		if (end == c)
			n = snprintf(buf + used, size - used, "%s%u", first ? "" : ",", c);
		else
			n = snprintf(buf + used, size - used, "%s%u-%u", first ? "" : ",", c, end);
		if (n < 0 || (size_t)n >= size - used)
			return -ENAMETOOLONG;
		used += (size_t)n;
		first = false;
		c = end;
	}
	return 0;
}
