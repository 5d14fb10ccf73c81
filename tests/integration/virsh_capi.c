/*
 * The libvirt C API (libvirt0, the library virsh and the language bindings sit on) driving
 * lockstepd's libvirt endpoint: connection facts, define, lifecycle, vCPU pinning, lifecycle
 * events, keepalive, errors with their codes, transient domains, and calls from several
 * threads overlapping on one connection.  Also checks that lockstep's protocol constants
 * (api/virt.h) are libvirt's own numbers.
 *
 *   virsh_capi URI KERNEL             the test (run by virsh_capi.py with a fresh lockstepd)
 *   virsh_capi --bench URI SECONDS    round trips per second, one thread and four
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "api/virt.h"

/* lockstep's numbers for the protocol are libvirt's own. */
#define SAME(ours, libvirts) _Static_assert((int)(ours) == (int)(libvirts), #ours)

SAME(VIRT_ERR_NO_SUPPORT, VIR_ERR_NO_SUPPORT);
SAME(VIRT_ERR_NO_DOMAIN, VIR_ERR_NO_DOMAIN);
SAME(VIRT_ERR_OPERATION_INVALID, VIR_ERR_OPERATION_INVALID);
SAME(VIRT_ERR_XML_ERROR, VIR_ERR_XML_ERROR);
SAME(VIRT_ERR_OPERATION_DENIED, VIR_ERR_OPERATION_DENIED);
SAME(VIRT_ERR_XML_INVALID_SCHEMA, VIR_ERR_XML_INVALID_SCHEMA);
SAME(VIRT_ERR_OPERATION_UNSUPPORTED, VIR_ERR_OPERATION_UNSUPPORTED);
SAME(VIRT_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF);
SAME(VIRT_DOMAIN_CRASHED, VIR_DOMAIN_CRASHED);
SAME(VIRT_PAUSED_STARTING_UP, VIR_DOMAIN_PAUSED_STARTING_UP);
SAME(VIRT_SHUTOFF_FAILED, VIR_DOMAIN_SHUTOFF_FAILED);
SAME(VIRT_EVENT_CRASHED, VIR_DOMAIN_EVENT_CRASHED);
SAME(VIRT_DETAIL_STOPPED_FAILED, VIR_DOMAIN_EVENT_STOPPED_FAILED);
SAME(VIRT_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_ID_REBOOT);
SAME(VIRT_LIST_NO_CHECKPOINT, VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT);
SAME(VIRT_START_VALIDATE, VIR_DOMAIN_START_VALIDATE);
SAME(VIRT_XML_MIGRATABLE, VIR_DOMAIN_XML_MIGRATABLE);
SAME(VIRT_CONTROL_ERROR, VIR_DOMAIN_CONTROL_ERROR);

#define MAX_EVENTS 64

struct events {
	pthread_mutex_t lock;
	int n;
	int event[MAX_EVENTS], detail[MAX_EVENTS];
	char name[MAX_EVENTS][32];
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	virErrorPtr e = virGetLastError();
	va_list ap;

	va_start(ap, fmt);
	printf("FAIL: ");
	vprintf(fmt, ap);
	va_end(ap);
	if (e)
		printf(" (libvirt error %d: %s)", e->code, e->message);
	printf("\n");
	exit(1);
}

#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			die(__VA_ARGS__); \
	} while (0)

