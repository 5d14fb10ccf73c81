/*
 * COM1 (vm_uart_io) driven as vCPU exits drive it: every byte written to THR reaches the
 * serial fd (and a console client) exactly once and in order, for single bytes, string I/O
 * (`rep outsb`) and wider accesses (the low byte of each element); LSR reads 0x60
 * (transmitter empty) plus data ready while input waits; string reads fill every element;
 * with DLAB set, offsets 0 and 1 are the divisor latch and produce no output; IER, MCR,
 * FCR/IIR, LCR, MSR and SCR read back as a 16550A's do.  The interrupt identification follows
 * the 16550's priorities and Linux's 8250 probes (THR empty re-asserted by IER, cleared by
 * reading IIR; the loopback test of MSR), and the interrupt line follows it.  Input is taken
 * up to the receive buffer's size; the room eventfd fires once the guest drained half.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/vm/vmtest.h"

enum {
	DATA,
	IER,
	IIR,
	LCR,
	MCR,
	LSR,
	MSR,
	SCR
};

struct fixture {
	struct vm *vm;
	int serial[2]; /* the serial log: write end to the UART, read end for the test */
	struct vm_vcpu vcpu;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || pipe2(f->serial, O_CLOEXEC | O_NONBLOCK))
		return -1;
	f->vm = vmtest_vm_new("uart", 1, 4 << 20, -1, 10);
	if (!f->vm || vm_uart_new(f->vm, &f->serial[1], 1, false, &f->vm->uart))
		return -1;
	f->vcpu.vm = f->vm;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vmtest_vm_free(f->vm);
	close(f->serial[0]);
	close(f->serial[1]);
	free(f);
	return 0;
}

static void out(struct fixture *f, unsigned reg, uint32_t size, uint32_t count, const void *data)
{
	struct vm_io io = vmtest_io(true, size, count, (void *)data, &f->vcpu);

	io.offset = reg;
	vm_uart_io(f->vm->uart, &io);
}

static uint8_t in(struct fixture *f, unsigned reg)
{
	uint8_t v[4] = { 0xcc, 0xcc, 0xcc, 0xcc };
	struct vm_io io = vmtest_io(false, 1, 1, v, &f->vcpu);

	io.offset = reg;
	vm_uart_io(f->vm->uart, &io);
	assert_int_equal(v[1], 0xcc); /* a 1-byte read writes 1 byte */
	return v[0];
}

static void outb(struct fixture *f, unsigned reg, uint8_t v)
{
	out(f, reg, 1, 1, &v);
}

/* The serial output so far must be exactly `want` (`len` bytes). */
static void expect_output(struct fixture *f, const void *want, size_t len)
{
	uint8_t *buf = malloc(len + 16);
	ssize_t n;

	assert_non_null(buf);
	n = read(f->serial[0], buf, len + 16);
	if (n < 0)
		n = 0;
	assert_int_equal(n, len);
	assert_memory_equal(buf, want, len);
	free(buf);
}

static void test_single_bytes(void **state)
{
	struct fixture *f = *state;
	struct vm_console_stats st;

	vm_uart_stats(f->vm->uart, &st);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.first_byte_ns, 0);
	outb(f, DATA, 'h');
	outb(f, DATA, 'i');
	outb(f, DATA, '\0');
	outb(f, DATA, 0xff);
	outb(f, DATA, '\n');
	expect_output(f, "hi\0\xff\n", 5);
	vm_uart_stats(f->vm->uart, &st);
	assert_int_equal(st.bytes, 5);
	assert_true(st.first_byte_ns > 0 && st.first_byte_ns <= util_now_ns());
}

static void test_string_io(void **state)
{
	struct fixture *f = *state;
	static const uint16_t wide[] = { 'a' | 0x4100, 'b' | 0x4200, 'c' };
	static const uint32_t wider[] = { 0x11223344, 0x55667778 };
	uint8_t *big = malloc(2 * 700), want[700];
	uint8_t lsr[3] = { 0, 0, 0 };
	struct vm_io io = vmtest_io(false, 1, 3, lsr, &f->vcpu);

	/* rep outsb: one exit, all bytes. */
	out(f, DATA, 1, 11, "hello world");
	expect_output(f, "hello world", 11);
	/* Wider elements carry one character each, in the low byte. */
	out(f, DATA, 2, 3, wide);
	expect_output(f, "abc", 3);
	out(f, DATA, 4, 2, wider);
	expect_output(f, "\x44\x78", 2);
	/* More 2-byte elements than the UART's bounce buffer holds. */
	assert_non_null(big);
	for (int i = 0; i < 700; i++) {
		big[2 * i] = (uint8_t)(i * 7);
		big[2 * i + 1] = 0xee;
		want[i] = (uint8_t)(i * 7);
	}
	out(f, DATA, 2, 700, big);
	expect_output(f, want, 700);
	free(big);

	/* rep insb of LSR: every element answered. */
	io.offset = LSR;
	vm_uart_io(f->vm->uart, &io);
	assert_int_equal(lsr[0], 0x60);
	assert_int_equal(lsr[1], 0x60);
	assert_int_equal(lsr[2], 0x60);
}

