/*
 * struct host_kvm on the wire: `lockstep-vm --host-probe` prints it (host_kvm_to_json) and
 * lockstepd reads it back (host_kvm_from_json).  Both ends use this file, so no key is spelled
 * anywhere else.  The reader checks every key and type: the text comes from another process,
 * and a mismatch is reported in words rather than half-read.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "host/host_internal.h"
#include "util/util.h"

json_t *host_kvm_to_json(const struct host_kvm *k)
{
	json_t *caps = json_object(), *cpuid = json_array(), *vm = json_array(),
	       *vcpu = json_array();

	for (unsigned i = 0; i < k->nr_caps; i++)
		json_object_set_new(caps, k->cap[i].name, json_integer(k->cap[i].value));
	for (unsigned i = 0; i < k->supported.n; i++) {
		const struct host_cpuid_leaf *e = &k->supported.e[i];

		json_array_append_new(cpuid, json_pack("[I, I, I, I, I, I]", (json_int_t)e->leaf,
						       (json_int_t)e->subleaf, (json_int_t)e->eax,
						       (json_int_t)e->ebx, (json_int_t)e->ecx,
						       (json_int_t)e->edx));
	}
	for (unsigned i = 0; i < k->nr_vm_stats; i++)
		json_array_append_new(vm, json_string(k->vm_stats[i]));
	for (unsigned i = 0; i < k->nr_vcpu_stats; i++)
		json_array_append_new(vcpu, json_string(k->vcpu_stats[i]));
	return json_pack("{s:s, s:i, s:s, s:o, s:o, s:s, s:o, s:o, s:I}", "error", k->error,
			 "api_version", k->api_version, "missing", k->missing, "caps", caps,
			 "supported_cpuid", cpuid, "vm_error", k->vm_error, "vm_stats", vm,
			 "vcpu_stats", vcpu, "tsc_khz", (json_int_t)k->tsc_khz);
}

static int get_string(const json_t *j, const char *key, char *buf, size_t size, char *err,
		      size_t err_len)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_string(v))
		return util_error(err, err_len, -EINVAL, "\"%s\" must be a string", key);
	if (util_strlcpy(buf, json_string_value(v), size))
		return util_error(err, err_len, -EINVAL, "\"%s\" is too long", key);
	return 0;
}

static int get_names(const json_t *j, const char *key, char (*names)[HOST_KVM_NAME_MAX],
		     unsigned *n, char *err, size_t err_len)
{
	const json_t *list = json_object_get(j, key), *v;
	size_t i;

	if (!json_is_array(list))
		return util_error(err, err_len, -EINVAL, "\"%s\" must be an array", key);
	if (json_array_size(list) > HOST_KVM_STATS_MAX)
		return util_error(err, err_len, -EINVAL, "\"%s\" has more than %d entries", key,
				  HOST_KVM_STATS_MAX);
	*n = 0;
	json_array_foreach(list, i, v) {
		if (!json_is_string(v) ||
		    util_strlcpy(names[*n], json_string_value(v), HOST_KVM_NAME_MAX))
			return util_error(err, err_len, -EINVAL,
					  "\"%s\"[%zu] must be a name of at most %d bytes", key, i,
					  HOST_KVM_NAME_MAX - 1);
		(*n)++;
	}
	return 0;
}

static int get_u32(const json_t *v, uint32_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int get_cpuid(const json_t *j, struct host_cpuid *c, char *err, size_t err_len)
{
	const json_t *list = json_object_get(j, "supported_cpuid"), *v;
	size_t i;

	if (!json_is_array(list) || json_array_size(list) > HOST_CPUID_MAX)
		return util_error(err, err_len, -EINVAL,
				  "\"supported_cpuid\" must be an array of at most %d leaves",
				  HOST_CPUID_MAX);
	c->n = 0;
	json_array_foreach(list, i, v) {
		struct host_cpuid_leaf *e = &c->e[c->n];

		if (!json_is_array(v) || json_array_size(v) != 6 ||
		    get_u32(json_array_get(v, 0), &e->leaf) ||
		    get_u32(json_array_get(v, 1), &e->subleaf) ||
		    get_u32(json_array_get(v, 2), &e->eax) ||
		    get_u32(json_array_get(v, 3), &e->ebx) ||
		    get_u32(json_array_get(v, 4), &e->ecx) ||
		    get_u32(json_array_get(v, 5), &e->edx))
			return util_error(
				err, err_len, -EINVAL,
				"\"supported_cpuid\"[%zu] must be [leaf, subleaf, eax, ebx, "
				"ecx, edx]",
				i);
		c->n++;
	}
	return 0;
}

int host_kvm_from_json(const json_t *j, struct host_kvm *k, char *err, size_t err_len)
{
	static const char *const keys[] = { "error",	"api_version",	   "missing",
					    "caps",	"supported_cpuid", "vm_error",
					    "vm_stats", "vcpu_stats",	   "tsc_khz" };
	json_t *caps;
	const char *key;
	uint32_t u;
	json_t *v;
	int ret;

	memset(k, 0, sizeof(*k));
	if (!json_is_object(j))
		return util_error(err, err_len, -EINVAL, "the probe's answer is not an object");
	json_object_foreach((json_t *)j, key, v) {
		bool known = false;

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			known |= strcmp(key, keys[i]) == 0;
		if (!known)
			return util_error(err, err_len, -EINVAL, "unknown key \"%.40s\"", key);
	}
	if ((ret = get_string(j, "error", k->error, sizeof(k->error), err, err_len)) ||
	    (ret = get_string(j, "missing", k->missing, sizeof(k->missing), err, err_len)) ||
	    (ret = get_string(j, "vm_error", k->vm_error, sizeof(k->vm_error), err, err_len)))
		return ret;
	v = json_object_get(j, "api_version");
	if (!json_is_integer(v) || json_integer_value(v) < -4096 || json_integer_value(v) > 1000)
		return util_error(err, err_len, -EINVAL, "\"api_version\" must be an integer");
	k->api_version = (int)json_integer_value(v);
	if (get_u32(json_object_get(j, "tsc_khz"), &u))
		return util_error(err, err_len, -EINVAL, "\"tsc_khz\" must be a number of kHz");
	k->tsc_khz = u;
	caps = json_object_get(j, "caps");
	if (!json_is_object(caps) || json_object_size(caps) > HOST_KVM_CAPS_MAX)
		return util_error(err, err_len, -EINVAL,
				  "\"caps\" must be an object of at most %d capabilities",
				  HOST_KVM_CAPS_MAX);
	json_object_foreach(caps, key, v) {
		struct host_kvm_cap *c = &k->cap[k->nr_caps];

		if (!json_is_integer(v) || util_strlcpy(c->name, key, sizeof(c->name)))
			return util_error(err, err_len, -EINVAL,
					  "\"caps\".\"%.40s\" must be an integer", key);
		c->value = json_integer_value(v);
		k->nr_caps++;
	}
	if ((ret = get_cpuid(j, &k->supported, err, err_len)) ||
	    (ret = get_names(j, "vm_stats", k->vm_stats, &k->nr_vm_stats, err, err_len)) ||
	    (ret = get_names(j, "vcpu_stats", k->vcpu_stats, &k->nr_vcpu_stats, err, err_len)))
		return ret;
	return 0;
}

bool host_kvm_cap(const struct host_kvm *k, const char *name, int64_t *value)
{
	for (unsigned i = 0; k && i < k->nr_caps; i++) {
		if (strcmp(k->cap[i].name, name) == 0) {
			*value = k->cap[i].value;
			return true;
		}
	}
	return false;
}

bool host_kvm_vcpu_stat(const struct host_kvm *k, const char *name)
{
	for (unsigned i = 0; k && i < k->nr_vcpu_stats; i++)
		if (strcmp(k->vcpu_stats[i], name) == 0)
			return true;
	return false;
}
