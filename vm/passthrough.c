/*
 * A VM's passthrough devices as a whole: the checks that refuse what this host cannot give
 * (host_iommu_ready's words first, then the device's driver and its IOMMU group), the DMA
 * address space (iommu/: type1 or iommufd) with all of guest RAM mapped at its guest-physical
 * addresses, KVM's VFIO device, each device on the PCI bus (vm/vfio.c), and the DMA remapping
 * report: the IOMMU in front of each device and its domain, the mappings, whether interrupts
 * are remapped, and the faults the kernel logged for the device since the VM started (read
 * from /dev/kmsg, opened at start and positioned at its end, so it still reads once the
 * worker is confined).  Everything VFIO needs is opened and set up here, before the worker
 * confines itself; RLIMIT_MEMLOCK is raised by guest RAM just before the DMA map (VFIO counts
 * the pinned pages there), and vm_passthrough_ioctls says what the confined threads still
 * issue, for their seccomp lists.
 *
 * Control thread: set-up in vm_create, the report on request, teardown in vm_destroy.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "host/host.h"
#include "iommu/iommu.h"
#include "vm/vm_internal.h"

#define KMSG_RECORD_MAX 8192

struct pt_device {
	const struct vmdef_device *def;
	unsigned index; /* in the definition's devices */
	struct iommu_dev *dev;
	struct vm_vfio *vfio;
	int rom_fd;	      /* the definition's ROM file until the device is added, or -1 */
	struct iommu_pci pci; /* sysfs, at start */
	uint64_t faults;
	struct host_iommu_fault last_fault;
};

struct vm_passthrough {
	struct iommu *io;
	unsigned n;
	struct pt_device dev[VMDEF_DEVICES_MAX];
	uint64_t map_ns; /* mapping guest RAM, all of it */
	bool interrupt_remapping;
	int kmsg_fd;
	uint64_t kmsg_records;
};

static bool is_vfio(const struct vmdef_device *d)
{
	return strcmp(d->type, "vfio-pci") == 0;
}

static int refuse(struct vm *vm, const struct pt_device *d, int ret, const char *why)
{
	util_log(&vm->log, UTIL_LOG_ERROR, "devices[%u] (vfio-pci %s): %s", d->index, d->def->host,
		 why);
	return ret;
}

/* What the host must give before anything is opened: the check's own words first. */
static int check_device(struct vm *vm, struct vm_passthrough *pt, struct pt_device *d,
			const char *const *bdfs)
{
	char why[768];
	int ret = host_iommu_ready("", d->def->host, why, sizeof(why));

	if (ret)
		return refuse(vm, d, ret, why);
	ret = iommu_pci_read("", d->def->host, &d->pci);
	if (ret)
		return refuse(vm, d, ret, "this host has no such PCI device");
	if (strcmp(d->pci.driver, "vfio-pci") != 0) {
		snprintf(why, sizeof(why), "it is %s%s: bind it to vfio-pci first%s",
			 d->pci.driver[0] ? "in use by the host driver " : "bound to no driver",
			 d->pci.driver,
			 d->def->managed ? " (lockstepd binds managed devices)" :
					   ", or let lockstepd do it (\"managed\": true)");
		return refuse(vm, d, -EBUSY, why);
	}
	ret = iommu_group_check("", d->def->host, bdfs, pt->n, why, sizeof(why));
	return ret ? refuse(vm, d, ret, why) : 0;
}

/* Whether /proc/interrupts shows remapped MSIs (IR-PCI-MSI), read before confinement. */
static bool msi_remapped(void)
{
	char *text = NULL;
	size_t len;
	bool on = false;

	if (!util_read_text("/proc/interrupts", 4u << 20, &text, &len))
		on = strstr(text, "IR-PCI-MSI") != NULL;
	free(text);
	return on;
}

