/*
 * The JSON-RPC methods of lockstepd.  Each handler checks its parameters (naming any that is
 * wrong), finds its VM, and hands a state change to daemon/ops.h, turning its -errno into a
 * JSON-RPC error with api_call_fail_err (the one table); a change that waits for the guest
 * (vm.start, vm.shutdown, vm.destroy) answers when the operation does.  Loop thread only.
 */
#include <errno.h>
#include <sched.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/rpc/rpc.h"

#define CONSOLE_READ_MAX (1u << 20)

static const char *const name_only[] = { "name", NULL };

struct dvm *rpc_find_vm(struct daemon *d, struct api_call *call, json_t *params)
{
	const char *name;
	struct dvm *vm;

	if (!api_param_string(call, params, "name", true, VMDEF_NAME_MAX + 64, &name))
		return NULL;
	vm = registry_find(d, name);
	if (!vm) {
		char err[128];

		snprintf(err, sizeof(err), "no VM named \"%.64s\"", name);
		api_call_fail_err(call, -ENOENT, err);
	}
	return vm;
}

/* Adds obj's leaves to `out` under dotted keys ("sched.policy"); arrays are leaves. */
static void flatten(json_t *out, const char *prefix, json_t *obj)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		char path[128];

		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", key);
		if (json_is_object(v))
			flatten(out, path, v);
		else
			json_object_set(out, path, v);
	}
}

json_t *rpc_vm_pending(struct dvm *vm)
{
	static const char *const not_run[] = { "autostart", "serial.stdout", NULL };
	json_t *live, *stored, *flat_live, *flat_stored, *pending, *v;
	const char *key;

	if (!vm->worker || !vm->live)
		return NULL;
	live = vmdef_to_json(vm->live);
	stored = vmdef_to_json(&vm->cfg);
	flat_live = json_object();
	flat_stored = json_object();
	pending = json_object();
	flatten(flat_live, "", live);
	flatten(flat_stored, "", stored);
	for (const char *const *k = not_run; *k; k++) {
		json_object_del(flat_live, *k);
		json_object_del(flat_stored, *k);
	}
	json_object_foreach(flat_stored, key, v)
		if (!json_equal(v, json_object_get(flat_live, key)))
			json_object_set(pending, key, v);
	json_object_foreach(flat_live, key, v)
		if (!json_object_get(flat_stored, key))
			json_object_set_new(pending, key, json_null());
	json_decref(live);
	json_decref(stored);
	json_decref(flat_live);
	json_decref(flat_stored);
	if (!json_object_size(pending)) {
		json_decref(pending);
		return NULL;
	}
	return pending;
}

json_t *rpc_vm_summary(struct dvm *vm)
{
	/* What the VM runs with while it runs; the stored definition otherwise. */
	const struct vmdef *def = dvm_def(vm);
	json_t *out, *pending;

	out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:i, s:i, s:b, s:s, s:s, s:i}", "name",
			vm->cfg.name, "uuid", vm->cfg.uuid, "state", dvm_state_name(vm->state),
			"reason", vm->reason, "vcpus", (int)def->vcpus, "memory_mib",
			(json_int_t)(def->memory >> 20), "id", vm->domain_id, "pid",
			vm->worker ? (int)vm->worker->pid : 0, "autostart", vm->cfg.autostart,
			"on_crash", vmdef_on_crash_name(def->on_crash), "policy",
			vmdef_sched_policy_name(def->sched.policy), "last_status", vm->last_status);
	if (!out)
		return NULL;
	if (vm->error[0])
		json_object_set_new(out, "error", json_string(vm->error));
	pending = rpc_vm_pending(vm);
	if (pending)
		json_object_set_new(out, "pending", pending);
	if (vm->restart_pending)
		json_object_set_new(out, "restart",
				    json_pack("{s:I, s:f, s:i, s:s}", "at",
					      (json_int_t)vm->restart_at, "delay_s",
					      (double)vm->restart_delay_ms / 1000.0, "attempt",
					      (int)vm->quick_ends, "after",
					      vm->restart_reboot ? "reset" : "crash"));
	return out;
}

