/*
 * Whether a definition's kernel is there and is something lockstep boots: a multiboot v1
 * image (a header in its first 8 KiB, as vm/multiboot.c looks for it) or a Linux kernel (the
 * x86 boot protocol's "HdrS" setup header).  lockstepd asks at define time, so a wrong path
 * or file is refused then with its reason, not at the first start.  Only the head of the file
 * is read; a FIFO or a device is refused without blocking on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmdef/vmdef.h"

#define MULTIBOOT_SEARCH 8192u
#define MULTIBOOT_MAGIC 0x1badb002u
#define LINUX_HDRS_OFFSET 0x202u

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bool vmdef_image_bootable(const uint8_t *head, size_t len)
{
	for (size_t off = 0; off + 12 <= len && off + 12 <= MULTIBOOT_SEARCH; off += 4) {
		uint32_t magic = le32(head + off), flags = le32(head + off + 4);

		if (magic == MULTIBOOT_MAGIC && magic + flags + le32(head + off + 8) == 0)
			return true;
	}
	return len >= LINUX_HDRS_OFFSET + 4 && memcmp(head + LINUX_HDRS_OFFSET, "HdrS", 4) == 0 &&
	       head[0x1fe] == 0x55 && head[0x1ff] == 0xaa;
}

int vmdef_kernel_check_fd(int fd, const char *path, char *err, size_t err_len)
{
	uint8_t head[MULTIBOOT_SEARCH];
	struct stat st;
	ssize_t n;

	/* Every failure is the definition's (-EINVAL), whatever errno said why. */
	if (fstat(fd, &st) < 0)
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path,
				  strerror(errno));
	if (!S_ISREG(st.st_mode))
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s is not a regular file",
				  path);
	n = pread(fd, head, sizeof(head), 0);
	if (n < 0)
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path,
				  strerror(errno));
	if (!vmdef_image_bootable(head, (size_t)n))
		return util_error(
			err, err_len, -EINVAL,
			"\"kernel\": %s is not a bootable image: lockstep boots multiboot "
			"v1 images (a header in the first 8 KiB) and Linux kernels",
			path);
	return 0;
}

int vmdef_kernel_check(const char *path, char *err, size_t err_len)
{
	int fd, ret;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path,
				  strerror(errno));
	ret = vmdef_kernel_check_fd(fd, path, err, err_len);
	close(fd);
	return ret;
}
