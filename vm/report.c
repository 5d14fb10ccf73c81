/*
 * End-of-run statistics (`lockstep-vm --stats`, `--stats-json`): start-up time to the first
 * serial byte, per-vCPU exits, kicks and kick latency, the KVM statistics that matter for SMP
 * guests, and doorbell use.  Called by the control thread after the vCPU threads have been
 * joined, so the per-vCPU counters are stable.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pvlock/abi.h"
#include "vm/vm_internal.h"

/* KVM statistics worth showing for an SMP guest; absent ones are skipped. */
static const char *const kvm_stat_names[] = {
	"exits",
	"halt_exits",
	"halt_wakeup",
	"io_exits",
	"mmio_exits",
	"signal_exits",
	"insn_emulation",
	"hypercalls",
	"irq_injections",
	"directed_yield_attempted",
	"directed_yield_successful",
	"preemption_reported",
};

static const char *const call_names[] = { "probe",    "nop",	      "wait",	 "kick",
					  "yield_to", "shared_setup", "time_ns", "switch" };

static double ms_since(uint64_t from, uint64_t to)
{
	return to > from ? (double)(to - from) / 1e6 : 0.0;
}

static json_t *vcpu_json(struct vm_vcpu *v)
{
	const struct vm_vcpu_counters *c = &v->counters;
	json_t *kvm = json_object();
	json_t *obj;

	for (size_t i = 0; v->stats && i < sizeof(kvm_stat_names) / sizeof(kvm_stat_names[0]);
	     i++) {
		uint64_t value;

		if (hv_stats_read_one(v->stats, kvm_stat_names[i], &value) == 0)
			json_object_set_new(kvm, kvm_stat_names[i],
					    json_integer((json_int_t)value));
	}
	obj = json_pack("{s:i, s:i, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:{s:I, s:I, s:I}, s:o}",
			"vcpu", (int)v->index, "tid", atomic_load(&v->tid), "exits", "io",
			(json_int_t)c->exits_io, "mmio", (json_int_t)c->exits_mmio, "intr",
			(json_int_t)c->exits_intr, "other", (json_int_t)c->exits_other,
			"unassigned_io", (json_int_t)c->unassigned_io, "kicks",
			(json_int_t)c->kicks, "kick_latency_ns", "median",
			(json_int_t)util_samples_percentile(&v->kick_latency, 50), "p99",
			(json_int_t)util_samples_percentile(&v->kick_latency, 99), "max",
			(json_int_t)v->kick_latency.max, "kvm", kvm);
	return obj;
}

json_t *vm_report_json(struct vm *vm)
{
	struct vm_console_stats con = { 0 };
	struct vm_doorbell_stats db = { .errors = 0 };
	json_t *vcpus = json_array(), *calls = json_object(), *obj;
	uint64_t now = util_now_ns();

	if (vm->uart)
		vm_uart_stats(vm->uart, &con);
	if (vm->doorbell)
		vm_doorbell_stats(vm->doorbell, &db);
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		json_array_append_new(vcpus, vcpu_json(&vm->vcpus[i]));
	for (size_t i = 0; i < sizeof(call_names) / sizeof(call_names[0]); i++)
		json_object_set_new(calls, call_names[i], json_integer((json_int_t)db.calls[i]));
	obj = json_pack("{s:s, s:i, s:I, s:i, s:i, s:f, s:o, s:I, s:o, s:{s:o, s:I}, s:I}", "name",
			vm->cfg.name, "vcpus", (int)vm->nr_vcpus, "memory_mib",
			(json_int_t)(vm->cfg.memory >> 20), "host_cpus", (int)vm->host_cpus,
			"tsc_khz", (int)vm->tsc_khz, "run_ms", ms_since(vm->start_ns, now),
			"first_serial_byte_ms",
			con.first_byte_ns ? json_real(ms_since(vm->start_ns, con.first_byte_ns)) :
					    json_null(),
			"serial_bytes", (json_int_t)con.bytes, "vcpu", vcpus, "doorbell", "calls",
			calls, "errors", (json_int_t)db.errors, "probe_kicks_sent",
			(json_int_t)vm->probe_kicks_sent);
	if (obj && vm->lockwatch)
		json_object_set_new(obj, "pvlock", vm_lockwatch_json(vm->lockwatch));
	if (obj)
		json_object_set_new(obj, "kvm_pv_features", vm_kvm_features_json(vm));
	if (obj && vm->irq)
		json_object_set_new(obj, "irq", vm_irq_json(vm));
	if (obj)
		json_object_set_new(obj, "sandbox", vm_jail_json(vm->jail));
	if (obj && vm->passthrough)
		json_object_set_new(obj, "passthrough", vm_passthrough_json(vm));
	return obj;
}

