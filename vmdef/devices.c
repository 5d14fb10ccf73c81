/*
 * The devices section: passthrough devices by host PCI address ("vfio-pci": whether lockstepd
 * binds them to vfio-pci itself, when they are reset, the expansion ROM the guest sees), each
 * at most once, and test devices: lockstep's "testdev" and QEMU's "pci-testdev" (PCI, in a
 * given slot or the next free one) and "pc-testdev" (fixed ports, at most once).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdef/vmdef_internal.h"

static const char *const device_types[] = { "vfio-pci", "testdev", "pci-testdev", "pc-testdev" };
static const char *const reset_names[] = { "auto", "on", "off" };

const char *vmdef_reset_name(enum vmdef_reset reset)
{
	return (unsigned)reset < 3 ? reset_names[reset] : "?";
}

int vmdef_reset_parse(const char *name, enum vmdef_reset *out)
{
	int i = vmdef_lookup_name(name, reset_names, 3);

	if (i < 0)
		return -EINVAL;
	*out = (enum vmdef_reset)i;
	return 0;
}

/* "rom": {"bar": BOOL, "file": PATH} */
static int parse_rom(struct vmdef_parse *p, struct vmdef_device *d, const char *at, const json_t *v)
{
	const char *key, *s;
	char path[64];
	json_t *f;
	int ret;

	snprintf(path, sizeof(path), "%s.rom", at);
	if ((ret = vmdef_get_object(p, path, v)))
		return ret;
	json_object_foreach((json_t *)v, key, f) {
		snprintf(path, sizeof(path), "%s.rom.%.16s", at, key);
		if (strcmp(key, "bar") == 0)
			ret = vmdef_get_bool(p, path, f, &d->rom_bar);
		else if (strcmp(key, "file") == 0) {
			ret = vmdef_get_string(p, path, f, 4095, &s);
			if (!ret && !s[0])
				ret = vmdef_fail(p, "\"%s\" must name a file", path);
			if (!ret)
				ret = vmdef_dup_str(&d->rom_file, s);
		} else
			ret = vmdef_fail(p, "unknown key \"%s\"", path);
		if (ret)
			return ret;
	}
	return 0;
}

/* One device; `at` names it in errors ("devices[2]"). */
static int parse_device(struct vmdef_parse *p, struct vmdef_device *d, const char *at,
			const json_t *dev)
{
	bool passthrough_keys = false;
	const char *key, *s;
	char path[48];
	json_t *v;
	int ret, type = -1;
	uint64_t slot;

	if ((ret = vmdef_get_object(p, at, dev)))
		return ret;
	json_object_foreach((json_t *)dev, key, v) {
		snprintf(path, sizeof(path), "%s.%.16s", at, key);
		if (strcmp(key, "type") == 0) {
			if ((ret = vmdef_get_enum(p, path, v, device_types, 4, &type)))
				return ret;
			strcpy(d->type, device_types[type]);
		} else if (strcmp(key, "host") == 0) {
			if ((ret = vmdef_get_string(p, path, v, sizeof(d->host) - 1, &s)))
				return ret;
			/* one spelling per device: the kernel's, lower case */
			char lower[sizeof(d->host)] = { 0 };

			for (size_t i = 0; s[i] && i < sizeof(lower) - 1; i++)
				lower[i] = (char)tolower((unsigned char)s[i]);
			if (!util_pci_address_valid(lower))
				return vmdef_fail(p,
						  "\"%s\" must be a PCI address such as "
						  "\"0000:00:03.0\"",
						  path);
			memcpy(d->host, lower, sizeof(d->host));
		} else if (strcmp(key, "slot") == 0) {
			if ((ret = vmdef_get_uint(p, path, v, 1, 31, &slot)))
				return ret;
			d->slot = (int)slot;
		} else if (strcmp(key, "managed") == 0) {
			if ((ret = vmdef_get_bool(p, path, v, &d->managed)))
				return ret;
			passthrough_keys = true;
		} else if (strcmp(key, "reset") == 0) {
			int r;

			if ((ret = vmdef_get_enum(p, path, v, reset_names, 3, &r)))
				return ret;
			d->reset = (enum vmdef_reset)r;
			passthrough_keys = true;
		} else if (strcmp(key, "rom") == 0) {
			if ((ret = parse_rom(p, d, at, v)))
				return ret;
			passthrough_keys = true;
		} else {
			return vmdef_fail(p, "unknown key \"%s\"", path);
		}
	}
	if (type < 0)
		return vmdef_fail(p, "\"%s\" needs \"type\"", at);
	if (type == 0 && !d->host[0])
		return vmdef_fail(p, "\"%s\" (vfio-pci) needs \"host\"", at);
	if (type != 0 && d->host[0])
		return vmdef_fail(p, "\"%s.host\" is for vfio-pci devices only", at);
	if (type != 0 && passthrough_keys)
		return vmdef_fail(p,
				  "\"%s\": \"managed\", \"reset\" and \"rom\" are for vfio-pci "
				  "devices only",
				  at);
	if (type == 3 && d->slot >= 0)
		return vmdef_fail(p, "\"%s.slot\": pc-testdev is not a PCI device", at);
	return 0;
}

