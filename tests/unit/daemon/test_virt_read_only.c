/*
 * The read-only libvirt socket, procedure by procedure: every REMOTE procedure lockstep's
 * table knows is called on a read-only connection of an in-process lockstepd (its real handler
 * tables), with each flag or argument value libvirt's access rules single out, and must be
 * refused with VIR_ERR_OPERATION_DENIED exactly when libvirt's ACL annotation for it
 * (remote_protocol.x's @acl lines) asks for more than read access: a change of state, secured
 * data (VIR_DOMAIN_XML_SECURE), a device or the guest's agent.  A procedure lockstep knows
 * but has no ACL fact for here fails the test, so a new one cannot slip past.  Every other
 * number of the table (up to VIRT_PROC_MAX), numbers past it, and the QEMU and LXC programs'
 * procedures are called too and must be refused as not implemented, with no handler behind
 * them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>

#include <cmocka.h>

#include "api/virt.h"
#include "daemon/virt/virt.h"
#include "tests/unit/daemon/dtest.h"

/*
 * libvirt's @acl annotations for the procedures lockstep knows (and those other front-end work
 * adds): object:permission, with the flag (or argument value) the rule is limited to.
 */
#define MAX_RULES 4
#define ANY_ARG -1

struct acl_rule {
	const char *perm;
	uint32_t flag; /* the rule applies only with this flag set; 0 = always */
	int arg;       /* ... or only when num[arg] == value; ANY_ARG = always */
	int32_t value;
};

struct acl_fact {
	int32_t proc;
	struct acl_rule rules[MAX_RULES];
};

#define R(p)                              \
	{                                 \
		.perm = p, .arg = ANY_ARG \
	}
#define RF(p, f)                                     \
	{                                            \
		.perm = p, .flag = f, .arg = ANY_ARG \
	}
#define RA(p, a, v)                             \
	{                                       \
		.perm = p, .arg = a, .value = v \
	}

