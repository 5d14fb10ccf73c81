/*
 * sched — vCPU scheduling across VMs: the policies (host, pinned, gang, relaxed, mux,
 * adaptive), placement on the host's cores, the gate protocol and the accounting.
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
 *
 * The multiplexer (mux) is split between the engine (sched/mux.c: slots, fairness, requests)
 * and the gate side (sched/mux_gate.c: switches made by the worker's vCPU threads).  The
 * guest's hints page it maintains is laid out by pvlock/abi.h, the one header sched/ shares
 * with the guest ABI.
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
/* 3: the multiplexer's area and the guest's hints page; lockstepd still maps version 2 pages
 * (workers started before it was upgraded), which only lack them. */
#define SCHED_PAGE_VERSION 3u
#define SCHED_PAGE_VERSION_MIN 2u
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
	uint32_t gate;	/* futex word: SCHED_GATE_OPEN or _CLOSED (who writes it: see below) */
	uint32_t state; /* enum sched_vcpu_state; the worker writes it */
	uint32_t tid;	/* the vCPU's host thread id; the worker writes it */
	uint32_t reserved0;
	uint64_t close_ns;	  /* when its gate last closed (CLOCK_MONOTONIC) */
	uint64_t open_ns;	  /* when its gate last opened */
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
	uint32_t in_host;   /* v3, worker: 1 while out of KVM_RUN (handling an exit, at its gate) */
	uint64_t pvwait_ns; /* v3, worker: total time asleep in pv WAITs (blocked, not halted) */
	uint64_t reserved[2];
} __attribute__((aligned(128)));

enum sched_run {
	SCHED_RUN_UNKNOWN = 0,
	SCHED_RUN_RUNNING,   /* ran for most of the interval */
	SCHED_RUN_PREEMPTED, /* runnable but mostly waiting for a host CPU */
	SCHED_RUN_IDLE,	     /* blocked: halted, asleep in a pv WAIT, at a closed gate */
};

/*
 * The multiplexer (policy mux, and adaptive for a VM wider than its CPUs) runs at most `slots`
 * of a VM's vCPUs at once.  While sched_mux.slots is non-zero the gates of the VM belong to the
 * worker: its vCPU threads open and close them (sched/mux.c) when a vCPU gives up its CPU -- at
 * a release point when asked, when it goes to sleep in a pv WAIT, when it hands its CPU to a
 * stopped lock holder -- and when a parked vCPU finds a free slot.  The scheduler owns the
 * number of slots and fairness: it asks vCPUs to switch through `request` (and the guest's
 * hints page), escalating to a kick if the guest does not oblige, and never writes the gates.
 * While slots is 0 the scheduler writes the gates, as for every other policy.
 */
enum sched_mux_request {
	SCHED_MUX_NONE = 0,
	SCHED_MUX_YIELD, /* give up the CPU at the next release point (the guest's hint is set) */
	SCHED_MUX_CHECK, /* kicked: give it up now, unless it holds or waits for a lock */
	SCHED_MUX_FORCE, /* kicked: give it up now; the grace period ran out */
	SCHED_MUX_ADMIT, /* parked: look for a free slot (the thread was woken for it) */
};

/* Why a vCPU's gate closed under the multiplexer (sched_mux_vcpu.outs). */
enum sched_mux_out {
	SCHED_OUT_RELEASE = 0, /* the guest switched at a release point, as asked */
	SCHED_OUT_CHECK,       /* kicked while it held no lock and waited for none */
	SCHED_OUT_FORCE,       /* the grace period ran out */
	SCHED_OUT_DIRECTED,    /* the guest gave its CPU to a stopped vCPU (YIELD_TO) */
	SCHED_OUT_WAIT,	       /* it went to sleep in a pv WAIT and passed its slot on */
	SCHED_OUT_NR,
};

/* A vCPU's lock activity as its guest published it (pvlock/abi.h's shared page). */
#define SCHED_LOCK_HOLDING 1u /* holds a lock */
#define SCHED_LOCK_QUEUED 2u  /* waits for a lock, spinning or asleep */
#define SCHED_LOCK_BARRIER 4u /* waits at a barrier */

