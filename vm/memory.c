/*
 * Guest RAM: one anonymous mapping, split into KVM slots around the 32-bit MMIO hole (RAM
 * above 3 GiB is placed at 4 GiB), and the bounds-checked translation every device and loader
 * uses to touch guest memory.  A guest-supplied address that is not wholly inside RAM yields
 * NULL, never a pointer past the mapping.
 */
#include <errno.h>
#include <sys/mman.h>

#include "vm/vm_internal.h"

enum {
	SLOT_LOW = 0,
	SLOT_HIGH = 1
};

#define HUGE_ALIGN (2ull << 20)

/*
 * The mapping starts on a 2 MiB boundary, as QEMU's RAM does: KVM maps a guest page with a
 * 2 MiB entry in its nested page table only where the guest-physical and the host-virtual
 * address agree modulo 2 MiB and the host has a huge page there.  A mapping that starts
 * elsewhere gets huge pages from the host (MADV_HUGEPAGE) but 4 KiB entries from KVM: every
 * 4 KiB the guest touches first is a nested page fault, which a nested KVM pays dearly for.
 */
static void *map_aligned(uint64_t size)
{
	uint8_t *raw, *host;
	uint64_t head;

	raw = mmap(NULL, size + HUGE_ALIGN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return MAP_FAILED;
	host = (uint8_t *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
	head = (uint64_t)(host - raw);
	if (head)
		munmap(raw, head);
	munmap(host + size, HUGE_ALIGN - head);
	return host;
}

int vm_memory_init(struct vm_memory *mem, uint64_t size)
{
	void *host;

	if (size == 0 || size > VMDEF_MEMORY_MAX)
		return -EINVAL;
	host = map_aligned(size);
	if (host == MAP_FAILED)
		return -errno;
	/* Best effort: fewer TLB misses for the guest; not every host allows it. */
	madvise(host, size, MADV_HUGEPAGE);
	*mem = (struct vm_memory){
		.host = host,
		.size = size,
		.low_size = size < VM_LOW_RAM_END ? size : VM_LOW_RAM_END,
	};
	mem->high_size = size - mem->low_size;
	return 0;
}

void vm_memory_fini(struct vm_memory *mem)
{
	if (mem->host)
		munmap(mem->host, mem->size);
	mem->host = NULL;
}

int vm_memory_map(struct vm_memory *mem, struct hv_vm *hv)
{
	int ret;

	ret = hv_vm_set_memory(hv, SLOT_LOW, 0, mem->low_size, mem->host, false);
	if (ret || !mem->high_size)
		return ret;
	return hv_vm_set_memory(hv, SLOT_HIGH, VM_HIGH_RAM_BASE, mem->high_size,
				mem->host + mem->low_size, false);
}

void *vm_memory_ptr(const struct vm_memory *mem, uint64_t gpa, uint64_t len)
{
	if (len > mem->size)
		return NULL;
	if (gpa < mem->low_size && len <= mem->low_size - gpa)
		return mem->host + gpa;
	if (gpa >= VM_HIGH_RAM_BASE && gpa - VM_HIGH_RAM_BASE < mem->high_size &&
	    len <= mem->high_size - (gpa - VM_HIGH_RAM_BASE))
		return mem->host + mem->low_size + (gpa - VM_HIGH_RAM_BASE);
	return NULL;
}
