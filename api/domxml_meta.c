/*
 * lockstep's own settings in libvirt domain XML: libvirt keeps application data in <metadata>,
 * one element per XML namespace, and hands it back untouched.  lockstep's is
 *
 *   <metadata>
 *     <lockstep:vm xmlns:lockstep="urn:lockstep:domain:1">
 *       <lockstep:sched policy="gang" quantum_us="5000" skew_us="2000"/>
 *       <lockstep:pvlock enabled="yes" kvm_features="host" pause_exits="auto"/>
 *       <lockstep:irq steering="yes"/>
 *       <lockstep:testdev type="testdev" slot="3"/>
 *       <lockstep:hostdev host="0000:03:00.0" reset="off"/>
 *     </lockstep:vm>
 *   </metadata>
 *
 * with the same names, values and ranges as the JSON definition's "sched", "pvlock" and "irq"
 * sections (vmdef/), and one <lockstep:testdev> per test device of its "devices" (type
 * testdev, pci-testdev or pc-testdev; slot optional), which libvirt has no element for, and
 * one <lockstep:hostdev> per passthrough device whose "reset" is not "auto" (libvirt's
 * <hostdev> has no such setting; it names the <hostdev> by its source address).  Inside lockstep's namespace parsing is strict (an unknown element or
 * attribute is an error naming it); other namespaces are ignored.  Used by api/domxml*.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/domxml_internal.h"

static int fail(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool ours(const xmlNode *n)
{
	return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       strcmp((const char *)n->ns->href, DOMXML_NAMESPACE) == 0;
}

static int parse_bool(const char *path, const char *v, bool *out, char *err, size_t err_len)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "on") == 0)
		*out = true;
	else if (strcmp(v, "no") == 0 || strcmp(v, "off") == 0)
		*out = false;
	else
		return fail(err, err_len, "%s must be 'yes' or 'no' (got '%.16s')", path, v);
	return 0;
}

static int parse_u32(const char *path, const char *v, uint64_t min, uint64_t max, uint32_t *out,
		     char *err, size_t err_len)
{
	uint64_t u;

	if (util_parse_u64(v, min, max, &u))
		return fail(err, err_len, "%s must be a number from %llu to %llu (got '%.16s')",
			    path, (unsigned long long)min, (unsigned long long)max, v);
	*out = (uint32_t)u;
	return 0;
}

/* "host", "none", or a comma-separated list of KVM feature names ("pv_unhalt,steal_time"). */
static int parse_kvm_features(const char *v, uint32_t *mask, char *err, size_t err_len)
{
	char name[32];
	const char *p = v;

	if (strcmp(v, "host") == 0) {
		*mask = VMDEF_KVM_FEATURES_HOST;
		return 0;
	}
	*mask = 0;
	if (strcmp(v, "none") == 0 || !v[0])
		return 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		unsigned bit;

		if (n == 0 || n >= sizeof(name))
			return fail(err, err_len,
				    "<lockstep:pvlock kvm_features>: bad list '%.64s'", v);
		memcpy(name, p, n);
		name[n] = '\0';
		for (bit = 0; bit < 32; bit++) {
			const char *known = vmdef_kvm_feature_name(bit);

			if (known && strcmp(known, name) == 0)
				break;
		}
		if (bit == 32)
			return fail(err, err_len,
				    "<lockstep:pvlock kvm_features>: unknown KVM feature '%s'",
				    name);
		*mask |= 1u << bit;
		p += n + (p[n] == ',');
	}
	return 0;
}

