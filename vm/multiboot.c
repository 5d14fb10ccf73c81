/*
 * Multiboot v1 loading: find the header, place the image (ELF segments at their physical
 * addresses, or a flat image through the header's address fields), build the multiboot
 * information (memory map, command line, loader name) in the boot area, and say where the
 * boot processor enters.
 *
 * The same images boot under QEMU's -kernel, so the rules follow the multiboot specification:
 * header in the first 8 KiB on a 4-byte boundary, flags 0-15 are requirements the loader must
 * meet or refuse.  Images must not overlap the boot area or the firmware tables.
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vm/vm_internal.h"

#define MB_BOOT_MAGIC 0x2badb002u
#define MB_FLAG_PAGE_ALIGN (1u << 0)
#define MB_FLAG_MEMORY_INFO (1u << 1)
#define MB_FLAG_VIDEO_MODE (1u << 2)
#define MB_FLAG_AOUT_KLUDGE (1u << 16)
#define MB_SUPPORTED_REQS (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO | MB_FLAG_VIDEO_MODE)

#define MBI_MEM (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MMAP (1u << 6)
#define MBI_LOADER_NAME (1u << 9)

/* Layout of the boot area. */
#define MBI_ADDR (VM_BOOT_AREA + 0x0)
#define MMAP_ADDR (VM_BOOT_AREA + 0x100)
#define LOADER_NAME_ADDR (VM_BOOT_AREA + 0x400)
#define CMDLINE_ADDR (VM_BOOT_AREA + 0x800)

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr, drives_length, drives_addr, config_table;
	uint32_t boot_loader_name, apm_table;
};

struct mb_mmap_entry {
	uint32_t size; /* of the rest of the entry: 20 */
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

/* Fails with a message for a person; -ENOEXEC. */
#define fail(err, err_len, ...) util_error((err), (err_len), -ENOEXEC, __VA_ARGS__)

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

int vm_multiboot_find(const uint8_t *image, size_t len, struct vm_multiboot_header *hdr)
{
	int off = vmdef_multiboot_offset(image, len);
	const uint8_t *p;

	if (off < 0)
		return off;
	p = image + off;
	*hdr = (struct vm_multiboot_header){ .offset = (size_t)off, .flags = rd32(p + 4) };
	if (hdr->flags & MB_FLAG_AOUT_KLUDGE) {
		if ((size_t)off + 32 > len)
			return -ENOENT;
		hdr->header_addr = rd32(p + 12);
		hdr->load_addr = rd32(p + 16);
		hdr->load_end_addr = rd32(p + 20);
		hdr->bss_end_addr = rd32(p + 24);
		hdr->entry_addr = rd32(p + 28);
	}
	return 0;
}

static int load_elf(struct vm_memory *mem, const uint8_t *image, size_t len,
		    struct vm_boot_entry *entry, char *err, size_t err_len)
{
	struct vm_elf elf;
	bool entry_found = false;
	int ret;

