/*
 * Passthrough devices in lockstepd: the rules a definition's vfio-pci devices must meet on this
 * host (at define: an IOMMU that remaps DMA and interrupts, the device there in an IOMMU
 * group; at start also: nobody else holds it or its group, a driver that lets go of it), the
 * devices a running VM holds, and managed devices' binding to vfio-pci before their worker
 * starts and back to their own driver once it has ended.
 *
 * What a VM holds is recorded in its struct dvm when its worker is spawned, saved with its
 * runtime record (so a restarted daemon still gives managed devices back), and released when
 * the worker ends.  A start that fails at any point leaves nothing bound.  Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "iommu/iommu.h"

#define fail(err, err_len, code, ...) util_error((err), (err_len), (code), __VA_ARGS__)

static bool is_vfio(const struct vmdef_device *d)
{
	return strcmp(d->type, "vfio-pci") == 0;
}

int dvm_devices_check_definition(struct daemon *d, const struct vmdef *def, char *err,
				 size_t err_len)
{
	char why[768];

	for (uint32_t i = 0; i < def->nr_devices; i++) {
		const struct vmdef_device *dev = &def->devices[i];
		int ret;

		if (!is_vfio(dev))
			continue;
		if (dev->rom_file && dev->rom_file[0] != '/')
			return fail(err, err_len, -EINVAL,
				    "\"devices[%u].rom.file\" must be an absolute path", i);
		ret = hostcheck_iommu_ready(d, dev->host, why, sizeof(why));
		if (ret)
			return fail(err, err_len, -EINVAL, "devices[%u] (vfio-pci %s): %s", i,
				    dev->host, why);
	}
	return 0;
}

/* The running VM (other than `self`) that holds `bdf` or a device of its group, if any. */
static const struct dvm *holder(struct daemon *d, const struct dvm *self, const char *bdf,
				int group, const char **what)
{
	struct util_list *pos;

	util_list_for_each(pos, &d->vms) {
		const struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (vm == self || !vm->worker)
			continue;
		for (unsigned i = 0; i < vm->nr_held; i++) {
			if (strcmp(vm->held[i].bdf, bdf) == 0 ||
			    (group >= 0 && vm->held[i].group == group)) {
				*what = vm->held[i].bdf;
				return vm;
			}
		}
	}
	return NULL;
}

const char *dvm_devices_holder(struct daemon *d, const char *bdf, int group)
{
	const char *what;
	const struct dvm *vm = holder(d, NULL, bdf, group, &what);

	return vm ? vm->cfg.name : NULL;
}

/* What must hold for one device just before its VM starts. */
static int check_start(struct dvm *vm, const struct vmdef_device *dev, unsigned index,
		       const char *const *ours, unsigned n, struct iommu_pci *pci, char *err,
		       size_t err_len)
{
	struct daemon *d = vm->d;
	const struct dvm *other;
	const char *what;
	char why[768], path[64];
	int ret;

	ret = hostcheck_iommu_ready(d, dev->host, why, sizeof(why));
	if (ret)
		return fail(err, err_len, -EINVAL, "devices[%u] (vfio-pci %s): %s", index,
			    dev->host, why);
	ret = iommu_pci_read("", dev->host, pci);
	if (ret)
		return fail(err, err_len, -EINVAL, "devices[%u]: this host has no PCI device %s",
			    index, dev->host);
	other = holder(d, vm, dev->host, pci->group, &what);
	if (other && strcmp(what, dev->host) == 0)
		return fail(err, err_len, -EBUSY, "devices[%u]: %s is passed through to VM %s",
			    index, dev->host, other->cfg.name);
	if (other)
		return fail(err, err_len, -EBUSY,
			    "devices[%u]: %s shares IOMMU group %d with %s, which VM %s has", index,
			    dev->host, pci->group, what, other->cfg.name);
	if (dev->managed) {
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/vfio-pci");
		if (access(path, F_OK))
			return fail(
				err, err_len, -EINVAL,
				"devices[%u] (vfio-pci %s, managed): the vfio-pci driver is not "
				"loaded (modprobe vfio-pci)",
				index, dev->host);
	} else if (strcmp(pci->driver, "vfio-pci") != 0) {
		return fail(
			err, err_len, -EBUSY,
			"devices[%u]: %s is %s%s: bind it to vfio-pci, or let lockstepd do it at "
			"start (\"managed\": true)",
			index, dev->host,
			pci->driver[0] ? "in use by the host driver " : "bound to no driver",
			pci->driver);
	}
	/* The kernel lists a device's reset methods only when it has one. */
	if (dev->reset == VMDEF_RESET_ON && !pci->reset_method[0])
		return fail(err, err_len, -EINVAL,
			    "devices[%u]: %s has no reset method (FLR, PM or bus reset), and "
			    "\"reset\" is \"on\"; \"auto\" or \"off\" lets it run",
			    index, dev->host);
	ret = iommu_group_check("", dev->host, ours, n, why, sizeof(why));
	if (ret)
		return fail(err, err_len, ret == -EBUSY ? -EBUSY : -EINVAL, "devices[%u]: %s",
			    index, why);
	return 0;
}