static int sched_attr(struct vmdef *cfg, const char *key, const char *v, char *err, size_t err_len)
{
	if (strcmp(key, "policy") == 0) {
		if (vmdef_sched_policy_parse(v, &cfg->sched.policy))
			return fail(
				err, err_len,
				"<lockstep:sched policy='%.16s'>: policy is host, pinned, gang, "
				"relaxed, adaptive or mux",
				v);
		return 0;
	}
	if (strcmp(key, "quantum_us") == 0)
		return parse_u32("<lockstep:sched quantum_us>", v, VMDEF_QUANTUM_US_MIN,
				 VMDEF_QUANTUM_US_MAX, &cfg->sched.quantum_us, err, err_len);
	if (strcmp(key, "skew_us") == 0)
		return parse_u32("<lockstep:sched skew_us>", v, VMDEF_SKEW_US_MIN,
				 VMDEF_SKEW_US_MAX, &cfg->sched.skew_us, err, err_len);
	return fail(err, err_len, "unknown attribute <lockstep:sched %.32s>", key);
}

static int pvlock_attr(struct vmdef *cfg, const char *key, const char *v, char *err, size_t err_len)
{
	if (strcmp(key, "enabled") == 0)
		return parse_bool("<lockstep:pvlock enabled>", v, &cfg->pvlock.enabled, err,
				  err_len);
	if (strcmp(key, "kvm_features") == 0)
		return parse_kvm_features(v, &cfg->pvlock.kvm_features, err, err_len);
	if (strcmp(key, "pause_exits") == 0) {
		for (int i = 0; i < 3; i++) {
			if (strcmp(v, vmdef_pause_exits_name((enum vmdef_pause_exits)i)) == 0) {
				cfg->pvlock.pause_exits = (enum vmdef_pause_exits)i;
				return 0;
			}
		}
		return fail(err, err_len, "<lockstep:pvlock pause_exits='%.16s'>: auto, on or off",
			    v);
	}
	return fail(err, err_len, "unknown attribute <lockstep:pvlock %.32s>", key);
}

static int irq_attr(struct vmdef *cfg, const char *key, const char *v, char *err, size_t err_len)
{
	if (strcmp(key, "steering") == 0)
		return parse_bool("<lockstep:irq steering>", v, &cfg->irq.steering, err, err_len);
	return fail(err, err_len, "unknown attribute <lockstep:irq %.32s>", key);
}

/* <lockstep:testdev type=... slot=...>: one more test device in the definition. */
static int parse_testdev(const xmlNode *el, struct vmdef *cfg, char *err, size_t err_len)
{
	static const char *const types[] = { "testdev", "pci-testdev", "pc-testdev" };
	struct vmdef_device dev = { .slot = -1 };

	if (cfg->nr_devices >= VMDEF_DEVICES_MAX)
		return fail(err, err_len, "more than %d devices", VMDEF_DEVICES_MAX);
	for (const xmlAttr *a = el->properties; a; a = a->next) {
		xmlChar *v = xmlNodeGetContent((const xmlNode *)a);
		const char *key = (const char *)a->name;
		uint32_t slot = 0;
		int ret = 0;

		if (!v)
			return -ENOMEM;
		if (a->ns) {
			ret = fail(err, err_len, "namespaced attribute on <lockstep:testdev>");
		} else if (strcmp(key, "type") == 0) {
			ret = fail(err, err_len,
				   "<lockstep:testdev type='%.16s'>: testdev, pci-testdev or "
				   "pc-testdev",
				   (const char *)v);
			for (int i = 0; i < 3; i++)
				if (strcmp((const char *)v, types[i]) == 0)
					ret = util_strlcpy(dev.type, types[i], sizeof(dev.type));
		} else if (strcmp(key, "slot") == 0) {
			ret = parse_u32("<lockstep:testdev slot>", (const char *)v, 1, 31, &slot,
					err, err_len);
			dev.slot = (int)slot;
		} else {
			ret = fail(err, err_len, "unknown attribute <lockstep:testdev %.32s>", key);
		}
		xmlFree(v);
		if (ret)
			return ret;
	}
	if (!dev.type[0])
		return fail(err, err_len, "<lockstep:testdev> needs a type");
	if (dev.slot >= 0 && strcmp(dev.type, "pc-testdev") == 0)
		return fail(err, err_len, "<lockstep:testdev type='pc-testdev'> has no slot");
	cfg->devices[cfg->nr_devices++] = dev;
	return 0;
}

