/*
 * vm_multiboot_load, the refusing side: every image lockstep cannot boot is refused with
 * -ENOEXEC and a message a person can act on, and the boot area is left unwritten.  Covers a
 * missing, misplaced or corrupt multiboot header, required flags lockstep does not provide,
 * ELF images cut short or of the wrong kind, segments outside RAM or over the boot area or
 * firmware tables, an entry point in no segment or above 4 GiB, inconsistent a.out-kludge
 * address fields, a too-long command line and a VM too small to boot anything.
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

static const char no_header[] =
	"no multiboot header in the first 8 KiB: lockstep boots multiboot v1 images";

/* An ELF32 image with one segment of `size` bytes at `paddr` and the entry at its start. */
static struct vmtest_elf one_segment(uint64_t paddr, uint64_t size)
{
	return (struct vmtest_elf){ .entry = paddr,
				    .nr_segments = 1,
				    .seg = { { .paddr = paddr,
					       .vaddr = paddr,
					       .filesz = size < 0x100 ? size : 0x100,
					       .memsz = size } } };
}

static void expect_refused(uint64_t ram, const uint8_t *img, size_t len, const char *cmdline,
			   const char *want)
{
	static const uint8_t zero[64];
	struct vm_boot_entry entry;
	struct vm_memory mem;
	char err[256] = "";
	int ret;

	assert_int_equal(vm_memory_init(&mem, ram), 0);
	ret = vm_multiboot_load(&mem, img, len, cmdline, &entry, err, sizeof(err));
	if (ret != -ENOEXEC || strcmp(err, want) != 0)
		fail_msg("expected -ENOEXEC \"%s\", got %d \"%s\"", want, ret, err);
	/* No multiboot information was written. */
	assert_memory_equal(vm_memory_ptr(&mem, 0x10000, sizeof(zero)), zero, sizeof(zero));
	vm_memory_fini(&mem);
}

static void expect_elf_refused(uint64_t ram, const struct vmtest_elf *spec, const char *want)
{
	uint8_t *img;
	size_t len;

	assert_int_equal(vmtest_build_elf(spec, &img, &len), 0);
	expect_refused(ram, img, len, NULL, want);
	free(img);
}

static void test_header_missing_or_bad(void **state)
{
	struct vmtest_elf spec = one_segment(0x100000, 0x100);
	uint8_t *img;
	size_t len;

	spec.no_multiboot = true;
	expect_elf_refused(4 * MIB, &spec, no_header);
	spec.no_multiboot = false;
	spec.mb_offset = 8192; /* just past the search window */
	expect_elf_refused(4 * MIB, &spec, no_header);
	spec.mb_offset = 0x1ff8; /* starts inside, ends outside */
	expect_elf_refused(4 * MIB, &spec, no_header);
	spec.mb_offset = 0x102; /* not 4-byte aligned */
	expect_elf_refused(4 * MIB, &spec, no_header);

	spec.mb_offset = 0;
	assert_int_equal(vmtest_build_elf(&spec, &img, &len), 0);
	img[VMTEST_ELF_MB_OFFSET + 8] ^= 0x80; /* checksum */
	expect_refused(4 * MIB, img, len, NULL, no_header);
	free(img);
	expect_refused(4 * MIB, (const uint8_t *)"", 0, NULL, no_header);
}

static void test_required_flags(void **state)
{
	struct vmtest_elf spec = one_segment(0x100000, 0x100);

	spec.mb_flags = 1u << 3;
	expect_elf_refused(4 * MIB, &spec,
			   "the image requires multiboot features 0x8 that lockstep does not "
			   "provide");
	spec.mb_flags = 0x3 | (1u << 15) | (1u << 16);
	expect_elf_refused(4 * MIB, &spec,
			   "the image requires multiboot features 0x8000 that lockstep does not "
			   "provide");
	spec.mb_flags = 0xffff;
	expect_elf_refused(4 * MIB, &spec,
			   "the image requires multiboot features 0xfff8 that lockstep does not "
			   "provide");
}

static void test_truncated_elf(void **state)
{
	struct vmtest_elf spec = one_segment(0x100000, 0x100);
	uint8_t *img;
	size_t len;

	assert_int_equal(vmtest_build_elf(&spec, &img, &len), 0);
	expect_refused(4 * MIB, img, VMTEST_ELF_PHOFF + sizeof(Elf32_Phdr) - 1, NULL,
		       "ELF program headers lie past the end of the file (truncated?)");
	expect_refused(4 * MIB, img, len - 1, NULL,
		       "ELF segment 0 lies past the end of the file (truncated?)");
	expect_refused(4 * MIB, img, VMTEST_ELF_DATA, NULL,
		       "ELF segment 0 lies past the end of the file (truncated?)");
	free(img);
}

