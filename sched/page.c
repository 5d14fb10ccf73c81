/*
 * The sched page: shared memory (a memfd) between lockstepd's scheduler thread and one VM's
 * worker, and the gate protocol on it.
 *
 * The gate is a futex word in a MAP_SHARED mapping, so the futex works across the two
 * processes.  The worker's vCPU thread passes its gate before every KVM_RUN: if the gate is
 * closed it publishes STOPPED (and how long after the close it got there: the gate latency)
 * and sleeps on the futex; the scheduler opens a gate by storing OPEN and waking the futex.
 * Closing is a store plus a kick of the vCPU thread (done by the caller, with tgkill), which
 * makes KVM_RUN return at once.  No lock is ever held across KVM_RUN.
 *
 * Version 3 adds, after the slots, the multiplexer's area (struct sched_mux, sched/mux.c) and,
 * on a page of its own, the scheduling hints the worker maps read-only into the guest
 * (struct lks_sched_hints, pvlock/abi.h): whoever opens or closes a gate marks it there, so a
 * guest sees which of its vCPUs are stopped without asking.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pvlock/abi.h"
#include "sched/sched.h"

#define GATE_RECHECK_NS 50000000ull /* a stop request is noticed at least this often */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void futex_wait(uint32_t *word, uint32_t expected, uint64_t timeout_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000ull),
			       .tv_nsec = (long)(timeout_ns % 1000000000ull) };

	syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

static void futex_wake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

#define PAGE_SIZE_4K 4096u

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) & ~(to - 1);
}

/* Where the v3 areas start (0 for v2). */
static size_t mux_offset(uint32_t nr_vcpus)
{
	return round_up(sizeof(struct sched_page) + (size_t)nr_vcpus * sizeof(struct sched_slot),
			64);
}

static size_t hints_offset(uint32_t nr_vcpus)
{
	return round_up(mux_offset(nr_vcpus) + sizeof(struct sched_mux) +
				(size_t)nr_vcpus * sizeof(struct sched_mux_vcpu),
			PAGE_SIZE_4K);
}

size_t sched_page_size_v(uint32_t nr_vcpus, uint32_t version)
{
	size_t len = sizeof(struct sched_page) + (size_t)nr_vcpus * sizeof(struct sched_slot);

	switch (version) {
	case 2:
		return round_up(len, PAGE_SIZE_4K);
	case 3:
		return hints_offset(nr_vcpus) + LKS_HINTS_SIZE;
	default:
		return 0;
	}
}

size_t sched_page_size(uint32_t nr_vcpus)
{
	return sched_page_size_v(nr_vcpus, SCHED_PAGE_VERSION);
}

int sched_page_create(uint32_t nr_vcpus, int *fd_out, struct sched_page **out)
{
	size_t len = sched_page_size(nr_vcpus);
	struct lks_sched_hints *hints;
	struct sched_page *page;
	int fd, ret;

	if (nr_vcpus > 32 * LKS_HINT_WORDS)
		return -EINVAL;
	fd = memfd_create("lockstep-sched", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	page = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED) {
		ret = -errno;
		close(fd);
		return ret;
	}
	page->magic = SCHED_PAGE_MAGIC;
	page->version = SCHED_PAGE_VERSION;
	page->nr_vcpus = nr_vcpus;
	page->mux_offset = (uint32_t)mux_offset(nr_vcpus);
	page->hints_offset = (uint32_t)hints_offset(nr_vcpus);
	hints = sched_page_hints(page);
	hints->magic = LKS_HINTS_MAGIC;
	hints->nr_vcpus = nr_vcpus;
	for (uint32_t i = 0; i < nr_vcpus; i++)
		page->slot[i].gate = SCHED_GATE_OPEN; /* no scheduler: run freely */
	*fd_out = fd;
	*out = page;
	return 0;
}

