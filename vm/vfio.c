/*
 * A passthrough PCI device (a "vfio-pci" entry of the definition) on lockstep's PCI platform:
 * the glue between iommu/'s VFIO device and vm/pci.c.
 *
 * Configuration space: the device's own, read through VFIO, seeds the platform's copy; the
 * platform keeps the header's BARs, ROM, command decode bits and interrupt line, and the MSI
 * and MSI-X capabilities (where the device has them); every other byte is the device's,
 * forwarded both ways.  The real command register keeps memory and I/O decoding on (VFIO
 * tears its BAR mappings down otherwise) and follows the guest's bus-master, INTx-disable,
 * parity and SERR bits; the status register is the device's.
 *
 * BARs: the parts VFIO lets us mmap (less the pages of the MSI-X table and PBA, which the
 * platform emulates) become KVM memory slots wherever the guest puts the BAR, so the guest
 * reaches the device without exits; the rest traps and is forwarded with pread/pwrite.  A slot
 * KVM refuses (the guest overlapped two BARs) leaves that part trapped: slower, still right.
 * An expansion ROM is the device's own (read through VFIO) or the definition's file.
 *
 * Interrupts: every live MSI/MSI-X vector's VFIO eventfd IS its irq/ line's irqfd eventfd, so
 * the device's interrupt goes from the host's handler to KVM (which may post it) and never
 * through this process.  A masked vector's eventfd is instead one the device thread reads,
 * handing the interrupt to the platform, which sets its pending bit and delivers it at unmask.
 * INTx is VFIO's masked-level INTx: its trigger is the pin's level line, its unmask the line's
 * resample eventfd, so the guest's EOI re-enables the device's interrupt in the kernel.
 *
 * Threads: configuration and BAR accesses come from vCPU threads (the platform serialises
 * configuration), irqs_changed runs with the PCI device's lock held, trapped interrupts on the
 * device thread, set-up and teardown on the control thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iommu/iommu.h"
#include "vm/pci.h"
#include "vm/vm_internal.h"

#define PAGE 4096ull
#define ROM_MAX (16u << 20)
#define PIECES_MAX (IOMMU_REGION_AREAS_MAX + 4)
/* Command bits the guest drives on the real device; decoding stays on. */
#define CMD_GUEST_BITS (PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE | PCI_CMD_PARITY | PCI_CMD_SERR)

struct vfio_piece {
	uint64_t off, size; /* within the BAR */
	void *hva;
	uint32_t slot;
	uint64_t gpa; /* where KVM maps it now, 0 = nowhere */
};

struct vfio_bar {
	struct iommu_region region;
	unsigned nr_pieces;
	struct vfio_piece piece[PIECES_MAX];
	uint64_t at; /* where the guest decodes it, 0 = nowhere */
	atomic_uint_least64_t trapped;
	uint64_t slot_errors;
};

struct vm_vfio {
	struct vm *vm;
	struct iommu_dev *dev;
	struct vm_pci_dev *pci;
	const struct vmdef_device *def;
	int rom_fd; /* the definition's ROM file (vm/passthrough.c's), while it is set up */
	char name[24];
	struct iommu_region config;
	uint8_t seed[PCI_CFG_SIZE];
	uint16_t cmd_keep; /* decode bits kept on in the real command register */
	struct vfio_bar bar[VM_PCI_BARS];
	/* the expansion ROM: a file's image, or the device's ROM region */
	uint64_t rom_size;
	uint8_t *rom_image;
	size_t rom_len;
	struct iommu_region rom;
	/* interrupts */
	uint32_t nr_intx, nr_msi, nr_msix;
	unsigned nr_traps;
	int trap_fd[VM_PCI_MSIX_MAX];
	bool wired;
	enum vm_pci_irq_mode wired_mode;
	unsigned wired_vectors;
	int wired_fd[VM_PCI_MSIX_MAX];
	unsigned straight; /* vectors wired to their irqfd now */
	uint64_t rewires, irq_errors;
	atomic_uint_least64_t trapped_irqs;
	/* reset */
	bool reset_done;
	char reset_note[96];
};

static bool overlaps(uint32_t off, uint32_t size, uint32_t start, uint32_t len)
{
	return off < start + len && start < off + size;
}

