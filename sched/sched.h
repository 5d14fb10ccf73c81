/*
 * sched — vCPU scheduling across VMs: the policies (host, pinned, gang, relaxed, adaptive),
 * placement on the host's cores, the gate protocol and the accounting.
 *
 * Three parts:
 *  - the sched page (sched/page.c): shared memory per VM between lockstepd's scheduler
 *    thread and the VM's worker.  Per vCPU a gate (a futex word the scheduler writes), the
 *    vCPU's state and timestamps (the worker writes).  A vCPU enters KVM_RUN only through an
 *    open gate; closing a gate plus a kick gets it out within one kick latency.
 *  - the engine (sched/engine.c and the policy files): pure decisions from observations at a
 *    time `now` — which gates are open, which host CPUs each vCPU may use — with accounting.
 *    No I/O, no threads: unit-tested on a simulated clock with fake vCPUs.
 *  - placement (sched/placement.c): distinct cores first, SMT siblings last, within a VM's
 *    allowed CPUs, from a host description the caller builds (with hwloc in lockstepd).
 */
#ifndef LOCKSTEP_SCHED_H
#define LOCKSTEP_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"
#include "vmdef/policy.h"

/* ---- the sched page ---- */

#define SCHED_PAGE_MAGIC 0x4c4b5343u /* "LKSC" */
#define SCHED_PAGE_VERSION 2u
#define SCHED_GATE_CLOSED 0u
#define SCHED_GATE_OPEN 1u

enum sched_vcpu_state {
	SCHED_VCPU_STARTING = 0, /* the thread has not reached its first gate */
	SCHED_VCPU_RUNNING,	 /* passed its gate: in or about to enter KVM_RUN */
	SCHED_VCPU_STOPPED,	 /* waiting at a closed gate */
	SCHED_VCPU_PVWAIT,	 /* asleep in a pvlock WAIT: needs no slot */
	SCHED_VCPU_EXITED,	 /* its thread ended */
};

struct sched_slot {
	uint32_t gate;	/* futex word: SCHED_GATE_OPEN or _CLOSED; the scheduler writes it */
	uint32_t state; /* enum sched_vcpu_state; the worker writes it */
	uint32_t tid;	/* the vCPU's host thread id; the worker writes it */
	uint32_t reserved0;
	uint64_t close_ns;	  /* scheduler: when it last closed the gate (CLOCK_MONOTONIC) */
	uint64_t open_ns;	  /* scheduler: when it last opened the gate */
	uint64_t entry_ns;	  /* worker: when the vCPU last passed an open gate */
	uint64_t stopped_ns;	  /* worker: total time waiting at closed gates */
	uint64_t stops;		  /* worker: times it stopped at a closed gate */
	uint64_t gate_latency_ns; /* worker: total of (stopped at the gate - gate closed) */
	uint64_t gate_latency_max_ns;
	/*
	 * Worker, every sample (see sched_page.sample_ns): the vCPU thread's CPU time, exact
	 * (the kernel's per-thread schedstat lags a running thread by up to a tick), and how it
	 * spent the last interval (enum sched_run).
	 */
	uint64_t cpu_ns;
	uint32_t run;
	uint32_t reserved1;
	uint64_t reserved[3];
} __attribute__((aligned(128)));

enum sched_run {
	SCHED_RUN_UNKNOWN = 0,
	SCHED_RUN_RUNNING,   /* ran for most of the interval */
	SCHED_RUN_PREEMPTED, /* runnable but mostly waiting for a host CPU */
	SCHED_RUN_IDLE,	     /* blocked: halted, asleep in a pv WAIT, at a closed gate */
};

struct sched_page {
	uint32_t magic;
	uint32_t version;
	uint32_t nr_vcpus;
	uint32_t yield_to; /* worker: a vCPU asked for vCPU (yield_to - 1) to run; 0 = none */
	uint32_t sample_period_us; /* scheduler: how often the worker should sample, 0 = never */
	/*
	 * Scheduler: a sequence count over `runnable` and `switching` (odd while it writes them,
	 * so readers retry) and the futex word the worker's steering thread sleeps on.  0:
	 * nothing published (no scheduler has run this VM).  The scheduler publishes twice per
	 * change of this VM's gates: before it moves them (`runnable` = the set it is switching
	 * to, `switching` = 1) and after (`runnable` = the gates open, `switching` = 0).
	 */
	uint32_t slice_gen;
	uint64_t sample_ns;   /* worker: CLOCK_MONOTONIC of the latest sample of every slot */
	uint64_t runnable[4]; /* bit n: vCPU n */
	uint32_t switching;
	uint32_t reserved1;
	struct sched_slot slot[];
} __attribute__((aligned(128)));

