/*
 * The devices section: passthrough devices by host PCI address ("vfio-pci" only), each at
 * most once.
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
		int ret;

		snprintf(path, sizeof(path), "devices[%zu]", idx);
		if ((ret = vmdef_get_object(p, path, dev)))
			return ret;
		memset(d, 0, sizeof(*d));
		json_object_foreach(dev, key, v) {
			snprintf(path, sizeof(path), "devices[%zu].%.16s", idx, key);
			if (strcmp(key, "type") == 0) {
				if ((ret = vmdef_get_string(p, path, v, sizeof(d->type) - 1, &s)))
					return ret;
				if (strcmp(s, "vfio-pci") != 0)
					return vmdef_fail(p, "\"%s\" must be \"vfio-pci\"", path);
				strcpy(d->type, s);
			} else if (strcmp(key, "host") == 0) {
				if ((ret = vmdef_get_string(p, path, v, sizeof(d->host) - 1, &s)))
					return ret;
				if (!pci_address_valid(s))
					return vmdef_fail(p,
							  "\"%s\" must be a PCI address such as "
							  "\"0000:00:03.0\"",
							  path);
				strcpy(d->host, s);
			} else {
				return vmdef_fail(p, "unknown key \"%s\"", path);
			}
		}
		if (!d->type[0] || !d->host[0])
			return vmdef_fail(p, "\"devices[%zu]\" needs \"type\" and \"host\"", idx);
		def->nr_devices++;
	}
	return 0;
}

int vmdef_devices_validate(const struct vmdef *def, char *err, size_t err_len)
{
	for (uint32_t i = 0; i < def->nr_devices; i++)
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(def->devices[i].host, def->devices[j].host) == 0)
				return util_error(err, err_len, -EINVAL,
						  "device %s is listed twice",
						  def->devices[i].host);
	return 0;
}

json_t *vmdef_devices_json(const struct vmdef *def)
{
	json_t *devices = json_array();

	for (uint32_t i = 0; devices && i < def->nr_devices; i++)
		if (json_array_append_new(devices,
					  json_pack("{s:s, s:s}", "type", def->devices[i].type,
						    "host", def->devices[i].host))) {
			json_decref(devices);
			return NULL;
		}
	return devices;
}
