/*
 * What the boot loader tells us: the multiboot v1 information (command line, memory) and the
 * command line's `key=value` arguments.
 *
 * The information may lie anywhere (lockstep puts it in its boot area at 0x10000, QEMU right
 * after the image, where the heap starts), so rt_bootinfo_init copies what the runtime keeps
 * before anything allocates.  Runs once, on the BSP at ring 3; the arguments are read-only after.
 */
#include "guest/rt/internal.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2badb002
#define MB_INFO_MEMORY 0x1
#define MB_INFO_CMDLINE 0x4
#define MB_INFO_MMAP 0x40
#define MB_MMAP_AVAILABLE 1

#define MIB (1024ull * 1024)
#define HEAP_LIMIT 0xc0000000ull /* the identity map is write-back below 3 GiB */

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper; /* KiB below 640 KiB, KiB from 1 MiB to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct multiboot_mmap_entry {
	uint32_t size; /* of the rest of the entry */
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

/* End of the available RAM region that contains the image, from the memory map. */
static uint64_t ram_end_from_mmap(const struct multiboot_info *info)
{
	uint64_t image = RT_IMAGE_BASE;
	uintptr_t pos = info->mmap_addr, end = pos + info->mmap_length;

	while (pos + sizeof(struct multiboot_mmap_entry) <= end) {
		const struct multiboot_mmap_entry *entry = (const void *)pos;

		if (entry->type == MB_MMAP_AVAILABLE && entry->addr <= image &&
		    entry->addr + entry->len > image)
			return entry->addr + entry->len;
		pos += entry->size + sizeof(entry->size);
	}
	return 0;
}

static void heap_init(const struct multiboot_info *info)
{
	uint64_t start = ((uintptr_t)rt_image_end + 0xfff) & ~0xfffull;
	uint64_t end = 0;

	if (info && (info->flags & MB_INFO_MMAP))
		end = ram_end_from_mmap(info);
	if (!end && info && (info->flags & MB_INFO_MEMORY))
		end = MIB + (uint64_t)info->mem_upper * 1024;
	if (!end)
		end = start + 4 * MIB; /* no memory information: assume a little */
	if (end > HEAP_LIMIT)
		end = HEAP_LIMIT;
	rt_state.heap_next = start;
	rt_state.heap_end = end > start ? end : start;
}

/* Splits the copied command line in place into words and keeps the key=value ones. */
static void parse_cmdline(void)
{
	char *p = rt_state.cmdline_words;

	while (*p) {
		char *word, *eq = NULL;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		word = p;
		for (; *p && *p != ' ' && *p != '\t' && *p != '\n'; p++)
			if (*p == '=' && !eq)
				eq = p;
		if (*p)
			*p++ = '\0';
		if (!eq || eq == word)
			continue;
		if (rt_state.nr_args == RT_MAX_ARGS)
			rt_panic("more than %d key=value arguments", RT_MAX_ARGS);
		*eq = '\0';
		rt_state.args[rt_state.nr_args].key = word;
		rt_state.args[rt_state.nr_args].value = eq + 1;
		rt_state.nr_args++;
	}
}

void rt_bootinfo_init(uint32_t magic, uint32_t info_addr)
{
	const struct multiboot_info *info = NULL;

	if (magic == MULTIBOOT_BOOTLOADER_MAGIC)
		info = (const void *)(uintptr_t)info_addr;
	if (info && (info->flags & MB_INFO_CMDLINE) && info->cmdline) {
		const char *src = (const char *)(uintptr_t)info->cmdline;
		size_t len = 0;

		while (src[len] && len < RT_CMDLINE_MAX - 1) {
			rt_state.cmdline[len] = src[len];
			len++;
		}
		rt_state.cmdline[len] = '\0';
	}
	memcpy(rt_state.cmdline_words, rt_state.cmdline, RT_CMDLINE_MAX);
	parse_cmdline();
	heap_init(info);
}

const char *rt_cmdline(void)
{
	return rt_state.cmdline;
}

const char *rt_arg(const char *key)
{
	for (unsigned i = rt_state.nr_args; i-- > 0;)
		if (!strcmp(rt_state.args[i].key, key))
			return rt_state.args[i].value;
	return NULL;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	unsigned base = 10;
	uint64_t value = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned digit;

		if (*s >= '0' && *s <= '9')
			digit = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			digit = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			digit = *s - 'A' + 10;
		else
			return false;
		if (value > (UINT64_MAX - digit) / base)
			return false;
		value = value * base + digit;
	}
	*out = value;
	return true;
}

uint64_t rt_arg_u64(const char *key, uint64_t fallback)
{
	const char *text = rt_arg(key);
	uint64_t value;

	if (!text)
		return fallback;
	if (!parse_u64(text, &value))
		rt_panic("%s=%s: not a number", key, text);
	return value;
}