static void test_wrong_kind_of_elf(void **state)
{
	struct vmtest_elf spec = one_segment(0x100000, 0x100);
	uint8_t *img;
	size_t len;

	assert_int_equal(vmtest_build_elf(&spec, &img, &len), 0);
	img[EI_CLASS] = 7;
	expect_refused(4 * MIB, img, len, NULL, "unknown ELF class 7");
	img[EI_CLASS] = ELFCLASS32;
	img[EI_DATA] = ELFDATA2MSB;
	expect_refused(4 * MIB, img, len, NULL, "big-endian ELF: x86 images are little-endian");
	img[EI_DATA] = ELFDATA2LSB;
	((Elf32_Ehdr *)img)->e_machine = EM_PPC;
	expect_refused(4 * MIB, img, len, NULL, "ELF machine 20 is not x86");
	((Elf32_Ehdr *)img)->e_machine = EM_386;
	((Elf32_Ehdr *)img)->e_type = ET_CORE;
	expect_refused(4 * MIB, img, len, NULL, "ELF type 4 is not an executable");
	/* A multiboot header in something that is not ELF and not a.out-kludge. */
	img[0] = 'M';
	expect_refused(4 * MIB, img, len, NULL, "not an ELF file");
	free(img);
}

static void test_segment_outside_ram(void **state)
{
	struct vmtest_elf spec = one_segment(0x100000, 64 * MIB);

	expect_elf_refused(64 * MIB, &spec,
			   "the image needs guest memory [0x100000, 0x4100000), outside the VM's "
			   "64 MiB of RAM: give the VM more memory");
	/* One byte past the end of RAM. */
	spec = one_segment(64 * MIB - 0x1000, 0x1001);
	expect_elf_refused(64 * MIB, &spec,
			   "the image needs guest memory [0x3fff000, 0x4000001), outside the "
			   "VM's 64 MiB of RAM: give the VM more memory");
	/* In the 32-bit MMIO hole of a 4 GiB VM, and across its start. */
	spec = one_segment(0xc0000000, 0x100);
	expect_elf_refused(4 * GIB, &spec,
			   "the image needs guest memory [0xc0000000, 0xc0000100), outside the "
			   "VM's 4096 MiB of RAM: give the VM more memory");
	spec = one_segment(0xbffff000, 0x2000);
	expect_elf_refused(4 * GIB, &spec,
			   "the image needs guest memory [0xbffff000, 0xc0001000), outside the "
			   "VM's 4096 MiB of RAM: give the VM more memory");
	/* A second segment that does not fit, after a first one that did. */
	spec = one_segment(0x100000, 0x100);
	spec.nr_segments = 2;
	spec.seg[1] = (struct vmtest_segment){
		.paddr = 0xfffff000, .vaddr = 0xfffff000, .filesz = 0x10, .memsz = 0x1000
	};
	expect_elf_refused(8 * MIB, &spec,
			   "the image needs guest memory [0xfffff000, 0x100000000), outside the "
			   "VM's 8 MiB of RAM: give the VM more memory");
}

static void test_segment_over_boot_area(void **state)
{
	static const char boot[] = "the image overlaps the boot area [0x10000, 0x20000)";
	struct vmtest_elf spec;
	struct vm_boot_entry entry;
	struct vm_memory mem;
	uint8_t *img;
	size_t len;

	spec = one_segment(0x1f000, 0x2000);
	expect_elf_refused(4 * MIB, &spec, boot);
	spec = one_segment(0x8000, 0x8001);
	expect_elf_refused(4 * MIB, &spec, boot);
	spec = one_segment(0x0, 0x100000);
	expect_elf_refused(4 * MIB, &spec, boot);
	spec = one_segment(0x1ffff, 1);
	expect_elf_refused(4 * MIB, &spec, boot);

	/* Right below and right above the boot area is fine. */
	assert_int_equal(vm_memory_init(&mem, 4 * MIB), 0);
	spec = one_segment(0x8000, 0x8000);
	assert_int_equal(vmtest_build_elf(&spec, &img, &len), 0);
	assert_int_equal(vm_multiboot_load(&mem, img, len, NULL, &entry, NULL, 0), 0);
	free(img);
	spec = one_segment(0x20000, 0x7fc00);
	assert_int_equal(vmtest_build_elf(&spec, &img, &len), 0);
	assert_int_equal(vm_multiboot_load(&mem, img, len, NULL, &entry, NULL, 0), 0);
	assert_int_equal(entry.image_end, 0x9fc00);
	free(img);
	vm_memory_fini(&mem);
}

static void test_segment_over_firmware(void **state)
{
	static const char fw[] = "the image overlaps the firmware area [0x9fc00, 0x100000): link "
				 "it at 1 MiB or above";
	struct vmtest_elf spec;

	spec = one_segment(0x9f000, 0xc01);
	expect_elf_refused(4 * MIB, &spec, fw);
	spec = one_segment(0xa0000, 0x100);
	expect_elf_refused(4 * MIB, &spec, fw);
	spec = one_segment(0xe0000, 0x100);
	expect_elf_refused(4 * MIB, &spec, fw);
	spec = one_segment(0xfffff, 0x2);
	expect_elf_refused(4 * MIB, &spec, fw);
}

