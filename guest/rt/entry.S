/*
 * Ring-0 entry points: the 256 interrupt/exception stubs, one of which (#UD) doubles as the
 * runtime's syscall.  Every instruction here may be emulated at about a microsecond each, so
 * the paths are short:
 *
 * - Syscall: ring 3 executes `ud2` with the number in RAX and arguments in RDI/RSI/RDX.  An
 *   exception is the one way into ring 0 that is real on every host: on the PVM-based KVM of
 *   the development machines, code entered by SYSCALL runs in a mode where privileged
 *   instructions (sti, lidt, ltr, rep outsb were seen) fault, and `int n` raises #UD.  The #UD
 *   handler checks that the fault is a ring-3 ud2, steps over it, calls the handler from
 *   rt_syscall_table (guest/rt/kernel.c) on the CPU's ring-0 stack, and returns with IRETQ.
 *   Ring 3 always resumes with interrupts enabled.  Any other #UD is an exception as below.
 * - Interrupts (vectors 32-255) count themselves in the per-CPU irq_count[] (the per-CPU area
 *   is found from %rsp, whichever stack we are on), send EOI unless spurious, and return.
 *   Vectors RT_VEC_TS_FIRST and up first take the TSC (the fifth instruction of the handler)
 *   into the per-CPU irq_tsc[]; RT_VEC_LEVEL_FIRST and up leave the EOI to the program.
 * - Exceptions (0-31) save the registers and call rt_trap(), which reports and ends the VM.
 */
#include "guest/rt/layout.h"

#define VECTOR_INVALID_OPCODE 6
#define UD2_OPCODE 0x0b0f /* 0f 0b, as a little-endian word */

	.text
	.code64

/*
 * The stubs are 16 bytes apart from rt_isr_stubs, so desc.c computes each vector's handler
 * address.  Exceptions that push no error code get a zero, so rt_trap sees one frame layout.
 */
	.balign 16
	.globl rt_isr_stubs
rt_isr_stubs:
	.set vector, 0
	.rept 256
	.balign 16
	.if vector == VECTOR_INVALID_OPCODE
	jmp invalid_opcode
	.elseif vector < 32
	.if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
	push $vector
	.else
	push $0
	push $vector
	.endif
	jmp exception_common
	.elseif vector == RT_VEC_SPURIOUS
	push $vector
	jmp spurious_common
	.elseif vector >= RT_VEC_LEVEL_FIRST && vector <= RT_VEC_LEVEL_LAST
	push $vector
	jmp irq_level_common
	.elseif vector >= RT_VEC_TS_FIRST && vector < RT_VEC_LEVEL_FIRST
	push $vector
	jmp irq_ts_common
	.else
	push $vector
	jmp irq_common
	.endif
	.set vector, vector + 1
	.endr

invalid_opcode:                         /* stack: rip, cs, rflags, rsp, ss */
	testb $3, 8(%rsp)
	jz 1f
	mov (%rsp), %rcx
	cmpw $UD2_OPCODE, (%rcx)
	jne 1f
	addq $2, (%rsp)                 /* resume after the ud2 */
	orq $RT_RFLAGS_IF, 16(%rsp)
	cmp $RT_SYS_COUNT, %rax
	jae 2f
	/* The stack is 8 bytes off the ABI's alignment; no handler uses SSE. */
	call *rt_syscall_table(, %rax, 8)
	iretq
2:	mov $-38, %rax                  /* -ENOSYS */
	iretq
1:	push $0
	push $VECTOR_INVALID_OPCODE
	jmp exception_common

irq_common:                             /* stack: vector, rip, cs, rflags, rsp, ss */
	push %rax
	push %rdx
	mov 16(%rsp), %rdx
	mov %rsp, %rax
	and $-RT_CPU_AREA_SIZE, %rax
	incl RT_CPU_OFF_IRQ_COUNT(%rax, %rdx, 4)
	mov $RT_LAPIC_BASE, %eax
	movl $0, RT_APIC_EOI(%rax)
	pop %rdx
	pop %rax
	add $8, %rsp
	iretq

/* Counts and timestamps the vector; leaves %rcx = the per-CPU area, %rax, %rdx, %rcx pushed. */
.macro irq_timestamp
	push %rax
	push %rdx
	rdtsc
	push %rcx
	mov %rsp, %rcx
	and $-RT_CPU_AREA_SIZE, %rcx
	shl $32, %rdx
	or %rdx, %rax
	mov 24(%rsp), %rdx
	mov %rax, (RT_CPU_OFF_IRQ_TSC - 8 * RT_VEC_TS_FIRST)(%rcx, %rdx, 8)
	incl RT_CPU_OFF_IRQ_COUNT(%rcx, %rdx, 4)
.endm

irq_ts_common:                          /* stack: vector, rip, cs, rflags, rsp, ss */
	irq_timestamp
	mov $RT_LAPIC_BASE, %eax
	movl $0, RT_APIC_EOI(%rax)
	pop %rcx
	pop %rdx
	pop %rax
	add $8, %rsp
	iretq

irq_level_common:                       /* the program sends EOI */
	irq_timestamp
	pop %rcx
	pop %rdx
	pop %rax
	add $8, %rsp
	iretq

spurious_common:                        /* no EOI for the spurious vector */
	push %rax
	mov %rsp, %rax
	and $-RT_CPU_AREA_SIZE, %rax
	incl (RT_CPU_OFF_IRQ_COUNT + 4 * RT_VEC_SPURIOUS)(%rax)
	pop %rax
	add $8, %rsp
	iretq

exception_common:                       /* stack: vector, error, rip, cs, rflags, rsp, ss */
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	cld
	mov %rsp, %rdi
	and $-16, %rsp
	call rt_trap                    /* does not return */
2:	cli
	hlt
	jmp 2b

	.section .note.GNU-stack, "", @progbits
