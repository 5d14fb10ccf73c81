/*
 * The detector's sampler (pvlock/sampler.c): vCPU run states from the kernel's per-thread
 * scheduling statistics, publications from the guest's shared page, KVM's PLE statistics.
 */
#ifndef LOCKSTEP_PVLOCK_SAMPLER_H
#define LOCKSTEP_PVLOCK_SAMPLER_H

#include "pvlock/pvlock.h"

struct pvlock_sampler;

int pvlock_sampler_new(uint32_t nr_vcpus, struct pvlock_sampler **out);
void pvlock_sampler_free(struct pvlock_sampler *s);
/* The vCPU's host thread (its schedstat file is opened once). */
int pvlock_sampler_set_thread(struct pvlock_sampler *s, uint32_t vcpu, int tid);
/* The vCPU's KVM statistics, for the PLE counters. */
void pvlock_sampler_set_stats(struct pvlock_sampler *s, uint32_t vcpu, struct hv_stats *stats);
/* One sample of every vCPU into out[nr_vcpus]; `ple` reads KVM's statistics too. */
void pvlock_sampler_sample(struct pvlock_sampler *s, const struct pvlock_vm *pv, bool ple,
			   struct pvlock_sample *out);
/* The rule, exposed for tests: time waiting vs time running over one interval. */
enum pvlock_run_state pvlock_classify(uint64_t d_exec_ns, uint64_t d_wait_ns);

#endif /* LOCKSTEP_PVLOCK_SAMPLER_H */
