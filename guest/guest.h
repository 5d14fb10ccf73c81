/*
 * The lockstep guest runtime: what a guest program (guest/programs/NAME.c) may use.
 *
 * A program defines `int main(void)`.  The runtime boots the machine (multiboot entry, long
 * mode, descriptor tables, every CPU the ACPI MADT lists), then calls main() on CPU 0 at ring 3
 * and ends the VM with main's return value through the debug-exit port.  All program code runs
 * at ring 3, natively even where ring 0 is emulated; the runtime enters ring 0 only through the
 * few syscalls below (serial output, exit, HLT, IPIs, CPUID, port I/O, MSRs, a deliberate
 * triple fault).  ACPI power management (the power button, soft-off) is here too; spinlocks
 * and barriers, plain and paravirtual, are in the lock library, guest/locks.h.
 *
 * CPUs are numbered by index: 0 is the boot CPU, the others follow the MADT's order.  CPUs
 * other than 0 sit idle (halted) until work is posted to them with rt_post() or rt_on_cpu().
 * Code must stay on the stack it was started on: the current CPU is found from the stack
 * pointer.  Interrupts are enabled at ring 3.
 *
 * Conventions: results are printed as `result: key=value ...` lines; exit codes are
 * RT_EXIT_PASS (0), RT_EXIT_FAIL (1, a program's check failed), RT_EXIT_ERROR (2, runtime or
 * command-line error), RT_EXIT_CRASH (3, CPU exception).  Under QEMU's isa-debug-exit the
 * process status is (code << 1) | 1.
 */
#ifndef LOCKSTEP_GUEST_GUEST_H
#define LOCKSTEP_GUEST_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/rt/layout.h"
#include "pvlock/abi.h"

#define RT_EXIT_PASS 0
#define RT_EXIT_FAIL 1
#define RT_EXIT_ERROR 2
#define RT_EXIT_CRASH 3

#define RT_CACHE_LINE 64
#define RT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

int main(void);

/* ---- CPUs -------------------------------------------------------------------------------- */

unsigned rt_cpu_count(void);	       /* CPUs running (all of the MADT's, or `cpus=` of them) */
unsigned rt_cpu_apic_id(unsigned cpu); /* the APIC id the MADT gives that CPU */

/* This CPU's index, at ring 3 or ring 0: the per-CPU area's first word. */
static inline unsigned rt_cpu_index(void)
{
	uintptr_t sp;

	__asm__("mov %%rsp, %0" : "=r"(sp));
	return *(const uint32_t *)(sp & ~(uintptr_t)(RT_CPU_AREA_SIZE - 1));
}

/* ---- Work dispatch ----------------------------------------------------------------------- */

typedef void (*rt_work_fn)(void *arg);

/*
 * rt_post() queues fn(arg) on one CPU (never the caller's) and returns; the target wakes by IPI
 * if it sleeps.  A CPU holds one work item: posting to a busy CPU first waits for it.
 * rt_wait_done() waits (sleeping, not spinning) until that CPU finished what was posted.
 * rt_on_cpu() is post + wait, or a plain call when cpu is the caller's.
 * rt_on_each_cpu() runs fn(arg) on every CPU, the caller's included, and waits for all; call
 * it from CPU 0 (which runs main() and takes no posted work).  Each CPU takes work from one
 * poster at a time.
 */
void rt_post(unsigned cpu, rt_work_fn fn, void *arg);
void rt_wait_done(unsigned cpu);
void rt_on_cpu(unsigned cpu, rt_work_fn fn, void *arg);
void rt_on_each_cpu(rt_work_fn fn, void *arg);

/* ---- Waiting and waking ------------------------------------------------------------------ */

/*
 * Waits while *word == value: spins briefly (`spin_us=`, default 20 µs), then halts the CPU
 * until rt_wake(word), any interrupt, or timeout_ns (0 = none; approximate, LAPIC timer).  May
 * return early: callers loop on their condition.  Returns true if *word != value.
 * Idle CPUs must sleep: with more vCPUs than host CPUs a spinning vCPU takes the host CPU
 * from the one it waits for.
 */
bool rt_wait_while(const volatile uint32_t *word, uint32_t value, uint64_t timeout_ns);
/* Wakes every CPU sleeping on word.  Call after storing the new value. */
void rt_wake(const volatile uint32_t *word);
/* Wakes that one CPU if it sleeps on word: a targeted rt_wake (one IPI at most). */
void rt_wake_cpu(unsigned cpu, const volatile uint32_t *word);

