/*
 * Writes the binary seed inputs of the fuzz corpora: real multiboot images of each kind the
 * loader accepts (built by tests/unit/vm/vmtest_image.c), the same with a Linux bzImage and
 * a PVH vmlinux for the boot target, and device access sequences in the
 * encoding of devices.c (a UART line, an fw_cfg directory walk, doorbell calls, a debug
 * exit, the power button and soft-off through the ACPI PM registers).  Usage: fuzz_mkseeds DIR, where DIR is tests/fuzz/corpus.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pvlock/abi.h"
#include "tests/unit/vm/vmtest.h"

static int write_seed(const char *dir, const char *sub, const char *name, const void *data,
		      size_t len)
{
	char path[512];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(path);
		return -errno;
	}
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static int elf_seed(const char *dir, const char *sub, const char *name,
		    const struct vmtest_elf *spec)
{
	uint8_t *img;
	size_t len;
	int ret = vmtest_build_elf(spec, &img, &len);

	if (ret)
		return ret;
	ret = write_seed(dir, sub, name, img, len);
	free(img);
	return ret;
}

static int multiboot_seeds(const char *dir)
{
	const struct vmtest_elf elf32 = {
		.entry = 0x100010,
		.nr_segments = 2,
		.seg = { { .paddr = 0x100000, .vaddr = 0x100000, .filesz = 0x200, .memsz = 0x200 },
			 { .paddr = 0x101000,
			   .vaddr = 0x101000,
			   .filesz = 0x40,
			   .memsz = 0x2000 } },
	};
	const struct vmtest_elf elf64 = {
		.is64 = true,
		.entry = 0xffffffff80100020ull,
		.nr_segments = 3,
		.mb_flags = 0x3,
		.seg = { { .type = PT_NOTE, .filesz = 0x20, .memsz = 0x20 },
			 { .paddr = 0x100000,
			   .vaddr = 0xffffffff80100000ull,
			   .filesz = 0x100,
			   .memsz = 0x100 },
			 { .paddr = 0x200000,
			   .vaddr = 0xffffffff80200000ull,
			   .filesz = 0x10,
			   .memsz = 0x1000 } },
	};
	const struct vmtest_flat flat = { .load_addr = 0x100000,
					  .header_offset = 0x10,
					  .file_size = 0x400,
					  .bss_end_addr = 0x102000,
					  .entry_addr = 0x100040 };
	uint8_t *img;
	size_t len;
	int ret;

	ret = elf_seed(dir, "multiboot", "elf32-two-segments", &elf32);
	if (!ret)
		ret = elf_seed(dir, "multiboot", "elf64-higher-half", &elf64);
	if (!ret)
		ret = elf_seed(dir, "boot", "multiboot-elf32", &elf32);
	if (ret)
		return ret;
	ret = vmtest_build_flat(&flat, &img, &len);
	if (ret)
		return ret;
	ret = write_seed(dir, "multiboot", "flat-aout-kludge", img, len);
	free(img);
	return ret;
}

/* A bzImage and a PVH vmlinux, small enough for the fuzzer's 64 KiB inputs. */
static int linux_seeds(const char *dir)
{
	const struct vmtest_bzimage bz = { .setup_sects = 2,
					   .payload = 0x800,
					   .init_size = 0x10000,
					   .cmdline_size = 255,
					   .initrd_addr_max = 0x7fffffff };
	struct vmtest_elf pvh = {
		.is64 = true,
		.nr_segments = 2,
		.no_multiboot = true,
		.seg = { { .paddr = 0x1000000,
			   .vaddr = 0xffffffff81000000ull,
			   .filesz = 0x100,
			   .memsz = 0x2000 },
			 { .type = PT_NOTE, .filesz = 0x14 } },
	};
	uint32_t entry = 0x1000010;
	uint8_t *img;
	size_t len;
	int ret;

	ret = vmtest_build_bzimage(&bz, &img, &len);
	if (ret)
		return ret;
	ret = write_seed(dir, "boot", "bzimage", img, len);
	/* odd length: the fuzz target adds an initrd */
	if (!ret)
		ret = write_seed(dir, "boot", "bzimage-initrd", img, len - 1);
	free(img);
	if (!ret)
		ret = vmtest_build_elf(&pvh, &img, &len);
	if (ret)
		return ret;
	vmtest_elf_note(img + vmtest_elf_data_offset(&pvh, 1), "Xen", 18, &entry, 4);
	ret = write_seed(dir, "boot", "pvh-vmlinux", img, len);
	free(img);
	return ret;
}

