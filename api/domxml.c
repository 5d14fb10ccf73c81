/*
 * libvirt domain XML -> struct vmdef (libxml2), for DEFINE_XML and CREATE_XML.
 *
 * The document is parsed into a scratch struct vmdef and checked with vmdef_validate; the
 * caller's config changes only when all of it was accepted, so a bad document defines nothing.
 * What lockstep reads: name, uuid, memory/currentMemory, vcpu (+cpuset), cputune/vcpupin,
 * os/type|kernel|initrd|cmdline, on_poweroff/on_reboot/on_crash, devices/serial|console (a file),
 * devices/hostdev (PCI passthrough: managed, the vfio driver, host and guest addresses, the
 * ROM), and lockstep's own settings in <metadata> under DOMXML_NAMESPACE (a hostdev's reset
 * among them).
 * Elements that only describe the guest platform (features, clock, cpu, pm, ...) are
 * accepted and ignored; elements that ask for something lockstep cannot do (a disk, a NIC,
 * a firmware loader) are errors that name them, rather than silently dropped configuration.
 *
 * Documents with a DOCTYPE are refused: entity expansion is how XML inputs blow up.  Called by
 * daemon/virt/define.c and daemon/virt/lifecycle.c, and the domxml fuzzer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>

#include "api/domxml_internal.h"
#include "api/virt.h"

struct parse {
	char *err;
	size_t err_len;
	struct domxml_hostdev_meta hostdevs; /* from <metadata>, applied at the end */
	bool has_current;
	uint64_t current_memory;
	char console_path[4096];
};

/* Fails the parse with a message naming what is wrong; -EINVAL. */
#define fail(p, ...) util_error((p)->err, (p)->err_len, -EINVAL, __VA_ARGS__)

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !n->ns && strcmp((const char *)n->name, name) == 0;
}

/* The element's own text (text and CDATA children), trimmed; malloc'ed. */
static char *text_of(const xmlNode *n)
{
	size_t len = 0, start, end;
	char *s = malloc(1), *t;

	if (!s)
		return NULL;
	for (const xmlNode *c = n->children; c; c = c->next) {
		size_t add;

		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
			continue;
		add = strlen((const char *)c->content);
		t = realloc(s, len + add + 1);
		if (!t) {
			free(s);
			return NULL;
		}
		s = t;
		memcpy(s + len, c->content, add);
		len += add;
	}
	s[len] = '\0';
	for (start = 0; start < len && strchr(" \t\r\n", s[start]); start++)
		;
	for (end = len; end > start && strchr(" \t\r\n", s[end - 1]); end--)
		;
	memmove(s, s + start, end - start);
	s[end - start] = '\0';
	return s;
}

/* An attribute's value (malloc'ed) or NULL when absent. */
static char *attr(const xmlNode *n, const char *name)
{
	return (char *)xmlGetNoNsProp(n, (const xmlChar *)name);
}

static int get_text(struct parse *p, const xmlNode *n, const char *path, size_t max, char **out)
{
	char *s = text_of(n);

	if (!s)
		return -ENOMEM;
	if (strlen(s) > max) {
		free(s);
		return fail(p, "<%s> is longer than %zu characters", path, max);
	}
	free(*out);
	*out = s;
	return 0;
}

static int get_number(struct parse *p, const char *path, const char *s, uint64_t min, uint64_t max,
		      uint64_t *out)
{
	if (!s || util_parse_u64(s, min, max, out))
		return fail(p, "%s must be a number from %llu to %llu (got '%.32s')", path,
			    (unsigned long long)min, (unsigned long long)max, s ? s : "");
	return 0;
}

/* Optional attribute that must equal one value if present. */
static int expect_attr(struct parse *p, const xmlNode *n, const char *path, const char *name,
		       const char *want)
{
	char *v = attr(n, name);
	int ret = 0;

	if (v && strcmp(v, want) != 0)
		ret = fail(p, "%s %s='%.40s' is not supported: lockstep has only '%s'", path, name,
			   v, want);
	xmlFree(v);
	return ret;
}