struct sched_mux_vcpu {
	/* The scheduler's request; the worker resets it to NONE once it acted on it. */
	uint32_t request;   /* enum sched_mux_request */
	uint32_t successor; /* vCPU + 1 to hand the slot to; 0 = the worker chooses */
	uint64_t request_ns;
	/* scheduler: seen halted at its last tick behind the opening of its gate at idle_open_ns
	 * (slot.open_ns); its slot is lent while that opening lasts (idle_open_ns is written
	 * first; workers of an earlier build go by idle alone) */
	uint32_t idle;
	uint32_t lock;		     /* worker: SCHED_LOCK_* as of the last sample */
	uint64_t ins;		     /* worker: its gate opened by the multiplexer */
	uint64_t outs[SCHED_OUT_NR]; /* worker: its gate closed, by reason */
	/* worker: RELEASE/CHECK gate-outs while it held or waited for a lock.  Never happens:
	 * the multiplexer's promise (delayed preemption). */
	uint64_t out_holding;
	uint64_t forced_holding; /* worker: FORCE gate-outs while it held or waited for one */
	/* worker: its DIRECTED/WAIT hand-offs while it waited for a lock, to a vCPU that holds
	 * or waits for that lock, and to another although such a vCPU was stopped and ready */
	uint64_t handoff_holder, handoff_astray;
	uint64_t idle_open_ns; /* scheduler: see idle */
	uint64_t reserved[1];
} __attribute__((aligned(64)));

#define SCHED_MUX_HIST 64 /* hand-off latency histogram: 2 us buckets; the last: 126 us and up */
#define SCHED_MUX_HIST_NS 2000ull

struct sched_mux {
	uint32_t slots;	     /* scheduler: vCPUs that may run at once; 0 = not multiplexed */
	uint32_t open;	     /* worker: gates open now, idle ones not counted */
	uint32_t open_max;   /* worker: the most open as it opened one, likewise (<= slots) */
	uint32_t seq;	     /* worker: odd while it changes gates, so readers see no torn set */
	uint64_t handoffs;   /* worker: a gate closed and another opened in one step */
	uint64_t handoff_ns; /* worker: total of (successor's gate opened -> it passed it) */
	uint64_t handoff_max_ns; /* worker */
	/* scheduler: when it last applied its decisions; a worker that sees none for
	 * SCHED_MUX_ORPHAN_NS takes its gates back to all open (lockstepd died). */
	uint64_t alive_ns;
	uint64_t reserved[3];
	uint32_t handoff_hist[SCHED_MUX_HIST];
	struct sched_mux_vcpu vcpu[];
} __attribute__((aligned(64)));

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
	uint32_t mux_offset; /* v3: where struct sched_mux starts; 0 = none (v2) */
	uint32_t
		hints_offset; /* v3: where the guest's hints page starts (page-aligned); 0 = none */
	/*
	 * Worker (the device thread), with interrupt steering on: an interrupt was raised for a
	 * vCPU whose gate is closed.  A futex word: set 0 -> 1 with a wake, so lockstepd's
	 * scheduler thread can bring the VM's gang slice forward (an interrupt boost); the
	 * scheduler takes it back to 0.  irq_raise_ns: when the first such interrupt was raised.
	 * In the header's padding: pages of either version have it, readers of old builds
	 * ignore it.
	 */
	uint32_t irq_wait;
	uint64_t irq_raise_ns;
	struct sched_slot slot[];
} __attribute__((aligned(128)));

struct lks_sched_hints;

/* The size of a page of `version` for nr_vcpus (0 for a version lockstepd does not know). */
size_t sched_page_size_v(uint32_t nr_vcpus, uint32_t version);
size_t sched_page_size(uint32_t nr_vcpus);
/* Creates a page (memfd) with every gate open; returns the fd and the mapping. */
int sched_page_create(uint32_t nr_vcpus, int *fd, struct sched_page **page);
/* Maps another process's page (a worker's, taken with pidfd_getfd) of `nr_vcpus` slots, if it
 * is one: sealed against shrinking (-EPERM otherwise), of a version this build reads
 * (*version), of the size that version and `nr_vcpus` give, with a header that agrees
 * (-EINVAL otherwise). */
int sched_page_map(int fd, uint32_t nr_vcpus, struct sched_page **page, uint32_t *version);
/* Unmaps a page of `nr_vcpus` slots and `version`: what its mapper knows, never the page's
 * words, which the other process can rewrite. */
void sched_page_unmap(struct sched_page *page, uint32_t nr_vcpus, uint32_t version);
/* The multiplexer's area and the guest's hints page; NULL in a version 2 page. */
struct sched_mux *sched_page_mux(const struct sched_page *page);
struct lks_sched_hints *sched_page_hints(const struct sched_page *page);

