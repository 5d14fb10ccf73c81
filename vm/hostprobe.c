/*
 * lockstep-vm --host-probe: what /dev/kvm answers, for lockstepd's host check (lockstepd never
 * opens a KVM fd itself).  Opens /dev/kvm without lockstep's requirements (a missing one is an
 * answer, not a failure), asks for the capabilities the check reports, the CPUID KVM offers
 * guests, and the names of a VM's and a vCPU's binary statistics (which needs a VM with one
 * vCPU that never runs), and prints struct host_kvm as JSON (host/probe.c) on stdout.
 * Single-threaded; runs in place of a VM.
 */
#include <stdio.h>
#include <string.h>

#include "host/host.h"
#include "vm/vm_internal.h"

#define CAP(name)           \
	{                   \
#name, name \
	}

static const struct {
	const char *name;
	long cap;
} probed_caps[] = {
	CAP(KVM_CAP_NR_VCPUS),
	CAP(KVM_CAP_MAX_VCPUS),
	CAP(KVM_CAP_MAX_VCPU_ID),
	CAP(KVM_CAP_X86_DISABLE_EXITS),
	CAP(KVM_CAP_HALT_POLL),
	CAP(KVM_CAP_X2APIC_API),
	CAP(KVM_CAP_SPLIT_IRQCHIP),
	CAP(KVM_CAP_IRQCHIP),
	CAP(KVM_CAP_IRQFD),
	CAP(KVM_CAP_IRQFD_RESAMPLE),
	CAP(KVM_CAP_IRQ_ROUTING),
	CAP(KVM_CAP_SIGNAL_MSI),
	CAP(KVM_CAP_IOEVENTFD),
	CAP(KVM_CAP_IMMEDIATE_EXIT),
	CAP(KVM_CAP_SYNC_REGS),
	CAP(KVM_CAP_BINARY_STATS_FD),
	CAP(KVM_CAP_TSC_CONTROL),
	CAP(KVM_CAP_GET_TSC_KHZ),
	CAP(KVM_CAP_VM_TSC_CONTROL),
	CAP(KVM_CAP_TSC_DEADLINE_TIMER),
	CAP(KVM_CAP_NESTED_STATE),
	CAP(KVM_CAP_EXIT_HYPERCALL),
	CAP(KVM_CAP_X86_NOTIFY_VMEXIT),
	CAP(KVM_CAP_X86_BUS_LOCK_EXIT),
	CAP(KVM_CAP_PMU_CAPABILITY),
	CAP(KVM_CAP_ADJUST_CLOCK),
};

static void stat_names(const struct hv_stats *st, char (*names)[HOST_KVM_NAME_MAX], unsigned *n)
{
	int count = hv_stats_count(st);

	*n = 0;
	for (int i = 0; i < count && *n < HOST_KVM_STATS_MAX; i++) {
		const char *name = hv_stats_name(st, i);

		if (name && !util_strlcpy(names[*n], name, HOST_KVM_NAME_MAX))
			(*n)++;
	}
}

/* A VM with one vCPU that never runs: its statistics' names and the vCPU's TSC rate. */
static void probe_vm(struct hv_sys *sys, struct host_kvm *k)
{
	struct hv_stats *vm_stats = NULL, *vcpu_stats = NULL;
	struct hv_vcpu *vcpu = NULL;
	struct hv_vm *vm = NULL;
	int ret, khz;

	ret = hv_vm_create(sys, &vm);
	if (ret) {
		snprintf(k->vm_error, sizeof(k->vm_error), "KVM_CREATE_VM: %s", strerror(-ret));
		return;
	}
	ret = hv_vm_stats_open(vm, &vm_stats);
	if (!ret)
		stat_names(vm_stats, k->vm_stats, &k->nr_vm_stats);
	ret = hv_vcpu_create(vm, 0, &vcpu);
	if (ret) {
		snprintf(k->vm_error, sizeof(k->vm_error), "KVM_CREATE_VCPU: %s", strerror(-ret));
		goto out;
	}
	ret = hv_vcpu_stats_open(vcpu, &vcpu_stats);
	if (ret)
		snprintf(k->vm_error, sizeof(k->vm_error), "KVM_GET_STATS_FD of a vCPU: %s",
			 strerror(-ret));
	else
		stat_names(vcpu_stats, k->vcpu_stats, &k->nr_vcpu_stats);
	khz = hv_vcpu_tsc_khz(vcpu);
	k->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
out:
	hv_stats_close(vcpu_stats);
	hv_stats_close(vm_stats);
	hv_vcpu_destroy(vcpu);
	hv_vm_destroy(vm);
}

int vm_host_probe(const char *kvm_path, FILE *out)
{
	struct host_kvm *k = calloc(1, sizeof(*k));
	struct kvm_cpuid2 *cpuid = NULL;
	struct hv_sys *sys = NULL;
	json_t *j;
	int ret;

	if (!k)
		return VM_EXIT_INTERNAL;
	ret = hv_sys_open_unchecked(kvm_path, &sys, k->error, sizeof(k->error));
	if (!ret) {
		k->api_version = hv_sys_api_version(sys);
		hv_sys_check_requirements(sys, k->missing, sizeof(k->missing));
		for (size_t i = 0; i < sizeof(probed_caps) / sizeof(probed_caps[0]); i++) {
			struct host_kvm_cap *c = &k->cap[k->nr_caps++];

			util_strlcpy(c->name, probed_caps[i].name, sizeof(c->name));
			ret = hv_sys_check_cap(sys, probed_caps[i].cap);
			c->value = ret > 0 ? ret : 0;
		}
		if (hv_sys_supported_cpuid(sys, &cpuid) == 0) {
			for (uint32_t i = 0; i < cpuid->nent && k->supported.n < HOST_CPUID_MAX;
			     i++)
				k->supported.e[k->supported.n++] = (struct host_cpuid_leaf){
					.leaf = cpuid->entries[i].function,
					.subleaf = cpuid->entries[i].index,
					.eax = cpuid->entries[i].eax,
					.ebx = cpuid->entries[i].ebx,
					.ecx = cpuid->entries[i].ecx,
					.edx = cpuid->entries[i].edx,
				};
			free(cpuid);
		}
		probe_vm(sys, k);
		hv_sys_close(sys);
	}
	j = host_kvm_to_json(k);
	free(k);
	if (!j)
		return VM_EXIT_INTERNAL;
	ret = json_dumpf(j, out, JSON_COMPACT);
	json_decref(j);
	fputc('\n', out);
	return ret || fflush(out) ? VM_EXIT_INTERNAL : 0;
}
