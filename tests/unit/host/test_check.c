/*
 * The host check on recorded hosts (tests/unit/host/data, see its README.md): an Intel VT-x
 * host with APICv, PLE and VT-d with interrupt remapping, an AMD host with AVIC, the pause
 * filter and AMD-Vi (both written from the vendors' documented bits and Linux's sysfs layout),
 * and this development machine, a PVM software KVM, recorded with record.py.  Each test
 * asserts the verdicts, the values that decide them and the sources, and that every fact
 * names its source and its meaning.  Variations (PLE off, interrupt remapping off, AVIC off)
 * run on a copy of a recording with one file changed.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/host.h"
#include "util/util.h"

#define NR_FACTS 29 /* every check reports every fact, whatever the host */

struct recording {
	char root[512];
	char copy[64]; /* a temporary copy, if the test changes files */
	struct host_cpuid cpuid;
	struct host_kvm kvm;
	struct host_topology topology;
	struct host_report report;
};

static struct recording *load(const char *name, bool copy)
{
	struct recording *rec = calloc(1, sizeof(*rec));
	char path[600], err[256], cmd[1400];
	json_error_t jerr;
	char *text = NULL;
	json_t *j;

	assert_non_null(rec);
	snprintf(rec->root, sizeof(rec->root), "%s/%s/root", HOST_DATA_DIR, name);
	if (copy) {
		strcpy(rec->copy, "/tmp/lockstep-host-XXXXXX");
		assert_non_null(mkdtemp(rec->copy));
		snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s/root'", rec->root, rec->copy);
		assert_int_equal(system(cmd), 0);
		snprintf(rec->root, sizeof(rec->root), "%s/root", rec->copy);
	}
	snprintf(path, sizeof(path), "%s/%s/cpuid.txt", HOST_DATA_DIR, name);
	assert_int_equal(util_read_text(path, 1 << 20, &text, NULL), 0);
	assert_int_equal(host_cpuid_parse(text, &rec->cpuid, err, sizeof(err)), 0);
	free(text);
	snprintf(path, sizeof(path), "%s/%s/kvm.json", HOST_DATA_DIR, name);
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(j);
	assert_int_equal(host_kvm_from_json(j, &rec->kvm, err, sizeof(err)), 0);
	json_decref(j);
	return rec;
}

static void unload(struct recording *rec)
{
	char cmd[128];

	if (rec->copy[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rec->copy);
		assert_int_equal(system(cmd), 0);
	}
	free(rec);
}

static void check(struct recording *rec, bool probed)
{
	struct host_input in = {
		.root = rec->root,
		.cpuid = &rec->cpuid,
		.kvm = probed ? &rec->kvm : NULL,
		.topology = &rec->topology,
	};

	host_check(&in, &rec->report);
}

