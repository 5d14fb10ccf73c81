/*
 * The paravirtual lock calls without KVM: guest memory is a buffer, a vCPU thread's sleep is
 * a poll() on its kick eventfd.  Checks the ABI's promises: WAIT returns at once when the word
 * changed, times out, and never loses a kick (one sent before the WAIT wakes it; a kick racing
 * with the check is caught); malformed calls get the documented errors; SHARED_SETUP checks
 * what the guest registers, and a reader never pairs one registration's page with another's
 * slot count while vCPUs re-register; counters count.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "pvlock/pvlock.h"
#include "util/util.h"

#define RAM_SIZE (1u << 20)
#define WORD_GPA 0x1000u

struct fake_guest {
	_Alignas(4096) uint8_t ram[RAM_SIZE];
};

static void *guest_ptr(void *opaque, uint64_t gpa, uint64_t len)
{
	struct fake_guest *g = opaque;

	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return g->ram + gpa;
}

static int sleep_on(void *opaque, uint32_t vcpu, int fd, uint64_t timeout_ns)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret = poll(&pfd, 1, timeout_ns ? (int)(timeout_ns / 1000000) : -1);

	return ret > 0 ? 1 : 0;
}

static struct fake_guest guest;

static struct pvlock_vm *make(uint32_t vcpus)
{
	const struct pvlock_env env = { .opaque = &guest,
					.guest_ptr = guest_ptr,
					.sleep = sleep_on };
	struct pvlock_vm *pv;

	memset(&guest, 0, sizeof(guest));
	assert_int_equal(pvlock_vm_new(&env, NULL, vcpus, LKS_DOORBELL_GPA_DEFAULT, &pv), 0);
	return pv;
}

static uint32_t *word(void)
{
	return (uint32_t *)(guest.ram + WORD_GPA);
}

static void wait_changed_and_timeout(void **state)
{
	struct pvlock_vm *pv = make(2);
	struct pvlock_vcpu_calls c;
	uint64_t t0;

	*word() = 7;
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_WAIT, WORD_GPA, 6, 0), LKS_WAIT_CHANGED);
	t0 = util_now_ns();
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_WAIT, WORD_GPA, 7, 50 * 1000000ull),
			 LKS_WAIT_TIMEOUT);
	assert_true(util_now_ns() - t0 >= 45 * 1000000ull);
	pvlock_vcpu_calls(pv, 0, &c);
	assert_int_equal(c.waits, 2);
	assert_int_equal(c.waits_changed, 1);
	assert_int_equal(c.waits_timeout, 1);
	assert_int_equal(c.errors, 0);
	pvlock_vm_free(pv);
}

static void kick_before_wait_is_not_lost(void **state)
{
	struct pvlock_vm *pv = make(2);
	uint64_t t0;

	*word() = 1;
	assert_int_equal(pvlock_call(pv, 1, LKS_CALL_KICK, 0, 0, 0), 0);
	t0 = util_now_ns();
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_WAIT, WORD_GPA, 1, 2000 * 1000000ull),
			 LKS_WAIT_WOKEN);
	assert_true(util_now_ns() - t0 < 1000 * 1000000ull);
	/* The kick was consumed: the next WAIT sleeps its full timeout. */
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_WAIT, WORD_GPA, 1, 20 * 1000000ull),
			 LKS_WAIT_TIMEOUT);
	pvlock_vm_free(pv);
}

struct racer {
	struct pvlock_vm *pv;
	unsigned rounds;
	volatile uint32_t *flag;
	volatile uint32_t go;
};

/* vCPU 1: sets the flag, then kicks vCPU 0; waits for vCPU 0 to reset it. */
static void *kicker(void *arg)
{
	struct racer *r = arg;

	for (unsigned i = 0; i < r->rounds; i++) {
		while (__atomic_load_n(&r->go, __ATOMIC_ACQUIRE) != i + 1)
			;
		__atomic_store_n(r->flag, 1, __ATOMIC_RELEASE);
		pvlock_call(r->pv, 1, LKS_CALL_KICK, 0, 0, 0);
	}
	return NULL;
}

