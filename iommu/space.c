/*
 * A VM's DMA address space: the back end (VFIO's type1 container or an iommufd IO address
 * space), the IOMMU groups and devices that join it, and the DMA maps of guest RAM.
 *
 * type1: the container is /dev/vfio/vfio; a group (/dev/vfio/N) that is viable joins it with
 * VFIO_GROUP_SET_CONTAINER, and the first one lets VFIO_SET_IOMMU pick the type1 IOMMU
 * (v2 where offered), after which maps apply to every group in the container.  iommufd: one
 * IOAS on /dev/iommu; each device's cdev is bound to the iommufd and attached to the IOAS.
 * Either way a map pins the pages and programs the IOMMU's page tables, so the device reaches
 * exactly the mapped guest RAM at its guest-physical addresses.
 *
 * Called by the thread that builds and tears down the VM (vm/, and the bed's test program);
 * nothing here is locked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iommu/iommu_internal.h"
#include "util/util.h"

const char *iommu_backend_name(enum iommu_backend b)
{
	return b == IOMMU_IOMMUFD ? "iommufd" : "vfio-type1";
}

void iommu_path(const char *root, char *buf, size_t size, const char *fmt, ...)
{
	int n = snprintf(buf, size, "%s", root ? root : "");
	va_list ap;

	if (n < 0 || (size_t)n >= size)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(buf + n, size - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool exists(const char *root, const char *path)
{
	char p[PATH_MAX];

	iommu_path(root, p, sizeof(p), "%s", path);
	return access(p, F_OK) == 0;
}

int iommu_cdev_name(const char *root, const char *bdf, char *name, size_t size)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dir;
	int ret = -ENOENT;

	iommu_path(root, path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	dir = opendir(path);
	if (!dir)
		return -ENOENT;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "vfio", 4) == 0 && e->d_name[4] >= '0' &&
		    e->d_name[4] <= '9') {
			ret = util_strlcpy(name, e->d_name, size);
			break;
		}
	}
	closedir(dir);
	return ret;
}

int iommu_backend_choose(const char *root, enum iommu_prefer prefer, const char *const *bdfs,
			 unsigned n, enum iommu_backend *out, char *why, size_t why_len)
{
	bool dev_iommu = exists(root, "/dev/iommu");
	const char *missing = NULL;
	char name[32];

	for (unsigned i = 0; i < n && !missing; i++)
		if (iommu_cdev_name(root, bdfs[i], name, sizeof(name)))
			missing = bdfs[i];
	if (prefer == IOMMU_PREFER_TYPE1) {
		*out = IOMMU_TYPE1;
		return util_error(why, why_len, 0, "the VFIO type1 container, as asked");
	}
	if (dev_iommu && !missing) {
		*out = IOMMU_IOMMUFD;
		return util_error(why, why_len, 0,
				  "iommufd: /dev/iommu and a VFIO device cdev for "
				  "each device");
	}
	if (prefer == IOMMU_PREFER_IOMMUFD)
		return util_error(why, why_len, -ENODEV, "iommufd was asked for, but %s",
				  !dev_iommu ? "there is no /dev/iommu (Linux 6.2 or later with "
					       "CONFIG_IOMMUFD)" :
					       "a device has no VFIO cdev (Linux 6.6 or later with "
					       "CONFIG_VFIO_DEVICE_CDEV)");
	*out = IOMMU_TYPE1;
	return util_error(why, why_len, 0,
			  "the VFIO type1 container: iommufd is not usable here (%s)",
			  !dev_iommu ? "no /dev/iommu: Linux before 6.2, or CONFIG_IOMMUFD off" :
				       "no VFIO device cdev: Linux before 6.6, or "
				       "CONFIG_VFIO_DEVICE_CDEV off");
}

static int open_type1(struct iommu *io, char *why, size_t why_len)
{
	char path[PATH_MAX];
	int api;

	iommu_path(io->root, path, sizeof(path), "/dev/vfio/vfio");
	io->fd = open(path, O_RDWR | O_CLOEXEC);
	if (io->fd < 0)
		return util_error(why, why_len, -errno,
				  "cannot open %s: %s (is the vfio module loaded?)", path,
				  strerror(errno));
	api = ioctl(io->fd, VFIO_GET_API_VERSION);
	if (api != VFIO_API_VERSION)
		return util_error(why, why_len, -EPROTONOSUPPORT,
				  "%s speaks VFIO API version %d, lockstep knows %d", path, api,
				  VFIO_API_VERSION);
	if (ioctl(io->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0)
		return util_error(why, why_len, -ENODEV,
				  "the VFIO container offers no type1 IOMMU (vfio_iommu_type1 not "
				  "loaded?)");
	return 0;
}

static int open_iommufd(struct iommu *io, char *why, size_t why_len)
{
	struct iommu_uapi_ioas_alloc alloc = { .size = sizeof(alloc) };
	char path[PATH_MAX];

	iommu_path(io->root, path, sizeof(path), "/dev/iommu");
	io->fd = open(path, O_RDWR | O_CLOEXEC);
	if (io->fd < 0)
		return util_error(why, why_len, -errno, "cannot open %s: %s", path,
				  strerror(errno));
	if (ioctl(io->fd, IOMMU_UAPI_IOAS_ALLOC, &alloc) < 0)
		return util_error(why, why_len, -errno,
				  "iommufd: cannot allocate an IO address "
				  "space: %s",
				  strerror(errno));
	io->ioas = alloc.out_ioas_id;
	return 0;
}

int iommu_new(const struct iommu_options *opt, const char *const *bdfs, unsigned n,
	      struct iommu **out, char *why, size_t why_len)
{
	struct iommu *io = calloc(1, sizeof(*io));
	char reason[256];
	int ret;

	if (!io)
		return -ENOMEM;
	io->fd = -1;
	io->log = opt->log;
	util_strlcpy(io->root, opt->root ? opt->root : "", sizeof(io->root));
	ret = iommu_backend_choose(io->root, opt->prefer, bdfs, n, &io->backend, reason,
				   sizeof(reason));
	if (ret) {
		util_error(why, why_len, ret, "%s", reason);
		goto err;
	}
	ret = io->backend == IOMMU_IOMMUFD ? open_iommufd(io, why, why_len) :
					     open_type1(io, why, why_len);
	if (ret)
		goto err;
	if (io->log)
		util_log(io->log, UTIL_LOG_INFO, "DMA remapping through %s", reason);
	*out = io;
	return 0;

err:
	iommu_free(io);
	return ret;
}

enum iommu_backend iommu_backend(const struct iommu *io)
{
	return io->backend;
}

static int unmap_one(struct iommu *io, const struct iommu_map *m)
{
	int ret;

	if (io->backend == IOMMU_IOMMUFD) {
		struct iommu_uapi_ioas_unmap u = {
			.size = sizeof(u), .ioas_id = io->ioas, .iova = m->iova, .length = m->size
		};

		ret = ioctl(io->fd, IOMMU_UAPI_IOAS_UNMAP, &u);
	} else {
		struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u),
							.iova = m->iova,
							.size = m->size };

		ret = ioctl(io->fd, VFIO_IOMMU_UNMAP_DMA, &u);
	}
	return ret < 0 ? -errno : 0;
}

void iommu_free(struct iommu *io)
{
	if (!io)
		return;
	/* The kernel would drop the maps with the last descriptor; lockstep says when. */
	if (io->nr_maps) {
		uint64_t bytes = 0;
		unsigned failed = 0;

		for (unsigned i = io->nr_maps; i-- > 0;) {
			bytes += io->maps[i].size;
			failed += unmap_one(io, &io->maps[i]) != 0;
		}
		if (io->log)
			util_log(io->log, failed ? UTIL_LOG_WARN : UTIL_LOG_INFO,
				 "DMA unmapped: %u mapping%s, %llu MiB%s", io->nr_maps,
				 io->nr_maps == 1 ? "" : "s", (unsigned long long)(bytes >> 20),
				 failed ? " (some refused: closing the address space drops them)" :
					  "");
	}
	free(io->maps);
	for (unsigned i = 0; i < io->nr_groups; i++)
		if (io->group[i].fd >= 0)
			close(io->group[i].fd);
	if (io->fd >= 0)
		close(io->fd);
	free(io);
}

