/*
 * lockstepd's scheduler thread: it owns the scheduling engine (sched/), reads every scheduled
 * vCPU's run and wait times from /proc/PID/task/TID/schedstat and its state from the VM's
 * sched page, and applies the engine's decisions: gate open (store + futex wake), gate close
 * (store + a kick signal to the vCPU thread, so KVM_RUN returns at once), and CPU affinity.
 * For a multiplexed VM the worker owns the gates: the decisions are the number of slots and
 * requests, written to the page and the guest's hints page, with a kick (CHECK, FORCE) or a
 * nudge of the gate (ADMIT) where the vCPU thread must act at once.
 *
 * The loop thread hands it VMs (when a worker says hello), policy changes, preemption events
 * and queries through the functions below, under the scheduler's mutex; the thread holds the
 * mutex for one tick at a time (tens of microseconds) and sleeps between ticks on a futex word
 * (scheduler_wake), so a change takes effect at once.  Workers wake it too, through the
 * irq_wait word of their sched page, when an interrupt is raised for a VM gated out of its
 * gang slices (interrupt boost, sched/gang.c); it sleeps on those words with futex_waitv.
 * The accounting queries are in schedstats.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon/scheduler.h"
#include "daemon/scheduler_internal.h"
#include "sandbox/sandbox.h"

#define SWITCH_WAIT_MAX_NS 2000000ull /* give up waiting for a vCPU to leave after this */

/* Every gate open: what a VM left without a scheduler runs with. */
static const uint64_t all_vcpus[4] = { ~0ull, ~0ull, ~0ull, ~0ull };

static uint64_t now_ns(void)
{
	return util_now_ns();
}

struct sched_entry *scheduler_find(struct scheduler *sch, int id)
{
	for (unsigned i = 0; i < sch->nr_vms; i++)
		if (sch->vms[i]->id == id)
			return sch->vms[i];
	return NULL;
}

static void entry_free(struct sched_entry *e)
{
	if (!e)
		return;
	for (uint32_t i = 0; e->schedstat_fd && i < e->nr; i++)
		if (e->schedstat_fd[i] >= 0)
			close(e->schedstat_fd[i]);
	free(e->schedstat_fd);
	free(e->tids);
	free(e->obs);
	free(e->closing);
	free(e->opening);
	free(e->switch_in);
	free(e->irq_wait);
	if (e->page)
		sched_view_unmap(&e->view);
	free(e);
}

static void read_schedstat(int fd, struct sched_obs *o)
{
	char buf[128];
	unsigned long long exec, wait;
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;

	if (n <= 0)
		return; /* the thread is gone: keep the last values */
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &exec, &wait) == 2) {
		o->exec_ns = exec;
		o->wait_ns = wait;
	}
}

/*
 * The VM's vCPUs as of its worker's latest sample (exact CPU time and how each spent the
 * interval: see vm/runstate.c).  Workers that do not sample fall back to the kernel's
 * schedstat, which lags a running thread by up to a scheduler tick.
 */
/*
 * The gates of a multiplexed VM, which its vCPU threads change in pairs: read between two
 * equal, even values of the worker's sequence, so the set is one that existed (a few tries;
 * a worker stuck in the middle gets its gates read as they are).
 */
static void observe_gates(struct sched_entry *e)
{
	for (int tries = 0; tries < 8; tries++) {
		uint32_t seq = __atomic_load_n(&e->mux->seq, __ATOMIC_ACQUIRE);

		for (uint32_t i = 0; i < e->nr; i++)
			e->obs[i].gate_open = __atomic_load_n(&e->page->slot[i].gate,
							      __ATOMIC_ACQUIRE) == SCHED_GATE_OPEN;
		if (!(seq & 1) && __atomic_load_n(&e->mux->seq, __ATOMIC_ACQUIRE) == seq)
			return;
	}
}

