/*
 * The machine: the definition's top-level keys — name, uuid, vCPUs, memory, kernel, initial
 * ramdisk and command line, what to do on a crash, autostart — read, checked and printed back.
 * Which kind of image the kernel is (multiboot, Linux bzImage or PVH vmlinux) is lockstep-vm's
 * to find out when it reads the file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmdef/vmdef_internal.h"

static const char *const on_crash_names[] = { "destroy", "restart", "preserve" };

const char *vmdef_on_crash_name(enum vmdef_on_crash on_crash)
{
	return (unsigned)on_crash < 3 ? on_crash_names[on_crash] : "?";
}

bool vmdef_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > VMDEF_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool uuid_valid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = s[i];

		if (dash ? c != '-' :
			   !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static int parse_memory(struct vmdef_parse *p, const json_t *v, uint64_t *out)
{
	uint64_t bytes;

	if (json_is_integer(v)) {
		int ret = vmdef_get_uint(p, "memory", v, VMDEF_MEMORY_MIN >> 20,
					 VMDEF_MEMORY_MAX >> 20, &bytes);

		if (ret)
			return ret;
		*out = bytes << 20;
		return 0;
	}
	if (!json_is_string(v) || util_parse_size(json_string_value(v), 1u << 20, &bytes))
		return vmdef_fail(p, "\"memory\" must be MiB as an integer or a size such as "
				     "\"512M\" or \"2G\"");
	if (bytes < VMDEF_MEMORY_MIN || bytes > VMDEF_MEMORY_MAX)
		return vmdef_fail(p, "\"memory\" must be between 2 MiB and 256 GiB");
	if (bytes & ((1u << 20) - 1))
		return vmdef_fail(p, "\"memory\" must be a whole number of MiB");
	*out = bytes;
	return 0;
}

int vmdef_machine_parse(struct vmdef_parse *p, struct vmdef *def, const char *key, const json_t *v,
			int *ret)
{
	const char *s;
	uint64_t u;
	int i;

	if (strcmp(key, "name") == 0) {
		if (!(*ret = vmdef_get_string(p, "name", v, VMDEF_NAME_MAX, &s))) {
			if (!vmdef_name_valid(s))
				*ret = vmdef_fail(p, "\"name\" must be 1-63 characters of "
						     "A-Z a-z 0-9 . _ - not starting with . or -");
			else
				strcpy(def->name, s);
		}
	} else if (strcmp(key, "uuid") == 0) {
		if (!(*ret = vmdef_get_string(p, "uuid", v, 36, &s))) {
			if (!uuid_valid(s))
				*ret = vmdef_fail(p, "\"uuid\" must look like "
						     "\"8f3169e4-9e17-5347-a623-47fff434bb04\"");
			else
				strcpy(def->uuid, s);
		}
	} else if (strcmp(key, "vcpus") == 0) {
		if (!(*ret = vmdef_get_uint(p, "vcpus", v, 1, VMDEF_VCPUS_MAX, &u)))
			def->vcpus = (uint32_t)u;
	} else if (strcmp(key, "memory") == 0) {
		*ret = parse_memory(p, v, &def->memory);
	} else if (strcmp(key, "kernel") == 0) {
		if (!(*ret = vmdef_get_string(p, "kernel", v, 4095, &s)))
			*ret = vmdef_dup_str(&def->kernel, s);
	} else if (strcmp(key, "initrd") == 0) {
		if (json_is_null(v))
			*ret = vmdef_dup_str(&def->initrd, NULL);
		else if (!(*ret = vmdef_get_string(p, "initrd", v, 4095, &s)))
			*ret = vmdef_dup_str(&def->initrd, s);
	} else if (strcmp(key, "cmdline") == 0) {
		if (!(*ret = vmdef_get_string(p, "cmdline", v, VMDEF_CMDLINE_MAX, &s)))
			*ret = vmdef_dup_str(&def->cmdline, s);
	} else if (strcmp(key, "on_crash") == 0) {
		if (!(*ret = vmdef_get_enum(p, "on_crash", v, on_crash_names, 3, &i)))
			def->on_crash = (enum vmdef_on_crash)i;
	} else if (strcmp(key, "autostart") == 0) {
		*ret = vmdef_get_bool(p, "autostart", v, &def->autostart);
	} else {
		return 0;
	}
	return 1;
}

int vmdef_machine_validate(const struct vmdef *def, char *err, size_t err_len)
{
	if (!def->name[0])
		return util_error(err, err_len, -EINVAL, "the VM needs a \"name\"");
	if (!vmdef_name_valid(def->name))
		return util_error(err, err_len, -EINVAL,
				  "\"name\" must be 1-63 characters of A-Z a-z 0-9 . _ - not "
				  "starting with . or -");
	if (def->uuid[0] && !uuid_valid(def->uuid))
		return util_error(
			err, err_len, -EINVAL,
			"\"uuid\" must look like \"8f3169e4-9e17-5347-a623-47fff434bb04\"");
	if (!def->kernel || !def->kernel[0])
		return util_error(
			err, err_len, -EINVAL,
			"the VM needs a \"kernel\" (a multiboot image or a Linux kernel)");
	if (def->initrd && !def->initrd[0])
		return util_error(err, err_len, -EINVAL, "\"initrd\" must not be empty");
	if (def->vcpus < 1 || def->vcpus > VMDEF_VCPUS_MAX)
		return util_error(err, err_len, -EINVAL, "\"vcpus\" must be between 1 and %d",
				  VMDEF_VCPUS_MAX);
	if (def->memory < VMDEF_MEMORY_MIN || def->memory > VMDEF_MEMORY_MAX)
		return util_error(err, err_len, -EINVAL,
				  "\"memory\" must be between 2 MiB and 256 GiB");
	return 0;
}

int vmdef_machine_json(const struct vmdef *def, json_t *obj)
{
	if (json_object_set_new(obj, "name", json_string(def->name)) ||
	    json_object_set_new(obj, "vcpus", json_integer((json_int_t)def->vcpus)) ||
	    json_object_set_new(obj, "memory", json_integer((json_int_t)(def->memory >> 20))) ||
	    json_object_set_new(obj, "on_crash", json_string(vmdef_on_crash_name(def->on_crash))) ||
	    json_object_set_new(obj, "autostart", json_boolean(def->autostart)) ||
	    (def->uuid[0] && json_object_set_new(obj, "uuid", json_string(def->uuid))) ||
	    (def->kernel && json_object_set_new(obj, "kernel", json_string(def->kernel))) ||
	    (def->initrd && json_object_set_new(obj, "initrd", json_string(def->initrd))) ||
	    (def->cmdline && json_object_set_new(obj, "cmdline", json_string(def->cmdline))))
		return -ENOMEM;
	return 0;
}
