/*
 * Unit tests for steering: which messages are redirectable and whom they may reach (physical,
 * broadcast, logical flat and cluster), the choice among running vCPUs (busy first, stable,
 * spread, nothing runnable), irq_steer() committing once per schedule change and only when a
 * destination moved, steering off restoring the guest's messages, and the "delivered to a
 * gated vCPU" counters against a made-up gate map.
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

#define NR 4

struct fake {
	unsigned commits;
	int fail_next;
	unsigned nr;
	struct kvm_irq_routing_entry table[256];
	/* gates as the probe reports them */
	bool open[NR];
	uint64_t gen;
	unsigned gated_calls; /* the gated hook (interrupt boost requests) */
	uint64_t gated_raise_ns;
};

static void gated_hook(void *arg, uint64_t raise_ns)
{
	struct fake *f = arg;

	f->gated_calls++;
	f->gated_raise_ns = raise_ns;
}

static int set_routing(void *ctx, const struct kvm_irq_routing *r)
{
	struct fake *f = ctx;

	if (f->fail_next) {
		int ret = f->fail_next;

		f->fail_next = 0;
		return ret;
	}
	f->nr = r->nr;
	memcpy(f->table, r->entries, r->nr * sizeof(r->entries[0]));
	f->commits++;
	return 0;
}

static int irqfd(void *ctx, int fd, uint32_t gsi, int resample_fd, bool assign)
{
	return 0;
}

static int signal_msi(void *ctx, const struct irq_msi *msg)
{
	return 1;
}

static int set_line(void *ctx, uint32_t gsi, bool level)
{
	return 1;
}

static const struct irq_ops ops = { set_routing, irqfd, signal_msi, set_line, NULL };

static bool gate_probe(void *arg, uint32_t vcpu, uint64_t *gen)
{
	struct fake *f = arg;

	*gen = f->gen;
	return f->open[vcpu];
}

/* The address KVM has for `gsi`'s MSI route. */
static uint32_t kvm_address(const struct fake *f, uint32_t gsi)
{
	for (unsigned i = 0; i < f->nr; i++)
		if (f->table[i].gsi == gsi)
			return f->table[i].u.msi.address_lo;
	fail();
	return 0;
}

/* Lowest priority to every vCPU, logical flat mode (vCPU n has LDR bit n). */
static struct irq_msi lowest_all(uint8_t vector)
{
	return (struct irq_msi){ .address = 0xfee00000ull | 0x0f << 12 | IRQ_MSI_ADDR_DEST_LOGICAL,
				 .data = IRQ_MSI_MODE_LOWEST << 8 | vector };
}

static void views_all(struct irq_vcpu_view *v, bool runnable, bool busy)
{
	for (int i = 0; i < NR; i++)
		v[i] = (struct irq_vcpu_view){ .runnable = runnable,
					       .busy = busy,
					       .ldr_valid = true,
					       .ldr = (1u << i) << 24,
					       .dfr = 0xffffffff };
}

/* Sets runnable/busy of vCPU i, keeping its LDR. */
static void set_view(struct irq_vcpu_view *v, int i, bool runnable, bool busy)
{
	v[i].runnable = runnable;
	v[i].busy = busy;
}

static void test_redirectable(void **state)
{
	struct irq_msi m = { .address = 0xfee01000, .data = 0x41 };

	assert_false(irq_msi_redirectable(&m)); /* fixed, physical, no hint */
	m.data |= IRQ_MSI_MODE_LOWEST << 8;
	assert_true(irq_msi_redirectable(&m));
	m = (struct irq_msi){ .address = 0xfee01008, .data = 0x41 }; /* redirection hint */
	assert_true(irq_msi_redirectable(&m));
	m = (struct irq_msi){ .address = 0xfee01000, .data = 0x41 | 4 << 8 }; /* NMI */
	assert_false(irq_msi_redirectable(&m));
	m = (struct irq_msi){ .address = 0xfed01000, .data = 0x141 };
	assert_false(irq_msi_redirectable(&m));
	/* a physical broadcast goes to everyone, lowest priority or not */
	m = (struct irq_msi){ .address = 0xfeeff000, .data = 0x141 };
	assert_false(irq_msi_redirectable(&m));
	m = (struct irq_msi){ .address = 0xfeeff004, .data = 0x141 }; /* logical broadcast */
	assert_true(irq_msi_redirectable(&m));
}

