/*
 * VM definitions, second half: the cross-field rules (vm_config_validate) and the way back to
 * JSON (vm_config_to_json), which lockstepd uses to store definitions and report them.
 * Writing out every field, defaults included, makes a stored definition mean the same thing
 * after an upgrade that changes a default.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vm/vm.h"

/* Fails with a message for a person; -EINVAL. */
#define fail(err, err_len, ...) util_error((err), (err_len), -EINVAL, __VA_ARGS__)

int vm_config_validate(const struct vm_config *cfg, char *err, size_t err_len)
{
	if (!cfg->name[0])
		return fail(err, err_len, "the VM needs a \"name\"");
	if (!cfg->kernel || !cfg->kernel[0])
		return fail(err, err_len, "the VM needs a \"kernel\" (a multiboot image)");
	if (cfg->vcpus < 1 || cfg->vcpus > VM_VCPUS_MAX)
		return fail(err, err_len, "\"vcpus\" must be between 1 and %d", VM_VCPUS_MAX);
	if (cfg->memory < VM_MEMORY_MIN || cfg->memory > VM_MEMORY_MAX)
		return fail(err, err_len, "\"memory\" must be between 2 MiB and 256 GiB");
	if (cfg->serial_log && !cfg->serial_log[0])
		return fail(err, err_len, "\"serial.log\" must not be empty");
	for (uint32_t i = 0; i < cfg->sched.nr_pins; i++) {
		const struct vm_pin *pin = &cfg->sched.pins[i];

		if (pin->vcpu >= cfg->vcpus)
			return fail(err, err_len,
				    "\"sched.pin.%u\" names a vCPU the VM does not have (%u vCPUs)",
				    pin->vcpu, cfg->vcpus);
		for (uint32_t j = 0; j < i; j++)
			if (cfg->sched.pins[j].vcpu == pin->vcpu)
				return fail(err, err_len, "vCPU %u is pinned twice", pin->vcpu);
	}
	for (uint32_t i = 0; i < cfg->nr_devices; i++)
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(cfg->devices[i].host, cfg->devices[j].host) == 0)
				return fail(err, err_len, "device %s is listed twice",
					    cfg->devices[i].host);
	return 0;
}

static json_t *cpuset_json(const struct util_cpuset *set)
{
	char buf[4096];

	if (util_cpuset_format(set, buf, sizeof(buf)))
		return NULL;
	return json_string(buf);
}

static json_t *sched_json(const struct vm_sched_config *sc)
{
	json_t *pins = json_object();
	json_t *obj;

	if (!pins)
		return NULL;
	for (uint32_t i = 0; i < sc->nr_pins; i++) {
		char key[16];

		snprintf(key, sizeof(key), "%u", sc->pins[i].vcpu);
		json_object_set_new(pins, key, cpuset_json(&sc->pins[i].cpus));
	}
	obj = json_pack("{s:s, s:I, s:I, s:o}", "policy", vm_sched_policy_name(sc->policy),
			"quantum_us", (json_int_t)sc->quantum_us, "skew_us",
			(json_int_t)sc->skew_us, "pin", pins);
	if (obj && sc->has_cpus)
		json_object_set_new(obj, "cpus", cpuset_json(&sc->cpus));
	return obj;
}

static json_t *pvlock_json(const struct vm_pvlock_config *pc)
{
	json_t *features;

	if (pc->kvm_features == VM_KVM_FEATURES_HOST) {
		features = json_string("host");
	} else {
		features = json_array();
		for (unsigned bit = 0; features && bit < 32; bit++)
			if ((pc->kvm_features & (1u << bit)) && vm_kvm_feature_name(bit))
				json_array_append_new(features,
						      json_string(vm_kvm_feature_name(bit)));
	}
	return json_pack("{s:b, s:o, s:s}", "enabled", pc->enabled, "kvm_features", features,
			 "pause_exits", vm_pause_exits_name(pc->pause_exits));
}

json_t *vm_config_to_json(const struct vm_config *cfg)
{
	json_t *obj, *devices, *serial;

	devices = json_array();
	serial = json_pack("{s:b}", "stdout", cfg->serial_stdout);
	if (!devices || !serial)
		goto err;
	if (cfg->serial_log)
		json_object_set_new(serial, "log", json_string(cfg->serial_log));
	for (uint32_t i = 0; i < cfg->nr_devices; i++)
		json_array_append_new(devices, json_pack("{s:s, s:s}", "type", cfg->devices[i].type,
							 "host", cfg->devices[i].host));
	obj = json_pack("{s:s, s:I, s:I, s:o, s:s, s:b, s:o, s:o, s:{s:b}, s:o}", "name", cfg->name,
			"vcpus", (json_int_t)cfg->vcpus, "memory", (json_int_t)(cfg->memory >> 20),
			"serial", serial, "on_crash", vm_on_crash_name(cfg->on_crash), "autostart",
			cfg->autostart, "sched", sched_json(&cfg->sched), "pvlock",
			pvlock_json(&cfg->pvlock), "irq", "steering", cfg->irq.steering, "devices",
			devices);
	if (!obj)
		return NULL; /* json_pack's "o" stole serial and devices even on failure */
	if (cfg->uuid[0])
		json_object_set_new(obj, "uuid", json_string(cfg->uuid));
	if (cfg->kernel)
		json_object_set_new(obj, "kernel", json_string(cfg->kernel));
	if (cfg->cmdline)
		json_object_set_new(obj, "cmdline", json_string(cfg->cmdline));
	return obj;
err:
	json_decref(devices);
	json_decref(serial);
	return NULL;
}
