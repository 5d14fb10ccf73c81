/*
 * The small platform ports (vm_platform_register), reached through the port-I/O bus as a vCPU
 * exit reaches them: a write of V to the debug-exit port 0xf4 stops the VM with
 * VM_STOP_GUEST_EXIT and code V & 0xff (the last element of a string write); 0xcf9 with bit 2
 * and the i8042 command 0xFE stop it with VM_STOP_GUEST_RESET; other writes do nothing; the
 * first stop reason and code win and the stop eventfd is signalled once; reads return what a
 * PC's idle ports return.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/vm/vmtest.h"

struct fixture {
	struct vm *vm;
	struct vm_vcpu vcpu;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->vm = vmtest_vm_new("platform", 2, 4 << 20, -1, 10);
	if (!f->vm || vm_platform_register(f->vm))
		return -1;
	f->vcpu.vm = f->vm;
	f->vcpu.index = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vmtest_vm_free(f->vm);
	free(f);
	return 0;
}

static void out(struct fixture *f, uint16_t port, uint32_t size, uint32_t count, const void *data)
{
	struct vm_io io = vmtest_io(true, size, count, (void *)data, &f->vcpu);

	assert_true(vm_bus_dispatch(&f->vm->pio, port, &io));
}

static void outb(struct fixture *f, uint16_t port, uint8_t v)
{
	out(f, port, 1, 1, &v);
}

static uint32_t in(struct fixture *f, uint16_t port, uint32_t size)
{
	uint32_t v = 0x5a5a5a5a;
	struct vm_io io = vmtest_io(false, size, 1, &v, &f->vcpu);

	assert_true(vm_bus_dispatch(&f->vm->pio, port, &io));
	return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

/* How many times the stop eventfd was signalled since the last call. */
static uint64_t stop_signals(struct fixture *f)
{
	uint64_t n = 0;

	if (read(f->vm->stop_fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void expect_running(struct fixture *f)
{
	assert_int_equal(atomic_load(&f->vm->stop_reason), VM_STOP_NONE);
	assert_false(vm_stopping(f->vm));
	assert_int_equal(stop_signals(f), 0);
}

static void expect_stopped(struct fixture *f, enum vm_stop_reason reason, int code, int status)
{
	assert_int_equal(atomic_load(&f->vm->stop_reason), reason);
	assert_true(vm_stopping(f->vm));
	assert_int_equal(f->vm->exit_code, code);
	assert_int_equal(vm_exit_status(f->vm), status);
}

static void test_debug_exit(void **state)
{
	struct fixture *f = *state;
	uint16_t v = 0x1234;

	expect_running(f);
	out(f, 0xf4, 2, 1, &v);
	expect_stopped(f, VM_STOP_GUEST_EXIT, 0x34, 0x34);
	assert_int_equal(stop_signals(f), 1);
}

static void test_debug_exit_zero_and_wide(void **state)
{
	struct fixture *f = *state;
	uint32_t v = 0xffffff00;

	/* Any port of the 4-byte range, any width: V & 0xff. */
	out(f, 0xf7, 4, 1, &v);
	expect_stopped(f, VM_STOP_GUEST_EXIT, 0, 0);
	assert_int_equal(stop_signals(f), 1);
}

static void test_debug_exit_string(void **state)
{
	struct fixture *f = *state;

	out(f, 0xf4, 1, 3, "\x01\x02\x03");
	expect_stopped(f, VM_STOP_GUEST_EXIT, 3, 3);
}

static void test_reset_control(void **state)
{
	struct fixture *f = *state;

	outb(f, 0xcf9, 0x02); /* "hard reset" type without the go bit */
	outb(f, 0xcf9, 0x08);
	outb(f, 0xcf9, 0x00);
	expect_running(f);
	outb(f, 0xcf9, 0x06);
	expect_stopped(f, VM_STOP_GUEST_RESET, 0, VM_EXIT_OK);
	assert_int_equal(stop_signals(f), 1);
}

static void test_reset_control_0e(void **state)
{
	struct fixture *f = *state;

	outb(f, 0xcf9, 0x0e);
	expect_stopped(f, VM_STOP_GUEST_RESET, 0, VM_EXIT_OK);
}

static void test_i8042(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, 0x64, 1), 0); /* status: nothing to read, ready */
	assert_int_equal(in(f, 0x60, 1), 0);
	outb(f, 0x64, 0xfd);
	outb(f, 0x64, 0xff);
	outb(f, 0x60, 0xfe); /* the data port is not the command port */
	expect_running(f);
	outb(f, 0x64, 0xfe);
	expect_stopped(f, VM_STOP_GUEST_RESET, 0, VM_EXIT_OK);
	assert_int_equal(stop_signals(f), 1);
}

static void test_first_stop_wins(void **state)
{
	struct fixture *f = *state;

	outb(f, 0xf4, 7);
	outb(f, 0xcf9, 0x06);
	outb(f, 0x64, 0xfe);
	outb(f, 0xf4, 9);
	vm_request_stop(f->vm, VM_STOP_ERROR, VM_EXIT_INTERNAL);
	expect_stopped(f, VM_STOP_GUEST_EXIT, 7, 7);
	assert_int_equal(stop_signals(f), 1);
}

static void test_reads(void **state)
{
	struct fixture *f = *state;
	uint8_t post[4] = { 0 };
	struct vm_io io = vmtest_io(false, 1, 4, post, &f->vcpu);

	assert_int_equal(in(f, 0xf4, 1), 0xff);
	assert_int_equal(in(f, 0xf4, 4), 0xffffffff);
	assert_int_equal(in(f, 0xcf9, 1), 0);
	assert_int_equal(in(f, 0x80, 1), 0xff);
	outb(f, 0x80, 0x12); /* POST codes go nowhere */
	assert_true(vm_bus_dispatch(&f->vm->pio, 0x80, &io));
	assert_memory_equal(post, "\xff\xff\xff\xff", 4);
	expect_running(f);
	/* Ports nobody claimed. */
	assert_false(vm_bus_dispatch(&f->vm->pio, 0xf8, &io));
	assert_false(vm_bus_dispatch(&f->vm->pio, 0xcf8, &io));
	assert_false(vm_bus_dispatch(&f->vm->pio, 0x61, &io));
	/* Registering twice collides. */
	assert_int_equal(vm_platform_register(f->vm), -EEXIST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_debug_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_exit_zero_and_wide, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_exit_string, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_control_0e, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_stop_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
