/*
 * Boot: the multiboot v1 header, the machine tables, and the BSP's path from the loader's
 * 32-bit protected mode to its first instruction at ring 3.
 *
 * Ring-0 code is expensive on some hosts (emulated instruction by instruction), so everything
 * that can be data is data: the identity page tables are assembled here (2 MiB pages over the
 * first 4 GiB, all user-accessible so ring 3 reaches RAM, the doorbell and firmware tables;
 * 4 KiB pages below 2 MiB so that page 0 can stay unmapped), the
 * GDT's code and data descriptors are static, and the IDT's gates are filled in by ring-3 C
 * code (guest/rt/start.c).  The ring-0 work left is about fifty instructions per CPU.
 *
 * Also here: rt_cpu_init_ring0, the per-CPU ring-0 set-up shared with the APs
 * (guest/rt/trampoline.S), and rt_enter_ring3.
 */
#include "guest/rt/layout.h"

#define MULTIBOOT_MAGIC 0x1badb002
#define MULTIBOOT_FLAGS 0x00000002 /* we want mem_lower/mem_upper; ELF form, no address fields */

#define PTE_PRESENT 0x1
#define PTE_WRITE 0x2
#define PTE_USER 0x4
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_LARGE 0x80
#define PTE_TABLE (PTE_PRESENT | PTE_WRITE | PTE_USER)
#define PTE_RAM (PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_LARGE)
#define MMIO_HOLE_START 0xc0000000 /* 3-4 GiB: doorbell, IOAPIC, LAPIC: uncached */

	.section .multiboot, "a"
	.balign 4
multiboot_header:
	.long MULTIBOOT_MAGIC
	.long MULTIBOOT_FLAGS
	.long -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

/* ---- Machine tables ------------------------------------------------------------------- */

	.section .data.pagetables, "aw"
	.balign 4096
	.globl rt_pml4
rt_pml4:
	.quad rt_pdpt + PTE_TABLE
	.fill 511, 8, 0
	.balign 4096
rt_pdpt:
	.quad rt_pd + PTE_TABLE
	.quad rt_pd + 0x1000 + PTE_TABLE
	.quad rt_pd + 0x2000 + PTE_TABLE
	.quad rt_pd + 0x3000 + PTE_TABLE
	.fill 508, 8, 0
	.balign 4096
rt_pd: /* four page directories back to back: 2048 entries of 2 MiB, but 4 KiB pages below 2 MiB */
	.quad rt_pt_low + PTE_TABLE
	.set pd_addr, 0x200000
	.rept 2047
	.if pd_addr >= MMIO_HOLE_START
	.quad pd_addr | PTE_RAM | PTE_PCD | PTE_PWT
	.else
	.quad pd_addr | PTE_RAM
	.endif
	.set pd_addr, pd_addr + 0x200000
	.endr
	.balign 4096
rt_pt_low: /* page 0 stays unmapped so that NULL pointers fault, at either ring */
	.quad 0
	.set pt_addr, 0x1000
	.rept 511
	.quad pt_addr | PTE_TABLE
	.set pt_addr, pt_addr + 0x1000
	.endr

	.data
	.balign 16
	.globl rt_gdt, rt_gdt_tss, rt_gdtr
rt_gdt:
	.quad 0                         /* 0x00 null */
	.quad 0x00209a0000000000        /* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff        /* 0x10 kernel data, flat */
	.quad 0                         /* 0x18 (32-bit user code in the SYSRET layout; unused) */
	.quad 0x00cff2000000ffff        /* 0x20 user data, flat, DPL 3 */
	.quad 0x0020fa0000000000        /* 0x28 user code, 64-bit, DPL 3 */
	.quad 0x00cf9a000000ffff        /* 0x30 kernel code, 32-bit, for the boot stubs */
	.quad 0                         /* 0x38 */
rt_gdt_tss:                         /* 0x40: one 16-byte TSS descriptor per CPU */
	.fill RT_MAX_CPUS * 2, 8, 0
rt_gdt_end:

	/* Read as 6 bytes by the 32-bit lgdt and as 10 bytes in long mode. */
	.balign 8
rt_gdtr:
	.word rt_gdt_end - rt_gdt - 1
	.quad rt_gdt

	.globl rt_idtr
	.balign 8
rt_idtr:
	.word 256 * 16 - 1
	.quad rt_idt

	.bss
	.globl rt_idt
	.balign 4096
rt_idt:
	.skip 256 * 16

	/* The BSP's per-CPU area; the APs' areas are allocated once the MADT is known. */
	.globl rt_bsp_area
	.balign RT_CPU_AREA_SIZE
rt_bsp_area:
	.skip RT_CPU_AREA_SIZE

/* ---- 32-bit entry from the multiboot loader ------------------------------------------- */

	.section .text.boot, "ax"
	.code32
	.globl _start
