/*
 * ptrng: a virtio entropy device (QEMU's virtio-rng-pci, modern interface only, PCI
 * 1af4:1044) passed through to this VM and driven as a virtio 1.0 driver would: its
 * configuration structures in a memory BAR (mapped into the guest by lockstep), one split
 * virtqueue in guest RAM that the device reads and writes by DMA through the IOMMU (the
 * driver accepts VIRTIO_F_ACCESS_PLATFORM, without which QEMU's device would bypass it), and
 * MSI-X, whose table and PBA lockstep emulates:
 *
 *   requests  `requests=` buffers of 64 bytes handed to the device one after the other; each
 *             comes back filled (used ring) with exactly one MSI-X interrupt
 *   masked    with the vector masked in the MSI-X table, a request completes without an
 *             interrupt and sets the vector's pending bit; unmasking delivers it once and
 *             clears the bit
 *
 *   result: program=ptrng slot=S requests=N filled=N msix=N masked_pending=1 unmask_delivered=1
 *           ok=0|1
 *
 * Exit 0 when every check passed.
 */
#include "guest/guest.h"

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_RNG_MODERN 0x1044
#define PCI_CAP_VENDOR 0x09
#define PCI_CAP_MSIX 0x11
#define CAP_COMMON 1
#define CAP_NOTIFY 2
/* struct virtio_pci_common_cfg */
#define CC_DEVICE_FEATURE_SELECT 0x00
#define CC_DEVICE_FEATURE 0x04
#define CC_DRIVER_FEATURE_SELECT 0x08
#define CC_DRIVER_FEATURE 0x0c
#define CC_MSIX_CONFIG 0x10
#define CC_STATUS 0x14
#define CC_QUEUE_SELECT 0x16
#define CC_QUEUE_SIZE 0x18
#define CC_QUEUE_MSIX_VECTOR 0x1a
#define CC_QUEUE_ENABLE 0x1c
#define CC_QUEUE_NOTIFY_OFF 0x1e
#define CC_QUEUE_DESC 0x20
#define CC_QUEUE_DRIVER 0x28
#define CC_QUEUE_DEVICE 0x30
#define STATUS_ACK 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define F_HI_VERSION_1 1u	/* feature 32 */
#define F_HI_ACCESS_PLATFORM 2u /* feature 33 */
#define NO_VECTOR 0xffff
#define DESC_WRITE 2
#define QUEUE_MAX 256
#define BUF_LEN 64

#define PCI_COMMAND 0x04
#define PCI_CAP_PTR 0x34
#define MSIX_CTRL 2
#define MSIX_ENABLE 0x8000u
#define SECOND 1000000000ull
#define VEC_MSIX 0xc5

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
} __attribute__((packed));

static unsigned slot, failed, passed;
static volatile uint8_t *common;
static volatile uint16_t *notify;
static volatile struct desc *descs;
static volatile uint16_t *avail; /* flags, idx, ring[] */
static volatile uint16_t *used;	 /* flags, idx, then (id, len) pairs of 32 bits */
static unsigned qsize;

static void check(bool ok, const char *what)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	rt_printf("ptrng: FAILED: %s\n", what);
}

static uint8_t cc8(unsigned off)
{
	return common[off];
}

static void cc8_set(unsigned off, uint8_t v)
{
	common[off] = v;
}

static uint16_t cc16(unsigned off)
{
	return *(volatile uint16_t *)(common + off);
}

static void cc16_set(unsigned off, uint16_t v)
{
	*(volatile uint16_t *)(common + off) = v;
}

static uint32_t cc32(unsigned off)
{
	return *(volatile uint32_t *)(common + off);
}

static void cc32_set(unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(common + off) = v;
}

static void cc64_set(unsigned off, uint64_t v)
{
	cc32_set(off, (uint32_t)v);
	cc32_set(off + 4, (uint32_t)(v >> 32));
}

static uint32_t wait_count(uint32_t old, uint64_t timeout_ns)
{
	uint64_t end = rt_rdtsc() + rt_ns_to_cycles(timeout_ns);
	const volatile uint32_t *w = rt_irq_count_word(0, VEC_MSIX);

	while (*w == old && rt_rdtsc() < end)
		rt_pause();
	return *w;
}

static uint16_t used_idx(void)
{
	return used[1];
}

/* The length the device wrote into the used element of request n. */
static uint32_t used_len(unsigned n)
{
	return ((volatile uint32_t *)(used + 2))[2 * (n % qsize) + 1];
}