/*
 * Another process's page as its mapper (lockstepd) sees it: the worker can rewrite every word
 * of the page at any time, so its layout (slot count, version, where the multiplexer's area
 * and the hints page lie) is fixed here when the page is mapped and checked, and the mapper
 * uses these functions instead of the page's own (which read the header).
 */
struct sched_view {
	struct sched_page *page;
	uint32_t nr_vcpus, version;
	struct sched_mux *mux;	       /* NULL for a version 2 page */
	struct lks_sched_hints *hints; /* likewise */
};

/* sched_page_map() of a page of `nr_vcpus` slots, and its layout. */
int sched_view_map(int fd, uint32_t nr_vcpus, struct sched_view *view);
void sched_view_unmap(struct sched_view *view);
void sched_view_gate_open(const struct sched_view *view, uint32_t i, uint64_t now_ns);
void sched_view_gate_close(const struct sched_view *view, uint32_t i, uint64_t now_ns);
void sched_view_switch_end(const struct sched_view *view);
void sched_view_hint_switch(const struct sched_view *view, uint32_t i, bool asked);
void sched_view_hint_slots(const struct sched_view *view, uint32_t slots);

/*
 * Worker side: waits while the gate is closed (publishing STOPPED and the gate latency);
 * returns false if hooks->keep_waiting said to stop waiting (the VM is stopping).  While the
 * gate is closed, hooks->try_open (if any) is asked first and after every wake-up whether it
 * opened the gate itself (the multiplexer admitting the vCPU to a free slot).
 */
struct sched_gate_hooks {
	bool (*keep_waiting)(void *arg);
	bool (*try_open)(void *arg);
};
bool sched_gate_pass(struct sched_slot *slot, const struct sched_gate_hooks *hooks, void *arg);
void sched_slot_set_state(struct sched_slot *slot, enum sched_vcpu_state state);
/* Wakes a vCPU waiting at its gate without opening it (so it can notice a stop). */
void sched_gate_nudge(struct sched_slot *slot);
/* Scheduler side: waits until the vCPU is no longer RUNNING (0) or the deadline (-ETIMEDOUT). */
int sched_slot_wait_left(struct sched_slot *slot, uint64_t deadline_ns);
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
/* Worker side, on an interrupt's raise path: asks the scheduler to run the gated VM soon
 * (sets irq_wait and wakes it, once until the scheduler takes it). */
void sched_page_irq_wait(struct sched_page *page, uint64_t raise_ns);
/* Scheduler side: takes the request, if any (and when its interrupt was raised). */
bool sched_view_irq_take(const struct sched_view *view, uint64_t *raise_ns);
/* Waits until slice_gen differs from `gen` or `timeout_ns` passes. */
void sched_page_wait_switch(const struct sched_page *page, uint32_t gen, uint64_t timeout_ns);
/* Open and close vCPU `i`'s gate (also marking it in the guest's hints page, if any). */
void sched_gate_open(struct sched_page *page, uint32_t i, uint64_t now_ns);
void sched_gate_close(struct sched_page *page, uint32_t i, uint64_t now_ns);
/* The guest's switch request bit for vCPU `i` (no-op without a hints page). */
void sched_hint_switch(struct sched_page *page, uint32_t i, bool asked);
/* Tells the guest whether (and on how many slots) its vCPUs are multiplexed (0: not). */
void sched_hint_slots(struct sched_page *page, uint32_t slots);

/*
 * The gate side of the multiplexer (sched/mux_gate.c), run by the worker's vCPU threads; the
 * caller serialises them per VM (one lock) and never holds that lock across KVM_RUN.  `locks`
 * tells each vCPU's lock activity from the guest's publication: the multiplexer needs it to
 * keep its promises.
 */
struct sched_lock_activity {
	uint32_t flags; /* SCHED_LOCK_* */
	uint64_t lock;	/* the lock or barrier it waits for (else the one it holds), 0 = none */
	uint64_t since; /* when it began to wait (guest TSC): FIFO locks serve in this order */
};
struct sched_mux_locks {
	void (*activity)(void *arg, uint32_t vcpu, struct sched_lock_activity *out);
	void *arg;
};
/*
 * vCPU `from` gives up its slot (its gate closes) for `reason`; the slot goes to `want` if
 * that vCPU is parked and ready, else to the best parked and ready vCPU (a stopped holder of
 * the lock `from` waits for first; for a vCPU that was asked, the successor the scheduler
 * named), else it stays free.  Returns the successor, -1 for none, or -EAGAIN when `from` does
 * not give up its slot (not multiplexed, its gate already closed, or -- for RELEASE -- it was
 * not asked).
 */
