/*
 * The PCI host bridge and bus 0: configuration space through ports 0xCF8/0xCFC (mechanism #1)
 * and ECAM (the MCFG's window), the BAR decode map that routes guest accesses to devices,
 * firmware-style set-up of each device (BARs assigned and decoding, interrupt line written,
 * as SeaBIOS leaves a QEMU PC machine), and INTx.
 *
 * Configuration space is emulated from each device's cfg[] with a write mask and a
 * write-1-to-clear mask, so sizing a BAR (write all-ones, read back) and every read-only
 * field come out of the masks; a passthrough device forwards what the platform does not own
 * through its ops.  A BAR decodes only while its command bit is on and it lies wholly inside
 * one of the platform's windows; anything else (BAR 0, a BAR in RAM, half outside a window)
 * is left undecoded, and accesses that hit no BAR read as all-ones and are counted.
 *
 * INTx is level-triggered on the IOAPIC pin QEMU's PC machine uses for the slot; the line is
 * a resample irqfd whose resample eventfd the device thread watches: after the guest's EOI
 * the line is asserted again if the device still wants service.
 *
 * Threads and locks: see vm/pci.h.  Configuration accesses come from vCPU threads (ports,
 * ECAM), BAR accesses too, raises from any thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/pci.h"
#include "vm/vm_internal.h"

#define HOST_BRIDGE_VENDOR 0x1b36 /* Red Hat: QEMU's generic PCIe host bridge */
#define HOST_BRIDGE_DEVICE 0x0008
#define CLASS_HOST_BRIDGE 0x060000
#define CONFIG_ADDRESS_ENABLE (1u << 31)

struct pci_map_entry {
	uint64_t base, size;
	struct vm_pci_dev *dev;
	unsigned bar;
	bool io;
};

struct vm_pci {
	struct vm *vm;
	pthread_mutex_t lock; /* configuration space, the device list, the cursors */
	uint32_t config_address;
	struct vm_pci_dev *slot[VM_PCI_SLOTS];
	unsigned count;
	pthread_rwlock_t map_lock;
	struct pci_map_entry map[VM_PCI_SLOTS * (VM_PCI_BARS + 1)];
	unsigned map_n;
	struct vm_pci_cursors next;	  /* the firmware's assignment cursors */
	atomic_uint_least64_t unassigned; /* window accesses that hit no BAR */
};

unsigned vm_pci_intx_irq(unsigned slot, unsigned pin)
{
	static const uint8_t pirq_irqs[4] = VM_PCI_PIRQ_IRQS;

	/* SeaBIOS's swizzle on QEMU's PC machine: PIRQ (slot - 1 + pin - 1) mod 4. */
	return pirq_irqs[(slot + pin - 2) & 3];
}

static uint64_t bar_address(const struct vm_pci_dev *dev, unsigned i)
{
	uint32_t lo;

	if (i == VM_PCI_ROM)
		return vm_pci_cfg_get(dev, PCI_CFG_ROM, 4) & ~0x7ffull;
	lo = vm_pci_cfg_get(dev, PCI_CFG_BAR0 + 4 * i, 4);

	if (dev->bar[i].flags & VM_PCI_BAR_IO)
		return lo & ~3u;
	if (dev->bar[i].flags & VM_PCI_BAR_MEM64)
		return (lo & ~0xfull) | (uint64_t)vm_pci_cfg_get(dev, PCI_CFG_BAR0 + 4 * (i + 1), 4)
						<< 32;
	return lo & ~0xfull;
}

/* Where BAR i decodes now: 0 when off, unassigned, or outside the windows. */
static uint64_t bar_decode(const struct vm_pci_dev *dev, unsigned i)
{
	uint16_t cmd = (uint16_t)vm_pci_cfg_get(dev, PCI_CFG_COMMAND, 2);
	uint64_t addr = bar_address(dev, i), size = dev->bar[i].size;

	if (!size || !addr)
		return 0;
	if (dev->bar[i].flags & VM_PCI_BAR_IO)
		return (cmd & PCI_CMD_IO) &&
				       vm_pci_within(addr, size, VM_PCI_IO_BASE, VM_PCI_IO_SIZE) ?
			       addr :
			       0;
	if (!(cmd & PCI_CMD_MEM))
		return 0;
	if (i == VM_PCI_ROM && !(vm_pci_cfg_get(dev, PCI_CFG_ROM, 4) & PCI_ROM_ENABLE))
		return 0;
	if (vm_pci_within(addr, size, VM_PCI_MMIO_BASE, VM_PCI_MMIO_SIZE) ||
	    vm_pci_within(addr, size, VM_PCI_MMIO64_BASE, VM_PCI_MMIO64_SIZE))
		return addr;
	return 0;
}