/* Completes a JSON-RPC call from a VM operation: the VM's summary, or the error. */
static void reply_summary(struct dvm *vm, void *arg, int err, const char *message)
{
	struct api_call *call = arg;

	if (err)
		api_call_fail_err(call, err, message);
	else
		api_call_reply(call, rpc_vm_summary(vm));
}

/* An operation that may wait for the guest: answered now, or later by reply_summary. */
static void answer_op(struct api_call *call, struct dvm *vm, int ret, const char *err)
{
	if (ret < 0)
		api_call_fail_err(call, ret, err);
	else if (ret != OPS_PENDING)
		api_call_reply(call, rpc_vm_summary(vm));
}

/* ---- daemon ---- */

static void daemon_info(void *ctx, struct api_call *call, json_t *params)
{
	struct daemon *d = ctx;
	static const char *const none[] = { NULL };
	struct util_list *pos;
	int running = 0;

	if (!api_params_only(call, params, none))
		return;
	util_list_for_each(pos, &d->vms)
		running += util_container_of(pos, struct dvm, link)->worker != NULL;
	api_call_reply(
		call,
		json_pack("{s:s, s:i, s:f, s:s, s:s, s:s, s:s, s:{s:i, s:i}, s:i, s:o, s:o, s:o}",
			  "version", LOCKSTEP_VERSION, "pid", (int)getpid(), "uptime_s",
			  (double)(util_now_ns() - d->start_ns) / 1e9, "socket",
			  d->opts.socket_path, "run_dir", d->opts.run_dir, "state_dir",
			  d->opts.state_dir, "log",
			  d->opts.log_file[0] ? d->opts.log_file : "stderr", "vms", "defined",
			  (int)registry_count(d), "running", running, "clients",
			  d->rpc ? (int)d->rpc->nr_clients : 0, "topology", topology_json(d),
			  "host", hostcheck_summary_json(d), "confinement", confine_json(d)));
}

static void events_subscribe(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const none[] = { NULL };
	struct rpc_client *c = rpc_call_client(call);

	if (!api_params_only(call, params, none))
		return;
	if (c)
		c->subscribed = true;
	api_call_reply(call, json_pack("{s:b}", "subscribed", true));
}

/* ---- definitions ---- */

/* A definition is lockstep's JSON ("definition") or libvirt domain XML ("xml"), as virsh
 * define takes it. */
static void vm_define(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "definition", "xml", NULL };
	struct daemon *d = ctx;
	json_t *def = json_object_get(params, "definition");
	const char *xml = NULL;
	struct vmdef cfg;
	struct dvm *vm;
	char err[512];
	bool created;
	int ret;

	if (!api_params_only(call, params, allowed) ||
	    !api_param_string(call, params, "xml", false, DOMXML_MAX, &xml))
		return;
	if (!!def == !!xml) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "vm.define takes one of \"definition\" (an object) and \"xml\" "
			      "(libvirt domain XML)");
		return;
	}
	if (def && !json_is_object(def)) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameter \"definition\" must be an object");
		return;
	}
	vmdef_init(&cfg);
	if (xml)
		ret = domxml_parse(xml, strlen(xml), NULL, &cfg, err, sizeof(err));
	else
		ret = vmdef_from_json(&cfg, def, err, sizeof(err));
	if (!ret)
		ret = ops_define(d, &cfg, 0, &vm, &created, err, sizeof(err));
	if (ret)
		api_call_fail_err(call, ret, err);
	else /* pending: the VM runs on with its definition; this one applies at its next start */
		api_call_reply(call, json_pack("{s:s, s:s, s:b, s:b}", "name", vm->cfg.name, "uuid",
					       vm->cfg.uuid, "created", created, "pending",
					       vm->worker != NULL));
	vmdef_fini(&cfg);
}

