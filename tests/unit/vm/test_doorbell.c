/*
 * The doorbell page (vm_doorbell_io): an 8-byte read of LKS_DB_CALL(nr) performs call nr.
 * PROBE returns LKS_PROBE_VALUE, NOP 0, TIME_NS the host's monotonic clock; with no pvlock
 * channel (vm->lockwatch NULL) the lock calls and unknown numbers return LKS_ENOSYS; calls
 * are counted by number.  Misaligned, narrow or out-of-range reads return LKS_EINVAL (in as
 * many bytes as were read) and count an error; every write counts an error.  Each malformed
 * access is logged, rate-limited, naming the vCPU; the log is read back from a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pvlock/abi.h"
#include "tests/unit/vm/vmtest.h"

#define LOG_BURST 4

struct fixture {
	struct vm *vm;
	int log[2];
	struct vm_vcpu vcpu;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || pipe2(f->log, O_CLOEXEC | O_NONBLOCK))
		return -1;
	f->vm = vmtest_vm_new("db", 8, 4 << 20, f->log[1], LOG_BURST);
	if (!f->vm || vm_doorbell_new(f->vm, &f->vm->doorbell))
		return -1;
	/* Rate-limit window just opened: the burst is ours. */
	f->vm->guest_log_limit.interval_ns = 3600ull * 1000000000ull;
	f->vm->guest_log_limit.window_start = util_now_ns();
	f->vcpu.vm = f->vm;
	f->vcpu.index = 5;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vmtest_vm_free(f->vm);
	close(f->log[0]);
	close(f->log[1]);
	free(f);
	return 0;
}

/* One access; returns the (sign-extended) value read, or 0 for writes. */
static int64_t access_db(struct fixture *f, bool write, uint64_t offset, uint32_t size)
{
	uint8_t data[16];
	struct vm_io io = vmtest_io(write, size, 1, data, &f->vcpu);
	int64_t v = 0;

	memset(data, 0xcc, sizeof(data));
	io.offset = offset;
	vm_doorbell_io(f->vm->doorbell, &io);
	if (write)
		return 0;
	memcpy(&v, data, size < 8 ? size : 8);
	/* Nothing written beyond the access. */
	for (uint32_t i = size; i < sizeof(data); i++)
		assert_int_equal(data[i], 0xcc);
	if (size < 8 && (v >> (8 * size - 1)) & 1)
		v |= (int64_t)(~0ull << (8 * size)); /* sign-extend a narrow result */
	return v;
}

static int64_t call(struct fixture *f, uint32_t nr)
{
	return access_db(f, false, LKS_DB_CALL(nr), 8);
}

static struct vm_doorbell_stats stats(struct fixture *f)
{
	struct vm_doorbell_stats st;

	vm_doorbell_stats(f->vm->doorbell, &st);
	return st;
}

static size_t read_log(struct fixture *f, char *buf, size_t size)
{
	ssize_t n = read(f->log[0], buf, size - 1);

	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return (size_t)n;
}

static void test_calls(void **state)
{
	struct fixture *f = *state;
	struct vm_doorbell_stats st;
	uint64_t before, t;
	char log[256];

	assert_int_equal(call(f, LKS_CALL_PROBE), (int64_t)LKS_PROBE_VALUE);
	assert_int_equal(LKS_PROBE_VALUE, 0x4c4b535000000001ull);
	assert_int_equal(call(f, LKS_CALL_NOP), 0);
	assert_int_equal(call(f, LKS_CALL_NOP), 0);
	before = util_now_ns();
	t = (uint64_t)call(f, LKS_CALL_TIME_NS);
	assert_true(t >= before && t <= util_now_ns());
	assert_int_equal(call(f, LKS_CALL_WAIT), LKS_ENOSYS);
	assert_int_equal(call(f, LKS_CALL_KICK), LKS_ENOSYS);
	assert_int_equal(call(f, LKS_CALL_YIELD_TO), LKS_ENOSYS);
	assert_int_equal(call(f, LKS_CALL_SHARED_SETUP), LKS_ENOSYS);
	assert_int_equal(call(f, LKS_CALL_SWITCH), LKS_ENOSYS);
	assert_int_equal(call(f, LKS_CALL_NR), LKS_ENOSYS);
	assert_int_equal(call(f, 15), LKS_ENOSYS);
	assert_int_equal(call(f, 16), LKS_ENOSYS); /* beyond the counters */
	assert_int_equal(call(f, LKS_DB_CALL_LIMIT / 8 - 1), LKS_ENOSYS);

	st = stats(f);
	assert_int_equal(st.calls[LKS_CALL_PROBE], 1);
	assert_int_equal(st.calls[LKS_CALL_NOP], 2);
	assert_int_equal(st.calls[LKS_CALL_TIME_NS], 1);
	assert_int_equal(st.calls[LKS_CALL_WAIT], 1);
	assert_int_equal(st.calls[LKS_CALL_SWITCH], 1);
	assert_int_equal(st.calls[LKS_CALL_NR], 1);
	assert_int_equal(st.calls[15], 1);
	assert_int_equal(st.calls[9], 0);
	assert_int_equal(st.errors, 0);
	assert_int_equal(read_log(f, log, sizeof(log)), 0); /* well-formed calls log nothing */
}