/* One buffer to the device; true once it is used (false after a second). */
static bool request(uint8_t *buf, uint16_t n)
{
	uint64_t end = rt_rdtsc() + rt_ns_to_cycles(SECOND);
	uint16_t before = used_idx();

	descs[0] = (struct desc){ .addr = (uintptr_t)buf, .len = BUF_LEN, .flags = DESC_WRITE };
	avail[2 + n % qsize] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail[1] = (uint16_t)(n + 1);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*notify = 0;
	while (used_idx() == before && rt_rdtsc() < end)
		rt_pause();
	return used_idx() != before;
}

/* The common and notify structures from the vendor capabilities. */
static bool find_structures(void)
{
	unsigned guard = 0;

	for (unsigned cap = rt_pci_read(slot, PCI_CAP_PTR, 1) & ~3u; cap && guard < 48;
	     cap = rt_pci_read(slot, cap + 1, 1) & ~3u, guard++) {
		unsigned type = rt_pci_read(slot, cap + 3, 1), bar = rt_pci_read(slot, cap + 4, 1);
		uint64_t at;

		if (rt_pci_read(slot, cap, 1) != PCI_CAP_VENDOR || bar > 5)
			continue;
		at = rt_pci_bar(slot, bar) + rt_pci_read(slot, cap + 8, 4);
		if (type == CAP_COMMON && !common)
			common = (volatile uint8_t *)(uintptr_t)at;
		/* the queue's own offset in it is known once the queue is selected (setup) */
		if (type == CAP_NOTIFY && !notify)
			notify = (volatile uint16_t *)(uintptr_t)at;
	}
	return common && notify;
}

static uint32_t notify_multiplier(void)
{
	for (unsigned cap = rt_pci_read(slot, PCI_CAP_PTR, 1) & ~3u, guard = 0; cap && guard < 48;
	     cap = rt_pci_read(slot, cap + 1, 1) & ~3u, guard++)
		if (rt_pci_read(slot, cap, 1) == PCI_CAP_VENDOR &&
		    rt_pci_read(slot, cap + 3, 1) == CAP_NOTIFY)
			return rt_pci_read(slot, cap + 16, 4);
	return 0;
}

