/*
 * libvirt procedures about the host: NODE_GET_INFO (nodeinfo), NODE_GET_CPU_MAP, the
 * capabilities document, the hostname and the vCPU limit.
 *
 * Topology comes from the daemon's snapshot of it (daemon/topology.c), memory from sysinfo,
 * the clock from /proc/cpuinfo, online and present CPUs from sysfs.  libvirt's NODE_GET_INFO
 * counts sockets per NUMA node, cores per socket and threads per core.  Loop thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "daemon/virt/virt.h"

struct node_facts {
	unsigned cpus, nodes, sockets, cores, threads, mhz;
	uint64_t memory_kib;
};

static unsigned at_least_one(int n)
{
	return n > 0 ? (unsigned)n : 1;
}

static void node_facts(struct daemon *d, struct node_facts *f)
{
	struct topology_counts n;
	struct sysinfo si;
	char line[256];
	double mhz = 0;
	FILE *fp;

	*f = (struct node_facts){ .nodes = 1, .sockets = 1, .threads = 1 };
	f->cpus = at_least_one((int)sysconf(_SC_NPROCESSORS_ONLN));
	f->cores = f->cpus;
	if (topology_counts(d, &n)) {
		f->nodes = n.numa_nodes;
		f->sockets = n.packages >= f->nodes ? n.packages / f->nodes : 1;
		f->cores = n.cores / n.packages ? n.cores / n.packages : 1;
		f->threads = n.pus / n.cores ? n.pus / n.cores : 1;
	}
	if (sysinfo(&si) == 0)
		f->memory_kib = (uint64_t)si.totalram * si.mem_unit / 1024;
	fp = fopen("/proc/cpuinfo", "re");
	while (fp && fgets(line, sizeof(line), fp))
		if (strncmp(line, "cpu MHz", 7) == 0 && sscanf(strchr(line, ':') + 1, "%lf", &mhz))
			break;
	if (fp)
		fclose(fp);
	f->mhz = (unsigned)mhz;
}

/* A sysfs CPU list ("0-3,6") read into a set. */
static int read_cpu_list(const char *path, struct util_cpuset *set)
{
	size_t len;
	char *text;
	int ret;

	ret = util_read_file(path, 4096, &text, &len);
	if (ret)
		return ret;
	text[strcspn(text, "\n")] = '\0';
	ret = util_cpuset_parse(text, set);
	free(text);
	return ret;
}

static void node_info(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct api_xdr_out out;
	struct node_facts f;

	node_facts(c->srv->d, &f);
	api_xdr_out_init(&out, 512);
	api_xdr_put_chars(&out, "x86_64", 32, true);
	api_xdr_put_u64(&out, f.memory_kib);
	api_xdr_put_i32(&out, (int32_t)f.cpus);
	api_xdr_put_i32(&out, (int32_t)f.mhz);
	api_xdr_put_i32(&out, (int32_t)f.nodes);
	api_xdr_put_i32(&out, (int32_t)f.sockets);
	api_xdr_put_i32(&out, (int32_t)f.cores);
	api_xdr_put_i32(&out, (int32_t)f.threads);
	api_virt_reply(call, &out);
}

/* The host CPUs (present ones count; the map marks the online ones). */
static void cpu_map(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct util_cpuset present = { { 0 } }, online = { { 0 } };
	uint8_t map[UTIL_CPUSET_MAX / 8] = { 0 };
	unsigned ncpus = 0, nonline = 0;
	struct api_xdr_out out;

	if (read_cpu_list("/sys/devices/system/cpu/online", &online))
		for (long i = 0; i < sysconf(_SC_NPROCESSORS_ONLN) && i < UTIL_CPUSET_MAX; i++)
			util_cpuset_add(&online, (unsigned)i);
	if (read_cpu_list("/sys/devices/system/cpu/present", &present))
		present = online;
	for (unsigned i = 0; i < UTIL_CPUSET_MAX; i++) {
		if (util_cpuset_has(&present, i) || util_cpuset_has(&online, i))
			ncpus = i + 1;
		if (util_cpuset_has(&online, i)) {
			map[i / 8] |= (uint8_t)(1u << (i % 8));
			nonline++;
		}
	}
	api_xdr_out_init(&out, 512);
	api_xdr_put_var(&out, map, a->num[0] ? (ncpus + 7) / 8 : 0);
	api_xdr_put_u32(&out, a->num[1] ? nonline : 0);
	api_xdr_put_i32(&out, (int32_t)ncpus);
	api_virt_reply(call, &out);
}