size_t sched_page_size(uint32_t nr_vcpus);
/* Creates a page (memfd) with every gate open; returns the fd and the mapping. */
int sched_page_create(uint32_t nr_vcpus, int *fd, struct sched_page **page);
/* Maps an existing page (e.g. /proc/PID/fd/N of a worker) after checking its header. */
int sched_page_map(int fd, struct sched_page **page, uint32_t *nr_vcpus);
void sched_page_unmap(struct sched_page *page);

/* Worker side: waits while the gate is closed (publishing STOPPED and the gate latency);
 * returns false if `keep_waiting` said to stop waiting (the VM is stopping). */
bool sched_gate_pass(struct sched_slot *slot, bool (*keep_waiting)(void *arg), void *arg);
void sched_slot_set_state(struct sched_slot *slot, enum sched_vcpu_state state);
/* Wakes a vCPU waiting at its gate without opening it (so it can notice a stop). */
void sched_gate_nudge(struct sched_slot *slot);
/* Scheduler side: waits until the vCPU is no longer RUNNING (0) or the deadline (-ETIMEDOUT). */
int sched_slot_wait_left(struct sched_slot *slot, uint64_t deadline_ns);
void sched_gate_open(struct sched_slot *slot, uint64_t now_ns);
void sched_gate_close(struct sched_slot *slot, uint64_t now_ns);
/*
 * Scheduler side, around a change of the VM's gates: switch_begin (before the first gate
 * moves) publishes the set it switches to, `next` (bit n: vCPU n, 4 words), switch_end
 * (after the last) the gates that are open; each wakes the worker's steering thread.
 */
void sched_page_switch_begin(struct sched_page *page, const uint64_t next[4]);
void sched_page_switch_end(struct sched_page *page);
/* Worker side: a consistent read of the runnable set, whether the scheduler is moving gates,
 * and the generation they belong to (0: nothing published). */
uint32_t sched_page_runnable(const struct sched_page *page, uint64_t runnable[4], bool *switching);
/* Whether vCPU `vcpu`'s gate is open, and the generation it was seen in, or 1 (odd) when the
 * scheduler was moving gates at the time. */
bool sched_page_gate_open(const struct sched_page *page, uint32_t vcpu, uint32_t *gen);
/* Waits until slice_gen differs from `gen` or `timeout_ns` passes. */
void sched_page_wait_switch(const struct sched_page *page, uint32_t gen, uint64_t timeout_ns);

/* ---- the host and placement ---- */

#define SCHED_MAX_CPUS 256

/* Whether KVM takes pause-loop exits on this host, so PLE statistics can show spinning. */
enum sched_ple {
	SCHED_PLE_UNKNOWN = 0,
	SCHED_PLE_EXPECTED, /* Intel PLE or the AMD pause filter is on */
	SCHED_PLE_ABSENT,   /* none: off, not offered, or a software KVM */
};

const char *sched_ple_name(enum sched_ple ple);

struct sched_host {
	enum sched_ple ple; /* from lockstepd's host check */
	uint32_t nr_cpus;   /* host CPUs (PUs) lockstep may use */
	struct sched_cpu {
		uint32_t os_index; /* the CPU number sched_setaffinity takes */
		uint32_t core;	   /* logical index of its core: SMT siblings share it */
		uint32_t numa;	   /* NUMA node */
	} cpu[SCHED_MAX_CPUS];
};

/*
 * Places `n` vCPUs on CPUs of `allowed` (NULL = all): distinct cores first, then SMT
 * siblings, then sharing.  out[i] is the host CPU (os_index) for vCPU i.  Returns how many
 * distinct CPUs were used.
 */
unsigned sched_place(const struct sched_host *host, const struct util_cpuset *allowed, uint32_t n,
		     uint32_t *out);
/* Host CPUs in `allowed` (NULL = all). */
unsigned sched_host_cpus(const struct sched_host *host, const struct util_cpuset *allowed);

/* ---- the engine ---- */

struct sched_vm_params {
	uint32_t nr_vcpus;
	enum vmdef_sched_policy policy;
	uint64_t quantum_ns; /* gang slice length */
	uint64_t skew_ns;    /* relaxed: largest lead of one vCPU over its siblings */
	bool has_cpus;
	struct util_cpuset cpus;       /* host CPUs the VM may use */
	const struct util_cpuset *pin; /* per vCPU, from the definition (empty = none); or NULL */
	bool pvlock; /* the pvlock channel is on: its guests can report lock-holder preemption */
};

/* What the engine is told about one vCPU at each tick. */
struct sched_obs {
	uint64_t exec_ns; /* cumulative time on a CPU */
	uint64_t wait_ns; /* cumulative time runnable but waiting for a CPU */
	enum sched_vcpu_state state;
	uint64_t entry_ns;  /* when it last passed an open gate (sched page) */
	enum sched_run run; /* how it spent the last interval, if known (else from the times) */
	uint64_t sample_ns; /* when exec_ns/wait_ns were taken, if not at the tick (0) */
};

/* What the engine decided for one vCPU. */
struct sched_decision {
	bool gate_open;
	bool affinity_changed; /* apply `affinity` now */
	struct util_cpuset affinity;
};

