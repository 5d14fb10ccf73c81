/*
 * libvirt procedures that look at domains without changing them: lookups by id, name and
 * UUID, the lists (CONNECT_LIST_ALL_DOMAINS with every filter, and the legacy ones older
 * clients fall back to), state, info, control info and the small yes/no questions dominfo
 * asks.  Also the helpers every handler file shares (finding the VM a call names, encoding a
 * domain, mapping lockstep states to libvirt's, a thread's CPU time from /proc).
 *
 * How lockstep's VMs look to libvirt: a defined VM is a persistent domain; a VM made by
 * CREATE_XML, or undefined while it runs, is transient and goes when it stops
 * (dvm->transient).  The domain id is lockstep's domain_id while a worker runs, -1
 * otherwise.  Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/virt/virt.h"

/* ---- shared helpers ---- */

bool virt_active(const struct dvm *vm)
{
	return vm->worker != NULL;
}

bool virt_transient(const struct dvm *vm)
{
	return vm->transient;
}

static bool reason_in(const char *reason, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(reason, *list) == 0)
			return true;
	return false;
}

int virt_domain_state(const struct dvm *vm, int *reason)
{
	static const char *const failures[] = { "worker-died", "error", "timeout", NULL };

	switch (vm->state) {
	case DVM_STARTING:
		*reason = VIRT_PAUSED_STARTING_UP;
		return VIRT_DOMAIN_PAUSED;
	case DVM_RUNNING:
		*reason = VIRT_RUNNING_BOOTED;
		return VIRT_DOMAIN_RUNNING;
	case DVM_STOPPING:
		*reason = VIRT_SHUTDOWN_USER;
		return VIRT_DOMAIN_SHUTDOWN;
	case DVM_CRASHED:
		if (vm->worker) { /* on_crash=preserve: the crashed machine is kept */
			*reason = VIRT_REASON_UNKNOWN;
			return VIRT_DOMAIN_CRASHED;
		}
		*reason = reason_in(vm->reason, failures) ? VIRT_SHUTOFF_FAILED :
							    VIRT_SHUTOFF_CRASHED;
		return VIRT_DOMAIN_SHUTOFF;
	case DVM_FAILED:
		*reason = VIRT_SHUTOFF_FAILED;
		return VIRT_DOMAIN_SHUTOFF;
	case DVM_SHUTOFF:
	default:
		if (strcmp(vm->reason, "destroyed") == 0)
			*reason = VIRT_SHUTOFF_DESTROYED;
		else if (strcmp(vm->reason, "guest-crash") == 0)
			*reason = VIRT_SHUTOFF_CRASHED;
		else if (reason_in(vm->reason, failures))
			*reason = VIRT_SHUTOFF_FAILED;
		else if (strcmp(vm->reason, "defined") == 0)
			*reason = VIRT_REASON_UNKNOWN;
		else
			*reason = VIRT_SHUTOFF_SHUTDOWN;
		return VIRT_DOMAIN_SHUTOFF;
	}
}

struct dvm *virt_find(struct virt_conn *c, struct api_virt_call *call,
		      const struct api_virt_args *a)
{
	char uuid[37];
	struct dvm *vm;

	api_virt_uuid_format(a->dom.uuid, uuid);
	vm = registry_find_uuid(c->srv->d, uuid);
	if (!vm) {
		char err[160];

		snprintf(err, sizeof(err), "no domain with matching uuid '%s' (%.64s)", uuid,
			 a->dom.name ? a->dom.name : "");
		virt_fail_err(call, -ENOENT, err);
	}
	return vm;
}

void virt_put_domain(struct api_xdr_out *out, const struct dvm *vm)
{
	uint8_t uuid[VIRT_UUID_LEN];

	if (api_virt_uuid_parse(vm->cfg.uuid, uuid))
		memset(uuid, 0, sizeof(uuid));
	api_xdr_put_domain(out, vm->cfg.name, uuid, virt_active(vm) ? vm->domain_id : -1);
}

void virt_reply_domain(struct api_virt_call *call, const struct dvm *vm)
{
	struct api_xdr_out out;

	api_xdr_out_init(&out, 4096);
	virt_put_domain(&out, vm);
	api_virt_reply(call, &out);
}

void virt_reply_int(struct api_virt_call *call, int32_t value)
{
	struct api_xdr_out out;

	api_xdr_out_init(&out, 16);
	api_xdr_put_i32(&out, value);
	api_virt_reply(call, &out);
}

