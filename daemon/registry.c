/*
 * The VM registry: every defined VM, its state machine and what happens when its worker ends
 * (the on_crash policy, guest reboots, answers to clients waiting for a start or a stop).
 *
 *   shutoff --start--> starting --hello--> running --shutdown--> stopping --exit--> shutoff
 *                          \_________________ worker dies / guest crashes ______> crashed
 *
 * Every state change is persisted (the runtime record) and announced to event subscribers.
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

#define RESTART_WINDOW_NS (60ull * 1000000000ull)
#define RESTARTS_PER_WINDOW 3

static const char *const state_names[] = { "shutoff", "starting", "running", "stopping",
					   "crashed" };

const char *dvm_state_name(enum dvm_state state)
{
	return (unsigned)state < 5 ? state_names[state] : "unknown";
}

void dvm_run_path(const struct dvm *vm, const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%s/vms/%s%s", vm->d->opts.run_dir, vm->cfg.name, suffix);
}

const char *dvm_console_path(const struct dvm *vm, char *buf, size_t size)
{
	if (vm->cfg.serial_log)
		util_strlcpy(buf, vm->cfg.serial_log, size);
	else
		dvm_run_path(vm, ".console", buf, size);
	return buf;
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
	struct vmdef_pin *pins;
	uint32_t i;
	int ret;

	ret = vmdef_copy(&next, &vm->cfg);
	if (ret)
		return ret;
	for (i = 0; i < next.sched.nr_pins && next.sched.pins[i].vcpu != vcpu; i++)
		;
	if (i == next.sched.nr_pins) {
		pins = realloc(next.sched.pins, (i + 1) * sizeof(*pins));
		if (!pins) {
			vmdef_fini(&next);
			return -ENOMEM;
		}
		next.sched.pins = pins;
		next.sched.nr_pins++;
	}
	next.sched.pins[i].vcpu = vcpu;
	next.sched.pins[i].cpus = *cpus;
	ret = registry_redefine(vm, &next);
	vmdef_fini(&next);
	return ret;
}

static void timer_closed(uv_handle_t *h)
{
	struct dvm *vm = h->data;

	json_decref(vm->last_stats);
	json_decref(vm->last_sched);
	vmdef_fini(&vm->cfg);
	free(vm);
}

/* A forgotten VM leaves nothing behind in the run directory (names come and go). */
static void remove_run_files(struct dvm *vm)
{
	static const char *const suffixes[] = { ".console", ".log", ".def.json",
						".exit",    ".run", ".ctl" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		dvm_run_path(vm, suffixes[i], path, sizeof(path));
		unlink(path);
	}
}

int registry_undefine(struct dvm *vm)
{
	int ret;

	if (vm->worker)
		return -EBUSY;
	ret = store_remove_definition(vm->d, vm->cfg.name);
	if (ret)
		return ret;
	console_unfollow_vm(vm->d, vm);
	remove_run_files(vm);
	util_list_del(&vm->link);
	uv_close((uv_handle_t *)&vm->shutdown_timer, timer_closed);
	return 0;
}

void dvm_set_state(struct dvm *vm, enum dvm_state state, const char *reason)
{
	static const char *const what[] = { "stopped", "starting", "started", "stopping",
					    "crashed" };
	enum dvm_state old = vm->state;

	vm->state = state;
	util_strlcpy(vm->reason, reason, sizeof(vm->reason));
	if (vm->worker)
		store_save_runtime(vm);
	else
		store_remove_runtime(vm);
	if (old != state)
		events_lifecycle(vm, what[state]);
	if (state == DVM_RUNNING && old != DVM_RUNNING && old != DVM_STOPPING)
		dvm_answer_waiters(vm, false);
}

/*
 * Ends the operations waiting on this VM.  When it starts running, the starts; when its worker
 * is gone, the stops (shutdown, destroy) succeed and the starts learn it did not start.
 */
void dvm_answer_waiters(struct dvm *vm, bool stopped)
{
	struct util_list *pos, *tmp;
	char msg[512];

	util_list_for_each_safe(pos, tmp, &vm->shutdown_waiters) {
		struct dvm_waiter *w = util_container_of(pos, struct dvm_waiter, link);

		if (!stopped && w->for_stop)
			continue;
		util_list_del(&w->link);
		if (stopped && !w->for_stop) {
			snprintf(
				msg, sizeof(msg),
				"VM %s did not start: %s (exit status %d); its log is %.200s/vms/%s.log",
				vm->cfg.name, vm->reason, vm->last_status, vm->d->opts.run_dir,
				vm->cfg.name);
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

static bool may_restart(struct dvm *vm)
{
	uint64_t now = util_now_ns();

	if (now - vm->restart_window_ns > RESTART_WINDOW_NS) {
		vm->restart_window_ns = now;
		vm->restarts = 0;
	}
	return vm->restarts++ < RESTARTS_PER_WINDOW;
}

void dvm_worker_gone(struct dvm *vm, bool crashed, const char *reason, int status)
{
	struct worker *w = vm->worker;
	bool destroyed = vm->destroying;
	bool restart = false, reboot = false;

	dvm_sched_detach(vm);
	vm->worker = NULL;
	vm->destroying = false;
	worker_free(w);
	vm->last_status = status;
	vm->domain_id = -1;
	if (destroyed) {
		dvm_set_state(vm, DVM_SHUTOFF, "destroyed");
	} else if (crashed) {
		util_log(&vm->d->log, UTIL_LOG_WARN, "VM %s crashed (%s, status %d)", vm->cfg.name,
			 reason, status);
		dvm_set_state(vm, DVM_CRASHED, reason);
		restart = vm->cfg.on_crash == VMDEF_ON_CRASH_RESTART;
	} else {
		dvm_set_state(vm, DVM_SHUTOFF, reason);
		reboot = strcmp(reason, vm_stop_reason_name(VM_STOP_GUEST_RESET)) == 0;
	}
	dvm_answer_waiters(vm, true);
	if (vm->transient) {
		registry_undefine(vm);
		return;
	}
	if ((restart || reboot) && !vm->d->quitting) {
		if (may_restart(vm) && dvm_start(vm) == 0)
			events_lifecycle(vm, restart ? "restarted" : "rebooted");
		else
			util_log(&vm->d->log, UTIL_LOG_ERROR,
				 "VM %s: not restarting it after %u restarts within a minute",
				 vm->cfg.name, vm->restarts);
	}
}

int dvm_start(struct dvm *vm)
{
	int ret;

	if (vm->worker)
		return -EBUSY;
	/* A run that crashes before its report must not show the previous run's figures. */
	json_decref(vm->last_stats);
	json_decref(vm->last_sched);
	vm->last_stats = vm->last_sched = NULL;
	vm->domain_id = vm->d->next_domain_id++;
	vm->started_realtime = (uint64_t)time(NULL);
	ret = worker_spawn(vm);
	if (ret) {
		vm->domain_id = -1;
		return ret;
	}
	dvm_set_state(vm, DVM_STARTING, "starting");
	return 0;
}