struct sched_vcpu_stats {
	uint64_t run_ns;      /* time on a CPU while the VM was watched */
	uint64_t stopped_ns;  /* time its gate was closed */
	uint64_t wait_ns;     /* time runnable but not on a CPU (preempted by the host) */
	uint64_t slices;      /* gang slices or relaxed co-starts it was given */
	uint64_t max_skew_ns; /* relaxed: its largest lead over its slowest active sibling */
};

struct sched_vm_stats {
	enum vmdef_sched_policy policy;
	bool coscheduling; /* adaptive: currently co-scheduling */
	uint64_t watched_ns;
	uint64_t run_ns;   /* time at least one vCPU ran (estimated per tick: max over vCPUs) */
	uint64_t corun_ns; /* time all its vCPUs ran together (per tick: min over vCPUs) */
	uint64_t slices;   /* gang slices */
	uint64_t interleaved_slices;  /* its slices in which another gang VM ran > 10 % */
	uint64_t leak_ns;	      /* time its vCPUs ran while their gates were closed */
	uint64_t max_skew_ns;	      /* relaxed: largest sibling skew seen */
	uint64_t costart_skew_ns_max; /* largest first-to-last entry spread after a co-start */
	uint64_t costart_skew_ns_total;
	uint64_t costarts;
	uint64_t lhp_events;   /* preemption episodes reported to it (adaptive input) */
	uint64_t light_events; /* of those, below SCHED_MIN_PRESSURE: not acted on */
	uint64_t boosts;       /* adaptive: times it ran a preempted lock holder first */
	enum sched_ple ple;    /* whether PLE statistics can come (the host's) */
	/* adaptive: no preemption signal can reach it (no pvlock channel, no PLE on this host),
	 * so it co-schedules throughout instead of waiting for episodes that cannot come */
	bool no_signals;
	/* gang (and adaptive as gang): vCPUs that share a core with another of the VM's vCPUs,
	 * so SMT siblings split its slices' cores */
	uint32_t smt_shared_vcpus;
};

struct sched;

int sched_new(const struct sched_host *host, struct sched **out);
void sched_free(struct sched *s);
/*
 * Adds a VM under `id`; the engine keeps a copy of params (pins copied too).  A gang VM wider
 * than its CPUs is refused (-E2BIG) with `err` naming the alternatives.
 */
int sched_vm_add(struct sched *s, int id, const struct sched_vm_params *params, uint64_t now_ns,
		 char *err, size_t err_len);
void sched_vm_remove(struct sched *s, int id);
int sched_vm_set_policy(struct sched *s, int id, enum vmdef_sched_policy policy,
			uint64_t quantum_ns, uint64_t skew_ns, char *err, size_t err_len);
/* A vCPU pinned (or unpinned: an empty set) while the VM runs. */
void sched_vm_set_pin(struct sched *s, int id, uint32_t vcpu, const struct util_cpuset *cpus);
/*
 * A lock-holder/waiter preemption episode began in VM `id` (culprit vCPU), or a yield_to.
 * `pressure` is the share of the VM's vCPU time lately spent spinning for preempted vCPUs
 * (struct pvlock_event); adaptive acts only on episodes at or above SCHED_MIN_PRESSURE.
 */
void sched_vm_preempted(struct sched *s, int id, uint32_t culprit, double pressure,
			uint64_t now_ns);
#define SCHED_MIN_PRESSURE 0.05

/*
 * One scheduling step at `now_ns`: obs[id] gives the VM's vCPUs' observations (the callback is
 * called for each VM), and decide[] receives its decisions.  Returns the ns until the engine
 * wants its next tick.
 */
typedef const struct sched_obs *(*sched_obs_fn)(void *arg, int id);
typedef void (*sched_decide_fn)(void *arg, int id, const struct sched_decision *decisions);
uint64_t sched_tick(struct sched *s, uint64_t now_ns, sched_obs_fn obs, sched_decide_fn decide,
		    void *arg);

/* How often the VM's worker should sample its vCPUs for the engine (ns). */
uint64_t sched_vm_sample_period(const struct sched *s, int id);
int sched_vm_stats(const struct sched *s, int id, struct sched_vm_stats *vm,
		   struct sched_vcpu_stats *vcpus, uint32_t nr);
/* Whether VM `id` takes part in gang scheduling at `now` but not in the current slice: every
 * gate of it must then be closed (the caller checks its gates against this). */
bool sched_vm_gated_out(const struct sched *s, int id, uint64_t now);
/* The last `n` gang slices (oldest first): which VM ids ran in each. */
struct sched_slice_record {
	uint64_t start_ns, end_ns;
	int vm[4]; /* -1 = unused */
};
unsigned sched_recent_slices(const struct sched *s, struct sched_slice_record *out, unsigned n);

#endif /* LOCKSTEP_SCHED_H */
