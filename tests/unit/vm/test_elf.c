/*
 * vm_elf_parse: ELF32 and ELF64 executables built in memory (vmtest_image.c).  A good image
 * yields exactly its PT_LOAD segments with memsz > 0, fields widened to 64 bits; every check
 * of an untrusted header gives -ENOEXEC and its own message: bad magic, class, byte order,
 * type, machine, a header, program headers or segment data cut short, headers too small,
 * filesz > memsz, address wrap-around, too many or no loadable segments.
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

static uint8_t *build(const struct vmtest_elf *spec, size_t *len)
{
	uint8_t *img = NULL;

	assert_int_equal(vmtest_build_elf(spec, &img, len), 0);
	return img;
}

/* vm_elf_parse must fail with -ENOEXEC and exactly `want`. */
static void expect_reject(const uint8_t *img, size_t len, const char *want)
{
	struct vm_elf elf;
	char err[256] = "";

	int ret = vm_elf_parse(img, len, &elf, err, sizeof(err));

	if (ret != -ENOEXEC || strcmp(err, want) != 0)
		fail_msg("expected -ENOEXEC \"%s\", got %d \"%s\"", want, ret, err);
	/* The message is optional. */
	assert_int_equal(vm_elf_parse(img, len, &elf, NULL, 0), -ENOEXEC);
}

static void test_parse_elf32(void **state)
{
	struct vmtest_elf spec = {
		.entry = 0x100010,
		.nr_segments = 4,
		.seg = { { .paddr = 0x100000,
			   .vaddr = 0x100000,
			   .filesz = 0x1234,
			   .memsz = 0x1234 },
			 { .type = PT_NOTE,
			   .paddr = 0x5000,
			   .vaddr = 0x5000,
			   .filesz = 0x10,
			   .memsz = 0x10 },
			 { .paddr = 0x300000, .vaddr = 0xc0300000, .filesz = 0, .memsz = 0 },
			 { .paddr = 0x200000,
			   .vaddr = 0xc0200000,
			   .filesz = 0x10,
			   .memsz = 0x8000 } },
	};
	struct vm_elf elf;
	size_t len;
	uint8_t *img = build(&spec, &len);

	assert_int_equal(vm_elf_parse(img, len, &elf, NULL, 0), 0);
	assert_false(elf.is64);
	assert_int_equal(elf.machine, EM_386);
	assert_int_equal(elf.entry, 0x100010);
	/* The note and the empty PT_LOAD are skipped. */
	assert_int_equal(elf.nr_segments, 2);
	assert_int_equal(elf.seg[0].paddr, 0x100000);
	assert_int_equal(elf.seg[0].vaddr, 0x100000);
	assert_int_equal(elf.seg[0].offset, VMTEST_ELF_DATA);
	assert_int_equal(elf.seg[0].filesz, 0x1234);
	assert_int_equal(elf.seg[0].memsz, 0x1234);
	assert_int_equal(elf.seg[0].flags, PF_R | PF_X);
	assert_int_equal(elf.seg[1].paddr, 0x200000);
	assert_int_equal(elf.seg[1].vaddr, 0xc0200000);
	assert_int_equal(elf.seg[1].offset, vmtest_elf_data_offset(&spec, 3));
	assert_int_equal(elf.seg[1].filesz, 0x10);
	assert_int_equal(elf.seg[1].memsz, 0x8000);
	free(img);
}

static void test_parse_elf64(void **state)
{
	struct vmtest_elf spec = {
		.is64 = true,
		.entry = 0xffffffff80100040ull,
		.nr_segments = 2,
		.seg = { { .paddr = 0x100000,
			   .vaddr = 0xffffffff80100000ull,
			   .filesz = 0x80,
			   .memsz = 0x1000 },
			 { .paddr = 0x140000000ull,
			   .vaddr = 0xffffffff90000000ull,
			   .filesz = 0x8,
			   .memsz = 0x8 } },
	};
	struct vm_elf elf;
	size_t len;
	uint8_t *img = build(&spec, &len);

	assert_int_equal(vm_elf_parse(img, len, &elf, NULL, 0), 0);
	assert_true(elf.is64);
	assert_int_equal(elf.machine, EM_X86_64);
	assert_int_equal(elf.entry, 0xffffffff80100040ull);
	assert_int_equal(elf.nr_segments, 2);
	assert_int_equal(elf.seg[0].vaddr, 0xffffffff80100000ull);
	assert_int_equal(elf.seg[0].memsz, 0x1000);
	assert_int_equal(elf.seg[1].paddr, 0x140000000ull);
	assert_int_equal(elf.seg[1].offset, VMTEST_ELF_DATA + 0x1000);
	free(img);
}