static void expect_error(int code, const char *what)
{
	virErrorPtr e = virGetLastError();

	CHECK(e && e->code == code, "%s: want libvirt error %d, got %d", what, code,
	      e ? e->code : 0);
	virResetLastError();
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *event_loop(void *arg)
{
	/* Runs until the process exits: libvirt's default loop has no way to be woken up. */
	while (virEventRunDefaultImpl() == 0)
		;
	return NULL;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *arg)
{
	struct events *ev = arg;

	pthread_mutex_lock(&ev->lock);
	if (ev->n < MAX_EVENTS) {
		ev->event[ev->n] = event;
		ev->detail[ev->n] = detail;
		snprintf(ev->name[ev->n], sizeof(ev->name[0]), "%s", virDomainGetName(dom));
		ev->n++;
	}
	pthread_mutex_unlock(&ev->lock);
	return 0;
}

/* Waits for the event (in order after those already consumed at *cursor). */
static void wait_event(struct events *ev, int *cursor, const char *name, int event, int detail)
{
	double deadline = now() + 20;

	for (;;) {
		pthread_mutex_lock(&ev->lock);
		while (*cursor < ev->n) {
			int i = (*cursor)++;

			if (strcmp(ev->name[i], name) == 0 && ev->event[i] == event &&
			    ev->detail[i] == detail) {
				pthread_mutex_unlock(&ev->lock);
				return;
			}
		}
		pthread_mutex_unlock(&ev->lock);
		CHECK(now() < deadline, "no event %d/%d for %s", event, detail, name);
		usleep(10000);
	}
}

static char *domain_xml(const char *name, const char *kernel)
{
	static char xml[2048];

	snprintf(xml, sizeof(xml),
		 "<domain type='kvm'><name>%s</name><memory unit='MiB'>16</memory>"
		 "<vcpu>2</vcpu><os><type>hvm</type><kernel>%s</kernel></os></domain>",
		 name, kernel);
	return xml;
}

static void connection_facts(virConnectPtr conn)
{
	unsigned long version = 0;
	virNodeInfo node;
	char *s;

	CHECK(strcmp(virConnectGetType(conn), "lockstep") == 0, "virConnectGetType");
	CHECK(virConnectGetVersion(conn, &version) == 0 && version == 1000, "version");
	CHECK(virConnectGetLibVersion(conn, &version) == 0 && version == 1000, "lib version");
	CHECK(virConnectGetMaxVcpus(conn, NULL) == 254, "max vcpus");
	CHECK(virConnectIsSecure(conn) == 1, "a unix socket is secure");
	CHECK(virNodeGetInfo(conn, &node) == 0 && node.cpus == sysconf(_SC_NPROCESSORS_ONLN),
	      "virNodeGetInfo");
	s = virConnectGetHostname(conn);
	CHECK(s && s[0], "hostname");
	free(s);
	s = virConnectGetCapabilities(conn);
	CHECK(s && strstr(s, "<machine maxCpus=\"254\">lockstep</machine>"), "capabilities");
	free(s);
	printf("ok   connection: type, versions, max vCPUs, node info, hostname, capabilities\n");
}

static void pinning(virDomainPtr dom)
{
	unsigned char one = 1, maps[2] = { 0, 0 };
	virVcpuInfo info[2];
	int n;

	CHECK(virDomainPinVcpu(dom, 0, &one, 1) == 0, "virDomainPinVcpu");
	n = virDomainGetVcpus(dom, info, 2, maps, 1);
	CHECK(n == 2 && info[0].number == 0 && info[1].number == 1, "virDomainGetVcpus: %d", n);
	CHECK(maps[0] == 1, "vCPU 0 runs on host CPU 0 only (map %#x)", maps[0]);
	CHECK(info[0].cpu >= 0 && info[0].state != VIR_VCPU_OFFLINE, "vCPU 0 info");
	CHECK(virDomainPinVcpuFlags(dom, 1, &one, 1, VIR_DOMAIN_AFFECT_LIVE) == 0, "pin --live");
	maps[0] = maps[1] = 0;
	CHECK(virDomainGetVcpuPinInfo(dom, 2, maps, 1, VIR_DOMAIN_AFFECT_LIVE) == 2 &&
		      maps[0] == 1 && maps[1] == 1,
	      "virDomainGetVcpuPinInfo live: %#x %#x", maps[0], maps[1]);
	CHECK(virDomainPinVcpuFlags(dom, 1, &one, 1, VIR_DOMAIN_AFFECT_CONFIG) == 0,
	      "pin --config");
	CHECK(virDomainGetVcpuPinInfo(dom, 2, maps, 1, VIR_DOMAIN_AFFECT_CONFIG) == 2 &&
		      maps[1] == 1,
	      "virDomainGetVcpuPinInfo config");
	CHECK(virDomainPinVcpu(dom, 7, &one, 1) < 0, "pinning a vCPU the VM lacks");
	expect_error(VIR_ERR_INVALID_ARG, "pin vCPU 7");
	printf("ok   vCPU pinning: live and config, read back, a bad vCPU refused\n");
}

static void lifecycle(virConnectPtr conn, const char *kernel, struct events *ev, int *cur)
{
	virDomainPtr dom = virDomainDefineXML(conn, domain_xml("capi", kernel));
	virDomainInfo info;
	int state, reason;

	CHECK(dom, "virDomainDefineXML");
	wait_event(ev, cur, "capi", VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_ADDED);
	CHECK(virDomainIsActive(dom) == 0 && virDomainIsPersistent(dom) == 1, "defined");
	CHECK(virDomainCreate(dom) == 0, "virDomainCreate");
	wait_event(ev, cur, "capi", VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED);
	CHECK((int)virDomainGetID(dom) > 0, "a running domain has an id");
	CHECK(virDomainGetInfo(dom, &info) == 0 && info.state == VIR_DOMAIN_RUNNING &&
		      info.nrVirtCpu == 2 && info.maxMem == 16384,
	      "virDomainGetInfo");
	CHECK(virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING &&
		      reason == VIR_DOMAIN_RUNNING_BOOTED,
	      "virDomainGetState");
	CHECK(virDomainGetMaxVcpus(dom) == 2, "virDomainGetMaxVcpus");
	pinning(dom);
	CHECK(virDomainShutdown(dom) == 0, "virDomainShutdown");
	wait_event(ev, cur, "capi", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN);
	CHECK(virDomainDestroy(dom) < 0, "destroying a shut-off domain");
	expect_error(VIR_ERR_OPERATION_INVALID, "destroy when shut off");
	CHECK(virDomainCreate(dom) == 0, "start again");
	CHECK(virDomainReboot(dom, 0) == 0, "virDomainReboot");
	wait_event(ev, cur, "capi", VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED);
	wait_event(ev, cur, "capi", VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED);
	CHECK(virDomainDestroy(dom) == 0, "virDomainDestroy");
	wait_event(ev, cur, "capi", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED);
	CHECK(virDomainUndefine(dom) == 0, "virDomainUndefine");
	wait_event(ev, cur, "capi", VIR_DOMAIN_EVENT_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED);
	virDomainFree(dom);
	printf("ok   lifecycle: define, create, info, state, shutdown, reboot, destroy, "
	       "undefine, with their events\n");
}

static void errors_and_transients(virConnectPtr conn, const char *kernel)
{
	virDomainPtr dom;

	CHECK(!virDomainLookupByName(conn, "nosuch"), "lookup of an unknown name");
	expect_error(VIR_ERR_NO_DOMAIN, "lookup nosuch");
	CHECK(!virDomainDefineXML(conn, "<domain type='kvm'><name>x</name>"), "bad XML");
	expect_error(VIR_ERR_XML_ERROR, "bad XML");
	CHECK(!virDomainLookupByName(conn, "x"), "bad XML defined nothing");
	virResetLastError();
	dom = virDomainLookupByName(conn, "keep");
	CHECK(dom && virDomainSuspend(dom) < 0, "suspend");
	expect_error(VIR_ERR_NO_SUPPORT, "suspend is not implemented");
	virDomainFree(dom);
	dom = virDomainCreateXML(conn, domain_xml("transient", kernel), 0);
	CHECK(dom && virDomainIsActive(dom) == 1 && virDomainIsPersistent(dom) == 0,
	      "virDomainCreateXML: a running transient domain");
	CHECK(virDomainDestroy(dom) == 0, "destroy the transient domain");
	virDomainFree(dom);
	CHECK(!virDomainLookupByName(conn, "transient"), "a destroyed transient domain is gone");
	expect_error(VIR_ERR_NO_DOMAIN, "lookup of the transient domain");
	printf("ok   errors with their codes (no domain, XML, not running, no support); "
	       "transient domains\n");
}

struct hammer {
	virConnectPtr conn;
	const char *name; /* a defined domain */
	int calls, failures;
};

static void *hammer(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < h->calls; i++) {
		virDomainPtr dom = virDomainLookupByName(h->conn, h->name);
		virDomainInfo info;
		char *host = virConnectGetHostname(h->conn);

		if (!dom || virDomainGetInfo(dom, &info) < 0 || !host)
			h->failures++;
		if (dom)
			virDomainFree(dom);
		free(host);
	}
	return NULL;
}

