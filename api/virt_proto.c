/*
 * The REMOTE procedures lockstep knows: their names, whether a read-only connection may make
 * them, and the layout of their arguments, decoded by one small interpreter so every decoder
 * is bounds-checked the same way (api/xdr.c).  Also libvirt's error texts and the one table from the daemon's
 * operation errnos (daemon/ops.h) to libvirt's error codes.
 *
 * A procedure that is not in the table is never decoded: the session answers it with
 * VIRT_ERR_NO_SUPPORT, which is what makes virsh fall back to older procedures.  Called by
 * api/virt_session.c, the daemon (handler tables) and the fuzzers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/virt.h"

/*
 * Argument layouts, one letter per field in wire order:
 *   d  remote_nonnull_domain        D  remote_domain (optional)
 *   s  remote_nonnull_string        S  remote_string (optional)
 *   U  remote_uuid (opaque[16])     i  int or unsigned int (into num[], in order)
 *   f  unsigned int flags           m  opaque cpumap<VIRT_CPUMAP_MAX>
 *   L  remote_nonnull_domain doms<VIRT_DOMAIN_LIST_MAX> (their uuids, into dom_uuids)
 */
struct proc_info {
	int32_t proc;
	const char *name;
	const char *args;
	bool writes;
};

static const struct proc_info procs[] = {
	{ VIRT_PROC_CONNECT_OPEN, "CONNECT_OPEN", "Sf", false },
	{ VIRT_PROC_CONNECT_CLOSE, "CONNECT_CLOSE", "", false },
	{ VIRT_PROC_CONNECT_GET_TYPE, "CONNECT_GET_TYPE", "", false },
	{ VIRT_PROC_CONNECT_GET_VERSION, "CONNECT_GET_VERSION", "", false },
	{ VIRT_PROC_CONNECT_GET_MAX_VCPUS, "CONNECT_GET_MAX_VCPUS", "S", false },
	{ VIRT_PROC_NODE_GET_INFO, "NODE_GET_INFO", "", false },
	{ VIRT_PROC_CONNECT_GET_CAPABILITIES, "CONNECT_GET_CAPABILITIES", "", false },
	{ VIRT_PROC_DOMAIN_CREATE, "DOMAIN_CREATE", "d", true },
	{ VIRT_PROC_DOMAIN_CREATE_XML, "DOMAIN_CREATE_XML", "sf", true },
	{ VIRT_PROC_DOMAIN_DEFINE_XML, "DOMAIN_DEFINE_XML", "s", true },
	{ VIRT_PROC_DOMAIN_DESTROY, "DOMAIN_DESTROY", "d", true },
	{ VIRT_PROC_DOMAIN_GET_XML_DESC, "DOMAIN_GET_XML_DESC", "df", false },
	{ VIRT_PROC_DOMAIN_GET_AUTOSTART, "DOMAIN_GET_AUTOSTART", "d", false },
	{ VIRT_PROC_DOMAIN_GET_INFO, "DOMAIN_GET_INFO", "d", false },
	{ VIRT_PROC_DOMAIN_GET_MAX_MEMORY, "DOMAIN_GET_MAX_MEMORY", "d", false },
	{ VIRT_PROC_DOMAIN_GET_MAX_VCPUS, "DOMAIN_GET_MAX_VCPUS", "d", false },
	{ VIRT_PROC_DOMAIN_GET_OS_TYPE, "DOMAIN_GET_OS_TYPE", "d", false },
	{ VIRT_PROC_DOMAIN_GET_VCPUS, "DOMAIN_GET_VCPUS", "dii", false },
	{ VIRT_PROC_CONNECT_LIST_DEFINED_DOMAINS, "CONNECT_LIST_DEFINED_DOMAINS", "i", false },
	{ VIRT_PROC_DOMAIN_LOOKUP_BY_ID, "DOMAIN_LOOKUP_BY_ID", "i", false },
	{ VIRT_PROC_DOMAIN_LOOKUP_BY_NAME, "DOMAIN_LOOKUP_BY_NAME", "s", false },
	{ VIRT_PROC_DOMAIN_LOOKUP_BY_UUID, "DOMAIN_LOOKUP_BY_UUID", "U", false },
	{ VIRT_PROC_CONNECT_NUM_OF_DEFINED_DOMAINS, "CONNECT_NUM_OF_DEFINED_DOMAINS", "", false },
	{ VIRT_PROC_DOMAIN_PIN_VCPU, "DOMAIN_PIN_VCPU", "dim", true },
	{ VIRT_PROC_DOMAIN_REBOOT, "DOMAIN_REBOOT", "df", true },
	{ VIRT_PROC_DOMAIN_SET_AUTOSTART, "DOMAIN_SET_AUTOSTART", "di", true },
	{ VIRT_PROC_DOMAIN_SHUTDOWN, "DOMAIN_SHUTDOWN", "d", true },
	{ VIRT_PROC_DOMAIN_UNDEFINE, "DOMAIN_UNDEFINE", "d", true },
	{ VIRT_PROC_CONNECT_LIST_DOMAINS, "CONNECT_LIST_DOMAINS", "i", false },
	{ VIRT_PROC_CONNECT_NUM_OF_DOMAINS, "CONNECT_NUM_OF_DOMAINS", "", false },
	{ VIRT_PROC_CONNECT_GET_HOSTNAME, "CONNECT_GET_HOSTNAME", "", false },
	{ VIRT_PROC_CONNECT_SUPPORTS_FEATURE, "CONNECT_SUPPORTS_FEATURE", "i", false },
	{ VIRT_PROC_AUTH_LIST, "AUTH_LIST", "", false },
	{ VIRT_PROC_CONNECT_GET_URI, "CONNECT_GET_URI", "", false },
	{ VIRT_PROC_NODE_GET_SECURITY_MODEL, "NODE_GET_SECURITY_MODEL", "", false },
	{ VIRT_PROC_CONNECT_IS_SECURE, "CONNECT_IS_SECURE", "", false },
	{ VIRT_PROC_DOMAIN_IS_ACTIVE, "DOMAIN_IS_ACTIVE", "d", false },
	{ VIRT_PROC_DOMAIN_IS_PERSISTENT, "DOMAIN_IS_PERSISTENT", "d", false },
	{ VIRT_PROC_CONNECT_GET_LIB_VERSION, "CONNECT_GET_LIB_VERSION", "", false },
	{ VIRT_PROC_DOMAIN_MEMORY_STATS, "DOMAIN_MEMORY_STATS", "dif", false },
	{ VIRT_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE, "DOMAIN_HAS_MANAGED_SAVE_IMAGE", "df", false },
	{ VIRT_PROC_DOMAIN_SNAPSHOT_NUM, "DOMAIN_SNAPSHOT_NUM", "df", false },
	{ VIRT_PROC_DOMAIN_CREATE_WITH_FLAGS, "DOMAIN_CREATE_WITH_FLAGS", "df", true },
	{ VIRT_PROC_DOMAIN_GET_VCPUS_FLAGS, "DOMAIN_GET_VCPUS_FLAGS", "df", false },
	/* Typing into a guest is a change: libvirt refuses it on read-only connections too. */
	{ VIRT_PROC_DOMAIN_OPEN_CONSOLE, "DOMAIN_OPEN_CONSOLE", "dSf", true },
	{ VIRT_PROC_DOMAIN_GET_STATE, "DOMAIN_GET_STATE", "df", false },
	{ VIRT_PROC_DOMAIN_PIN_VCPU_FLAGS, "DOMAIN_PIN_VCPU_FLAGS", "dimf", true },
	{ VIRT_PROC_DOMAIN_GET_CONTROL_INFO, "DOMAIN_GET_CONTROL_INFO", "df", false },
	{ VIRT_PROC_DOMAIN_GET_VCPU_PIN_INFO, "DOMAIN_GET_VCPU_PIN_INFO", "diif", false },
	{ VIRT_PROC_DOMAIN_UNDEFINE_FLAGS, "DOMAIN_UNDEFINE_FLAGS", "df", true },
	{ VIRT_PROC_DOMAIN_DESTROY_FLAGS, "DOMAIN_DESTROY_FLAGS", "df", true },
	{ VIRT_PROC_DOMAIN_RESET, "DOMAIN_RESET", "df", true },
	{ VIRT_PROC_DOMAIN_SHUTDOWN_FLAGS, "DOMAIN_SHUTDOWN_FLAGS", "df", true },
	{ VIRT_PROC_CONNECT_LIST_ALL_DOMAINS, "CONNECT_LIST_ALL_DOMAINS", "if", false },
	{ VIRT_PROC_NODE_GET_CPU_MAP, "NODE_GET_CPU_MAP", "iif", false },
	{ VIRT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
	  "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY", "iD", false },
	{ VIRT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
	  "CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY", "i", false },
	{ VIRT_PROC_CONNECT_GET_ALL_DOMAIN_STATS, "CONNECT_GET_ALL_DOMAIN_STATS", "Lif", false },
	{ VIRT_PROC_DOMAIN_DEFINE_XML_FLAGS, "DOMAIN_DEFINE_XML_FLAGS", "sf", true },
	{ VIRT_PROC_DOMAIN_INTERFACE_ADDRESSES, "DOMAIN_INTERFACE_ADDRESSES", "dif", false },
	{ VIRT_PROC_DOMAIN_GET_MESSAGES, "DOMAIN_GET_MESSAGES", "df", false },
};

