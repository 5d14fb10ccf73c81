/*
 * The CPU and memory facts: x2APIC (host and guests), the TSC (invariant, the clocksource in
 * use, its frequency and scaling), whether this host is itself a virtual machine, the topology
 * lockstepd placed VMs by (SMT, NUMA; from hwloc), and huge pages.
 */
#include <stdio.h>
#include <string.h>

#include "host/host_internal.h"

static void x2apic_fact(struct gather *g)
{
	const struct host_kvm *k = gather_kvm(g);
	struct host_cpuid_leaf l;
	bool host = gather_cpuid(g, 1, 0, &l) && (l.ecx & CPUID_1_ECX_X2APIC);
	bool guests = k && host_cpuid_get(&k->supported, 1, 0, &l) && (l.ecx & CPUID_1_ECX_X2APIC);
	int64_t api = 0;
	struct host_fact *f;

	if (k)
		host_kvm_cap(k, "KVM_CAP_X2APIC_API", &api);
	f = fact_new(g, "cpu.x2apic", !k ? HOST_NA : guests ? HOST_PASS : HOST_WARN);
	fact_value(f, "host %s; guests %s%s", host ? "x2APIC" : "xAPIC only",
		   !k	  ? "not probed" :
		   guests ? "may have x2APIC (KVM emulates it)" :
			    "xAPIC only",
		   api ? ", 32-bit APIC ids (KVM_CAP_X2APIC_API)" : "");
	fact_source(f,
		    "CPUID 0x1 ECX[21] (x2APIC) = %d; KVM_GET_SUPPORTED_CPUID 0x1 ECX[21] = %s; "
		    "KVM_CHECK_EXTENSION(KVM_CAP_X2APIC_API)",
		    host,
		    !k	   ? "?" :
		    guests ? "1" :
			     "0");
	fact_meaning(f, "In x2APIC mode a guest sends an IPI with one MSR write (one exit, or "
			"none with APIC virtualization) instead of two MMIO writes, and can "
			"address more than 255 vCPUs. lockstep's guests use it for their IPIs.");
}

static void hypervisor_fact(struct gather *g)
{
	struct host_cpuid_leaf l;
	char sig[13] = "";
	struct host_fact *f;
	bool nested = gather_cpuid(g, 1, 0, &l) && (l.ecx & CPUID_1_ECX_HYPERVISOR);

	if (nested && gather_cpuid(g, 0x40000000, 0, &l)) {
		memcpy(sig, &l.ebx, 4);
		memcpy(sig + 4, &l.ecx, 4);
		memcpy(sig + 8, &l.edx, 4);
		for (int i = 0; i < 12; i++)
			if (sig[i] && (sig[i] < ' ' || sig[i] > '~'))
				sig[i] = '?';
	}
	f = fact_new(g, "cpu.hypervisor", nested ? HOST_WARN : HOST_PASS);
	if (nested)
		fact_value(f, "this host is a virtual machine (hypervisor \"%s\")", sig);
	else
		fact_value(f, "bare metal (no hypervisor bit)");
	fact_source(f,
		    "CPUID 0x1 ECX[31] (hypervisor) = %d; CPUID 0x40000000 EBX,ECX,EDX "
		    "(signature)",
		    nested);
	fact_meaning(f, "On a virtual host every assist above is what the outer hypervisor "
			"exposes, and the outer scheduler can preempt this host's CPUs under "
			"lockstep's feet: lock-holder preemption lockstep cannot see, and noisy "
			"timings.");
	if (nested)
		fact_fix(f, "for stable figures run on bare metal, or give this VM dedicated, "
			    "pinned CPUs in the outer host");
}

static void tsc_facts(struct gather *g)
{
	const struct host_kvm *k = gather_kvm(g);
	struct host_cpuid_leaf l;
	char clock[64] = "",
	     path[] = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
	bool invariant =
		gather_cpuid(g, 0x80000007, 0, &l) && (l.edx & CPUID_80000007_EDX_INVARIANT_TSC);
	bool constant = has_word(g->cpu_flags, "constant_tsc");
	bool nonstop = has_word(g->cpu_flags, "nonstop_tsc");
	bool known = has_word(g->cpu_flags, "tsc_known_freq");
	bool scaling = g->r->flavour == HOST_KVM_VMX ? has_word(g->vmx_flags, "tsc_scaling") :
		       g->r->flavour == HOST_KVM_SVM ? has_word(g->cpu_flags, "tsc_scale") :
						       false;
	int64_t control = 0;
	struct host_fact *f;
	bool tsc;

	gather_line(g, path, clock, sizeof(clock));
	tsc = strcmp(clock, "tsc") == 0;
	f = fact_new(g, "cpu.tsc", invariant && tsc ? HOST_PASS : HOST_WARN);
	fact_value(f, "%s; clocksource %s%s%s", invariant ? "invariant TSC" : "TSC not invariant",
		   clock[0] ? clock : "unknown", constant ? "; constant_tsc" : "",
		   nonstop ? " nonstop_tsc" : "");
	fact_source(f, "CPUID 0x80000007 EDX[8] (invariant TSC) = %d; %s; /proc/cpuinfo flags",
		    invariant, path);
	fact_meaning(f, "An invariant TSC ticks at one rate on every core and in every power "
			"state, so a guest's TSC reads agree across vCPUs whichever host CPU each "
			"runs on, and KVM can give guests a stable kvmclock. Without it time jumps "
			"between vCPUs, and spin timeouts and schedulers that compare TSCs across "
			"CPUs misbehave.");
	if (!invariant)
		fact_fix(f,
			 "a CPU with an invariant TSC; under a hypervisor, one that passes it on "
			 "(QEMU: -cpu ...,+invtsc)");
	else if (!tsc)
		fact_fix(f, "the kernel did not trust the TSC (see dmesg for \"tsc: Marking TSC "
			    "unstable\"); tsc=reliable on the kernel command line overrides it");

	if (k)
		host_kvm_cap(k, "KVM_CAP_TSC_CONTROL", &control);
	f = fact_new(g, "cpu.tsc_frequency",
		     !k			 ? HOST_NA :
		     k->tsc_khz || known ? HOST_PASS :
					   HOST_WARN);
	if (k && k->tsc_khz)
		fact_value(f, "%u.%03u MHz%s%s", k->tsc_khz / 1000, k->tsc_khz % 1000,
			   known ? ", known to the kernel" : "",
			   scaling || control ? "; KVM can scale it per VM" : "");
	else
		fact_value(f, "%s%s%s", !k ? "not probed; " : "",
			   known ? "known to the kernel" : "calibrated by the kernel",
			   scaling ? "; TSC scaling" : "");
	if (k && !k->tsc_khz && !known)
		fact_fix(f, "a kernel whose KVM answers KVM_GET_TSC_KHZ");
	fact_source(f,
		    "KVM_GET_TSC_KHZ of a vCPU; /proc/cpuinfo flags: tsc_known_freq, "
		    "%s; KVM_CHECK_EXTENSION(KVM_CAP_TSC_CONTROL)",
		    g->r->flavour == HOST_KVM_SVM ? "tsc_scale (CPUID 0x8000000A EDX[4])" :
		    g->r->flavour == HOST_KVM_VMX ? "vmx flags: tsc_scaling" :
						    "no TSC scaling without VMX/SVM");
	fact_meaning(f, "The frequency KVM gives a VM's TSC; lockstep's guests calibrate their "
			"timing against it. TSC scaling lets KVM give a VM one frequency on any "
			"host.");
}