static void kick_racing_the_check_is_caught(void **state)
{
	struct pvlock_vm *pv = make(2);
	struct racer r = { .pv = pv, .rounds = 20000, .flag = word() };
	struct pvlock_vcpu_calls c;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, kicker, &r), 0);
	for (unsigned i = 0; i < r.rounds; i++) {
		*r.flag = 0;
		__atomic_store_n(&r.go, i + 1, __ATOMIC_RELEASE);
		/* vCPU 0: check, then sleep on the value it saw; the kick may land anywhere. */
		while (__atomic_load_n(r.flag, __ATOMIC_ACQUIRE) == 0) {
			int64_t ret = pvlock_call(pv, 0, LKS_CALL_WAIT, WORD_GPA, 0, 1000000000ull);

			assert_int_not_equal(ret, LKS_WAIT_TIMEOUT);
		}
	}
	pthread_join(t, NULL);
	pvlock_vcpu_calls(pv, 0, &c);
	assert_int_equal(c.waits_timeout, 0);
	assert_int_equal(c.errors, 0);
	pvlock_vm_free(pv);
}

static void malformed_calls(void **state)
{
	struct pvlock_vm *pv = make(4);
	struct pvlock_vcpu_calls c;

	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_WAIT, WORD_GPA + 1, 0, 0), LKS_EINVAL);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_WAIT, RAM_SIZE, 0, 0), LKS_EFAULT);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_WAIT, 0xfffffffffffffffcull, 0, 0),
			 LKS_EFAULT);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_KICK, 4, 0, 0), LKS_EINVAL);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_KICK, 1000, 0, 0), LKS_EINVAL);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_YIELD_TO, 1000, 0, 0), LKS_EINVAL);
	assert_int_equal(pvlock_call(pv, 0, 40, 0, 0, 0), LKS_ENOSYS);
	assert_int_equal(pvlock_call(pv, 9, LKS_CALL_KICK, 0, 0, 0), LKS_EINVAL);
	pvlock_bad_kick(pv, 0, 1000);
	pvlock_vcpu_calls(pv, 0, &c);
	assert_int_equal(c.errors, 8);
	/* And the calls still work afterwards. */
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_KICK, 3, 0, 0), 0);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_YIELD_TO, 3, 0, 0), 0);
	pvlock_vm_free(pv);
}

static void shared_page_setup(void **state)
{
	struct pvlock_vm *pv = make(4);
	size_t full = sizeof(struct lks_shared_page) + 4 * sizeof(struct lks_vcpu_pub);
	const struct lks_shared_page *page;
	uint32_t nr;

	assert_null(pvlock_shared_page(pv, &nr));
	assert_int_equal(nr, 0);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x2010, full, 0), LKS_EINVAL);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x2000, 16, 0), LKS_EINVAL);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x2000, 4u << 20, 0),
			 LKS_EINVAL);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, RAM_SIZE - 64, full, 0),
			 LKS_EFAULT);
	assert_null(pvlock_shared_page(pv, &nr));
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x2000, full, 0), 0);
	page = pvlock_shared_page(pv, &nr);
	assert_ptr_equal(page, guest.ram + 0x2000);
	assert_int_equal(nr, 4);
	/* A page covering two vCPUs only is accepted for those two. */
	assert_int_equal(
		pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x4000,
			    sizeof(struct lks_shared_page) + 2 * sizeof(struct lks_vcpu_pub), 0),
		0);
	pvlock_shared_page(pv, &nr);
	assert_int_equal(nr, 2);
	/* (0, 0) unregisters it. */
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0, 0, 0), 0);
	assert_null(pvlock_shared_page(pv, &nr));
	pvlock_vm_free(pv);
}

/* Two registrations a guest may flip between: a one-slot page at the very end of RAM and a
 * four-slot page low in RAM.  The end page's address with the low page's count reads past
 * RAM. */
#define PUB_SIZE(n) (sizeof(struct lks_shared_page) + (n) * sizeof(struct lks_vcpu_pub))
#define END_GPA ((RAM_SIZE - PUB_SIZE(1)) & ~63ull)
#define LOW_GPA 0x2000ull

/*
 * The detector reads the registration from another thread, at any moment.  To try every
 * moment, the test single-steps the vCPU thread through its SHARED_SETUP calls (x86's trap
 * flag) and reads the registration after each instruction, as a reader between any two of
 * its stores would.
 */
