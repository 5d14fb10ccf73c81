/*
 * Between the VM registry and the scheduler thread: turning a definition's "sched" section
 * into the engine's parameters, refusing policies the host cannot give a VM (at define time
 * and at run time, with the alternatives named), and handing running VMs to the scheduler
 * when their worker says hello (also after a daemon restart).  Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "daemon/daemon.h"

void dvm_sched_params(const struct vmdef *cfg, struct sched_vm_params *p, struct util_cpuset *pins)
{
	memset(pins, 0, cfg->vcpus * sizeof(*pins));
	for (uint32_t i = 0; i < cfg->sched.nr_pins; i++)
		if (cfg->sched.pins[i].vcpu < cfg->vcpus)
			pins[cfg->sched.pins[i].vcpu] = cfg->sched.pins[i].cpus;
	*p = (struct sched_vm_params){
		.nr_vcpus = cfg->vcpus,
		.policy = cfg->sched.policy,
		.quantum_ns = (uint64_t)cfg->sched.quantum_us * 1000,
		.skew_ns = (uint64_t)cfg->sched.skew_us * 1000,
		.has_cpus = cfg->sched.has_cpus,
		.cpus = cfg->sched.cpus,
		.pin = pins,
		.pvlock = cfg->pvlock.enabled || dvm_kvm_pv_calls(cfg),
		/* Steering means "to a running vCPU": under gang that takes running the VM. */
		.irq_boost = cfg->irq.steering,
	};
}

bool dvm_kvm_pv_calls(const struct vmdef *cfg)
{
	/* PV_UNHALT (kicks), PV_SEND_IPI, PV_SCHED_YIELD: "host" offers what KVM has. */
	return cfg->pvlock.kvm_features & ((1u << 7) | (1u << 11) | (1u << 13));
}

int dvm_sched_check(struct daemon *d, const struct vmdef *cfg, char *err, size_t err_len)
{
	unsigned cpus = sched_host_cpus(&d->host, cfg->sched.has_cpus ? &cfg->sched.cpus : NULL);

	if (cpus == 0) {
		snprintf(err, err_len, "\"sched.cpus\" names no CPU this host has");
		return -EINVAL;
	}
	if (cfg->sched.policy == VMDEF_SCHED_GANG && cfg->vcpus > cpus) {
		snprintf(
			err, err_len,
			"gang scheduling runs every vCPU at once, so it needs a host CPU per vCPU: "
			"%s has %u vCPUs and %u host CPUs; use \"mux\", \"relaxed\" or "
			"\"adaptive\"",
			cfg->name, cfg->vcpus, cpus);
		return -E2BIG;
	}
	return 0;
}

void dvm_sched_notes(struct dvm *vm, enum vmdef_sched_policy policy)
{
	struct daemon *d = vm->d;
	json_t *st, *w;
	size_t i;

	if (!vm->scheduled)
		return;
	if (policy == VMDEF_SCHED_ADAPTIVE)
		util_log(&d->log, UTIL_LOG_INFO, "VM %s: adaptive acts on %s%s%s%s%s", vm->cfg.name,
			 dvm_def(vm)->pvlock.enabled ? "pvlock episodes" : "no pvlock episodes",
			 dvm_kvm_pv_calls(dvm_def(vm)) ? ", KVM pv call episodes (Linux guests)" :
							 "",
			 d->host.ple == SCHED_PLE_EXPECTED ? " and PLE statistics (" :
							     "; PLE statistics are not expected (",
			 hostcheck_ple_why(d), ")");
	st = scheduler_stats_json(d->scheduler, vm->domain_id);
	json_array_foreach(json_object_get(st, "warnings"), i, w)
		util_log(&d->log, UTIL_LOG_WARN, "VM %s: %s", vm->cfg.name, json_string_value(w));
	json_decref(st);
}

void dvm_sched_attach(struct dvm *vm, int sched_fd)
{
	/* The run's own settings, live changes included (they survive a daemon restart). */
	const struct vmdef *def = dvm_def(vm);
	struct daemon *d = vm->d;
	struct util_cpuset *pins;
	struct sched_vm_params p;
	char err[256] = "";
	int ret, page_fd;

	if (vm->scheduled || !vm->worker || sched_fd < 0 || vm->worker->nr_vcpus != def->vcpus)
		return;
	pins = calloc(def->vcpus, sizeof(*pins));
	if (!pins)
		return;
	dvm_sched_params(def, &p, pins);
	/* The page itself, from the process the pidfd names (a pid may be reused; a path under
	 * /proc/PID/fd could name another process's file by then). */
	page_fd = pidfd_getfd(vm->worker->pidfd, sched_fd, 0);
	ret = page_fd < 0 ? -errno :
			    scheduler_attach(d->scheduler, vm->domain_id, vm->worker->pid, page_fd,
					     vm->worker->tids, def->vcpus, &p, err, sizeof(err));
	if (page_fd < 0)
		snprintf(err, sizeof(err), "cannot take the worker's sched page: %s",
			 strerror(-ret));
	else
		close(page_fd);
	if (ret)
		util_log(&d->log, UTIL_LOG_ERROR, "VM %s runs unscheduled: %s", vm->cfg.name,
			 err[0] ? err : strerror(-ret));
	else
		vm->scheduled = true;
	dvm_sched_notes(vm, def->sched.policy);
	free(pins);
}

void dvm_sched_detach(struct dvm *vm)
{
	if (!vm->scheduled)
		return;
	json_decref(vm->last_sched);
	vm->last_sched = scheduler_stats_json(vm->d->scheduler, vm->domain_id);
	scheduler_detach(vm->d->scheduler, vm->domain_id);
	vm->scheduled = false;
}
