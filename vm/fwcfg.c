/*
 * fw_cfg, QEMU's firmware configuration interface (docs/specs/fw_cfg.rst), port form only:
 * a 16-bit selector at 0x510 and an 8-bit data port at 0x511 that reads the selected item
 * byte by byte (past its end: zeros).  Test kernels written for QEMU read the CPU count and RAM
 * size here.  The DMA interface is not offered (the id item says so).
 *
 * Items are built once when the VM is made and never change; the selector and read offset
 * are shared by all vCPUs, as on QEMU, under one mutex.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm_internal.h"

#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_UUID 0x02
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_NR_FILES 3
#define FW_CFG_MAX_ITEM 0x30

struct fwcfg_item {
	uint8_t *data;
	uint32_t len;
};

struct vm_fwcfg {
	pthread_mutex_t lock;
	uint16_t selector;
	uint32_t offset;
	struct fwcfg_item items[FW_CFG_MAX_ITEM];
};

struct fwcfg_file {
	uint32_t size_be;
	uint16_t select_be;
	uint16_t reserved;
	char name[56];
};

static int set_item(struct vm_fwcfg *fw, uint16_t key, const void *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	fw->items[key] = (struct fwcfg_item){ copy, (uint32_t)len };
	return 0;
}

static int parse_uuid(const char *s, uint8_t out[16])
{
	for (int i = 0, j = 0; i < 16; i++, j += 2) {
		unsigned hi, lo;

		if (s[j] == '-')
			j++;
		if (!s[j] || !s[j + 1])
			return -EINVAL;
		hi = (unsigned)(s[j] <= '9' ? s[j] - '0' : (s[j] | 0x20) - 'a' + 10);
		lo = (unsigned)(s[j + 1] <= '9' ? s[j + 1] - '0' : (s[j + 1] | 0x20) - 'a' + 10);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* The memory map in QEMU's etc/e820 layout: {u64 address, u64 length, u32 type}, packed. */
static int e820_file(const struct vm_memory *mem, uint8_t *buf, size_t cap, size_t *len)
{
	const struct {
		uint64_t addr, size;
		uint32_t type;
	} map[] = {
		{ 0, VM_EBDA_BASE, 1 },
		{ 0x100000, mem->low_size - 0x100000, 1 },
		{ VM_HIGH_RAM_BASE, mem->high_size, 1 },
	};
	size_t n = 0;

	for (size_t i = 0; i < 3; i++) {
		if (!map[i].size)
			continue;
		if (n + 20 > cap)
			return -ENOSPC;
		memcpy(buf + n, &map[i].addr, 8);
		memcpy(buf + n + 8, &map[i].size, 8);
		memcpy(buf + n + 16, &map[i].type, 4);
		n += 20;
	}
	*len = n;
	return 0;
}

static int add_files(struct vm_fwcfg *fw, const struct vm *vm)
{
	struct {
		uint32_t count_be;
		struct fwcfg_file f[FW_CFG_NR_FILES];
	} dir = { .count_be = __builtin_bswap32(FW_CFG_NR_FILES) };
	const char *names[FW_CFG_NR_FILES] = { "etc/e820", "etc/lockstep/name",
					       "etc/lockstep/version" };
	uint8_t e820[64];
	size_t e820_len;
	int ret;

	ret = e820_file(&vm->mem, e820, sizeof(e820), &e820_len);
	if (!ret)
		ret = set_item(fw, FW_CFG_FILE_FIRST, e820, e820_len);
	if (!ret)
		ret = set_item(fw, FW_CFG_FILE_FIRST + 1, vm->cfg.name, strlen(vm->cfg.name));
	if (!ret)
		ret = set_item(fw, FW_CFG_FILE_FIRST + 2, LOCKSTEP_VERSION,
			       strlen(LOCKSTEP_VERSION));
	if (ret)
		return ret;
	for (uint16_t i = 0; i < FW_CFG_NR_FILES; i++) {
		dir.f[i].size_be = __builtin_bswap32(fw->items[FW_CFG_FILE_FIRST + i].len);
		dir.f[i].select_be = __builtin_bswap16((uint16_t)(FW_CFG_FILE_FIRST + i));
		strncpy(dir.f[i].name, names[i], sizeof(dir.f[i].name) - 1);
	}
	return set_item(fw, FW_CFG_FILE_DIR, &dir, sizeof(dir));
}

int vm_fwcfg_new(struct vm *vm, struct vm_fwcfg **out)
{
	const uint32_t id = 1; /* traditional interface only, no DMA */
	const uint64_t ram = vm->mem.size;
	const uint16_t cpus = (uint16_t)vm->cfg.vcpus;
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	const uint32_t cmdline_size = (uint32_t)strlen(cmdline) + 1;
	uint8_t uuid[16] = { 0 };
	struct vm_fwcfg *fw;
	int ret;

	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return -ENOMEM;
	pthread_mutex_init(&fw->lock, NULL);
	if (vm->cfg.uuid[0])
		parse_uuid(vm->cfg.uuid, uuid);
	ret = set_item(fw, FW_CFG_SIGNATURE, "QEMU", 4);
	if (!ret)
		ret = set_item(fw, FW_CFG_ID, &id, 4);
	if (!ret)
		ret = set_item(fw, FW_CFG_UUID, uuid, 16);
	if (!ret)
		ret = set_item(fw, FW_CFG_RAM_SIZE, &ram, 8);
	if (!ret)
		ret = set_item(fw, FW_CFG_NB_CPUS, &cpus, 2);
	if (!ret)
		ret = set_item(fw, FW_CFG_MAX_CPUS, &cpus, 2);
	if (!ret)
		ret = set_item(fw, FW_CFG_CMDLINE_SIZE, &cmdline_size, 4);
	if (!ret)
		ret = set_item(fw, FW_CFG_CMDLINE_DATA, cmdline, cmdline_size);
	if (!ret)
		ret = add_files(fw, vm);
	if (ret) {
		vm_fwcfg_free(fw);
		return ret;
	}
	*out = fw;
	return 0;
}

void vm_fwcfg_free(struct vm_fwcfg *fw)
{
	if (!fw)
		return;
	for (int i = 0; i < FW_CFG_MAX_ITEM; i++)
		free(fw->items[i].data);
	pthread_mutex_destroy(&fw->lock);
	free(fw);
}

void vm_fwcfg_io(void *opaque, struct vm_io *io)
{
	struct vm_fwcfg *fw = opaque;
	size_t total = (size_t)io->size * io->count;

	pthread_mutex_lock(&fw->lock);
	if (io->offset == 0 && io->write) {
		uint16_t sel = 0;

		/* The last selector written wins; a 1-byte write selects its value. */
		memcpy(&sel, io->data + total - io->size, io->size >= 2 ? 2 : 1);
		fw->selector = sel;
		fw->offset = 0;
	} else if (io->offset == 1 && !io->write) {
		const struct fwcfg_item *it =
			fw->selector < FW_CFG_MAX_ITEM ? &fw->items[fw->selector] : NULL;

		for (size_t i = 0; i < total; i++) {
			bool in = it && it->data && fw->offset < it->len;

			io->data[i] = in ? it->data[fw->offset] : 0;
			if (in)
				fw->offset++;
		}
	} else if (!io->write) {
		memset(io->data, 0, total); /* the DMA registers are absent */
	}
	pthread_mutex_unlock(&fw->lock);
}
