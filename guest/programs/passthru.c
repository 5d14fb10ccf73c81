/*
 * passthru: drives QEMU's edu device (PCI 1234:11e8) passed through to this VM, checking
 * exactly what the guest can see of passthrough and DMA remapping:
 *
 *   find     edu on the PCI bus: its ID register through BAR 0, the liveness register, an MSI
 *            capability and an INTx pin
 *   intx     edu's interrupt on its pin (level): delivered once, acknowledged at the device,
 *            quiet after EOI, and delivered again on the next raise (the EOI re-armed it)
 *   dma      `rounds=` round trips RAM -> edu -> RAM of a 2 KiB pattern at guest-physical
 *            addresses (the IOMMU maps them for the device), each checked byte by byte
 *   msi      edu's MSI: `msi=` raises, each delivered exactly once, with its latency (edu's
 *            raise register written -> the handler's TSC); a DMA that raises its completion
 *            interrupt
 *   outside  `outside=ADDR`: a DMA to and from a guest-physical address outside the VM's RAM
 *            (the IOMMU blocks it; the host sees the fault), after which DMA inside RAM still
 *            works; what a blocked read left in edu's buffer is reported
 *   rom      `rom=1`: the expansion ROM the VM was given (a file whose first bytes are 55 AA
 *            and, at 0x10, "lockstep passthrough rom")
 *   hold     `hold=1`: after the result line, wait for the ACPI power button (so the host can
 *            look at the running VM), then power off
 *
 *   result: program=passthru slot=S intx=ok dma_rounds=N dma_bad=B round_trips_per_s=R
 *           msi=N msi_lat_us_p50=... msi_lat_us_p99=... msi_lat_us_max=... dma_irq=ok
 *           outside=done outside_readback=kept|zero|ones|other rom=ok|off ok=0|1
 *
 * Exit 0 when every check passed.  edu (QEMU 7.2): registers are 32- or 64-bit; a DMA takes
 * about 100 ms; its DMA mask is 28 bits; transfers stay at most 2 KiB.
 */
#include "guest/guest.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_ID_VALUE 0x010000edu
#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_START 1u
#define EDU_DMA_TO_RAM 2u
#define EDU_DMA_IRQ 4u
#define EDU_DMA_IRQ_STATUS 0x100u
#define EDU_BUFFER 0x40000u
#define LEN 2048u

#define PCI_COMMAND 0x04
#define PCI_CMD_MEM 0x2u
#define PCI_CMD_MASTER 0x4u
#define PCI_ROM 0x30
#define MSI_CTRL 2
#define MSI_ADDR_LO 4
#define MSI_ADDR_HI 8
#define MSI_64BIT 0x80u

#define SECOND 1000000000ull
#define QUIET_NS 50000000ull
#define VEC_MSI 0xc3
#define VEC_INTX 0xe5
#define MSI_MAX 256

static volatile uint32_t *regs;
static unsigned slot, failed, passed;

static void check(bool ok, const char *what)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	rt_printf("passthru: FAILED: %s\n", what);
}

static uint32_t edu_read(unsigned reg)
{
	return regs[reg / 4];
}

static void edu_write(unsigned reg, uint32_t v)
{
	regs[reg / 4] = v;
}

static uint32_t wait_count(unsigned vector, uint32_t old, uint64_t timeout_ns)
{
	uint64_t end = rt_rdtsc() + rt_ns_to_cycles(timeout_ns);
	const volatile uint32_t *w = rt_irq_count_word(0, vector);

	while (*w == old && rt_rdtsc() < end)
		rt_pause();
	return *w;
}

/* One DMA; false if edu did not finish it within two seconds. */
static bool dma(uint64_t src, uint64_t dst, uint32_t cmd)
{
	uint64_t end = rt_rdtsc() + rt_ns_to_cycles(2 * SECOND);

	/* edu takes a 32-bit write of an address register as the whole address */
	edu_write(EDU_DMA_SRC, (uint32_t)src);
	edu_write(EDU_DMA_DST, (uint32_t)dst);
	edu_write(EDU_DMA_COUNT, LEN);
	edu_write(EDU_DMA_CMD, EDU_DMA_START | cmd);
	while (edu_read(EDU_DMA_CMD) & EDU_DMA_START) {
		if (rt_rdtsc() > end)
			return false;
		rt_wait_while(&(uint32_t){ 0 }, 0, 1000000); /* sleep 1 ms, do not hog the CPU */
	}
	return true;
}