/* The domain's secure parts (passwords) and the migratable form that carries them. */
static bool xml_secure(const struct api_virt_args *a)
{
	return a->flags & (VIRT_XML_SECURE | VIRT_XML_MIGRATABLE);
}

/* Asks the guest agent, which libvirt counts as a write. */
static bool vcpus_from_guest(const struct api_virt_args *a)
{
	return a->flags & VIRT_VCPU_GUEST;
}

/* Interface addresses as the guest's agent reports them (VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
 * source 1), which libvirt counts as a write. */
static bool addresses_from_agent(const struct api_virt_args *a)
{
	return a->num[0] == 1;
}

/* Reading procedures a read-only connection may still not call with some arguments: libvirt's
 * ACL asks more than read access for them (secured data, the guest's agent). */
static const struct {
	int32_t proc;
	bool (*guarded)(const struct api_virt_args *a);
} read_only_guards[] = {
	{ VIRT_PROC_DOMAIN_GET_XML_DESC, xml_secure },
	{ VIRT_PROC_DOMAIN_GET_VCPUS_FLAGS, vcpus_from_guest },
	{ VIRT_PROC_DOMAIN_INTERFACE_ADDRESSES, addresses_from_agent },
};

static const struct proc_info *find_proc(int32_t proc)
{
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
		if (procs[i].proc == proc)
			return &procs[i];
	return NULL;
}