/*
 * VFIO type1 counts the pinned pages against RLIMIT_MEMLOCK unless the process has
 * CAP_IPC_LOCK, which a sandboxed worker does not: the soft and hard limits become guest RAM on
 * top of what was inherited (lockstepd lifted its workers' hard limit; vm/jail.c then fixes
 * the limit where it is).  A process that cannot raise it and has CAP_IPC_LOCK needs none.
 */
static int memlock_for_dma(struct vm *vm)
{
	struct rlimit rl;
	uint64_t want;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		return -errno;
	if (rl.rlim_cur == RLIM_INFINITY)
		return 0;
	want = vm->mem.size > RLIM_INFINITY - 1 - rl.rlim_cur ? RLIM_INFINITY - 1 :
								rl.rlim_cur + vm->mem.size;
	if (setrlimit(RLIMIT_MEMLOCK,
		      &(struct rlimit){ .rlim_cur = want,
					.rlim_max =
						rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ?
							want :
							rl.rlim_max }) == 0 ||
	    sandbox_cap_effective(CAP_IPC_LOCK))
		return 0;
	util_log(&vm->log, UTIL_LOG_ERROR,
		 "cannot raise RLIMIT_MEMLOCK to %llu MiB for the guest RAM VFIO pins for DMA "
		 "(hard limit %llu MiB; lockstepd lifts it for its workers; by hand: ulimit -l)",
		 (unsigned long long)(want >> 20), (unsigned long long)(rl.rlim_max >> 20));
	return -EPERM;
}

static int map_ram(struct vm *vm, struct vm_passthrough *pt)
{
	uint64_t start = util_now_ns();
	int ret;

	ret = iommu_dma_map(pt->io, 0, vm->mem.host, vm->mem.low_size,
			    IOMMU_DMA_READ | IOMMU_DMA_WRITE);
	if (!ret && vm->mem.high_size)
		ret = iommu_dma_map(pt->io, VM_HIGH_RAM_BASE, vm->mem.host + vm->mem.low_size,
				    vm->mem.high_size, IOMMU_DMA_READ | IOMMU_DMA_WRITE);
	pt->map_ns = util_now_ns() - start;
	if (ret)
		util_log(&vm->log, UTIL_LOG_ERROR, "cannot map guest RAM (%llu MiB) for DMA: %s%s",
			 (unsigned long long)(vm->mem.size >> 20), strerror(-ret),
			 ret == -ENOMEM ? " (the pinned memory is over RLIMIT_MEMLOCK, or memory "
					  "ran out)" :
					  "");
	else
		util_log(&vm->log, UTIL_LOG_INFO,
			 "guest RAM (%llu MiB) mapped for DMA at its guest-physical addresses in "
			 "%.1f ms",
			 (unsigned long long)(vm->mem.size >> 20), (double)pt->map_ns / 1e6);
	return ret;
}

