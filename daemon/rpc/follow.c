/*
 * vm.console for JSON-RPC clients: a read of the console log as a reply, and followers that
 * get what is appended as "console.output" notifications, polled every 100 ms while anyone
 * follows.  A follower names its VM by uuid and looks it up at each poll.  It ends, with a
 * "console.end" notification once it has had everything, when the VM stops for good (no
 * worker and no restart waiting) or goes (undefined, or redefined under another uuid).  The
 * bytes come from daemon/console.c.  Each follower costs a read of the log at every poll, so
 * a connection follows at most RPC_FOLLOWS_PER_CLIENT consoles and a VM has at most
 * RPC_FOLLOWS_PER_VM followers.  Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/rpc/rpc.h"

#define CONSOLE_POLL_MS 100
#define CONSOLE_CHUNK (64u << 10)

struct follow {
	struct util_list link;	      /* rpc_server->follows */
	struct util_list client_link; /* rpc_client->follows */
	struct rpc_client *c;
	char uuid[37];
	char name[VMDEF_NAME_MAX + 1];
	uint64_t offset;
};

static void drop(struct rpc_server *srv, struct follow *f)
{
	util_list_del(&f->link);
	util_list_del(&f->client_link);
	free(f);
	if (util_list_empty(&srv->follows) && srv->console_timer_on) {
		uv_timer_stop(&srv->console_timer);
		srv->console_timer_on = false;
	}
}

static void poll_followers(uv_timer_t *t)
{
	struct rpc_server *srv = t->data;
	struct util_list *pos, *tmp;

	util_list_for_each_safe(pos, tmp, &srv->follows) {
		struct follow *f = util_container_of(pos, struct follow, link);
		struct dvm *vm = registry_find_uuid(srv->d, f->uuid);
		unsigned char *data;
		uint64_t size;
		size_t len;

		if (!vm) {
			api_session_notify(f->c->session, "console.end",
					   json_pack("{s:s, s:s, s:s, s:I}", "vm", f->name, "state",
						     "undefined", "reason", "undefined", "offset",
						     (json_int_t)f->offset));
			drop(srv, f); /* undefined: nothing more will come */
			continue;
		}
		if (console_read(vm, f->offset, CONSOLE_CHUNK, &data, &len, &size))
			continue;
		if (size < f->offset) {
			f->offset = 0; /* the log was moved aside at a start: a fresh one */
		} else if (!len && !vm->worker && !vm->restart_pending) {
			api_session_notify(f->c->session, "console.end",
					   json_pack("{s:s, s:s, s:s, s:I}", "vm", vm->cfg.name,
						     "state", dvm_state_name(vm->state), "reason",
						     vm->reason, "offset", (json_int_t)f->offset));
			drop(srv, f);
		} else if (len) {
			api_session_notify(f->c->session, "console.output",
					   json_pack("{s:s, s:o, s:I}", "vm", vm->cfg.name, "data",
						     console_text_json(data, len), "offset",
						     (json_int_t)f->offset));
			f->offset += len;
		}
		free(data);
	}
}

/* Sends what is appended to the VM's console from `offset` on, as "console.output". */
static int follow(struct rpc_client *c, struct dvm *vm, uint64_t offset, char *err, size_t err_len)
{
	struct rpc_server *srv = c->srv;
	unsigned mine = 0, its = 0;
	struct util_list *pos;
	struct follow *f;

	util_list_for_each(pos, &c->follows)
		mine++;
	util_list_for_each(pos, &srv->follows)
		its += !strcmp(util_container_of(pos, struct follow, link)->uuid, vm->cfg.uuid);
	if (mine >= RPC_FOLLOWS_PER_CLIENT)
		return util_error(err, err_len, -EUSERS,
				  "this connection follows %u consoles already (at most %u)", mine,
				  RPC_FOLLOWS_PER_CLIENT);
	if (its >= RPC_FOLLOWS_PER_VM)
		return util_error(err, err_len, -EUSERS,
				  "the console of %s has %u followers already (at most %u)",
				  vm->cfg.name, its, RPC_FOLLOWS_PER_VM);
	f = calloc(1, sizeof(*f));
	if (!f)
		return util_error(err, err_len, -ENOMEM, "cannot follow the console of %s",
				  vm->cfg.name);
	f->c = c;
	util_strlcpy(f->uuid, vm->cfg.uuid, sizeof(f->uuid));
	util_strlcpy(f->name, vm->cfg.name, sizeof(f->name));
	f->offset = offset;
	util_list_add_tail(&srv->follows, &f->link);
	util_list_add_tail(&c->follows, &f->client_link);
	if (!srv->console_timer_on) {
		uv_timer_start(&srv->console_timer, poll_followers, CONSOLE_POLL_MS,
			       CONSOLE_POLL_MS);
		srv->console_timer_on = true;
	}
	return 0;
}

void rpc_console_reply(struct dvm *vm, struct api_call *call, uint64_t offset, uint64_t max,
		       struct rpc_client *follower)
{
	unsigned char *data;
	uint64_t size;
	size_t len;
	char err[128];
	int ret = console_read(vm, offset, (size_t)max, &data, &len, &size);

	if (ret) {
		api_call_fail_errno(call, ret, "cannot read the console of %s", vm->cfg.name);
		return;
	}
	/*
	 * The follower starts where this read ended, not at a size taken before it: the worker
	 * appends while lockstepd reads, and bytes written in between would reach the client
	 * twice, in the reply and again in a notification.
	 */
	if (follower && (ret = follow(follower, vm, offset + len, err, sizeof(err)))) {
		free(data);
		api_call_fail_err(call, ret, err);
		return;
	}
	api_call_reply(call, json_pack("{s:s, s:o, s:I, s:I, s:I}", "vm", vm->cfg.name, "data",
				       console_text_json(data, len), "offset", (json_int_t)offset,
				       "next_offset", (json_int_t)(offset + len), "size",
				       (json_int_t)size));
	free(data);
}

void rpc_unfollow_client(struct rpc_client *c)
{
	while (!util_list_empty(&c->follows))
		drop(c->srv, util_container_of(c->follows.next, struct follow, client_link));
}
