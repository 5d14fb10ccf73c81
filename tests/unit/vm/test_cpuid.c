/*
 * Each vCPU's CPUID (vm/cpuid.c): its APIC id in leaves 1, 0xB, 0x1F and 0x8000001E, the
 * hypervisor bit, KVM's paravirtual feature leaf masked by the VM's selection (or left as the
 * host offers it), lockstep's own discovery leaves with the doorbell and TSC rate, and the
 * TSC-deadline bit added only when KVM says it emulates it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "pvlock/abi.h"
#include "vm/vm_internal.h"

#define KVM_FEATURES_ALL 0x0003ffffu

static struct kvm_cpuid2 *supported(void)
{
	static const struct kvm_cpuid_entry2 leaves[] = {
		{ .function = 1, .eax = 0x00a00f11, .ebx = 0x00010800, .ecx = 0x7ed8320b },
		{ .function = 0xb, .index = 0, .edx = 0 },
		{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b },
		{ .function = 0x40000001, .eax = KVM_FEATURES_ALL },
		{ .function = LKS_CPUID_BASE, .eax = 0xdead }, /* must be replaced, not kept */
		{ .function = 0x8000001e, .eax = 0 },
	};
	size_t n = sizeof(leaves) / sizeof(leaves[0]);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

	c->nent = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		c->entries[i] = leaves[i];
	return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn)
{
	const struct kvm_cpuid_entry2 *found = NULL;

	for (uint32_t i = 0; i < c->nent; i++) {
		if (c->entries[i].function != fn)
			continue;
		assert_null(found); /* each leaf once */
		found = &c->entries[i];
	}
	assert_non_null(found);
	return found;
}

static void apic_ids_and_hypervisor_bit(void **state)
{
	struct kvm_cpuid2 *sup = supported(), *c;
	struct vmdef cfg;

	vmdef_init(&cfg);
	assert_int_equal(vm_cpuid_build(sup, &cfg, 5, 2596144, &c), 0);
	assert_int_equal(leaf(c, 1)->ebx >> 24, 5);
	assert_int_equal(leaf(c, 1)->ebx & 0xffffff, 0x010800);
	assert_true(leaf(c, 1)->ecx & (1u << 31));
	assert_int_equal(leaf(c, 0xb)->edx, 5);
	assert_int_equal(leaf(c, 0x8000001e)->eax, 5);
	free(c);
	free(sup);
}

static void kvm_features_host_or_masked(void **state)
{
	struct kvm_cpuid2 *sup = supported(), *c;
	struct vmdef cfg;

	vmdef_init(&cfg);
	assert_int_equal(vm_cpuid_build(sup, &cfg, 0, 0, &c), 0);
	assert_int_equal(leaf(c, 0x40000001)->eax, KVM_FEATURES_ALL);
	free(c);
	cfg.pvlock.kvm_features = (1u << 7) | (1u << 5); /* pv_unhalt, steal_time */
	assert_int_equal(vm_cpuid_build(sup, &cfg, 0, 0, &c), 0);
	assert_int_equal(leaf(c, 0x40000001)->eax, (1u << 7) | (1u << 5));
	free(c);
	cfg.pvlock.kvm_features = 0;
	assert_int_equal(vm_cpuid_build(sup, &cfg, 0, 0, &c), 0);
	assert_int_equal(leaf(c, 0x40000001)->eax, 0);
	assert_int_equal(leaf(c, 0x40000000)->ebx, 0x4b4d564b); /* still KVM's signature */
	free(c);
	free(sup);
}

static void lockstep_leaves(void **state)
{
	struct kvm_cpuid2 *sup = supported(), *c;
	const struct kvm_cpuid_entry2 *base, *info, *features;
	struct vmdef cfg;

	vmdef_init(&cfg);
	assert_int_equal(vm_cpuid_build(sup, &cfg, 2, 2596144, &c), 0);
	base = leaf(c, LKS_CPUID_BASE);
	/* The highest leaf: a guest that knows only LKS_CPUID_INFO still finds it below. */
	assert_int_equal(base->eax, LKS_CPUID_FEATURES);
	assert_int_equal(base->ebx, LKS_CPUID_SIG_EBX);
	assert_int_equal(base->ecx, LKS_CPUID_SIG_ECX);
	assert_int_equal(base->edx, LKS_CPUID_SIG_EDX);
	info = leaf(c, LKS_CPUID_INFO);
	assert_int_equal(info->eax, LKS_ABI_VERSION);
	assert_int_equal(info->ebx, 2596144);
	assert_int_equal(((uint64_t)info->edx << 32) | info->ecx, LKS_DOORBELL_GPA_DEFAULT);
	features = leaf(c, LKS_CPUID_FEATURES);
	assert_int_equal(features->eax, LKS_FEATURE_SCHED);
	assert_int_equal(((uint64_t)features->ecx << 32) | features->ebx, LKS_HINTS_GPA_DEFAULT);
	assert_int_equal(features->edx, LKS_HINTS_SIZE);
	free(c);
	/* Without lockstep's pv calls there is no SWITCH, so no multiplexer feature. */
	cfg.pvlock.enabled = false;
	assert_int_equal(vm_cpuid_build(sup, &cfg, 2, 2596144, &c), 0);
	assert_int_equal(leaf(c, LKS_CPUID_FEATURES)->eax, 0);
	free(c);
	free(sup);
}

static void tsc_deadline_when_emulated(void **state)
{
	struct kvm_cpuid2 *sup = supported(), *c;
	struct vmdef cfg;

	vmdef_init(&cfg);
	vm_cpuid_add_emulated(sup, false);
	assert_int_equal(vm_cpuid_build(sup, &cfg, 0, 0, &c), 0);
	assert_false(leaf(c, 1)->ecx & (1u << 24));
	free(c);
	vm_cpuid_add_emulated(sup, true);
	assert_int_equal(vm_cpuid_build(sup, &cfg, 1, 0, &c), 0);
	assert_true(leaf(c, 1)->ecx & (1u << 24));
	assert_int_equal(leaf(c, 1)->ecx & ~((1u << 24) | (1u << 31)), 0x7ed8320b);
	free(c);
	free(sup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(apic_ids_and_hypervisor_bit),
		cmocka_unit_test(kvm_features_host_or_masked),
		cmocka_unit_test(lockstep_leaves),
		cmocka_unit_test(tsc_deadline_when_emulated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
