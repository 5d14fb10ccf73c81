/*
 * The operations that change lockstepd's state (daemon/ops.h), for every front end: what a
 * definition must satisfy on this host, names and uuids, the VM cap, which states allow what,
 * and the operations that wait for a guest (start, shutdown, destroy, reboot), parked on their
 * VM until the registry's state machine answers them.  The front ends (daemon/rpc/ and
 * daemon/virt/) only translate arguments in and errors out.
 *
 * A reboot's second half, the start, runs from the loop's check phase: the destroy completes
 * inside the registry's walk over the VM's waiters, where starting again would park a new
 * waiter on that same list.  Loop thread only.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/ops.h"

/* Fails with a message for a person: the one-line way out of every rule. */
#define fail(err, err_len, code, ...) util_error((err), (err_len), (code), __VA_ARGS__)

/* A reboot between its destroy and its start. */
struct reboot {
	struct util_list link; /* daemon->deferred */
	struct daemon *d;
	char uuid[37];
	bool transient; /* the domain is transient again once restarted */
	ops_done_fn done;
	void *arg;
};

/* ---- waiting for the guest ---- */

static void shutdown_timeout(uv_timer_t *t);

/* Parks an operation on the VM until it starts (for_stop false) or stops. */
static struct dvm_waiter *park(struct dvm *vm, ops_done_fn done, void *arg, bool for_stop)
{
	struct dvm_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->done = done;
	w->arg = arg;
	w->for_stop = for_stop;
	util_list_add_tail(&vm->shutdown_waiters, &w->link);
	return w;
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
		w->done(vm, w->arg, -ETIMEDOUT, msg);
		free(w);
	}
	if (waiting)
		arm_shutdown_timer(vm);
	else if (vm->state == DVM_STOPPING)
		dvm_set_state(vm, DVM_RUNNING, "shutdown-timeout");
}

/* ---- definitions ---- */

/* What a definition must satisfy to be defined or started here. */
static int check_definition(struct daemon *d, const struct vmdef *def, char *err, size_t err_len)
{
	int ret = vmdef_validate(def, err, err_len);

	if (ret)
		return ret;
	if (def->kernel[0] != '/')
		return fail(err, err_len, -EINVAL,
			    "\"kernel\" must be an absolute path (the daemon has no working "
			    "directory of yours)");
	if (def->initrd && def->initrd[0] != '/')
		return fail(err, err_len, -EINVAL, "\"initrd\" must be an absolute path");
	if (def->serial_log && def->serial_log[0] != '/')
		return fail(err, err_len, -EINVAL, "\"serial.log\" must be an absolute path");
	/* Only beneath the directories the administrator allows (docs/security.md). */
	ret = confine_check_definition(d, def, err, err_len);
	if (!ret)
		ret = dvm_devices_check_definition(d, def, err, err_len);
	if (ret)
		return ret;
	ret = dvm_sched_check(d, def, err, err_len);
	if (ret)
		return ret;
	/* Said now rather than at the first start: a kernel that is missing or boots nothing. */
	return confine_check_kernel(d, def->kernel, err, err_len);
}

/* The definition's name and uuid against the registry's: the VM it redefines (or NULL). */
static int check_names(struct daemon *d, const struct vmdef *def, unsigned flags, struct dvm **same,
		       char *err, size_t err_len)
{
	struct dvm *vm = registry_find(d, def->name);
	struct dvm *other = def->uuid[0] ? registry_find_uuid(d, def->uuid) : NULL;

	if (vm && (flags & OPS_DEFINE_NEW))
		return fail(err, err_len, -EEXIST, "VM %s already exists (uuid %s)", vm->cfg.name,
			    vm->cfg.uuid);
	if (vm && other != vm && def->uuid[0])
		return fail(err, err_len, -EEXIST, "VM %s exists with another uuid (%s)",
			    vm->cfg.name, vm->cfg.uuid);
	if (!vm && other)
		return fail(err, err_len, -EEXIST, "VM %s already exists with uuid %s",
			    other->cfg.name, other->cfg.uuid);
	*same = vm;
	return 0;
}

