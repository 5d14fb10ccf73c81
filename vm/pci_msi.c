/*
 * MSI and MSI-X of emulated (and, later, passthrough) PCI devices: the capabilities in
 * configuration space, the MSI-X table and PBA in a BAR, masking and pending bits, and the
 * irq/ routes and lines behind them.
 *
 * Each enabled MSI message, and each MSI-X vector the guest has unmasked with a valid
 * message, gets an MSI route and an irqfd line; raising it is a write to the line's eventfd.
 * A vector that is masked (MSI per-vector mask, MSI-X function or vector mask) keeps its route
 * and line — masking is frequent, route changes are not free — and a raise only sets its
 * pending bit; unmasking delivers a pending vector once.  A message that changed while masked
 * is committed when the vector is unmasked.  Enabling MSI-X with several live vectors, or
 * turning MSI/MSI-X off, is one routing commit.  A message that names no vCPU of the VM or a
 * reserved vector (0-15) gets no route: its raises are dropped and counted.
 *
 * Called with dev->lock held: from vm/pci.c for configuration writes and raises, and from the
 * BAR path (vm_pci_msix_access takes it itself).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vm/pci.h"
#include "vm/vm_internal.h"

#define MSI_CAP_OFFSET 0x40 /* 64-bit with per-vector masking: 24 bytes */
#define MSIX_CAP_OFFSET 0x60
#define MSI_CTRL 2
#define MSI_ADDR_LO 4
#define MSI_ADDR_HI 8
#define MSIX_CTRL 2
#define MSIX_TABLE 4
#define MSIX_PBA 8

static uint32_t cfg32(const struct vm_pci_dev *dev, unsigned off)
{
	uint32_t v;

	memcpy(&v, dev->cfg + off, 4);
	return v;
}

