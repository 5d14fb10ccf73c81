/*
 * lockstepd's scheduler thread (daemon/scheduler.c): the engine of sched/ applied to the
 * running VMs through their sched pages.  All functions may be called from the loop thread.
 */
#ifndef LOCKSTEP_DAEMON_SCHEDULER_H
#define LOCKSTEP_DAEMON_SCHEDULER_H

#include <sys/types.h>

#include <jansson.h>

#include "sched/sched.h"

struct scheduler;

int scheduler_new(const struct sched_host *host, int kick_signal, struct scheduler **out);
/* Stops the thread and opens every gate: workers run on unscheduled. */
void scheduler_free(struct scheduler *sch);
/* Starts scheduling a running VM: its worker's pid, a descriptor of its sched page (the
 * caller's: it stays open), its vCPU threads (checked to be the worker's) and their number
 * (the definition's: the page must have as many slots).  A policy the VM cannot have is
 * refused with `err`. */
int scheduler_attach(struct scheduler *sch, int id, pid_t pid, int page_fd, const int *tids,
		     uint32_t nr, const struct sched_vm_params *params, char *err, size_t err_len);
void scheduler_detach(struct scheduler *sch, int id);
int scheduler_set_policy(struct scheduler *sch, int id, enum vmdef_sched_policy policy,
			 uint64_t quantum_ns, uint64_t skew_ns, char *err, size_t err_len);
void scheduler_set_pin(struct scheduler *sch, int id, uint32_t vcpu, const struct util_cpuset *c);
void scheduler_preempted(struct scheduler *sch, int id, uint32_t culprit, double pressure);
/* Interrupt boost for VM `id` on or off (it follows the VM's interrupt steering). */
void scheduler_set_irq_boost(struct scheduler *sch, int id, bool on);
/* Accounting of one VM (NULL if not scheduled), of the scheduler itself, recent slices. */
json_t *scheduler_stats_json(struct scheduler *sch, int id);
json_t *scheduler_self_json(struct scheduler *sch);
json_t *scheduler_slices_json(struct scheduler *sch, unsigned n);

#endif /* LOCKSTEP_DAEMON_SCHEDULER_H */
