/*
 * The VM registry: every defined VM, its state machine and what happens when its worker ends
 * (the on_crash policy, guest reboots, answers to clients waiting for a start or a stop).
 *
 *   shutoff --start--> starting --hello--> running --shutdown--> stopping --exit--> shutoff
 *                        |  \________________ worker dies / guest crashes ______> crashed
 *                        \___ worker ends before its hello ___> failed
 *
 * Every state change is persisted (the runtime record while a worker runs, the status record
 * after) and announced to event listeners.  A VM has two definitions, as in libvirt: the
 * stored one (cfg, what the next start boots) and the one its run has (live).  Restarts after
 * a crash or a guest reset back off while runs keep ending quickly: at once, then after 1 s,
 * 2 s, 4 s ... up to a minute.  The workers report here through the struct worker_events
 * they are spawned with.  Also the daemon's start (stored definitions, workers that outlived
 * the previous daemon, autostart) and its stop (VMs let go, their workers left running).
 * Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"

static const struct worker_events worker_events;
static void answer_waiters(struct dvm *vm, bool stopped);

/* A run shorter than this that crashes (or resets) counts towards the back-off. */
#define QUICK_RUN_NS (60ull * 1000000000ull)
#define RESTART_DELAY_MAX_MS 60000ull

static const char *const state_names[DVM_STATES] = { "shutoff",	 "starting", "running",
						     "stopping", "crashed",  "failed" };

const char *dvm_state_name(enum dvm_state state)
{
	return (unsigned)state < DVM_STATES ? state_names[state] : "unknown";
}

