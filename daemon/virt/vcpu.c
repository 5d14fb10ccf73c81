/*
 * libvirt procedures about vCPUs: GET_VCPUS (vcpuinfo of a running domain: state, CPU time and
 * host CPU of each vCPU thread, from /proc, and its affinity), GET_VCPUS_FLAGS (vcpucount),
 * GET_VCPU_PIN_INFO (vcpupin without a CPU list, and vcpuinfo of a shut-off domain) and
 * PIN_VCPU[_FLAGS], which is ops_pin.
 *
 * Live information is about the worker's vCPU threads (their tids come with its hello); config
 * information is the definition's sched.pin, else sched.cpus, else every online host CPU.  CPU
 * maps are libvirt's: byte i/8, bit i%8 for host CPU i, `maplen` bytes per vCPU.
 * Loop thread only.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/virt/virt.h"

static int vcpu_tid(const struct dvm *vm, unsigned i)
{
	return vm->worker && i < vm->worker->nr_vcpus ? vm->worker->tids[i] : -1;
}

static unsigned live_vcpus(const struct dvm *vm)
{
	return vm->worker ? vm->worker->nr_vcpus : 0;
}

static void set_bits(uint8_t *map, size_t maplen, const struct util_cpuset *cpus)
{
	for (unsigned c = 0; c < maplen * 8 && c < UTIL_CPUSET_MAX; c++)
		if (util_cpuset_has(cpus, c))
			map[c / 8] |= (uint8_t)(1u << (c % 8));
}

static void live_affinity(const struct dvm *vm, unsigned vcpu, struct util_cpuset *out)
{
	int tid = vcpu_tid(vm, vcpu);
	cpu_set_t set;

	memset(out, 0, sizeof(*out));
	if (tid <= 0 || sched_getaffinity(tid, sizeof(set), &set) < 0)
		return;
	for (unsigned c = 0; c < CPU_SETSIZE && c < UTIL_CPUSET_MAX; c++)
		if (CPU_ISSET(c, &set))
			util_cpuset_add(out, c);
}

static void config_affinity(const struct vmdef *cfg, unsigned vcpu, struct util_cpuset *out)
{
	for (uint32_t i = 0; i < cfg->sched.nr_pins; i++) {
		if (cfg->sched.pins[i].vcpu == vcpu) {
			*out = cfg->sched.pins[i].cpus;
			return;
		}
	}
	if (cfg->sched.has_cpus) {
		*out = cfg->sched.cpus;
		return;
	}
	memset(out, 0, sizeof(*out));
	for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN) && c < UTIL_CPUSET_MAX; c++)
		util_cpuset_add(out, (unsigned)c);
}

/* Checks a reply's map dimensions against the protocol's limits. */
static bool maps_fit(struct api_virt_call *call, int32_t count, int32_t maplen, uint32_t max)
{
	if (count < 0 || (uint32_t)count > max || maplen <= 0 ||
	    (uint64_t)count * (uint64_t)maplen > VIRT_CPUMAPS_MAX) {
		api_virt_fail(call, VIRT_ERR_INVALID_ARG,
			      "%d maps of %d bytes are out of range (at most %u maps, %u bytes)",
			      count, maplen, max, VIRT_CPUMAPS_MAX);
		return false;
	}
	return true;
}

static void get_vcpus(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	int32_t maxinfo = a->num[0], maplen = a->num[1];
	struct api_xdr_out out;
	uint8_t *maps;
	unsigned n;

	if (!vm || !maps_fit(call, maxinfo, maplen, VIRT_VCPUINFO_MAX))
		return;
	if (!virt_active(vm) || !live_vcpus(vm)) {
		api_virt_fail(call, VIRT_ERR_OPERATION_INVALID, "domain is not running");
		return;
	}
	n = live_vcpus(vm) < (unsigned)maxinfo ? live_vcpus(vm) : (unsigned)maxinfo;
	maps = calloc(n ? n : 1, (size_t)maplen);
	if (!maps) {
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot build the vCPU maps");
		return;
	}
	api_xdr_out_init(&out, VIRT_PACKET_MAX);
	api_xdr_put_u32(&out, n);
	for (unsigned i = 0; i < n; i++) {
		struct util_cpuset aff;
		uint64_t cpu_ns = 0;
		int cpu = -1;
		char state = '?';

		virt_thread_stat(vm->worker->pid, vcpu_tid(vm, i), &cpu_ns, &cpu, &state);
		api_xdr_put_u32(&out, i);
		/* A halted vCPU sleeps in KVM_RUN, a descheduled one waits at its gate. */
		api_xdr_put_i32(&out, state == 'R' ? VIRT_VCPU_RUNNING : VIRT_VCPU_BLOCKED);
		api_xdr_put_u64(&out, cpu_ns);
		api_xdr_put_i32(&out, cpu);
		live_affinity(vm, i, &aff);
		set_bits(maps + (size_t)i * (size_t)maplen, (size_t)maplen, &aff);
	}
	api_xdr_put_var(&out, maps, (size_t)n * (size_t)maplen);
	free(maps);
	api_virt_reply(call, &out);
}

