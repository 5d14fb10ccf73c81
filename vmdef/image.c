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
 * which may be anything; vmdef_kernel_check reads only the head, the ELF headers and the
 * notes with pread, and refuses a FIFO or a device without blocking on it.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmdef/vmdef.h"

#define MULTIBOOT_SEARCH 8192u
#define MULTIBOOT_MAGIC 0x1badb002u
#define LINUX_HDRS_OFFSET 0x202u
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define VMDEF_NOTES_MAX (1u << 20) /* a vmlinux's are a few hundred bytes */

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

/* The notes of one PT_NOTE segment: the PVH entry, if one is there. */
static int scan_notes(const uint8_t *notes, uint64_t size, uint64_t *entry, char *err,
		      size_t err_len)
{
	uint64_t pos = 0;

	while (size - pos >= 12) {
		const uint8_t *n = notes + pos;
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

/*
 * An image as the PVH search reads it: in memory (the worker has the whole file) or an open
 * file read with pread (lockstepd reads only the headers and the notes, and a file that
 * shrinks meanwhile is a short read, never a fault as a mapping's would be).
 */
struct image_reader {
	const uint8_t *mem;
	int fd;
	uint64_t size;
};

static int read_at(const struct image_reader *r, void *buf, uint64_t len, uint64_t off)
{
	ssize_t n;

	if (off > r->size || len > r->size - off)
		return -ERANGE;
	if (r->mem) {
		memcpy(buf, r->mem + off, len);
		return 0;
	}
	n = pread(r->fd, buf, len, (off_t)off);
	return n == (ssize_t)len ? 0 : -EIO;
}

static int pvh_find(const struct image_reader *r, uint64_t *entry, char *err, size_t err_len)
{
	union {
		Elf64_Ehdr e64;
		Elf32_Ehdr e32;
	} eh;
	uint64_t phoff, phnum, phentsize;
	bool is64;
	size_t phsize;

	if (read_at(r, &eh, sizeof(eh.e32), 0) || memcmp(eh.e32.e_ident, ELFMAG, SELFMAG) != 0)
		return bad_image(err, err_len, "not an ELF file");
	is64 = eh.e32.e_ident[EI_CLASS] == ELFCLASS64;
	if (is64 && read_at(r, &eh, sizeof(eh.e64), 0))
		return bad_image(err, err_len, "not an ELF file");
	phoff = is64 ? eh.e64.e_phoff : eh.e32.e_phoff;
	phnum = is64 ? eh.e64.e_phnum : eh.e32.e_phnum;
	phentsize = is64 ? eh.e64.e_phentsize : eh.e32.e_phentsize;
	phsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (phnum &&
	    (phentsize < phsize || phoff > r->size || phnum > (r->size - phoff) / phentsize))
		return bad_image(
			err, err_len,
			"the ELF program headers lie past the end of the file (truncated?)");
	for (uint64_t i = 0; i < phnum; i++) {
		union {
			Elf64_Phdr p64;
			Elf32_Phdr p32;
		} ph;
		uint64_t off, size;
		uint8_t *notes;
		int ret;

		if (read_at(r, &ph, phsize, phoff + i * phentsize))
			return bad_image(err, err_len, "the ELF file changed while it was read");
		if ((is64 ? ph.p64.p_type : ph.p32.p_type) != PT_NOTE)
			continue;
		off = is64 ? ph.p64.p_offset : ph.p32.p_offset;
		size = is64 ? ph.p64.p_filesz : ph.p32.p_filesz;
		if (off > r->size || size > r->size - off)
			return bad_image(
				err, err_len,
				"an ELF note segment lies past the end of the file (truncated?)");
		if (size > VMDEF_NOTES_MAX)
			return bad_image(err, err_len,
					 "an ELF note segment of %llu bytes (at most %u are read)",
					 (unsigned long long)size, VMDEF_NOTES_MAX);
		if (r->mem) {
			ret = scan_notes(r->mem + off, size, entry, err, err_len);
		} else {
			notes = malloc(size ? size : 1);
			if (!notes)
				return -ENOMEM;
			ret = read_at(r, notes, size, off) ?
				      bad_image(err, err_len,
						"the ELF file changed while it was read") :
				      scan_notes(notes, size, entry, err, err_len);
			free(notes);
		}
		if (ret != -ENOENT)
			return ret;
	}
	return -ENOENT;
}

int vmdef_pvh_entry(const uint8_t *image, size_t len, uint64_t *entry, char *err, size_t err_len)
{
	const struct image_reader r = { .mem = image, .fd = -1, .size = len };

	return pvh_find(&r, entry, err, err_len);
}

/* Whether the file is one lockstep boots; -EINVAL saying why not. */
static int check_image(const struct image_reader *r, const uint8_t *head, size_t head_len,
		       const char *path, char *err, size_t err_len)
{
	char why[256];
	uint64_t entry;
	int ret;

	switch (vmdef_image_kind(head, head_len)) {
	case VMDEF_IMAGE_BZIMAGE:
	case VMDEF_IMAGE_MULTIBOOT:
		return 0;
	case VMDEF_IMAGE_ELF:
		ret = pvh_find(r, &entry, why, sizeof(why));
		if (!ret)
			return 0;
		if (ret != -ENOENT)
			return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path,
					  ret == -ENOMEM ? strerror(ENOMEM) : why);
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
	uint8_t head[MULTIBOOT_SEARCH];
	struct image_reader r = { .mem = NULL, .fd = fd };
	struct stat st;
	ssize_t n;

	/* Every failure is the definition's (-EINVAL), whatever errno said why. */
	if (fstat(fd, &st) < 0)
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path,
				  strerror(errno));
	if (!S_ISREG(st.st_mode))
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s is not a regular file",
				  path);
	r.size = (uint64_t)st.st_size;
	n = pread(fd, head, sizeof(head), 0);
	if (n < 0)
		return util_error(err, err_len, -EINVAL, "\"kernel\": %s: %s", path,
				  strerror(errno));
	return check_image(&r, head, (size_t)n, path, err, err_len);
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
