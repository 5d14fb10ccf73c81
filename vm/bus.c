/*
 * The exit-dispatch bus: which device answers a port-I/O or MMIO address.  One bus per address
 * space; ranges are kept sorted and never overlap, lookups are a binary search.  Devices are
 * added while the VM is built and the bus is read-only once vCPUs run, so dispatch takes no
 * lock; each device serialises its own state.
 */
#include <errno.h>
#include <string.h>

#include "vm/vm_internal.h"

int vm_bus_add(struct vm_bus *bus, uint64_t base, uint64_t len, vm_io_fn fn, void *opaque,
	       const char *name)
{
	unsigned pos = 0;

	if (len == 0 || base + len < base)
		return -EINVAL;
	if (bus->count == VM_BUS_MAX)
		return -ENOSPC;
	while (pos < bus->count && bus->ranges[pos].base < base)
		pos++;
	if (pos > 0) {
		const struct vm_bus_range *prev = &bus->ranges[pos - 1];

		if (prev->base + prev->len > base)
			return -EEXIST;
	}
	if (pos < bus->count && base + len > bus->ranges[pos].base)
		return -EEXIST;
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(bus->count - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct vm_bus_range){
		.base = base,
		.len = len,
		.fn = fn,
		.opaque = opaque,
		.name = name,
	};
	bus->count++;
	return 0;
}

bool vm_bus_dispatch(const struct vm_bus *bus, uint64_t addr, struct vm_io *io)
{
	unsigned lo = 0, hi = bus->count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct vm_bus_range *r = &bus->ranges[mid];

		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			io->offset = addr - r->base;
			r->fn(r->opaque, io);
			return true;
		}
	}
	return false;
}