static const struct sched_obs *observe(void *arg, int id)
{
	struct sched_entry *e = scheduler_find(arg, id);
	uint64_t sample;

	if (!e)
		return NULL;
	sample = __atomic_load_n(&e->page->sample_ns, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < e->nr; i++) {
		const struct sched_slot *slot = &e->page->slot[i];
		struct sched_obs *o = &e->obs[i];

		if (sample) {
			uint64_t cpu = __atomic_load_n(&slot->cpu_ns, __ATOMIC_RELAXED);

			o->run = __atomic_load_n(&slot->run, __ATOMIC_RELAXED);
			/* Waiting time is what a preempted vCPU did not run of the interval. */
			if (o->run == SCHED_RUN_PREEMPTED && e->last_sample &&
			    sample - e->last_sample > cpu - o->exec_ns)
				o->wait_ns += sample - e->last_sample - (cpu - o->exec_ns);
			o->exec_ns = cpu;
		} else {
			read_schedstat(e->schedstat_fd[i], o);
		}
		o->state = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
		o->entry_ns = __atomic_load_n(&slot->entry_ns, __ATOMIC_RELAXED);
		o->sample_ns = sample;
		o->gate_open = __atomic_load_n(&slot->gate, __ATOMIC_ACQUIRE) == SCHED_GATE_OPEN;
		o->open_ns = __atomic_load_n(&slot->open_ns, __ATOMIC_RELAXED);
		o->pvwait_ns = __atomic_load_n(&slot->pvwait_ns, __ATOMIC_RELAXED);
		o->in_host = __atomic_load_n(&slot->in_host, __ATOMIC_RELAXED);
		if (e->mux) {
			const struct sched_mux_vcpu *mv = &e->mux->vcpu[i];

			o->request = __atomic_load_n(&mv->request, __ATOMIC_ACQUIRE);
			o->request_ns = __atomic_load_n(&mv->request_ns, __ATOMIC_RELAXED);
			o->lock = __atomic_load_n(&mv->lock, __ATOMIC_RELAXED);
		}
	}
	if (e->mux)
		observe_gates(e);
	e->last_sample = sample;
	return e->obs;
}

static void set_affinity(pid_t tid, const struct util_cpuset *cpus)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (unsigned c = 0; c < CPU_SETSIZE; c++)
		if (util_cpuset_has(cpus, c))
			CPU_SET(c, &set);
	sched_setaffinity(tid, sizeof(set), &set);
}

static void kick(struct scheduler *sch, struct sched_entry *e, struct sched_slot *slot, pid_t tid)
{
	if (tid > 0 && __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) == SCHED_VCPU_RUNNING) {
		syscall(SYS_tgkill, e->pid, tid, sch->kick_signal);
		e->kicks++;
	}
}

/* Hands the gates back to the scheduler: no slots, no requests, no hints. */
static void mux_release(struct sched_entry *e)
{
	if (!e->mux || !__atomic_load_n(&e->mux->slots, __ATOMIC_RELAXED))
		return;
	/* First the slots: a switch the worker is making sees 0 and undoes its own close. */
	__atomic_store_n(&e->mux->slots, 0, __ATOMIC_SEQ_CST);
	sched_view_hint_slots(&e->view, 0);
	for (uint32_t i = 0; i < e->nr; i++) {
		__atomic_store_n(&e->mux->vcpu[i].request, SCHED_MUX_NONE, __ATOMIC_RELEASE);
		__atomic_store_n(&e->mux->vcpu[i].idle, 0, __ATOMIC_RELAXED);
		sched_view_hint_switch(&e->view, i, false);
	}
}

/*
 * The worker's interrupt steering follows the runnable set the scheduler publishes; a
 * multiplexed VM's gates move in the worker, so the set is published as they stand at each
 * tick (a tick late at most) whenever it changed.  The scheduler stays the page's one writer.
 */
static void publish_mux_gates(struct sched_entry *e)
{
	bool changed = false;

	for (uint32_t i = 0; i < e->nr && i < 256 && !changed; i++) {
		bool open = __atomic_load_n(&e->page->slot[i].gate, __ATOMIC_ACQUIRE) ==
			    SCHED_GATE_OPEN;
		bool published = __atomic_load_n(&e->page->runnable[i / 64], __ATOMIC_RELAXED) &
				 (1ull << (i % 64));

		changed = open != published;
	}
	if (changed || !__atomic_load_n(&e->page->slice_gen, __ATOMIC_RELAXED))
		sched_view_switch_end(&e->view);
}

