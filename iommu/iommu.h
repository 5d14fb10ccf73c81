/*
 * iommu — device passthrough through VFIO: a VM's DMA address space (the VFIO type1 container,
 * or iommufd on kernels that have it), the IOMMU groups and devices it holds, the DMA maps of
 * guest RAM, and each device's regions, interrupts and reset; plus what sysfs says about the
 * host's PCI devices (IOMMU group, driver, remapping unit) and the binding of a device to
 * vfio-pci and back that `managed` devices get.
 *
 * Back ends.  iommufd (/dev/iommu with a VFIO device cdev, /dev/vfio/devices/vfioN; Linux 6.6
 * and later for the cdev) is compiled in and preferred when the host has it for every device;
 * otherwise the type1 container (/dev/vfio/vfio, a group per /dev/vfio/N) is used, and
 * iommu_new() logs which one and why.  Both map guest-physical addresses as IOVAs.
 *
 * Nothing here knows about KVM, PCI configuration semantics or guests: callers (vm/) turn a
 * device's regions into BARs and memory slots and its interrupt indexes into irqfds, handing
 * eventfds down as plain descriptors.  Every function returns 0 or -errno; those that can fail
 * for a reason a person must act on fill `why`.
 *
 * Threads: struct iommu and its maps belong to the thread that builds and tears down the VM;
 * a device's region accesses (pread/pwrite) and its interrupt wiring may come from any thread
 * (the kernel serialises VFIO_DEVICE_SET_IRQS; callers serialise per index).
 */
#ifndef LOCKSTEP_IOMMU_H
#define LOCKSTEP_IOMMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct util_log;
struct iommu;
struct iommu_dev;

#define IOMMU_BDF_MAX 16 /* "0000:00:03.0" and its NUL */

enum iommu_backend {
	IOMMU_TYPE1 = 0, /* VFIO container, /dev/vfio/vfio + /dev/vfio/GROUP */
	IOMMU_IOMMUFD,	 /* /dev/iommu + /dev/vfio/devices/vfioN */
};

enum iommu_prefer {
	IOMMU_PREFER_AUTO = 0, /* iommufd where every device has a VFIO cdev, else type1 */
	IOMMU_PREFER_TYPE1,
	IOMMU_PREFER_IOMMUFD, /* refused (-ENODEV) where the host lacks it */
};

const char *iommu_backend_name(enum iommu_backend b);

/* ---- the DMA address space ---- */

struct iommu_options {
	const char *root; /* prefix of every /sys and /dev path; NULL or "" = this host */
	enum iommu_prefer prefer;
	const struct util_log *log; /* the back end chosen, and why; NULL = silent */
};

/*
 * Which back end serves `bdfs` (n devices) on this host, and why (for the log): iommufd
 * needs /dev/iommu and a VFIO cdev for each device.  -ENODEV with `why` when `prefer` names
 * one the host does not have.
 */
int iommu_backend_choose(const char *root, enum iommu_prefer prefer, const char *const *bdfs,
			 unsigned n, enum iommu_backend *out, char *why, size_t why_len);

/* Opens the back end for these devices (they are opened with iommu_dev_open next). */
int iommu_new(const struct iommu_options *opt, const char *const *bdfs, unsigned n,
	      struct iommu **out, char *why, size_t why_len);
/* Unmaps every DMA mapping left, then closes the address space (devices first). */
void iommu_free(struct iommu *io);
enum iommu_backend iommu_backend(const struct iommu *io);

#define IOMMU_DMA_READ (1u << 0)  /* the device may read the memory */
#define IOMMU_DMA_WRITE (1u << 1) /* the device may write it */

/*
 * Maps [va, va + size) at `iova` for every device of the address space (at least one device
 * must be open: type1 has no IOMMU before its first group).  Pins the pages.
 */
int iommu_dma_map(struct iommu *io, uint64_t iova, void *va, uint64_t size, unsigned prot);
/* Unmaps exactly a range that was mapped. */
int iommu_dma_unmap(struct iommu *io, uint64_t iova, uint64_t size);

