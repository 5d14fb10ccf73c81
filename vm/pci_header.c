/*
 * A PCI device's header as it joins the bus: the fixed fields and write masks from its
 * description (a passthrough device's own configuration space first, less what the platform
 * decides: decoding, BARs, ROM, interrupt line), then an address for each BAR and the ROM as
 * SeaBIOS would give them on QEMU's PC machine, in the platform's windows.
 *
 * Called by vm_pci_add (vm/pci.c) with pci->lock held, before the device is on the bus.
 */
#include <errno.h>
#include <string.h>

#include "vm/pci.h"

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

void vm_pci_header_assign(struct vm_pci_dev *dev, struct vm_pci_cursors *next)
{
	uint16_t cmd = 0;

	for (unsigned i = 0; i < VM_PCI_BARS; i++) {
		struct vm_pci_bar *b = &dev->bar[i];
		uint64_t at;

		if (!b->size)
			continue;
		if (b->flags & VM_PCI_BAR_IO) {
			at = align_up(next->io, b->size);
			if (!vm_pci_within(at, b->size, VM_PCI_IO_BASE, VM_PCI_IO_SIZE))
				continue;
			next->io = at + b->size;
			cmd |= PCI_CMD_IO;
		} else {
			at = align_up(next->mmio, b->size);
			if (vm_pci_within(at, b->size, VM_PCI_MMIO_BASE, VM_PCI_MMIO_SIZE)) {
				next->mmio = at + b->size;
			} else if (b->flags & VM_PCI_BAR_MEM64) {
				at = align_up(next->mmio64, b->size);
				if (!vm_pci_within(at, b->size, VM_PCI_MMIO64_BASE,
						   VM_PCI_MMIO64_SIZE))
					continue;
				next->mmio64 = at + b->size;
			} else {
				continue;
			}
			cmd |= PCI_CMD_MEM;
		}
		vm_pci_cfg_set(dev, PCI_CFG_BAR0 + 4 * i, 4,
			       (uint32_t)at | (vm_pci_cfg_get(dev, PCI_CFG_BAR0 + 4 * i, 4) & 0xf));
		if (b->flags & VM_PCI_BAR_MEM64)
			vm_pci_cfg_set(dev, PCI_CFG_BAR0 + 4 * (i + 1), 4, (uint32_t)(at >> 32));
	}
	/* The ROM gets an address but stays off, as firmware leaves it once it has run it. */
	if (dev->bar[VM_PCI_ROM].size) {
		uint64_t size = dev->bar[VM_PCI_ROM].size, at = align_up(next->mmio, size);

		if (vm_pci_within(at, size, VM_PCI_MMIO_BASE, VM_PCI_MMIO_SIZE)) {
			next->mmio = at + size;
			vm_pci_cfg_set(dev, PCI_CFG_ROM, 4, (uint32_t)at);
		}
	}
	vm_pci_cfg_set(dev, PCI_CFG_COMMAND, 2, cmd);
}

static void set_mask(struct vm_pci_dev *dev, uint32_t off, uint32_t size, uint32_t mask)
{
	memcpy(dev->wmask + off, &mask, size);
}

int vm_pci_header_init(struct vm_pci_dev *dev, const struct vm_pci_dev_desc *d)
{
	if (d->config) {
		if (d->config_len < PCI_CFG_LEGACY_SIZE)
			return -EINVAL;
		memcpy(dev->cfg, d->config,
		       d->config_len < PCI_CFG_SIZE ? d->config_len : PCI_CFG_SIZE);
		/* What the platform decides: decoding, BARs, the ROM, the line; one function. */
		memset(dev->cfg + PCI_CFG_COMMAND, 0, 2);
		memset(dev->cfg + PCI_CFG_BAR0, 0, 24);
		memset(dev->cfg + PCI_CFG_ROM, 0, 4);
		dev->cfg[PCI_CFG_HEADER_TYPE] = 0;
		dev->cfg[PCI_CFG_INTX_LINE] = 0;
		dev->cfg[PCI_CFG_INTX_PIN] = 0;
		dev->passthrough = true;
	}
	vm_pci_cfg_set(dev, PCI_CFG_VENDOR, 2, d->vendor);
	vm_pci_cfg_set(dev, PCI_CFG_DEVICE, 2, d->device);
	vm_pci_cfg_set(dev, PCI_CFG_REVISION, 1, d->revision);
	vm_pci_cfg_set(dev, PCI_CFG_CLASS_PROG, 1, d->class_code & 0xff);
	vm_pci_cfg_set(dev, PCI_CFG_CLASS_PROG + 1, 2, (uint16_t)(d->class_code >> 8));
	vm_pci_cfg_set(dev, PCI_CFG_SUBSYS_VENDOR, 2, d->subsys_vendor);
	vm_pci_cfg_set(dev, PCI_CFG_SUBSYS_VENDOR + 2, 2, d->subsys);
	set_mask(dev, PCI_CFG_COMMAND, 2,
		 PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE);
	set_mask(dev, 0x0c, 2, 0xffff); /* cache line size, latency timer */
	set_mask(dev, PCI_CFG_INTX_LINE, 1, 0xff);
	for (unsigned i = 0; i < VM_PCI_BARS; i++) {
		uint64_t size = d->bar[i].size;
		uint32_t flags = d->bar[i].flags;

		if (!size)
			continue;
		if ((size & (size - 1)) || (flags & VM_PCI_BAR_IO && (size < 4 || size > 256)) ||
		    (!(flags & VM_PCI_BAR_IO) && size < 16) ||
		    (flags & VM_PCI_BAR_MEM64 && (i == VM_PCI_BARS - 1 || d->bar[i + 1].size)) ||
		    (!(flags & VM_PCI_BAR_MEM64) && size > (1ull << 31)))
			return -EINVAL;
		dev->bar[i] = (struct vm_pci_bar){ .size = size, .flags = flags };
		if (flags & VM_PCI_BAR_IO) {
			vm_pci_cfg_set(dev, PCI_CFG_BAR0 + 4 * i, 4, 1);
			set_mask(dev, PCI_CFG_BAR0 + 4 * i, 4, (uint32_t) ~(size - 1) & 0xfffc);
			continue;
		}
		vm_pci_cfg_set(dev, PCI_CFG_BAR0 + 4 * i, 4,
			       (flags & VM_PCI_BAR_MEM64 ? 4u : 0u) |
				       (flags & VM_PCI_BAR_PREFETCH ? 8u : 0u));
		set_mask(dev, PCI_CFG_BAR0 + 4 * i, 4, (uint32_t) ~(size - 1) & ~0xfu);
		if (flags & VM_PCI_BAR_MEM64)
			set_mask(dev, PCI_CFG_BAR0 + 4 * (i + 1), 4, (uint32_t)(~(size - 1) >> 32));
	}
	if (d->rom_size) {
		if ((d->rom_size & (d->rom_size - 1)) || d->rom_size < 2048 ||
		    d->rom_size > (16u << 20))
			return -EINVAL;
		dev->bar[VM_PCI_ROM] = (struct vm_pci_bar){ .size = d->rom_size };
		set_mask(dev, PCI_CFG_ROM, 4, (uint32_t) ~(d->rom_size - 1) | PCI_ROM_ENABLE);
	}
	return 0;
}
