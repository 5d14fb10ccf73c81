/*
 * The IOMMU facts: the remapping units (/sys/class/iommu: dmar* for Intel VT-d, ivhd* for
 * AMD-Vi, with their capability registers), DMA remapping (IOMMU groups exist), interrupt
 * remapping (interrupt chips named IR-* in /proc/interrupts, the kernel log), posted
 * interrupts for devices (VT-d PI, AMD-Vi GA), the IOMMU groups and which devices could be
 * passed through, and the VFIO modules.  host_iommu_ready() is the passthrough path's first
 * check, in the same words.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/host_internal.h"
#include "util/util.h"

/* VT-d capability and extended capability registers (Intel VT-d spec, 11.4.2 and 11.4.3). */
#define VTD_CAP_PI (1ull << 59)
#define VTD_ECAP_IR (1ull << 3)
#define VTD_ECAP_EIM (1ull << 4)
#define VTD_ECAP_PT (1ull << 6)
/* AMD IOMMU extended feature register (AMD IOMMU spec, MMIO offset 0x30). */
#define AMDVI_EFR_XT (1ull << 2)
#define AMDVI_EFR_GA (1ull << 7)

#define MAX_UNITS 16
#define MAX_GROUPS 256
#define MAX_DEVICES 64

struct units {
	unsigned n, dmar, ivhd;
	char name[MAX_UNITS][64];
	bool all_ir, all_pi, all_ga, any_xt; /* over the units of the matching kind */
};

static uint64_t hex_file(const struct gather *g, const char *path)
{
	char line[64];

	if (gather_line(g, path, line, sizeof(line)))
		return 0;
	return strtoull(line, NULL, 16); /* "abc" or "abc:def" (AMD: EFR, then EFR2) */
}

static void read_units(struct gather *g, struct units *u, struct host_fact *f)
{
	char path[160];

	memset(u, 0, sizeof(*u));
	u->n = gather_list(g, "/sys/class/iommu", u->name, MAX_UNITS);
	u->all_ir = u->all_pi = u->all_ga = true;
	for (unsigned i = 0; i < u->n; i++) {
		if (strncmp(u->name[i], "dmar", 4) == 0) {
			uint64_t cap, ecap;

			snprintf(path, sizeof(path), "/sys/class/iommu/%s/intel-iommu/cap",
				 u->name[i]);
			cap = hex_file(g, path);
			snprintf(path, sizeof(path), "/sys/class/iommu/%s/intel-iommu/ecap",
				 u->name[i]);
			ecap = hex_file(g, path);
			u->dmar++;
			u->all_ir &= !!(ecap & VTD_ECAP_IR);
			u->all_pi &= !!(cap & VTD_CAP_PI);
			if (f)
				fact_detail(
					f,
					"%s: Intel VT-d, cap %llx ecap %llx: interrupt remapping "
					"%s, x2APIC (EIM) %s, pass-through %s, posted interrupts %s",
					u->name[i], (unsigned long long)cap,
					(unsigned long long)ecap, ecap & VTD_ECAP_IR ? "yes" : "no",
					ecap & VTD_ECAP_EIM ? "yes" : "no",
					ecap & VTD_ECAP_PT ? "yes" : "no",
					cap & VTD_CAP_PI ? "yes" : "no");
		} else if (strncmp(u->name[i], "ivhd", 4) == 0) {
			uint64_t efr;

			snprintf(path, sizeof(path), "/sys/class/iommu/%s/amd-iommu/features",
				 u->name[i]);
			efr = hex_file(g, path);
			u->ivhd++;
			u->all_ga &= !!(efr & AMDVI_EFR_GA);
			u->any_xt |= !!(efr & AMDVI_EFR_XT);
			if (f)
				fact_detail(
					f,
					"%s: AMD-Vi, extended features %llx: guest virtual APIC "
					"(GA) %s, x2APIC (XT) %s",
					u->name[i], (unsigned long long)efr,
					efr & AMDVI_EFR_GA ? "yes" : "no",
					efr & AMDVI_EFR_XT ? "yes" : "no");
		} else if (f) {
			fact_detail(f, "%s", u->name[i]);
		}
	}
	if (!u->dmar)
		u->all_ir = u->all_pi = false;
	if (!u->ivhd)
		u->all_ga = false;
}

