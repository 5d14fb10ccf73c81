/*
 * The passthrough methods: device.list (a VM's devices as defined, where each is on the host
 * now, and the DMA remapping report of the running VM or of its last run), device.attach and
 * device.detach (cold: a shut-off VM's definition, through daemon/ops.h), and device.host (the
 * host's PCI devices, their IOMMU groups and drivers, and what lockstep could do with each).
 * The worker's report is completed with what only the host can see: how many interrupts each
 * device raised and through which interrupt chip (/proc/interrupts).  Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/ops.h"
#include "daemon/rpc/rpc.h"
#include "iommu/iommu.h"

/* The definition's devices, each with where it is on the host now. */
static json_t *defined_json(struct dvm *vm)
{
	json_t *list = json_array();

	for (uint32_t i = 0; list && i < vm->cfg.nr_devices; i++) {
		const struct vmdef_device *d = &vm->cfg.devices[i];
		json_t *dev = vmdef_device_json(d);
		struct iommu_pci pci;

		json_object_set_new(dev, "index", json_integer(i));
		if (d->host[0] && iommu_pci_read("", d->host, &pci) == 0) {
			const char *holder = dvm_devices_holder(vm->d, d->host, pci.group);

			json_object_set_new(dev, "on_host",
					    json_pack("{s:s, s:i, s:s, s:s?}", "driver", pci.driver,
						      "iommu_group", pci.group, "iommu", pci.unit,
						      "vm", holder));
		} else if (d->host[0]) {
			json_object_set_new(dev, "on_host", json_null()); /* not there */
		}
		json_array_append_new(list, dev);
	}
	return list;
}

static json_t *list_json(struct dvm *vm)
{
	return json_pack("{s:s, s:s, s:o}", "name", vm->cfg.name, "state",
			 dvm_state_name(vm->state), "devices", defined_json(vm));
}

static void report_replied(struct dvm *vm, void *arg, json_t *result, const char *error, int err)
{
	struct api_call *call = arg;
	json_t *out = list_json(vm);

	if (result && json_object_size(result)) {
		json_t *report = json_deep_copy(result);

		dvm_devices_report_complete(report);
		json_object_set_new(out, "passthrough", report);
	} else if (!result) {
		json_object_set_new(out, "report_error",
				    json_string(error ? error : "no answer from the worker"));
	}
	api_call_reply(call, out);
}

void rpc_device_list(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", NULL };
	json_t *out, *last;
	struct dvm *vm;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)))
		return;
	if (vm->worker && worker_request(vm->worker, VM_CMD_DEVICES, report_replied, call) == 0)
		return;
	out = list_json(vm);
	last = vm->last_stats ? json_object_get(vm->last_stats, "passthrough") : NULL;
	if (last) /* the last run's, as it ended */
		json_object_set_new(out, "passthrough",
				    json_pack("{s:O, s:b}", "report", last, "final", true));
	api_call_reply(call, out);
}

void rpc_device_attach(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "device", NULL };
	struct vmdef_device dev;
	char err[768];
	unsigned index;
	struct dvm *vm;
	json_t *obj;
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)))
		return;
	obj = json_object_get(params, "device");
	if (!json_is_object(obj)) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameter \"device\" must be a device object such as {\"type\": "
			      "\"vfio-pci\", \"host\": \"0000:03:00.0\"}");
		return;
	}
	if (vmdef_device_from_json(obj, &dev, err, sizeof(err))) {
		api_call_fail_err(call, -EINVAL, err);
		return;
	}
	ret = ops_device_attach(vm, &dev, &index, err, sizeof(err));
	if (ret)
		api_call_fail_err(call, ret, err);
	else
		api_call_reply(call, json_pack("{s:s, s:i, s:o}", "name", vm->cfg.name, "index",
					       (int)index, "device",
					       vmdef_device_json(&vm->cfg.devices[index])));
	vmdef_device_fini(&dev);
}

void rpc_device_detach(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "host", NULL };
	const char *host;
	char err[512];
	struct dvm *vm;
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)) ||
	    !api_param_string(call, params, "host", true, 32, &host))
		return;
	ret = ops_device_detach(vm, host, err, sizeof(err));
	if (ret)
		api_call_fail_err(call, ret, err);
	else
		api_call_reply(call, json_pack("{s:s, s:s}", "name", vm->cfg.name, "host", host));
}

void rpc_device_host(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const none[] = { NULL };
	char why[768] = "";
	int ret;

	if (!api_params_only(call, params, none))
		return;
	ret = hostcheck_iommu_ready(ctx, NULL, why, sizeof(why));
	api_call_reply(call, json_pack("{s:b, s:s, s:o}", "iommu_ready", ret == 0, "why",
				       ret ? why : "", "devices", dvm_devices_host_json(ctx)));
}