static int define(struct daemon *d, const struct vmdef *def, unsigned flags, struct dvm **out,
		  bool *created, char *err, size_t err_len)
{
	struct dvm *vm;
	struct vmdef next;
	int ret;

	if ((ret = check_definition(d, def, err, err_len)) ||
	    (ret = check_names(d, def, flags, &vm, err, err_len)))
		return ret;
	*created = !vm;
	if (!vm) {
		ret = registry_define(d, def, &vm);
		if (ret == -EUSERS)
			return fail(err, err_len, ret, "at most %u VMs may be defined",
				    d->opts.max_vms);
		if (ret)
			return fail(err, err_len, ret, "cannot store the definition of %s: %s",
				    def->name, strerror(-ret));
		*out = vm;
		return 0;
	}
	ret = vmdef_copy(&next, def);
	if (!ret) {
		if (flags & OPS_DEFINE_KEEP_AUTOSTART)
			next.autostart = vm->cfg.autostart;
		ret = registry_redefine(vm, &next);
		vmdef_fini(&next);
	}
	if (ret)
		return fail(err, err_len, ret, "cannot store the definition of %s: %s", def->name,
			    strerror(-ret));
	vm->transient = false; /* defining a transient VM makes it persistent */
	*out = vm;
	return 0;
}

int ops_define(struct daemon *d, const struct vmdef *def, unsigned flags, struct dvm **out,
	       bool *created, char *err, size_t err_len)
{
	int ret = define(d, def, flags, out, created, err, err_len);

	if (!ret && *created)
		dvm_announce(*out, "defined");
	return ret;
}

int ops_undefine(struct dvm *vm, unsigned flags, char *err, size_t err_len)
{
	char name[VMDEF_NAME_MAX + 1];
	int ret;

	if (vm->transient)
		return fail(err, err_len, -EBUSY, "VM %s is transient: it goes when it stops",
			    vm->cfg.name);
	if (vm->worker && !(flags & OPS_UNDEFINE_WHEN_STOPPED))
		return fail(err, err_len, -EBUSY, "VM %s is %s: destroy or shut it down first",
			    vm->cfg.name, dvm_state_name(vm->state));
	dvm_cancel_restart(vm);
	dvm_announce(vm, "undefined");
	if (vm->worker) {
		vm->transient = true; /* the registry removes it when its worker ends */
		return 0;
	}
	strcpy(name, vm->cfg.name);
	ret = registry_undefine(vm);
	if (ret)
		return fail(err, err_len, ret, "cannot remove the definition of %s: %s", name,
			    strerror(-ret));
	return 0;
}

int ops_set_autostart(struct dvm *vm, bool autostart, char *err, size_t err_len)
{
	struct vmdef next;
	int ret;

	if (vm->transient)
		return fail(err, err_len, -EBUSY, "VM %s is transient: it has no autostart",
			    vm->cfg.name);
	ret = vmdef_copy(&next, &vm->cfg);
	if (!ret) {
		next.autostart = autostart;
		ret = registry_redefine(vm, &next);
		vmdef_fini(&next);
	}
	if (ret)
		return fail(err, err_len, ret, "cannot store the autostart flag of %s: %s",
			    vm->cfg.name, strerror(-ret));
	return 0;
}

/* ---- running ---- */

/* A start by a client boots the stored definition (`fresh`); a reboot the run's again. */
static int start(struct dvm *vm, bool fresh, ops_done_fn done, void *arg, char *err, size_t err_len)
{
	struct dvm_waiter *w;
	int ret;

	if (vm->worker)
		return fail(err, err_len, -EBUSY, "VM %s is already %s%s", vm->cfg.name,
			    dvm_state_name(vm->state),
			    vm->state == DVM_CRASHED ? " (preserved): destroy it first" : "");
	/* The host may have changed since the definition was checked (CPUs, cpusets). */
	ret = dvm_sched_check(vm->d, fresh || !vm->live ? &vm->cfg : vm->live, err, err_len);
	if (!ret)
		ret = confine_ready(vm->d, err, err_len); /* the worker user exists */
	if (ret)
		return ret;
	w = park(vm, done, arg, false);
	if (!w)
		return fail(err, err_len, -ENOMEM, "cannot start %s: out of memory", vm->cfg.name);
	ret = dvm_start(vm, fresh, err, err_len);
	if (ret) {
		util_list_del(&w->link);
		free(w);
		return ret;
	}
	return OPS_PENDING;
}

