/*
 * Application processor start-up.  The BSP copies the real-mode trampoline below to
 * RT_TRAMPOLINE_BASE (guest/rt/smp.c) and starts each AP with INIT-SIPI-SIPI.  The AP goes
 * 16 -> 32 -> 64-bit on the runtime's own GDT and page tables, finds its CPU index by its
 * LAPIC id in rt_state.apic_to_cpu (filled by the BSP), takes its per-CPU area, sets itself up
 * (rt_cpu_init_ring0: TSS, IDT, MSRs, LAPIC) and drops to ring 3 in rt_ap_start.  No loop
 * runs at ring 0.
 */
#include "guest/rt/layout.h"

#define TRAMPOLINE_ADDR(label) (RT_TRAMPOLINE_BASE + (label) - rt_trampoline_start)

	.section .rodata.trampoline, "a"
	.code16
	.globl rt_trampoline_start, rt_trampoline_end
rt_trampoline_start:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl trampoline_gdtr - rt_trampoline_start
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $RT_SEL_KCODE32, $TRAMPOLINE_ADDR(trampoline_32)

	.code32
trampoline_32:
	mov $RT_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %cr4, %eax
	or $0x20, %eax                  /* PAE */
	mov %eax, %cr4
	mov $rt_pml4, %eax
	mov %eax, %cr3
	mov $RT_MSR_EFER, %ecx
	rdmsr
	or $RT_EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax            /* PG */
	mov %eax, %cr0
	ljmp $RT_SEL_KCODE, $rt_ap_long_mode

	.balign 8
trampoline_gdtr:                    /* limit + 32-bit base of the runtime's GDT */
	.word RT_SEL_TSS0 + RT_MAX_CPUS * 16 - 1
	.long rt_gdt
rt_trampoline_end:

	.text
	.code64
rt_ap_long_mode:
	mov $RT_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $RT_LAPIC_BASE, %ecx
	mov RT_APIC_ID(%rcx), %eax
	shr $24, %eax
	movzbl (rt_state + RT_STATE_OFF_APIC_TO_CPU)(%rax), %edi
	cmp $RT_MAX_CPUS, %edi
	jae unknown_cpu
	mov (rt_state + RT_STATE_OFF_CPU)(, %rdi, 8), %rbx
	test %rbx, %rbx
	jz unknown_cpu
	lea RT_CPU_RING0_STACK_TOP(%rbx), %rsp
	call rt_cpu_init_ring0
	mov $rt_ap_start, %eax
	mov $(RT_RFLAGS_IF | 0x2), %ecx
	mov %rbx, %rdi
	jmp rt_enter_ring3

	/* Started but not in the BSP's table: stay out of the way. */
unknown_cpu:
	cli
	hlt
	jmp unknown_cpu

	.section .note.GNU-stack, "", @progbits