int dvm_devices_acquire(struct dvm *vm, char *err, size_t err_len)
{
	const struct vmdef *def = dvm_def(vm); /* the definition this run boots */
	const char *ours[VMDEF_DEVICES_MAX];
	struct iommu_pci pci[VMDEF_DEVICES_MAX];
	unsigned n = 0;
	char why[512];
	int ret;

	vm->nr_held = 0;
	for (uint32_t i = 0; i < def->nr_devices; i++)
		if (is_vfio(&def->devices[i]))
			ours[n++] = def->devices[i].host;
	for (uint32_t i = 0, k = 0; i < def->nr_devices; i++) {
		if (!is_vfio(&def->devices[i]))
			continue;
		ret = check_start(vm, &def->devices[i], i, ours, n, &pci[k++], err, err_len);
		if (ret)
			return ret;
	}
	for (uint32_t i = 0, k = 0; i < def->nr_devices; i++) {
		const struct vmdef_device *dev = &def->devices[i];
		struct dvm_device *h = &vm->held[vm->nr_held];

		if (!is_vfio(dev))
			continue;
		*h = (struct dvm_device){ .group = pci[k++].group, .managed = dev->managed };
		util_strlcpy(h->bdf, dev->host, sizeof(h->bdf));
		vm->nr_held++;
		if (!dev->managed)
			continue;
		ret = iommu_bind_vfio("", dev->host, h->prev, sizeof(h->prev), why, sizeof(why));
		if (ret) {
			vm->nr_held--; /* not bound: nothing to give back */
			dvm_devices_release(vm);
			return fail(err, err_len, ret == -ENOENT ? -EINVAL : -EBUSY,
				    "devices[%u] (vfio-pci %s, managed): %s", i, dev->host, why);
		}
		h->bound = true;
		util_log(&vm->d->log, UTIL_LOG_INFO, "VM %s: %s bound to vfio-pci (it had %s)",
			 vm->cfg.name, dev->host, h->prev[0] ? h->prev : "no driver");
	}
	return 0;
}

void dvm_devices_release(struct dvm *vm)
{
	char why[512];

	for (unsigned i = vm->nr_held; i-- > 0;) {
		struct dvm_device *h = &vm->held[i];

		if (!h->bound)
			continue;
		if (iommu_unbind_vfio("", h->bdf, h->prev, why, sizeof(why)))
			util_log(&vm->d->log, UTIL_LOG_WARN, "VM %s: %s not given back: %s",
				 vm->cfg.name, h->bdf, why);
		else
			util_log(&vm->d->log, UTIL_LOG_INFO, "VM %s: %s given back to %s",
				 vm->cfg.name, h->bdf, h->prev[0] ? h->prev : "no driver");
	}
	vm->nr_held = 0;
}