/* <lockstep:hostdev host=... reset=...>: a passthrough device's reset, for its <hostdev>. */
static int parse_hostdev_meta(const xmlNode *el, struct domxml_hostdev_meta *hd, char *err,
			      size_t err_len)
{
	char host[16] = "";
	enum vmdef_reset reset = VMDEF_RESET_AUTO;

	if (hd->n >= VMDEF_DEVICES_MAX)
		return fail(err, err_len, "more than %d <lockstep:hostdev>", VMDEF_DEVICES_MAX);
	for (const xmlAttr *a = el->properties; a; a = a->next) {
		xmlChar *v = xmlNodeGetContent((const xmlNode *)a);
		const char *key = (const char *)a->name;
		int ret = 0;

		if (!v)
			return -ENOMEM;
		if (a->ns)
			ret = fail(err, err_len, "namespaced attribute on <lockstep:hostdev>");
		else if (strcmp(key, "host") == 0)
			ret = util_strlcpy(host, (const char *)v, sizeof(host)) ?
				      fail(err, err_len,
					   "<lockstep:hostdev host='%.32s'> is not "
					   "a PCI address",
					   (const char *)v) :
				      0;
		else if (strcmp(key, "reset") == 0)
			ret = vmdef_reset_parse((const char *)v, &reset) ?
				      fail(err, err_len,
					   "<lockstep:hostdev reset='%.16s'>: auto, on or off",
					   (const char *)v) :
				      0;
		else
			ret = fail(err, err_len, "unknown attribute <lockstep:hostdev %.32s>", key);
		xmlFree(v);
		if (ret)
			return ret;
	}
	if (!host[0])
		return fail(err, err_len, "<lockstep:hostdev> needs a host address");
	for (size_t i = 0; host[i]; i++)
		host[i] = (char)(host[i] >= 'A' && host[i] <= 'F' ? host[i] - 'A' + 'a' : host[i]);
	util_strlcpy(hd->dev[hd->n].host, host, sizeof(hd->dev[hd->n].host));
	hd->dev[hd->n++].reset = reset;
	return 0;
}