/* Rebuilds the decode map after a command or BAR write (pci->lock held). */
static void update_map(struct vm_pci *pci)
{
	struct pci_map_entry map[VM_PCI_SLOTS * (VM_PCI_BARS + 1)];
	struct {
		struct vm_pci_dev *dev;
		unsigned bar;
	} moved[VM_PCI_SLOTS * (VM_PCI_BARS + 1)];
	unsigned n = 0, nmoved = 0;

	for (unsigned s = 0; s < VM_PCI_SLOTS; s++) {
		struct vm_pci_dev *dev = pci->slot[s];

		for (unsigned i = 0; dev && i <= VM_PCI_ROM; i++) {
			uint64_t at = bar_decode(dev, i);

			if (at != dev->bar[i].decoded) {
				dev->bar[i].decoded = at;
				moved[nmoved].dev = dev;
				moved[nmoved++].bar = i;
			}
			if (at)
				map[n++] = (struct pci_map_entry){
					.base = at,
					.size = dev->bar[i].size,
					.dev = dev,
					.bar = i,
					.io = dev->bar[i].flags & VM_PCI_BAR_IO,
				};
		}
	}
	pthread_rwlock_wrlock(&pci->map_lock);
	memcpy(pci->map, map, n * sizeof(map[0]));
	pci->map_n = n;
	pthread_rwlock_unlock(&pci->map_lock);
	for (unsigned k = 0; k < nmoved; k++)
		if (moved[k].dev->ops && moved[k].dev->ops->bar_moved)
			moved[k].dev->ops->bar_moved(moved[k].dev, moved[k].bar,
						     moved[k].dev->bar[moved[k].bar].decoded);
}

/* ---- configuration space ---- */

static struct vm_pci_dev *lookup(const struct vm_pci *pci, uint32_t bdf)
{
	/* Bus 0, function 0 only. */
	if ((bdf >> 8) != 0 || (bdf & 7) != 0)
		return NULL;
	return pci->slot[(bdf >> 3) & 31];
}

/* What the platform emulates even for a passthrough device. */
bool vm_pci_config_owned(const struct vm_pci_dev *dev, uint32_t off)
{
	if (!dev->passthrough)
		return true;
	if (off < 0x40)
		return off < PCI_CFG_STATUS || off >= PCI_CFG_STATUS + 2; /* status: the device's */
	if (dev->msi_cap && off >= dev->msi_cap && off < dev->msi_cap + dev->msi_len)
		return true;
	return dev->msix_cap && off >= dev->msix_cap && off < dev->msix_cap + 12u;
}

/* The status register: the device's own (interrupt status, errors) for a passthrough device,
 * with the capability list as the platform shows it; else the emulated one. */
static uint16_t status_read(struct vm_pci_dev *dev)
{
	uint16_t cfg = (uint16_t)vm_pci_cfg_get(dev, PCI_CFG_STATUS, 2);
	uint32_t real;

	if (dev->passthrough && dev->ops && dev->ops->config_read &&
	    dev->ops->config_read(dev, PCI_CFG_STATUS, 2, &real))
		return (uint16_t)((real & ~PCI_STATUS_CAP_LIST) | (cfg & PCI_STATUS_CAP_LIST));
	return cfg | (vm_pci_intx_wanted(dev) ? PCI_STATUS_INTX : 0);
}

static uint32_t dev_read(struct vm_pci_dev *dev, uint32_t off, uint32_t size)
{
	uint32_t v;

	if (dev->ops && dev->ops->config_read && !vm_pci_config_owned(dev, off) &&
	    off != PCI_CFG_STATUS && dev->ops->config_read(dev, off, size, &v))
		return v;
	v = vm_pci_cfg_get(dev, off, size);
	if (off <= PCI_CFG_STATUS && off + size > PCI_CFG_STATUS) {
		unsigned shift = (PCI_CFG_STATUS - off) * 8;
		uint32_t mask = (size - (PCI_CFG_STATUS - off) >= 2 ? 0xffffu : 0xffu) << shift;

		v = (v & ~mask) | (((uint32_t)status_read(dev) << shift) & mask);
	}
	return v;
}

static bool overlaps(uint32_t off, uint32_t size, uint32_t start, uint32_t len)
{
	return off < start + len && start < off + size;
}

