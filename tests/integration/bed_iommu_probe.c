/*
 * lockstep's iommu/ module against a real (emulated) IOMMU and QEMU's edu device, inside the
 * test bed's L1 (bed_passthrough.py runs it): the back end chosen (iommufd where the kernel
 * has it, the type1 container otherwise, and why), the group and device opened, BAR 0 mmapped,
 * buffers mapped at IOVAs that are not their physical addresses, an edu DMA round trip through
 * them, DMA to an unmapped IOVA, into a read-only mapping and after an unmap blocked, the
 * faults the kernel logged for it (parsed by host/), edu's MSI through VFIO_DEVICE_SET_IRQS to
 * an eventfd.  With --rates it also times DMA round trips and MSI deliveries (L1 userspace,
 * the yardstick for the guest's figures); with --sizes, the time to map guest-RAM-sized
 * regions (64 MiB ... 2 GiB) and to unmap them.
 *
 * usage: bed_iommu_probe BDF [--rates N] [--sizes]
 * Prints key=value lines; exits 0 when every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "host/host.h"
#include "iommu/iommu.h"
#include "util/util.h"

#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_BUFFER 0x40000u
#define LEN 2048u
#define BUF (1u << 20)
/* IOVAs below edu's 28-bit DMA mask, none of them where the buffers really are */
#define IOVA_A 0x100000ull
#define IOVA_B 0x200000ull
#define IOVA_RO 0x300000ull
#define IOVA_NONE 0x400000ull

static unsigned failed;
static volatile uint32_t *bar0;

static void expect(bool ok, const char *what)
{
	printf("%s=%s\n", what, ok ? "ok" : "FAILED");
	failed += !ok;
}

static bool dma(uint64_t src, uint64_t dst, bool to_ram)
{
	uint64_t end = util_now_ns() + 5000000000ull;

	bar0[EDU_DMA_SRC / 4] = (uint32_t)src;
	bar0[EDU_DMA_DST / 4] = (uint32_t)dst;
	bar0[EDU_DMA_COUNT / 4] = LEN;
	bar0[EDU_DMA_CMD / 4] = 1u | (to_ram ? 2u : 0u);
	while (bar0[EDU_DMA_CMD / 4] & 1u) {
		if (util_now_ns() > end)
			return false;
		usleep(1000);
	}
	return true;
}

static uint8_t *buffer(void)
{
	void *p = mmap(NULL, BUF, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* The physical address of a virtual one (/proc/self/pagemap; root sees frame numbers). */
static uint64_t physical(const void *va)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && pread(fd, &entry, 8, (off_t)((uintptr_t)va / 4096 * 8)) != 8)
		entry = 0;
	if (fd >= 0)
		close(fd);
	return (entry & ((1ull << 55) - 1)) * 4096 + (uintptr_t)va % 4096;
}

