/*
 * The scheduling section: the policy (vmdef/policy.h, whose names live here and nowhere
 * else), the gang quantum, the relaxed skew bound, the host CPUs the VM may use and per-vCPU
 * pins.  Whether the host can give a VM its policy (a gang VM needs a CPU per vCPU) is the
 * daemon's question, not the definition's: it depends on the host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdef/vmdef_internal.h"

static const char *const policy_names[VMDEF_SCHED_POLICIES] = {
	[VMDEF_SCHED_HOST] = "host",	     [VMDEF_SCHED_PINNED] = "pinned",
	[VMDEF_SCHED_GANG] = "gang",	     [VMDEF_SCHED_RELAXED] = "relaxed",
	[VMDEF_SCHED_ADAPTIVE] = "adaptive", [VMDEF_SCHED_MUX] = "mux",
};

const char *vmdef_sched_policy_name(enum vmdef_sched_policy policy)
{
	return (unsigned)policy < VMDEF_SCHED_POLICIES ? policy_names[policy] : "?";
}

int vmdef_sched_policy_parse(const char *s, enum vmdef_sched_policy *out)
{
	int i = vmdef_lookup_name(s, policy_names, VMDEF_SCHED_POLICIES);

	if (i < 0)
		return -EINVAL;
	*out = (enum vmdef_sched_policy)i;
	return 0;
}

static int parse_pins(struct vmdef_parse *p, struct vmdef_sched *sc, const json_t *obj)
{
	const char *key;
	json_t *v;
	int ret;

	if ((ret = vmdef_get_object(p, "sched.pin", obj)))
		return ret;
	free(sc->pins);
	sc->nr_pins = 0;
	sc->pins = calloc(json_object_size(obj) ? json_object_size(obj) : 1, sizeof(*sc->pins));
	if (!sc->pins)
		return -ENOMEM;
	json_object_foreach((json_t *)obj, key, v) {
		char path[64];
		uint64_t vcpu;

		snprintf(path, sizeof(path), "sched.pin.%.32s", key);
		/* Decimal digits only, no leading zero: one spelling per vCPU. */
		if (strspn(key, "0123456789") != strlen(key) ||
		    util_parse_u64(key, 0, VMDEF_VCPUS_MAX - 1, &vcpu) || (key[0] == '0' && key[1]))
			return vmdef_fail(p, "\"%s\": pin keys are vCPU numbers (0..%u)", path,
					  VMDEF_VCPUS_MAX - 1);
		sc->pins[sc->nr_pins].vcpu = (uint32_t)vcpu;
		if ((ret = vmdef_get_cpuset(p, path, v, &sc->pins[sc->nr_pins].cpus)))
			return ret;
		sc->nr_pins++;
	}
	return 0;
}

int vmdef_sched_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *obj)
{
	struct vmdef_sched *sc = &def->sched;
	const char *key;
	json_t *v;
	uint64_t u;
	int ret, i;

	if ((ret = vmdef_get_object(p, "sched", obj)))
		return ret;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "policy") == 0) {
			if ((ret = vmdef_get_enum(p, "sched.policy", v, policy_names,
						  VMDEF_SCHED_POLICIES, &i)))
				return ret;
			sc->policy = (enum vmdef_sched_policy)i;
		} else if (strcmp(key, "quantum_us") == 0) {
			if ((ret = vmdef_get_uint(p, "sched.quantum_us", v, VMDEF_QUANTUM_US_MIN,
						  VMDEF_QUANTUM_US_MAX, &u)))
				return ret;
			sc->quantum_us = (uint32_t)u;
		} else if (strcmp(key, "skew_us") == 0) {
			if ((ret = vmdef_get_uint(p, "sched.skew_us", v, VMDEF_SKEW_US_MIN,
						  VMDEF_SKEW_US_MAX, &u)))
				return ret;
			sc->skew_us = (uint32_t)u;
		} else if (strcmp(key, "cpus") == 0) {
			if ((ret = vmdef_get_cpuset(p, "sched.cpus", v, &sc->cpus)))
				return ret;
			sc->has_cpus = true;
		} else if (strcmp(key, "pin") == 0) {
			if ((ret = parse_pins(p, sc, v)))
				return ret;
		} else {
			return vmdef_unknown_key(p, "sched", key);
		}
	}
	return 0;
}

