/*
 * host — what this host's virtualization can do for SMP guests: a list of facts, each with a
 * verdict (pass, warn, fail, n/a), its value, where it was read (a CPUID leaf and bit, a /proc or
 * sysfs file, a /dev/kvm capability, a KVM statistic), what it means for SMP guests (lock-holder
 * preemption, IPIs, interrupt delivery, DMA isolation) and how to fix it where a fix exists.
 *
 * The gatherers are pure: every file is read below a root directory ("" is this host; the
 * unit tests use recorded trees), CPUID comes in as a table, and what only a KVM fd can tell
 * (capabilities, statistics, the CPUID KVM offers guests) comes in as struct host_kvm, which
 * `lockstep-vm --host-probe` fills through hv/ and prints as JSON: lockstepd never opens
 * /dev/kvm itself.  Nothing here keeps state between calls.
 */
#ifndef LOCKSTEP_HOST_H
#define LOCKSTEP_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum host_verdict {
	HOST_PASS = 0, /* there and on */
	HOST_WARN,     /* missing or off: lockstep runs, SMP guests lose what it gives */
	HOST_FAIL,     /* lockstep (or the feature the fact names) cannot work here */
	HOST_NA,       /* does not apply to this host (AVIC on an Intel CPU, ...) */
};

const char *host_verdict_name(enum host_verdict v);

/* Which KVM: hardware-assisted (VMX, SVM), a software KVM such as PVM, or none. */
enum host_flavour {
	HOST_KVM_NONE = 0,
	HOST_KVM_VMX,
	HOST_KVM_SVM,
	HOST_KVM_PVM,
	HOST_KVM_UNKNOWN, /* kvm is loaded but no vendor module lockstep knows */
};

const char *host_flavour_name(enum host_flavour f);
/* The flavour alone, from the modules loaded below `root` ("" or NULL: this host), as the
 * check decides it: for lockstep-vm, which refuses what a software KVM cannot run. */
enum host_flavour host_flavour_detect(const char *root);

/* ---- CPUID ---- */

#define HOST_CPUID_MAX 160

struct host_cpuid_leaf {
	uint32_t leaf, subleaf;
	uint32_t eax, ebx, ecx, edx;
};

struct host_cpuid {
	unsigned n;
	struct host_cpuid_leaf e[HOST_CPUID_MAX];
};

/* The leaves the check reads, from this CPU's CPUID instruction (each range up to its max). */
void host_cpuid_read(struct host_cpuid *out);
/*
 * A recorded table: one leaf per line, "LEAF SUBLEAF: EAX EBX ECX EDX" in hex ("0x" optional);
 * blank lines and lines starting with '#' are skipped.  -EINVAL with `err` naming the line.
 */
int host_cpuid_parse(const char *text, struct host_cpuid *out, char *err, size_t err_len);
void host_cpuid_print(const struct host_cpuid *c, FILE *out);
/*
 * A leaf as the CPU would answer it: false when the table lacks it or the leaf lies above its
 * range's maximum (leaf 0, 0x40000000 or 0x80000000 EAX), where CPUs return other leaves' data.
 */
bool host_cpuid_get(const struct host_cpuid *c, uint32_t leaf, uint32_t subleaf,
		    struct host_cpuid_leaf *out);

/* ---- what only a KVM fd can tell (lockstep-vm --host-probe) ---- */

#define HOST_KVM_CAPS_MAX 48
#define HOST_KVM_STATS_MAX 192
#define HOST_KVM_NAME_MAX 48

struct host_kvm_cap {
	char name[HOST_KVM_NAME_MAX]; /* "KVM_CAP_X86_DISABLE_EXITS" */
	int64_t value;		      /* KVM_CHECK_EXTENSION: 0 = absent */
};

struct host_kvm {
	char error[256]; /* why /dev/kvm could not be opened (or the probe not run), or "" */
	int api_version;
	char missing[256]; /* a capability lockstep needs that this KVM lacks, or "" */
	unsigned nr_caps;
	struct host_kvm_cap cap[HOST_KVM_CAPS_MAX];
	struct host_cpuid supported; /* KVM_GET_SUPPORTED_CPUID: what guests may be offered */
	char vm_error[256];	     /* creating a VM or vCPU failed, or "" */
	unsigned nr_vm_stats, nr_vcpu_stats;
	char vm_stats[HOST_KVM_STATS_MAX][HOST_KVM_NAME_MAX];
	char vcpu_stats[HOST_KVM_STATS_MAX][HOST_KVM_NAME_MAX];
	uint32_t tsc_khz; /* KVM_GET_TSC_KHZ of a fresh vCPU, 0 = unknown */
};

