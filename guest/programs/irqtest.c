/*
 * irqtest: device interrupts, checked exactly.  `test=` runs one group (default: all that the
 * platform has devices for; a group whose device is missing fails if asked for by name):
 *
 *   ioapic  pc-testdev's IRQ lines (QEMU's -device pc-testdev; lockstep's "pc-testdev"): an
 *           edge pin delivers once per rising edge and loses an edge while masked; a level pin
 *           sets remote IRR until EOI, is delivered again at EOI while still high, and is held
 *           while masked and delivered at unmask
 *   intx    lockstep's testdev on its INTx pin (the interrupt line register): level until the
 *           device is acknowledged, re-asserted after an EOI without acknowledgement, silent
 *           while INTX_DISABLE is set
 *   share   two testdevs whose pins share an IOAPIC input: each is found and acknowledged
 *   msi     MSI to every CPU in turn; the per-vector mask holds an interrupt as pending
 *   msix    MSI-X vectors to every CPU; vector and function masks set PBA bits that unmasking
 *           delivers; the table reads back; accesses past the table change nothing
 *   irqfd   interrupts raised by the device thread: on request, and at a programmed period
 *   bad     bad programming is ignored: reserved vectors, destinations that are no CPU, a
 *           BAR moved to 0, junk in read-only registers
 *   pcitest QEMU's pci-testdev, driven as kvm-unit-tests drives it: three tests per BAR
 *           (memory, ports), each header read back byte by byte, 16 writes counted (16, or
 *           0 where an ioeventfd swallowed them)
 *
 *   result: program=irqtest cpus=N tests=... passed=P failed=F ok=0|1
 *
 * Exit 0 when every check passed.
 */
#include "guest/programs/irqtest.h"

#define SECOND 1000000000ull
#define QUIET_NS 20000000ull /* how long "no interrupt" is watched for */
#define PC_TESTDEV_DATA 0xe0
#define PC_TESTDEV_IRQ 0x2000
#define VEC_EDGE 0xc1
#define VEC_LEVEL 0xe1
#define VEC_INTX 0xe2
#define VEC_MSI 0xc2
#define VEC_MSIX 0xc8 /* 0xc8 + vector */
#define VEC_PROBE 0xe3

struct state {
	unsigned passed, failed;
	bool strict_eoi; /* the LAPIC holds a vector in service until EOI, as hardware does */
};

static void check(struct state *st, bool ok, const char *what)
{
	if (ok) {
		st->passed++;
		return;
	}
	st->failed++;
	rt_printf("irqtest: FAILED: %s\n", what);
}

/* The count of (cpu, vector) moves by exactly `want` within a second, and no further. */
static bool expect_irqs(unsigned cpu, unsigned vector, uint32_t before, uint32_t want)
{
	uint32_t now = before;

	while (now - before < want) {
		uint32_t next = wait_count(cpu, vector, now, SECOND);

		if (next == now)
			break;
		now = next;
	}
	if (now - before == want)
		now = wait_count(cpu, vector, now, QUIET_NS);
	if (now - before != want)
		rt_printf("irqtest: cpu %u vector %#x: %u interrupts, expected %u\n", cpu, vector,
			  now - before, want);
	return now - before == want;
}

/*
 * A level-triggered interrupt whose source is still asserted: at least one delivery.  On real
 * hardware and KVM exactly one until EOI (remote IRR); the development machines' KVM completes
 * an interrupt without the EOI write, so it comes again at once: both pass.
 */
static bool expect_some(unsigned cpu, unsigned vector, uint32_t before)
{
	return wait_count(cpu, vector, before, SECOND) != before;
}

/*
 * The source is quiet and EOI sent: after what was still in flight (a re-assertion the device
 * thread made before the acknowledgement, which a busy host may deliver late), it stays
 * quiet: within two seconds, a whole QUIET_NS passes without an interrupt.
 */
