/*
 * The KVM facts: which KVM this is (VMX, SVM, or a software KVM such as PVM), what the CPU
 * offers (CPUID on AMD; on Intel the VMX capability MSRs, which Linux shows as "vmx flags" in
 * /proc/cpuinfo), what the vendor module turned on (/sys/module/kvm_{intel,amd}/parameters),
 * and what /dev/kvm answers (the probe: capabilities, statistics, supported CPUID).
 *
 * Pause-loop exiting decides report->ple_expected, which lockstepd hands to the scheduler.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host/host_internal.h"

/* KVM's paravirtual features, CPUID 0x40000001 EAX (Documentation/virt/kvm/x86/cpuid.rst). */
#define KVM_PV_STEAL_TIME 5
#define KVM_PV_EOI 6
#define KVM_PV_UNHALT 7
#define KVM_PV_TLB_FLUSH 9
#define KVM_PV_SEND_IPI 11
#define KVM_PV_SCHED_YIELD 13
#define KVM_PV_CLOCKSOURCE_STABLE 24

/* KVM_CAP_X86_DISABLE_EXITS bits (linux/kvm.h). */
#define DISABLE_EXITS_HLT (1 << 1)
#define DISABLE_EXITS_PAUSE (1 << 2)

static const char *vendor_module(const struct gather *g)
{
	return g->r->flavour == HOST_KVM_VMX ? "kvm_intel" :
	       g->r->flavour == HOST_KVM_SVM ? "kvm_amd" :
					       "";
}

/* /sys/module/<vendor module>/parameters/<name>, its path for sources. */
static int param(const struct gather *g, const char *name, char *val, size_t size, char *path,
		 size_t path_size)
{
	snprintf(path, path_size, "/sys/module/%s/parameters/%s", vendor_module(g), name);
	return gather_line(g, path, val, size);
}

static bool param_on(const struct gather *g, const char *name, char *path, size_t path_size)
{
	char val[16];

	return param(g, name, val, sizeof(val), path, path_size) == 0 &&
	       (strcmp(val, "Y") == 0 || strcmp(val, "1") == 0);
}

static bool cpuid_bit(const struct gather *g, uint32_t leaf, char reg, uint32_t mask)
{
	struct host_cpuid_leaf l;

	if (!gather_cpuid(g, leaf, 0, &l))
		return false;
	return ((reg == 'a' ? l.eax : reg == 'b' ? l.ebx : reg == 'c' ? l.ecx : l.edx) & mask) != 0;
}

/* Which KVM the loaded modules (and /dev/kvm) say this is; `exists` looks below the root. */
static enum host_flavour flavour_from(bool (*exists)(const void *ctx, const char *path),
				      const void *ctx)
{
	if (exists(ctx, "/sys/module/kvm_pvm"))
		return HOST_KVM_PVM;
	if (exists(ctx, "/sys/module/kvm_intel"))
		return HOST_KVM_VMX;
	if (exists(ctx, "/sys/module/kvm_amd"))
		return HOST_KVM_SVM;
	if (exists(ctx, "/sys/module/kvm") || exists(ctx, "/dev/kvm"))
		return HOST_KVM_UNKNOWN;
	return HOST_KVM_NONE;
}

static bool exists_gathered(const void *ctx, const char *path)
{
	return gather_exists(ctx, path);
}

static bool exists_below(const void *ctx, const char *path)
{
	char full[PATH_MAX];
	struct stat st;

	snprintf(full, sizeof(full), "%s%s", (const char *)ctx, path);
	return lstat(full, &st) == 0;
}

enum host_flavour host_flavour_detect(const char *root)
{
	return flavour_from(exists_below, root ? root : "");
}

