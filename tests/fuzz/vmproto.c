/*
 * Fuzz target: the worker protocol's decoders (vm/protocol.h).  lockstepd decodes what a
 * lockstep-vm worker sends, and a worker runs guest-facing code, so a worker's lines are
 * untrusted to the daemon; the worker decodes the daemon's requests.  The input is one line.
 *
 * Any line must decode or be refused with -EPROTO / -EPROTONOSUPPORT and a reason, never
 * crash or leak.  A decoded hello, pvlock or stopped event must encode again to a line that
 * decodes to the same fields; a decoded request must encode back to the same command.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vm/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void again(char *line, size_t len, struct vm_proto_msg *out)
{
	char why[128];

	if (!line || !len || line[len - 1] != '\n' ||
	    vm_proto_msg_decode(line, len - 1, out, why, sizeof(why)) != 0)
		abort();
	free(line);
}

static void check_event(const struct vm_proto_msg *m)
{
	struct vm_proto_msg r;
	size_t len;

	switch (m->event) {
	case VM_EVENT_HELLO:
		again(vm_proto_hello_encode(&m->hello, &len), len, &r);
		if (r.hello.nr_vcpus != m->hello.nr_vcpus || r.hello.pid != m->hello.pid ||
		    strcmp(r.hello.name, m->hello.name) != 0 ||
		    memcmp(r.hello.tids, m->hello.tids, m->hello.nr_vcpus * sizeof(int)) != 0)
			abort();
		break;
	case VM_EVENT_PVLOCK:
		again(vm_proto_pvlock_encode(&m->pvlock, &len), len, &r);
		if (r.pvlock.culprit != m->pvlock.culprit || r.pvlock.lock != m->pvlock.lock ||
		    strcmp(r.pvlock.kind, m->pvlock.kind) != 0)
			abort();
		break;
	default:
		again(vm_proto_stopped_encode(&m->stopped, &len), len, &r);
		if (r.stopped.reason != m->stopped.reason || r.stopped.status != m->stopped.status)
			abort();
		break;
	}
	vm_proto_msg_fini(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_proto_request req;
	struct vm_proto_msg msg;
	char why[128] = "";
	int ret;

	ret = vm_proto_msg_decode((const char *)data, size, &msg, why, sizeof(why));
	if (ret && ((ret != -EPROTO && ret != -EPROTONOSUPPORT) || !why[0]))
		abort();
	if (!ret && msg.is_event)
		check_event(&msg);
	vm_proto_msg_fini(&msg);

	why[0] = '\0';
	ret = vm_proto_request_decode((const char *)data, size, &req, why, sizeof(why));
	if (ret && (ret != -EPROTO || !why[0] || !req.id))
		abort();
	if (!ret) {
		size_t len;
		char *line = vm_proto_request_encode(1, req.cmd, &len);
		struct vm_proto_request back;

		if (!line || vm_proto_request_decode(line, len - 1, &back, why, sizeof(why)) ||
		    back.cmd != req.cmd)
			abort();
		vm_proto_request_fini(&back);
		free(line);
	}
	vm_proto_request_fini(&req);
	return 0;
}
