/*
 * Domain XML <-> struct vmdef (api/domxml*.c): the example of docs/libvirt.md parsed to the
 * exact fields of every section, its XML (inactive and live) parsed back to the same
 * definition, the live form's extras, refusals that name what is wrong and leave the caller's
 * definition alone, and the capabilities document.  Whether a definition suits this host
 * (paths, CPUs, gang width) is the daemon's rule, not the parser's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/virt.h"
#include "tests/unit/vmdef/vmdeftest.h"

static const char documented[] =
	"<domain type='kvm'>\n"
	"  <name>demo</name>\n"
	"  <uuid>8f3169e4-9e17-5347-a623-47fff434bb04</uuid>\n"
	"  <metadata>\n"
	"    <lockstep:vm xmlns:lockstep=\"urn:lockstep:domain:1\">\n"
	"      <lockstep:sched policy=\"gang\" quantum_us=\"5000\" skew_us=\"2000\"/>\n"
	"      <lockstep:pvlock enabled=\"yes\" kvm_features=\"host\" pause_exits=\"auto\"/>\n"
	"      <lockstep:irq steering=\"yes\"/>\n"
	"    </lockstep:vm>\n"
	"  </metadata>\n"
	"  <memory unit='MiB'>64</memory>\n"
	"  <currentMemory unit='MiB'>64</currentMemory>\n"
	"  <vcpu placement='static' cpuset='0-3'>4</vcpu>\n"
	"  <cputune>\n"
	"    <vcpupin vcpu='0' cpuset='0'/>\n"
	"  </cputune>\n"
	"  <os>\n"
	"    <type arch='x86_64' machine='lockstep'>hvm</type>\n"
	"    <kernel>/srv/guests/smp-counter.elf</kernel>\n"
	"    <cmdline>iterations=1000000</cmdline>\n"
	"  </os>\n"
	"  <on_poweroff>destroy</on_poweroff>\n"
	"  <on_reboot>restart</on_reboot>\n"
	"  <on_crash>preserve</on_crash>\n"
	"  <devices>\n"
	"    <serial type='file'><source path='/var/log/demo.console'/><target port='0'/>"
	"</serial>\n"
	"    <hostdev mode='subsystem' type='pci' managed='yes'>\n"
	"      <source><address domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>"
	"</source>\n"
	"    </hostdev>\n"
	"  </devices>\n"
	"</domain>\n";

static void parse_ok(const char *xml, struct vmdef *def)
{
	char err[512] = "";

	vmdef_init(def);
	if (domxml_parse(xml, strlen(xml), NULL, def, err, sizeof(err)))
		fail_msg("refused: %s", err);
}

static void test_documented(void **state)
{
	struct util_cpuset cpus = { { 0 } };
	struct vmdef def;

	parse_ok(documented, &def);
	assert_string_equal(def.name, "demo");
	assert_string_equal(def.uuid, "8f3169e4-9e17-5347-a623-47fff434bb04");
	assert_int_equal(def.memory, 64ull << 20);
	assert_int_equal(def.vcpus, 4);
	assert_true(def.sched.has_cpus);
	for (unsigned c = 0; c < 4; c++)
		util_cpuset_add(&cpus, c);
	assert_memory_equal(&def.sched.cpus, &cpus, sizeof(cpus));
	assert_int_equal(def.sched.nr_pins, 1);
	assert_int_equal(def.sched.pins[0].vcpu, 0);
	assert_true(util_cpuset_has(&def.sched.pins[0].cpus, 0));
	assert_int_equal(util_cpuset_count(&def.sched.pins[0].cpus), 1);
	assert_string_equal(def.kernel, "/srv/guests/smp-counter.elf");
	assert_string_equal(def.cmdline, "iterations=1000000");
	assert_int_equal(def.on_crash, VMDEF_ON_CRASH_PRESERVE);
	assert_string_equal(def.serial_log, "/var/log/demo.console");
	assert_int_equal(def.nr_devices, 1);
	assert_string_equal(def.devices[0].type, "vfio-pci");
	assert_string_equal(def.devices[0].host, "0000:00:03.0");
	assert_int_equal(def.sched.policy, VMDEF_SCHED_GANG);
	assert_int_equal(def.sched.quantum_us, 5000);
	assert_int_equal(def.sched.skew_us, 2000);
	assert_true(def.pvlock.enabled);
	assert_int_equal(def.pvlock.kvm_features, VMDEF_KVM_FEATURES_HOST);
	assert_int_equal(def.pvlock.pause_exits, VMDEF_PAUSE_EXITS_AUTO);
	assert_true(def.irq.steering);
	assert_int_equal(vmdef_validate(&def, NULL, 0), 0);
	vmdef_fini(&def);
}

/* Its own XML, inactive and live, defines the very same VM again. */
static void test_round_trip(void **state)
{
	struct domxml_live live = { .id = 3, .console = "/run/x.console", .emulator = "/bin/vm" };
	struct vmdef def, again;
	char *xml, *a, *b;

	parse_ok(documented, &def);
	a = vmdeftest_dump(&def);
	for (int pass = 0; pass < 2; pass++) {
		xml = domxml_format(&def, pass ? &live : NULL);
		assert_non_null(xml);
		parse_ok(xml, &again);
		b = vmdeftest_dump(&again);
		assert_string_equal(a, b);
		if (pass) {
			assert_non_null(strstr(xml, "id=\"3\""));
			assert_non_null(strstr(xml, "<emulator>/bin/vm</emulator>"));
		} else {
			assert_null(strstr(xml, " id="));
		}
		free(b);
		free(xml);
		vmdef_fini(&again);
	}
	free(a);
	vmdef_fini(&def);
}