static bool expect_quiet(unsigned cpu, unsigned vector)
{
	uint64_t end = rt_rdtsc() + rt_ns_to_cycles(2 * SECOND);

	while (rt_rdtsc() < end) {
		uint32_t c = rt_irq_count(cpu, vector);

		if (wait_count(cpu, vector, c, QUIET_NS) == c)
			return true;
		rt_irq_eoi(); /* a late delivery of a level vector: complete it */
	}
	return false;
}

/*
 * Whether an interrupt stays in service until EOI: a second self-IPI of a vector whose
 * handler sends no EOI must wait for the EOI.  (The development machines' KVM completes it
 * by itself; there the level checks below accept redelivery.)
 */
static bool lapic_waits_for_eoi(void)
{
	uint32_t c = rt_irq_count(0, VEC_PROBE);
	bool strict;

	rt_send_ipi(0, VEC_PROBE);
	if (wait_count(0, VEC_PROBE, c, SECOND) == c)
		return false;
	rt_send_ipi(0, VEC_PROBE);
	strict = wait_count(0, VEC_PROBE, c + 1, QUIET_NS) == c + 1;
	rt_irq_eoi(); /* the first; the held second comes now */
	if (strict)
		wait_count(0, VEC_PROBE, c + 1, SECOND);
	rt_irq_eoi();
	return strict;
}

static void pc_line(unsigned line, bool level)
{
	rt_pio_out(PC_TESTDEV_IRQ + line, 1, level);
}

static bool pc_testdev_present(void)
{
	rt_pio_out(PC_TESTDEV_DATA, 4, 0x5a17c3e1u);
	return rt_pio_in(PC_TESTDEV_DATA, 4) == 0x5a17c3e1u;
}

static void test_ioapic(struct state *st)
{
	const unsigned edge = 14, level = 15; /* ISA lines pc-testdev drives under QEMU too */
	uint8_t cpu0 = (uint8_t)rt_cpu_apic_id(0);
	uint32_t c;

	/* edge */
	pc_line(edge, 0);
	rt_ioapic_route(edge, VEC_EDGE, cpu0);
	c = rt_irq_count(0, VEC_EDGE);
	pc_line(edge, 1);
	pc_line(edge, 0);
	check(st, expect_irqs(0, VEC_EDGE, c, 1), "ioapic: an edge is one interrupt");
	rt_ioapic_route(edge, VEC_EDGE | RT_IOAPIC_MASKED, cpu0);
	c = rt_irq_count(0, VEC_EDGE);
	pc_line(edge, 1);
	pc_line(edge, 0);
	rt_ioapic_route(edge, VEC_EDGE, cpu0);
	check(st, expect_irqs(0, VEC_EDGE, c, 0), "ioapic: an edge while masked is lost");
	pc_line(edge, 1);
	pc_line(edge, 0);
	check(st, expect_irqs(0, VEC_EDGE, c, 1), "ioapic: edges after unmasking arrive");

	/* level: the handler leaves EOI to us */
	pc_line(level, 0);
	rt_ioapic_route(level, VEC_LEVEL | RT_IOAPIC_LEVEL, cpu0);
	c = rt_irq_count(0, VEC_LEVEL);
	pc_line(level, 1);
	check(st, expect_some(0, VEC_LEVEL, c), "ioapic: level interrupt delivered");
	if (st->strict_eoi) { /* exactly once until EOI, remote IRR set meanwhile */
		check(st, expect_irqs(0, VEC_LEVEL, c, 1), "ioapic: level held until EOI");
		check(st, rt_ioapic_rte(level) & RT_IOAPIC_REMOTE_IRR,
		      "ioapic: remote IRR set until EOI");
	}
	c = rt_irq_count(0, VEC_LEVEL);
	rt_irq_eoi(); /* still high: delivered again */
	check(st, expect_some(0, VEC_LEVEL, c), "ioapic: EOI while high redelivers");
	pc_line(level, 0);
	rt_irq_eoi();
	check(st, expect_quiet(0, VEC_LEVEL), "ioapic: low after EOI stays quiet");
	check(st, !(rt_ioapic_rte(level) & RT_IOAPIC_REMOTE_IRR), "ioapic: EOI clears remote IRR");
	rt_ioapic_route(level, VEC_LEVEL | RT_IOAPIC_LEVEL | RT_IOAPIC_MASKED, cpu0);
	c = rt_irq_count(0, VEC_LEVEL);
	pc_line(level, 1);
	check(st, expect_irqs(0, VEC_LEVEL, c, 0), "ioapic: masked level is held");
	rt_ioapic_route(level, VEC_LEVEL | RT_IOAPIC_LEVEL, cpu0);
	check(st, expect_some(0, VEC_LEVEL, c), "ioapic: held level delivered at unmask");
	pc_line(level, 0);
	rt_irq_eoi();
	check(st, expect_quiet(0, VEC_LEVEL), "ioapic: quiet again");
	rt_ioapic_route(edge, RT_IOAPIC_MASKED, 0);
	rt_ioapic_route(level, RT_IOAPIC_MASKED, 0);
}

