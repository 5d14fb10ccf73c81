/*
 * host.check: what this host's virtualization can do for SMP guests, fact by fact, each with
 * its source (docs/host.md).  The answer waits for a fresh lockstep-vm --host-probe
 * (daemon/hostcheck.c), so it also says what /dev/kvm offers now.  Loop thread only.
 */
#include "daemon/rpc/rpc.h"

static void checked(void *arg, json_t *report, const char *error)
{
	struct api_call *call = arg;

	if (report)
		api_call_reply(call, report);
	else
		api_call_fail(call, API_INTERNAL_ERROR, "%s", error);
}

void rpc_host_check(void *ctx, struct api_call *call, json_t *params)
{
	static const char *const none[] = { NULL };
	int ret;

	if (!api_params_only(call, params, none))
		return;
	ret = hostcheck_run(ctx, checked, call);
	if (ret)
		api_call_fail_err(call, ret, "cannot check the host");
}
