/*
 * Boot loading: which kind of kernel an image is and how it is placed.  lockstep boots
 * multiboot v1 images (its guest programs, vm/multiboot.c), Linux bzImages through the x86
 * boot protocol and uncompressed vmlinux files through their PVH entry (vm/linux.c).  The
 * image decides, never a setting, in QEMU's order for -kernel (so a file boots the same way
 * under both): a Linux setup header, then a multiboot header, then a PVH note.  A file that
 * is none of them gets an error saying what was looked for.
 *
 * Also here, shared by every loader so that the guest sees one machine whatever it boots: the
 * memory map (multiboot's mmap, Linux's E820, PVH's memmap), the checks that keep an image
 * out of the boot area and the firmware tables, the placement of an initial ramdisk, and the
 * GDT the Linux entries need.  Called once, by the control thread while it builds the VM.
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/pci.h"
#include "vm/vm_internal.h"

#define fail(err, err_len, ...) util_error((err), (err_len), -ENOEXEC, __VA_ARGS__)

const char *vm_boot_kind_name(enum vm_boot_kind kind)
{
	switch (kind) {
	case VM_BOOT_MULTIBOOT:
		return "multiboot";
	case VM_BOOT_LINUX:
		return "linux-bzimage";
	case VM_BOOT_PVH:
		return "linux-pvh";
	default:
		return "?";
	}
}

unsigned vm_boot_memory_map(const struct vm_memory *mem, struct vm_e820 *map, unsigned max)
{
	const struct vm_e820 all[] = {
		{ 0, VM_EBDA_BASE, VM_E820_RAM },
		{ VM_EBDA_BASE, 0xa0000 - VM_EBDA_BASE, VM_E820_RESERVED },
		{ VM_FIRMWARE_BASE, VM_FIRMWARE_SIZE, VM_E820_RESERVED },
		{ 0x100000, mem->low_size - 0x100000, VM_E820_RAM },
		/* the MCFG's ECAM window, which kernels want reserved before they trust it */
		{ VM_PCI_ECAM_BASE, VM_PCI_ECAM_SIZE, VM_E820_RESERVED },
		{ VM_HIGH_RAM_BASE, mem->high_size, VM_E820_RAM },
	};
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
		if (all[i].size)
			map[n++] = all[i];
	return n;
}

int vm_boot_check_range(const struct vm_memory *mem, uint64_t start, uint64_t size, char *err,
			size_t err_len)
{
	uint64_t end = start + size;

	if (end < start || !vm_memory_ptr(mem, start, size))
		return fail(err, err_len,
			    "the image needs guest memory [0x%llx, 0x%llx), outside the VM's %llu "
			    "MiB of RAM: give the VM more memory",
			    (unsigned long long)start, (unsigned long long)end,
			    (unsigned long long)(mem->size >> 20));
	if (start < VM_BOOT_AREA + VM_BOOT_AREA_SIZE && end > VM_BOOT_AREA)
		return fail(err, err_len, "the image overlaps the boot area [0x10000, 0x20000)");
	if (start < VM_FIRMWARE_BASE + VM_FIRMWARE_SIZE && end > VM_EBDA_BASE)
		return fail(err, err_len,
			    "the image overlaps the firmware area [0x9fc00, 0x100000): link it at "
			    "1 MiB or above");
	return 0;
}

