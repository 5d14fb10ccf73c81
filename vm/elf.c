/*
 * ELF executable parsing for the boot loader.  The image is untrusted input (a user's file, or
 * a definition sent to the daemon): every header field is checked against the buffer before
 * anything trusts it, with overflow-safe arithmetic, and the first problem found is reported
 * in words.
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vm/vm_internal.h"

/* Fails with a message for a person; -ENOEXEC. */
#define fail(err, err_len, ...) util_error((err), (err_len), -ENOEXEC, __VA_ARGS__)

/* The program-header fields both classes share, widened to 64 bits. */
static void read_phdr(const uint8_t *p, bool is64, uint32_t *type, struct vm_elf_segment *seg)
{
	if (is64) {
		Elf64_Phdr ph;

		memcpy(&ph, p, sizeof(ph));
		*type = ph.p_type;
		*seg = (struct vm_elf_segment){ ph.p_paddr,  ph.p_vaddr, ph.p_offset,
						ph.p_filesz, ph.p_memsz, ph.p_flags };
	} else {
		Elf32_Phdr ph;

		memcpy(&ph, p, sizeof(ph));
		*type = ph.p_type;
		*seg = (struct vm_elf_segment){ ph.p_paddr,  ph.p_vaddr, ph.p_offset,
						ph.p_filesz, ph.p_memsz, ph.p_flags };
	}
}

int vm_elf_parse(const uint8_t *buf, size_t len, struct vm_elf *out, char *err, size_t err_len)
{
	uint64_t phoff, phnum, phentsize, entry;
	uint16_t type, machine;
	bool is64;

	if (len < EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG) != 0)
		return fail(err, err_len, "not an ELF file");
	if (buf[EI_CLASS] != ELFCLASS32 && buf[EI_CLASS] != ELFCLASS64)
		return fail(err, err_len, "unknown ELF class %u", buf[EI_CLASS]);
	if (buf[EI_DATA] != ELFDATA2LSB)
		return fail(err, err_len, "big-endian ELF: x86 images are little-endian");
	is64 = buf[EI_CLASS] == ELFCLASS64;
	if (len < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr)))
		return fail(err, err_len, "truncated ELF header (%zu bytes)", len);
	if (is64) {
		Elf64_Ehdr eh;

		memcpy(&eh, buf, sizeof(eh));
		type = eh.e_type;
		machine = eh.e_machine;
		entry = eh.e_entry;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
		if (phnum && phentsize < sizeof(Elf64_Phdr))
			return fail(err, err_len, "ELF program headers are too small");
	} else {
		Elf32_Ehdr eh;

		memcpy(&eh, buf, sizeof(eh));
		type = eh.e_type;
		machine = eh.e_machine;
		entry = eh.e_entry;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
		if (phnum && phentsize < sizeof(Elf32_Phdr))
			return fail(err, err_len, "ELF program headers are too small");
	}
	if (type != ET_EXEC)
		return fail(err, err_len, "ELF type %u is not an executable", type);
	if (machine != EM_386 && machine != EM_X86_64)
		return fail(err, err_len, "ELF machine %u is not x86", machine);
	if (phnum == 0)
		return fail(err, err_len, "ELF file has no program headers");
	if (phoff > len || phnum * phentsize > len - phoff)
		return fail(err, err_len,
			    "ELF program headers lie past the end of the file "
			    "(truncated?)");

	*out = (struct vm_elf){ .is64 = is64, .machine = machine, .entry = entry };
	for (uint64_t i = 0; i < phnum; i++) {
		struct vm_elf_segment seg;
		uint32_t ptype;

		read_phdr(buf + phoff + i * phentsize, is64, &ptype, &seg);
		if (ptype != PT_LOAD || seg.memsz == 0)
			continue;
		if (seg.filesz > seg.memsz)
			return fail(err, err_len, "ELF segment %llu: file size exceeds memory size",
				    (unsigned long long)i);
		if (seg.offset > len || seg.filesz > len - seg.offset)
			return fail(err, err_len,
				    "ELF segment %llu lies past the end of the file (truncated?)",
				    (unsigned long long)i);
		if (seg.paddr + seg.memsz < seg.paddr || seg.vaddr + seg.memsz < seg.vaddr)
			return fail(err, err_len, "ELF segment %llu wraps around the address space",
				    (unsigned long long)i);
		if (out->nr_segments == VM_ELF_MAX_SEGMENTS)
			return fail(err, err_len, "more than %d loadable ELF segments",
				    VM_ELF_MAX_SEGMENTS);
		out->seg[out->nr_segments++] = seg;
	}
	if (out->nr_segments == 0)
		return fail(err, err_len, "ELF file has no loadable segments");
	return 0;
}