/* libvirt's scaled integers: a unit attribute (default KiB), decimal or binary multiples. */
static int get_memory(struct parse *p, const xmlNode *n, const char *path, uint64_t *bytes)
{
	static const struct {
		const char *name;
		uint64_t scale;
	} units[] = {
		{ "b", 1 },	     { "bytes", 1 },	    { "KB", 1000 },
		{ "k", 1024 },	     { "KiB", 1024 },	    { "MB", 1000000 },
		{ "M", 1u << 20 },   { "MiB", 1u << 20 },   { "GB", 1000000000 },
		{ "G", 1u << 30 },   { "GiB", 1u << 30 },   { "TB", 1000000000000ull },
		{ "T", 1ull << 40 }, { "TiB", 1ull << 40 },
	};
	char *unit = attr(n, "unit"), *s = text_of(n);
	uint64_t scale = 0, value;
	int ret;

	if (!s) {
		xmlFree(unit);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(unit ? unit : "KiB", units[i].name) == 0)
			scale = units[i].scale;
	if (!scale)
		ret = fail(p, "<%s unit='%.16s'>: unknown unit", path, unit);
	else
		ret = get_number(p, path, s, 0, UINT64_MAX / scale, &value);
	if (!ret)
		*bytes = value * scale;
	xmlFree(unit);
	free(s);
	return ret;
}

static int get_cpuset(struct parse *p, const char *path, const char *s, struct util_cpuset *out)
{
	if (util_cpuset_parse(s, out))
		return fail(p, "%s must be a host CPU list such as '0-3,6' (got '%.64s')", path, s);
	return 0;
}

static int parse_vcpu(struct parse *p, const xmlNode *n, struct vmdef *cfg)
{
	char *placement = attr(n, "placement"), *cpuset = attr(n, "cpuset"),
	     *current = attr(n, "current"), *s = text_of(n);
	uint64_t count, cur;
	int ret = s ? 0 : -ENOMEM;

	if (!ret)
		ret = get_number(p, "<vcpu>", s, 1, VMDEF_VCPUS_MAX, &count);
	if (!ret && placement && strcmp(placement, "static") != 0)
		ret = fail(p,
			   "<vcpu placement='%.16s'> is not supported: lockstep places vCPUs by "
			   "its scheduling policy (see <metadata>)",
			   placement);
	if (!ret && current && !(ret = get_number(p, "<vcpu current>", current, 1, count, &cur)) &&
	    cur != count)
		ret = fail(p, "<vcpu current='%llu'>: lockstep has no vCPU hotplug; use %llu",
			   (unsigned long long)cur, (unsigned long long)count);
	if (!ret && cpuset) {
		ret = get_cpuset(p, "<vcpu cpuset>", cpuset, &cfg->sched.cpus);
		cfg->sched.has_cpus = !ret;
	}
	if (!ret)
		cfg->vcpus = (uint32_t)count;
	xmlFree(placement);
	xmlFree(cpuset);
	xmlFree(current);
	free(s);
	return ret;
}

static int add_pin(struct parse *p, const xmlNode *n, struct vmdef_sched *sc)
{
	char *vcpu = attr(n, "vcpu"), *cpuset = attr(n, "cpuset");
	struct vmdef_pin *pins;
	uint64_t v;
	int ret;

	ret = get_number(p, "<vcpupin vcpu>", vcpu, 0, VMDEF_VCPUS_MAX - 1, &v);
	if (!ret && !cpuset)
		ret = fail(p, "<vcpupin vcpu='%llu'> needs a cpuset", (unsigned long long)v);
	if (!ret && sc->nr_pins >= VMDEF_VCPUS_MAX)
		ret = fail(p, "<cputune> has more than %d <vcpupin>", VMDEF_VCPUS_MAX);
	if (!ret) {
		pins = realloc(sc->pins, (sc->nr_pins + 1) * sizeof(*pins));
		if (!pins) {
			ret = -ENOMEM;
		} else {
			sc->pins = pins;
			pins[sc->nr_pins].vcpu = (uint32_t)v;
			ret = get_cpuset(p, "<vcpupin cpuset>", cpuset, &pins[sc->nr_pins].cpus);
			sc->nr_pins += !ret;
		}
	}
	xmlFree(vcpu);
	xmlFree(cpuset);
	return ret;
}

