/*
 * Guest images for the loader tests and the boot fuzz seeds, built in memory: an ELF32 or
 * ELF64 executable with a multiboot header and program headers at fixed offsets (vmtest.h),
 * segment bytes in a known pattern, a flat a.out-kludge image, a Linux bzImage (setup header
 * and a patterned payload) and ELF notes (a PVH entry goes in a PT_NOTE segment).  The
 * builders take whatever they are given, including nonsense, so tests can describe broken
 * images too.
 */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/vm/vmtest.h"

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

void vmtest_mb_header(uint8_t *p, uint32_t flags)
{
	put32(p, VMTEST_MB_MAGIC);
	put32(p + 4, flags);
	put32(p + 8, -(VMTEST_MB_MAGIC + flags));
}

static uint64_t round_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) / align * align;
}

uint64_t vmtest_elf_data_offset(const struct vmtest_elf *spec, unsigned i)
{
	uint64_t off = VMTEST_ELF_DATA;

	for (unsigned j = 0; j < i; j++)
		off += round_up(spec->seg[j].filesz, VMTEST_ELF_DATA_ALIGN);
	return off;
}

static void put_ehdr(const struct vmtest_elf *spec, uint8_t *buf)
{
	if (spec->is64) {
		Elf64_Ehdr eh = {
			.e_type = ET_EXEC,
			.e_machine = EM_X86_64,
			.e_version = EV_CURRENT,
			.e_entry = spec->entry,
			.e_phoff = VMTEST_ELF_PHOFF,
			.e_ehsize = sizeof(Elf64_Ehdr),
			.e_phentsize = sizeof(Elf64_Phdr),
			.e_phnum = (uint16_t)spec->nr_segments,
		};

		memcpy(eh.e_ident, ELFMAG, SELFMAG);
		eh.e_ident[EI_CLASS] = ELFCLASS64;
		eh.e_ident[EI_DATA] = ELFDATA2LSB;
		eh.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(buf, &eh, sizeof(eh));
	} else {
		Elf32_Ehdr eh = {
			.e_type = ET_EXEC,
			.e_machine = EM_386,
			.e_version = EV_CURRENT,
			.e_entry = (Elf32_Addr)spec->entry,
			.e_phoff = VMTEST_ELF_PHOFF,
			.e_ehsize = sizeof(Elf32_Ehdr),
			.e_phentsize = sizeof(Elf32_Phdr),
			.e_phnum = (uint16_t)spec->nr_segments,
		};

		memcpy(eh.e_ident, ELFMAG, SELFMAG);
		eh.e_ident[EI_CLASS] = ELFCLASS32;
		eh.e_ident[EI_DATA] = ELFDATA2LSB;
		eh.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(buf, &eh, sizeof(eh));
	}
}

static void put_phdr(const struct vmtest_elf *spec, unsigned i, uint8_t *buf)
{
	const struct vmtest_segment *s = &spec->seg[i];
	uint64_t off = vmtest_elf_data_offset(spec, i);
	uint32_t type = s->type ? s->type : PT_LOAD;

	if (spec->is64) {
		Elf64_Phdr ph = {
			.p_type = type,
			.p_flags = PF_R | PF_X,
			.p_offset = off,
			.p_vaddr = s->vaddr,
			.p_paddr = s->paddr,
			.p_filesz = s->filesz,
			.p_memsz = s->memsz,
			.p_align = 0x1000,
		};

		memcpy(buf + VMTEST_ELF_PHOFF + i * sizeof(ph), &ph, sizeof(ph));
	} else {
		Elf32_Phdr ph = {
			.p_type = type,
			.p_flags = PF_R | PF_X,
			.p_offset = (Elf32_Off)off,
			.p_vaddr = (Elf32_Addr)s->vaddr,
			.p_paddr = (Elf32_Addr)s->paddr,
			.p_filesz = (Elf32_Word)s->filesz,
			.p_memsz = (Elf32_Word)s->memsz,
			.p_align = 0x1000,
		};

		memcpy(buf + VMTEST_ELF_PHOFF + i * sizeof(ph), &ph, sizeof(ph));
	}
}

