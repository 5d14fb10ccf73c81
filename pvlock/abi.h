/*
 * lockstep guest <-> host ABI, version 1, with optional features.
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
 *
 * Compatibility: the version changes only when an existing call, field or leaf changes its
 * meaning, which a guest could not tell; a guest refuses a version it does not know.  Additions
 * are features instead: LKS_CPUID_FEATURES (present when LKS_CPUID_BASE's eax reaches it) lists
 * them, a guest uses only what is listed, and a host answers calls it does not know with
 * LKS_ENOSYS.  So a guest built before a feature runs unchanged on a host that has it, and a
 * guest that knows a feature runs unchanged (without it) on a host that lacks it.
 *
 * Feature LKS_FEATURE_SCHED (the multiplexer's side of the ABI): a read-only page of scheduling
 * hints (struct lks_sched_hints) at the GPA LKS_CPUID_FEATURES gives, in which the host marks
 * the vCPUs it has stopped (`gated`) and the vCPUs it asks to give up their host CPU at their
 * next release point (`switch_req`), and LKS_CALL_SWITCH, with which a vCPU does so.  A release
 * point is a moment at which the vCPU holds no lock and waits for none: right after an unlock,
 * or after passing a barrier.  Asked vCPUs that never reach one are stopped anyway after a grace
 * period, so the guest's part is an optimisation, never a duty.
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
#define LKS_CPUID_FEATURES \
	0x40000102u /* eax = LKS_FEATURE_* bits; ebx:ecx = hints page GPA lo:hi; edx = its size */

/* Features (LKS_CPUID_FEATURES eax). */
#define LKS_FEATURE_SCHED (1u << 0) /* struct lks_sched_hints and LKS_CALL_SWITCH */

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
	 * (0, 0) unregisters it.  LKS_EBUSY once a VM has registered LKS_SHARED_SETUP_MAX
	 * different (GPA, slot count) pairs: the host keeps each one for the VM's life.
	 */
	LKS_CALL_SHARED_SETUP = 5,
	LKS_CALL_TIME_NS = 6, /* () -> host CLOCK_MONOTONIC in ns */
	/*
	 * SWITCH() -> LKS_SWITCH_DONE once this vCPU runs again, or LKS_SWITCH_NOT_ASKED at once.
	 * LKS_FEATURE_SCHED.  Made at a release point (the caller holds no lock and waits for
	 * none) when this vCPU's `switch_req` bit is set: the host hands the vCPU's host CPU to
	 * another vCPU of the VM and runs this one again later.  Without the bit set (the request
	 * was withdrawn or already served) it returns at once.
	 */
	LKS_CALL_SWITCH = 7,
	LKS_CALL_NR
};

#define LKS_SWITCH_DONE 0
#define LKS_SWITCH_NOT_ASKED 1
#define LKS_SHARED_SETUP_MAX 64

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

/*
 * The scheduling hints page (LKS_FEATURE_SCHED): host memory mapped read-only into the guest at
 * the GPA LKS_CPUID_FEATURES names (LKS_HINTS_GPA_DEFAULT under lockstep).  The host writes it
 * whenever it stops or starts a vCPU and when it asks one to switch; a guest only reads it, and
 * reading it costs no exit.  Bit v of a map is word v / 32, bit v % 32.
 *
 *  - `gated`: vCPU v is stopped by the host's scheduler and cannot run until the host lets it.
 *    A lock waiter whose holder (or, for a FIFO lock, whose next waiter) is gated should stop
 *    spinning and WAIT at once, and a releaser that handed a lock to a gated waiter should give
 *    its CPU to it (YIELD_TO): under the multiplexer both go straight to the gated vCPU.  At a
 *    barrier, a vCPU that arrived while a latecomer is gated should WAIT at once.
 *  - `switch_req`: the host asks vCPU v to call LKS_CALL_SWITCH at its next release point.
 *  - `multiplexed`: the host runs at most `slots` of the VM's vCPUs at once and chooses which.
 */
#define LKS_HINTS_GPA_DEFAULT 0xfeb01000ull
#define LKS_HINTS_SIZE 0x1000u
#define LKS_HINTS_MAGIC 0x4c4b5353u /* "LKSS" */
#define LKS_HINT_WORDS 8u	    /* 256 vCPUs */

struct lks_sched_hints {
	uint32_t magic;	      /* LKS_HINTS_MAGIC */
	uint32_t nr_vcpus;    /* vCPUs the maps cover */
	uint32_t multiplexed; /* 1 while the host multiplexes the VM's vCPUs on fewer CPUs */
	uint32_t slots;	      /* ... on this many host CPUs */
	uint32_t reserved[12];
	uint32_t gated[LKS_HINT_WORDS];
	uint32_t reserved2[8];
	uint32_t switch_req[LKS_HINT_WORDS];
} __attribute__((aligned(64)));

static inline int lks_hint_test(const volatile uint32_t *map, uint32_t vcpu)
{
	return vcpu < 32 * LKS_HINT_WORDS && (map[vcpu / 32] >> (vcpu % 32)) & 1;
}

#endif /* LOCKSTEP_PVLOCK_ABI_H */