struct rt_barrier {
	uint32_t parties;
	volatile uint32_t arrived;
	volatile uint32_t generation;
};

void rt_barrier_init(struct rt_barrier *barrier, unsigned parties);
void rt_barrier_wait(struct rt_barrier *barrier);

/* ---- Interrupts -------------------------------------------------------------------------- */

/*
 * Sends a fixed IPI (vector RT_VEC_USER_FIRST..RT_VEC_USER_LAST) to a CPU, possibly the
 * caller.  Every interrupt vector is counted per CPU by the ring-0 handler, which sends EOI;
 * rt_irq_count() reads the count.  IPIs of one vector merge while one is pending: wait for the
 * count to move before sending the next if each must arrive.
 */
void rt_send_ipi(unsigned cpu, unsigned vector);
uint32_t rt_irq_count(unsigned cpu, unsigned vector);
const volatile uint32_t *rt_irq_count_word(unsigned cpu, unsigned vector); /* to wait on */
/*
 * Vectors RT_VEC_TS_FIRST..RT_VEC_LEVEL_LAST: the TSC the handler read on entry to the last
 * one on that CPU (its fifth instruction; the count moves after it is stored).
 * RT_VEC_LEVEL_FIRST..LAST get no EOI from the handler: the program quiets the source, then
 * calls rt_irq_eoi() on the CPU that took the interrupt.
 */
uint64_t rt_irq_tsc(unsigned cpu, unsigned vector);
void rt_irq_eoi(void);

/* ---- Interrupt controllers and PCI ------------------------------------------------------- */

/*
 * The (first) IOAPIC, as the MADT places it: register access (IOREGSEL/IOWIN, from one CPU at
 * a time) and redirection entries.  rt_ioapic_route() writes the destination first, then the
 * low word (vector, delivery, trigger, mask), so the entry is never live half-written.
 */
uint32_t rt_ioapic_read(unsigned reg);
void rt_ioapic_write(unsigned reg, uint32_t value);
void rt_ioapic_route(unsigned pin, uint32_t low, uint8_t dest_apic_id);
uint64_t rt_ioapic_rte(unsigned pin);
#define RT_IOAPIC_MASKED (1u << 16)
#define RT_IOAPIC_LEVEL (1u << 15)
#define RT_IOAPIC_REMOTE_IRR (1u << 14)
#define RT_IOAPIC_ACTIVE_LOW (1u << 13)
#define RT_IOAPIC_LOGICAL (1u << 11)
#define RT_IOAPIC_LOWEST (1u << 8)

/*
 * PCI bus 0: configuration space through ECAM when the ACPI MCFG offers it (MMIO: any ring),
 * else through ports 0xCF8/0xCFC (ring 0, one syscall each).  Devices are named by slot
 * (function 0).  rt_pci_bar() is the address a BAR decodes at (memory or I/O), 0 if none.
 */
bool rt_pci_ecam(void);
uint32_t rt_pci_read(unsigned slot, unsigned off, unsigned width);
void rt_pci_write(unsigned slot, unsigned off, unsigned width, uint32_t value);
int rt_pci_find(uint16_t vendor, uint16_t device, unsigned nth); /* slot, or -1 */
uint64_t rt_pci_bar(unsigned slot, unsigned bar);
unsigned rt_pci_find_cap(unsigned slot, uint8_t id); /* offset, or 0 */

/* Local APIC register write (this CPU, at ring 0). */
void rt_apic_write(unsigned reg, uint32_t value);

/* ---- Time -------------------------------------------------------------------------------- */