static int parse_settings(const xmlNode *el, struct vmdef *cfg, struct domxml_hostdev_meta *hd,
			  char *err, size_t err_len)
{
	int (*fn)(struct vmdef *, const char *, const char *, char *, size_t);
	const char *name = (const char *)el->name;

	if (strcmp(name, "sched") == 0)
		fn = sched_attr;
	else if (strcmp(name, "pvlock") == 0)
		fn = pvlock_attr;
	else if (strcmp(name, "irq") == 0)
		fn = irq_attr;
	else if (strcmp(name, "testdev") == 0)
		return parse_testdev(el, cfg, err, err_len);
	else if (strcmp(name, "hostdev") == 0)
		return parse_hostdev_meta(el, hd, err, err_len);
	else
		return fail(err, err_len, "unknown element <lockstep:%.32s>", name);
	for (const xmlAttr *a = el->properties; a; a = a->next) {
		xmlChar *v = xmlNodeGetContent((const xmlNode *)a);
		int ret;

		if (!v)
			return -ENOMEM;
		ret = a->ns ? fail(err, err_len, "namespaced attribute on <lockstep:%.32s>", name) :
			      fn(cfg, (const char *)a->name, (const char *)v, err, err_len);
		xmlFree(v);
		if (ret)
			return ret;
	}
	for (const xmlNode *c = el->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return fail(err, err_len, "<lockstep:%.32s> has no child elements", name);
	return 0;
}

int domxml_parse_metadata(const xmlNode *metadata, struct vmdef *cfg,
			  struct domxml_hostdev_meta *hostdevs, char *err, size_t err_len)
{
	for (const xmlNode *vm = metadata->children; vm; vm = vm->next) {
		if (!ours(vm))
			continue;
		if (strcmp((const char *)vm->name, "vm") != 0)
			return fail(err, err_len, "unknown element <lockstep:%.32s> in <metadata>",
				    (const char *)vm->name);
		for (const xmlNode *c = vm->children; c; c = c->next) {
			int ret;

			if (c->type != XML_ELEMENT_NODE)
				continue;
			if (!ours(c))
				return fail(err, err_len,
					    "<lockstep:vm> holds only lockstep elements");
			ret = parse_settings(c, cfg, hostdevs, err, err_len);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* ---- formatting ---- */

static int set_attr(xmlNode *n, const char *name, const char *value)
{
	return xmlNewProp(n, (const xmlChar *)name, (const xmlChar *)value) ? 0 : -ENOMEM;
}

static int set_uint(xmlNode *n, const char *name, unsigned value)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u", value);
	return set_attr(n, name, buf);
}

static void kvm_features_text(uint32_t mask, char *buf, size_t size)
{
	size_t len = 0;

	if (mask == VMDEF_KVM_FEATURES_HOST) {
		util_strlcpy(buf, "host", size);
		return;
	}
	buf[0] = '\0';
	for (unsigned bit = 0; bit < 32; bit++) {
		const char *name = vmdef_kvm_feature_name(bit);

		if (!(mask & (1u << bit)) || !name || len + strlen(name) + 2 > size)
			continue;
		len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "", name);
	}
	if (!buf[0])
		util_strlcpy(buf, "none", size);
}

int domxml_format_metadata(xmlNode *metadata, const struct vmdef *cfg)
{
	xmlNode *vm = xmlNewChild(metadata, NULL, (const xmlChar *)"vm", NULL);
	xmlNode *sched, *pvlock, *irq;
	char features[512];
	xmlNs *ns;

	if (!vm)
		return -ENOMEM;
	ns = xmlNewNs(vm, (const xmlChar *)DOMXML_NAMESPACE, (const xmlChar *)DOMXML_PREFIX);
	if (!ns)
		return -ENOMEM;
	xmlSetNs(vm, ns);
	sched = xmlNewChild(vm, ns, (const xmlChar *)"sched", NULL);
	pvlock = xmlNewChild(vm, ns, (const xmlChar *)"pvlock", NULL);
	irq = xmlNewChild(vm, ns, (const xmlChar *)"irq", NULL);
	if (!sched || !pvlock || !irq)
		return -ENOMEM;
	kvm_features_text(cfg->pvlock.kvm_features, features, sizeof(features));
	if (set_attr(sched, "policy", vmdef_sched_policy_name(cfg->sched.policy)) ||
	    set_uint(sched, "quantum_us", cfg->sched.quantum_us) ||
	    set_uint(sched, "skew_us", cfg->sched.skew_us) ||
	    set_attr(pvlock, "enabled", cfg->pvlock.enabled ? "yes" : "no") ||
	    set_attr(pvlock, "kvm_features", features) ||
	    set_attr(pvlock, "pause_exits", vmdef_pause_exits_name(cfg->pvlock.pause_exits)) ||
	    set_attr(irq, "steering", cfg->irq.steering ? "yes" : "no"))
		return -ENOMEM;
	for (uint32_t i = 0; i < cfg->nr_devices; i++) {
		const struct vmdef_device *d = &cfg->devices[i];
		xmlNode *t;

		if (strcmp(d->type, "vfio-pci") == 0) {
			/* a <hostdev>; here only what it cannot say */
			if (d->reset == VMDEF_RESET_AUTO)
				continue;
			t = xmlNewChild(vm, ns, (const xmlChar *)"hostdev", NULL);
			if (!t || set_attr(t, "host", d->host) ||
			    set_attr(t, "reset", vmdef_reset_name(d->reset)))
				return -ENOMEM;
			continue;
		}
		t = xmlNewChild(vm, ns, (const xmlChar *)"testdev", NULL);
		if (!t || set_attr(t, "type", d->type) ||
		    (d->slot >= 0 && set_uint(t, "slot", d->slot)))
			return -ENOMEM;
	}
	return 0;
}
