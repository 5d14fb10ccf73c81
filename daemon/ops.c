/*
 * Operations on a VM, independent of the protocol that asked for them: start, shutdown (the
 * ACPI power button, with a timeout), destroy and vCPU pinning.  lockstepd's JSON-RPC methods
 * and its libvirt endpoint both end in these; each reports through a dvm_done_fn exactly once.
 * Loop thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

static void done_now(struct dvm *vm, dvm_done_fn done, void *arg, int code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void done_now(struct dvm *vm, dvm_done_fn done, void *arg, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	done(vm, arg, code, msg);
}

static void shutdown_timeout(uv_timer_t *t);

/* Parks an operation on the VM until it starts (for_stop false) or stops. */
static struct dvm_waiter *park(struct dvm *vm, dvm_done_fn done, void *arg, bool for_stop)
{
	struct dvm_waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		done(vm, arg, API_INTERNAL_ERROR, "out of memory");
		return NULL;
	}
	w->done = done;
	w->arg = arg;
	w->for_stop = for_stop;
	util_list_add_tail(&vm->shutdown_waiters, &w->link);
	return w;
}

void dvm_op_start(struct dvm *vm, dvm_done_fn done, void *arg)
{
	int ret;

	if (vm->worker) {
		done_now(vm, done, arg, API_BAD_STATE, "VM %s is already %s%s", vm->cfg.name,
			 dvm_state_name(vm->state),
			 vm->state == DVM_CRASHED ? " (preserved): destroy it first" : "");
		return;
	}
	ret = dvm_start(vm);
	if (ret) {
		done_now(vm, done, arg, API_SYSTEM_ERROR, "cannot start %s: %s", vm->cfg.name,
			 strerror(-ret));
		return;
	}
	park(vm, done, arg, false);
}

/* Arms the VM's timer for the earliest deadline among its waiting shutdowns. */
static void arm_shutdown_timer(struct dvm *vm)
{
	uint64_t earliest = UINT64_MAX, now = util_now_ns();
	struct util_list *pos;

	util_list_for_each(pos, &vm->shutdown_waiters) {
		struct dvm_waiter *w = util_container_of(pos, struct dvm_waiter, link);

		if (w->deadline_ns && w->deadline_ns < earliest)
			earliest = w->deadline_ns;
	}
	if (earliest == UINT64_MAX)
		uv_timer_stop(&vm->shutdown_timer);
	else
		uv_timer_start(&vm->shutdown_timer, shutdown_timeout,
			       earliest > now ? (earliest - now + 999999) / 1000000 : 0, 0);
}

/* Fails the shutdowns whose own timeout passed; the VM runs on. */
static void shutdown_timeout(uv_timer_t *t)
{
	struct dvm *vm = t->data;
	struct util_list *pos, *tmp;
	uint64_t now = util_now_ns();
	bool waiting = false;
	char msg[256];

	snprintf(msg, sizeof(msg),
		 "VM %s did not shut down in time: the guest may ignore the ACPI power button; "
		 "destroying it stops it at once",
		 vm->cfg.name);
	util_list_for_each_safe(pos, tmp, &vm->shutdown_waiters) {
		struct dvm_waiter *w = util_container_of(pos, struct dvm_waiter, link);

		if (!w->deadline_ns)
			continue;
		if (w->deadline_ns > now) {
			waiting = true;
			continue;
		}
		util_list_del(&w->link);
		w->done(vm, w->arg, API_TIMEOUT, msg);
		free(w);
	}
	if (waiting)
		arm_shutdown_timer(vm);
	else if (vm->state == DVM_STOPPING)
		dvm_set_state(vm, DVM_RUNNING, "shutdown-timeout");
}

static void powerdown_sent(struct dvm *vm, void *arg, json_t *result, const char *error, int err)
{
	if (error)
		util_log(&vm->d->log, UTIL_LOG_WARN, "VM %s: power button: %s", vm->cfg.name,
			 error);
}

void dvm_op_shutdown(struct dvm *vm, uint64_t timeout_ms, dvm_done_fn done, void *arg)
{
	struct dvm_waiter *w;
	int ret;

	if (!vm->worker || (vm->state != DVM_RUNNING && vm->state != DVM_STOPPING)) {
		done_now(vm, done, arg, API_BAD_STATE, "VM %s is %s, not running", vm->cfg.name,
			 dvm_state_name(vm->state));
		return;
	}
	ret = worker_request(vm->worker, VM_CMD_POWERDOWN, powerdown_sent, NULL);
	if (ret) {
		done_now(vm, done, arg, API_SYSTEM_ERROR, "cannot reach the worker of %s: %s",
			 vm->cfg.name, strerror(-ret));
		return;
	}
	dvm_set_state(vm, DVM_STOPPING, "shutdown");
	w = park(vm, done, arg, true);
	if (!w)
		return;
	w->deadline_ns = util_now_ns() + timeout_ms * 1000000ull;
	arm_shutdown_timer(vm);
}

void dvm_op_destroy(struct dvm *vm, dvm_done_fn done, void *arg)
{
	struct dvm_waiter *w;

	if (!vm->worker) {
		if (vm->state == DVM_CRASHED) {
			dvm_set_state(vm, DVM_SHUTOFF, "destroyed");
			done(vm, arg, 0, NULL);
		} else {
			done_now(vm, done, arg, API_BAD_STATE, "VM %s is not running",
				 vm->cfg.name);
		}
		return;
	}
	w = park(vm, done, arg, true);
	if (!w)
		return;
	w->destroy = true;
	vm->destroying = true;
	worker_destroy(vm->worker);
}

int dvm_op_pin(struct dvm *vm, uint32_t vcpu, const struct util_cpuset *cpus, bool config,
	       bool *live, bool *stored, char *err, size_t err_len)
{
	long host_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	*live = *stored = false;
	if (vcpu >= vm->cfg.vcpus) {
		snprintf(err, err_len, "VM %s has %u vCPUs (0-%u)", vm->cfg.name, vm->cfg.vcpus,
			 vm->cfg.vcpus - 1);
		return API_INVALID_PARAMS;
	}
	CPU_ZERO(&set);
	for (unsigned c = 0; c < UTIL_CPUSET_MAX; c++) {
		if (!util_cpuset_has(cpus, c))
			continue;
		if (c >= (unsigned)host_cpus || c >= CPU_SETSIZE) {
			snprintf(err, err_len, "host CPU %u does not exist (the host has %ld)", c,
				 host_cpus);
			return API_INVALID_PARAMS;
		}
		CPU_SET(c, &set);
	}
	if (vm->worker && vm->worker->nr_vcpus) {
		int tid = vcpu < vm->worker->nr_vcpus ? vm->worker->tids[vcpu] : 0;

		if (tid <= 0 || sched_setaffinity(tid, sizeof(set), &set) < 0) {
			snprintf(err, err_len, "cannot pin vCPU %u of %s: %s", vcpu, vm->cfg.name,
				 strerror(tid <= 0 ? ESRCH : errno));
			return API_SYSTEM_ERROR;
		}
		*live = true;
		if (vm->scheduled) /* the scheduler keeps the pin rather than placing it anew */
			scheduler_set_pin(vm->d->scheduler, vm->domain_id, vcpu, cpus);
	}
	if (config || !vm->worker) {
		int ret = dvm_set_pin(vm, vcpu, cpus);

		if (ret) {
			snprintf(err, err_len, "cannot store the pin of %s: %s", vm->cfg.name,
				 strerror(-ret));
			return API_SYSTEM_ERROR;
		}
		*stored = true;
	}
	return 0;
}
