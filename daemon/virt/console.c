/*
 * `virsh console`: DOMAIN_OPEN_CONSOLE attaches the connection to a running VM's serial
 * console (daemon/ops.h: one client at a time, VIR_DOMAIN_CONSOLE_FORCE takes it over) and
 * the console then flows as a libvirt stream on the call's serial: the guest's output as
 * STREAM data, what is typed back the same way.  When the VM stops the stream ends as libvirt
 * ends one (an empty data packet, EOF); when another client takes the console over, or the
 * worker's console fails, with a stream error saying so.  The client's finish or abort is
 * confirmed and detaches.  Read-only connections are refused before this runs (the
 * procedure changes state), as libvirt refuses them.
 *
 * Streams belong to their connection and go with it.  Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/virt/virt.h"

struct virt_stream {
	struct util_list link; /* virt_conn->streams */
	struct virt_conn *c;
	uint32_t serial;
	struct console_session *session; /* NULL once it has ended */
};

static void on_output(void *arg, const unsigned char *data, size_t len)
{
	struct virt_stream *st = arg;

	api_virt_stream_data(st->c->session, VIRT_PROC_DOMAIN_OPEN_CONSOLE, st->serial, data, len);
}

/* The stream stays until the client finishes or aborts it: that wants a confirmation. */
static void on_ended(void *arg, bool stopped, const char *why)
{
	struct virt_stream *st = arg;

	st->session = NULL;
	if (stopped)
		api_virt_stream_data(st->c->session, VIRT_PROC_DOMAIN_OPEN_CONSOLE, st->serial, "",
				     0);
	else
		api_virt_stream_error(st->c->session, VIRT_PROC_DOMAIN_OPEN_CONSOLE, st->serial,
				      VIRT_ERR_OPERATION_FAILED, "console closed: %s", why);
}

static void stream_free(struct virt_stream *st)
{
	if (st->session)
		ops_console_close(st->session);
	util_list_del(&st->link);
	free(st);
}

static void open_console(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct console_client client = { .output = on_output, .ended = on_ended };
	struct virt_stream *st;
	struct dvm *vm;
	char err[256];
	int ret;

	if (!(vm = virt_find(c, call, a)))
		return;
	/* The one character device: COM1, which libvirt names serial0 and console0. */
	if (a->has_str && strcmp(a->str, "serial0") != 0 && strcmp(a->str, "console0") != 0) {
		api_virt_fail(call, VIRT_ERR_INTERNAL_ERROR,
			      "cannot find character device %.100s: VM %s has serial0 (console0)",
			      a->str, vm->cfg.name);
		return;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		api_virt_fail(call, VIRT_ERR_NO_MEMORY, "cannot open the console");
		return;
	}
	st->c = c;
	st->serial = api_virt_call_serial(call);
	client.arg = st;
	ret = ops_console_open(vm, (a->flags & VIRT_CONSOLE_FORCE) ? OPS_CONSOLE_FORCE : 0, &client,
			       &st->session, err, sizeof(err));
	if (ret) {
		free(st);
		virt_fail_err(call, ret, err);
		return;
	}
	util_list_add_tail(&c->streams, &st->link);
	api_virt_reply(call, NULL);
}

void virt_stream_packet(struct virt_conn *c, int32_t proc, uint32_t serial, int32_t status,
			const uint8_t *data, size_t len)
{
	struct virt_stream *st = NULL;
	struct util_list *pos;
	int ret;

	util_list_for_each(pos, &c->streams) {
		struct virt_stream *s = util_container_of(pos, struct virt_stream, link);

		if (s->serial == serial && proc == VIRT_PROC_DOMAIN_OPEN_CONSOLE)
			st = s;
	}
	if (status != VIRT_CONTINUE) {
		/* Finish or abort, of this stream or of one already gone: confirmed either way,
		 * since the client waits for it. */
		api_virt_stream_confirm(c->session, proc, serial);
		if (st)
			stream_free(st);
		return;
	}
	if (!st || !st->session || !len)
		return; /* late input for a console that has ended */
	ret = ops_console_input(st->session, data, len);
	if (ret) {
		ops_console_close(st->session);
		st->session = NULL;
		api_virt_stream_error(c->session, proc, serial, VIRT_ERR_OPERATION_FAILED,
				      "console input lost: %s", strerror(-ret));
	}
}

void virt_streams_close(struct virt_conn *c)
{
	while (!util_list_empty(&c->streams))
		stream_free(util_container_of(c->streams.next, struct virt_stream, link));
}

const struct api_virt_handler virt_console_handlers[] = {
	{ VIRT_PROC_DOMAIN_OPEN_CONSOLE, open_console, VIRT_CONSOLE_FORCE | VIRT_CONSOLE_SAFE },
};
const size_t virt_nr_console_handlers =
	sizeof(virt_console_handlers) / sizeof(virt_console_handlers[0]);
