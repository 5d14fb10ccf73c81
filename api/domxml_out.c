/*
 * struct vmdef -> libvirt domain XML (GET_XML_DESC, `virsh dumpxml`), and the capabilities
 * document (`virsh capabilities`).  Both are built as libxml2 trees, so escaping and nesting are
 * the library's business, and both validate against libvirt's own schemas (domain.rng,
 * capability.rng): the domain type is 'kvm' and the machine 'lockstep', since the schemas know
 * no 'lockstep' hypervisor type.  What virsh reads back (`<vcpu>` for vcpuinfo of a shut-off
 * domain, the whole inactive form for `virsh edit`) parses again with api/domxml.c to the same
 * definition.  Called by the libvirt endpoint (daemon/virt/) and the domxml fuzzer (round
 * trips).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "api/domxml_internal.h"

static xmlNode *child(xmlNode *parent, const char *name, const char *text)
{
	return xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)text);
}

static int attr(xmlNode *n, const char *name, const char *value)
{
	return n && xmlNewProp(n, (const xmlChar *)name, (const xmlChar *)value) ? 0 : -ENOMEM;
}

static int attr_uint(xmlNode *n, const char *name, unsigned long long value)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", value);
	return attr(n, name, buf);
}

static xmlNode *child_uint(xmlNode *parent, const char *name, unsigned long long value)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", value);
	return child(parent, name, buf);
}

/* The document's root element as text, indented, with a trailing newline. */
static char *dump(xmlDoc *doc, xmlNode *root)
{
	xmlBuffer *buf = xmlBufferCreate();
	char *out = NULL;

	if (buf && xmlNodeDump(buf, doc, root, 0, 1) >= 0) {
		size_t len = (size_t)xmlBufferLength(buf);

		out = malloc(len + 2);
		if (out) {
			memcpy(out, xmlBufferContent(buf), len);
			out[len] = '\n';
			out[len + 1] = '\0';
		}
	}
	if (buf)
		xmlBufferFree(buf);
	return out;
}

static int format_cpu(xmlNode *root, const struct vmdef *cfg)
{
	char list[4096]; /* every other CPU of 1024 fits */
	xmlNode *vcpu, *tune;

	vcpu = child_uint(root, "vcpu", cfg->vcpus);
	if (attr(vcpu, "placement", "static"))
		return -ENOMEM;
	if (cfg->sched.has_cpus && !util_cpuset_format(&cfg->sched.cpus, list, sizeof(list)) &&
	    attr(vcpu, "cpuset", list))
		return -ENOMEM;
	if (!cfg->sched.nr_pins)
		return 0;
	tune = child(root, "cputune", NULL);
	if (!tune)
		return -ENOMEM;
	for (uint32_t i = 0; i < cfg->sched.nr_pins; i++) {
		const struct vmdef_pin *pin = &cfg->sched.pins[i];
		xmlNode *n;

		if (util_cpuset_format(&pin->cpus, list, sizeof(list)))
			continue;
		n = child(tune, "vcpupin", NULL);
		if (attr_uint(n, "vcpu", pin->vcpu) || attr(n, "cpuset", list))
			return -ENOMEM;
	}
	return 0;
}

static int format_os(xmlNode *root, const struct vmdef *cfg)
{
	xmlNode *os = child(root, "os", NULL), *type;

	if (!os)
		return -ENOMEM;
	type = child(os, "type", "hvm");
	if (attr(type, "arch", "x86_64") || attr(type, "machine", "lockstep"))
		return -ENOMEM;
	if (cfg->kernel && !child(os, "kernel", cfg->kernel))
		return -ENOMEM;
	if (cfg->initrd && !child(os, "initrd", cfg->initrd))
		return -ENOMEM;
	if (cfg->cmdline && !child(os, "cmdline", cfg->cmdline))
		return -ENOMEM;
	return 0;
}