static void detect_flavour(struct gather *g)
{
	bool vmx = cpuid_bit(g, 1, 'c', CPUID_1_ECX_VMX);
	bool svm = cpuid_bit(g, 0x80000001, 'c', CPUID_80000001_ECX_SVM);
	struct host_fact *f;
	const char *cpu = vmx ? "VMX" : svm ? "SVM" : "neither VMX nor SVM";

	g->r->flavour = flavour_from(exists_gathered, g);

	switch (g->r->flavour) {
	case HOST_KVM_VMX:
	case HOST_KVM_SVM: {
		bool intel = g->r->flavour == HOST_KVM_VMX;
		bool has = intel ? vmx : svm;

		f = fact_new(g, "kvm.flavour", has ? HOST_PASS : HOST_FAIL);
		fact_value(f, "%s (%s)%s", intel ? "hardware: Intel VT-x" : "hardware: AMD-V",
			   intel ? "kvm_intel" : "kvm_amd",
			   has ? "" : ", but CPUID does not offer it");
		fact_source(f, "/sys/module/%s; CPUID %s = %d", intel ? "kvm_intel" : "kvm_amd",
			    intel ? "0x1 ECX[5] (VMX)" : "0x80000001 ECX[2] (SVM)", has);
		fact_meaning(f, "Guest code runs natively at every privilege level and KVM handles "
				"its exits in the kernel: the hardware assists below (nested "
				"paging, pause-loop exiting, APIC virtualization) are what SMP "
				"guests can get here.");
		break;
	}
	case HOST_KVM_PVM:
		f = fact_new(g, "kvm.flavour", HOST_WARN);
		fact_value(f, "software KVM: PVM (kvm_pvm), CPUID offers %s", cpu);
		fact_source(f,
			    "/sys/module/kvm_pvm; CPUID 0x1 ECX[5] (VMX) = %d; CPUID 0x80000001 "
			    "ECX[2] (SVM) = %d",
			    vmx, svm);
		fact_meaning(f,
			     "PVM runs guests without hardware virtualization: guest ring 3 runs "
			     "natively, guest ring 0 is emulated (about 1 us per instruction), so "
			     "kernel-heavy guests are slow and stock Linux kernels do not boot. It "
			     "takes no pause-loop exits (lock-holder preemption shows only through "
			     "lockstep's pvlock channel), has no APIC virtualization or nested "
			     "paging, and VMCALL/VMMCALL never reach the VMM, so lockstep's "
			     "paravirtual calls use MMIO doorbells.");
		fact_fix(f, "for hardware assists run lockstep where the CPU offers VT-x or AMD-V "
			    "(bare metal, or a VM with nested virtualization) with kvm_intel or "
			    "kvm_amd loaded");
		break;
	case HOST_KVM_UNKNOWN:
		f = fact_new(g, "kvm.flavour", HOST_WARN);
		fact_value(f, "kvm without kvm_intel, kvm_amd or kvm_pvm; CPUID offers %s", cpu);
		fact_source(f, "/sys/module/kvm; /sys/module/kvm_{intel,amd,pvm} absent");
		fact_meaning(f, "lockstep cannot tell which assists this KVM uses; the facts below "
				"come from CPUID and /dev/kvm alone.");
		break;
	default:
		f = fact_new(g, "kvm.flavour", HOST_FAIL);
		fact_value(f, "no KVM; CPUID offers %s", cpu);
		fact_source(f, "/sys/module/kvm, /dev/kvm absent; CPUID 0x1 ECX[5], 0x80000001 "
			       "ECX[2]");
		fact_meaning(f, "Without KVM lockstep cannot run VMs.");
		fact_fix(f, "%s",
			 vmx ? "modprobe kvm_intel (and enable VT-x in the firmware)" :
			 svm ? "modprobe kvm_amd (and enable AMD-V in the firmware)" :
			       "enable VT-x or AMD-V in the firmware, then load kvm_intel "
			       "or kvm_amd");
		break;
	}
}

