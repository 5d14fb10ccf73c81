/*
 * Domain events for libvirt clients: the callbacks a connection registers
 * (CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, optionally for one domain) and the translation
 * of lockstepd's lifecycle events into libvirt's lifecycle (event, detail) pairs and reboot
 * events, sent as MESSAGE packets to each matching callback.
 *
 *   defined -> DEFINED/ADDED            undefined -> UNDEFINED/REMOVED
 *   started -> STARTED/BOOTED           stopped   -> STOPPED/SHUTDOWN, DESTROYED or FAILED
 *   failed (a start that did not get the VM running) -> STOPPED/FAILED
 *   crashed -> CRASHED/PANICKED while the crashed worker is preserved, else STOPPED/CRASHED
 *   rebooted (a guest reset, restarted by lockstepd) -> the REBOOT event
 *
 * lockstepd's "starting", "stopping", "restarted" and "restart-pending" have no libvirt
 * counterpart; a VM that
 * returns to running after an ignored power button is not "started" again.  Only lifecycle
 * and reboot callbacks can be registered: other event ids get VIRT_ERR_NO_SUPPORT, which
 * `virsh event --all` skips.  Loop thread only; the listener runs inside events_emit().
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/virt/virt.h"

struct mapped_event {
	int32_t event_id;
	int32_t event, detail;
};

static bool reason_is(const char *reason, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(reason, *list) == 0)
			return true;
	return false;
}

/* false if the lockstepd event has no libvirt counterpart. */
static bool map_event(const struct dvm *vm, const char *what, const char *reason,
		      struct mapped_event *m)
{
	static const char *const failures[] = { "worker-died", "error", "timeout", NULL };

	*m = (struct mapped_event){ .event_id = VIRT_EVENT_ID_LIFECYCLE };
	if (strcmp(what, "defined") == 0) {
		m->event = VIRT_EVENT_DEFINED;
		m->detail = VIRT_DETAIL_DEFINED_ADDED;
	} else if (strcmp(what, "undefined") == 0) {
		m->event = VIRT_EVENT_UNDEFINED;
		m->detail = VIRT_DETAIL_UNDEFINED_REMOVED;
	} else if (strcmp(what, "started") == 0 && strcmp(reason, "shutdown-timeout") != 0) {
		m->event = VIRT_EVENT_STARTED;
		m->detail = VIRT_DETAIL_STARTED_BOOTED;
	} else if (strcmp(what, "stopped") == 0) {
		m->event = VIRT_EVENT_STOPPED;
		if (strcmp(reason, "destroyed") == 0)
			m->detail = VIRT_DETAIL_STOPPED_DESTROYED;
		else if (reason_is(reason, failures))
			m->detail = VIRT_DETAIL_STOPPED_FAILED;
		else
			m->detail = VIRT_DETAIL_STOPPED_SHUTDOWN;
	} else if (strcmp(what, "failed") == 0) {
		m->event = VIRT_EVENT_STOPPED;
		m->detail = VIRT_DETAIL_STOPPED_FAILED;
	} else if (strcmp(what, "crashed") == 0) {
		if (vm->worker) {
			m->event = VIRT_EVENT_CRASHED;
			m->detail = VIRT_DETAIL_CRASHED_PANICKED;
		} else {
			m->event = VIRT_EVENT_STOPPED;
			m->detail = reason_is(reason, failures) ? VIRT_DETAIL_STOPPED_FAILED :
								  VIRT_DETAIL_STOPPED_CRASHED;
		}
	} else if (strcmp(what, "rebooted") == 0) {
		m->event_id = VIRT_EVENT_ID_REBOOT;
	} else {
		return false;
	}
	return true;
}

