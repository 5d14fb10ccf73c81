/*
 * lockstep guest <-> host ABI, version 1.
 *
 * Shared, unchanged, by the freestanding guest runtime (guest/) and the host (vm/, pvlock/).
 * It must compile with -ffreestanding: only <stdint.h>, no host headers.
 *
 * Discovery: CPUID leaf LKS_CPUID_BASE (executed at ring 0: ring-3 CPUID is not intercepted on
 * every host) returns the signature "LockstepVMM\0" in EBX:ECX:EDX; leaf LKS_CPUID_INFO gives the
 * ABI version, the TSC frequency and the doorbell's guest-physical address.  A guest that does
 * not find the signature (e.g. under QEMU) must not touch the doorbell.
 *
 * Calls go through an MMIO doorbell page rather than VMCALL/VMMCALL: MMIO exits reach the VMM
 * from ring 3 and ring 0 on every KVM, hypercall instructions do not.  A call is an 8-byte
 * *read* of LKS_DB_CALL(nr); its arguments travel in RDI, RSI and RDX (the host reads them from
 * the vCPU's registers at the exit) and the value read is the call's result: >= 0 on success,
 * a negative LKS_E* code on failure.  The result register is whatever register the load
 * targets, so a call is one instruction:
 *
 *     movq LKS_DB_CALL(nr)(%base), %rax      with rdi, rsi, rdx holding the arguments
 *
 * KICK also has an in-kernel fast path: a 4-byte *write* of the target vCPU number to
 * LKS_DB_KICK is matched by a per-vCPU ioeventfd, so the kicker does not leave the kernel.
 * Writes that match no vCPU reach the VMM, which counts them as errors (a write has no result).
 *
 * Malformed accesses: an 8-byte read that is not an aligned call register returns LKS_EINVAL;
 * narrower reads return that many low bytes of LKS_EINVAL; writes other than the KICK
 * register are ignored.  All of them are counted and logged (rate-limited); the VM runs on.
 *
 * vCPU numbers equal the vCPUs' APIC ids (lockstep assigns APIC id n to vCPU n).
 * Addresses passed to calls are guest-physical.
 */
#ifndef LOCKSTEP_PVLOCK_ABI_H
#define LOCKSTEP_PVLOCK_ABI_H

#include <stdint.h>

#define LKS_ABI_VERSION 1u

/* CPUID discovery leaves. */
#define LKS_CPUID_BASE 0x40000100u    /* eax = highest lockstep leaf; ebx:ecx:edx = signature */
#define LKS_CPUID_SIG_EBX 0x6b636f4cu /* "Lock" */
#define LKS_CPUID_SIG_ECX 0x70657473u /* "step" */
#define LKS_CPUID_SIG_EDX 0x004d4d56u /* "VMM\0" */
#define LKS_CPUID_INFO \
	0x40000101u /* eax = ABI version, ebx = TSC kHz, ecx:edx = doorbell GPA lo:hi */

/* The doorbell page. */
#define LKS_DOORBELL_GPA_DEFAULT 0xfeb00000ull
#define LKS_DOORBELL_SIZE 0x1000u
#define LKS_DB_CALL(nr) ((uint32_t)(nr)*8u) /* 8-byte read performs call nr */
#define LKS_DB_CALL_LIMIT 0x200u	    /* call offsets are below this */
#define LKS_DB_KICK 0x800u /* 4-byte write: value = vCPU to kick (in-kernel fast path) */

enum lks_call {
	LKS_CALL_PROBE = 0, /* () -> LKS_PROBE_VALUE */
	LKS_CALL_NOP = 1,   /* () -> 0; measures the doorbell round trip */
	/*
	 * WAIT(rdi = GPA of a 4-byte-aligned u32 lock word, rsi = expected value,
	 *      rdx = timeout in ns, 0 = none)
	 * Sleeps in the host unless the word no longer holds the expected value.  Returns
	 * LKS_WAIT_CHANGED (did not sleep), LKS_WAIT_WOKEN (kicked, or spurious: re-check),
	 * LKS_WAIT_TIMEOUT, or an error.  A kick that lands between the guest's last check and the
	 * sleep is never lost.
	 */
	LKS_CALL_WAIT = 2,
	LKS_CALL_KICK = 3,     /* (rdi = vCPU) -> 0; wakes that vCPU's WAIT (or its next WAIT) */
	LKS_CALL_YIELD_TO = 4, /* (rdi = vCPU) -> 0; asks the scheduler to run that vCPU */
	/*
	 * SHARED_SETUP(rdi = GPA, 64-byte aligned; rsi = size, from sizeof(struct
	 * lks_shared_page) to 1 MiB) -> 0; registers the shared page, replacing any earlier
	 * one.  A page with fewer slots than vCPUs is accepted (the host reads the slots it has).
	 * (0, 0) unregisters it.
	 */
	LKS_CALL_SHARED_SETUP = 5,
	LKS_CALL_TIME_NS = 6, /* () -> host CLOCK_MONOTONIC in ns */
	LKS_CALL_NR
};

#define LKS_PROBE_MAGIC 0x4c4b5350u /* "LKSP" */
#define LKS_PROBE_VALUE (((uint64_t)LKS_PROBE_MAGIC << 32) | LKS_ABI_VERSION)

#define LKS_WAIT_CHANGED 0
#define LKS_WAIT_WOKEN 1
#define LKS_WAIT_TIMEOUT 2

/* Errors are negative Linux errno values, so hosts and guests agree without a table. */
#define LKS_EFAULT (-14)
#define LKS_EINVAL (-22)
#define LKS_ENOSYS (-38)
#define LKS_EBUSY (-16)

/*
 * The shared page: guest RAM the guest registers with LKS_CALL_SHARED_SETUP.  Each vCPU
 * publishes what it does with locks; the host only reads it (a lying guest harms only its own
 * scheduling).  Field writes need no atomics beyond natural alignment: the host tolerates torn
 * snapshots across fields.
 */
enum lks_vcpu_lock_state {
	LKS_STATE_NONE = 0,
	LKS_STATE_SPINNING = 1, /* waiting for `waiting`, spinning */
	LKS_STATE_SLEEPING = 2, /* waiting for `waiting`, inside WAIT */
	LKS_STATE_BARRIER = 3,	/* waiting at a barrier (`waiting` = barrier GPA) */
};

struct lks_vcpu_pub {
	uint64_t holding;	 /* GPA of the lock held, 0 = none */
	uint64_t waiting;	 /* GPA of the lock or barrier waited for, 0 = none */
	uint64_t hold_start_tsc; /* TSC when `holding` was taken */
	uint64_t wait_start_tsc; /* TSC when the wait began */
	uint64_t spins;		 /* spin iterations in the current wait */
	uint32_t state;		 /* enum lks_vcpu_lock_state */
	uint32_t seq;		 /* bumped on every publication */
	uint64_t acquisitions;	 /* locks taken since boot */
	uint64_t wait_value;	 /* what ends the wait, if it says: a barrier's next sense */
} __attribute__((aligned(64)));

#define LKS_SHARED_MAGIC 0x4c4b5348u /* "LKSH" */
#define LKS_SHARED_MAX_VCPUS 254u

struct lks_shared_page {
	uint32_t magic;	   /* LKS_SHARED_MAGIC */
	uint32_t version;  /* LKS_ABI_VERSION */
	uint32_t nr_vcpus; /* entries in vcpu[] */
	uint32_t reserved[13];
	struct lks_vcpu_pub vcpu[]; /* indexed by vCPU number */
} __attribute__((aligned(64)));

#endif /* LOCKSTEP_PVLOCK_ABI_H */