struct iommu_dma_stats {
	unsigned mappings; /* live */
	uint64_t bytes;	   /* mapped now */
	uint64_t map_ns;   /* time spent in map calls (pinning) so far */
	uint64_t maps, unmaps;
};

void iommu_dma_stats(const struct iommu *io, struct iommu_dma_stats *out);

/* ---- devices ---- */

/*
 * Opens a device bound to vfio-pci: type1 opens its group (which must be viable: every device
 * in it bound to vfio-pci or to no driver; otherwise -EBUSY naming the device in the way),
 * joins the container and gets the device fd; iommufd opens its cdev, binds it and attaches
 * it to the address space.
 */
int iommu_dev_open(struct iommu *io, const char *bdf, struct iommu_dev **out, char *why,
		   size_t why_len);
void iommu_dev_close(struct iommu_dev *dev);
const char *iommu_dev_bdf(const struct iommu_dev *dev);
int iommu_dev_group(const struct iommu_dev *dev);
/* The descriptor KVM's VFIO device takes: the group (type1) or the device cdev (iommufd). */
int iommu_dev_kvm_fd(const struct iommu_dev *dev);

/*
 * The ioctls a process still issues once it is confined, for its seccomp lists: the descriptor
 * and the exact command.  Everything else (opening, container and IOMMU set-up, DMA maps,
 * region and interrupt queries, mmaps) happens before.
 */
struct iommu_ioctl {
	int fd;
	unsigned long cmd;
};

/* Unmapping guest RAM at teardown (VFIO_IOMMU_UNMAP_DMA, or iommufd's IOAS unmap). */
struct iommu_ioctl iommu_unmap_ioctl(const struct iommu *io);
/* Pointing a device's interrupts at eventfds (VFIO_DEVICE_SET_IRQS). */
struct iommu_ioctl iommu_dev_set_irqs_ioctl(const struct iommu_dev *dev);
/* Resetting it (VFIO_DEVICE_RESET). */
struct iommu_ioctl iommu_dev_reset_ioctl(const struct iommu_dev *dev);

/* The vfio-pci region and interrupt indexes (VFIO_PCI_*_INDEX). */
#define IOMMU_REGION_BAR0 0
#define IOMMU_REGION_ROM 6
#define IOMMU_REGION_CONFIG 7
#define IOMMU_IRQ_INTX 0
#define IOMMU_IRQ_MSI 1
#define IOMMU_IRQ_MSIX 2

#define IOMMU_REGION_READ (1u << 0)
#define IOMMU_REGION_WRITE (1u << 1)
#define IOMMU_REGION_MMAP (1u << 2)
#define IOMMU_REGION_AREAS_MAX 8

struct iommu_region {
	uint32_t index;
	uint32_t flags; /* IOMMU_REGION_* */
	uint64_t size;
	uint64_t offset; /* in the device fd */
	/* What may be mmapped: the sparse areas VFIO lists, or the whole region. */
	unsigned nr_areas;
	struct {
		uint64_t offset, size; /* within the region */
	} area[IOMMU_REGION_AREAS_MAX];
	bool msix_mappable; /* the MSI-X table may be mapped (VFIO says so) */
};

struct iommu_dev_info {
	uint32_t nr_regions, nr_irqs;
	bool pci;
	bool can_reset; /* VFIO_DEVICE_RESET has a method (FLR, PM, a bus reset...) */
};

int iommu_dev_info(const struct iommu_dev *dev, struct iommu_dev_info *out);
int iommu_dev_region(const struct iommu_dev *dev, uint32_t index, struct iommu_region *out);
/* Reads or writes a whole access at `off` in the region (config space, a trapped BAR). */
int iommu_dev_read(const struct iommu_dev *dev, const struct iommu_region *r, uint64_t off,
		   void *buf, size_t len);
int iommu_dev_write(const struct iommu_dev *dev, const struct iommu_region *r, uint64_t off,
		    const void *buf, size_t len);
/* Maps [off, off + len) of a region that allows it (an area of it); munmap() it. */
int iommu_dev_mmap(const struct iommu_dev *dev, const struct iommu_region *r, uint64_t off,
		   uint64_t len, void **out);