static void put(struct recording *rec, const char *path, const char *text)
{
	char full[700];
	FILE *f;

	snprintf(full, sizeof(full), "%s%s", rec->root, path);
	f = fopen(full, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const struct host_fact *fact(const struct host_report *r, const char *id)
{
	const struct host_fact *f = host_report_find(r, id);

	if (!f)
		fail_msg("no fact %s", id);
	return f;
}

#define assert_contains(haystack, needle)                                                 \
	do {                                                                              \
		if (!strstr((haystack), (needle)))                                        \
			fail_msg("\"%s\" does not contain \"%s\"", (haystack), (needle)); \
	} while (0)

static void assert_verdict(const struct host_report *r, const char *id, enum host_verdict v)
{
	const struct host_fact *f = fact(r, id);

	if (f->verdict != v)
		fail_msg("%s: %s (%s), want %s", id, host_verdict_name(f->verdict), f->value,
			 host_verdict_name(v));
}

/* Every fact: a known verdict, an id "group.name", a value, a source and a meaning; ids once. */
static void assert_well_formed(const struct host_report *r)
{
	assert_int_equal(r->nr, NR_FACTS);
	for (unsigned i = 0; i < r->nr; i++) {
		const struct host_fact *f = &r->fact[i];

		assert_true(f->verdict <= HOST_NA);
		assert_non_null(strchr(f->id, '.'));
		if (!f->value[0] || !f->source[0] || !f->meaning[0])
			fail_msg("%s lacks a value, source or meaning", f->id);
		if (f->verdict == HOST_WARN && strcmp(f->id, "kvm.stats") != 0 &&
		    strcmp(f->id, "cpu.hypervisor") != 0 && strcmp(f->id, "kvm.ple") != 0 &&
		    !f->fix[0] && !strstr(f->value, "none"))
			fail_msg("%s warns without a fix", f->id);
		for (unsigned k = 0; k < i; k++)
			assert_string_not_equal(r->fact[k].id, f->id);
	}
}

static void intel_vtx(void **state)
{
	struct recording *rec = load("intel-vtx", false);
	const struct host_report *r = &rec->report;
	static const char *const pass[] = {
		"kvm.flavour",
		"kvm.device",
		"kvm.nested_paging",
		"kvm.tagged_tlb",
		"kvm.ple",
		"kvm.ple_window",
		"kvm.stats",
		"kvm.disable_exits",
		"kvm.apicv",
		"kvm.halt_poll",
		"kvm.nested",
		"kvm.pv_features",
		"cpu.x2apic",
		"cpu.tsc",
		"cpu.tsc_frequency",
		"cpu.hypervisor",
		"topology.smt",
		"topology.numa",
		"mem.hugepages",
		"iommu.hardware",
		"iommu.dma_remapping",
		"iommu.interrupt_remapping",
		"iommu.posted_interrupts",
		"iommu.groups",
		"iommu.vfio",
		"iommu.faults",
		"sandbox.cgroup2",
		"sandbox.namespaces",
		"sandbox.seccomp",
	};
	char why[512];

	rec->topology = (struct host_topology){ .cpus = 64, .cores = 32, .numa_nodes = 2 };
	check(rec, true);
	assert_well_formed(r);
	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
		assert_verdict(r, pass[i], HOST_PASS);
	assert_int_equal(r->flavour, HOST_KVM_VMX);
	assert_int_equal(host_flavour_detect(rec->root), HOST_KVM_VMX);
	assert_true(r->ple_expected);
	assert_contains(r->ple_why, "Intel PLE on");
	assert_contains(fact(r, "kvm.flavour")->source, "CPUID 0x1 ECX[5] (VMX) = 1");
	assert_contains(fact(r, "kvm.nested_paging")->value, "EPT on, accessed/dirty bits");
	assert_contains(fact(r, "kvm.nested_paging")->source,
			"/sys/module/kvm_intel/parameters/ept");
	assert_contains(fact(r, "kvm.ple")->source,
			"vmx flags: ple (IA32_VMX_PROCBASED_CTLS2[10])");
	assert_contains(fact(r, "kvm.ple")->source, "/sys/module/kvm_intel/parameters/ple_gap");
	assert_contains(fact(r, "kvm.ple_window")->value, "ple_gap=128 ple_window=4096");
	assert_contains(fact(r, "kvm.apicv")->value, "APICv on");
	assert_contains(fact(r, "kvm.apicv")->source,
			"/sys/module/kvm_intel/parameters/enable_apicv");
	assert_contains(fact(r, "cpu.hypervisor")->value, "bare metal");
	assert_contains(fact(r, "topology.smt")->value, "64 CPUs on 32 cores: SMT");
	assert_contains(fact(r, "topology.numa")->value, "2 NUMA nodes");
	assert_contains(fact(r, "iommu.hardware")->value, "2 units: Intel VT-d");
	assert_contains(fact(r, "iommu.hardware")->details,
			"dmar0: Intel VT-d, cap 8d2078c106f0466 "
			"ecap f020df: interrupt remapping yes");
	assert_contains(fact(r, "iommu.dma_remapping")->value, "4 IOMMU groups; host devices "
							       "pass through (iommu=pt)");
	assert_contains(fact(r, "iommu.interrupt_remapping")->value, "on: interrupt chips IR-*");
	assert_contains(fact(r, "iommu.interrupt_remapping")->details,
			"DMAR-IR: Enabled IRQ remapping in x2apic mode");
	assert_contains(fact(r, "iommu.posted_interrupts")->source, "cap[59] (PI)");
	assert_contains(fact(r, "iommu.groups")->value,
			"4 groups: 1 ready for passthrough (vfio-pci), 2 in use by host drivers");
	assert_contains(fact(r, "iommu.groups")->details,
			"group 17: 0000:5e:00.0 [8086:0d58] vfio-pci -- ready for passthrough");
	assert_contains(fact(r, "iommu.groups")->details,
			"group 12: 0000:3b:00.0 [8086:1563] ixgbe 0000:3b:00.1 [8086:1563] "
			"vfio-pci -- in use by host drivers");
	assert_contains(fact(r, "iommu.groups")->details,
			"group 0: 0000:00:00.0 [8086:09a2] (no driver) -- free");
	assert_contains(fact(r, "iommu.vfio")->value, "vfio-pci loaded");
	/* The passthrough path's early check. */
	assert_int_equal(host_iommu_ready(rec->root, NULL, why, sizeof(why)), 0);
	assert_int_equal(host_iommu_ready(rec->root, "0000:5e:00.0", why, sizeof(why)), 0);
	assert_int_equal(host_iommu_ready(rec->root, "0000:99:00.0", why, sizeof(why)), -ENOENT);
	assert_contains(why, "no PCI device 0000:99:00.0");
	assert_int_equal(host_iommu_ready(rec->root, "0000:5e:00.0/../..", why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(host_iommu_ready(rec->root, "0000:5E:00.0", why, sizeof(why)), -EINVAL);
	unload(rec);
}

static void amd_svm(void **state)
{
	struct recording *rec = load("amd-svm", false);
	const struct host_report *r = &rec->report;

	rec->topology = (struct host_topology){ .cpus = 64, .cores = 32, .numa_nodes = 1 };
	check(rec, true);
	assert_well_formed(r);
	for (unsigned i = 0; i < r->nr; i++)
		if (r->fact[i].verdict != HOST_PASS)
			fail_msg("%s: %s (%s)", r->fact[i].id,
				 host_verdict_name(r->fact[i].verdict), r->fact[i].value);
	assert_int_equal(r->flavour, HOST_KVM_SVM);
	assert_int_equal(host_flavour_detect(rec->root), HOST_KVM_SVM);
	assert_true(r->ple_expected);
	assert_contains(r->ple_why, "AMD pause filter on");
	assert_contains(fact(r, "kvm.flavour")->source, "CPUID 0x80000001 ECX[2] (SVM) = 1");
	assert_contains(fact(r, "kvm.nested_paging")->source, "CPUID 0x8000000A EDX[0] (NP) = 1");
	assert_contains(fact(r, "kvm.tagged_tlb")->value, "32768 ASIDs, flush by ASID");
	assert_contains(fact(r, "kvm.ple")->value, "pause filter on, with threshold");
	assert_contains(fact(r, "kvm.ple")->source,
			"CPUID 0x8000000A EDX[10] (PauseFilter) = 1, EDX[12] (PFThreshold) = 1");
	assert_contains(fact(r, "kvm.ple")->source,
			"/sys/module/kvm_amd/parameters/pause_filter_count");
	assert_contains(fact(r, "kvm.ple_window")->value,
			"pause_filter_count=3000 pause_filter_thresh=128");
	assert_contains(fact(r, "kvm.apicv")->value, "AVIC on, x2AVIC");
	assert_contains(fact(r, "kvm.apicv")->source, "CPUID 0x8000000A EDX[13] (AVIC) = 1");
	assert_contains(fact(r, "kvm.nested")->source, "/sys/module/kvm_amd/parameters/nested");
	assert_contains(fact(r, "iommu.hardware")->value, "1 unit: AMD-Vi");
	assert_contains(fact(r, "iommu.hardware")->details,
			"guest virtual APIC (GA) yes, x2APIC (XT) yes");
	assert_contains(fact(r, "iommu.posted_interrupts")->value,
			"AMD-Vi guest virtual APIC (GA) offered, enabled (kernel log)");
	assert_contains(fact(r, "iommu.interrupt_remapping")->details,
			"AMD-Vi: Interrupt remapping enabled");
	assert_contains(fact(r, "iommu.groups")->details,
			"group 33: 0000:c1:00.0 [10de:2236] vfio-pci 0000:c1:00.1 [10de:1aef] "
			"vfio-pci -- ready");
	/* A bridge bound to pcieport leaves its group viable. */
	assert_contains(fact(r, "iommu.groups")->details, "group 2: 0000:00:01.1 [1022:14ab] "
							  "pcieport -- free");
	assert_contains(fact(r, "iommu.vfio")->value, "iommufd loaded");
	assert_int_equal(host_iommu_ready(rec->root, "0000:c1:00.1", NULL, 0), 0);
	unload(rec);
}

/* This machine: a PVM software KVM inside a Firecracker VM, no IOMMU. */
static void pvm(void **state)
{
	struct recording *rec = load("pvm", false);
	const struct host_report *r = &rec->report;
	static const char *const warn[] = { "kvm.flavour",
					    "kvm.nested_paging",
					    "kvm.tagged_tlb",
					    "kvm.ple",
					    "kvm.stats",
					    "kvm.apicv",
					    "kvm.pv_features",
					    "cpu.hypervisor",
					    "iommu.hardware",
					    "iommu.dma_remapping",
					    "iommu.interrupt_remapping",
					    "iommu.groups",
					    "iommu.vfio" };
	char why[512];

	rec->topology = (struct host_topology){ .cpus = 2, .cores = 2, .numa_nodes = 1 };
	check(rec, true);
	assert_well_formed(r);
	for (size_t i = 0; i < sizeof(warn) / sizeof(warn[0]); i++)
		assert_verdict(r, warn[i], HOST_WARN);
	assert_verdict(r, "kvm.device", HOST_PASS);
	assert_verdict(r, "kvm.ple_window", HOST_NA);
	assert_verdict(r, "kvm.nested", HOST_NA);
	assert_verdict(r, "iommu.posted_interrupts", HOST_NA);
	assert_int_equal(r->flavour, HOST_KVM_PVM);
	assert_int_equal(host_flavour_detect(rec->root), HOST_KVM_PVM);
	assert_int_equal(host_flavour_detect("/nonexistent/lockstep"), HOST_KVM_NONE);
	assert_false(r->ple_expected);
	assert_contains(r->ple_why, "kvm_pvm");
	assert_contains(fact(r, "kvm.flavour")->value,
			"software KVM: PVM (kvm_pvm), CPUID offers neither VMX nor SVM");
	assert_contains(fact(r, "kvm.flavour")->source,
			"/sys/module/kvm_pvm; CPUID 0x1 ECX[5] (VMX) = 0; CPUID 0x80000001 ECX[2] "
			"(SVM) = 0");
	assert_contains(fact(r, "kvm.flavour")->meaning, "guest ring 0 is emulated");
	assert_contains(fact(r, "kvm.flavour")->meaning, "takes no pause-loop exits");
	assert_contains(fact(r, "kvm.ple")->source, "/sys/module/kvm_pvm");
	assert_contains(fact(r, "kvm.stats")->value, "they stay 0 without pause-loop exits");
	assert_contains(fact(r, "kvm.stats")->details, "directed_yield_attempted");
	assert_contains(fact(r, "kvm.device")->value, "up to 1024 vCPUs per VM (2 recommended)");
	assert_contains(fact(r, "kvm.disable_exits")->value, "0xe: PAUSE exits can be turned off");
	assert_contains(fact(r, "cpu.hypervisor")->value, "hypervisor \"KVMKVMKVM\"");
	assert_contains(fact(r, "cpu.tsc_frequency")->value, "2600.000 MHz");
	assert_contains(fact(r, "sandbox.cgroup2")->value, "/sys/fs/cgroup/unified (hybrid)");
	assert_int_equal(host_iommu_ready(rec->root, "0000:00:03.0", why, sizeof(why)), -ENODEV);
	assert_contains(why, "no IOMMU for passthrough: none registered (iommu.hardware); fix: "
			     "this host is a VM");
	unload(rec);
}

/* Before lockstep-vm --host-probe has answered: every fact still there, those that need it
 * n/a. */
static void not_probed(void **state)
{
	struct recording *rec = load("intel-vtx", false);
	const struct host_report *r = &rec->report;

	check(rec, false);
	assert_well_formed(r);
	assert_false(r->kvm_probed);
	assert_verdict(r, "kvm.device", HOST_NA);
	assert_verdict(r, "kvm.stats", HOST_NA);
	assert_verdict(r, "kvm.pv_features", HOST_NA);
	assert_verdict(r, "cpu.x2apic", HOST_NA);
	assert_verdict(r, "topology.smt", HOST_NA);
	/* What sysfs and CPUID tell is there at once, PLE included (the scheduler needs it). */
	assert_verdict(r, "kvm.ple", HOST_PASS);
	assert_true(r->ple_expected);
	unload(rec);
}

static void intel_ple_off(void **state)
{
	struct recording *rec = load("intel-vtx", true);
	const struct host_report *r = &rec->report;

	put(rec, "/sys/module/kvm_intel/parameters/ple_gap", "0\n");
	check(rec, true);
	assert_verdict(r, "kvm.ple", HOST_WARN);
	assert_verdict(r, "kvm.ple_window", HOST_NA);
	assert_verdict(r, "kvm.stats", HOST_WARN);
	assert_contains(fact(r, "kvm.ple")->value, "off (ple_gap=0)");
	assert_contains(fact(r, "kvm.ple")->fix, "ple_gap=128");
	assert_false(r->ple_expected);
	assert_contains(r->ple_why, "Intel PLE off");
	unload(rec);
}

static void intel_no_interrupt_remapping(void **state)
{
	struct recording *rec = load("intel-vtx", true);
	const struct host_report *r = &rec->report;
	char why[512];

	put(rec, "/proc/interrupts", "   8:   0   0   IO-APIC    8-edge      rtc0\n");
	put(rec, "/dev/kmsg",
	    "6,412,310211,-;DMAR: IOMMU enabled\n"
	    "6,413,310300,-;DMAR-IR: Not enabling interrupt remapping\n");
	put(rec, "/proc/cmdline", "ro intel_iommu=on intremap=off\n");
	check(rec, true);
	assert_verdict(r, "iommu.interrupt_remapping", HOST_WARN);
	assert_contains(fact(r, "iommu.interrupt_remapping")->value, "off; intremap=off");
	assert_contains(fact(r, "iommu.interrupt_remapping")->fix, "drop intremap=off");
	assert_verdict(r, "iommu.dma_remapping", HOST_PASS);
	assert_int_equal(host_iommu_ready(rec->root, "0000:5e:00.0", why, sizeof(why)), -EPERM);
	assert_contains(why, "no interrupt remapping");
	assert_contains(why, "fix: drop intremap=off");
	/* VFIO told to do without it: lockstep does not stand in its way. */
	put(rec, "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "Y\n");
	assert_int_equal(host_iommu_ready(rec->root, "0000:5e:00.0", why, sizeof(why)), 0);
	unload(rec);
}

/* DMA the IOMMU blocked, as VT-d and AMD-Vi log it: the fact, and the parser lockstep-vm uses
 * for each passthrough device's report. */
static void iommu_faults(void **state)
{
	static const char vtd[] = "3,900,5000001,-;DMAR: [DMA Write NO_PASID] Request device "
				  "[00:03.0] fault addr 0x4000000 [fault reason 0x05] PTE Write "
				  "access is not set";
	static const char amd_dev[] = "vfio-pci 0000:00:04.0: Event logged [IO_PAGE_FAULT "
				      "domain=0x0002 address=0x8000000 flags=0x0020]";
	static const char amd_old[] = "AMD-Vi: Event logged [IO_PAGE_FAULT device=00:04.0 "
				      "domain=0x0002 address=0xfff000 flags=0x0000]";
	struct recording *rec = load("intel-vtx", true);
	const struct host_report *r = &rec->report;
	struct host_iommu_fault f;

	assert_true(host_iommu_fault_parse(vtd, strlen(vtd), &f));
	assert_string_equal(f.source, "00:03.0");
	assert_int_equal(f.address, 0x4000000);
	assert_true(f.write);
	assert_string_equal(f.reason, "PTE Write access is not set");
	assert_true(host_iommu_fault_from(&f, "0000:00:03.0"));
	assert_false(host_iommu_fault_from(&f, "0000:00:13.0"));
	assert_false(host_iommu_fault_from(&f, "0000:01:03.0"));
	assert_true(host_iommu_fault_parse(amd_dev, strlen(amd_dev), &f));
	assert_string_equal(f.source, "0000:00:04.0");
	assert_int_equal(f.address, 0x8000000);
	assert_true(f.write);
	assert_true(host_iommu_fault_from(&f, "0000:00:04.0"));
	assert_false(host_iommu_fault_from(&f, "0001:00:04.0"));
	assert_true(host_iommu_fault_parse(amd_old, strlen(amd_old), &f));
	assert_string_equal(f.source, "00:04.0");
	assert_false(f.write);
	assert_false(host_iommu_fault_parse("DMAR: IOMMU enabled", 19, &f));
	assert_false(host_iommu_fault_parse("6,1,2,-;DMAR: [DMA Read NO_PASID]", 33, &f));

	check(rec, true);
	assert_verdict(r, "iommu.faults", HOST_PASS);
	assert_contains(fact(r, "iommu.faults")->value, "none logged");
	put(rec, "/dev/kmsg",
	    "6,412,310211,-;DMAR: IOMMU enabled\n"
	    "3,900,5000001,-;DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr "
	    "0x4000000 [fault reason 0x05] PTE Write access is not set\n"
	    "3,901,5000002,-;DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr "
	    "0x4001000 [fault reason 0x06] PTE Read access is not set\n");
	check(rec, true);
	assert_verdict(r, "iommu.faults", HOST_WARN);
	assert_contains(fact(r, "iommu.faults")->value, "2 DMA faults logged");
	assert_contains(fact(r, "iommu.faults")->details,
			"00:03.0: DMA write at 0x4000000: PTE Write access is not set");
	assert_contains(fact(r, "iommu.faults")->details,
			"00:03.0: DMA read at 0x4001000: PTE Read access is not set");
	unload(rec);
}

/*
 * The host check runs on lockstepd's loop thread, so nothing it reads may block: /dev/kmsg
 * holds no data most of the time, and a blocking read of it waits for the next kernel message
 * (forever, on a quiet host).  A FIFO that a writer holds open and never writes to stands in
 * for it; an alarm turns a blocked read into a failure instead of a hung test.
 */
static void kmsg_without_data_does_not_block(void **state)
{
	struct recording *rec = load("intel-vtx", true);
	const struct host_report *r = &rec->report;
	char path[700];
	int held;

	snprintf(path, sizeof(path), "%s/dev/kmsg", rec->root);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	held = open(path, O_RDWR | O_CLOEXEC); /* a writer that never writes */
	assert_true(held >= 0);
	alarm(30);
	check(rec, true);
	alarm(0);
	assert_verdict(r, "iommu.faults", HOST_PASS);
	assert_contains(fact(r, "iommu.faults")->value, "none logged");
	close(held);
	unload(rec);
}

static void amd_avic_off_no_groups(void **state)
{
	struct recording *rec = load("amd-svm", true);
	const struct host_report *r = &rec->report;
	char cmd[700];

	put(rec, "/sys/module/kvm_amd/parameters/avic", "N\n");
	put(rec, "/sys/module/kvm_amd/parameters/pause_filter_count", "0\n");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/sys/kernel/iommu_groups'", rec->root);
	assert_int_equal(system(cmd), 0);
	check(rec, true);
	assert_verdict(r, "kvm.apicv", HOST_WARN);
	assert_contains(fact(r, "kvm.apicv")->fix, "avic=1");
	assert_verdict(r, "kvm.ple", HOST_WARN);
	assert_contains(fact(r, "kvm.ple")->fix, "pause_filter_count=3000");
	assert_false(r->ple_expected);
	assert_verdict(r, "iommu.dma_remapping", HOST_WARN);
	assert_contains(fact(r, "iommu.dma_remapping")->fix, "amd_iommu=on");
	assert_int_equal(host_iommu_ready(rec->root, NULL, NULL, 0), -ENODEV);
	unload(rec);
}

static void json_report(void **state)
{
	struct recording *rec = load("pvm", false);
	json_t *j, *facts, *summary, *f;
	size_t i;

	check(rec, true);
	j = host_report_json(&rec->report);
	facts = json_object_get(j, "facts");
	summary = json_object_get(j, "summary");
	assert_int_equal(json_array_size(facts), NR_FACTS);
	assert_string_equal(json_string_value(json_object_get(summary, "flavour")), "pvm");
	assert_true(json_is_false(json_object_get(summary, "ple_expected")));
	assert_int_equal(json_integer_value(json_object_get(summary, "pass")) +
				 json_integer_value(json_object_get(summary, "warn")) +
				 json_integer_value(json_object_get(summary, "fail")) +
				 json_integer_value(json_object_get(summary, "na")),
			 NR_FACTS);
	assert_int_equal(json_array_size(json_object_get(summary, "attention")),
			 json_integer_value(json_object_get(summary, "warn")) +
				 json_integer_value(json_object_get(summary, "fail")));
	json_array_foreach(facts, i, f) {
		const char *id = json_string_value(json_object_get(f, "id"));
		const char *group = json_string_value(json_object_get(f, "group"));

		assert_non_null(id);
		assert_int_equal(strncmp(id, group, strlen(group)), 0);
		assert_int_equal(id[strlen(group)], '.');
		assert_true(json_string_length(json_object_get(f, "source")) > 0);
		assert_true(json_is_array(json_object_get(f, "details")));
	}
	json_decref(j);
	unload(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(intel_vtx),
		cmocka_unit_test(amd_svm),
		cmocka_unit_test(pvm),
		cmocka_unit_test(not_probed),
		cmocka_unit_test(intel_ple_off),
		cmocka_unit_test(intel_no_interrupt_remapping),
		cmocka_unit_test(iommu_faults),
		cmocka_unit_test(kmsg_without_data_does_not_block),
		cmocka_unit_test(amd_avic_off_no_groups),
		cmocka_unit_test(json_report),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