static void device_fact(struct gather *g)
{
	const struct host_kvm *k = g->in->kvm;
	struct host_fact *f;
	int64_t max = 0, nr = 0;

	if (!gather_exists(g, "/dev/kvm")) {
		f = fact_new(g, "kvm.device", HOST_FAIL);
		fact_value(f, "/dev/kvm is absent");
		fact_source(f, "/dev/kvm");
		fact_meaning(f, "lockstep-vm runs every VM on /dev/kvm.");
		fact_fix(f, "load kvm and its vendor module (kvm_intel or kvm_amd)");
		return;
	}
	if (!k) {
		f = fact_new(g, "kvm.device", HOST_NA);
		fact_value(f, "/dev/kvm is there; its capabilities were not probed (%s)",
			   g->r->kvm_error);
		fact_source(f, "/dev/kvm");
		fact_meaning(f, "lockstepd asks lockstep-vm --host-probe for what /dev/kvm "
				"answers; host.check runs it.");
		return;
	}
	if (k->error[0]) {
		f = fact_new(g, "kvm.device", HOST_FAIL);
		fact_value(f, "%s", k->error);
		fact_source(f, "/dev/kvm: open, KVM_GET_API_VERSION (lockstep-vm --host-probe)");
		fact_meaning(f, "lockstep-vm runs every VM on /dev/kvm.");
		fact_fix(f, "run lockstepd as root (or a member of the group owning /dev/kvm)");
		return;
	}
	host_kvm_cap(k, "KVM_CAP_MAX_VCPUS", &max);
	host_kvm_cap(k, "KVM_CAP_NR_VCPUS", &nr);
	f = fact_new(g, "kvm.device", k->missing[0] ? HOST_FAIL : HOST_PASS);
	fact_value(f, "API version %d, up to %lld vCPUs per VM (%lld recommended)%s%s",
		   k->api_version, (long long)max, (long long)nr, k->missing[0] ? "; lacks " : "",
		   k->missing);
	fact_source(f, "/dev/kvm: KVM_GET_API_VERSION, KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS, "
		       "KVM_CAP_NR_VCPUS and what lockstep needs)");
	fact_meaning(f, "More vCPUs than the recommended count (KVM's idea of the host's CPUs) "
			"is overcommit: lockstep's scheduler exists for it.");
	if (k->missing[0])
		fact_fix(f, "a newer kernel: lockstep needs the missing capability");
}

/* Nested paging: EPT on Intel, NPT on AMD. */
static void paging_fact(struct gather *g)
{
	char path[128];
	struct host_fact *f;
	bool cpu, on;

	if (g->r->flavour == HOST_KVM_VMX) {
		cpu = !g->has_vmx_flags || has_word(g->vmx_flags, "ept");
		on = param_on(g, "ept", path, sizeof(path));
		f = fact_new(g, "kvm.nested_paging", cpu && on ? HOST_PASS : HOST_WARN);
		fact_value(f, "EPT %s%s%s",
			   !cpu ? "not offered by the CPU" :
			   on	? "on" :
				  "off",
			   cpu && has_word(g->vmx_flags, "ept_ad") ? ", accessed/dirty bits" : "",
			   cpu && has_word(g->vmx_flags, "ept_1gb") ? ", 1 GiB pages" : "");
		fact_source(f, "/proc/cpuinfo vmx flags: ept (IA32_VMX_PROCBASED_CTLS2[1]); %s",
			    path);
		if (cpu && !on)
			fact_fix(f, "load kvm_intel with ept=1");
	} else if (g->r->flavour == HOST_KVM_SVM) {
		cpu = cpuid_bit(g, 0x8000000a, 'd', SVM_EDX_NP);
		on = param_on(g, "npt", path, sizeof(path));
		f = fact_new(g, "kvm.nested_paging", cpu && on ? HOST_PASS : HOST_WARN);
		fact_value(f, "NPT %s", !cpu ? "not offered by the CPU" : on ? "on" : "off");
		fact_source(f, "CPUID 0x8000000A EDX[0] (NP) = %d; %s", cpu, path);
		if (cpu && !on)
			fact_fix(f, "load kvm_amd with npt=1");
	} else {
		f = fact_new(g, "kvm.nested_paging",
			     g->r->flavour == HOST_KVM_PVM ? HOST_WARN : HOST_NA);
		fact_value(f, "%s",
			   g->r->flavour == HOST_KVM_PVM ?
				   "none: the software KVM shadows guest page tables" :
				   "unknown without kvm_intel or kvm_amd");
		fact_source(f, "/sys/module/kvm_pvm; /sys/module/kvm_{intel,amd} absent");
	}
	fact_meaning(f, "With nested paging a guest edits its page tables and switches address "
			"spaces without exits. With shadow paging every page-table update, CR3 "
			"switch and many page faults exit to KVM and serialise on the VM's MMU "
			"lock, so SMP guests that map, fork or free memory on many vCPUs contend "
			"for it, and their TLB shootdowns cost exits.");
}

