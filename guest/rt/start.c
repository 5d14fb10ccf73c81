/*
 * The BSP's boot sequence at ring 3, from boot.S to the program's main(), the IDT's gates,
 * and the runtime's one state structure.
 *
 * boot.S arrives here with interrupts off and an IDT loaded but empty.  The gates hold handler
 * addresses split into pieces the assembler cannot compute from relocatable symbols, and
 * filling them at ring 0 would cost thousands of emulated instructions on some hosts; the page
 * is user-writable, so this ring-3 code fills it.  Then interrupts go on, and the command line
 * and memory, the platform (lockstep, TSC) and the other CPUs follow.
 */
#include "guest/rt/internal.h"

#define GATE_INTERRUPT 0x8e /* present, DPL 0, 64-bit interrupt gate (IF cleared on entry) */
#define IST_DOUBLE_FAULT 1  /* a double fault gets a fresh stack, whatever broke the old one */
#define VECTOR_DOUBLE_FAULT 8

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type;
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

/* See struct rt_state: the one place the runtime keeps mutable state. */
struct rt_state rt_state;

_Static_assert(__builtin_offsetof(struct rt_state, apic_to_cpu) == RT_STATE_OFF_APIC_TO_CPU,
	       "layout.h: RT_STATE_OFF_APIC_TO_CPU");
_Static_assert(__builtin_offsetof(struct rt_state, cpu) == RT_STATE_OFF_CPU,
	       "layout.h: RT_STATE_OFF_CPU");
_Static_assert(__builtin_offsetof(struct rt_cpu, index) == RT_CPU_OFF_INDEX,
	       "layout.h: RT_CPU_OFF_INDEX");
_Static_assert(__builtin_offsetof(struct rt_cpu, boot_apic_id) == RT_CPU_OFF_BOOT_APIC_ID,
	       "layout.h: RT_CPU_OFF_BOOT_APIC_ID");
_Static_assert(__builtin_offsetof(struct rt_cpu, irq_count) == RT_CPU_OFF_IRQ_COUNT,
	       "layout.h: RT_CPU_OFF_IRQ_COUNT");
_Static_assert(__builtin_offsetof(struct rt_cpu, tss) == RT_CPU_OFF_TSS,
	       "layout.h: RT_CPU_OFF_TSS");
_Static_assert(__builtin_offsetof(struct rt_cpu, irq_tsc) == RT_CPU_OFF_IRQ_TSC,
	       "layout.h: RT_CPU_OFF_IRQ_TSC");
_Static_assert(sizeof(struct rt_cpu) <= 0x1000, "struct rt_cpu overlaps the ring-0 stack");
_Static_assert(sizeof(struct rt_tss) == RT_TSS_SIZE, "layout.h: RT_TSS_SIZE");
_Static_assert(__builtin_offsetof(struct rt_tss, rsp) == RT_TSS_RSP0, "layout.h: RT_TSS_RSP0");
_Static_assert(__builtin_offsetof(struct rt_tss, ist) == RT_TSS_IST1, "layout.h: RT_TSS_IST1");
_Static_assert(__builtin_offsetof(struct rt_tss, iopb_offset) == RT_TSS_IOPB,
	       "layout.h: RT_TSS_IOPB");
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate size");

/* The stubs in entry.S are 16 bytes apart. */
static void build_idt(void)
{
	struct idt_gate *idt = (struct idt_gate *)rt_idt;

	for (unsigned vector = 0; vector < 256; vector++) {
		uint64_t handler = (uintptr_t)rt_isr_stubs + 16 * vector;

		idt[vector] = (struct idt_gate){
			.offset_low = handler & 0xffff,
			.selector = RT_SEL_KCODE,
			.ist = vector == VECTOR_DOUBLE_FAULT ? IST_DOUBLE_FAULT : 0,
			.type = GATE_INTERRUPT,
			.offset_mid = (handler >> 16) & 0xffff,
			.offset_high = handler >> 32,
		};
	}
}

static void print_banner(void)
{
	const struct rt_lockstep *ls = &rt_state.lockstep;
	uint64_t boot_ns = rt_cycles_to_ns(rt_rdtsc() - rt_state.boot_tsc);

	rt_printf("rt: %u cpu%s, lockstep %s, tsc %lu kHz (%s), heap %lu KiB, boot %lu us\n",
		  rt_state.cpu_count, rt_state.cpu_count == 1 ? "" : "s",
		  ls->present ? "present" : "absent", rt_state.tsc_khz, rt_state.tsc_source,
		  (rt_state.heap_end - rt_state.heap_next) >> 10, boot_ns / 1000);
}

void rt_bsp_start(uint32_t magic, uint32_t info_addr)
{
	rt_state.boot_tsc = rt_rdtsc();
	build_idt();
	rt_syscall(RT_SYS_NOP, 0, 0, 0); /* every syscall returns with interrupts on */
	rt_bootinfo_init(magic, info_addr);
	rt_platform_init();
	rt_smp_init();
	print_banner();
	rt_exit(main());
}