/* How many interrupts an index has (0: none) and whether they take eventfds. */
int iommu_dev_irqs(const struct iommu_dev *dev, uint32_t index, uint32_t *count, bool *eventfd);
/*
 * Points interrupts [start, start + count) of `index` at eventfds (-1: none for that one).
 * count 0 turns the index off.  For MSI and MSI-X the first call with count > 0 enables them
 * with that many vectors; later calls may change any of them.
 */
int iommu_dev_set_irqs(struct iommu_dev *dev, uint32_t index, uint32_t start, uint32_t count,
		       const int *fds);
/* INTx: the eventfd whose signal unmasks the line (the guest's EOI through KVM's resample
 * irqfd); -1 removes it. */
int iommu_dev_intx_unmask_fd(struct iommu_dev *dev, int fd);
/* VFIO_DEVICE_RESET; -ENOTTY when the device has no reset method. */
int iommu_dev_reset(struct iommu_dev *dev);

/* ---- the host's PCI devices (sysfs under `root`) ---- */

struct iommu_pci {
	char bdf[IOMMU_BDF_MAX];
	uint16_t vendor, device;
	uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
	char driver[32];     /* "" = none */
	char override[32];   /* driver_override, "" = none */
	int group;	     /* IOMMU group, -1 = none */
	char unit[32];	     /* the remapping unit ("dmar0", "ivhd0"), "" = unknown */
	char unit_kind[16];  /* "VT-d", "AMD-Vi", or "" */
	char domain[24];     /* the group's default domain type (DMA, DMA-FQ, identity...) */
	char reset_method[64];
	bool vfio_cdev; /* a /dev/vfio/devices/vfioN exists for it (iommufd) */
	int numa_node;
};

int iommu_pci_read(const char *root, const char *bdf, struct iommu_pci *out);
/* Every PCI device, in address order; *out is malloc'ed. */
int iommu_pci_list(const char *root, struct iommu_pci **out, unsigned *n);
/* The devices of IOMMU group `group`, in address order (at most `max`); their number. */
int iommu_group_devices(const char *root, int group, char (*bdfs)[IOMMU_BDF_MAX], unsigned max);
/* Drivers that leave a group viable for VFIO: vfio-pci, pci-stub, none, pcieport (bridges). */
bool iommu_driver_viable(const char *driver);
/*
 * Whether the devices of `bdf`'s group let VFIO take it: 0, or -EBUSY with `why` naming the
 * first device bound to a host driver (other than the ones in `ours`, which the caller will
 * bind to vfio-pci itself), -ENOENT for no such device or group.
 */
int iommu_group_check(const char *root, const char *bdf, const char *const *ours, unsigned n,
		      char *why, size_t why_len);

/* The host's interrupts of a device's VFIO handlers, from /proc/interrupts ("vfio-msi[0]
 * (0000:00:03.0)", "vfio-msix[..]", "vfio-intx(..)"): what the device raised. */
struct iommu_host_irqs {
	unsigned lines; /* handlers registered now */
	uint64_t count; /* interrupts taken, all CPUs */
	char chip[32];	/* the first line's interrupt chip ("IR-PCI-MSI" when remapped) */
	bool remapped;	/* its chip is an interrupt-remapping one (IR-*) */
};

int iommu_host_irqs(const char *root, const char *bdf, struct iommu_host_irqs *out);

/*
 * Managed devices: binds `bdf` to vfio-pci (driver_override, unbind from its driver,
 * drivers_probe) and waits for its VFIO node.  *prev receives the driver it had ("" = none)
 * for iommu_unbind_vfio, which gives the device back to that driver (or to whatever the
 * kernel picks when it had none).  Both leave the device as it was when they fail.
 */
int iommu_bind_vfio(const char *root, const char *bdf, char *prev, size_t prev_len, char *why,
		    size_t why_len);
int iommu_unbind_vfio(const char *root, const char *bdf, const char *prev, char *why,
		      size_t why_len);

#endif /* LOCKSTEP_IOMMU_H */