int iommu_dma_map(struct iommu *io, uint64_t iova, void *va, uint64_t size, unsigned prot)
{
	uint64_t start = util_now_ns();
	int ret;

	if (!size || (iova | size | (uintptr_t)va) & 0xfff ||
	    !(prot & (IOMMU_DMA_READ | IOMMU_DMA_WRITE)))
		return -EINVAL;
	if (io->backend == IOMMU_TYPE1 && !io->iommu_set)
		return -ENODEV; /* no group joined yet: no IOMMU to program */
	if (io->nr_maps == io->cap_maps) {
		unsigned cap = io->cap_maps ? 2 * io->cap_maps : 8;
		struct iommu_map *m = realloc(io->maps, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		io->maps = m;
		io->cap_maps = cap;
	}
	if (io->backend == IOMMU_IOMMUFD) {
		struct iommu_uapi_ioas_map m = {
			.size = sizeof(m),
			.flags = IOMMU_UAPI_MAP_FIXED_IOVA |
				 (prot & IOMMU_DMA_READ ? IOMMU_UAPI_MAP_READABLE : 0) |
				 (prot & IOMMU_DMA_WRITE ? IOMMU_UAPI_MAP_WRITEABLE : 0),
			.ioas_id = io->ioas,
			.user_va = (uintptr_t)va,
			.length = size,
			.iova = iova,
		};

		ret = ioctl(io->fd, IOMMU_UAPI_IOAS_MAP, &m);
	} else {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof(m),
			.flags = (prot & IOMMU_DMA_READ ? VFIO_DMA_MAP_FLAG_READ : 0) |
				 (prot & IOMMU_DMA_WRITE ? VFIO_DMA_MAP_FLAG_WRITE : 0),
			.vaddr = (uintptr_t)va,
			.iova = iova,
			.size = size,
		};

		ret = ioctl(io->fd, VFIO_IOMMU_MAP_DMA, &m);
	}
	if (ret < 0)
		return -errno;
	io->maps[io->nr_maps++] =
		(struct iommu_map){ .iova = iova, .size = size, .va = va, .prot = prot };
	io->maps_made++;
	io->map_ns += util_now_ns() - start;
	return 0;
}

