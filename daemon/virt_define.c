/*
 * libvirt procedures on definitions: GET_XML_DESC (dumpxml), DEFINE_XML (define, and
 * define --validate against libvirt's own schema), UNDEFINE and SET_AUTOSTART.  Domain XML is
 * parsed into a scratch struct vmdef by api/domxml.c and handed to the registry only once all
 * of it was accepted, so bad XML defines nothing.
 *
 * Defining an existing name replaces its definition (as libvirt does; it takes effect at the
 * next start) and keeps its autostart flag, which libvirt keeps outside the XML.  Undefining a
 * running domain makes it transient: it goes when it stops.  The live XML of a running domain
 * is the definition its worker booted (the run directory's copy), not a later redefinition.
 * Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/virt.h"

static void get_xml_desc(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct dvm *vm = virt_find(c, call, a);
	struct vmdef live;
	struct domxml_live info;
	char path[PATH_MAX], console[PATH_MAX], err[256];
	struct api_xdr_out out;
	bool booted;
	char *xml;

	if (!vm)
		return;
	if ((a->flags & VIRT_XML_INACTIVE) || !virt_active(vm)) {
		xml = domxml_format(&vm->cfg, NULL);
	} else {
		/* What the worker booted; the stored definition if that copy cannot be read. */
		vmdef_init(&live);
		dvm_run_path(vm, ".def.json", path, sizeof(path));
		booted = vmdef_load(&live, path, err, sizeof(err)) == 0;
		info = (struct domxml_live){ .id = vm->domain_id,
					     .console =
						     dvm_console_path(vm, console, sizeof(console)),
					     .emulator = c->srv->d->opts.vm_binary };
		xml = domxml_format(booted ? &live : &vm->cfg, &info);
		vmdef_fini(&live);
	}
	if (!xml) {
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot format the XML of %s",
			      vm->cfg.name);
		return;
	}
	api_xdr_out_init(&out, VIRT_STRING_MAX + 8);
	api_xdr_put_string(&out, xml);
	free(xml);
	api_virt_reply(call, &out);
}

/* Parses a call's XML into `cfg`; fails the call (and returns false) if it is refused. */
bool virt_parse_xml(struct api_virt_call *call, const char *xml, bool validate, struct vmdef *cfg)
{
	char err[512];
	int ret;

	if (validate && access(VIRT_DOMAIN_SCHEMA, R_OK) < 0) {
		api_virt_fail(call, VIRT_ERR_OPERATION_UNSUPPORTED,
			      "cannot validate: libvirt's schema %s is missing",
			      VIRT_DOMAIN_SCHEMA);
		return false;
	}
	ret = domxml_parse(xml, strlen(xml), validate ? VIRT_DOMAIN_SCHEMA : NULL, cfg, err,
			   sizeof(err));
	if (ret == -EPROTO)
		api_virt_fail(call, VIRT_ERR_XML_INVALID_SCHEMA, "%s", err);
	else if (ret == -ENOMEM)
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot parse the domain XML");
	else if (ret)
		api_virt_fail(call, VIRT_ERR_XML_ERROR, "%s", err);
	return ret == 0;
}

static void define_xml(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct daemon *d = c->srv->d;
	struct dvm *vm, *other;
	struct vmdef cfg;
	bool created;
	int ret;

	vmdef_init(&cfg);
	if (!virt_parse_xml(call, a->str, a->flags & VIRT_DEFINE_VALIDATE, &cfg))
		goto out;
	vm = registry_find(d, cfg.name);
	other = cfg.uuid[0] ? registry_find_uuid(d, cfg.uuid) : NULL;
	if (vm && other != vm && cfg.uuid[0]) {
		api_virt_fail(call, VIRT_ERR_OPERATION_FAILED,
			      "domain '%s' is already defined with uuid %s", vm->cfg.name,
			      vm->cfg.uuid);
		goto out;
	}
	if (!vm && other) {
		api_virt_fail(call, VIRT_ERR_OPERATION_FAILED,
			      "domain '%s' already exists with uuid %s", other->cfg.name,
			      other->cfg.uuid);
		goto out;
	}
	created = !vm;
	if (vm) {
		cfg.autostart = vm->cfg.autostart;
		ret = registry_redefine(vm, &cfg);
	} else {
		ret = registry_define(d, &cfg, &vm);
	}
	if (ret == -ENOSPC) {
		api_virt_fail(call, VIRT_ERR_OPERATION_FAILED, "at most %u domains may be defined",
			      d->opts.max_vms);
	} else if (ret) {
		api_virt_fail(call, VIRT_ERR_SYSTEM_ERROR, "cannot store the definition of %s: %s",
			      cfg.name, strerror(-ret));
	} else {
		vm->undefine_pending = false; /* defining a transient domain makes it persistent */
		if (created)
			events_lifecycle(vm, "defined");
		virt_reply_domain(call, vm);
	}
out:
	vmdef_fini(&cfg);
}

static void undefine(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	char name[VMDEF_NAME_MAX + 1];
	int ret;

	if (!vm)
		return;
	if (virt_transient(vm)) {
		api_virt_fail(call, VIRT_ERR_OPERATION_INVALID, "cannot undefine transient domain");
		return;
	}
	events_lifecycle(vm, "undefined");
	if (virt_active(vm)) {
		vm->undefine_pending = true; /* the registry removes it when its worker ends */
		api_virt_reply(call, NULL);
		return;
	}
	strcpy(name, vm->cfg.name);
	ret = registry_undefine(vm);
	if (ret)
		api_virt_fail(call, VIRT_ERR_SYSTEM_ERROR, "cannot remove the definition of %s: %s",
			      name, strerror(-ret));
	else
		api_virt_reply(call, NULL);
}

static void set_autostart(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	struct vmdef next;
	int ret;

	if (!vm)
		return;
	if (virt_transient(vm)) {
		api_virt_fail(call, VIRT_ERR_OPERATION_INVALID,
			      "cannot set autostart for transient domain");
		return;
	}
	ret = vmdef_copy(&next, &vm->cfg);
	if (!ret) {
		next.autostart = a->num[0] != 0;
		ret = registry_redefine(vm, &next);
		vmdef_fini(&next);
	}
	if (ret)
		api_virt_fail(call, VIRT_ERR_SYSTEM_ERROR,
			      "cannot store the autostart flag of %s: %s", vm->cfg.name,
			      strerror(-ret));
	else
		api_virt_reply(call, NULL);
}

const struct api_virt_handler virt_define_handlers[] = {
	{ VIRT_PROC_DOMAIN_GET_XML_DESC, get_xml_desc,
	  VIRT_XML_SECURE | VIRT_XML_INACTIVE | VIRT_XML_UPDATE_CPU | VIRT_XML_MIGRATABLE },
	{ VIRT_PROC_DOMAIN_DEFINE_XML, define_xml, 0 },
	{ VIRT_PROC_DOMAIN_DEFINE_XML_FLAGS, define_xml, VIRT_DEFINE_VALIDATE },
	{ VIRT_PROC_DOMAIN_UNDEFINE, undefine, 0 },
	{ VIRT_PROC_DOMAIN_UNDEFINE_FLAGS, undefine, VIRT_UNDEFINE_ALL },
	{ VIRT_PROC_DOMAIN_SET_AUTOSTART, set_autostart, 0 },
};

const size_t virt_nr_define_handlers =
	sizeof(virt_define_handlers) / sizeof(virt_define_handlers[0]);