/* Tagged TLBs: VPID on Intel, ASIDs on AMD. */
static void tlb_fact(struct gather *g)
{
	struct host_cpuid_leaf l;
	char path[128];
	struct host_fact *f;

	if (g->r->flavour == HOST_KVM_VMX) {
		bool cpu = !g->has_vmx_flags || has_word(g->vmx_flags, "vpid");
		bool on = param_on(g, "vpid", path, sizeof(path));

		f = fact_new(g, "kvm.tagged_tlb", cpu && on ? HOST_PASS : HOST_WARN);
		fact_value(f, "VPID %s", !cpu ? "not offered by the CPU" : on ? "on" : "off");
		fact_source(f, "/proc/cpuinfo vmx flags: vpid (IA32_VMX_PROCBASED_CTLS2[5]); %s",
			    path);
		if (cpu && !on)
			fact_fix(f, "load kvm_intel with vpid=1");
	} else if (g->r->flavour == HOST_KVM_SVM && gather_cpuid(g, 0x8000000a, 0, &l)) {
		f = fact_new(g, "kvm.tagged_tlb", l.ebx ? HOST_PASS : HOST_WARN);
		fact_value(f, "%u ASIDs%s", l.ebx,
			   l.edx & SVM_EDX_FLUSH_BY_ASID ? ", flush by ASID" : "");
		fact_source(f, "CPUID 0x8000000A EBX (NASID) = %u; EDX[6] (FlushByAsid) = %d",
			    l.ebx, !!(l.edx & SVM_EDX_FLUSH_BY_ASID));
	} else {
		f = fact_new(g, "kvm.tagged_tlb",
			     g->r->flavour == HOST_KVM_PVM ? HOST_WARN : HOST_NA);
		fact_value(f, "%s",
			   g->r->flavour == HOST_KVM_PVM ? "none: no VPID or ASID without VMX/SVM" :
							   "unknown");
		fact_source(f, "/sys/module/kvm_pvm; CPUID 0x8000000A absent");
	}
	fact_meaning(f, "Tagged TLB entries survive VM entries and exits and switches between "
			"vCPUs of different VMs on one CPU. Without tags every exit and every "
			"gang-slice switch flushes the TLB and the incoming vCPU refills it.");
}

