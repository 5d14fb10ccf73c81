/*
 * The host's CPU topology from hwloc: packages, NUMA nodes, cores and their hardware threads.
 * Loaded once at start (the topology of a running host does not change under us; CPU hotplug
 * is out of scope) and reported by daemon.info and the libvirt endpoint (nodeinfo,
 * capabilities); the scheduler places vCPUs with it.  The only user of hwloc.
 */
#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

static unsigned at_least_one(int n)
{
	return n > 0 ? (unsigned)n : 1;
}

int topology_init(struct daemon *d)
{
	hwloc_topology_t topo;

	if (hwloc_topology_init(&topo) < 0)
		return -ENOMEM;
	if (hwloc_topology_load(topo) < 0) {
		hwloc_topology_destroy(topo);
		return -EIO;
	}
	d->topology = topo;
	return 0;
}

void topology_fini(struct daemon *d)
{
	if (d->topology)
		hwloc_topology_destroy((hwloc_topology_t)d->topology);
	d->topology = NULL;
}

static json_t *cpuset_json(hwloc_const_bitmap_t set)
{
	char *s = NULL;
	json_t *j;

	if (hwloc_bitmap_list_asprintf(&s, set) < 0)
		return json_null();
	j = json_string(s);
	free(s);
	return j;
}

static json_t *objects_json(hwloc_topology_t topo, hwloc_obj_type_t type)
{
	int n = hwloc_get_nbobjs_by_type(topo, type);
	json_t *list = json_array();

	for (int i = 0; i < n; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, (unsigned)i);
		json_t *e = json_pack("{s:i, s:o}", "index", (int)o->logical_index, "cpus",
				      cpuset_json(o->cpuset));

		if (type == HWLOC_OBJ_NUMANODE && o->attr)
			json_object_set_new(
				e, "memory_mib",
				json_integer((json_int_t)(o->attr->numanode.local_memory >> 20)));
		json_array_append_new(list, e);
	}
	return list;
}

json_t *topology_json(struct daemon *d)
{
	hwloc_topology_t topo = d->topology;
	int cores, pus;

	if (!topo)
		return json_null();
	cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
	pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
	return json_pack("{s:i, s:i, s:i, s:b, s:o, s:o, s:o}", "packages",
			 hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE), "cores", cores, "cpus",
			 pus, "smt", pus > cores, "numa_nodes",
			 objects_json(topo, HWLOC_OBJ_NUMANODE), "core_list",
			 objects_json(topo, HWLOC_OBJ_CORE), "allowed_cpus",
			 cpuset_json(hwloc_topology_get_allowed_cpuset(topo)));
}

void topology_sched_host(struct daemon *d, struct sched_host *host)
{
	hwloc_topology_t topo = d->topology;
	hwloc_const_cpuset_t allowed;
	int n;

	memset(host, 0, sizeof(*host));
	if (!topo) {
		/* No topology: every online CPU its own core. */
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		for (long i = 0; i < cpus && i < SCHED_MAX_CPUS; i++)
			host->cpu[host->nr_cpus++] =
				(struct sched_cpu){ .os_index = (uint32_t)i, .core = (uint32_t)i };
		return;
	}
	allowed = hwloc_topology_get_allowed_cpuset(topo);
	n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
	for (int i = 0; i < n && host->nr_cpus < SCHED_MAX_CPUS; i++) {
		hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)i);
		hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
		hwloc_obj_t node = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_NUMANODE, pu);

		if (!hwloc_bitmap_isset(allowed, pu->os_index))
			continue;
		host->cpu[host->nr_cpus++] = (struct sched_cpu){
			.os_index = pu->os_index,
			.core = core ? core->logical_index : pu->logical_index,
			.numa = node ? node->logical_index : 0,
		};
	}
}

bool topology_counts(struct daemon *d, struct topology_counts *c)
{
	hwloc_topology_t topo = d->topology;

	if (!topo)
		return false;
	*c = (struct topology_counts){
		.pus = at_least_one(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU)),
		.cores = at_least_one(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE)),
		.packages = at_least_one(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE)),
		.numa_nodes = at_least_one(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE)),
	};
	return true;
}

int topology_cpus(struct daemon *d, struct topology_cpu **out, unsigned *n)
{
	hwloc_topology_t topo = d->topology;
	int pus = topo ? hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU) : 0;
	struct topology_cpu *cpus;

	*out = NULL;
	*n = 0;
	if (pus <= 0)
		return 0;
	cpus = calloc((size_t)pus, sizeof(*cpus));
	if (!cpus)
		return -ENOMEM;
	for (int i = 0; i < pus; i++) {
		hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)i);
		hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
		hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pu);

		cpus[i].id = pu->os_index;
		cpus[i].package = pkg ? pkg->logical_index : 0;
		cpus[i].core = core ? core->logical_index : pu->logical_index;
		if (hwloc_bitmap_list_snprintf(cpus[i].siblings, sizeof(cpus[i].siblings),
					       core ? core->cpuset : pu->cpuset) < 0)
			snprintf(cpus[i].siblings, sizeof(cpus[i].siblings), "%u", pu->os_index);
	}
	*out = cpus;
	*n = (unsigned)pus;
	return 0;
}