static void note_limited(struct vm_vfio *v, const char *fmt, const char *what, int err)
{
	util_log_limited(&v->vm->log, &v->vm->guest_log_limit, UTIL_LOG_WARN, fmt, v->name, what,
			 strerror(-err));
}

/* ---- configuration space ---- */

static bool vfio_config_read(struct vm_pci_dev *pdev, uint32_t off, uint32_t size, uint32_t *val)
{
	struct vm_vfio *v = pdev->opaque;

	*val = 0;
	if (off + size > v->config.size)
		return false;
	return iommu_dev_read(v->dev, &v->config, off, val, size) == 0;
}

static void write_command(struct vm_vfio *v)
{
	uint16_t guest, real;

	memcpy(&guest, v->pci->cfg + PCI_CFG_COMMAND, 2);
	real = (guest & CMD_GUEST_BITS) | v->cmd_keep;
	iommu_dev_write(v->dev, &v->config, PCI_CFG_COMMAND, &real, 2);
}

static void vfio_config_write(struct vm_pci_dev *pdev, uint32_t off, uint32_t size, uint32_t val)
{
	struct vm_vfio *v = pdev->opaque;

	if (overlaps(off, size, PCI_CFG_COMMAND, 2))
		write_command(v);
	if (overlaps(off, size, PCI_CFG_STATUS, 2)) {
		/* Status bits are write-1-to-clear: forward the bytes that fall on it. */
		for (uint32_t i = 0; i < size; i++)
			if (off + i == PCI_CFG_STATUS || off + i == PCI_CFG_STATUS + 1)
				iommu_dev_write(v->dev, &v->config, off + i,
						&(uint8_t){ (uint8_t)(val >> (8 * i)) }, 1);
		return;
	}
	if (!vm_pci_config_owned(pdev, off) && off + size <= v->config.size)
		iommu_dev_write(v->dev, &v->config, off, &val, size);
}

/* ---- BARs ---- */

static void unmap_pieces(struct vm_vfio *v, struct vfio_bar *b)
{
	for (unsigned i = 0; i < b->nr_pieces; i++) {
		struct vfio_piece *p = &b->piece[i];

		if (!p->gpa)
			continue;
		hv_vm_set_memory(v->vm->hv, p->slot, p->gpa, 0, p->hva, false);
		p->gpa = 0;
	}
}

static void vfio_bar_moved(struct vm_pci_dev *pdev, unsigned bar, uint64_t addr)
{
	struct vm_vfio *v = pdev->opaque;
	struct vfio_bar *b;

	if (bar >= VM_PCI_BARS)
		return; /* the ROM is read through bar_io */
	b = &v->bar[bar];
	unmap_pieces(v, b);
	b->at = addr;
	for (unsigned i = 0; addr && i < b->nr_pieces; i++) {
		struct vfio_piece *p = &b->piece[i];
		int ret =
			hv_vm_set_memory(v->vm->hv, p->slot, addr + p->off, p->size, p->hva, false);

		if (!ret) {
			p->gpa = addr + p->off;
			continue;
		}
		b->slot_errors++;
		note_limited(v,
			     "%s: %s cannot be mapped where the guest put it (%s); its "
			     "accesses are trapped",
			     bar == 0 ? "BAR 0" : "a BAR", ret);
	}
}

static void rom_read(struct vm_vfio *v, struct vm_io *io)
{
	memset(io->data, 0xff, (size_t)io->size * io->count);
	if (io->write || io->offset >= v->rom_size)
		return;
	for (uint32_t i = 0; i < io->count; i++) {
		uint8_t *d = io->data + (size_t)i * io->size;

		if (v->rom_image) {
			for (uint32_t k = 0; k < io->size; k++)
				if (io->offset + k < v->rom_len)
					d[k] = v->rom_image[io->offset + k];
		} else if (io->offset + io->size <= v->rom.size) {
			iommu_dev_read(v->dev, &v->rom, io->offset, d, io->size);
		}
	}
}