static void vm_undefine(void *ctx, struct api_call *call, json_t *params)
{
	char name[VMDEF_NAME_MAX + 1], err[512];
	struct dvm *vm;
	int ret;

	if (!api_params_only(call, params, name_only) || !(vm = rpc_find_vm(ctx, call, params)))
		return;
	strcpy(name, vm->cfg.name);
	ret = ops_undefine(vm, 0, err, sizeof(err));
	if (ret)
		api_call_fail_err(call, ret, err);
	else
		api_call_reply(call, json_pack("{s:s}", "name", name));
}

/* ---- lifecycle ---- */

static void vm_start(void *ctx, struct api_call *call, json_t *params)
{
	struct dvm *vm;
	char err[512];

	if (api_params_only(call, params, name_only) && (vm = rpc_find_vm(ctx, call, params)))
		answer_op(call, vm, ops_start(vm, reply_summary, call, err, sizeof(err)), err);
}

static void vm_shutdown(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "timeout", NULL };
	struct daemon *d = ctx;
	uint64_t timeout = d->opts.shutdown_timeout_ms / 1000;
	struct dvm *vm;
	char err[512];

	if (api_params_only(call, params, allowed) && (vm = rpc_find_vm(d, call, params)) &&
	    api_param_uint(call, params, "timeout", false, 1, 3600, &timeout))
		answer_op(call, vm,
			  ops_shutdown(vm, timeout * 1000, reply_summary, call, err, sizeof(err)),
			  err);
}

static void vm_destroy(void *ctx, struct api_call *call, json_t *params)
{
	struct dvm *vm;
	char err[512];

	if (api_params_only(call, params, name_only) && (vm = rpc_find_vm(ctx, call, params)))
		answer_op(call, vm, ops_destroy(vm, reply_summary, call, err, sizeof(err)), err);
}

static void vm_reboot(void *ctx, struct api_call *call, json_t *params)
{
	struct dvm *vm;
	char err[512];

	if (api_params_only(call, params, name_only) && (vm = rpc_find_vm(ctx, call, params)))
		answer_op(call, vm, ops_reboot(vm, reply_summary, call, err, sizeof(err)), err);
}

static void vm_autostart(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "enabled", NULL };
	bool enabled = true;
	struct dvm *vm;
	char err[512];
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)) ||
	    !api_param_bool(call, params, "enabled", true, &enabled))
		return;
	ret = ops_set_autostart(vm, enabled, err, sizeof(err));
	if (ret)
		api_call_fail_err(call, ret, err);
	else
		api_call_reply(call, rpc_vm_summary(vm));
}

static void vm_list(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "state", NULL };
	struct daemon *d = ctx;
	const char *state = NULL;
	enum dvm_state want = DVM_SHUTOFF;
	bool active = false;
	struct util_list *pos;
	json_t *list;

	if (!api_params_only(call, params, allowed) ||
	    !api_param_string(call, params, "state", false, 16, &state))
		return;
	if (state && !(active = strcmp(state, "active") == 0) && dvm_state_parse(state, &want)) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameter \"state\" must be one of shutoff, starting, running, "
			      "stopping, crashed, failed, active");
		return;
	}
	list = json_array();
	util_list_for_each(pos, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (!state || (active ? vm->worker != NULL : vm->state == want))
			json_array_append_new(list, rpc_vm_summary(vm));
	}
	api_call_reply(call, list);
}

/* ---- information ---- */

