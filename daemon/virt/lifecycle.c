/*
 * libvirt procedures that start and stop domains, each one call of daemon/ops.h:
 *
 *   DOMAIN_CREATE, CREATE_WITH_FLAGS   ops_start; the reply comes once the guest runs
 *   DOMAIN_CREATE_XML                  ops_create: define + start, transient (undefined when
 *                                      it stops)
 *   DOMAIN_DESTROY[_FLAGS]             ops_destroy (the worker is asked to stop, then
 *                                      SIGTERM, SIGKILL after a grace period); --graceful alike
 *   DOMAIN_SHUTDOWN[_FLAGS]            ops_shutdown (the ACPI power button); as in libvirt
 *                                      the reply comes once the button is pressed, not when the
 *                                      guest is gone
 *   DOMAIN_REBOOT, DOMAIN_RESET        ops_reboot: destroy, then start again (lockstep has no
 *                                      in-place reset); the reply comes once the guest runs
 *                                      again
 *
 * The call itself is what an operation carries to its completion.  Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/virt/virt.h"

/* How an operation ended, as the procedure's reply: the domain for the creates, else void. */
static void answer(struct dvm *vm, void *arg, int err, const char *message)
{
	struct api_virt_call *call = arg;
	int32_t proc = api_virt_call_proc(call);

	if (err)
		virt_fail_err(call, err, message);
	else if (proc == VIRT_PROC_DOMAIN_CREATE_WITH_FLAGS || proc == VIRT_PROC_DOMAIN_CREATE_XML)
		virt_reply_domain(call, vm);
	else
		api_virt_reply(call, NULL);
}

/* An operation's first word: failed, finished, or answered later by answer(). */
static void begun(struct api_virt_call *call, struct dvm *vm, int ret, const char *err)
{
	if (ret < 0)
		virt_fail_err(call, ret, err);
	else if (ret != OPS_PENDING)
		answer(vm, call, 0, NULL);
}

static void create(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	char err[512];

	if (vm)
		begun(call, vm, ops_start(vm, answer, call, err, sizeof(err)), err);
}

static void create_xml(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct dvm *vm = NULL;
	struct vmdef cfg;
	char err[512];

	vmdef_init(&cfg);
	if (virt_parse_xml(call, a->str, a->flags & VIRT_START_VALIDATE, &cfg))
		begun(call, vm, ops_create(c->srv->d, &cfg, answer, call, &vm, err, sizeof(err)),
		      err);
	vmdef_fini(&cfg);
}

static void destroy(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	char err[512];

	if (vm)
		begun(call, vm, ops_destroy(vm, answer, call, err, sizeof(err)), err);
}

/* The guest went (or the shutdown timed out): the call was answered long ago. */
static void shut_down(struct dvm *vm, void *arg, int err, const char *message)
{
}

static void shutdown_domain(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct dvm *vm = virt_find(c, call, a);
	char err[512];
	int ret;

	if (!vm)
		return;
	ret = ops_shutdown(vm, c->srv->d->opts.shutdown_timeout_ms, shut_down, NULL, err,
			   sizeof(err));
	if (ret < 0)
		virt_fail_err(call, ret, err);
	else
		api_virt_reply(call, NULL);
}

static void reboot(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	char err[512];

	if (vm)
		begun(call, vm, ops_reboot(vm, answer, call, err, sizeof(err)), err);
}

const struct api_virt_handler virt_lifecycle_handlers[] = {
	{ VIRT_PROC_DOMAIN_CREATE, create, 0 },
	{ VIRT_PROC_DOMAIN_CREATE_WITH_FLAGS, create,
	  VIRT_START_FORCE_BOOT | VIRT_START_BYPASS_CACHE },
	{ VIRT_PROC_DOMAIN_CREATE_XML, create_xml, VIRT_START_VALIDATE },
	{ VIRT_PROC_DOMAIN_DESTROY, destroy, 0 },
	{ VIRT_PROC_DOMAIN_DESTROY_FLAGS, destroy, VIRT_DESTROY_GRACEFUL },
	{ VIRT_PROC_DOMAIN_SHUTDOWN, shutdown_domain, 0 },
	{ VIRT_PROC_DOMAIN_SHUTDOWN_FLAGS, shutdown_domain, VIRT_SHUTDOWN_ACPI_POWER_BTN },
	{ VIRT_PROC_DOMAIN_REBOOT, reboot, 0 },
	{ VIRT_PROC_DOMAIN_RESET, reboot, 0 },
};

const size_t virt_nr_lifecycle_handlers =
	sizeof(virt_lifecycle_handlers) / sizeof(virt_lifecycle_handlers[0]);
