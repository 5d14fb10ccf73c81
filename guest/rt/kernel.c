/*
 * The ring-0 half of the runtime: the syscall handlers that the #UD entry (entry.S) calls
 * through rt_syscall_table, and rt_trap, the fatal-exception report.
 *
 * Each handler is a few instructions on purpose: on some hosts every ring-0 instruction is
 * emulated, so anything that can be done at ring 3 (formatting, loops, waiting) is done there
 * and only the privileged instruction itself (port I/O, HLT, CPUID, LAPIC access, MSRs)
 * happens here.  Handlers run with interrupts off, on the CPU's ring-0 stack.
 *
 * Descriptor-table loads are not offered: each CPU loads its tables on its way up
 * (rt_cpu_init_ring0 in boot.S).
 */
#include "guest/rt/internal.h"

#define LAPIC_REG(off) (*(volatile uint32_t *)(uintptr_t)(RT_LAPIC_BASE + (off)))

typedef long (*rt_syscall_fn)(uint64_t a0, uint64_t a1, uint64_t a2);

void rt_kernel_write(const char *buf, size_t len)
{
	__asm__ __volatile__("cld; rep outsb"
			     : "+S"(buf), "+c"(len)
			     : "d"((uint16_t)RT_COM1)
			     : "memory");
}

static long sys_nop(uint64_t a0, uint64_t a1, uint64_t a2)
{
	return 0;
}

static long sys_write(uint64_t buf, uint64_t len, uint64_t a2)
{
	rt_kernel_write((const char *)buf, len);
	return 0;
}

void rt_kernel_exit(uint32_t code)
{
	__asm__ __volatile__("outl %0, %1" ::"a"(code), "Nd"((uint16_t)RT_DEBUG_EXIT_PORT));
	/* No debug-exit device: stop here. */
	for (;;)
		__asm__ __volatile__("cli; hlt");
}

static long sys_exit(uint64_t code, uint64_t a1, uint64_t a2)
{
	rt_kernel_exit(code);
}

/*
 * Halts unless *word already differs from value.  Interrupts are off until the sti, whose
 * one-instruction shadow makes "sti; hlt" atomic: a wake-up IPI sent after the check is taken
 * by the hlt, not lost before it.  A timeout arms the LAPIC one-shot timer, which counts at the
 * 1 GHz bus clock KVM and QEMU give it (divide-by-1, set at boot).
 */
static long sys_wait(uint64_t word, uint64_t value, uint64_t timeout_ns)
{
	if (*(const volatile uint32_t *)word != (uint32_t)value)
		return 0;
	if (timeout_ns)
		LAPIC_REG(RT_APIC_TIMER_INIT) = timeout_ns > 0xffffffffu ? 0xffffffffu : timeout_ns;
	__asm__ __volatile__("sti; hlt; cli" ::: "memory");
	if (timeout_ns)
		LAPIC_REG(RT_APIC_TIMER_INIT) = 0;
	return 0;
}

static long sys_send_ipi(uint64_t apic_id, uint64_t icr_low, uint64_t a2)
{
	while (LAPIC_REG(RT_APIC_ICR_LOW) & RT_APIC_ICR_PENDING)
		__asm__ __volatile__("pause");
	LAPIC_REG(RT_APIC_ICR_HIGH) = (uint32_t)apic_id << 24;
	LAPIC_REG(RT_APIC_ICR_LOW) = icr_low;
	return 0;
}

static long sys_cpuid(uint64_t leaf, uint64_t subleaf, uint64_t out)
{
	uint32_t *regs = (uint32_t *)out;

	__asm__ __volatile__("cpuid"
			     : "=a"(regs[0]), "=b"(regs[1]), "=c"(regs[2]), "=d"(regs[3])
			     : "a"((uint32_t)leaf), "c"((uint32_t)subleaf));
	return 0;
}

static long sys_apic_read(uint64_t reg, uint64_t a1, uint64_t a2)
{
	return LAPIC_REG(reg & 0xff0);
}

static long sys_apic_write(uint64_t reg, uint64_t value, uint64_t a2)
{
	LAPIC_REG(reg & 0xff0) = value;
	return 0;
}

static long sys_pio_in(uint64_t port, uint64_t width, uint64_t a2)
{
	uint32_t value = 0;

	if (width == 1)
		__asm__ __volatile__("inb %w1, %b0" : "=a"(value) : "Nd"((uint16_t)port));
	else if (width == 2)
		__asm__ __volatile__("inw %w1, %w0" : "=a"(value) : "Nd"((uint16_t)port));
	else
		__asm__ __volatile__("inl %w1, %0" : "=a"(value) : "Nd"((uint16_t)port));
	return value;
}

