/*
 * The lock domain: what every lock of a program shares.  It owns the per-CPU records that
 * kickers read to find a sleeper, the shared page each CPU publishes its lock activity in, and
 * the choice of how pv waiters sleep and are woken:
 *
 * - lockstep: LKS_CALL_WAIT on the lock word, woken by a kick, normally the 4-byte write of the
 *   target's vCPU number to doorbell + LKS_DB_KICK, which the host matches in the kernel
 *   (ioeventfd, ~2.6 µs here) without a trip to the VMM.  Chosen when a WAIT on a word that
 *   already changed answers LKS_WAIT_CHANGED.  The fast path is then proven by kicking our own
 *   vCPU and checking that the next WAIT returns LKS_WAIT_WOKEN; if it does not (no ioeventfd
 *   behind the write), kicks use LKS_CALL_KICK, and if that fails too, the runtime fallback.
 * - runtime: the guest runtime's HLT-based sleep (rt_wait_while) and its wake-up IPI
 *   (rt_wake_cpu), for QEMU and for hosts without lockstep's pv calls.
 *
 * lk_domain_new runs once on CPU 0 before other CPUs use locks; afterwards the domain is
 * read-only except for each CPU's own record (guest/locks/internal.h says who writes what).
 * With the lockstep backend on a host that offers LKS_FEATURE_SCHED, the domain also keeps
 * the host's scheduling hints page, which pv locks read at release points and while waiting.
 */
#include "guest/locks/internal.h"

#define KICK_PROBE_TIMEOUT_NS 200000000ull /* a kick that has not arrived by then never will */
#define PAGE_SIZE 4096