int ops_start(struct dvm *vm, ops_done_fn done, void *arg, char *err, size_t err_len)
{
	return start(vm, true, done, arg, err, err_len);
}

int ops_create(struct daemon *d, const struct vmdef *def, ops_done_fn done, void *arg,
	       struct dvm **out, char *err, size_t err_len)
{
	struct dvm *vm;
	bool created;
	int ret;

	/* libvirt's create announces the start, not a definition. */
	ret = define(d, def, OPS_DEFINE_NEW, &vm, &created, err, err_len);
	if (ret)
		return ret;
	vm->transient = true; /* a start that fails later takes the definition with it */
	ret = ops_start(vm, done, arg, err, err_len);
	if (ret < 0) {
		registry_undefine(vm); /* it never ran: nothing else will */
		return ret;
	}
	*out = vm;
	return ret;
}

static void powerdown_sent(struct dvm *vm, void *arg, json_t *result, const char *error, int err)
{
	if (error)
		util_log(&vm->d->log, UTIL_LOG_WARN, "VM %s: power button: %s", vm->cfg.name,
			 error);
}

int ops_shutdown(struct dvm *vm, uint64_t timeout_ms, ops_done_fn done, void *arg, char *err,
		 size_t err_len)
{
	struct dvm_waiter *w;
	int ret;

	if (!vm->worker || (vm->state != DVM_RUNNING && vm->state != DVM_STOPPING))
		return fail(err, err_len, -EBUSY, "VM %s is %s, not running", vm->cfg.name,
			    dvm_state_name(vm->state));
	w = park(vm, done, arg, true);
	if (!w)
		return fail(err, err_len, -ENOMEM, "cannot shut %s down: out of memory",
			    vm->cfg.name);
	ret = worker_request(vm->worker, VM_CMD_POWERDOWN, powerdown_sent, NULL);
	if (ret) {
		util_list_del(&w->link);
		free(w);
		return fail(err, err_len, ret, "cannot reach the worker of %s: %s", vm->cfg.name,
			    strerror(-ret));
	}
	dvm_set_state(vm, DVM_STOPPING, "shutdown");
	w->deadline_ns = util_now_ns() + timeout_ms * 1000000ull;
	arm_shutdown_timer(vm);
	return OPS_PENDING;
}

int ops_destroy(struct dvm *vm, ops_done_fn done, void *arg, char *err, size_t err_len)
{
	struct dvm_waiter *w;

	if (!vm->worker) {
		if (vm->state != DVM_CRASHED && vm->state != DVM_FAILED && !vm->restart_pending)
			return fail(err, err_len, -EBUSY, "VM %s is not running", vm->cfg.name);
		/* Forgets the crash or the failed start, and a restart waiting for its turn. */
		dvm_cancel_restart(vm);
		dvm_set_state(vm, DVM_SHUTOFF, "destroyed");
		return 0;
	}
	w = park(vm, done, arg, true);
	if (!w)
		return fail(err, err_len, -ENOMEM, "cannot destroy %s: out of memory",
			    vm->cfg.name);
	w->destroy = true;
	vm->destroying = true;
	worker_destroy(vm->worker);
	return OPS_PENDING;
}

/* ---- reboot: destroy, then start from the check phase ---- */

static void reboot_started(struct dvm *vm, void *arg, int ret, const char *message)
{
	struct reboot *rb = arg;

	if (!ret)
		vm->transient = rb->transient;
	rb->done(vm, rb->arg, ret, message);
	free(rb);
}