static void vfio_bar_io(struct vm_pci_dev *pdev, unsigned bar, struct vm_io *io)
{
	struct vm_vfio *v = pdev->opaque;
	struct vfio_bar *b;

	if (bar == VM_PCI_ROM) {
		rom_read(v, io);
		return;
	}
	b = &v->bar[bar];
	atomic_fetch_add(&b->trapped, 1);
	for (uint32_t i = 0; i < io->count; i++) {
		uint8_t *d = io->data + (size_t)i * io->size;

		if (io->write)
			iommu_dev_write(v->dev, &b->region, io->offset, d, io->size);
		else if (iommu_dev_read(v->dev, &b->region, io->offset, d, io->size))
			memset(d, 0xff, io->size);
	}
}

/* Cuts [start, end) out of the BAR's pieces (the MSI-X table's or PBA's pages). */
static void cut_pieces(struct vfio_bar *b, uint64_t start, uint64_t end)
{
	start &= ~(PAGE - 1);
	end = (end + PAGE - 1) & ~(PAGE - 1);
	for (unsigned i = 0; i < b->nr_pieces; i++) {
		struct vfio_piece p = b->piece[i];
		uint64_t p_end = p.off + p.size;

		if (end <= p.off || start >= p_end)
			continue;
		b->piece[i] = b->piece[--b->nr_pieces]; /* out, then its two sides back */
		if (start > p.off && b->nr_pieces < PIECES_MAX)
			b->piece[b->nr_pieces++] =
				(struct vfio_piece){ .off = p.off, .size = start - p.off };
		if (end < p_end && b->nr_pieces < PIECES_MAX)
			b->piece[b->nr_pieces++] =
				(struct vfio_piece){ .off = end, .size = p_end - end };
		i = (unsigned)-1; /* the list changed: from the start */
	}
}

/* The parts of a memory BAR VFIO lets us mmap, in whole pages. */
static void list_pieces(struct vfio_bar *b)
{
	for (unsigned i = 0; i < b->region.nr_areas && b->nr_pieces < PIECES_MAX; i++)
		if (!(b->region.area[i].offset & (PAGE - 1)) &&
		    !(b->region.area[i].size & (PAGE - 1)))
			b->piece[b->nr_pieces++] =
				(struct vfio_piece){ .off = b->region.area[i].offset,
						     .size = b->region.area[i].size };
}

static void map_pieces(struct vm_vfio *v, unsigned bar)
{
	struct vfio_bar *b = &v->bar[bar];
	int ret;

	for (unsigned i = 0; i < b->nr_pieces; i++) {
		struct vfio_piece *p = &b->piece[i];

		ret = iommu_dev_mmap(v->dev, &b->region, p->off, p->size, &p->hva);
		if (ret) {
			/* Not mappable after all: this part is trapped. */
			b->piece[i--] = b->piece[--b->nr_pieces];
			continue;
		}
		p->slot = v->vm->next_slot++;
	}
}

/* ---- interrupts ---- */

static void trap_fired(void *arg);

struct trap {
	struct vm_vfio *v;
	unsigned vector;
};

