/*
 * The device thread: one epoll loop per VM on which emulated devices do what must not happen
 * on a vCPU thread — a level line's resample eventfd (the guest's EOI), a device's timer, a
 * deferred raise.  Each registered fd has a callback, called on this thread only; interrupts
 * raised here go to KVM through irqfd lines, so no vCPU is involved.
 *
 * Devices register while the VM is built (before vm_devloop_start) and may add and remove
 * fds later from any thread; a removal waits until the thread is not inside that fd's
 * callback, so the callback's argument can be freed after vm_devloop_del() returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vm/vm_internal.h"

#define DEVLOOP_MAX_EVENTS 16

struct devloop_entry {
	int fd;
	vm_devloop_fn fn;
	void *arg;
	struct devloop_entry *next;
};

struct vm_devloop {
	struct vm *vm;
	int epoll_fd;
	int stop_fd;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* the entries; held by the thread while it runs a callback */
	struct devloop_entry *entries;
};

int vm_devloop_new(struct vm *vm, struct vm_devloop **out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct vm_devloop *dl = calloc(1, sizeof(*dl));
	pthread_mutexattr_t attr;
	int ret;

	if (!dl)
		return -ENOMEM;
	dl->vm = vm;
	/* Recursive: a callback may add or remove fds (its own too). */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&dl->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	dl->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	dl->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dl->epoll_fd < 0 || dl->stop_fd < 0 ||
	    epoll_ctl(dl->epoll_fd, EPOLL_CTL_ADD, dl->stop_fd, &ev) < 0) {
		ret = -errno;
		vm_devloop_free(dl);
		return ret;
	}
	*out = dl;
	return 0;
}

int vm_devloop_add(struct vm_devloop *dl, int fd, vm_devloop_fn fn, void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct devloop_entry *e;
	int ret = 0;

	if (!dl)
		return 0; /* a machine without a device thread (tests, fuzzing) */
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	*e = (struct devloop_entry){ .fd = fd, .fn = fn, .arg = arg };
	ev.data.ptr = e;
	pthread_mutex_lock(&dl->lock);
	if (epoll_ctl(dl->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		ret = -errno;
		free(e);
	} else {
		e->next = dl->entries;
		dl->entries = e;
	}
	pthread_mutex_unlock(&dl->lock);
	return ret;
}

void vm_devloop_del(struct vm_devloop *dl, int fd)
{
	struct devloop_entry **p;

	if (!dl)
		return;
	/* Under the lock: the thread is not inside a callback, and checks the entry after. */
	pthread_mutex_lock(&dl->lock);
	for (p = &dl->entries; *p; p = &(*p)->next) {
		struct devloop_entry *e = *p;

		if (e->fd != fd)
			continue;
		epoll_ctl(dl->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		*p = e->next;
		free(e);
		break;
	}
	pthread_mutex_unlock(&dl->lock);
}

static bool registered(const struct vm_devloop *dl, const struct devloop_entry *e)
{
	for (const struct devloop_entry *x = dl->entries; x; x = x->next)
		if (x == e)
			return true;
	return false;
}

static void *devloop_thread(void *arg)
{
	struct vm_devloop *dl = arg;

	pthread_setname_np(pthread_self(), "devices");
	if (vm_jail_lock_thread(dl->vm, VM_THREAD_DEVICES))
		return NULL; /* the VM stops */
	for (;;) {
		struct epoll_event ev[DEVLOOP_MAX_EVENTS];
		int n = epoll_wait(dl->epoll_fd, ev, DEVLOOP_MAX_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			struct devloop_entry *e = ev[i].data.ptr;

			if (!e)
				return NULL; /* the stop eventfd */
			pthread_mutex_lock(&dl->lock);
			/* It may have been removed since epoll_wait returned. */
			if (registered(dl, e))
				e->fn(e->arg);
			pthread_mutex_unlock(&dl->lock);
		}
	}
	return NULL;
}

int vm_devloop_start(struct vm_devloop *dl)
{
	int ret = pthread_create(&dl->thread, NULL, devloop_thread, dl);

	if (ret)
		return -ret;
	dl->started = true;
	return 0;
}

void vm_devloop_stop(struct vm_devloop *dl)
{
	uint64_t one = 1;

	if (!dl || !dl->started)
		return;
	if (write(dl->stop_fd, &one, sizeof(one)) < 0) {
		/* cannot fail for a counter this small */
	}
	pthread_join(dl->thread, NULL);
	dl->started = false;
}

void vm_devloop_free(struct vm_devloop *dl)
{
	if (!dl)
		return;
	vm_devloop_stop(dl);
	while (dl->entries) {
		struct devloop_entry *e = dl->entries;

		dl->entries = e->next;
		free(e);
	}
	if (dl->epoll_fd >= 0)
		close(dl->epoll_fd);
	if (dl->stop_fd >= 0)
		close(dl->stop_fd);
	pthread_mutex_destroy(&dl->lock);
	free(dl);
}