static int parse_cputune(struct parse *p, const xmlNode *n, struct vmdef *cfg)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		int ret;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (!is(c, "vcpupin"))
			return fail(p,
				    "<cputune><%s> is not supported: lockstep reads <vcpupin> only",
				    (const char *)c->name);
		ret = add_pin(p, c, &cfg->sched);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_os(struct parse *p, const xmlNode *n, struct vmdef *cfg)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		int ret = 0;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, "type")) {
			char *t = text_of(c);

			if (!t)
				return -ENOMEM;
			if (strcmp(t, "hvm") != 0)
				ret = fail(p, "<os><type>%.16s</type>: lockstep runs 'hvm' guests",
					   t);
			free(t);
			if (!ret)
				ret = expect_attr(p, c, "<os><type>", "arch", "x86_64");
			if (!ret)
				ret = expect_attr(p, c, "<os><type>", "machine", "lockstep");
		} else if (is(c, "kernel")) {
			/* Whether the path will do is the daemon's rule (daemon/ops.c), for
			 * every front end alike. */
			ret = get_text(p, c, "kernel", 4095, &cfg->kernel);
		} else if (is(c, "initrd")) {
			ret = get_text(p, c, "initrd", 4095, &cfg->initrd);
		} else if (is(c, "cmdline")) {
			ret = get_text(p, c, "cmdline", VMDEF_CMDLINE_MAX, &cfg->cmdline);
		} else {
			ret = fail(p,
				   "<os><%s> is not supported: lockstep boots <kernel> directly "
				   "(a multiboot image or a Linux kernel) with <initrd> and "
				   "<cmdline>",
				   (const char *)c->name);
		}
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_serial(struct parse *p, const xmlNode *n, struct vmdef *cfg)
{
	char *type = attr(n, "type"), *path = NULL;
	int ret = 0;

	if (!type || strcmp(type, "pty") == 0 || strcmp(type, "null") == 0) {
		/* The console log in the run directory; nothing to record. */
	} else if (strcmp(type, "file") == 0) {
		for (const xmlNode *c = n->children; c && !path; c = c->next)
			if (is(c, "source"))
				path = attr(c, "path");
		if (!path || !path[0])
			ret = fail(p, "<%s type='file'> needs <source path='/absolute/path'/>",
				   (const char *)n->name);
		else if (strlen(path) > 4095)
			ret = fail(p, "<%s> source path is too long", (const char *)n->name);
		else if (p->console_path[0] && strcmp(p->console_path, path) != 0)
			ret = fail(p,
				   "<serial> and <console> name different files: lockstep has one "
				   "serial port");
		else
			util_strlcpy(p->console_path, path, sizeof(p->console_path));
	} else {
		ret = fail(p, "<%s type='%.16s'> is not supported: use type='file' or 'pty'",
			   (const char *)n->name, type);
	}
	xmlFree(type);
	xmlFree(path);
	if (!ret && p->console_path[0]) {
		free(cfg->serial_log);
		cfg->serial_log = strdup(p->console_path);
		if (!cfg->serial_log)
			return -ENOMEM;
	}
	return ret;
}

/* A PCI address element's four numbers: domain, bus, slot, function. */
static int pci_address(struct parse *p, const xmlNode *a, const char *what, uint64_t v[4])
{
	static const char *const names[] = { "domain", "bus", "slot", "function" };
	static const uint64_t max[] = { 0xffff, 0xff, 0x1f, 7 };
	int ret = 0;

	for (int i = 0; i < 4 && !ret; i++) {
		char *s = attr(a, names[i]);
		char path[64];

		snprintf(path, sizeof(path), "%s %s", what, names[i]);
		ret = get_number(p, path, s ? s : "0", 0, max[i], &v[i]);
		xmlFree(s);
	}
	return ret;
}

/* <rom bar='on|off' file='PATH' enabled='yes|no'/> */
static int parse_rom(struct parse *p, const xmlNode *n, struct vmdef_device *d)
{
	char *bar = attr(n, "bar"), *file = attr(n, "file"), *enabled = attr(n, "enabled");
	int ret = 0;

	if (bar && strcmp(bar, "on") && strcmp(bar, "off"))
		ret = fail(p, "<hostdev><rom bar='%.16s'>: on or off", bar);
	else if (enabled && strcmp(enabled, "yes") && strcmp(enabled, "no"))
		ret = fail(p, "<hostdev><rom enabled='%.16s'>: yes or no", enabled);
	else if (file && (!file[0] || strlen(file) > 4095))
		ret = fail(p, "<hostdev><rom file='...'> must name a file");
	if (!ret) {
		d->rom_bar = !(bar && !strcmp(bar, "off")) && !(enabled && !strcmp(enabled, "no"));
		if (file)
			ret = vmdef_dup_device_rom(d, file);
	}
	xmlFree(bar);
	xmlFree(file);
	xmlFree(enabled);
	return ret;
}