void virt_reply_u64(struct api_virt_call *call, uint64_t value)
{
	struct api_xdr_out out;

	api_xdr_out_init(&out, 16);
	api_xdr_put_u64(&out, value);
	api_virt_reply(call, &out);
}

void virt_fail_err(struct api_virt_call *call, int err, const char *message)
{
	api_virt_fail(call, api_virt_error_from_errno(err), "%s",
		      message ? message : "the operation failed");
}

int virt_thread_stat(pid_t pid, pid_t tid, uint64_t *cpu_ns, int *cpu, char *state)
{
	long ticks = sysconf(_SC_CLK_TCK);
	struct util_proc_stat st;
	int ret = util_proc_stat_read((int)pid, (int)tid, &st);

	if (ret)
		return ret;
	*cpu = st.cpu;
	*state = st.state;
	*cpu_ns =
		ticks > 0 ? (st.utime + st.stime) * (1000000000ull / (unsigned long long)ticks) : 0;
	return 0;
}

/* ---- lookups ---- */

static void lookup_by_id(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct dvm *vm = registry_find_id(c->srv->d, a->num[0]);

	if (vm && virt_active(vm))
		virt_reply_domain(call, vm);
	else
		api_virt_fail(call, VIRT_ERR_NO_DOMAIN, "no domain with matching id %d", a->num[0]);
}

static void lookup_by_name(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct dvm *vm = registry_find(c->srv->d, a->str);

	if (vm)
		virt_reply_domain(call, vm);
	else
		api_virt_fail(call, VIRT_ERR_NO_DOMAIN, "no domain with matching name '%.64s'",
			      a->str);
}

static void lookup_by_uuid(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	char uuid[37];
	struct dvm *vm;

	api_virt_uuid_format(a->uuid, uuid);
	vm = registry_find_uuid(c->srv->d, uuid);
	if (vm)
		virt_reply_domain(call, vm);
	else
		api_virt_fail(call, VIRT_ERR_NO_DOMAIN, "no domain with matching uuid '%s'", uuid);
}

/* ---- lists ---- */

/* A filter group passes when none of its bits is asked for, or the domain has one of them. */
static bool group_passes(uint32_t flags, uint32_t group, uint32_t has)
{
	return !(flags & group) || (flags & group & has);
}

bool virt_list_matches(const struct dvm *vm, uint32_t flags)
{
	int reason, state = virt_domain_state(vm, &reason);
	uint32_t has = VIRT_LIST_NO_MANAGEDSAVE | VIRT_LIST_NO_SNAPSHOT | VIRT_LIST_NO_CHECKPOINT;

	has |= virt_active(vm) ? VIRT_LIST_ACTIVE : VIRT_LIST_INACTIVE;
	has |= virt_transient(vm) ? VIRT_LIST_TRANSIENT : VIRT_LIST_PERSISTENT;
	has |= vm->cfg.autostart ? VIRT_LIST_AUTOSTART : VIRT_LIST_NO_AUTOSTART;
	has |= state == VIRT_DOMAIN_RUNNING ? VIRT_LIST_RUNNING :
	       state == VIRT_DOMAIN_PAUSED  ? VIRT_LIST_PAUSED :
	       state == VIRT_DOMAIN_SHUTOFF ? VIRT_LIST_SHUTOFF :
					      VIRT_LIST_OTHER;
	return group_passes(flags, VIRT_LIST_ACTIVE | VIRT_LIST_INACTIVE, has) &&
	       group_passes(flags, VIRT_LIST_PERSISTENT | VIRT_LIST_TRANSIENT, has) &&
	       group_passes(flags,
			    VIRT_LIST_RUNNING | VIRT_LIST_PAUSED | VIRT_LIST_SHUTOFF |
				    VIRT_LIST_OTHER,
			    has) &&
	       group_passes(flags, VIRT_LIST_MANAGEDSAVE | VIRT_LIST_NO_MANAGEDSAVE, has) &&
	       group_passes(flags, VIRT_LIST_AUTOSTART | VIRT_LIST_NO_AUTOSTART, has) &&
	       group_passes(flags, VIRT_LIST_HAS_SNAPSHOT | VIRT_LIST_NO_SNAPSHOT, has) &&
	       group_passes(flags, VIRT_LIST_HAS_CHECKPOINT | VIRT_LIST_NO_CHECKPOINT, has);
}

