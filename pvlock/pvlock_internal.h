/*
 * Internals of the detector shared by pvlock/detector.c and pvlock/ple.c.
 */
#ifndef LOCKSTEP_PVLOCK_INTERNAL_H
#define LOCKSTEP_PVLOCK_INTERNAL_H

#include "pvlock/pvlock.h"

/* Directed-yield attempts per second that mark a vCPU as spinning: KVM's PLE handler
 * attempts one yield per pause-loop exit, and a vCPU looping on a held lock exits every few
 * microseconds with the default PLE window, so a few thousand per second is spinning, not
 * noise.  Tunable: pvlock_detector_set_ple_rate(). */
#define PVLOCK_PLE_RATE_DEFAULT 2000

struct pvlock_episode {
	enum pvlock_event_kind kind;
	uint64_t lock;
	uint32_t culprit;
	uint32_t nr_waiters;
	uint64_t start_ns;
	uint64_t seen;	/* the generation of the last sample in which it held */
	bool announced; /* its beginning has been reported */
};

struct pvlock_detector_vcpu {
	struct pvlock_vcpu_detect stats;
	bool ple_valid;	 /* previous PLE counters are known */
	uint64_t ple_ns; /* when they were taken */
	uint64_t ple_attempted, ple_successful;
	/* The KVM pv path (pvlock/kvm.c): the previous sample's counters, this one's findings. */
	bool kvm_valid;
	uint64_t kvm_hypercalls, kvm_yields, kvm_preempted;
	bool kvm_calls, kvm_yielding, kvm_was_preempted;
};

struct pvlock_detector {
	uint32_t nr_vcpus;
	pvlock_event_fn fn;
	void *opaque;
	uint64_t generation;
	uint64_t ple_rate;
	struct pvlock_detector_vcpu *vcpu;
	struct pvlock_episode *episodes;
	unsigned nr_episodes;
	uint32_t spinning; /* this sample: vCPUs running while spinning for a preempted one */
	uint64_t last_ns;  /* the previous sample's time, 0 before the first */
	double pressure;
};

void pvlock_detector_observe(struct pvlock_detector *det, uint64_t now_ns,
			     enum pvlock_event_kind kind, uint64_t lock, uint32_t culprit,
			     uint32_t nr_waiters);
bool pvlock_detector_active(const struct pvlock_detector *det, enum pvlock_event_kind kind,
			    uint64_t lock, uint32_t culprit);
void pvlock_ple_feed(struct pvlock_detector *det, uint64_t now_ns,
		     const struct pvlock_sample *samples);
void pvlock_kvm_feed(struct pvlock_detector *det, uint64_t now_ns,
		     const struct pvlock_sample *samples);

#endif /* LOCKSTEP_PVLOCK_INTERNAL_H */