static void test_targets(void **state)
{
	struct irq_vcpu_view v[NR];
	struct irq_msi m;

	views_all(v, true, true);
	m = (struct irq_msi){ .address = 0xfee02000, .data = 0x141 };
	for (uint32_t i = 0; i < NR; i++)
		assert_int_equal(irq_msi_targets(&m, i, &v[i], NR), i == 2);
	m = lowest_all(0x41);
	for (uint32_t i = 0; i < NR; i++)
		assert_true(irq_msi_targets(&m, i, &v[i], NR));
	assert_false(irq_msi_targets(&m, NR, &v[0], NR));
	m = (struct irq_msi){ .address = 0xfeeff000, .data = 0x141 };
	assert_int_equal(irq_steer_pick(&m, 0, 0, v, NR), IRQ_NO_VCPU);
	/* logical flat: bit n = the vCPU whose LDR has bit n; unknown LDRs match nothing */
	for (int i = 0; i < NR; i++)
		v[i] = (struct irq_vcpu_view){ .ldr_valid = i != 3,
					       .ldr = (1u << i) << 24,
					       .dfr = 0xffffffff };
	m = (struct irq_msi){ .address = 0xfee00000 | 0x0b << 12 | 4, .data = 0x141 };
	assert_true(irq_msi_targets(&m, 0, &v[0], NR));
	assert_true(irq_msi_targets(&m, 1, &v[1], NR));
	assert_false(irq_msi_targets(&m, 2, &v[2], NR));
	assert_false(irq_msi_targets(&m, 3, &v[3], NR)); /* bit set, but LDR unknown */
	/* logical cluster: cluster 1, members 0 and 2 */
	for (int i = 0; i < NR; i++)
		v[i] = (struct irq_vcpu_view){ .ldr_valid = true,
					       .ldr = (uint32_t)(0x10 | 1 << (i % 2)) << 24,
					       .dfr = 0x0fffffff };
	v[3].ldr = 0x21u << 24; /* cluster 2 */
	m = (struct irq_msi){ .address = 0xfee00000 | 0x13 << 12 | 4, .data = 0x141 };
	assert_true(irq_msi_targets(&m, 0, &v[0], NR));
	assert_true(irq_msi_targets(&m, 1, &v[1], NR));
	assert_true(irq_msi_targets(&m, 2, &v[2], NR));
	assert_false(irq_msi_targets(&m, 3, &v[3], NR));
}

static void test_pick(void **state)
{
	struct irq_vcpu_view v[NR];
	struct irq_msi m = lowest_all(0x41), fixed = { .address = 0xfee01000, .data = 0x41 };

	views_all(v, true, false);
	v[2].busy = true;
	/* a busy destination wins, and a busy current target stays */
	assert_int_equal(irq_steer_pick(&m, 0, 0, v, NR), 2);
	v[1].busy = true;
	assert_int_equal(irq_steer_pick(&m, 2, 7, v, NR), 2);
	/* spread over the busy ones */
	assert_int_equal(irq_steer_pick(&m, IRQ_NO_VCPU, 0, v, NR), 1);
	assert_int_equal(irq_steer_pick(&m, IRQ_NO_VCPU, 1, v, NR), 2);
	/* nobody busy: the current target stays if runnable, else a runnable one */
	views_all(v, true, false);
	assert_int_equal(irq_steer_pick(&m, 3, 0, v, NR), 3);
	v[3].runnable = false;
	assert_int_equal(irq_steer_pick(&m, 3, 0, v, NR), 0);
	/* nobody runnable: stay where it was */
	views_all(v, false, false);
	assert_int_equal(irq_steer_pick(&m, 3, 0, v, NR), 3);
	assert_int_equal(irq_steer_pick(&m, IRQ_NO_VCPU, 0, v, NR), 0);
	/* not redirectable, or a single destination: leave it */
	views_all(v, true, true);
	assert_int_equal(irq_steer_pick(&fixed, 2, 0, v, NR), IRQ_NO_VCPU);
	fixed.data |= IRQ_MSI_MODE_LOWEST << 8;
	assert_int_equal(irq_steer_pick(&fixed, 2, 0, v, NR), IRQ_NO_VCPU);
}