int sched_page_map(int fd, uint32_t nr_vcpus, struct sched_page **out, uint32_t *version)
{
	struct sched_page *page;
	struct stat st;
	uint32_t v;
	size_t len;
	int seals;

	/*
	 * The other side may be hostile: the file must keep its size for as long as it is mapped
	 * (sealed against shrinking, or an access past its end would kill this process with
	 * SIGBUS), have the size its version and `nr_vcpus` give, and say the same in its header
	 * (the offsets too: what this version puts there).  The size is the caller's from here
	 * on, never the page's words.
	 */
	if (nr_vcpus > 32 * LKS_HINT_WORDS || fstat(fd, &st) < 0)
		return nr_vcpus > 32 * LKS_HINT_WORDS ? -EINVAL : -errno;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return -EPERM;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	for (v = SCHED_PAGE_VERSION_MIN; v <= SCHED_PAGE_VERSION; v++)
		if (sched_page_size_v(nr_vcpus, v) == (size_t)st.st_size)
			break;
	if (v > SCHED_PAGE_VERSION)
		return -EINVAL;
	len = (size_t)st.st_size;
	page = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED)
		return -errno;
	if (page->magic != SCHED_PAGE_MAGIC || page->version != v || page->nr_vcpus != nr_vcpus ||
	    (v >= 3 && (page->mux_offset != mux_offset(nr_vcpus) ||
			page->hints_offset != hints_offset(nr_vcpus)))) {
		munmap(page, len);
		return -EINVAL;
	}
	*out = page;
	*version = v;
	return 0;
}

void sched_page_unmap(struct sched_page *page, uint32_t nr_vcpus, uint32_t version)
{
	if (page)
		munmap(page, sched_page_size_v(nr_vcpus, version));
}

struct sched_mux *sched_page_mux(const struct sched_page *page)
{
	return page->version >= 3 ? (struct sched_mux *)((char *)page + page->mux_offset) : NULL;
}

struct lks_sched_hints *sched_page_hints(const struct sched_page *page)
{
	return page->version >= 3 ? (struct lks_sched_hints *)((char *)page + page->hints_offset) :
				    NULL;
}

void sched_slot_set_state(struct sched_slot *slot, enum sched_vcpu_state state)
{
	uint32_t old = __atomic_exchange_n(&slot->state, (uint32_t)state, __ATOMIC_ACQ_REL);

	/* The scheduler may be waiting for this vCPU to leave KVM_RUN (sched_slot_wait_left). */
	if (old == SCHED_VCPU_RUNNING && state != SCHED_VCPU_RUNNING)
		futex_wake(&slot->state);
}

int sched_slot_wait_left(struct sched_slot *slot, uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now = now_ns();

		if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != SCHED_VCPU_RUNNING)
			return 0;
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		futex_wait(&slot->state, SCHED_VCPU_RUNNING, deadline_ns - now);
	}
}

bool sched_gate_pass(struct sched_slot *slot, const struct sched_gate_hooks *hooks, void *arg)
{
	uint64_t arrived, closed, latency;

	if (__atomic_load_n(&slot->gate, __ATOMIC_ACQUIRE) == SCHED_GATE_OPEN ||
	    (hooks->try_open && hooks->try_open(arg))) {
		sched_slot_set_state(slot, SCHED_VCPU_RUNNING);
		__atomic_store_n(&slot->entry_ns, now_ns(), __ATOMIC_RELAXED);
		return true;
	}
	arrived = now_ns();
	closed = __atomic_load_n(&slot->close_ns, __ATOMIC_RELAXED);
	latency = closed && arrived > closed ? arrived - closed : 0;
	slot->stops++;
	slot->gate_latency_ns += latency;
	if (latency > slot->gate_latency_max_ns)
		slot->gate_latency_max_ns = latency;
	sched_slot_set_state(slot, SCHED_VCPU_STOPPED);
	/* STOPPED is visible before the last look: whoever frees a slot then sees a ready vCPU,
	 * or this vCPU sees the free slot. */
	while (__atomic_load_n(&slot->gate, __ATOMIC_ACQUIRE) != SCHED_GATE_OPEN &&
	       !(hooks->try_open && hooks->try_open(arg))) {
		if (!hooks->keep_waiting(arg)) {
			slot->stopped_ns += now_ns() - arrived;
			return false;
		}
		futex_wait(&slot->gate, SCHED_GATE_CLOSED, GATE_RECHECK_NS);
	}
	slot->stopped_ns += now_ns() - arrived;
	sched_slot_set_state(slot, SCHED_VCPU_RUNNING);
	__atomic_store_n(&slot->entry_ns, now_ns(), __ATOMIC_RELAXED);
	return true;
}

