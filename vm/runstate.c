/*
 * How each vCPU thread spends its time, sampled by the control thread: exact CPU time from
 * the thread's CPU clock (the kernel's per-thread schedstat lags a running thread by up to a
 * scheduler tick, 4 ms here, which is as long as the episodes worth seeing) and the thread's
 * state from /proc/self/task/TID/stat ('R' runnable or running, else blocked).  Over one
 * interval: a thread that ran for most of it is running; one that did not but is runnable
 * waited for a host CPU (preempted); the rest were idle (halted in KVM, asleep in a pv WAIT,
 * stopped at a closed gate).
 *
 * The samples feed the lock-holder-preemption detector and, through the sched page, lockstepd's
 * scheduler, which asks for them (sample_period_us) while it schedules the VM.  Control thread
 * only; the files stay open and are re-read with pread().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vm/vm_internal.h"

#define RUNSTATE_DETECTOR_PERIOD_NS 2000000ull

void vm_runstate_init(struct vm_vcpu *v)
{
	v->run.stat_fd = -1;
	v->run.clock_valid = false;
}

void vm_runstate_fini(struct vm_vcpu *v)
{
	if (v->run.stat_fd >= 0)
		close(v->run.stat_fd);
	v->run.stat_fd = -1;
}

/* Opens what sampling needs once the vCPU's thread runs; false if it has not started yet. */
static bool prepare(struct vm_vcpu *v)
{
	char path[32];
	int tid = atomic_load(&v->tid);

	if (v->run.clock_valid)
		return true;
	if (!tid || !v->thread_started)
		return false;
	if (pthread_getcpuclockid(v->thread, &v->run.clock))
		return false;
	/* Relative to /proc/self/task: a sandboxed worker has no /proc of its own to look in. */
	snprintf(path, sizeof(path), "%d/stat", tid);
	v->run.stat_fd = v->vm->task_dir_fd >= 0 ?
				 openat(v->vm->task_dir_fd, path, O_RDONLY | O_CLOEXEC) :
				 -1;
	v->run.clock_valid = true;
	return true;
}

/* 'R' or 'S' etc.: the thread's state, from its open stat file. */
static char thread_state(int fd)
{
	struct util_proc_stat st;
	char buf[1024];
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;

	if (n <= 0)
		return '?';
	buf[n] = '\0';
	return util_proc_stat_parse(buf, &st) ? '?' : st.state;
}

static void sample_vcpu(struct vm_vcpu *v, uint64_t now)
{
	struct timespec ts;
	uint64_t cpu, d_cpu, dt;
	enum sched_run run;

	if (!prepare(v) || clock_gettime(v->run.clock, &ts) < 0)
		return;
	cpu = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	dt = v->run.sample_ns ? now - v->run.sample_ns : 0;
	d_cpu = cpu > v->run.cpu_ns ? cpu - v->run.cpu_ns : 0;
	if (!dt)
		run = SCHED_RUN_UNKNOWN;
	else if (d_cpu * 2 >= dt)
		run = SCHED_RUN_RUNNING;
	else if (thread_state(v->run.stat_fd) == 'R')
		run = SCHED_RUN_PREEMPTED;
	else
		run = SCHED_RUN_IDLE;
	v->run.cpu_ns = cpu;
	v->run.sample_ns = now;
	v->run.state = run;
	__atomic_store_n(&v->slot->cpu_ns, cpu, __ATOMIC_RELAXED);
	__atomic_store_n(&v->slot->run, (uint32_t)run, __ATOMIC_RELAXED);
}

uint64_t vm_runstate_tick(struct vm *vm, bool detector)
{
	uint32_t period_us = __atomic_load_n(&vm->sched_page->sample_period_us, __ATOMIC_RELAXED);
	uint64_t period = period_us ? (uint64_t)period_us * 1000 : 0, now = util_now_ns();

	if (detector && (!period || period > RUNSTATE_DETECTOR_PERIOD_NS))
		period = RUNSTATE_DETECTOR_PERIOD_NS;
	if (!period)
		return 0;
	if (now < vm->runstate_next_ns)
		return vm->runstate_next_ns - now;
	vm->runstate_next_ns = now + period;
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		sample_vcpu(&vm->vcpus[i], now);
	vm_mux_sample(vm);
	/* Publishing the time last tells the scheduler the slots hold this sample. */
	__atomic_store_n(&vm->sched_page->sample_ns, now, __ATOMIC_RELEASE);
	vm->runstate_fresh = true;
	return period;
}
