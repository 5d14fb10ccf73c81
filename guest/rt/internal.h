/*
 * The guest runtime's internal interfaces: the per-CPU structure, the runtime's state, the
 * syscall wrapper, and the functions the runtime's files call in one another.
 * Programs include guest/guest.h only.
 */
#ifndef LOCKSTEP_GUEST_RT_INTERNAL_H
#define LOCKSTEP_GUEST_RT_INTERNAL_H

#include "guest/guest.h"

#define RT_CMDLINE_MAX 1024
#define RT_MAX_ARGS 64

/*
 * The 64-bit task state segment: only RSP0 (ring-0 stack) and IST1 (double faults) are used.
 * Each CPU fills its own and loads it at ring 0 (rt_cpu_init_ring0, boot.S).
 */
struct rt_tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iopb_offset;
} __attribute__((packed));

/*
 * One CPU, at the base of its per-CPU area (guest/rt/layout.h).  Fields are grouped by writer
 * so that CPUs do not share written cache lines.
 */
struct rt_cpu {
	/* Set before the CPU starts; read-only afterwards. */
	uint32_t index;	       /* RT_CPU_OFF_INDEX */
	uint32_t boot_apic_id; /* RT_CPU_OFF_BOOT_APIC_ID: read from its LAPIC at ring 0 */
	uint32_t apic_id;      /* from the MADT; IPIs go here */

	/* Written by this CPU, read by CPUs that want to wake it. */
	volatile uint32_t online __attribute__((aligned(RT_CACHE_LINE)));
	volatile uint32_t sleeping;		     /* inside (or about to enter) RT_SYS_WAIT */
	const volatile uint32_t *volatile wait_word; /* what it sleeps on */
	volatile uint32_t work_done; /* sequence number of the last finished work item */

	/* Written by the CPU that posts work. */
	volatile uint32_t work_posted __attribute__((aligned(RT_CACHE_LINE)));
	rt_work_fn work_fn;
	void *work_arg;

	/* Written by this CPU's ring-0 interrupt handler only. */
	volatile uint32_t irq_count[256] __attribute__((aligned(RT_CPU_OFF_IRQ_COUNT)));

	struct rt_tss tss __attribute__((aligned(RT_CPU_OFF_TSS)));

	/* TSC at the entry of the last interrupt of vectors RT_VEC_TS_FIRST and up. */
	volatile uint64_t irq_tsc[RT_VEC_TS_COUNT] __attribute__((aligned(0x100)));
};

/* ACPI power management as the firmware tables describe it (guest/rt/power.c). */
struct rt_acpi_pm {
	bool probed;		 /* the fields below are filled */
	bool fixed_power_button; /* the FADT's power button is a fixed feature */
	bool button_enabled;	 /* SCI routed, PWRBTN_EN set */
	uint16_t pm1a_evt;	 /* PM1a_STS; 0 = none */
	uint16_t pm1a_en;	 /* PM1a_EN: the second half of the event block */
	uint16_t pm1a_cnt;
	uint16_t smi_cmd; /* legacy firmware: write acpi_enable here for ACPI mode */
	uint8_t acpi_enable;
	uint16_t sci_irq;
	int s5_sleep_type; /* SLP_TYP of soft-off from \_S5; -1 unknown */
};

/*
 * The runtime's mutable state, in one place.  A freestanding kernel has no caller to hang
 * state off: the boot path, the ring-0 entry points (in assembly) and every CPU reach it by
 * name.  The AP entry reads the first two fields, whose offsets are fixed in layout.h.
 * Besides this and the per-CPU areas, the only mutable data are the hardware tables in
 * boot.S (GDT, IDT), which the CPU itself reads.
 */
struct rt_state {
	uint8_t apic_to_cpu[256]; /* RT_STATE_OFF_APIC_TO_CPU: LAPIC id -> CPU index, or 0xff */
	struct rt_cpu *cpu[RT_MAX_CPUS]; /* RT_STATE_OFF_CPU */
	unsigned cpu_count;		 /* CPUs started: indices 0 .. cpu_count - 1 */
	volatile uint32_t cpus_online;

	struct rt_lockstep lockstep;
	uint64_t tsc_khz;	/* 0 = unknown */
	const char *tsc_source; /* "lockstep", "calibrated" or "unknown" */
	uint64_t spin_cycles;	/* how long rt_wait_while spins before sleeping */

	char cmdline[RT_CMDLINE_MAX];	    /* as the loader gave it */
	char cmdline_words[RT_CMDLINE_MAX]; /* cut into the args[] strings */
	unsigned nr_args;
	struct {
		const char *key, *value;
	} args[RT_MAX_ARGS];

	uint64_t heap_next; /* bump allocator, advanced with compare-and-swap */
	uint64_t heap_end;

	struct rt_acpi_pm acpi_pm;
	uintptr_t ioapic_base; /* guest/rt/devices.c: 0 = not looked up yet */
	uintptr_t ecam_base;   /* ... 1 = no ECAM */

	volatile uint32_t console_lock;
	uint64_t boot_tsc;
};

extern struct rt_state rt_state;

/* Provided by the assembly. */
extern const uint8_t rt_isr_stubs[];
extern const uint8_t rt_trampoline_start[], rt_trampoline_end[];
extern uint8_t rt_idt[];
extern uint8_t rt_bsp_area[];
extern uint8_t rt_image_end[]; /* linker script */

static inline struct rt_cpu *rt_this_cpu(void)
{
	uintptr_t sp;

	__asm__("mov %%rsp, %0" : "=r"(sp));
	return (struct rt_cpu *)(sp & ~(uintptr_t)(RT_CPU_AREA_SIZE - 1));
}

/*
 * Ring 3 -> ring 0 -> ring 3: a ud2 the #UD handler recognises (entry.S).  RAX = number,
 * RDI/RSI/RDX = arguments; the C handler clobbers the other caller-saved registers.
 */
static inline long rt_syscall(long nr, long a0, long a1, long a2)
{
	__asm__ __volatile__("ud2"
			     : "+a"(nr), "+D"(a0), "+S"(a1), "+d"(a2)
			     :
			     : "rcx", "r8", "r9", "r10", "r11", "memory");
	return nr;
}

static inline bool rt_at_ring0(void)
{
	uint16_t cs;

	__asm__("mov %%cs, %0" : "=r"(cs));
	return (cs & 3) == 0;
}

/* kernel.c: ring-0 console output and exit (the trap handler; rt_write/rt_exit at ring 0). */
void rt_kernel_write(const char *buf, size_t len);
__attribute__((noreturn)) void rt_kernel_exit(uint32_t code);

/* bootinfo.c */
void rt_bootinfo_init(uint32_t magic, uint32_t info_addr);

/* acpi.c: enabled LAPIC ids from the MADT; returns how many, 0 if no MADT was found. */
unsigned rt_acpi_cpu_apic_ids(uint8_t *apic_ids, unsigned max);

/* platform.c */
void rt_platform_init(void);

/* smp.c */
void rt_smp_init(void);
void rt_send_icr(uint32_t apic_id, uint32_t icr_low);

/* Entry points reached from assembly. */
__attribute__((noreturn)) void rt_bsp_start(uint32_t magic, uint32_t info_addr);
__attribute__((noreturn)) void rt_ap_start(struct rt_cpu *cpu);

#endif /* LOCKSTEP_GUEST_RT_INTERNAL_H */
