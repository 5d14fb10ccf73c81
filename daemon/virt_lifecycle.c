/*
 * libvirt procedures that start and stop domains, on top of the VM operations of daemon/ops.c:
 *
 *   DOMAIN_CREATE, CREATE_WITH_FLAGS   dvm_op_start; the reply comes once the guest runs
 *   DOMAIN_CREATE_XML                  define + start, transient: undefined when it stops
 *   DOMAIN_DESTROY[_FLAGS]             dvm_op_destroy (the worker is asked to stop, then
 *                                      SIGTERM, SIGKILL after a grace period); --graceful alike
 *   DOMAIN_SHUTDOWN[_FLAGS]            dvm_op_shutdown (the ACPI power button); as in libvirt
 *                                      the reply comes once the button is pressed, not when the
 *                                      guest is gone
 *   DOMAIN_REBOOT, DOMAIN_RESET        destroy, then start again (lockstep has no in-place
 *                                      reset); the reply comes once the guest runs again
 *
 * Each operation carries a struct virt_op to its completion.  A reboot's second half is
 * deferred to the server's check handle: the destroy completes inside the registry's walk over
 * the VM's waiters, where starting the VM again would park a new waiter on that same list.
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/virt.h"

struct virt_op {
	struct util_list link; /* on the server's deferred list */
	struct api_virt_call *call;
	struct daemon *d;
	char uuid[37];
	bool in_call;  /* the dvm_op_* function has not returned yet */
	bool finished; /* it completed before returning */
	int code;
	char message[512];
	bool transient; /* a reboot: the domain is transient again once restarted */
};

static struct virt_op *op_new(struct api_virt_call *call, struct virt_conn *c, const struct dvm *vm)
{
	struct virt_op *op = calloc(1, sizeof(*op));

	if (!op) {
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot track the operation");
		return NULL;
	}
	util_list_init(&op->link);
	op->call = call;
	op->d = c->srv->d;
	util_strlcpy(op->uuid, vm->cfg.uuid, sizeof(op->uuid));
	return op;
}

/* Records an outcome that arrived before the dvm_op_* function returned. */
static bool early(struct virt_op *op, int code, const char *message)
{
	if (!op->in_call)
		return false;
	op->finished = true;
	op->code = code;
	util_strlcpy(op->message, message ? message : "", sizeof(op->message));
	return true;
}

static void answer(struct virt_op *op, const struct dvm *vm, int code, const char *message)
{
	int32_t proc = api_virt_call_proc(op->call);

	if (code)
		virt_fail_api(op->call, code, message);
	else if (proc == VIRT_PROC_DOMAIN_CREATE_WITH_FLAGS || proc == VIRT_PROC_DOMAIN_CREATE_XML)
		virt_reply_domain(op->call, vm);
	else
		api_virt_reply(op->call, NULL);
	op->call = NULL;
}

/* ---- start ---- */

static void started(struct dvm *vm, void *arg, int code, const char *message)
{
	struct virt_op *op = arg;

	answer(op, vm, code, message);
	free(op);
}

static void create(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	struct virt_op *op;

	if (!vm)
		return;
	if (virt_active(vm)) {
		api_virt_fail(call, VIRT_ERR_OPERATION_INVALID, "domain is already running");
		return;
	}
	op = op_new(call, ctx, vm);
	if (op)
		dvm_op_start(vm, started, op);
}

static void created(struct dvm *vm, void *arg, int code, const char *message)
{
	struct virt_op *op = arg;

	answer(op, vm, code, message);
	if (!early(op, code, message))
		free(op); /* a start that failed later: the registry undefines the domain */
}

static void create_xml(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct daemon *d = c->srv->d;
	struct vmdef cfg;
	struct virt_op *op;
	struct dvm *vm;
	int ret;

	vmdef_init(&cfg);
	if (!virt_parse_xml(call, a->str, a->flags & VIRT_START_VALIDATE, &cfg))
		goto out;
	vm = registry_find(d, cfg.name);
	if (vm || (cfg.uuid[0] && (vm = registry_find_uuid(d, cfg.uuid)))) {
		api_virt_fail(call, VIRT_ERR_DOM_EXIST, "domain '%s' already exists with uuid %s",
			      vm->cfg.name, vm->cfg.uuid);
		goto out;
	}
	ret = registry_define(d, &cfg, &vm);
	if (ret) {
		api_virt_fail(call,
			      ret == -ENOSPC ? VIRT_ERR_OPERATION_FAILED : VIRT_ERR_SYSTEM_ERROR,
			      "cannot define %s: %s", cfg.name,
			      ret == -ENOSPC ? "too many domains" : strerror(-ret));
		goto out;
	}
	vm->undefine_pending = true;
	op = op_new(call, c, vm);
	if (!op) {
		registry_undefine(vm);
		goto out;
	}
	op->in_call = true;
	dvm_op_start(vm, created, op);
	op->in_call = false;
	if (op->finished) {
		if (op->code && !vm->worker)
			registry_undefine(vm); /* it never ran: nothing will undefine it */
		free(op);
	}
out:
	vmdef_fini(&cfg);
}