static void test_entry_point(void **state)
{
	struct vmtest_elf spec = one_segment(0x100000, 0x1000);

	spec.entry = 0x200000;
	expect_elf_refused(4 * MIB, &spec,
			   "the ELF entry point 0x200000 is in no loadable segment");
	spec.entry = 0x101000; /* one past the end */
	expect_elf_refused(4 * MIB, &spec,
			   "the ELF entry point 0x101000 is in no loadable segment");
	spec.entry = 0xfffff;
	expect_elf_refused(4 * MIB, &spec, "the ELF entry point 0xfffff is in no loadable segment");

	/* Loaded above 4 GiB (fine for a segment), entered there (impossible in 32-bit mode). */
	spec = (struct vmtest_elf){
		.is64 = true,
		.entry = 4 * GIB + 0x10,
		.nr_segments = 1,
		.seg = { { .paddr = 4 * GIB, .vaddr = 4 * GIB, .filesz = 0x100, .memsz = 0x100 } },
	};
	expect_elf_refused(4 * GIB, &spec, "the entry point 0x100000010 is above 4 GiB");
	/* A high virtual entry that maps to a high physical address. */
	spec.seg[0].vaddr = 0xffffffff80000000ull;
	spec.entry = 0xffffffff80000020ull;
	expect_elf_refused(4 * GIB, &spec, "the entry point 0x100000020 is above 4 GiB");
}

static void expect_flat_refused(uint64_t ram, const struct vmtest_flat *spec, const char *want)
{
	uint8_t *img;
	size_t len;

	assert_int_equal(vmtest_build_flat(spec, &img, &len), 0);
	expect_refused(ram, img, len, NULL, want);
	free(img);
}

static void test_flat_fields(void **state)
{
	const struct vmtest_flat good = { .load_addr = 0x100000,
					  .header_offset = 0x40,
					  .file_size = 0x1000,
					  .bss_end_addr = 0x102000,
					  .entry_addr = 0x100000 };
	struct vmtest_flat spec;

	spec = good;
	spec.header_addr = 0xfffff; /* below load_addr */
	expect_flat_refused(4 * MIB, &spec, "multiboot header_addr/load_addr are inconsistent");
	spec.header_addr = 0x100041; /* would start loading past the file's first byte */
	expect_flat_refused(4 * MIB, &spec, "multiboot header_addr/load_addr are inconsistent");

	spec = good;
	spec.load_end_addr = 0x101001; /* one byte more than the file holds */
	expect_flat_refused(4 * MIB, &spec,
			    "multiboot load_end_addr lies past the end of the image");
	spec.load_end_addr = 0xfffff; /* below load_addr */
	expect_flat_refused(4 * MIB, &spec,
			    "multiboot load_end_addr lies past the end of the image");

	spec = good;
	spec.load_end_addr = 0x100800;
	spec.bss_end_addr = 0x1007ff;
	expect_flat_refused(4 * MIB, &spec, "multiboot bss_end_addr is below load_end_addr");

	spec = good;
	spec.entry_addr = 0x101000; /* in the bss, not the loaded bytes */
	expect_flat_refused(4 * MIB, &spec,
			    "multiboot entry_addr 0x101000 is outside the loaded image");
	spec.entry_addr = 0xfffff;
	expect_flat_refused(4 * MIB, &spec,
			    "multiboot entry_addr 0xfffff is outside the loaded image");

	spec = good;
	spec.bss_end_addr = 0x400001;
	expect_flat_refused(4 * MIB, &spec,
			    "the image needs guest memory [0x100000, 0x400001), outside the VM's 4 "
			    "MiB of RAM: give the VM more memory");
	spec = good;
	spec.load_addr = 0x1f800;
	spec.bss_end_addr = 0;
	spec.entry_addr = 0x1f800;
	expect_flat_refused(4 * MIB, &spec, "the image overlaps the boot area [0x10000, 0x20000)");
	spec.load_addr = 0xf0000;
	spec.entry_addr = 0xf0000;
	expect_flat_refused(4 * MIB, &spec,
			    "the image overlaps the firmware area [0x9fc00, 0x100000): link it at "
			    "1 MiB or above");
}

static void test_machine_limits(void **state)
{
	struct vmtest_elf spec = one_segment(0x100000, 0x100);
	char *cmdline = malloc(8193);
	uint8_t *img;
	size_t len;

	assert_non_null(cmdline);
	memset(cmdline, 'c', 8192);
	cmdline[8192] = '\0';
	assert_int_equal(vmtest_build_elf(&spec, &img, &len), 0);
	expect_refused(4 * MIB, img, len, cmdline, "the command line is longer than 8191 bytes");
	expect_refused(2 * MIB - 4096, img, len, NULL, "the VM needs at least 2 MiB of RAM");
	free(img);
	free(cmdline);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_missing_or_bad),
		cmocka_unit_test(test_required_flags),
		cmocka_unit_test(test_truncated_elf),
		cmocka_unit_test(test_wrong_kind_of_elf),
		cmocka_unit_test(test_segment_outside_ram),
		cmocka_unit_test(test_segment_over_boot_area),
		cmocka_unit_test(test_segment_over_firmware),
		cmocka_unit_test(test_entry_point),
		cmocka_unit_test(test_flat_fields),
		cmocka_unit_test(test_machine_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