json_t *host_kvm_to_json(const struct host_kvm *k);
/* Checks every key and type; -EINVAL with `err` naming what is wrong. */
int host_kvm_from_json(const json_t *j, struct host_kvm *k, char *err, size_t err_len);
/* KVM_CHECK_EXTENSION value of a capability by name; false if the probe did not ask. */
bool host_kvm_cap(const struct host_kvm *k, const char *name, int64_t *value);
bool host_kvm_vcpu_stat(const struct host_kvm *k, const char *name);

/* ---- topology (lockstepd takes it from hwloc) ---- */

struct host_topology {
	unsigned cpus;	     /* host CPUs (hardware threads) lockstep may use */
	unsigned cores;	     /* distinct cores among them */
	unsigned numa_nodes; /* distinct NUMA nodes among them */
	char source[64];     /* "hwloc" */
};

/* ---- the check ---- */

struct host_input {
	const char *root;		      /* prefix of every path; "" or NULL = this host */
	const struct host_cpuid *cpuid;	      /* the host's CPUID */
	const struct host_kvm *kvm;	      /* NULL: not probed (yet) */
	const char *kvm_error;		      /* with kvm NULL: why not (NULL: not yet) */
	const struct host_topology *topology; /* NULL: unknown */
};

#define HOST_FACTS_MAX 48

struct host_fact {
	char id[32]; /* "kvm.ple": group, then name */
	enum host_verdict verdict;
	char value[256];
	char source[320];   /* where it was read, precisely enough to check by hand */
	char meaning[640];  /* for SMP guests */
	char fix[320];	    /* "" = none needed or none exists */
	char details[1536]; /* one item per line (IOMMU groups and their devices, ...), or "" */
};

struct host_report {
	enum host_flavour flavour;
	/* Whether KVM sees pause-loop exits and counts them (directed_yield_*), and why. */
	bool ple_expected;
	char ple_why[256];
	bool kvm_probed;
	char kvm_error[256]; /* why not, when !kvm_probed */
	unsigned nr;
	struct host_fact fact[HOST_FACTS_MAX];
};

/* Gathers every fact.  A file that is missing is a fact, not an error. */
void host_check(const struct host_input *in, struct host_report *out);
const struct host_fact *host_report_find(const struct host_report *r, const char *id);
/* {"summary": host_summary_json(), "facts": [{id, group, verdict, value, source, meaning,
 * fix, details}]} */
json_t *host_report_json(const struct host_report *r);
/* {"flavour", "pass", "warn", "fail", "na", "ple_expected", "ple", "kvm_probed", "attention":
 * [ids of warn and fail facts]} */
json_t *host_summary_json(const struct host_report *r);

/*
 * The passthrough path's first check: 0 if the IOMMU does DMA remapping and interrupt
 * remapping (or VFIO is told to do without it) and, when `bdf` ("0000:03:00.0") is given, the
 * device exists in an IOMMU group.  Otherwise -ENODEV (no DMA remapping), -EPERM (no interrupt
 * remapping), -ENOENT (no such device, or not in a group) or -EINVAL (a malformed bdf), with
 * `why` saying it in the host check's own words, fix included.
 */
int host_iommu_ready(const char *root, const char *bdf, char *why, size_t why_len);

/*
 * An IOMMU fault as the kernel logs it: VT-d "DMAR: [DMA Write NO_PASID] Request device
 * [00:03.0] fault addr 0x4000000 [fault reason 0x05] PTE Write access is not set", AMD-Vi
 * "vfio-pci 0000:00:04.0: Event logged [IO_PAGE_FAULT domain=0x0002 address=0x4000000
 * flags=0x0020]" (or "... [IO_PAGE_FAULT device=00:04.0 ...]" without a device).
 */
struct host_iommu_fault {
	char source[16];  /* the requester as logged: "00:03.0" (VT-d) or "0000:00:04.0" */
	uint64_t address; /* the IOVA the device used */
	bool write;	  /* VT-d: a DMA write; AMD-Vi: flags bit 5 (RW) */
	char reason[96];  /* VT-d's reason text, AMD-Vi's event name */
};

/* Whether one kernel log message (a /dev/kmsg record or a dmesg line) is an IOMMU fault. */
bool host_iommu_fault_parse(const char *line, size_t len, struct host_iommu_fault *out);
/* Whether a fault came from PCI device `bdf` ("0000:00:03.0"; VT-d logs no segment). */
bool host_iommu_fault_from(const struct host_iommu_fault *f, const char *bdf);

#endif /* LOCKSTEP_HOST_H */
