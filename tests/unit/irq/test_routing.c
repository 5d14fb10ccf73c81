/*
 * Unit tests for irq/'s routing table, driven through recording ops: the legacy routes as a
 * PC wires them, MSI allocation up to the table's end (overflow), one commit per change, and
 * rollback when KVM refuses a commit; lines (irqfd assign/deassign, level coalescing, rebind);
 * one-shot MSIs and userspace lines with their counters.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "irq/irq.h"

#define MAX_ENTRIES 2048

/* What KVM would have: the last table it accepted, and what the test makes it do next. */
struct fake_kvm {
	unsigned commits, refused;
	int fail_next; /* the next set_routing fails with this (0 = succeeds) */
	unsigned nr;
	struct kvm_irq_routing_entry table[MAX_ENTRIES];
	int irqfd_gsi[64]; /* by eventfd number: the GSI it is bound to, -1 none */
	int irqfd_resample[64];
	int irqfd_fail;
	int msi_result, line_result;
	struct irq_msi last_msi;
	unsigned lines_set;
};

static int fake_set_routing(void *ctx, const struct kvm_irq_routing *r)
{
	struct fake_kvm *k = ctx;

	if (k->fail_next) {
		int ret = k->fail_next;

		k->fail_next = 0;
		k->refused++;
		return ret;
	}
	assert_true(r->nr <= MAX_ENTRIES);
	k->nr = r->nr;
	memcpy(k->table, r->entries, r->nr * sizeof(r->entries[0]));
	k->commits++;
	return 0;
}

static int fake_irqfd(void *ctx, int fd, uint32_t gsi, int resample_fd, bool assign)
{
	struct fake_kvm *k = ctx;

	assert_true(fd >= 0 && fd < 64);
	if (assign && k->irqfd_fail)
		return k->irqfd_fail;
	if (assign) {
		assert_int_equal(k->irqfd_gsi[fd], -1); /* KVM: one GSI per eventfd */
		k->irqfd_gsi[fd] = (int)gsi;
		k->irqfd_resample[fd] = resample_fd;
	} else {
		assert_int_equal(k->irqfd_gsi[fd], (int)gsi);
		k->irqfd_gsi[fd] = -1;
	}
	return 0;
}

static int fake_signal_msi(void *ctx, const struct irq_msi *msg)
{
	struct fake_kvm *k = ctx;

	k->last_msi = *msg;
	return k->msi_result;
}

static int fake_set_line(void *ctx, uint32_t gsi, bool level)
{
	struct fake_kvm *k = ctx;

	k->lines_set++;
	return k->line_result;
}

static const struct irq_ops fake_ops = {
	.set_routing = fake_set_routing,
	.irqfd = fake_irqfd,
	.signal_msi = fake_signal_msi,
	.set_line = fake_set_line,
};

static struct fake_kvm *fake_new(void)
{
	struct fake_kvm *k = calloc(1, sizeof(*k));

	for (int i = 0; i < 64; i++)
		k->irqfd_gsi[i] = -1;
	k->msi_result = 1;
	k->line_result = 1;
	return k;
}

/* The entries KVM has for `gsi`, in order; returns how many. */
static unsigned entries_for(const struct fake_kvm *k, uint32_t gsi,
			    const struct kvm_irq_routing_entry **out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < k->nr; i++)
		if (k->table[i].gsi == gsi && n < max)
			out[n++] = &k->table[i];
	return n;
}

static struct irq_msi msi_to(uint32_t apic, uint8_t vector)
{
	return (struct irq_msi){ .address = 0xfee00000ull | apic << 12, .data = vector };
}

static struct irq *new_irq(struct fake_kvm *k, uint32_t max_routes)
{
	struct irq_params p = { .max_routes = max_routes, .nr_vcpus = 4 };
	struct irq *irq = NULL;

	assert_int_equal(irq_new(&fake_ops, k, &p, &irq), 0);
	return irq;
}

