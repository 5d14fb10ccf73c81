/*
 * pvlock — paravirtual spinlocks and lock-holder-preemption detection, host side.
 *
 * Two halves:
 *  - calls (pvlock/calls.c): WAIT, KICK, YIELD_TO, SHARED_SETUP and SWITCH from the doorbell
 *    (pvlock/abi.h), with the in-kernel KICK fast path (one ioeventfd per vCPU matching the
 *    vCPU's number).  A vCPU in WAIT sleeps on its eventfd in its own thread, out of KVM_RUN.
 *  - the detector (pvlock/detector.c, pvlock/ple.c, pvlock/kvm.c): samples what each vCPU
 *    publishes in the guest's shared page, which vCPUs are running (from the scheduler, or
 *    from the kernel's per-thread scheduling statistics when no scheduler runs) and KVM's
 *    statistics (pause-loop exits; a Linux guest's pv calls that KVM handles itself), and
 *    recognises lock-holder and lock-waiter preemption.
 *
 * pvlock knows nothing of threads or signals: its VMM gives it an environment of callbacks.
 */
#ifndef LOCKSTEP_PVLOCK_H
#define LOCKSTEP_PVLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/hv.h"
#include "pvlock/abi.h"

struct pvlock_vm;

struct pvlock_env {
	void *opaque;
	/* Host pointer to guest-physical [gpa, gpa+len), or NULL if not wholly RAM. */
	void *(*guest_ptr)(void *opaque, uint64_t gpa, uint64_t len);
	/*
	 * Blocks vCPU `vcpu`'s thread until `fd` is readable (1), `timeout_ns` passed (0; 0 ns
	 * means no timeout) or the thread was kicked (-EINTR: the VMM wants it back).
	 */
	int (*sleep)(void *opaque, uint32_t vcpu, int fd, uint64_t timeout_ns);
	/* Scheduler hint: `from` asks for `to` to run (YIELD_TO).  May be NULL. */
	void (*yield_to)(void *opaque, uint32_t from, uint32_t to);
	/* SWITCH: `vcpu`, at a release point, gives up its host CPU if the host asked it to;
	 * LKS_SWITCH_DONE or LKS_SWITCH_NOT_ASKED.  NULL: the VMM has no multiplexer (ENOSYS). */
	int64_t (*switch_cpu)(void *opaque, uint32_t vcpu);
};

/* Per-vCPU counters of the paravirtual calls (written by that vCPU's thread only). */
struct pvlock_vcpu_calls {
	uint64_t waits;		/* WAIT calls */
	uint64_t waits_changed; /* returned at once: the word had changed */
	uint64_t waits_woken;	/* slept and were kicked (or woken spuriously) */
	uint64_t waits_timeout;
	uint64_t wait_ns;	     /* time spent asleep in WAIT */
	uint64_t kicks;		     /* KICK calls through the doorbell (slow path) */
	uint64_t yields;	     /* YIELD_TO */
	uint64_t switches;	     /* SWITCH calls that gave up the CPU */
	uint64_t switches_not_asked; /* SWITCH calls the host had not asked for (any more) */
	uint64_t errors;	     /* calls refused with an error */
};

int pvlock_vm_new(const struct pvlock_env *env, struct hv_vm *hv, uint32_t nr_vcpus,
		  uint64_t doorbell_gpa, struct pvlock_vm **out);
void pvlock_vm_free(struct pvlock_vm *pv);

/* Performs doorbell call `nr` for vCPU `vcpu`; returns the value the guest reads. */
int64_t pvlock_call(struct pvlock_vm *pv, uint32_t vcpu, uint32_t nr, uint64_t a0, uint64_t a1,
		    uint64_t a2);
/* A KICK write that reached userspace: no vCPU matched.  Counted as an error of `vcpu`. */
void pvlock_bad_kick(struct pvlock_vm *pv, uint32_t vcpu, uint64_t value);
void pvlock_vcpu_calls(const struct pvlock_vm *pv, uint32_t vcpu, struct pvlock_vcpu_calls *out);
/* The registered shared page (host pointer) and its vCPU count, or NULL before SHARED_SETUP. */
const struct lks_shared_page *pvlock_shared_page(const struct pvlock_vm *pv, uint32_t *nr);