int sched_mux_switch(struct sched_page *page, uint32_t from, enum sched_mux_out reason, int want,
		     const struct sched_mux_locks *locks, uint64_t now_ns);
/* A kicked vCPU acts on a CHECK or FORCE request; returns what sched_mux_switch did, or
 * -EAGAIN (no such request, or CHECK while it holds or waits for a lock). */
int sched_mux_kicked(struct sched_page *page, uint32_t vcpu, const struct sched_mux_locks *locks,
		     uint64_t now_ns);
/* A parked vCPU takes a free slot if there is one: true if its gate is now open.  One that
 * holds a lock (or was just woken for one: `urgent`) and finds none takes the slot of a vCPU
 * asleep waiting for it, or else asks a running vCPU that holds nothing to switch at its
 * next release point, in its favour. */
bool sched_mux_admit(struct sched_page *page, uint32_t vcpu, bool urgent,
		     const struct sched_mux_locks *locks, uint64_t now_ns);
/*
 * The worker's safety net: lockstepd stopped applying decisions (it died, or was stopped
 * without detaching) for SCHED_MUX_ORPHAN_NS while the VM is multiplexed: nobody would rotate
 * its vCPUs any more, so it stops being multiplexed (every gate open, as without a
 * scheduler).  A scheduler that comes back starts over.  True if it let go.
 */
#define SCHED_MUX_ORPHAN_NS 500000000ull
bool sched_mux_orphaned(struct sched_page *page, uint64_t now_ns);
/* A vCPU woke from a pv WAIT (under the same lock: a holder may take a sleeper's slot). */
void sched_mux_awake(struct sched_page *page, uint32_t vcpu);
/* Gates now open, not counting idle vCPUs (for the scheduler's and the tests' checks). */
uint32_t sched_mux_count_open(const struct sched_page *page);

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
	/* Its guests can report lock-holder preemption: the pvlock channel is on, or KVM's pv
	 * calls are offered (a Linux guest's, seen in KVM's statistics). */
	bool pvlock;
	bool no_mux; /* its worker predates the multiplexer (a version 2 sched page) */
	/* Interrupt boost (its interrupt steering is on): an interrupt for the VM while it is
	 * gated out of the gang slices brings its slice forward (sched/gang.c). */
	bool irq_boost;
};

/* What the engine is told about one vCPU at each tick. */
struct sched_obs {
	uint64_t exec_ns; /* cumulative time on a CPU */
	uint64_t wait_ns; /* cumulative time runnable but waiting for a CPU */
	enum sched_vcpu_state state;
	uint64_t entry_ns;  /* when it last passed an open gate (sched page) */
	enum sched_run run; /* how it spent the last interval, if known (else from the times) */
	uint64_t sample_ns; /* when exec_ns/wait_ns were taken, if not at the tick (0) */
	/* The multiplexer's view, from the sched page: */
	bool gate_open;	     /* the gate as it is (the worker's while multiplexed) */
	uint64_t open_ns;    /* when it last opened */
	uint32_t request;    /* enum sched_mux_request as the page holds it */
	uint64_t request_ns; /* when it was made */
	uint32_t lock;	     /* SCHED_LOCK_*, as the worker last saw the guest publish */
	uint64_t pvwait_ns;  /* total time asleep in pv WAITs */
	bool in_host;	     /* out of KVM_RUN: blocked there is not halted */
};

/* What the engine decided for one vCPU. */
struct sched_decision {
	bool gate_open;	       /* ignored while mux_slots > 0: the worker owns the gates */
	bool affinity_changed; /* apply `affinity` now */
	struct util_cpuset affinity;
	/* The multiplexer: the VM's slots (the same in every vCPU's decision; 0 = not
	 * multiplexed), and a new request for this vCPU when request_changed (CHECK and FORCE
	 * come with a kick, ADMIT with a nudge of its gate). */
	uint32_t mux_slots;
	bool request_changed;
	uint32_t request;      /* enum sched_mux_request */
	uint32_t successor;    /* vCPU + 1, 0 = the worker chooses */
	bool idle;	       /* seen halted: its slot may be lent (sched_mux_vcpu.idle) */
	uint64_t idle_open_ns; /* ... behind the opening of its gate at this time */
};

