/*
 * api/virt.h — libvirt's remote protocol, spoken by lockstepd so that virsh and the libvirt
 * client library manage lockstep VMs with no libvirt daemon running.
 *
 * Four parts, all independent of any event loop so the fuzzers can drive them:
 *   - XDR (api/xdr.c): bounded readers and a growable writer, big-endian, 4-byte aligned.
 *   - sessions (api/virt_session.c): framing, header checks, keepalive, the connection
 *     procedures (AUTH_LIST, SUPPORTS_FEATURE, CONNECT_OPEN/CLOSE, GET_URI/TYPE/VERSION),
 *     read-only enforcement and dispatch of every other call to a handler table; replies may
 *     come later and out of order (matched by serial).
 *   - procedures (api/virt_proto.c): which procedures lockstep knows, how their arguments are
 *     laid out, and libvirt's error codes with the prefixes clients expect.
 *   - domain XML (api/domxml.c, api/domxml_out.c): libvirt domain XML <-> struct vmdef, and
 *     the capabilities document.
 *
 * The numbers below are the protocol's (libvirt 9.0.0, append-only); the names mirror
 * libvirt's (VIR_ERR_NO_DOMAIN is VIRT_ERR_NO_DOMAIN here).  Nothing from libvirt is linked.
 */
#ifndef LOCKSTEP_API_VIRT_H
#define LOCKSTEP_API_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmdef/vmdef.h"

/* ---- framing ---- */

#define VIRT_PROGRAM_REMOTE 0x20008086u
#define VIRT_PROGRAM_QEMU 0x20008087u
#define VIRT_PROGRAM_LXC 0x00068000u
#define VIRT_PROGRAM_KEEPALIVE 0x6b656570u
#define VIRT_PROTOCOL_VERSION 1u
#define VIRT_HEADER_LEN 28u
#define VIRT_PACKET_MAX ((16u << 20) + 4u) /* the length word counts itself */
/* What lockstepd reads before CONNECT_OPEN (AUTH_LIST, SUPPORTS_FEATURE, the URI) and on a
 * read-only connection (lookups and flags; no XML goes that way): a client nobody
 * authenticated cannot make the daemon hold 16 MiB. */
#define VIRT_PACKET_MAX_UNOPENED 4096u
#define VIRT_PACKET_MAX_READ_ONLY (64u << 10)
#define VIRT_STRING_MAX (4u << 20) /* REMOTE_STRING_MAX: XML documents, names */
#define VIRT_DOMAIN_LIST_MAX 16384u
#define VIRT_VCPUINFO_MAX 2048u
#define VIRT_CPUMAP_MAX 256u	    /* bytes in one PIN_VCPU map */
#define VIRT_CPUMAPS_MAX (1u << 20) /* bytes of maps in one GET_VCPUS/GET_VCPU_PIN_INFO reply */
#define VIRT_UUID_LEN 16

enum virt_msg_type {
	VIRT_CALL = 0,
	VIRT_REPLY = 1,
	VIRT_MESSAGE = 2, /* events and keepalive */
	VIRT_STREAM = 3,
	VIRT_CALL_WITH_FDS = 4,
	VIRT_REPLY_WITH_FDS = 5,
	VIRT_STREAM_HOLE = 6,
};

enum virt_status {
	VIRT_OK = 0,
	VIRT_ERROR = 1,
	VIRT_CONTINUE = 2,
};

enum virt_keepalive_proc {
	VIRT_KEEPALIVE_PING = 1,
	VIRT_KEEPALIVE_PONG = 2,
};