/* A multiplexed VM: slots, lent slots and requests; the gates are the worker's. */
static void apply_mux(struct scheduler *sch, struct sched_entry *e, const struct sched_decision *d,
		      uint64_t now)
{
	sched_view_hint_slots(&e->view, d[0].mux_slots);
	__atomic_store_n(&e->mux->alive_ns, now, __ATOMIC_RELEASE);
	__atomic_store_n(&e->mux->slots, d[0].mux_slots, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < e->nr; i++) {
		struct sched_mux_vcpu *mv = &e->mux->vcpu[i];
		struct sched_slot *slot = &e->page->slot[i];
		pid_t tid = e->tids[i];

		e->opening[i] = e->closing[i] = false;
		/* The opening first: a worker that sees the flag checks it against its gate. */
		__atomic_store_n(&mv->idle_open_ns, d[i].idle_open_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&mv->idle, d[i].idle, __ATOMIC_RELEASE);
		if (!d[i].request_changed)
			continue;
		__atomic_store_n(&mv->successor, d[i].successor, __ATOMIC_RELAXED);
		__atomic_store_n(&mv->request_ns, now, __ATOMIC_RELAXED);
		__atomic_store_n(&mv->request, d[i].request, __ATOMIC_SEQ_CST);
		switch (d[i].request) {
		case SCHED_MUX_YIELD:
			sched_view_hint_switch(&e->view, i, true);
			break;
		case SCHED_MUX_CHECK:
		case SCHED_MUX_FORCE:
			sched_view_hint_switch(&e->view, i, true);
			kick(sch, e, slot, tid);
			break;
		case SCHED_MUX_ADMIT:
			sched_gate_nudge(slot);
			break;
		default: /* withdrawn */
			sched_view_hint_switch(&e->view, i, false);
			break;
		}
	}
	publish_mux_gates(e);
}

/*
 * Applies one VM's decisions: affinity at once, gate closes at once (with a kick out of
 * KVM_RUN); gate opens follow every VM's closes (switch_gates), so an incoming vCPU is never
 * woken before the vCPU it replaces has been kicked.
 */
static void apply(void *arg, int id, const struct sched_decision *d)
{
	struct scheduler *sch = arg;
	struct sched_entry *e = scheduler_find(sch, id);
	uint64_t now = now_ns();

	if (!e)
		return;
	for (uint32_t i = 0; i < e->nr; i++) {
		pid_t tid = e->tids[i];

		if (d[i].affinity_changed && tid > 0)
			set_affinity(tid, &d[i].affinity);
	}
	if (e->mux && d[0].mux_slots) {
		apply_mux(sch, e, d, now);
		return;
	}
	mux_release(e);
	for (uint32_t i = 0; i < e->nr; i++) {
		bool open = __atomic_load_n(&e->page->slot[i].gate, __ATOMIC_RELAXED) ==
			    SCHED_GATE_OPEN;

		if (open != d[i].gate_open && !e->switching) {
			/* The worker's interrupt steering learns where the switch goes before any
			 * gate moves, and where it went after (switch_gates). */
			uint64_t next[4] = { 0 };

			for (uint32_t k = 0; k < e->nr && k < 256; k++)
				if (d[k].gate_open)
					next[k / 64] |= 1ull << (k % 64);
			sched_page_switch_begin(e->page, next);
			e->switching = true;
		}
	}
	for (uint32_t i = 0; i < e->nr; i++) {
		struct sched_slot *slot = &e->page->slot[i];
		pid_t tid = e->tids[i];
		bool open = __atomic_load_n(&slot->gate, __ATOMIC_RELAXED) == SCHED_GATE_OPEN;

		e->opening[i] = d[i].gate_open && !open;
		e->closing[i] = !d[i].gate_open && open;
		if (!e->closing[i])
			continue;
		sched_view_gate_close(&e->view, i, now);
		sch->closed_ns = now;
		/* Out of KVM_RUN now; a vCPU asleep in a pv WAIT needs no kick. */
		kick(sch, e, slot, tid);
	}
}

