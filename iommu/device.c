/*
 * A passthrough device's VFIO interface: its regions (configuration space, BARs, ROM) with the
 * parts that may be mmapped, accesses to the parts that may not, its interrupt indexes (INTx,
 * MSI, MSI-X) pointed at eventfds, and its reset.
 *
 * Region accesses are pread/pwrite on the device fd at the region's offset, from whatever
 * thread traps them (vCPU threads); interrupt wiring is serialised per device by irq_lock so
 * that an enable and a change of the same index do not interleave.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "iommu/iommu_internal.h"
#include "util/util.h"

#define REGION_INFO_MAX 4096 /* the struct and its capability chain */

int iommu_dev_info(const struct iommu_dev *dev, struct iommu_dev_info *out)
{
	*out = dev->info;
	return 0;
}

int iommu_region_parse(const void *buf, size_t len, struct iommu_region *out)
{
	const struct vfio_region_info *ri = buf;
	const uint8_t *base = buf;
	uint32_t next, hops = 0;
	bool sparse = false;

	if (len < sizeof(*ri))
		return -EPROTO;
	*out = (struct iommu_region){
		.index = ri->index,
		.size = ri->size,
		.offset = ri->offset,
		.flags = (ri->flags & VFIO_REGION_INFO_FLAG_READ ? IOMMU_REGION_READ : 0) |
			 (ri->flags & VFIO_REGION_INFO_FLAG_WRITE ? IOMMU_REGION_WRITE : 0) |
			 (ri->flags & VFIO_REGION_INFO_FLAG_MMAP ? IOMMU_REGION_MMAP : 0),
	};
	next = ri->flags & VFIO_REGION_INFO_FLAG_CAPS ? ri->cap_offset : 0;
	while (next) {
		const struct vfio_info_cap_header *h;

		if (next < sizeof(*ri) || next > len || len - next < sizeof(*h) || ++hops > 64)
			return -EPROTO;
		h = (const void *)(base + next);
		if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
			const struct vfio_region_info_cap_sparse_mmap *s = (const void *)h;

			if (len - next < sizeof(*s) ||
			    s->nr_areas > (len - next - sizeof(*s)) / sizeof(s->areas[0]))
				return -EPROTO;
			out->nr_areas = 0;
			for (uint32_t i = 0; i < s->nr_areas; i++) {
				uint64_t off = s->areas[i].offset, size = s->areas[i].size;

				if (!size || off > out->size || size > out->size - off)
					continue; /* nothing, or outside the region */
				if (out->nr_areas == IOMMU_REGION_AREAS_MAX)
					break;
				out->area[out->nr_areas].offset = off;
				out->area[out->nr_areas++].size = size;
			}
			sparse = true; /* the areas are the list, even an empty one */
		} else if (h->id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
			out->msix_mappable = true;
		}
		next = h->next;
	}
	if (!sparse && (out->flags & IOMMU_REGION_MMAP) && out->size)
		out->area[out->nr_areas++] =
			(typeof(out->area[0])){ .offset = 0, .size = out->size };
	if (!(out->flags & IOMMU_REGION_MMAP))
		out->nr_areas = 0;
	return 0;
}

int iommu_dev_region(const struct iommu_dev *dev, uint32_t index, struct iommu_region *out)
{
	struct vfio_region_info *ri;
	size_t size = sizeof(*ri);
	int ret;

	if (index >= dev->info.nr_regions)
		return -ENOENT;
	for (;;) {
		ri = calloc(1, size);
		if (!ri)
			return -ENOMEM;
		ri->argsz = (uint32_t)size;
		ri->index = index;
		if (ioctl(dev->fd, VFIO_DEVICE_GET_REGION_INFO, ri) < 0) {
			ret = -errno;
			free(ri);
			return ret;
		}
		if (ri->argsz <= size || ri->argsz > REGION_INFO_MAX)
			break;
		size = ri->argsz; /* the capability chain did not fit: ask again */
		free(ri);
	}
	ret = iommu_region_parse(ri, size < ri->argsz ? size : ri->argsz, out);
	free(ri);
	return ret;
}

