/*
 * The devices section: passthrough devices by host PCI address ("vfio-pci"), each at most
 * once, and test devices: lockstep's "testdev" and QEMU's "pci-testdev" (PCI, in a given slot
 * or the next free one) and "pc-testdev" (fixed ports, at most once).
 */
#include <stdio.h>
#include <string.h>

#include "vmdef/vmdef_internal.h"

static bool pci_address_valid(const char *s)
{
	unsigned dom, bus, dev, fn;
	char tail;

	return strlen(s) == 12 &&
	       sscanf(s, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) == 4 && dev < 32 &&
	       fn < 8;
}

static const char *const device_types[] = { "vfio-pci", "testdev", "pci-testdev", "pc-testdev" };

int vmdef_devices_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *arr)
{
	size_t idx;
	json_t *dev;

	if (!json_is_array(arr))
		return vmdef_fail(p, "\"devices\" must be a list");
	if (json_array_size(arr) > VMDEF_DEVICES_MAX)
		return vmdef_fail(p, "\"devices\" has more than %d entries", VMDEF_DEVICES_MAX);
	def->nr_devices = 0;
	json_array_foreach((json_t *)arr, idx, dev) {
		struct vmdef_device *d = &def->devices[def->nr_devices];
		const char *key, *s;
		char path[48];
		json_t *v;
		int ret, type = -1;
		uint64_t slot;

		snprintf(path, sizeof(path), "devices[%zu]", idx);
		if ((ret = vmdef_get_object(p, path, dev)))
			return ret;
		memset(d, 0, sizeof(*d));
		d->slot = -1;
		json_object_foreach(dev, key, v) {
			snprintf(path, sizeof(path), "devices[%zu].%.16s", idx, key);
			if (strcmp(key, "type") == 0) {
				if ((ret = vmdef_get_enum(p, path, v, device_types, 4, &type)))
					return ret;
				strcpy(d->type, device_types[type]);
			} else if (strcmp(key, "host") == 0) {
				if ((ret = vmdef_get_string(p, path, v, sizeof(d->host) - 1, &s)))
					return ret;
				if (!pci_address_valid(s))
					return vmdef_fail(p,
							  "\"%s\" must be a PCI address such as "
							  "\"0000:00:03.0\"",
							  path);
				strcpy(d->host, s);
			} else if (strcmp(key, "slot") == 0) {
				if ((ret = vmdef_get_uint(p, path, v, 1, 31, &slot)))
					return ret;
				d->slot = (int)slot;
			} else {
				return vmdef_fail(p, "unknown key \"%s\"", path);
			}
		}
		if (type < 0)
			return vmdef_fail(p, "\"devices[%zu]\" needs \"type\"", idx);
		if (type == 0 && !d->host[0])
			return vmdef_fail(p, "\"devices[%zu]\" (vfio-pci) needs \"host\"", idx);
		if (type != 0 && d->host[0])
			return vmdef_fail(p, "\"devices[%zu].host\" is for vfio-pci devices only",
					  idx);
		if (type == 3 && d->slot >= 0)
			return vmdef_fail(
				p, "\"devices[%zu].slot\": pc-testdev is not a PCI device", idx);
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

json_t *vmdef_devices_json(const struct vmdef *def)
{
	json_t *devices = json_array();

	for (uint32_t i = 0; devices && i < def->nr_devices; i++) {
		const struct vmdef_device *d = &def->devices[i];
		json_t *dev = json_pack("{s:s}", "type", d->type);

		if (dev && d->host[0])
			json_object_set_new(dev, "host", json_string(d->host));
		if (dev && d->slot >= 0)
			json_object_set_new(dev, "slot", json_integer(d->slot));
		if (json_array_append_new(devices, dev)) {
			json_decref(devices);
			return NULL;
		}
	}
	return devices;
}