/* REMOTE procedures lockstep implements or must recognise (libvirt-procedures-9.0.0.tsv). */
enum virt_proc {
	VIRT_PROC_CONNECT_OPEN = 1,
	VIRT_PROC_CONNECT_CLOSE = 2,
	VIRT_PROC_CONNECT_GET_TYPE = 3,
	VIRT_PROC_CONNECT_GET_VERSION = 4,
	VIRT_PROC_CONNECT_GET_MAX_VCPUS = 5,
	VIRT_PROC_NODE_GET_INFO = 6,
	VIRT_PROC_CONNECT_GET_CAPABILITIES = 7,
	VIRT_PROC_DOMAIN_CREATE = 9,
	VIRT_PROC_DOMAIN_CREATE_XML = 10,
	VIRT_PROC_DOMAIN_DEFINE_XML = 11,
	VIRT_PROC_DOMAIN_DESTROY = 12,
	VIRT_PROC_DOMAIN_GET_XML_DESC = 14,
	VIRT_PROC_DOMAIN_GET_AUTOSTART = 15,
	VIRT_PROC_DOMAIN_GET_INFO = 16,
	VIRT_PROC_DOMAIN_GET_MAX_MEMORY = 17,
	VIRT_PROC_DOMAIN_GET_MAX_VCPUS = 18,
	VIRT_PROC_DOMAIN_GET_OS_TYPE = 19,
	VIRT_PROC_DOMAIN_GET_VCPUS = 20,
	VIRT_PROC_CONNECT_LIST_DEFINED_DOMAINS = 21,
	VIRT_PROC_DOMAIN_LOOKUP_BY_ID = 22,
	VIRT_PROC_DOMAIN_LOOKUP_BY_NAME = 23,
	VIRT_PROC_DOMAIN_LOOKUP_BY_UUID = 24,
	VIRT_PROC_CONNECT_NUM_OF_DEFINED_DOMAINS = 25,
	VIRT_PROC_DOMAIN_PIN_VCPU = 26,
	VIRT_PROC_DOMAIN_REBOOT = 27,
	VIRT_PROC_DOMAIN_SET_AUTOSTART = 29,
	VIRT_PROC_DOMAIN_SHUTDOWN = 33,
	VIRT_PROC_DOMAIN_UNDEFINE = 35,
	VIRT_PROC_CONNECT_LIST_DOMAINS = 37,
	VIRT_PROC_CONNECT_NUM_OF_DOMAINS = 51,
	VIRT_PROC_CONNECT_GET_HOSTNAME = 59,
	VIRT_PROC_CONNECT_SUPPORTS_FEATURE = 60,
	VIRT_PROC_AUTH_LIST = 66,
	VIRT_PROC_CONNECT_GET_URI = 110,
	VIRT_PROC_NODE_GET_SECURITY_MODEL = 122,
	VIRT_PROC_CONNECT_IS_SECURE = 149,
	VIRT_PROC_DOMAIN_IS_ACTIVE = 150,
	VIRT_PROC_DOMAIN_IS_PERSISTENT = 151,
	VIRT_PROC_CONNECT_GET_LIB_VERSION = 157,
	VIRT_PROC_DOMAIN_MEMORY_STATS = 159,
	VIRT_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE = 183,
	VIRT_PROC_DOMAIN_SNAPSHOT_NUM = 187,
	VIRT_PROC_DOMAIN_CREATE_WITH_FLAGS = 196,
	VIRT_PROC_DOMAIN_GET_VCPUS_FLAGS = 200,
	VIRT_PROC_DOMAIN_OPEN_CONSOLE = 201,
	VIRT_PROC_DOMAIN_GET_STATE = 212,
	VIRT_PROC_DOMAIN_PIN_VCPU_FLAGS = 225,
	VIRT_PROC_DOMAIN_GET_CONTROL_INFO = 229,
	VIRT_PROC_DOMAIN_GET_VCPU_PIN_INFO = 230,
	VIRT_PROC_DOMAIN_UNDEFINE_FLAGS = 231,
	VIRT_PROC_DOMAIN_DESTROY_FLAGS = 234,
	VIRT_PROC_DOMAIN_RESET = 245,
	VIRT_PROC_DOMAIN_SHUTDOWN_FLAGS = 258,
	VIRT_PROC_CONNECT_LIST_ALL_DOMAINS = 273,
	VIRT_PROC_NODE_GET_CPU_MAP = 293,
	VIRT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY = 316,
	VIRT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY = 317,
	VIRT_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE = 318,
	VIRT_PROC_DOMAIN_EVENT_CALLBACK_REBOOT = 319,
	VIRT_PROC_CONNECT_GET_ALL_DOMAIN_STATS = 344,
	VIRT_PROC_DOMAIN_DEFINE_XML_FLAGS = 350,
	VIRT_PROC_DOMAIN_INTERFACE_ADDRESSES = 353,
	VIRT_PROC_DOMAIN_GET_MESSAGES = 426,
	VIRT_PROC_MAX = 511, /* the handler table's size; libvirt 9.0.0 ends at 443 */
};

