/*
 * The posted-interrupt report: whether this host could post a route's interrupts straight
 * into a running vCPU, without an exit.  lockstep cannot switch posting on: KVM uses it by
 * itself when the CPU has APICv (Intel) or AVIC (AMD), and for device interrupts only when an
 * IOMMU remaps and posts them (VT-d posted interrupts, AMD-Vi guest virtual APIC mode) and the
 * interrupt comes from an irq-bypass producer, a VFIO device whose MSI is wired to an irqfd.
 * So the report reads what the kernel exposes:
 *
 *   /sys/module/kvm_intel/parameters/enable_apicv   Y/N
 *   /sys/module/kvm_amd/parameters/avic              Y/N or 1/0
 *   /sys/class/iommu/dmar* /intel-iommu/{cap,ecap}   VT-d: ecap bit 3 IR, cap bit 59 PI
 *   /sys/class/iommu/ivhd* /amd-iommu/features       AMD-Vi: extended features, bit 7 GASup
 *   /proc/interrupts  PIN / PIW                      notifications and wake-ups, all CPUs
 *
 * Everything is read under `root` so that tests can hand it a made-up tree.  Called from the
 * control thread when a report is asked for.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irq/irq.h"
#include "util/util.h"

#define VTD_ECAP_IR (1ull << 3)
#define VTD_CAP_PI (1ull << 59)
#define AMD_EFR_GA (1ull << 7)

/* The first line of root/path, trimmed; false if it cannot be read. */
static bool read_line(const char *root, const char *path, char *buf, size_t len)
{
	char full[1024];
	FILE *f;
	bool ok;

	if ((size_t)snprintf(full, sizeof(full), "%.500s/%.500s", root, path) >= sizeof(full))
		return false;
	f = fopen(full, "re");
	if (!f)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, " \n")] = '\0';
	return ok;
}

static bool read_bool(const char *root, const char *path, bool *present)
{
	char buf[16];

	*present = read_line(root, path, buf, sizeof(buf));
	return *present && (buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1');
}

static bool read_hex(const char *root, const char *path, uint64_t *out)
{
	char buf[40], *end;

	if (!read_line(root, path, buf, sizeof(buf)))
		return false;
	errno = 0;
	*out = strtoull(buf, &end, 16);
	return !errno && end != buf;
}

static void scan_iommus(const char *root, struct irq_posting *p)
{
	char dir[512], path[512];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/sys/class/iommu", root);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		uint64_t cap, ecap, efr;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "sys/class/iommu/%.200s/intel-iommu/cap", de->d_name);
		if (read_hex(root, path, &cap)) {
			snprintf(path, sizeof(path), "sys/class/iommu/%.200s/intel-iommu/ecap",
				 de->d_name);
			if (!read_hex(root, path, &ecap))
				ecap = 0;
			p->iommus++;
			p->iommu_ir |= (ecap & VTD_ECAP_IR) != 0;
			p->iommu_posting |= (ecap & VTD_ECAP_IR) && (cap & VTD_CAP_PI);
			continue;
		}
		snprintf(path, sizeof(path), "sys/class/iommu/%.200s/amd-iommu/features",
			 de->d_name);
		if (read_hex(root, path, &efr)) {
			p->iommus++;
			p->iommu_ir = true; /* AMD-Vi always remaps interrupts when it is on */
			p->iommu_posting |= (efr & AMD_EFR_GA) != 0;
		}
	}
	closedir(d);
}

/* Sum of the per-CPU columns of a /proc/interrupts line such as "PIN:  3  4  Posted...". */
static uint64_t sum_counts(const char *line)
{
	uint64_t sum = 0;
	const char *p = strchr(line, ':');

	if (!p)
		return 0;
	for (p++;;) {
		char *end;
		unsigned long long v;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			break;
		v = strtoull(p, &end, 10);
		sum += v;
		p = end;
	}
	return sum;
}

static void read_interrupts(const char *root, struct irq_posting *p)
{
	char path[512], line[4096];
	bool pin = false, piw = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/interrupts", root);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		const char *s = line + strspn(line, " ");

		if (strncmp(s, "PIN:", 4) == 0) {
			p->pi_notifications = sum_counts(s);
			pin = true;
		} else if (strncmp(s, "PIW:", 4) == 0) {
			p->pi_wakeups = sum_counts(s);
			piw = true;
		}
	}
	fclose(f);
	p->counters_valid = pin && piw;
}

int irq_posting_probe(const char *root, struct irq_posting *out)
{
	bool intel, amd;
	bool apicv = read_bool(root, "sys/module/kvm_intel/parameters/enable_apicv", &intel);
	bool avic = read_bool(root, "sys/module/kvm_amd/parameters/avic", &amd);

	*out = (struct irq_posting){ .vendor = intel ? "intel" : amd ? "amd" : "none" };
	out->apicv = (intel && apicv) || (amd && avic);
	scan_iommus(root, out);
	read_interrupts(root, out);
	if (!intel && !amd)
		snprintf(out->why, sizeof(out->why),
			 "KVM here is neither kvm_intel nor kvm_amd: no APICv/AVIC");
	else if (!out->apicv)
		snprintf(out->why, sizeof(out->why), "%s is off",
			 intel ? "kvm_intel.enable_apicv" : "kvm_amd.avic");
	else if (!out->iommus)
		snprintf(out->why, sizeof(out->why), "no IOMMU: device interrupts are not posted");
	else if (!out->iommu_posting)
		snprintf(out->why, sizeof(out->why),
			 "the IOMMU cannot post interrupts (no VT-d PI / AMD-Vi GA)");
	return 0;
}

bool irq_route_posted(const struct irq_posting *host, const struct irq_route_info *route,
		      const char **why_not)
{
	const char *why = NULL;

	if (route->kind != IRQ_ROUTE_MSI)
		why = "not an MSI route";
	else if (!route->bypass)
		why = "emulated device: no irq-bypass producer";
	else if (!host->apicv)
		why = "host has no APICv/AVIC";
	else if (!host->iommu_posting)
		why = "IOMMU cannot post";
	if (why_not)
		*why_not = why;
	return why == NULL;
}
