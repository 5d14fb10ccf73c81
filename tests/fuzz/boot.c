/*
 * Fuzz target: whatever file a definition names as its kernel, through vm_boot_load (the
 * choice of protocol, and the multiboot, bzImage and PVH loaders with vm_elf_parse).  An
 * input of odd length also gets a small initrd.  Each input is loaded into a fresh 32 MiB VM.
 * A refusal must be -ENOEXEC with a message; an accepted image must lie in RAM with the entry
 * point inside its extent, and the boot information must be where the entry registers say:
 * the multiboot information (EBX), Linux's boot_params with its setup header (ESI), or PVH's
 * start info with its magic (EBX).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm_internal.h"

#define RAM (32ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t initrd[300] = { 0x30, 0x37, 0x30, 0x37, 0x30, 0x31 }; /* "070701" */

static void check(const struct vm_memory *mem, const struct vm_boot_entry *e)
{
	const uint8_t *p;

	if (e->image_start >= e->image_end || e->image_end > RAM)
		abort();
	if (e->entry < e->image_start || e->entry >= e->image_end)
		abort();
	switch (e->kind) {
	case VM_BOOT_MULTIBOOT:
		p = vm_memory_ptr(mem, e->ebx, 4);
		if (e->ebx != VM_BOOT_AREA || e->eax != 0x2badb002 || !p || p[0] != 0x45)
			abort();
		break;
	case VM_BOOT_LINUX:
		p = vm_memory_ptr(mem, e->esi, 4096);
		if (e->esi != VM_BOOT_AREA || e->entry != 0x100000 || !p ||
		    memcmp(p + 0x202, "HdrS", 4) != 0 || p[0x210] != 0xff)
			abort();
		break;
	case VM_BOOT_PVH:
		p = vm_memory_ptr(mem, e->ebx, 56);
		if (e->ebx != VM_BOOT_AREA || !p || memcmp(p, "\x78\xc5\x6e\x33", 4) != 0)
			abort();
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_boot_files files = { .image = data, .len = size };
	struct vm_boot_entry entry = { 0 };
	struct vm_memory mem;
	char err[256] = "";
	int ret;

	if (size & 1) {
		files.initrd = initrd;
		files.initrd_len = sizeof(initrd);
	}
	if (vm_memory_init(&mem, RAM))
		abort();
	ret = vm_boot_load(&mem, &files, "console=ttyS0", &entry, err, sizeof(err));
	if (ret) {
		if (ret != -ENOEXEC || !err[0])
			abort();
	} else {
		check(&mem, &entry);
	}
	vm_memory_fini(&mem);
	return 0;
}