int dvm_state_parse(const char *name, enum dvm_state *out)
{
	for (int i = 0; i < DVM_STATES; i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*out = (enum dvm_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

struct dvm *registry_find(struct daemon *d, const char *name)
{
	struct util_list *pos;

	util_list_for_each(pos, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (strcmp(vm->cfg.name, name) == 0)
			return vm;
	}
	return NULL;
}

struct dvm *registry_find_uuid(struct daemon *d, const char *uuid)
{
	struct util_list *pos;

	util_list_for_each(pos, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (strcasecmp(vm->cfg.uuid, uuid) == 0)
			return vm;
	}
	return NULL;
}

struct dvm *registry_find_id(struct daemon *d, int domain_id)
{
	struct util_list *pos;

	util_list_for_each(pos, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (vm->domain_id == domain_id && domain_id > 0)
			return vm;
	}
	return NULL;
}

unsigned registry_count(struct daemon *d)
{
	struct util_list *pos;
	unsigned n = 0;

	util_list_for_each(pos, &d->vms)
		n++;
	return n;
}

/* A random (version 4) UUID for definitions that come without one. */
static void make_uuid(char out[37])
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		uint64_t t = util_now_ns() ^ (uint64_t)getpid() << 32;

		memcpy(b, &t, 8);
		memcpy(b + 8, &t, 8);
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

int registry_define(struct daemon *d, const struct vmdef *cfg, struct dvm **out)
{
	struct dvm *vm;
	int ret;

	if (registry_find(d, cfg->name) || (cfg->uuid[0] && registry_find_uuid(d, cfg->uuid)))
		return -EEXIST;
	if (registry_count(d) >= d->opts.max_vms)
		return -EUSERS;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->d = d;
	vm->domain_id = -1;
	vm->last_status = -1;
	util_list_init(&vm->shutdown_waiters);
	ret = vmdef_copy(&vm->cfg, cfg);
	if (ret) {
		free(vm);
		return ret;
	}
	if (!vm->cfg.uuid[0])
		make_uuid(vm->cfg.uuid);
	ret = store_save_definition(d, &vm->cfg);
	if (ret) {
		vmdef_fini(&vm->cfg);
		free(vm);
		return ret;
	}
	strcpy(vm->reason, "defined");
	uv_timer_init(d->loop, &vm->shutdown_timer);
	vm->shutdown_timer.data = vm;
	uv_timer_init(d->loop, &vm->restart_timer);
	vm->restart_timer.data = vm;
	vm->timer_init = true;
	util_list_add_tail(&d->vms, &vm->link);
	*out = vm;
	return 0;
}

int registry_redefine(struct dvm *vm, const struct vmdef *cfg)
{
	struct vmdef next;
	int ret;

	ret = vmdef_copy(&next, cfg);
	if (ret)
		return ret;
	if (!next.uuid[0])
		strcpy(next.uuid, vm->cfg.uuid);
	ret = store_save_definition(vm->d, &next);
	if (ret) {
		vmdef_fini(&next);
		return ret;
	}
	vmdef_fini(&vm->cfg);
	vm->cfg = next;
	return 0;
}

int dvm_set_pin(struct dvm *vm, uint32_t vcpu, const struct util_cpuset *cpus)
{
	struct vmdef next;
	int ret;

	ret = vmdef_copy(&next, &vm->cfg);
	if (ret)
		return ret;
	ret = vmdef_set_pin(&next, vcpu, cpus);
	if (!ret)
		ret = registry_redefine(vm, &next);
	vmdef_fini(&next);
	return ret;
}

static void free_live(struct dvm *vm)
{
	if (vm->live) {
		vmdef_fini(vm->live);
		free(vm->live);
		vm->live = NULL;
	}
}

static void dvm_free(struct dvm *vm)
{
	json_decref(vm->last_stats);
	json_decref(vm->last_sched);
	free_live(vm);
	vmdef_fini(&vm->cfg);
	free(vm);
}

/* The VM goes once both of its timers have closed. */
static void timer_closed(uv_handle_t *h)
{
	struct dvm *vm = h->data;

	if (--vm->closing == 0)
		dvm_free(vm);
}

static void close_timers(struct dvm *vm, uv_close_cb cb)
{
	vm->closing = 2;
	uv_close((uv_handle_t *)&vm->shutdown_timer, cb);
	uv_close((uv_handle_t *)&vm->restart_timer, cb);
}

int registry_undefine(struct dvm *vm)
{
	int ret;

	if (vm->worker)
		return -EBUSY;
	ret = store_remove_definition(vm->d, vm->cfg.name);
	if (ret)
		return ret;
	store_remove_run_files(vm); /* a forgotten VM leaves nothing behind (names come and go) */
	confine_forget(vm);
	util_list_del(&vm->link);
	close_timers(vm, timer_closed);
	return 0;
}

int dvm_set_live(struct dvm *vm, struct vmdef *def)
{
	struct vmdef *live = vm->live;

	if (!live)
		return -ESRCH;
	vmdef_fini(live);
	*live = *def;
	vmdef_init(def); /* taken */
	return store_save_live(vm);
}

void dvm_set_state(struct dvm *vm, enum dvm_state state, const char *reason)
{
	static const char *const what[DVM_STATES] = { "stopped",  "starting", "started",
						      "stopping", "crashed",  "failed" };
	enum dvm_state old = vm->state;

	vm->state = state;
	util_strlcpy(vm->reason, reason, sizeof(vm->reason));
	if (vm->worker) {
		struct store_runtime rec = {
			.pid = vm->worker->pid,
			.start_ticks = vm->worker->start_ticks,
			.domain_id = vm->domain_id,
			.started = vm->started_realtime,
			.devices = vm->nr_held ? dvm_devices_held_json(vm) : NULL,
			.console_start = vm->console_start,
			.log_start = vm->log_start,
		};

		store_save_runtime(vm, &rec);
		json_decref(rec.devices);
	} else {
		struct store_status st = {
			.last_status = vm->last_status,
			.console_start = vm->console_start,
			.log_start = vm->log_start,
		};

		util_strlcpy(st.state, dvm_state_name(state), sizeof(st.state));
		util_strlcpy(st.reason, reason, sizeof(st.reason));
		util_strlcpy(st.error, vm->error, sizeof(st.error));
		store_remove_runtime(vm);
		store_save_status(vm, &st);
	}
	if (old != state)
		dvm_announce(vm, what[state]);
	if (state == DVM_RUNNING && old != DVM_RUNNING && old != DVM_STOPPING)
		answer_waiters(vm, false);
}

/*
 * Ends the operations waiting on this VM.  When it starts running, the starts; when its worker
 * is gone, the stops (shutdown, destroy) succeed and the starts learn it did not start.
 */
static void answer_waiters(struct dvm *vm, bool stopped)
{
	struct util_list *pos, *tmp;
	char msg[1024];

	util_list_for_each_safe(pos, tmp, &vm->shutdown_waiters) {
		struct dvm_waiter *w = util_container_of(pos, struct dvm_waiter, link);

		if (!stopped && w->for_stop)
			continue;
		util_list_del(&w->link);
		if (stopped && !w->for_stop) {
			/* The worker's own words when it said why, else how it ended; a system
			 * call its seccomp list stopped is named whatever the worker said. */
			bool seccomp = strncmp(vm->reason, "seccomp:", 8) == 0;

			snprintf(msg, sizeof(msg),
				 "VM %s did not start: %s (exit status %d)%s%.400s; its log is "
				 "%.300s/vms/%s.log",
				 vm->cfg.name, seccomp || !vm->error[0] ? vm->reason : vm->error,
				 vm->last_status, seccomp && vm->error[0] ? ": " : "",
				 seccomp ? vm->error : "", vm->d->opts.run_dir, vm->cfg.name);
			w->done(vm, w->arg, -ECHILD, msg);
		} else {
			w->done(vm, w->arg, 0, NULL);
		}
		free(w);
	}
	if (util_list_empty(&vm->shutdown_waiters) && vm->timer_init)
		uv_timer_stop(&vm->shutdown_timer);
}

void dvm_fail_waiters(struct dvm *vm, int err, const char *message)
{
	while (!util_list_empty(&vm->shutdown_waiters)) {
		struct dvm_waiter *w =
			util_container_of(vm->shutdown_waiters.next, struct dvm_waiter, link);

		util_list_del(&w->link);
		w->done(vm, w->arg, err, message);
		free(w);
	}
}

void dvm_cancel_restart(struct dvm *vm)
{
	if (!vm->restart_pending)
		return;
	vm->restart_pending = false;
	uv_timer_stop(&vm->restart_timer);
}

static void restart_due(uv_timer_t *t)
{
	struct dvm *vm = t->data;
	bool reboot = vm->restart_reboot;
	char err[512] = "";

	vm->restart_pending = false;
	if (vm->worker || vm->d->quitting)
		return;
	if (dvm_start(vm, false, err, sizeof(err)))
		util_log(&vm->d->log, UTIL_LOG_ERROR, "VM %s: cannot restart it: %s", vm->cfg.name,
			 err);
	else
		dvm_announce(vm, reboot ? "rebooted" : "restarted");
}

/*
 * Starts the VM again after a crash (on_crash=restart) or a guest reset: at once after a run
 * that lasted, then backing off while runs keep ending within QUICK_RUN_NS of their start.
 */
static void schedule_restart(struct dvm *vm, bool reboot, uint64_t ran_ns)
{
	unsigned n;

	vm->quick_ends = ran_ns < QUICK_RUN_NS ? vm->quick_ends + 1 : 1;
	n = vm->quick_ends;
	vm->restart_delay_ms = n <= 1 ? 0 : 1000ull << (n - 2 < 16 ? n - 2 : 16);
	if (vm->restart_delay_ms > RESTART_DELAY_MAX_MS)
		vm->restart_delay_ms = RESTART_DELAY_MAX_MS;
	vm->restart_reboot = reboot;
	vm->restart_pending = true;
	vm->restart_at = (uint64_t)time(NULL) + (vm->restart_delay_ms + 999) / 1000;
	if (n > 1) {
		util_log(&vm->d->log, UTIL_LOG_WARN,
			 "VM %s %s %u times in a row, each within a minute of its start: "
			 "restarting it in %llu s",
			 vm->cfg.name, reboot ? "reset" : "crashed", n,
			 (unsigned long long)(vm->restart_delay_ms / 1000));
		dvm_announce(vm, "restart-pending");
	}
	uv_timer_start(&vm->restart_timer, restart_due, vm->restart_delay_ms, 0);
}

/* The worker ended (exited or died): applies on_crash, answers waiters, frees the worker. */
static void worker_ended(struct dvm *vm, bool crashed, const char *reason, int status)
{
	struct worker *w = vm->worker;
	bool destroyed = vm->destroying, never_ran = vm->state == DVM_STARTING;
	bool restart = false, reboot = false;
	uint64_t ran_ns = util_now_ns() - vm->started_ns;

	dvm_sched_detach(vm);
	console_vm_stopped(vm);
	vm->worker = NULL;
	vm->destroying = false;
	worker_free(w);
	dvm_devices_release(vm); /* the process is gone: its VFIO descriptors are closed */
	vm->last_status = status;
	vm->domain_id = -1;
	if (destroyed) {
		dvm_set_state(vm, DVM_SHUTOFF, "destroyed");
	} else if (never_ran) {
		/* Not a crash: nothing ran, so on_crash does not apply.  A worker that exited
		 * (rather than died on a signal) before saying anything gave up on an error. */
		if (strcmp(reason, "worker-died") == 0 && status >= 0 && status < 128)
			reason = vm_stop_reason_name(VM_STOP_ERROR);
		store_worker_error(vm, vm->log_start, true, vm->error, sizeof(vm->error));
		util_log(&vm->d->log, UTIL_LOG_WARN, "VM %s did not start (%s, status %d)%s%s",
			 vm->cfg.name, reason, status, vm->error[0] ? ": " : "", vm->error);
		dvm_set_state(vm, DVM_FAILED, reason);
	} else if (crashed) {
		store_worker_error(vm, vm->log_start, false, vm->error, sizeof(vm->error));
		util_log(&vm->d->log, UTIL_LOG_WARN, "VM %s crashed (%s, status %d)%s%s",
			 vm->cfg.name, reason, status, vm->error[0] ? ": " : "", vm->error);
		dvm_set_state(vm, DVM_CRASHED, reason);
		restart = vm->live && vm->live->on_crash == VMDEF_ON_CRASH_RESTART;
	} else {
		dvm_set_state(vm, DVM_SHUTOFF, reason);
		reboot = strcmp(reason, vm_stop_reason_name(VM_STOP_GUEST_RESET)) == 0;
	}
	answer_waiters(vm, true);
	if (vm->transient) {
		registry_undefine(vm);
		return;
	}
	if ((restart || reboot) && !vm->d->quitting)
		schedule_restart(vm, reboot, ran_ns);
}

int dvm_start(struct dvm *vm, bool fresh, char *err, size_t err_len)
{
	struct vmdef *live;
	int ret;

	if (vm->worker)
		return util_error(err, err_len, -EBUSY, "VM %s is already running", vm->cfg.name);
	dvm_cancel_restart(vm);
	if (fresh) /* a client's start: the streak of quick crashes begins anew */
		vm->quick_ends = 0;
	if (fresh || !vm->live) {
		live = calloc(1, sizeof(*live));
		if (!live)
			return util_error(err, err_len, -ENOMEM, "cannot start %s: out of memory",
					  vm->cfg.name);
		ret = vmdef_copy(live, &vm->cfg);
		if (ret) {
			free(live);
			return util_error(err, err_len, ret, "cannot start %s: %s", vm->cfg.name,
					  strerror(-ret));
		}
		live->serial_stdout = false; /* a worker has no terminal */
		free_live(vm);
		vm->live = live;
	}
	/* The devices of the definition this run boots (dvm_def). */
	ret = dvm_devices_acquire(vm, err, err_len);
	if (ret)
		return ret;
	/* A run that crashes before its report must not show the previous run's figures. */
	json_decref(vm->last_stats);
	json_decref(vm->last_sched);
	vm->last_stats = vm->last_sched = NULL;
	vm->error[0] = '\0';
	vm->domain_id = vm->d->next_domain_id++;
	vm->started_realtime = (uint64_t)time(NULL);
	vm->started_ns = util_now_ns();
	ret = store_save_live(vm);
	if (!ret)
		ret = store_begin_run(vm, &vm->console_start, &vm->log_start);
	if (!ret)
		ret = worker_spawn(vm, &worker_events);
	if (ret) {
		vm->domain_id = -1;
		dvm_devices_release(vm);
		return util_error(err, err_len, ret, "cannot start %s: %s", vm->cfg.name,
				  strerror(-ret));
	}
	dvm_set_state(vm, DVM_STARTING, "starting");
	return 0;
}

void dvm_announce(struct dvm *vm, const char *what)
{
	json_t *ev =
		json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "lifecycle", "vm", vm->cfg.name,
			  "event", what, "state", dvm_state_name(vm->state), "reason", vm->reason);

	if (ev && vm->error[0] && (vm->state == DVM_FAILED || vm->state == DVM_CRASHED))
		json_object_set_new(ev, "error", json_string(vm->error));
	if (ev && strcmp(what, "restart-pending") == 0)
		json_object_update_new(ev, json_pack("{s:f, s:i, s:s}", "delay_s",
						     (double)vm->restart_delay_ms / 1000.0,
						     "attempt", (int)vm->quick_ends, "after",
						     vm->restart_reboot ? "reset" : "crash"));
	events_emit(vm->d, ev);
}

/* ---- what workers report ---- */

static void worker_hello(struct dvm *vm, const struct vm_proto_hello *h)
{
	dvm_sched_attach(vm, h->sched_fd);
	if (vm->state == DVM_STARTING)
		dvm_set_state(vm, DVM_RUNNING, "booted");
}

/* Lock-holder/waiter preemption seen by the worker's detector: to the scheduler, and on to
 * event listeners. */
static void worker_pvlock(struct dvm *vm, const struct vm_proto_pvlock *ev)
{
	vm->pvlock_events++;
	if (!ev->ended && vm->scheduled)
		scheduler_preempted(vm->d->scheduler, vm->domain_id, ev->culprit, ev->pressure);
	events_emit(vm->d, json_pack("{s:s, s:s, s:s, s:b, s:I, s:i, s:i, s:I, s:f}", "type",
				     "pvlock", "vm", vm->cfg.name, "kind", ev->kind, "ended",
				     ev->ended, "lock", (json_int_t)ev->lock, "culprit",
				     (int)ev->culprit, "waiters", (int)ev->waiters, "duration_ns",
				     (json_int_t)ev->duration_ns, "pressure", ev->pressure));
}

static void worker_stopped(struct dvm *vm, const struct vm_proto_stopped *st)
{
	if (st->stats) {
		json_decref(vm->last_stats);
		vm->last_stats = json_incref(st->stats);
	}
	if (st->preserved)
		dvm_set_state(vm, DVM_CRASHED, vm_stop_reason_name(VM_STOP_GUEST_CRASH));
}

static void worker_unreachable(struct dvm *vm, const char *why)
{
	dvm_set_state(vm, DVM_CRASHED, "unreachable");
}

static const struct worker_events worker_events = {
	.hello = worker_hello,
	.pvlock = worker_pvlock,
	.stopped = worker_stopped,
	.unreachable = worker_unreachable,
	.ended = worker_ended,
};

/* ---- the daemon's start and stop ---- */

static int load_definition(struct daemon *d, const struct vmdef *def)
{
	struct dvm *vm;

	return registry_define(d, def, &vm);
}

/* How a worker that ended while no daemon watched it went: its exit file, if it wrote one. */
static void recover_ended(struct dvm *vm)
{
	enum vm_stop_reason reason;
	char text[48];
	int status, nr;

	if (store_read_exit(vm, &reason, &status, &nr) == 0) {
		vm->last_status = status;
		if (vm_stop_reason_is_crash(reason))
			store_worker_error(vm, vm->log_start, false, vm->error, sizeof(vm->error));
		dvm_set_state(vm, vm_stop_reason_is_crash(reason) ? DVM_CRASHED : DVM_SHUTOFF,
			      confine_stop_reason(reason, nr, text, sizeof(text)));
	} else {
		/* No last word: it was killed while we were away. */
		dvm_set_state(vm, DVM_CRASHED, "worker-died");
	}
	dvm_devices_release(vm); /* what the previous daemon bound for it */
	store_remove_runtime(vm);
	confine_forget(vm);
}

/* The definition the VM's run had (live changes included), or its stored one. */
static void recover_live(struct dvm *vm)
{
	struct vmdef *live = calloc(1, sizeof(*live));

	bool read;

	if (!live)
		return;
	read = store_read_live(vm, live) == 0;
	if (!read || strcmp(live->name, vm->cfg.name) != 0) {
		if (read)
			vmdef_fini(live);
		if (vmdef_copy(live, &vm->cfg)) {
			free(live);
			return;
		}
	}
	free_live(vm);
	vm->live = live;
}

/* A VM that did not run when the previous daemon stopped: how it had ended. */
static void recover_status(struct dvm *vm)
{
	struct store_status st;
	enum dvm_state state;

	/* Only the states of a VM without a worker are recorded. */
	if (store_read_status(vm, &st) || dvm_state_parse(st.state, &state) ||
	    (state != DVM_SHUTOFF && state != DVM_CRASHED && state != DVM_FAILED))
		return;
	vm->state = state;
	util_strlcpy(vm->reason, st.reason, sizeof(vm->reason));
	util_strlcpy(vm->error, st.error, sizeof(vm->error));
	vm->last_status = st.last_status;
	vm->console_start = st.console_start;
	vm->log_start = st.log_start;
}

/* Re-attaches to workers that outlived the previous daemon, or records how they ended. */
static void recover(struct daemon *d)
{
	struct util_list *pos;

	util_list_for_each(pos, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);
		struct store_runtime rec;
		bool reachable;

		if (store_read_runtime(vm, &rec)) {
			recover_status(vm);
			continue;
		}
		if (dvm_devices_held_from_json(vm, rec.devices))
			util_log(&d->log, UTIL_LOG_WARN,
				 "VM %s: its runtime record's devices are unreadable: managed "
				 "devices stay on vfio-pci",
				 vm->cfg.name);
		json_decref(rec.devices);
		recover_live(vm);
		vm->domain_id = rec.domain_id;
		vm->started_realtime = rec.started;
		vm->console_start = rec.console_start;
		vm->log_start = rec.log_start;
		vm->started_ns = util_now_ns(); /* unknown: counted as a fresh run */
		if (vm->domain_id >= d->next_domain_id)
			d->next_domain_id = vm->domain_id + 1;
		if (worker_attach(vm, &rec, &worker_events, &reachable) == 0) {
			dvm_set_state(vm, reachable ? DVM_RUNNING : DVM_CRASHED,
				      reachable ? "re-attached" : "unreachable");
			util_log(&d->log, UTIL_LOG_INFO, "re-attached to VM %s (worker pid %d)",
				 vm->cfg.name, (int)rec.pid);
			continue;
		}
		vm->domain_id = -1;
		recover_ended(vm);
	}
}

static void autostart(struct daemon *d)
{
	struct util_list *pos;

	util_list_for_each(pos, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);
		char err[512] = "";
		int ret;

		if (!vm->cfg.autostart || vm->worker)
			continue;
		ret = dvm_start(vm, true, err, sizeof(err));
		util_log(&d->log, ret ? UTIL_LOG_ERROR : UTIL_LOG_INFO, "autostart %s: %s",
			 vm->cfg.name, ret ? err : "started");
	}
}

void registry_load(struct daemon *d)
{
	store_load_definitions(d, load_definition);
	recover(d);
	autostart(d);
}

void registry_fini(struct daemon *d)
{
	struct util_list *pos, *tmp;

	/*
	 * Every worker is let go before the loop turns below: what one says meanwhile (its end, a
	 * hello) must reach neither a VM being freed nor the scheduler, which is gone already.
	 */
	util_list_for_each(pos, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		worker_free(vm->worker); /* our handles on it; the process runs on */
		vm->worker = NULL;
	}
	util_list_for_each_safe(pos, tmp, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		dvm_fail_waiters(vm, -ESHUTDOWN, "lockstepd is stopping");
		util_list_del(&vm->link);
		close_timers(vm, NULL);
		uv_run(d->loop, UV_RUN_NOWAIT);
		dvm_free(vm);
	}
}