/*
 * <hostdev mode='subsystem' type='pci' managed='yes|no'>: <driver name='vfio'/>, <source>
 * <address .../></source>, <rom .../>, and the guest's <address type='pci' .../> (bus 0,
 * function 0).  libvirt's <alias> is accepted; anything else is refused.
 */
static int parse_hostdev(struct parse *p, const xmlNode *n, struct vmdef *cfg)
{
	char *mode = attr(n, "mode"), *type = attr(n, "type"), *managed = attr(n, "managed");
	struct vmdef_device *d = &cfg->devices[cfg->nr_devices];
	const xmlNode *addr = NULL;
	uint64_t v[4];
	int ret = 0;

	if (!type || strcmp(type, "pci") != 0 || (mode && strcmp(mode, "subsystem") != 0))
		ret = fail(p, "<hostdev>: lockstep passes through PCI devices only "
			      "(mode='subsystem' type='pci')");
	else if (managed && strcmp(managed, "yes") && strcmp(managed, "no"))
		ret = fail(p, "<hostdev managed='%.16s'>: yes or no", managed);
	else if (cfg->nr_devices >= VMDEF_DEVICES_MAX)
		ret = fail(p, "more than %d <hostdev> devices", VMDEF_DEVICES_MAX);
	if (!ret)
		*d = (struct vmdef_device){ .slot = -1,
					    .rom_bar = true,
					    .managed = managed && !strcmp(managed, "yes") };
	for (const xmlNode *c = n->children; c && !ret; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || is(c, "alias"))
			continue;
		if (is(c, "source")) {
			for (const xmlNode *a = c->children; a; a = a->next)
				if (is(a, "address"))
					addr = a;
		} else if (is(c, "driver")) {
			ret = expect_attr(p, c, "<hostdev><driver>", "name", "vfio");
		} else if (is(c, "rom")) {
			ret = parse_rom(p, c, d);
		} else if (is(c, "address")) {
			ret = expect_attr(p, c, "<hostdev><address>", "type", "pci");
			if (!ret)
				ret = pci_address(p, c, "<hostdev> guest address", v);
			if (!ret && (v[0] || v[1] || v[3] || !v[2]))
				ret = fail(p, "<hostdev> guest address: lockstep has bus 0, slots "
					      "1-31, function 0 only");
			if (!ret)
				d->slot = (int)v[2];
		} else {
			ret = fail(p, "<hostdev><%s> is not supported by lockstep",
				   (const char *)c->name);
		}
	}
	if (!ret && !addr)
		ret = fail(p, "<hostdev> needs <source><address domain= bus= slot= function=/>");
	if (!ret)
		ret = pci_address(p, addr, "<hostdev> address", v);
	if (!ret) {
		strcpy(d->type, "vfio-pci");
		snprintf(d->host, sizeof(d->host), "%04x:%02x:%02x.%x", (unsigned)v[0],
			 (unsigned)v[1], (unsigned)v[2], (unsigned)v[3]);
		cfg->nr_devices++;
	} else if (cfg->nr_devices < VMDEF_DEVICES_MAX) {
		vmdef_device_fini(d);
	}
	xmlFree(mode);
	xmlFree(type);
	xmlFree(managed);
	return ret;
}

/* The <metadata>'s passthrough settings onto their <hostdev>. */
static int apply_hostdev_meta(struct parse *p, struct vmdef *cfg)
{
	for (unsigned i = 0; i < p->hostdevs.n; i++) {
		uint32_t k;

		for (k = 0; k < cfg->nr_devices; k++)
			if (!strcmp(cfg->devices[k].type, "vfio-pci") &&
			    !strcmp(cfg->devices[k].host, p->hostdevs.dev[i].host))
				break;
		if (k == cfg->nr_devices)
			return fail(p, "<lockstep:hostdev host='%s'> names no <hostdev>",
				    p->hostdevs.dev[i].host);
		cfg->devices[k].reset = p->hostdevs.dev[i].reset;
	}
	return 0;
}

