/*
 * The sched page: version 3 (the multiplexer's area and the guest's hints page) is what a
 * worker creates; lockstepd maps it and still maps a version 2 page (a worker started before
 * an upgrade), which has neither; anything else is refused.  Gates mark the hints page, and a
 * multiplexed VM's gates are never settled for interrupt steering.
 *
 * lockstepd maps a worker's page, which the worker may have made hostile: only a page sealed
 * against shrinking (else the worker could make the daemon's next access SIGBUS), of the size
 * the definition's vCPU count gives and with a header that agrees; unmapped by the size the
 * daemon knows, whatever the worker wrote into the header since.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "pvlock/abi.h"
#include "sched/sched.h"

static void version_3_maps_with_its_areas(void **state)
{
	struct sched_page *page, *mapped;
	struct lks_sched_hints *hints;
	uint32_t v = 0;
	int fd;

	assert_int_equal(sched_page_create(6, &fd, &page), 0);
	assert_int_equal(page->version, 3);
	assert_int_equal(sched_page_map(fd, 6, &mapped, &v), 0);
	assert_int_equal(v, 3);
	assert_non_null(sched_page_mux(mapped));
	hints = sched_page_hints(mapped);
	assert_non_null(hints);
	assert_int_equal(hints->magic, LKS_HINTS_MAGIC);
	assert_int_equal(hints->nr_vcpus, 6);
	/* The hints page is a page of its own, as the guest's memory slot needs. */
	assert_int_equal(page->hints_offset % 4096, 0);
	assert_int_equal(sched_page_size(6), page->hints_offset + LKS_HINTS_SIZE);
	/* Gates mark it, as do switch requests. */
	assert_int_equal(hints->gated[0], 0);
	sched_gate_close(page, 4, 1);
	assert_true(lks_hint_test(sched_page_hints(mapped)->gated, 4));
	sched_gate_open(page, 4, 2);
	assert_false(lks_hint_test(sched_page_hints(mapped)->gated, 4));
	sched_hint_switch(page, 5, true);
	assert_true(lks_hint_test(hints->switch_req, 5));
	sched_hint_slots(page, 2);
	assert_int_equal(hints->multiplexed, 1);
	assert_int_equal(hints->slots, 2);
	sched_page_unmap(mapped, 6, v);
	sched_page_unmap(page, 6, 3);
	close(fd);
}