static int format_devices(xmlNode *root, const struct vmdef *cfg, const struct domxml_live *live)
{
	xmlNode *devs = child(root, "devices", NULL);
	const char *log = cfg->serial_log ? cfg->serial_log : live ? live->console : NULL;

	if (!devs)
		return -ENOMEM;
	if (live && live->emulator && !child(devs, "emulator", live->emulator))
		return -ENOMEM;
	for (uint32_t i = 0; i < cfg->nr_devices; i++) {
		const struct vmdef_device *d = &cfg->devices[i];
		unsigned dom, bus, slot, fn;
		xmlNode *hd, *src, *addr;
		char v[4][8];

		if (strcmp(d->type, "vfio-pci") != 0 ||
		    sscanf(d->host, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4)
			continue;
		hd = child(devs, "hostdev", NULL);
		if (attr(hd, "mode", "subsystem") || attr(hd, "type", "pci") ||
		    attr(hd, "managed", d->managed ? "yes" : "no") ||
		    attr(child(hd, "driver", NULL), "name", "vfio"))
			return -ENOMEM;
		src = child(hd, "source", NULL);
		if (!src)
			return -ENOMEM;
		addr = child(src, "address", NULL);
		snprintf(v[0], sizeof(v[0]), "0x%04x", dom & 0xffff);
		snprintf(v[1], sizeof(v[1]), "0x%02x", bus & 0xff);
		snprintf(v[2], sizeof(v[2]), "0x%02x", slot & 0x1f);
		snprintf(v[3], sizeof(v[3]), "0x%x", fn & 7);
		if (attr(addr, "domain", v[0]) || attr(addr, "bus", v[1]) ||
		    attr(addr, "slot", v[2]) || attr(addr, "function", v[3]))
			return -ENOMEM;
		if (!d->rom_bar && attr(child(hd, "rom", NULL), "bar", "off"))
			return -ENOMEM;
		if (d->rom_bar && d->rom_file && attr(child(hd, "rom", NULL), "file", d->rom_file))
			return -ENOMEM;
		if (d->slot >= 0) {
			addr = child(hd, "address", NULL);
			snprintf(v[2], sizeof(v[2]), "0x%02x", (unsigned)d->slot & 0x1f);
			if (attr(addr, "type", "pci") || attr(addr, "domain", "0x0000") ||
			    attr(addr, "bus", "0x00") || attr(addr, "slot", v[2]) ||
			    attr(addr, "function", "0x0"))
				return -ENOMEM;
		}
	}
	if (log) {
		xmlNode *serial = child(devs, "serial", NULL);
		xmlNode *src = serial ? child(serial, "source", NULL) : NULL;
		xmlNode *target = serial ? child(serial, "target", NULL) : NULL;

		if (attr(serial, "type", "file") || attr(src, "path", log) ||
		    attr(target, "port", "0"))
			return -ENOMEM;
	}
	return 0;
}

static int format_domain(xmlNode *root, const struct vmdef *cfg, const struct domxml_live *live)
{
	static const char *const on_crash[] = { "destroy", "restart", "preserve" };
	xmlNode *meta;
	int ret;

	if (attr(root, "type", "kvm") || (live && live->id >= 0 && attr_uint(root, "id", live->id)))
		return -ENOMEM;
	if (!child(root, "name", cfg->name) || (cfg->uuid[0] && !child(root, "uuid", cfg->uuid)))
		return -ENOMEM;
	meta = child(root, "metadata", NULL);
	if (!meta || domxml_format_metadata(meta, cfg))
		return -ENOMEM;
	if (attr(child_uint(root, "memory", cfg->memory >> 10), "unit", "KiB") ||
	    attr(child_uint(root, "currentMemory", cfg->memory >> 10), "unit", "KiB"))
		return -ENOMEM;
	ret = format_cpu(root, cfg);
	if (!ret)
		ret = format_os(root, cfg);
	if (ret)
		return ret;
	if (!child(root, "on_poweroff", "destroy") || !child(root, "on_reboot", "restart") ||
	    !child(root, "on_crash", on_crash[(unsigned)cfg->on_crash < 3 ? cfg->on_crash : 0]))
		return -ENOMEM;
	return format_devices(root, cfg, live);
}

char *domxml_format(const struct vmdef *cfg, const struct domxml_live *live)
{
	xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNode *root = doc ? xmlNewNode(NULL, (const xmlChar *)"domain") : NULL;
	char *out = NULL;

	if (root) {
		xmlDocSetRootElement(doc, root);
		if (!format_domain(root, cfg, live))
			out = dump(doc, root);
	}
	if (doc)
		xmlFreeDoc(doc);
	return out;
}

/* ---- capabilities ---- */

static int format_host(xmlNode *caps, const struct domxml_host *h)
{
	xmlNode *host = child(caps, "host", NULL);
	xmlNode *cpu = host ? child(host, "cpu", NULL) : NULL;
	xmlNode *topo, *cells, *cell, *cpus;

	if (!cpu || !child(cpu, "arch", h->arch))
		return -ENOMEM;
	topo = child(cpu, "topology", NULL);
	if (attr_uint(topo, "sockets", h->sockets) || attr_uint(topo, "dies", 1) ||
	    attr_uint(topo, "cores", h->cores) || attr_uint(topo, "threads", h->threads))
		return -ENOMEM;
	if (attr(child(host, "iommu", NULL), "support", h->iommu ? "yes" : "no"))
		return -ENOMEM;
	topo = child(host, "topology", NULL);
	cells = topo ? child(topo, "cells", NULL) : NULL;
	cell = cells ? child(cells, "cell", NULL) : NULL;
	if (attr_uint(cells, "num", 1) || attr_uint(cell, "id", 0) ||
	    attr(child_uint(cell, "memory", h->memory_kib), "unit", "KiB"))
		return -ENOMEM;
	cpus = child(cell, "cpus", NULL);
	if (attr_uint(cpus, "num", h->nr_cpus))
		return -ENOMEM;
	for (unsigned i = 0; i < h->nr_cpus; i++) {
		const struct domxml_host_cpu *c = &h->cpus[i];
		xmlNode *n = child(cpus, "cpu", NULL);

		if (attr_uint(n, "id", c->id) || attr_uint(n, "socket_id", c->socket) ||
		    attr_uint(n, "die_id", 0) || attr_uint(n, "core_id", c->core) ||
		    attr(n, "siblings", c->siblings))
			return -ENOMEM;
	}
	return 0;
}

static int format_guest(xmlNode *caps, const struct domxml_host *h)
{
	xmlNode *guest = child(caps, "guest", NULL);
	xmlNode *arch, *machine;

	if (!guest || !child(guest, "os_type", "hvm"))
		return -ENOMEM;
	arch = child(guest, "arch", NULL);
	if (attr(arch, "name", h->arch) || !child(arch, "wordsize", "64") ||
	    (h->emulator && !child(arch, "emulator", h->emulator)))
		return -ENOMEM;
	machine = child(arch, "machine", h->machine);
	if (attr_uint(machine, "maxCpus", h->max_vcpus) ||
	    attr(child(arch, "domain", NULL), "type", "kvm"))
		return -ENOMEM;
	return 0;
}

char *domxml_capabilities(const struct domxml_host *host)
{
	xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNode *root = doc ? xmlNewNode(NULL, (const xmlChar *)"capabilities") : NULL;
	char *out = NULL;

	if (root) {
		xmlDocSetRootElement(doc, root);
		if (!format_host(root, host) && !format_guest(root, host))
			out = dump(doc, root);
	}
	if (doc)
		xmlFreeDoc(doc);
	return out;
}