/* New kernel log records: faults from `bdf`, their addresses printed. */
static unsigned read_faults(int kmsg, const char *bdf)
{
	char rec[8192];
	unsigned n = 0;

	for (;;) {
		ssize_t len = read(kmsg, rec, sizeof(rec) - 1);
		struct host_iommu_fault f;

		if (len < 0 && (errno == EPIPE || errno == EINTR))
			continue;
		if (len <= 0)
			break;
		rec[len] = '\0';
		if (host_iommu_fault_parse(rec, strcspn(rec, "\n"), &f) &&
		    host_iommu_fault_from(&f, bdf)) {
			printf("fault=%s %s %#llx %s\n", f.source, f.write ? "write" : "read",
			       (unsigned long long)f.address, f.reason);
			n++;
		}
	}
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* DMA round trips and MSIs from L1 userspace, timed. */
static void rates(struct iommu_dev *dev, uint8_t *a, uint8_t *b, unsigned n)
{
	uint64_t start = util_now_ns(), *lat = calloc(n, sizeof(*lat));
	int efd = eventfd(0, EFD_CLOEXEC);
	unsigned bad = 0, got = 0;

	for (unsigned r = 0; r < n; r++) {
		memset(a, (int)(r + 1), LEN);
		memset(b, 0, LEN);
		if (!dma(IOVA_A, EDU_BUFFER, false) || !dma(EDU_BUFFER, IOVA_B, true) ||
		    memcmp(a, b, LEN))
			bad++;
	}
	printf("l1_round_trips_per_s=%.2f\nl1_round_trip_bad=%u\n",
	       n * 1e9 / (double)(util_now_ns() - start), bad);
	if (!lat || efd < 0 || iommu_dev_set_irqs(dev, IOMMU_IRQ_MSI, 0, 1, &efd)) {
		expect(false, "msi_eventfd");
		free(lat);
		return;
	}
	for (unsigned i = 0; i < n * 4; i++) {
		struct pollfd p = { .fd = efd, .events = POLLIN };
		uint64_t t0 = util_now_ns(), v;

		bar0[EDU_IRQ_RAISE / 4] = 1;
		if (poll(&p, 1, 2000) == 1 && read(efd, &v, sizeof(v)) == sizeof(v) && got < n)
			lat[got++] = util_now_ns() - t0;
		bar0[EDU_IRQ_ACK / 4] = 1;
		if (got == n)
			break;
	}
	qsort(lat, got, sizeof(*lat), cmp_u64);
	printf("l1_msi=%u\nl1_msi_lat_us_p50=%.0f\nl1_msi_lat_us_max=%.0f\n", got,
	       got ? lat[got / 2] / 1e3 : 0.0, got ? lat[got - 1] / 1e3 : 0.0);
	expect(got == n, "l1_msi_delivered");
	iommu_dev_set_irqs(dev, IOMMU_IRQ_MSI, 0, 0, NULL);
	close(efd);
	free(lat);
}

/* The time to map (pin and program) guest-RAM-sized regions, and to unmap them. */
static void sizes(struct iommu *io)
{
	for (uint64_t size = 64ull << 20; size <= (2ull << 30); size <<= 1) {
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		uint64_t t0, t1, t2;
		int ret;

		if (p == MAP_FAILED) {
			printf("map_%lluM=mmap-failed\n", (unsigned long long)(size >> 20));
			break;
		}
		madvise(p, size, MADV_HUGEPAGE); /* as lockstep-vm's guest RAM */
		t0 = util_now_ns();
		ret = iommu_dma_map(io, 1ull << 32, p, size, IOMMU_DMA_READ | IOMMU_DMA_WRITE);
		t1 = util_now_ns();
		if (!ret)
			ret = iommu_dma_unmap(io, 1ull << 32, size);
		t2 = util_now_ns();
		printf("map_%lluM=%s map_ms=%.1f unmap_ms=%.1f\n", (unsigned long long)(size >> 20),
		       ret ? strerror(-ret) : "ok", (t1 - t0) / 1e6, (t2 - t1) / 1e6);
		munmap(p, size);
		if (ret)
			break;
	}
}

int main(int argc, char **argv)
{
	struct iommu_options opt = { .root = "" };
	const char *bdf = argc > 1 ? argv[1] : "";
	unsigned rounds = 0, faults;
	struct iommu_region cfg, r0;
	struct iommu_dev_info info;
	struct iommu_dma_stats st;
	enum iommu_backend be;
	struct iommu_dev *dev;
	struct util_log log;
	struct iommu *io;
	bool do_sizes = false;
	uint8_t *a, *b, *ro;
	char why[512];
	uint16_t id[2], cmd;
	void *map;
	int kmsg;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--rates") && i + 1 < argc)
			rounds = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--sizes"))
			do_sizes = true;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	util_log_init(&log, "bed_iommu_probe", UTIL_LOG_INFO, 1);
	opt.log = &log;
	iommu_backend_choose("", IOMMU_PREFER_AUTO, &bdf, 1, &be, why, sizeof(why));
	printf("backend=%s\nbackend_why=%s\n", iommu_backend_name(be), why);
	printf("iommufd_forced=%d\n",
	       iommu_new(&(struct iommu_options){ .root = "", .prefer = IOMMU_PREFER_IOMMUFD },
			 &bdf, 1, &io, why, sizeof(why)));
	printf("iommufd_why=%s\n", why);
	if (iommu_new(&opt, &bdf, 1, &io, why, sizeof(why)) ||
	    iommu_dev_open(io, bdf, &dev, why, sizeof(why))) {
		printf("open=FAILED %s\n", why);
		return 1;
	}
	iommu_dev_info(dev, &info);
	printf("group=%d\nregions=%u\nirqs=%u\ncan_reset=%d\n", iommu_dev_group(dev),
	       info.nr_regions, info.nr_irqs, info.can_reset);
	expect(!iommu_dev_region(dev, IOMMU_REGION_CONFIG, &cfg) &&
		       !iommu_dev_read(dev, &cfg, 0, id, 4) && id[0] == 0x1234 && id[1] == 0x11e8,
	       "config_id");
	iommu_dev_read(dev, &cfg, 4, &cmd, 2);
	cmd |= 0x6; /* memory decoding, bus master */
	iommu_dev_write(dev, &cfg, 4, &cmd, 2);
	expect(!iommu_dev_region(dev, IOMMU_REGION_BAR0, &r0) && r0.nr_areas == 1 &&
		       !iommu_dev_mmap(dev, &r0, 0, r0.size, &map),
	       "bar0_mmap");
	bar0 = map;
	expect(bar0[EDU_ID / 4] == 0x010000edu, "bar0_id");
	bar0[EDU_LIVENESS / 4] = 0x12345678u;
	expect(bar0[EDU_LIVENESS / 4] == ~0x12345678u, "bar0_liveness");

	a = buffer();
	b = buffer();
	ro = buffer();
	expect(!iommu_dma_map(io, IOVA_A, a, BUF, IOMMU_DMA_READ | IOMMU_DMA_WRITE) &&
		       !iommu_dma_map(io, IOVA_B, b, BUF, IOMMU_DMA_READ | IOMMU_DMA_WRITE) &&
		       !iommu_dma_map(io, IOVA_RO, ro, BUF, IOMMU_DMA_READ),
	       "dma_map");
	printf("iova_a=%#llx phys_a=%#llx\n", IOVA_A, (unsigned long long)physical(a));
	expect(physical(a) != IOVA_A, "iova_is_not_physical");
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);

	for (unsigned i = 0; i < LEN; i++)
		a[i] = (uint8_t)(i * 7 + 3);
	expect(dma(IOVA_A, EDU_BUFFER, false) && dma(EDU_BUFFER, IOVA_B, true) &&
		       memcmp(a, b, LEN) == 0,
	       "dma_round_trip");
	/* what the IOMMU must stop */
	dma(EDU_BUFFER, IOVA_NONE, true);
	dma(EDU_BUFFER, IOVA_RO, true);
	expect(ro[0] == 0 && !memcmp(ro, ro + 1, LEN - 1), "dma_read_only_blocked");
	memset(b, 0, LEN);
	expect(!iommu_dma_unmap(io, IOVA_B, BUF), "dma_unmap");
	dma(EDU_BUFFER, IOVA_B, true);
	expect(b[0] == 0 && !memcmp(b, b + 1, LEN - 1), "dma_after_unmap_blocked");
	expect(!iommu_dma_map(io, IOVA_B, b, BUF, IOMMU_DMA_READ | IOMMU_DMA_WRITE), "dma_remap");
	usleep(200000); /* the fault handler's log lines */
	faults = kmsg >= 0 ? read_faults(kmsg, bdf) : 0;
	printf("faults=%u\n", faults);
	if (rounds)
		rates(dev, a, b, rounds);
	if (do_sizes)
		sizes(io);
	iommu_dma_stats(io, &st);
	printf("mappings=%u\nmapped_bytes=%llu\nmaps=%llu\nunmaps=%llu\n", st.mappings,
	       (unsigned long long)st.bytes, (unsigned long long)st.maps,
	       (unsigned long long)st.unmaps);
	munmap(map, r0.size);
	iommu_dev_close(dev);
	iommu_free(io);
	printf("failed=%u\n", failed);
	return failed ? 1 : 0;
}
