/*
 * Unit tests for the posted-interrupt report: made-up sysfs/procfs trees for a host without
 * kvm_intel/kvm_amd, an Intel host with APICv and a posting VT-d unit, an AMD host with AVIC
 * off, and the per-route verdict.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "irq/irq.h"
#include "util/util.h"

static void put(const char *root, const char *path, const char *text)
{
	char full[512], dir[512];
	FILE *f;

	snprintf(full, sizeof(full), "%s/%s", root, path);
	snprintf(dir, sizeof(dir), "%s", full);
	*strrchr(dir, '/') = '\0';
	assert_int_equal(util_mkdir_p(dir, 0755), 0);
	f = fopen(full, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *new_root(void)
{
	char *root = strdup("/tmp/lockstep-posting-XXXXXX");

	assert_non_null(mkdtemp(root));
	return root;
}

static void remove_root(char *root)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(root);
}

static void test_no_kvm_vendor_module(void **state)
{
	char *root = new_root();
	struct irq_posting p;

	put(root, "proc/interrupts",
	    "           CPU0       CPU1\n  0:  1  2  IO-APIC  timer\n"
	    "PIN:          3          4   Posted-interrupt notification event\n"
	    "NPI:          0          0   Nested posted-interrupt event\n"
	    "PIW:          0          5   Posted-interrupt wakeup event\n");
	assert_int_equal(irq_posting_probe(root, &p), 0);
	assert_string_equal(p.vendor, "none");
	assert_false(p.apicv);
	assert_int_equal(p.iommus, 0);
	assert_true(p.counters_valid);
	assert_int_equal(p.pi_notifications, 7);
	assert_int_equal(p.pi_wakeups, 5);
	assert_non_null(strstr(p.why, "APICv"));
	remove_root(root);
}

static void test_intel_posting(void **state)
{
	char *root = new_root();
	struct irq_route_info msi = { .kind = IRQ_ROUTE_MSI, .bypass = true };
	struct irq_posting p;
	const char *why;

	put(root, "sys/module/kvm_intel/parameters/enable_apicv", "Y\n");
	put(root, "sys/class/iommu/dmar0/intel-iommu/cap", "d2008c40660462\n"); /* no PI */
	put(root, "sys/class/iommu/dmar0/intel-iommu/ecap", "f050da\n");
	assert_int_equal(irq_posting_probe(root, &p), 0);
	assert_string_equal(p.vendor, "intel");
	assert_true(p.apicv);
	assert_int_equal(p.iommus, 1);
	assert_true(p.iommu_ir);
	assert_false(p.iommu_posting);
	assert_false(p.counters_valid);
	assert_false(irq_route_posted(&p, &msi, &why));
	assert_string_equal(why, "IOMMU cannot post");
	put(root, "sys/class/iommu/dmar1/intel-iommu/cap", "8d2078c106f0466\n"); /* bit 59 */
	put(root, "sys/class/iommu/dmar1/intel-iommu/ecap", "f0205e\n");
	assert_int_equal(irq_posting_probe(root, &p), 0);
	assert_int_equal(p.iommus, 2);
	assert_true(p.iommu_posting);
	assert_string_equal(p.why, "");
	assert_true(irq_route_posted(&p, &msi, &why));
	assert_null(why);
	msi.bypass = false;
	assert_false(irq_route_posted(&p, &msi, &why));
	assert_non_null(strstr(why, "emulated"));
	msi.kind = IRQ_ROUTE_PIN;
	assert_false(irq_route_posted(&p, &msi, NULL));
	remove_root(root);
}

static void test_amd_avic_off(void **state)
{
	char *root = new_root();
	struct irq_posting p;

	put(root, "sys/module/kvm_amd/parameters/avic", "0\n");
	put(root, "sys/class/iommu/ivhd0/amd-iommu/features", "25bf732fa2295afe\n");
	assert_int_equal(irq_posting_probe(root, &p), 0);
	assert_string_equal(p.vendor, "amd");
	assert_false(p.apicv);
	assert_true(p.iommu_ir);
	assert_true(p.iommu_posting); /* GASup is bit 7 */
	assert_string_equal(p.why, "kvm_amd.avic is off");
	remove_root(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_kvm_vendor_module),
		cmocka_unit_test(test_intel_posting),
		cmocka_unit_test(test_amd_avic_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