/* Pause-loop exiting (Intel) / the pause filter (AMD), and what follows for the scheduler. */
static void ple_facts(struct gather *g)
{
	struct host_report *r = g->r;
	struct host_fact *f, *t;
	char a[32] = "", b[32] = "", c[32] = "", d[32] = "", e[32] = "";
	char pa[128], pb[128], pc[128], pd[128], pe[128];
	bool cpu, on;

	if (r->flavour == HOST_KVM_VMX) {
		cpu = !g->has_vmx_flags || has_word(g->vmx_flags, "ple");
		param(g, "ple_gap", a, sizeof(a), pa, sizeof(pa));
		param(g, "ple_window", b, sizeof(b), pb, sizeof(pb));
		param(g, "ple_window_grow", c, sizeof(c), pc, sizeof(pc));
		param(g, "ple_window_shrink", d, sizeof(d), pd, sizeof(pd));
		param(g, "ple_window_max", e, sizeof(e), pe, sizeof(pe));
		on = cpu && a[0] && strcmp(a, "0") != 0;
		f = fact_new(g, "kvm.ple", on ? HOST_PASS : HOST_WARN);
		fact_value(f, "PAUSE-loop exiting %s",
			   !cpu	 ? "not offered by the CPU" :
			   !a[0] ? "unknown (no ple_gap parameter)" :
			   on	 ? "on" :
				   "off (ple_gap=0)");
		fact_source(f, "/proc/cpuinfo vmx flags: ple (IA32_VMX_PROCBASED_CTLS2[10]); %s",
			    pa);
		if (cpu && !on)
			fact_fix(f, "load kvm_intel with ple_gap=128 (its default)");
		t = fact_new(g, "kvm.ple_window", on ? HOST_PASS : HOST_NA);
		fact_value(t, "ple_gap=%s ple_window=%s grow=%s shrink=%s max=%s", a, b, c, d, e);
		fact_source(t, "/sys/module/kvm_intel/parameters/ple_{gap,window,window_grow,"
			       "window_shrink,window_max}");
		fact_meaning(t,
			     "A loop whose PAUSEs come within ple_gap cycles of each other exits "
			     "after ple_window cycles; KVM grows a vCPU's window when the exit "
			     "found nobody to yield to, so a lock that is merely contended does "
			     "not exit again and again.");
		snprintf(r->ple_why, sizeof(r->ple_why), "Intel PLE %s (%s = %s)",
			 on ? "on" : "off", pa, a[0] ? a : "?");
	} else if (r->flavour == HOST_KVM_SVM) {
		bool thresh = cpuid_bit(g, 0x8000000a, 'd', SVM_EDX_PAUSE_FILTER_THRESHOLD);

		cpu = cpuid_bit(g, 0x8000000a, 'd', SVM_EDX_PAUSE_FILTER);
		param(g, "pause_filter_count", a, sizeof(a), pa, sizeof(pa));
		param(g, "pause_filter_thresh", b, sizeof(b), pb, sizeof(pb));
		param(g, "pause_filter_count_grow", c, sizeof(c), pc, sizeof(pc));
		param(g, "pause_filter_count_shrink", d, sizeof(d), pd, sizeof(pd));
		param(g, "pause_filter_count_max", e, sizeof(e), pe, sizeof(pe));
		on = cpu && a[0] && strcmp(a, "0") != 0;
		f = fact_new(g, "kvm.ple", on ? HOST_PASS : HOST_WARN);
		fact_value(f, "pause filter %s%s",
			   !cpu	 ? "not offered by the CPU" :
			   !a[0] ? "unknown (no pause_filter_count parameter)" :
			   on	 ? "on" :
				   "off (pause_filter_count=0)",
			   on && thresh ? ", with threshold" : "");
		fact_source(f,
			    "CPUID 0x8000000A EDX[10] (PauseFilter) = %d, EDX[12] "
			    "(PFThreshold) = %d; %s",
			    cpu, thresh, pa);
		if (cpu && !on)
			fact_fix(f, "load kvm_amd with pause_filter_count=3000 (its default)");
		t = fact_new(g, "kvm.ple_window", on ? HOST_PASS : HOST_NA);
		fact_value(t,
			   "pause_filter_count=%s pause_filter_thresh=%s grow=%s shrink=%s max=%s",
			   a, b, c, d, e);
		fact_source(t, "/sys/module/kvm_amd/parameters/pause_filter_{count,thresh,"
			       "count_grow,count_shrink,count_max}; CPUID 0x8000000A EDX[12]");
		fact_meaning(t, "pause_filter_count PAUSEs make an exit; with the threshold "
				"(PFThreshold) the count restarts when PAUSEs are more than "
				"pause_filter_thresh cycles apart, so only a tight spin exits. KVM "
				"grows a vCPU's count when the exit found nobody to yield to.");
		snprintf(r->ple_why, sizeof(r->ple_why), "AMD pause filter %s (%s = %s)",
			 on ? "on" : "off", pa, a[0] ? a : "?");
	} else {
		on = false;
		f = fact_new(g, "kvm.ple", r->flavour == HOST_KVM_PVM ? HOST_WARN : HOST_NA);
		fact_value(f, "%s",
			   r->flavour == HOST_KVM_PVM ?
				   "none: a software KVM takes no pause-loop exits" :
				   "unknown without kvm_intel or kvm_amd");
		fact_source(f, "/sys/module/kvm_pvm (no VMX/SVM: no PLE, no pause filter)");
		t = fact_new(g, "kvm.ple_window", HOST_NA);
		fact_value(t, "no thresholds: no pause-loop exits");
		fact_source(t, "/sys/module/kvm_pvm/parameters (neither ple_* nor pause_filter_*)");
		fact_meaning(t, "ple_gap/ple_window (Intel) and pause_filter_count/thresh (AMD) "
				"decide what spin makes an exit.");
		snprintf(r->ple_why, sizeof(r->ple_why), "%s",
			 r->flavour == HOST_KVM_PVM ?
				 "software KVM (kvm_pvm): no pause-loop exits" :
				 "no hardware KVM module: pause-loop exits unknown");
	}
	fact_meaning(f, "A vCPU spinning on a lock whose holder is preempted runs PAUSE in a "
			"loop; PLE (Intel) or the pause filter (AMD) turns that loop into an exit, "
			"and KVM yields to a preempted sibling (directed yield), counting "
			"directed_yield_attempted/successful. lockstep's detector and the adaptive "
			"policy read those counts; without them spinning shows only for guests "
			"that publish their locks (pvlock).");
	r->ple_expected = on;
}