static bool in_region(const struct iommu_region *r, uint64_t off, size_t len)
{
	return len && off <= r->size && len <= r->size - off;
}

int iommu_dev_read(const struct iommu_dev *dev, const struct iommu_region *r, uint64_t off,
		   void *buf, size_t len)
{
	ssize_t n;

	if (!(r->flags & IOMMU_REGION_READ) || !in_region(r, off, len))
		return -EINVAL;
	n = pread(dev->fd, buf, len, (off_t)(r->offset + off));
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int iommu_dev_write(const struct iommu_dev *dev, const struct iommu_region *r, uint64_t off,
		    const void *buf, size_t len)
{
	ssize_t n;

	if (!(r->flags & IOMMU_REGION_WRITE) || !in_region(r, off, len))
		return -EINVAL;
	n = pwrite(dev->fd, buf, len, (off_t)(r->offset + off));
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int iommu_dev_mmap(const struct iommu_dev *dev, const struct iommu_region *r, uint64_t off,
		   uint64_t len, void **out)
{
	int prot = (r->flags & IOMMU_REGION_READ ? PROT_READ : 0) |
		   (r->flags & IOMMU_REGION_WRITE ? PROT_WRITE : 0);
	bool inside = false;
	void *p;

	for (unsigned i = 0; i < r->nr_areas && !inside; i++)
		inside = off >= r->area[i].offset && len &&
			 off - r->area[i].offset <= r->area[i].size &&
			 len <= r->area[i].size - (off - r->area[i].offset);
	if (!inside || (off | len) & 0xfff)
		return -EINVAL;
	p = mmap(NULL, len, prot, MAP_SHARED, dev->fd, (off_t)(r->offset + off));
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

int iommu_dev_irqs(const struct iommu_dev *dev, uint32_t index, uint32_t *count, bool *eventfd)
{
	struct vfio_irq_info info = { .argsz = sizeof(info), .index = index };

	*count = 0;
	*eventfd = false;
	if (index >= dev->info.nr_irqs)
		return 0;
	if (ioctl(dev->fd, VFIO_DEVICE_GET_IRQ_INFO, &info) < 0)
		return -errno;
	*count = info.count;
	*eventfd = info.flags & VFIO_IRQ_INFO_EVENTFD;
	return 0;
}

#define IRQ_SET_MAX 2048

static int set_irqs(struct iommu_dev *dev, uint32_t flags, uint32_t index, uint32_t start,
		    uint32_t count, const int *fds)
{
	size_t size = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
	struct vfio_irq_set *set;
	int ret = 0;

	if (count > IRQ_SET_MAX)
		return -EINVAL;
	set = calloc(1, size);
	if (!set)
		return -ENOMEM;
	*set = (struct vfio_irq_set){
		.argsz = (uint32_t)size,
		.flags = flags,
		.index = index,
		.start = start,
		.count = count,
	};
	for (uint32_t i = 0; fds && i < count; i++) {
		int32_t fd = fds[i];

		memcpy(set->data + i * sizeof(fd), &fd, sizeof(fd));
	}
	pthread_mutex_lock(&dev->irq_lock);
	if (ioctl(dev->fd, VFIO_DEVICE_SET_IRQS, set) < 0)
		ret = -errno;
	pthread_mutex_unlock(&dev->irq_lock);
	free(set);
	return ret;
}

int iommu_dev_set_irqs(struct iommu_dev *dev, uint32_t index, uint32_t start, uint32_t count,
		       const int *fds)
{
	if (!count)
		return set_irqs(dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index, 0,
				0, NULL);
	return set_irqs(dev, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start,
			count, fds);
}

int iommu_dev_intx_unmask_fd(struct iommu_dev *dev, int fd)
{
	return set_irqs(dev, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, IOMMU_IRQ_INTX,
			0, 1, &fd);
}

int iommu_dev_reset(struct iommu_dev *dev)
{
	if (!dev->info.can_reset)
		return -ENOTTY;
	return ioctl(dev->fd, VFIO_DEVICE_RESET) < 0 ? -errno : 0;
}