static void reboot_start(struct reboot *rb)
{
	struct dvm *vm = registry_find_uuid(rb->d, rb->uuid);
	char err[512];
	int ret;

	if (!vm) {
		rb->done(NULL, rb->arg, -ENOENT, "the VM went away during its reboot");
		free(rb);
		return;
	}
	if (vm->worker) { /* someone else started it meanwhile */
		vm->transient = rb->transient;
		rb->done(vm, rb->arg, 0, NULL);
		free(rb);
		return;
	}
	ret = start(vm, false, reboot_started, rb, err, sizeof(err));
	if (ret >= 0)
		return;
	rb->done(vm, rb->arg, ret, err);
	if (rb->transient)
		registry_undefine(vm); /* a transient VM that did not come back is gone */
	free(rb);
}

static void reboot_stopped(struct dvm *vm, void *arg, int ret, const char *message)
{
	struct reboot *rb = arg;
	struct daemon *d = rb->d;

	if (ret || d->quitting) {
		vm->transient = rb->transient;
		rb->done(vm, rb->arg, ret ? ret : -ESHUTDOWN,
			 ret ? message : "lockstepd is stopping");
		free(rb);
		return;
	}
	util_list_add_tail(&d->deferred, &rb->link);
	uv_check_start(&d->deferred_check, ops_run_deferred);
}

void ops_run_deferred(uv_check_t *h)
{
	struct daemon *d = h->data;

	while (!util_list_empty(&d->deferred)) {
		struct reboot *rb = util_container_of(d->deferred.next, struct reboot, link);

		util_list_del(&rb->link);
		reboot_start(rb);
	}
	uv_check_stop(h);
}

void ops_drop_deferred(struct daemon *d)
{
	while (!util_list_empty(&d->deferred)) {
		struct reboot *rb = util_container_of(d->deferred.next, struct reboot, link);
		struct dvm *vm = registry_find_uuid(d, rb->uuid);

		util_list_del(&rb->link);
		if (vm)
			vm->transient = rb->transient;
		rb->done(vm, rb->arg, -ESHUTDOWN, "lockstepd is stopping");
		free(rb);
	}
}

int ops_reboot(struct dvm *vm, ops_done_fn done, void *arg, char *err, size_t err_len)
{
	struct reboot *rb;
	int ret;

	if (!vm->worker || vm->state != DVM_RUNNING)
		return fail(err, err_len, -EBUSY, "VM %s is %s, not running", vm->cfg.name,
			    dvm_state_name(vm->state));
	rb = calloc(1, sizeof(*rb));
	if (!rb)
		return fail(err, err_len, -ENOMEM, "cannot reboot %s: out of memory", vm->cfg.name);
	*rb = (struct reboot){ .d = vm->d, .transient = vm->transient, .done = done, .arg = arg };
	util_list_init(&rb->link);
	util_strlcpy(rb->uuid, vm->cfg.uuid, sizeof(rb->uuid));
	/* The destroy must not take a transient VM's definition with it. */
	vm->transient = false;
	ret = ops_destroy(vm, reboot_stopped, rb, err, err_len);
	if (ret < 0) {
		vm->transient = rb->transient;
		free(rb);
	}
	return ret;
}

/* ---- scheduling ---- */