static void list_all(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct virt_conn *c = ctx;
	struct util_list *pos;
	struct api_xdr_out out, doms;
	uint32_t n = 0;

	api_xdr_out_init(&doms, VIRT_PACKET_MAX);
	util_list_for_each(pos, &c->srv->d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (!virt_list_matches(vm, a->flags) || n >= VIRT_DOMAIN_LIST_MAX)
			continue;
		if (a->num[0])
			virt_put_domain(&doms, vm);
		n++;
	}
	api_xdr_out_init(&out, VIRT_PACKET_MAX);
	api_xdr_put_u32(&out, a->num[0] ? n : 0);
	api_xdr_put_fixed(&out, doms.buf, doms.len);
	api_xdr_put_u32(&out, n);
	out.failed |= doms.failed;
	api_xdr_out_fini(&doms);
	api_virt_reply(call, &out);
}

static unsigned count(struct daemon *d, bool active)
{
	struct util_list *pos;
	unsigned n = 0;

	util_list_for_each(pos, &d->vms)
		n += virt_active(util_container_of(pos, struct dvm, link)) == active;
	return n;
}

static void num_of_domains(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	virt_reply_int(call, (int32_t)count(((struct virt_conn *)ctx)->srv->d, true));
}

static void num_of_defined(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	virt_reply_int(call, (int32_t)count(((struct virt_conn *)ctx)->srv->d, false));
}

/* LIST_DOMAINS (ids of active domains) and LIST_DEFINED_DOMAINS (names of inactive ones). */
static void list_legacy(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	bool active = api_virt_call_proc(call) == VIRT_PROC_CONNECT_LIST_DOMAINS;
	struct virt_conn *c = ctx;
	struct api_xdr_out out, items;
	struct util_list *pos;
	uint32_t n = 0;

	if (a->num[0] < 0 || (uint32_t)a->num[0] > VIRT_DOMAIN_LIST_MAX) {
		api_virt_fail(call, VIRT_ERR_INVALID_ARG, "maxids %d is out of range (0..%u)",
			      a->num[0], VIRT_DOMAIN_LIST_MAX);
		return;
	}
	api_xdr_out_init(&items, VIRT_PACKET_MAX);
	util_list_for_each(pos, &c->srv->d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (virt_active(vm) != active || n >= (uint32_t)a->num[0])
			continue;
		if (active)
			api_xdr_put_i32(&items, vm->domain_id);
		else
			api_xdr_put_string(&items, vm->cfg.name);
		n++;
	}
	api_xdr_out_init(&out, VIRT_PACKET_MAX);
	api_xdr_put_u32(&out, n);
	api_xdr_put_fixed(&out, items.buf, items.len);
	out.failed |= items.failed;
	api_xdr_out_fini(&items);
	api_virt_reply(call, &out);
}

/* ---- state and information ---- */

static void get_state(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	struct api_xdr_out out;
	int reason, state;

	if (!vm)
		return;
	state = virt_domain_state(vm, &reason);
	api_xdr_out_init(&out, 16);
	api_xdr_put_i32(&out, state);
	api_xdr_put_i32(&out, reason);
	api_virt_reply(call, &out);
}

static void get_info(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	struct api_xdr_out out;
	uint64_t cpu_ns = 0;
	int reason, cpu;
	char st;

	if (!vm)
		return;
	if (vm->worker)
		virt_thread_stat(vm->worker->pid, 0, &cpu_ns, &cpu, &st);
	api_xdr_out_init(&out, 64);
	api_xdr_put_u32(&out, (uint32_t)virt_domain_state(vm, &reason)); /* unsigned char */
	/* The running domain's values while it runs (libvirt's live state), else the stored. */
	api_xdr_put_u64(&out, dvm_def(vm)->memory >> 10);
	api_xdr_put_u64(&out, dvm_def(vm)->memory >> 10); /* no balloon: all of it, always */
	api_xdr_put_u32(&out, dvm_def(vm)->vcpus);	  /* unsigned short */
	api_xdr_put_u64(&out, cpu_ns);
	api_virt_reply(call, &out);
}

/* ok, or "job" while an operation waits on the VM, or "error" when its worker no longer
 * answers (a preserved crash whose control channel is gone). */
static void get_control_info(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);
	uint32_t state = VIRT_CONTROL_OK, details = 0;
	struct api_xdr_out out;

	if (!vm)
		return;
	if (vm->worker && !vm->worker->chan_open && !vm->worker->exited) {
		state = VIRT_CONTROL_ERROR;
		details = VIRT_CONTROL_ERROR_REASON_MONITOR;
	} else if (!util_list_empty(&vm->shutdown_waiters)) {
		state = VIRT_CONTROL_JOB;
	}
	api_xdr_out_init(&out, 32);
	api_xdr_put_u32(&out, state);
	api_xdr_put_u32(&out, details);
	api_xdr_put_u64(&out, 0);
	api_virt_reply(call, &out);
}