static void test_legacy_routes(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 0);
	const struct kvm_irq_routing_entry *e[4];
	struct irq_stats st;

	assert_int_equal(k->commits, 1);
	/* GSI 0: PIC master 0 and IOAPIC pin 2 (the MADT's override of IRQ 0) */
	assert_int_equal(entries_for(k, 0, e, 4), 2);
	assert_int_equal(e[0]->u.irqchip.irqchip, KVM_IRQCHIP_PIC_MASTER);
	assert_int_equal(e[0]->u.irqchip.pin, 0);
	assert_int_equal(e[1]->u.irqchip.irqchip, KVM_IRQCHIP_IOAPIC);
	assert_int_equal(e[1]->u.irqchip.pin, 2);
	/* GSI 2 is the cascade: no route */
	assert_int_equal(entries_for(k, 2, e, 4), 0);
	/* GSI 9: PIC slave 1, IOAPIC 9 */
	assert_int_equal(entries_for(k, 9, e, 4), 2);
	assert_int_equal(e[0]->u.irqchip.irqchip, KVM_IRQCHIP_PIC_SLAVE);
	assert_int_equal(e[0]->u.irqchip.pin, 1);
	assert_int_equal(e[1]->u.irqchip.pin, 9);
	/* GSI 16-23: IOAPIC only */
	for (uint32_t gsi = 16; gsi < 24; gsi++) {
		assert_int_equal(entries_for(k, gsi, e, 4), 1);
		assert_int_equal(e[0]->u.irqchip.irqchip, KVM_IRQCHIP_IOAPIC);
		assert_int_equal(e[0]->u.irqchip.pin, gsi);
	}
	/* 15 ISA GSIs with two entries, 8 with one */
	assert_int_equal(k->nr, 15 * 2 + 8);
	irq_get_stats(irq, &st);
	assert_int_equal(st.routes, 24);
	assert_int_equal(st.commits, 1);
	irq_free(irq);
	free(k);
}

static void test_initial_commit_failure(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq_params p = { .nr_vcpus = 2 };
	struct irq *irq = (struct irq *)0x1;

	k->fail_next = -EINVAL;
	assert_int_equal(irq_new(&fake_ops, k, &p, &irq), -EINVAL);
	assert_ptr_equal(irq, (struct irq *)0x1); /* not written */
	p.max_routes = 24;			  /* no room for a single MSI route */
	assert_int_equal(irq_new(&fake_ops, k, &p, &irq), -EINVAL);
	p.max_routes = 0;
	p.nr_vcpus = 0;
	assert_int_equal(irq_new(&fake_ops, k, &p, &irq), -EINVAL);
	free(k);
}

static void test_msi_alloc_and_overflow(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 28); /* room for four MSI routes: GSIs 24-27 */
	const struct kvm_irq_routing_entry *e[2];
	uint32_t gsi[5];
	struct irq_msi m = msi_to(1, 0x51);

	for (int i = 0; i < 4; i++) {
		assert_int_equal(irq_msi_add(irq, &m, "dev", &gsi[i]), 0);
		assert_int_equal(gsi[i], 24 + i);
	}
	assert_int_equal(k->commits, 5); /* one per change */
	assert_int_equal(irq_msi_add(irq, &m, "dev", &gsi[4]), -ENOSPC);
	assert_int_equal(k->commits, 5); /* a refused allocation commits nothing */
	assert_int_equal(entries_for(k, 26, e, 2), 1);
	assert_int_equal(e[0]->type, KVM_IRQ_ROUTING_MSI);
	assert_int_equal(e[0]->u.msi.address_lo, 0xfee01000);
	assert_int_equal(e[0]->u.msi.data, 0x51);
	/* free one, and the next allocation reuses the lowest free GSI */
	assert_int_equal(irq_msi_remove(irq, &gsi[1], 1), 0);
	assert_int_equal(entries_for(k, 25, e, 2), 0);
	assert_int_equal(irq_msi_add(irq, &m, "dev", &gsi[4]), 0);
	assert_int_equal(gsi[4], 25);
	/* pins are not MSI routes */
	gsi[0] = 9;
	assert_int_equal(irq_msi_remove(irq, gsi, 1), -ENOENT);
	assert_int_equal(irq_msi_update(irq, gsi, &m, 1), -ENOENT);
	irq_free(irq);
	free(k);
}