/* ---- the detector ---- */

enum pvlock_run_state {
	PVLOCK_RUN_UNKNOWN = 0,
	PVLOCK_RUN_RUNNING,   /* on a host CPU (ran through the sample interval) */
	PVLOCK_RUN_PREEMPTED, /* runnable but waiting for a host CPU */
	PVLOCK_RUN_IDLE,      /* blocked: halted, asleep in WAIT, or stopped by its gate */
};

enum pvlock_event_kind {
	PVLOCK_LHP = 0, /* a lock's holder is preempted while others wait for it */
	PVLOCK_LWP,	/* the lock is free but the waiter next in line is preempted */
	PVLOCK_PLE,	/* pause-loop exits show spinning (real hardware only) */
	PVLOCK_KVM,	/* KVM's pv calls (kicks, PV IPIs, yields) around a preempted vCPU */
	PVLOCK_EVENT_KINDS,
};

const char *pvlock_event_name(enum pvlock_event_kind kind);

/* One detection, reported once per episode (when it starts) and again when it ends. */
struct pvlock_event {
	enum pvlock_event_kind kind;
	bool ended;	     /* false: began; true: ended, duration_ns set */
	uint64_t lock;	     /* GPA of the lock, 0 for PLE */
	uint32_t culprit;    /* the preempted holder or waiter (PLE: the spinning vCPU) */
	uint32_t nr_waiters; /* vCPUs waiting for the lock (PLE: 0) */
	uint64_t duration_ns;
	/*
	 * Spin pressure when it began: the share of the VM's vCPU time lately burnt by vCPUs
	 * spinning for preempted ones (0..1, decaying average over PVLOCK_PRESSURE_NS).  High
	 * for spinning locks and barriers; low when waiters sleep (pv), where co-scheduling
	 * would only take CPUs from work that can run.
	 */
	double pressure;
};

#define PVLOCK_PRESSURE_NS 100000000ull

/* Everything the detector looks at for one vCPU in one sample. */
struct pvlock_sample {
	enum pvlock_run_state run;
	struct lks_vcpu_pub pub; /* copied from the shared page (zero if none) */
	bool has_ple;		 /* the PLE path reads directed_yield_* */
	bool has_kvm;		 /* the KVM pv path reads the statistics below */
	uint64_t directed_yield_attempted, directed_yield_successful;
	uint64_t exits, halt_exits, preemption_reported;
	uint64_t hypercalls, halt_wakeup, irq_injections;
};

struct pvlock_vcpu_detect {
	uint64_t events[PVLOCK_EVENT_KINDS]; /* episodes in which this vCPU was the culprit */
	uint64_t ns[PVLOCK_EVENT_KINDS];     /* their total duration */
};

struct pvlock_detector;

typedef void (*pvlock_event_fn)(void *opaque, const struct pvlock_event *ev);

int pvlock_detector_new(uint32_t nr_vcpus, pvlock_event_fn fn, void *opaque,
			struct pvlock_detector **out);
void pvlock_detector_free(struct pvlock_detector *det);
/* Feeds one sample of every vCPU taken at `now_ns`; reports episodes through the callback. */
void pvlock_detector_feed(struct pvlock_detector *det, uint64_t now_ns,
			  const struct pvlock_sample *samples);
void pvlock_detector_vcpu(const struct pvlock_detector *det, uint32_t vcpu,
			  struct pvlock_vcpu_detect *out);
/* The current spin pressure (see struct pvlock_event). */
double pvlock_detector_pressure(const struct pvlock_detector *det);
/* PLE thresholds: directed-yield attempts per second above which a vCPU counts as spinning. */
void pvlock_detector_set_ple_rate(struct pvlock_detector *det, uint64_t attempts_per_s);

#endif /* LOCKSTEP_PVLOCK_H */