	ret = vm_elf_parse(image, len, &elf, err, err_len);
	if (ret)
		return ret;
	entry->image_start = UINT64_MAX;
	entry->image_end = 0;
	for (unsigned i = 0; i < elf.nr_segments; i++) {
		const struct vm_elf_segment *s = &elf.seg[i];
		uint8_t *dst;

		ret = vm_boot_check_range(mem, s->paddr, s->memsz, err, err_len);
		if (ret)
			return ret;
		dst = vm_memory_ptr(mem, s->paddr, s->memsz);
		memcpy(dst, image + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
		if (s->paddr < entry->image_start)
			entry->image_start = s->paddr;
		if (s->paddr + s->memsz > entry->image_end)
			entry->image_end = s->paddr + s->memsz;
		/* The entry is a virtual address; multiboot enters with paging off. */
		if (!entry_found && elf.entry >= s->vaddr && elf.entry - s->vaddr < s->memsz) {
			uint64_t phys = elf.entry - s->vaddr + s->paddr;

			if (phys >= (1ull << 32))
				return fail(err, err_len, "the entry point 0x%llx is above 4 GiB",
					    (unsigned long long)phys);
			entry->entry = (uint32_t)phys;
			entry_found = true;
		}
	}
	if (!entry_found)
		return fail(err, err_len, "the ELF entry point 0x%llx is in no loadable segment",
			    (unsigned long long)elf.entry);
	return 0;
}

static int load_flat(struct vm_memory *mem, const uint8_t *image, size_t len,
		     const struct vm_multiboot_header *h, struct vm_boot_entry *entry, char *err,
		     size_t err_len)
{
	uint64_t load_offset, load_size, load_end, bss_end;
	int ret;

	if (h->header_addr < h->load_addr || h->header_addr - h->load_addr > h->offset)
		return fail(err, err_len, "multiboot header_addr/load_addr are inconsistent");
	load_offset = h->offset - (h->header_addr - h->load_addr);
	load_end = h->load_end_addr ? h->load_end_addr : h->load_addr + (len - load_offset);
	if (load_end < h->load_addr || load_end - h->load_addr > len - load_offset)
		return fail(err, err_len, "multiboot load_end_addr lies past the end of the image");
	load_size = load_end - h->load_addr;
	bss_end = h->bss_end_addr ? h->bss_end_addr : load_end;
	if (bss_end < load_end)
		return fail(err, err_len, "multiboot bss_end_addr is below load_end_addr");
	ret = vm_boot_check_range(mem, h->load_addr, bss_end - h->load_addr, err, err_len);
	if (ret)
		return ret;
	if (h->entry_addr < h->load_addr || h->entry_addr >= load_end)
		return fail(err, err_len, "multiboot entry_addr 0x%x is outside the loaded image",
			    h->entry_addr);
	memcpy(vm_memory_ptr(mem, h->load_addr, load_size), image + load_offset, load_size);
	if (bss_end > load_end) /* an empty range at the end of RAM has no pointer */
		memset(vm_memory_ptr(mem, load_end, bss_end - load_end), 0, bss_end - load_end);
	entry->entry = h->entry_addr;
	entry->image_start = h->load_addr;
	entry->image_end = bss_end;
	return 0;
}

static void build_mmap(const struct vm_memory *mem, struct mb_info *mbi)
{
	struct vm_e820 ranges[8];
	struct mb_mmap_entry map[8];
	unsigned n = vm_boot_memory_map(mem, ranges, 8);

	for (unsigned i = 0; i < n; i++)
		map[i] = (struct mb_mmap_entry){ 20, ranges[i].addr, ranges[i].size,
						 ranges[i].type };
	memcpy(vm_memory_ptr(mem, MMAP_ADDR, n * sizeof(map[0])), map, n * sizeof(map[0]));
	mbi->flags |= MBI_MMAP | MBI_MEM;
	mbi->mmap_addr = (uint32_t)MMAP_ADDR;
	mbi->mmap_length = n * (uint32_t)sizeof(map[0]);
	mbi->mem_lower = (uint32_t)(VM_EBDA_BASE >> 10);
	mbi->mem_upper = (uint32_t)((mem->low_size - 0x100000) >> 10);
}

int vm_multiboot_load(struct vm_memory *mem, const uint8_t *image, size_t len, const char *cmdline,
		      struct vm_boot_entry *entry, char *err, size_t err_len)
{
	static const char loader_name[] = "lockstep";
	struct vm_multiboot_header hdr;
	struct mb_info mbi = { 0 };
	size_t cmdline_len = cmdline ? strlen(cmdline) : 0;
	int ret;

	if (mem->low_size < 2ull << 20)
		return fail(err, err_len, "the VM needs at least 2 MiB of RAM");
	if (cmdline_len > VM_BOOT_CMDLINE_MAX)
		return fail(err, err_len, "the command line is longer than %d bytes",
			    VM_BOOT_CMDLINE_MAX);
	/* An ELF file is checked as one first: "truncated" says more than "no header". */
	if (len >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0) {
		struct vm_elf elf;

		ret = vm_elf_parse(image, len, &elf, err, err_len);
		if (ret)
			return ret;
	}
	if (vm_multiboot_find(image, len, &hdr))
		return fail(err, err_len,
			    "no multiboot header in the first 8 KiB: lockstep boots "
			    "multiboot v1 images");
	if (hdr.flags & 0xffffu & ~MB_SUPPORTED_REQS)
		return fail(err, err_len,
			    "the image requires multiboot features 0x%x that "
			    "lockstep does not provide",
			    hdr.flags & 0xffffu & ~MB_SUPPORTED_REQS);
	if (hdr.flags & MB_FLAG_AOUT_KLUDGE)
		ret = load_flat(mem, image, len, &hdr, entry, err, err_len);
	else
		ret = load_elf(mem, image, len, entry, err, err_len);
	if (ret)
		return ret;

	build_mmap(mem, &mbi);
	memcpy(vm_memory_ptr(mem, LOADER_NAME_ADDR, sizeof(loader_name)), loader_name,
	       sizeof(loader_name));
	mbi.flags |= MBI_LOADER_NAME | MBI_CMDLINE;
	mbi.boot_loader_name = (uint32_t)LOADER_NAME_ADDR;
	mbi.cmdline = (uint32_t)CMDLINE_ADDR;
	memcpy(vm_memory_ptr(mem, CMDLINE_ADDR, cmdline_len + 1), cmdline ? cmdline : "",
	       cmdline_len + 1);
	memcpy(vm_memory_ptr(mem, MBI_ADDR, sizeof(mbi)), &mbi, sizeof(mbi));
	entry->kind = VM_BOOT_MULTIBOOT;
	entry->eax = MB_BOOT_MAGIC;
	entry->ebx = (uint32_t)MBI_ADDR;
	return 0;
}
