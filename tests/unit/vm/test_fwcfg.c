/*
 * fw_cfg (vm_fwcfg_io), as a guest written for QEMU reads it: a 16-bit selector write at
 * offset 0, byte reads at offset 1.  Covers the signature "QEMU", the id (no DMA), RAM size,
 * boot and max CPUs, UUID, command line, the file directory (big-endian count, size and
 * selector, names) and reading each file through its selector; reads past an item's end and
 * of unknown selectors give zeros; a new selection restarts at offset 0; the DMA registers
 * read as zero.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/vm/vmtest.h"

#define GIB (1ull << 30)

struct fixture {
	struct vm *vm;
	struct vm_vcpu vcpu;
};

static int make(void **state, uint32_t vcpus, uint64_t memory, const char *uuid,
		const char *cmdline)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->vm = vmtest_vm_new("fw-test.1", vcpus, memory, -1, 10);
	if (!f->vm)
		return -1;
	if (uuid)
		util_strlcpy(f->vm->cfg.uuid, uuid, sizeof(f->vm->cfg.uuid));
	if (cmdline)
		f->vm->cfg.cmdline = strdup(cmdline);
	if (vm_fwcfg_new(f->vm, &f->vm->fwcfg))
		return -1;
	f->vcpu.vm = f->vm;
	*state = f;
	return 0;
}

static int setup_small(void **state)
{
	return make(state, 4, 64ull << 20, NULL, NULL);
}

static int setup_large(void **state)
{
	return make(state, 254, 4 * GIB, "8f3169e4-9e17-5347-a623-47fff434bb04", "mode=gang n=3");
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vmtest_vm_free(f->vm);
	free(f);
	return 0;
}

static void select_item(struct fixture *f, uint16_t key)
{
	struct vm_io io = vmtest_io(true, 2, 1, &key, &f->vcpu);

	io.offset = 0;
	vm_fwcfg_io(f->vm->fwcfg, &io);
}

/* `len` bytes from the data port, one inb at a time. */
static void read_data(struct fixture *f, void *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		struct vm_io io = vmtest_io(false, 1, 1, (uint8_t *)buf + i, &f->vcpu);

		io.offset = 1;
		vm_fwcfg_io(f->vm->fwcfg, &io);
	}
}

static uint64_t read_le(struct fixture *f, uint16_t key, size_t width)
{
	uint64_t v = 0;

	select_item(f, key);
	read_data(f, &v, width);
	return v;
}

static void test_signature_and_id(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[8];

	select_item(f, 0x0000);
	read_data(f, buf, 8);
	assert_memory_equal(buf, "QEMU\0\0\0\0", 8); /* past the end: zeros */
	assert_int_equal(read_le(f, 0x01, 4), 1);    /* traditional interface, no DMA */

	/* Reselecting starts over. */
	select_item(f, 0x0000);
	read_data(f, buf, 2);
	select_item(f, 0x0000);
	read_data(f, buf, 4);
	assert_memory_equal(buf, "QEMU", 4);
}

static void test_machine_items_small(void **state)
{
	struct fixture *f = *state;
	uint8_t uuid[16], zero[16] = { 0 };
	char cmdline[4];

	assert_int_equal(read_le(f, 0x03, 8), 64ull << 20);
	assert_int_equal(read_le(f, 0x05, 2), 4);
	assert_int_equal(read_le(f, 0x0f, 2), 4);
	select_item(f, 0x02);
	read_data(f, uuid, 16);
	assert_memory_equal(uuid, zero, 16); /* no UUID: zeros */
	assert_int_equal(read_le(f, 0x14, 4), 1);
	select_item(f, 0x15);
	read_data(f, cmdline, 4);
	assert_memory_equal(cmdline, "\0\0\0\0", 4);
}

static void test_machine_items_large(void **state)
{
	static const uint8_t want_uuid[16] = { 0x8f, 0x31, 0x69, 0xe4, 0x9e, 0x17, 0x53, 0x47,
					       0xa6, 0x23, 0x47, 0xff, 0xf4, 0x34, 0xbb, 0x04 };
	struct fixture *f = *state;
	uint8_t uuid[16];
	char cmdline[16];

	assert_int_equal(read_le(f, 0x03, 8), 4 * GIB);
	assert_int_equal(read_le(f, 0x05, 2), 254);
	assert_int_equal(read_le(f, 0x0f, 2), 254);
	select_item(f, 0x02);
	read_data(f, uuid, 16);
	assert_memory_equal(uuid, want_uuid, 16);
	assert_int_equal(read_le(f, 0x14, 4), 14);
	select_item(f, 0x15);
	read_data(f, cmdline, 16);
	assert_memory_equal(cmdline, "mode=gang n=3\0\0", 16);
}

#define DIR_MAX 8 /* entries the tests read */