const char *api_virt_proc_name(int32_t proc)
{
	const struct proc_info *p = find_proc(proc);

	return p ? p->name : NULL;
}

bool api_virt_proc_streams(int32_t proc)
{
	return proc == VIRT_PROC_DOMAIN_OPEN_CONSOLE;
}

bool api_virt_proc_writes(int32_t proc)
{
	const struct proc_info *p = find_proc(proc);

	/* Unknown procedures are refused anyway; counting them as writes is the safe side. */
	return !p || p->writes;
}

bool api_virt_read_only_allows(int32_t proc, const struct api_virt_args *a)
{
	const struct proc_info *p = find_proc(proc);

	if (!p || p->writes)
		return false;
	for (size_t i = 0; i < sizeof(read_only_guards) / sizeof(read_only_guards[0]); i++)
		if (read_only_guards[i].proc == proc && read_only_guards[i].guarded(a))
			return false;
	return true;
}

const char *api_virt_proc_layout(int32_t proc)
{
	const struct proc_info *p = find_proc(proc);

	return p ? p->args : NULL;
}

int api_virt_handlers_add(struct api_virt_handlers *h, const struct api_virt_handler *table,
			  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int32_t proc = table[i].proc;

		if (proc < 0 || proc > VIRT_PROC_MAX || !find_proc(proc) || h->by_proc[proc])
			return -EINVAL;
		h->by_proc[proc] = &table[i];
	}
	return 0;
}

