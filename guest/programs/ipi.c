/*
 * ipi: fixed IPIs between every ordered pair of CPUs, the pairs (s, s) included unless
 * `self=0`; `rounds=` (default 20) per pair.  IPIs of one vector merge while one is pending, so
 * the sender waits for each to be acknowledged, i.e. for the receiver's ring-0 handler to
 * have counted it, before sending the next.  At the end every receiver's count must equal
 * exactly what was sent to it.
 *
 *   result: program=ipi cpus=N rounds=R pairs=P sent=S delivered=D timeouts=0 ack_ns_median=...
 *           elapsed_us=... ipis_per_s=...   (all pairs, one after the other, as a throughput)
 *
 * Exit 0 when every IPI was acknowledged and the counts match, 1 otherwise.
 */
#include "guest/guest.h"

#define IPI_VECTOR 0x60
#define ACK_TIMEOUT_NS 1000000000ull
#define ACK_SLEEP_NS 100000 /* sleep granularity while waiting: gives the host CPU away */

struct ipi_test {
	unsigned cpus;
	uint64_t rounds;
	unsigned receiver; /* of the pair being run, set by CPU 0 before posting */
	uint32_t *sent;	   /* [sender * cpus + receiver] */
	uint32_t timeouts;
	uint64_t *ack_cycles; /* one sample per IPI */
	volatile uint32_t samples;
};

/* The count moves when the receiver's handler ran; sleeping in between frees the host CPU. */
static bool wait_ack(unsigned receiver, uint32_t before, uint64_t deadline_cycles)
{
	const volatile uint32_t *count = rt_irq_count_word(receiver, IPI_VECTOR);

	while (*count == before) {
		if (rt_rdtsc() >= deadline_cycles)
			return false;
		rt_wait_while(count, before, ACK_SLEEP_NS);
	}
	return true;
}

static void send_ipis(void *arg)
{
	struct ipi_test *test = arg;
	unsigned sender = rt_cpu_index(), receiver = test->receiver;

	for (uint64_t round = 0; round < test->rounds; round++) {
		uint32_t before = rt_irq_count(receiver, IPI_VECTOR);
		uint64_t start = rt_rdtsc_ordered();

		rt_send_ipi(receiver, IPI_VECTOR);
		test->sent[sender * test->cpus + receiver]++;
		if (!wait_ack(receiver, before, start + rt_ns_to_cycles(ACK_TIMEOUT_NS))) {
			rt_printf("cpu %u -> cpu %u: IPI %lu not acknowledged\n", sender, receiver,
				  round);
			__atomic_add_fetch(&test->timeouts, 1, __ATOMIC_RELAXED);
			return;
		}
		test->ack_cycles[test->samples++] = rt_rdtsc_ordered() - start;
	}
}

int main(void)
{
	struct ipi_test *test = rt_alloc(sizeof(*test), RT_CACHE_LINE);
	unsigned cpus = rt_cpu_count(), pairs = 0;
	bool self = rt_arg_u64("self", 1);
	uint32_t *before = rt_alloc(cpus * sizeof(*before), RT_CACHE_LINE);
	uint64_t sent = 0, delivered = 0, start, elapsed_ns;
	struct rt_summary ack;
	bool ok = true;

	test->cpus = cpus;
	test->rounds = rt_arg_u64("rounds", 20);
	test->sent = rt_alloc(cpus * cpus * sizeof(*test->sent), RT_CACHE_LINE);
	test->ack_cycles = rt_alloc(cpus * cpus * test->rounds * sizeof(uint64_t), RT_CACHE_LINE);
	for (unsigned cpu = 0; cpu < cpus; cpu++)
		before[cpu] = rt_irq_count(cpu, IPI_VECTOR);

	start = rt_rdtsc();
	for (unsigned receiver = 0; receiver < cpus; receiver++) {
		for (unsigned sender = 0; sender < cpus; sender++) {
			if (sender == receiver && !self)
				continue;
			test->receiver = receiver;
			rt_on_cpu(sender, send_ipis, test);
			pairs++;
		}
	}
	elapsed_ns = rt_cycles_to_ns(rt_rdtsc() - start);

	for (unsigned receiver = 0; receiver < cpus; receiver++) {
		uint32_t got = rt_irq_count(receiver, IPI_VECTOR) - before[receiver], want = 0;

		for (unsigned sender = 0; sender < cpus; sender++)
			want += test->sent[sender * cpus + receiver];
		rt_printf("cpu %u: received=%u sent_to_it=%u%s\n", receiver, got, want,
			  got == want ? "" : "  MISMATCH");
		ok &= got == want;
		sent += want;
		delivered += got;
	}
	ok &= test->timeouts == 0;
	rt_summarize(test->ack_cycles, test->samples, &ack);
	rt_printf(
		"result: program=ipi cpus=%u rounds=%lu pairs=%u sent=%lu delivered=%lu "
		"timeouts=%u ack_ns_median=%lu ack_ns_p99=%lu elapsed_us=%lu ipis_per_s=%lu ok=%d\n",
		cpus, test->rounds, pairs, sent, delivered, test->timeouts,
		rt_cycles_to_ns(ack.median), rt_cycles_to_ns(ack.p99), elapsed_ns / 1000,
		elapsed_ns ? delivered * 1000000000ul / elapsed_ns : 0, ok);
	return ok ? RT_EXIT_PASS : RT_EXIT_FAIL;
}
