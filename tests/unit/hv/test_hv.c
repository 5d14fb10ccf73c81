/*
 * hv/ without a KVM: the requirements check (another API version, each missing capability
 * named, errors from the check counted as missing) through its callback, and the binary
 * statistics reader on bytes recorded from a vCPU's KVM_GET_STATS_FD on the development machine
 * (kvm-vcpu-stats.bin: 47 statistics, histograms among them), with values planted at the
 * offsets the recorded descriptors give, and refusals of a truncated or hostile file.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/hv_internal.h"
#include "util/util.h"

/* ---- requirements ---- */

struct caps {
	long missing; /* the capability this KVM lacks, or -1 (KVM_CAP_IRQCHIP is 0) */
	int answer;   /* what the check says for it */
	unsigned asked;
};

static int check_cap(void *arg, long cap)
{
	struct caps *c = arg;

	c->asked++;
	return cap == c->missing ? c->answer : 1;
}

static void test_requirements(void **state)
{
	struct caps c = { .missing = -1 };
	char why[256] = "";

	assert_int_equal(
		hv_requirements_check("/dev/kvm", KVM_API_VERSION, check_cap, &c, why, sizeof(why)),
		0);
	assert_int_equal(c.asked, 8);

	c = (struct caps){ .missing = KVM_CAP_IRQCHIP, .answer = 0 };
	assert_int_equal(
		hv_requirements_check("/dev/kvm", KVM_API_VERSION, check_cap, &c, why, sizeof(why)),
		-ENOTSUP);
	assert_string_equal(why, "this KVM lacks an in-kernel interrupt controller "
				 "(KVM_CAP_IRQCHIP)");

	c = (struct caps){ .missing = KVM_CAP_IRQFD, .answer = 0 };
	assert_int_equal(
		hv_requirements_check("/dev/kvm", KVM_API_VERSION, check_cap, &c, why, sizeof(why)),
		-ENOTSUP);
	assert_string_equal(why, "this KVM lacks irqfd (KVM_CAP_IRQFD)");

	c = (struct caps){ .missing = KVM_CAP_SIGNAL_MSI, .answer = -EINVAL };
	assert_int_equal(
		hv_requirements_check("/dev/kvm", KVM_API_VERSION, check_cap, &c, why, sizeof(why)),
		-ENOTSUP);
	assert_string_equal(why, "this KVM lacks MSI injection (KVM_CAP_SIGNAL_MSI)");

	c = (struct caps){ .missing = -1 };
	assert_int_equal(hv_requirements_check("/dev/kvmx", 11, check_cap, &c, why, sizeof(why)),
			 -EPROTO);
	assert_string_equal(why, "/dev/kvmx speaks KVM API version 11, lockstep needs 12");
	assert_int_equal(c.asked, 0);
	assert_int_equal(hv_requirements_check("/dev/null", -ENOTTY, check_cap, &c, NULL, 0),
			 -ENOTTY);
}

/* ---- binary statistics ---- */

struct recording {
	uint8_t *bytes;
	size_t len;
	struct kvm_stats_header hdr;
};

static void load(struct recording *r)
{
	char *text;

	assert_int_equal(util_read_file(HV_STATS_BIN, 1 << 20, &text, &r->len), 0);
	r->bytes = (uint8_t *)text;
	assert_true(r->len > sizeof(r->hdr));
	memcpy(&r->hdr, r->bytes, sizeof(r->hdr));
}

/* The recorded descriptor of `name`: its offset into the data block, its type. */
static const struct kvm_stats_desc *desc_of(const struct recording *r, const char *name)
{
	size_t size = sizeof(struct kvm_stats_desc) + r->hdr.name_size;

	for (uint32_t i = 0; i < r->hdr.num_desc; i++) {
		const struct kvm_stats_desc *d =
			(const void *)(r->bytes + r->hdr.desc_offset + i * size);

		if (strncmp(d->name, name, r->hdr.name_size) == 0)
			return d;
	}
	fail_msg("no statistic %s in the recording", name);
	return NULL;
}

static void plant(struct recording *r, const char *name, uint64_t value)
{
	const struct kvm_stats_desc *d = desc_of(r, name);

	assert_true(r->hdr.data_offset + d->offset + 8 <= r->len);
	memcpy(r->bytes + r->hdr.data_offset + d->offset, &value, 8);
}

/* The bytes (the first `len` of them) behind an fd, as KVM_GET_STATS_FD gives one. */
static int as_fd(const struct recording *r, size_t len)
{
	int fd = memfd_create("stats", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, r->bytes, len), (ssize_t)len);
	return fd;
}

static void test_stats(void **state)
{
	struct recording r;
	struct hv_stats *st;
	uint64_t values[64], v;
	int exits, hist;

	load(&r);
	assert_int_equal(r.hdr.num_desc, 47);
	assert_int_equal(desc_of(&r, "halt_wait_hist")->flags & KVM_STATS_TYPE_MASK,
			 KVM_STATS_TYPE_LOG_HIST);
	plant(&r, "exits", 123456789);
	plant(&r, "halt_exits", 42);
	plant(&r, "directed_yield_attempted", 7);
	plant(&r, "halt_wait_hist", 99); /* a histogram's first bucket: not a value */
	assert_int_equal(hv_stats_from_fd(as_fd(&r, r.len), &st), 0);
	assert_int_equal(hv_stats_count(st), 47);
	exits = hv_stats_find(st, "exits");
	hist = hv_stats_find(st, "halt_wait_hist");
	assert_true(exits >= 0 && hist >= 0);
	assert_string_equal(hv_stats_name(st, exits), "exits");
	assert_null(hv_stats_name(st, 47));
	assert_int_equal(hv_stats_find(st, "no_such_statistic"), -ENOENT);
	assert_int_equal(hv_stats_read(st, values, 64), 47);
	assert_int_equal(values[exits], 123456789);
	assert_int_equal(values[hist], 0);
	assert_int_equal(hv_stats_read_one(st, "halt_exits", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(hv_stats_read_one(st, "directed_yield_attempted", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(hv_stats_read_one(st, "nope", &v), -ENOENT);
	hv_stats_close(st);
	free(r.bytes);
}

static void test_stats_refused(void **state)
{
	struct kvm_stats_header *hdr;
	struct recording r;
	struct hv_stats *st;
	uint64_t values[64];

	load(&r);
	/* Cut inside the descriptors: refused at open. */
	assert_int_equal(hv_stats_from_fd(as_fd(&r, r.hdr.desc_offset + 100), &st), -EIO);
	assert_int_equal(hv_stats_from_fd(as_fd(&r, 10), &st), -EIO);
	/* Cut inside the values: opens, but no read pretends to have them. */
	assert_int_equal(hv_stats_from_fd(as_fd(&r, r.hdr.data_offset + 16), &st), 0);
	assert_int_equal(hv_stats_read(st, values, 64), -EIO);
	hv_stats_close(st);
	/* A header that asks for absurd sizes. */
	hdr = (struct kvm_stats_header *)r.bytes;
	hdr->num_desc = 100000;
	assert_int_equal(hv_stats_from_fd(as_fd(&r, r.len), &st), -EPROTO);
	hdr->num_desc = r.hdr.num_desc;
	hdr->name_size = 1u << 20;
	assert_int_equal(hv_stats_from_fd(as_fd(&r, r.len), &st), -EPROTO);
	free(r.bytes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requirements),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_stats_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