int vmtest_build_elf(const struct vmtest_elf *spec, uint8_t **out, size_t *len)
{
	size_t mb_offset = spec->mb_offset ? spec->mb_offset : VMTEST_ELF_MB_OFFSET;
	unsigned last = spec->nr_segments - 1;
	uint64_t size;
	uint8_t *buf;

	if (spec->nr_segments == 0 || spec->nr_segments > VMTEST_MAX_SEGMENTS)
		return -EINVAL;
	/* The file ends with the last segment's bytes. */
	size = vmtest_elf_data_offset(spec, last) + spec->seg[last].filesz;
	if (size < mb_offset + 12)
		size = mb_offset + 12;
	buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	put_ehdr(spec, buf);
	if (!spec->no_multiboot)
		vmtest_mb_header(buf + mb_offset, spec->mb_flags);
	for (unsigned i = 0; i < spec->nr_segments; i++) {
		uint64_t off = vmtest_elf_data_offset(spec, i);

		put_phdr(spec, i, buf);
		for (uint64_t k = 0; k < spec->seg[i].filesz; k++)
			buf[off + k] = vmtest_pattern(i, k);
	}
	*out = buf;
	*len = size;
	return 0;
}

int vmtest_build_flat(const struct vmtest_flat *spec, uint8_t **out, size_t *len)
{
	uint32_t flags = VMTEST_MB_AOUT_KLUDGE | spec->extra_flags;
	uint8_t *buf, *h;

	if (spec->header_offset + 32 > spec->file_size)
		return -EINVAL;
	buf = malloc(spec->file_size);
	if (!buf)
		return -ENOMEM;
	for (size_t k = 0; k < spec->file_size; k++)
		buf[k] = vmtest_pattern(0, k);
	h = buf + spec->header_offset;
	vmtest_mb_header(h, flags);
	put32(h + 12, spec->header_addr ? spec->header_addr :
					  spec->load_addr + (uint32_t)spec->header_offset);
	put32(h + 16, spec->load_addr);
	put32(h + 20, spec->load_end_addr);
	put32(h + 24, spec->bss_end_addr);
	put32(h + 28, spec->entry_addr);
	*out = buf;
	*len = spec->file_size;
	return 0;
}

size_t vmtest_bzimage_payload_offset(const struct vmtest_bzimage *spec)
{
	return ((size_t)(spec->setup_sects ? spec->setup_sects : 4) + 1) * 512;
}

int vmtest_build_bzimage(const struct vmtest_bzimage *spec, uint8_t **out, size_t *len)
{
	size_t off = vmtest_bzimage_payload_offset(spec), size = off + spec->payload;
	uint16_t version = spec->version ? spec->version : 0x020f;
	uint8_t *buf = calloc(1, size);

	if (!buf)
		return -ENOMEM;
	buf[VMTEST_HDR_SETUP_SECTS] = spec->setup_sects;
	buf[0x1fe] = 0x55;
	buf[0x1ff] = 0xaa;
	buf[0x200] = 0xeb; /* jmp short over the header */
	buf[0x201] = spec->hdr_len ? spec->hdr_len : 0x6a;
	memcpy(buf + 0x202, "HdrS", 4);
	memcpy(buf + VMTEST_HDR_VERSION, &version, 2);
	buf[VMTEST_HDR_LOADFLAGS] = spec->zimage ? 0 : spec->loadflags ? spec->loadflags : 0x01;
	put32(buf + VMTEST_HDR_CODE32_START, 0x100000);
	put32(buf + VMTEST_HDR_INITRD_ADDR_MAX, spec->initrd_addr_max);
	put32(buf + VMTEST_HDR_CMDLINE_SIZE, spec->cmdline_size);
	put32(buf + VMTEST_HDR_PREF_ADDRESS, 0x1000000);
	put32(buf + VMTEST_HDR_INIT_SIZE, spec->init_size);
	for (size_t k = 0; k < spec->payload; k++)
		buf[off + k] = vmtest_pattern(0, k);
	*out = buf;
	*len = size;
	return 0;
}

size_t vmtest_elf_note(uint8_t *p, const char *name, uint32_t type, const void *desc,
		       uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	size_t name_pad = round_up(namesz, 4), desc_pad = round_up(descsz, 4);

	put32(p, namesz);
	put32(p + 4, descsz);
	put32(p + 8, type);
	memset(p + 12, 0, name_pad + desc_pad);
	memcpy(p + 12, name, namesz);
	memcpy(p + 12 + name_pad, desc, descsz);
	return 12 + name_pad + desc_pad;
}