static void test_ident(void **state)
{
	struct vmtest_elf spec = {
		.entry = 0x100000,
		.nr_segments = 1,
		.seg = { { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 4, .memsz = 4 } }
	};
	size_t len;
	uint8_t *img = build(&spec, &len);

	expect_reject(img, 15, "not an ELF file");
	expect_reject((const uint8_t *)ELFMAG, SELFMAG, "not an ELF file");
	img[1] = 'e';
	expect_reject(img, len, "not an ELF file");
	img[1] = 'E';
	img[EI_CLASS] = 3;
	expect_reject(img, len, "unknown ELF class 3");
	img[EI_CLASS] = ELFCLASSNONE;
	expect_reject(img, len, "unknown ELF class 0");
	img[EI_CLASS] = ELFCLASS32;
	img[EI_DATA] = ELFDATA2MSB;
	expect_reject(img, len, "big-endian ELF: x86 images are little-endian");
	img[EI_DATA] = 0;
	expect_reject(img, len, "big-endian ELF: x86 images are little-endian");
	img[EI_DATA] = ELFDATA2LSB;
	expect_reject(img, sizeof(Elf32_Ehdr) - 1, "truncated ELF header (51 bytes)");
	free(img);

	spec.is64 = true;
	img = build(&spec, &len);
	expect_reject(img, sizeof(Elf64_Ehdr) - 1, "truncated ELF header (63 bytes)");
	expect_reject(img, 16, "truncated ELF header (16 bytes)");
	free(img);
}

static void test_type_and_machine(void **state)
{
	struct vmtest_elf spec = {
		.entry = 0x100000,
		.nr_segments = 1,
		.seg = { { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 4, .memsz = 4 } }
	};
	struct vm_elf elf;
	size_t len;
	uint8_t *img;

	for (int is64 = 0; is64 < 2; is64++) {
		spec.is64 = is64;
		img = build(&spec, &len);
		/* e_type and e_machine sit at the same offsets in both classes. */
		((Elf32_Ehdr *)img)->e_type = ET_DYN;
		expect_reject(img, len, "ELF type 3 is not an executable");
		((Elf32_Ehdr *)img)->e_type = ET_REL;
		expect_reject(img, len, "ELF type 1 is not an executable");
		((Elf32_Ehdr *)img)->e_type = ET_EXEC;
		((Elf32_Ehdr *)img)->e_machine = EM_ARM;
		expect_reject(img, len, "ELF machine 40 is not x86");
		((Elf32_Ehdr *)img)->e_machine = EM_AARCH64;
		expect_reject(img, len, "ELF machine 183 is not x86");
		/* Either x86 machine is fine in either class (an objcopy'd wrapper). */
		((Elf32_Ehdr *)img)->e_machine = is64 ? EM_386 : EM_X86_64;
		assert_int_equal(vm_elf_parse(img, len, &elf, NULL, 0), 0);
		assert_int_equal(elf.machine, is64 ? EM_386 : EM_X86_64);
		free(img);
	}
}