/*
 * Opens the gates the tick decided to open, right after the closes and their kicks, then waits
 * (briefly, for the accounting) until the closed vCPUs reached their gates.  Opening only once
 * the outgoing vCPUs were out cost a round trip through this thread (their stop wakes it, it
 * wakes the incoming ones: two cross-CPU wake-ups) on top of the kick; opened at once, an
 * incoming vCPU placed on the CPU an outgoing one leaves is woken there at once, and either
 * the host runs it in place of the outgoing one, which then leaves KVM_RUN (its kick pending)
 * as soon as it runs again, without running guest code, or the outgoing one leaves first.
 */
static void switch_gates(struct scheduler *sch, uint64_t next_tick)
{
	uint64_t start = now_ns(), deadline = start + SWITCH_WAIT_MAX_NS;
	bool closed = sch->closed_ns != 0, late = false;

	/* Never past the next tick: a boosted slice (500 us) must end on time, whether or not
	 * the vCPUs it replaced got a CPU to leave yet (the incoming ones run meanwhile).  Nor
	 * past the minimum run before a boost while a VM may ask for one: its request is not
	 * seen while this thread waits here. */
	if (next_tick > start && next_tick < deadline)
		deadline = next_tick;
	for (unsigned k = 0; k < sch->nr_vms; k++)
		if (sched_vm_irq_watch(sch->engine, sch->vms[k]->id, start) &&
		    start + SCHED_BOOST_MIN_RUN_NS < deadline)
			deadline = start + SCHED_BOOST_MIN_RUN_NS;
	for (unsigned k = 0; k < sch->nr_vms; k++) {
		struct sched_entry *e = sch->vms[k];
		bool opened = false;

		for (uint32_t i = 0; i < e->nr; i++) {
			if (e->opening[i]) {
				sched_view_gate_open(&e->view, i, start);
				opened = true;
			}
		}
		/* Interrupt boost (or the VM's regular slice): the interrupt it asked for can be
		 * taken now.  The worker's timestamp is only believed within reason. */
		if (opened && e->irq_raise_ns) {
			if (e->irq_raise_ns <= start && start - e->irq_raise_ns < 1000000000ull)
				util_samples_add(e->irq_wait, start - e->irq_raise_ns);
			e->irq_raise_ns = 0;
		}
		if (e->switching)
			sched_view_switch_end(&e->view);
		e->switching = false;
		/* A gang switch: measured once all its vCPUs passed their gates (next ticks). */
		e->switch_pending = opened && closed;
		if (e->switch_pending) {
			e->switch_open_ns = start;
			e->switch_close_ns = sch->closed_ns;
		}
	}
	for (unsigned k = 0; k < sch->nr_vms; k++) {
		struct sched_entry *e = sch->vms[k];

		for (uint32_t i = 0; i < e->nr; i++) {
			/* The worker wakes the state word when its vCPU stops at the gate. */
			if (e->closing[i] && !late &&
			    sched_slot_wait_left(&e->page->slot[i], deadline))
				late = true;
			e->opening[i] = e->closing[i] = false;
		}
	}
	if (closed) {
		sch->switches++;
		sch->switch_wait_ns += now_ns() - start;
		sch->switch_timeouts += late;
	}
	sch->closed_ns = 0;
}

/*
 * Gate close -> every vCPU of the incoming VM running: once all of them passed their gates
 * since the switch opened them; given up at the VM's next switch (a vCPU asleep in a pv WAIT
 * may not come at all).
 */
static void measure_switches(struct scheduler *sch)
{
	for (unsigned k = 0; k < sch->nr_vms; k++) {
		struct sched_entry *e = sch->vms[k];
		uint64_t last = 0;
		bool all = true;

		if (!e->switch_pending)
			continue;
		for (uint32_t i = 0; i < e->nr && all; i++) {
			uint64_t entry =
				__atomic_load_n(&e->page->slot[i].entry_ns, __ATOMIC_RELAXED);

			all = entry >= e->switch_open_ns;
			last = entry > last ? entry : last;
		}
		if (!all)
			continue;
		util_samples_add(e->switch_in, last - e->switch_close_ns);
		e->switch_pending = false;
	}
}

/*
 * Gate exclusivity, checked on the gate words themselves once a tick's switch is done: a VM
 * that takes part in gang scheduling but not in the current slice has every gate closed, so
 * two gang VMs that do not share a slice never have vCPUs let in at once.  A violation is
 * counted, for sched.stats and the tests; none is expected.
 */