/* One line per vCPU of pvlock calls and detected preemption, where anything happened. */
static void print_pvlock(FILE *out, struct vm *vm)
{
	json_t *pv = vm_lockwatch_json(vm->lockwatch), *v;
	bool header = false;
	size_t i;

	json_array_foreach(json_object_get(pv, "vcpu"), i, v) {
		json_t *ev = json_object_get(v, "culprit_events");
		long long waits = (long long)json_integer_value(json_object_get(v, "waits"));
		long long lhp = (long long)json_integer_value(json_object_get(ev, "lhp"));
		long long lwp = (long long)json_integer_value(json_object_get(ev, "lwp"));
		long long ple = (long long)json_integer_value(json_object_get(ev, "ple"));
		long long kvm = (long long)json_integer_value(json_object_get(ev, "kvm"));

		if (!waits && !lhp && !lwp && !ple && !kvm)
			continue;
		if (!header)
			fprintf(out, "  %-5s %8s %8s %8s %8s %6s %6s %6s %6s\n", "vcpu", "waits",
				"woken", "timeout", "wait ms", "lhp", "lwp", "ple", "kvm");
		header = true;
		fprintf(out, "  %-5zu %8lld %8lld %8lld %8.1f %6lld %6lld %6lld %6lld\n", i, waits,
			(long long)json_integer_value(json_object_get(v, "waits_woken")),
			(long long)json_integer_value(json_object_get(v, "waits_timeout")),
			json_real_value(json_object_get(v, "wait_ms")), lhp, lwp, ple, kvm);
	}
	json_decref(pv);
}

static void print_sandbox(FILE *out, const struct vm_jail *j)
{
	char cg[2 * PATH_MAX + 32];

	if (!j || !j->enabled) {
		fprintf(out, "  sandbox             none\n");
		return;
	}
	sandbox_cgroup_describe(&j->cgroup, cg, sizeof(cg));
	fprintf(out,
		"  sandbox             uid %d%s%s, seccomp %u/%u/%u/%u calls "
		"(control/vCPU/devices/irq-steer), %s%s\n",
		(int)j->uid, j->privileged ? " " : "", j->privileged ? j->user.name : "",
		j->syscalls[VM_THREAD_CONTROL], j->syscalls[VM_THREAD_VCPU],
		j->syscalls[VM_THREAD_DEVICES], j->syscalls[VM_THREAD_STEERING],
		j->namespaces ? "own pid/mnt/net/ipc namespaces, empty root, " : "", cg);
}

void vm_report_text(struct vm *vm, int fd)
{
	struct vm_console_stats con = { 0 };
	struct vm_doorbell_stats db = { .errors = 0 };
	FILE *out = fdopen(dup(fd), "w");

	if (!out)
		return;
	if (vm->uart)
		vm_uart_stats(vm->uart, &con);
	if (vm->doorbell)
		vm_doorbell_stats(vm->doorbell, &db);
	fprintf(out, "lockstep-vm statistics: %s, %u vCPUs on %ld host CPUs, %llu MiB\n",
		vm->cfg.name, vm->nr_vcpus, vm->host_cpus,
		(unsigned long long)(vm->cfg.memory >> 20));
	if (con.first_byte_ns)
		fprintf(out, "  first serial byte   %.2f ms after process start\n",
			ms_since(vm->start_ns, con.first_byte_ns));
	fprintf(out, "  run time            %.1f ms, %llu serial bytes\n",
		ms_since(vm->start_ns, util_now_ns()), (unsigned long long)con.bytes);
	fprintf(out, "  doorbell calls      probe %llu, nop %llu, time %llu, errors %llu\n",
		(unsigned long long)db.calls[LKS_CALL_PROBE],
		(unsigned long long)db.calls[LKS_CALL_NOP],
		(unsigned long long)db.calls[LKS_CALL_TIME_NS], (unsigned long long)db.errors);
	fprintf(out, "  %-5s %8s %8s %8s %8s %8s %7s %12s %12s\n", "vcpu", "pio", "mmio", "intr",
		"halts", "hcalls", "kicks", "kick med us", "kick p99 us");
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		struct vm_vcpu *v = &vm->vcpus[i];
		uint64_t halts = 0, hcalls = 0;

		if (v->stats) {
			hv_stats_read_one(v->stats, "halt_exits", &halts);
			hv_stats_read_one(v->stats, "hypercalls", &hcalls);
		}
		fprintf(out, "  %-5u %8llu %8llu %8llu %8llu %8llu %7llu %12.1f %12.1f\n", v->index,
			(unsigned long long)v->counters.exits_io,
			(unsigned long long)v->counters.exits_mmio,
			(unsigned long long)v->counters.exits_intr, (unsigned long long)halts,
			(unsigned long long)hcalls, (unsigned long long)v->counters.kicks,
			(double)util_samples_percentile(&v->kick_latency, 50) / 1e3,
			(double)util_samples_percentile(&v->kick_latency, 99) / 1e3);
	}
	if (vm->lockwatch)
		print_pvlock(out, vm);
	print_sandbox(out, vm->jail);
	fclose(out);
}
