/*
 * Constants shared by the guest runtime's assembly and C code: segment selectors, the per-CPU
 * area, interrupt vectors, syscall numbers and the few hardware registers the ring-0 paths
 * touch.  This header is included from .S files, so it holds only #defines.
 *
 * Memory the runtime uses below 1 MiB: only the AP start-up trampoline at RT_TRAMPOLINE_BASE
 * (one page).  The image itself is linked at RT_IMAGE_BASE.
 */
#ifndef LOCKSTEP_GUEST_RT_LAYOUT_H
#define LOCKSTEP_GUEST_RT_LAYOUT_H

#define RT_IMAGE_BASE 0x100000
#define RT_TRAMPOLINE_BASE 0x8000 /* SIPI vector 0x08 */
#define RT_TRAMPOLINE_SIPI_VECTOR (RT_TRAMPOLINE_BASE >> 12)

/*
 * GDT layout (the order of the first entries is the SYSCALL/SYSRET one, though the runtime
 * enters ring 0 by exception only).  Each CPU owns one 16-byte TSS descriptor from RT_SEL_TSS0
 * on.
 */
#define RT_SEL_KCODE 0x08
#define RT_SEL_KDATA 0x10
#define RT_SEL_UDATA 0x23   /* 0x20 | RPL 3 */
#define RT_SEL_UCODE 0x2b   /* 0x28 | RPL 3 */
#define RT_SEL_KCODE32 0x30 /* 32-bit code for the protected-mode boot stubs */
#define RT_SEL_TSS0 0x40

#define RT_MAX_CPUS 255 /* xAPIC ids 0..254; 255 is the broadcast id */

/*
 * The per-CPU area: RT_CPU_AREA_SIZE bytes aligned to its size, so any stack address inside it
 * names its CPU (rsp & ~(size - 1)).  struct rt_cpu sits at its base, then the ring-0 stack
 * (TSS.RSP0; interrupts from ring 3 land here), then the ring-3 stack the CPU's work runs on.
 */
#define RT_CPU_AREA_SHIFT 16
#define RT_CPU_AREA_SIZE (1 << RT_CPU_AREA_SHIFT)
#define RT_CPU_RING0_STACK_TOP 0x4000
#define RT_CPU_RING3_STACK_TOP RT_CPU_AREA_SIZE

/* Offsets inside struct rt_cpu that the assembly uses (checked by static asserts). */
#define RT_CPU_OFF_INDEX 0x0
#define RT_CPU_OFF_BOOT_APIC_ID 0x4
#define RT_CPU_OFF_IRQ_COUNT 0x400 /* uint32_t[256] */
#define RT_CPU_OFF_TSS 0x800
#define RT_CPU_OFF_IRQ_TSC 0x900 /* uint64_t[RT_VEC_TS_COUNT] */

/* The 64-bit TSS: where RSP0 and IST1 are, the I/O-bitmap offset field, its size. */
#define RT_TSS_RSP0 4
#define RT_TSS_IST1 36
#define RT_TSS_IOPB 102
#define RT_TSS_SIZE 104
#define RT_TSS_AVAILABLE 0x89 /* descriptor type: present, DPL 0, available 64-bit TSS */

/* Offsets inside struct rt_state that the AP entry uses. */
#define RT_STATE_OFF_APIC_TO_CPU 0x0 /* uint8_t[256], 0xff = not a CPU of ours */
#define RT_STATE_OFF_CPU 0x100	     /* struct rt_cpu *[RT_MAX_CPUS] */

/*
 * Interrupt vectors.  0-31 are exceptions; programs may use RT_VEC_USER_FIRST..LAST.  The
 * handler of every vector counts it per CPU and sends EOI; from RT_VEC_TS_FIRST on it also
 * records the TSC at entry, and from RT_VEC_LEVEL_FIRST on it leaves the EOI to the program
 * (rt_irq_eoi), which must first quiet a level-triggered source.
 */
#define RT_VEC_WAKE 0x40  /* wakes a CPU sleeping in RT_SYS_WAIT */
#define RT_VEC_TIMER 0x41 /* LAPIC one-shot timer: bounds RT_SYS_WAIT */
#define RT_VEC_SCI 0x42	  /* the ACPI SCI, edge-triggered to CPU 0 (guest/rt/power.c) */
#define RT_VEC_USER_FIRST 0x50
#define RT_VEC_TS_FIRST 0xc0	/* timestamped */
#define RT_VEC_LEVEL_FIRST 0xe0 /* timestamped, EOI by the program */
#define RT_VEC_LEVEL_LAST 0xef
#define RT_VEC_TS_COUNT (RT_VEC_LEVEL_LAST - RT_VEC_TS_FIRST + 1)
#define RT_VEC_USER_LAST 0xef
#define RT_VEC_SPURIOUS 0xff

/*
 * Syscall numbers (RAX); arguments in RDI, RSI, RDX; result in RAX.  RCX, R8-R11 are
 * clobbered.  A syscall is a `ud2` at ring 3 (entry.S); the ring-0 side is guest/rt/kernel.c.
 */
#define RT_SYS_NOP 0	       /* () -> 0 */
#define RT_SYS_WRITE 1	       /* (buf, len): COM1, one rep outsb */
#define RT_SYS_EXIT 2	       /* (code): debug-exit port, does not return */
#define RT_SYS_WAIT 3	       /* (word, value, timeout_ns): hlt unless *word != value */
#define RT_SYS_SEND_IPI 4      /* (apic id, ICR low dword) */
#define RT_SYS_CPUID 5	       /* (leaf, subleaf, uint32_t out[4]) */
#define RT_SYS_APIC_READ 6     /* (register offset) -> value */
#define RT_SYS_APIC_WRITE 7    /* (register offset, value) */
#define RT_SYS_PIO_IN 8	       /* (port, width 1/2/4) -> value */
#define RT_SYS_PIO_OUT 9       /* (port, width 1/2/4, value) */
#define RT_SYS_RDMSR 10	       /* (msr) -> value */
#define RT_SYS_WRMSR 11	       /* (msr, value) */
#define RT_SYS_TRIPLE_FAULT 12 /* (): shuts the machine down the hard way */
#define RT_SYS_COUNT 13

/* Hardware. */
#define RT_LAPIC_BASE 0xfee00000
#define RT_APIC_ID 0x20
#define RT_APIC_EOI 0xb0
#define RT_APIC_SVR 0xf0
#define RT_APIC_ICR_LOW 0x300
#define RT_APIC_ICR_HIGH 0x310
#define RT_APIC_LVT_TIMER 0x320
#define RT_APIC_LVT_LINT0 0x350
#define RT_APIC_TIMER_INIT 0x380
#define RT_APIC_TIMER_CURRENT 0x390
#define RT_APIC_TIMER_DIVIDE 0x3e0
#define RT_APIC_LVT_MASKED 0x10000
#define RT_APIC_ICR_PENDING 0x1000

#define RT_COM1 0x3f8
#define RT_DEBUG_EXIT_PORT 0xf4

#define RT_MSR_EFER 0xc0000080
#define RT_EFER_LME 0x100
#define RT_RFLAGS_IF 0x200

#endif /* LOCKSTEP_GUEST_RT_LAYOUT_H */
