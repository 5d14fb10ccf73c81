/*
 * VM definitions, the refusing side: every error path of vmdef_parse returns -EINVAL with
 * a message that names the offending key (or the line and column of a JSON syntax error), and
 * leaves the config passed in exactly as it was, even when keys before the bad one were fine.
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

/* A config that differs from the defaults everywhere, to see that a failed parse keeps it. */
static const char base_definition[] =
	"{\"name\": \"keep\", \"vcpus\": 3, \"memory\": 96, \"kernel\": \"/k.elf\", "
	"\"cmdline\": \"a=b\", \"serial\": {\"log\": \"/s.log\"}, \"on_crash\": \"preserve\", "
	"\"sched\": {\"policy\": \"relaxed\", \"cpus\": \"1-2\", \"pin\": {\"2\": \"1\"}}, "
	"\"pvlock\": {\"kvm_features\": [\"pv_eoi\"]}, \"irq\": {\"steering\": false}, "
	"\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:05.0\"}]}";

static char *dump(const struct vmdef *cfg)
{
	char *s = vmdeftest_dump(cfg);

	assert_non_null(s);
	return s;
}

/* Parses `text` over the base config: -EINVAL, `want` in the message, config untouched. */
static void expect_error(const char *text, const char *want)
{
	struct vmdef cfg;
	char err[512] = "", *before, *after;
	char *kernel;
	struct vmdef_pin *pins;

	vmdef_init(&cfg);
	assert_int_equal(vmdef_parse(&cfg, base_definition, sizeof(base_definition) - 1, NULL, 0),
			 0);
	before = dump(&cfg);
	kernel = cfg.kernel;
	pins = cfg.sched.pins;
	if (vmdef_parse(&cfg, text, strlen(text), err, sizeof(err)) != -EINVAL)
		fail_msg("accepted: %s", text);
	if (!strstr(err, want))
		fail_msg("%s\n  error: %s\n  expected it to contain: %s", text, err, want);
	after = dump(&cfg);
	assert_string_equal(after, before);
	/* Not even reallocated. */
	assert_ptr_equal(cfg.kernel, kernel);
	assert_ptr_equal(cfg.sched.pins, pins);
	free(before);
	free(after);
	vmdef_fini(&cfg);
}

static void test_unknown_keys(void **state)
{
	expect_error("{\"nmae\": \"x\"}", "unknown key \"nmae\"");
	expect_error("{\"name\": \"x\", \"Vcpus\": 2}", "unknown key \"Vcpus\"");
	expect_error("{\"sched\": {\"polcy\": \"gang\"}}", "unknown key \"sched.polcy\"");
	expect_error("{\"pvlock\": {\"enable\": true}}", "unknown key \"pvlock.enable\"");
	expect_error("{\"irq\": {\"steer\": true}}", "unknown key \"irq.steer\"");
	expect_error("{\"serial\": {\"file\": \"/x\"}}", "unknown key \"serial.file\"");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\", "
		     "\"bar\": 1}]}",
		     "unknown key \"devices[0].bar\"");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\", "
		     "\"rom\": {\"enabled\": false}}]}",
		     "unknown key \"devices[0].rom.enabled\"");
}