static int parse_devices(struct parse *p, const xmlNode *n, struct vmdef *cfg)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		int ret = 0;

		if (c->type != XML_ELEMENT_NODE || is(c, "emulator") || is(c, "memballoon"))
			continue;
		if (is(c, "serial") || is(c, "console"))
			ret = parse_serial(p, c, cfg);
		else if (is(c, "hostdev"))
			ret = parse_hostdev(p, c, cfg);
		else
			ret = fail(p,
				   "<devices><%s> is not supported: lockstep guests have a serial "
				   "port and PCI passthrough (<hostdev>) only",
				   (const char *)c->name);
		if (ret)
			return ret;
	}
	return 0;
}

/* on_poweroff and on_reboot have one meaning under lockstep; on_crash has three. */
static int parse_event_action(struct parse *p, const xmlNode *n, struct vmdef *cfg)
{
	char *s = text_of(n);
	int ret = 0;

	if (!s)
		return -ENOMEM;
	if (is(n, "on_crash")) {
		if (strcmp(s, "destroy") == 0)
			cfg->on_crash = VMDEF_ON_CRASH_DESTROY;
		else if (strcmp(s, "restart") == 0)
			cfg->on_crash = VMDEF_ON_CRASH_RESTART;
		else if (strcmp(s, "preserve") == 0)
			cfg->on_crash = VMDEF_ON_CRASH_PRESERVE;
		else
			ret = fail(p,
				   "<on_crash>%.32s</on_crash>: lockstep does destroy, restart "
				   "or preserve",
				   s);
	} else if (is(n, "on_poweroff") && strcmp(s, "destroy") != 0) {
		ret = fail(p,
			   "<on_poweroff>%.32s</on_poweroff>: a lockstep guest that powers "
			   "off is destroyed",
			   s);
	} else if (is(n, "on_reboot") && strcmp(s, "restart") != 0) {
		ret = fail(p,
			   "<on_reboot>%.32s</on_reboot>: a lockstep guest that resets is "
			   "restarted",
			   s);
	}
	free(s);
	return ret;
}

static int parse_domain(struct parse *p, const xmlNode *root, struct vmdef *cfg)
{
	static const char *const ignored[] = { "title",	  "description", "features", "clock",
					       "cpu",	  "pm",		 "seclabel", "resource",
					       "sysinfo", "genid",	 NULL };
	int ret = expect_attr(p, root, "<domain>", "type", "kvm");

	if (!ret && !xmlHasProp(root, (const xmlChar *)"type"))
		ret = fail(p, "<domain> needs type='kvm'");
	for (const xmlNode *c = root->children; c && !ret; c = c->next) {
		bool skip = false;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		for (int i = 0; ignored[i]; i++)
			skip = skip || is(c, ignored[i]);
		if (skip)
			continue;
		if (is(c, "name")) {
			char *s = text_of(c);

			if (!s)
				return -ENOMEM;
			if (!vmdef_name_valid(s))
				ret = fail(p,
					   "<name>%.64s</name>: a lockstep name is 1-63 characters "
					   "of A-Z a-z 0-9 . _ - not starting with . or -",
					   s);
			else
				strcpy(cfg->name, s);
			free(s);
		} else if (is(c, "uuid")) {
			char *s = text_of(c);
			uint8_t u[16];

			if (!s)
				return -ENOMEM;
			if (api_virt_uuid_parse(s, u))
				ret = fail(p, "<uuid>%.40s</uuid> is not a UUID", s);
			else
				api_virt_uuid_format(u, cfg->uuid);
			free(s);
		} else if (is(c, "memory")) {
			ret = get_memory(p, c, "memory", &cfg->memory);
		} else if (is(c, "currentMemory")) {
			ret = get_memory(p, c, "currentMemory", &p->current_memory);
			p->has_current = true;
		} else if (is(c, "vcpu")) {
			ret = parse_vcpu(p, c, cfg);
		} else if (is(c, "cputune")) {
			ret = parse_cputune(p, c, cfg);
		} else if (is(c, "os")) {
			ret = parse_os(p, c, cfg);
		} else if (is(c, "on_poweroff") || is(c, "on_reboot") || is(c, "on_crash")) {
			ret = parse_event_action(p, c, cfg);
		} else if (is(c, "devices")) {
			ret = parse_devices(p, c, cfg);
		} else if (is(c, "metadata")) {
			ret = domxml_parse_metadata(c, cfg, &p->hostdevs, p->err, p->err_len);
		} else {
			ret = fail(p, "<%s> is not supported by lockstep", (const char *)c->name);
		}
	}
	if (!ret)
		ret = apply_hostdev_meta(p, cfg);
	if (ret)
		return ret;
	if (cfg->memory & ((1u << 20) - 1))
		return fail(p, "<memory> must be a whole number of MiB (got %llu bytes)",
			    (unsigned long long)cfg->memory);
	if (p->has_current && p->current_memory != cfg->memory)
		return fail(p, "<currentMemory> must equal <memory>: lockstep has no balloon");
	return 0;
}