static void test_malformed_reads(void **state)
{
	struct fixture *f = *state;
	struct vm_doorbell_stats st;
	char log[1024];

	assert_int_equal(access_db(f, false, 4, 8), LKS_EINVAL);		 /* misaligned */
	assert_int_equal(access_db(f, false, 0, 4), LKS_EINVAL);		 /* narrow */
	assert_int_equal(access_db(f, false, 8, 1), LKS_EINVAL);		 /* narrow */
	assert_int_equal(access_db(f, false, 0, 2), LKS_EINVAL);		 /* narrow */
	assert_int_equal(access_db(f, false, LKS_DB_CALL_LIMIT, 8), LKS_EINVAL); /* no call */
	assert_int_equal(access_db(f, false, LKS_DB_KICK, 8), LKS_EINVAL);
	assert_int_equal(access_db(f, false, 0xff8, 8), LKS_EINVAL);
	st = stats(f);
	assert_int_equal(st.errors, 7);
	/* Nothing counted as a call. */
	for (int i = 0; i < 16; i++)
		assert_int_equal(st.calls[i], 0);

	/* The first LOG_BURST are logged, naming the vCPU and the access. */
	read_log(f, log, sizeof(log));
	assert_string_equal(log, "lockstep-vm[test]: warn: vCPU 5: doorbell read 8 bytes at +0x4: "
				 "calls are 8-byte reads of an aligned call register\n"
				 "lockstep-vm[test]: warn: vCPU 5: doorbell read 4 bytes at +0x0: "
				 "calls are 8-byte reads of an aligned call register\n"
				 "lockstep-vm[test]: warn: vCPU 5: doorbell read 1 bytes at +0x8: "
				 "calls are 8-byte reads of an aligned call register\n"
				 "lockstep-vm[test]: warn: vCPU 5: doorbell read 2 bytes at +0x0: "
				 "calls are 8-byte reads of an aligned call register\n");
}

static void test_writes(void **state)
{
	struct fixture *f = *state;
	char log[1024];

	access_db(f, true, LKS_DB_KICK, 4);
	access_db(f, true, LKS_DB_CALL(LKS_CALL_NOP), 8);
	access_db(f, true, 0x3, 1);
	assert_int_equal(stats(f).errors, 3);
	assert_int_equal(stats(f).calls[LKS_CALL_NOP], 0);
	read_log(f, log, sizeof(log));
	assert_string_equal(log, "lockstep-vm[test]: warn: vCPU 5: doorbell write 4 bytes at "
				 "+0x800: kick of a vCPU that does not exist\n"
				 "lockstep-vm[test]: warn: vCPU 5: doorbell write 8 bytes at +0x8: "
				 "not a call register\n"
				 "lockstep-vm[test]: warn: vCPU 5: doorbell write 1 bytes at +0x3: "
				 "not a call register\n");
	/* Calls still work after errors. */
	assert_int_equal(call(f, LKS_CALL_PROBE), (int64_t)LKS_PROBE_VALUE);
}

/* Through the MMIO bus at the documented address. */
static void test_on_the_bus(void **state)
{
	struct fixture *f = *state;
	uint64_t v = 0;
	struct vm_io io = vmtest_io(false, 8, 1, &v, &f->vcpu);

	assert_int_equal(vm_bus_add(&f->vm->mmio, LKS_DOORBELL_GPA_DEFAULT, LKS_DOORBELL_SIZE,
				    vm_doorbell_io, f->vm->doorbell, "doorbell"),
			 0);
	assert_true(vm_bus_dispatch(&f->vm->mmio, 0xfeb00000 + LKS_DB_CALL(LKS_CALL_PROBE), &io));
	assert_int_equal(v, LKS_PROBE_VALUE);
	assert_true(vm_bus_dispatch(&f->vm->mmio, 0xfeb00000 + LKS_DB_CALL(LKS_CALL_NOP), &io));
	assert_int_equal(v, 0);
	assert_false(vm_bus_dispatch(&f->vm->mmio, 0xfeb01000, &io));
	assert_int_equal(stats(f).calls[LKS_CALL_NOP], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_the_bus, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