json_t *dvm_devices_held_json(const struct dvm *vm)
{
	json_t *list = json_array();

	for (unsigned i = 0; list && i < vm->nr_held; i++) {
		const struct dvm_device *h = &vm->held[i];

		json_array_append_new(list, json_pack("{s:s, s:i, s:b, s:b, s:s}", "bdf", h->bdf,
						      "group", h->group, "managed", h->managed,
						      "bound", h->bound, "prev", h->prev));
	}
	return list;
}

int dvm_devices_held_from_json(struct dvm *vm, const json_t *list)
{
	size_t i;
	json_t *v;

	vm->nr_held = 0;
	if (!json_is_array(list))
		return 0;
	json_array_foreach(list, i, v) {
		struct dvm_device *h = &vm->held[vm->nr_held];
		const char *bdf = json_string_value(json_object_get(v, "bdf"));
		const char *prev = json_string_value(json_object_get(v, "prev"));

		if (vm->nr_held == VMDEF_DEVICES_MAX || !bdf || !util_pci_address_valid(bdf) ||
		    !prev || strlen(prev) >= sizeof(h->prev) || strchr(prev, '/'))
			return -EPROTO;
		*h = (struct dvm_device){
			.group = (int)json_integer_value(json_object_get(v, "group")),
			.managed = json_is_true(json_object_get(v, "managed")),
			.bound = json_is_true(json_object_get(v, "bound")),
		};
		util_strlcpy(h->bdf, bdf, sizeof(h->bdf));
		util_strlcpy(h->prev, prev, sizeof(h->prev));
		vm->nr_held++;
	}
	return 0;
}

/* What lockstep could do with a device: a word, and who has it. */
static const char *verdict(struct daemon *d, const struct iommu_pci *p, const char **vm)
{
	char why[256];

	*vm = dvm_devices_holder(d, p->bdf, p->group);
	if (*vm)
		return "in use by a VM";
	if (p->group < 0)
		return "no IOMMU group";
	if ((p->class_code >> 8) == 0x0604 || (p->class_code >> 16) == 0x06)
		return "bridge";
	if (iommu_group_check("", p->bdf, NULL, 0, why, sizeof(why)))
		return "group shared with a host driver";
	if (strcmp(p->driver, "vfio-pci") == 0)
		return "ready";
	return p->driver[0] ? "managed only (host driver)" : "managed only (no driver)";
}

json_t *dvm_devices_host_json(struct daemon *d)
{
	struct iommu_pci *list;
	json_t *out = json_array();
	unsigned n;

	if (!out || iommu_pci_list("", &list, &n))
		return out;
	for (unsigned i = 0; i < n; i++) {
		const struct iommu_pci *p = &list[i];
		const char *vm = NULL, *what = verdict(d, p, &vm);
		char id[16], cls[16];

		snprintf(id, sizeof(id), "%04x:%04x", p->vendor, p->device);
		snprintf(cls, sizeof(cls), "%06x", p->class_code);
		json_array_append_new(
			out, json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s?}", "bdf",
				       p->bdf, "id", id, "class", cls, "driver", p->driver,
				       "iommu_group", p->group, "iommu", p->unit, "iommu_kind",
				       p->unit_kind, "reset_method", p->reset_method, "passthrough",
				       what, "vm", vm));
	}
	free(list);
	return out;
}

/* Adds the host's interrupt counts to each device of a passthrough report. */
void dvm_devices_report_complete(json_t *report)
{
	json_t *devices = json_object_get(report, "devices"), *dev;
	size_t i;

	json_array_foreach(devices, i, dev) {
		const char *bdf = json_string_value(json_object_get(dev, "host"));
		struct iommu_host_irqs irqs;

		if (!bdf || !util_pci_address_valid(bdf) || iommu_host_irqs("", bdf, &irqs))
			continue;
		json_object_set_new(dev, "host_interrupts",
				    json_pack("{s:i, s:I, s:s, s:b}", "handlers", (int)irqs.lines,
					      "count", (json_int_t)irqs.count, "chip", irqs.chip,
					      "remapped", irqs.remapped));
	}
}
