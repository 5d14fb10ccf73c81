/*
 * vm_boot_load for Linux kernels, and the choice of protocol.
 *
 * A bzImage's protected-mode kernel lands at 1 MiB; boot_params in the boot area carries the
 * image's setup header with the loader's fields (type_of_loader, CAN_USE_HEAP, the command
 * line, the initrd page-aligned at the top of low RAM under initrd_addr_max, the RSDP from
 * protocol 2.14) and the E820 map vm_boot_memory_map gives; the entry is code32_start with
 * ESI = boot_params and the GDT holds Linux's boot selectors.  A PVH vmlinux lands segment by
 * segment with bss zeroed; hvm_start_info (version 1) carries the memory map, the command
 * line, the initrd as module 0 and the RSDP; the entry is the note's, with EBX = start info.
 * Multiboot wins over PVH, as under QEMU, and takes no initrd.  Every refusal names its cause.
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
#define BOOT_PARAMS 0x10000u
#define PVH_ENTRY 0x1000040u

static uint8_t initrd_data[10000];

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint8_t *guest(const struct vm_memory *mem, uint64_t gpa, uint64_t len)
{
	uint8_t *p = vm_memory_ptr(mem, gpa, len);

	assert_non_null(p);
	return p;
}

static int setup(void **state)
{
	for (size_t i = 0; i < sizeof(initrd_data); i++)
		initrd_data[i] = (uint8_t)(i * 13 + 5);
	return 0;
}

static int load(struct vm_memory *mem, const uint8_t *img, size_t len, bool initrd,
		const char *cmdline, struct vm_boot_entry *entry, char *err, size_t err_len)
{
	struct vm_boot_files files = {
		.image = img,
		.len = len,
		.initrd = initrd ? initrd_data : NULL,
		.initrd_len = initrd ? sizeof(initrd_data) : 0,
	};

	return vm_boot_load(mem, &files, cmdline, entry, err, err_len);
}

static void expect_refused(uint64_t ram, const uint8_t *img, size_t len, bool initrd,
			   const char *cmdline, const char *want)
{
	struct vm_boot_entry entry;
	struct vm_memory mem;
	char err[512] = "";

	assert_int_equal(vm_memory_init(&mem, ram), 0);
	assert_int_equal(load(&mem, img, len, initrd, cmdline, &entry, err, sizeof(err)), -ENOEXEC);
	if (!strstr(err, want))
		fail_msg("wanted \"%s\" in \"%s\"", want, err);
	vm_memory_fini(&mem);
}

static void expect_e820(const struct vm_memory *mem, const uint8_t *table, unsigned n,
			size_t stride)
{
	struct vm_e820 want[16];
	unsigned count = vm_boot_memory_map(mem, want, 16);

	assert_int_equal(n, count);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(rd64(table + i * stride), want[i].addr);
		assert_int_equal(rd64(table + i * stride + 8), want[i].size);
		assert_int_equal(rd32(table + i * stride + 16), want[i].type);
	}
}

static void expect_gdt(const struct vm_memory *mem)
{
	const uint8_t *gdt = guest(mem, VM_BOOT_GDT, 32);

	assert_int_equal(rd64(gdt + 0x10), 0x00cf9b000000ffffull); /* __BOOT_CS: code */
	assert_int_equal(rd64(gdt + 0x18), 0x00cf93000000ffffull); /* __BOOT_DS: data */
}

/* ---- bzImage ---- */

static uint8_t *bzimage(const struct vmtest_bzimage *spec, size_t *len)
{
	uint8_t *img = NULL;

	assert_int_equal(vmtest_build_bzimage(spec, &img, len), 0);
	return img;
}