static void test_program_headers(void **state)
{
	struct vmtest_elf spec = {
		.is64 = true,
		.entry = 0x100000,
		.nr_segments = 2,
		.seg = { { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 4, .memsz = 4 },
			 { .paddr = 0x200000, .vaddr = 0x200000, .filesz = 4, .memsz = 4 } }
	};
	Elf64_Ehdr *eh;
	size_t len;
	uint8_t *img = build(&spec, &len);

	eh = (Elf64_Ehdr *)img;
	expect_reject(img, VMTEST_ELF_PHOFF + 2 * sizeof(Elf64_Phdr) - 1,
		      "ELF program headers lie past the end of the file (truncated?)");
	expect_reject(img, VMTEST_ELF_PHOFF,
		      "ELF program headers lie past the end of the file (truncated?)");
	eh->e_phoff = ~0ull;
	expect_reject(img, len, "ELF program headers lie past the end of the file (truncated?)");
	eh->e_phoff = len - sizeof(Elf64_Phdr);
	expect_reject(img, len, "ELF program headers lie past the end of the file (truncated?)");
	eh->e_phoff = VMTEST_ELF_PHOFF;
	eh->e_phentsize = sizeof(Elf64_Phdr) - 1;
	expect_reject(img, len, "ELF program headers are too small");
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 0;
	expect_reject(img, len, "ELF file has no program headers");
	free(img);

	spec.is64 = false;
	img = build(&spec, &len);
	((Elf32_Ehdr *)img)->e_phentsize = sizeof(Elf32_Phdr) - 1;
	expect_reject(img, len, "ELF program headers are too small");
	free(img);
}

static void test_segments(void **state)
{
	struct vmtest_elf spec = {
		.is64 = true,
		.entry = 0x100000,
		.nr_segments = 2,
		.seg = { { .type = PT_NOTE, .filesz = 4, .memsz = 4 },
			 { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 0x100, .memsz = 0x100 } }
	};
	Elf64_Phdr *ph;
	size_t len;
	uint8_t *img = build(&spec, &len);

	/* Segment numbers count program headers, notes included. */
	expect_reject(img, len - 1, "ELF segment 1 lies past the end of the file (truncated?)");
	ph = (Elf64_Phdr *)(img + VMTEST_ELF_PHOFF) + 1;
	ph->p_offset = ~0ull - 8;
	expect_reject(img, len, "ELF segment 1 lies past the end of the file (truncated?)");
	ph->p_offset = vmtest_elf_data_offset(&spec, 1);
	ph->p_filesz = 0x101;
	expect_reject(img, len, "ELF segment 1: file size exceeds memory size");
	ph->p_filesz = 0x100;
	ph->p_paddr = 0xfffffffffffff000ull;
	ph->p_memsz = 0x1000;
	expect_reject(img, len, "ELF segment 1 wraps around the address space");
	ph->p_paddr = 0x100000;
	ph->p_vaddr = 0xffffffffffffff80ull;
	expect_reject(img, len, "ELF segment 1 wraps around the address space");
	ph->p_vaddr = 0x100000;
	ph->p_memsz = 0;
	expect_reject(img, len, "ELF file has no loadable segments");
	free(img);
}

static void test_segment_count(void **state)
{
	struct vmtest_elf spec = { .entry = 0x100000, .nr_segments = 33 };
	struct vm_elf elf;
	size_t len;
	uint8_t *img;

	for (unsigned i = 0; i < 33; i++)
		spec.seg[i] = (struct vmtest_segment){ .paddr = 0x100000 + i * 0x1000,
						       .vaddr = 0x100000 + i * 0x1000,
						       .filesz = 0x10,
						       .memsz = 0x10 };
	img = build(&spec, &len);
	expect_reject(img, len, "more than 32 loadable ELF segments");
	free(img);

	spec.nr_segments = 32;
	img = build(&spec, &len);
	assert_int_equal(vm_elf_parse(img, len, &elf, NULL, 0), 0);
	assert_int_equal(elf.nr_segments, 32);
	assert_int_equal(elf.seg[31].paddr, 0x100000 + 31 * 0x1000);
	free(img);

	/* 33 headers of which one is not PT_LOAD: 32 loadable, accepted. */
	spec.nr_segments = 33;
	spec.seg[5].type = PT_GNU_STACK;
	img = build(&spec, &len);
	assert_int_equal(vm_elf_parse(img, len, &elf, NULL, 0), 0);
	assert_int_equal(elf.nr_segments, 32);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_elf32),	cmocka_unit_test(test_parse_elf64),
		cmocka_unit_test(test_ident),		cmocka_unit_test(test_type_and_machine),
		cmocka_unit_test(test_program_headers), cmocka_unit_test(test_segments),
		cmocka_unit_test(test_segment_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