static void test_add_many(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 30); /* GSIs 24-29 */
	struct irq_msi m[4] = { msi_to(0, 0x50), msi_to(1, 0x51), msi_to(2, 0x52),
				msi_to(3, 0x53) };
	const struct kvm_irq_routing_entry *e[2];
	uint32_t gsi[4], one;
	unsigned commits;

	assert_int_equal(irq_msi_add(irq, &m[0], "a", &one), 0);
	commits = k->commits;
	assert_int_equal(irq_msi_add_many(irq, m, 4, "b", gsi), 0);
	assert_int_equal(k->commits, commits + 1); /* four routes, one commit */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(gsi[i], 25 + i);
		assert_int_equal(entries_for(k, gsi[i], e, 2), 1);
		assert_int_equal(e[0]->u.msi.data, 0x50 + i);
	}
	assert_int_equal(irq_msi_remove(irq, &gsi[1], 1), 0);
	/* three more do not fit (one GSI free at 26, one at 29): none is taken */
	commits = k->commits;
	assert_int_equal(irq_msi_add_many(irq, m, 3, "c", gsi), -ENOSPC);
	assert_int_equal(k->commits, commits);
	assert_int_equal(entries_for(k, 26, e, 2), 0);
	assert_int_equal(irq_msi_add_many(irq, m, 2, "c", gsi), 0);
	assert_int_equal(gsi[0], 26);
	assert_int_equal(gsi[1], 29);
	irq_free(irq);
	free(k);
}

static void test_commit_failure_rolls_back(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 64);
	struct irq_msi a = msi_to(0, 0x60), b = msi_to(1, 0x61),
		       c[2] = { msi_to(2, 0x70), msi_to(3, 0x71) };
	const struct kvm_irq_routing_entry *e[2];
	struct irq_route_info info[64];
	uint32_t gsi[2], g;
	struct irq_stats st;

	assert_int_equal(irq_msi_add(irq, &a, "a", &gsi[0]), 0);
	assert_int_equal(irq_msi_add(irq, &b, "b", &gsi[1]), 0);

	/* a refused allocation leaves the table as it was, and the GSI free */
	k->fail_next = -ENOMEM;
	assert_int_equal(irq_msi_add(irq, &a, "c", &g), -ENOMEM);
	assert_int_equal(irq_get_routes(irq, info, 64), 24 - 1 + 2); /* GSI 2 is not listed */
	assert_int_equal(irq_msi_add(irq, &a, "c", &g), 0);
	assert_int_equal(g, 26);

	/* a refused update of two routes changes neither, in KVM or in the table */
	k->fail_next = -EINVAL;
	assert_int_equal(irq_msi_update(irq, gsi, c, 2), -EINVAL);
	assert_int_equal(entries_for(k, gsi[0], e, 2), 1);
	assert_int_equal(e[0]->u.msi.data, 0x60);
	assert_int_equal(entries_for(k, gsi[1], e, 2), 1);
	assert_int_equal(e[0]->u.msi.data, 0x61);
	irq_get_routes(irq, info, 64);
	for (int i = 0; i < 64; i++) {
		if (info[i].gsi == gsi[0])
			assert_int_equal(info[i].guest.data, 0x60);
		if (info[i].gsi == gsi[1]) {
			assert_int_equal(info[i].guest.data, 0x61);
			break;
		}
	}
	/* the same update goes through once KVM takes it, in one commit */
	{
		unsigned before = k->commits;

		assert_int_equal(irq_msi_update(irq, gsi, c, 2), 0);
		assert_int_equal(k->commits, before + 1);
		assert_int_equal(entries_for(k, gsi[1], e, 2), 1);
		assert_int_equal(e[0]->u.msi.data, 0x71);
	}
	/* a refused removal keeps the routes */
	k->fail_next = -EIO;
	assert_int_equal(irq_msi_remove(irq, gsi, 2), -EIO);
	assert_int_equal(entries_for(k, gsi[0], e, 2), 1);
	assert_int_equal(irq_msi_remove(irq, gsi, 2), 0);
	assert_int_equal(entries_for(k, gsi[0], e, 2), 0);
	irq_get_stats(irq, &st);
	assert_int_equal(st.commit_failures, 3);
	assert_int_equal(st.routes, 24 + 1);
	irq_free(irq);
	free(k);
}