static void test_wrong_types(void **state)
{
	expect_error("{\"name\": 5}", "\"name\" must be a string");
	expect_error("{\"vcpus\": \"4\"}", "\"vcpus\" must be an integer between 1 and 254");
	expect_error("{\"vcpus\": 2.0}", "\"vcpus\" must be an integer between 1 and 254");
	expect_error("{\"vcpus\": true}", "\"vcpus\" must be an integer");
	expect_error("{\"kernel\": null}", "\"kernel\" must be a string");
	expect_error("{\"initrd\": 1}", "\"initrd\" must be a string");
	expect_error("{\"autostart\": 1}", "\"autostart\" must be true or false");
	expect_error("{\"serial\": []}", "\"serial\" must be an object");
	expect_error("{\"serial\": {\"stdout\": \"yes\"}}",
		     "\"serial.stdout\" must be true or false");
	expect_error("{\"serial\": {\"log\": 3}}", "\"serial.log\" must be a string");
	expect_error("{\"sched\": \"gang\"}", "\"sched\" must be an object");
	expect_error("{\"sched\": {\"pin\": [\"0\"]}}", "\"sched.pin\" must be an object");
	expect_error("{\"sched\": {\"pin\": {\"0\": 1}}}", "\"sched.pin.0\" must be a string");
	expect_error("{\"pvlock\": null}", "\"pvlock\" must be an object");
	expect_error("{\"pvlock\": {\"enabled\": \"true\"}}",
		     "\"pvlock.enabled\" must be true or false");
	expect_error("{\"pvlock\": {\"kvm_features\": \"all\"}}",
		     "\"pvlock.kvm_features\" must be \"host\" or a list of feature names");
	expect_error("{\"pvlock\": {\"kvm_features\": [\"pv_eoi\", 7]}}",
		     "\"pvlock.kvm_features[1]\" must be a string");
	expect_error("{\"irq\": {\"steering\": 0}}", "\"irq.steering\" must be true or false");
	expect_error("{\"devices\": {}}", "\"devices\" must be a list");
	expect_error("{\"devices\": [\"0000:00:03.0\"]}", "\"devices[0]\" must be an object");
	expect_error("[]", "a VM definition must be a JSON object");
	expect_error("\"vm\"", "line 1, column 4: '[' or '{' expected");
}

static void test_ranges(void **state)
{
	expect_error("{\"vcpus\": 0}", "\"vcpus\" must be between 1 and 254 (got 0)");
	expect_error("{\"vcpus\": 1000}", "\"vcpus\" must be between 1 and 254 (got 1000)");
	expect_error("{\"vcpus\": 255}", "\"vcpus\" must be between 1 and 254 (got 255)");
	expect_error("{\"vcpus\": -1}", "\"vcpus\" must be between 1 and 254 (got -1)");
	expect_error("{\"memory\": 1}", "\"memory\" must be between 2 and 262144 (got 1)");
	expect_error("{\"memory\": 262145}", "\"memory\" must be between 2 and 262144");
	expect_error("{\"memory\": \"1M\"}", "\"memory\" must be between 2 MiB and 256 GiB");
	expect_error("{\"memory\": \"257G\"}", "\"memory\" must be between 2 MiB and 256 GiB");
	expect_error("{\"memory\": \"3073K\"}", "\"memory\" must be a whole number of MiB");
	expect_error("{\"memory\": \"1.5G\"}", "\"memory\" must be MiB as an integer or a size");
	expect_error("{\"memory\": \"lots\"}", "\"memory\" must be MiB as an integer or a size");
	expect_error("{\"memory\": \"99999999999999999999G\"}", "\"memory\" must be MiB");
	expect_error("{\"memory\": 1.5}", "\"memory\" must be MiB as an integer or a size");
	expect_error("{\"sched\": {\"quantum_us\": 99}}",
		     "\"sched.quantum_us\" must be between 100 and 1000000 (got 99)");
	expect_error("{\"sched\": {\"skew_us\": 1000001}}",
		     "\"sched.skew_us\" must be between 10 and 1000000");
	expect_error("{\"sched\": {\"policy\": \"fair\"}}",
		     "\"sched.policy\" must be one of: host, pinned, gang, relaxed, adaptive, mux");
	expect_error("{\"sched\": {\"policy\": 2}}", "\"sched.policy\" must be one of");
	expect_error("{\"on_crash\": \"reboot\"}",
		     "\"on_crash\" must be one of: destroy, restart, preserve");
	expect_error("{\"pvlock\": {\"pause_exits\": \"yes\"}}",
		     "\"pvlock.pause_exits\" must be one of: auto, on, off");
	expect_error("{\"pvlock\": {\"kvm_features\": [\"pv_unhalt\", \"pv_spinlock\"]}}",
		     "\"pvlock.kvm_features[1]\": unknown KVM feature \"pv_spinlock\"");
}

