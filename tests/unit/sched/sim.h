/*
 * A simulated host for the scheduling engine's tests: CPUs, vCPU threads that want to run
 * (or idle), a host scheduler that hands CPUs out in 4 ms slices to the runnable thread with
 * the least run time (as Linux's fair scheduler roughly does), gates that stop a thread at
 * once, and the engine ticking every millisecond on the simulated clock.
 */
#ifndef LOCKSTEP_TEST_SCHED_SIM_H
#define LOCKSTEP_TEST_SCHED_SIM_H

#include "sched/sched.h"

#define SIM_MAX_VMS 4
#define SIM_MAX_VCPUS 8
#define SIM_STEP_NS 100000ull	     /* 100 us */
#define SIM_HOST_SLICE_NS 4000000ull /* Linux's slice with HZ=250 */

struct sim_vcpu {
	bool busy; /* wants a CPU (a spinning or computing guest) */
	bool gate_open;
	bool ignores_gate; /* runs on through a closed gate (what leak accounting catches) */
	struct util_cpuset affinity;
	int cpu; /* where it runs, -1 = not running */
	uint64_t slice_left;
	uint64_t exec, wait, entry;
	uint64_t exec_closed; /* ground truth: ran while its gate was closed */
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
};

/* A host of `cpus` CPUs, `smt` threads per core. */
void sim_init(struct sim *sim, unsigned cpus, unsigned smt);
void sim_fini(struct sim *sim);
/* Adds VM `id` (0..3) with nr busy vCPUs under `policy`; returns sched_vm_add's result. */
int sim_add(struct sim *sim, int id, uint32_t nr, enum vmdef_sched_policy policy, char *err,
	    size_t err_len);
void sim_remove(struct sim *sim, int id);
/* Runs the simulation for `ns`. */
void sim_run(struct sim *sim, uint64_t ns);
/* Measures sibling run-time gaps from now on (forgets what came before). */
void sim_reset_spread(struct sim *sim, int id);
double sim_corun_fraction(const struct sim *sim, int id); /* from the engine's accounting */
double sim_share(const struct sim *sim, int id);	  /* VM's share of all vCPU run time */

#endif /* LOCKSTEP_TEST_SCHED_SIM_H */
