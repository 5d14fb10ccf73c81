/*
 * Internals of the scheduling engine, shared by sched/engine.c (VMs, observation, accounting,
 * the tick), sched/gang.c (slices), sched/relaxed.c (relaxed and adaptive) and sched/mux.c
 * (the multiplexer's slots, fairness and requests).
 */
#ifndef LOCKSTEP_SCHED_ENGINE_INTERNAL_H
#define LOCKSTEP_SCHED_ENGINE_INTERNAL_H

#include "sched/sched.h"

#define SCHED_TICK_NS 1000000ull	/* observation period while a VM decides from run states */
#define SCHED_COARSE_TICK_NS 4000000ull /* ... while VMs only need accounting (a host tick) */
#define SCHED_IDLE_TICK_NS 100000000ull /* ... and while no VM runs */
#define ADAPTIVE_HOLD_NS 500000000ull	/* co-schedule this long after the last episode */
#define ADAPTIVE_HOLD_MAX_NS 8000000000ull /* ... doubled up to this while it keeps relapsing */
#define ADAPTIVE_RELAPSE_NS 250000000ull   /* an episode this soon after release is a relapse */
#define ADAPTIVE_CALM_NS 1000000000ull	   /* ... and after this long it starts over */
#define ADAPTIVE_BOOST_NS 2000000ull	   /* run a preempted holder alone this long */
#define SLICE_LOG 256
#define SLICE_SETTLE_NS 2000000ull /* a slice's switch-over, not checked for interleaving */
#define SLICE_VMS 4

enum vcpu_activity {
	ACT_IDLE = 0,  /* neither ran nor waited: halted, in a pvlock WAIT, or stopped */
	ACT_RUNNING,   /* ran for most of the interval */
	ACT_PREEMPTED, /* runnable, waited for a CPU more than it ran */
};

struct engine_vcpu {
	bool valid; /* last_* hold a previous observation */
	uint64_t last_exec, last_wait;
	enum vcpu_activity act;
	uint64_t d_exec;    /* in the last interval */
	uint64_t d_wait;    /* ... runnable, waiting for a host CPU */
	bool gate_open;	    /* as decided */
	bool costopped;	    /* relaxed: closed because it ran ahead */
	bool was_active;    /* relaxed: active in the previous interval */
	uint64_t progress;  /* relaxed: run time while active */
	uint64_t closed_at; /* the tick that last closed its gate */
	bool affinity_sent;
	struct util_cpuset affinity;
	struct sched_vcpu_stats st;
	/* the multiplexer */
	uint32_t req;	      /* the request pending for it (enum sched_mux_request) */
	uint32_t req_succ;    /* ... in favour of vCPU req_succ - 1 (0: the worker's choice) */
	uint64_t req_at;      /* ... made then */
	bool req_new;	      /* ... decided at this tick: hand it to the caller */
	bool idle;	      /* admitted but halted: its slot is lent */
	uint32_t idle_ticks;  /* ... seen halted at this many ticks in a row */
	uint64_t last_pvwait; /* its pv WAIT time at the last tick */
	uint64_t ready_since; /* parked and ready to run since; 0 = not */
	/* Its gate open beyond the slots is accounted for, for as long as its gate stays open
	 * since open_ns: it was open when the multiplexer took over, or its slot was lent. */
	bool excess_ok;
	uint64_t excess_open_ns;
	bool lent_published; /* its slot went out lent with the last decisions */
};

struct engine_vm {
	int id;
	struct sched_vm_params p;
	struct util_cpuset *pin; /* per vCPU; empty = not pinned */
	uint32_t *place;	 /* host CPU per vCPU */
	unsigned distinct_cpus;	 /* how many distinct CPUs the placement uses */
	struct engine_vcpu *v;
	struct sched_decision *decisions; /* per vCPU, handed to the caller each tick */
	struct sched_vm_stats st;
	bool baseline_taken;	/* observed once: deltas from now on mean something */
	uint64_t cosched_until; /* adaptive */
	uint64_t hold_ns;	/* adaptive: the current hold (ADAPTIVE_HOLD_NS..HOLD_MAX) */
	uint32_t boost_vcpu;
	uint64_t boost_until;
	bool in_slice;			    /* gang: its gates are open in the current slice */
	uint64_t costart_at;		    /* gang: gates opened at; 0 = no co-start pending */
	uint64_t slice_exec;		    /* gang: exec while outside the current slice */
	uint64_t prev_sample_ns, sample_ns; /* when its last two observations were taken */
	const struct sched_obs *obs;	    /* this tick's observations */
	uint32_t over_samples; /* mux: samples in a row with more vCPUs running than slots */
	uint32_t contended;    /* adaptive, wide: samples in a row of sibling contention */
	/* Interrupt boost (sched/gang.c): */
	bool irq_pending;  /* an interrupt waits for its next slice: bring it forward */
	bool irq_refused;  /* ... refused: wait for the regular slice, stop looking */
	bool irq_deferred; /* ... held for the running slice's minimum run (counted) */
	uint64_t irq_debt; /* boosted run time not yet paid back */
};

struct sched {
	struct sched_host host;
	struct engine_vm **vms;
	unsigned nr_vms, cap;
	uint64_t last_tick;
	/* gang slices */
	uint64_t slice_start, slice_end;
	int slice_vm[SLICE_VMS];
	unsigned slice_n;
	unsigned rr; /* rotation cursor into vms[] */
	struct sched_slice_record log[SLICE_LOG];
	unsigned log_head, log_count;
	/* Interrupt boost: the current slice is a boosted VM's; the slice it preempted resumes
	 * after it with its VMs and the time it had left. */
	bool boosting;
	int resume_vm[SLICE_VMS];
	unsigned resume_n;
	uint64_t resume_left;
	uint64_t boost_ran; /* how long the last boosted slice lasted, switch included */
};

struct engine_vm *engine_find(const struct sched *s, int id);
/* Whether the VM takes part in gang slices now (gang, or adaptive while co-scheduling and
 * narrow enough). */
bool engine_in_gang(const struct engine_vm *vm, uint64_t now);
/* Whether the multiplexer runs the VM now (mux, or adaptive co-scheduling a VM wider than its
 * CPUs), and with how many slots (0: it does not). */
uint32_t engine_mux_slots(const struct engine_vm *vm, uint64_t now);
/* The host CPUs a VM may use (its cpus, or all). */
void engine_allowed(const struct sched *s, const struct engine_vm *vm, struct util_cpuset *out);

void gang_tick(struct sched *s, uint64_t now);
void gang_account(struct sched *s, struct engine_vm *vm, uint64_t now);
void gang_forget(struct sched *s, int id);
/* When a held interrupt boost can be decided next (0: none held). */
uint64_t gang_boost_due(const struct sched *s, uint64_t now);
void relaxed_decide(struct engine_vm *vm, uint64_t dt);
void adaptive_decide(struct engine_vm *vm, uint64_t now, uint64_t dt);
void mux_decide(struct engine_vm *vm, uint64_t now);
/* Adaptive, a VM wider than its CPUs under host scheduling: co-schedules it (multiplexes)
 * when its vCPUs queue for host CPUs while siblings sleep in pv WAITs. */
void mux_watch(struct engine_vm *vm, uint64_t now);
/* Adaptive: an episode worth co-scheduling for; holds it (doubled on relapses). */
void engine_adaptive_episode(struct engine_vm *vm, uint64_t now);
/* Forgets the multiplexer's state of a VM that stops being multiplexed. */
void mux_leave(struct engine_vm *vm);

#endif /* LOCKSTEP_SCHED_ENGINE_INTERNAL_H */