static void test_names_and_strings(void **state)
{
	char text[8192];

	expect_error("{\"name\": \"\"}", "\"name\" must be 1-63 characters");
	expect_error("{\"name\": \".hidden\"}", "\"name\" must be 1-63 characters");
	expect_error("{\"name\": \"-x\"}", "\"name\" must be 1-63 characters");
	expect_error("{\"name\": \"a b\"}", "\"name\" must be 1-63 characters");
	expect_error("{\"name\": \"a/b\"}", "\"name\" must be 1-63 characters");
	expect_error("{\"name\": \"caf\xc3\xa9\"}", "\"name\" must be 1-63 characters");
	expect_error("{\"name\": "
		     "\"a123456789012345678901234567890123456789012345678901234567890123\"}",
		     "\"name\" is longer than 63 bytes");
	/* JSON text cannot carry a NUL inside a string (vmdef_from_json checks it too). */
	expect_error("{\"kernel\": \"/a\\u0000b\"}", "line 1, column");
	expect_error("{\"uuid\": \"8f3169e4-9e17-5347-a623-47fff434bb0\"}",
		     "\"uuid\" must look like");
	expect_error("{\"uuid\": \"8f3169e4-9e17-5347-a623-47fff434bb0g\"}",
		     "\"uuid\" must look like");
	expect_error("{\"uuid\": \"8f3169e409e17-5347-a623-47fff434bb04\"}",
		     "\"uuid\" must look like");
	expect_error("{\"uuid\": \"8f3169e4-9e17-5347-a623-47fff434bb045\"}",
		     "\"uuid\" is longer than 36 bytes");
	expect_error("{\"uuid\": \"\"}", "\"uuid\" must look like");

	/* cmdline: 4095 bytes fit, 4096 do not. */
	snprintf(text, sizeof(text), "{\"cmdline\": \"%4096d\"}", 1);
	expect_error(text, "\"cmdline\" is longer than 4095 bytes");
}

static void test_cpusets_and_pins(void **state)
{
	expect_error("{\"sched\": {\"cpus\": \"3-1\"}}",
		     "\"sched.cpus\" must be a host CPU list such as \"0-3,6\" (got \"3-1\")");
	expect_error("{\"sched\": {\"cpus\": \"\"}}", "\"sched.cpus\" must be a host CPU list");
	expect_error("{\"sched\": {\"cpus\": \"0-1024\"}}",
		     "\"sched.cpus\" must be a host CPU list");
	expect_error("{\"sched\": {\"cpus\": \"1,,2\"}}", "\"sched.cpus\" must be a host CPU list");
	expect_error("{\"sched\": {\"pin\": {\"x\": \"1\"}}}",
		     "\"sched.pin.x\": pin keys are vCPU numbers (0..253)");
	expect_error("{\"sched\": {\"pin\": {\"254\": \"1\"}}}", "\"sched.pin.254\": pin keys");
	expect_error("{\"sched\": {\"pin\": {\"01\": \"1\"}}}", "\"sched.pin.01\": pin keys");
	expect_error("{\"sched\": {\"pin\": {\"0x1\": \"1\"}}}", "\"sched.pin.0x1\": pin keys");
	expect_error("{\"sched\": {\"pin\": {\"-1\": \"1\"}}}", "\"sched.pin.-1\": pin keys");
	expect_error("{\"sched\": {\"pin\": {\"\": \"1\"}}}", "\"sched.pin.\": pin keys");
	expect_error("{\"sched\": {\"pin\": {\"1\": \"0\", \"2\": \"a\"}}}",
		     "\"sched.pin.2\" must be a host CPU list");
}