/* Reset, features (VERSION_1 and ACCESS_PLATFORM), queue 0 in guest RAM on vector 0. */
static bool setup(volatile uint32_t *table, unsigned msix)
{
	uint32_t hi;
	uint8_t *ring;

	cc8_set(CC_STATUS, 0);
	for (unsigned i = 0; i < 1000 && cc8(CC_STATUS); i++)
		rt_pause();
	cc8_set(CC_STATUS, STATUS_ACK);
	cc8_set(CC_STATUS, STATUS_ACK | STATUS_DRIVER);
	cc32_set(CC_DEVICE_FEATURE_SELECT, 1);
	hi = cc32(CC_DEVICE_FEATURE);
	check((hi & F_HI_VERSION_1) && (hi & F_HI_ACCESS_PLATFORM),
	      "the device offers VERSION_1 and ACCESS_PLATFORM (iommu_platform=on)");
	cc32_set(CC_DRIVER_FEATURE_SELECT, 0);
	cc32_set(CC_DRIVER_FEATURE, 0);
	cc32_set(CC_DRIVER_FEATURE_SELECT, 1);
	cc32_set(CC_DRIVER_FEATURE, hi & (F_HI_VERSION_1 | F_HI_ACCESS_PLATFORM));
	cc8_set(CC_STATUS, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK);
	check(cc8(CC_STATUS) & STATUS_FEATURES_OK, "the device accepts the features");

	/* MSI-X on, vector 0 to CPU 0; no vector for configuration changes */
	rt_pci_write(slot, msix + MSIX_CTRL, 2, MSIX_ENABLE);
	table[0] = 0xfee00000u | rt_cpu_apic_id(0) << 12;
	table[1] = 0;
	table[2] = VEC_MSIX;
	table[3] = 0;
	cc16_set(CC_MSIX_CONFIG, NO_VECTOR);

	cc16_set(CC_QUEUE_SELECT, 0);
	qsize = cc16(CC_QUEUE_SIZE);
	check(qsize && qsize <= QUEUE_MAX, "a queue of a size this driver can hold");
	if (!qsize || qsize > QUEUE_MAX)
		return false;
	ring = rt_alloc(2 * 4096, 4096);
	descs = (volatile struct desc *)ring;
	avail = (volatile uint16_t *)(ring + qsize * 16);
	used = (volatile uint16_t *)(ring + 4096);
	cc64_set(CC_QUEUE_DESC, (uintptr_t)descs);
	cc64_set(CC_QUEUE_DRIVER, (uintptr_t)avail);
	cc64_set(CC_QUEUE_DEVICE, (uintptr_t)used);
	cc16_set(CC_QUEUE_MSIX_VECTOR, 0);
	check(cc16(CC_QUEUE_MSIX_VECTOR) == 0, "the queue takes vector 0");
	notify = (volatile uint16_t *)((uintptr_t)notify +
				       (uintptr_t)cc16(CC_QUEUE_NOTIFY_OFF) * notify_multiplier());
	cc16_set(CC_QUEUE_ENABLE, 1);
	cc8_set(CC_STATUS, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
	return true;
}

int main(void)
{
	unsigned requests = (unsigned)rt_arg_u64("requests", 16), filled = 0, got = 0;
	int s = rt_pci_find(VIRTIO_VENDOR, VIRTIO_RNG_MODERN, 0);
	unsigned msix;
	uint32_t table_reg, pba_reg, c, n;
	volatile uint32_t *table;
	volatile uint64_t *pba;
	uint8_t *buf;
	bool pending = false, delivered = false;

	if (s < 0) {
		rt_printf("ptrng: no modern virtio-rng (1af4:1044) on the PCI bus\n");
		rt_printf("result: program=ptrng found=0 ok=0\n");
		return RT_EXIT_FAIL;
	}
	slot = (unsigned)s;
	msix = rt_pci_find_cap(slot, PCI_CAP_MSIX);
	rt_pci_write(slot, PCI_COMMAND, 2, rt_pci_read(slot, PCI_COMMAND, 2) | 0x6);
	check(find_structures(), "the common and notify structures in a BAR");
	check(msix != 0, "an MSI-X capability");
	if (failed) {
		rt_printf("result: program=ptrng slot=%u found=1 ok=0\n", slot);
		return RT_EXIT_FAIL;
	}
	table_reg = rt_pci_read(slot, msix + 4, 4);
	pba_reg = rt_pci_read(slot, msix + 8, 4);
	table = (volatile uint32_t *)(uintptr_t)(rt_pci_bar(slot, table_reg & 7) +
						 (table_reg & ~7u));
	pba = (volatile uint64_t *)(uintptr_t)(rt_pci_bar(slot, pba_reg & 7) + (pba_reg & ~7u));
	rt_printf("ptrng: virtio-rng in slot %u, common at %p, MSI-X table at %p\n", slot,
		  (void *)common, (void *)table);
	buf = rt_alloc(4096, 4096);
	if (!setup(table, msix)) {
		rt_printf("result: program=ptrng slot=%u found=1 ok=0\n", slot);
		return RT_EXIT_FAIL;
	}

	for (unsigned i = 0; i < requests; i++) {
		bool any = false;

		memset(buf, 0, BUF_LEN);
		c = rt_irq_count(0, VEC_MSIX);
		if (!request(buf, (uint16_t)i))
			continue;
		n = wait_count(c, SECOND);
		got += n - c == 1;
		for (unsigned k = 0; k < BUF_LEN; k++)
			any |= buf[k] != 0;
		filled += any && used_len(i) > 0;
	}
	check(filled == requests, "every request filled");
	check(got == requests, "one MSI-X interrupt per request");

	/* masked: pending, not delivered; unmasked: delivered once */
	table[3] = 1;
	c = rt_irq_count(0, VEC_MSIX);
	check(request(buf, (uint16_t)requests), "a request while the vector is masked");
	check(wait_count(c, 100000000ull) == c, "masked: no interrupt");
	for (unsigned i = 0; i < 1000 && !(pba[0] & 1); i++)
		rt_wait_while(&(uint32_t){ 0 }, 0, 1000000);
	pending = pba[0] & 1;
	check(pending, "masked: the pending bit is set");
	table[3] = 0;
	n = wait_count(c, SECOND);
	delivered = n == c + 1 && !(pba[0] & 1);
	check(delivered, "unmasked: delivered once, pending bit clear");
	cc8_set(CC_STATUS, 0); /* reset: the device lets go of the queue */
	rt_printf("result: program=ptrng slot=%u requests=%u filled=%u msix=%u masked_pending=%d "
		  "unmask_delivered=%d passed=%u failed=%u ok=%d\n",
		  slot, requests, filled, got, pending, delivered, passed, failed, failed == 0);
	return failed ? RT_EXIT_FAIL : RT_EXIT_PASS;
}