/* virDrvFeature: what CONNECT_SUPPORTS_FEATURE asks about. */
enum virt_feature {
	VIRT_FEATURE_PROGRAM_KEEPALIVE = 10,
	VIRT_FEATURE_REMOTE_EVENT_CALLBACK = 14,
	VIRT_FEATURE_REMOTE_CLOSE_CALLBACK = 15,
};

/* virErrorNumber: the codes lockstep sends. */
enum virt_error {
	VIRT_ERR_INTERNAL_ERROR = 1,
	VIRT_ERR_NO_MEMORY = 2,
	VIRT_ERR_NO_SUPPORT = 3, /* clients fall back to older procedures on this one only */
	VIRT_ERR_NO_CONNECT = 5,
	VIRT_ERR_INVALID_ARG = 8,
	VIRT_ERR_OPERATION_FAILED = 9,
	VIRT_ERR_XML_ERROR = 27,
	VIRT_ERR_DOM_EXIST = 28,
	VIRT_ERR_OPERATION_DENIED = 29,
	VIRT_ERR_SYSTEM_ERROR = 38,
	VIRT_ERR_RPC = 39,
	VIRT_ERR_NO_DOMAIN = 42,
	VIRT_ERR_OPERATION_INVALID = 55,
	VIRT_ERR_CONFIG_UNSUPPORTED = 67,
	VIRT_ERR_OPERATION_TIMEOUT = 68,
	VIRT_ERR_ARGUMENT_UNSUPPORTED = 74,
	VIRT_ERR_OPERATION_UNSUPPORTED = 84,
	VIRT_ERR_XML_INVALID_SCHEMA = 92,
};

/* virErrorDomain: where an error comes from. */
enum virt_error_domain {
	VIRT_FROM_NONE = 0,
	VIRT_FROM_XML = 5,
	VIRT_FROM_DOM = 6,
	VIRT_FROM_RPC = 7,
	VIRT_FROM_DOMAIN = 20, /* domain configuration */
};

/* virDomainState and the reasons virsh prints with `domstate --reason`. */
enum virt_domain_state {
	VIRT_DOMAIN_NOSTATE = 0,
	VIRT_DOMAIN_RUNNING = 1,
	VIRT_DOMAIN_BLOCKED = 2,
	VIRT_DOMAIN_PAUSED = 3,
	VIRT_DOMAIN_SHUTDOWN = 4, /* being shut down */
	VIRT_DOMAIN_SHUTOFF = 5,
	VIRT_DOMAIN_CRASHED = 6,
};

enum virt_domain_reason {
	VIRT_REASON_UNKNOWN = 0,
	VIRT_RUNNING_BOOTED = 1,
	VIRT_PAUSED_STARTING_UP = 11,
	VIRT_SHUTDOWN_USER = 1,
	VIRT_SHUTOFF_SHUTDOWN = 1,
	VIRT_SHUTOFF_DESTROYED = 2,
	VIRT_SHUTOFF_CRASHED = 3,
	VIRT_SHUTOFF_FAILED = 6,
};

/* virDomainEventType and details (lifecycle events). */
enum virt_event {
	VIRT_EVENT_DEFINED = 0,
	VIRT_EVENT_UNDEFINED = 1,
	VIRT_EVENT_STARTED = 2,
	VIRT_EVENT_STOPPED = 5,
	VIRT_EVENT_SHUTDOWN = 6,
	VIRT_EVENT_CRASHED = 8,
};

enum virt_event_detail {
	VIRT_DETAIL_DEFINED_ADDED = 0,
	VIRT_DETAIL_DEFINED_UPDATED = 1,
	VIRT_DETAIL_UNDEFINED_REMOVED = 0,
	VIRT_DETAIL_STARTED_BOOTED = 0,
	VIRT_DETAIL_STOPPED_SHUTDOWN = 0,
	VIRT_DETAIL_STOPPED_DESTROYED = 1,
	VIRT_DETAIL_STOPPED_CRASHED = 2,
	VIRT_DETAIL_STOPPED_FAILED = 5,
	VIRT_DETAIL_SHUTDOWN_FINISHED = 0,
	VIRT_DETAIL_CRASHED_PANICKED = 0,
};

/* virDomainEventID: which callbacks a client may register. */
enum virt_event_id {
	VIRT_EVENT_ID_LIFECYCLE = 0,
	VIRT_EVENT_ID_REBOOT = 1,
};

