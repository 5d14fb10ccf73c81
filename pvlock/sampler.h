/*
 * The detector's sampler (pvlock/sampler.c): publications from the guest's shared page and
 * KVM's statistics (PLE, pv calls), next to the vCPUs' run states its VMM sampled.
 */
#ifndef LOCKSTEP_PVLOCK_SAMPLER_H
#define LOCKSTEP_PVLOCK_SAMPLER_H

#include "pvlock/pvlock.h"

struct pvlock_sampler;

int pvlock_sampler_new(uint32_t nr_vcpus, struct pvlock_sampler **out);
void pvlock_sampler_free(struct pvlock_sampler *s);
/* The vCPU's KVM statistics, for the PLE counters. */
void pvlock_sampler_set_stats(struct pvlock_sampler *s, uint32_t vcpu, struct hv_stats *stats);
/* One sample of every vCPU into out[nr_vcpus], with the run states `run[nr_vcpus]`; `ple`
 * and `kvm` read KVM's statistics too, for the PLE and the KVM pv paths. */
void pvlock_sampler_sample(struct pvlock_sampler *s, const struct pvlock_vm *pv, bool ple, bool kvm,
			   const enum pvlock_run_state *run, struct pvlock_sample *out);

#endif /* LOCKSTEP_PVLOCK_SAMPLER_H */