static void test_update_without_change_does_not_commit(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 64);
	struct irq_msi a = msi_to(0, 0x60);
	uint32_t gsi;
	unsigned before;

	assert_int_equal(irq_msi_add(irq, &a, "a", &gsi), 0);
	before = k->commits;
	assert_int_equal(irq_msi_update(irq, &gsi, &a, 1), 0);
	assert_int_equal(k->commits, before);
	irq_free(irq);
	free(k);
}

static void test_msi_valid(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 0);
	struct irq_msi m;

	m = msi_to(3, 0x40);
	assert_true(irq_msi_valid(irq, &m));
	m = msi_to(4, 0x40); /* 4 vCPUs: APIC ids 0-3 */
	assert_false(irq_msi_valid(irq, &m));
	m = msi_to(0xff, 0x40); /* broadcast */
	assert_true(irq_msi_valid(irq, &m));
	m = msi_to(0, 0x0f); /* vectors 0-15 are reserved */
	assert_false(irq_msi_valid(irq, &m));
	m = (struct irq_msi){ .address = 0xfed00000, .data = 0x40 };
	assert_false(irq_msi_valid(irq, &m));
	m = (struct irq_msi){ .address = 0xfee00004, .data = 0x40 }; /* logical, nobody */
	assert_false(irq_msi_valid(irq, &m));
	m = (struct irq_msi){ .address = 0xfee03004, .data = 0x40 }; /* logical 0x03 */
	assert_true(irq_msi_valid(irq, &m));
	irq_free(irq);
	free(k);
}

static void test_lines(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 64);
	struct irq_line *edge, *level, *other;
	struct irq_msi a = msi_to(2, 0x60);
	struct irq_route_info info[64];
	uint32_t gsi, g2, n;
	uint64_t v;

	assert_int_equal(irq_msi_add(irq, &a, "dev", &gsi), 0);
	assert_int_equal(irq_line_new(irq, gsi, IRQ_LINE_EDGE, "dev.msi", &edge), 0);
	assert_int_equal(k->irqfd_gsi[irq_line_fd(edge)], (int)gsi);
	assert_int_equal(irq_line_resample_fd(edge), -1);
	/* level lines live on pins only */
	assert_int_equal(irq_line_new(irq, gsi, IRQ_LINE_LEVEL, "x", &other), -EINVAL);
	/* GSI 2 and unallocated GSIs take no line */
	assert_int_equal(irq_line_new(irq, 2, IRQ_LINE_EDGE, "x", &other), -ENOENT);
	assert_int_equal(irq_line_new(irq, 40, IRQ_LINE_EDGE, "x", &other), -ENOENT);
	/* KVM refusing the irqfd: no line */
	k->irqfd_fail = -EBUSY;
	assert_int_equal(irq_line_new(irq, 10, IRQ_LINE_LEVEL, "x", &other), -EBUSY);
	k->irqfd_fail = 0;

	assert_int_equal(irq_line_new(irq, 11, IRQ_LINE_LEVEL, "dev.intx", &level), 0);
	assert_int_equal(k->irqfd_resample[irq_line_fd(level)], irq_line_resample_fd(level));

	/* edge: every raise is one eventfd write */
	assert_int_equal(irq_line_raise(edge), 0);
	assert_int_equal(irq_line_raise(edge), 0);
	assert_int_equal(read(irq_line_fd(edge), &v, 8), 8);
	assert_int_equal(v, 2);
	/* level: asserted until resampled; raises in between coalesce */
	assert_int_equal(irq_line_raise(level), 0);
	assert_int_equal(irq_line_raise(level), 0);
	assert_int_equal(read(irq_line_fd(level), &v, 8), 8);
	assert_int_equal(v, 1);
	v = 1;
	assert_int_equal(write(irq_line_resample_fd(level), &v, 8), 8);
	irq_line_resampled(level);
	assert_int_equal(read(irq_line_resample_fd(level), &v, 8), -1); /* drained */
	assert_int_equal(irq_line_raise(level), 0);
	assert_int_equal(read(irq_line_fd(level), &v, 8), 8);
	irq_line_held(edge, false);
	irq_line_held(edge, true);

	/* a route with a line cannot go away; the line can move */
	assert_int_equal(irq_msi_remove(irq, &gsi, 1), -EBUSY);
	assert_int_equal(irq_msi_add(irq, &a, "dev", &g2), 0);
	assert_int_equal(irq_line_rebind(edge, g2), 0);
	assert_int_equal(k->irqfd_gsi[irq_line_fd(edge)], (int)g2);
	assert_int_equal(irq_line_gsi(edge), g2);
	assert_int_equal(irq_msi_remove(irq, &gsi, 1), 0);
	assert_int_equal(irq_line_rebind(edge, gsi), -ENOENT); /* gone */

	n = irq_get_routes(irq, info, 64);
	for (uint32_t i = 0; i < n; i++) {
		if (info[i].gsi == 11) {
			assert_int_equal(info[i].injected, 2);
			assert_int_equal(info[i].coalesced, 1);
			assert_int_equal(info[i].lines, 1);
		} else if (info[i].gsi == g2) {
			assert_int_equal(info[i].lines, 1);
			assert_int_equal(info[i].owner[0], 'd');
		}
	}
	irq_line_free(edge);
	irq_line_free(level);
	irq_line_free(NULL);
	for (int i = 0; i < 64; i++)
		assert_int_equal(k->irqfd_gsi[i], -1); /* every irqfd deassigned */
	irq_free(irq);
	free(k);
}