/* VIR_CONNECT_LIST_DOMAINS_* filters, in groups: a domain passes a group if the group has no
 * bit set or the domain matches one of the set bits. */
enum virt_list_flag {
	VIRT_LIST_ACTIVE = 1u << 0,
	VIRT_LIST_INACTIVE = 1u << 1,
	VIRT_LIST_PERSISTENT = 1u << 2,
	VIRT_LIST_TRANSIENT = 1u << 3,
	VIRT_LIST_RUNNING = 1u << 4,
	VIRT_LIST_PAUSED = 1u << 5,
	VIRT_LIST_SHUTOFF = 1u << 6,
	VIRT_LIST_OTHER = 1u << 7,
	VIRT_LIST_MANAGEDSAVE = 1u << 8,
	VIRT_LIST_NO_MANAGEDSAVE = 1u << 9,
	VIRT_LIST_AUTOSTART = 1u << 10,
	VIRT_LIST_NO_AUTOSTART = 1u << 11,
	VIRT_LIST_HAS_SNAPSHOT = 1u << 12,
	VIRT_LIST_NO_SNAPSHOT = 1u << 13,
	VIRT_LIST_HAS_CHECKPOINT = 1u << 14,
	VIRT_LIST_NO_CHECKPOINT = 1u << 15,
};

/* Flags of single procedures that lockstep honours. */
#define VIRT_AFFECT_LIVE (1u << 0) /* VIR_DOMAIN_AFFECT_LIVE, VIR_DOMAIN_VCPU_LIVE */
#define VIRT_AFFECT_CONFIG (1u << 1)
#define VIRT_VCPU_MAXIMUM (1u << 2)
#define VIRT_VCPU_GUEST (1u << 3)
#define VIRT_XML_SECURE (1u << 0)
#define VIRT_XML_INACTIVE (1u << 1)
#define VIRT_XML_UPDATE_CPU (1u << 2)
#define VIRT_XML_MIGRATABLE (1u << 3)
#define VIRT_START_PAUSED (1u << 0)
#define VIRT_START_AUTODESTROY (1u << 1)
#define VIRT_START_BYPASS_CACHE (1u << 2)
#define VIRT_START_FORCE_BOOT (1u << 3)
#define VIRT_START_VALIDATE (1u << 4)
#define VIRT_DEFINE_VALIDATE (1u << 0)
#define VIRT_DESTROY_GRACEFUL (1u << 0)
#define VIRT_SHUTDOWN_ACPI_POWER_BTN (1u << 0)
#define VIRT_UNDEFINE_ALL 0x7fu /* managed save, snapshots, nvram, checkpoints, TPM: none exist */
#define VIRT_CONNECT_RO (1u << 0)
#define VIRT_CONSOLE_FORCE (1u << 0) /* VIR_DOMAIN_CONSOLE_FORCE: take it from another client */
#define VIRT_CONSOLE_SAFE (1u << 1)  /* VIR_DOMAIN_CONSOLE_SAFE: only with safe console handling */

enum virt_vcpu_state {
	VIRT_VCPU_OFFLINE = 0,
	VIRT_VCPU_RUNNING = 1,
	VIRT_VCPU_BLOCKED = 2,
};

enum virt_control_state {
	VIRT_CONTROL_OK = 0,
	VIRT_CONTROL_JOB = 1,
	VIRT_CONTROL_OCCUPIED = 2,
	VIRT_CONTROL_ERROR = 3,
};

#define VIRT_CONTROL_ERROR_REASON_MONITOR 2u

/* libvirt encodes versions as major * 1000000 + minor * 1000 + micro. */
uint64_t api_virt_version_number(const char *dotted);

/* ---- XDR (api/xdr.c) ---- */

/* A reader over one packet's payload.  Every getter checks the bytes left first; after a
 * failure `bad` stays set and later getters fail too, so a decoder may check once at the end. */
