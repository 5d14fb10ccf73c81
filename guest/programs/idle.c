/*
 * idle: a machine that does nothing until it is told to stop, for lockstepd's lifecycle tests
 * (run until shut down, crash, reboot, stream console output).
 *
 * It boots, enables the ACPI power button, prints `idle: ready cpus=N` and then sleeps: the
 * other CPUs halt in the runtime's idle loop, CPU 0 halts in rt_wait_while on the power
 * button's interrupt count, bounded by the next timed event.  It ends on the first of:
 *
 *   the power button      prints `idle: power button`, ACPI soft-off (lockstep-vm: exit 0,
 *                         reason guest-poweroff; QEMU: exits 0)
 *   exit_after_ms=N       debug-exit 0, after `result: program=idle ... reason=exit`
 *   crash_after_ms=N      a triple fault (lockstep-vm exits 80)
 *   reset_after_ms=N      port 0xCF9 reset (lockstep-vm exits 0, reason guest-reset)
 *
 * and with heartbeat_ms=N prints `idle: heartbeat K` (K = 1, 2, ...) every N ms meanwhile.
 * With echo_ms=N it reads what is typed on COM1 every N ms (polling its line status) and
 * prints each line back as `idle: echo LINE` (lines end at CR or LF; at most 200 bytes): a
 * guest for the interactive console's tests.  Times count from the ready line.  Without any of
 * these it waits for the button for ever.
 *
 * ignore_power=1 makes it a guest that does not heed the power button: each press is
 * acknowledged and printed (`idle: power button ignored`), and the machine runs on, so a
 * shutdown through the button times out (lockstepd's vm.shutdown, QEMU's system_powerdown)
 * and only a destroy or the timed events stop it.
 */
#include "guest/guest.h"

#define NS_PER_MS 1000000ull
#define NEVER UINT64_MAX
#define COM1_DATA 0x3f8
#define COM1_LSR 0x3fd
#define LSR_DR 0x01
#define ECHO_LINE_MAX 200

struct idle_plan {
	bool ignore_power;
	uint64_t exit_at, crash_at, reset_at; /* TSC deadlines, NEVER if not asked for */
	uint64_t heartbeat_cycles;	      /* 0 = no heartbeat */
	uint64_t next_heartbeat;
	uint64_t heartbeats;
	uint64_t echo_cycles; /* 0 = no echo */
	uint64_t next_echo;
	char line[ECHO_LINE_MAX + 1];
	unsigned line_len;
};

/* Takes what COM1 received; prints each complete line. */
static void echo_input(struct idle_plan *plan)
{
	while (rt_pio_in(COM1_LSR, 1) & LSR_DR) {
		char c = (char)rt_pio_in(COM1_DATA, 1);

		if (c == '\r' || c == '\n') {
			if (!plan->line_len)
				continue;
			plan->line[plan->line_len] = '\0';
			rt_printf("idle: echo %s\n", plan->line);
			plan->line_len = 0;
		} else if (plan->line_len < ECHO_LINE_MAX) {
			plan->line[plan->line_len++] = c;
		}
	}
}

static uint64_t deadline_from(uint64_t now, const char *key)
{
	uint64_t ms = rt_arg_u64(key, 0);

	return rt_arg(key) ? now + rt_ns_to_cycles(ms * NS_PER_MS) : NEVER;
}

static uint64_t earliest(const struct idle_plan *plan)
{
	uint64_t next = plan->exit_at;

	if (plan->crash_at < next)
		next = plan->crash_at;
	if (plan->reset_at < next)
		next = plan->reset_at;
	if (plan->heartbeat_cycles && plan->next_heartbeat < next)
		next = plan->next_heartbeat;
	if (plan->echo_cycles && plan->next_echo < next)
		next = plan->next_echo;
	return next;
}

/* Acts on whatever is due at `now`; returns only if the machine is to keep running. */
static void run_due(struct idle_plan *plan, uint64_t now)
{
	if (plan->heartbeat_cycles && now >= plan->next_heartbeat) {
		rt_printf("idle: heartbeat %lu\n", ++plan->heartbeats);
		plan->next_heartbeat += plan->heartbeat_cycles;
		if (plan->next_heartbeat <= now) /* fell behind (host preemption): skip, no burst */
			plan->next_heartbeat = now + plan->heartbeat_cycles;
	}
	if (plan->echo_cycles && now >= plan->next_echo) {
		echo_input(plan);
		plan->next_echo = now + plan->echo_cycles;
	}
	if (now >= plan->crash_at) {
		rt_printf("idle: crash (triple fault)\n");
		rt_triple_fault();
	}
	if (now >= plan->reset_at) {
		rt_printf("idle: reset\n");
		rt_reset();
	}
	if (now >= plan->exit_at) {
		rt_printf("result: program=idle cpus=%u reason=exit heartbeats=%lu\n",
			  rt_cpu_count(), plan->heartbeats);
		rt_exit(RT_EXIT_PASS);
	}
}

int main(void)
{
	struct idle_plan plan = { 0 };
	bool button = rt_power_button_enable();
	const volatile uint32_t *sci = rt_power_button_word();
	uint64_t now;

	if (!button)
		rt_printf("idle: no ACPI power button: only the timed events can stop this\n");
	now = rt_rdtsc();
	plan.ignore_power = rt_arg_u64("ignore_power", 0) != 0;
	plan.exit_at = deadline_from(now, "exit_after_ms");
	plan.crash_at = deadline_from(now, "crash_after_ms");
	plan.reset_at = deadline_from(now, "reset_after_ms");
	plan.heartbeat_cycles = rt_ns_to_cycles(rt_arg_u64("heartbeat_ms", 0) * NS_PER_MS);
	plan.next_heartbeat = now + plan.heartbeat_cycles;
	plan.echo_cycles = rt_ns_to_cycles(rt_arg_u64("echo_ms", 0) * NS_PER_MS);
	plan.next_echo = now;
	rt_printf("idle: ready cpus=%u power_button=%s\n", rt_cpu_count(),
		  button ? "acpi" : "none");

	for (;;) {
		uint32_t seen = *sci;
		uint64_t next;

		if (button && rt_power_button_pressed()) {
			rt_printf("idle: power button%s\n", plan.ignore_power ? " ignored" : "");
			if (!plan.ignore_power)
				rt_poweroff();
		}
		now = rt_rdtsc();
		run_due(&plan, now);
		next = earliest(&plan);
		/* 0 = no timeout: only the button (or a stray interrupt) wakes CPU 0. */
		rt_wait_while(sci, seen, next == NEVER ? 0 : rt_cycles_to_ns(next - now) + 1);
	}
}