static void test_bzimage(void **state)
{
	struct vmtest_bzimage spec = { .setup_sects = 27,
				       .payload = 64 << 10,
				       .init_size = 3 << 20,
				       .cmdline_size = 2047,
				       .initrd_addr_max = 0x7fffffff };
	struct vm_boot_entry entry;
	struct vm_memory mem;
	char err[256] = "";
	const uint8_t *bp, *kernel;
	uint32_t initrd;
	size_t len;
	uint8_t *img = bzimage(&spec, &len);

	assert_int_equal(vm_memory_init(&mem, 64 * MIB), 0);
	assert_int_equal(
		load(&mem, img, len, true, "console=ttyS0 quiet", &entry, err, sizeof(err)), 0);
	assert_int_equal(entry.kind, VM_BOOT_LINUX);
	assert_string_equal(vm_boot_kind_name(entry.kind), "linux-bzimage");
	assert_int_equal(entry.entry, 0x100000);
	assert_int_equal(entry.esi, BOOT_PARAMS);
	assert_int_equal(entry.eax, 0);
	assert_int_equal(entry.ebx, 0);
	assert_int_equal(entry.image_start, 0x100000);
	assert_int_equal(entry.image_end, 0x100000 + (3 << 20)); /* init_size, not the file */

	/* The protected-mode kernel, byte for byte, and nothing of the setup code. */
	kernel = guest(&mem, 0x100000, spec.payload + 16);
	for (size_t k = 0; k < spec.payload; k++)
		assert_int_equal(kernel[k], vmtest_pattern(0, k));
	assert_int_equal(kernel[spec.payload], 0);

	bp = guest(&mem, BOOT_PARAMS, 4096);
	assert_int_equal(bp[VMTEST_HDR_SETUP_SECTS], 27);
	assert_memory_equal(bp + 0x202, "HdrS", 4);
	assert_int_equal(rd32(bp + VMTEST_HDR_INIT_SIZE), 3 << 20); /* copied from the image */
	assert_int_equal(bp[VMTEST_HDR_TYPE_OF_LOADER], 0xff);
	assert_int_equal(bp[VMTEST_HDR_LOADFLAGS], 0x81); /* LOADED_HIGH, CAN_USE_HEAP */
	assert_int_equal(rd32(bp + VMTEST_HDR_CODE32_START), 0x100000);
	assert_string_equal((const char *)guest(&mem, rd32(bp + VMTEST_HDR_CMD_LINE_PTR), 20),
			    "console=ttyS0 quiet");
	initrd = rd32(bp + VMTEST_HDR_RAMDISK_IMAGE);
	assert_int_equal(rd32(bp + VMTEST_HDR_RAMDISK_SIZE), sizeof(initrd_data));
	assert_int_equal(initrd & 0xfff, 0);
	assert_true(initrd + sizeof(initrd_data) <= 64 * MIB);
	assert_true(initrd + sizeof(initrd_data) > 64 * MIB - 4096); /* at the top */
	assert_memory_equal(guest(&mem, initrd, sizeof(initrd_data)), initrd_data,
			    sizeof(initrd_data));
	assert_int_equal(rd64(bp + 0x070), VM_ACPI_RSDP_ADDR);
	assert_int_equal(bp[0x1ef], 0); /* the sentinel: the header was copied, not the page */
	expect_e820(&mem, bp + 0x2d0, bp[0x1e8], 20);
	expect_gdt(&mem);
	vm_memory_fini(&mem);
	free(img);
}

/* setup_sects 0 means 4; no initrd; an old protocol gets no RSDP; initrd_addr_max holds the
 * initrd down even with RAM above it. */
static void test_bzimage_variants(void **state)
{
	struct vmtest_bzimage spec = { .payload = 4096,
				       .version = 0x020a,
				       .cmdline_size = 255,
				       .initrd_addr_max = 0x37ffffff };
	struct vm_boot_entry entry;
	struct vm_memory mem;
	char err[256] = "";
	const uint8_t *bp;
	size_t len;
	uint8_t *img = bzimage(&spec, &len);

	assert_int_equal(vm_memory_init(&mem, 1 * GIB), 0);
	assert_int_equal(load(&mem, img, len, false, NULL, &entry, err, sizeof(err)), 0);
	assert_int_equal(*guest(&mem, 0x100000, 1), vmtest_pattern(0, 0)); /* at 5 * 512 */
	bp = guest(&mem, BOOT_PARAMS, 4096);
	assert_int_equal(rd32(bp + VMTEST_HDR_RAMDISK_IMAGE), 0);
	assert_int_equal(rd32(bp + VMTEST_HDR_RAMDISK_SIZE), 0);
	assert_int_equal(rd64(bp + 0x070), 0);
	assert_string_equal((const char *)guest(&mem, rd32(bp + VMTEST_HDR_CMD_LINE_PTR), 1), "");
	vm_memory_fini(&mem);

	assert_int_equal(vm_memory_init(&mem, 2 * GIB), 0);
	assert_int_equal(load(&mem, img, len, true, "x", &entry, err, sizeof(err)), 0);
	bp = guest(&mem, BOOT_PARAMS, 4096);
	assert_true(rd32(bp + VMTEST_HDR_RAMDISK_IMAGE) + sizeof(initrd_data) <= 0x38000000);
	assert_true(rd32(bp + VMTEST_HDR_RAMDISK_IMAGE) + sizeof(initrd_data) > 0x38000000 - 4096);
	vm_memory_fini(&mem);
	free(img);
}

