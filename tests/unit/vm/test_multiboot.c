/*
 * vm_multiboot_find and vm_multiboot_load, the accepting side: ELF32, ELF64 and flat
 * (a.out-kludge) images land at their physical addresses with bss zeroed and nothing beyond
 * it touched; the entry point is translated from virtual to physical; the multiboot
 * information in the boot area carries the documented flags, mem_lower/mem_upper, the memory
 * map of docs/guest-platform.md (low RAM only, and RAM above 3 GiB moved to 4 GiB), the
 * command line and the loader name.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/vm/vmtest.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define MBI_ADDR 0x10000u
#define MBI_FLAGS_EXPECTED (0x1u | 0x4u | 0x40u | 0x200u) /* MEM, CMDLINE, MMAP, LOADER_NAME */

struct mbi {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr, drives_length, drives_addr, config_table;
	uint32_t boot_loader_name, apm_table;
};

struct mmap_entry {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

static void mem_init(struct vm_memory *mem, uint64_t size)
{
	assert_int_equal(vm_memory_init(mem, size), 0);
}

static uint8_t *guest(const struct vm_memory *mem, uint64_t gpa, uint64_t len)
{
	uint8_t *p = vm_memory_ptr(mem, gpa, len);

	assert_non_null(p);
	return p;
}

static uint8_t *build_elf(const struct vmtest_elf *spec, size_t *len)
{
	uint8_t *img = NULL;

	assert_int_equal(vmtest_build_elf(spec, &img, len), 0);
	return img;
}

static void load_ok(struct vm_memory *mem, const uint8_t *img, size_t len, const char *cmdline,
		    struct vm_boot_entry *entry)
{
	char err[256] = "";

	if (vm_multiboot_load(mem, img, len, cmdline, entry, err, sizeof(err)))
		fail_msg("load failed: %s", err);
	assert_int_equal(entry->ebx, MBI_ADDR);
}

/* Segment `i` of `spec` holds its pattern bytes, then zeros to memsz. */
static void expect_segment(const struct vm_memory *mem, const struct vmtest_elf *spec, unsigned i)
{
	const struct vmtest_segment *s = &spec->seg[i];
	const uint8_t *p = guest(mem, s->paddr, s->memsz);

	for (uint64_t k = 0; k < s->memsz; k++) {
		uint8_t want = k < s->filesz ? vmtest_pattern(i, k) : 0;

		if (p[k] != want)
			fail_msg("segment %u byte 0x%llx: 0x%02x, expected 0x%02x", i,
				 (unsigned long long)k, p[k], want);
	}
}

static struct mbi read_mbi(const struct vm_memory *mem)
{
	struct mbi mbi;

