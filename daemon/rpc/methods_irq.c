/*
 * The interrupt methods: irq.get (a VM's interrupt report: routes, counters, steering,
 * posting, PCI devices; asked of its worker while it runs, the last run's otherwise) and
 * irq.set (steering of redirectable interrupts on or off, live and/or in the definition,
 * through ops_set_irq_steering).  Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon/daemon.h"
#include "daemon/ops.h"
#include "daemon/rpc/rpc.h"

static void report_replied(struct dvm *vm, void *arg, json_t *result, const char *error, int err)
{
	struct api_call *call = arg;

	if (!result) {
		api_call_fail_errno(call, err ? -err : -EIO, "the worker of %s: %s", vm->cfg.name,
				    error ? error : "no answer");
		return;
	}
	api_call_reply(call, json_pack("{s:s, s:s, s:O}", "name", vm->cfg.name, "state",
				       dvm_state_name(vm->state), "irq", result));
}

void rpc_irq_get(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", NULL };
	struct dvm *vm;
	json_t *last;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)))
		return;
	if (vm->worker && worker_request(vm->worker, VM_CMD_IRQS, report_replied, call) == 0)
		return;
	/* Not running: the report of the run that ended, if there was one. */
	last = vm->last_stats ? json_object_get(vm->last_stats, "irq") : NULL;
	api_call_reply(call, json_pack("{s:s, s:s, s:O?, s:b}", "name", vm->cfg.name, "state",
				       dvm_state_name(vm->state), "irq", last, "final", true));
}

struct steering_call {
	struct api_call *call;
	bool on, stored;
};

static void steering_done(struct dvm *vm, void *arg, int err, const char *message)
{
	struct steering_call *c = arg;

	if (err)
		api_call_fail_err(c->call, err, message);
	else
		api_call_reply(c->call,
			       json_pack("{s:s, s:b, s:b, s:b}", "name", vm->cfg.name, "steering",
					 c->on, "live", true, "config", c->stored));
	free(c);
}

void rpc_irq_set(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "steering", "config", NULL };
	struct steering_call *c;
	bool config = false;
	char err[256];
	struct dvm *vm;
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)))
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		api_call_fail(call, API_INTERNAL_ERROR, "out of memory");
		return;
	}
	c->call = call;
	if (!api_param_bool(call, params, "steering", true, &c->on) ||
	    !api_param_bool(call, params, "config", false, &config)) {
		free(c);
		return;
	}
	ret = ops_set_irq_steering(vm, c->on, config ? OPS_AFFECT_CONFIG : 0, steering_done, c,
				   &c->stored, err, sizeof(err));
	if (ret == OPS_PENDING)
		return;
	if (ret)
		api_call_fail_err(call, ret, err);
	else
		api_call_reply(call,
			       json_pack("{s:s, s:b, s:b, s:b}", "name", vm->cfg.name, "steering",
					 c->on, "live", false, "config", c->stored));
	free(c);
}