static const struct acl_fact facts[] = {
	{ 1, { R("connect:getattr") } },		  /* CONNECT_OPEN */
	{ 2, { R("none") } },				  /* CONNECT_CLOSE */
	{ 3, { R("connect:getattr") } },		  /* CONNECT_GET_TYPE */
	{ 4, { R("connect:getattr") } },		  /* CONNECT_GET_VERSION */
	{ 5, { R("connect:read") } },			  /* CONNECT_GET_MAX_VCPUS */
	{ 6, { R("connect:read") } },			  /* NODE_GET_INFO */
	{ 7, { R("connect:read") } },			  /* CONNECT_GET_CAPABILITIES */
	{ 9, { R("domain:start") } },			  /* DOMAIN_CREATE */
	{ 10, { R("domain:write"), R("domain:start") } }, /* DOMAIN_CREATE_XML */
	{ 11, { R("domain:write"), R("domain:save") } },  /* DOMAIN_DEFINE_XML */
	{ 12, { R("domain:stop") } },			  /* DOMAIN_DESTROY */
	{ 14,						  /* DOMAIN_GET_XML_DESC */
	  { R("domain:read"), RF("domain:read_secure", VIRT_XML_SECURE),
	    RF("domain:read_secure", VIRT_XML_MIGRATABLE) } },
	{ 15, { R("domain:read") } },		 /* DOMAIN_GET_AUTOSTART */
	{ 16, { R("domain:read") } },		 /* DOMAIN_GET_INFO */
	{ 17, { R("domain:read") } },		 /* DOMAIN_GET_MAX_MEMORY */
	{ 18, { R("domain:read") } },		 /* DOMAIN_GET_MAX_VCPUS */
	{ 19, { R("domain:read") } },		 /* DOMAIN_GET_OS_TYPE */
	{ 20, { R("domain:read") } },		 /* DOMAIN_GET_VCPUS */
	{ 21, { R("connect:search_domains") } }, /* CONNECT_LIST_DEFINED_DOMAINS */
	{ 22, { R("domain:getattr") } },	 /* DOMAIN_LOOKUP_BY_ID */
	{ 23, { R("domain:getattr") } },	 /* DOMAIN_LOOKUP_BY_NAME */
	{ 24, { R("domain:getattr") } },	 /* DOMAIN_LOOKUP_BY_UUID */
	{ 25, { R("connect:search_domains") } }, /* CONNECT_NUM_OF_DEFINED_DOMAINS */
	{ 26, { R("domain:write") } },		 /* DOMAIN_PIN_VCPU */
	{ 27, { R("domain:init_control") } },	 /* DOMAIN_REBOOT (+ write with the agent) */
	{ 29, { R("domain:write") } },		 /* DOMAIN_SET_AUTOSTART */
	{ 33, { R("domain:init_control") } },	 /* DOMAIN_SHUTDOWN */
	{ 35, { R("domain:delete") } },		 /* DOMAIN_UNDEFINE */
	{ 37, { R("connect:search_domains") } }, /* CONNECT_LIST_DOMAINS */
	{ 51, { R("connect:search_domains") } }, /* CONNECT_NUM_OF_DOMAINS */
	{ 59, { R("connect:getattr") } },	 /* CONNECT_GET_HOSTNAME */
	{ 60, { R("connect:getattr") } },	 /* CONNECT_SUPPORTS_FEATURE */
	{ 66, { R("none") } },			 /* AUTH_LIST */
	{ 110, { R("connect:getattr") } },	 /* CONNECT_GET_URI */
	{ 121, { R("domain:read") } },		 /* DOMAIN_GET_SECURITY_LABEL */
	{ 122, { R("connect:read") } },		 /* NODE_GET_SECURITY_MODEL */
	{ 149, { R("none") } },			 /* CONNECT_IS_SECURE */
	{ 150, { R("domain:read") } },		 /* DOMAIN_IS_ACTIVE */
	{ 151, { R("domain:read") } },		 /* DOMAIN_IS_PERSISTENT */
	{ 157, { R("connect:getattr") } },	 /* CONNECT_GET_LIB_VERSION */
	{ 159, { R("domain:read") } },		 /* DOMAIN_MEMORY_STATS */
	{ 163, { R("domain:read") } },		 /* DOMAIN_GET_JOB_INFO */
	{ 183, { R("domain:read") } },		 /* DOMAIN_HAS_MANAGED_SAVE_IMAGE */
	{ 187, { R("domain:read") } },		 /* DOMAIN_SNAPSHOT_NUM */
	{ 196, { R("domain:start") } },		 /* DOMAIN_CREATE_WITH_FLAGS */
	{ 200,					 /* DOMAIN_GET_VCPUS_FLAGS */
	  { R("domain:read"), RF("domain:write", VIRT_VCPU_GUEST) } },
	{ 201, { R("domain:open_device") } }, /* DOMAIN_OPEN_CONSOLE */
	{ 212, { R("domain:read") } },	      /* DOMAIN_GET_STATE */
	{ 225,				      /* DOMAIN_PIN_VCPU_FLAGS */
	  { R("domain:write"), RF("domain:save", VIRT_AFFECT_CONFIG) } },
	{ 229, { R("domain:read") } },	       /* DOMAIN_GET_CONTROL_INFO */
	{ 230, { R("domain:read") } },	       /* DOMAIN_GET_VCPU_PIN_INFO */
	{ 231, { R("domain:delete") } },       /* DOMAIN_UNDEFINE_FLAGS */
	{ 234, { R("domain:stop") } },	       /* DOMAIN_DESTROY_FLAGS */
	{ 245, { R("domain:reset") } },	       /* DOMAIN_RESET */
	{ 258, { R("domain:init_control") } }, /* DOMAIN_SHUTDOWN_FLAGS (+ write with the agent) */
	{ 273, { R("connect:search_domains") } },	  /* CONNECT_LIST_ALL_DOMAINS */
	{ 293, { R("connect:read") } },			  /* NODE_GET_CPU_MAP */
	{ 316, { R("connect:search_domains") } },	  /* ..._EVENT_CALLBACK_REGISTER_ANY */
	{ 317, { R("connect:read") } },			  /* ..._EVENT_CALLBACK_DEREGISTER_ANY */
	{ 342, { R("connect:write") } },		  /* CONNECT_GET_DOMAIN_CAPABILITIES */
	{ 344, { R("connect:search_domains") } },	  /* CONNECT_GET_ALL_DOMAIN_STATS */
	{ 350, { R("domain:write"), R("domain:save") } }, /* DOMAIN_DEFINE_XML_FLAGS */
	{ 353, /* DOMAIN_INTERFACE_ADDRESSES: source 1 = the guest agent */
	  { R("domain:read"), RA("domain:write", 0, 1) } },
	{ 426, { R("domain:read") } }, /* DOMAIN_GET_MESSAGES */
};