static bool amd(const struct gather *g)
{
	return strcmp(g->vendor, "AuthenticAMD") == 0 || strcmp(g->vendor, "HygonGenuine") == 0;
}

static bool virtual_host(const struct gather *g)
{
	struct host_cpuid_leaf l;

	return (gather_cpuid(g, 1, 0, &l) && (l.ecx & CPUID_1_ECX_HYPERVISOR)) ||
	       has_word(g->cpu_flags, "hypervisor");
}

static void hardware_fact(struct gather *g, struct units *u)
{
	char intel_opt[32], amd_opt[32], iommu_opt[32];
	bool has_intel = cmdline_param(g->cmdline, "intel_iommu", intel_opt, sizeof(intel_opt));
	bool has_amd = cmdline_param(g->cmdline, "amd_iommu", amd_opt, sizeof(amd_opt));
	bool has_iommu = cmdline_param(g->cmdline, "iommu", iommu_opt, sizeof(iommu_opt));
	struct host_fact *f = fact_new(g, "iommu.hardware", HOST_PASS);

	read_units(g, u, f);
	f->verdict = u->n ? HOST_PASS : HOST_WARN;
	if (u->n)
		fact_value(f, "%u unit%s: %s%s%s", u->n, u->n == 1 ? "" : "s",
			   u->dmar ? "Intel VT-d" :
			   u->ivhd ? "AMD-Vi" :
				     "other",
			   u->dmar && u->ivhd ? " and AMD-Vi" : "",
			   u->n > u->dmar + u->ivhd && (u->dmar || u->ivhd) ? " and others" : "");
	else
		fact_value(f, "none registered%s%s%s%s%s%s", has_intel ? "; intel_iommu=" : "",
			   has_intel ? intel_opt : "", has_amd ? "; amd_iommu=" : "",
			   has_amd ? amd_opt : "", has_iommu ? "; iommu=" : "",
			   has_iommu ? iommu_opt : "");
	fact_source(f, "/sys/class/iommu/{dmar*,ivhd*}/{intel-iommu/cap,ecap, amd-iommu/features}; "
		       "/proc/cmdline");
	fact_meaning(f, "An IOMMU (VT-d, AMD-Vi) translates device DMA through page tables "
			"lockstep programs, so a device given to a VM reaches that VM's memory and "
			"nothing else. Without one lockstep refuses passthrough devices.");
	if (!u->n && virtual_host(g))
		fact_fix(f, "this host is a VM: its hypervisor must give it a virtual IOMMU with "
			    "interrupt remapping (QEMU: -device intel-iommu,intremap=on)");
	else if (!u->n)
		fact_fix(f, "enable %s in the firmware%s", amd(g) ? "the IOMMU (AMD-Vi)" : "VT-d",
			 amd(g) ? "" : " and boot with intel_iommu=on");
}

