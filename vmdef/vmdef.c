/*
 * VM definitions: the document around the sections — defaults, deep copies, the typed field
 * readers every section uses, and JSON <-> struct vmdef, strictly.
 *
 * Used by lockstep-vm (file + flags), lockstepd (definitions over the API and on disk) and
 * api/ (domain XML).  Each JSON section has a table of known keys; a key not in the table is
 * an error naming its full path ("sched.polcy"), so a typo never silently falls back to a
 * default.  Parsing fills a scratch copy and commits it only when the whole document was
 * accepted.  Writing out every field, defaults included, makes a stored definition mean the
 * same thing after an upgrade that changes a default.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdef/vmdef_internal.h"

#define CONFIG_FILE_MAX (1u << 20)

int vmdef_lookup_name(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void vmdef_init(struct vmdef *def)
{
	*def = (struct vmdef){
		.vcpus = 1,
		.memory = VMDEF_MEMORY_DEFAULT,
		.on_crash = VMDEF_ON_CRASH_DESTROY,
		.sched = { .policy = VMDEF_SCHED_HOST,
			   .quantum_us = VMDEF_QUANTUM_US_DEFAULT,
			   .skew_us = VMDEF_SKEW_US_DEFAULT },
		.pvlock = { .enabled = true,
			    .kvm_features = VMDEF_KVM_FEATURES_HOST,
			    .pause_exits = VMDEF_PAUSE_EXITS_AUTO },
		.irq = { .steering = true },
	};
}

void vmdef_fini(struct vmdef *def)
{
	if (!def)
		return;
	free(def->kernel);
	free(def->initrd);
	free(def->cmdline);
	free(def->serial_log);
	free(def->sched.pins);
	for (uint32_t i = 0; i < def->nr_devices && i < VMDEF_DEVICES_MAX; i++)
		free(def->devices[i].rom_file);
	vmdef_init(def);
}

int vmdef_dup_str(char **dst, const char *src)
{
	free(*dst); /* parsing over a definition replaces its strings */
	if (!src) {
		*dst = NULL;
		return 0;
	}
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int vmdef_copy(struct vmdef *dst, const struct vmdef *src)
{
	struct vmdef tmp = *src;

	tmp.kernel = tmp.initrd = tmp.cmdline = tmp.serial_log = NULL;
	tmp.sched.pins = NULL;
	for (uint32_t i = 0; i < tmp.nr_devices; i++)
		tmp.devices[i].rom_file = NULL;
	if (vmdef_dup_str(&tmp.kernel, src->kernel) || vmdef_dup_str(&tmp.initrd, src->initrd) ||
	    vmdef_dup_str(&tmp.cmdline, src->cmdline) ||
	    vmdef_dup_str(&tmp.serial_log, src->serial_log))
		goto err;
	for (uint32_t i = 0; i < tmp.nr_devices; i++)
		if (vmdef_dup_str(&tmp.devices[i].rom_file, src->devices[i].rom_file))
			goto err;
	if (src->sched.nr_pins) {
		tmp.sched.pins = calloc(src->sched.nr_pins, sizeof(*tmp.sched.pins));
		if (!tmp.sched.pins)
			goto err;
		memcpy(tmp.sched.pins, src->sched.pins,
		       src->sched.nr_pins * sizeof(*tmp.sched.pins));
	}
	*dst = tmp;
	return 0;
err:
	vmdef_fini(&tmp);
	return -ENOMEM;
}

/* ---- typed field readers: each names the key's path in its error ---- */

int vmdef_get_string(struct vmdef_parse *p, const char *path, const json_t *v, size_t max,
		     const char **out)
{
	if (!json_is_string(v))
		return vmdef_fail(p, "\"%s\" must be a string", path);
	if (json_string_length(v) > max)
		return vmdef_fail(p, "\"%s\" is longer than %zu bytes", path, max);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return vmdef_fail(p, "\"%s\" contains a NUL byte", path);
	*out = json_string_value(v);
	return 0;
}

int vmdef_get_uint(struct vmdef_parse *p, const char *path, const json_t *v, uint64_t min,
		   uint64_t max, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return vmdef_fail(p, "\"%s\" must be an integer between %llu and %llu", path,
				  (unsigned long long)min, (unsigned long long)max);
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return vmdef_fail(p, "\"%s\" must be between %llu and %llu (got %lld)", path,
				  (unsigned long long)min, (unsigned long long)max, (long long)i);
	*out = (uint64_t)i;
	return 0;
}

int vmdef_get_bool(struct vmdef_parse *p, const char *path, const json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return vmdef_fail(p, "\"%s\" must be true or false", path);
	*out = json_is_true(v);
	return 0;
}

int vmdef_get_enum(struct vmdef_parse *p, const char *path, const json_t *v,
		   const char *const *names, int n, int *out)
{
	char choices[128] = "";
	int i;

	if (json_is_string(v)) {
		i = vmdef_lookup_name(json_string_value(v), names, n);
		if (i >= 0) {
			*out = i;
			return 0;
		}
	}
	for (i = 0; i < n; i++) {
		strncat(choices, i ? ", " : "", sizeof(choices) - strlen(choices) - 1);
		strncat(choices, names[i], sizeof(choices) - strlen(choices) - 1);
	}
	return vmdef_fail(p, "\"%s\" must be one of: %s", path, choices);
}