static const struct acl_fact *fact_of(int32_t proc)
{
	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
		if (facts[i].proc == proc)
			return &facts[i];
	return NULL;
}

/* Reading is getattr, read and search_*: anything else changes state or reveals more. */
static bool perm_reads(const char *perm)
{
	const char *p = strchr(perm, ':');

	p = p ? p + 1 : perm;
	return !strcmp(p, "none") || !strcmp(p, "getattr") || !strcmp(p, "read") ||
	       !strncmp(p, "search_", 7);
}

/* One way of calling a procedure: its flags and its first int argument. */
struct variant {
	uint32_t flags;
	int32_t num0;
};

/* The first rule that applies to this call and asks more than read access, or NULL. */
static const char *beyond_read(const struct acl_fact *f, const struct variant *v)
{
	for (int i = 0; i < MAX_RULES && f->rules[i].perm; i++) {
		const struct acl_rule *r = &f->rules[i];
		bool applies = (!r->flag || (v->flags & r->flag)) &&
			       (r->arg == ANY_ARG || v->num0 == r->value);

		if (applies && !perm_reads(r->perm))
			return r->perm;
	}
	return NULL;
}

/* ---- an in-process connection ---- */

struct reply {
	uint32_t serial;
	int32_t status, code;
	char message[512];
};

struct client {
	struct dtest t;
	struct virt_conn *conn;
	uint32_t serial;
	struct reply last;
	bool got;
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void sink(void *arg, uint8_t *pkt, size_t len)
{
	struct client *c = arg;
	struct api_xdr_in in;
	int32_t code = 0, domain;
	uint32_t present;
	char *msg = NULL;

	if (be32(pkt + 16) != VIRT_REPLY || be32(pkt + 20) != c->serial) {
		free(pkt); /* events, or replies to calls the test no longer waits for */
		return;
	}
	c->last = (struct reply){ .serial = be32(pkt + 20), .status = (int32_t)be32(pkt + 24) };
	if (c->last.status == VIRT_ERROR) {
		api_xdr_in_init(&in, pkt + VIRT_HEADER_LEN, len - VIRT_HEADER_LEN);
		api_xdr_get_i32(&in, &code);
		api_xdr_get_i32(&in, &domain);
		if (!api_xdr_get_u32(&in, &present) && present &&
		    !api_xdr_get_string(&in, 4096, &msg))
			snprintf(c->last.message, sizeof(c->last.message), "%s", msg);
		free(msg);
		c->last.code = code;
	}
	c->got = true;
	free(pkt);
}

static bool replied(struct dtest *t, void *arg)
{
	return ((struct client *)arg)->got;
}

/* Sends a call of `prog` (its payload consumed) and waits for its reply. */
static const struct reply *call_prog(struct client *c, uint32_t prog, int32_t proc,
				     struct api_xdr_out *args)
{
	struct api_xdr_out pkt;

