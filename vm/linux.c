/*
 * Linux kernels, two ways in (Documentation/x86/boot.rst and the PVH ABI of Xen's
 * hvm/start_info.h):
 *
 *  - a bzImage through the x86 boot protocol's 32-bit entry: the protected-mode kernel at
 *    1 MiB, a zero page (boot_params) with the image's setup header, the E820 map, the command
 *    line, the initrd and the RSDP, and the boot processor in flat 32-bit protected mode with
 *    ESI pointing at boot_params.  The real-mode setup code is never run (there is no BIOS for
 *    it); its decompressor unpacks the kernel.
 *  - an uncompressed vmlinux (ELF) through the PVH entry its XEN_ELFNOTE_PHYS32_ENTRY note
 *    names: segments at their physical addresses, an hvm_start_info (version 1, with the
 *    memory map, the command line, the initrd as module 0 and the RSDP) and EBX pointing at
 *    it.  No decompression: the fastest way to boot.
 *
 * The image is untrusted: every header field is checked against the file and guest RAM before
 * it is used, and the first problem is reported in words.  Called by vm/boot.c on the control
 * thread while the VM is built.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "vm/vm_internal.h"

#define fail(err, err_len, ...) util_error((err), (err_len), -ENOEXEC, __VA_ARGS__)

/* The setup header in a bzImage and in boot_params (same offsets). */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_SYSSIZE 0x1f4
#define HDR_JUMP 0x200
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_CODE32_START 0x214
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_CMDLINE_SIZE 0x238
#define HDR_INIT_SIZE 0x260

#define BP_ACPI_RSDP_ADDR 0x070
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 0x1000

#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define LOADER_UNDEFINED 0xff	   /* type_of_loader: a loader with no assigned id */
#define PROTOCOL_MIN 0x0206	   /* 2.06: cmdline_size; relocatable kernels */
#define KERNEL_LOAD_ADDR 0x100000u /* where the 32-bit entry expects the protected-mode code */

/* The boot area's layout for a Linux kernel. */
#define BOOT_PARAMS_ADDR (VM_BOOT_AREA + 0x0)
#define START_INFO_ADDR (VM_BOOT_AREA + 0x0)
#define MODLIST_ADDR (VM_BOOT_AREA + 0x40)
#define MEMMAP_ADDR (VM_BOOT_AREA + 0x100)
#define CMDLINE_ADDR (VM_BOOT_AREA + 0x1000)

#define PVH_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static int put_cmdline(struct vm_memory *mem, const char *cmdline, size_t max, char *err,
		       size_t err_len)
{
	size_t len = cmdline ? strlen(cmdline) : 0;

	if (len > max)
		return fail(err, err_len,
			    "the command line is %zu bytes; this kernel takes at most %zu", len,
			    max);
	memcpy(vm_memory_ptr(mem, CMDLINE_ADDR, len + 1), cmdline ? cmdline : "", len + 1);
	return 0;
}

/* ---- bzImage ---- */

int vm_linux_load(struct vm_memory *mem, const struct vm_boot_files *files, const char *cmdline,
		  struct vm_boot_entry *entry, char *err, size_t err_len)
{
	const uint8_t *img = files->image;
	size_t len = files->len, setup_size, hdr_end, payload;
	uint32_t init_size, cmdline_max, initrd_addr = 0;
	struct vm_e820 map[BP_E820_MAX];
	uint16_t version;
	uint64_t need;
	unsigned n;
	uint8_t *bp;
	int ret;

	/* Every field read below lies before init_size's end: a shorter file is not a bzImage. */
	if (len < HDR_INIT_SIZE + 4)
		return fail(
			err, err_len,
			"truncated bzImage: %zu bytes, shorter than the setup header (%u bytes)",
			len, HDR_INIT_SIZE + 4);
	version = rd16(img + HDR_VERSION);
	if (version < PROTOCOL_MIN)
		return fail(
			err, err_len,
			"this bzImage speaks boot protocol %u.%02u; lockstep needs 2.06 or later "
			"(Linux 2.6.22 and later)",
			version >> 8, version & 0xff);
	if (!(img[HDR_LOADFLAGS] & LOADFLAG_LOADED_HIGH))
		return fail(err, err_len,
			    "a zImage (loaded low): lockstep boots bzImages, whose kernel loads at "
			    "1 MiB");
	setup_size = ((size_t)(img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4) + 1) * 512;
	/* The header ends where its jump instruction's offset says (0x202 + the byte at 0x201). */
	hdr_end = 0x202 + img[HDR_JUMP + 1];
	if (hdr_end > BP_E820_TABLE || hdr_end > len || setup_size >= len)
		return fail(err, err_len,
			    "truncated bzImage: the setup code or header lies past the end of the "
			    "file");
	payload = len - setup_size;
	init_size = version >= 0x020a ? rd32(img + HDR_INIT_SIZE) : 0;
	need = payload > init_size ? payload : init_size;
	ret = vm_boot_check_range(mem, KERNEL_LOAD_ADDR, need, err, err_len);
	if (ret)
		return ret;
	cmdline_max = rd32(img + HDR_CMDLINE_SIZE);
	if (cmdline_max > VMDEF_CMDLINE_MAX)
		cmdline_max = VMDEF_CMDLINE_MAX;
	ret = put_cmdline(mem, cmdline, cmdline_max, err, err_len);
	if (ret)
		return ret;
	ret = vm_boot_place_initrd(mem, files, KERNEL_LOAD_ADDR + need,
				   rd32(img + HDR_INITRD_ADDR_MAX), &initrd_addr, err, err_len);
	if (ret)
		return ret;
	memcpy(vm_memory_ptr(mem, KERNEL_LOAD_ADDR, payload), img + setup_size, payload);

