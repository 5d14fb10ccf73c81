/*
 * What kind of kernel an image is, read the same way by both sides that need to know:
 * lockstepd when a definition names a kernel (vmdef_kernel_check, so a wrong path or file is
 * refused at define with its reason, not at the first start) and the worker when it boots one
 * (vm/boot.c picks its loader by vmdef_image_kind; vm/multiboot.c and vm/linux.c take the
 * multiboot header and the PVH entry from here).  What define accepts is what boots.
 *
 * The kinds, in QEMU's order for -kernel: a Linux setup header ("HdrS" with the boot
 * signature: a bzImage), a multiboot v1 header in the first 8 KiB, an ELF file (which boots
 * through its PVH entry note if it has no multiboot header).  Pure functions of the bytes,
 * which may be anything; vmdef_kernel_check maps the file, so only the pages looked at are
 * read, and refuses a FIFO or a device without blocking on it.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmdef/vmdef.h"

#define MULTIBOOT_SEARCH 8192u
#define MULTIBOOT_MAGIC 0x1badb002u
#define LINUX_HDRS_OFFSET 0x202u
#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define bad_image(err, err_len, ...) util_error((err), (err_len), -ENOEXEC, __VA_ARGS__)

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int vmdef_multiboot_offset(const uint8_t *image, size_t len)
{
	for (size_t off = 0; off + 12 <= len && off + 12 <= MULTIBOOT_SEARCH; off += 4) {
		uint32_t magic = le32(image + off), flags = le32(image + off + 4);

		if (magic == MULTIBOOT_MAGIC && magic + flags + le32(image + off + 8) == 0)
			return (int)off;
	}
	return -ENOENT;
}

enum vmdef_image_kind vmdef_image_kind(const uint8_t *image, size_t len)
{
	if (len >= LINUX_HDRS_OFFSET + 4 && memcmp(image + LINUX_HDRS_OFFSET, "HdrS", 4) == 0 &&
	    image[0x1fe] == 0x55 && image[0x1ff] == 0xaa)
		return VMDEF_IMAGE_BZIMAGE;
	if (vmdef_multiboot_offset(image, len) >= 0)
		return VMDEF_IMAGE_MULTIBOOT;
	if (len >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0)
		return VMDEF_IMAGE_ELF;
	return VMDEF_IMAGE_NONE;
}

/* The notes in [off, off + size) of the image: the PVH entry, if one is there. */
static int scan_notes(const uint8_t *image, uint64_t off, uint64_t size, uint64_t *entry, char *err,
		      size_t err_len)
{
	uint64_t pos = 0;

	while (size - pos >= 12) {
		const uint8_t *n = image + off + pos;
		uint64_t namesz = le32(n), descsz = le32(n + 4), body;

		/* name and desc are each padded to 4 bytes */
		body = 12 + ((namesz + 3) & ~3ull) + ((descsz + 3) & ~3ull);
		if (namesz > size || descsz > size || body > size - pos)
			return bad_image(err, err_len,
					 "an ELF note runs past its segment (truncated?)");
		if (le32(n + 8) == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
		    memcmp(n + 12, "Xen", 4) == 0) {
			uint64_t value = 0;

			if (descsz != 4 && descsz != 8)
				return bad_image(err, err_len,
						 "the PVH entry note holds %llu bytes, not 4 or 8",
						 (unsigned long long)descsz);
			memcpy(&value, n + 16, descsz); /* x86: little-endian like the note */
			if (value >= (1ull << 32))
				return bad_image(err, err_len,
						 "the PVH entry 0x%llx is above 4 GiB",
						 (unsigned long long)value);
			*entry = value;
			return 0;
		}
		pos += body;
	}
	return -ENOENT;
}

int vmdef_pvh_entry(const uint8_t *image, size_t len, uint64_t *entry, char *err, size_t err_len)
{
	bool is64 = len > EI_CLASS && image[EI_CLASS] == ELFCLASS64;
	size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t phsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	uint64_t phoff, phnum, phentsize;

	if (len < ehsize || memcmp(image, ELFMAG, SELFMAG) != 0)
		return bad_image(err, err_len, "not an ELF file");
	if (is64) {
		Elf64_Ehdr eh;

		memcpy(&eh, image, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
	} else {
		Elf32_Ehdr eh;

		memcpy(&eh, image, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
	}
	if (phnum && (phentsize < phsize || phoff > len || phnum > (len - phoff) / phentsize))
		return bad_image(
			err, err_len,
			"the ELF program headers lie past the end of the file (truncated?)");
	for (uint64_t i = 0; i < phnum; i++) {
		const uint8_t *p = image + phoff + i * phentsize;
		uint64_t off, size;
		int ret;

		if (is64) {
			Elf64_Phdr ph;

			memcpy(&ph, p, sizeof(ph));
			if (ph.p_type != PT_NOTE)
				continue;
			off = ph.p_offset, size = ph.p_filesz;
		} else {
			Elf32_Phdr ph;

			memcpy(&ph, p, sizeof(ph));
			if (ph.p_type != PT_NOTE)
				continue;
			off = ph.p_offset, size = ph.p_filesz;
		}
		if (off > len || size > len - off)
			return bad_image(
				err, err_len,
				"an ELF note segment lies past the end of the file (truncated?)");
		ret = scan_notes(image, off, size, entry, err, err_len);
		if (ret != -ENOENT)
			return ret;
	}
	return -ENOENT;
}

/* Whether the image is one lockstep boots; -EINVAL saying why not. */
static int check_image(const uint8_t *image, size_t len, const char *path, char *err,
		       size_t err_len)
{
	char why[256];
	uint64_t entry;
	int ret;

	switch (vmdef_image_kind(image, len)) {
	case VMDEF_IMAGE_BZIMAGE:
	case VMDEF_IMAGE_MULTIBOOT:
		return 0;
	case VMDEF_IMAGE_ELF:
		ret = vmdef_pvh_entry(image, len, &entry, why, sizeof(why));
		if (!ret)
			return 0;
		if (ret != -ENOENT)
			return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path, why);
		return util_error(err, err_len, -EINVAL,
				  "\"kernel\": %s is an ELF file with no multiboot header in the "
				  "first 8 KiB and no PVH entry note (a vmlinux built without "
				  "CONFIG_PVH?)",
				  path);
	default:
		return util_error(
			err, err_len, -EINVAL,
			"\"kernel\": %s is not a bootable image: lockstep boots multiboot "
			"v1 images (a header in the first 8 KiB), Linux bzImages and "
			"vmlinux files with a PVH entry",
			path);
	}
}

int vmdef_kernel_check_fd(int fd, const char *path, char *err, size_t err_len)
{
	struct stat st;
	void *map;
	int ret;

	/* Every failure is the definition's (-EINVAL), whatever errno said why. */
	if (fstat(fd, &st) < 0)
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path,
				  strerror(errno));
	if (!S_ISREG(st.st_mode))
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s is not a regular file",
				  path);
	if (st.st_size == 0)
		return check_image((const uint8_t *)"", 0, path, err, err_len);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path,
				  strerror(errno));
	ret = check_image(map, (size_t)st.st_size, path, err, err_len);
	munmap(map, (size_t)st.st_size);
	return ret;
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
