/*
 * vmdef/image.c: which heads of files are bootable (a multiboot v1 header within the first
 * 8 KiB on a 4-byte boundary with a checksum that adds up, or Linux's "HdrS" setup header
 * with the boot signature), and vmdef_kernel_check's refusals, each naming "kernel" and why;
 * vmdef_set_pin adds a pin or replaces one.
 */
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
	assert_false(vmdef_image_bootable(head, sizeof(head)));
	multiboot(head, 64, 0x10003, 0);
	assert_true(vmdef_image_bootable(head, sizeof(head)));
	assert_false(vmdef_image_bootable(head, 64 + 11)); /* cut inside the header */

	memset(head, 0, sizeof(head));
	multiboot(head, 64, 0x3, 1); /* the checksum does not add up */
	assert_false(vmdef_image_bootable(head, sizeof(head)));

	memset(head, 0, sizeof(head));
	multiboot(head, 66, 0x3, 0); /* not on a 4-byte boundary */
	assert_false(vmdef_image_bootable(head, sizeof(head)));

	memset(head, 0, sizeof(head));
	multiboot(head, 8192 - 12, 0x3, 0); /* the last place it may start */
	assert_true(vmdef_image_bootable(head, sizeof(head)));
}

static void test_linux_header(void **state)
{
	static uint8_t head[8192];

	memset(head, 0, sizeof(head));
	memcpy(head + 0x202, "HdrS", 4);
	assert_false(vmdef_image_bootable(head, sizeof(head))); /* no boot signature */
	head[0x1fe] = 0x55;
	head[0x1ff] = 0xaa;
	assert_true(vmdef_image_bootable(head, sizeof(head)));
	assert_false(vmdef_image_bootable(head, 0x205)); /* too short for the header */
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
		cmocka_unit_test(test_multiboot_headers),
		cmocka_unit_test(test_linux_header),
		cmocka_unit_test(test_kernel_check),
		cmocka_unit_test(test_set_pin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