/* Without a serial log the live XML shows where the console goes: the run directory's log. */
static void test_live_console(void **state)
{
	struct domxml_live live = { .id = 9,
				    .console = "/run/lockstep/vms/m.console",
				    .emulator = "/bin/vm" };
	struct vmdef def;
	char *xml;

	parse_ok("<domain type='kvm'><name>m</name><vcpu>1</vcpu>"
		 "<os><type>hvm</type><kernel>/k</kernel></os></domain>",
		 &def);
	assert_null(def.serial_log);
	xml = domxml_format(&def, &live);
	assert_non_null(xml);
	assert_non_null(strstr(xml, "/run/lockstep/vms/m.console"));
	free(xml);
	vmdef_fini(&def);
}

static void expect_refused(const char *xml, const char *needle)
{
	struct vmdef def;
	char err[512] = "";

	vmdef_init(&def);
	def.vcpus = 3; /* a marker: a refused document leaves the definition alone */
	assert_int_equal(domxml_parse(xml, strlen(xml), NULL, &def, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("\"%s\" lacks \"%s\"", err, needle);
	assert_int_equal(def.vcpus, 3);
	assert_string_equal(def.name, "");
	vmdef_fini(&def);
}

#define OS "<os><type>hvm</type><kernel>/k</kernel></os>"

static void test_refused(void **state)
{
	expect_refused("<domain type='kvm'><name>x</name>", "line");
	expect_refused("<domain type='qemu'><name>x</name>" OS "</domain>", "'kvm'");
	expect_refused("<domain type='kvm'><name>-x</name>" OS "</domain>", "a lockstep name is");
	expect_refused("<domain type='kvm'><name>x</name><vcpu>1</vcpu>" OS
		       "<devices><disk type='file'/></devices></domain>",
		       "<devices><disk> is not supported");
	expect_refused("<domain type='kvm'><name>x</name><memory unit='MiB'>64</memory>"
		       "<currentMemory unit='MiB'>32</currentMemory><vcpu>1</vcpu>" OS "</domain>",
		       "no balloon");
	expect_refused("<domain type='kvm'><name>x</name><vcpu>1</vcpu>" OS
		       "<metadata><lockstep:vm xmlns:lockstep='urn:lockstep:domain:1'>"
		       "<lockstep:sched polcy='gang'/></lockstep:vm></metadata></domain>",
		       "polcy");
	expect_refused("<!DOCTYPE d [<!ENTITY a 'aaaa'>]><domain type='kvm'><name>&a;</name>"
		       "</domain>",
		       "DOCTYPE");
	expect_refused("<domain type='kvm'><name>x</name><vcpu>1</vcpu></domain>",
		       "needs a \"kernel\"");
	expect_refused("<domain type='kvm'><name>x</name><vcpu>2</vcpu>"
		       "<cputune><vcpupin vcpu='5' cpuset='0'/></cputune>" OS "</domain>",
		       "names a vCPU the VM does not have");
}

/* What only the host can judge is left to the daemon: the parser takes it. */
static void test_host_rules_are_the_daemons(void **state)
{
	struct vmdef def;

	parse_ok("<domain type='kvm'><name>x</name><vcpu cpuset='200'>250</vcpu>"
		 "<metadata><lockstep:vm xmlns:lockstep='urn:lockstep:domain:1'>"
		 "<lockstep:sched policy='gang'/></lockstep:vm></metadata>"
		 "<os><type>hvm</type><kernel>relative/k.elf</kernel></os></domain>",
		 &def);
	assert_int_equal(def.vcpus, 250);
	assert_int_equal(def.sched.policy, VMDEF_SCHED_GANG);
	assert_string_equal(def.kernel, "relative/k.elf");
	vmdef_fini(&def);
}

static void test_capabilities(void **state)
{
	static const struct domxml_host_cpu cpus[] = {
		{ .id = 0, .socket = 0, .core = 0, .siblings = "0-1" },
		{ .id = 1, .socket = 0, .core = 0, .siblings = "0-1" },
	};
	struct domxml_host host = {
		.arch = "x86_64",
		.emulator = "/usr/bin/lockstep-vm",
		.machine = "lockstep",
		.max_vcpus = VMDEF_VCPUS_MAX,
		.sockets = 1,
		.cores = 1,
		.threads = 2,
		.memory_kib = 1024,
		.nr_cpus = 2,
		.cpus = cpus,
	};
	char *xml = domxml_capabilities(&host);

	assert_non_null(xml);
	assert_non_null(strstr(xml, "<arch>x86_64</arch>"));
	assert_non_null(
		strstr(xml, "<topology sockets=\"1\" dies=\"1\" cores=\"1\" threads=\"2\"/>"));
	assert_non_null(strstr(xml, "siblings=\"0-1\""));
	assert_non_null(strstr(xml, "<emulator>/usr/bin/lockstep-vm</emulator>"));
	assert_non_null(strstr(xml, "<machine maxCpus=\"254\">lockstep</machine>"));
	assert_non_null(strstr(xml, "<domain type=\"kvm\"/>"));
	free(xml);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_documented),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_live_console),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_host_rules_are_the_daemons),
		cmocka_unit_test(test_capabilities),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