	c->serial++;
	c->got = false;
	api_xdr_out_init(&pkt, 1 << 20);
	api_xdr_put_u32(&pkt, VIRT_HEADER_LEN + (uint32_t)args->len);
	api_xdr_put_u32(&pkt, prog);
	api_xdr_put_u32(&pkt, VIRT_PROTOCOL_VERSION);
	api_xdr_put_i32(&pkt, proc);
	api_xdr_put_i32(&pkt, VIRT_CALL);
	api_xdr_put_u32(&pkt, c->serial);
	api_xdr_put_i32(&pkt, VIRT_OK);
	api_xdr_put_fixed(&pkt, args->buf, args->len);
	api_xdr_out_fini(args);
	assert_int_equal(api_virt_session_feed(c->conn->session, pkt.buf, pkt.len), 0);
	api_xdr_out_fini(&pkt);
	if (!dtest_wait(&c->t, replied, c))
		fail_msg("no reply to procedure %d", proc);
	return &c->last;
}

static const struct reply *call(struct client *c, int32_t proc, struct api_xdr_out *args)
{
	return call_prog(c, VIRT_PROGRAM_REMOTE, proc, args);
}

/* A call that no read-only connection may have served: refused as not implemented. */
static void expect_no_support(struct client *c, uint32_t prog, int32_t proc)
{
	struct api_xdr_out a;
	const struct reply *r;

	api_xdr_out_init(&a, 64);
	r = call_prog(c, prog, proc, &a);
	if (r->status != VIRT_ERROR || r->code != VIRT_ERR_NO_SUPPORT)
		fail_msg("program 0x%08x procedure %d on a read-only connection answered %d/%d",
			 prog, proc, r->status, r->code);
}

static void open_connection(struct client *c)
{
	struct api_xdr_out a;

	api_xdr_out_init(&a, 4096);
	api_xdr_put_u32(&a, 1);
	api_xdr_put_string(&a, "lockstep:///system");
	api_xdr_put_u32(&a, 0);
	assert_int_equal(call(c, VIRT_PROC_CONNECT_OPEN, &a)->status, VIRT_OK);
}

/* The arguments of `proc` from its layout: the defined domain wherever one goes. */
static void build_args(struct client *c, int32_t proc, const struct variant *v,
		       struct api_xdr_out *a)
{
	struct dvm *vm = registry_find(&c->t.d, "demo");
	uint8_t uuid[VIRT_UUID_LEN], map = 1;
	unsigned nums = 0;

