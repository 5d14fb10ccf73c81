/*
 * The host check's parsers: recorded CPUID tables (format, errors with line numbers, the
 * per-range maximum leaf that lookups honour), the KVM probe's JSON both ways (a round trip is
 * exact; wrong keys, types and sizes are refused by name), kernel command-line parameters and
 * space-separated flag lists.
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

#include "host/host_internal.h"

static void cpuid_table(void **state)
{
	static struct host_cpuid c;
	struct host_cpuid_leaf l;
	char err[128];

	assert_int_equal(host_cpuid_parse("# a comment\n\n"
					  "0x0 0: 0x1 0x756e6547 0x6c65746e 0x49656e69\n"
					  "  1 0x00: 000a0671 00020800 fffa3203 1f8bfbff  \n"
					  "7 0: 0 0 0 0\n"
					  "0x80000000 0: 0x80000001 0 0 0\n"
					  "0x80000001 0: 0 0 0x121 0\n"
					  "0x80000008 0: 0x3030 0 0 0\n"
					  "0x40000000 0: 0x40000001 0x4b4d564b 0x564b4d56 0x4d\n"
					  "0x40000001 0: 0x01007efb 0 0 0",
					  &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.n, 8);
	assert_true(host_cpuid_get(&c, 1, 0, &l));
	assert_int_equal(l.ecx, 0xfffa3203);
	/* Leaf 7 lies above the basic maximum (1): the CPU would answer with other data. */
	assert_false(host_cpuid_get(&c, 7, 0, &l));
	assert_false(host_cpuid_get(&c, 0x80000008, 0, &l));
	assert_true(host_cpuid_get(&c, 0x80000001, 0, &l));
	assert_true(host_cpuid_get(&c, 0x40000001, 0, &l));
	assert_int_equal(l.eax, 0x01007efb);
	assert_false(host_cpuid_get(&c, 2, 0, &l));
	assert_false(host_cpuid_get(&c, 1, 1, &l));
	assert_false(host_cpuid_get(NULL, 0, 0, &l));

	assert_int_equal(host_cpuid_parse("0 0: 1 2 3 4\n1 0 1 2 3 4\n", &c, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "CPUID line 2: want \"LEAF SUBLEAF: EAX EBX ECX EDX\"");
	assert_int_equal(host_cpuid_parse("0 0: 1 2 3 4 5\n", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "CPUID line 1: trailing text");
	assert_int_equal(host_cpuid_parse("0 0: 1 2 3 0x1ffffffff\n", &c, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(host_cpuid_parse("0 0: 1 2 3 -4\n", &c, err, sizeof(err)), -EINVAL);
}

static void cpuid_too_many(void **state)
{
	static struct host_cpuid c;
	char *text = malloc((HOST_CPUID_MAX + 1) * 32), err[128];
	size_t len = 0;

	assert_non_null(text);
	for (int i = 0; i <= HOST_CPUID_MAX; i++)
		len += (size_t)sprintf(text + len, "%x 0: 0 0 0 0\n", i);
	assert_int_equal(host_cpuid_parse(text, &c, err, sizeof(err)), -E2BIG);
	free(text);
}

static void cpuid_print_parses(void **state)
{
	static struct host_cpuid live, back;
	char *buf = NULL, err[128];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	host_cpuid_read(&live);
	assert_true(live.n >= 3); /* leaves 0, 1 and 0x80000000 exist on every x86-64 CPU */
	host_cpuid_print(&live, f);
	fclose(f);
	assert_int_equal(host_cpuid_parse(buf, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, live.n);
	assert_memory_equal(back.e, live.e, live.n * sizeof(live.e[0]));
	free(buf);
}

static void kvm_round_trip(void **state)
{
	static struct host_kvm k, back;
	char err[128];
	json_t *j;

	k.api_version = 12;
	strcpy(k.missing, "an in-kernel PIT (KVM_CAP_PIT2)");
	k.nr_caps = 2;
	strcpy(k.cap[0].name, "KVM_CAP_X86_DISABLE_EXITS");
	k.cap[0].value = 0xe;
	strcpy(k.cap[1].name, "KVM_CAP_MAX_VCPUS");
	k.cap[1].value = 1024;
	k.supported.n = 1;
	k.supported.e[0] = (struct host_cpuid_leaf){ 0x40000001, 0, 0x01007efb, 0, 0, 0xffffffff };
	k.nr_vm_stats = 1;
	strcpy(k.vm_stats[0], "remote_tlb_flush");
	k.nr_vcpu_stats = 2;
	strcpy(k.vcpu_stats[0], "exits");
	strcpy(k.vcpu_stats[1], "directed_yield_attempted");
	k.tsc_khz = 2600000;
	j = host_kvm_to_json(&k);
	assert_non_null(j);
	assert_int_equal(host_kvm_from_json(j, &back, err, sizeof(err)), 0);
	json_decref(j);
	assert_memory_equal(&back, &k, sizeof(k));

	int64_t v = 0;
	assert_true(host_kvm_cap(&back, "KVM_CAP_MAX_VCPUS", &v));
	assert_int_equal(v, 1024);
	assert_false(host_kvm_cap(&back, "KVM_CAP_NONE", &v));
	assert_false(host_kvm_cap(NULL, "KVM_CAP_MAX_VCPUS", &v));
	assert_true(host_kvm_vcpu_stat(&back, "directed_yield_attempted"));
	assert_false(host_kvm_vcpu_stat(&back, "directed_yield"));
}

static void kvm_refused(void **state)
{
	static const struct {
		const char *json, *err;
	} cases[] = {
		{ "[]", "the probe's answer is not an object" },
		{ "{\"extra\": 1}", "unknown key \"extra\"" },
		{ "{\"error\": 1}", "\"error\" must be a string" },
		{ "{\"error\": \"\", \"missing\": \"\", \"vm_error\": \"\", \"api_version\": \"12\"}",
		  "\"api_version\" must be an integer" },
		{ "{\"error\": \"\", \"missing\": \"\", \"vm_error\": \"\", \"api_version\": 12, "
		  "\"tsc_khz\": -1}",
		  "\"tsc_khz\" must be a number of kHz" },
		{ "{\"error\": \"\", \"missing\": \"\", \"vm_error\": \"\", \"api_version\": 12, "
		  "\"tsc_khz\": 1, \"caps\": {\"KVM_CAP_X\": \"1\"}}",
		  "\"caps\".\"KVM_CAP_X\" must be an integer" },
		{ "{\"error\": \"\", \"missing\": \"\", \"vm_error\": \"\", \"api_version\": 12, "
		  "\"tsc_khz\": 1, \"caps\": {}, \"supported_cpuid\": [[1, 2, 3]]}",
		  "\"supported_cpuid\"[0] must be [leaf, subleaf, eax, ebx, ecx, edx]" },
		{ "{\"error\": \"\", \"missing\": \"\", \"vm_error\": \"\", \"api_version\": 12, "
		  "\"tsc_khz\": 1, \"caps\": {}, \"supported_cpuid\": [], \"vm_stats\": [1]}",
		  "\"vm_stats\"[0] must be a name of at most 47 bytes" },
		{ "{\"error\": \"\", \"missing\": \"\", \"vm_error\": \"\", \"api_version\": 12, "
		  "\"tsc_khz\": 1, \"caps\": {}, \"supported_cpuid\": [], \"vm_stats\": []}",
		  "\"vcpu_stats\" must be an array" },
	};
	static struct host_kvm k;
	char err[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = json_loads(cases[i].json, 0, NULL);

		assert_non_null(j);
		assert_int_equal(host_kvm_from_json(j, &k, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, cases[i].err);
		json_decref(j);
	}
}

static void cmdline(void **state)
{
	const char *line = "BOOT_IMAGE=/vmlinuz ro quiet intel_iommu=on iommu=pt intremap "
			   "intel_iommu=sm_on -- iommu=off";
	char val[16];

	assert_true(cmdline_param(line, "intel_iommu", val, sizeof(val)));
	assert_string_equal(val, "sm_on"); /* the last one wins */
	assert_true(cmdline_param(line, "iommu", val, sizeof(val)));
	assert_string_equal(val, "pt"); /* after "--" is init's */
	assert_true(cmdline_param(line, "intremap", val, sizeof(val)));
	assert_string_equal(val, "");
	assert_false(cmdline_param(line, "intel", val, sizeof(val)));
	assert_false(cmdline_param(line, "amd_iommu", val, sizeof(val)));
	assert_true(cmdline_param("a=0123456789abcdefghij", "a", val, sizeof(val)));
	assert_string_equal(val, "0123456789abcde");
}

static void words(void **state)
{
	assert_true(has_word("fpu vmx ept ept_ad", "ept"));
	assert_true(has_word("fpu vmx ept ept_ad", "ept_ad"));
	assert_true(has_word("ple", "ple"));
	assert_false(has_word("fpu vmx ept_ad", "ept"));
	assert_false(has_word("fpu vmx_ept", "vmx"));
	assert_false(has_word("", "vmx"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpuid_table),
		cmocka_unit_test(cpuid_too_many),
		cmocka_unit_test(cpuid_print_parses),
		cmocka_unit_test(kvm_round_trip),
		cmocka_unit_test(kvm_refused),
		cmocka_unit_test(cmdline),
		cmocka_unit_test(words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
