/*
 * Fuzz target: guest images (vm_multiboot_load, and through it vm_multiboot_find and
 * vm_elf_parse), the untrusted file a definition names.  Each input is loaded into a fresh
 * 8 MiB VM.  A refusal must be -ENOEXEC with a message; an accepted image must lie in RAM
 * with the entry point inside its extent, and the multiboot information must be where EBX
 * says with the documented flags.  (Each segment is kept clear of the boot and firmware areas
 * by the loader; the extent of several segments may span them, so that is not checked here.)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm_internal.h"

#define RAM (8ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_boot_entry entry = { 0 };
	struct vm_memory mem;
	char err[256] = "";
	const uint32_t *mbi;
	int ret;

	if (vm_memory_init(&mem, RAM))
		abort();
	ret = vm_multiboot_load(&mem, data, size, "console=ttyS0", &entry, err, sizeof(err));
	if (ret) {
		if (ret != -ENOEXEC || !err[0])
			abort();
		vm_memory_fini(&mem);
		return 0;
	}
	if (entry.image_start >= entry.image_end || entry.image_end > RAM)
		abort();
	if (entry.entry < entry.image_start || entry.entry >= entry.image_end)
		abort();
	if (entry.ebx != VM_BOOT_AREA)
		abort();
	mbi = vm_memory_ptr(&mem, entry.ebx, 4);
	if (!mbi || *mbi != 0x245)
		abort();
	vm_memory_fini(&mem);
	return 0;
}
