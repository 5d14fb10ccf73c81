/*
 * VM definitions, the accepting side: vmdef_init defaults, a definition with every
 * section (sched, pvlock, irq, devices, serial) parsed to exact field values, the forms of
 * "memory", the enum and KVM-feature names, vmdef_copy, a later parse overriding an
 * earlier one key by key, and vmdef_load on files.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmdef/vmdef.h"

static const char full_definition[] =
	"{\n"
	"  \"name\": \"web-1.prod_a\",\n"
	"  \"uuid\": \"8f3169e4-9e17-5347-A623-47fff434bb04\",\n"
	"  \"vcpus\": 4,\n"
	"  \"memory\": \"2G\",\n"
	"  \"kernel\": \"/var/lib/lockstep/images/spin.elf\",\n"
	"  \"cmdline\": \"iterations=100 mode=gang\",\n"
	"  \"serial\": { \"log\": \"/var/log/web-1.log\", \"stdout\": true },\n"
	"  \"on_crash\": \"restart\",\n"
	"  \"autostart\": true,\n"
	"  \"sched\": {\n"
	"    \"policy\": \"gang\",\n"
	"    \"quantum_us\": 2500,\n"
	"    \"skew_us\": 500,\n"
	"    \"cpus\": \"0-3,6\",\n"
	"    \"pin\": { \"0\": \"0\", \"1\": \"1-2\", \"3\": \"6\" }\n"
	"  },\n"
	"  \"pvlock\": {\n"
	"    \"enabled\": false,\n"
	"    \"kvm_features\": [\"pv_unhalt\", \"steal_time\", \"pv_send_ipi\"],\n"
	"    \"pause_exits\": \"off\"\n"
	"  },\n"
	"  \"irq\": { \"steering\": false },\n"
	"  \"devices\": [\n"
	"    { \"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\" },\n"
	"    { \"host\": \"0001:1f:1f.7\", \"type\": \"vfio-pci\" }\n"
	"  ]\n"
	"}\n";

static int parse(struct vmdef *cfg, const char *text, char *err, size_t err_len)
{
	return vmdef_parse(cfg, text, strlen(text), err, err_len);
}

static void expect_cpus(const struct util_cpuset *set, const char *want)
{
	char buf[256];

	assert_int_equal(util_cpuset_format(set, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void test_defaults(void **state)
{
	struct vmdef cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	vmdef_init(&cfg);
	assert_string_equal(cfg.name, "");
	assert_string_equal(cfg.uuid, "");
	assert_int_equal(cfg.vcpus, 1);
	assert_int_equal(cfg.memory, 64ull << 20);
	assert_null(cfg.kernel);
	assert_null(cfg.cmdline);
	assert_null(cfg.serial_log);
	assert_false(cfg.serial_stdout);
	assert_int_equal(cfg.on_crash, VMDEF_ON_CRASH_DESTROY);
	assert_false(cfg.autostart);
	assert_int_equal(cfg.sched.policy, VMDEF_SCHED_HOST);
	assert_int_equal(cfg.sched.quantum_us, 5000);
	assert_int_equal(cfg.sched.skew_us, 2000);
	assert_false(cfg.sched.has_cpus);
	assert_int_equal(cfg.sched.nr_pins, 0);
	assert_null(cfg.sched.pins);
	assert_true(cfg.pvlock.enabled);
	assert_int_equal(cfg.pvlock.kvm_features, VMDEF_KVM_FEATURES_HOST);
	assert_int_equal(cfg.pvlock.pause_exits, VMDEF_PAUSE_EXITS_AUTO);
	assert_true(cfg.irq.steering);
	assert_int_equal(cfg.nr_devices, 0);

	/* An empty object changes nothing. */
	assert_int_equal(parse(&cfg, "{}", NULL, 0), 0);
	assert_int_equal(cfg.vcpus, 1);
	assert_int_equal(cfg.memory, 64ull << 20);
	vmdef_fini(&cfg);
	vmdef_fini(NULL);
}