static int get_domain(struct api_xdr_in *in, struct api_virt_args *a)
{
	int ret = api_xdr_get_string(in, VIRT_STRING_MAX, &a->dom.name);

	if (!ret)
		ret = api_xdr_get_fixed(in, a->dom.uuid, VIRT_UUID_LEN);
	if (!ret)
		ret = api_xdr_get_i32(in, &a->dom.id);
	a->has_dom = !ret;
	return ret;
}

/* A list of remote_nonnull_domain: their uuids (names and ids are the client's copies). */
static int get_domains(struct api_xdr_in *in, struct api_virt_args *a)
{
	uint32_t n;
	int ret;

	if (api_xdr_get_u32(in, &n))
		return -EBADMSG;
	if (n > VIRT_DOMAIN_LIST_MAX) {
		in->bad = true;
		return -EBADMSG;
	}
	a->dom_uuids = calloc(n ? n : 1, VIRT_UUID_LEN);
	if (!a->dom_uuids)
		return -ENOMEM;
	for (a->nr_doms = 0; a->nr_doms < n; a->nr_doms++) {
		char *name = NULL;
		int32_t id;

		ret = api_xdr_get_string(in, VIRT_STRING_MAX, &name);
		free(name);
		if (!ret)
			ret = api_xdr_get_fixed(in, a->dom_uuids[a->nr_doms], VIRT_UUID_LEN);
		if (!ret)
			ret = api_xdr_get_i32(in, &id);
		if (ret)
			return ret;
	}
	return 0;
}

/* remote_domain and remote_string: a 0/1 discriminant, then the value if 1. */
static int get_present(struct api_xdr_in *in, bool *present)
{
	uint32_t flag;

	if (api_xdr_get_u32(in, &flag))
		return -EBADMSG;
	if (flag > 1) {
		in->bad = true;
		return -EBADMSG;
	}
	*present = flag;
	return 0;
}

int api_virt_args_decode(int32_t proc, const void *payload, size_t len, struct api_virt_args *a)
{
	const struct proc_info *p = find_proc(proc);
	struct api_xdr_in in;
	unsigned nums = 0;
	bool present;
	int ret = 0;

	memset(a, 0, sizeof(*a));
	if (!p)
		return -ENOENT;
	api_xdr_in_init(&in, payload, len);
	for (const char *f = p->args; *f && !ret; f++) {
		switch (*f) {
		case 'd':
			ret = get_domain(&in, a);
			break;
		case 'D':
			ret = get_present(&in, &present);
			if (!ret && present)
				ret = get_domain(&in, a);
			break;
		case 's':
			ret = api_xdr_get_string(&in, VIRT_STRING_MAX, &a->str);
			a->has_str = !ret;
			break;
		case 'S':
			ret = get_present(&in, &present);
			if (!ret && present) {
				ret = api_xdr_get_string(&in, VIRT_STRING_MAX, &a->str);
				a->has_str = !ret;
			}
			break;
		case 'U':
			ret = api_xdr_get_fixed(&in, a->uuid, VIRT_UUID_LEN);
			break;
		case 'i':
			ret = nums < 3 ? api_xdr_get_i32(&in, &a->num[nums++]) : -EINVAL;
			break;
		case 'f':
			ret = api_xdr_get_u32(&in, &a->flags);
			break;
		case 'm':
			ret = api_xdr_get_var(&in, VIRT_CPUMAP_MAX, &a->map, &a->map_len);
			break;
		case 'L':
			ret = get_domains(&in, a);
			break;
		default:
			ret = -EINVAL;
		}
	}
	if (ret)
		return ret == -ENOMEM ? ret : -EBADMSG;
	return api_xdr_finished(&in) ? 0 : -EBADMSG;
}

