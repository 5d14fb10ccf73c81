/*
 * The scheduling methods: sched.get (a VM's policy and parameters: the running VM's while it
 * runs, with the stored ones that differ as "pending"), sched.set (change them, live and/or in
 * the definition) and sched.stats (the scheduler's accounting of a VM or of
 * every running VM, plus the scheduler's own cost and its recent gang slices).
 * Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/rpc/rpc.h"

static json_t *sched_json(const struct vmdef_sched *sc)
{
	json_t *out = json_pack("{s:s, s:I, s:I}", "policy", vmdef_sched_policy_name(sc->policy),
				"quantum_us", (json_int_t)sc->quantum_us, "skew_us",
				(json_int_t)sc->skew_us);
	char list[1024];

	if (sc->has_cpus && !util_cpuset_format(&sc->cpus, list, sizeof(list)))
		json_object_set_new(out, "cpus", json_string(list));
	return out;
}

/* While the VM runs, the stored settings that differ from the running ones (they apply at
 * its next start) as "pending": {"policy": ..., ...}. */
static void pending_sched(json_t *out, struct dvm *vm)
{
	json_t *live, *stored, *pending, *v;
	const char *key;

	if (!vm->worker || !vm->live)
		return;
	live = sched_json(&vm->live->sched);
	stored = sched_json(&vm->cfg.sched);
	pending = json_object();
	json_object_foreach(stored, key, v)
		if (!json_equal(v, json_object_get(live, key)))
			json_object_set(pending, key, v);
	if (json_object_get(live, "cpus") && !json_object_get(stored, "cpus"))
		json_object_set_new(pending, "cpus", json_null());
	if (json_object_size(pending))
		json_object_set(out, "pending", pending);
	json_decref(pending);
	json_decref(live);
	json_decref(stored);
}

void rpc_sched_get(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", NULL };
	struct dvm *vm;
	json_t *out;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)))
		return;
	out = sched_json(&dvm_def(vm)->sched);
	json_object_set_new(out, "name", json_string(vm->cfg.name));
	json_object_set_new(out, "scheduled", json_boolean(vm->scheduled));
	json_object_set_new(out, "running", json_boolean(vm->worker != NULL));
	pending_sched(out, vm);
	api_call_reply(call, out);
}

void rpc_sched_set(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name",	  "policy", "quantum_us",
					       "skew_us", "config", NULL };
	struct daemon *d = ctx;
	uint64_t quantum = 0, skew = 0;
	const char *policy_name = NULL;
	enum vmdef_sched_policy policy;
	bool config = false, live, stored;
	struct vmdef_sched now;
	char err[512];
	struct dvm *vm;
	json_t *out;
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(d, call, params)) ||
	    !api_param_string(call, params, "policy", false, 16, &policy_name) ||
	    !api_param_uint(call, params, "quantum_us", false, VMDEF_QUANTUM_US_MIN,
			    VMDEF_QUANTUM_US_MAX, &quantum) ||
	    !api_param_uint(call, params, "skew_us", false, VMDEF_SKEW_US_MIN, VMDEF_SKEW_US_MAX,
			    &skew) ||
	    !api_param_bool(call, params, "config", false, &config))
		return;
	policy = dvm_def(vm)->sched.policy; /* unchanged unless named */
	if (policy_name && vmdef_sched_policy_parse(policy_name, &policy)) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameter \"policy\" must be one of host, "
			      "pinned, gang, relaxed, adaptive, mux");
		return;
	}
	ret = ops_set_sched(vm, policy, (uint32_t)quantum, (uint32_t)skew,
			    config ? OPS_AFFECT_CONFIG : 0, &now, &live, &stored, err, sizeof(err));
	if (ret) {
		api_call_fail_err(call, ret, err);
		return;
	}
	out = json_pack("{s:s, s:o, s:b, s:b}", "name", vm->cfg.name, "sched", sched_json(&now),
			"live", live, "config", stored);
	pending_sched(out, vm);
	api_call_reply(call, out);
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

void rpc_sched_stats(void *ctx, struct api_call *call, json_t *params)
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
		struct dvm *vm = rpc_find_vm(d, call, params);

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