/* Acknowledges every raise of the device so far. */
static void td_ack_all(const struct testdev *d)
{
	td_write(d, TD_ACK, td_read(d, TD_RAISED));
}

static void test_intx(struct state *st, const struct testdev *d)
{
	uint8_t cpu0 = (uint8_t)rt_cpu_apic_id(0);
	unsigned cmd = rt_pci_read((unsigned)d->slot, 4, 2);
	uint32_t c;

	check(st, d->irq >= 1 && d->irq < 24, "intx: an interrupt line");
	rt_ioapic_route(d->irq, VEC_INTX | RT_IOAPIC_LEVEL, cpu0);
	c = rt_irq_count(0, VEC_INTX);
	td_write(d, TD_RAISE, 0);
	check(st, expect_some(0, VEC_INTX, c), "intx: raise delivers");
	if (st->strict_eoi)
		check(st, expect_irqs(0, VEC_INTX, c, 1), "intx: one delivery until EOI");
	check(st, td_read(d, TD_STATUS) == 1, "intx: the device asks for service");
	check(st, rt_pci_read((unsigned)d->slot, 6, 2) & 8, "intx: PCI status interrupt bit");
	check(st, td_read(d, TD_MODE) == 1, "intx: the device signals by INTx");
	c = rt_irq_count(0, VEC_INTX);
	rt_irq_eoi(); /* not acknowledged: asserted again after the EOI */
	check(st, expect_some(0, VEC_INTX, c), "intx: EOI without ack redelivers");
	td_ack_all(d);
	check(st, td_read(d, TD_STATUS) == 0, "intx: acknowledged");
	rt_irq_eoi();
	check(st, expect_quiet(0, VEC_INTX), "intx: quiet after ack and EOI");
	/* INTX_DISABLE: nothing until it is cleared */
	rt_pci_write((unsigned)d->slot, 4, 2, cmd | 0x400);
	c = rt_irq_count(0, VEC_INTX);
	td_write(d, TD_RAISE, 0);
	check(st, expect_irqs(0, VEC_INTX, c, 0), "intx: INTX_DISABLE holds it");
	rt_pci_write((unsigned)d->slot, 4, 2, cmd);
	check(st, expect_some(0, VEC_INTX, c), "intx: delivered when enabled");
	td_ack_all(d);
	rt_irq_eoi();
	check(st, expect_quiet(0, VEC_INTX), "intx: quiet at the end");
	rt_ioapic_route(d->irq, RT_IOAPIC_MASKED, 0);
}