/* A page as a worker of the previous version wrote it (sealed, as workers always did). */
static int v2_page(uint32_t n, uint32_t version, size_t size)
{
	int fd = memfd_create("test-sched-v2", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	struct sched_page *page;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(page != MAP_FAILED);
	page->magic = SCHED_PAGE_MAGIC;
	page->version = version;
	page->nr_vcpus = n;
	for (uint32_t i = 0; i < n; i++)
		page->slot[i].gate = SCHED_GATE_OPEN;
	munmap(page, size);
	return fd;
}

static void version_2_maps_without_them(void **state)
{
	struct sched_page *page;
	uint32_t v = 0;
	int fd = v2_page(4, 2, sched_page_size_v(4, 2));

	assert_int_equal(sched_page_size_v(4, 2), 4096);
	assert_int_equal(sched_page_map(fd, 4, &page, &v), 0);
	assert_int_equal(v, 2);
	assert_null(sched_page_mux(page));
	assert_null(sched_page_hints(page));
	/* Its gates work as before, and marking hints is a no-op. */
	sched_gate_close(page, 1, 1);
	sched_hint_switch(page, 1, true);
	sched_hint_slots(page, 2);
	assert_int_equal(page->slot[1].gate, SCHED_GATE_CLOSED);
	assert_false(sched_mux_orphaned(page, 1ull << 62));
	sched_page_unmap(page, 4, v);
	close(fd);
	/* Unknown versions and sizes that do not match are refused. */
	fd = v2_page(4, 4, 8192);
	assert_int_equal(sched_page_map(fd, 4, &page, &v), -EINVAL);
	close(fd);
	fd = v2_page(4, 2, 8192);
	assert_int_equal(sched_page_map(fd, 4, &page, &v), -EINVAL);
	close(fd);
	fd = v2_page(4, 3, sched_page_size_v(4, 3)); /* v3 without its offsets */
	assert_int_equal(sched_page_map(fd, 4, &page, &v), -EINVAL);
	close(fd);
}

/*
 * Interrupt steering reads a gate with the schedule generation it belongs to; a multiplexed
 * VM's gates move in the worker between the scheduler's publications, so they are never
 * settled (an odd generation): an interrupt to a gated vCPU there counts as `switching`.
 */
static void multiplexed_gates_are_never_settled(void **state)
{
	static const uint64_t all[4] = { ~0ull, ~0ull, ~0ull, ~0ull };
	struct sched_page *page;
	uint32_t gen = 0;
	int fd;

	assert_int_equal(sched_page_create(4, &fd, &page), 0);
	sched_page_switch_begin(page, all);
	sched_page_switch_end(page);
	assert_true(sched_page_gate_open(page, 1, &gen));
	assert_true(gen && !(gen & 1));
	__atomic_store_n(&sched_page_mux(page)->slots, 2, __ATOMIC_SEQ_CST);
	sched_page_switch_end(page);
	assert_true(sched_page_gate_open(page, 1, &gen));
	assert_int_equal(gen, 1);
	sched_page_unmap(page, 4, SCHED_PAGE_VERSION);
	close(fd);
}

static void created_page_is_accepted(void **state)
{
	struct sched_page *mine, *theirs;
	uint32_t v = 0;
	int fd;

	(void)state;
	assert_int_equal(sched_page_create(2, &fd, &mine), 0);
	assert_int_equal(sched_page_map(fd, 2, &theirs, &v), 0);
	assert_int_equal(theirs->nr_vcpus, 2);
	/* Sealed: the creator cannot take the mapping's pages away. */
	assert_int_equal(ftruncate(fd, 0), -1);
	assert_int_equal(errno, EPERM);
	sched_page_unmap(theirs, 2, v);
	sched_page_unmap(mine, 2, SCHED_PAGE_VERSION);
	close(fd);
}

static void other_count_is_refused(void **state)
{
	struct sched_page *mine, *theirs = NULL;
	uint32_t v = 0;
	int fd;

	(void)state;
	assert_int_equal(sched_page_create(2, &fd, &mine), 0);
	assert_int_equal(sched_page_map(fd, 40, &theirs, &v), -EINVAL);
	mine->nr_vcpus = 3; /* the header disagrees with the definition */
	assert_int_equal(sched_page_map(fd, 2, &theirs, &v), -EINVAL);
	assert_null(theirs);
	sched_page_unmap(mine, 2, SCHED_PAGE_VERSION);
	close(fd);
}

/* A page with a valid header in a memfd that may shrink: refused. */
static void unsealed_page_is_refused(void **state)
{
	size_t len = sched_page_size(2), mapped_len = len;
	struct sched_page *page, *theirs = NULL;
	uint32_t v = 0;
	int fd;

	(void)state;
	fd = memfd_create("unsealed", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	page = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(page != MAP_FAILED);
	page->magic = SCHED_PAGE_MAGIC;
	page->version = 2;
	page->nr_vcpus = 2;
	len = sched_page_size_v(2, 2);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	assert_int_equal(sched_page_map(fd, 2, &theirs, &v), -EPERM);
	assert_null(theirs);
	munmap(page, mapped_len);
	close(fd);
}

/* Whether the page at `addr` is mapped (mincore answers ENOMEM where nothing is). */
static bool mapped(void *addr)
{
	unsigned char vec;

	return mincore(addr, 1, &vec) == 0;
}

/* The worker rewrites nr_vcpus after the daemon mapped the page: the unmap still takes only
 * the page, and what lies after it stays mapped. */
static void unmap_ignores_the_header(void **state)
{
	size_t len = sched_page_size(2), page_size = (size_t)sysconf(_SC_PAGESIZE);
	struct sched_page *mine, *theirs;
	char *next;
	uint32_t v = 0;
	int fd;

	(void)state;
	assert_int_equal(sched_page_create(2, &fd, &mine), 0);
	assert_int_equal(sched_page_map(fd, 2, &theirs, &v), 0);
	next = (char *)theirs + len;
	/* Ours if the place is free; otherwise whatever is mapped there must stay. */
	mmap(next, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	assert_true(mapped(next));
	mine->nr_vcpus = 200;
	sched_page_unmap(theirs, 2, v);
	assert_false(mapped(theirs));
	assert_true(mapped(next));
	sched_page_unmap(mine, 2, SCHED_PAGE_VERSION);
	close(fd);
}

/*
 * The worker rewrites its header after lockstepd mapped the page (a hints offset far outside
 * it, more vCPUs than it has): lockstepd's side goes by the layout it mapped, writes the hints
 * where they are and reads no slot past the page.
 */
static void view_ignores_a_rewritten_header(void **state)
{
	static const uint64_t none[4] = { 0 };
	struct sched_page *mine;
	struct sched_view view;
	struct lks_sched_hints *hints;
	int fd;

	(void)state;
	assert_int_equal(sched_page_create(2, &fd, &mine), 0);
	assert_int_equal(sched_view_map(fd, 2, &view), 0);
	hints = sched_page_hints(mine);
	assert_ptr_equal((char *)view.hints - (char *)view.page, (char *)hints - (char *)mine);
	mine->hints_offset = 1u << 30;
	mine->mux_offset = 1u << 30;
	mine->nr_vcpus = 256;
	mine->version = 3;
	sched_page_switch_begin(view.page, none);
	sched_view_gate_close(&view, 1, 1);
	assert_true(lks_hint_test(hints->gated, 1));
	sched_view_hint_switch(&view, 1, true);
	assert_true(lks_hint_test(hints->switch_req, 1));
	sched_view_hint_switch(&view, 200, true); /* beyond the page's vCPUs: ignored */
	sched_view_hint_slots(&view, 1);
	assert_int_equal(hints->slots, 1);
	sched_view_gate_open(&view, 1, 2);
	assert_false(lks_hint_test(hints->gated, 1));
	sched_view_switch_end(&view);
	assert_int_equal(view.page->runnable[0], 3);
	sched_view_unmap(&view);
	mine->nr_vcpus = 2;
	sched_page_unmap(mine, 2, SCHED_PAGE_VERSION);
	close(fd);
}

/* The worker's interrupt boost request: set once with the first raise's time, taken once. */
static void irq_wait_is_asked_once_and_taken_once(void **state)
{
	struct sched_page *mine;
	struct sched_view view;
	uint64_t raise = 0;
	int fd;

	(void)state;
	assert_int_equal(sched_page_create(2, &fd, &mine), 0);
	assert_int_equal(sched_view_map(fd, 2, &view), 0);
	assert_false(sched_view_irq_take(&view, &raise));
	sched_page_irq_wait(mine, 100);
	sched_page_irq_wait(mine, 200); /* asked already: the first raise's time stays */
	assert_int_equal(view.page->irq_wait, 1);
	assert_true(sched_view_irq_take(&view, &raise));
	assert_int_equal(raise, 100);
	assert_false(sched_view_irq_take(&view, &raise));
	sched_page_irq_wait(mine, 300);
	assert_true(sched_view_irq_take(&view, &raise));
	assert_int_equal(raise, 300);
	/* The slots stay where a page without the request had them. */
	assert_int_equal(offsetof(struct sched_page, slot), 128);
	sched_view_unmap(&view);
	sched_page_unmap(mine, 2, SCHED_PAGE_VERSION);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(version_3_maps_with_its_areas),
		cmocka_unit_test(version_2_maps_without_them),
		cmocka_unit_test(multiplexed_gates_are_never_settled),
		cmocka_unit_test(created_page_is_accepted),
		cmocka_unit_test(other_count_is_refused),
		cmocka_unit_test(unsealed_page_is_refused),
		cmocka_unit_test(unmap_ignores_the_header),
		cmocka_unit_test(view_ignores_a_rewritten_header),
		cmocka_unit_test(irq_wait_is_asked_once_and_taken_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