static void topology_facts(struct gather *g)
{
	const struct host_topology *t = g->in->topology;
	struct host_fact *f;

	f = fact_new(g, "topology.smt", t && t->cores ? HOST_PASS : HOST_NA);
	if (t && t->cores)
		fact_value(f, "%u CPUs on %u cores: %s", t->cpus, t->cores,
			   t->cpus > t->cores ? "SMT (hardware threads share cores)" : "no SMT");
	else
		fact_value(f, "unknown");
	fact_source(f, "%s", t && t->source[0] ? t->source : "hwloc");
	fact_meaning(f, "SMT siblings share one core's execution units: two vCPUs of a gang "
			"slice on siblings run at unequal speed. lockstep places a VM's vCPUs on "
			"distinct cores first, and sched.stats warns (smt_shared_vcpus) when a "
			"co-scheduled VM had to share cores.");

	f = fact_new(g, "topology.numa", t && t->numa_nodes ? HOST_PASS : HOST_NA);
	if (t && t->numa_nodes)
		fact_value(f, "%u NUMA node%s", t->numa_nodes, t->numa_nodes == 1 ? "" : "s");
	else
		fact_value(f, "unknown");
	fact_source(f, "%s", t && t->source[0] ? t->source : "hwloc");
	fact_meaning(f, "A lock's cache line crossing NUMA nodes costs several times more than "
			"within one: lockstep fills a node with a VM's vCPUs before the next.");
}

static void hugepage_fact(struct gather *g)
{
	static const char *const thp_path = "/sys/kernel/mm/transparent_hugepage/enabled";
	char thp[96] = "", mode[16] = "unknown", name[8][64];
	unsigned n = gather_list(g, "/sys/kernel/mm/hugepages", name, 8);
	const char *open, *close;
	struct host_fact *f;
	bool usable;

	gather_line(g, thp_path, thp, sizeof(thp));
	/* "always [madvise] never": the bracketed word is the mode. */
	open = strchr(thp, '[');
	close = open ? strchr(open, ']') : NULL;
	if (open && close && (size_t)(close - open - 1) < sizeof(mode)) {
		memcpy(mode, open + 1, (size_t)(close - open - 1));
		mode[close - open - 1] = '\0';
	}
	usable = strcmp(mode, "always") == 0 || strcmp(mode, "madvise") == 0;
	f = fact_new(g, "mem.hugepages", usable ? HOST_PASS : HOST_WARN);
	fact_value(f, "transparent huge pages: %s", mode);
	fact_source(f, "%s; /sys/kernel/mm/hugepages/hugepages-*/{nr,free}_hugepages", thp_path);
	for (unsigned i = 0; i < n; i++) {
		char p[160];
		uint64_t nr = 0, fr = 0;

		snprintf(p, sizeof(p), "/sys/kernel/mm/hugepages/%.63s/nr_hugepages", name[i]);
		gather_u64(g, p, &nr);
		snprintf(p, sizeof(p), "/sys/kernel/mm/hugepages/%.63s/free_hugepages", name[i]);
		gather_u64(g, p, &fr);
		fact_detail(f, "%s: %llu reserved, %llu free", name[i], (unsigned long long)nr,
			    (unsigned long long)fr);
	}
	fact_meaning(f, "lockstep asks for huge pages for guest RAM (madvise(MADV_HUGEPAGE)): 2 "
			"MiB pages shorten the nested page walk and the TLB misses of every vCPU, "
			"and mean fewer faults taken under the VM's MMU lock.");
	if (!usable)
		fact_fix(f, "echo madvise > %s", thp_path);
}

void gather_cpu_facts(struct gather *g)
{
	x2apic_fact(g);
	tsc_facts(g);
	hypervisor_fact(g);
	topology_facts(g);
	hugepage_fact(g);
}