static void test_intx(void)
{
	unsigned line = rt_pci_read(slot, 0x3c, 1), pin = rt_pci_read(slot, 0x3d, 1);
	uint8_t cpu0 = (uint8_t)rt_cpu_apic_id(0);
	uint32_t c, n;

	check(pin == 1 && line >= 1 && line < 24, "intx: pin A and an interrupt line");
	if (pin != 1 || line < 1 || line >= 24)
		return;
	rt_ioapic_route(line, VEC_INTX | RT_IOAPIC_LEVEL, cpu0);
	for (int round = 0; round < 3; round++) {
		c = rt_irq_count(0, VEC_INTX);
		edu_write(EDU_IRQ_RAISE, 1);
		n = wait_count(VEC_INTX, c, 2 * SECOND);
		check(n == c + 1, "intx: one interrupt for a raise");
		check(edu_read(EDU_IRQ_STATUS) == 1, "intx: edu's status says it raised");
		check(rt_pci_read(slot, 0x06, 2) & 0x8,
		      "intx: the status register's interrupt bit");
		edu_write(EDU_IRQ_ACK, 1);
		rt_irq_eoi();
		check(wait_count(VEC_INTX, n, QUIET_NS) == n, "intx: quiet after ack and EOI");
	}
	rt_ioapic_route(line, RT_IOAPIC_MASKED, 0);
}

static void test_dma(uint8_t *a, uint8_t *b, unsigned rounds, unsigned *bad, uint64_t *ns)
{
	uint64_t start = rt_rdtsc();

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < LEN; i++) {
			a[i] = (uint8_t)(i * 7 + 3 + r * 13);
			b[i] = 0;
		}
		if (!dma((uintptr_t)a, EDU_BUFFER, 0) ||
		    !dma(EDU_BUFFER, (uintptr_t)b, EDU_DMA_TO_RAM) || memcmp(a, b, LEN) != 0)
			(*bad)++;
	}
	*ns = rt_cycles_to_ns(rt_rdtsc() - start);
}

static void msi_setup(unsigned msi)
{
	uint16_t ctrl = (uint16_t)rt_pci_read(slot, msi + MSI_CTRL, 2);
	unsigned data = ctrl & MSI_64BIT ? 12 : 8;

	rt_pci_write(slot, msi + MSI_ADDR_LO, 4, 0xfee00000u | rt_cpu_apic_id(0) << 12);
	if (ctrl & MSI_64BIT)
		rt_pci_write(slot, msi + MSI_ADDR_HI, 4, 0);
	rt_pci_write(slot, msi + data, 2, VEC_MSI);
	rt_pci_write(slot, msi + MSI_CTRL, 2, (ctrl & ~0x70u) | 1u);
}

static uint64_t msi_lat[MSI_MAX];

static unsigned test_msi(unsigned raises, struct rt_summary *lat)
{
	unsigned got = 0;

	for (unsigned i = 0; i < raises && i < MSI_MAX; i++) {
		uint32_t c = rt_irq_count(0, VEC_MSI), n;
		uint64_t t0 = rt_rdtsc_ordered();

		edu_write(EDU_IRQ_RAISE, 1);
		n = wait_count(VEC_MSI, c, 2 * SECOND);
		if (n != c)
			msi_lat[got++] = rt_cycles_to_ns(rt_irq_tsc(0, VEC_MSI) - t0);
		edu_write(EDU_IRQ_ACK, 1);
		check(wait_count(VEC_MSI, n, 1000000) == n, "msi: one interrupt per raise");
	}
	check(got == raises, "msi: every raise delivered");
	rt_summarize(msi_lat, got, lat);
	return got;
}

static const char *outside_test(uint8_t *a, uint8_t *b, uint64_t outside)
{
	static const char *const kinds[] = { "kept", "zero", "ones", "other" };
	unsigned kind = 0;

	for (unsigned i = 0; i < LEN; i++) /* a known pattern in edu's buffer */
		a[i] = (uint8_t)(0xa5 ^ i);
	check(dma((uintptr_t)a, EDU_BUFFER, 0), "outside: pattern into edu");
	/* edu writes outside RAM, then reads from there: the IOMMU blocks both */
	check(dma(EDU_BUFFER, outside, EDU_DMA_TO_RAM), "outside: edu finished the write");
	check(dma(outside, EDU_BUFFER, 0), "outside: edu finished the read");
	check(dma(EDU_BUFFER, (uintptr_t)b, EDU_DMA_TO_RAM), "outside: edu's buffer back");
	if (memcmp(a, b, LEN) != 0) {
		bool zero = true, ones = true;

		for (unsigned i = 0; i < LEN; i++) {
			zero &= b[i] == 0;
			ones &= b[i] == 0xff;
		}
		kind = zero ? 1 : ones ? 2 : 3;
	}
	return kinds[kind];
}

static bool test_rom(void)
{
	static const char marker[] = "lockstep passthrough rom";
	uint32_t addr = rt_pci_read(slot, PCI_ROM, 4) & ~0x7ffu, size;
	const volatile uint8_t *rom;
	bool ok = true;

	rt_pci_write(slot, PCI_ROM, 4, 0xfffff800u);
	size = ~(rt_pci_read(slot, PCI_ROM, 4) & ~0x7ffu) + 1;
	rt_pci_write(slot, PCI_ROM, 4, addr | 1);
	rom = (const volatile uint8_t *)(uintptr_t)addr;
	ok = addr && size >= 2048 && rom[0] == 0x55 && rom[1] == 0xaa;
	for (unsigned i = 0; ok && marker[i]; i++)
		ok = rom[0x10 + i] == (uint8_t)marker[i];
	rt_pci_write(slot, PCI_ROM, 4, addr);
	rt_printf("passthru: ROM at %#x, %u bytes, %s\n", addr, size, ok ? "as given" : "WRONG");
	return ok;
}