/* Calls from several threads share one connection: the client library interleaves them and
 * matches replies by serial. */
static double overlap(virConnectPtr conn, const char *name, int threads, int calls)
{
	struct hammer h[8];
	pthread_t t[8];
	double t0 = now();
	int failures = 0;

	for (int i = 0; i < threads; i++) {
		h[i] = (struct hammer){ .conn = conn, .name = name, .calls = calls };
		pthread_create(&t[i], NULL, hammer, &h[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		failures += h[i].failures;
	}
	CHECK(failures == 0, "%d of %d overlapping calls failed", failures, threads * calls * 3);
	return threads * calls * 3 / (now() - t0);
}

static virConnectPtr open_conn(const char *uri, pthread_t *loop)
{
	virConnectPtr conn;

	CHECK(virEventRegisterDefaultImpl() == 0, "virEventRegisterDefaultImpl");
	pthread_create(loop, NULL, event_loop, NULL);
	conn = virConnectOpen(uri);
	CHECK(conn, "virConnectOpen(%s)", uri);
	CHECK(virConnectSetKeepAlive(conn, 1, 3) == 0, "virConnectSetKeepAlive");
	return conn;
}

/* Needs one defined domain: the first one listed. */
static int bench(const char *uri, double seconds)
{
	pthread_t loop;
	virConnectPtr conn = open_conn(uri, &loop);
	virDomainPtr *doms = NULL;
	char name[64];
	double t0;
	long n = 0;
	int ndoms;

	ndoms = virConnectListAllDomains(conn, &doms, 0);
	CHECK(ndoms > 0, "--bench needs a defined domain");
	snprintf(name, sizeof(name), "%s", virDomainGetName(doms[0]));
	for (int i = 0; i < ndoms; i++)
		virDomainFree(doms[i]);
	free(doms);
	t0 = now();

	while (now() - t0 < seconds) {
		unsigned long v;

		CHECK(virConnectGetVersion(conn, &v) == 0, "GetVersion");
		n++;
	}
	printf("round trips, 1 thread:  %.0f/s (virConnectGetVersion)\n", n / (now() - t0));
	printf("round trips, 4 threads: %.0f/s (lookup + info + hostname)\n",
	       overlap(conn, name, 4, (int)(2000 * seconds)));
	virConnectClose(conn);
	return 0;
}

int main(int argc, char **argv)
{
	static struct events ev = { .lock = PTHREAD_MUTEX_INITIALIZER };
	virConnectPtr conn;
	pthread_t loop;
	virDomainPtr keep;
	int cb, cur = 0;

	if (argc == 4 && strcmp(argv[1], "--bench") == 0)
		return bench(argv[2], atof(argv[3]));
	if (argc != 3) {
		fprintf(stderr, "usage: %s URI KERNEL | --bench URI SECONDS\n", argv[0]);
		return 64;
	}
	conn = open_conn(argv[1], &loop);
	cb = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
					      VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), &ev, NULL);
	CHECK(cb >= 0, "virConnectDomainEventRegisterAny");
	connection_facts(conn);
	keep = virDomainDefineXML(conn, domain_xml("keep", argv[2]));
	CHECK(keep, "define keep");
	lifecycle(conn, argv[2], &ev, &cur);
	errors_and_transients(conn, argv[2]);
	printf("ok   8 threads x 100 x 3 calls overlapping on one connection (%.0f calls/s)\n",
	       overlap(conn, "keep", 8, 100));
	sleep(3);
	CHECK(virConnectIsAlive(conn) == 1, "keepalive: alive after 3 idle seconds");
	printf("ok   keepalive (1 s, 3 probes): alive after 3 idle seconds\n");
	CHECK(virDomainUndefine(keep) == 0, "undefine keep");
	virDomainFree(keep);
	CHECK(virConnectDomainEventDeregisterAny(conn, cb) == 0, "deregister");
	CHECK(virConnectClose(conn) == 0, "virConnectClose: no references left");
	return 0;
}