int vmdef_get_cpuset(struct vmdef_parse *p, const char *path, const json_t *v,
		     struct util_cpuset *out)
{
	const char *s;
	int ret = vmdef_get_string(p, path, v, 1024, &s);

	if (ret)
		return ret;
	if (util_cpuset_parse(s, out))
		return vmdef_fail(p,
				  "\"%s\" must be a host CPU list such as \"0-3,6\" (got \"%s\")",
				  path, s);
	return 0;
}

int vmdef_get_object(struct vmdef_parse *p, const char *path, const json_t *v)
{
	if (!json_is_object(v))
		return vmdef_fail(p, "\"%s\" must be an object", path);
	return 0;
}

int vmdef_unknown_key(struct vmdef_parse *p, const char *section, const char *key)
{
	if (section)
		return vmdef_fail(p, "unknown key \"%s.%s\"", section, key);
	return vmdef_fail(p, "unknown key \"%s\"", key);
}

/* ---- the document ---- */

static int parse_top(struct vmdef_parse *p, struct vmdef *def, const json_t *obj)
{
	const char *key;
	json_t *v;
	int ret;

	if (!json_is_object(obj))
		return vmdef_fail(p, "a VM definition must be a JSON object");
	json_object_foreach((json_t *)obj, key, v) {
		ret = 0;
		if (vmdef_machine_parse(p, def, key, v, &ret))
			;
		else if (strcmp(key, "serial") == 0)
			ret = vmdef_serial_parse(p, def, v);
		else if (strcmp(key, "sched") == 0)
			ret = vmdef_sched_parse(p, def, v);
		else if (strcmp(key, "pvlock") == 0)
			ret = vmdef_pvlock_parse(p, def, v);
		else if (strcmp(key, "irq") == 0)
			ret = vmdef_irq_parse(p, def, v);
		else if (strcmp(key, "devices") == 0)
			ret = vmdef_devices_parse(p, def, v);
		else
			ret = vmdef_unknown_key(p, NULL, key);
		if (ret)
			return ret;
	}
	return 0;
}

int vmdef_from_json(struct vmdef *def, const json_t *obj, char *err, size_t err_len)
{
	struct vmdef_parse p = { .err = err, .err_len = err_len };
	struct vmdef tmp;
	int ret;

	ret = vmdef_copy(&tmp, def);
	if (ret)
		return ret;
	ret = parse_top(&p, &tmp, obj);
	if (ret) {
		vmdef_fini(&tmp);
		return ret;
	}
	vmdef_fini(def);
	*def = tmp;
	return 0;
}

int vmdef_parse(struct vmdef *def, const char *text, size_t len, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *root;
	int ret;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (err && err_len)
			snprintf(err, err_len, "line %d, column %d: %s", jerr.line, jerr.column,
				 jerr.text);
		return -EINVAL;
	}
	ret = vmdef_from_json(def, root, err, err_len);
	json_decref(root);
	return ret;
}

int vmdef_load(struct vmdef *def, const char *path, char *err, size_t err_len)
{
	size_t len;
	char *text;
	int ret;

	ret = util_read_file(path, CONFIG_FILE_MAX, &text, &len);
	if (ret) {
		if (err && err_len)
			snprintf(err, err_len, "%s: %s", path,
				 ret == -EFBIG ? "larger than 1 MiB" : strerror(-ret));
		return ret;
	}
	ret = vmdef_parse(def, text, len, err, err_len);
	free(text);
	if (ret && err && err_len) {
		char *detail = strdup(err);

		if (detail)
			snprintf(err, err_len, "%s: %s", path, detail);
		free(detail);
	}
	return ret;
}

/* The sections' rules in the order a person fixes them: what the VM is, then its parts. */
int vmdef_validate(const struct vmdef *def, char *err, size_t err_len)
{
	int ret;

	if ((ret = vmdef_machine_validate(def, err, err_len)) ||
	    (ret = vmdef_serial_validate(def, err, err_len)) ||
	    (ret = vmdef_sched_validate(def, err, err_len)) ||
	    (ret = vmdef_devices_validate(def, err, err_len)))
		return ret;
	return 0;
}

json_t *vmdef_to_json(const struct vmdef *def)
{
	json_t *obj = json_object();

	if (!obj || vmdef_machine_json(def, obj) ||
	    json_object_set_new(obj, "serial", vmdef_serial_json(def)) ||
	    json_object_set_new(obj, "sched", vmdef_sched_json(def)) ||
	    json_object_set_new(obj, "pvlock", vmdef_pvlock_json(def)) ||
	    json_object_set_new(obj, "irq", vmdef_irq_json(def)) ||
	    json_object_set_new(obj, "devices", vmdef_devices_json(def))) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}