	memcpy(&mbi, guest(mem, MBI_ADDR, sizeof(mbi)), sizeof(mbi));
	return mbi;
}

static void expect_mmap(const struct vm_memory *mem, const struct mmap_entry *want, unsigned n)
{
	struct mbi mbi = read_mbi(mem);
	struct mmap_entry e;

	assert_int_equal(mbi.mmap_addr, 0x10100);
	assert_int_equal(mbi.mmap_length, n * 24);
	for (unsigned i = 0; i < n; i++) {
		memcpy(&e, guest(mem, mbi.mmap_addr + i * 24, 24), 24);
		assert_int_equal(e.size, 20);
		assert_int_equal(e.addr, want[i].addr);
		assert_int_equal(e.len, want[i].len);
		assert_int_equal(e.type, want[i].type);
	}
}

static void test_elf32_load(void **state)
{
	struct vmtest_elf spec = {
		.entry = 0x100010,
		.nr_segments = 2,
		.seg = { { .paddr = 0x100000,
			   .vaddr = 0x100000,
			   .filesz = 0x1801,
			   .memsz = 0x1801 },
			 { .paddr = 0x200000,
			   .vaddr = 0x200000,
			   .filesz = 0x100,
			   .memsz = 0x5000 } },
	};
	struct vm_boot_entry entry;
	struct vm_memory mem;
	size_t len;
	uint8_t *img = build_elf(&spec, &len);

	mem_init(&mem, 64 * MIB);
	/* Old contents: bss must be zeroed, the byte after each segment left alone. */
	memset(guest(&mem, 0x100000, 0x200000), 0xee, 0x200000);
	load_ok(&mem, img, len, "console=ttyS0 x=1", &entry);
	expect_segment(&mem, &spec, 0);
	expect_segment(&mem, &spec, 1);
	assert_int_equal(*guest(&mem, 0x101801, 1), 0xee);
	assert_int_equal(*guest(&mem, 0x205000, 1), 0xee);
	assert_int_equal(*guest(&mem, 0x1fffff, 1), 0xee);
	assert_int_equal(entry.entry, 0x100010);
	assert_int_equal(entry.image_start, 0x100000);
	assert_int_equal(entry.image_end, 0x205000);
	vm_memory_fini(&mem);
	free(img);
}

/* vaddr != paddr: the entry is translated through the segment that contains it. */
static void test_elf64_entry_translation(void **state)
{
	struct vmtest_elf spec = {
		.is64 = true,
		.entry = 0xffffffff80201234ull,
		.nr_segments = 2,
		.seg = { { .paddr = 0x100000,
			   .vaddr = 0xffffffff80100000ull,
			   .filesz = 0x40,
			   .memsz = 0x1000 },
			 { .paddr = 0x300000,
			   .vaddr = 0xffffffff80200000ull,
			   .filesz = 0x2000,
			   .memsz = 0x2000 } },
	};
	struct vm_boot_entry entry;
	struct vm_memory mem;
	size_t len;
	uint8_t *img = build_elf(&spec, &len);

	mem_init(&mem, 16 * MIB);
	load_ok(&mem, img, len, NULL, &entry);
	assert_int_equal(entry.entry, 0x301234);
	assert_int_equal(entry.image_start, 0x100000);
	assert_int_equal(entry.image_end, 0x302000);
	expect_segment(&mem, &spec, 0);
	expect_segment(&mem, &spec, 1);
	/* No command line: an empty string, still flagged. */
	assert_string_equal((char *)guest(&mem, read_mbi(&mem).cmdline, 1), "");
	assert_int_equal(read_mbi(&mem).flags, MBI_FLAGS_EXPECTED);

	/* The entry at the very last byte of a segment. */
	free(img);
	spec.entry = 0xffffffff80100fffull;
	img = build_elf(&spec, &len);
	load_ok(&mem, img, len, NULL, &entry);
	assert_int_equal(entry.entry, 0x100fff);
	vm_memory_fini(&mem);
	free(img);
}

static void test_mbi_small_vm(void **state)
{
	static const struct mmap_entry want[] = {
		{ 20, 0x0, 0x9fc00, 1 },	   { 20, 0x9fc00, 0x400, 2 },
		{ 20, 0xe0000, 0x20000, 2 },	   { 20, 0x100000, 64 * MIB - 0x100000, 1 },
		{ 20, 0xe0000000, 0x10000000, 2 }, /* the ECAM window */
	};
	struct vmtest_elf spec = {
		.entry = 0x100000,
		.nr_segments = 1,
		.seg = { { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } }
	};
	struct vm_boot_entry entry;
	struct vm_memory mem;
	struct mbi mbi;
	size_t len;
	uint8_t *img = build_elf(&spec, &len);

	mem_init(&mem, 64 * MIB);
	load_ok(&mem, img, len, "iterations=10 mode=\"a b\"", &entry);
	mbi = read_mbi(&mem);
	assert_int_equal(mbi.flags, MBI_FLAGS_EXPECTED);
	assert_int_equal(mbi.mem_lower, 639);
	assert_int_equal(mbi.mem_upper, 64512);
	assert_int_equal(mbi.boot_device, 0);
	assert_int_equal(mbi.mods_count, 0);
	assert_int_equal(mbi.mods_addr, 0);
	assert_int_equal(mbi.drives_length, 0);
	assert_int_equal(mbi.config_table, 0);
	assert_int_equal(mbi.apm_table, 0);
	assert_true(mbi.cmdline >= 0x10000 && mbi.cmdline < 0x20000);
	assert_true(mbi.boot_loader_name >= 0x10000 && mbi.boot_loader_name < 0x20000);
	assert_string_equal((char *)guest(&mem, mbi.cmdline, 25), "iterations=10 mode=\"a b\"");
	assert_string_equal((char *)guest(&mem, mbi.boot_loader_name, 9), "lockstep");
	expect_mmap(&mem, want, 5);
	vm_memory_fini(&mem);
	free(img);
}

/* 4 GiB of RAM: 3 GiB below the hole, 1 GiB at 4 GiB; a segment may load up there. */
static void test_mbi_large_vm(void **state)
{
	static const struct mmap_entry want[] = {
		{ 20, 0x0, 0x9fc00, 1 },	   { 20, 0x9fc00, 0x400, 2 },
		{ 20, 0xe0000, 0x20000, 2 },	   { 20, 0x100000, 3 * GIB - 0x100000, 1 },
		{ 20, 0xe0000000, 0x10000000, 2 }, { 20, 4 * GIB, 1 * GIB, 1 },
	};
	struct vmtest_elf spec = {
		.is64 = true,
		.entry = 0x100000,
		.nr_segments = 2,
		.seg = { { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 0x10, .memsz = 0x10 },
			 { .paddr = 5 * GIB - 0x2000,
			   .vaddr = 5 * GIB - 0x2000,
			   .filesz = 0x1000,
			   .memsz = 0x2000 } },
	};
	struct vm_boot_entry entry;
	struct vm_memory mem;
	struct mbi mbi;
	size_t len;
	uint8_t *img = build_elf(&spec, &len);

	mem_init(&mem, 4 * GIB);
	memset(guest(&mem, 5 * GIB - 0x2000, 0x2000), 0xee, 0x2000);
	load_ok(&mem, img, len, "x", &entry);
	expect_segment(&mem, &spec, 1);
	assert_int_equal(entry.image_end, 5 * GIB);
	mbi = read_mbi(&mem);
	assert_int_equal(mbi.mem_lower, 639);
	assert_int_equal(mbi.mem_upper, (3 * GIB - MIB) >> 10);
	expect_mmap(&mem, want, 6);
	vm_memory_fini(&mem);

	/* Exactly 3 GiB: no RAM above the hole, no sixth entry. */
	mem_init(&mem, 3 * GIB);
	spec.nr_segments = 1;
	free(img);
	img = build_elf(&spec, &len);
	load_ok(&mem, img, len, "x", &entry);
	expect_mmap(&mem, want, 5);
	assert_int_equal(read_mbi(&mem).mem_upper, (3 * GIB - MIB) >> 10);
	vm_memory_fini(&mem);
	free(img);
}

static void test_cmdline_longest(void **state)
{
	struct vmtest_elf spec = {
		.entry = 0x100000,
		.nr_segments = 1,
		.seg = { { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } }
	};
	char cmdline[4096];
	struct vm_boot_entry entry;
	struct vm_memory mem;
	size_t len;
	uint8_t *img = build_elf(&spec, &len);

	for (size_t i = 0; i < sizeof(cmdline) - 1; i++)
		cmdline[i] = (char)('a' + i % 26);
	cmdline[sizeof(cmdline) - 1] = '\0';
	mem_init(&mem, 4 * MIB);
	load_ok(&mem, img, len, cmdline, &entry);
	assert_string_equal((char *)guest(&mem, read_mbi(&mem).cmdline, 4096), cmdline);
	vm_memory_fini(&mem);
	free(img);
}

static void test_flat_load(void **state)
{
	struct vmtest_flat spec = {
		.load_addr = 0x100000,
		.header_offset = 0x20,
		.file_size = 0x1000,
		.bss_end_addr = 0x102000,
		.entry_addr = 0x100040,
	};
	struct vm_boot_entry entry;
	struct vm_memory mem;
	uint8_t *img, *p;
	size_t len;

	assert_int_equal(vmtest_build_flat(&spec, &img, &len), 0);
	mem_init(&mem, 8 * MIB);
	memset(guest(&mem, 0x100000, 0x3000), 0xee, 0x3000);
	load_ok(&mem, img, len, "flat", &entry);
	assert_int_equal(entry.entry, 0x100040);
	assert_int_equal(entry.image_start, 0x100000);
	assert_int_equal(entry.image_end, 0x102000);
	/* The whole file (header included) at load_addr, bss zeroed, the next byte untouched. */
	p = guest(&mem, 0x100000, 0x3000);
	assert_memory_equal(p, img, 0x1000);
	for (size_t k = 0x1000; k < 0x2000; k++)
		assert_int_equal(p[k], 0);
	assert_int_equal(p[0x2000], 0xee);
	assert_int_equal(read_mbi(&mem).flags, MBI_FLAGS_EXPECTED);
	free(img);

	/* A prefix before load_addr's first byte, load_end_addr short of the file, no bss. */
	spec = (struct vmtest_flat){ .load_addr = 0x200000,
				     .header_offset = 0x100,
				     .header_addr = 0x200080,
				     .file_size = 0x1000,
				     .load_end_addr = 0x200800,
				     .entry_addr = 0x2007ff };
	assert_int_equal(vmtest_build_flat(&spec, &img, &len), 0);
	memset(guest(&mem, 0x200000, 0x1000), 0xee, 0x1000);
	load_ok(&mem, img, len, "flat", &entry);
	p = guest(&mem, 0x200000, 0x1000);
	assert_memory_equal(p, img + 0x80, 0x800);
	assert_int_equal(p[0x800], 0xee);
	assert_int_equal(entry.entry, 0x2007ff);
	assert_int_equal(entry.image_end, 0x200800);
	vm_memory_fini(&mem);
	free(img);
}

/* A flat image whose bss reaches the very end of RAM. */
static void test_flat_to_end_of_ram(void **state)
{
	struct vmtest_flat spec = { .load_addr = 4 * MIB - 0x1000,
				    .file_size = 0x800,
				    .load_end_addr = 4 * MIB - 0x800,
				    .bss_end_addr = 4 * MIB,
				    .entry_addr = 4 * MIB - 0x1000 };
	struct vm_boot_entry entry;
	struct vm_memory mem;
	uint8_t *img;
	size_t len;

	assert_int_equal(vmtest_build_flat(&spec, &img, &len), 0);
	mem_init(&mem, 4 * MIB);
	load_ok(&mem, img, len, NULL, &entry);
	assert_int_equal(entry.image_end, 4 * MIB);
	free(img);

	/* And one that ends exactly at the end of RAM with no bss. */
	spec.bss_end_addr = 0;
	spec.load_end_addr = 0;
	spec.file_size = 0x1000;
	assert_int_equal(vmtest_build_flat(&spec, &img, &len), 0);
	load_ok(&mem, img, len, NULL, &entry);
	assert_memory_equal(guest(&mem, 4 * MIB - 0x1000, 0x1000), img, 0x1000);
	vm_memory_fini(&mem);
	free(img);
}

static void test_find(void **state)
{
	struct vm_multiboot_header hdr;
	uint8_t img[8192 + 64];

	memset(img, 0, sizeof(img));
	assert_int_equal(vm_multiboot_find(img, sizeof(img), &hdr), -ENOENT);
	assert_int_equal(vm_multiboot_find(img, 0, &hdr), -ENOENT);

	/* The last place a header fits in the first 8 KiB. */
	vmtest_mb_header(img + 8180, 0x3);
	assert_int_equal(vm_multiboot_find(img, sizeof(img), &hdr), 0);
	assert_int_equal(hdr.offset, 8180);
	assert_int_equal(hdr.flags, 0x3);
	assert_int_equal(vm_multiboot_find(img, 8191, &hdr), -ENOENT); /* cut */
	memset(img + 8180, 0, 12);
	vmtest_mb_header(img + 8184, 0x3);
	assert_int_equal(vm_multiboot_find(img, sizeof(img), &hdr), -ENOENT);
	memset(img + 8184, 0, 12);

	/* Not on a 4-byte boundary: not a header. */
	vmtest_mb_header(img + 0x42, 0);
	assert_int_equal(vm_multiboot_find(img, sizeof(img), &hdr), -ENOENT);

	/* A bad checksum is skipped; a later good header is found. */
	vmtest_mb_header(img + 0x100, 0);
	img[0x108] ^= 1;
	vmtest_mb_header(img + 0x200, 0x10002);
	memset(img + 0x20c, 0x11, 20);
	assert_int_equal(vm_multiboot_find(img, sizeof(img), &hdr), 0);
	assert_int_equal(hdr.offset, 0x200);
	assert_int_equal(hdr.flags, 0x10002);
	assert_int_equal(hdr.header_addr, 0x11111111);
	assert_int_equal(hdr.entry_addr, 0x11111111);
	/* The address fields of an a.out-kludge header must be in the image. */
	assert_int_equal(vm_multiboot_find(img, 0x200 + 31, &hdr), -ENOENT);
	assert_int_equal(vm_multiboot_find(img, 0x200 + 32, &hdr), 0);
}

/* Flag bits 16-31 are optional: the loader ignores those it does not know. */
static void test_optional_flags(void **state)
{
	struct vmtest_elf spec = {
		.entry = 0x100000,
		.nr_segments = 1,
		.mb_flags = 0x7 | (1u << 17) | (1u << 31),
		.seg = { { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } }
	};
	struct vm_boot_entry entry;
	struct vm_memory mem;
	size_t len;
	uint8_t *img = build_elf(&spec, &len);

	mem_init(&mem, 4 * MIB);
	load_ok(&mem, img, len, NULL, &entry);
	assert_int_equal(entry.entry, 0x100000);
	vm_memory_fini(&mem);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf32_load),
		cmocka_unit_test(test_elf64_entry_translation),
		cmocka_unit_test(test_mbi_small_vm),
		cmocka_unit_test(test_mbi_large_vm),
		cmocka_unit_test(test_cmdline_longest),
		cmocka_unit_test(test_flat_load),
		cmocka_unit_test(test_flat_to_end_of_ram),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_optional_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