static inline uint64_t rt_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* RDTSC that does not move before earlier instructions (for timing a sequence). */
static inline uint64_t rt_rdtsc_ordered(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

/* TSC kHz from lockstep's CPUID leaf, else calibrated against the LAPIC timer; 0 if unknown. */
uint64_t rt_tsc_khz(void);
uint64_t rt_cycles_to_ns(uint64_t cycles); /* assumes 1 GHz when the rate is unknown */
uint64_t rt_ns_to_cycles(uint64_t ns);

static inline void rt_pause(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

/* ---- Console, exit, command line ---------------------------------------------------------- */

int rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rt_vprintf(const char *fmt, va_list ap);
int rt_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
void rt_write(const char *buf, size_t len); /* raw COM1 output, one exit */

__attribute__((noreturn)) void rt_exit(int code);
/* Prints "panic: ..." and exits with RT_EXIT_ERROR. */
__attribute__((noreturn, format(printf, 1, 2))) void rt_panic(const char *fmt, ...);

/*
 * The multiboot command line is a list of words; `key=value` words are arguments (the last
 * one wins), others are ignored (QEMU puts the image path first).  Numbers are decimal or
 * 0x-hexadecimal; a malformed number is a fatal error.
 */
const char *rt_cmdline(void);
const char *rt_arg(const char *key); /* NULL if absent */
uint64_t rt_arg_u64(const char *key, uint64_t fallback);

/* ---- Power: the ACPI power button, soft-off, reset, crash ---------------------------------- */

/*
 * rt_power_button_enable() finds the FADT, switches legacy firmware into ACPI mode, routes the
 * SCI through the IOAPIC to CPU 0 and enables the fixed-feature power button.  False (with the
 * reason printed) when the platform lacks any of it.  Call it, and the two below, on CPU 0.
 * A press interrupts CPU 0 and moves rt_power_button_word(), which CPU 0 can rt_wait_while on;
 * rt_power_button_pressed() then says (and acknowledges) whether it was the power button.
 * A press made before rt_power_button_enable() is reported after it.
 */
bool rt_power_button_enable(void);
const volatile uint32_t *rt_power_button_word(void);
bool rt_power_button_pressed(void);

/*
 * rt_poweroff: ACPI soft-off (\_S5's SLP_TYP | SLP_EN to PM1a_CNT); where that is missing or
 * does nothing, exit 0 through the debug-exit port.  rt_reset: port 0xCF9 (then the keyboard
 * controller, then a triple fault).  rt_triple_fault: what a crashed kernel does; lockstep-vm
 * reports a guest crash, QEMU resets (or stops with -no-reboot).
 */
__attribute__((noreturn)) void rt_poweroff(void);
__attribute__((noreturn)) void rt_reset(void);
__attribute__((noreturn)) void rt_triple_fault(void);

/* ---- Lockstep ---------------------------------------------------------------------------- */

struct rt_lockstep {
	bool present; /* CPUID signature found: the doorbell may be used */
	uint32_t abi_version;
	uint32_t tsc_khz;
	uint64_t doorbell_gpa;
	volatile uint8_t *doorbell; /* identity-mapped doorbell page; NULL if absent */
	uint32_t features;	    /* LKS_FEATURE_* the host offers (0 without the leaf) */
	/* LKS_FEATURE_SCHED: the scheduling hints page (identity-mapped, read-only); or NULL */
	const volatile struct lks_sched_hints *hints;
};

const struct rt_lockstep *rt_lockstep(void);

/*
 * One doorbell call (pvlock/abi.h): an 8-byte read of doorbell + LKS_DB_CALL(nr) with the
 * arguments in RDI, RSI, RDX; the value read is the result.  Only when rt_lockstep()->present.
 * The early-clobber output keeps the address out of RAX.
 */
static inline int64_t rt_doorbell_call(const volatile uint8_t *doorbell, unsigned nr, uint64_t a0,
				       uint64_t a1, uint64_t a2)
{
	const volatile uint8_t *addr = doorbell + LKS_DB_CALL(nr);
	int64_t result;

	__asm__ __volatile__("movq (%[addr]), %%rax"
			     : "=&a"(result)
			     : [addr] "r"(addr), "D"(a0), "S"(a1), "d"(a2)
			     : "memory");
	return result;
}

static inline int64_t rt_lockstep_call(unsigned nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	return rt_doorbell_call(rt_lockstep()->doorbell, nr, a0, a1, a2);
}

/* ---- Ring-0 services --------------------------------------------------------------------- */

void rt_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]); /* executed at ring 0 */
uint32_t rt_pio_in(uint16_t port, unsigned width);		 /* width 1, 2 or 4 */
void rt_pio_out(uint16_t port, unsigned width, uint32_t value);
uint64_t rt_rdmsr(uint32_t msr);
void rt_wrmsr(uint32_t msr, uint64_t value);
uint32_t rt_apic_read(unsigned reg); /* this CPU's LAPIC, xAPIC register offset */
long rt_syscall_nop(void);	     /* the cheapest ring 3 -> 0 -> 3 round trip */

/* ---- Memory and small helpers ------------------------------------------------------------ */

/* Zeroed memory from RAM above the image; never freed.  Panics when RAM runs out. */
void *rt_alloc(size_t size, size_t align);

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* Sorts ascending; summarises samples (sorts them in place). */
void rt_sort_u64(uint64_t *values, size_t count);

struct rt_summary {
	uint64_t min, median, p99, max, mean;
};

void rt_summarize(uint64_t *values, size_t count, struct rt_summary *out);

#endif /* LOCKSTEP_GUEST_GUEST_H */
