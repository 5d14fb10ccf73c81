/*
 * libvirt procedures on definitions: GET_XML_DESC (dumpxml), DEFINE_XML (define, and
 * define --validate against libvirt's own schema), UNDEFINE and SET_AUTOSTART.  Domain XML is
 * parsed into a scratch struct vmdef by api/domxml.c and handed to daemon/ops.h only once all
 * of it was accepted, so bad XML defines nothing; ops_define checks it like any definition.
 *
 * Defining an existing name replaces its definition (as libvirt does; it takes effect at the
 * next start) and keeps its autostart flag, which libvirt keeps outside the XML.  Undefining a
 * running domain makes it transient: it goes when it stops.  The live XML of a running domain
 * is the definition its run has (dvm->live: what its worker booted, with live changes), not a
 * later redefinition.
 * Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/virt/virt.h"

static void get_xml_desc(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct dvm *vm = virt_find(c, call, a);
	struct domxml_live info;
	char console[PATH_MAX];
	struct api_xdr_out out;
	char *xml;

	if (!vm)
		return;
	if ((a->flags & VIRT_XML_INACTIVE) || !virt_active(vm)) {
		xml = domxml_format(&vm->cfg, NULL);
	} else {
		/* The running domain's definition: what its worker booted, live changes included. */
		info = (struct domxml_live){ .id = vm->domain_id,
					     .console = store_console_path(vm, console,
									   sizeof(console)),
					     .emulator = c->srv->d->opts.vm_binary };
		xml = domxml_format(dvm_def(vm), &info);
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
	struct vmdef cfg;
	struct dvm *vm;
	char err[512];
	bool created;
	int ret;

	vmdef_init(&cfg);
	if (!virt_parse_xml(call, a->str, a->flags & VIRT_DEFINE_VALIDATE, &cfg))
		goto out;
	/* Domain XML carries no autostart flag: a redefinition keeps the domain's. */
	ret = ops_define(c->srv->d, &cfg, OPS_DEFINE_KEEP_AUTOSTART, &vm, &created, err,
			 sizeof(err));
	if (ret)
		virt_fail_err(call, ret, err);
	else
		virt_reply_domain(call, vm);
out:
	vmdef_fini(&cfg);
}

/* A running domain becomes transient and goes when it stops, as in libvirt. */
static void undefine(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	char err[512];
	int ret;

	if (!vm)
		return;
	ret = ops_undefine(vm, OPS_UNDEFINE_WHEN_STOPPED, err, sizeof(err));
	if (ret)
		virt_fail_err(call, ret, err);
	else
		api_virt_reply(call, NULL);
}

static void set_autostart(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	char err[512];
	int ret;

	if (!vm)
		return;
	ret = ops_set_autostart(vm, a->num[0] != 0, err, sizeof(err));
	if (ret)
		virt_fail_err(call, ret, err);
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
