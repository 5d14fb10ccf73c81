/*
 * pvtest: lockstep's paravirtual call ABI (pvlock/abi.h), checked from the guest.
 *
 * Each check prints `pvtest: NAME ok` or `pvtest: NAME FAIL (why)` and is independent of the
 * others, so a host that implements part of the ABI shows exactly which part:
 *
 *   probe, nop, time         PROBE's value, NOP's 0, TIME_NS moving forward
 *   wait_changed             WAIT on a word that already changed: LKS_WAIT_CHANGED at once
 *   wait_timeout             WAIT with a 20 ms timeout: LKS_WAIT_TIMEOUT after about that
 *   kick_before_wait_call    a KICK call to ourselves, then WAIT: LKS_WAIT_WOKEN at once
 *   kick_before_wait_write   the same through the in-kernel fast path (the LKS_DB_KICK write)
 *   kick_cross_before_wait   CPU 1 kicks CPU 0 before CPU 0 waits: the kick is kept
 *   kick_wakes_sleeper       CPU 1 kicks CPU 0 while it sleeps in WAIT
 *   race                     CPUs 0 and 1 hand a counter back and forth `iterations=` times
 *                            (default 2000); each side stores, then kicks; the other checks,
 *                            then WAITs on what it saw with a 1 s timeout.  Zero timeouts.
 *   yield_to                 YIELD_TO another vCPU succeeds
 *   bad_*                    malformed calls return the documented errors and the VM runs
 *                            on: unknown call numbers, KICK/YIELD_TO of vCPU 1000, WAIT on a
 *                            misaligned or non-RAM address, SHARED_SETUP with a bad size or
 *                            address, odd-sized and misplaced doorbell accesses
 *   shared_setup             a valid shared page is accepted
 *   sched_feature            LKS_FEATURE_SCHED: the hints page is there (magic, vCPU count),
 *                            not multiplexed, nobody gated or asked to switch
 *   switch_not_asked         SWITCH without a request returns LKS_SWITCH_NOT_ASKED at once
 *   hints_read_only          a write to the hints page changes nothing
 *   alive                    PROBE still answers after all of the above
 *
 *   result: program=pvtest cpus=N checks=C failed=F ok=1
 *
 * Without lockstep (QEMU) the doorbell is absent: nothing is touched, ok=1.  Exit 0 iff every
 * check passed.  Cross-CPU checks need 2 CPUs and are skipped with 1.
 */
#include "guest/guest.h"

#define MS 1000000ul
#define PROMPT_NS (100 * MS)	 /* "at once", with room for a busy host */
#define RACE_WAIT_NS (1000 * MS) /* a lost wake-up in the race shows as this timeout */
#define NOT_RAM_GPA (1ul << 40)	 /* 1 TiB: beyond any test VM's RAM */
#define BAD_VCPU 1000
#define UNKNOWN_CALL (LKS_DB_CALL_LIMIT / 8 - 1)

struct pvtest {
	volatile uint8_t *db;
	unsigned checks, failed;
	uint32_t vcpu0, vcpu1;
	volatile uint32_t word __attribute__((aligned(RT_CACHE_LINE)));
	volatile uint32_t ping __attribute__((aligned(RT_CACHE_LINE)));
	volatile uint32_t pong __attribute__((aligned(RT_CACHE_LINE)));
	volatile uint32_t signal __attribute__((aligned(RT_CACHE_LINE)));
	uint64_t race_iterations;
	uint64_t race_timeouts[2], race_errors[2];
};