/* The small questions: one int, or one unsigned hyper, about the domain. */
static void get_number(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct dvm *vm = virt_find(ctx, call, a);

	if (!vm)
		return;
	switch (api_virt_call_proc(call)) {
	case VIRT_PROC_DOMAIN_GET_MAX_MEMORY:
		virt_reply_u64(call, dvm_def(vm)->memory >> 10);
		break;
	case VIRT_PROC_DOMAIN_GET_MAX_VCPUS:
		virt_reply_int(call, (int32_t)dvm_def(vm)->vcpus);
		break;
	case VIRT_PROC_DOMAIN_IS_ACTIVE:
		virt_reply_int(call, virt_active(vm));
		break;
	case VIRT_PROC_DOMAIN_IS_PERSISTENT:
		virt_reply_int(call, !virt_transient(vm));
		break;
	case VIRT_PROC_DOMAIN_GET_AUTOSTART:
		virt_reply_int(call, vm->cfg.autostart);
		break;
	default: /* managed save images and snapshots: lockstep has neither */
		virt_reply_int(call, 0);
	}
}

static void get_os_type(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct api_xdr_out out;

	if (!virt_find(ctx, call, a))
		return;
	api_xdr_out_init(&out, 16);
	api_xdr_put_string(&out, "hvm");
	api_virt_reply(call, &out);
}

/* No messages (tainting, deprecations): an empty list. */
static void get_messages(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct api_xdr_out out;

	if (!virt_find(ctx, call, a))
		return;
	api_xdr_out_init(&out, 16);
	api_xdr_put_u32(&out, 0);
	api_virt_reply(call, &out);
}

/* No security driver: an empty model and DOI, each sent as one NUL char. */
static void security_model(void *ctx, struct api_virt_call *call, const struct api_virt_args *a)
{
	struct api_xdr_out out;

	api_xdr_out_init(&out, 64);
	api_xdr_put_chars(&out, "", 257, false);
	api_xdr_put_chars(&out, "", 257, false);
	api_virt_reply(call, &out);
}

const struct api_virt_handler virt_domain_handlers[] = {
	{ VIRT_PROC_DOMAIN_LOOKUP_BY_ID, lookup_by_id, 0 },
	{ VIRT_PROC_DOMAIN_LOOKUP_BY_NAME, lookup_by_name, 0 },
	{ VIRT_PROC_DOMAIN_LOOKUP_BY_UUID, lookup_by_uuid, 0 },
	{ VIRT_PROC_CONNECT_LIST_ALL_DOMAINS, list_all, 0xffff },
	{ VIRT_PROC_CONNECT_NUM_OF_DOMAINS, num_of_domains, 0 },
	{ VIRT_PROC_CONNECT_NUM_OF_DEFINED_DOMAINS, num_of_defined, 0 },
	{ VIRT_PROC_CONNECT_LIST_DOMAINS, list_legacy, 0 },
	{ VIRT_PROC_CONNECT_LIST_DEFINED_DOMAINS, list_legacy, 0 },
	{ VIRT_PROC_DOMAIN_GET_STATE, get_state, 0 },
	{ VIRT_PROC_DOMAIN_GET_INFO, get_info, 0 },
	{ VIRT_PROC_DOMAIN_GET_CONTROL_INFO, get_control_info, 0 },
	{ VIRT_PROC_DOMAIN_GET_MAX_MEMORY, get_number, 0 },
	{ VIRT_PROC_DOMAIN_GET_MAX_VCPUS, get_number, 0 },
	{ VIRT_PROC_DOMAIN_IS_ACTIVE, get_number, 0 },
	{ VIRT_PROC_DOMAIN_IS_PERSISTENT, get_number, 0 },
	{ VIRT_PROC_DOMAIN_GET_AUTOSTART, get_number, 0 },
	{ VIRT_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE, get_number, 0 },
	{ VIRT_PROC_DOMAIN_SNAPSHOT_NUM, get_number, 0xffff },
	{ VIRT_PROC_DOMAIN_GET_OS_TYPE, get_os_type, 0 },
	{ VIRT_PROC_DOMAIN_GET_MESSAGES, get_messages, 0x3 },
	{ VIRT_PROC_NODE_GET_SECURITY_MODEL, security_model, 0 },
};

const size_t virt_nr_domain_handlers =
	sizeof(virt_domain_handlers) / sizeof(virt_domain_handlers[0]);
