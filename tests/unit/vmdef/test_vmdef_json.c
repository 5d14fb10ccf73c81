/*
 * VM definitions, the way back and the cross-field rules: vmdef_to_json writes every
 * field (defaults included) in a form vmdef_parse reads back to the same JSON;
 * vmdef_from_json on jansson values the text parser cannot produce; vmdef_validate
 * catches a missing name or kernel, out-of-range counts, pins of vCPUs the VM does not have,
 * vCPUs pinned twice and devices listed twice.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/vmdef/vmdeftest.h"

static const char full_definition[] =
	"{\"name\": \"db\", \"uuid\": \"00000000-0000-0000-0000-0000000000ff\", \"vcpus\": 254, "
	"\"memory\": \"256G\", \"kernel\": \"/k.elf\", \"initrd\": \"/i.cpio\", \"cmdline\": \"a=\\\"b c\\\" \\u00e9\", "
	"\"serial\": {\"log\": \"/s.log\", \"stdout\": true}, \"on_crash\": \"restart\", "
	"\"autostart\": true, \"sched\": {\"policy\": \"adaptive\", \"quantum_us\": 100, "
	"\"skew_us\": 1000000, \"cpus\": \"0,2,4-1023\", \"pin\": {\"253\": \"1023\", \"0\": "
	"\"0-1\"}}, \"pvlock\": {\"enabled\": false, \"kvm_features\": [\"async_pf_int\", "
	"\"clocksource\"], \"pause_exits\": \"on\"}, \"irq\": {\"steering\": false}, "
	"\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"FFFF:ff:1f.7\", \"slot\": 5, "
	"\"managed\": true, \"reset\": \"off\", \"rom\": {\"file\": \"/r.rom\"}}, {\"type\": "
	"\"vfio-pci\", \"host\": \"0000:00:00.0\", \"rom\": {\"bar\": false}}]}";

static char *dump(const struct vmdef *cfg)
{
	char *s = vmdeftest_dump(cfg);

	assert_non_null(s);
	return s;
}

static void parse_ok(struct vmdef *cfg, const char *text)
{
	char err[512] = "";

	if (vmdef_parse(cfg, text, strlen(text), err, sizeof(err)))
		fail_msg("%s: %s", text, err);
}

static void test_to_json_defaults(void **state)
{
	struct vmdef cfg;
	char *s;

	vmdef_init(&cfg);
	parse_ok(&cfg, "{\"name\": \"a\"}");
	s = dump(&cfg);
	assert_string_equal(s,
			    "{\"autostart\":false,\"devices\":[],\"irq\":{\"steering\":true},"
			    "\"memory\":64,\"name\":\"a\",\"on_crash\":\"destroy\","
			    "\"pvlock\":{\"enabled\":true,\"kvm_features\":\"host\","
			    "\"pause_exits\":\"auto\"},\"sched\":{\"pin\":{},\"policy\":\"host\","
			    "\"quantum_us\":5000,\"skew_us\":2000},\"serial\":{\"stdout\":false},"
			    "\"vcpus\":1}");
	free(s);
	vmdef_fini(&cfg);
}

static void test_to_json_full(void **state)
{
	struct vmdef cfg;
	char *s;

	vmdef_init(&cfg);
	parse_ok(&cfg, full_definition);
	s = dump(&cfg);
	assert_string_equal(
		s,
		"{\"autostart\":true,\"cmdline\":\"a=\\\"b c\\\" \xc3\xa9\",\"devices\":["
		"{\"host\":\"ffff:ff:1f.7\",\"managed\":true,\"reset\":\"off\",\"rom\":{"
		"\"bar\":true,\"file\":\"/r.rom\"},\"slot\":5,\"type\":\"vfio-pci\"},{\"host\":"
		"\"0000:00:00.0\",\"managed\":false,\"reset\":\"auto\",\"rom\":{\"bar\":"
		"false},\"type\":\"vfio-pci\"}],\"initrd\":\"/i.cpio\",\"irq\":{\"steering\":false},\"kernel\":\"/k.elf\","
		"\"memory\":262144,\"name\":\"db\",\"on_crash\":\"restart\",\"pvlock\":{"
		"\"enabled\":false,\"kvm_features\":[\"clocksource\",\"async_pf_int\"],"
		"\"pause_exits\":\"on\"},\"sched\":{\"cpus\":\"0,2,4-1023\",\"pin\":{\"0\":"
		"\"0-1\",\"253\":\"1023\"},\"policy\":\"adaptive\",\"quantum_us\":100,"
		"\"skew_us\":1000000},\"serial\":{\"log\":\"/s.log\",\"stdout\":true},"
		"\"uuid\":\"00000000-0000-0000-0000-0000000000ff\",\"vcpus\":254}");
	free(s);
	vmdef_fini(&cfg);
}

/* to_json -> dump -> parse -> to_json gives the same JSON, for each of these definitions. */
static void test_round_trip(void **state)
{
	static const char *const texts[] = {
		full_definition,
		"{\"name\": \"a\"}",
		"{\"name\": \"m\", \"memory\": \"3073M\", \"pvlock\": {\"kvm_features\": []}}",
		"{\"name\": \"p\", \"sched\": {\"policy\": \"pinned\", \"pin\": {\"1\": \"3\", \"0\": "
		"\"2\"}}, \"serial\": {\"stdout\": true}}",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct vmdef a, b;
		char *first, *second;

		vmdef_init(&a);
		vmdef_init(&b);
		parse_ok(&a, texts[i]);
		first = dump(&a);
		parse_ok(&b, first);
		second = dump(&b);
		assert_string_equal(second, first);
		/* The structs agree too, field by field where it matters. */
		assert_string_equal(b.name, a.name);
		assert_int_equal(b.memory, a.memory);
		assert_int_equal(b.pvlock.kvm_features, a.pvlock.kvm_features);
		assert_int_equal(b.sched.nr_pins, a.sched.nr_pins);
		assert_memory_equal(&b.sched.cpus, &a.sched.cpus, sizeof(a.sched.cpus));
		assert_int_equal(b.sched.has_cpus, a.sched.has_cpus);
		free(first);
		free(second);
		vmdef_fini(&a);
		vmdef_fini(&b);
	}
}

