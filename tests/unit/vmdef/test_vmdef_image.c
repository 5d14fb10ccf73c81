/*
 * vmdef/image.c: what kind of kernel an image is (a multiboot v1 header within the first
 * 8 KiB on a 4-byte boundary with a checksum that adds up, Linux's "HdrS" setup header with
 * the boot signature, an ELF file), the PVH entry note of an ELF file and its malformations,
 * and vmdef_kernel_check's refusals, each naming "kernel" and why; vmdef_set_pin adds a pin
 * or replaces one.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmdef/vmdef.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void multiboot(uint8_t *head, size_t off, uint32_t flags, uint32_t fudge)
{
	put32(head + off, 0x1badb002u);
	put32(head + off + 4, flags);
	put32(head + off + 8, 0u - 0x1badb002u - flags + fudge);
}

static void test_multiboot_headers(void **state)
{
	static uint8_t head[8192];

	memset(head, 0, sizeof(head));
	assert_int_equal(VMDEF_IMAGE_NONE, vmdef_image_kind(head, sizeof(head)));
	multiboot(head, 64, 0x10003, 0);
	assert_int_equal(VMDEF_IMAGE_MULTIBOOT, vmdef_image_kind(head, sizeof(head)));
	assert_int_equal(64, vmdef_multiboot_offset(head, sizeof(head)));
	assert_int_equal(VMDEF_IMAGE_NONE,
			 vmdef_image_kind(head, 64 + 11)); /* cut inside the header */

	memset(head, 0, sizeof(head));
	multiboot(head, 64, 0x3, 1); /* the checksum does not add up */
	assert_int_equal(VMDEF_IMAGE_NONE, vmdef_image_kind(head, sizeof(head)));

	memset(head, 0, sizeof(head));
	multiboot(head, 66, 0x3, 0); /* not on a 4-byte boundary */
	assert_int_equal(VMDEF_IMAGE_NONE, vmdef_image_kind(head, sizeof(head)));

	memset(head, 0, sizeof(head));
	multiboot(head, 8192 - 12, 0x3, 0); /* the last place it may start */
	assert_int_equal(VMDEF_IMAGE_MULTIBOOT, vmdef_image_kind(head, sizeof(head)));
}

static void test_linux_header(void **state)
{
	static uint8_t head[8192];

	memset(head, 0, sizeof(head));
	memcpy(head + 0x202, "HdrS", 4);
	assert_int_equal(VMDEF_IMAGE_NONE,
			 vmdef_image_kind(head, sizeof(head))); /* no boot signature */
	head[0x1fe] = 0x55;
	head[0x1ff] = 0xaa;
	assert_int_equal(VMDEF_IMAGE_BZIMAGE, vmdef_image_kind(head, sizeof(head)));
	multiboot(head, 0x400, 0x3, 0); /* QEMU's order: the setup header wins */
	assert_int_equal(VMDEF_IMAGE_BZIMAGE, vmdef_image_kind(head, sizeof(head)));
	assert_int_equal(VMDEF_IMAGE_NONE,
			 vmdef_image_kind(head, 0x205)); /* too short for the header */
}

/* A 64-bit ELF header with one PT_NOTE program header over [0x100, 0x100 + size). */
static void elf_with_notes(uint8_t *img, uint64_t note_size)
{
	Elf64_Ehdr eh = { .e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
				       EV_CURRENT },
			  .e_type = ET_EXEC,
			  .e_machine = EM_X86_64,
			  .e_version = EV_CURRENT,
			  .e_phoff = sizeof(Elf64_Ehdr),
			  .e_ehsize = sizeof(Elf64_Ehdr),
			  .e_phentsize = sizeof(Elf64_Phdr),
			  .e_phnum = 1 };
	Elf64_Phdr ph = { .p_type = PT_NOTE, .p_offset = 0x100, .p_filesz = note_size };

	memcpy(img, &eh, sizeof(eh));
	memcpy(img + sizeof(eh), &ph, sizeof(ph));
}

/* A note at img + off: name "Xen" (or another), type, a descsz-byte value. */
static void note(uint8_t *img, size_t off, const char *name, uint32_t type, uint32_t descsz,
		 uint64_t value)
{
	put32(img + off, 4);
	put32(img + off + 4, descsz);
	put32(img + off + 8, type);
	memcpy(img + off + 12, name, 4);
	memcpy(img + off + 16, &value, descsz > 8 ? 8 : descsz);
}