struct api_xdr_in {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

void api_xdr_in_init(struct api_xdr_in *in, const void *buf, size_t len);
int api_xdr_get_u32(struct api_xdr_in *in, uint32_t *out);
int api_xdr_get_i32(struct api_xdr_in *in, int32_t *out);
int api_xdr_get_u64(struct api_xdr_in *in, uint64_t *out);
/* opaque[n]: exactly n bytes plus padding. */
int api_xdr_get_fixed(struct api_xdr_in *in, void *out, size_t n);
/* opaque<max>: a view into the packet (valid while the packet is). */
int api_xdr_get_var(struct api_xdr_in *in, size_t max, const uint8_t **data, uint32_t *len);
/* string<max>: a malloc'ed, NUL-terminated copy; an embedded NUL is malformed. */
int api_xdr_get_string(struct api_xdr_in *in, size_t max, char **out);
/* The payload was read to its end with nothing left over. */
bool api_xdr_finished(const struct api_xdr_in *in);

/* A growable writer.  Putters never fail; the first allocation failure or overflow of `max`
 * sets `failed` and later puts are dropped, so a builder checks once when it is done. */
struct api_xdr_out {
	uint8_t *buf;
	size_t len, cap, max;
	bool failed;
};

void api_xdr_out_init(struct api_xdr_out *out, size_t max);
void api_xdr_out_fini(struct api_xdr_out *out);
void api_xdr_put_u32(struct api_xdr_out *out, uint32_t v);
void api_xdr_put_i32(struct api_xdr_out *out, int32_t v);
void api_xdr_put_u64(struct api_xdr_out *out, uint64_t v);
void api_xdr_put_fixed(struct api_xdr_out *out, const void *data, size_t n);
void api_xdr_put_var(struct api_xdr_out *out, const void *data, size_t n);
void api_xdr_put_string(struct api_xdr_out *out, const char *s);
/* char x[n] / char x<n>: rpcgen sends every char as a 4-byte int.  `fixed` pads s to n chars
 * (with NULs) and sends no length; otherwise the length is strlen(s) + 1 (the NUL). */
void api_xdr_put_chars(struct api_xdr_out *out, const char *s, size_t n, bool fixed);
/* remote_nonnull_domain: name, 16-byte uuid, id (-1 when inactive). */
void api_xdr_put_domain(struct api_xdr_out *out, const char *name, const uint8_t uuid[16],
			int32_t id);

/* UUIDs: "8f3169e4-9e17-5347-a623-47fff434bb04" <-> 16 bytes.  Parsing also takes the
 * undashed form; -EINVAL for anything else. */
int api_virt_uuid_parse(const char *text, uint8_t out[16]);
void api_virt_uuid_format(const uint8_t uuid[16], char out[37]);

/* ---- procedures and errors (api/virt_proto.c) ---- */

/* A decoded call.  Strings are malloc'ed by the decoder and freed after the handler returns;
 * `map` points into the packet.  Which fields a procedure fills is its argument layout. */
struct api_virt_args {
	bool has_dom; /* a remote_nonnull_domain, or a remote_domain that was present */
	struct {
		char *name;
		uint8_t uuid[VIRT_UUID_LEN];
		int32_t id; /* the client's cached copy: often stale, never trust it */
	} dom;
	bool has_str; /* a string, or a remote_string that was present */
	char *str;
	uint8_t uuid[VIRT_UUID_LEN];
	int32_t num[3]; /* int and unsigned int arguments in order (unsigned ones reinterpreted) */
	uint32_t flags; /* the trailing `unsigned int flags` */
	const uint8_t *map;
	uint32_t map_len;
	uint8_t (*dom_uuids)[VIRT_UUID_LEN]; /* a list of domains (their uuids), malloc'ed */
	uint32_t nr_doms;
};

struct api_virt_call;

typedef void (*api_virt_fn)(void *ctx, struct api_virt_call *call,
			    const struct api_virt_args *args);

struct api_virt_handler {
	int32_t proc;
	api_virt_fn fn;
	uint32_t flags; /* the flags this handler honours; others are refused before it runs */
};

/* Handlers indexed by procedure number, built from one or more tables. */
struct api_virt_handlers {
	const struct api_virt_handler *by_proc[VIRT_PROC_MAX + 1];
};

/* Adds a table; -EINVAL if a procedure is unknown to api/ (no argument layout) or repeated. */
int api_virt_handlers_add(struct api_virt_handlers *h, const struct api_virt_handler *table,
			  size_t n);

/* The procedure's name ("DOMAIN_LOOKUP_BY_NAME"), or NULL if lockstep does not know it. */
const char *api_virt_proc_name(int32_t proc);
/* The name libvirt gives any REMOTE procedure ("DOMAIN_BLOCK_STATS"), known to lockstep or
 * not, or NULL for a number libvirt 9.0.0 does not have (api/virt_names.c). */
const char *api_virt_proc_label(int32_t proc);
/* Whether a procedure changes state (refused on read-only connections). */
bool api_virt_proc_writes(int32_t proc);
/* Whether a read-only connection may make this call: it changes nothing and reveals no
 * secured data (libvirt's ACL for it, with these arguments, asks no more than read access). */
bool api_virt_read_only_allows(int32_t proc, const struct api_virt_args *args);
/* The argument layout of a procedure, one letter per field (api/virt_proto.c), for tests and
 * fuzzers that build calls; NULL if lockstep does not know it. */
const char *api_virt_proc_layout(int32_t proc);
/* Whether a procedure opens a stream (STREAM packets on its serial follow its reply). */
bool api_virt_proc_streams(int32_t proc);
/* Decodes a call's arguments; -EBADMSG if the payload does not match the layout exactly.
 * api_virt_args_free releases what a decode (even a failed one) allocated. */
int api_virt_args_decode(int32_t proc, const void *payload, size_t len, struct api_virt_args *args);
void api_virt_args_free(struct api_virt_args *args);
/* The text libvirt clients put before the detail of an error with this code. */
const char *api_virt_error_prefix(int code);
/*
 * The libvirt code for an operation's -errno (daemon/ops.h's convention): -ENOENT no domain,
 * -EEXIST domain exists, -EBUSY operation invalid, -ECHILD operation failed, -EINVAL and
 * -E2BIG unsupported configuration, -ERANGE invalid argument, -EUSERS operation failed,
 * -ETIMEDOUT timeout, -ESHUTDOWN operation failed, -EOPNOTSUPP unsupported, -ENOMEM no
 * memory; any other errno is a system error.
 */
int api_virt_error_from_errno(int err);

/* ---- sessions (api/virt_session.c) ---- */

struct api_virt_session;

struct api_virt_config {
	const struct api_virt_handlers *handlers;
	void *ctx;	      /* first argument of every handler */
	const char *type;     /* CONNECT_GET_TYPE */
	const char *scheme;   /* CONNECT_OPEN accepts "<scheme>:///..." and "" only */
	uint64_t version;     /* CONNECT_GET_VERSION and GET_LIB_VERSION */
	bool read_only;	      /* the socket's; CONNECT_OPEN's flag can only add to it */
	unsigned max_pending; /* calls in flight; more are refused with an error */
	/* The largest packet taken: once open read-write (at most VIRT_PACKET_MAX), before
	 * CONNECT_OPEN (at most VIRT_PACKET_MAX_UNOPENED), and open read-only (at most
	 * VIRT_PACKET_MAX_READ_ONLY); 0 = that most. */
	size_t max_packet, max_packet_unopened, max_packet_read_only;
};

struct api_virt_session_ops {
	/* Takes a complete malloc'ed packet; frees it when written.  Must not call back into
	 * the session. */
	void (*send)(void *opaque, uint8_t *packet, size_t len);
	/*
	 * A STREAM packet from the client for the stream its procedure and serial name (the
	 * call that opened it): status VIRT_CONTINUE carries data, VIRT_OK finishes the stream
	 * and VIRT_ERROR aborts it; each of the last two wants api_virt_stream_confirm().  The
	 * owner matches the stream; one it does not know is its to answer or ignore.  NULL:
	 * stream packets break the protocol.
	 */
	void (*stream)(void *opaque, int32_t proc, uint32_t serial, int32_t status,
		       const uint8_t *data, size_t len);
};

int api_virt_session_new(const struct api_virt_config *cfg, const struct api_virt_session_ops *ops,
			 void *opaque, struct api_virt_session **out);
/* Ends the session for its owner: calls still running keep it alive, their replies dropped. */
void api_virt_session_close(struct api_virt_session *s);
/*
 * Feeds received bytes; complete packets are dispatched at once.  Returns 0, or -EPROTO when
 * the peer broke the protocol: an error reply has then been sent where the header allowed one,
 * api_virt_session_error() says why, and the owner must close the connection (after writing
 * what was sent).  Nothing more is read after an error.
 */
int api_virt_session_feed(struct api_virt_session *s, const void *data, size_t len);
const char *api_virt_session_error(const struct api_virt_session *s);
bool api_virt_session_read_only(const struct api_virt_session *s);
/* CONNECT_OPEN succeeded and CONNECT_CLOSE has not come: events may be sent. */
bool api_virt_session_open(const struct api_virt_session *s);
unsigned api_virt_session_pending(const struct api_virt_session *s);
/* Bytes the session holds of packets still arriving (memory a client makes the daemon keep). */
size_t api_virt_session_buffered(const struct api_virt_session *s);
/* The owner drops the connection (a deadline, a memory budget): tells the peer why with an
 * RPC error, as a protocol error would, and reads nothing more. */
void api_virt_session_abort(struct api_virt_session *s, const char *why);
/* What a client turned away at connect gets: the error reply to the call every libvirt
 * client makes first (AUTH_LIST, serial 0), so it reports `detail`.  malloc'ed; NULL when
 * memory runs out. */
uint8_t *api_virt_refusal_packet(int code, const char *detail, size_t *len);
/* Sends a MESSAGE (an event) of the REMOTE program.  Consumes `payload`. */
void api_virt_session_send_event(struct api_virt_session *s, int32_t proc,
				 struct api_xdr_out *payload);

/*
 * Streams (virStream over the wire: `virsh console`).  A handler that opens one answers its
 * call and then sends on the call's procedure and serial: data as STREAM/CONTINUE packets,
 * the end of the stream as an empty one (libvirt's EOF), or an error that ends it as
 * STREAM/ERROR with a remote_error.  The client's finish and abort each get an empty
 * STREAM/OK confirmation.  Nothing is sent once the session has closed.
 */
uint32_t api_virt_call_serial(const struct api_virt_call *call);
void api_virt_stream_data(struct api_virt_session *s, int32_t proc, uint32_t serial,
			  const void *data, size_t len);
void api_virt_stream_confirm(struct api_virt_session *s, int32_t proc, uint32_t serial);
void api_virt_stream_error(struct api_virt_session *s, int32_t proc, uint32_t serial, int code,
			   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Answers a call once: `ret` is the reply payload (NULL for void), consumed.  After the session
 * has closed the answer is dropped, but the call must still be answered to be freed. */
void api_virt_reply(struct api_virt_call *call, struct api_xdr_out *ret);
void api_virt_fail(struct api_virt_call *call, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool api_virt_call_cancelled(const struct api_virt_call *call);
int32_t api_virt_call_proc(const struct api_virt_call *call);

/* ---- domain XML (api/domxml.c, api/domxml_out.c) ---- */

#define DOMXML_NAMESPACE "urn:lockstep:domain:1"
#define DOMXML_PREFIX "lockstep"
#define DOMXML_MAX (1u << 20)

/*
 * Parses libvirt domain XML into `cfg` (vmdef_init'ed; overwritten only on success) and
 * validates it.  -EINVAL with a reason in `err` for malformed XML, an element lockstep cannot
 * honour, or a definition vmdef_validate refuses.  `schema`, if not NULL, is a RelaxNG
 * file the document must also satisfy (define --validate): -EPROTO on a mismatch.
 */
int domxml_parse(const char *xml, size_t len, const char *schema, struct vmdef *cfg, char *err,
		 size_t err_len);

struct domxml_live {
	int id;		      /* domain id, -1 when inactive */
	const char *console;  /* where the console goes, when the definition names no log */
	const char *emulator; /* the lockstep-vm binary */
};

/* The definition as libvirt domain XML (malloc'ed, NUL-terminated); `live` NULL for the
 * inactive form.  NULL when memory runs out. */
char *domxml_format(const struct vmdef *cfg, const struct domxml_live *live);

/* Host facts for the capabilities document and NODE_GET_INFO. */
struct domxml_host_cpu {
	unsigned id, socket, core;
	char siblings[64]; /* the CPU list of its core */
};

struct domxml_host {
	const char *arch;     /* "x86_64" */
	const char *emulator; /* lockstep-vm */
	const char *machine;  /* "lockstep" */
	unsigned max_vcpus;
	unsigned sockets, cores, threads; /* cores per socket, threads per core */
	uint64_t memory_kib;
	bool iommu;
	unsigned nr_cpus;
	const struct domxml_host_cpu *cpus;
};

char *domxml_capabilities(const struct domxml_host *host);

#endif /* LOCKSTEP_API_VIRT_H */