	assert_int_equal(api_virt_uuid_parse(vm->cfg.uuid, uuid), 0);
	api_xdr_out_init(a, 1 << 16);
	for (const char *f = api_virt_proc_layout(proc); *f; f++) {
		switch (*f) {
		case 'D':
		case 'd':
			if (*f == 'D')
				api_xdr_put_u32(a, 1); /* present */
			api_xdr_put_domain(a, "demo", uuid, -1);
			break;
		case 'S':
		case 's':
			if (*f == 'S')
				api_xdr_put_u32(a, 1);
			api_xdr_put_string(a, "demo");
			break;
		case 'L':
			api_xdr_put_u32(a, 1);
			api_xdr_put_domain(a, "demo", uuid, -1);
			break;
		case 'U':
			api_xdr_put_fixed(a, uuid, sizeof(uuid));
			break;
		case 'i':
			api_xdr_put_i32(a, nums++ ? 1 : v->num0);
			break;
		case 'f':
			api_xdr_put_u32(a, v->flags);
			break;
		case 'm':
			api_xdr_put_var(a, &map, 1);
			break;
		default:
			fail_msg("procedure %d: layout letter '%c' unknown to this test", proc, *f);
		}
	}
}

/* The procedures the session answers itself (api/virt_session.c), with no handler. */
static bool builtin(int32_t proc)
{
	static const int32_t procs[] = { 1, 2, 3, 4, 60, 66, 110, 149, 157 };

	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
		if (procs[i] == proc)
			return true;
	return false;
}

static void every_procedure(void **state)
{
	struct client *c = calloc(1, sizeof(*c));
	static const int32_t beyond[] = { 0, -1, VIRT_PROC_MAX + 1, 4096, INT32_MAX, INT32_MIN };
	unsigned checked = 0, denied = 0, procs = 0, unknown = 0;
	struct vmdef def;
	struct dvm *vm;
	char err[256];
	bool created;

	c->t.virt = true;
	assert_int_equal(dtest_start(&c->t, 8, false), 0);
	dtest_def(&def, "demo", 2, "run");
	assert_int_equal(ops_define(&c->t.d, &def, 0, &vm, &created, err, sizeof(err)), 0);
	vmdef_fini(&def);
	assert_int_equal(virt_conn_open(c->t.d.virt, sink, c, true, 0, &c->conn), 0);
	open_connection(c);
	for (int32_t proc = 1; proc <= VIRT_PROC_MAX; proc++) {
		const char *name = api_virt_proc_name(proc);
		const struct acl_fact *f = fact_of(proc);
		bool implemented = builtin(proc) || c->t.d.virt->handlers.by_proc[proc];
		struct variant v[1 + MAX_RULES] = { { 0, 0 } };
		unsigned nv = 1;

		if (!name) {
			/* Unknown to lockstep: no handler may sit behind it, and it is refused. */
			if (c->t.d.virt->handlers.by_proc[proc])
				fail_msg("procedure %d has a handler but no name", proc);
			expect_no_support(c, VIRT_PROGRAM_REMOTE, proc);
			unknown++;
			continue;
		}
		if (!f)
			fail_msg("%s (%d): no libvirt ACL fact in this test: add it", name, proc);
		procs++;
		for (int i = 0; i < MAX_RULES && f->rules[i].perm; i++) {
			if (f->rules[i].flag)
				v[nv++] = (struct variant){ .flags = f->rules[i].flag };
			else if (f->rules[i].arg != ANY_ARG)
				v[nv++] = (struct variant){ .num0 = f->rules[i].value };
		}
		for (unsigned i = 0; i < nv; i++) {
			const char *needs = beyond_read(f, &v[i]);
			bool want_denied = implemented && needs;
			struct api_xdr_out a;
			const struct reply *r;

			build_args(c, proc, &v[i], &a);
			r = call(c, proc, &a);
			if (!implemented) {
				if (r->status != VIRT_ERROR || r->code != VIRT_ERR_NO_SUPPORT)
					fail_msg("%s: not implemented, yet answered %d/%d", name,
						 r->status, r->code);
			} else if ((r->status == VIRT_ERROR &&
				    r->code == VIRT_ERR_OPERATION_DENIED) != want_denied) {
				fail_msg("%s (flags 0x%x, arg %d) on a read-only connection: %s; "
					 "libvirt's ACL asks %s",
					 name, v[i].flags, v[i].num0,
					 r->status == VIRT_OK ? "served" : r->message,
					 needs ? needs : "read access only");
			}
			checked++;
			denied += want_denied;
			if (proc == VIRT_PROC_CONNECT_CLOSE)
				open_connection(c);
		}
	}
	/* Numbers past the table, and the other programs' procedures (QEMU's monitor command
	 * above all), are refused the same way. */
	for (size_t i = 0; i < sizeof(beyond) / sizeof(beyond[0]); i++) {
		expect_no_support(c, VIRT_PROGRAM_REMOTE, beyond[i]);
		unknown++;
	}
	for (int32_t proc = 1; proc <= 8; proc++) {
		expect_no_support(c, VIRT_PROGRAM_QEMU, proc);
		expect_no_support(c, VIRT_PROGRAM_LXC, proc);
		unknown += 2;
	}
	print_message("%u procedures, %u calls on a read-only connection, %u refused; "
		      "%u calls of procedures lockstep does not know, all refused\n",
		      procs, checked, denied, unknown);
	assert_true(denied > 0 && denied < checked);
	assert_true(procs + unknown >= VIRT_PROC_MAX);
	virt_conn_close(c->conn);
	dtest_stop(&c->t);
	dtest_cleanup(&c->t);
	free(c);
}

/* The read-write connection serves what the read-only one refuses for secured data. */
static void secure_xml_read_write(void **state)
{
	struct client *c = calloc(1, sizeof(*c));
	struct variant v = { .flags = VIRT_XML_SECURE };
	struct api_xdr_out a;
	struct vmdef def;
	struct dvm *vm;
	char err[256];
	bool created;

	c->t.virt = true;
	assert_int_equal(dtest_start(&c->t, 8, false), 0);
	dtest_def(&def, "demo", 2, "run");
	assert_int_equal(ops_define(&c->t.d, &def, 0, &vm, &created, err, sizeof(err)), 0);
	vmdef_fini(&def);
	assert_int_equal(virt_conn_open(c->t.d.virt, sink, c, false, 0, &c->conn), 0);
	open_connection(c);
	build_args(c, VIRT_PROC_DOMAIN_GET_XML_DESC, &v, &a);
	assert_int_equal(call(c, VIRT_PROC_DOMAIN_GET_XML_DESC, &a)->status, VIRT_OK);
	virt_conn_close(c->conn);
	dtest_stop(&c->t);
	dtest_cleanup(&c->t);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_procedure),
		cmocka_unit_test(secure_xml_read_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