void api_virt_args_free(struct api_virt_args *a)
{
	free(a->dom.name);
	free(a->str);
	free(a->dom_uuids);
	a->dom.name = a->str = NULL;
	a->dom_uuids = NULL;
}

const char *api_virt_error_prefix(int code)
{
	switch (code) {
	case VIRT_ERR_INTERNAL_ERROR:
		return "internal error";
	case VIRT_ERR_NO_MEMORY:
		return "out of memory";
	case VIRT_ERR_NO_SUPPORT:
		return "this function is not supported by the connection driver";
	case VIRT_ERR_NO_CONNECT:
		return "no connection driver available";
	case VIRT_ERR_INVALID_ARG:
		return "invalid argument";
	case VIRT_ERR_OPERATION_FAILED:
	case VIRT_ERR_DOM_EXIST:
		return "operation failed";
	case VIRT_ERR_XML_ERROR:
		return "XML error";
	case VIRT_ERR_OPERATION_DENIED:
		return "operation forbidden";
	case VIRT_ERR_RPC:
		return "RPC error";
	case VIRT_ERR_NO_DOMAIN:
		return "Domain not found";
	case VIRT_ERR_OPERATION_INVALID:
		return "Requested operation is not valid";
	case VIRT_ERR_CONFIG_UNSUPPORTED:
		return "unsupported configuration";
	case VIRT_ERR_OPERATION_TIMEOUT:
		return "Timed out during operation";
	case VIRT_ERR_ARGUMENT_UNSUPPORTED:
		return "argument unsupported";
	case VIRT_ERR_OPERATION_UNSUPPORTED:
		return "Operation not supported";
	case VIRT_ERR_XML_INVALID_SCHEMA:
		return "XML document failed to validate against schema";
	default:
		return NULL; /* system errors carry their whole text */
	}
}

int api_virt_error_from_errno(int err)
{
	switch (err) {
	case -ENOENT:
		return VIRT_ERR_NO_DOMAIN;
	case -EEXIST:
		return VIRT_ERR_DOM_EXIST;
	case -EBUSY:
		return VIRT_ERR_OPERATION_INVALID;
	case -ECHILD:
	case -EUSERS:
	case -ESHUTDOWN:
		return VIRT_ERR_OPERATION_FAILED;
	case -EINVAL:
	case -E2BIG:
		return VIRT_ERR_CONFIG_UNSUPPORTED;
	case -EPERM:
		return VIRT_ERR_OPERATION_DENIED;
	case -ERANGE:
		return VIRT_ERR_INVALID_ARG;
	case -ETIMEDOUT:
		return VIRT_ERR_OPERATION_TIMEOUT;
	case -EOPNOTSUPP:
		return VIRT_ERR_OPERATION_UNSUPPORTED;
	case -ENOMEM:
		return VIRT_ERR_NO_MEMORY;
	default:
		return VIRT_ERR_SYSTEM_ERROR;
	}
}

uint64_t api_virt_version_number(const char *dotted)
{
	uint64_t part[3] = { 0, 0, 0 };
	const char *p = dotted;

	for (int i = 0; i < 3 && *p; i++) {
		while (*p >= '0' && *p <= '9') {
			part[i] = part[i] * 10 + (uint64_t)(*p - '0');
			if (part[i] > 999)
				part[i] = 999;
			p++;
		}
		if (*p != '.')
			break;
		p++;
	}
	return part[0] * 1000000 + part[1] * 1000 + part[2];
}