static void send_to(struct virt_conn *c, const struct virt_callback *cb, const struct dvm *vm,
		    const struct mapped_event *m)
{
	struct api_xdr_out out;

	api_xdr_out_init(&out, 4096);
	api_xdr_put_i32(&out, cb->id);
	virt_put_domain(&out, vm);
	if (m->event_id == VIRT_EVENT_ID_LIFECYCLE) {
		api_xdr_put_i32(&out, m->event);
		api_xdr_put_i32(&out, m->detail);
		api_virt_session_send_event(c->session, VIRT_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE,
					    &out);
	} else {
		api_virt_session_send_event(c->session, VIRT_PROC_DOMAIN_EVENT_CALLBACK_REBOOT,
					    &out);
	}
}

void virt_on_event(void *arg, json_t *event)
{
	struct virt_server *srv = arg;
	const char *type = json_string_value(json_object_get(event, "type"));
	const char *name = json_string_value(json_object_get(event, "vm"));
	const char *what = json_string_value(json_object_get(event, "event"));
	const char *reason = json_string_value(json_object_get(event, "reason"));
	struct mapped_event m;
	struct util_list *pos, *cpos;
	uint8_t uuid[VIRT_UUID_LEN];
	struct dvm *vm;

	if (!type || strcmp(type, "lifecycle") != 0 || !name || !what)
		return;
	vm = registry_find(srv->d, name);
	if (!vm || !map_event(vm, what, reason ? reason : "", &m))
		return;
	if (api_virt_uuid_parse(vm->cfg.uuid, uuid))
		memset(uuid, 0, sizeof(uuid));
	util_list_for_each(pos, &srv->conns) {
		struct virt_conn *c = util_container_of(pos, struct virt_conn, link);

		if ((c->conn && c->conn->dead) || !api_virt_session_open(c->session))
			continue;
		util_list_for_each(cpos, &c->callbacks) {
			struct virt_callback *cb =
				util_container_of(cpos, struct virt_callback, link);

			if (cb->event_id == m.event_id &&
			    (!cb->has_dom || memcmp(cb->uuid, uuid, VIRT_UUID_LEN) == 0))
				send_to(c, cb, vm, &m);
		}
	}
}

static void register_any(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	int32_t event_id = a->num[0];
	struct virt_callback *cb;

	if (event_id != VIRT_EVENT_ID_LIFECYCLE && event_id != VIRT_EVENT_ID_REBOOT) {
		api_virt_fail(call, VIRT_ERR_NO_SUPPORT,
			      "lockstep sends lifecycle and reboot events only, not event %d",
			      event_id);
		return;
	}
	if (c->nr_callbacks >= VIRT_CALLBACKS_MAX) {
		api_virt_fail(call, VIRT_ERR_OPERATION_FAILED,
			      "at most %d event callbacks per connection", VIRT_CALLBACKS_MAX);
		return;
	}
	if (a->has_dom && !virt_find(c, call, a))
		return;
	cb = calloc(1, sizeof(*cb));
	if (!cb) {
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot register the callback");
		return;
	}
	cb->id = c->next_callback++;
	cb->event_id = event_id;
	cb->has_dom = a->has_dom;
	if (a->has_dom)
		memcpy(cb->uuid, a->dom.uuid, VIRT_UUID_LEN);
	util_list_add_tail(&c->callbacks, &cb->link);
	c->nr_callbacks++;
	virt_reply_int(call, cb->id);
}

static void deregister_any(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct util_list *pos;

	util_list_for_each(pos, &c->callbacks) {
		struct virt_callback *cb = util_container_of(pos, struct virt_callback, link);

		if (cb->id == a->num[0]) {
			util_list_del(&cb->link);
			free(cb);
			c->nr_callbacks--;
			api_virt_reply(call, NULL);
			return;
		}
	}
	api_virt_fail(call, VIRT_ERR_INVALID_ARG, "no event callback with id %d", a->num[0]);
}

const struct api_virt_handler virt_event_handlers[] = {
	{ VIRT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, register_any, 0 },
	{ VIRT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, deregister_any, 0 },
};

const size_t virt_nr_event_handlers = sizeof(virt_event_handlers) / sizeof(virt_event_handlers[0]);
