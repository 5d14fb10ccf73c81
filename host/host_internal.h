/*
 * Internals of the host check: one struct gather per check, the readers of files below the
 * root (host/sysfs.c), adding facts (host/report.c), and the gatherers of each group of facts
 * (host/kvm.c, host/cpu.c, host/iommu.c, host/sandbox.c).
 */
#ifndef LOCKSTEP_HOST_INTERNAL_H
#define LOCKSTEP_HOST_INTERNAL_H

#include <limits.h>

#include "host/host.h"

#define HOST_TEXT_MAX (4u << 20) /* the largest /proc or sysfs file read whole */

/* CPUID bits, as the vendors document them (Intel SDM vol. 2A, AMD APM vol. 3). */
#define CPUID_1_ECX_VMX (1u << 5)
#define CPUID_1_ECX_X2APIC (1u << 21)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_80000001_ECX_SVM (1u << 2)
#define CPUID_80000007_EDX_INVARIANT_TSC (1u << 8)
/* CPUID 0x8000000A: SVM revision (EAX), number of ASIDs (EBX), SVM features (EDX). */
#define SVM_EDX_NP (1u << 0)
#define SVM_EDX_NRIPS (1u << 3)
#define SVM_EDX_TSC_RATE (1u << 4)
#define SVM_EDX_FLUSH_BY_ASID (1u << 6)
#define SVM_EDX_PAUSE_FILTER (1u << 10)
#define SVM_EDX_PAUSE_FILTER_THRESHOLD (1u << 12)
#define SVM_EDX_AVIC (1u << 13)
#define SVM_EDX_VGIF (1u << 16)
#define SVM_EDX_X2AVIC (1u << 18)

/* One check in progress. */
struct gather {
	const struct host_input *in;
	struct host_report *r;
	char root[PATH_MAX / 2];
	char vendor[13];	/* "GenuineIntel", "AuthenticAMD", ... from CPUID 0 */
	char cpu_flags[4096];	/* /proc/cpuinfo "flags" of the first CPU */
	char vmx_flags[1024];	/* /proc/cpuinfo "vmx flags" (Linux 5.8+), "" if none */
	bool has_vmx_flags;	/* the line exists */
	char *cmdline;		/* /proc/cmdline ("" if unreadable) */
	char *interrupts;	/* /proc/interrupts ("" if unreadable) */
	char *kmsg;		/* kernel log lines about IOMMUs and interrupt remapping */
	struct host_fact spare; /* where facts go once the report is full */
};

/* Sets a check up (reads the files every group uses); NULL without memory. */
struct gather *gather_new(const struct host_input *in, struct host_report *r);
void gather_free(struct gather *g);

/* ---- files below the root (host/sysfs.c) ---- */

/* root + path into buf; false (and buf "") if it does not fit. */
bool gather_path(const struct gather *g, const char *path, char *buf, size_t size);
bool gather_exists(const struct gather *g, const char *path);
/* The first line, without its newline; -errno. */
int gather_line(const struct gather *g, const char *path, char *buf, size_t size);
/* A whole file, malloc'ed; "" (still malloc'ed) if unreadable.  NULL only without memory. */
char *gather_text(const struct gather *g, const char *path);
int gather_u64(const struct gather *g, const char *path, uint64_t *out);
/* A module parameter such as Y/N/1/0: -EINVAL if it is neither. */
int gather_bool(const struct gather *g, const char *path, bool *out);
/* The last component of a symbolic link's target ("vfio-pci" for a driver link). */
int gather_link_name(const struct gather *g, const char *path, char *buf, size_t size);
/* The names in a directory, sorted ("." and ".." left out), at most `max`; returns how many. */
unsigned gather_list(const struct gather *g, const char *dir, char (*names)[64], unsigned max);
/* Whether a word appears in a space-separated list. */
bool has_word(const char *list, const char *word);
/* A kernel command-line parameter: true with its value ("" for a bare flag). */
bool cmdline_param(const char *cmdline, const char *key, char *val, size_t size);

/* ---- facts (host/report.c) ---- */

/* A new fact; never NULL (a full report hands out a spare that is dropped). */
struct host_fact *fact_new(struct gather *g, const char *id, enum host_verdict verdict);
void fact_value(struct host_fact *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fact_source(struct host_fact *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fact_meaning(struct host_fact *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fact_fix(struct host_fact *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a line to the fact's details. */
void fact_detail(struct host_fact *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bool gather_cpuid(const struct gather *g, uint32_t leaf, uint32_t subleaf,
		  struct host_cpuid_leaf *out);
/* The KVM probe, or NULL if there is none (or it failed). */
const struct host_kvm *gather_kvm(const struct gather *g);

/* ---- the groups of facts ---- */

void gather_kvm_facts(struct gather *g);
void gather_cpu_facts(struct gather *g);
void gather_iommu_facts(struct gather *g);
void gather_sandbox_facts(struct gather *g);

#endif /* LOCKSTEP_HOST_INTERNAL_H */