static void stats_fact(struct gather *g)
{
	const struct host_kvm *k = gather_kvm(g);
	static const char *const wanted[] = { "directed_yield_attempted",
					      "directed_yield_successful", "preemption_reported",
					      "halt_exits", "exits" };
	char missing[160] = "";
	struct host_fact *f;

	if (!k || k->vm_error[0]) {
		f = fact_new(g, "kvm.stats", HOST_NA);
		fact_value(f, "not probed%s%s", k ? ": " : "", k ? k->vm_error : "");
		fact_source(f, "KVM_GET_STATS_FD of a vCPU (lockstep-vm --host-probe)");
		fact_meaning(f, "KVM's binary statistics tell lockstep about pause-loop exits and "
				"halts.");
		return;
	}
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
		if (!host_kvm_vcpu_stat(k, wanted[i]))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 "%s%s", missing[0] ? ", " : "", wanted[i]);
	f = fact_new(g, "kvm.stats", missing[0] || !g->r->ple_expected ? HOST_WARN : HOST_PASS);
	if (missing[0])
		fact_value(f, "%u vCPU statistics; lacks %s", k->nr_vcpu_stats, missing);
	else
		fact_value(f, "%u vCPU statistics, directed_yield_* among them%s", k->nr_vcpu_stats,
			   g->r->ple_expected ? "" : ", but they stay 0 without pause-loop exits");
	fact_source(f, "KVM_GET_STATS_FD of a vCPU: directed_yield_attempted, "
		       "directed_yield_successful, preemption_reported, halt_exits, exits");
	fact_meaning(f, "lockstep-vm samples directed_yield_* to see vCPUs spin (PLE episodes), "
			"and halt_exits and exits for vm.info. The scheduler expects PLE "
			"statistics only where pause-loop exits happen.");
	for (unsigned i = 0; i < k->nr_vcpu_stats; i++)
		if (strstr(k->vcpu_stats[i], "yield") || strstr(k->vcpu_stats[i], "preempt") ||
		    strstr(k->vcpu_stats[i], "halt_") == k->vcpu_stats[i])
			fact_detail(f, "%s", k->vcpu_stats[i]);
}

static void exits_fact(struct gather *g)
{
	const struct host_kvm *k = gather_kvm(g);
	struct host_fact *f;
	int64_t v = 0;

	if (!k) {
		f = fact_new(g, "kvm.disable_exits", HOST_NA);
		fact_value(f, "not probed");
	} else {
		host_kvm_cap(k, "KVM_CAP_X86_DISABLE_EXITS", &v);
		f = fact_new(g, "kvm.disable_exits",
			     v & DISABLE_EXITS_PAUSE ? HOST_PASS : HOST_WARN);
		fact_value(f, "0x%llx: PAUSE exits %s per VM, HLT exits %s", (long long)v,
			   v & DISABLE_EXITS_PAUSE ? "can be turned off" : "stay on",
			   v & DISABLE_EXITS_HLT ? "can be turned off" : "stay on");
	}
	fact_source(f, "/dev/kvm: KVM_CHECK_EXTENSION(KVM_CAP_X86_DISABLE_EXITS), "
		       "KVM_X86_DISABLE_EXITS_PAUSE = bit 2");
	fact_meaning(f, "lockstep turns PAUSE exits off for VMs whose vCPUs each have a CPU "
			"(pinned, or gang within the host's size): there a spinning vCPU waits "
			"for a holder that runs, and an exit would only slow it.");
}

