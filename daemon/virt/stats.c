/*
 * libvirt's statistics calls, answered with what lockstep has: CONNECT_GET_ALL_DOMAIN_STATS
 * (virsh domstats: the state, cpu, balloon and vcpu groups; lockstep has no interfaces,
 * disks, perf counters or iothreads, so those groups are absent, and refused when the client
 * enforces them), DOMAIN_MEMORY_STATS (dommemstat: the guest's RAM, which no balloon changes,
 * and the worker's resident set) and DOMAIN_INTERFACE_ADDRESSES (domifaddr: lockstep VMs have
 * no network interfaces, so none).  The figures come from /proc of the worker and its vCPU
 * threads.  Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/virt/virt.h"

/* virDomainStatsTypes */
#define STATS_STATE (1u << 0)
#define STATS_CPU_TOTAL (1u << 1)
#define STATS_BALLOON (1u << 2)
#define STATS_VCPU (1u << 3)
#define STATS_HAVE (STATS_STATE | STATS_CPU_TOTAL | STATS_BALLOON | STATS_VCPU)
#define STATS_ALL_KNOWN 0x3ffu /* up to DIRTYRATE in libvirt 9.0.0 */
/* virConnectGetAllDomainStatsFlags beyond the list filters CONNECT_LIST_ALL_DOMAINS shares */
#define STATS_LIST_FILTERS 0xffu
#define STATS_NOWAIT (1u << 29)
#define STATS_BACKING (1u << 30)
#define STATS_ENFORCE (1u << 31)
/* virTypedParameterType */
#define PARAM_INT 1
#define PARAM_UINT 2
#define PARAM_ULLONG 4
/* virDomainMemoryStatTags */
#define MEMSTAT_ACTUAL_BALLOON 6
#define MEMSTAT_RSS 7
#define MEMSTATS_MAX 1024u /* REMOTE_DOMAIN_MEMORY_STATS_MAX */

struct params {
	struct api_xdr_out out;
	uint32_t n;
};

static void param_head(struct params *p, const char *field, int32_t type)
{
	api_xdr_put_string(&p->out, field);
	api_xdr_put_i32(&p->out, type);
	p->n++;
}

static void param_int(struct params *p, const char *field, int32_t v)
{
	param_head(p, field, PARAM_INT);
	api_xdr_put_i32(&p->out, v);
}

static void param_uint(struct params *p, const char *field, uint32_t v)
{
	param_head(p, field, PARAM_UINT);
	api_xdr_put_u32(&p->out, v);
}

static void param_ullong(struct params *p, const char *field, uint64_t v)
{
	param_head(p, field, PARAM_ULLONG);
	api_xdr_put_u64(&p->out, v);
}

/* VmRSS of the worker in KiB, 0 if it cannot be read. */
static uint64_t rss_kib(pid_t pid)
{
	char path[64], *text, *line;
	unsigned long long kib = 0;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (util_read_text(path, 1u << 16, &text, &len))
		return 0;
	line = strstr(text, "\nVmRSS:");
	if (line && sscanf(line + 7, "%llu", &kib) != 1)
		kib = 0;
	free(text);
	return kib;
}

static uint64_t ticks_ns(uint64_t ticks)
{
	long hz = sysconf(_SC_CLK_TCK);

	return hz > 0 ? ticks * (1000000000ull / (unsigned long long)hz) : 0;
}

/* One domain's record: its name, then the groups asked for that lockstep has. */
static void record(struct api_xdr_out *out, const struct dvm *vm, uint32_t groups)
{
	const struct vmdef *def = dvm_def(vm);
	struct util_proc_stat st;
	struct params p = { .n = 0 };
	int reason, state = virt_domain_state(vm, &reason);
	char field[64];

	api_xdr_out_init(&p.out, 1u << 20);
	if (groups & STATS_STATE) {
		param_int(&p, "state.state", state);
		param_int(&p, "state.reason", reason);
	}
	if ((groups & STATS_CPU_TOTAL) && vm->worker &&
	    util_proc_stat_read((int)vm->worker->pid, 0, &st) == 0) {
		param_ullong(&p, "cpu.time", ticks_ns(st.utime + st.stime));
		param_ullong(&p, "cpu.user", ticks_ns(st.utime));
		param_ullong(&p, "cpu.system", ticks_ns(st.stime));
	}
	if (groups & STATS_BALLOON) {
		/* No balloon: the guest has all of its RAM, always. */
		param_ullong(&p, "balloon.current", def->memory >> 10);
		param_ullong(&p, "balloon.maximum", def->memory >> 10);
		if (vm->worker)
			param_ullong(&p, "balloon.rss", rss_kib(vm->worker->pid));
	}
	if (groups & STATS_VCPU) {
		param_uint(&p, "vcpu.current", def->vcpus);
		param_uint(&p, "vcpu.maximum", def->vcpus);
		for (uint32_t i = 0; vm->worker && i < vm->worker->nr_vcpus; i++) {
			int tid = vm->worker->tids[i];

			if (tid <= 0 || util_proc_stat_read((int)vm->worker->pid, tid, &st))
				continue;
			snprintf(field, sizeof(field), "vcpu.%u.state", i);
			/* virVcpuState: 1 running, 2 blocked (halted, or waiting at its gate) */
			param_int(&p, field, st.state == 'R' ? 1 : 2);
			snprintf(field, sizeof(field), "vcpu.%u.time", i);
			param_ullong(&p, field, ticks_ns(st.utime + st.stime));
		}
	}
	virt_put_domain(out, vm);
	api_xdr_put_u32(out, p.n);
	api_xdr_put_fixed(out, p.out.buf, p.out.len);
	out->failed |= p.out.failed;
	api_xdr_out_fini(&p.out);
}

