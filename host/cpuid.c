/*
 * CPUID as the host check sees it: read from this CPU (host userspace CPUID: the host's own
 * view, which is all a host check wants), parsed from a recording, printed as one, and looked
 * up the way the CPU answers, honouring each range's maximum leaf (above it, Intel CPUs return
 * the highest basic leaf's data, which would read as features that are not there).
 */
#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"
#include "util/util.h"

static void add(struct host_cpuid *c, uint32_t leaf, uint32_t subleaf)
{
	struct host_cpuid_leaf *e;

	if (c->n >= HOST_CPUID_MAX)
		return;
	e = &c->e[c->n++];
	e->leaf = leaf;
	e->subleaf = subleaf;
	__cpuid_count(leaf, subleaf, e->eax, e->ebx, e->ecx, e->edx);
}

void host_cpuid_read(struct host_cpuid *out)
{
	static const uint32_t basic[] = { 0x0, 0x1, 0x6, 0x7, 0xb, 0x15, 0x16 };
	static const uint32_t extended[] = { 0x80000000, 0x80000001, 0x80000007, 0x80000008,
					     0x8000000a };
	uint32_t a, b, c, d, max;

	memset(out, 0, sizeof(*out));
	__cpuid(0, max, b, c, d);
	for (size_t i = 0; i < sizeof(basic) / sizeof(basic[0]); i++)
		if (basic[i] <= max)
			add(out, basic[i], 0);
	__cpuid(1, a, b, c, d);
	/* The hypervisor range exists only when CPUID.1:ECX[31] says a hypervisor is there. */
	if (c & CPUID_1_ECX_HYPERVISOR) {
		__cpuid(0x40000000, max, b, c, d);
		for (uint32_t leaf = 0x40000000; leaf <= max && leaf <= 0x40000010; leaf++)
			add(out, leaf, 0);
	}
	__cpuid(0x80000000, max, b, c, d);
	for (size_t i = 0; i < sizeof(extended) / sizeof(extended[0]); i++)
		if (extended[i] <= max && max >= 0x80000000u && max < 0x80010000u)
			add(out, extended[i], 0);
	(void)a;
}

static int parse_hex(const char **p, uint32_t *out)
{
	char *end;
	unsigned long v;

	while (**p == ' ' || **p == '\t')
		(*p)++;
	if ((*p)[0] == '0' && ((*p)[1] == 'x' || (*p)[1] == 'X'))
		*p += 2;
	if (!((**p >= '0' && **p <= '9') || (**p >= 'a' && **p <= 'f') ||
	      (**p >= 'A' && **p <= 'F')))
		return -EINVAL;
	errno = 0;
	v = strtoul(*p, &end, 16);
	if (errno || v > UINT32_MAX)
		return -EINVAL;
	*p = end;
	*out = (uint32_t)v;
	return 0;
}

int host_cpuid_parse(const char *text, struct host_cpuid *out, char *err, size_t err_len)
{
	unsigned line = 0;

	memset(out, 0, sizeof(*out));
	for (const char *p = text; p && *p; line++) {
		const char *nl = strchr(p, '\n');
		struct host_cpuid_leaf e;
		const char *q = p;

		p = nl ? nl + 1 : NULL;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '\n' || *q == '\0' || *q == '#')
			continue;
		if (parse_hex(&q, &e.leaf) || parse_hex(&q, &e.subleaf) || *q++ != ':' ||
		    parse_hex(&q, &e.eax) || parse_hex(&q, &e.ebx) || parse_hex(&q, &e.ecx) ||
		    parse_hex(&q, &e.edx))
			return util_error(err, err_len, -EINVAL,
					  "CPUID line %u: want \"LEAF SUBLEAF: EAX EBX ECX EDX\"",
					  line + 1);
		while (*q == ' ' || *q == '\t' || *q == '\r')
			q++;
		if (*q != '\n' && *q != '\0')
			return util_error(err, err_len, -EINVAL, "CPUID line %u: trailing text",
					  line + 1);
		if (out->n >= HOST_CPUID_MAX)
			return util_error(err, err_len, -E2BIG, "more than %d CPUID leaves",
					  HOST_CPUID_MAX);
		out->e[out->n++] = e;
	}
	return 0;
}

void host_cpuid_print(const struct host_cpuid *c, FILE *out)
{
	for (unsigned i = 0; i < c->n; i++)
		fprintf(out, "0x%08x 0x%02x: 0x%08x 0x%08x 0x%08x 0x%08x\n", c->e[i].leaf,
			c->e[i].subleaf, c->e[i].eax, c->e[i].ebx, c->e[i].ecx, c->e[i].edx);
}

static const struct host_cpuid_leaf *find(const struct host_cpuid *c, uint32_t leaf,
					  uint32_t subleaf)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].leaf == leaf && c->e[i].subleaf == subleaf)
			return &c->e[i];
	return NULL;
}

bool host_cpuid_get(const struct host_cpuid *c, uint32_t leaf, uint32_t subleaf,
		    struct host_cpuid_leaf *out)
{
	uint32_t base = leaf & 0xffff0000u;
	const struct host_cpuid_leaf *range, *e;

	if (!c)
		return false;
	if (base == 0x40000000u) {
		/* Hypervisor leaves are looked up in 0x40000000..0x400000ff alone. */
		range = find(c, 0x40000000u, 0);
		if (!range || (leaf > range->eax && leaf != 0x40000000u))
			return false;
	} else if (leaf != base) {
		range = find(c, base, 0);
		if (!range || leaf > range->eax)
			return false;
	}
	e = find(c, leaf, subleaf);
	if (!e)
		return false;
	*out = *e;
	return true;
}