static void apicv_fact(struct gather *g)
{
	char path[128], ipiv_path[128];
	struct host_fact *f;

	if (g->r->flavour == HOST_KVM_VMX) {
		bool cpu = !g->has_vmx_flags || has_word(g->vmx_flags, "apicv") ||
			   (has_word(g->vmx_flags, "vapic_reg") && has_word(g->vmx_flags, "vid") &&
			    has_word(g->vmx_flags, "posted_intr"));
		bool on = param_on(g, "enable_apicv", path, sizeof(path));
		bool ipiv = has_word(g->vmx_flags, "ipi_virt") &&
			    param_on(g, "enable_ipiv", ipiv_path, sizeof(ipiv_path));

		f = fact_new(g, "kvm.apicv", cpu && on ? HOST_PASS : HOST_WARN);
		fact_value(f, "APICv %s%s",
			   !cpu ? "not offered by the CPU" :
			   on	? "on" :
				  "off",
			   cpu && on ?
				   (ipiv ? ", IPI virtualization on" : ", no IPI virtualization") :
				   "");
		fact_source(f,
			    "/proc/cpuinfo vmx flags: apicv (TPR shadow + vapic_reg + vid + "
			    "posted_intr), ipi_virt; %s",
			    path);
		if (cpu && !on)
			fact_fix(f, "load kvm_intel with enable_apicv=1");
	} else if (g->r->flavour == HOST_KVM_SVM) {
		bool cpu = cpuid_bit(g, 0x8000000a, 'd', SVM_EDX_AVIC);
		bool x2 = cpuid_bit(g, 0x8000000a, 'd', SVM_EDX_X2AVIC);
		bool on = param_on(g, "avic", path, sizeof(path));

		f = fact_new(g, "kvm.apicv", cpu && on ? HOST_PASS : HOST_WARN);
		fact_value(f, "AVIC %s%s",
			   !cpu ? "not offered by the CPU" :
			   on	? "on" :
				  "off",
			   cpu && x2 ? ", x2AVIC" : "");
		fact_source(f, "CPUID 0x8000000A EDX[13] (AVIC) = %d, EDX[18] (x2AVIC) = %d; %s",
			    cpu, x2, path);
		if (cpu && !on)
			fact_fix(f, "load kvm_amd with avic=1");
	} else {
		f = fact_new(g, "kvm.apicv", g->r->flavour == HOST_KVM_PVM ? HOST_WARN : HOST_NA);
		fact_value(f, "%s",
			   g->r->flavour == HOST_KVM_PVM ?
				   "none: the software KVM emulates the local APIC" :
				   "unknown");
		fact_source(f, "/sys/module/kvm_pvm (no VMX/SVM: no APICv, no AVIC)");
	}
	fact_meaning(f, "Interrupts and IPIs to a running vCPU are posted into its virtual APIC "
			"without a VM exit, and EOIs complete without one. SMP guests send "
			"reschedule and TLB-shootdown IPIs all the time; without it each costs an "
			"exit on the sender and an injection on the receiver. Device interrupts "
			"are posted too where the IOMMU can (iommu.posted_interrupts).");
}

static void halt_poll_fact(struct gather *g)
{
	const struct host_kvm *k = gather_kvm(g);
	struct host_fact *f;
	uint64_t ns = 0;
	int64_t cap = 0;
	bool known = gather_u64(g, "/sys/module/kvm/parameters/halt_poll_ns", &ns) == 0;

	if (k)
		host_kvm_cap(k, "KVM_CAP_HALT_POLL", &cap);
	f = fact_new(g, "kvm.halt_poll", known ? HOST_PASS : HOST_NA);
	fact_value(f, "halt_poll_ns=%llu%s", (unsigned long long)ns,
		   !k  ? "" :
		   cap ? "; per-VM limit (KVM_CAP_HALT_POLL)" :
			 "; no per-VM limit");
	fact_source(f, "/sys/module/kvm/parameters/halt_poll_ns; /dev/kvm: "
		       "KVM_CHECK_EXTENSION(KVM_CAP_HALT_POLL)");
	fact_meaning(f, "A vCPU that halts (idle, or a pv lock waiter asleep) polls up to "
			"halt_poll_ns before it sleeps: a wake-up IPI inside that window costs "
			"microseconds instead of a sleep and a wake-up, but the polling burns a "
			"host CPU that another vCPU could use under overcommit.");
}