int ops_pin(struct dvm *vm, uint32_t vcpu, const struct util_cpuset *cpus, unsigned affect,
	    bool *live, bool *stored, char *err, size_t err_len)
{
	long host_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	int ret;

	const struct vmdef *def = dvm_def(vm);
	bool to_config = (affect & OPS_AFFECT_CONFIG) || !vm->worker;
	uint32_t vcpus = to_config && vm->cfg.vcpus < def->vcpus ? vm->cfg.vcpus : def->vcpus;
	struct vmdef next;

	*live = *stored = false;
	if (vcpu >= vcpus)
		return fail(err, err_len, -ERANGE, "VM %s has %u vCPUs (0-%u)", vm->cfg.name, vcpus,
			    vcpus - 1);
	if (!util_cpuset_count(cpus))
		return fail(err, err_len, -ERANGE, "vCPU %u of %s would be pinned to no CPU", vcpu,
			    vm->cfg.name);
	CPU_ZERO(&set);
	for (unsigned c = 0; c < UTIL_CPUSET_MAX; c++) {
		if (!util_cpuset_has(cpus, c))
			continue;
		if (c >= (unsigned)host_cpus || c >= CPU_SETSIZE)
			return fail(err, err_len, -ERANGE,
				    "host CPU %u does not exist (the host has %ld)", c, host_cpus);
		CPU_SET(c, &set);
	}
	if ((affect & OPS_AFFECT_LIVE) && !vm->worker)
		return fail(err, err_len, -EBUSY, "VM %s is not running", vm->cfg.name);
	if (vm->worker && vm->worker->nr_vcpus) {
		int tid = vcpu < vm->worker->nr_vcpus ? vm->worker->tids[vcpu] : 0;

		if (tid <= 0 || sched_setaffinity(tid, sizeof(set), &set) < 0) {
			ret = tid <= 0 ? -ESRCH : -errno;
			return fail(err, err_len, ret, "cannot pin vCPU %u of %s: %s", vcpu,
				    vm->cfg.name, strerror(-ret));
		}
		*live = true;
		if (vm->scheduled) /* the scheduler keeps the pin rather than placing it anew */
			scheduler_set_pin(vm->d->scheduler, vm->domain_id, vcpu, cpus);
	}
	/* The run's definition records it, so vm.info shows it and a new daemon keeps it. */
	if (*live && !vmdef_copy(&next, vm->live)) {
		ret = vmdef_set_pin(&next, vcpu, cpus);
		if (!ret)
			ret = dvm_set_live(vm, &next);
		vmdef_fini(&next);
		if (ret)
			util_log(&vm->d->log, UTIL_LOG_WARN, "VM %s: cannot record the pin: %s",
				 vm->cfg.name, strerror(-ret));
	}
	if (to_config) {
		ret = dvm_set_pin(vm, vcpu, cpus);
		if (ret)
			return fail(err, err_len, ret, "cannot store the pin of %s: %s",
				    vm->cfg.name, strerror(-ret));
		*stored = true;
	}
	return 0;
}

/* `base` with the new settings, checked on this host. */
static int sched_settings(struct dvm *vm, const struct vmdef *base, enum vmdef_sched_policy policy,
			  uint32_t quantum_us, uint32_t skew_us, struct vmdef *next, char *err,
			  size_t err_len)
{
	int ret;

	if (vmdef_copy(next, base))
		return fail(err, err_len, -ENOMEM, "out of memory");
	next->sched.policy = policy;
	if (quantum_us)
		next->sched.quantum_us = quantum_us;
	if (skew_us)
		next->sched.skew_us = skew_us;
	ret = vmdef_validate(next, err, err_len);
	if (!ret)
		ret = dvm_sched_check(vm->d, next, err, err_len);
	if (ret)
		vmdef_fini(next);
	return ret;
}

