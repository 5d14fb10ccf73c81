/*
 * The exit-dispatch bus (vm_bus_add, vm_bus_dispatch): overlapping ranges are refused with
 * -EEXIST whichever side they overlap from, adjacent ones are fine, empty and wrapping ranges
 * are -EINVAL, the 33rd range is -ENOSPC; dispatch finds the right device at both ends of
 * every range (ranges added in any order), passes its opaque pointer and the offset from the
 * range's base, and reports a miss without calling anything.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/vm/vmtest.h"

/* What a fake device saw: one record per device. */
struct probe {
	unsigned calls;
	uint64_t offset;
	struct vm_io *io;
};

static void probe_io(void *opaque, struct vm_io *io)
{
	struct probe *p = opaque;

	p->calls++;
	p->offset = io->offset;
	p->io = io;
}

/* Dispatches `addr`; expects device `want` (NULL: a miss) at `offset`. */
static void expect_dispatch(const struct vm_bus *bus, uint64_t addr, struct probe *want,
			    uint64_t offset)
{
	uint8_t data[8] = { 0 };
	struct vm_io io = vmtest_io(false, 1, 1, data, NULL);
	unsigned before = want ? want->calls : 0;

	io.offset = 0xdead;
	if (!want) {
		assert_false(vm_bus_dispatch(bus, addr, &io));
		assert_int_equal(io.offset, 0xdead);
		return;
	}
	assert_true(vm_bus_dispatch(bus, addr, &io));
	assert_int_equal(want->calls, before + 1);
	assert_int_equal(want->offset, offset);
	assert_ptr_equal(want->io, &io);
}

static void test_add_overlaps(void **state)
{
	struct vm_bus bus = { .name = "pio" };
	struct probe a = { 0 }, b = { 0 };

	assert_int_equal(vm_bus_add(&bus, 0x100, 0x10, probe_io, &a, "a"), 0);
	/* Every kind of overlap with [0x100, 0x110). */
	assert_int_equal(vm_bus_add(&bus, 0x100, 0x10, probe_io, &b, "same"), -EEXIST);
	assert_int_equal(vm_bus_add(&bus, 0xf0, 0x11, probe_io, &b, "tail"), -EEXIST);
	assert_int_equal(vm_bus_add(&bus, 0x10f, 0x1, probe_io, &b, "last byte"), -EEXIST);
	assert_int_equal(vm_bus_add(&bus, 0x104, 0x4, probe_io, &b, "inside"), -EEXIST);
	assert_int_equal(vm_bus_add(&bus, 0x0, 0x1000, probe_io, &b, "around"), -EEXIST);
	assert_int_equal(vm_bus_add(&bus, 0x108, 0x100, probe_io, &b, "head"), -EEXIST);
	assert_int_equal(bus.count, 1);
	/* Adjacent on both sides. */
	assert_int_equal(vm_bus_add(&bus, 0xf0, 0x10, probe_io, &b, "below"), 0);
	assert_int_equal(vm_bus_add(&bus, 0x110, 0x10, probe_io, &b, "above"), 0);
	assert_int_equal(bus.count, 3);
	/* Overlaps found against a neighbour that is not the insertion point's. */
	assert_int_equal(vm_bus_add(&bus, 0xef, 0x2, probe_io, &b, "x"), -EEXIST);
	assert_int_equal(vm_bus_add(&bus, 0x11f, 0x2, probe_io, &b, "x"), -EEXIST);
	assert_int_equal(bus.count, 3);
	/* Kept sorted. */
	assert_int_equal(bus.ranges[0].base, 0xf0);
	assert_int_equal(bus.ranges[1].base, 0x100);
	assert_int_equal(bus.ranges[2].base, 0x110);
	assert_string_equal(bus.ranges[1].name, "a");
}

