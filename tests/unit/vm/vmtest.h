/*
 * Helpers shared by the vm/ unit tests and the fuzz targets: guest images built in memory
 * (ELF32/ELF64 with a multiboot header, flat a.out-kludge images) and a hand-built struct vm
 * with just what the platform devices use (definition, RAM, log, rate limit, stop eventfd,
 * buses), since the real vm_create() needs /dev/kvm.
 *
 * Nothing here uses cmocka: failures are returned, the callers assert.
 */
#ifndef LOCKSTEP_TESTS_VMTEST_H
#define LOCKSTEP_TESTS_VMTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm/vm_internal.h"

/* ---- guest images ---- */

#define VMTEST_MB_MAGIC 0x1badb002u
#define VMTEST_MB_AOUT_KLUDGE (1u << 16)
#define VMTEST_MAX_SEGMENTS 40

/* File layout of a built ELF image: where each piece sits, so tests can cut or corrupt it. */
#define VMTEST_ELF_MB_OFFSET 0x40    /* multiboot header, after the (64-byte) ELF header */
#define VMTEST_ELF_PHOFF 0x80	     /* program headers */
#define VMTEST_ELF_DATA 0x3000	     /* first segment's bytes (past the 8 KiB header search) */
#define VMTEST_ELF_DATA_ALIGN 0x1000 /* each segment's bytes start on this boundary */

struct vmtest_segment {
	uint32_t type; /* 0 means PT_LOAD */
	uint64_t paddr, vaddr;
	uint64_t filesz, memsz;
};

struct vmtest_elf {
	bool is64;
	uint64_t entry;
	unsigned nr_segments;
	struct vmtest_segment seg[VMTEST_MAX_SEGMENTS];
	bool no_multiboot;
	size_t mb_offset; /* 0: VMTEST_ELF_MB_OFFSET */
	uint32_t mb_flags;
};

/* The byte a built image holds at position `k` of segment `seg`'s file data. */
static inline uint8_t vmtest_pattern(unsigned seg, uint64_t k)
{
	return (uint8_t)(0x5b * (seg + 1) + k * 7 + 1);
}

/* Writes a valid multiboot header (magic, flags, checksum) at `p`. */
void vmtest_mb_header(uint8_t *p, uint32_t flags);
/* Builds an ELF executable as described; *out is malloc'ed.  0 or -errno. */
int vmtest_build_elf(const struct vmtest_elf *spec, uint8_t **out, size_t *len);
/* File offset of segment `i`'s bytes in an image built from `spec`. */
uint64_t vmtest_elf_data_offset(const struct vmtest_elf *spec, unsigned i);

struct vmtest_flat {
	uint32_t load_addr;
	size_t header_offset; /* header_addr = load_addr + header_offset unless header_addr set */
	uint32_t header_addr;
	size_t file_size;
	uint32_t load_end_addr, bss_end_addr, entry_addr;
	uint32_t extra_flags;
};

/* A flat image: `file_size` bytes of vmtest_pattern(0, k) with the a.out-kludge header. */
int vmtest_build_flat(const struct vmtest_flat *spec, uint8_t **out, size_t *len);

/* A bzImage: the setup sectors with a setup header, then `payload` bytes of
 * vmtest_pattern(0, k) (the protected-mode kernel). */
struct vmtest_bzimage {
	uint8_t setup_sects; /* 0 means 4, as in the boot protocol */
	uint16_t version;    /* 0: 2.15 */
	uint8_t loadflags;   /* 0: LOADED_HIGH */
	bool zimage;	     /* loadflags 0 (LOADED_HIGH clear) */
	uint8_t hdr_len;     /* the byte at 0x201: the header ends at 0x202 + it (0: 0x6a) */
	size_t payload;
	uint32_t init_size, cmdline_size, initrd_addr_max;
};

/* Offsets of the setup header (in the image and in boot_params). */
#define VMTEST_HDR_SETUP_SECTS 0x1f1
#define VMTEST_HDR_VERSION 0x206
#define VMTEST_HDR_TYPE_OF_LOADER 0x210
#define VMTEST_HDR_LOADFLAGS 0x211
#define VMTEST_HDR_CODE32_START 0x214
#define VMTEST_HDR_RAMDISK_IMAGE 0x218
#define VMTEST_HDR_RAMDISK_SIZE 0x21c
#define VMTEST_HDR_CMD_LINE_PTR 0x228
#define VMTEST_HDR_INITRD_ADDR_MAX 0x22c
#define VMTEST_HDR_CMDLINE_SIZE 0x238
#define VMTEST_HDR_PREF_ADDRESS 0x258
#define VMTEST_HDR_INIT_SIZE 0x260

int vmtest_build_bzimage(const struct vmtest_bzimage *spec, uint8_t **out, size_t *len);
/* File offset of a built bzImage's protected-mode kernel. */
size_t vmtest_bzimage_payload_offset(const struct vmtest_bzimage *spec);

/* Writes an ELF note (name, type, desc) at `p`; returns its size with padding. */
size_t vmtest_elf_note(uint8_t *p, const char *name, uint32_t type, const void *desc,
		       uint32_t descsz);

/* ---- a machine without KVM ---- */

#define VMTEST_COM1_PORT 0x3f8
#define VMTEST_FWCFG_PORT 0x510

/*
 * A struct vm for device tests: cfg from vmdef_init() with `name`, `vcpus` and `memory`;
 * RAM from vm_memory_init(); log at debug level to `log_fd`; a guest rate limit that lets
 * `log_burst` messages through per second; a non-blocking stop eventfd; empty buses.
 */
struct vm *vmtest_vm_new(const char *name, uint32_t vcpus, uint64_t memory, int log_fd,
			 uint32_t log_burst);
void vmtest_vm_free(struct vm *vm);

/* Creates the UART (output to `serial_fd`), fw_cfg, platform ports, ACPI PM registers and
 * doorbell of `vm` and puts them on its buses at the addresses lockstep-vm uses.  The ACPI PM
 * block drives its SCI through vm->hv: a caller that lets the SCI move gives the VM one. */
int vmtest_vm_add_devices(struct vm *vm, int serial_fd);

/* A port or MMIO access as a vCPU exit delivers it. */
static inline struct vm_io vmtest_io(bool write, uint32_t size, uint32_t count, void *data,
				     struct vm_vcpu *vcpu)
{
	return (struct vm_io){
		.size = size,
		.count = count,
		.write = write,
		.data = data,
		.vcpu = vcpu,
	};
}

#endif /* LOCKSTEP_TESTS_VMTEST_H */