struct dir_entry {
	uint32_t size;
	uint16_t select;
	char name[57];
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads the file directory; returns the entry count. */
static uint32_t read_dir(struct fixture *f, struct dir_entry *out, uint32_t max)
{
	uint8_t raw[64];
	uint32_t count;

	select_item(f, 0x19);
	read_data(f, raw, 4);
	count = be32(raw);
	assert_true(count <= max);
	for (uint32_t i = 0; i < count; i++) {
		read_data(f, raw, 64);
		out[i].size = be32(raw);
		out[i].select = (uint16_t)(raw[4] << 8 | raw[5]);
		assert_int_equal(raw[6], 0);
		assert_int_equal(raw[7], 0);
		memcpy(out[i].name, raw + 8, 56);
		out[i].name[56] = '\0';
		assert_true(strlen(out[i].name) < 56); /* NUL-terminated in its field */
	}
	/* The directory ends there. */
	read_data(f, raw, 4);
	assert_memory_equal(raw, "\0\0\0\0", 4);
	return count;
}

/* `n` came from the device: it was asserted to fit, but a failed cmocka assertion is not
 * known to the compiler never to return, so the loop is bounded by the array as well. */
static const struct dir_entry *find_file(const struct dir_entry *dir, uint32_t n, const char *name)
{
	for (uint32_t i = 0; i < n && i < DIR_MAX; i++)
		if (strcmp(dir[i].name, name) == 0)
			return &dir[i];
	fail_msg("no file %s in the fw_cfg directory", name);
	return NULL;
}

/* The whole file behind `e`, and zeros after it. */
static void read_file(struct fixture *f, const struct dir_entry *e, uint8_t *buf)
{
	uint8_t after[4];

	select_item(f, e->select);
	read_data(f, buf, e->size);
	read_data(f, after, 4);
	assert_memory_equal(after, "\0\0\0\0", 4);
}

static void expect_e820(const uint8_t *p, uint64_t addr, uint64_t len, uint32_t type)
{
	uint64_t a, l;
	uint32_t t;

	memcpy(&a, p, 8);
	memcpy(&l, p + 8, 8);
	memcpy(&t, p + 16, 4);
	assert_int_equal(a, addr);
	assert_int_equal(l, len);
	assert_int_equal(t, type);
}

static void test_files_small(void **state)
{
	struct fixture *f = *state;
	struct dir_entry dir[DIR_MAX];
	const struct dir_entry *e;
	uint8_t buf[256];
	uint32_t n = read_dir(f, dir, DIR_MAX);

	assert_int_equal(n, 3);
	for (uint32_t i = 0; i < n; i++)
		assert_true(dir[i].select >= 0x20 && dir[i].select < 0x8000);

	e = find_file(dir, n, "etc/e820");
	assert_int_equal(e->size, 40);
	read_file(f, e, buf);
	expect_e820(buf, 0, 0x9fc00, 1);
	expect_e820(buf + 20, 0x100000, (64ull << 20) - 0x100000, 1);

	e = find_file(dir, n, "etc/lockstep/name");
	assert_int_equal(e->size, strlen("fw-test.1"));
	read_file(f, e, buf);
	assert_memory_equal(buf, "fw-test.1", e->size);

	e = find_file(dir, n, "etc/lockstep/version");
	assert_int_equal(e->size, strlen(LOCKSTEP_VERSION));
	read_file(f, e, buf);
	assert_memory_equal(buf, LOCKSTEP_VERSION, e->size);
}

static void test_files_large(void **state)
{
	struct fixture *f = *state;
	struct dir_entry dir[DIR_MAX];
	const struct dir_entry *e;
	uint8_t buf[256];
	uint32_t n = read_dir(f, dir, DIR_MAX);

	e = find_file(dir, n, "etc/e820");
	assert_int_equal(e->size, 60);
	read_file(f, e, buf);
	expect_e820(buf, 0, 0x9fc00, 1);
	expect_e820(buf + 20, 0x100000, 3 * GIB - 0x100000, 1);
	expect_e820(buf + 40, 4 * GIB, 1 * GIB, 1);
}

static void test_access_forms(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[12];
	uint16_t sels[3] = { 0x05, 0x03, 0x00 };
	uint8_t one = 0x05;
	struct vm_io io;

	/* Unknown selectors read as zeros, as do arch-local ones. */
	select_item(f, 0x2f);
	read_data(f, buf, 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	select_item(f, 0x8000);
	read_data(f, buf, 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	select_item(f, 0xffff);
	read_data(f, buf, 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);

	/* rep outsw to the selector: the last one written wins. */
	io = vmtest_io(true, 2, 3, sels, &f->vcpu);
	io.offset = 0;
	vm_fwcfg_io(f->vm->fwcfg, &io);
	/* rep insb from the data port reads consecutive bytes. */
	io = vmtest_io(false, 1, 6, buf, &f->vcpu);
	io.offset = 1;
	vm_fwcfg_io(f->vm->fwcfg, &io);
	assert_memory_equal(buf, "QEMU\0\0", 6);

	/* A 1-byte selector write selects its value. */
	io = vmtest_io(true, 1, 1, &one, &f->vcpu);
	io.offset = 0;
	vm_fwcfg_io(f->vm->fwcfg, &io);
	read_data(f, buf, 2);
	assert_int_equal(buf[0], 4);
	assert_int_equal(buf[1], 0);

	/* The DMA address registers (offsets 4..11) are absent: zeros, writes ignored. */
	memset(buf, 0xcc, sizeof(buf));
	io = vmtest_io(true, 4, 1, buf, &f->vcpu);
	io.offset = 4;
	vm_fwcfg_io(f->vm->fwcfg, &io);
	io = vmtest_io(false, 4, 2, buf, &f->vcpu);
	io.offset = 4;
	vm_fwcfg_io(f->vm->fwcfg, &io);
	assert_memory_equal(buf, "\0\0\0\0\0\0\0\0", 8);
	/* Writes to the data port change nothing either. */
	select_item(f, 0x00);
	io = vmtest_io(true, 1, 1, buf, &f->vcpu);
	io.offset = 1;
	vm_fwcfg_io(f->vm->fwcfg, &io);
	read_data(f, buf, 4);
	assert_memory_equal(buf, "QEMU", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature_and_id, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_machine_items_small, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_machine_items_large, setup_large, teardown),
		cmocka_unit_test_setup_teardown(test_files_small, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_files_large, setup_large, teardown),
		cmocka_unit_test_setup_teardown(test_access_forms, setup_small, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