static void dev_write(struct vm_pci *pci, struct vm_pci_dev *dev, uint32_t off, uint32_t size,
		      uint32_t val)
{
	bool cmd = overlaps(off, size, PCI_CFG_COMMAND, 2);
	bool caps = (dev->msi_cap && overlaps(off, size, dev->msi_cap, dev->msi_len)) ||
		    (dev->msix_cap && overlaps(off, size, dev->msix_cap, 12));

	for (uint32_t i = 0; i < size; i++) {
		uint8_t b = (uint8_t)(val >> (8 * i)), *c = &dev->cfg[off + i];

		*c = (uint8_t)((*c & ~dev->wmask[off + i]) | (b & dev->wmask[off + i]));
		*c &= (uint8_t) ~(b & dev->w1c[off + i]);
	}
	if (cmd || overlaps(off, size, PCI_CFG_BAR0, 24) || overlaps(off, size, PCI_CFG_ROM, 4))
		update_map(pci);
	if (cmd || caps) {
		pthread_mutex_lock(&dev->lock);
		if (caps)
			vm_pci_msi_config_written(dev, off, size);
		/* INTx may signal again (INTX_DISABLE cleared, MSI turned off). */
		vm_pci_intx_update_locked(dev);
		pthread_mutex_unlock(&dev->lock);
	}
	if (dev->ops && dev->ops->config_write)
		dev->ops->config_write(dev, off, size, val);
}

static bool access_ok(uint32_t off, uint32_t size)
{
	return (size == 1 || size == 2 || size == 4) && (off & (size - 1)) == 0 &&
	       off + size <= PCI_CFG_SIZE;
}

uint32_t vm_pci_config_read(struct vm_pci *pci, uint32_t bdf, uint32_t off, uint32_t size)
{
	struct vm_pci_dev *dev;
	uint32_t v = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;

	if (!access_ok(off, size))
		return v;
	pthread_mutex_lock(&pci->lock);
	dev = lookup(pci, bdf);
	if (dev)
		v = dev_read(dev, off, size);
	pthread_mutex_unlock(&pci->lock);
	return v;
}

void vm_pci_config_write(struct vm_pci *pci, uint32_t bdf, uint32_t off, uint32_t size,
			 uint32_t val)
{
	struct vm_pci_dev *dev;

	if (!access_ok(off, size))
		return;
	pthread_mutex_lock(&pci->lock);
	dev = lookup(pci, bdf);
	if (dev)
		dev_write(pci, dev, off, size, val);
	pthread_mutex_unlock(&pci->lock);
}

/* ---- the guest's ways in ---- */

static uint64_t io_get(const struct vm_io *io, uint32_t i)
{
	uint64_t v = 0;

	memcpy(&v, io->data + (size_t)i * io->size, io->size > 8 ? 8 : io->size);
	return v;
}

static void io_put(struct vm_io *io, uint32_t i, uint64_t v)
{
	memcpy(io->data + (size_t)i * io->size, &v, io->size > 8 ? 8 : io->size);
}

/* 0xCF8: CONFIG_ADDRESS, a 32-bit register (other sizes go elsewhere on a PC: ignored). */
static void config_address_io(void *opaque, struct vm_io *io)
{
	struct vm_pci *pci = opaque;

	for (uint32_t i = 0; i < io->count; i++) {
		if (io->size != 4) {
			if (!io->write)
				io_put(io, i, ~0ull);
			continue;
		}
		pthread_mutex_lock(&pci->lock);
		if (io->write)
			pci->config_address = (uint32_t)io_get(io, i);
		else
			io_put(io, i, pci->config_address);
		pthread_mutex_unlock(&pci->lock);
	}
}

/* 0xCFC-0xCFF: the register CONFIG_ADDRESS names, at the byte offset of the port. */
static void config_data_io(void *opaque, struct vm_io *io)
{
	struct vm_pci *pci = opaque;

	for (uint32_t i = 0; i < io->count; i++) {
		uint32_t addr, off, bdf;

		pthread_mutex_lock(&pci->lock);
		addr = pci->config_address;
		pthread_mutex_unlock(&pci->lock);
		bdf = (addr >> 8) & 0xffff;
		off = (addr & 0xfc) + (uint32_t)io->offset;
		if (!(addr & CONFIG_ADDRESS_ENABLE) || io->size > 4 ||
		    (off & 0xff) + io->size > 256) {
			if (!io->write)
				io_put(io, i, ~0ull);
			continue;
		}
		if (io->write)
			vm_pci_config_write(pci, bdf, off, io->size, (uint32_t)io_get(io, i));
		else
			io_put(io, i, vm_pci_config_read(pci, bdf, off, io->size));
	}
}