struct sched_vcpu_stats {
	uint64_t run_ns;       /* time on a CPU while the VM was watched */
	uint64_t stopped_ns;   /* time its gate was closed */
	uint64_t wait_ns;      /* time runnable but not on a CPU (preempted by the host) */
	uint64_t slices;       /* gang slices or relaxed co-starts it was given */
	uint64_t max_skew_ns;  /* relaxed: its largest lead over its slowest active sibling */
	uint64_t ready_ns;     /* mux: time parked while ready to run */
	uint64_t ready_max_ns; /* mux: its longest such wait */
	uint64_t requests;     /* mux: times it was asked to give up its CPU */
};

struct sched_vm_stats {
	enum vmdef_sched_policy policy;
	bool coscheduling; /* adaptive: currently co-scheduling */
	uint64_t watched_ns;
	uint64_t run_ns;   /* time at least one vCPU ran (estimated per tick: max over vCPUs) */
	uint64_t corun_ns; /* time all its vCPUs ran together (per tick: min over vCPUs) */
	uint64_t slices;   /* gang slices */
	uint64_t slice_ns; /* gang: time its gates were open in slices (boosted ones included) */
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
	/* The multiplexer (mux, or adaptive co-scheduling a VM wider than its CPUs): */
	bool multiplexed;	 /* now */
	uint32_t mux_slots;	 /* vCPUs that may run at once */
	uint64_t mux_ticks;	 /* ticks it was multiplexed */
	uint32_t busy_open_max;	 /* most vCPUs that ran behind open gates at one tick */
	uint64_t over_ticks;	 /* ticks at which more than mux_slots did */
	uint64_t over_unlent;	 /* ... more than the vCPUs lent slots or open from before */
	uint64_t mux_requests;	 /* vCPUs asked to give up their CPU at a release point */
	uint64_t mux_checks;	 /* ... kicked to be checked after SCHED_MUX_CHECK_NS */
	uint64_t grace_overruns; /* ... stopped regardless after SCHED_MUX_GRACE_NS (FORCE) */
	uint64_t mux_admits;	 /* parked vCPUs nudged to take a free slot */
	uint64_t ready_max_ns;	 /* the longest a ready vCPU waited parked */
	/* adaptive, wider than its CPUs: times its vCPUs queued for host CPUs while siblings
	 * slept in pv WAITs (a convoy), which multiplexes it like a preemption episode */
	uint64_t contention_events;
	/* Interrupt boost (gang): */
	bool irq_boost;			/* on (its interrupt steering is) */
	uint64_t irq_requests;		/* interrupts raised while it was gated out, as asked */
	uint64_t irq_boosts;		/* granted: its slice brought forward */
	uint64_t irq_boost_refused;	/* refused: it had run two quanta ahead */
	uint64_t irq_boost_deferred;	/* held until the running slice's minimum run was done */
	uint64_t irq_boost_ns;		/* time it ran in boosted slices */
	uint64_t irq_boost_debt_ns;	/* ... not yet paid back from its regular slices */
	uint64_t irq_boost_paid_slices; /* regular slices it skipped to pay it back */
	uint64_t irq_boost_preempted;	/* its own slices cut short by another VM's boost */
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
 * Interrupt boost: a gang VM with boost on that has an interrupt pending while it is gated
 * out (sched_vm_irq_pending) gets a slice of SCHED_BOOST_SLICE_NS at once, once the running
 * slice has run SCHED_BOOST_MIN_RUN_NS (or as long as the last boosted slice lasted, if
 * longer; and has as much left), unless it is two quanta ahead
 * already; the preempted slice resumes for the rest of its time afterwards, and the
 * boosted VM pays the time back from its next regular slices.  sched_vm_irq_watch says
 * whether a request would be acted on now (else the caller need not even look).
 */
#define SCHED_BOOST_MIN_RUN_NS 500000ull
#define SCHED_BOOST_SLICE_NS 500000ull
void sched_vm_set_irq_boost(struct sched *s, int id, bool on);
bool sched_vm_irq_watch(const struct sched *s, int id, uint64_t now_ns);
void sched_vm_irq_pending(struct sched *s, int id, uint64_t now_ns);
/* The multiplexer asks a vCPU to switch at its next release point; a guest that has not done
 * so after SCHED_MUX_CHECK_NS is kicked and stopped unless it holds or waits for a lock
 * (again at every tick), and after SCHED_MUX_GRACE_NS it is stopped regardless. */
#define SCHED_MUX_CHECK_NS 1000000ull
#define SCHED_MUX_GRACE_NS 4000000ull

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