int vm_boot_place_initrd(struct vm_memory *mem, const struct vm_boot_files *files,
			 uint64_t kernel_end, uint64_t max_addr, uint32_t *addr, char *err,
			 size_t err_len)
{
	uint64_t top = mem->low_size, start;

	*addr = 0;
	if (!files->initrd)
		return 0;
	/* As a boot loader does: page-aligned, as high in low RAM as the kernel allows. */
	if (max_addr && max_addr + 1 < top)
		top = max_addr + 1;
	if (files->initrd_len > top || ((top - files->initrd_len) & ~0xfffull) < kernel_end)
		return fail(err, err_len,
			    "the initrd (%llu KiB) does not fit in the VM's %llu MiB of RAM beside "
			    "the kernel (which ends at %llu MiB): give the VM more memory",
			    (unsigned long long)(files->initrd_len >> 10),
			    (unsigned long long)(mem->size >> 20),
			    (unsigned long long)((kernel_end + (1 << 20) - 1) >> 20));
	start = (top - files->initrd_len) & ~0xfffull;
	memcpy(vm_memory_ptr(mem, start, files->initrd_len), files->initrd, files->initrd_len);
	*addr = (uint32_t)start;
	return 0;
}

void vm_boot_write_gdt(struct vm_memory *mem)
{
	/* Null, null, then flat 4 GiB code (0x10) and data (0x18): Linux's __BOOT_CS/__BOOT_DS. */
	static const uint64_t gdt[] = { 0, 0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull };

	memcpy(vm_memory_ptr(mem, VM_BOOT_GDT, sizeof(gdt)), gdt, sizeof(gdt));
}

/* As QEMU's -kernel does: the image's file name is a multiboot command line's first word. */
static int load_multiboot(struct vm_memory *mem, const struct vm_boot_files *files,
			  const char *cmdline, struct vm_boot_entry *entry, char *err,
			  size_t err_len)
{
	char *line;
	int ret;

	if (asprintf(&line, "%s %s", files->name ? files->name : "", cmdline ? cmdline : "") < 0)
		return -ENOMEM;
	ret = vm_multiboot_load(mem, files->image, files->len, line, entry, err, err_len);
	free(line);
	return ret;
}

int vm_boot_load(struct vm_memory *mem, const struct vm_boot_files *files, const char *cmdline,
		 struct vm_boot_entry *entry, char *err, size_t err_len)
{
	enum vmdef_image_kind kind = vmdef_image_kind(files->image, files->len);
	struct vm_multiboot_header hdr;
	struct vm_elf parsed;
	bool elf = files->len >= SELFMAG && memcmp(files->image, ELFMAG, SELFMAG) == 0;
	uint64_t pvh_entry;
	int ret;

	*entry = (struct vm_boot_entry){ .kind = VM_BOOT_MULTIBOOT };
	if (kind == VMDEF_IMAGE_BZIMAGE) {
		entry->kind = VM_BOOT_LINUX;
		return vm_linux_load(mem, files, cmdline, entry, err, err_len);
	}
	if (elf) {
		/* An ELF file is checked as one first: "truncated" says more than "no header". */
		ret = vm_elf_parse(files->image, files->len, &parsed, err, err_len);
		if (ret)
			return ret;
	}
	if (kind == VMDEF_IMAGE_MULTIBOOT &&
	    vm_multiboot_find(files->image, files->len, &hdr) == 0) {
		if (files->initrd)
			return fail(err, err_len,
				    "the kernel is a multiboot image and takes no initrd: lockstep "
				    "passes an initrd to Linux kernels only");
		return load_multiboot(mem, files, cmdline, entry, err, err_len);
	}
	if (elf) {
		ret = vmdef_pvh_entry(files->image, files->len, &pvh_entry, err, err_len);
		if (ret != -ENOENT) {
			if (ret)
				return ret;
			entry->kind = VM_BOOT_PVH;
			return vm_pvh_load(mem, files, cmdline, entry, err, err_len);
		}
	}
	if (elf)
		return fail(
			err, err_len,
			"an ELF file with no multiboot header in the first 8 KiB and no PVH "
			"entry note (a vmlinux built without CONFIG_PVH?): lockstep boots "
			"multiboot v1 images, Linux bzImages and vmlinux files with a PVH entry");
	return fail(err, err_len,
		    "not a kernel lockstep can boot: no multiboot header in the first 8 KiB, no "
		    "Linux setup header (\"HdrS\" of a bzImage) and not an ELF file");
}