static void test_bzimage_refused(void **state)
{
	struct vmtest_bzimage good = {
		.payload = 4096, .init_size = 2 << 20, .cmdline_size = 16, .initrd_addr_max = ~0u
	};
	struct vmtest_bzimage spec;
	char line[64];
	size_t len;
	uint8_t *img;

	spec = good;
	spec.version = 0x0205;
	img = bzimage(&spec, &len);
	expect_refused(64 * MIB, img, len, false, NULL, "boot protocol 2.05; lockstep needs 2.06");
	free(img);

	spec = good;
	spec.zimage = true;
	img = bzimage(&spec, &len);
	expect_refused(64 * MIB, img, len, false, NULL, "a zImage (loaded low)");
	free(img);

	spec = good;
	img = bzimage(&spec, &len);
	expect_refused(64 * MIB, img, vmtest_bzimage_payload_offset(&spec), false, NULL,
		       "truncated bzImage");
	expect_refused(64 * MIB, img, 0x300, false, NULL, "truncated bzImage");
	{
		/* "HdrS" and the version are there, the fields after them are not (an exact
		 * copy, so that a read past the end is one past the allocation). */
		uint8_t *head = malloc(0x212);

		assert_non_null(head);
		memcpy(head, img, 0x212);
		expect_refused(64 * MIB, head, 0x212, false, NULL,
			       "truncated bzImage: 530 bytes, shorter than the setup header");
		free(head);
	}
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	expect_refused(64 * MIB, img, len, false, line,
		       "the command line is 63 bytes; this kernel takes at most 16");
	expect_refused(2 * MIB, img, len, false, NULL, "give the VM more memory");
	free(img);

	spec = good;
	spec.init_size = (61 << 20) - 4096; /* the unpacked kernel reaches the initrd's place */
	img = bzimage(&spec, &len);
	expect_refused(62 * MIB, img, len, true, NULL, "the initrd (9 KiB) does not fit");
	free(img);

	spec = good;
	spec.hdr_len = 0xff; /* a header running into the E820 table */
	img = bzimage(&spec, &len);
	expect_refused(64 * MIB, img, len, false, NULL, "truncated bzImage");
	free(img);
}

/* ---- PVH ---- */

/* An ELF64 vmlinux: text at 16 MiB, data with bss at 18 MiB, and a note segment holding a
 * Linux note and then the PVH entry note (`descsz` bytes of `entry`). */
static uint8_t *pvh_image(uint64_t entry, uint32_t descsz, bool multiboot, size_t *len)
{
	struct vmtest_elf spec = {
		.is64 = true,
		.entry = 0xffffffff81000000, /* what multiboot would take; PVH has its note */
		.nr_segments = 3,
		.seg = { { .paddr = 0x1000000,
			   .vaddr = 0xffffffff81000000,
			   .filesz = 0x3000,
			   .memsz = 0x3000 },
			 { .paddr = 0x1200000,
			   .vaddr = 0xffffffff81200000,
			   .filesz = 0x1000,
			   .memsz = 0x5000 },
			 { .type = PT_NOTE, .filesz = 0x40 } },
		.no_multiboot = !multiboot,
	};
	uint8_t *img = NULL, *note;
	uint32_t linux_desc = 0x60100;

	assert_int_equal(vmtest_build_elf(&spec, &img, len), 0);
	note = img + vmtest_elf_data_offset(&spec, 2);
	memset(note, 0, 0x40);
	note += vmtest_elf_note(note, "Linux", 6, &linux_desc, 4);
	vmtest_elf_note(note, "Xen", 18, &entry, descsz);
	return img;
}

