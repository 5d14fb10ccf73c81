/*
 * The check as a whole: setting up one gather (root, CPUID vendor, /proc/cpuinfo flags, the
 * kernel command line, /proc/interrupts, the kernel log's IOMMU lines), running the groups of
 * facts in order, and the report as JSON for host.check and its summary for daemon.info.
 * Pure apart from reading files below the root; called on the caller's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/host_internal.h"
#include "util/util.h"

static const char *const verdict_names[] = { "pass", "warn", "fail", "n/a" };
static const char *const flavour_names[] = { "none", "vmx", "svm", "pvm", "unknown" };

const char *host_verdict_name(enum host_verdict v)
{
	return (unsigned)v < 4 ? verdict_names[v] : "?";
}

const char *host_flavour_name(enum host_flavour f)
{
	return (unsigned)f < 5 ? flavour_names[f] : "?";
}

struct host_fact *fact_new(struct gather *g, const char *id, enum host_verdict verdict)
{
	struct host_fact *f = g->r->nr < HOST_FACTS_MAX ? &g->r->fact[g->r->nr++] : &g->spare;

	memset(f, 0, sizeof(*f));
	util_strlcpy(f->id, id, sizeof(f->id));
	f->verdict = verdict;
	return f;
}

/* Formats into a fixed field; a value too long is cut at a character, never mid-escape. */
static void set(char *field, size_t size, const char *fmt, va_list ap)
{
	vsnprintf(field, size, fmt, ap);
}

#define FACT_SETTER(name, field)                             \
	void name(struct host_fact *f, const char *fmt, ...) \
	{                                                    \
		va_list ap;                                  \
                                                             \
		va_start(ap, fmt);                           \
		set(f->field, sizeof(f->field), fmt, ap);    \
		va_end(ap);                                  \
	}

FACT_SETTER(fact_value, value)
FACT_SETTER(fact_source, source)
FACT_SETTER(fact_meaning, meaning)
FACT_SETTER(fact_fix, fix)

void fact_detail(struct host_fact *f, const char *fmt, ...)
{
	size_t len = strlen(f->details);
	va_list ap;

	if (len && len + 1 < sizeof(f->details))
		f->details[len++] = '\n';
	if (len + 1 >= sizeof(f->details))
		return;
	va_start(ap, fmt);
	vsnprintf(f->details + len, sizeof(f->details) - len, fmt, ap);
	va_end(ap);
}

bool gather_cpuid(const struct gather *g, uint32_t leaf, uint32_t subleaf,
		  struct host_cpuid_leaf *out)
{
	return host_cpuid_get(g->in->cpuid, leaf, subleaf, out);
}

const struct host_kvm *gather_kvm(const struct gather *g)
{
	const struct host_kvm *k = g->in->kvm;

	return k && !k->error[0] ? k : NULL;
}

/* "flags : ..." and "vmx flags : ..." of the first processor in /proc/cpuinfo. */
static void read_cpuinfo(struct gather *g)
{
	char *text = gather_text(g, "/proc/cpuinfo");
	bool flags = false;

	for (char *line = text, *next; line && *line; line = next) {
		char *colon, *nl = strchr(line, '\n');
		size_t key_len;

		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		if (*line == '\0' && flags)
			break; /* the end of the first processor's block */
		colon = strchr(line, ':');
		if (!colon)
			continue;
		key_len = (size_t)(colon - line);
		while (key_len && (line[key_len - 1] == ' ' || line[key_len - 1] == '\t'))
			key_len--;
		if (key_len == 5 && strncmp(line, "flags", 5) == 0) {
			util_strlcpy(g->cpu_flags, colon + 1 + (colon[1] == ' '),
				     sizeof(g->cpu_flags));
			flags = true;
		} else if (key_len == 9 && strncmp(line, "vmx flags", 9) == 0) {
			util_strlcpy(g->vmx_flags, colon + 1 + (colon[1] == ' '),
				     sizeof(g->vmx_flags));
			g->has_vmx_flags = true;
		}
	}
	free(text);
}

/* Keeps a kernel log line if it speaks of IOMMUs or interrupt remapping. */
static void keep_kmsg_line(char **out, size_t *len, size_t *cap, const char *line)
{
	static const char *const marks[] = { "DMAR",  "AMD-Vi",	   "IOMMU",
					     "iommu", "remapping", "IO_PAGE_FAULT" };
	const char *msg = strchr(line, ';');
	size_t l;

	if (line[0] == ' ')
		return; /* a record's KEY=value continuation */
	msg = msg ? msg + 1 : line;
	l = strlen(msg);
	for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
		if (!strstr(msg, marks[m]))
			continue;
		if (*len + l + 2 > *cap) {
			char *bigger;

			if (*len + l + 2 > (1u << 20))
				return;
			bigger = realloc(*out, *cap * 2 + l + 2);
			if (!bigger)
				return;
			*out = bigger;
			*cap = *cap * 2 + l + 2;
		}
		memcpy(*out + *len, msg, l);
		*len += l;
		(*out)[(*len)++] = '\n';
		(*out)[*len] = '\0';
		return;
	}
}

/*
 * The kernel log's lines about IOMMUs and interrupt remapping, from /dev/kmsg opened
 * non-blocking: each read() returns one record, EAGAIN at the end, EPIPE when the ring
 * overwrote the record we were at.  A recorded tree holds the records as a plain file.
 */
