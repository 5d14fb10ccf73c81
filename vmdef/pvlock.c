/*
 * The pvlock section: lockstep's doorbell channel for paravirtual spinlocks, the KVM
 * paravirtual features the guest is offered (by name, or "host" for all the host has), and
 * whether PAUSE still exits.
 */
#include <string.h>

#include "vmdef/vmdef_internal.h"

static const char *const pause_exit_names[] = { "auto", "on", "off" };

/* KVM_FEATURE_* bit numbers from the KVM paravirtual CPUID leaf 0x40000001. */
static const struct {
	const char *name;
	unsigned bit;
} kvm_feature_names[] = {
	{ "clocksource", 0 },	     { "nop_io_delay", 1 },	{ "clocksource2", 3 },
	{ "async_pf", 4 },	     { "steal_time", 5 },	{ "pv_eoi", 6 },
	{ "pv_unhalt", 7 },	     { "pv_tlb_flush", 9 },	{ "async_pf_vmexit", 10 },
	{ "pv_send_ipi", 11 },	     { "poll_control", 12 },	{ "pv_sched_yield", 13 },
	{ "async_pf_int", 14 },	     { "msi_ext_dest_id", 15 }, { "hc_map_gpa_range", 16 },
	{ "migration_control", 17 },
};

const char *vmdef_pause_exits_name(enum vmdef_pause_exits pause_exits)
{
	return (unsigned)pause_exits < 3 ? pause_exit_names[pause_exits] : "?";
}

const char *vmdef_kvm_feature_name(unsigned bit)
{
	for (size_t i = 0; i < sizeof(kvm_feature_names) / sizeof(kvm_feature_names[0]); i++)
		if (kvm_feature_names[i].bit == bit)
			return kvm_feature_names[i].name;
	return NULL;
}

static int parse_kvm_features(struct vmdef_parse *p, uint32_t *mask, const json_t *v)
{
	size_t idx;
	json_t *item;

	if (json_is_string(v) && strcmp(json_string_value(v), "host") == 0) {
		*mask = VMDEF_KVM_FEATURES_HOST;
		return 0;
	}
	if (!json_is_array(v))
		return vmdef_fail(
			p, "\"pvlock.kvm_features\" must be \"host\" or a list of feature names");
	*mask = 0;
	json_array_foreach((json_t *)v, idx, item) {
		size_t k, n = sizeof(kvm_feature_names) / sizeof(kvm_feature_names[0]);

		if (!json_is_string(item))
			return vmdef_fail(p, "\"pvlock.kvm_features[%zu]\" must be a string", idx);
		for (k = 0; k < n; k++)
			if (strcmp(json_string_value(item), kvm_feature_names[k].name) == 0)
				break;
		if (k == n)
			return vmdef_fail(
				p, "\"pvlock.kvm_features[%zu]\": unknown KVM feature \"%.40s\"",
				idx, json_string_value(item));
		*mask |= 1u << kvm_feature_names[k].bit;
	}
	return 0;
}

int vmdef_pvlock_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *obj)
{
	struct vmdef_pvlock *pc = &def->pvlock;
	const char *key;
	json_t *v;
	int ret, i;

	if ((ret = vmdef_get_object(p, "pvlock", obj)))
		return ret;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "enabled") == 0) {
			if ((ret = vmdef_get_bool(p, "pvlock.enabled", v, &pc->enabled)))
				return ret;
		} else if (strcmp(key, "kvm_features") == 0) {
			if ((ret = parse_kvm_features(p, &pc->kvm_features, v)))
				return ret;
		} else if (strcmp(key, "pause_exits") == 0) {
			if ((ret = vmdef_get_enum(p, "pvlock.pause_exits", v, pause_exit_names, 3,
						  &i)))
				return ret;
			pc->pause_exits = (enum vmdef_pause_exits)i;
		} else {
			return vmdef_unknown_key(p, "pvlock", key);
		}
	}
	return 0;
}

json_t *vmdef_pvlock_json(const struct vmdef *def)
{
	const struct vmdef_pvlock *pc = &def->pvlock;
	json_t *features;

	if (pc->kvm_features == VMDEF_KVM_FEATURES_HOST) {
		features = json_string("host");
	} else {
		features = json_array();
		for (unsigned bit = 0; features && bit < 32; bit++)
			if ((pc->kvm_features & (1u << bit)) && vmdef_kvm_feature_name(bit))
				json_array_append_new(features,
						      json_string(vmdef_kvm_feature_name(bit)));
	}
	return json_pack("{s:b, s:o, s:s}", "enabled", pc->enabled, "kvm_features", features,
			 "pause_exits", vmdef_pause_exits_name(pc->pause_exits));
}
