/*
 * Interactive consoles for JSON-RPC clients (`lockstep vm console` on a terminal):
 *   vm.console_attach {name, force?}   attaches the client to the running VM's serial console
 *                                      (daemon/ops.h: one client at a time; force takes it)
 *   vm.console_input {name, data}      types data's UTF-8 bytes into the guest
 *   vm.console_detach {name}           lets go
 * While attached the client gets "console.output" notifications {vm, data, live: true} with
 * what the guest writes, as it comes, and one "console.detached" {vm, reason} when the
 * session ends without being asked to (the VM stopped, another client took over).  A client
 * that leaves is detached.  The console log and vm.console are unaffected.
 *
 * Guest output is bytes and JSON strings are UTF-8: a sequence split across two reads is held
 * back until its end arrives, invalid bytes become U+FFFD.  Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/rpc/rpc.h"

#define INPUT_MAX (64u << 10)

struct rpc_console {
	struct util_list link; /* rpc_client->consoles */
	struct rpc_client *c;
	struct console_session *session;
	char vm[VMDEF_NAME_MAX + 1];
	char uuid[37];
	unsigned char held[4]; /* the start of a UTF-8 sequence split across reads */
	size_t nr_held;
};

static void drop(struct rpc_console *con)
{
	util_list_del(&con->link);
	free(con);
}

static void on_output(void *arg, const unsigned char *data, size_t len)
{
	struct rpc_console *con = arg;
	unsigned char *buf = malloc(con->nr_held + len);
	size_t total, keep;

	if (!buf)
		return;
	memcpy(buf, con->held, con->nr_held);
	memcpy(buf + con->nr_held, data, len);
	total = con->nr_held + len;
	keep = console_utf8_tail(buf, total);
	memcpy(con->held, buf + total - keep, keep);
	con->nr_held = keep;
	if (total > keep)
		api_session_notify(con->c->session, "console.output",
				   json_pack("{s:s, s:o, s:b}", "vm", con->vm, "data",
					     console_text_json(buf, total - keep), "live", true));
	free(buf);
}

static void on_ended(void *arg, bool stopped, const char *why)
{
	struct rpc_console *con = arg;

	if (con->nr_held)
		api_session_notify(con->c->session, "console.output",
				   json_pack("{s:s, s:o, s:b}", "vm", con->vm, "data",
					     console_text_json(con->held, con->nr_held), "live",
					     true));
	api_session_notify(con->c->session, "console.detached",
			   json_pack("{s:s, s:s}", "vm", con->vm, "reason", why));
	drop(con);
}

static struct rpc_console *find(struct rpc_client *c, const struct dvm *vm)
{
	struct util_list *pos;

	util_list_for_each(pos, &c->consoles) {
		struct rpc_console *con = util_container_of(pos, struct rpc_console, link);

		if (strcmp(con->uuid, vm->cfg.uuid) == 0)
			return con;
	}
	return NULL;
}

void rpc_console_attach(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "force", NULL };
	struct rpc_client *c = rpc_call_client(call);
	struct console_client client = { .output = on_output, .ended = on_ended };
	struct rpc_console *con;
	bool force = false;
	struct dvm *vm;
	char err[256];
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)) ||
	    !api_param_bool(call, params, "force", false, &force))
		return;
	if (!c) {
		api_call_reply(call, NULL); /* the client left meanwhile */
		return;
	}
	if (find(c, vm)) {
		api_call_fail(call, API_BAD_STATE, "this client is attached to the console of %s",
			      vm->cfg.name);
		return;
	}
	con = calloc(1, sizeof(*con));
	if (!con) {
		api_call_fail_errno(call, -ENOMEM, "cannot attach to the console of %s",
				    vm->cfg.name);
		return;
	}
	con->c = c;
	util_strlcpy(con->vm, vm->cfg.name, sizeof(con->vm));
	util_strlcpy(con->uuid, vm->cfg.uuid, sizeof(con->uuid));
	client.arg = con;
	ret = ops_console_open(vm, force ? OPS_CONSOLE_FORCE : 0, &client, &con->session, err,
			       sizeof(err));
	if (ret) {
		free(con);
		api_call_fail_err(call, ret, err);
		return;
	}
	util_list_add_tail(&c->consoles, &con->link);
	api_call_reply(call, json_pack("{s:s, s:b}", "vm", vm->cfg.name, "attached", true));
}

void rpc_console_input(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", "data", NULL };
	struct rpc_client *c = rpc_call_client(call);
	struct rpc_console *con;
	const char *data;
	struct dvm *vm;
	int ret;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)) ||
	    !api_param_string(call, params, "data", true, INPUT_MAX, &data))
		return;
	if (!c || !(con = find(c, vm))) {
		api_call_fail(call, API_BAD_STATE,
			      "not attached to the console of %s: call vm.console_attach first",
			      vm->cfg.name);
		return;
	}
	ret = ops_console_input(con->session, data, strlen(data));
	if (ret) {
		api_call_fail_errno(call, ret, "cannot type into the console of %s", vm->cfg.name);
		return;
	}
	api_call_reply(call, json_pack("{s:s, s:I}", "vm", vm->cfg.name, "bytes",
				       (json_int_t)strlen(data)));
}

void rpc_console_detach(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const allowed[] = { "name", NULL };
	struct rpc_client *c = rpc_call_client(call);
	struct rpc_console *con;
	struct dvm *vm;

	if (!api_params_only(call, params, allowed) || !(vm = rpc_find_vm(ctx, call, params)))
		return;
	con = c ? find(c, vm) : NULL;
	if (con) {
		ops_console_close(con->session);
		drop(con);
	}
	api_call_reply(call, json_pack("{s:s, s:b}", "vm", vm->cfg.name, "attached", false));
}

void rpc_console_detach_client(struct rpc_client *c)
{
	while (!util_list_empty(&c->consoles)) {
		struct rpc_console *con =
			util_container_of(c->consoles.next, struct rpc_console, link);

		ops_console_close(con->session);
		drop(con);
	}
}