static int validate_schema(xmlDoc *doc, const char *schema, char *err, size_t err_len);

static void xml_error_text(xmlParserCtxt *ctxt, char *err, size_t err_len)
{
	const xmlError *e = ctxt ? &ctxt->lastError : NULL;
	size_t n;

	if (!e || !e->message) {
		snprintf(err, err_len, "the document is not well-formed XML");
		return;
	}
	snprintf(err, err_len, "line %d: %s", e->line, e->message);
	n = strlen(err);
	while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

int domxml_parse(const char *xml, size_t len, const char *schema, struct vmdef *out, char *err,
		 size_t err_len)
{
	struct parse p = { .err = err, .err_len = err_len };
	xmlParserCtxt *ctxt;
	struct vmdef cfg;
	xmlNode *root;
	xmlDoc *doc;
	int ret;

	if (len > DOMXML_MAX)
		return fail(&p, "the document is larger than %u bytes", DOMXML_MAX);
	xmlInitParser();
	ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return -ENOMEM;
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "domain.xml", NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		xml_error_text(ctxt, err, err_len);
		xmlFreeParserCtxt(ctxt);
		return -EINVAL;
	}
	xmlFreeParserCtxt(ctxt);
	root = xmlDocGetRootElement(doc);
	vmdef_init(&cfg);
	if (doc->intSubset || doc->extSubset)
		ret = fail(&p, "a <!DOCTYPE> is not accepted in domain XML");
	else if (!root || !is(root, "domain"))
		ret = fail(&p, "the root element must be <domain>");
	else if (schema && (ret = validate_schema(doc, schema, err, err_len)))
		;
	else if (!(ret = parse_domain(&p, root, &cfg)))
		ret = vmdef_validate(&cfg, err, err_len);
	xmlFreeDoc(doc);
	if (ret) {
		vmdef_fini(&cfg);
		if (ret == -ENOMEM)
			snprintf(err, err_len, "out of memory");
		return ret;
	}
	vmdef_fini(out);
	*out = cfg;
	return 0;
}

/* ---- define --validate ---- */

struct schema_errors {
	char *err;
	size_t err_len;
	bool seen;
};

static void schema_error(void *arg, xmlError *e)
{
	struct schema_errors *se = arg;
	size_t n;

	if (se->seen || !e || !e->message)
		return;
	se->seen = true;
	snprintf(se->err, se->err_len, "line %d: %s", e->line, e->message);
	n = strlen(se->err);
	while (n && se->err[n - 1] == '\n')
		se->err[--n] = '\0';
}

static int validate_schema(xmlDoc *doc, const char *schema, char *err, size_t err_len)
{
	struct schema_errors se = { .err = err, .err_len = err_len };
	xmlRelaxNGParserCtxt *pctxt = xmlRelaxNGNewParserCtxt(schema);
	xmlRelaxNGValidCtxt *vctxt = NULL;
	xmlRelaxNG *rng = NULL;
	int ret = -ENOENT;

	if (pctxt) {
		xmlRelaxNGSetParserStructuredErrors(pctxt, schema_error, &se);
		rng = xmlRelaxNGParse(pctxt);
	}
	if (rng)
		vctxt = xmlRelaxNGNewValidCtxt(rng);
	if (vctxt) {
		se.seen = false;
		xmlRelaxNGSetValidStructuredErrors(vctxt, schema_error, &se);
		ret = xmlRelaxNGValidateDoc(vctxt, doc) == 0 ? 0 : -EPROTO;
		if (ret && !se.seen)
			snprintf(err, err_len, "the document does not match %s", schema);
	} else {
		snprintf(err, err_len, "cannot load the schema %s", schema);
	}
	xmlRelaxNGFreeValidCtxt(vctxt);
	xmlRelaxNGFree(rng);
	xmlRelaxNGFreeParserCtxt(pctxt);
	return ret;
}
