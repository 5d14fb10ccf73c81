/*
 * The scheduler's state (daemon/scheduler.c), shared with its accounting queries
 * (daemon/schedstats.c), under `lock` once the thread runs.
 */
#ifndef LOCKSTEP_DAEMON_SCHEDULER_INTERNAL_H
#define LOCKSTEP_DAEMON_SCHEDULER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sched/sched.h"
#include "util/util.h"

struct sched_entry {
	int id; /* the VM's domain id */
	pid_t pid;
	uint32_t nr;
	pid_t *tids; /* its vCPU threads as this process sees them (not the page's word) */
	struct sched_view view;	 /* the worker's page: its layout as mapped, not as it says now */
	struct sched_page *page; /* view.page */
	int *schedstat_fd;
	struct sched_obs *obs;
	bool *closing;	       /* gate closed this tick: wait for the vCPU to leave */
	bool *opening;	       /* gate to open once the closing vCPUs are out */
	uint64_t last_sample;  /* the worker's sample_ns the last observation used */
	uint64_t kicks;	       /* gate closes that had to kick a vCPU out */
	struct sched_mux *mux; /* view.mux: the multiplexer area; NULL for a v2 page */
	/* Gang switch latency: the switch that last opened this VM's gates, when the gates
	 * of the VMs it replaced closed, and (in samples) how long until all its vCPUs ran. */
	uint64_t switch_open_ns, switch_close_ns;
	bool switch_pending;
	struct util_samples *switch_in;
	bool switching; /* its gates change this tick: publish the runnable set after */
	/* Interrupt boost: when the worker raised the interrupt it asked for (0: none
	 * outstanding), and (in samples) raise -> this VM's gates open. */
	uint64_t irq_raise_ns;
	struct util_samples *irq_wait;
};

struct scheduler {
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	/* The thread sleeps on this futex word (and on the sched pages' irq_wait words of the
	 * VMs whose interrupt requests it would act on); scheduler_wake() bumps it. */
	uint32_t wake_seq;
	bool futex_waitv; /* the kernel has futex_waitv: the pages' words wake it too */
	bool quit;
	int kick_signal;
	struct sched *engine;
	struct sched_entry **vms;
	unsigned nr_vms, cap;
	uint64_t ticks;
	uint64_t switches;	  /* ticks that closed gates */
	uint64_t switch_wait_ns;  /* total time waiting for closed vCPUs to leave */
	uint64_t switch_timeouts; /* ... that gave up */
	uint64_t gate_checks;	  /* ticks whose gate words were checked against the slice */
	uint64_t gate_overlaps;	  /* ... that found a gang VM outside its slice with a gate open */
	uint64_t cpu_ns;	  /* the thread's CPU time, as of the last tick */
	uint64_t started_ns;
	uint64_t closed_ns; /* when this tick closed gates (0: it closed none) */
};

/* Wakes the thread for a change made under sch->lock. */
void scheduler_wake(struct scheduler *sch);

/* The VM `id`'s entry, or NULL; under sch->lock. */
struct sched_entry *scheduler_find(struct scheduler *sch, int id);

#endif