static void test_counters_of_a_gsi_start_fresh(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 26);
	struct irq_msi a = msi_to(2, 0x60);
	struct irq_route_info info[32];
	struct irq_line *line;
	uint32_t gsi, n;
	uint64_t v;

	assert_int_equal(irq_msi_add(irq, &a, "one", &gsi), 0);
	assert_int_equal(irq_line_new(irq, gsi, IRQ_LINE_EDGE, "one", &line), 0);
	assert_int_equal(irq_line_raise(line), 0);
	assert_int_equal(read(irq_line_fd(line), &v, 8), 8);
	irq_line_free(line);
	assert_int_equal(irq_msi_remove(irq, &gsi, 1), 0);
	assert_int_equal(irq_msi_add(irq, &a, "two", &gsi), 0);
	n = irq_get_routes(irq, info, 32);
	assert_int_equal(info[n - 1].gsi, gsi);
	assert_int_equal(info[n - 1].injected, 0);
	assert_string_equal(info[n - 1].owner, "two");
	assert_int_equal(info[n - 1].last_dest_vcpu, IRQ_NO_VCPU);
	irq_free(irq);
	free(k);
}

static void test_signal_msi_and_lines(void **state)
{
	struct fake_kvm *k = fake_new();
	struct irq *irq = new_irq(k, 0);
	struct irq_msi m = msi_to(1, 0x77);
	struct irq_stats st;

	assert_int_equal(irq_signal_msi(irq, &m), 1);
	k->msi_result = 0;
	assert_int_equal(irq_signal_msi(irq, &m), 0);
	k->msi_result = -EINVAL;
	assert_int_equal(irq_signal_msi(irq, &m), -EINVAL);
	assert_int_equal(k->last_msi.data, 0x77);
	assert_int_equal(irq_set_level(irq, 10, true), 1);
	k->line_result = 0;
	assert_int_equal(irq_set_level(irq, 10, true), 0);
	assert_int_equal(irq_set_level(irq, 10, false), 0);
	assert_int_equal(irq_set_level(irq, 24, true), -EINVAL);
	assert_int_equal(k->lines_set, 3);
	irq_get_stats(irq, &st);
	assert_int_equal(st.signal_msi, 2);
	assert_int_equal(st.signal_msi_blocked, 1);
	assert_int_equal(st.set_level, 2);
	assert_int_equal(st.set_level_coalesced, 1);
	assert_int_equal(irq_ioapic_redirtbl(irq, (uint64_t[IRQ_PINS]){ 0 }), -EOPNOTSUPP);
	irq_free(irq);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_legacy_routes),
		cmocka_unit_test(test_initial_commit_failure),
		cmocka_unit_test(test_msi_alloc_and_overflow),
		cmocka_unit_test(test_add_many),
		cmocka_unit_test(test_commit_failure_rolls_back),
		cmocka_unit_test(test_update_without_change_does_not_commit),
		cmocka_unit_test(test_msi_valid),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_counters_of_a_gsi_start_fresh),
		cmocka_unit_test(test_signal_msi_and_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