static bool live_or_config(struct api_virt_call *call, const struct dvm *vm, uint32_t flags,
			   bool *live)
{
	if ((flags & VIRT_AFFECT_LIVE) && (flags & VIRT_AFFECT_CONFIG)) {
		api_virt_fail(call, VIRT_ERR_INVALID_ARG, "--live and --config are exclusive here");
		return false;
	}
	*live = (flags & VIRT_AFFECT_LIVE) || (!(flags & VIRT_AFFECT_CONFIG) && virt_active(vm));
	if (*live && !virt_active(vm)) {
		api_virt_fail(call, VIRT_ERR_OPERATION_INVALID, "domain is not running");
		return false;
	}
	return true;
}

static void get_vcpus_flags(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	bool live;

	if (!vm || !live_or_config(call, vm, a->flags, &live))
		return;
	/* No vCPU hotplug: the maximum is the current count. */
	virt_reply_int(call, (int32_t)(live && live_vcpus(vm) ? live_vcpus(vm) : vm->cfg.vcpus));
}

static void get_pin_info(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	int32_t ncpumaps = a->num[0], maplen = a->num[1];
	struct api_xdr_out out;
	unsigned n, vcpus;
	uint8_t *maps;
	bool live;

	if (!vm || !maps_fit(call, ncpumaps, maplen, VMDEF_VCPUS_MAX) ||
	    !live_or_config(call, vm, a->flags, &live))
		return;
	vcpus = live && live_vcpus(vm) ? live_vcpus(vm) : vm->cfg.vcpus;
	n = vcpus < (unsigned)ncpumaps ? vcpus : (unsigned)ncpumaps;
	maps = calloc(n ? n : 1, (size_t)maplen);
	if (!maps) {
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot build the vCPU maps");
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		struct util_cpuset aff;

		if (live)
			live_affinity(vm, i, &aff);
		else
			config_affinity(&vm->cfg, i, &aff);
		set_bits(maps + (size_t)i * (size_t)maplen, (size_t)maplen, &aff);
	}
	api_xdr_out_init(&out, VIRT_PACKET_MAX);
	api_xdr_put_var(&out, maps, (size_t)n * (size_t)maplen);
	api_xdr_put_i32(&out, (int32_t)n);
	free(maps);
	api_virt_reply(call, &out);
}

/*
 * PIN_VCPU (26) pins the running vCPU, or the definition of a shut-off domain; with flags,
 * --live needs a running domain and --config stores the pin (ops_pin also pins a running
 * vCPU when asked for --config alone).
 */
static void pin_vcpu(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	struct util_cpuset cpus = { { 0 } };
	unsigned affect = 0;
	bool live, stored;
	char err[256];
	int ret;

	if (!vm)
		return;
	for (uint32_t c = 0; c < a->map_len * 8 && c < UTIL_CPUSET_MAX; c++)
		if (a->map[c / 8] & (1u << (c % 8)))
			util_cpuset_add(&cpus, c);
	if (a->flags & VIRT_AFFECT_LIVE)
		affect |= OPS_AFFECT_LIVE;
	if (a->flags & VIRT_AFFECT_CONFIG)
		affect |= OPS_AFFECT_CONFIG;
	ret = ops_pin(vm, (uint32_t)a->num[0], &cpus, affect, &live, &stored, err, sizeof(err));
	if (ret)
		virt_fail_err(call, ret, err);
	else
		api_virt_reply(call, NULL);
}

const struct api_virt_handler virt_vcpu_handlers[] = {
	{ VIRT_PROC_DOMAIN_GET_VCPUS, get_vcpus, 0 },
	{ VIRT_PROC_DOMAIN_GET_VCPUS_FLAGS, get_vcpus_flags,
	  VIRT_AFFECT_LIVE | VIRT_AFFECT_CONFIG | VIRT_VCPU_MAXIMUM },
	{ VIRT_PROC_DOMAIN_GET_VCPU_PIN_INFO, get_pin_info, VIRT_AFFECT_LIVE | VIRT_AFFECT_CONFIG },
	{ VIRT_PROC_DOMAIN_PIN_VCPU, pin_vcpu, 0 },
	{ VIRT_PROC_DOMAIN_PIN_VCPU_FLAGS, pin_vcpu, VIRT_AFFECT_LIVE | VIRT_AFFECT_CONFIG },
};

const size_t virt_nr_vcpu_handlers = sizeof(virt_vcpu_handlers) / sizeof(virt_vcpu_handlers[0]);