static void test_devices(void **state)
{
	char text[4096];
	size_t n;

	expect_error("{\"devices\": [{\"type\": \"virtio\", \"host\": \"0000:00:03.0\"}]}",
		     "\"devices[0].type\" must be one of: vfio-pci, testdev, pci-testdev, "
		     "pc-testdev");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:20.0\"}]}",
		     "\"devices[0].host\" must be a PCI address such as \"0000:00:03.0\"");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\"}, "
		     "{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.8\"}]}",
		     "\"devices[1].host\" must be a PCI address");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"00:03.0\"}]}",
		     "\"devices[0].host\" must be a PCI address");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:0g:03.0\"}]}",
		     "\"devices[0].host\" must be a PCI address");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000-00-03.0\"}]}",
		     "\"devices[0].host\" must be a PCI address");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.00\"}]}",
		     "\"devices[0].host\" must be a PCI address");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0-extra\"}]}",
		     "\"devices[0].host\" is longer than 15 bytes");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\"}]}",
		     "\"devices[0]\" (vfio-pci) needs \"host\"");
	expect_error("{\"devices\": [{\"host\": \"0000:00:03.0\"}]}",
		     "\"devices[0]\" needs \"type\"");
	/* test devices: a slot on bus 0 (1-31), no host; pc-testdev has fixed ports */
	expect_error("{\"devices\": [{\"type\": \"testdev\", \"host\": \"0000:00:03.0\"}]}",
		     "\"devices[0].host\" is for vfio-pci devices only");
	expect_error("{\"devices\": [{\"type\": \"testdev\", \"slot\": 0}]}",
		     "\"devices[0].slot\" must be between 1 and 31 (got 0)");
	expect_error("{\"devices\": [{\"type\": \"pci-testdev\", \"slot\": 32}]}",
		     "\"devices[0].slot\" must be between 1 and 31 (got 32)");
	expect_error("{\"devices\": [{\"type\": \"pc-testdev\", \"slot\": 3}]}",
		     "\"devices[0].slot\": pc-testdev is not a PCI device");
	/* passthrough settings: their types, and vfio-pci devices only */
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\", "
		     "\"managed\": \"yes\"}]}",
		     "\"devices[0].managed\" must be true or false");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\", "
		     "\"reset\": \"flr\"}]}",
		     "\"devices[0].reset\" must be one of: auto, on, off");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\", "
		     "\"rom\": true}]}",
		     "\"devices[0].rom\" must be an object");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\", "
		     "\"rom\": {\"file\": \"\"}}]}",
		     "\"devices[0].rom.file\" must name a file");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0000:00:03.0\", "
		     "\"rom\": {\"bar\": 0}}]}",
		     "\"devices[0].rom.bar\" must be true or false");
	expect_error("{\"devices\": [{\"type\": \"testdev\", \"managed\": true}]}",
		     "\"devices[0]\": \"managed\", \"reset\" and \"rom\" are for vfio-pci "
		     "devices only");
	expect_error("{\"devices\": [{\"type\": \"pci-testdev\", \"rom\": {}}]}",
		     "are for vfio-pci devices only");
	expect_error("{\"devices\": [{\"type\": \"vfio-pci\", \"host\": \"0x00:00:03.0\"}]}",
		     "\"devices[0].host\" must be a PCI address");

	n = (size_t)snprintf(text, sizeof(text), "{\"devices\": [");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "%s{\"type\": \"vfio-pci\", \"host\": \"0000:00:%02x.0\"}",
				      i ? ", " : "", i);
	snprintf(text + n, sizeof(text) - n, "]}");
	expect_error(text, "\"devices\" has more than 16 entries");
}

static void test_json_syntax(void **state)
{
	expect_error("{\"name\": \"a\",\n \"name\": \"b\"}",
		     "line 2, column 7: duplicate object key");
	expect_error("{\"sched\": {\"policy\": \"gang\",\n\"policy\": \"host\"}}",
		     "line 2, column 8: duplicate object key");
	expect_error("{\n\"name\": \"a\",\n}", "line 3, column 1: string or '}' expected");
	expect_error("{\"vcpus\": 2} trailing", "line 1, column");
	expect_error("", "'[' or '{' expected near end of file");
	expect_error("{\"vcpus\": 4", "line 1, column");
}

/* The error buffer is optional and never overrun. */
static void test_error_buffer(void **state)
{
	struct vmdef cfg;
	char small[8];

	vmdef_init(&cfg);
	assert_int_equal(vmdef_parse(&cfg, "{\"x\": 1}", 8, NULL, 0), -EINVAL);
	memset(small, 'q', sizeof(small));
	assert_int_equal(vmdef_parse(&cfg, "{\"nmae\": 1}", 11, small, 5), -EINVAL);
	assert_string_equal(small, "unkn");
	assert_int_equal(small[5], 'q');
	vmdef_fini(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_keys),	 cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_ranges),		 cmocka_unit_test(test_names_and_strings),
		cmocka_unit_test(test_cpusets_and_pins), cmocka_unit_test(test_devices),
		cmocka_unit_test(test_json_syntax),	 cmocka_unit_test(test_error_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
