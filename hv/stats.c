/*
 * KVM binary statistics (KVM_GET_STATS_FD): the descriptor table is read once at open, values
 * are read with one pread of the whole data block, names are looked up linearly (at most a few
 * dozen statistics; callers that sample often keep the index from hv_stats_find()).
 *
 * Reading never takes the vCPU mutex, so any thread may sample a running vCPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/hv_internal.h"

struct hv_stat_desc {
	char name[64];
	uint32_t flags;
	uint32_t offset; /* in bytes, into the data block */
	uint32_t size;	 /* in u64 values */
};

struct hv_stats {
	int fd;
	int count;
	uint64_t data_offset;
	size_t data_bytes;
	uint64_t *data; /* scratch for one read */
	struct hv_stat_desc *desc;
};

static int read_exact(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int parse_descriptors(struct hv_stats *st, const struct kvm_stats_header *hdr)
{
	size_t desc_size = sizeof(struct kvm_stats_desc) + hdr->name_size;
	unsigned char *raw;
	int ret = 0;

	if (hdr->num_desc > 4096 || hdr->name_size > 4096)
		return -EPROTO;
	raw = malloc(desc_size * hdr->num_desc);
	st->desc = calloc(hdr->num_desc ? hdr->num_desc : 1, sizeof(*st->desc));
	if (!raw || !st->desc) {
		ret = -ENOMEM;
		goto out;
	}
	ret = read_exact(st->fd, raw, desc_size * hdr->num_desc, hdr->desc_offset);
	if (ret)
		goto out;
	for (uint32_t i = 0; i < hdr->num_desc; i++) {
		const struct kvm_stats_desc *d = (const void *)(raw + i * desc_size);
		struct hv_stat_desc *out = &st->desc[i];
		size_t end;

		out->flags = d->flags;
		out->offset = d->offset;
		out->size = d->size;
		snprintf(out->name, sizeof(out->name), "%.*s", (int)hdr->name_size, d->name);
		end = (size_t)d->offset + (size_t)d->size * sizeof(uint64_t);
		if (end > st->data_bytes)
			st->data_bytes = end;
	}
	st->count = (int)hdr->num_desc;
	st->data = calloc(1, st->data_bytes ? st->data_bytes : 8);
	if (!st->data)
		ret = -ENOMEM;
out:
	free(raw);
	return ret;
}

int hv_stats_from_fd(int fd, struct hv_stats **out)
{
	struct kvm_stats_header hdr;
	struct hv_stats *st;
	int ret;

	st = calloc(1, sizeof(*st));
	if (!st) {
		close(fd);
		return -ENOMEM;
	}
	st->fd = fd;
	ret = read_exact(fd, &hdr, sizeof(hdr), 0);
	if (ret)
		goto err;
	st->data_offset = hdr.data_offset;
	ret = parse_descriptors(st, &hdr);
	if (ret)
		goto err;
	*out = st;
	return 0;

err:
	hv_stats_close(st);
	return ret;
}

void hv_stats_close(struct hv_stats *st)
{
	if (!st)
		return;
	close(st->fd);
	free(st->desc);
	free(st->data);
	free(st);
}

int hv_stats_count(const struct hv_stats *st)
{
	return st->count;
}

const char *hv_stats_name(const struct hv_stats *st, int index)
{
	if (index < 0 || index >= st->count)
		return NULL;
	return st->desc[index].name;
}

int hv_stats_find(const struct hv_stats *st, const char *name)
{
	for (int i = 0; i < st->count; i++)
		if (strcmp(st->desc[i].name, name) == 0)
			return i;
	return -ENOENT;
}

static bool is_histogram(const struct hv_stat_desc *d)
{
	uint32_t type = d->flags & KVM_STATS_TYPE_MASK;

	return type == KVM_STATS_TYPE_LINEAR_HIST || type == KVM_STATS_TYPE_LOG_HIST;
}

int hv_stats_read(struct hv_stats *st, uint64_t *values, int count)
{
	int ret;

	if (count > st->count)
		count = st->count;
	ret = read_exact(st->fd, st->data, st->data_bytes, st->data_offset);
	if (ret)
		return ret;
	for (int i = 0; i < count; i++) {
		const struct hv_stat_desc *d = &st->desc[i];

		values[i] = is_histogram(d) ? 0 : st->data[d->offset / sizeof(uint64_t)];
	}
	return count;
}

int hv_stats_read_one(struct hv_stats *st, const char *name, uint64_t *value)
{
	int i = hv_stats_find(st, name);

	if (i < 0)
		return i;
	return read_exact(st->fd, value, sizeof(*value), st->data_offset + st->desc[i].offset);
}