int ops_set_sched(struct dvm *vm, enum vmdef_sched_policy policy, uint32_t quantum_us,
		  uint32_t skew_us, unsigned affect, struct vmdef_sched *now, bool *live,
		  bool *stored, char *err, size_t err_len)
{
	struct daemon *d = vm->d;
	struct vmdef next_live, next_cfg;
	bool running = vm->worker && vm->live;
	enum vmdef_sched_policy before;
	int ret;

	*live = *stored = false;
	if ((affect & OPS_AFFECT_LIVE) && !running)
		return fail(err, err_len, -EBUSY, "VM %s is not running", vm->cfg.name);
	/* Both are checked before either changes, so a refusal changes nothing. */
	if (running) {
		ret = sched_settings(vm, vm->live, policy, quantum_us, skew_us, &next_live, err,
				     err_len);
		if (ret)
			return ret;
	}
	if ((affect & OPS_AFFECT_CONFIG) || !running) {
		ret = sched_settings(vm, &vm->cfg, policy, quantum_us, skew_us, &next_cfg, err,
				     err_len);
		if (ret) {
			if (running)
				vmdef_fini(&next_live);
			return ret;
		}
	}
	if (running) {
		before = vm->live->sched.policy;
		ret = 0;
		if (vm->scheduled) {
			ret = scheduler_set_policy(d->scheduler, vm->domain_id, policy,
						   (uint64_t)next_live.sched.quantum_us * 1000,
						   (uint64_t)next_live.sched.skew_us * 1000, err,
						   err_len);
			if (ret && ret != -E2BIG)
				ret = -EIO; /* the scheduler lost the VM: not the caller's doing */
		}
		/* Not yet scheduled (starting): the scheduler takes the run's settings at hello. */
		if (!ret) {
			ret = dvm_set_live(vm, &next_live);
			if (ret)
				util_log(&d->log, UTIL_LOG_WARN,
					 "VM %s: cannot record its live settings: %s", vm->cfg.name,
					 strerror(-ret));
			ret = 0;
			*live = true;
			if (policy != before)
				dvm_sched_notes(vm, policy);
		}
		vmdef_fini(&next_live);
		if (ret) {
			if ((affect & OPS_AFFECT_CONFIG))
				vmdef_fini(&next_cfg);
			return ret;
		}
	}
	if ((affect & OPS_AFFECT_CONFIG) || !running) {
		ret = registry_redefine(vm, &next_cfg);
		vmdef_fini(&next_cfg);
		if (ret)
			return fail(err, err_len, ret, "cannot store the definition of %s: %s",
				    vm->cfg.name, strerror(-ret));
		*stored = true;
	}
	*now = dvm_def(vm)->sched;
	now->nr_pins = 0;
	now->pins = NULL;
	return 0;
}

/* ---- interrupts ---- */

struct steering_op {
	ops_done_fn done;
	void *arg;
	bool on;
};

static void steering_replied(struct dvm *vm, void *arg, json_t *result, const char *error, int err)
{
	struct steering_op *op = arg;
	struct vmdef next;
	char message[256];

	if (result) {
		/* The run's definition records it, so vm.info shows it and a new daemon keeps it. */
		if (vm->worker && vm->live && !vmdef_copy(&next, vm->live)) {
			next.irq.steering = op->on;
			if (vm->scheduled)
				scheduler_set_irq_boost(vm->d->scheduler, vm->domain_id, op->on);
			if (dvm_set_live(vm, &next))
				util_log(&vm->d->log, UTIL_LOG_WARN,
					 "VM %s: cannot record its live steering", vm->cfg.name);
			vmdef_fini(&next);
		}
		op->done(vm, op->arg, 0, NULL);
	} else {
		snprintf(message, sizeof(message), "%s: steering not changed: %s", vm->cfg.name,
			 error ? error : "no answer from the worker");
		op->done(vm, op->arg, err ? -err : -EIO, message);
	}
	free(op);
}

int ops_set_irq_steering(struct dvm *vm, bool on, unsigned affect, ops_done_fn done, void *arg,
			 bool *stored, char *err, size_t err_len)
{
	struct steering_op *op;
	struct vmdef next;
	int ret;

	*stored = false;
	if ((affect & OPS_AFFECT_LIVE) && !vm->worker)
		return fail(err, err_len, -EBUSY, "VM %s is not running", vm->cfg.name);
	if ((affect & OPS_AFFECT_CONFIG) || !vm->worker) {
		if (vmdef_copy(&next, &vm->cfg))
			return fail(err, err_len, -ENOMEM, "out of memory");
		next.irq.steering = on;
		ret = registry_redefine(vm, &next);
		vmdef_fini(&next);
		if (ret)
			return fail(err, err_len, ret, "cannot store the definition of %s: %s",
				    vm->cfg.name, strerror(-ret));
		*stored = true;
	}
	if (!vm->worker)
		return 0;
	op = calloc(1, sizeof(*op));
	if (!op)
		return fail(err, err_len, -ENOMEM, "out of memory");
	*op = (struct steering_op){ .done = done, .arg = arg, .on = on };
	ret = worker_request_steering(vm->worker, on, steering_replied, op);
	if (ret) {
		free(op);
		return fail(err, err_len, ret, "cannot reach the worker of %s: %s", vm->cfg.name,
			    strerror(-ret));
	}
	return OPS_PENDING;
}

