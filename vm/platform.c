/*
 * Small platform ports: the debug-exit port (QEMU isa-debug-exit semantics at 0xf4), reset
 * (PCI reset control 0xcf9 and the i8042 pulse-reset command), and the ports firmware and
 * kernels poke for delays (0x80) that need no behaviour.  None of them keeps state beyond the
 * VM's stop request, so they need no lock.
 */
#include <string.h>

#include "vm/vm_internal.h"

#define DEBUG_EXIT_PORT 0xf4
#define RESET_CONTROL_PORT 0xcf9
#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64
#define POST_PORT 0x80

#define RESET_CONTROL_RESET 0x04 /* bit 2: perform the reset */
#define I8042_PULSE_RESET 0xfe

static uint64_t io_value(const struct vm_io *io)
{
	uint64_t v = 0;

	/* The last element of a string write is the one that lands. */
	memcpy(&v, io->data + (size_t)(io->count - 1) * io->size, io->size > 8 ? 8 : io->size);
	return v;
}

static void debug_exit_io(void *opaque, struct vm_io *io)
{
	struct vm *vm = opaque;

	if (!io->write) {
		memset(io->data, 0xff, (size_t)io->size * io->count);
		return;
	}
	vm_request_stop(vm, VM_STOP_GUEST_EXIT, (int)(io_value(io) & 0xff));
}

static void reset_control_io(void *opaque, struct vm_io *io)
{
	struct vm *vm = opaque;

	if (!io->write) {
		memset(io->data, 0, (size_t)io->size * io->count);
		return;
	}
	if (io_value(io) & RESET_CONTROL_RESET)
		vm_request_stop(vm, VM_STOP_GUEST_RESET, 0);
}

/* Reads as 0: for the i8042 status that is "no data, input buffer empty", a quiet controller. */
static void read_zero_io(void *opaque, struct vm_io *io)
{
	if (!io->write)
		memset(io->data, 0, (size_t)io->size * io->count);
}

static void i8042_command_io(void *opaque, struct vm_io *io)
{
	struct vm *vm = opaque;

	if (!io->write)
		read_zero_io(opaque, io);
	else if ((io_value(io) & 0xff) == I8042_PULSE_RESET)
		vm_request_stop(vm, VM_STOP_GUEST_RESET, 0);
}

static void ignore_io(void *opaque, struct vm_io *io)
{
	if (!io->write)
		memset(io->data, 0xff, (size_t)io->size * io->count);
}

int vm_platform_register(struct vm *vm)
{
	int ret;

	ret = vm_bus_add(&vm->pio, DEBUG_EXIT_PORT, 4, debug_exit_io, vm, "debug-exit");
	if (!ret)
		ret = vm_bus_add(&vm->pio, RESET_CONTROL_PORT, 1, reset_control_io, vm, "reset");
	if (!ret)
		ret = vm_bus_add(&vm->pio, I8042_DATA_PORT, 1, read_zero_io, vm, "i8042-data");
	if (!ret)
		ret = vm_bus_add(&vm->pio, I8042_COMMAND_PORT, 1, i8042_command_io, vm, "i8042");
	if (!ret)
		ret = vm_bus_add(&vm->pio, POST_PORT, 1, ignore_io, vm, "post");
	return ret;
}