static void test_status_registers(void **state)
{
	struct fixture *f = *state;
	uint8_t wide[4] = { 0xcc, 0xcc, 0xcc, 0xcc };
	struct vm_io io = vmtest_io(false, 2, 1, wide, &f->vcpu);

	assert_int_equal(in(f, LSR), 0x60);
	outb(f, DATA, 'x');
	assert_int_equal(in(f, LSR), 0x60); /* the transmitter is always empty */
	outb(f, LSR, 0x00);		    /* read-only */
	assert_int_equal(in(f, LSR), 0x60);
	assert_int_equal(in(f, MSR), 0xb0); /* DCD, DSR, CTS */
	outb(f, MSR, 0x00);
	assert_int_equal(in(f, MSR), 0xb0);
	assert_int_equal(in(f, DATA), 0); /* no input */
	expect_output(f, "x", 1);

	/* A 2-byte read: the register in the low byte, zero above. */
	io.offset = LSR;
	vm_uart_io(f->vm->uart, &io);
	assert_int_equal(wide[0], 0x60);
	assert_int_equal(wide[1], 0);
	assert_int_equal(wide[2], 0xcc);
}

static void test_divisor_latch(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, LCR), 0x03); /* 8N1 */
	outb(f, LCR, 0x83);		    /* DLAB */
	assert_int_equal(in(f, DATA), 1);   /* 115200 baud */
	assert_int_equal(in(f, IER), 0);
	outb(f, DATA, 0x0c); /* 9600 baud: not output */
	outb(f, IER, 0x00);
	assert_int_equal(in(f, DATA), 0x0c);
	assert_int_equal(in(f, IER), 0x00);
	outb(f, IER, 0x12);
	assert_int_equal(in(f, IER), 0x12);
	assert_int_equal(in(f, LCR), 0x83);
	expect_output(f, "", 0);

	outb(f, LCR, 0x03);
	assert_int_equal(in(f, IER), 0); /* IER itself was not written */
	outb(f, DATA, 'k');
	expect_output(f, "k", 1);
	assert_int_equal(in(f, DATA), 0);
	outb(f, LCR, 0x80);
	assert_int_equal(in(f, DATA), 0x0c); /* the divisor survived */
	assert_int_equal(in(f, IER), 0x12);
}

static bool irq_level(struct fixture *f)
{
	struct vm_console_stats st;

	vm_uart_stats(f->vm->uart, &st);
	return st.irq_level;
}

static void test_control_registers(void **state)
{
	struct fixture *f = *state;

	outb(f, IER, 0xff);
	assert_int_equal(in(f, IER), 0x0f); /* four interrupt enables */
	outb(f, MCR, 0x0f);
	assert_int_equal(in(f, MCR), 0x0f);
	assert_int_equal(in(f, IIR), 0x02); /* THR empty, FIFOs off; now acknowledged */
	assert_int_equal(in(f, IIR), 0x01);
	outb(f, IIR, 0x01); /* FCR: FIFOs on */
	assert_int_equal(in(f, IIR), 0xc1);
	outb(f, IIR, 0x06);
	assert_int_equal(in(f, IIR), 0x01);
	outb(f, MCR, 0xff);
	assert_int_equal(in(f, MCR), 0x1f);
	assert_int_equal(in(f, SCR), 0);
	outb(f, SCR, 0xa5);
	assert_int_equal(in(f, SCR), 0xa5);
	/* A string write to a register: the last element stays. */
	out(f, SCR, 1, 3, "\x01\x02\x03");
	assert_int_equal(in(f, SCR), 0x03);
	expect_output(f, "", 0);
}

/* What Linux's serial8250_do_startup checks: THRE is re-asserted when IER's THRI is set again. */
static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;

	assert_false(irq_level(f));
	outb(f, IER, 0x02);
	assert_true(irq_level(f));
	assert_int_equal(in(f, IIR), 0x02);
	assert_false(irq_level(f));
	assert_int_equal(in(f, IIR), 0x01);
	outb(f, IER, 0x00);
	outb(f, IER, 0x02);
	assert_int_equal(in(f, IIR), 0x02);
	/* Rewriting IER with THRI still set re-asserts nothing. */
	outb(f, IER, 0x02);
	assert_int_equal(in(f, IIR), 0x01);
	/* A byte sent: THR empty again, one more interrupt (a rising edge). */
	outb(f, DATA, 'a');
	assert_true(irq_level(f));
	assert_int_equal(in(f, IIR), 0x02);
	assert_false(irq_level(f));
	/* Without THRI nothing is pending after a write. */
	outb(f, IER, 0x00);
	outb(f, DATA, 'b');
	assert_int_equal(in(f, IIR), 0x01);
	assert_false(irq_level(f));
	expect_output(f, "ab", 2);
}

