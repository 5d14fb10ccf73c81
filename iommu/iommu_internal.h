/*
 * Internals of iommu/, shared by its sources: the address space (type1 container or iommufd
 * IOAS) with its groups and DMA maps, the device, the parts of iommufd's UAPI that Debian 12's
 * kernel headers do not have yet, and the pure parsers the unit tests reach.
 */
#ifndef LOCKSTEP_IOMMU_INTERNAL_H
#define LOCKSTEP_IOMMU_INTERNAL_H

#include <limits.h>
#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/vfio.h>
#include <pthread.h>

#include "iommu/iommu.h"

/*
 * iommufd (Linux 6.2; the VFIO device cdev that binds to it, 6.6), as the kernel's UAPI
 * defines it: ioctl numbers on type ';' from 0x80, and VFIO's device ioctls 18-20.  Spelt
 * here under lockstep's names so the code compiles against older headers.
 */
#define IOMMU_UAPI_TYPE ';'
#define IOMMU_UAPI_IOAS_ALLOC _IO(IOMMU_UAPI_TYPE, 0x81)
#define IOMMU_UAPI_IOAS_MAP _IO(IOMMU_UAPI_TYPE, 0x85)
#define IOMMU_UAPI_IOAS_UNMAP _IO(IOMMU_UAPI_TYPE, 0x86)
#define IOMMU_UAPI_MAP_FIXED_IOVA (1u << 0)
#define IOMMU_UAPI_MAP_WRITEABLE (1u << 1)
#define IOMMU_UAPI_MAP_READABLE (1u << 2)
#define IOMMU_UAPI_DEVICE_BIND _IO(VFIO_TYPE, VFIO_BASE + 18)
#define IOMMU_UAPI_DEVICE_ATTACH _IO(VFIO_TYPE, VFIO_BASE + 19)

struct iommu_uapi_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};

struct iommu_uapi_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};

struct iommu_uapi_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};

struct iommu_uapi_device_bind {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};

struct iommu_uapi_device_attach {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};

#define IOMMU_GROUPS_MAX 16

struct iommu_group {
	int id;
	int fd; /* /dev/vfio/ID */
	unsigned devices;
};

struct iommu_map {
	uint64_t iova, size;
	void *va;
	unsigned prot;
};

struct iommu {
	char root[PATH_MAX / 4];
	enum iommu_backend backend;
	const struct util_log *log;
	int fd;		/* the container (type1) or /dev/iommu */
	bool iommu_set; /* type1: VFIO_SET_IOMMU done (with the first group) */
	uint32_t ioas;	/* iommufd: the IO address space */
	unsigned nr_groups;
	struct iommu_group group[IOMMU_GROUPS_MAX];
	unsigned nr_devices;
	unsigned nr_maps, cap_maps;
	struct iommu_map *maps;
	uint64_t map_ns, maps_made, unmaps_made;
};

struct iommu_dev {
	struct iommu *io;
	char bdf[IOMMU_BDF_MAX];
	int group;		  /* IOMMU group number */
	int group_slot;		  /* type1: index in io->group[], -1 for iommufd */
	int fd;			  /* the device: from the group, or the cdev */
	pthread_mutex_t irq_lock; /* SET_IRQS calls, one at a time */
	struct iommu_dev_info info;
};

/* A path under the address space's (or a caller's) root. */
void iommu_path(const char *root, char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Decodes VFIO_DEVICE_GET_REGION_INFO's answer (the struct and its capability chain, `len`
 * bytes as the kernel filled them): sizes, flags, sparse mmap areas, MSI-X mappability.
 * -EPROTO for a chain that leaves the buffer or loops.
 */
int iommu_region_parse(const void *buf, size_t len, struct iommu_region *out);

/* The VFIO cdev of a device ("vfio3"), from /sys/bus/pci/devices/BDF/vfio-dev; -ENOENT. */
int iommu_cdev_name(const char *root, const char *bdf, char *name, size_t size);

#endif /* LOCKSTEP_IOMMU_INTERNAL_H */