struct stepper {
	struct pvlock_vm *pv;
	volatile sig_atomic_t stepping;
	unsigned long steps, reads, torn;
};

static struct stepper step;

static void check_registration(void)
{
	uint32_t nr;
	const struct lks_shared_page *page = pvlock_shared_page(step.pv, &nr);
	const uint8_t *p = (const uint8_t *)page;
	bool whole;

	if (!page)
		return;
	whole = (p == guest.ram + END_GPA && nr == 1) || (p == guest.ram + LOW_GPA && nr == 4);
	if (!whole || p + sizeof(*page) + nr * sizeof(page->vcpu[0]) > guest.ram + RAM_SIZE)
		step.torn++;
	step.reads++;
}

#define X86_TRAP_FLAG 0x100

static void on_step(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;

	step.steps++;
	check_registration();
	if (step.stepping)
		uc->uc_mcontext.gregs[REG_EFL] |= X86_TRAP_FLAG;
	else
		uc->uc_mcontext.gregs[REG_EFL] &= ~X86_TRAP_FLAG;
}

static void shared_page_pairs_stay_whole(void **state)
{
	struct sigaction sa = { .sa_sigaction = on_step, .sa_flags = SA_SIGINFO }, old;
	unsigned long calls = 0;

	step = (struct stepper){ .pv = make(4) };
	assert_true(END_GPA + PUB_SIZE(4) > RAM_SIZE); /* the pairing that must never happen */
	assert_int_equal(sigaction(SIGTRAP, &sa, &old), 0);
	assert_int_equal(pvlock_call(step.pv, 1, LKS_CALL_SHARED_SETUP, END_GPA, PUB_SIZE(1), 0),
			 0);
	step.stepping = 1;
	raise(SIGTRAP);
	for (int i = 0; i < 3; i++) {
		calls += !pvlock_call(step.pv, 2, LKS_CALL_SHARED_SETUP, LOW_GPA, PUB_SIZE(4), 0);
		calls += !pvlock_call(step.pv, 1, LKS_CALL_SHARED_SETUP, END_GPA, PUB_SIZE(1), 0);
	}
	step.stepping = 0;
	sigaction(SIGTRAP, &old, NULL);
	print_message("%lu instructions stepped, %lu torn registrations seen\n", step.steps,
		      step.torn);
	assert_int_equal(calls, 6);
	assert_true(step.steps > 100 && step.reads == step.steps);
	assert_int_equal(step.torn, 0);
	pvlock_vm_free(step.pv);
}

static void shared_page_registrations_bounded(void **state)
{
	struct pvlock_vm *pv = make(4);
	const struct lks_shared_page *page;
	uint32_t nr;

	/* Each distinct registration is kept for the VM's life; the same one again costs
	 * nothing. */
	for (unsigned i = 0; i < LKS_SHARED_SETUP_MAX; i++) {
		assert_int_equal(
			pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x4000 + 64 * i, PUB_SIZE(4), 0),
			0);
		assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x4000, PUB_SIZE(4), 0),
				 0);
	}
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x8000, PUB_SIZE(4), 0),
			 LKS_EBUSY);
	/* The refusal leaves the registration in force, and kept ones still register. */
	page = pvlock_shared_page(pv, &nr);
	assert_ptr_equal(page, guest.ram + 0x4000);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0x4040, PUB_SIZE(4), 0), 0);
	assert_ptr_equal(pvlock_shared_page(pv, &nr), guest.ram + 0x4040);
	assert_int_equal(pvlock_call(pv, 0, LKS_CALL_SHARED_SETUP, 0, 0, 0), 0);
	assert_null(pvlock_shared_page(pv, &nr));
	pvlock_vm_free(pv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wait_changed_and_timeout),
		cmocka_unit_test(kick_before_wait_is_not_lost),
		cmocka_unit_test(kick_racing_the_check_is_caught),
		cmocka_unit_test(malformed_calls),
		cmocka_unit_test(shared_page_setup),
		cmocka_unit_test(shared_page_pairs_stay_whole),
		cmocka_unit_test(shared_page_registrations_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
