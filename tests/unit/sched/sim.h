/*
 * A simulated host for the scheduling engine's tests: CPUs, vCPU threads that want to run
 * (or idle), a host scheduler that hands CPUs out in 4 ms slices to the runnable thread with
 * the least run time (as Linux's fair scheduler roughly does), gates that stop a thread at
 * once, and the engine ticking every millisecond on the simulated clock.
 *
 * A VM added with sim_add_guest also has a real sched page, whose gates the multiplexer's
 * gate side (sched/mux_gate.c) drives exactly as lockstep-vm's vCPU threads do, and a guest
 * (sim_mux.c): every vCPU loops { ncs; lock; cs; unlock } on one FIFO (ticket) lock in whole
 * steps, publishing what it holds and waits for, switching at release points when asked,
 * and (pv) sleeping in WAIT when it spins too long or its lock's holder is stopped.  The
 * simulation keeps the ground truth the multiplexer's promises are checked against.
 */
#ifndef LOCKSTEP_TEST_SCHED_SIM_H
#define LOCKSTEP_TEST_SCHED_SIM_H

#include "sched/sched.h"

#define SIM_MAX_VMS 4
#define SIM_MAX_VCPUS 8
#define SIM_STEP_NS 100000ull	     /* 100 us */
#define SIM_HOST_SLICE_NS 4000000ull /* Linux's slice with HZ=250 */

enum sim_phase {
	SIM_NCS = 0, /* working outside the lock */
	SIM_QUEUED,  /* holds a ticket, spinning */
	SIM_CS,	     /* holds the lock */
	SIM_ASLEEP,  /* holds a ticket, asleep in WAIT */
};

struct sim_guest {
	uint32_t cs_steps, ncs_steps; /* critical and other work per acquisition, in steps */
	uint32_t spin_steps;	      /* pv: steps a waiter spins before it sleeps */
	bool pv;    /* waiters sleep (WAIT), and sleep at once for a stopped holder */
	bool hints; /* switches at release points when asked (LKS_FEATURE_SCHED) */
	/* Instead of the lock: rounds of ncs_steps of work ending at a barrier, where (pv,
	 * hints) an arrival sleeps at once while a latecomer is stopped. */
	bool barrier;
};

struct sim_vcpu {
	bool busy; /* wants a CPU (a spinning or computing guest) */
	bool gate_open;
	bool ignores_gate; /* runs on through a closed gate (what leak accounting catches) */
	struct util_cpuset affinity;
	int cpu; /* where it runs, -1 = not running */
	uint64_t slice_left;
	uint64_t exec, wait, entry;
	uint64_t exec_closed; /* ground truth: ran while its gate was closed */
	/* the guest and the vCPU thread of a sim_add_guest VM */
	enum sim_phase phase;
	uint32_t left, spun, ticket;
	uint64_t round; /* barrier: the round it works on or waits to end */
	uint64_t wait_since;
	bool resume_lock; /* it switched at the release point before taking a ticket */
	bool kicked;	  /* the scheduler kicked it (CHECK, FORCE) */
	bool woken;	  /* woke from a WAIT and wants a slot */
	bool forced;	  /* its gate closed by a FORCE: exempt from the holder check */
	bool at_gate;	  /* its thread waits at its closed gate */
	bool nudged;	  /* ... and was woken there (an ADMIT request) */
	uint64_t recheck; /* ... and looks again then by itself (GATE_RECHECK_NS) */
	bool was_open;
	uint64_t acquisitions;
};

struct sim_vm {
	bool present;
	uint32_t nr;
	struct sim_vcpu v[SIM_MAX_VCPUS];
	struct sched_obs obs[SIM_MAX_VCPUS];
	uint64_t corun_true; /* ground truth: time every vCPU ran at once */
	uint64_t max_spread; /* ground truth: largest gap in run time since spread_base */
	uint64_t spread_base[SIM_MAX_VCPUS];
	uint64_t run_true; /* ground truth: time at least one ran */
	/* sim_add_guest: the page, the guest's lock, and the ground truth of the multiplexer */
	bool paged;
	int page_fd;
	struct sched_page *page;
	struct sim_guest guest;
	uint32_t head, tail;	/* the ticket lock */
	int holder;		/* vCPU in the critical section, -1 = none */
	uint32_t open_max;	/* most gates open at once, by the page */
	uint64_t over_opens;	/* steps in which a gate opened and more than the slots were */
	uint64_t gated_holding; /* a holder or spinning waiter stopped other than by FORCE */
	uint64_t handoff_wrong; /* a sleeping waiter's CPU went to one neither holding nor ahead */
	uint64_t handoffs_to_holder;
	uint64_t acquisitions;
	uint32_t arrived;	 /* the barrier: arrivals this round */
	uint64_t rounds;	 /* ... rounds completed */
	uint64_t handoffs_early; /* a barrier sleeper's CPU went to one that had arrived */
};

struct sim {
	struct sched_host host;
	struct sched *s;
	uint64_t now;
	uint64_t next_tick;
	struct sim_vm vm[SIM_MAX_VMS];
	int owner[SCHED_MAX_CPUS];	  /* per host CPU: vm * 16 + vcpu, or -1 */
	bool cpu_started[SCHED_MAX_CPUS]; /* CPUs' slices are out of phase, as on a real host */
	/* what the engine decided and the test checks */
	uint64_t interleave_ns; /* time vCPUs of two different gang VMs ran at once */
	bool watch_interleave;
	uint64_t gated_out;	/* ticks x VMs shut out of a gang slice (sched_vm_gated_out) */
	uint64_t gate_overlaps; /* ... of which had a gate open: never */
	bool no_mux;		/* VMs added from now on have workers without the multiplexer */
	bool pvlock;		/* ... have the pvlock channel on */
};

/* A host of `cpus` CPUs, `smt` threads per core. */
void sim_init(struct sim *sim, unsigned cpus, unsigned smt);
void sim_fini(struct sim *sim);
/* Adds VM `id` (0..3) with nr busy vCPUs under `policy`; returns sched_vm_add's result. */
int sim_add(struct sim *sim, int id, uint32_t nr, enum vmdef_sched_policy policy, char *err,
	    size_t err_len);
void sim_remove(struct sim *sim, int id);
/* Adds VM `id` with a sched page and the lock-loop guest (sim_mux.c). */
int sim_add_guest(struct sim *sim, int id, uint32_t nr, enum vmdef_sched_policy policy,
		  const struct sim_guest *guest, char *err, size_t err_len);
/* sim_mux.c, for sim.c: one step of every paged VM's guests and vCPU threads; the engine's
 * view and decisions of a paged VM. */
void sim_guest_step(struct sim *sim);
void sim_guest_observe(struct sim *sim, int id);
void sim_guest_decide(struct sim *sim, int id, const struct sched_decision *d);
/* A vCPU of a paged VM's gate, as the page has it. */
bool sim_gate_open(const struct sim_vm *vm, uint32_t i);
/* Runs the simulation for `ns`. */
void sim_run(struct sim *sim, uint64_t ns);
/* Measures sibling run-time gaps from now on (forgets what came before). */
void sim_reset_spread(struct sim *sim, int id);
double sim_corun_fraction(const struct sim *sim, int id); /* from the engine's accounting */
double sim_share(const struct sim *sim, int id);	  /* VM's share of all vCPU run time */

#endif /* LOCKSTEP_TEST_SCHED_SIM_H */