static void test_pvh_note(void **state)
{
	static uint8_t img[4096];
	char err[256];
	uint64_t entry = 0;

	memset(img, 0, sizeof(img));
	elf_with_notes(img, 0);
	assert_int_equal(VMDEF_IMAGE_ELF, vmdef_image_kind(img, sizeof(img)));
	assert_int_equal(vmdef_pvh_entry(img, sizeof(img), &entry, err, sizeof(err)), -ENOENT);

	/* Another note first, then Xen's PHYS32_ENTRY (18). */
	elf_with_notes(img, 2 * 24);
	note(img, 0x100, "GNU", 3, 8, 0);
	note(img, 0x100 + 24, "Xen", 18, 4, 0x1000100);
	assert_int_equal(vmdef_pvh_entry(img, sizeof(img), &entry, err, sizeof(err)), 0);
	assert_int_equal(entry, 0x1000100);

	note(img, 0x100 + 24, "Xen", 18, 8, 1ull << 32);
	assert_int_equal(vmdef_pvh_entry(img, sizeof(img), &entry, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "above 4 GiB"));
	note(img, 0x100 + 24, "Xen", 18, 2, 0);
	assert_int_equal(vmdef_pvh_entry(img, sizeof(img), &entry, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "not 4 or 8"));

	/* Notes and program headers past the end of the file. */
	note(img, 0x100 + 24, "Xen", 18, 4, 0x1000100);
	assert_int_equal(vmdef_pvh_entry(img, 0x100 + 30, &entry, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "past the end of the file"));
	assert_int_equal(vmdef_pvh_entry(img, sizeof(Elf64_Ehdr) + 8, &entry, err, sizeof(err)),
			 -ENOEXEC);
	assert_non_null(strstr(err, "program headers"));
	elf_with_notes(img, 40); /* the segment cuts the second note */
	assert_int_equal(vmdef_pvh_entry(img, sizeof(img), &entry, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "runs past its segment"));
}

static void test_kernel_check(void **state)
{
	char path[] = "/tmp/vmdef-image-XXXXXX", err[512];
	static uint8_t head[4096];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	memset(head, 0, sizeof(head));
	assert_int_equal(write(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	assert_int_equal(vmdef_kernel_check(path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a bootable image"));
	assert_int_equal(strncmp(err, "\"kernel\": ", 10), 0);
	multiboot(head, 0, 0x3, 0);
	assert_int_equal(pwrite(fd, head, 12, 0), 12);
	assert_int_equal(vmdef_kernel_check(path, err, sizeof(err)), 0);
	/* An ELF file boots through its PVH note, and without one is refused at define. */
	memset(head, 0, sizeof(head));
	elf_with_notes(head, 24);
	assert_int_equal(pwrite(fd, head, sizeof(head), 0), (ssize_t)sizeof(head));
	assert_int_equal(vmdef_kernel_check(path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no PVH entry note"));
	note(head, 0x100, "Xen", 18, 4, 0x1000000);
	assert_int_equal(pwrite(fd, head, sizeof(head), 0), (ssize_t)sizeof(head));
	assert_int_equal(vmdef_kernel_check(path, err, sizeof(err)), 0);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(vmdef_kernel_check(path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a bootable image"));
	close(fd);
	unlink(path);
	assert_int_equal(vmdef_kernel_check(path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "No such file or directory"));
	assert_int_equal(vmdef_kernel_check("/tmp", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/tmp is not a regular file"));
}

static void test_set_pin(void **state)
{
	struct util_cpuset a = { { 0 } }, b = { { 0 } };
	struct vmdef def;

	vmdef_init(&def);
	util_cpuset_add(&a, 1);
	util_cpuset_add(&b, 0);
	assert_int_equal(vmdef_set_pin(&def, 3, &a), 0);
	assert_int_equal(vmdef_set_pin(&def, 0, &a), 0);
	assert_int_equal(vmdef_set_pin(&def, 3, &b), 0); /* replaces vCPU 3's */
	assert_int_equal(def.sched.nr_pins, 2);
	assert_int_equal(def.sched.pins[0].vcpu, 3);
	assert_true(util_cpuset_has(&def.sched.pins[0].cpus, 0));
	assert_false(util_cpuset_has(&def.sched.pins[0].cpus, 1));
	assert_int_equal(def.sched.pins[1].vcpu, 0);
	vmdef_fini(&def);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multiboot_headers), cmocka_unit_test(test_linux_header),
		cmocka_unit_test(test_pvh_note),	  cmocka_unit_test(test_kernel_check),
		cmocka_unit_test(test_set_pin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
