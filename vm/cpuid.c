/*
 * CPUID as each vCPU sees it: what the host KVM supports, with this vCPU's APIC id in every
 * leaf that reports one, the hypervisor bit, KVM's paravirtual leaves masked by the VM's
 * feature selection, and lockstep's own discovery leaves (pvlock/abi.h).
 *
 * KVM leaves out of KVM_GET_SUPPORTED_CPUID what it emulates only on request: the TSC-deadline
 * timer of its in-kernel LAPIC (KVM_CAP_TSC_DEADLINE_TIMER).  Linux wants it: without it, it
 * calibrates the LAPIC timer against the PIT, which fails where time is as uneven as in a
 * nested guest ("APIC timer disabled due to verification failure"), and falls back to the
 * PIT as its only clock event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pvlock/abi.h"
#include "vm/vm_internal.h"

#define KVM_CPUID_SIGNATURE_LEAF 0x40000000u
#define KVM_CPUID_FEATURES_LEAF 0x40000001u

static void patch_entry(struct kvm_cpuid_entry2 *e, const struct vmdef *cfg, uint32_t apic_id)
{
	switch (e->function) {
	case 1:
		e->ebx = (e->ebx & 0x00ffffffu) | (apic_id << 24);
		e->ecx |= 1u << 31; /* running under a hypervisor */
		break;
	case 0xb:
	case 0x1f:
		e->edx = apic_id; /* x2APIC id */
		break;
	case 0x8000001e:
		e->eax = apic_id; /* AMD extended APIC id */
		break;
	case KVM_CPUID_SIGNATURE_LEAF:
		if (e->eax < KVM_CPUID_FEATURES_LEAF)
			e->eax = KVM_CPUID_FEATURES_LEAF;
		break;
	case KVM_CPUID_FEATURES_LEAF:
		if (cfg->pvlock.kvm_features != VMDEF_KVM_FEATURES_HOST)
			e->eax &= cfg->pvlock.kvm_features;
		break;
	default:
		break;
	}
}

void vm_cpuid_add_emulated(struct kvm_cpuid2 *supported, bool tsc_deadline)
{
	for (uint32_t i = 0; i < supported->nent; i++) {
		struct kvm_cpuid_entry2 *e = &supported->entries[i];

		if (e->function == 1 && tsc_deadline)
			e->ecx |= 1u << 24;
	}
}

int vm_cpuid_build(const struct kvm_cpuid2 *supported, const struct vmdef *cfg, uint32_t index,
		   uint32_t tsc_khz, struct kvm_cpuid2 **out)
{
	uint32_t n = supported->nent;
	struct kvm_cpuid2 *cpuid;
	struct kvm_cpuid_entry2 *e;

	cpuid = calloc(1, sizeof(*cpuid) + (n + 3) * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const struct kvm_cpuid_entry2 *src = &supported->entries[i];

		/* Leaves at or above lockstep's own base are ours to define. */
		if (src->function >= LKS_CPUID_BASE && src->function <= LKS_CPUID_FEATURES)
			continue;
		e = &cpuid->entries[cpuid->nent++];
		*e = *src;
		patch_entry(e, cfg, index);
	}
	e = &cpuid->entries[cpuid->nent++];
	*e = (struct kvm_cpuid_entry2){
		.function = LKS_CPUID_BASE,
		.eax = LKS_CPUID_FEATURES,
		.ebx = LKS_CPUID_SIG_EBX,
		.ecx = LKS_CPUID_SIG_ECX,
		.edx = LKS_CPUID_SIG_EDX,
	};
	e = &cpuid->entries[cpuid->nent++];
	*e = (struct kvm_cpuid_entry2){
		.function = LKS_CPUID_INFO,
		.eax = LKS_ABI_VERSION,
		.ebx = tsc_khz,
		.ecx = (uint32_t)LKS_DOORBELL_GPA_DEFAULT,
		.edx = (uint32_t)(LKS_DOORBELL_GPA_DEFAULT >> 32),
	};
	/* The multiplexer's hints page and SWITCH, with lockstep's pv calls. */
	e = &cpuid->entries[cpuid->nent++];
	*e = (struct kvm_cpuid_entry2){
		.function = LKS_CPUID_FEATURES,
		.eax = cfg->pvlock.enabled ? LKS_FEATURE_SCHED : 0,
		.ebx = (uint32_t)LKS_HINTS_GPA_DEFAULT,
		.ecx = (uint32_t)(LKS_HINTS_GPA_DEFAULT >> 32),
		.edx = LKS_HINTS_SIZE,
	};
	*out = cpuid;
	return 0;
}