int vm_passthrough_init(struct vm *vm, const struct vm_options *opts, int *status)
{
	const char *bdfs[VMDEF_DEVICES_MAX];
	struct iommu_options opt = { .root = "", .log = &vm->log };
	struct vm_passthrough *pt;
	char why[512];
	int ret = 0;

	for (uint32_t i = 0; i < vm->cfg.nr_devices && !ret; i++)
		ret = is_vfio(&vm->cfg.devices[i]);
	if (!ret)
		return 0;
	pt = calloc(1, sizeof(*pt));
	if (!pt)
		return -ENOMEM;
	pt->kmsg_fd = -1;
	vm->passthrough = pt;
	for (uint32_t i = 0; i < vm->cfg.nr_devices; i++) {
		if (!is_vfio(&vm->cfg.devices[i]))
			continue;
		pt->dev[pt->n] =
			(struct pt_device){ .def = &vm->cfg.devices[i], .index = i, .rom_fd = -1 };
		bdfs[pt->n++] = vm->cfg.devices[i].host;
	}
	*status = VM_EXIT_NOINPUT;
	for (unsigned i = 0; i < pt->n; i++) {
		const struct vmdef_device *def = pt->dev[i].def;

		if (!def->rom_bar || !def->rom_file)
			continue;
		pt->dev[i].rom_fd =
			vm_open_defined(vm, opts, "devices[].rom.file", def->rom_file, O_RDONLY, 0);
		if (pt->dev[i].rom_fd < 0)
			return pt->dev[i].rom_fd;
	}
	*status = VM_EXIT_DEVICE;
	for (unsigned i = 0; i < pt->n; i++) {
		ret = check_device(vm, pt, &pt->dev[i], bdfs);
		if (ret)
			return ret;
	}
	ret = iommu_new(&opt, bdfs, pt->n, &pt->io, why, sizeof(why));
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "passthrough: %s", why);
		return ret;
	}
	for (unsigned i = 0; i < pt->n; i++) {
		ret = iommu_dev_open(pt->io, bdfs[i], &pt->dev[i].dev, why, sizeof(why));
		if (ret)
			return refuse(vm, &pt->dev[i], ret, why);
		if (pt->dev[i].def->reset == VMDEF_RESET_ON) {
			struct iommu_dev_info info;

			iommu_dev_info(pt->dev[i].dev, &info);
			if (!info.can_reset)
				return refuse(
					vm, &pt->dev[i], -EINVAL,
					"it has no reset method (FLR, PM or bus reset), and "
					"\"reset\" is \"on\"; \"auto\" or \"off\" lets it run");
		}
		ret = hv_vm_vfio_add(vm->hv, iommu_dev_kvm_fd(pt->dev[i].dev));
		if (ret && ret != -EEXIST) /* a group's second device: KVM has it */
			return refuse(vm, &pt->dev[i], ret, "KVM's VFIO device refuses it");
	}
	ret = memlock_for_dma(vm);
	if (ret)
		return ret;
	*status = VM_EXIT_INTERNAL;
	ret = map_ram(vm, pt);
	if (ret)
		return ret;
	pt->interrupt_remapping = msi_remapped();
	/* Faults from now on: the end of the log, kept open for the whole run. */
	pt->kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (pt->kmsg_fd >= 0)
		lseek(pt->kmsg_fd, 0, SEEK_END);
	return 0;
}

int vm_passthrough_add(struct vm *vm, unsigned index)
{
	struct vm_passthrough *pt = vm->passthrough;

	for (unsigned i = 0; pt && i < pt->n; i++)
		if (pt->dev[i].index == index)
			return vm_vfio_add(vm, pt->dev[i].dev, pt->dev[i].def, index,
					   pt->dev[i].rom_fd, &pt->dev[i].vfio);
	return -ENOENT;
}

void vm_passthrough_fini(struct vm *vm)
{
	struct vm_passthrough *pt = vm->passthrough;

	if (!pt)
		return;
	for (unsigned i = 0; i < pt->n; i++) {
		vm_vfio_free(pt->dev[i].vfio);
		iommu_dev_close(pt->dev[i].dev);
		if (pt->dev[i].rom_fd >= 0)
			close(pt->dev[i].rom_fd);
	}
	iommu_free(pt->io); /* unmaps guest RAM */
	if (pt->kmsg_fd >= 0)
		close(pt->kmsg_fd);
	free(pt);
	vm->passthrough = NULL;
}

/*
 * What the confined threads still ask of VFIO (docs/security.md): vCPU threads rewire a
 * device's interrupts when the guest programs MSI, MSI-X or INTx through configuration space
 * or the MSI-X table; the control thread does that too when it takes the devices down, resets
 * them and unmaps guest RAM.  Opening, the IOMMU's set-up, the DMA maps, region queries and
 * BAR mmaps all happen in vm_passthrough_init and vm_vfio_add, before the filters.
 */
unsigned vm_passthrough_ioctls(const struct vm *vm, enum vm_thread_kind kind,
			       struct iommu_ioctl *out, unsigned max)
{
	const struct vm_passthrough *pt = vm->passthrough;
	unsigned n = 0;