static void test_share(struct state *st, const struct testdev *a, const struct testdev *b)
{
	uint8_t cpu0 = (uint8_t)rt_cpu_apic_id(0);
	const struct testdev *devs[2] = { a, b };
	unsigned handled[2] = { 0, 0 }, rounds = 0;
	uint32_t c;

	check(st, a->irq == b->irq, "share: the two devices share an IOAPIC input");
	rt_ioapic_route(a->irq, VEC_INTX | RT_IOAPIC_LEVEL, cpu0);
	/* one device: only it asks for service */
	c = rt_irq_count(0, VEC_INTX);
	td_write(b, TD_RAISE, 0);
	check(st, expect_some(0, VEC_INTX, c), "share: b's interrupt arrives");
	check(st, td_read(a, TD_STATUS) == 0 && td_read(b, TD_STATUS) == 1,
	      "share: only b asks for service");
	td_ack_all(b);
	rt_irq_eoi();
	check(st, expect_quiet(0, VEC_INTX), "share: quiet after b's ack");
	/* both: the handler polls each device until neither asks */
	c = rt_irq_count(0, VEC_INTX);
	td_write(a, TD_RAISE, 0);
	td_write(b, TD_RAISE, 0);
	while (rounds < 100 && (handled[0] == 0 || handled[1] == 0) &&
	       wait_count(0, VEC_INTX, c, SECOND) != c) {
		c = rt_irq_count(0, VEC_INTX);
		rounds++;
		for (int i = 0; i < 2; i++) {
			if (td_read(devs[i], TD_STATUS)) {
				handled[i]++;
				td_ack_all(devs[i]);
			}
		}
		rt_irq_eoi();
	}
	check(st, handled[0] == 1 && handled[1] == 1, "share: both devices found, once each");
	check(st, expect_quiet(0, VEC_INTX), "share: quiet when both are acknowledged");
	rt_ioapic_route(a->irq, RT_IOAPIC_MASKED, 0);
}

static void test_msi(struct state *st, const struct testdev *d)
{
	unsigned s = (unsigned)d->slot;
	uint32_t c;

	check(st, d->msi != 0, "msi: the device has an MSI capability");
	for (unsigned cpu = 0; cpu < rt_cpu_count(); cpu++) {
		td_msi(d, MSI_ADDR(rt_cpu_apic_id(cpu)), VEC_MSI, true);
		c = rt_irq_count(cpu, VEC_MSI);
		td_write(d, TD_RAISE, 0);
		check(st, expect_irqs(cpu, VEC_MSI, c, 1), "msi: delivered to its CPU");
	}
	check(st, td_read(d, TD_MODE) == 2, "msi: the device signals by MSI");
	/* per-vector mask: pending, then delivered at unmask */
	td_msi(d, MSI_ADDR(rt_cpu_apic_id(0)), VEC_MSI, true);
	rt_pci_write(s, d->msi + MSI_MASK, 4, 1);
	c = rt_irq_count(0, VEC_MSI);
	td_write(d, TD_RAISE, 0);
	check(st, expect_irqs(0, VEC_MSI, c, 0), "msi: masked vector held");
	check(st, rt_pci_read(s, d->msi + MSI_PENDING, 4) == 1, "msi: pending bit set");
	rt_pci_write(s, d->msi + MSI_MASK, 4, 0);
	check(st, expect_irqs(0, VEC_MSI, c, 1), "msi: delivered at unmask");
	check(st, rt_pci_read(s, d->msi + MSI_PENDING, 4) == 0, "msi: pending bit clear");
	td_msi(d, 0, 0, false);
}