static void remapping_facts(struct gather *g, const struct units *u)
{
	char opt[32], unsafe[8] = "";
	uint64_t groups_n = 0;
	char names[MAX_GROUPS][64];
	bool ir_chips, ir_log, ir_off_log, intremap_off, unsafe_on;
	struct host_fact *f;

	groups_n = gather_list(g, "/sys/kernel/iommu_groups", names, MAX_GROUPS);
	f = fact_new(g, "iommu.dma_remapping", groups_n ? HOST_PASS : HOST_WARN);
	if (groups_n)
		fact_value(f, "on: %llu IOMMU group%s%s", (unsigned long long)groups_n,
			   groups_n == 1 ? "" : "s",
			   cmdline_param(g->cmdline, "iommu", opt, sizeof(opt)) &&
					   strcmp(opt, "pt") == 0 ?
				   "; host devices pass through (iommu=pt), VM devices are "
				   "translated" :
				   "");
	else
		fact_value(f, "off: no IOMMU groups");
	fact_source(f, "/sys/kernel/iommu_groups/*; /proc/cmdline (intel_iommu=, amd_iommu=, "
		       "iommu=)");
	fact_meaning(f, "IOMMU groups exist only while the IOMMU translates DMA. A group is the "
			"smallest set of devices the IOMMU can isolate from each other: they go to "
			"a VM together.");
	if (!groups_n && u->n)
		fact_fix(f, "boot with %s (and without iommu=off)",
			 amd(g) ? "amd_iommu=on" : "intel_iommu=on");
	else if (!groups_n)
		fact_fix(f, "an IOMMU first (iommu.hardware)");

	ir_chips = strstr(g->interrupts, " IR-") != NULL;
	ir_log = strstr(g->kmsg, "Enabled IRQ remapping") ||
		 strstr(g->kmsg, "Interrupt remapping enabled");
	ir_off_log = strstr(g->kmsg, "Not enabling interrupt remapping") ||
		     strstr(g->kmsg, "Interrupt remapping disabled") ||
		     strstr(g->kmsg, "Failed to enable irq remapping");
	intremap_off =
		cmdline_param(g->cmdline, "intremap", opt, sizeof(opt)) && strcmp(opt, "off") == 0;
	unsafe_on =
		gather_line(g, "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
			    unsafe, sizeof(unsafe)) == 0 &&
		(strcmp(unsafe, "Y") == 0 || strcmp(unsafe, "1") == 0);
	f = fact_new(g, "iommu.interrupt_remapping",
		     (ir_chips || ir_log) && !ir_off_log ? HOST_PASS : HOST_WARN);
	if (ir_chips || ir_log)
		fact_value(f, "on%s%s", ir_chips ? ": interrupt chips IR-*" : "",
			   ir_log ? (ir_chips ? ", and the kernel log says so" :
						": the kernel log says so") :
				    "");
	else
		fact_value(f, "off%s%s%s", u->dmar && !u->all_ir ? "; a VT-d unit lacks it" : "",
			   intremap_off ? "; intremap=off" : "",
			   unsafe_on ? "; VFIO allows unsafe interrupts" : "");
	fact_source(f, "/proc/interrupts (IR-IO-APIC, IR-PCI-MSI chips); kernel log (DMAR-IR, "
		       "AMD-Vi); /proc/cmdline intremap=; VT-d ecap[3]; "
		       "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
	fact_meaning(f, "Interrupt remapping checks every MSI a device sends against a table the "
			"host owns. Without it a passed-through device could write any MSI and "
			"interrupt any CPU, so VFIO refuses to attach devices unless told "
			"allow_unsafe_interrupts=1. It is also what x2APIC beyond 255 CPUs and "
			"posted interrupts for devices build on.");
	if (!ir_chips && !ir_log) {
		if (intremap_off)
			fact_fix(f, "drop intremap=off from the kernel command line");
		else if (u->n)
			fact_fix(f, "enable interrupt remapping in the firmware (VT-d/AMD-Vi "
				    "settings)");
		else
			fact_fix(f, "an IOMMU first (iommu.hardware)");
	}
	for (const char *p = g->kmsg; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (memmem(p, n, "emapping", 8) || memmem(p, n, "DMAR-IR", 7))
			fact_detail(f, "%.*s", (int)n, p);
		p = nl ? nl + 1 : NULL;
	}
}

static void posted_fact(struct gather *g, const struct units *u)
{
	char opt[32];
	struct host_fact *f;

	if (!u->dmar && !u->ivhd) {
		f = fact_new(g, "iommu.posted_interrupts", HOST_NA);
		fact_value(f, "no VT-d or AMD-Vi unit");
		fact_source(f, "/sys/class/iommu");
	} else if (u->dmar) {
		bool nopost = cmdline_param(g->cmdline, "intremap", opt, sizeof(opt)) &&
			      strstr(opt, "nopost");

		f = fact_new(g, "iommu.posted_interrupts",
			     u->all_pi && !nopost ? HOST_PASS : HOST_WARN);
		fact_value(f, "VT-d posted interrupts %s",
			   !u->all_pi ? "not offered" :
			   nopost     ? "off (intremap=nopost)" :
					"offered");
		fact_source(f, "/sys/class/iommu/dmar*/intel-iommu/cap[59] (PI); /proc/cmdline "
			       "intremap=");
	} else {
		bool legacy = cmdline_param(g->cmdline, "amd_iommu_intr", opt, sizeof(opt)) &&
			      strcmp(opt, "legacy") == 0;
		bool log = strstr(g->kmsg, "Virtual APIC enabled") != NULL;

		f = fact_new(g, "iommu.posted_interrupts",
			     u->all_ga && !legacy ? HOST_PASS : HOST_WARN);
		fact_value(f, "AMD-Vi guest virtual APIC (GA) %s%s",
			   !u->all_ga ? "not offered" :
			   legacy     ? "off (amd_iommu_intr=legacy)" :
					"offered",
			   log ? ", enabled (kernel log)" : "");
		fact_source(f,
			    "/sys/class/iommu/ivhd*/amd-iommu/features bit 7 (GASup); kernel "
			    "log \"AMD-Vi: Virtual APIC enabled\"; /proc/cmdline amd_iommu_intr=");
	}
	fact_meaning(f, "With posted interrupts (and APICv/AVIC, kvm.apicv) a passed-through "
			"device's MSI lands in the running vCPU's virtual APIC with no exit and no "
			"host interrupt; lockstep reports per route whether KVM posts it.");
}

/* Drivers that leave a group viable for VFIO: VFIO's own, pci-stub, and bridges' port
 * driver. */
static bool viable_driver(const char *drv)
{
	return !drv[0] || strcmp(drv, "vfio-pci") == 0 || strcmp(drv, "pci-stub") == 0 ||
	       strcmp(drv, "pcieport") == 0;
}

static void groups_fact(struct gather *g)
{
	char groups[MAX_GROUPS][64], devs[MAX_DEVICES][64], path[256], drv[64], vendor[16],
		device[16];
	unsigned n = gather_list(g, "/sys/kernel/iommu_groups", groups, MAX_GROUPS);
	unsigned ready = 0, busy = 0;
	struct host_fact *f = fact_new(g, "iommu.groups", HOST_WARN);

	for (unsigned i = 0; i < n; i++) {
		char line[1024];
		unsigned nd, vfio = 0, held = 0;
		size_t len;

		snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%.63s/devices", groups[i]);
		nd = gather_list(g, path, devs, MAX_DEVICES);
		len = (size_t)snprintf(line, sizeof(line), "group %s:", groups[i]);
		for (unsigned d = 0; d < nd; d++) {
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%.63s/driver", devs[d]);
			gather_link_name(g, path, drv, sizeof(drv));
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%.63s/vendor", devs[d]);
			gather_line(g, path, vendor, sizeof(vendor));
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%.63s/device", devs[d]);
			gather_line(g, path, device, sizeof(device));
			vfio += strcmp(drv, "vfio-pci") == 0;
			held += !viable_driver(drv);
			if (len < sizeof(line))
				len += (size_t)snprintf(
					line + len, sizeof(line) - len, " %s [%s:%s] %s", devs[d],
					vendor[0] ? vendor + (strncmp(vendor, "0x", 2) ? 0 : 2) :
						    "?",
					device[0] ? device + (strncmp(device, "0x", 2) ? 0 : 2) :
						    "?",
					drv[0] ? drv : "(no driver)");
		}
		if (vfio && !held)
			ready++;
		busy += held != 0;
		fact_detail(f, "%s -- %s", line,
			    vfio && !held ? "ready for passthrough (vfio-pci)" :
			    held	  ? "in use by host drivers" :
					    "free: bind to vfio-pci to pass through");
	}
	f->verdict = ready ? HOST_PASS : HOST_WARN;
	if (n)
		fact_value(f,
			   "%u group%s: %u ready for passthrough (vfio-pci), %u in use by host "
			   "drivers",
			   n, n == 1 ? "" : "s", ready, busy);
	else
		fact_value(f, "no IOMMU groups: no device can be passed through");
	fact_source(f, "/sys/kernel/iommu_groups/*/devices/*; /sys/bus/pci/devices/*/{driver,"
		       "vendor,device}");
	fact_meaning(f, "A device can go to a VM when every device of its group is bound to "
			"vfio-pci (or to no driver, pci-stub, or pcieport for bridges) and goes "
			"to that VM.");
	if (n && !ready)
		fact_fix(f, "bind a group's devices to vfio-pci: echo vfio-pci > "
			    "/sys/bus/pci/devices/BDF/driver_override; echo BDF > "
			    "/sys/bus/pci/drivers_probe");
	else if (!n)
		fact_fix(f, "turn DMA remapping on first (iommu.dma_remapping)");
}

/* Whether a module is loaded (/sys/module/NAME), or could be (modules.dep, modules.builtin). */
static const char *module_state(struct gather *g, const char *name, const char *file,
				const char *deps, const char *builtin)
{
	char path[128], needle[80];

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	if (gather_exists(g, path))
		return "loaded";
	snprintf(needle, sizeof(needle), "/%s.ko", file);
	if (strstr(builtin, needle))
		return "built in";
	if (strstr(deps, needle))
		return "available";
	return "absent";
}

static void vfio_fact(struct gather *g)
{
	static const struct {
		const char *name, *file;
	} mods[] = { { "vfio", "vfio" },
		     { "vfio_pci", "vfio-pci" },
		     { "vfio_iommu_type1", "vfio_iommu_type1" },
		     { "iommufd", "iommufd" } };
	const char *state[4];
	char release[128] = "", path[256];
	char *deps, *builtin;
	struct host_fact *f;
	bool ready, could;

	gather_line(g, "/proc/sys/kernel/osrelease", release, sizeof(release));
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", release);
	deps = gather_text(g, path);
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.builtin", release);
	builtin = gather_text(g, path);
	for (int i = 0; i < 4; i++)
		state[i] = module_state(g, mods[i].name, mods[i].file, deps ? deps : "",
					builtin ? builtin : "");
	free(deps);
	free(builtin);
	ready = strcmp(state[1], "absent") && strcmp(state[1], "available") &&
		(strcmp(state[2], "loaded") == 0 || strcmp(state[2], "built in") == 0 ||
		 strcmp(state[3], "loaded") == 0 || strcmp(state[3], "built in") == 0);
	could = strcmp(state[1], "absent") != 0;
	f = fact_new(g, "iommu.vfio", ready ? HOST_PASS : HOST_WARN);
	fact_value(f, "vfio %s, vfio-pci %s, vfio_iommu_type1 %s, iommufd %s; /dev/vfio/vfio %s",
		   state[0], state[1], state[2], state[3],
		   gather_exists(g, "/dev/vfio/vfio") ? "present" : "absent");
	fact_source(f,
		    "/sys/module/{vfio,vfio_pci,vfio_iommu_type1,iommufd}; "
		    "/lib/modules/%s/modules.{dep,builtin}; /dev/vfio/vfio",
		    release[0] ? release : "RELEASE");
	fact_meaning(f, "lockstep-vm drives passthrough devices through VFIO: the type1 "
			"container or, on kernels from 6.2, iommufd.");
	if (!ready && could)
		fact_fix(f, "modprobe vfio-pci vfio_iommu_type1");
	else if (!ready)
		fact_fix(f, "a kernel built with CONFIG_VFIO_PCI");
}

/* Copies the text after `key` up to `stop` (or the end of the line) into buf. */
static bool field_after(const char *line, size_t len, const char *key, char stop, char *buf,
			size_t size)
{
	const char *p = memmem(line, len, key, strlen(key)), *end = line + len;
	size_t n = 0;

	if (!p)
		return false;
	p += strlen(key);
	while (p + n < end && p[n] != stop && p[n] != '\n' && n + 1 < size)
		n++;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return true;
}

bool host_iommu_fault_parse(const char *line, size_t len, struct host_iommu_fault *out)
{
	const char *msg = memchr(line, ';', len);
	char num[32];

	/* A /dev/kmsg record: "PRIO,SEQ,USEC,FLAGS;MESSAGE" */
	if (msg && memmem(line, (size_t)(msg - line), ",", 1) &&
	    !memchr(line, ' ', (size_t)(msg - line))) {
		len -= (size_t)(msg + 1 - line);
		line = msg + 1;
	}
	memset(out, 0, sizeof(*out));
	if (memmem(line, len, "DMAR: [DMA ", 11) && memmem(line, len, "Request device [", 16) &&
	    field_after(line, len, "Request device [", ']', out->source, sizeof(out->source)) &&
	    field_after(line, len, "fault addr ", ' ', num, sizeof(num))) {
		const char *r = memmem(line, len, "] ", 2);

		out->write = memmem(line, len, "[DMA Write", 10) != NULL;
		out->address = strtoull(num, NULL, 16);
		/* the reason text follows "[fault reason 0xNN] " */
		r = memmem(line, len, "[fault reason ", 14);
		if (r && (r = memchr(r, ']', len - (size_t)(r - line))))
			field_after(r, len - (size_t)(r - line), "] ", '\n', out->reason,
				    sizeof(out->reason));
		return true;
	}
	if (memmem(line, len, "[IO_PAGE_FAULT", 14) &&
	    field_after(line, len, "address=", ' ', num, sizeof(num))) {
		char flags[16] = "";

		out->address = strtoull(num, NULL, 16);
		if (field_after(line, len, "flags=", ']', flags, sizeof(flags)))
			out->write = strtoul(flags, NULL, 16) & (1u << 5);
		util_strlcpy(out->reason, "IO_PAGE_FAULT", sizeof(out->reason));
		if (!field_after(line, len, "device=", ' ', out->source, sizeof(out->source))) {
			/* "DRIVER 0000:00:04.0: Event logged ..." (dev_err) */
			const char *ev = memmem(line, len, ": Event logged", 14), *sp = ev;

			while (sp && sp > line && sp[-1] != ' ')
				sp--;
			if (!ev || (size_t)(ev - sp) >= sizeof(out->source))
				return false;
			memcpy(out->source, sp, (size_t)(ev - sp));
			out->source[ev - sp] = '\0';
		}
		return true;
	}
	return false;
}

bool host_iommu_fault_from(const struct host_iommu_fault *f, const char *bdf)
{
	size_t n = strlen(f->source);

	/* "0000:00:03.0" names it whole; "00:03.0" (no segment) is its tail */
	return n && strlen(bdf) >= n && strcasecmp(bdf + strlen(bdf) - n, f->source) == 0 &&
	       (n == strlen(bdf) || bdf[strlen(bdf) - n - 1] == ':');
}

static void faults_fact(struct gather *g, const struct units *u)
{
	struct host_fact *f = fact_new(g, "iommu.faults", HOST_PASS);
	unsigned n = 0;

	for (const char *p = g->kmsg; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		struct host_iommu_fault fault;

		if (host_iommu_fault_parse(p, len, &fault)) {
			if (n++ < 16)
				fact_detail(f, "%s: DMA %s at %#llx: %s", fault.source,
					    fault.write ? "write" : "read",
					    (unsigned long long)fault.address, fault.reason);
		}
		p = nl ? nl + 1 : NULL;
	}
	if (!u->n) {
		f->verdict = HOST_NA;
		fact_value(f, "no IOMMU");
	} else if (n) {
		f->verdict = HOST_WARN;
		fact_value(f,
			   "%u DMA fault%s logged since boot (devices reaching memory the IOMMU "
			   "does not map)",
			   n, n == 1 ? "" : "s");
	} else {
		fact_value(f, "none logged since boot");
	}
	fact_source(f, "kernel log (/dev/kmsg): VT-d \"DMAR: [DMA Read|Write ...] Request device "
		       "[BB:DD.F] fault addr\", AMD-Vi \"Event logged [IO_PAGE_FAULT ...]\"");
	fact_meaning(f,
		     "A fault is DMA the IOMMU blocked: a device (a passed-through one, driven "
		     "by its guest) aimed at an address its VM does not own. The VM and the host "
		     "are safe; the guest's driver is buggy or hostile. lockstep reports a "
		     "passthrough device's faults per VM (lockstep vm devices). QEMU's amd-iommu "
		     "(7.2) blocks without logging.");
	if (n)
		fact_fix(f,
			 "see which VM has the device (lockstep device host) and its guest driver");
}

void gather_iommu_facts(struct gather *g)
{
	struct units u;

	hardware_fact(g, &u);
	remapping_facts(g, &u);
	posted_fact(g, &u);
	groups_fact(g);
	vfio_fact(g);
	faults_fact(g, &u);
}

/* "VALUE; fix: FIX" of a fact, for an error message. */
static int refuse(char *why, size_t why_len, int code, const char *what, const struct host_fact *f)
{
	return util_error(why, why_len, code, "%s: %s (%s)%s%s", what, f ? f->value : "unknown",
			  f ? f->id : "host check", f && f->fix[0] ? "; fix: " : "",
			  f && f->fix[0] ? f->fix : "");
}

int host_iommu_ready(const char *root, const char *bdf, char *why, size_t why_len)
{
	struct host_input in = { .root = root };
	struct host_report *r = calloc(1, sizeof(*r));
	const struct host_fact *hw, *dma, *ir;
	char path[128], unsafe[8] = "", group[64];
	struct gather *g;
	int ret = 0;

	if (bdf && !util_pci_address_valid(bdf))
		ret = util_error(why, why_len, -EINVAL,
				 "\"%.32s\" is not a PCI address such as 0000:03:00.0", bdf);
	if (!r || ret) {
		free(r);
		return ret ? ret : -ENOMEM;
	}
	g = gather_new(&in, r);
	if (!g) {
		free(r);
		return -ENOMEM;
	}
	gather_iommu_facts(g);
	dma = host_report_find(r, "iommu.dma_remapping");
	ir = host_report_find(r, "iommu.interrupt_remapping");
	gather_line(g, "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", unsafe,
		    sizeof(unsafe));
	hw = host_report_find(r, "iommu.hardware");
	if (!hw || hw->verdict != HOST_PASS) {
		ret = refuse(why, why_len, -ENODEV, "no IOMMU for passthrough", hw);
	} else if (!dma || dma->verdict != HOST_PASS) {
		ret = refuse(why, why_len, -ENODEV, "no DMA remapping for passthrough", dma);
	} else if ((!ir || ir->verdict != HOST_PASS) && strcmp(unsafe, "Y") != 0 &&
		   strcmp(unsafe, "1") != 0) {
		ret = refuse(why, why_len, -EPERM,
			     "no interrupt remapping, which VFIO needs to pass a device through",
			     ir);
	} else if (bdf) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
		if (!gather_exists(g, path)) {
			ret = util_error(why, why_len, -ENOENT, "this host has no PCI device %s",
					 bdf);
		} else {
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
			if (gather_link_name(g, path, group, sizeof(group)))
				ret = util_error(why, why_len, -ENOENT,
						 "PCI device %s is in no IOMMU group", bdf);
		}
	}
	gather_free(g);
	free(r);
	return ret;
}