_start:
	cli
	mov %eax, %edi                  /* multiboot magic, becomes rt_bsp_start's 1st argument */
	mov %ebx, %esi                  /* multiboot information, its 2nd */
	lgdt rt_gdtr
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
	or $0x80000001, %eax            /* PG | PE */
	mov %eax, %cr0
	ljmp $RT_SEL_KCODE, $bsp_long_mode

	.code64
bsp_long_mode:
	mov $RT_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov %edi, %edi                  /* upper halves are undefined after the mode switch */
	mov %esi, %esi
	mov $rt_bsp_area, %ebx
	lea RT_CPU_RING0_STACK_TOP(%rbx), %rsp
	/* An unprogrammed 8259 delivers spurious low vectors: mask both PICs for good. */
	mov $0xff, %al
	out %al, $0x21
	out %al, $0xa1
	call rt_cpu_init_ring0
	/* Ring 3 with interrupts off until it has filled the IDT. */
	mov $rt_bsp_start, %eax
	mov $0x2, %ecx
	jmp rt_enter_ring3

/*
 * Per-CPU ring-0 set-up, BSP and APs, before the CPU first enters ring 3.  In: %rbx = this
 * CPU's area, whose index field is set.  Fills the TSS (RSP0 and IST1 = the area's ring-0
 * stack top, no I/O bitmap), writes its GDT descriptor and loads it, loads the IDT (whose gates
 * ring-3 code fills: the CPU reads them only when an event arrives), enables the local APIC (spurious vector 0xff), masks LINT0 (the in-kernel LAPIC resets the
 * BSP's to ExtINT), arms the timer LVT for one-shot RT_VEC_TIMER at divide-by-1, and records
 * the APIC id read from the LAPIC.  Each CPU loads its tables here, on its way up, so that no
 * syscall needs lidt or ltr (they fault in some hosts' ring-0 modes, see entry.S).  Clobbers
 * rax, rcx, rdx.
 */
	.text
	.globl rt_cpu_init_ring0
rt_cpu_init_ring0:
	lea RT_CPU_RING0_STACK_TOP(%rbx), %rax
	mov %rax, (RT_CPU_OFF_TSS + RT_TSS_RSP0)(%rbx)
	mov %rax, (RT_CPU_OFF_TSS + RT_TSS_IST1)(%rbx)
	movw $RT_TSS_SIZE, (RT_CPU_OFF_TSS + RT_TSS_IOPB)(%rbx)
	/* descriptor: limit[15:0], base[23:0] at bit 16, type at 40, base[31:24] at 56; base[63:32] */
	lea RT_CPU_OFF_TSS(%rbx), %rax
	mov %rax, %rdx
	shl $16, %rdx
	movabs $0x000000ffffff0000, %rcx
	and %rcx, %rdx
	mov %rax, %rcx
	shr $24, %rcx
	shl $56, %rcx
	or %rcx, %rdx
	movabs $((RT_TSS_AVAILABLE << 40) | (RT_TSS_SIZE - 1)), %rcx
	or %rcx, %rdx
	mov RT_CPU_OFF_INDEX(%rbx), %ecx
	shl $4, %ecx
	mov %rdx, rt_gdt_tss(%rcx)
	shr $32, %rax
	mov %rax, (rt_gdt_tss + 8)(%rcx)
	add $RT_SEL_TSS0, %ecx
	ltr %cx
	lidt rt_idtr

	mov $RT_LAPIC_BASE, %ecx
	movl $(0x100 | RT_VEC_SPURIOUS), RT_APIC_SVR(%rcx)
	movl $RT_APIC_LVT_MASKED, RT_APIC_LVT_LINT0(%rcx)
	movl $0xb, RT_APIC_TIMER_DIVIDE(%rcx)
	movl $RT_VEC_TIMER, RT_APIC_LVT_TIMER(%rcx)
	mov RT_APIC_ID(%rcx), %eax
	shr $24, %eax
	mov %eax, RT_CPU_OFF_BOOT_APIC_ID(%rbx)
	ret

/*
 * Leave ring 0 for good.  In: %eax = ring-3 entry point, %ecx = RFLAGS, %rbx = this CPU's
 * area, %rdi/%rsi = the entry's arguments.  The ring-3 stack starts with a zero return
 * address so the entry function sees the ABI's alignment and backtraces end there.
 */
	.globl rt_enter_ring3
rt_enter_ring3:
	lea (RT_CPU_RING3_STACK_TOP - 8)(%rbx), %rdx
	movq $0, (%rdx)
	push $RT_SEL_UDATA
	push %rdx
	push %rcx
	push $RT_SEL_UCODE
	push %rax
	iretq

	.section .note.GNU-stack, "", @progbits