static void test_add_invalid(void **state)
{
	struct vm_bus bus = { .name = "mmio" };
	struct probe a = { 0 };

	assert_int_equal(vm_bus_add(&bus, 0x1000, 0, probe_io, &a, "empty"), -EINVAL);
	assert_int_equal(vm_bus_add(&bus, UINT64_MAX, 2, probe_io, &a, "wraps"), -EINVAL);
	assert_int_equal(vm_bus_add(&bus, UINT64_MAX - 0xf, 0x11, probe_io, &a, "wraps"), -EINVAL);
	assert_int_equal(bus.count, 0);
	/* The top of the address space: base + len == 2^64 wraps to 0 and is refused too. */
	assert_int_equal(vm_bus_add(&bus, UINT64_MAX - 0xf, 0x10, probe_io, &a, "top"), -EINVAL);
	assert_int_equal(vm_bus_add(&bus, UINT64_MAX - 0xf, 0xf, probe_io, &a, "top"), 0);
	expect_dispatch(&bus, UINT64_MAX - 1, &a, 0xe);
	expect_dispatch(&bus, UINT64_MAX, NULL, 0);
}

static void test_dispatch(void **state)
{
	struct vm_bus bus = { .name = "pio" };
	struct probe com1 = { 0 }, fwcfg = { 0 }, port = { 0 };

	expect_dispatch(&bus, 0, NULL, 0); /* empty bus */
	assert_int_equal(vm_bus_add(&bus, 0x510, 12, probe_io, &fwcfg, "fw_cfg"), 0);
	assert_int_equal(vm_bus_add(&bus, 0x3f8, 8, probe_io, &com1, "com1"), 0);
	assert_int_equal(vm_bus_add(&bus, 0xf4, 1, probe_io, &port, "one port"), 0);

	expect_dispatch(&bus, 0x3f8, &com1, 0);
	expect_dispatch(&bus, 0x3fd, &com1, 5);
	expect_dispatch(&bus, 0x3ff, &com1, 7);
	expect_dispatch(&bus, 0x3f7, NULL, 0);
	expect_dispatch(&bus, 0x400, NULL, 0);
	expect_dispatch(&bus, 0x510, &fwcfg, 0);
	expect_dispatch(&bus, 0x511, &fwcfg, 1);
	expect_dispatch(&bus, 0x51b, &fwcfg, 11);
	expect_dispatch(&bus, 0x51c, NULL, 0);
	expect_dispatch(&bus, 0xf4, &port, 0);
	expect_dispatch(&bus, 0xf3, NULL, 0);
	expect_dispatch(&bus, 0xf5, NULL, 0);
	expect_dispatch(&bus, 0, NULL, 0);
	expect_dispatch(&bus, UINT64_MAX, NULL, 0);
	assert_int_equal(com1.calls, 3);
	assert_int_equal(fwcfg.calls, 3);
	assert_int_equal(port.calls, 1);
}

/* 32 ranges, added out of order; each is found at both ends, the 33rd does not fit. */
static void test_capacity(void **state)
{
	struct vm_bus bus = { .name = "mmio" };
	struct probe probes[VM_BUS_MAX + 1];

	memset(probes, 0, sizeof(probes));
	for (unsigned i = 0; i < VM_BUS_MAX; i++) {
		unsigned k = (i * 13) % VM_BUS_MAX; /* a permutation of 0..31 */

		assert_int_equal(
			vm_bus_add(&bus, 0x10000 + k * 0x100, 0x80, probe_io, &probes[k], "dev"),
			0);
	}
	assert_int_equal(bus.count, VM_BUS_MAX);
	assert_int_equal(vm_bus_add(&bus, 0x90000, 0x10, probe_io, &probes[VM_BUS_MAX], "full"),
			 -ENOSPC);
	/* A full bus says so before it looks for overlaps. */
	assert_int_equal(vm_bus_add(&bus, 0x10000, 0x10, probe_io, &probes[0], "dup"), -ENOSPC);
	for (unsigned k = 0; k < VM_BUS_MAX; k++) {
		uint64_t base = 0x10000 + k * 0x100;

		assert_int_equal(bus.ranges[k].base, base);
		expect_dispatch(&bus, base, &probes[k], 0);
		expect_dispatch(&bus, base + 0x7f, &probes[k], 0x7f);
		expect_dispatch(&bus, base + 0x80, NULL, 0);
		expect_dispatch(&bus, base - 1, NULL, 0);
	}
	assert_int_equal(probes[VM_BUS_MAX].calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_overlaps),
		cmocka_unit_test(test_add_invalid),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_capacity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