static void ecam_io(void *opaque, struct vm_io *io)
{
	struct vm_pci *pci = opaque;
	uint32_t bdf = (uint32_t)(io->offset >> 12), off = (uint32_t)(io->offset & 0xfff);

	/* An 8-byte access is two 4-byte ones (guests do not, but it costs nothing). */
	if (io->size == 8 && (off & 7) == 0) {
		if (io->write) {
			uint64_t v = io_get(io, 0);

			vm_pci_config_write(pci, bdf, off, 4, (uint32_t)v);
			vm_pci_config_write(pci, bdf, off + 4, 4, (uint32_t)(v >> 32));
		} else {
			io_put(io, 0,
			       vm_pci_config_read(pci, bdf, off, 4) |
				       (uint64_t)vm_pci_config_read(pci, bdf, off + 4, 4) << 32);
		}
		return;
	}
	if (io->write)
		vm_pci_config_write(pci, bdf, off, io->size, (uint32_t)io_get(io, 0));
	else
		io_put(io, 0, vm_pci_config_read(pci, bdf, off, io->size));
}

static void bar_dispatch(struct vm_pci *pci, uint64_t addr, bool is_io, struct vm_io *io)
{
	pthread_rwlock_rdlock(&pci->map_lock);
	for (unsigned k = 0; k < pci->map_n; k++) {
		const struct pci_map_entry *e = &pci->map[k];

		if (e->io != is_io || addr < e->base || addr - e->base >= e->size)
			continue;
		io->offset = addr - e->base;
		if (vm_pci_msix_hit(e->dev, e->bar, io->offset))
			vm_pci_msix_access(e->dev, e->bar, io->offset, io);
		else if (e->dev->ops && e->dev->ops->bar_io)
			e->dev->ops->bar_io(e->dev, e->bar, io);
		else if (!io->write)
			memset(io->data, 0xff, (size_t)io->size * io->count);
		pthread_rwlock_unlock(&pci->map_lock);
		return;
	}
	pthread_rwlock_unlock(&pci->map_lock);
	atomic_fetch_add(&pci->unassigned, 1);
	if (!io->write)
		memset(io->data, 0xff, (size_t)io->size * io->count);
}

static void mmio32_io(void *opaque, struct vm_io *io)
{
	bar_dispatch(opaque, VM_PCI_MMIO_BASE + io->offset, false, io);
}

static void mmio64_io(void *opaque, struct vm_io *io)
{
	bar_dispatch(opaque, VM_PCI_MMIO64_BASE + io->offset, false, io);
}

static void io_window_io(void *opaque, struct vm_io *io)
{
	bar_dispatch(opaque, VM_PCI_IO_BASE + io->offset, true, io);
}

/* ---- devices ---- */

static const struct vm_pci_dev_desc host_bridge = {
	.name = "host-bridge",
	.slot = 0,
	.vendor = HOST_BRIDGE_VENDOR,
	.device = HOST_BRIDGE_DEVICE,
	.subsys_vendor = HOST_BRIDGE_VENDOR,
	.class_code = CLASS_HOST_BRIDGE,
};

int vm_pci_new(struct vm *vm, struct vm_pci **out)
{
	struct vm_pci *pci = calloc(1, sizeof(*pci));
	struct vm_pci_dev *bridge;
	int ret;

	if (!pci)
		return -ENOMEM;
	pci->vm = vm;
	pthread_mutex_init(&pci->lock, NULL);
	pthread_rwlock_init(&pci->map_lock, NULL);
	pci->next = (struct vm_pci_cursors){
		.mmio = VM_PCI_MMIO_BASE,
		.mmio64 = VM_PCI_MMIO64_BASE,
		.io = VM_PCI_IO_BASE,
	};
	ret = vm_pci_add(pci, &host_bridge, &bridge);
	if (ret) {
		vm_pci_free(pci);
		return ret;
	}
	*out = pci;
	return 0;
}