/* One vCPU thread as the host sees it: affinity, state and where it last ran. */
static json_t *vcpu_json(pid_t pid, uint32_t vcpu, int tid)
{
	json_t *out = json_pack("{s:i, s:i}", "vcpu", (int)vcpu, "tid", tid);
	struct util_proc_stat st;
	cpu_set_t set;

	if (tid > 0 && sched_getaffinity(tid, sizeof(set), &set) == 0) {
		struct util_cpuset cs = { { 0 } };
		char list[256];

		for (unsigned c = 0; c < CPU_SETSIZE && c < UTIL_CPUSET_MAX; c++)
			if (CPU_ISSET(c, &set))
				util_cpuset_add(&cs, c);
		if (!util_cpuset_format(&cs, list, sizeof(list)))
			json_object_set_new(out, "affinity", json_string(list));
	}
	if (tid > 0 && util_proc_stat_read((int)pid, tid, &st) == 0) {
		json_object_set_new(out, "thread_state", json_sprintf("%c", st.state));
		json_object_set_new(out, "cpu", json_integer(st.cpu));
	}
	return out;
}

static json_t *info_json(struct dvm *vm)
{
	json_t *info = rpc_vm_summary(vm);
	json_t *vcpus = json_array();

	/* The stored definition; the run's own while it runs (they differ in "pending"). */
	json_object_set_new(info, "definition", vmdef_to_json(&vm->cfg));
	if (vm->worker && vm->live)
		json_object_set_new(info, "live", vmdef_to_json(vm->live));
	for (uint32_t i = 0; vm->worker && i < vm->worker->nr_vcpus; i++)
		json_array_append_new(vcpus, vcpu_json(vm->worker->pid, i, vm->worker->tids[i]));
	json_object_set_new(info, "vcpu", vcpus);
	if (!vm->worker && (vm->last_stats || vm->last_sched))
		json_object_set_new(info, "last_run",
				    json_pack("{s:O*, s:O*}", "stats", vm->last_stats, "sched",
					      vm->last_sched));
	return info;
}

static void stats_replied(struct dvm *vm, void *arg, json_t *result, const char *error, int err)
{
	struct api_call *call = arg;
	json_t *info = info_json(vm);

	if (result) {
		json_object_set(info, "stats", result);
		/* The interrupt report, where people look for it (also `lockstep vm irqs`). */
		if (json_object_get(result, "irq"))
			json_object_set(info, "irq", json_object_get(result, "irq"));
		/* The DMA remapping report (also `lockstep vm devices`), with the host's part. */
		if (json_object_get(result, "passthrough")) {
			json_t *pt = json_deep_copy(json_object_get(result, "passthrough"));

			dvm_devices_report_complete(pt);
			json_object_set_new(info, "passthrough", pt);
		}
	} else
		json_object_set_new(info, "stats_error", json_string(error));
	api_call_reply(call, info);
}

static void vm_info(void *ctx, struct api_call *call, json_t *params)
{
	struct dvm *vm;

	if (!api_params_only(call, params, name_only) || !(vm = rpc_find_vm(ctx, call, params)))
		return;
	if (!vm->worker || worker_request(vm->worker, VM_CMD_STATS, stats_replied, call) != 0)
		api_call_reply(call, info_json(vm));
}

/* Where the last `lines` lines of the console log begin (tail -n), looking back at most
 * CONSOLE_READ_MAX bytes. */
static uint64_t lines_offset(struct dvm *vm, uint64_t size, uint64_t lines)
{
	uint64_t from, off;
	unsigned char *data;
	size_t len;

	from = size > CONSOLE_READ_MAX ? size - CONSOLE_READ_MAX : 0;
	if (console_read(vm, from, CONSOLE_READ_MAX, &data, &len, &size) || !len)
		return size;
	off = len;
	if (data[off - 1] == '\n') /* the last line's own newline starts no line */
		off--;
	while (off > 0) {
		if (data[off - 1] == '\n' && --lines == 0)
			break;
		off--;
	}
	free(data);
	return from + off;
}