static void set_backend(struct lk_domain *domain, enum lk_backend backend, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_backend(struct lk_domain *domain, enum lk_backend backend, const char *fmt, ...)
{
	va_list ap;

	domain->backend = backend;
	va_start(ap, fmt);
	rt_vsnprintf(domain->reason, sizeof(domain->reason), fmt, ap);
	va_end(ap);
}

/*
 * The shared page (pvlock/abi.h): a header and one 64-byte slot per vCPU number, registered
 * with the host once.  Published to whether or not the host accepted it, so that pv locks
 * cost the same everywhere.
 */
static void shared_page_setup(struct lk_domain *domain, uint32_t max_vcpu)
{
	const struct rt_lockstep *ls = rt_lockstep();
	uint32_t slots = max_vcpu + 1;
	size_t size;

	if (slots > LKS_SHARED_MAX_VCPUS)
		slots = LKS_SHARED_MAX_VCPUS;
	size = sizeof(struct lks_shared_page) + slots * sizeof(struct lks_vcpu_pub);
	domain->shared = rt_alloc((size + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1), PAGE_SIZE);
	domain->shared->magic = LKS_SHARED_MAGIC;
	domain->shared->version = LKS_ABI_VERSION;
	domain->shared->nr_vcpus = slots;
	for (unsigned i = 0; i < domain->nr_cpus; i++) {
		struct lk_cpu *cpu = domain->cpu[i];

		cpu->pub =
			cpu->vcpu < slots ? &domain->shared->vcpu[cpu->vcpu] : &domain->spare_pub;
	}
	domain->shared_status = LKS_ENOSYS;
	if (ls->present)
		domain->shared_status = rt_doorbell_call(ls->doorbell, LKS_CALL_SHARED_SETUP,
							 (uintptr_t)domain->shared, size, 0);
}

static void kick_vcpu(const struct lk_domain *domain, uint32_t vcpu)
{
	if (domain->kick_by_call)
		rt_doorbell_call(domain->doorbell, LKS_CALL_KICK, vcpu, 0, 0);
	else
		*(volatile uint32_t *)(domain->doorbell + LKS_DB_KICK) = vcpu;
}

/* A kick to ourselves must end the next WAIT at once (the host keeps it for that WAIT). */
static bool self_kick_works(struct lk_domain *domain)
{
	volatile uint32_t word = 1;
	int64_t result;

	kick_vcpu(domain, lk_this_cpu(domain)->vcpu);
	result = rt_doorbell_call(domain->doorbell, LKS_CALL_WAIT, (uintptr_t)&word, 1,
				  KICK_PROBE_TIMEOUT_NS);
	return result == LKS_WAIT_WOKEN;
}

static void choose_backend(struct lk_domain *domain, const struct lk_config *config)
{
	const struct rt_lockstep *ls = rt_lockstep();
	volatile uint32_t word = 1;
	int64_t result;

	if (config->force_runtime) {
		set_backend(domain, LK_BACKEND_RUNTIME, "runtime fallback asked for");
		return;
	}
	if (!ls->present) {
		set_backend(domain, LK_BACKEND_RUNTIME, "no lockstep doorbell");
		return;
	}
	result = rt_doorbell_call(ls->doorbell, LKS_CALL_WAIT, (uintptr_t)&word, 0, 0);
	if (result != LKS_WAIT_CHANGED) {
		set_backend(domain, LK_BACKEND_RUNTIME, "lockstep WAIT probe returned %ld%s",
			    result, result == LKS_ENOSYS ? " (ENOSYS: host side missing)" : "");
		return;
	}
	domain->doorbell = ls->doorbell;
	if (self_kick_works(domain)) {
		set_backend(domain, LK_BACKEND_LOCKSTEP, "WAIT and in-kernel KICK");
		domain->hints = ls->hints; /* present with LKS_FEATURE_SCHED */
		return;
	}
	domain->kick_by_call = true;
	if (self_kick_works(domain)) {
		set_backend(domain, LK_BACKEND_LOCKSTEP,
			    "WAIT, KICK by call (the write kick failed)");
		domain->hints = ls->hints;
		return;
	}
	domain->kick_by_call = false;
	set_backend(domain, LK_BACKEND_RUNTIME, "lockstep KICK did not end a WAIT");
}

struct lk_domain *lk_domain_new(const struct lk_config *config)
{
	static const struct lk_config defaults = { 0 };
	struct lk_domain *domain = rt_alloc(sizeof(*domain), RT_CACHE_LINE);
	uint32_t max_vcpu = 0;

	if (!config)
		config = &defaults;
	domain->spin_threshold = config->spin_threshold ? config->spin_threshold : LK_DEFAULT_SPIN;
	domain->wait_timeout_ns = config->wait_timeout_ns;
	domain->prewake = config->prewake;
	domain->wake_ahead = config->wake_ahead;
	domain->nr_cpus = rt_cpu_count();
	for (unsigned i = 0; i < domain->nr_cpus; i++) {
		struct lk_cpu *cpu = rt_alloc(sizeof(*cpu), RT_CACHE_LINE);

		cpu->index = i;
		cpu->vcpu = rt_cpu_apic_id(i);
		if (cpu->vcpu > max_vcpu)
			max_vcpu = cpu->vcpu;
		domain->cpu[i] = cpu;
	}
	shared_page_setup(domain, max_vcpu);
	choose_backend(domain, config);
	return domain;
}

void lk_sleep(const struct lk_domain *domain, struct lk_cpu *me, const volatile uint32_t *word,
	      uint32_t value)
{
	int64_t result;

	me->stats.sleeps++;
	if (domain->backend == LK_BACKEND_RUNTIME) {
		rt_wait_while(word, value, domain->wait_timeout_ns);
		return;
	}
	result = rt_doorbell_call(domain->doorbell, LKS_CALL_WAIT, (uintptr_t)word, value,
				  domain->wait_timeout_ns);
	switch (result) {
	case LKS_WAIT_CHANGED:
		me->stats.changed++;
		break;
	case LKS_WAIT_WOKEN:
		me->stats.woken++;
		break;
	case LKS_WAIT_TIMEOUT:
		me->stats.timeouts++;
		break;
	default:
		me->stats.errors++;
		break;
	}
}

void lk_switch(const struct lk_domain *domain, struct lk_cpu *me)
{
	if (rt_doorbell_call(domain->doorbell, LKS_CALL_SWITCH, 0, 0, 0) == LKS_SWITCH_DONE)
		me->stats.switches++;
}

void lk_yield_to(const struct lk_domain *domain, struct lk_cpu *me, const struct lk_cpu *target)
{
	rt_doorbell_call(domain->doorbell, LKS_CALL_YIELD_TO, target->vcpu, 0, 0);
	me->stats.yields++;
}

bool lk_kick_sleeper(const struct lk_domain *domain, struct lk_cpu *me, struct lk_cpu *target,
		     volatile uint32_t *state, const volatile uint32_t *word)
{
	uint32_t sleeping = LK_SLEEPING;

	if (*state != LK_SLEEPING)
		return false;
	if (domain->backend == LK_BACKEND_RUNTIME) {
		rt_wake_cpu(target->index, word);
	} else {
		if (!__atomic_compare_exchange_n(state, &sleeping, LK_RUNNING, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			return false; /* someone else claimed it: their kick is on its way */
		kick_vcpu(domain, target->vcpu);
	}
	me->stats.kicks++;
	return true;
}

enum lk_backend lk_backend(const struct lk_domain *domain)
{
	return domain->backend;
}

const char *lk_backend_name(const struct lk_domain *domain)
{
	return domain->backend == LK_BACKEND_LOCKSTEP ? "lockstep" : "runtime";
}

const char *lk_backend_reason(const struct lk_domain *domain)
{
	return domain->reason;
}

const char *lk_kick_method(const struct lk_domain *domain)
{
	if (domain->backend == LK_BACKEND_RUNTIME)
		return "ipi";
	return domain->kick_by_call ? "call" : "ioeventfd";
}

uint32_t lk_spin_threshold(const struct lk_domain *domain)
{
	return domain->spin_threshold;
}

int64_t lk_shared_page_status(const struct lk_domain *domain)
{
	return domain->shared_status;
}

void lk_stats(const struct lk_domain *domain, unsigned cpu, struct lk_stats *out)
{
	*out = cpu < domain->nr_cpus ? domain->cpu[cpu]->stats : (struct lk_stats){ 0 };
}