/* What the device's VFIO eventfds must be now (dev->lock held). */
static void vfio_irqs_changed(struct vm_pci_dev *pdev)
{
	struct vm_vfio *v = pdev->opaque;
	struct vm_pci_irq_state st;
	int fds[VM_PCI_MSIX_MAX];
	uint32_t index;
	unsigned straight = 0;
	int ret = 0;

	vm_pci_irq_state_locked(pdev, &st);
	if (st.mode == VM_PCI_IRQ_INTX) {
		index = IOMMU_IRQ_INTX;
		st.vectors = v->nr_intx && pdev->intx_line ? 1 : 0;
		if (st.vectors)
			fds[0] = irq_line_fd(pdev->intx_line);
	} else {
		index = st.mode == VM_PCI_IRQ_MSI ? IOMMU_IRQ_MSI : IOMMU_IRQ_MSIX;
		for (unsigned i = 0; i < st.vectors; i++) {
			fds[i] = st.line[i] ? irq_line_fd(st.line[i]) : v->trap_fd[i];
			straight += st.line[i] != NULL;
		}
	}
	if (v->wired && (v->wired_mode != st.mode || v->wired_vectors != st.vectors)) {
		/* Another mechanism, or another number of MSI messages: VFIO starts over. */
		uint32_t old = v->wired_mode == VM_PCI_IRQ_INTX ? IOMMU_IRQ_INTX :
			       v->wired_mode == VM_PCI_IRQ_MSI	? IOMMU_IRQ_MSI :
								  IOMMU_IRQ_MSIX;

		if (v->wired_vectors)
			iommu_dev_set_irqs(v->dev, old, 0, 0, NULL);
		v->wired = false;
	}
	if (!v->wired && st.vectors) {
		ret = iommu_dev_set_irqs(v->dev, index, 0, st.vectors, fds);
		if (!ret && st.mode == VM_PCI_IRQ_INTX)
			ret = iommu_dev_intx_unmask_fd(v->dev,
						       irq_line_resample_fd(pdev->intx_line));
	} else if (v->wired) {
		for (unsigned i = 0; i < st.vectors && !ret; i++)
			if (fds[i] != v->wired_fd[i])
				ret = iommu_dev_set_irqs(v->dev, index, i, 1, &fds[i]);
	}
	if (ret) {
		v->irq_errors++;
		note_limited(v, "%s: VFIO refused the %s interrupt wiring: %s",
			     st.mode == VM_PCI_IRQ_INTX ? "INTx" :
			     st.mode == VM_PCI_IRQ_MSI	? "MSI" :
							  "MSI-X",
			     ret);
		return;
	}
	for (unsigned i = 0; st.mode != VM_PCI_IRQ_INTX && i < st.vectors; i++)
		if (st.line[i])
			irq_line_mark_bypass(st.line[i]);
	v->wired = true;
	v->wired_mode = st.mode;
	v->wired_vectors = st.vectors;
	memcpy(v->wired_fd, fds, st.vectors * sizeof(int));
	v->straight = straight;
	v->rewires++;
}

/* Device thread: VFIO signalled a masked (or unroutable) vector: the platform decides. */
static void trap_fired(void *arg)
{
	struct trap *t = arg;
	uint64_t n;

	if (read(t->v->trap_fd[t->vector], &n, sizeof(n)) != sizeof(n))
		return;
	atomic_fetch_add(&t->v->trapped_irqs, n);
	vm_pci_raise(t->v->pci, t->vector);
}

static struct trap *traps_of(struct vm_vfio *v)
{
	return (struct trap *)(v + 1);
}

/* ---- the device ---- */

static void vfio_free(struct vm_pci_dev *pdev)
{
	struct vm_vfio *v = pdev->opaque;

	if (v->wired && v->wired_vectors)
		iommu_dev_set_irqs(v->dev,
				   v->wired_mode == VM_PCI_IRQ_INTX ? IOMMU_IRQ_INTX :
				   v->wired_mode == VM_PCI_IRQ_MSI  ? IOMMU_IRQ_MSI :
								      IOMMU_IRQ_MSIX,
				   0, 0, NULL);
	v->wired = false;
}

static const struct vm_pci_dev_ops vfio_ops = {
	.bar_io = vfio_bar_io,
	.config_read = vfio_config_read,
	.config_write = vfio_config_write,
	.bar_moved = vfio_bar_moved,
	.irqs_changed = vfio_irqs_changed,
	.free = vfio_free,
};

static int read_rom_file(struct vm_vfio *v, int fd, const char *path, char *why, size_t why_len)
{
	char *data;
	size_t len;
	int ret = util_read_fd(fd, ROM_MAX, &data, &len);

	if (ret || !len) {
		free(ret ? NULL : data);
		return util_error(why, why_len, ret ? ret : -EINVAL, "ROM file %s: %s", path,
				  ret == -EFBIG ? "larger than 16 MiB" :
				  ret		? strerror(-ret) :
						  "empty");
	}
	v->rom_image = (uint8_t *)data;
	v->rom_len = len;
	return 0;
}

static uint64_t pow2_at_least(uint64_t v, uint64_t min)
{
	uint64_t p = min;

	while (p < v)
		p <<= 1;
	return p;
}