static char *read_kmsg(const struct gather *g)
{
	size_t len = 0, cap = 4096;
	char path[PATH_MAX], rec[2048];
	char *out = calloc(1, cap), *text;
	struct stat st;
	int fd;

	if (!out || !gather_path(g, "/dev/kmsg", path, sizeof(path)))
		return out;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return out;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		close(fd);
		text = gather_text(g, "/dev/kmsg");
		for (char *line = text, *next; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			keep_kmsg_line(&out, &len, &cap, line);
		}
		free(text);
		return out;
	}
	for (int records = 0; records < 100000; records++) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		char *nl;

		if (n < 0 && (errno == EPIPE || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		nl = strchr(rec, '\n');
		if (nl)
			*nl = '\0';
		keep_kmsg_line(&out, &len, &cap, rec);
	}
	close(fd);
	return out;
}

struct gather *gather_new(const struct host_input *in, struct host_report *r)
{
	struct gather *g = calloc(1, sizeof(*g));
	struct host_cpuid_leaf l;

	if (!g)
		return NULL;
	g->in = in;
	g->r = r;
	util_strlcpy(g->root, in->root ? in->root : "", sizeof(g->root));
	if (gather_cpuid(g, 0, 0, &l)) {
		memcpy(g->vendor, &l.ebx, 4);
		memcpy(g->vendor + 4, &l.edx, 4);
		memcpy(g->vendor + 8, &l.ecx, 4);
	}
	read_cpuinfo(g);
	g->cmdline = gather_text(g, "/proc/cmdline");
	g->interrupts = gather_text(g, "/proc/interrupts");
	g->kmsg = read_kmsg(g);
	if (!g->cmdline || !g->interrupts || !g->kmsg) {
		gather_free(g);
		return NULL;
	}
	return g;
}

void gather_free(struct gather *g)
{
	if (!g)
		return;
	free(g->cmdline);
	free(g->interrupts);
	free(g->kmsg);
	free(g);
}

void host_check(const struct host_input *in, struct host_report *out)
{
	struct gather *g;

	memset(out, 0, sizeof(*out));
	g = gather_new(in, out);
	if (!g) {
		/* Without memory for the gather: one fact that says so. */
		out->nr = 1;
		util_strlcpy(out->fact[0].id, "host.check", sizeof(out->fact[0].id));
		out->fact[0].verdict = HOST_FAIL;
		util_strlcpy(out->fact[0].value, "out of memory", sizeof(out->fact[0].value));
		return;
	}
	if (in->kvm && !in->kvm->error[0])
		out->kvm_probed = true;
	else
		util_strlcpy(out->kvm_error,
			     in->kvm	   ? in->kvm->error :
			     in->kvm_error ? in->kvm_error :
					     "not probed yet",
			     sizeof(out->kvm_error));
	gather_kvm_facts(g);
	gather_cpu_facts(g);
	gather_iommu_facts(g);
	gather_sandbox_facts(g);
	gather_free(g);
}

const struct host_fact *host_report_find(const struct host_report *r, const char *id)
{
	for (unsigned i = 0; i < r->nr; i++)
		if (strcmp(r->fact[i].id, id) == 0)
			return &r->fact[i];
	return NULL;
}

static json_t *lines_json(const char *text)
{
	json_t *list = json_array();

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		json_array_append_new(list, json_stringn(p, n));
		p = nl ? nl + 1 : NULL;
	}
	return list;
}

static json_t *fact_json(const struct host_fact *f)
{
	const char *dot = strchr(f->id, '.');

	return json_pack("{s:s, s:s#, s:s, s:s, s:s, s:s, s:s?, s:o}", "id", f->id, "group", f->id,
			 dot ? (int)(dot - f->id) : (int)strlen(f->id), "verdict",
			 host_verdict_name(f->verdict), "value", f->value, "source", f->source,
			 "meaning", f->meaning, "fix", f->fix[0] ? f->fix : NULL, "details",
			 lines_json(f->details));
}

json_t *host_summary_json(const struct host_report *r)
{
	unsigned count[4] = { 0 };
	json_t *attention = json_array();

	for (unsigned i = 0; i < r->nr; i++) {
		count[r->fact[i].verdict & 3]++;
		if (r->fact[i].verdict == HOST_WARN || r->fact[i].verdict == HOST_FAIL)
			json_array_append_new(attention, json_string(r->fact[i].id));
	}
	return json_pack("{s:s, s:i, s:i, s:i, s:i, s:b, s:s, s:b, s:s?, s:o}", "flavour",
			 host_flavour_name(r->flavour), "pass", count[HOST_PASS], "warn",
			 count[HOST_WARN], "fail", count[HOST_FAIL], "na", count[HOST_NA],
			 "ple_expected", r->ple_expected, "ple", r->ple_why, "kvm_probed",
			 r->kvm_probed, "kvm_error", r->kvm_probed ? NULL : r->kvm_error,
			 "attention", attention);
}

json_t *host_report_json(const struct host_report *r)
{
	json_t *facts = json_array();

	for (unsigned i = 0; i < r->nr; i++)
		json_array_append_new(facts, fact_json(&r->fact[i]));
	return json_pack("{s:o, s:o}", "summary", host_summary_json(r), "facts", facts);
}