static void vm_console(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name",	"offset", "max",    "tail",
					       "lines", "all",	  "follow", NULL };
	uint64_t offset = 0, max = CONSOLE_READ_MAX, tail = 0, lines = 0, size = 0;
	struct rpc_client *c;
	bool follow = false, all = false;
	struct dvm *vm;
	char path[PATH_MAX];
	struct stat st;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)) ||
	    !api_param_uint(call, params, "offset", false, 0, UINT64_MAX >> 1, &offset) ||
	    !api_param_uint(call, params, "max", false, 0, CONSOLE_READ_MAX, &max) ||
	    !api_param_uint(call, params, "tail", false, 1, CONSOLE_READ_MAX, &tail) ||
	    !api_param_uint(call, params, "lines", false, 1, 1000000, &lines) ||
	    !api_param_bool(call, params, "all", false, &all) ||
	    !api_param_bool(call, params, "follow", false, &follow))
		return;
	if (!!json_object_get(params, "offset") + !!tail + !!lines + all > 1) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameters \"offset\", \"tail\", \"lines\" and \"all\" exclude "
			      "each other");
		return;
	}
	if (stat(store_console_path(vm, path, sizeof(path)), &st) == 0)
		size = (uint64_t)st.st_size;
	if (tail)
		offset = size > tail ? size - tail : 0;
	else if (lines)
		offset = lines_offset(vm, size, lines);
	else if (!all && !json_object_get(params, "offset"))
		/* By default the current (or last) run's console, from its start marker. */
		offset = vm->console_start <= size ? vm->console_start : 0;
	c = rpc_call_client(call);
	rpc_console_reply(vm, call, offset, max, follow ? c : NULL);
}

static void vcpu_pin(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "vcpu", "cpus", "config", NULL };
	struct util_cpuset cpus;
	bool config = false, live, stored;
	const char *list;
	uint64_t vcpu;
	struct dvm *vm;
	char err[256];
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)) ||
	    !api_param_uint(call, params, "vcpu", true, 0, VMDEF_VCPUS_MAX - 1, &vcpu) ||
	    !api_param_string(call, params, "cpus", true, 1024, &list) ||
	    !api_param_bool(call, params, "config", false, &config))
		return;
	if (util_cpuset_parse(list, &cpus)) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameter \"cpus\" must be a CPU list such as \"0-3,6\"");
		return;
	}
	ret = ops_pin(vm, (uint32_t)vcpu, &cpus, config ? OPS_AFFECT_CONFIG : 0, &live, &stored,
		      err, sizeof(err));
	if (ret) {
		api_call_fail_err(call, ret, err);
		return;
	}
	api_call_reply(call,
		       json_pack("{s:s, s:I, s:s, s:b, s:b}", "name", vm->cfg.name, "vcpu",
				 (json_int_t)vcpu, "cpus", list, "live", live, "config", stored));
}

const struct api_method rpc_methods[] = {
	{ "daemon.info", daemon_info, false },
	{ "events.subscribe", events_subscribe, false },
	{ "vm.define", vm_define, true },
	{ "vm.undefine", vm_undefine, true },
	{ "vm.start", vm_start, true },
	{ "vm.shutdown", vm_shutdown, true },
	{ "vm.destroy", vm_destroy, true },
	{ "vm.reboot", vm_reboot, true },
	{ "vm.autostart", vm_autostart, true },
	{ "vm.list", vm_list, false },
	{ "vm.info", vm_info, false },
	{ "vm.console", vm_console, false },
	{ "vcpu.pin", vcpu_pin, true },
	{ "sched.get", rpc_sched_get, false },
	{ "sched.set", rpc_sched_set, true },
	{ "sched.stats", rpc_sched_stats, false },
	{ "host.check", rpc_host_check, false },
	{ "irq.get", rpc_irq_get, false },
	{ "irq.set", rpc_irq_set, true },
	{ "device.list", rpc_device_list, false },
	{ "device.attach", rpc_device_attach, true },
	{ "device.detach", rpc_device_detach, true },
	{ "device.host", rpc_device_host, false },
	{ "vm.console_attach", rpc_console_attach, true },
	{ "vm.console_input", rpc_console_input, true },
	{ "vm.console_detach", rpc_console_detach, false },
};

const size_t rpc_nr_methods = sizeof(rpc_methods) / sizeof(rpc_methods[0]);