static const struct vmdef_pin *find_pin(const struct vmdef *cfg, uint32_t vcpu)
{
	for (uint32_t i = 0; i < cfg->sched.nr_pins; i++)
		if (cfg->sched.pins[i].vcpu == vcpu)
			return &cfg->sched.pins[i];
	return NULL;
}

static void test_full_definition(void **state)
{
	struct vmdef cfg;
	char err[256] = "";

	vmdef_init(&cfg);
	assert_int_equal(parse(&cfg, full_definition, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.name, "web-1.prod_a");
	assert_string_equal(cfg.uuid, "8f3169e4-9e17-5347-A623-47fff434bb04");
	assert_int_equal(cfg.vcpus, 4);
	assert_int_equal(cfg.memory, 2ull << 30);
	assert_string_equal(cfg.kernel, "/var/lib/lockstep/images/spin.elf");
	assert_string_equal(cfg.cmdline, "iterations=100 mode=gang");
	assert_string_equal(cfg.serial_log, "/var/log/web-1.log");
	assert_true(cfg.serial_stdout);
	assert_int_equal(cfg.on_crash, VMDEF_ON_CRASH_RESTART);
	assert_true(cfg.autostart);

	assert_int_equal(cfg.sched.policy, VMDEF_SCHED_GANG);
	assert_int_equal(cfg.sched.quantum_us, 2500);
	assert_int_equal(cfg.sched.skew_us, 500);
	assert_true(cfg.sched.has_cpus);
	expect_cpus(&cfg.sched.cpus, "0-3,6");
	assert_int_equal(cfg.sched.nr_pins, 3);
	assert_non_null(find_pin(&cfg, 0));
	assert_non_null(find_pin(&cfg, 1));
	assert_non_null(find_pin(&cfg, 3));
	assert_null(find_pin(&cfg, 2));
	expect_cpus(&find_pin(&cfg, 0)->cpus, "0");
	expect_cpus(&find_pin(&cfg, 1)->cpus, "1-2");
	expect_cpus(&find_pin(&cfg, 3)->cpus, "6");

	assert_false(cfg.pvlock.enabled);
	/* pv_unhalt = bit 7, steal_time = bit 5, pv_send_ipi = bit 11 */
	assert_int_equal(cfg.pvlock.kvm_features, (1u << 7) | (1u << 5) | (1u << 11));
	assert_int_equal(cfg.pvlock.pause_exits, VMDEF_PAUSE_EXITS_OFF);
	assert_false(cfg.irq.steering);

	assert_int_equal(cfg.nr_devices, 2);
	assert_string_equal(cfg.devices[0].type, "vfio-pci");
	assert_string_equal(cfg.devices[0].host, "0000:00:03.0");
	assert_string_equal(cfg.devices[1].type, "vfio-pci");
	assert_string_equal(cfg.devices[1].host, "0001:1f:1f.7");

	assert_int_equal(vmdef_validate(&cfg, err, sizeof(err)), 0);
	vmdef_fini(&cfg);
	/* fini leaves a config in its defaults, ready for reuse. */
	assert_null(cfg.kernel);
	assert_null(cfg.sched.pins);
	assert_int_equal(cfg.vcpus, 1);
}

static uint64_t memory_of(const char *text)
{
	struct vmdef cfg;
	char err[256] = "";
	uint64_t mem;

	vmdef_init(&cfg);
	if (parse(&cfg, text, err, sizeof(err)))
		fail_msg("%s: %s", text, err);
	mem = cfg.memory;
	vmdef_fini(&cfg);
	return mem;
}

static void test_memory_forms(void **state)
{
	assert_int_equal(memory_of("{\"memory\": 512}"), 512ull << 20);
	assert_int_equal(memory_of("{\"memory\": 2}"), 2ull << 20);
	assert_int_equal(memory_of("{\"memory\": 262144}"), 256ull << 30);
	assert_int_equal(memory_of("{\"memory\": \"512M\"}"), 512ull << 20);
	assert_int_equal(memory_of("{\"memory\": \"2G\"}"), 2ull << 30);
	assert_int_equal(memory_of("{\"memory\": \"2GiB\"}"), 2ull << 30);
	assert_int_equal(memory_of("{\"memory\": \"4096MB\"}"), 4ull << 30);
	assert_int_equal(memory_of("{\"memory\": \"3072K\"}"), 3ull << 20);
	assert_int_equal(memory_of("{\"memory\": \"256G\"}"), 256ull << 30);
	/* A bare number in a string is MiB, as the integer form is. */
	assert_int_equal(memory_of("{\"memory\": \"100\"}"), 100ull << 20);
	assert_int_equal(memory_of("{\"memory\": \"010G\"}"), 10ull << 30);
}

static void test_enums_and_features(void **state)
{
	static const char *const policies[] = { "host",	   "pinned",   "gang",
						"relaxed", "adaptive", "mux" };
	enum vmdef_sched_policy policy;
	struct vmdef cfg;
	char text[256];

	for (int i = 0; i < VMDEF_SCHED_POLICIES; i++) {
		vmdef_init(&cfg);
		snprintf(text, sizeof(text), "{\"sched\": {\"policy\": \"%s\"}}", policies[i]);
		assert_int_equal(parse(&cfg, text, NULL, 0), 0);
		assert_int_equal(cfg.sched.policy, i);
		assert_string_equal(vmdef_sched_policy_name(cfg.sched.policy), policies[i]);
		assert_int_equal(vmdef_sched_policy_parse(policies[i], &policy), 0);
		assert_int_equal(policy, i);
		vmdef_fini(&cfg);
	}
	assert_int_equal(vmdef_sched_policy_parse("Gang", &policy), -EINVAL);
	assert_string_equal(vmdef_sched_policy_name(VMDEF_SCHED_POLICIES), "?");
	assert_string_equal(vmdef_on_crash_name(VMDEF_ON_CRASH_PRESERVE), "preserve");
	assert_string_equal(vmdef_on_crash_name((enum vmdef_on_crash)3), "?");
	assert_string_equal(vmdef_pause_exits_name(VMDEF_PAUSE_EXITS_ON), "on");
	assert_string_equal(vmdef_pause_exits_name((enum vmdef_pause_exits)9), "?");

	assert_string_equal(vmdef_kvm_feature_name(0), "clocksource");
	assert_string_equal(vmdef_kvm_feature_name(7), "pv_unhalt");
	assert_string_equal(vmdef_kvm_feature_name(17), "migration_control");
	assert_null(vmdef_kvm_feature_name(2));
	assert_null(vmdef_kvm_feature_name(8));
	assert_null(vmdef_kvm_feature_name(31));

	vmdef_init(&cfg);
	assert_int_equal(parse(&cfg, "{\"pvlock\": {\"kvm_features\": []}}", NULL, 0), 0);
	assert_int_equal(cfg.pvlock.kvm_features, 0);
	assert_int_equal(parse(&cfg, "{\"pvlock\": {\"kvm_features\": \"host\"}}", NULL, 0), 0);
	assert_int_equal(cfg.pvlock.kvm_features, VMDEF_KVM_FEATURES_HOST);
	assert_int_equal(parse(&cfg,
			       "{\"pvlock\": {\"kvm_features\": [\"clocksource\", "
			       "\"migration_control\", \"clocksource\"], \"pause_exits\": \"on\"}, "
			       "\"on_crash\": \"preserve\"}",
			       NULL, 0),
			 0);
	assert_int_equal(cfg.pvlock.kvm_features, (1u << 0) | (1u << 17));
	assert_int_equal(cfg.pvlock.pause_exits, VMDEF_PAUSE_EXITS_ON);
	assert_int_equal(cfg.on_crash, VMDEF_ON_CRASH_PRESERVE);
	vmdef_fini(&cfg);
}

/* A second document overrides only the keys it names; strings and pins are replaced. */
static void test_parse_over_existing(void **state)
{
	struct vmdef cfg;
	char err[256] = "";

	vmdef_init(&cfg);
	assert_int_equal(parse(&cfg, full_definition, err, sizeof(err)), 0);
	assert_int_equal(parse(&cfg,
			       "{\"kernel\": \"/b.elf\", \"cmdline\": \"x\", \"vcpus\": 8, "
			       "\"serial\": {\"log\": \"/b.log\"}, \"sched\": {\"pin\": {\"7\": "
			       "\"5\"}}, \"devices\": []}",
			       err, sizeof(err)),
			 0);
	assert_string_equal(cfg.kernel, "/b.elf");
	assert_string_equal(cfg.cmdline, "x");
	assert_string_equal(cfg.serial_log, "/b.log");
	assert_true(cfg.serial_stdout); /* not named: kept */
	assert_int_equal(cfg.vcpus, 8);
	assert_string_equal(cfg.name, "web-1.prod_a");
	assert_int_equal(cfg.sched.policy, VMDEF_SCHED_GANG);
	assert_int_equal(cfg.sched.nr_pins, 1);
	assert_int_equal(cfg.sched.pins[0].vcpu, 7);
	expect_cpus(&cfg.sched.pins[0].cpus, "5");
	assert_int_equal(cfg.nr_devices, 0);

	/* "serial.log": null removes the log. */
	assert_int_equal(parse(&cfg, "{\"serial\": {\"log\": null}}", err, sizeof(err)), 0);
	assert_null(cfg.serial_log);
	vmdef_fini(&cfg);
}

static void test_copy_is_deep(void **state)
{
	struct vmdef a, b;

	vmdef_init(&a);
	assert_int_equal(parse(&a, full_definition, NULL, 0), 0);
	assert_int_equal(
		parse(&a, "{\"initrd\": \"/var/lib/lockstep/images/initrd.img\"}", NULL, 0), 0);
	assert_int_equal(vmdef_copy(&b, &a), 0);
	assert_ptr_not_equal(b.initrd, a.initrd);
	assert_string_equal(b.initrd, a.initrd);
	assert_ptr_not_equal(b.kernel, a.kernel);
	assert_ptr_not_equal(b.cmdline, a.cmdline);
	assert_ptr_not_equal(b.serial_log, a.serial_log);
	assert_ptr_not_equal(b.sched.pins, a.sched.pins);
	assert_string_equal(b.kernel, a.kernel);
	assert_string_equal(b.cmdline, a.cmdline);
	assert_string_equal(b.serial_log, a.serial_log);
	assert_int_equal(b.sched.nr_pins, 3);
	assert_memory_equal(b.sched.pins, a.sched.pins, 3 * sizeof(*a.sched.pins));
	assert_memory_equal(b.devices, a.devices, sizeof(a.devices));
	vmdef_fini(&a);
	assert_string_equal(b.kernel, "/var/lib/lockstep/images/spin.elf");
	vmdef_fini(&b);
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/lockstep-config-XXXXXX", path[128], err[256] = "";
	struct vmdef cfg;
	char *big;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.json", dir);
	vmdef_init(&cfg);
	assert_int_equal(vmdef_load(&cfg, path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "vm.json: No such file or directory"));

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, full_definition, strlen(full_definition)),
			 strlen(full_definition));
	close(fd);
	assert_int_equal(vmdef_load(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.vcpus, 4);

	/* Over 1 MiB: refused before parsing. */
	big = malloc((1u << 20) + 1);
	assert_non_null(big);
	memset(big, ' ', (1u << 20) + 1);
	big[0] = '{';
	big[1u << 20] = '}';
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, big, (1u << 20) + 1), (1u << 20) + 1);
	close(fd);
	free(big);
	assert_int_equal(vmdef_load(&cfg, path, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "larger than 1 MiB"));
	assert_int_equal(cfg.vcpus, 4);

	assert_int_equal(vmdef_load(&cfg, dir, err, sizeof(err)), -EISDIR);
	unlink(path);
	rmdir(dir);
	vmdef_fini(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_definition),
		cmocka_unit_test(test_memory_forms),
		cmocka_unit_test(test_enums_and_features),
		cmocka_unit_test(test_parse_over_existing),
		cmocka_unit_test(test_copy_is_deep),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