static void test_steer_commits_once_per_change(void **state)
{
	struct fake f = { .gen = 2, .open = { true, true, true, true } };
	struct irq_params p = { .nr_vcpus = NR, .steering = true };
	struct irq_msi m[3] = { lowest_all(0x41),
				lowest_all(0x42),
				{ .address = 0xfee03000, .data = 0x43 } };
	struct irq_vcpu_view v[NR];
	struct irq_steer_result res;
	struct irq *irq;
	uint32_t gsi[3];
	unsigned commits;

	assert_int_equal(irq_new(&ops, &f, &p, &irq), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(irq_msi_add(irq, &m[i], "d", &gsi[i]), 0);
	/* no view yet: the guest's messages as they are */
	assert_int_equal(kvm_address(&f, gsi[0]), 0xfee00000 | 0x0f << 12 | 4);

	/* vCPUs 0 and 1 run, 2 and 3 are gated: both redirectable routes move, in one commit */
	views_all(v, false, false);
	set_view(v, 0, true, true);
	set_view(v, 1, true, true);
	commits = f.commits;
	assert_int_equal(irq_steer(irq, v, 2, &res), 0);
	assert_int_equal(f.commits, commits + 1);
	assert_int_equal(res.steerable, 2);
	assert_int_equal(res.moved, 2);
	assert_true(res.committed);
	for (int i = 0; i < 2; i++) {
		uint32_t a = kvm_address(&f, gsi[i]);

		assert_int_equal(a & 0xfff00fff, 0xfee00000); /* physical, no hint */
		assert_true(((a >> 12) & 0xff) < 2);
	}
	assert_int_equal(kvm_address(&f, gsi[2]), 0xfee03000); /* fixed: untouched */
	{
		uint32_t d = kvm_address(&f, gsi[0]);

		/* the same schedule again: nothing moves, nothing is committed */
		commits = f.commits;
		assert_int_equal(irq_steer(irq, v, 4, &res), 0);
		assert_int_equal(f.commits, commits);
		assert_false(res.committed);
		assert_int_equal(kvm_address(&f, gsi[0]), d);
	}
	/* the other half runs: one commit moves both */
	views_all(v, true, true);
	set_view(v, 0, false, false);
	set_view(v, 1, false, false);
	assert_int_equal(irq_steer(irq, v, 6, &res), 0);
	assert_int_equal(res.moved, 2);
	assert_true(((kvm_address(&f, gsi[0]) >> 12) & 0xff) >= 2);
	/* a new route is steered by the last view at once */
	{
		struct irq_msi n = lowest_all(0x44);
		uint32_t g;

		assert_int_equal(irq_msi_add(irq, &n, "d", &g), 0);
		assert_true(((kvm_address(&f, g) >> 12) & 0xff) >= 2);
	}
	/* a refused commit changes nothing */
	views_all(v, true, true);
	set_view(v, 2, false, false);
	set_view(v, 3, false, false);
	f.fail_next = -ENOMEM;
	assert_int_equal(irq_steer(irq, v, 8, &res), -ENOMEM);
	assert_true(((kvm_address(&f, gsi[0]) >> 12) & 0xff) >= 2);
	/* steering off: the guest's messages, in one commit */
	commits = f.commits;
	assert_int_equal(irq_set_steering(irq, false), 0);
	assert_int_equal(f.commits, commits + 1);
	assert_int_equal(kvm_address(&f, gsi[0]), 0xfee00000 | 0x0f << 12 | 4);
	assert_false(irq_steering(irq));
	assert_int_equal(irq_steer(irq, v, 10, &res), 0); /* off: does nothing */
	assert_int_equal(f.commits, commits + 1);
	assert_int_equal(irq_set_steering(irq, true), 0); /* back on, with the last view */
	assert_true(((kvm_address(&f, gsi[0]) >> 12) & 0xff) < 2);
	irq_free(irq);
}

static void test_gated_counters(void **state)
{
	struct fake f = { .gen = 2, .open = { true, true, false, false } };
	struct irq_params p = { .nr_vcpus = NR, .steering = true };
	struct irq_msi lp = lowest_all(0x41), fixed = { .address = 0xfee03000, .data = 0x43 };
	struct irq_route_info info[64];
	struct irq_line *line, *fline;
	struct irq_vcpu_view v[NR];
	uint32_t gsi, fgsi, n;
	uint64_t sink;
	struct irq *irq;

	assert_int_equal(irq_new(&ops, &f, &p, &irq), 0);
	irq_set_gate_probe(irq, gate_probe, &f);
	irq_set_gated_hook(irq, gated_hook, &f);
	assert_int_equal(irq_msi_add(irq, &lp, "d", &gsi), 0);
	assert_int_equal(irq_msi_add(irq, &fixed, "d", &fgsi), 0);
	assert_int_equal(irq_line_new(irq, gsi, IRQ_LINE_EDGE, "lp", &line), 0);
	assert_int_equal(irq_line_new(irq, fgsi, IRQ_LINE_EDGE, "fixed", &fline), 0);
	views_all(v, false, false);
	set_view(v, 0, true, true);
	set_view(v, 1, true, true);
	assert_int_equal(irq_steer(irq, v, 2, NULL), 0);

	/* steered to a running vCPU: never gated */
	for (int i = 0; i < 10; i++)
		assert_int_equal(irq_line_raise(line), 0);
	/* the fixed route goes to vCPU 3, whose gate is closed */
	assert_int_equal(irq_line_raise(fline), 0);
	/* the scheduler switches (generation odd) and closes 0 and 1: a switching window */
	f.gen = 3;
	f.open[0] = f.open[1] = false;
	assert_int_equal(irq_line_raise(line), 0);
	/* switched (even) but not yet re-steered: still the window */
	f.gen = 4;
	f.open[2] = f.open[3] = true;
	assert_int_equal(irq_line_raise(line), 0);
	/* re-steered to 2 or 3 */
	views_all(v, true, true);
	set_view(v, 0, false, false);
	set_view(v, 1, false, false);
	assert_int_equal(irq_steer(irq, v, 4, NULL), 0);
	assert_int_equal(irq_line_raise(line), 0);
	/* nobody runs: stays put, gated, and counted as having had nowhere to go */
	f.gen = 6;
	f.open[2] = f.open[3] = false;
	views_all(v, false, false);
	assert_int_equal(irq_steer(irq, v, 6, NULL), 0);
	assert_int_equal(irq_line_raise(line), 0);

	n = irq_get_routes(irq, info, 64);
	for (uint32_t i = 0; i < n; i++) {
		if (info[i].gsi == gsi) {
			assert_int_equal(info[i].injected, 14);
			assert_int_equal(info[i].to_gated, 3);
			assert_int_equal(info[i].to_gated_switching, 2);
			assert_int_equal(info[i].to_gated_nowhere, 1);
			assert_int_equal(info[i].to_gated_miss, 0);
			assert_true(info[i].redirectable);
			assert_true(info[i].steered);
			assert_true(info[i].last_dest_vcpu >= 2 && info[i].last_dest_vcpu < NR);
		} else if (info[i].gsi == fgsi) {
			assert_int_equal(info[i].injected, 1);
			assert_int_equal(info[i].to_gated, 1);
			assert_int_equal(info[i].to_gated_switching, 0); /* not steered */
			assert_false(info[i].redirectable);
			assert_int_equal(info[i].dest_vcpu, 3);
			assert_int_equal(info[i].last_dest_vcpu, 3);
		}
	}
	/* Steering on: every injection to a gated vCPU asked for its VM to run (a boost). */
	assert_int_equal(f.gated_calls, 4);
	assert_true(f.gated_raise_ns > 0);
	/* Off: gated injections are counted, but ask for nothing. */
	assert_int_equal(irq_set_steering(irq, false), 0);
	assert_int_equal(irq_line_raise(fline), 0);
	assert_int_equal(f.gated_calls, 4);
	while (read(irq_line_fd(line), &sink, 8) == 8)
		;
	irq_line_free(line);
	irq_line_free(fline);
	irq_free(irq);
}

/* Steering off: the counters still know where KVM's vector hashing sends the guest's message. */
static void test_unsteered_destination(void **state)
{
	struct fake f = { .gen = 2, .open = { true, false, true, true } };
	struct irq_params p = { .nr_vcpus = NR, .kvm_vector_hashing = true };
	struct irq_msi lp = lowest_all(0x41); /* 0x41 % 4 = 1: vCPU 1 */
	struct irq_route_info info[64];
	struct irq_vcpu_view v[NR];
	struct irq_line *line;
	uint32_t gsi, n;
	uint64_t sink;
	struct irq *irq;

	assert_int_equal(irq_new(&ops, &f, &p, &irq), 0);
	irq_set_gate_probe(irq, gate_probe, &f);
	assert_int_equal(irq_msi_add(irq, &lp, "d", &gsi), 0);
	assert_int_equal(irq_line_new(irq, gsi, IRQ_LINE_EDGE, "lp", &line), 0);
	views_all(v, true, true);
	set_view(v, 1, false, false);
	assert_int_equal(irq_steer(irq, v, 2, NULL), 0);
	assert_int_equal(kvm_address(&f, gsi), 0xfee00000 | 0x0f << 12 | 4); /* untouched */
	assert_int_equal(irq_line_raise(line), 0);
	n = irq_get_routes(irq, info, 64);
	assert_int_equal(info[n - 1].gsi, gsi);
	assert_false(info[n - 1].steered);
	assert_int_equal(info[n - 1].dest_vcpu, 1);
	assert_int_equal(info[n - 1].last_dest_vcpu, 1);
	assert_int_equal(info[n - 1].to_gated, 1);
	assert_int_equal(info[n - 1].to_gated_switching, 0); /* not steered: no reason given */
	while (read(irq_line_fd(line), &sink, 8) == 8)
		;
	irq_line_free(line);
	irq_free(irq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redirectable),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_steer_commits_once_per_change),
		cmocka_unit_test(test_gated_counters),
		cmocka_unit_test(test_unsteered_destination),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