int main(void)
{
	unsigned rounds = (unsigned)rt_arg_u64("rounds", 8),
		 raises = (unsigned)rt_arg_u64("msi", 32);
	uint64_t outside = rt_arg_u64("outside", 0), dma_ns = 0;
	uint8_t *a = rt_alloc(4096, 4096), *b = rt_alloc(4096, 4096);
	const char *readback = "-";
	struct rt_summary lat = { 0 };
	unsigned bad = 0, msi, got = 0;
	int s = rt_pci_find(EDU_VENDOR, EDU_DEVICE, 0);
	bool rom_ok = true, dma_irq = false;
	uint64_t bar;

	if (s < 0) {
		rt_printf("passthru: no edu device (1234:11e8) on the PCI bus\n");
		rt_printf("result: program=passthru found=0 ok=0\n");
		return RT_EXIT_FAIL;
	}
	slot = (unsigned)s;
	bar = rt_pci_bar(slot, 0);
	regs = (volatile uint32_t *)(uintptr_t)bar;
	rt_pci_write(slot, PCI_COMMAND, 2,
		     rt_pci_read(slot, PCI_COMMAND, 2) | PCI_CMD_MEM | PCI_CMD_MASTER);
	check(bar && bar < 0x100000000ull && edu_read(EDU_ID) == EDU_ID_VALUE, "find: edu's ID");
	edu_write(EDU_LIVENESS, 0x12345678u);
	check(edu_read(EDU_LIVENESS) == ~0x12345678u, "find: the liveness register");
	msi = rt_pci_find_cap(slot, 0x05);
	check(msi != 0, "find: an MSI capability");
	rt_printf("passthru: edu in slot %u, BAR 0 at %#lx, MSI capability at %#x\n", slot,
		  (unsigned long)bar, msi);

	test_intx();
	test_dma(a, b, rounds, &bad, &dma_ns);
	check(bad == 0, "dma: every round trip came back intact");
	if (msi) {
		uint32_t c;

		msi_setup(msi);
		got = test_msi(raises, &lat);
		c = rt_irq_count(0, VEC_MSI);
		check(dma((uintptr_t)a, EDU_BUFFER, EDU_DMA_IRQ), "dma_irq: DMA done");
		dma_irq = wait_count(VEC_MSI, c, 2 * SECOND) == c + 1 &&
			  (edu_read(EDU_IRQ_STATUS) & EDU_DMA_IRQ_STATUS);
		edu_write(EDU_IRQ_ACK, EDU_DMA_IRQ_STATUS);
		check(dma_irq, "dma_irq: the completion interrupt by MSI");
	}
	if (outside) {
		unsigned bad_after = 0;
		uint64_t ns;

		readback = outside_test(a, b, outside);
		test_dma(a, b, 1, &bad_after, &ns);
		check(bad_after == 0, "outside: DMA inside RAM works afterwards");
	}
	if (rt_arg_u64("rom", 0))
		check(rom_ok = test_rom(), "rom: the expansion ROM the VM was given");
	rt_printf("result: program=passthru slot=%u dma_rounds=%u dma_bad=%u "
		  "round_trips_per_s=%lu.%02lu msi=%u msi_lat_us_p50=%lu msi_lat_us_p99=%lu "
		  "msi_lat_us_max=%lu dma_irq=%s outside=%s outside_readback=%s rom=%s "
		  "passed=%u failed=%u ok=%d\n",
		  slot, rounds, bad, (unsigned long)(dma_ns ? rounds * SECOND / dma_ns : 0),
		  (unsigned long)(dma_ns ? rounds * SECOND * 100 / dma_ns % 100 : 0), got,
		  (unsigned long)(lat.median / 1000), (unsigned long)(lat.p99 / 1000),
		  (unsigned long)(lat.max / 1000), dma_irq ? "ok" : "no", outside ? "done" : "-",
		  readback, rt_arg_u64("rom", 0) ? (rom_ok ? "ok" : "bad") : "off", passed, failed,
		  failed == 0);
	if (rt_arg_u64("hold", 0) && rt_power_button_enable()) {
		const volatile uint32_t *sci = rt_power_button_word();

		for (;;) {
			uint32_t seen = *sci;

			if (rt_power_button_pressed())
				break;
			rt_wait_while(sci, seen, 0);
		}
		if (failed)
			return RT_EXIT_FAIL;
		rt_poweroff();
	}
	return failed ? RT_EXIT_FAIL : RT_EXIT_PASS;
}
