/*
 * vmdef/policy.h — the scheduling policy of a VM, the one enum for it in the tree.  A header
 * of its own so that sched/, which decides by it, needs nothing else of the definition (no
 * JSON); the names are vmdef/sched.c's.
 */
#ifndef LOCKSTEP_VMDEF_POLICY_H
#define LOCKSTEP_VMDEF_POLICY_H

enum vmdef_sched_policy {
	VMDEF_SCHED_HOST = 0, /* leave it to Linux */
	VMDEF_SCHED_PINNED,   /* affinity only */
	VMDEF_SCHED_GANG,     /* all vCPUs in the same slices; VMs rotate */
	VMDEF_SCHED_RELAXED,  /* co-stop a vCPU that runs ahead of its siblings */
	VMDEF_SCHED_ADAPTIVE, /* host until preemption costs, then co-scheduled */
	VMDEF_SCHED_MUX,      /* at most as many vCPUs run as CPUs, switched at release points */
	VMDEF_SCHED_POLICIES  /* how many there are */
};

/* "host", "pinned", "gang", "relaxed", "adaptive", "mux"; "?" for anything else. */
const char *vmdef_sched_policy_name(enum vmdef_sched_policy policy);
/* -EINVAL for a name that is none of them (names are case-sensitive). */
int vmdef_sched_policy_parse(const char *s, enum vmdef_sched_policy *out);

#endif /* LOCKSTEP_VMDEF_POLICY_H */