int iommu_dma_unmap(struct iommu *io, uint64_t iova, uint64_t size)
{
	for (unsigned i = 0; i < io->nr_maps; i++) {
		int ret;

		if (io->maps[i].iova != iova || io->maps[i].size != size)
			continue;
		ret = unmap_one(io, &io->maps[i]);
		if (ret)
			return ret;
		io->maps[i] = io->maps[--io->nr_maps];
		io->unmaps_made++;
		return 0;
	}
	return -ENOENT;
}

void iommu_dma_stats(const struct iommu *io, struct iommu_dma_stats *out)
{
	*out = (struct iommu_dma_stats){
		.mappings = io->nr_maps,
		.map_ns = io->map_ns,
		.maps = io->maps_made,
		.unmaps = io->unmaps_made,
	};
	for (unsigned i = 0; i < io->nr_maps; i++)
		out->bytes += io->maps[i].size;
}

/* ---- devices joining the address space ---- */

static int group_of(const char *root, const char *bdf, int *group)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *slash;
	uint64_t v;
	ssize_t n;

	iommu_path(root, path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	slash = strrchr(link, '/');
	if (util_parse_u64(slash ? slash + 1 : link, 0, INT32_MAX, &v))
		return -EINVAL;
	*group = (int)v;
	return 0;
}

/* Why a group or a device cannot be had: another holder, or a device in its group. */
static int explain_busy(struct iommu *io, const char *bdf, int group, int err, const char *what,
			char *why, size_t why_len)
{
	char reason[320];

	if (iommu_group_check(io->root, bdf, NULL, 0, reason, sizeof(reason)) == -EBUSY)
		return util_error(why, why_len, -EBUSY, "%s", reason);
	if (err == EBUSY)
		return util_error(why, why_len, -EBUSY,
				  "IOMMU group %d of %s is in use by another process (another VM, "
				  "or a VFIO user such as QEMU)",
				  group, bdf);
	return util_error(why, why_len, -err, "%s %s (IOMMU group %d): %s", what, bdf, group,
			  strerror(err));
}