static void test_msix(struct state *st, const struct testdev *d)
{
	unsigned n = (rt_pci_read((unsigned)d->slot, d->msix + MSIX_CTRL, 2) & 0x7ff) + 1;
	uint32_t c;

	check(st, d->msix != 0 && n == 8, "msix: eight vectors");
	td_msix_ctrl(d, MSIX_ENABLE | MSIX_MASKALL);
	for (unsigned v = 0; v < n; v++)
		td_msix_entry(d, v, MSI_ADDR(rt_cpu_apic_id(v % rt_cpu_count())), VEC_MSIX + v,
			      false);
	td_msix_ctrl(d, MSIX_ENABLE);
	check(st, td_read(d, TD_MODE) == 3, "msix: the device signals by MSI-X");
	check(st, d->table[4 * 5 + 2] == VEC_MSIX + 5 && d->table[4 * 5 + 3] == 0,
	      "msix: the table reads back");
	for (unsigned v = 0; v < n; v++) {
		unsigned cpu = v % rt_cpu_count();

		c = rt_irq_count(cpu, VEC_MSIX + v);
		td_write(d, TD_RAISE, v);
		check(st, expect_irqs(cpu, VEC_MSIX + v, c, 1), "msix: vector to its CPU");
	}
	/* vector mask */
	d->table[4 * 1 + 3] = 1;
	c = rt_irq_count(1 % rt_cpu_count(), VEC_MSIX + 1);
	td_write(d, TD_RAISE, 1);
	td_write(d, TD_RAISE, 1); /* merges with the pending one */
	check(st, expect_irqs(1 % rt_cpu_count(), VEC_MSIX + 1, c, 0), "msix: masked vector held");
	check(st, *d->pba == 2, "msix: PBA bit of the masked vector");
	d->table[4 * 1 + 3] = 0;
	check(st, expect_irqs(1 % rt_cpu_count(), VEC_MSIX + 1, c, 1),
	      "msix: one delivery at unmask");
	check(st, *d->pba == 0, "msix: PBA clear");
	/* function mask */
	td_msix_ctrl(d, MSIX_ENABLE | MSIX_MASKALL);
	c = rt_irq_count(2 % rt_cpu_count(), VEC_MSIX + 2);
	td_write(d, TD_RAISE, 2);
	check(st, expect_irqs(2 % rt_cpu_count(), VEC_MSIX + 2, c, 0), "msix: function mask holds");
	check(st, *d->pba == 4, "msix: PBA bit under the function mask");
	td_msix_ctrl(d, MSIX_ENABLE);
	check(st, expect_irqs(2 % rt_cpu_count(), VEC_MSIX + 2, c, 1),
	      "msix: delivered when the function mask clears");
	/* past the table (the hole before the PBA), and the read-only PBA: no effect */
	d->table[4 * n] = 0xdeadbeef;
	d->table[4 * n + 3] = 0;
	*d->pba = ~0ull;
	check(st, d->table[4 * n] == 0 && *d->pba == 0, "msix: past the table nothing changes");
	c = rt_irq_count(0, VEC_MSIX);
	td_write(d, TD_RAISE, 0);
	check(st, expect_irqs(0, VEC_MSIX, c, 1), "msix: still working");
	td_msix_ctrl(d, 0);
}

static void test_irqfd(struct state *st, const struct testdev *d)
{
	unsigned cpu = rt_cpu_count() - 1;
	uint32_t c, raised;
	uint64_t end;

	td_msix_ctrl(d, MSIX_ENABLE | MSIX_MASKALL);
	td_msix_entry(d, 0, MSI_ADDR(rt_cpu_apic_id(cpu)), VEC_MSIX, false);
	td_msix_ctrl(d, MSIX_ENABLE);
	for (int i = 0; i < 20; i++) {
		c = rt_irq_count(cpu, VEC_MSIX);
		td_write(d, TD_RAISE_DEV, 0);
		if (!expect_irqs(cpu, VEC_MSIX, c, 1)) {
			check(st, false, "irqfd: the device thread's raise arrives");
			break;
		}
	}
	/* 10 raises 2 ms apart from the device thread's timer */
	raised = td_read(d, TD_RAISED);
	c = rt_irq_count(cpu, VEC_MSIX);
	td_write(d, TD_LIMIT, raised + 10);
	td_write(d, TD_PERIOD_US, 2000);
	end = rt_rdtsc() + rt_ns_to_cycles(5 * SECOND);
	while (td_read(d, TD_RAISED) != raised + 10 && rt_rdtsc() < end)
		wait_count(cpu, VEC_MSIX, rt_irq_count(cpu, VEC_MSIX), 2000000);
	wait_count(cpu, VEC_MSIX, c + 10, QUIET_NS);
	check(st, td_read(d, TD_RAISED) == raised + 10, "irqfd: the timer stops at its limit");
	/* an interrupt raised before the last one was taken merges with it: 1..10 */
	check(st, rt_irq_count(cpu, VEC_MSIX) - c >= 1 && rt_irq_count(cpu, VEC_MSIX) - c <= 10,
	      "irqfd: periodic raises delivered");
	td_write(d, TD_PERIOD_US, 0);
	td_write(d, TD_LIMIT, 0);
	td_ack_all(d);
	td_msix_ctrl(d, 0);
}