	if (!pt || !pt->io || (kind != VM_THREAD_VCPU && kind != VM_THREAD_CONTROL))
		return 0;
	for (unsigned i = 0; i < pt->n && n < max; i++) {
		if (!pt->dev[i].dev)
			continue;
		out[n++] = iommu_dev_set_irqs_ioctl(pt->dev[i].dev);
		if (kind == VM_THREAD_CONTROL && n < max)
			out[n++] = iommu_dev_reset_ioctl(pt->dev[i].dev);
	}
	if (kind == VM_THREAD_CONTROL && n < max)
		out[n++] = iommu_unmap_ioctl(pt->io);
	return n;
}

/* New kernel log records: the IOMMU faults among them, to their devices. */
static void read_faults(struct vm_passthrough *pt)
{
	char rec[KMSG_RECORD_MAX];

	for (unsigned n = 0; pt->kmsg_fd >= 0 && n < 100000; n++) {
		ssize_t len = read(pt->kmsg_fd, rec, sizeof(rec) - 1);
		struct host_iommu_fault f;

		if (len < 0 && (errno == EPIPE || errno == EINTR))
			continue; /* records overwritten meanwhile: go on from the oldest kept */
		if (len <= 0)
			break;
		rec[len] = '\0';
		pt->kmsg_records++;
		if (!host_iommu_fault_parse(rec, strcspn(rec, "\n"), &f))
			continue;
		for (unsigned i = 0; i < pt->n; i++)
			if (host_iommu_fault_from(&f, pt->dev[i].def->host)) {
				pt->dev[i].faults++;
				pt->dev[i].last_fault = f;
			}
	}
}

static json_t *device_json(const struct vm_passthrough *pt, const struct pt_device *d)
{
	json_t *obj = d->vfio ? vm_vfio_json(d->vfio) : json_pack("{s:s}", "host", d->def->host);
	char address[24];
	json_t *faults;

	if (!obj)
		return NULL;
	/* logged_here: whether the kernel log could be read (QEMU 7.2's amd-iommu logs none) */
	faults = json_pack("{s:I, s:b}", "count", (json_int_t)d->faults, "log_readable",
			   pt->kmsg_fd >= 0);
	snprintf(address, sizeof(address), "%#llx", (unsigned long long)d->last_fault.address);
	if (faults && d->faults)
		json_object_set_new(faults, "last",
				    json_pack("{s:s, s:s, s:s, s:s}", "source",
					      d->last_fault.source, "access",
					      d->last_fault.write ? "write" : "read", "address",
					      address, "reason", d->last_fault.reason));
	json_object_set_new(obj, "index", json_integer(d->index));
	json_object_set_new(obj, "managed", json_boolean(d->def->managed));
	json_object_set_new(obj, "iommu",
			    json_pack("{s:s, s:s, s:i, s:s, s:s, s:b}", "unit", d->pci.unit, "kind",
				      d->pci.unit_kind[0] ? d->pci.unit_kind : "unknown", "group",
				      d->pci.group, "default_domain", d->pci.domain, "domain",
				      "unmanaged (VFIO)", "interrupt_remapping",
				      pt->interrupt_remapping));
	json_object_set_new(obj, "faults", faults);
	return obj;
}

json_t *vm_passthrough_json(struct vm *vm)
{
	struct vm_passthrough *pt = vm->passthrough;
	struct iommu_dma_stats st;
	json_t *devices, *obj;

	if (!pt || !pt->io)
		return NULL;
	read_faults(pt);
	iommu_dma_stats(pt->io, &st);
	devices = json_array();
	for (unsigned i = 0; devices && i < pt->n; i++)
		json_array_append_new(devices, device_json(pt, &pt->dev[i]));
	obj = json_pack("{s:s, s:{s:i, s:I, s:f, s:I, s:I}, s:o}", "backend",
			iommu_backend_name(iommu_backend(pt->io)), "dma", "mappings",
			(int)st.mappings, "bytes", (json_int_t)st.bytes, "map_ms",
			(double)pt->map_ns / 1e6, "maps", (json_int_t)st.maps, "unmaps",
			(json_int_t)st.unmaps, "devices", devices);
	return obj;
}