static int join_group(struct iommu *io, const char *bdf, int group, int *slot, char *why,
		      size_t why_len)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	struct iommu_group *g;
	char path[PATH_MAX];
	int fd, type;

	for (unsigned i = 0; i < io->nr_groups; i++)
		if (io->group[i].id == group) {
			*slot = (int)i;
			return 0;
		}
	if (io->nr_groups == IOMMU_GROUPS_MAX)
		return util_error(why, why_len, -ENOSPC, "more than %d IOMMU groups",
				  IOMMU_GROUPS_MAX);
	iommu_path(io->root, path, sizeof(path), "/dev/vfio/%d", group);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		if (err == ENOENT)
			return util_error(why, why_len, -ENOENT,
					  "%s does not exist: %s is not bound to vfio-pci", path,
					  bdf);
		return explain_busy(io, bdf, group, err, "cannot open the group of", why, why_len);
	}
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st) < 0 || !(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		int err = errno;

		close(fd);
		if (st.argsz && !(st.flags & VFIO_GROUP_FLAGS_VIABLE) &&
		    explain_busy(io, bdf, group, EBUSY, "", why, why_len) == -EBUSY)
			return -EBUSY;
		return util_error(why, why_len, -EIO, "IOMMU group %d of %s: %s", group, bdf,
				  strerror(err ? err : EIO));
	}
	if (ioctl(fd, VFIO_GROUP_SET_CONTAINER, &io->fd) < 0) {
		int err = errno;

		close(fd);
		return util_error(why, why_len, -err,
				  "IOMMU group %d of %s cannot join the VFIO container: %s", group,
				  bdf, strerror(err));
	}
	if (!io->iommu_set) {
		type = ioctl(io->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0 ?
			       VFIO_TYPE1v2_IOMMU :
			       VFIO_TYPE1_IOMMU;
		if (ioctl(io->fd, VFIO_SET_IOMMU, type) < 0) {
			int err = errno;

			close(fd);
			if (err == EPERM)
				return util_error(
					why, why_len, -EPERM,
					"VFIO refuses the IOMMU: it cannot remap interrupts "
					"(vfio_iommu_type1 says \"No interrupt remapping support\"); "
					"turn interrupt remapping on, or accept unsafe interrupts with "
					"vfio_iommu_type1.allow_unsafe_interrupts=1");
			return util_error(why, why_len, -err, "VFIO_SET_IOMMU: %s", strerror(err));
		}
		io->iommu_set = true;
	}
	g = &io->group[io->nr_groups];
	*g = (struct iommu_group){ .id = group, .fd = fd };
	*slot = (int)io->nr_groups++;
	return 0;
}

static int open_cdev(struct iommu *io, struct iommu_dev *dev, char *why, size_t why_len)
{
	struct iommu_uapi_device_bind bind = { .argsz = sizeof(bind), .iommufd = io->fd };
	struct iommu_uapi_device_attach attach = { .argsz = sizeof(attach), .pt_id = io->ioas };
	char name[32], path[PATH_MAX];
	int ret;

	ret = iommu_cdev_name(io->root, dev->bdf, name, sizeof(name));
	if (ret)
		return util_error(why, why_len, ret,
				  "%s has no VFIO cdev: is it bound to vfio-pci?", dev->bdf);
	iommu_path(io->root, path, sizeof(path), "/dev/vfio/devices/%s", name);
	dev->fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->fd < 0)
		return explain_busy(io, dev->bdf, dev->group, errno, "cannot open", why, why_len);
	if (ioctl(dev->fd, IOMMU_UAPI_DEVICE_BIND, &bind) < 0)
		return explain_busy(io, dev->bdf, dev->group, errno,
				    "iommufd cannot take DMA ownership of", why, why_len);
	if (ioctl(dev->fd, IOMMU_UAPI_DEVICE_ATTACH, &attach) < 0)
		return util_error(why, why_len, -errno,
				  "%s cannot attach to the IO address space: %s", dev->bdf,
				  strerror(errno));
	return 0;
}