static void test_bad(struct state *st, const struct testdev *d)
{
	unsigned s = (unsigned)d->slot;
	uint32_t bar0 = rt_pci_read(s, 0x10, 4), id = rt_pci_read(s, 0, 4), c;

	/* a reserved vector and a destination that is no CPU: nothing arrives, nothing breaks */
	td_msi(d, MSI_ADDR(rt_cpu_apic_id(0)), 0x05, true);
	td_write(d, TD_RAISE, 0);
	td_msi(d, MSI_ADDR(200), VEC_MSI, true);
	c = rt_irq_count(0, VEC_MSI);
	td_write(d, TD_RAISE, 0);
	check(st, expect_irqs(0, VEC_MSI, c, 0), "bad: a message to no CPU is dropped");
	td_msi(d, MSI_ADDR(rt_cpu_apic_id(0)), VEC_MSI, true);
	td_write(d, TD_RAISE, 0);
	check(st, expect_irqs(0, VEC_MSI, c, 1), "bad: a good message works again");
	td_msi(d, 0, 0, false);
	/* read-only identity */
	rt_pci_write(s, 0, 4, 0);
	check(st, rt_pci_read(s, 0, 4) == id, "bad: the device id is read-only");
	/* BAR 0 moved to 0: not decoded; its old address reads all-ones */
	rt_pci_write(s, 0x10, 4, 0);
	check(st, d->regs[TD_ID / 4] == 0xffffffffu, "bad: an unassigned BAR decodes nothing");
	d->regs[TD_RAISE / 4] = 0;
	rt_pci_write(s, 0x10, 4, 0xffffffff); /* sizing */
	check(st, rt_pci_read(s, 0x10, 4) == 0xfffff000u, "bad: BAR 0 sizes as 4 KiB");
	rt_pci_write(s, 0x10, 4, bar0);
	check(st, td_read(d, TD_ID) == TESTDEV_ID, "bad: BAR 0 back");
	/* a function that does not exist */
	check(st, rt_pci_read(31, 0, 4) == 0xffffffffu || rt_pci_find(0, 0, 0) < 0,
	      "bad: an empty slot reads all-ones");
}