/* The autoconfig loopback test: MCR = LOOP | OUT2 | RTS gives MSR 0x90 in the top bits, and
 * THR goes to the receiver instead of the output. */
static void test_loopback(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, MSR), 0xb0);
	outb(f, MCR, 0x1a);
	assert_int_equal(in(f, MSR) & 0xf0, 0x90);
	outb(f, MCR, 0x10);
	assert_int_equal(in(f, MSR), 0x09); /* CTS and DCD dropped: their delta bits */
	assert_int_equal(in(f, MSR), 0x00);
	outb(f, DATA, 'L');
	assert_int_equal(in(f, LSR), 0x61);
	assert_int_equal(in(f, DATA), 'L');
	assert_int_equal(in(f, LSR), 0x60);
	outb(f, MCR, 0x0b); /* loopback off: DTR, RTS, OUT2 */
	assert_int_equal(in(f, MSR) & 0xf0, 0xb0);
	outb(f, DATA, 'o');
	expect_output(f, "o", 1);
}

static void test_receive(void **state)
{
	struct fixture *f = *state;
	uint8_t big[5000];
	uint64_t count;

	outb(f, IER, 0x01); /* received data only */
	assert_int_equal(vm_uart_input(f->vm->uart, (const uint8_t *)"ls\r", 3), 3);
	assert_true(irq_level(f));
	assert_int_equal(in(f, IIR), 0x04);
	assert_int_equal(in(f, LSR), 0x61);
	assert_int_equal(in(f, DATA), 'l');
	assert_int_equal(in(f, DATA), 's');
	assert_int_equal(in(f, IIR), 0x04); /* still data: still pending */
	assert_int_equal(in(f, DATA), '\r');
	assert_false(irq_level(f));
	assert_int_equal(in(f, IIR), 0x01);
	assert_int_equal(in(f, LSR), 0x60);
	assert_int_equal(in(f, DATA), 0);

	/* Received data outranks THR empty. */
	outb(f, IER, 0x03);
	vm_uart_input(f->vm->uart, (const uint8_t *)"x", 1);
	assert_int_equal(in(f, IIR), 0x04);
	assert_int_equal(in(f, DATA), 'x');
	assert_int_equal(in(f, IIR), 0x02);

	/* A full buffer takes no more; half drained, the room eventfd fires. */
	memset(big, 'z', sizeof(big));
	assert_int_equal(vm_uart_input(f->vm->uart, big, sizeof(big)), 4096);
	assert_false(vm_uart_has_room(f->vm->uart));
	assert_int_equal(vm_uart_input(f->vm->uart, big, 1), 0);
	assert_int_equal(read(vm_uart_room_fd(f->vm->uart), &count, sizeof(count)), -1);
	for (int i = 0; i < 2047; i++)
		assert_int_equal(in(f, DATA), 'z');
	assert_int_equal(read(vm_uart_room_fd(f->vm->uart), &count, sizeof(count)), -1);
	assert_int_equal(in(f, DATA), 'z');
	assert_int_equal(read(vm_uart_room_fd(f->vm->uart), &count, sizeof(count)), sizeof(count));
	assert_true(vm_uart_has_room(f->vm->uart));
	/* FCR's receiver reset empties it. */
	outb(f, IIR, 0x03);
	assert_int_equal(in(f, LSR), 0x60);
	expect_output(f, "", 0);
}

/* The console client gets the output next to the log; one that stops reading loses output
 * (counted), the log none. */
static void test_client(void **state)
{
	struct fixture *f = *state;
	struct vm_console_stats st;
	char buf[64];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	vm_uart_set_client(f->vm->uart, sv[0]);
	out(f, DATA, 1, 5, "hello");
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	expect_output(f, "hello", 5);
	vm_uart_set_client(f->vm->uart, -1);
	outb(f, DATA, '!');
	assert_int_equal(read(sv[1], buf, sizeof(buf)), -1);
	expect_output(f, "!", 1);
	close(sv[1]);
	vm_uart_set_client(f->vm->uart, sv[0]);
	outb(f, DATA, '?'); /* the client is gone: dropped for it, kept in the log */
	vm_uart_stats(f->vm->uart, &st);
	assert_int_equal(st.client_dropped, 1);
	expect_output(f, "?", 1);
	vm_uart_set_client(f->vm->uart, -1);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_single_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_string_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_divisor_latch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