static void test_pvh(void **state)
{
	struct vm_boot_entry entry;
	struct vm_memory mem;
	char err[256] = "";
	const uint8_t *info, *mod, *data;
	size_t len;
	uint8_t *img = pvh_image(PVH_ENTRY, 8, false, &len);

	assert_int_equal(vm_memory_init(&mem, 64 * MIB), 0);
	memset(guest(&mem, 0x1201000, 0x4000), 0xee, 0x4000); /* bss must come back zeroed */
	assert_int_equal(load(&mem, img, len, true, "console=ttyS0", &entry, err, sizeof(err)), 0);
	assert_int_equal(entry.kind, VM_BOOT_PVH);
	assert_string_equal(vm_boot_kind_name(entry.kind), "linux-pvh");
	assert_int_equal(entry.entry, PVH_ENTRY);
	assert_int_equal(entry.ebx, BOOT_PARAMS);
	assert_int_equal(entry.esi, 0);
	assert_int_equal(entry.image_start, 0x1000000);
	assert_int_equal(entry.image_end, 0x1205000);

	assert_int_equal(*guest(&mem, 0x1000000, 1), vmtest_pattern(0, 0));
	assert_int_equal(*guest(&mem, 0x1200fff, 1), vmtest_pattern(1, 0xfff));
	data = guest(&mem, 0x1201000, 0x4000);
	for (size_t k = 0; k < 0x4000; k++)
		assert_int_equal(data[k], 0);

	info = guest(&mem, BOOT_PARAMS, 56);
	assert_int_equal(rd32(info), 0x336ec578);
	assert_int_equal(rd32(info + 4), 1);  /* version: with the memory map */
	assert_int_equal(rd32(info + 12), 1); /* one module: the initrd */
	assert_string_equal((const char *)guest(&mem, rd64(info + 24), 14), "console=ttyS0");
	assert_int_equal(rd64(info + 32), VM_ACPI_RSDP_ADDR);
	expect_e820(&mem, guest(&mem, rd64(info + 40), 24 * 8), rd32(info + 48), 24);
	mod = guest(&mem, rd64(info + 16), 32);
	assert_int_equal(rd64(mod + 8), sizeof(initrd_data));
	assert_int_equal(rd64(mod) & 0xfff, 0);
	assert_true(rd64(mod) >= 0x1205000);
	assert_memory_equal(guest(&mem, rd64(mod), sizeof(initrd_data)), initrd_data,
			    sizeof(initrd_data));
	expect_gdt(&mem);
	vm_memory_fini(&mem);

	/* A 4-byte note; no initrd: no modules. */
	free(img);
	img = pvh_image(PVH_ENTRY, 4, false, &len);
	assert_int_equal(vm_memory_init(&mem, 64 * MIB), 0);
	assert_int_equal(load(&mem, img, len, false, NULL, &entry, err, sizeof(err)), 0);
	assert_int_equal(entry.entry, PVH_ENTRY);
	assert_int_equal(rd32(guest(&mem, BOOT_PARAMS + 12, 4)), 0);
	vm_memory_fini(&mem);
	free(img);
}

static void test_pvh_refused(void **state)
{
	size_t len;
	uint8_t *img;

	img = pvh_image(PVH_ENTRY, 2, false, &len);
	expect_refused(64 * MIB, img, len, false, NULL, "the PVH entry note holds 2 bytes");
	free(img);
	img = pvh_image(1ull << 32, 8, false, &len);
	expect_refused(64 * MIB, img, len, false, NULL, "is above 4 GiB");
	free(img);
	img = pvh_image(0x1100000, 8, false, &len);
	expect_refused(64 * MIB, img, len, false, NULL,
		       "the PVH entry 0x1100000 is in no loadable");
	free(img);
	img = pvh_image(PVH_ENTRY, 8, false, &len);
	expect_refused(16 * MIB, img, len, false, NULL, "give the VM more memory");
	expect_refused(0x1207000, img, len, true, NULL, "the initrd (9 KiB) does not fit");
	/* A note whose description runs past its segment (the last 0x40 bytes of the file). */
	img[len - 0x40 + 4] = 0x80;
	expect_refused(64 * MIB, img, len, false, NULL, "an ELF note runs past its segment");
	free(img);
}

/* ---- which protocol ---- */

static void test_choice(void **state)
{
	struct vm_boot_entry entry;
	struct vm_memory mem;
	uint8_t zeros[4096] = { 0 };
	char err[512] = "";
	size_t len;
	uint8_t *img = pvh_image(PVH_ENTRY, 8, true, &len);

	/* Multiboot and PVH in one file: multiboot, as QEMU chooses; it takes no initrd. */
	assert_int_equal(vm_memory_init(&mem, 64 * MIB), 0);
	assert_int_equal(load(&mem, img, len, false, NULL, &entry, err, sizeof(err)), 0);
	assert_int_equal(entry.kind, VM_BOOT_MULTIBOOT);
	assert_int_equal(entry.eax, 0x2badb002);
	assert_int_equal(entry.ebx, BOOT_PARAMS);
	vm_memory_fini(&mem);
	expect_refused(64 * MIB, img, len, true, NULL, "multiboot image and takes no initrd");
	free(img);

	/* An ELF file with neither. */
	img = pvh_image(PVH_ENTRY, 8, false, &len);
	memset(img + len - 0x40, 0, 0x40); /* the notes gone */
	expect_refused(64 * MIB, img, len, false, NULL, "no PVH entry note");
	free(img);
	expect_refused(64 * MIB, zeros, sizeof(zeros), false, NULL,
		       "not a kernel lockstep can boot: no multiboot header");
	expect_refused(64 * MIB, zeros, 3, false, NULL, "not a kernel lockstep can boot");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage),		cmocka_unit_test(test_bzimage_variants),
		cmocka_unit_test(test_bzimage_refused), cmocka_unit_test(test_pvh),
		cmocka_unit_test(test_pvh_refused),	cmocka_unit_test(test_choice),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