/* The BARs, the capabilities and interrupts, the ROM: the platform's description. */
static int describe(struct vm_vfio *v, struct vm_pci_dev_desc *d, char *why, size_t why_len)
{
	struct vm_vfio_facts f = { 0 };
	bool eventfd;
	int ret;

	for (unsigned i = 0; i < VM_PCI_BARS; i++)
		if (!iommu_dev_region(v->dev, IOMMU_REGION_BAR0 + i, &v->bar[i].region))
			f.bar_size[i] = v->bar[i].region.size;
	ret = iommu_dev_irqs(v->dev, IOMMU_IRQ_INTX, &f.nr_intx, &eventfd);
	if (!ret)
		ret = iommu_dev_irqs(v->dev, IOMMU_IRQ_MSI, &f.nr_msi, &eventfd);
	if (!ret)
		ret = iommu_dev_irqs(v->dev, IOMMU_IRQ_MSIX, &f.nr_msix, &eventfd);
	if (ret)
		return util_error(why, why_len, ret, "%s: VFIO_DEVICE_GET_IRQ_INFO: %s", v->name,
				  strerror(-ret));
	v->nr_intx = f.nr_intx;
	v->nr_msi = f.nr_msi;
	v->nr_msix = f.nr_msix;
	ret = vm_vfio_describe(v->seed, &f, d, why, why_len);
	if (ret)
		return ret;
	for (unsigned i = 0; i < VM_PCI_BARS; i++) {
		if (!d->bar[i].size)
			continue;
		if (d->bar[i].flags & VM_PCI_BAR_IO) {
			v->cmd_keep |= PCI_CMD_IO;
			continue;
		}
		v->cmd_keep |= PCI_CMD_MEM;
		list_pieces(&v->bar[i]);
	}
	/* The platform emulates the MSI-X table and PBA: their pages stay trapped. */
	if (d->msix_vectors) {
		cut_pieces(&v->bar[d->msix_table_bar], d->msix_table_offset,
			   d->msix_table_offset + d->msix_vectors * PCI_MSIX_ENTRY_SIZE);
		cut_pieces(&v->bar[d->msix_pba_bar], d->msix_pba_offset,
			   d->msix_pba_offset + (d->msix_vectors + 63) / 64 * 8);
	}
	/* The expansion ROM: the definition's file, else the device's own, unless turned off. */
	if (v->def->rom_bar && v->def->rom_file) {
		ret = read_rom_file(v, v->rom_fd, v->def->rom_file, why, why_len);
		if (ret)
			return ret;
		v->rom_size = pow2_at_least(v->rom_len, 2048);
	} else if (v->def->rom_bar && !iommu_dev_region(v->dev, IOMMU_REGION_ROM, &v->rom) &&
		   v->rom.size && (v->rom.flags & IOMMU_REGION_READ)) {
		v->rom_size = pow2_at_least(v->rom.size, 2048);
	}
	d->rom_size = v->rom_size;
	return 0;
}

static int reset_device(struct vm_vfio *v, const char *when, char *why, size_t why_len)
{
	int ret;

	if (v->def->reset == VMDEF_RESET_OFF) {
		snprintf(v->reset_note, sizeof(v->reset_note), "off");
		return 0;
	}
	ret = iommu_dev_reset(v->dev);
	if (ret == -ENOTTY && v->def->reset == VMDEF_RESET_AUTO) {
		snprintf(v->reset_note, sizeof(v->reset_note),
			 "none: the device has no reset "
			 "method");
		return 0;
	}
	if (ret)
		return util_error(
			why, why_len, ret, "%s: cannot reset it at %s: %s%s", v->name, when,
			ret == -ENOTTY ? "it has no reset method (FLR, PM or bus reset)" :
					 strerror(-ret),
			ret == -ENOTTY ? "; \"reset\": \"auto\" or \"off\" lets it run" : "");
	v->reset_done = true;
	snprintf(v->reset_note, sizeof(v->reset_note), "at start and stop");
	return 0;
}