int vmdef_sched_validate(const struct vmdef *def, char *err, size_t err_len)
{
	const struct vmdef_sched *sc = &def->sched;

	if ((unsigned)sc->policy >= VMDEF_SCHED_POLICIES)
		return util_error(err, err_len, -EINVAL, "\"sched.policy\" is not a policy");
	if (sc->quantum_us < VMDEF_QUANTUM_US_MIN || sc->quantum_us > VMDEF_QUANTUM_US_MAX)
		return util_error(err, err_len, -EINVAL,
				  "\"sched.quantum_us\" must be between %u and %u",
				  VMDEF_QUANTUM_US_MIN, VMDEF_QUANTUM_US_MAX);
	if (sc->skew_us < VMDEF_SKEW_US_MIN || sc->skew_us > VMDEF_SKEW_US_MAX)
		return util_error(err, err_len, -EINVAL,
				  "\"sched.skew_us\" must be between %u and %u", VMDEF_SKEW_US_MIN,
				  VMDEF_SKEW_US_MAX);
	for (uint32_t i = 0; i < def->sched.nr_pins; i++) {
		const struct vmdef_pin *pin = &def->sched.pins[i];

		if (pin->vcpu >= def->vcpus)
			return util_error(
				err, err_len, -EINVAL,
				"\"sched.pin.%u\" names a vCPU the VM does not have (%u vCPUs)",
				pin->vcpu, def->vcpus);
		for (uint32_t j = 0; j < i; j++)
			if (def->sched.pins[j].vcpu == pin->vcpu)
				return util_error(err, err_len, -EINVAL, "vCPU %u is pinned twice",
						  pin->vcpu);
	}
	return 0;
}

static json_t *cpuset_json(const struct util_cpuset *set)
{
	char buf[4096];

	if (util_cpuset_format(set, buf, sizeof(buf)))
		return NULL;
	return json_string(buf);
}

json_t *vmdef_sched_json(const struct vmdef *def)
{
	const struct vmdef_sched *sc = &def->sched;
	json_t *pins = json_object();
	json_t *obj;

	if (!pins)
		return NULL;
	for (uint32_t i = 0; i < sc->nr_pins; i++) {
		char key[16];

		snprintf(key, sizeof(key), "%u", sc->pins[i].vcpu);
		json_object_set_new(pins, key, cpuset_json(&sc->pins[i].cpus));
	}
	obj = json_pack("{s:s, s:I, s:I, s:o}", "policy", vmdef_sched_policy_name(sc->policy),
			"quantum_us", (json_int_t)sc->quantum_us, "skew_us",
			(json_int_t)sc->skew_us, "pin", pins);
	if (obj && sc->has_cpus)
		json_object_set_new(obj, "cpus", cpuset_json(&sc->cpus));
	return obj;
}

int vmdef_set_pin(struct vmdef *def, uint32_t vcpu, const struct util_cpuset *cpus)
{
	struct vmdef_pin *pins;
	uint32_t i;

	for (i = 0; i < def->sched.nr_pins && def->sched.pins[i].vcpu != vcpu; i++)
		;
	if (i == def->sched.nr_pins) {
		pins = realloc(def->sched.pins, (i + 1) * sizeof(*pins));
		if (!pins)
			return -ENOMEM;
		def->sched.pins = pins;
		def->sched.nr_pins++;
	}
	def->sched.pins[i] = (struct vmdef_pin){ .vcpu = vcpu, .cpus = *cpus };
	return 0;
}