/* pci-testdev: one BAR's tests, through `rd`/`wr` byte accessors at `base`. */
static unsigned pcitest_bar(struct state *st, uint64_t base, bool io)
{
	unsigned tests = 0;

	for (unsigned nr = 0; nr < 8; nr++) {
		uint8_t b[4];
		uint32_t count, offset, data, width;
		char name[32];

#define RD(off)                                                 \
	(io ? (uint8_t)rt_pio_in((uint16_t)(base + (off)), 1) : \
	      *(volatile uint8_t *)(uintptr_t)(base + (off)))
#define WR(off, v)                                                            \
	do {                                                                  \
		if (io)                                                       \
			rt_pio_out((uint16_t)(base + (off)), 1, (v));         \
		else                                                          \
			*(volatile uint8_t *)(uintptr_t)(base + (off)) = (v); \
	} while (0)
		WR(0, nr);
		for (int k = 0; k < 4; k++)
			b[k] = RD(12 + k);
		count = b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
		width = RD(1);
		if (count != 0 || (width != 1 && width != 2 && width != 4))
			break; /* past the last test */
		data = RD(8);
		offset = RD(4) | RD(5) << 8 | RD(6) << 16 | (uint32_t)RD(7) << 24;
		for (int i = 0; i < 16; i++)
			WR(offset, data);
		for (int k = 0; k < 4; k++)
			b[k] = RD(12 + k);
		count = b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
		for (int k = 0; k < (int)sizeof(name) - 1; k++)
			if (!(name[k] = (char)RD(16 + k)))
				break;
		name[sizeof(name) - 1] = '\0';
		rt_printf("irqtest: pci-testdev %s: %s count=%u\n", io ? "io" : "mem", name, count);
		check(st, count == 0 || count == 16, "pcitest: writes counted");
		tests++;
#undef RD
#undef WR
	}
	return tests;
}

static void test_pcitest(struct state *st, int slot)
{
	uint64_t mem = rt_pci_bar((unsigned)slot, 0), io = rt_pci_bar((unsigned)slot, 1);

	check(st, mem && io && io < 0x10000, "pcitest: a memory BAR and an I/O BAR");
	if (!mem || !io)
		return;
	check(st, pcitest_bar(st, mem, false) == 3, "pcitest: three memory tests");
	check(st, pcitest_bar(st, io, true) == 3, "pcitest: three port tests");
}

static bool wanted(const char *test, const char *name)
{
	return !test || strcmp(test, "all") == 0 || strcmp(test, name) == 0;
}

int main(void)
{
	const char *test = rt_arg("test");
	struct state st = { 0 };
	struct testdev a, b;
	bool have_a = testdev_open(&a, 0), have_b = testdev_open(&b, 1);
	bool have_pc = pc_testdev_present();
	int pcitest = rt_pci_find(0x1b36, 0x0005, 0);
	char tests[160] = "";
	size_t n = 0;

#define RUN(name, cond, call)                                                               \
	do {                                                                                \
		if (!wanted(test, name))                                                    \
			break;                                                              \
		if (!(cond)) {                                                              \
			if (test && strcmp(test, "all")) {                                  \
				rt_printf("irqtest: %s: no device for it\n", name);         \
				st.failed++;                                                \
			}                                                                   \
			break;                                                              \
		}                                                                           \
		call;                                                                       \
		n += rt_snprintf(tests + n, sizeof(tests) - n, "%s%s", n ? "," : "", name); \
	} while (0)

	st.strict_eoi = lapic_waits_for_eoi();
	rt_printf("irqtest: pci config via %s, testdevs %d/%d, pc-testdev %s, %s\n",
		  rt_pci_ecam() ? "ECAM" : "ports", have_a ? a.slot : -1, have_b ? b.slot : -1,
		  have_pc ? "yes" : "no",
		  st.strict_eoi ? "interrupts in service until EOI" :
				  "interrupts completed without EOI: level checks relaxed");
	RUN("ioapic", have_pc, test_ioapic(&st));
	RUN("intx", have_a, test_intx(&st, &a));
	RUN("share", have_a && have_b, test_share(&st, &a, &b));
	RUN("msi", have_a, test_msi(&st, &a));
	RUN("msix", have_a, test_msix(&st, &a));
	RUN("irqfd", have_a, test_irqfd(&st, &a));
	RUN("bad", have_a, test_bad(&st, &a));
	RUN("pcitest", pcitest >= 0, test_pcitest(&st, pcitest));
	rt_printf("result: program=irqtest cpus=%u tests=%s strict_eoi=%d passed=%u failed=%u "
		  "ok=%d\n",
		  rt_cpu_count(), n ? tests : "none", st.strict_eoi, st.passed, st.failed,
		  st.failed == 0 && n > 0);
	return st.failed == 0 && n > 0 ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