int vmdef_devices_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *arr)
{
	size_t idx;
	json_t *dev;

	if (!json_is_array(arr))
		return vmdef_fail(p, "\"devices\" must be a list");
	if (json_array_size(arr) > VMDEF_DEVICES_MAX)
		return vmdef_fail(p, "\"devices\" has more than %d entries", VMDEF_DEVICES_MAX);
	for (uint32_t i = 0; i < def->nr_devices; i++)
		free(def->devices[i].rom_file);
	def->nr_devices = 0;
	json_array_foreach((json_t *)arr, idx, dev) {
		struct vmdef_device *d = &def->devices[def->nr_devices];
		char at[32];
		int ret;

		snprintf(at, sizeof(at), "devices[%zu]", idx);
		*d = (struct vmdef_device){ .slot = -1, .rom_bar = true };
		ret = parse_device(p, d, at, dev);
		if (ret) {
			free(d->rom_file);
			d->rom_file = NULL;
			return ret;
		}
		def->nr_devices++;
	}
	return 0;
}

int vmdef_devices_validate(const struct vmdef *def, char *err, size_t err_len)
{
	for (uint32_t i = 0; i < def->nr_devices; i++) {
		const struct vmdef_device *d = &def->devices[i];

		for (uint32_t j = 0; j < i; j++) {
			const struct vmdef_device *o = &def->devices[j];

			if (d->host[0] && strcmp(d->host, o->host) == 0)
				return util_error(err, err_len, -EINVAL,
						  "device %s is listed twice", d->host);
			if (d->slot >= 0 && d->slot == o->slot)
				return util_error(err, err_len, -EINVAL,
						  "devices %u and %u both ask for PCI slot %d", j,
						  i, d->slot);
			if (!strcmp(d->type, "pc-testdev") && !strcmp(o->type, "pc-testdev"))
				return util_error(
					err, err_len, -EINVAL,
					"pc-testdev is listed twice (it has fixed ports)");
		}
	}
	return 0;
}

json_t *vmdef_device_json(const struct vmdef_device *d)
{
	json_t *dev = json_pack("{s:s}", "type", d->type);

	if (dev && d->host[0]) {
		json_t *rom = json_pack("{s:b}", "bar", d->rom_bar);

		if (rom && d->rom_file)
			json_object_set_new(rom, "file", json_string(d->rom_file));
		json_object_set_new(dev, "host", json_string(d->host));
		json_object_set_new(dev, "managed", json_boolean(d->managed));
		json_object_set_new(dev, "reset", json_string(vmdef_reset_name(d->reset)));
		json_object_set_new(dev, "rom", rom);
	}
	if (dev && d->slot >= 0)
		json_object_set_new(dev, "slot", json_integer(d->slot));
	return dev;
}

json_t *vmdef_devices_json(const struct vmdef *def)
{
	json_t *devices = json_array();

	for (uint32_t i = 0; devices && i < def->nr_devices; i++) {
		if (json_array_append_new(devices, vmdef_device_json(&def->devices[i]))) {
			json_decref(devices);
			return NULL;
		}
	}
	return devices;
}

int vmdef_dup_device_rom(struct vmdef_device *dev, const char *rom_file)
{
	return vmdef_dup_str(&dev->rom_file, rom_file);
}

int vmdef_device_from_json(const json_t *obj, struct vmdef_device *out, char *err, size_t err_len)
{
	struct vmdef_parse p = { .err = err, .err_len = err_len };
	int ret;

	*out = (struct vmdef_device){ .slot = -1, .rom_bar = true };
	ret = parse_device(&p, out, "device", obj);
	if (ret)
		vmdef_device_fini(out);
	return ret;
}

void vmdef_device_fini(struct vmdef_device *dev)
{
	free(dev->rom_file);
	dev->rom_file = NULL;
}