/* ---- stop ---- */

static void destroyed(struct dvm *vm, void *arg, int code, const char *message)
{
	struct virt_op *op = arg;

	answer(op, vm, code, message);
	free(op);
}

static void destroy(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	struct virt_op *op;

	if (!vm)
		return;
	if (!virt_active(vm)) {
		api_virt_fail(call, VIRT_ERR_OPERATION_INVALID, "domain is not running");
		return;
	}
	op = op_new(call, ctx, vm);
	if (op)
		dvm_op_destroy(vm, destroyed, op);
}

/* The guest went (or the shutdown timed out): the call was answered long ago. */
static void shut_down(struct dvm *vm, void *arg, int code, const char *message)
{
	struct virt_op *op = arg;

	if (!early(op, code, message))
		free(op);
}

static void shutdown_domain(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct dvm *vm = virt_find(c, call, a);
	struct virt_op *op;

	if (!vm)
		return;
	op = op_new(call, c, vm);
	if (!op)
		return;
	op->in_call = true;
	dvm_op_shutdown(vm, c->srv->d->opts.shutdown_timeout_ms, shut_down, op);
	op->in_call = false;
	answer(op, vm, op->finished ? op->code : 0, op->message);
	if (op->finished)
		free(op);
}

/* ---- reboot: destroy, then start from the check phase ---- */

static void reboot_started(struct dvm *vm, void *arg, int code, const char *message)
{
	struct virt_op *op = arg;

	answer(op, vm, code, message);
	if (!early(op, code, message))
		free(op);
}

static void reboot_start(struct virt_op *op)
{
	struct dvm *vm = registry_find_uuid(op->d, op->uuid);

	if (!vm) {
		api_virt_fail(op->call, VIRT_ERR_NO_DOMAIN,
			      "the domain went away during its reboot");
		free(op);
		return;
	}
	if (virt_active(vm)) { /* someone else started it meanwhile */
		vm->undefine_pending = op->transient;
		answer(op, vm, 0, NULL);
		free(op);
		return;
	}
	op->in_call = true;
	dvm_op_start(vm, reboot_started, op);
	op->in_call = false;
	if (op->transient && !vm->worker)
		registry_undefine(vm); /* a transient domain that did not come back is gone */
	else
		vm->undefine_pending = op->transient;
	if (op->finished)
		free(op);
}

static void reboot_stopped(struct dvm *vm, void *arg, int code, const char *message)
{
	struct virt_op *op = arg;
	struct virt_server *srv = op->d->virt;

	if (code || !srv) {
		vm->undefine_pending = op->transient;
		answer(op, vm, code ? code : API_INTERNAL_ERROR,
		       code ? message : "lockstepd is stopping");
		free(op);
		return;
	}
	util_list_add_tail(&srv->deferred, &op->link);
}

static void reboot(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	struct virt_op *op;

	if (!vm)
		return;
	if (!virt_active(vm) || vm->state != DVM_RUNNING) {
		api_virt_fail(call, VIRT_ERR_OPERATION_INVALID, "domain is not running");
		return;
	}
	op = op_new(call, ctx, vm);
	if (!op)
		return;
	/* The destroy must not take a transient domain's definition with it. */
	op->transient = vm->undefine_pending;
	vm->undefine_pending = false;
	dvm_op_destroy(vm, reboot_stopped, op);
}

void virt_run_deferred(struct virt_server *srv)
{
	while (!util_list_empty(&srv->deferred)) {
		struct virt_op *op = util_container_of(srv->deferred.next, struct virt_op, link);

		util_list_del(&op->link);
		reboot_start(op);
	}
}

void virt_drop_deferred(struct virt_server *srv)
{
	while (!util_list_empty(&srv->deferred)) {
		struct virt_op *op = util_container_of(srv->deferred.next, struct virt_op, link);
		struct dvm *vm = registry_find_uuid(op->d, op->uuid);

		util_list_del(&op->link);
		if (vm)
			vm->undefine_pending = op->transient;
		api_virt_fail(op->call, VIRT_ERR_OPERATION_FAILED, "lockstepd is stopping");
		free(op);
	}
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