int vm_vfio_add(struct vm *vm, struct iommu_dev *dev, const struct vmdef_device *def,
		unsigned index, int rom_fd, struct vm_vfio **out)
{
	struct vm_pci_dev_desc d = { .slot = def->slot, .ops = &vfio_ops };
	struct vm_vfio *v = calloc(1, sizeof(*v) + VM_PCI_MSIX_MAX * sizeof(struct trap));
	char why[512] = "";
	uint16_t cmd;
	int ret;

	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->dev = dev;
	v->def = def;
	v->rom_fd = rom_fd;
	for (unsigned i = 0; i < VM_PCI_MSIX_MAX; i++)
		v->trap_fd[i] = -1;
	snprintf(v->name, sizeof(v->name), "vfio%u", index % 100);
	ret = reset_device(v, "start", why, sizeof(why));
	if (!ret && (ret = iommu_dev_region(dev, IOMMU_REGION_CONFIG, &v->config)) == 0) {
		size_t len = v->config.size >= PCI_CFG_SIZE ? PCI_CFG_SIZE : PCI_CFG_LEGACY_SIZE;

		if (v->config.size < PCI_CFG_LEGACY_SIZE)
			ret = -EINVAL;
		else
			ret = iommu_dev_read(dev, &v->config, 0, v->seed, len);
		if (ret)
			util_error(why, sizeof(why), ret, "%s: cannot read its configuration space",
				   v->name);
		d.config = v->seed;
		d.config_len = len;
	}
	if (!ret)
		ret = describe(v, &d, why, sizeof(why));
	if (ret)
		goto err;
	for (unsigned i = 0; i < VM_PCI_BARS; i++)
		map_pieces(v, i);
	memcpy(&d.vendor, v->seed + PCI_CFG_VENDOR, 2);
	memcpy(&d.device, v->seed + PCI_CFG_DEVICE, 2);
	memcpy(&d.subsys_vendor, v->seed + PCI_CFG_SUBSYS_VENDOR, 2);
	memcpy(&d.subsys, v->seed + PCI_CFG_SUBSYS_VENDOR + 2, 2);
	d.revision = v->seed[PCI_CFG_REVISION];
	d.class_code = (uint32_t)v->seed[PCI_CFG_CLASS_PROG] |
		       (uint32_t)v->seed[PCI_CFG_CLASS_PROG + 1] << 8 |
		       (uint32_t)v->seed[PCI_CFG_CLASS_PROG + 2] << 16;
	d.name = v->name;
	d.opaque = v;
	/* Trap eventfds first: the platform may call irqs_changed while adding the device. */
	v->nr_traps = d.msix_vectors > d.msi_vectors ? d.msix_vectors : d.msi_vectors;
	for (unsigned i = 0; i < v->nr_traps && !ret; i++) {
		traps_of(v)[i] = (struct trap){ .v = v, .vector = i };
		v->trap_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->trap_fd[i] < 0)
			ret = -errno;
		else
			ret = vm_devloop_add(vm->devloop, v->trap_fd[i], trap_fired,
					     &traps_of(v)[i]);
	}
	if (ret) {
		util_error(why, sizeof(why), ret, "%s: cannot set up its interrupts: %s", v->name,
			   strerror(-ret));
		goto err;
	}
	/* The real device decodes its BARs; bus mastering waits for the guest. */
	memcpy(&cmd, v->seed + PCI_CFG_COMMAND, 2);
	cmd = (uint16_t)((cmd & ~(CMD_GUEST_BITS | PCI_CMD_IO | PCI_CMD_MEM)) | v->cmd_keep);
	iommu_dev_write(dev, &v->config, PCI_CFG_COMMAND, &cmd, 2);
	ret = vm_pci_add(vm->pci, &d, &v->pci);
	if (ret) {
		util_error(why, sizeof(why), ret, "%s: %s", v->name,
			   ret == -EEXIST ? "its PCI slot is taken" :
			   ret == -EINVAL ? "its configuration space or BARs are not ones lockstep "
					    "can emulate" :
					    strerror(-ret));
		goto err;
	}
	/* INTx from the start (nothing else is enabled yet). */
	pthread_mutex_lock(&v->pci->lock);
	vfio_irqs_changed(v->pci);
	pthread_mutex_unlock(&v->pci->lock);
	*out = v;
	return 0;