static void test_from_json_values(void **state)
{
	struct vmdef cfg;
	char err[256] = "";
	json_t *obj;

	vmdef_init(&cfg);
	obj = json_pack("{s:s%}", "kernel", "/a\0b", (size_t)4);
	assert_non_null(obj);
	assert_int_equal(vmdef_from_json(&cfg, obj, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "\"kernel\" contains a NUL byte");
	assert_null(cfg.kernel);
	json_decref(obj);

	obj = json_pack("{s:I}", "vcpus", (json_int_t)1 << 40);
	assert_int_equal(vmdef_from_json(&cfg, obj, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "\"vcpus\" must be between 1 and 254 (got 1099511627776)");
	json_decref(obj);

	assert_int_equal(vmdef_from_json(&cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a VM definition must be a JSON object");

	obj = json_pack("{s:s}", "kernel", "/ok");
	assert_int_equal(vmdef_from_json(&cfg, obj, err, sizeof(err)), 0);
	assert_string_equal(cfg.kernel, "/ok");
	json_decref(obj);
	vmdef_fini(&cfg);
}

static void expect_invalid(const struct vmdef *cfg, const char *want)
{
	char err[256] = "";

	assert_int_equal(vmdef_validate(cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
}

static void test_validate_required(void **state)
{
	struct vmdef cfg;
	char err[64] = "untouched";

	vmdef_init(&cfg);
	expect_invalid(&cfg, "the VM needs a \"name\"");
	parse_ok(&cfg, "{\"name\": \"v\"}");
	expect_invalid(&cfg, "the VM needs a \"kernel\" (a multiboot image or a Linux kernel)");
	parse_ok(&cfg, "{\"kernel\": \"\"}");
	expect_invalid(&cfg, "the VM needs a \"kernel\" (a multiboot image or a Linux kernel)");
	parse_ok(&cfg, "{\"kernel\": \"/k\"}");
	assert_int_equal(vmdef_validate(&cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "untouched");
	assert_int_equal(vmdef_validate(&cfg, NULL, 0), 0);

	cfg.vcpus = 0;
	expect_invalid(&cfg, "\"vcpus\" must be between 1 and 254");
	cfg.vcpus = 255;
	expect_invalid(&cfg, "\"vcpus\" must be between 1 and 254");
	cfg.vcpus = 1;
	cfg.memory = (2ull << 20) - 1;
	expect_invalid(&cfg, "\"memory\" must be between 2 MiB and 256 GiB");
	cfg.memory = (256ull << 30) + 1;
	expect_invalid(&cfg, "\"memory\" must be between 2 MiB and 256 GiB");
	cfg.memory = 64ull << 20;
	parse_ok(&cfg, "{\"initrd\": \"\"}");
	expect_invalid(&cfg, "\"initrd\" must not be empty");
	parse_ok(&cfg, "{\"initrd\": null}");
	assert_null(cfg.initrd);
	assert_int_equal(vmdef_validate(&cfg, NULL, 0), 0);
	parse_ok(&cfg, "{\"serial\": {\"log\": \"\"}}");
	expect_invalid(&cfg, "\"serial.log\" must not be empty");
	vmdef_fini(&cfg);
}

static void test_validate_pins(void **state)
{
	struct vmdef cfg;

	vmdef_init(&cfg);
	parse_ok(&cfg, "{\"name\": \"v\", \"kernel\": \"/k\", \"vcpus\": 2, "
		       "\"sched\": {\"pin\": {\"0\": \"0\", \"2\": \"1\"}}}");
	expect_invalid(&cfg, "\"sched.pin.2\" names a vCPU the VM does not have (2 vCPUs)");
	parse_ok(&cfg, "{\"vcpus\": 3}");
	assert_int_equal(vmdef_validate(&cfg, NULL, 0), 0);

	/* JSON cannot name a vCPU twice (duplicate keys), but a struct built in code can. */
	cfg.sched.pins[1].vcpu = 0;
	expect_invalid(&cfg, "vCPU 0 is pinned twice");
	vmdef_fini(&cfg);
}

static void test_validate_devices(void **state)
{
	struct vmdef cfg;

	vmdef_init(&cfg);
	parse_ok(&cfg, "{\"name\": \"v\", \"kernel\": \"/k\", \"devices\": ["
		       "{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\"},"
		       "{\"type\": \"vfio-pci\", \"host\": \"0000:00:04.0\"},"
		       "{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\"}]}");
	expect_invalid(&cfg, "device 0000:00:03.0 is listed twice");
	/* one spelling per device: the kernel's lower-case hex */
	parse_ok(&cfg, "{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:0A.0\"},"
		       "{\"type\": \"vfio-pci\", \"host\": \"0000:00:0a.0\"}]}");
	assert_string_equal(cfg.devices[0].host, "0000:00:0a.0");
	expect_invalid(&cfg, "device 0000:00:0a.0 is listed twice");
	/* passthrough settings and their defaults */
	parse_ok(&cfg, "{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\", "
		       "\"managed\": true, \"reset\": \"on\", \"rom\": {\"bar\": false}}, "
		       "{\"type\": \"vfio-pci\", \"host\": \"0000:00:04.0\", \"rom\": {\"file\": "
		       "\"/roms/x.rom\"}}]}");
	assert_true(cfg.devices[0].managed);
	assert_int_equal(cfg.devices[0].reset, VMDEF_RESET_ON);
	assert_false(cfg.devices[0].rom_bar);
	assert_null(cfg.devices[0].rom_file);
	assert_false(cfg.devices[1].managed);
	assert_int_equal(cfg.devices[1].reset, VMDEF_RESET_AUTO);
	assert_true(cfg.devices[1].rom_bar);
	assert_string_equal(cfg.devices[1].rom_file, "/roms/x.rom");
	{
		struct vmdef copy;

		assert_int_equal(vmdef_copy(&copy, &cfg), 0);
		assert_ptr_not_equal(copy.devices[1].rom_file, cfg.devices[1].rom_file);
		assert_string_equal(copy.devices[1].rom_file, "/roms/x.rom");
		vmdef_fini(&copy);
	}
	parse_ok(&cfg, "{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\"},"
		       "{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.1\"}]}");
	assert_int_equal(vmdef_validate(&cfg, NULL, 0), 0);
	/* test devices: one PCI slot each, one pc-testdev */
	parse_ok(&cfg, "{\"devices\": [{\"type\": \"testdev\", \"slot\": 4},"
		       "{\"type\": \"pci-testdev\"}, {\"type\": \"testdev\", \"slot\": 4}]}");
	expect_invalid(&cfg, "devices 0 and 2 both ask for PCI slot 4");
	parse_ok(&cfg, "{\"devices\": [{\"type\": \"pc-testdev\"}, {\"type\": \"testdev\"},"
		       "{\"type\": \"pc-testdev\"}]}");
	expect_invalid(&cfg, "pc-testdev is listed twice (it has fixed ports)");
	parse_ok(&cfg, "{\"devices\": [{\"type\": \"pc-testdev\"}, {\"type\": \"testdev\"},"
		       "{\"type\": \"testdev\", \"slot\": 3}, {\"type\": \"pci-testdev\"}]}");
	assert_int_equal(vmdef_validate(&cfg, NULL, 0), 0);
	assert_int_equal(cfg.devices[1].slot, -1);
	assert_int_equal(cfg.devices[2].slot, 3);
	{
		json_t *j = vmdef_to_json(&cfg);
		char *text = json_dumps(json_object_get(j, "devices"), JSON_COMPACT);

		assert_string_equal(text, "[{\"type\":\"pc-testdev\"},{\"type\":\"testdev\"},"
					  "{\"type\":\"testdev\",\"slot\":3},"
					  "{\"type\":\"pci-testdev\"}]");
		free(text);
		json_decref(j);
	}
	vmdef_fini(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_json_defaults),  cmocka_unit_test(test_to_json_full),
		cmocka_unit_test(test_round_trip),	  cmocka_unit_test(test_from_json_values),
		cmocka_unit_test(test_validate_required), cmocka_unit_test(test_validate_pins),
		cmocka_unit_test(test_validate_devices),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
