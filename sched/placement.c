/*
 * Placement of a VM's vCPUs on host CPUs: one vCPU per core first (cores do not share
 * execution units), then the remaining SMT siblings, then sharing CPUs round-robin when the
 * VM is wider than its CPUs.  Within a NUMA node before spilling to the next, following the
 * host description's order (which lockstepd builds from hwloc in topology order).
 */
#include <string.h>

#include "sched/sched.h"

unsigned sched_host_cpus(const struct sched_host *host, const struct util_cpuset *allowed)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < host->nr_cpus; i++)
		n += !allowed || util_cpuset_has(allowed, host->cpu[i].os_index);
	return n;
}

unsigned sched_place(const struct sched_host *host, const struct util_cpuset *allowed, uint32_t n,
		     uint32_t *out)
{
	uint32_t order[SCHED_MAX_CPUS];
	bool used[SCHED_MAX_CPUS] = { false };
	unsigned count = 0, placed = 0;

	/* Pass 1: the first allowed CPU of each core; pass 2: the other siblings. */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < host->nr_cpus && count < SCHED_MAX_CPUS; i++) {
			bool core_taken = false;

			if (used[i] ||
			    (allowed && !util_cpuset_has(allowed, host->cpu[i].os_index)))
				continue;
			for (uint32_t k = 0; k < count && pass == 0; k++)
				if (host->cpu[order[k]].core == host->cpu[i].core)
					core_taken = true;
			if (core_taken)
				continue;
			used[i] = true;
			order[count++] = i;
		}
	}
	if (count == 0) {
		memset(out, 0, n * sizeof(*out));
		return 0;
	}
	for (uint32_t v = 0; v < n; v++)
		out[v] = host->cpu[order[v % count]].os_index;
	placed = n < count ? n : count;
	return placed;
}