static uint16_t cfg16(const struct vm_pci_dev *dev, unsigned off)
{
	uint16_t v;

	memcpy(&v, dev->cfg + off, 2);
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static bool msg_eq(const struct irq_msi *a, const struct irq_msi *b)
{
	return a->address == b->address && a->data == b->data;
}

static void note_bad_message(struct vm_pci_dev *dev, const char *what, const struct irq_msi *m)
{
	dev->bad_messages++;
	util_log_limited(&dev->vm->log, &dev->vm->guest_log_limit, UTIL_LOG_WARN,
			 "%s: %s programmed with address %#llx data %#x, which names no "
			 "vCPU or a reserved vector: its interrupts are dropped",
			 dev->name, what, (unsigned long long)m->address, m->data);
}

static struct irq *dev_irq(const struct vm_pci_dev *dev)
{
	return dev->vm->irq;
}

/* The MSI capability at `cap`: 64-bit or 32-bit addresses, with or without per-vector
 * masking; registers, write masks, and its length (what the platform owns). */
static int msi_setup(struct vm_pci_dev *dev, const struct vm_pci_dev_desc *d, unsigned cap)
{
	unsigned n = d->msi_vectors, log2 = 0;
	uint8_t *c = dev->cfg + cap;

	if (n > VM_PCI_MSI_MAX || (n & (n - 1)))
		return -EINVAL;
	while ((1u << log2) < n)
		log2++;
	dev->msi_cap = cap;
	dev->msi_vectors = n;
	dev->msi_maskable = d->msi_maskable;
	dev->msi_64bit = d->config ? d->msi_64bit : true;
	dev->msi_data = dev->msi_64bit ? MSI_ADDR_HI + 4 : MSI_ADDR_HI;
	dev->msi_mask = dev->msi_data + 4;
	/* whole dwords: a 32-bit capability without masking is 10 bytes, padded to 12 */
	dev->msi_len = dev->msi_maskable ? dev->msi_mask + 8 : dev->msi_data + 4;
	if (cap < 0x40 || cap + dev->msi_len > PCI_CFG_LEGACY_SIZE || (cap & 3))
		return -EINVAL;
	/* A device's own values past the header (addresses, data, masks) start cleared. */
	memset(c + MSI_CTRL, 0, dev->msi_len - MSI_CTRL);
	c[0] = PCI_CAP_ID_MSI;
	if (!d->config)
		c[1] = d->msix_vectors ? MSIX_CAP_OFFSET : 0;
	put16(c + MSI_CTRL, (uint16_t)(log2 << 1 | (dev->msi_64bit ? PCI_MSI_FLAGS_64BIT : 0) |
				       (d->msi_maskable ? PCI_MSI_FLAGS_MASKBIT : 0)));
	put16(dev->wmask + cap + MSI_CTRL, 0x0071); /* enable, MME */
	put32(dev->wmask + cap + MSI_ADDR_LO, 0xfffffffc);
	if (dev->msi_64bit)
		put32(dev->wmask + cap + MSI_ADDR_HI, 0xffffffff);
	put16(dev->wmask + cap + dev->msi_data, 0xffff);
	if (d->msi_maskable)
		put32(dev->wmask + cap + dev->msi_mask, n == 32 ? 0xffffffffu : (1u << n) - 1);
	return 0;
}

static bool bar_holds(const struct vm_pci_dev_desc *d, unsigned bar, uint64_t off, uint64_t len)
{
	return bar < VM_PCI_BARS && !(d->bar[bar].flags & VM_PCI_BAR_IO) &&
	       off <= d->bar[bar].size && len <= d->bar[bar].size - off;
}

/* The MSI-X capability at `cap`, its table and PBA where the device has them. */
static int msix_setup(struct vm_pci_dev *dev, const struct vm_pci_dev_desc *d, unsigned cap)
{
	unsigned n = d->msix_vectors;
	unsigned tbar = d->config ? d->msix_table_bar : d->msix_bar;
	unsigned pbar = d->config ? d->msix_pba_bar : d->msix_bar;
	uint32_t toff = d->config ? d->msix_table_offset : 0, poff = d->msix_pba_offset;
	uint32_t pba_bytes = (n + 63) / 64 * 8, table_bytes = n * PCI_MSIX_ENTRY_SIZE;
	uint8_t *c = dev->cfg + cap;

	if (!n || n > VM_PCI_MSIX_MAX || cap < 0x40 || cap + 12 > PCI_CFG_LEGACY_SIZE ||
	    (cap & 3) || (toff & 7) || (poff & 7) || !bar_holds(d, tbar, toff, table_bytes) ||
	    !bar_holds(d, pbar, poff, pba_bytes) ||
	    (tbar == pbar && toff < poff + pba_bytes && poff < toff + table_bytes))
		return -EINVAL;
	dev->msix = calloc(n, sizeof(*dev->msix));
	if (!dev->msix)
		return -ENOMEM;
	for (unsigned v = 0; v < n; v++)
		dev->msix[v].entry[3] = PCI_MSIX_ENTRY_CTRL_MASKBIT; /* reset: masked */
	dev->msix_cap = cap;
	dev->msix_vectors = n;
	dev->msix_table_bar = tbar;
	dev->msix_table_offset = toff;
	dev->msix_pba_bar = pbar;
	dev->msix_pba_offset = poff;
	c[0] = PCI_CAP_ID_MSIX;
	if (!d->config)
		c[1] = 0;
	put16(c + MSIX_CTRL, (uint16_t)(n - 1));
	put16(dev->wmask + cap + MSIX_CTRL, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	put32(c + MSIX_TABLE, toff | tbar);
	put32(c + MSIX_PBA, poff | pbar);
	return 0;
}

int vm_pci_msi_setup(struct vm_pci_dev *dev, const struct vm_pci_dev_desc *d, uint8_t *first)
{
	int ret = 0;

	*first = 0;
	if (d->msi_vectors)
		ret = msi_setup(dev, d, d->config ? d->msi_cap : MSI_CAP_OFFSET);
	if (!ret && d->msix_vectors)
		ret = msix_setup(dev, d, d->config ? d->msix_cap : MSIX_CAP_OFFSET);
	/* An emulated device's list starts with the platform's; a device keeps its own. */
	if (!ret && !d->config)
		*first = d->msi_vectors ? MSI_CAP_OFFSET : d->msix_vectors ? MSIX_CAP_OFFSET : 0;
	return ret;
}

/* ---- MSI ---- */

static bool msi_enabled(const struct vm_pci_dev *dev)
{
	return dev->msi_cap && (cfg16(dev, dev->msi_cap + MSI_CTRL) & PCI_MSI_FLAGS_ENABLE);
}

/* Messages enabled (MME, at most what the device has). */
static unsigned msi_count(const struct vm_pci_dev *dev)
{
	unsigned n = 1u << ((cfg16(dev, dev->msi_cap + MSI_CTRL) >> 4) & 7);

	return n > dev->msi_vectors ? dev->msi_vectors : n;
}

static struct irq_msi msi_message(const struct vm_pci_dev *dev, unsigned v, unsigned n)
{
	uint32_t data = cfg16(dev, dev->msi_cap + dev->msi_data);

	return (struct irq_msi){
		.address =
			cfg32(dev, dev->msi_cap + MSI_ADDR_LO) |
			(dev->msi_64bit ? (uint64_t)cfg32(dev, dev->msi_cap + MSI_ADDR_HI) << 32 :
					  0),
		.data = (data & ~(n - 1)) | v, /* multiple messages: the low bits say which */
	};
}

static bool msi_masked(const struct vm_pci_dev *dev, unsigned v)
{
	return dev->msi_maskable && (cfg32(dev, dev->msi_cap + dev->msi_mask) >> v & 1);
}

static void msi_publish_pending(struct vm_pci_dev *dev)
{
	if (dev->msi_maskable)
		__atomic_store_n((uint32_t *)(void *)(dev->cfg + dev->msi_cap + dev->msi_mask + 4),
				 dev->msi_pending, __ATOMIC_RELAXED);
}

static void msi_unroute(struct vm_pci_dev *dev)
{
	if (!dev->msi_routed)
		return;
	for (unsigned v = 0; v < dev->msi_routed_count; v++) {
		irq_line_free(dev->msi_line[v]);
		dev->msi_line[v] = NULL;
	}
	irq_msi_remove(dev_irq(dev), dev->msi_gsi, dev->msi_routed_count);
	dev->msi_routed = false;
	dev->msi_routed_count = 0;
}

static int msi_route(struct vm_pci_dev *dev, const struct irq_msi *msgs, unsigned n)
{
	char name[IRQ_NAME_MAX];
	int ret;

	ret = irq_msi_add_many(dev_irq(dev), msgs, n, dev->name, dev->msi_gsi);
	if (ret)
		return ret;
	dev->msi_routed = true;
	dev->msi_routed_count = n;
	for (unsigned v = 0; v < n; v++) {
		snprintf(name, sizeof(name), "%.16s.msi%u", dev->name, v);
		ret = irq_line_new(dev_irq(dev), dev->msi_gsi[v], IRQ_LINE_EDGE, name,
				   &dev->msi_line[v]);
		if (ret) {
			dev->msi_routed_count = v; /* free what was made, then every route */
			for (unsigned k = 0; k < v; k++) {
				irq_line_free(dev->msi_line[k]);
				dev->msi_line[k] = NULL;
			}
			irq_msi_remove(dev_irq(dev), dev->msi_gsi, n);
			dev->msi_routed = false;
			dev->msi_routed_count = 0;
			return ret;
		}
	}
	return 0;
}

static void msi_reconfigure(struct vm_pci_dev *dev)
{
	struct irq_msi msgs[VM_PCI_MSI_MAX];
	unsigned n;
	bool same = true;

	if (!msi_enabled(dev)) {
		msi_unroute(dev);
		return;
	}
	n = msi_count(dev);
	for (unsigned v = 0; v < n; v++) {
		msgs[v] = msi_message(dev, v, n);
		if (!irq_msi_valid(dev_irq(dev), &msgs[v])) {
			msi_unroute(dev);
			note_bad_message(dev, "MSI", &msgs[v]);
			return;
		}
	}
	if (dev->msi_routed && dev->msi_routed_count == n) {
		same = msg_eq(&dev->msi_msg, &msgs[0]);
		if (!same && irq_msi_update(dev_irq(dev), dev->msi_gsi, msgs, n))
			msi_unroute(dev);
	} else {
		msi_unroute(dev);
		if (msi_route(dev, msgs, n))
			return;
	}
	dev->msi_msg = msgs[0];
	/* Unmasked vectors that were raised while masked fire now. */
	for (unsigned v = 0; v < n; v++) {
		if (!(dev->msi_pending >> v & 1) || msi_masked(dev, v))
			continue;
		dev->msi_pending &= ~(1u << v);
		irq_line_raise(dev->msi_line[v]);
	}
	msi_publish_pending(dev);
}

/* Sends vector v's message with KVM_SIGNAL_MSI instead of its line (for comparison). */
static void signal_message(struct vm_pci_dev *dev, const struct irq_msi *msg)
{
	irq_signal_msi(dev_irq(dev), msg);
}

static void msi_raise(struct vm_pci_dev *dev, unsigned v, bool signal)
{
	if (v >= msi_count(dev) || !dev->msi_routed) {
		dev->dropped++;
		return;
	}
	if (msi_masked(dev, v)) {
		bool merged = dev->msi_pending >> v & 1;

		dev->msi_pending |= 1u << v;
		msi_publish_pending(dev);
		irq_line_held(dev->msi_line[v], merged);
		return;
	}
	if (signal) {
		struct irq_msi m = msi_message(dev, v, dev->msi_routed_count);

		signal_message(dev, &m);
		return;
	}
	irq_line_raise(dev->msi_line[v]);
}

/* ---- MSI-X ---- */

static bool msix_enabled(const struct vm_pci_dev *dev)
{
	return dev->msix_cap && (cfg16(dev, dev->msix_cap + MSIX_CTRL) & PCI_MSIX_FLAGS_ENABLE);
}

static bool msix_live(const struct vm_pci_dev *dev, unsigned v)
{
	return msix_enabled(dev) &&
	       !(cfg16(dev, dev->msix_cap + MSIX_CTRL) & PCI_MSIX_FLAGS_MASKALL) &&
	       !(dev->msix[v].entry[3] & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static struct irq_msi msix_message(const struct vm_pci_dev *dev, unsigned v)
{
	const uint32_t *e = dev->msix[v].entry;

	return (struct irq_msi){ .address = e[0] | (uint64_t)e[1] << 32, .data = e[2] };
}

static bool pba_test(const struct vm_pci_dev *dev, unsigned v)
{
	return dev->msix_pba[v / 64] >> (v % 64) & 1;
}

static void pba_set(struct vm_pci_dev *dev, unsigned v, bool on)
{
	uint64_t bit = 1ull << (v % 64);

	__atomic_store_n(&dev->msix_pba[v / 64],
			 on ? dev->msix_pba[v / 64] | bit : dev->msix_pba[v / 64] & ~bit,
			 __ATOMIC_RELAXED);
}

static void msix_unroute(struct vm_pci_dev *dev, const unsigned *vs, unsigned n)
{
	uint32_t gsis[VM_PCI_MSIX_MAX];
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		struct vm_pci_msix_vector *vec = &dev->msix[vs[i]];

		if (!vec->routed)
			continue;
		irq_line_free(vec->line);
		vec->line = NULL;
		vec->routed = false;
		gsis[k++] = vec->gsi;
	}
	if (k)
		irq_msi_remove(dev_irq(dev), gsis, k);
}

static void msix_unroute_all(struct vm_pci_dev *dev)
{
	unsigned all[VM_PCI_MSIX_MAX];

	for (unsigned v = 0; v < dev->msix_vectors; v++)
		all[v] = v;
	msix_unroute(dev, all, dev->msix_vectors);
}

/* Routes the live vectors among `vs` as their messages say: new routes in one commit,
 * changed ones in another. */
static void msix_route(struct vm_pci_dev *dev, const unsigned *vs, unsigned n)
{
	unsigned add[VM_PCI_MSIX_MAX], upd[VM_PCI_MSIX_MAX], bad[VM_PCI_MSIX_MAX] = { 0 };
	struct irq_msi add_msg[VM_PCI_MSIX_MAX], upd_msg[VM_PCI_MSIX_MAX];
	uint32_t gsis[VM_PCI_MSIX_MAX];
	unsigned na = 0, nu = 0, nb = 0;
	char name[IRQ_NAME_MAX];

	for (unsigned i = 0; i < n; i++) {
		unsigned v = vs[i];
		struct vm_pci_msix_vector *vec = &dev->msix[v];
		struct irq_msi m = msix_message(dev, v);

		if (!msix_live(dev, v))
			continue;
		if (!irq_msi_valid(dev_irq(dev), &m)) {
			note_bad_message(dev, "MSI-X vector", &m);
			bad[nb++] = v;
		} else if (!vec->routed) {
			add_msg[na] = m;
			add[na++] = v;
		} else if (!msg_eq(&vec->routed_msg, &m)) {
			upd_msg[nu] = m;
			gsis[nu] = vec->gsi;
			upd[nu++] = v;
		}
	}
	msix_unroute(dev, bad, nb);
	if (nu && !irq_msi_update(dev_irq(dev), gsis, upd_msg, nu))
		for (unsigned i = 0; i < nu; i++)
			dev->msix[upd[i]].routed_msg = upd_msg[i];
	if (!na || irq_msi_add_many(dev_irq(dev), add_msg, na, dev->name, gsis))
		return;
	for (unsigned i = 0; i < na; i++) {
		struct vm_pci_msix_vector *vec = &dev->msix[add[i]];

		snprintf(name, sizeof(name), "%.16s.msix%u", dev->name, add[i]);
		vec->gsi = gsis[i];
		if (irq_line_new(dev_irq(dev), gsis[i], IRQ_LINE_EDGE, name, &vec->line)) {
			irq_msi_remove(dev_irq(dev), &gsis[i], 1);
			continue;
		}
		vec->routed = true;
		vec->routed_msg = add_msg[i];
	}
}

/* Delivers the pending vectors among `vs` that are live now. */
static void msix_flush_pending(struct vm_pci_dev *dev, const unsigned *vs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct vm_pci_msix_vector *vec = &dev->msix[vs[i]];

		if (!pba_test(dev, vs[i]) || !msix_live(dev, vs[i]) || !vec->routed)
			continue;
		pba_set(dev, vs[i], false);
		vec->delivered++;
		irq_line_raise(vec->line);
	}
}

static void msix_reconfigure(struct vm_pci_dev *dev)
{
	unsigned all[VM_PCI_MSIX_MAX];

	if (!msix_enabled(dev)) {
		msix_unroute_all(dev);
		return;
	}
	for (unsigned v = 0; v < dev->msix_vectors; v++)
		all[v] = v;
	msix_route(dev, all, dev->msix_vectors);
	msix_flush_pending(dev, all, dev->msix_vectors);
}

static void msix_raise(struct vm_pci_dev *dev, unsigned v, bool signal)
{
	struct vm_pci_msix_vector *vec;

	if (v >= dev->msix_vectors) {
		dev->dropped++;
		return;
	}
	vec = &dev->msix[v];
	vec->raised++;
	if (!msix_live(dev, v)) {
		bool merged = pba_test(dev, v);

		pba_set(dev, v, true);
		if (vec->line)
			irq_line_held(vec->line, merged);
		return;
	}
	if (!vec->routed) {
		dev->dropped++;
		return;
	}
	vec->delivered++;
	if (signal)
		signal_message(dev, &vec->routed_msg);
	else
		irq_line_raise(vec->line);
}

static bool in_table(const struct vm_pci_dev *dev, unsigned bar, uint64_t off)
{
	return bar == dev->msix_table_bar && off >= dev->msix_table_offset &&
	       off - dev->msix_table_offset < (uint64_t)dev->msix_vectors * PCI_MSIX_ENTRY_SIZE;
}

static bool in_pba(const struct vm_pci_dev *dev, unsigned bar, uint64_t off)
{
	return bar == dev->msix_pba_bar && off >= dev->msix_pba_offset &&
	       off - dev->msix_pba_offset < (dev->msix_vectors + 63) / 64 * 8;
}

bool vm_pci_msix_hit(const struct vm_pci_dev *dev, unsigned bar, uint64_t off)
{
	if (!dev->msix_cap)
		return false;
	if (in_table(dev, bar, off) || in_pba(dev, bar, off))
		return true;
	/* An emulated device's table and PBA share a BAR: the gap between them is theirs. */
	return !dev->passthrough && bar == dev->msix_table_bar && off < dev->msix_pba_offset;
}

static void changed(struct vm_pci_dev *dev)
{
	if (dev->ops && dev->ops->irqs_changed)
		dev->ops->irqs_changed(dev);
}

/* One 4- or 8-byte access to the table or the PBA (dev->lock held). */
static void msix_access_locked(struct vm_pci_dev *dev, unsigned bar, uint64_t off, struct vm_io *io)
{
	uint64_t v = 0;

	if ((io->size != 4 && io->size != 8) || (off & (io->size - 1)) || io->count != 1) {
		dev->bad_table_access++;
		goto bad;
	}
	if (in_table(dev, bar, off)) {
		uint64_t rel = off - dev->msix_table_offset;
		unsigned vec = (unsigned)(rel / PCI_MSIX_ENTRY_SIZE);
		unsigned dw = (unsigned)(rel % PCI_MSIX_ENTRY_SIZE) / 4;
		uint32_t *e = dev->msix[vec].entry;

		if (!io->write) {
			v = e[dw] | (io->size == 8 ? (uint64_t)e[dw + 1] << 32 : 0);
			memcpy(io->data, &v, io->size);
			return;
		}
		memcpy(&v, io->data, io->size);
		for (unsigned k = 0; k < io->size / 4; k++) {
			uint32_t w = (uint32_t)(v >> (32 * k));

			e[dw + k] = dw + k == 3 ? (w & PCI_MSIX_ENTRY_CTRL_MASKBIT) : w;
		}
		msix_route(dev, &vec, 1);
		msix_flush_pending(dev, &vec, 1);
		changed(dev);
		return;
	}
	if (in_pba(dev, bar, off) && !io->write) {
		uint64_t q = dev->msix_pba[(off - dev->msix_pba_offset) / 8];

		v = io->size == 8 ? q : (uint32_t)(q >> (off & 4 ? 32 : 0));
		memcpy(io->data, &v, io->size);
		return;
	}
	/* A write to the read-only PBA, or an access between the table and the PBA. */
	dev->bad_table_access++;
bad:
	if (!io->write)
		memset(io->data, 0, (size_t)io->size * io->count);
}

void vm_pci_msix_access(struct vm_pci_dev *dev, unsigned bar, uint64_t off, struct vm_io *io)
{
	pthread_mutex_lock(&dev->lock);
	msix_access_locked(dev, bar, off, io);
	pthread_mutex_unlock(&dev->lock);
}

/* ---- both ---- */

static bool covers(uint32_t off, uint32_t size, unsigned cap, unsigned len)
{
	return cap && off < cap + len && cap < off + size;
}

void vm_pci_msi_config_written(struct vm_pci_dev *dev, uint32_t off, uint32_t size)
{
	if (covers(off, size, dev->msi_cap, dev->msi_len))
		msi_reconfigure(dev);
	if (covers(off, size, dev->msix_cap, 12))
		msix_reconfigure(dev);
	changed(dev);
}

bool vm_pci_msi_raise_locked(struct vm_pci_dev *dev, unsigned v, bool signal)
{
	if (msix_enabled(dev))
		msix_raise(dev, v, signal);
	else if (msi_enabled(dev))
		msi_raise(dev, v, signal);
	else
		return false;
	return true;
}

void vm_pci_msi_teardown(struct vm_pci_dev *dev)
{
	if (dev->msi_cap)
		msi_unroute(dev);
	if (dev->msix_cap)
		msix_unroute_all(dev);
}

void vm_pci_irq_state_locked(struct vm_pci_dev *dev, struct vm_pci_irq_state *out)
{
	memset(out, 0, sizeof(*out));
	if (msix_enabled(dev)) {
		out->mode = VM_PCI_IRQ_MSIX;
		out->vectors = dev->msix_vectors;
		for (unsigned v = 0; v < dev->msix_vectors; v++)
			if (msix_live(dev, v) && dev->msix[v].routed)
				out->line[v] = dev->msix[v].line;
	} else if (msi_enabled(dev)) {
		out->mode = VM_PCI_IRQ_MSI;
		out->vectors = msi_count(dev);
		for (unsigned v = 0; v < out->vectors && dev->msi_routed; v++)
			if (v < dev->msi_routed_count && !msi_masked(dev, v))
				out->line[v] = dev->msi_line[v];
	} else {
		out->mode = VM_PCI_IRQ_INTX;
		out->vectors = 1;
		out->line[0] = dev->intx_line;
	}
}

struct irq_line *vm_pci_vector_line(struct vm_pci_dev *dev, unsigned v)
{
	struct irq_line *line = NULL;

	pthread_mutex_lock(&dev->lock);
	if (msix_enabled(dev))
		line = v < dev->msix_vectors ? dev->msix[v].line : NULL;
	else if (msi_enabled(dev))
		line = v < dev->msi_routed_count ? dev->msi_line[v] : NULL;
	else
		line = dev->intx_line;
	pthread_mutex_unlock(&dev->lock);
	return line;
}