err:
	util_log(&vm->log, UTIL_LOG_ERROR, "passthrough %s: %s", iommu_dev_bdf(dev), why);
	for (unsigned i = 0; i < VM_PCI_MSIX_MAX; i++)
		if (v->trap_fd[i] >= 0) {
			vm_devloop_del(vm->devloop, v->trap_fd[i]);
			close(v->trap_fd[i]);
		}
	for (unsigned i = 0; i < VM_PCI_BARS; i++)
		for (unsigned k = 0; k < v->bar[i].nr_pieces; k++)
			if (v->bar[i].piece[k].hva)
				munmap(v->bar[i].piece[k].hva, v->bar[i].piece[k].size);
	free(v->rom_image);
	free(v);
	return ret;
}

/* After the PCI device is gone (vm_pci_free called vfio_free): mappings, eventfds, reset. */
void vm_vfio_free(struct vm_vfio *v)
{
	char why[256];

	if (!v)
		return;
	for (unsigned i = 0; i < VM_PCI_BARS; i++) {
		unmap_pieces(v, &v->bar[i]);
		for (unsigned k = 0; k < v->bar[i].nr_pieces; k++)
			munmap(v->bar[i].piece[k].hva, v->bar[i].piece[k].size);
	}
	for (unsigned i = 0; i < VM_PCI_MSIX_MAX; i++)
		if (v->trap_fd[i] >= 0) {
			vm_devloop_del(v->vm->devloop, v->trap_fd[i]);
			close(v->trap_fd[i]);
		}
	if (v->reset_done && reset_device(v, "stop", why, sizeof(why)))
		util_log(&v->vm->log, UTIL_LOG_WARN, "passthrough %s: %s", iommu_dev_bdf(v->dev),
			 why);
	free(v->rom_image);
	free(v);
}

json_t *vm_vfio_json(struct vm_vfio *v)
{
	json_t *bars = json_array(), *obj;
	const char *mode = "intx";

	for (unsigned i = 0; i < VM_PCI_BARS; i++) {
		const struct vfio_bar *b = &v->bar[i];
		uint64_t mapped = 0, slotted = 0;

		if (!b->region.size)
			continue;
		for (unsigned k = 0; k < b->nr_pieces; k++) {
			mapped += b->piece[k].size;
			slotted += b->piece[k].gpa ? b->piece[k].size : 0;
		}
		json_array_append_new(
			bars, json_pack("{s:i, s:I, s:s, s:I, s:I, s:I, s:I, s:I}", "bar", (int)i,
					"size", (json_int_t)b->region.size, "kind",
					v->pci->bar[i].flags & VM_PCI_BAR_IO ? "io" : "memory",
					"guest_address", (json_int_t)b->at, "mappable",
					(json_int_t)mapped, "mapped", (json_int_t)slotted,
					"trapped_accesses",
					(json_int_t)atomic_load(&((struct vfio_bar *)b)->trapped),
					"slot_errors", (json_int_t)b->slot_errors));
	}
	pthread_mutex_lock(&v->pci->lock);
	if (v->wired && v->wired_mode == VM_PCI_IRQ_MSI)
		mode = "msi";
	else if (v->wired && v->wired_mode == VM_PCI_IRQ_MSIX)
		mode = "msix";
	obj = json_pack("{s:s, s:i, s:s, s:o, s:{s:s, s:i, s:i, s:i, s:i, s:I, s:I, s:I}, s:s}",
			"host", iommu_dev_bdf(v->dev), "slot", (int)v->pci->slot, "name", v->name,
			"bars", bars, "interrupts", "wired", v->wired ? mode : "none", "vectors",
			(int)v->wired_vectors, "straight_to_kvm", (int)v->straight, "msi_max",
			(int)v->nr_msi, "msix_max", (int)v->nr_msix, "rewires",
			(json_int_t)v->rewires, "errors", (json_int_t)v->irq_errors,
			"trapped_while_masked", (json_int_t)atomic_load(&v->trapped_irqs), "reset",
			v->reset_note);
	pthread_mutex_unlock(&v->pci->lock);
	if (obj && v->rom_size)
		json_object_set_new(obj, "rom",
				    json_pack("{s:I, s:s}", "size", (json_int_t)v->rom_size,
					      "source",
					      v->rom_image ? v->def->rom_file : "device"));
	return obj;
}