void sched_gate_nudge(struct sched_slot *slot)
{
	futex_wake(&slot->gate);
}

static void hint_set(uint32_t *map, uint32_t i, bool on)
{
	uint32_t bit = 1u << (i % 32);

	if (on)
		__atomic_fetch_or(&map[i / 32], bit, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(&map[i / 32], ~bit, __ATOMIC_SEQ_CST);
}

static void gate_open(struct sched_page *page, struct lks_sched_hints *hints, uint32_t i,
		      uint64_t now)
{
	struct sched_slot *slot = &page->slot[i];

	if (__atomic_load_n(&slot->gate, __ATOMIC_RELAXED) == SCHED_GATE_OPEN)
		return;
	if (hints)
		hint_set(hints->gated, i, false);
	__atomic_store_n(&slot->open_ns, now, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->gate, SCHED_GATE_OPEN, __ATOMIC_SEQ_CST);
	futex_wake(&slot->gate);
}

/* Writes `runnable` and `switching` under the sequence count, then wakes the worker. */
static void publish(struct sched_page *page, const uint64_t bits[4], uint32_t switching)
{
	uint32_t gen = __atomic_load_n(&page->slice_gen, __ATOMIC_RELAXED);

	__atomic_store_n(&page->slice_gen, gen + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (int k = 0; k < 4; k++)
		__atomic_store_n(&page->runnable[k], bits[k], __ATOMIC_RELAXED);
	__atomic_store_n(&page->switching, switching, __ATOMIC_RELAXED);
	__atomic_store_n(&page->slice_gen, gen + 2, __ATOMIC_RELEASE);
	futex_wake(&page->slice_gen);
}

void sched_page_switch_begin(struct sched_page *page, const uint64_t next[4])
{
	publish(page, next, 1);
	/* No gate moves before the switch is visible. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void switch_end(struct sched_page *page, uint32_t nr_vcpus)
{
	uint64_t bits[4] = { 0 };

	for (uint32_t i = 0; i < nr_vcpus && i < 256; i++)
		if (__atomic_load_n(&page->slot[i].gate, __ATOMIC_ACQUIRE) == SCHED_GATE_OPEN)
			bits[i / 64] |= 1ull << (i % 64);
	publish(page, bits, 0);
}

uint32_t sched_page_runnable(const struct sched_page *page, uint64_t runnable[4], bool *switching)
{
	for (;;) {
		uint32_t g1 = __atomic_load_n(&page->slice_gen, __ATOMIC_ACQUIRE), g2;

		for (int k = 0; k < 4; k++)
			runnable[k] = __atomic_load_n(&page->runnable[k], __ATOMIC_RELAXED);
		*switching = __atomic_load_n(&page->switching, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		g2 = __atomic_load_n(&page->slice_gen, __ATOMIC_RELAXED);
		if (g1 == g2 && !(g1 & 1))
			return g1;
	}
}

bool sched_page_gate_open(const struct sched_page *page, uint32_t vcpu, uint32_t *gen)
{
	uint32_t g1 = __atomic_load_n(&page->slice_gen, __ATOMIC_ACQUIRE), g2;
	bool open = __atomic_load_n(&page->slot[vcpu].gate, __ATOMIC_ACQUIRE) == SCHED_GATE_OPEN;
	bool switching = __atomic_load_n(&page->switching, __ATOMIC_RELAXED);
	const struct sched_mux *mux = sched_page_mux(page);

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	g2 = __atomic_load_n(&page->slice_gen, __ATOMIC_RELAXED);
	*gen = g1 == g2 && !(g1 & 1) && !switching ? g1 : 1;
	/* A multiplexed VM's gates move in the worker between the scheduler's publications of
	 * them (at its ticks): never settled. */
	if (mux && __atomic_load_n(&mux->slots, __ATOMIC_RELAXED))
		*gen = 1;
	return open;
}

/* The boost request fits the header's padding: the slots stay where both versions had them. */
_Static_assert(offsetof(struct sched_page, slot) == 128, "sched page header grew");

void sched_page_irq_wait(struct sched_page *page, uint64_t raise_ns)
{
	/* Asked already: an interrupt storm costs one load per raise, no system call. */
	if (__atomic_load_n(&page->irq_wait, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&page->irq_raise_ns, raise_ns, __ATOMIC_RELAXED);
	if (!__atomic_exchange_n(&page->irq_wait, 1, __ATOMIC_ACQ_REL))
		futex_wake(&page->irq_wait);
}

bool sched_view_irq_take(const struct sched_view *view, uint64_t *raise_ns)
{
	if (!__atomic_exchange_n(&view->page->irq_wait, 0, __ATOMIC_ACQ_REL))
		return false;
	*raise_ns = __atomic_load_n(&view->page->irq_raise_ns, __ATOMIC_RELAXED);
	return true;
}

void sched_page_wait_switch(const struct sched_page *page, uint32_t gen, uint64_t timeout_ns)
{
	futex_wait((uint32_t *)&page->slice_gen, gen, timeout_ns);
}

static void gate_close(struct sched_page *page, struct lks_sched_hints *hints, uint32_t i,
		       uint64_t now)
{
	struct sched_slot *slot = &page->slot[i];

	if (__atomic_load_n(&slot->gate, __ATOMIC_RELAXED) == SCHED_GATE_CLOSED)
		return;
	__atomic_store_n(&slot->close_ns, now, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->gate, SCHED_GATE_CLOSED, __ATOMIC_SEQ_CST);
	if (hints)
		hint_set(hints->gated, i, true);
}

static void hint_switch(struct lks_sched_hints *hints, uint32_t nr_vcpus, uint32_t i, bool asked)
{
	if (hints && i < nr_vcpus)
		hint_set(hints->switch_req, i, asked);
}

static void hint_slots(struct lks_sched_hints *hints, uint32_t slots)
{
	if (!hints)
		return;
	__atomic_store_n(&hints->slots, slots, __ATOMIC_RELAXED);
	__atomic_store_n(&hints->multiplexed, slots != 0, __ATOMIC_RELAXED);
}

/*
 * The page's own side (its creator, the worker): its header is its own.  The mapping side
 * (lockstepd) goes through a sched_view, whose layout was fixed when it mapped the page.
 */
void sched_gate_open(struct sched_page *page, uint32_t i, uint64_t now)
{
	gate_open(page, sched_page_hints(page), i, now);
}

void sched_gate_close(struct sched_page *page, uint32_t i, uint64_t now)
{
	gate_close(page, sched_page_hints(page), i, now);
}

void sched_page_switch_end(struct sched_page *page)
{
	switch_end(page, page->nr_vcpus);
}

void sched_hint_switch(struct sched_page *page, uint32_t i, bool asked)
{
	hint_switch(sched_page_hints(page), page->nr_vcpus, i, asked);
}

void sched_hint_slots(struct sched_page *page, uint32_t slots)
{
	hint_slots(sched_page_hints(page), slots);
}

int sched_view_map(int fd, uint32_t nr_vcpus, struct sched_view *view)
{
	uint32_t version;
	int ret = sched_page_map(fd, nr_vcpus, &view->page, &version);

	if (ret)
		return ret;
	/* From the count and version just checked, not from the page's offset words. */
	view->nr_vcpus = nr_vcpus;
	view->version = version;
	view->mux = version >= 3 ? (struct sched_mux *)((char *)view->page + mux_offset(nr_vcpus)) :
				   NULL;
	view->hints =
		version >= 3 ?
			(struct lks_sched_hints *)((char *)view->page + hints_offset(nr_vcpus)) :
			NULL;
	return 0;
}

void sched_view_unmap(struct sched_view *view)
{
	sched_page_unmap(view->page, view->nr_vcpus, view->version);
	view->page = NULL;
}

void sched_view_gate_open(const struct sched_view *view, uint32_t i, uint64_t now)
{
	gate_open(view->page, view->hints, i, now);
}

void sched_view_gate_close(const struct sched_view *view, uint32_t i, uint64_t now)
{
	gate_close(view->page, view->hints, i, now);
}

void sched_view_switch_end(const struct sched_view *view)
{
	switch_end(view->page, view->nr_vcpus);
}

void sched_view_hint_switch(const struct sched_view *view, uint32_t i, bool asked)
{
	hint_switch(view->hints, view->nr_vcpus, i, asked);
}

void sched_view_hint_slots(const struct sched_view *view, uint32_t slots)
{
	hint_slots(view->hints, slots);
}
