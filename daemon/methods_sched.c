/*
 * The scheduling methods: sched.get (a VM's policy and parameters), sched.set (change them,
 * live and/or in the definition) and sched.stats (the scheduler's accounting of a VM or of
 * every running VM, plus the scheduler's own cost and its recent gang slices).
 * Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/daemon.h"

static json_t *sched_json(const struct vmdef *cfg)
{
	json_t *out =
		json_pack("{s:s, s:I, s:I}", "policy", vmdef_sched_policy_name(cfg->sched.policy),
			  "quantum_us", (json_int_t)cfg->sched.quantum_us, "skew_us",
			  (json_int_t)cfg->sched.skew_us);
	char list[1024];

	if (cfg->sched.has_cpus && !util_cpuset_format(&cfg->sched.cpus, list, sizeof(list)))
		json_object_set_new(out, "cpus", json_string(list));
	return out;
}

void method_sched_get(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", NULL };
	struct dvm *vm;
	json_t *out;

	if (!api_params_only(call, params, allowed) || !(vm = method_find_vm(ctx, call, params)))
		return;
	out = sched_json(&vm->cfg);
	json_object_set_new(out, "name", json_string(vm->cfg.name));
	json_object_set_new(out, "scheduled", json_boolean(vm->scheduled));
	api_call_reply(call, out);
}

void method_sched_set(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name",	  "policy", "quantum_us",
					       "skew_us", "config", NULL };
	struct daemon *d = ctx;
	uint64_t quantum = 0, skew = 0;
	const char *policy_name = NULL;
	struct vmdef next;
	bool config = false, live = false;
	enum vmdef_sched_policy policy;
	char err[512];
	struct dvm *vm;
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = method_find_vm(d, call, params)) ||
	    !api_param_string(call, params, "policy", false, 16, &policy_name) ||
	    !api_param_uint(call, params, "quantum_us", false, 100, 1000000, &quantum) ||
	    !api_param_uint(call, params, "skew_us", false, 10, 1000000, &skew) ||
	    !api_param_bool(call, params, "config", false, &config))
		return;
	policy = vm->cfg.sched.policy;
	if (policy_name && vmdef_sched_policy_parse(policy_name, &policy)) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameter \"policy\" must be one of host, "
			      "pinned, gang, relaxed, adaptive");
		return;
	}
	if (vmdef_copy(&next, &vm->cfg)) {
		api_call_fail(call, API_INTERNAL_ERROR, "out of memory");
		return;
	}
	next.sched.policy = policy;
	if (quantum)
		next.sched.quantum_us = (uint32_t)quantum;
	if (skew)
		next.sched.skew_us = (uint32_t)skew;
	ret = dvm_sched_check(d, &next, err, sizeof(err));
	if (!ret && vm->scheduled) {
		ret = scheduler_set_policy(d->scheduler, vm->domain_id, policy, quantum * 1000,
					   skew * 1000, err, sizeof(err));
		live = ret == 0;
	}
	if (ret) {
		api_call_fail(call, API_INVALID_PARAMS, "%s", err);
		goto out;
	}
	if (config || !vm->worker) {
		ret = registry_redefine(vm, &next);
		if (ret) {
			api_call_fail_errno(call, ret, "cannot store the definition of %s",
					    vm->cfg.name);
			goto out;
		}
		config = true;
	}
	api_call_reply(call, json_pack("{s:s, s:o, s:b, s:b}", "name", vm->cfg.name, "sched",
				       sched_json(&next), "live", live, "config", config));
out:
	vmdef_fini(&next);
}

static json_t *vm_stats(struct daemon *d, struct dvm *vm)
{
	json_t *st = vm->scheduled ? scheduler_stats_json(d->scheduler, vm->domain_id) : NULL;
	json_t *out = json_pack("{s:s, s:s, s:b}", "name", vm->cfg.name, "state",
				dvm_state_name(vm->state), "scheduled", vm->scheduled);

	if (st) {
		json_object_update_new(out, st);
	} else if (!vm->scheduled && vm->last_sched) {
		/* The accounting of the run that ended, so a caller need not race the stop. */
		json_object_update(out, vm->last_sched);
		json_object_set_new(out, "final", json_true());
	}
	return out;
}

void method_sched_stats(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "slices", NULL };
	struct daemon *d = ctx;
	struct util_list *pos;
	uint64_t slices = 0;
	json_t *vms, *out;

	if (!api_params_only(call, params, allowed) ||
	    !api_param_uint(call, params, "slices", false, 0, 256, &slices))
		return;
	vms = json_array();
	if (json_object_get(params, "name")) {
		struct dvm *vm = method_find_vm(d, call, params);

		if (!vm) {
			json_decref(vms);
			return;
		}
		json_array_append_new(vms, vm_stats(d, vm));
	} else {
		util_list_for_each(pos, &d->vms) {
			struct dvm *vm = util_container_of(pos, struct dvm, link);

			if (vm->scheduled)
				json_array_append_new(vms, vm_stats(d, vm));
		}
	}
	out = json_pack("{s:o, s:o}", "vms", vms, "scheduler", scheduler_self_json(d->scheduler));
	if (slices)
		json_object_set_new(out, "slices",
				    scheduler_slices_json(d->scheduler, (unsigned)slices));
	api_call_reply(call, out);
}