static void all_domain_stats(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	uint32_t groups = (uint32_t)a->num[0], filters = a->flags & STATS_LIST_FILTERS;
	struct api_xdr_out out, recs;
	struct util_list *pos;
	uint32_t n = 0;

	if (a->flags & ~(STATS_LIST_FILTERS | STATS_NOWAIT | STATS_BACKING | STATS_ENFORCE)) {
		api_virt_fail(call, VIRT_ERR_INVALID_ARG, "unsupported flags (0x%x) in %s",
			      a->flags & ~(STATS_LIST_FILTERS | STATS_NOWAIT | STATS_BACKING |
					   STATS_ENFORCE),
			      "CONNECT_GET_ALL_DOMAIN_STATS");
		return;
	}
	if (a->nr_doms && filters) {
		api_virt_fail(call, VIRT_ERR_INVALID_ARG,
			      "domain filters cannot be combined with a list of domains");
		return;
	}
	if ((a->flags & STATS_ENFORCE) && (groups & ~STATS_HAVE)) {
		api_virt_fail(
			call, VIRT_ERR_ARGUMENT_UNSUPPORTED,
			"lockstep has no statistics of the groups 0x%x: only state, cpu-total, "
			"balloon and vcpu (no interfaces, disks, perf counters, iothreads)",
			groups & ~STATS_HAVE);
		return;
	}
	groups = groups ? groups & STATS_HAVE : STATS_HAVE;
	api_xdr_out_init(&recs, VIRT_PACKET_MAX);
	if (a->nr_doms) {
		for (uint32_t i = 0; i < a->nr_doms; i++) {
			char uuid[37];
			struct dvm *vm;

			api_virt_uuid_format(a->dom_uuids[i], uuid);
			vm = registry_find_uuid(c->srv->d, uuid);
			if (!vm) {
				api_xdr_out_fini(&recs);
				api_virt_fail(call, VIRT_ERR_NO_DOMAIN,
					      "no domain with matching uuid '%s'", uuid);
				return;
			}
			record(&recs, vm, groups);
			n++;
		}
	} else {
		util_list_for_each(pos, &c->srv->d->vms) {
			struct dvm *vm = util_container_of(pos, struct dvm, link);

			if (n >= VIRT_DOMAIN_LIST_MAX || !virt_list_matches(vm, filters))
				continue;
			record(&recs, vm, groups);
			n++;
		}
	}
	api_xdr_out_init(&out, VIRT_PACKET_MAX);
	api_xdr_put_u32(&out, n);
	api_xdr_put_fixed(&out, recs.buf, recs.len);
	out.failed |= recs.failed;
	api_xdr_out_fini(&recs);
	api_virt_reply(call, &out);
}

static bool running(struct api_virt_call *call, const struct dvm *vm)
{
	if (virt_active(vm))
		return true;
	api_virt_fail(call, VIRT_ERR_OPERATION_INVALID, "domain is not running");
	return false;
}

static void memory_stats(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	uint32_t max = (uint32_t)a->num[0], n = 0;
	struct api_xdr_out out;
	uint64_t rss;

	if (!vm || !running(call, vm))
		return;
	if (max > MEMSTATS_MAX) {
		api_virt_fail(call, VIRT_ERR_INVALID_ARG, "maxStats %u is over %u", max,
			      MEMSTATS_MAX);
		return;
	}
	rss = rss_kib(vm->worker->pid);
	api_xdr_out_init(&out, 64);
	api_xdr_put_u32(&out, max < 2 ? max : 2);
	if (n++ < max) {
		api_xdr_put_i32(&out, MEMSTAT_ACTUAL_BALLOON);
		api_xdr_put_u64(&out, dvm_def(vm)->memory >> 10);
	}
	if (n++ < max) {
		api_xdr_put_i32(&out, MEMSTAT_RSS);
		api_xdr_put_u64(&out, rss);
	}
	api_virt_reply(call, &out);
}

static void interface_addresses(void *ctx, struct api_virt_call *call,
				const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	struct api_xdr_out out;

	if (!vm || !running(call, vm))
		return;
	if ((uint32_t)a->num[0] > 2) { /* lease, agent, arp */
		api_virt_fail(call, VIRT_ERR_INVALID_ARG, "unknown address source %u",
			      (uint32_t)a->num[0]);
		return;
	}
	api_xdr_out_init(&out, 16);
	api_xdr_put_u32(&out, 0); /* a lockstep VM has no network interface */
	api_virt_reply(call, &out);
}

const struct api_virt_handler virt_stats_handlers[] = {
	{ VIRT_PROC_CONNECT_GET_ALL_DOMAIN_STATS, all_domain_stats, UINT32_MAX },
	{ VIRT_PROC_DOMAIN_MEMORY_STATS, memory_stats, 0 },
	{ VIRT_PROC_DOMAIN_INTERFACE_ADDRESSES, interface_addresses, 0 },
};

const size_t virt_nr_stats_handlers = sizeof(virt_stats_handlers) / sizeof(virt_stats_handlers[0]);