	/* The zero page: the image's own setup header, then what the loader fills in. */
	bp = vm_memory_ptr(mem, BOOT_PARAMS_ADDR, BP_SIZE);
	memset(bp, 0, BP_SIZE);
	memcpy(bp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	bp[HDR_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP;
	bp[HDR_HEAP_END_PTR] = 0x00; /* 0xfe00: the setup heap's end, for completeness */
	bp[HDR_HEAP_END_PTR + 1] = 0xfe;
	wr32(bp + HDR_CODE32_START, KERNEL_LOAD_ADDR);
	wr32(bp + HDR_CMD_LINE_PTR, (uint32_t)CMDLINE_ADDR);
	wr32(bp + HDR_RAMDISK_IMAGE, initrd_addr);
	wr32(bp + HDR_RAMDISK_SIZE, files->initrd ? (uint32_t)files->initrd_len : 0);
	if (version >= 0x020e) {
		uint64_t rsdp = VM_ACPI_RSDP_ADDR;

		memcpy(bp + BP_ACPI_RSDP_ADDR, &rsdp, 8);
	}
	n = vm_boot_memory_map(mem, map, BP_E820_MAX);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++)
		memcpy(bp + BP_E820_TABLE + i * 20, &map[i], 20);
	vm_boot_write_gdt(mem);

	entry->entry = KERNEL_LOAD_ADDR;
	entry->esi = (uint32_t)BOOT_PARAMS_ADDR;
	entry->image_start = KERNEL_LOAD_ADDR;
	entry->image_end = KERNEL_LOAD_ADDR + need;
	return 0;
}

/* ---- PVH ---- */

int vm_pvh_load(struct vm_memory *mem, const struct vm_boot_files *files, const char *cmdline,
		struct vm_boot_entry *entry, char *err, size_t err_len)
{
	struct hvm_memmap_entry memmap[8];
	struct vm_e820 map[8];
	struct hvm_start_info info;
	struct vm_elf elf;
	uint64_t pvh_entry = 0, start = UINT64_MAX, end = 0;
	bool entry_found = false;
	uint32_t initrd_addr = 0;
	unsigned n;
	int ret;

	ret = vm_elf_parse(files->image, files->len, &elf, err, err_len);
	if (!ret)
		ret = vmdef_pvh_entry(files->image, files->len, &pvh_entry, err, err_len);
	if (ret)
		return ret == -ENOENT ? fail(err, err_len, "no PVH entry note") : ret;
	for (unsigned i = 0; i < elf.nr_segments; i++) {
		const struct vm_elf_segment *s = &elf.seg[i];

		ret = vm_boot_check_range(mem, s->paddr, s->memsz, err, err_len);
		if (ret)
			return ret;
		if (s->paddr < start)
			start = s->paddr;
		if (s->paddr + s->memsz > end)
			end = s->paddr + s->memsz;
		if (pvh_entry >= s->paddr && pvh_entry - s->paddr < s->memsz)
			entry_found = true;
	}
	if (!entry_found)
		return fail(err, err_len, "the PVH entry 0x%llx is in no loadable segment",
			    (unsigned long long)pvh_entry);
	ret = put_cmdline(mem, cmdline, VMDEF_CMDLINE_MAX, err, err_len);
	if (!ret)
		ret = vm_boot_place_initrd(mem, files, end, 0, &initrd_addr, err, err_len);
	if (ret)
		return ret;
	for (unsigned i = 0; i < elf.nr_segments; i++) {
		const struct vm_elf_segment *s = &elf.seg[i];
		uint8_t *dst = vm_memory_ptr(mem, s->paddr, s->memsz);

		memcpy(dst, files->image + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}

	n = vm_boot_memory_map(mem, map, 8);
	for (unsigned i = 0; i < n; i++)
		memmap[i] = (struct hvm_memmap_entry){ map[i].addr, map[i].size, map[i].type, 0 };
	memcpy(vm_memory_ptr(mem, MEMMAP_ADDR, n * sizeof(memmap[0])), memmap,
	       n * sizeof(memmap[0]));
	info = (struct hvm_start_info){
		.magic = PVH_MAGIC,
		.version = 1, /* with the memory map: Linux needs it outside Xen */
		.cmdline_paddr = CMDLINE_ADDR,
		.rsdp_paddr = VM_ACPI_RSDP_ADDR,
		.memmap_paddr = MEMMAP_ADDR,
		.memmap_entries = n,
	};
	if (files->initrd) {
		/* Linux takes the first module as its initrd. */
		struct hvm_modlist_entry mod = { .paddr = initrd_addr, .size = files->initrd_len };

		memcpy(vm_memory_ptr(mem, MODLIST_ADDR, sizeof(mod)), &mod, sizeof(mod));
		info.nr_modules = 1;
		info.modlist_paddr = MODLIST_ADDR;
	}
	memcpy(vm_memory_ptr(mem, START_INFO_ADDR, sizeof(info)), &info, sizeof(info));
	vm_boot_write_gdt(mem);

	entry->entry = (uint32_t)pvh_entry;
	entry->ebx = (uint32_t)START_INFO_ADDR;
	entry->image_start = start;
	entry->image_end = end;
	return 0;
}