/* ---- passthrough devices ---- */

static int check_cold(struct dvm *vm, char *err, size_t err_len)
{
	if (vm->worker)
		return fail(err, err_len, -EBUSY,
			    "VM %s is %s: devices are attached and detached while it is shut off",
			    vm->cfg.name, dvm_state_name(vm->state));
	return 0;
}

int ops_device_attach(struct dvm *vm, const struct vmdef_device *dev, unsigned *index, char *err,
		      size_t err_len)
{
	struct vmdef next;
	int ret = check_cold(vm, err, err_len);

	if (ret)
		return ret;
	if (vm->cfg.nr_devices >= VMDEF_DEVICES_MAX)
		return fail(err, err_len, -EINVAL, "VM %s has %d devices already, the most it may",
			    vm->cfg.name, VMDEF_DEVICES_MAX);
	if (vmdef_copy(&next, &vm->cfg))
		return fail(err, err_len, -ENOMEM, "out of memory");
	next.devices[next.nr_devices] = *dev;
	next.devices[next.nr_devices].rom_file = NULL;
	ret = vmdef_dup_device_rom(&next.devices[next.nr_devices], dev->rom_file);
	if (!ret) {
		*index = next.nr_devices++;
		ret = check_definition(vm->d, &next, err, err_len);
		if (!ret && (ret = registry_redefine(vm, &next)))
			fail(err, err_len, ret, "cannot store the definition of %s: %s",
			     vm->cfg.name, strerror(-ret));
	} else {
		fail(err, err_len, ret, "out of memory");
	}
	vmdef_fini(&next);
	return ret;
}

int ops_device_detach(struct dvm *vm, const char *bdf, char *err, size_t err_len)
{
	struct vmdef next;
	uint32_t i;
	int ret = check_cold(vm, err, err_len);

	if (ret)
		return ret;
	for (i = 0; i < vm->cfg.nr_devices; i++)
		if (!strcmp(vm->cfg.devices[i].type, "vfio-pci") &&
		    !strcasecmp(vm->cfg.devices[i].host, bdf))
			break;
	if (i == vm->cfg.nr_devices)
		return fail(err, err_len, -ERANGE, "VM %s has no passthrough device %.32s",
			    vm->cfg.name, bdf);
	if (vmdef_copy(&next, &vm->cfg))
		return fail(err, err_len, -ENOMEM, "out of memory");
	free(next.devices[i].rom_file);
	memmove(&next.devices[i], &next.devices[i + 1],
		(next.nr_devices - i - 1) * sizeof(next.devices[0]));
	next.nr_devices--;
	ret = registry_redefine(vm, &next);
	if (ret)
		fail(err, err_len, ret, "cannot store the definition of %s: %s", vm->cfg.name,
		     strerror(-ret));
	vmdef_fini(&next);
	return ret;
}

/* ---- the serial console ---- */

int ops_console_open(struct dvm *vm, unsigned flags, const struct console_client *client,
		     struct console_session **out, char *err, size_t err_len)
{
	int ret;

	if (!vm->worker || (vm->state != DVM_RUNNING && vm->state != DVM_STOPPING))
		return fail(err, err_len, -EBUSY, "VM %s is not running (%s)", vm->cfg.name,
			    dvm_state_name(vm->state));
	if (vm->console) {
		if (!(flags & OPS_CONSOLE_FORCE))
			return fail(err, err_len, -EBUSY,
				    "the console of VM %s is in use by another client (forcing "
				    "takes it over)",
				    vm->cfg.name);
		console_session_end(vm, "another client took the console over");
	}
	ret = console_session_open(vm, client, out);
	if (ret)
		return fail(err, err_len, ret, "cannot open the console of VM %s: %s", vm->cfg.name,
			    strerror(-ret));
	return 0;
}

int ops_console_input(struct console_session *s, const void *data, size_t len)
{
	return console_session_write(s, data, len);
}

void ops_console_close(struct console_session *s)
{
	console_session_close(s);
}
