/*
 * Events: what happens to VMs (lifecycle, lock-holder preemption), stamped with the time and
 * handed to the listeners that asked for them — the front ends, which pass them on to their
 * subscribers (JSON-RPC notifications, libvirt event callbacks).  The registry emits; nothing here knows who
 * listens.  Loop thread only; a listener runs inside events_emit().
 */
#include <time.h>

#include "daemon/daemon.h"

void daemon_add_listener(struct daemon *d, struct daemon_listener *l)
{
	util_list_add_tail(&d->listeners, &l->link);
}

void daemon_remove_listener(struct daemon_listener *l)
{
	util_list_del(&l->link);
}

void events_emit(struct daemon *d, json_t *event)
{
	struct util_list *pos, *tmp;
	struct timespec ts;

	if (!event)
		return;
	/* Every event says when it happened: seconds since the epoch, to the microsecond. */
	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_set_new(event, "time",
			    json_real((double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6));
	util_list_for_each_safe(pos, tmp, &d->listeners) {
		struct daemon_listener *l = util_container_of(pos, struct daemon_listener, link);

		l->fn(l->arg, event);
	}
	json_decref(event);
}