static int host_cpus(struct daemon *d, struct domxml_host_cpu **out, unsigned *n)
{
	struct topology_cpu *tc;
	int ret = topology_cpus(d, &tc, n);

	*out = NULL;
	if (ret || !*n)
		return ret;
	*out = calloc(*n, sizeof(**out));
	for (unsigned i = 0; *out && i < *n; i++) {
		(*out)[i] = (struct domxml_host_cpu){ .id = tc[i].id,
						      .socket = tc[i].package,
						      .core = tc[i].core };
		util_strlcpy((*out)[i].siblings, tc[i].siblings, sizeof((*out)[i].siblings));
	}
	free(tc);
	return *out ? 0 : -ENOMEM;
}

/* An IOMMU the kernel drives registers itself under /sys/class/iommu. */
static bool host_has_iommu(void)
{
	DIR *dir = opendir("/sys/class/iommu");
	struct dirent *de;
	bool found = false;

	while (dir && !found && (de = readdir(dir)))
		found = de->d_name[0] != '.';
	if (dir)
		closedir(dir);
	return found;
}

static void capabilities(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct daemon *d = c->srv->d;
	struct domxml_host_cpu *cpus;
	struct domxml_host host;
	struct api_xdr_out out;
	struct node_facts f;
	char *xml;

	node_facts(d, &f);
	host = (struct domxml_host){
		.arch = "x86_64",
		.emulator = d->opts.vm_binary,
		.machine = "lockstep",
		.max_vcpus = VMDEF_VCPUS_MAX,
		.sockets = f.sockets * f.nodes,
		.cores = f.cores,
		.threads = f.threads,
		.memory_kib = f.memory_kib,
		.iommu = host_has_iommu(),
	};
	if (host_cpus(d, &cpus, &host.nr_cpus)) {
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot list the host CPUs");
		return;
	}
	host.cpus = cpus;
	xml = domxml_capabilities(&host);
	free(cpus);
	if (!xml) {
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot format the capabilities");
		return;
	}
	api_xdr_out_init(&out, VIRT_STRING_MAX + 8);
	api_xdr_put_string(&out, xml);
	free(xml);
	api_virt_reply(call, &out);
}

static void hostname(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct api_xdr_out out;
	char name[256];

	if (gethostname(name, sizeof(name)) < 0) {
		api_virt_fail(call, VIRT_ERR_SYSTEM_ERROR, "cannot read the hostname: %s",
			      strerror(errno));
		return;
	}
	name[sizeof(name) - 1] = '\0';
	api_xdr_out_init(&out, 512);
	api_xdr_put_string(&out, name);
	api_virt_reply(call, &out);
}

static void max_vcpus(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	if (a->has_str && strcasecmp(a->str, "kvm") != 0 && strcasecmp(a->str, "lockstep") != 0) {
		api_virt_fail(call, VIRT_ERR_INVALID_ARG, "unknown virtualization type '%.32s'",
			      a->str);
		return;
	}
	virt_reply_int(call, VMDEF_VCPUS_MAX);
}

const struct api_virt_handler virt_host_handlers[] = {
	{ VIRT_PROC_NODE_GET_INFO, node_info, 0 },
	{ VIRT_PROC_NODE_GET_CPU_MAP, cpu_map, 0 },
	{ VIRT_PROC_CONNECT_GET_CAPABILITIES, capabilities, 0 },
	{ VIRT_PROC_CONNECT_GET_HOSTNAME, hostname, 0 },
	{ VIRT_PROC_CONNECT_GET_MAX_VCPUS, max_vcpus, 0 },
};

const size_t virt_nr_host_handlers = sizeof(virt_host_handlers) / sizeof(virt_host_handlers[0]);