static void dev_free(struct vm_pci_dev *dev)
{
	if (dev->ops && dev->ops->free)
		dev->ops->free(dev);
	pthread_mutex_lock(&dev->lock);
	vm_pci_msi_teardown(dev);
	pthread_mutex_unlock(&dev->lock);
	vm_pci_intx_remove(dev);
	free(dev->msix);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

void vm_pci_free(struct vm_pci *pci)
{
	if (!pci)
		return;
	for (unsigned s = 0; s < VM_PCI_SLOTS; s++)
		if (pci->slot[s])
			dev_free(pci->slot[s]);
	pthread_rwlock_destroy(&pci->map_lock);
	pthread_mutex_destroy(&pci->lock);
	free(pci);
}

int vm_pci_register(struct vm_pci *pci)
{
	struct vm *vm = pci->vm;
	int ret;

	ret = vm_bus_add(&vm->pio, VM_PCI_CONFIG_ADDRESS, 1, config_address_io, pci,
			 "pci-config-address");
	if (!ret)
		ret = vm_bus_add(&vm->pio, VM_PCI_CONFIG_DATA, 4, config_data_io, pci,
				 "pci-config-data");
	if (!ret)
		ret = vm_bus_add(&vm->pio, VM_PCI_IO_BASE, VM_PCI_IO_SIZE, io_window_io, pci,
				 "pci-io");
	if (!ret)
		ret = vm_bus_add(&vm->mmio, VM_PCI_ECAM_BASE, VM_PCI_ECAM_SIZE, ecam_io, pci,
				 "pci-ecam");
	if (!ret)
		ret = vm_bus_add(&vm->mmio, VM_PCI_MMIO_BASE, VM_PCI_MMIO_SIZE, mmio32_io, pci,
				 "pci-mmio");
	if (!ret)
		ret = vm_bus_add(&vm->mmio, VM_PCI_MMIO64_BASE, VM_PCI_MMIO64_SIZE, mmio64_io, pci,
				 "pci-mmio64");
	return ret;
}

int vm_pci_add(struct vm_pci *pci, const struct vm_pci_dev_desc *desc, struct vm_pci_dev **out)
{
	struct vm_pci_dev *dev;
	uint8_t next = 0;
	int slot = desc->slot, ret;

	if (slot >= VM_PCI_SLOTS || desc->intx_pin > 4)
		return -EINVAL;
	pthread_mutex_lock(&pci->lock);
	if (slot < 0)
		for (slot = VM_PCI_FIRST_SLOT; slot < VM_PCI_SLOTS && pci->slot[slot]; slot++)
			;
	if (slot >= VM_PCI_SLOTS || pci->slot[slot]) {
		pthread_mutex_unlock(&pci->lock);
		return slot >= VM_PCI_SLOTS ? -ENOSPC : -EEXIST;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		pthread_mutex_unlock(&pci->lock);
		return -ENOMEM;
	}
	dev->vm = pci->vm;
	dev->pci = pci;
	dev->ops = desc->ops;
	dev->opaque = desc->opaque;
	dev->slot = (unsigned)slot;
	util_strlcpy(dev->name, desc->name ? desc->name : "pci", sizeof(dev->name));
	dev->intx_external = desc->config != NULL;
	pthread_mutex_init(&dev->lock, NULL);
	ret = vm_pci_header_init(dev, desc);
	if (!ret)
		ret = vm_pci_msi_setup(dev, desc, &next);
	if (!ret && next) {
		vm_pci_cfg_set(dev, PCI_CFG_CAP_PTR, 1, next);
		vm_pci_cfg_set(dev, PCI_CFG_STATUS, 2, PCI_STATUS_CAP_LIST);
	} else if (!ret && desc->config) {
		/* The device's own list: only whether there is one is kept of its status. */
		vm_pci_cfg_set(dev, PCI_CFG_STATUS, 2,
			       (desc->config[PCI_CFG_STATUS] & PCI_STATUS_CAP_LIST) ?
				       PCI_STATUS_CAP_LIST :
				       0);
	}
	if (!ret && desc->intx_pin)
		ret = vm_pci_intx_add(dev, desc->intx_pin);
	if (ret) {
		pthread_mutex_unlock(&pci->lock);
		dev->ops = NULL; /* the caller still owns what the ops would free */
		dev_free(dev);
		return ret;
	}
	vm_pci_header_assign(dev, &pci->next);
	pci->slot[slot] = dev;
	pci->count++;
	update_map(pci);
	pthread_mutex_unlock(&pci->lock);
	*out = dev;
	return 0;
}

unsigned vm_pci_count(const struct vm_pci *pci)
{
	return pci->count;
}

struct vm_pci_dev *vm_pci_dev_at(const struct vm_pci *pci, unsigned index)
{
	for (unsigned s = 0; s < VM_PCI_SLOTS; s++)
		if (pci->slot[s] && index-- == 0)
			return pci->slot[s];
	return NULL;
}

uint64_t vm_pci_unassigned(const struct vm_pci *pci)
{
	return atomic_load(&((struct vm_pci *)pci)->unassigned);
}