static long sys_pio_out(uint64_t port, uint64_t width, uint64_t value)
{
	if (width == 1)
		__asm__ __volatile__("outb %b0, %w1" ::"a"(value), "Nd"((uint16_t)port));
	else if (width == 2)
		__asm__ __volatile__("outw %w0, %w1" ::"a"(value), "Nd"((uint16_t)port));
	else
		__asm__ __volatile__("outl %k0, %w1" ::"a"(value), "Nd"((uint16_t)port));
	return 0;
}

static long sys_rdmsr(uint64_t msr, uint64_t a1, uint64_t a2)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"((uint32_t)msr));
	return (long)(((uint64_t)hi << 32) | lo);
}

static long sys_wrmsr(uint64_t msr, uint64_t value, uint64_t a2)
{
	__asm__ __volatile__("wrmsr" ::"c"((uint32_t)msr), "a"((uint32_t)value),
			     "d"((uint32_t)(value >> 32)));
	return 0;
}

/*
 * An empty IDT turns the next exception into a triple fault: the #UD below cannot be
 * delivered (#GP), nor can that (#DF), and the CPU shuts down.  What a crashing kernel looks
 * like to the VMM.
 */
static long sys_triple_fault(uint64_t a0, uint64_t a1, uint64_t a2)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty_idt = { 0, 0 };

	__asm__ __volatile__("lidt %0; ud2" ::"m"(empty_idt));
	__builtin_unreachable();
}

const rt_syscall_fn rt_syscall_table[RT_SYS_COUNT] = {
	[RT_SYS_NOP] = sys_nop,
	[RT_SYS_WRITE] = sys_write,
	[RT_SYS_EXIT] = sys_exit,
	[RT_SYS_WAIT] = sys_wait,
	[RT_SYS_SEND_IPI] = sys_send_ipi,
	[RT_SYS_CPUID] = sys_cpuid,
	[RT_SYS_APIC_READ] = sys_apic_read,
	[RT_SYS_APIC_WRITE] = sys_apic_write,
	[RT_SYS_PIO_IN] = sys_pio_in,
	[RT_SYS_PIO_OUT] = sys_pio_out,
	[RT_SYS_RDMSR] = sys_rdmsr,
	[RT_SYS_WRMSR] = sys_wrmsr,
	[RT_SYS_TRIPLE_FAULT] = sys_triple_fault,
};

/* The frame exception_common (entry.S) builds: pushed registers, then what the CPU pushed. */
struct rt_trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

static const char *const exception_names[32] = {
	[0] = "divide error",
	[1] = "debug",
	[2] = "NMI",
	[3] = "breakpoint",
	[4] = "overflow",
	[5] = "bound range",
	[6] = "invalid opcode",
	[7] = "device not available",
	[8] = "double fault",
	[10] = "invalid TSS",
	[11] = "segment not present",
	[12] = "stack fault",
	[13] = "general protection",
	[14] = "page fault",
	[16] = "x87 error",
	[17] = "alignment check",
	[18] = "machine check",
	[19] = "SIMD error",
	[21] = "control protection",
};

/*
 * A CPU exception anywhere is a bug in the guest (or in the host's emulation of it): report
 * it on COM1 without the console lock (its holder may be the faulting code) and end the VM
 * with RT_EXIT_CRASH.  Runs at ring 0; slow is fine here.
 */
__attribute__((noreturn)) void rt_trap(struct rt_trap_frame *frame);

void rt_trap(struct rt_trap_frame *frame)
{
	const char *name = frame->vector < 32 ? exception_names[frame->vector] : NULL;
	uint64_t cr2;
	char line[320];
	int len;

	__asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
	len = rt_snprintf(
		line, sizeof(line),
		"\nrt: cpu %u: exception %lu (%s) at ring %lu rip=%#lx error=%#lx cr2=%#lx\n"
		"rt:   rsp=%#lx rflags=%#lx rax=%#lx rbx=%#lx rcx=%#lx rdx=%#lx rsi=%#lx "
		"rdi=%#lx rbp=%#lx\n",
		rt_cpu_index(), frame->vector, name ? name : "reserved", frame->cs & 3, frame->rip,
		frame->error, cr2, frame->rsp, frame->rflags, frame->rax, frame->rbx, frame->rcx,
		frame->rdx, frame->rsi, frame->rdi, frame->rbp);
	if (len > (int)sizeof(line) - 1)
		len = sizeof(line) - 1;
	rt_kernel_write(line, len);
	rt_kernel_exit(RT_EXIT_CRASH);
}