static void check_gates(struct scheduler *sch, uint64_t now)
{
	for (unsigned k = 0; k < sch->nr_vms; k++) {
		struct sched_entry *e = sch->vms[k];

		if (!sched_vm_gated_out(sch->engine, e->id, now))
			continue;
		for (uint32_t i = 0; i < e->nr; i++) {
			if (__atomic_load_n(&e->page->slot[i].gate, __ATOMIC_ACQUIRE) ==
			    SCHED_GATE_OPEN) {
				sch->gate_overlaps++;
				break;
			}
		}
	}
	sch->gate_checks++;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A guest's YIELD_TO asks for a vCPU to run: treated like a preemption that costs a lot. */
static void take_yield_requests(struct scheduler *sch, uint64_t now)
{
	for (unsigned i = 0; i < sch->nr_vms; i++) {
		struct sched_entry *e = sch->vms[i];
		uint32_t want = __atomic_exchange_n(&e->page->yield_to, 0, __ATOMIC_ACQ_REL);

		if (want && want <= e->nr)
			sched_vm_preempted(sch->engine, e->id, want - 1, 1.0, now);
	}
}

/*
 * Interrupt boost requests: a worker whose device raised an interrupt for a gated vCPU sets
 * its page's irq_wait.  Taken only from VMs the engine would act on (the others' requests wait
 * for their slice, which clears them): a worker cannot make this thread work for nothing more
 * than once per gating.
 */
static void take_irq_requests(struct scheduler *sch, uint64_t now)
{
	for (unsigned i = 0; i < sch->nr_vms; i++) {
		struct sched_entry *e = sch->vms[i];
		uint64_t raise = 0;

		if (sched_vm_irq_watch(sch->engine, e->id, now)) {
			if (!sched_view_irq_take(&e->view, &raise))
				continue;
			sched_vm_irq_pending(sch->engine, e->id, now);
			if (!e->irq_raise_ns)
				e->irq_raise_ns = raise;
		} else if (!sched_vm_gated_out(sch->engine, e->id, now)) {
			/* Its gates are open (or it is not gang): nothing waits for a slice. */
			sched_view_irq_take(&e->view, &raise);
			e->irq_raise_ns = 0;
		}
	}
}

void scheduler_wake(struct scheduler *sch)
{
	__atomic_add_fetch(&sch->wake_seq, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &sch->wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/*
 * Sleeps until `until` (CLOCK_MONOTONIC), a scheduler_wake(), or an interrupt boost request
 * from a VM the engine would act on (futex_waitv over this thread's word and those VMs'
 * pages' words, up to the kernel's limit; without futex_waitv, requests wait for the next
 * tick).  A page unmapped meanwhile only ends the sleep early.
 */
static void thread_sleep(struct scheduler *sch, uint64_t now, uint64_t until)
{
	struct futex_waitv w[FUTEX_WAITV_MAX];
	struct timespec ts = { .tv_sec = (time_t)(until / 1000000000ull),
			       .tv_nsec = (long)(until % 1000000000ull) };
	uint32_t seq = __atomic_load_n(&sch->wake_seq, __ATOMIC_ACQUIRE);
	unsigned n = 0;

	memset(w, 0, sizeof(w));
	w[n++] = (struct futex_waitv){ .val = seq,
				       .uaddr = (uintptr_t)&sch->wake_seq,
				       .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG };
	for (unsigned i = 0; sch->futex_waitv && i < sch->nr_vms && n < FUTEX_WAITV_MAX; i++)
		if (sched_vm_irq_watch(sch->engine, sch->vms[i]->id, now))
			w[n++] = (struct futex_waitv){
				.uaddr = (uintptr_t)&sch->vms[i]->page->irq_wait, .flags = FUTEX_32
			};
	pthread_mutex_unlock(&sch->lock);
	if (sch->futex_waitv)
		syscall(SYS_futex_waitv, w, n, 0, &ts, CLOCK_MONOTONIC);
	else
		syscall(SYS_futex, &sch->wake_seq, FUTEX_WAIT_BITSET_PRIVATE, seq, &ts, NULL,
			FUTEX_BITSET_MATCH_ANY);
	pthread_mutex_lock(&sch->lock);
}

static void *scheduler_thread(void *arg)
{
	struct scheduler *sch = arg;
	struct sched_param rt = { .sched_priority = 1 };

	pthread_setname_np(pthread_self(), "scheduler");
	/*
	 * Slices must switch on time even when every CPU runs vCPUs: a real-time priority puts
	 * the scheduler ahead of them for its few microseconds per tick (the kernel's RT
	 * throttling bounds it regardless).  Without the privilege it runs as a normal thread.
	 */
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt);
	prctl(PR_SET_TIMERSLACK, 1000);
	/* All it does to other processes is kick and place their vCPU threads. */
	sandbox_caps_limit((const int[]){ CAP_KILL, CAP_SYS_NICE }, 2, true);
	pthread_mutex_lock(&sch->lock);
	while (!sch->quit) {
		uint64_t now = now_ns(), next;

		take_yield_requests(sch, now);
		take_irq_requests(sch, now);
		measure_switches(sch);
		next = sched_tick(sch->engine, now, observe, apply, sch);
		switch_gates(sch, now + next);
		check_gates(sch, now);
		sch->ticks++;
		sch->cpu_ns = thread_cpu_ns();
		thread_sleep(sch, now, now + next);
	}
	pthread_mutex_unlock(&sch->lock);
	return NULL;
}

int scheduler_new(const struct sched_host *host, int kick_signal, struct scheduler **out)
{
	struct scheduler *sch = calloc(1, sizeof(*sch));
	int ret;

	if (!sch)
		return -ENOMEM;
	ret = sched_new(host, &sch->engine);
	if (ret) {
		free(sch);
		return ret;
	}
	sch->kick_signal = kick_signal;
	sch->started_ns = now_ns();
	pthread_mutex_init(&sch->lock, NULL);
	/* An empty vector is refused (EINVAL) by a kernel that has the call (5.16 and later). */
	sch->futex_waitv =
		syscall(SYS_futex_waitv, NULL, 0, 0, NULL, CLOCK_MONOTONIC) < 0 && errno != ENOSYS;
	ret = -pthread_create(&sch->thread, NULL, scheduler_thread, sch);
	if (ret) {
		scheduler_free(sch);
		return ret;
	}
	sch->running = true;
	*out = sch;
	return 0;
}

void scheduler_free(struct scheduler *sch)
{
	if (!sch)
		return;
	if (sch->running) {
		pthread_mutex_lock(&sch->lock);
		sch->quit = true;
		scheduler_wake(sch);
		pthread_mutex_unlock(&sch->lock);
		pthread_join(sch->thread, NULL);
	}
	/* Leave every gate open: the workers run on without a scheduler. */
	for (unsigned i = 0; i < sch->nr_vms; i++) {
		mux_release(sch->vms[i]);
		sched_page_switch_begin(sch->vms[i]->page, all_vcpus);
		for (uint32_t v = 0; v < sch->vms[i]->nr; v++)
			sched_view_gate_open(&sch->vms[i]->view, v, now_ns());
		sched_view_switch_end(&sch->vms[i]->view);
		entry_free(sch->vms[i]);
	}
	free(sch->vms);
	sched_free(sch->engine);
	pthread_mutex_destroy(&sch->lock);
	free(sch);
}

int scheduler_attach(struct scheduler *sch, int id, pid_t pid, int page_fd, const int *tids,
		     uint32_t nr, const struct sched_vm_params *params, char *err, size_t err_len)
{
	struct sched_vm_params vp;
	struct sched_entry *e;
	char path[64];
	int ret;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->id = id;
	e->pid = pid;
	ret = sched_view_map(page_fd, nr, &e->view);
	if (ret) {
		snprintf(err, err_len, "the worker's sched page is not what lockstepd expects: %s",
			 ret == -EPERM ? "it can shrink" : strerror(-ret));
		free(e);
		return ret;
	}
	e->nr = nr;
	e->page = e->view.page;
	e->mux = e->view.mux;
	e->schedstat_fd = calloc(nr, sizeof(int));
	e->tids = calloc(nr, sizeof(pid_t));
	e->obs = calloc(nr, sizeof(*e->obs));
	e->closing = calloc(nr, sizeof(bool));
	e->opening = calloc(nr, sizeof(bool));
	e->switch_in = calloc(1, sizeof(*e->switch_in));
	e->irq_wait = calloc(1, sizeof(*e->irq_wait));
	if (!e->schedstat_fd || !e->tids || !e->obs || !e->closing || !e->opening ||
	    !e->switch_in || !e->irq_wait) {
		entry_free(e);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nr; i++) {
		e->tids[i] = tids[i];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, tids[i]);
		e->schedstat_fd[i] = open(path, O_RDONLY | O_CLOEXEC);
	}
	pthread_mutex_lock(&sch->lock);
	if (sch->nr_vms == sch->cap) {
		unsigned cap = sch->cap ? sch->cap * 2 : 8;
		struct sched_entry **vms = realloc(sch->vms, cap * sizeof(*vms));

		if (!vms) {
			ret = -ENOMEM;
			goto unlock;
		}
		sch->vms = vms;
		sch->cap = cap;
	}
	vp = *params;
	vp.no_mux = !e->mux;
	ret = sched_vm_add(sch->engine, id, &vp, now_ns(), err, err_len);
	if (!ret) {
		/* Ask the worker for exact run-state samples at the pace the policy needs. */
		__atomic_store_n(&e->page->sample_period_us,
				 (uint32_t)(sched_vm_sample_period(sch->engine, id) / 1000),
				 __ATOMIC_RELAXED);
		sch->vms[sch->nr_vms++] = e;
		e = NULL;
		scheduler_wake(sch);
	}
unlock:
	pthread_mutex_unlock(&sch->lock);
	entry_free(e);
	return ret;
}

void scheduler_detach(struct scheduler *sch, int id)
{
	struct sched_entry *e = NULL;

	pthread_mutex_lock(&sch->lock);
	for (unsigned i = 0; i < sch->nr_vms; i++) {
		if (sch->vms[i]->id != id)
			continue;
		e = sch->vms[i];
		sch->vms[i] = sch->vms[--sch->nr_vms];
		sched_vm_remove(sch->engine, id);
		break;
	}
	pthread_mutex_unlock(&sch->lock);
	if (!e)
		return;
	mux_release(e);
	sched_page_switch_begin(e->page, all_vcpus);
	for (uint32_t v = 0; v < e->nr; v++)
		sched_view_gate_open(&e->view, v, now_ns());
	sched_view_switch_end(&e->view);
	__atomic_store_n(&e->page->sample_period_us, 0, __ATOMIC_RELAXED);
	entry_free(e);
}

int scheduler_set_policy(struct scheduler *sch, int id, enum vmdef_sched_policy policy,
			 uint64_t quantum_ns, uint64_t skew_ns, char *err, size_t err_len)
{
	int ret;

	pthread_mutex_lock(&sch->lock);
	ret = sched_vm_set_policy(sch->engine, id, policy, quantum_ns, skew_ns, err, err_len);
	if (!ret) {
		struct sched_entry *e = scheduler_find(sch, id);

		if (e)
			__atomic_store_n(&e->page->sample_period_us,
					 (uint32_t)(sched_vm_sample_period(sch->engine, id) / 1000),
					 __ATOMIC_RELAXED);
	}
	scheduler_wake(sch);
	pthread_mutex_unlock(&sch->lock);
	return ret;
}

void scheduler_set_pin(struct scheduler *sch, int id, uint32_t vcpu, const struct util_cpuset *c)
{
	pthread_mutex_lock(&sch->lock);
	sched_vm_set_pin(sch->engine, id, vcpu, c);
	pthread_mutex_unlock(&sch->lock);
}

void scheduler_preempted(struct scheduler *sch, int id, uint32_t culprit, double pressure)
{
	pthread_mutex_lock(&sch->lock);
	sched_vm_preempted(sch->engine, id, culprit, pressure, now_ns());
	scheduler_wake(sch);
	pthread_mutex_unlock(&sch->lock);
}

void scheduler_set_irq_boost(struct scheduler *sch, int id, bool on)
{
	pthread_mutex_lock(&sch->lock);
	sched_vm_set_irq_boost(sch->engine, id, on);
	scheduler_wake(sch);
	pthread_mutex_unlock(&sch->lock);
}
