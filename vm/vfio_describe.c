/*
 * A passthrough device as the PCI platform presents it, decided from the device's own
 * configuration space and what VFIO says of its regions and interrupts (vm/vfio.c gathers
 * both): which BARs it has and of what kind, its INTx pin, where its MSI and MSI-X
 * capabilities are and how they are laid out.  The configuration space comes from the device,
 * which is not trusted: a capability list that loops or leaves the legacy space, an MSI-X
 * table in a BAR the device does not have, a BAR of a size the platform cannot place — each
 * ends here, as a refusal or a capability the guest does not get, never as a wild access.
 *
 * Pure: no VFIO, no KVM; tests/fuzz/passthrough.c feeds it device configuration spaces.
 */
#include <errno.h>
#include <string.h>

#include "util/util.h"
#include "vm/pci.h"

/* The capability with `id` in the legacy list, 0 if none; a list that loops ends. */
static unsigned find_cap(const uint8_t *cfg, uint8_t id)
{
	unsigned off, guard = 48;
	uint16_t status;

	memcpy(&status, cfg + PCI_CFG_STATUS, 2);
	if (!(status & PCI_STATUS_CAP_LIST))
		return 0;
	for (off = cfg[PCI_CFG_CAP_PTR] & 0xfc; off >= 0x40 && off < 0x100 && guard--;
	     off = cfg[off + 1] & 0xfc)
		if (cfg[off] == id)
			return off;
	return 0;
}

static int bars(const uint8_t *cfg, const struct vm_vfio_facts *f, struct vm_pci_dev_desc *d,
		char *why, size_t why_len)
{
	for (unsigned i = 0; i < VM_PCI_BARS; i++) {
		uint64_t size = f->bar_size[i];
		uint32_t reg;

		if (!size)
			continue;
		memcpy(&reg, cfg + PCI_CFG_BAR0 + 4 * i, 4);
		if ((reg & 1) && (size < 4 || size > 256 || (size & (size - 1))))
			return util_error(why, why_len, -EINVAL,
					  "I/O BAR %u has %llu ports, which lockstep cannot place "
					  "(4 to 256, a power of two)",
					  i, (unsigned long long)size);
		if (!(reg & 1) &&
		    (size < 16 || (size & (size - 1)) || ((reg & 6) != 4 && size > (1ull << 31)) ||
		     ((reg & 6) == 4 && i == VM_PCI_BARS - 1)))
			return util_error(
				why, why_len, -EINVAL,
				"memory BAR %u (%llu bytes) is not one lockstep can place", i,
				(unsigned long long)size);
		d->bar[i].size = size;
		d->bar[i].flags = reg & 1 ? VM_PCI_BAR_IO :
					    ((reg & 6) == 4 ? VM_PCI_BAR_MEM64 : 0) |
						    (reg & 8 ? VM_PCI_BAR_PREFETCH : 0);
		if (!(reg & 1) && (reg & 6) == 4)
			i++; /* the upper half of a 64-bit BAR: no BAR of its own */
	}
	return 0;
}

int vm_vfio_describe(const uint8_t *cfg, const struct vm_vfio_facts *f, struct vm_pci_dev_desc *d,
		     char *why, size_t why_len)
{
	unsigned msi = find_cap(cfg, PCI_CAP_ID_MSI), msix = find_cap(cfg, PCI_CAP_ID_MSIX);
	int ret = bars(cfg, f, d, why, why_len);

	if (ret)
		return ret;
	if (f->nr_intx && cfg[PCI_CFG_INTX_PIN] >= 1 && cfg[PCI_CFG_INTX_PIN] <= 4)
		d->intx_pin = cfg[PCI_CFG_INTX_PIN];
	/* MSI: as many messages as the device asks for and VFIO gives, a power of two. */
	if (msi && f->nr_msi) {
		uint16_t ctrl;

		memcpy(&ctrl, cfg + msi + 2, 2);
		d->msi_cap = (uint8_t)msi;
		d->msi_64bit = ctrl & PCI_MSI_FLAGS_64BIT;
		d->msi_maskable = ctrl & PCI_MSI_FLAGS_MASKBIT;
		d->msi_vectors = 1u << ((ctrl >> 1) & 7);
		if (d->msi_vectors > VM_PCI_MSI_MAX)
			d->msi_vectors = VM_PCI_MSI_MAX;
		if (d->msi_vectors > f->nr_msi)
			d->msi_vectors = f->nr_msi;
		while (d->msi_vectors & (d->msi_vectors - 1))
			d->msi_vectors &= d->msi_vectors - 1;
	}
	/* MSI-X: the guest sees at most VM_PCI_MSIX_MAX vectors, the first ones. */
	if (msix && f->nr_msix) {
		uint32_t table, pba;
		uint16_t ctrl;

		memcpy(&ctrl, cfg + msix + 2, 2);
		memcpy(&table, cfg + msix + 4, 4);
		memcpy(&pba, cfg + msix + 8, 4);
		d->msix_cap = (uint8_t)msix;
		d->msix_vectors = (ctrl & 0x7ffu) + 1;
		if (d->msix_vectors > f->nr_msix)
			d->msix_vectors = f->nr_msix;
		if (d->msix_vectors > VM_PCI_MSIX_MAX)
			d->msix_vectors = VM_PCI_MSIX_MAX;
		d->msix_table_bar = table & 7;
		d->msix_table_offset = table & ~7u;
		d->msix_pba_bar = pba & 7;
		d->msix_pba_offset = pba & ~7u;
		if (d->msix_table_bar >= VM_PCI_BARS || d->msix_pba_bar >= VM_PCI_BARS ||
		    !d->bar[d->msix_table_bar].size || !d->bar[d->msix_pba_bar].size ||
		    (d->bar[d->msix_table_bar].flags | d->bar[d->msix_pba_bar].flags) &
			    VM_PCI_BAR_IO)
			return util_error(why, why_len, -EINVAL,
					  "its MSI-X table or PBA is in a BAR it does not have");
	}
	return 0;
}