int iommu_dev_open(struct iommu *io, const char *bdf, struct iommu_dev **out, char *why,
		   size_t why_len)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct iommu_dev *dev;
	int ret;

	if (!util_pci_address_valid(bdf))
		return util_error(why, why_len, -EINVAL,
				  "\"%.32s\" is not a PCI address such as 0000:03:00.0", bdf);
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->io = io;
	dev->fd = -1;
	dev->group_slot = -1;
	pthread_mutex_init(&dev->irq_lock, NULL);
	util_strlcpy(dev->bdf, bdf, sizeof(dev->bdf));
	ret = group_of(io->root, bdf, &dev->group);
	if (ret) {
		util_error(why, why_len, ret == -ENOENT ? -ENOENT : ret,
			   ret == -ENOENT ? "%s is not a PCI device of this host, or it is in no "
					    "IOMMU group (no IOMMU?)" :
					    "%s: cannot read its IOMMU group",
			   bdf);
		goto err;
	}
	if (io->backend == IOMMU_IOMMUFD) {
		ret = open_cdev(io, dev, why, why_len);
	} else {
		ret = join_group(io, bdf, dev->group, &dev->group_slot, why, why_len);
		if (!ret) {
			dev->fd = ioctl(io->group[dev->group_slot].fd, VFIO_GROUP_GET_DEVICE_FD,
					dev->bdf);
			if (dev->fd < 0)
				ret = util_error(why, why_len, -errno,
						 "VFIO gives no descriptor for %s: %s", bdf,
						 strerror(errno));
			else
				io->group[dev->group_slot].devices++;
		}
	}
	if (ret)
		goto err;
	if (ioctl(dev->fd, VFIO_DEVICE_GET_INFO, &info) < 0) {
		ret = util_error(why, why_len, -errno, "%s: VFIO_DEVICE_GET_INFO: %s", bdf,
				 strerror(errno));
		goto err;
	}
	dev->info = (struct iommu_dev_info){
		.nr_regions = info.num_regions,
		.nr_irqs = info.num_irqs,
		.pci = info.flags & VFIO_DEVICE_FLAGS_PCI,
		.can_reset = info.flags & VFIO_DEVICE_FLAGS_RESET,
	};
	if (!dev->info.pci || dev->info.nr_regions <= IOMMU_REGION_CONFIG) {
		ret = util_error(why, why_len, -ENODEV, "%s is not a VFIO PCI device", bdf);
		goto err;
	}
	io->nr_devices++;
	*out = dev;
	return 0;

err:
	if (dev->group_slot >= 0 && dev->fd >= 0)
		io->group[dev->group_slot].devices--;
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
	pthread_mutex_destroy(&dev->irq_lock);
	free(dev);
	return ret;
}

void iommu_dev_close(struct iommu_dev *dev)
{
	if (!dev)
		return;
	if (dev->fd >= 0)
		close(dev->fd);
	if (dev->group_slot >= 0)
		dev->io->group[dev->group_slot].devices--;
	dev->io->nr_devices--;
	pthread_mutex_destroy(&dev->irq_lock);
	free(dev);
}

const char *iommu_dev_bdf(const struct iommu_dev *dev)
{
	return dev->bdf;
}

int iommu_dev_group(const struct iommu_dev *dev)
{
	return dev->group;
}

int iommu_dev_kvm_fd(const struct iommu_dev *dev)
{
	return dev->group_slot >= 0 ? dev->io->group[dev->group_slot].fd : dev->fd;
}

struct iommu_ioctl iommu_unmap_ioctl(const struct iommu *io)
{
	return (struct iommu_ioctl){
		.fd = io->fd,
		.cmd = io->backend == IOMMU_IOMMUFD ? IOMMU_UAPI_IOAS_UNMAP : VFIO_IOMMU_UNMAP_DMA,
	};
}

struct iommu_ioctl iommu_dev_set_irqs_ioctl(const struct iommu_dev *dev)
{
	return (struct iommu_ioctl){ .fd = dev->fd, .cmd = VFIO_DEVICE_SET_IRQS };
}

struct iommu_ioctl iommu_dev_reset_ioctl(const struct iommu_dev *dev)
{
	return (struct iommu_ioctl){ .fd = dev->fd, .cmd = VFIO_DEVICE_RESET };
}