static void check(struct pvtest *t, const char *name, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void check(struct pvtest *t, const char *name, bool ok, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	t->checks++;
	t->failed += !ok;
	va_start(ap, fmt);
	rt_vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (ok)
		rt_printf("pvtest: %s ok (%s)\n", name, why);
	else
		rt_printf("pvtest: %s FAIL (%s)\n", name, why);
}

static int64_t call(struct pvtest *t, unsigned nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	return rt_doorbell_call(t->db, nr, a0, a1, a2);
}

static void kick_write(struct pvtest *t, uint32_t vcpu)
{
	*(volatile uint32_t *)(t->db + LKS_DB_KICK) = vcpu;
}

static uint64_t ns_since(uint64_t tsc)
{
	return rt_cycles_to_ns(rt_rdtsc() - tsc);
}

/* Consumes a kick left over from an earlier check, so that the next WAIT starts clean. */
static void drain_kicks(struct pvtest *t)
{
	for (int i = 0; i < 3; i++)
		if (call(t, LKS_CALL_WAIT, (uintptr_t)&t->word, t->word, 1 * MS) != LKS_WAIT_WOKEN)
			return;
}

/* WAIT on t->word (unchanged), expecting `want` within `limit_ns`. */
static void check_wait(struct pvtest *t, const char *name, int64_t want, uint64_t timeout_ns,
		       uint64_t min_ns, uint64_t limit_ns)
{
	uint64_t start = rt_rdtsc(), took;
	int64_t result = call(t, LKS_CALL_WAIT, (uintptr_t)&t->word, t->word, timeout_ns);

	took = ns_since(start);
	check(t, name, result == want && took >= min_ns && took <= limit_ns,
	      "returned %ld after %lu us; expected %ld in %lu-%lu us", result, took / 1000, want,
	      min_ns / 1000, limit_ns / 1000);
}

static void check_basics(struct pvtest *t)
{
	int64_t probe = call(t, LKS_CALL_PROBE, 0, 0, 0), t0, t1;
	uint64_t start;
	int64_t result;

	check(t, "probe", (uint64_t)probe == LKS_PROBE_VALUE, "%#lx", probe);
	check(t, "nop", call(t, LKS_CALL_NOP, 0, 0, 0) == 0, "NOP");
	t0 = call(t, LKS_CALL_TIME_NS, 0, 0, 0);
	t1 = call(t, LKS_CALL_TIME_NS, 0, 0, 0);
	check(t, "time", t0 > 0 && t1 >= t0, "%ld then %ld", t0, t1);

	t->word = 7;
	start = rt_rdtsc();
	result = call(t, LKS_CALL_WAIT, (uintptr_t)&t->word, 6, 1000 * MS);
	check(t, "wait_changed", result == LKS_WAIT_CHANGED && ns_since(start) < PROMPT_NS,
	      "returned %ld after %lu us", result, ns_since(start) / 1000);
	drain_kicks(t);
	check_wait(t, "wait_timeout", LKS_WAIT_TIMEOUT, 20 * MS, 15 * MS, 1000 * MS);

	result = call(t, LKS_CALL_KICK, t->vcpu0, 0, 0);
	check_wait(t, "kick_before_wait_call", LKS_WAIT_WOKEN, 2000 * MS, 0, PROMPT_NS);
	drain_kicks(t);
	kick_write(t, t->vcpu0);
	check_wait(t, "kick_before_wait_write", LKS_WAIT_WOKEN, 2000 * MS, 0, PROMPT_NS);
	drain_kicks(t);
}

static void kick_cpu0_now(void *arg)
{
	struct pvtest *t = arg;

	kick_write(t, t->vcpu0);
}

static void kick_cpu0_later(void *arg)
{
	struct pvtest *t = arg;

	rt_wait_while(&t->signal, t->signal, 20 * MS); /* let CPU 0 fall asleep first */
	kick_write(t, t->vcpu0);
}

static void check_cross_cpu_kicks(struct pvtest *t)
{
	rt_on_cpu(1, kick_cpu0_now, t);
	check_wait(t, "kick_cross_before_wait", LKS_WAIT_WOKEN, 2000 * MS, 0, PROMPT_NS);
	drain_kicks(t);
	rt_post(1, kick_cpu0_later, t);
	check_wait(t, "kick_wakes_sleeper", LKS_WAIT_WOKEN, 2000 * MS, 0, 1000 * MS);
	rt_wait_done(1);
	drain_kicks(t);
}

/*
 * One side of the race: wait until *in reaches `value`, checking first and then WAITing on
 * what was seen, as a pv lock does.  Kicks alternate between the write and the call.
 */
static void race_wait(struct pvtest *t, unsigned side, volatile uint32_t *in, uint32_t value)
{
	for (;;) {
		uint32_t seen = __atomic_load_n(in, __ATOMIC_ACQUIRE);
		int64_t result;

		if (seen == value)
			return;
		result = call(t, LKS_CALL_WAIT, (uintptr_t)in, seen, RACE_WAIT_NS);
		if (result == LKS_WAIT_TIMEOUT)
			t->race_timeouts[side]++;
		else if (result < 0 && ++t->race_errors[side] > 10)
			return; /* WAIT is broken: stop rather than spin */
	}
}

static void race_post(struct pvtest *t, volatile uint32_t *out, uint32_t value, uint32_t vcpu)
{
	__atomic_store_n(out, value, __ATOMIC_SEQ_CST);
	if (value & 1)
		call(t, LKS_CALL_KICK, vcpu, 0, 0);
	else
		kick_write(t, vcpu);
}

static void race_responder(void *arg)
{
	struct pvtest *t = arg;

	for (uint32_t i = 1; i <= t->race_iterations; i++) {
		race_wait(t, 1, &t->ping, i);
		race_post(t, &t->pong, i, t->vcpu0);
	}
}

static void check_race(struct pvtest *t)
{
	uint64_t start = rt_rdtsc();

	t->ping = 0;
	t->pong = 0;
	rt_post(1, race_responder, t);
	for (uint32_t i = 1; i <= t->race_iterations; i++) {
		race_post(t, &t->ping, i, t->vcpu1);
		race_wait(t, 0, &t->pong, i);
	}
	rt_wait_done(1);
	check(t, "race",
	      t->pong == t->race_iterations && !t->race_timeouts[0] && !t->race_timeouts[1] &&
		      !t->race_errors[0] && !t->race_errors[1],
	      "%u of %lu round trips in %lu ms, %lu+%lu timeouts, %lu+%lu errors", t->pong,
	      t->race_iterations, ns_since(start) / MS, t->race_timeouts[0], t->race_timeouts[1],
	      t->race_errors[0], t->race_errors[1]);
	drain_kicks(t);
}

static void check_result(struct pvtest *t, const char *name, int64_t result, int64_t want)
{
	check(t, name, result == want, "returned %ld, expected %ld", result, want);
}

static void check_error(struct pvtest *t, const char *name, int64_t result)
{
	check(t, name, result < 0, "returned %ld, expected an error", result);
}

static void check_malformed(struct pvtest *t)
{
	uintptr_t word = (uintptr_t)&t->word;
	uint32_t short_read;
	int64_t probe;

	check_result(t, "bad_call_nr", call(t, LKS_CALL_NR, 0, 0, 0), LKS_ENOSYS);
	check_result(t, "bad_call_last", call(t, UNKNOWN_CALL, 0, 0, 0), LKS_ENOSYS);
	check_result(t, "bad_kick_vcpu", call(t, LKS_CALL_KICK, BAD_VCPU, 0, 0), LKS_EINVAL);
	check_result(t, "bad_yield_vcpu", call(t, LKS_CALL_YIELD_TO, BAD_VCPU, 0, 0), LKS_EINVAL);
	check_result(t, "bad_wait_misaligned", call(t, LKS_CALL_WAIT, word + 1, 0, MS), LKS_EINVAL);
	check_result(t, "bad_wait_not_ram", call(t, LKS_CALL_WAIT, NOT_RAM_GPA, 0, MS), LKS_EFAULT);
	check_result(t, "bad_wait_mmio", call(t, LKS_CALL_WAIT, (uintptr_t)t->db, 0, MS),
		     LKS_EFAULT);
	check_error(t, "bad_shared_size_0", call(t, LKS_CALL_SHARED_SETUP, word, 0, 0));
	check_error(t, "bad_shared_size_huge",
		    call(t, LKS_CALL_SHARED_SETUP, RT_IMAGE_BASE, 1ull << 40, 0));
	check_error(t, "bad_shared_not_ram",
		    call(t, LKS_CALL_SHARED_SETUP, NOT_RAM_GPA, LKS_DOORBELL_SIZE, 0));
	check_error(t, "bad_shared_wraps", call(t, LKS_CALL_SHARED_SETUP, ~0ull - 63, 4096, 0));

	/*
	 * Accesses that are not calls.  8-byte reads between or past the call registers answer
	 * LKS_EINVAL (vm/doorbell.c); what a 4-byte read of a call register returns is not
	 * specified, only that it performs no call and harms nothing.  Writes to call registers
	 * and a kick of a vCPU that does not exist are dropped.
	 */
	check_result(t, "bad_read_unaligned", *(volatile int64_t *)(t->db + 4), LKS_EINVAL);
	check_result(t, "bad_read_past_calls", *(volatile int64_t *)(t->db + LKS_DB_CALL_LIMIT),
		     LKS_EINVAL);
	short_read = *(volatile uint32_t *)(t->db + LKS_DB_CALL(LKS_CALL_PROBE));
	*(volatile uint64_t *)(t->db + LKS_DB_CALL(LKS_CALL_NOP)) = 0;
	*(volatile uint32_t *)(t->db + LKS_DB_CALL(LKS_CALL_PROBE)) = 0;
	kick_write(t, BAD_VCPU);
	probe = call(t, LKS_CALL_PROBE, 0, 0, 0);
	check(t, "bad_accesses_survived", (uint64_t)probe == LKS_PROBE_VALUE,
	      "4-byte read gave %#x; PROBE after stray writes: %#lx", short_read, probe);
}

static void check_valid_setup(struct pvtest *t)
{
	size_t size = sizeof(struct lks_shared_page) + rt_cpu_count() * sizeof(struct lks_vcpu_pub);
	struct lks_shared_page *page = rt_alloc(4096, 4096);

	page->magic = LKS_SHARED_MAGIC;
	page->version = LKS_ABI_VERSION;
	page->nr_vcpus = rt_cpu_count();
	check_result(t, "shared_setup", call(t, LKS_CALL_SHARED_SETUP, (uintptr_t)page, size, 0),
		     0);
	if (rt_cpu_count() > 1)
		check_result(t, "yield_to", call(t, LKS_CALL_YIELD_TO, t->vcpu1, 0, 0), 0);
}

/* The multiplexer's side of the ABI, on a VM that nothing multiplexes (lockstep-vm alone). */
static void check_sched_feature(struct pvtest *t)
{
	const struct rt_lockstep *ls = rt_lockstep();
	const volatile struct lks_sched_hints *h = ls->hints;
	uint32_t any = 0, before;

	check(t, "sched_feature",
	      (ls->features & LKS_FEATURE_SCHED) && h && h->magic == LKS_HINTS_MAGIC &&
		      h->nr_vcpus >= rt_cpu_count(),
	      "features %#x, hints page %p magic %#x for %u vCPUs", ls->features, (void *)h,
	      h ? h->magic : 0, h ? h->nr_vcpus : 0);
	if (!h)
		return;
	for (unsigned i = 0; i < LKS_HINT_WORDS; i++)
		any |= h->gated[i] | h->switch_req[i];
	check(t, "sched_idle", !h->multiplexed && !any, "multiplexed %u, bits %#x", h->multiplexed,
	      any);
	check_result(t, "switch_not_asked", call(t, LKS_CALL_SWITCH, 0, 0, 0),
		     LKS_SWITCH_NOT_ASKED);
	/* Mapped read-only: the write exits to the VMM, which drops it (an unassigned write). */
	before = h->reserved[0];
	*(volatile uint32_t *)&h->reserved[0] = before ^ 0x5a5a5a5a;
	check(t, "hints_read_only", h->reserved[0] == before, "%#x became %#x", before,
	      h->reserved[0]);
}

int main(void)
{
	const struct rt_lockstep *ls = rt_lockstep();
	struct pvtest *t = rt_alloc(sizeof(*t), RT_CACHE_LINE);
	unsigned cpus = rt_cpu_count();
	int64_t probe;

	if (!ls->present) {
		rt_printf("pvtest: lockstep doorbell absent (no lockstep CPUID signature): "
			  "nothing to test\n");
		rt_printf("result: program=pvtest cpus=%u doorbell=absent checks=0 failed=0 ok=1\n",
			  cpus);
		return RT_EXIT_PASS;
	}
	t->db = ls->doorbell;
	t->vcpu0 = rt_cpu_apic_id(0);
	t->vcpu1 = cpus > 1 ? rt_cpu_apic_id(1) : t->vcpu0;
	t->race_iterations = rt_arg_u64("iterations", 2000);
	check_basics(t);
	if (cpus > 1) {
		check_cross_cpu_kicks(t);
		check_race(t);
	} else {
		rt_printf("pvtest: one CPU: cross-CPU checks skipped\n");
	}
	check_malformed(t);
	check_valid_setup(t);
	check_sched_feature(t);
	probe = call(t, LKS_CALL_PROBE, 0, 0, 0);
	check(t, "alive", (uint64_t)probe == LKS_PROBE_VALUE, "PROBE %#lx", probe);
	rt_printf("result: program=pvtest cpus=%u doorbell=present checks=%u failed=%u ok=%d\n",
		  cpus, t->checks, t->failed, !t->failed);
	return t->failed ? RT_EXIT_FAIL : RT_EXIT_PASS;
}