static void nested_fact(struct gather *g)
{
	char path[128], val[16];
	struct host_fact *f;

	if (g->r->flavour != HOST_KVM_VMX && g->r->flavour != HOST_KVM_SVM) {
		f = fact_new(g, "kvm.nested", HOST_NA);
		fact_value(f, "%s",
			   g->r->flavour == HOST_KVM_PVM ?
				   "no: guests of a software KVM see no VMX/SVM" :
				   "unknown");
		fact_source(f, "/sys/module/kvm_{intel,amd}/parameters/nested absent");
	} else {
		bool on = param(g, "nested", val, sizeof(val), path, sizeof(path)) == 0 &&
			  (strcmp(val, "Y") == 0 || strcmp(val, "1") == 0);

		f = fact_new(g, "kvm.nested", on ? HOST_PASS : HOST_WARN);
		fact_value(f, "nested virtualization %s", on ? "on" : "off");
		fact_source(f, "%s", path);
		if (!on)
			fact_fix(f, "load %s with nested=1", vendor_module(g));
	}
	fact_meaning(f, "Guests may run their own KVM (as lockstep's QEMU test beds do); a "
			"nested hypervisor multiplies the cost of every exit, so the assists above "
			"matter twice.");
}

static void pv_fact(struct gather *g)
{
	static const struct {
		int bit;
		const char *name;
	} features[] = {
		{ KVM_PV_UNHALT, "pv_unhalt" },
		{ KVM_PV_SEND_IPI, "pv_send_ipi" },
		{ KVM_PV_TLB_FLUSH, "pv_tlb_flush" },
		{ KVM_PV_SCHED_YIELD, "pv_sched_yield" },
		{ KVM_PV_STEAL_TIME, "steal_time" },
		{ KVM_PV_EOI, "pv_eoi" },
		{ KVM_PV_CLOCKSOURCE_STABLE, "clocksource_stable" },
	};
	const struct host_kvm *k = gather_kvm(g);
	struct host_cpuid_leaf l;
	char list[256] = "";
	struct host_fact *f;

	if (!k || !host_cpuid_get(&k->supported, 0x40000001, 0, &l)) {
		f = fact_new(g, "kvm.pv_features", HOST_NA);
		fact_value(f, "%s", k ? "KVM offers no paravirtual CPUID leaf" : "not probed");
	} else {
		for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
			if (l.eax & (1u << features[i].bit))
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 list[0] ? " " : "", features[i].name);
		f = fact_new(g, "kvm.pv_features",
			     !(l.eax & (1u << KVM_PV_UNHALT)) || g->r->flavour == HOST_KVM_PVM ?
				     HOST_WARN :
				     HOST_PASS);
		fact_value(f, "0x%08x: %s%s", l.eax, list[0] ? list : "none",
			   g->r->flavour == HOST_KVM_PVM ?
				   "; but hypercalls (KICK_CPU) do not reach KVM here" :
				   "");
	}
	fact_source(f, "KVM_GET_SUPPORTED_CPUID 0x40000001 EAX: bits 7 PV_UNHALT, 11 "
		       "PV_SEND_IPI, 9 PV_TLB_FLUSH, 13 PV_SCHED_YIELD, 5 STEAL_TIME");
	fact_meaning(f, "What Linux guests use for SMP: pv qspinlocks halt and are kicked "
			"(PV_UNHALT + KVM_HC_KICK_CPU) instead of spinning behind a preempted "
			"holder, IPIs to many vCPUs take one hypercall, TLB flushes for preempted "
			"vCPUs are deferred, and steal time tells the guest's scheduler that a "
			"vCPU was preempted.");
	if (g->r->flavour == HOST_KVM_PVM && k)
		fact_fix(f, "lockstep's guests use the pvlock doorbell (MMIO) instead");
}

void gather_kvm_facts(struct gather *g)
{
	detect_flavour(g);
	device_fact(g);
	paging_fact(g);
	tlb_fact(g);
	ple_facts(g);
	stats_fact(g);
	exits_fact(g);
	apicv_fact(g);
	halt_poll_fact(g);
	nested_fact(g);
	pv_fact(g);
}