/* Appends one access in devices.c's encoding. */
static size_t op(uint8_t *p, unsigned target, bool write, unsigned size_bits, unsigned count_class,
		 uint16_t offset, const void *data, size_t len)
{
	p[0] = (uint8_t)(target | (write ? 4 : 0) | size_bits << 3 | count_class << 5);
	p[1] = (uint8_t)offset;
	p[2] = (uint8_t)(offset >> 8);
	if (write)
		memcpy(p + 3, data, len);
	return 3 + (write ? len : 0);
}

static int device_seeds(const char *dir)
{
	static const char line[] = "hello, lockstep!\n"; /* 17 bytes: count class 6 */
	const uint16_t dir_key = 0x19, sig_key = 0x00;
	uint8_t seq[512];
	size_t n = 0;
	int ret;

	/* COM1: LCR 8N1, a character, then one rep outsb of a line. */
	n += op(seq + n, 0, true, 0, 0, 3, "\x03", 1);
	n += op(seq + n, 0, true, 0, 0, 0, ">", 1);
	n += op(seq + n, 0, true, 0, 6, 0, line, 17);
	n += op(seq + n, 0, false, 0, 0, 5, NULL, 0);
	ret = write_seed(dir, "devices", "uart-line", seq, n);

	/* fw_cfg: the signature, then the file directory read by a rep insb. */
	n = 0;
	n += op(seq + n, 1, true, 1, 0, 0, &sig_key, 2);
	n += op(seq + n, 1, false, 0, 0, 1, NULL, 0);
	n += op(seq + n, 1, true, 1, 0, 0, &dir_key, 2);
	n += op(seq + n, 1, false, 0, 7, 1, NULL, 0);
	if (!ret)
		ret = write_seed(dir, "devices", "fwcfg-directory", seq, n);

	/* Doorbell: PROBE, NOP, TIME_NS as 8-byte reads, a misaligned one, a KICK write. */
	n = 0;
	n += op(seq + n, 3, false, 7, 0, LKS_DB_CALL(LKS_CALL_PROBE), NULL, 0);
	n += op(seq + n, 3, false, 7, 0, LKS_DB_CALL(LKS_CALL_NOP), NULL, 0);
	n += op(seq + n, 3, false, 7, 0, LKS_DB_CALL(LKS_CALL_TIME_NS), NULL, 0);
	n += op(seq + n, 3, false, 3, 0, 4, NULL, 0);
	n += op(seq + n, 3, true, 3, 0, LKS_DB_KICK, "\x01\0\0\0", 4);
	if (!ret)
		ret = write_seed(dir, "devices", "doorbell-calls", seq, n);

	/* Platform: a POST code, a reset without the go bit, then the debug exit. */
	n = 0;
	n += op(seq + n, 2, true, 0, 0, 6, "\x55", 1);
	n += op(seq + n, 2, true, 0, 0, 3, "\x02", 1);
	n += op(seq + n, 2, true, 0, 0, 0, "\x2a", 1);
	n += op(seq + n, 2, true, 0, 0, 5, "\xfe", 1);
	if (!ret)
		ret = write_seed(dir, "devices", "platform-exit", seq, n);

	/* ACPI PM: enable the power-button event, press it, read the status, the timer as one
	 * 32-bit read, clear the status byte-wise, then soft-off (SLP_TYP 5 + SLP_EN). */
	n = 0;
	n += op(seq + n, 2, true, 1, 0, 0x8002, "\x00\x01", 2);
	n += op(seq + n, 2, false, 1, 0, 0xc000, NULL, 0);
	n += op(seq + n, 2, false, 2, 0, 0x8008, NULL, 0);
	n += op(seq + n, 2, true, 0, 0, 0x8001, "\x01", 1);
	n += op(seq + n, 2, true, 1, 0, 0x8004, "\x01\x34", 2);
	if (!ret)
		ret = write_seed(dir, "devices", "acpi-pm-button-off", seq, n);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_mkseeds CORPUS_DIR\n");
		return 64;
	}
	if (multiboot_seeds(argv[1]) || linux_seeds(argv[1]) || device_seeds(argv[1]))
		return 1;
	return 0;
}
