/*
 * lockstep's PCI test device ("testdev" in a VM definition): a device whose only job is to
 * interrupt, so that guests can test and time every way an interrupt reaches them.  It raises
 * INTx, MSI or MSI-X — whichever the guest enabled — when a register is written (on that
 * vCPU's thread, or handed to the device thread), or from the device thread at a programmed
 * period; it numbers every raise, records the host TSC just before it, and counts the
 * guest's acknowledgements.  The registers (BAR 0, 4 KiB, 32-bit accesses; docs/guest-platform.md):
 *
 *   0x00 ID        RO  0x5453544c ("LTST")       0x04 VERSION  RO  1
 *   0x08 VECTOR    RW  vector the timer raises   0x0c RAISE    WO  raise vector V now
 *   0x10 RAISE_DEV WO  the device thread raises vector V (0-63)
 *   0x14 ACK       WO  acknowledge raises up to sequence number N; with every raise
 *                      acknowledged INTx stops asking for service
 *   0x18 PERIOD_US RW  raise every N µs from the device thread, 0 = stop
 *   0x1c LIMIT     RW  the timer stops after this many raises (0 = never)
 *   0x20 RAISED    RO  raises so far (the last sequence number)
 *   0x24 ACKED     RO  highest sequence number acknowledged     0x28 ACKS RO  ACK writes
 *   0x2c OVERRUNS  RO  timer periods that passed without a raise (device thread late)
 *   0x30 STATUS    RO  bit 0: INTx asks for service             0x34 MODE RO  0-3: none, INTx,
 *                                                                             MSI, MSI-X
 *   0x38 HOST_TSC  RO  64-bit: the host's TSC now
 *   0x3c METHOD    RW  0: raise through the vector's irqfd; 1: send MSI/MSI-X with
 *                      KVM_SIGNAL_MSI from the raising thread (a yardstick)
 *   0x100 + 8*(N % 256)  RO  64-bit: the host TSC just before raise N
 *
 * BAR 2 holds the MSI-X table (8 vectors) and, at 0x800, its PBA; the MSI capability has one
 * message with per-vector masking; INTx is pin A.
 *
 * Threads: registers are accessed by vCPU threads, the timer and deferred raises run on the
 * device thread (vm/devloop.c); one mutex covers the counters, the raise itself goes through
 * the PCI platform's interrupt path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <x86intrin.h>

#include "vm/pci.h"
#include "vm/vm_internal.h"

#define TESTDEV_VENDOR 0x1234 /* the QEMU/Bochs vendor id that QEMU's own edu device uses */
#define TESTDEV_DEVICE 0x4c53
#define TESTDEV_CLASS 0xff0000
#define TESTDEV_ID 0x5453544cu
#define TESTDEV_VERSION 1
#define TESTDEV_MSIX_VECTORS 8
#define TESTDEV_TSC_RING 256

enum {
	REG_ID = 0x00,
	REG_VERSION = 0x04,
	REG_VECTOR = 0x08,
	REG_RAISE = 0x0c,
	REG_RAISE_DEV = 0x10,
	REG_ACK = 0x14,
	REG_PERIOD_US = 0x18,
	REG_LIMIT = 0x1c,
	REG_RAISED = 0x20,
	REG_ACKED = 0x24,
	REG_ACKS = 0x28,
	REG_OVERRUNS = 0x2c,
	REG_STATUS = 0x30,
	REG_MODE = 0x34,
	REG_HOST_TSC = 0x38,
	REG_METHOD = 0x3c,
	REG_TSC_RING = 0x100,
};

struct vm_testdev {
	struct vm *vm;
	struct vm_pci_dev *pci;
	char name[24];
	pthread_mutex_t lock;
	uint32_t vector, period_us, limit, method;
	uint32_t raised, acked, acks, overruns, bad_accesses;
	uint64_t tsc[TESTDEV_TSC_RING];
	int timer_fd;
	int deferred_fd;
	atomic_uint_least64_t deferred; /* vectors the device thread should raise */
};

/* Numbers and timestamps one raise, then raises it (dev lock not held: the raise may take
 * the PCI device's lock). */
static void raise_vector(struct vm_testdev *t, uint32_t vector)
{
	bool signal;

	pthread_mutex_lock(&t->lock);
	t->raised++;
	signal = t->method == 1;
	t->tsc[t->raised % TESTDEV_TSC_RING] = __rdtsc();
	pthread_mutex_unlock(&t->lock);
	if (signal)
		vm_pci_signal(t->pci, vector);
	else
		vm_pci_raise(t->pci, vector);
}

static void arm_timer(struct vm_testdev *t)
{
	struct itimerspec its = { 0 };

	if (t->period_us) {
		its.it_interval.tv_sec = t->period_us / 1000000;
		its.it_interval.tv_nsec = (long)(t->period_us % 1000000) * 1000;
		its.it_value = its.it_interval;
	}
	timerfd_settime(t->timer_fd, 0, &its, NULL);
}

/* Device thread: the period passed (`n` times if the thread was late). */
static void timer_fired(void *arg)
{
	struct vm_testdev *t = arg;
	uint64_t n = 0;
	uint32_t vector;
	bool go;

	if (read(t->timer_fd, &n, sizeof(n)) != sizeof(n) || !n)
		return;
	pthread_mutex_lock(&t->lock);
	t->overruns += (uint32_t)(n - 1);
	go = t->period_us && (!t->limit || t->raised < t->limit);
	if (go && t->limit && t->raised + 1 >= t->limit) {
		t->period_us = 0; /* this is the last one */
		arm_timer(t);
	}
	vector = t->vector;
	pthread_mutex_unlock(&t->lock);
	if (go)
		raise_vector(t, vector);
}

/* Device thread: raises asked for through RAISE_DEV. */
static void deferred_fired(void *arg)
{
	struct vm_testdev *t = arg;
	uint64_t n, mask;

	if (read(t->deferred_fd, &n, sizeof(n)) != sizeof(n))
		return;
	mask = atomic_exchange(&t->deferred, 0);
	for (unsigned v = 0; v < 64; v++)
		if (mask >> v & 1)
			raise_vector(t, v);
}

static uint32_t mode_number(struct vm_pci_dev *dev)
{
	const char *mode = vm_pci_irq_mode(dev);

	return !strcmp(mode, "intx") ? 1 : !strcmp(mode, "msi") ? 2 : !strcmp(mode, "msix") ? 3 : 0;
}

static uint64_t reg_read(struct vm_testdev *t, uint64_t off)
{
	if (off >= REG_TSC_RING && off < REG_TSC_RING + 8 * TESTDEV_TSC_RING)
		return t->tsc[(off - REG_TSC_RING) / 8];
	switch (off) {
	case REG_ID:
		return TESTDEV_ID;
	case REG_VERSION:
		return TESTDEV_VERSION;
	case REG_VECTOR:
		return t->vector;
	case REG_PERIOD_US:
		return t->period_us;
	case REG_LIMIT:
		return t->limit;
	case REG_RAISED:
		return t->raised;
	case REG_ACKED:
		return t->acked;
	case REG_ACKS:
		return t->acks;
	case REG_OVERRUNS:
		return t->overruns;
	case REG_HOST_TSC:
		return __rdtsc();
	case REG_METHOD:
		return t->method;
	default:
		return 0;
	}
}

/* A register write; returns the vector to raise now, or -1. */
static int reg_write(struct vm_testdev *t, uint64_t off, uint32_t v, bool *intx_done)
{
	uint64_t one = 1;

	switch (off) {
	case REG_VECTOR:
		t->vector = v;
		break;
	case REG_RAISE:
		return (int)(v & 0xffff);
	case REG_RAISE_DEV:
		if (v < 64) {
			atomic_fetch_or(&t->deferred, 1ull << v);
			if (write(t->deferred_fd, &one, sizeof(one)) < 0) {
				/* the counter cannot overflow: the thread drains it */
			}
		}
		break;
	case REG_ACK:
		t->acks++;
		/* Sequence numbers wrap; an acknowledgement is never ahead of the raises. */
		if ((int32_t)(v - t->acked) > 0 && (int32_t)(t->raised - v) >= 0)
			t->acked = v;
		*intx_done = t->acked == t->raised;
		break;
	case REG_PERIOD_US:
		t->period_us = v;
		arm_timer(t);
		break;
	case REG_LIMIT:
		t->limit = v;
		break;
	case REG_METHOD:
		t->method = v & 1;
		break;
	default:
		t->bad_accesses++; /* read-only or nothing there */
		break;
	}
	return -1;
}

static void testdev_bar_io(struct vm_pci_dev *dev, unsigned bar, struct vm_io *io)
{
	struct vm_testdev *t = dev->opaque;
	uint64_t off = io->offset, v = 0;
	bool ring = off >= REG_TSC_RING && off < REG_TSC_RING + 8 * TESTDEV_TSC_RING;
	bool intx_done = false;
	int raise = -1;

	if (bar != 0 || io->count != 1 || (io->size != 4 && !(io->size == 8 && !(off & 7))) ||
	    (off & 3)) {
		t->bad_accesses++;
		if (!io->write)
			memset(io->data, 0, (size_t)io->size * io->count);
		return;
	}
	if (!io->write && off == REG_STATUS) {
		v = vm_pci_intx_wanted(dev);
		memcpy(io->data, &v, io->size);
		return;
	}
	if (!io->write && off == REG_MODE) {
		v = mode_number(dev);
		memcpy(io->data, &v, io->size);
		return;
	}
	pthread_mutex_lock(&t->lock);
	if (!io->write) {
		v = reg_read(t, ring ? off & ~7ull : off);
		if (ring && (off & 4))
			v >>= 32;
		memcpy(io->data, &v, io->size);
	} else {
		memcpy(&v, io->data, io->size);
		raise = reg_write(t, off, (uint32_t)v, &intx_done);
	}
	pthread_mutex_unlock(&t->lock);
	if (intx_done)
		vm_pci_intx_set(dev, false);
	if (raise >= 0)
		raise_vector(t, (uint32_t)raise);
}

static void testdev_free(struct vm_pci_dev *dev)
{
	struct vm_testdev *t = dev->opaque;

	vm_devloop_del(t->vm->devloop, t->timer_fd);
	vm_devloop_del(t->vm->devloop, t->deferred_fd);
	close(t->timer_fd);
	close(t->deferred_fd);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static const struct vm_pci_dev_ops testdev_ops = {
	.bar_io = testdev_bar_io,
	.free = testdev_free,
};

int vm_testdev_add(struct vm *vm, int slot, const char *name)
{
	struct vm_pci_dev_desc desc = {
		.name = name,
		.slot = slot,
		.vendor = TESTDEV_VENDOR,
		.device = TESTDEV_DEVICE,
		.subsys_vendor = TESTDEV_VENDOR,
		.subsys = TESTDEV_DEVICE,
		.class_code = TESTDEV_CLASS,
		.intx_pin = 1,
		.bar = { [0] = { .size = 4096 }, [2] = { .size = 4096 } },
		.msi_vectors = 1,
		.msi_maskable = true,
		.msix_vectors = TESTDEV_MSIX_VECTORS,
		.msix_bar = 2,
		.msix_pba_offset = 0x800,
		.ops = &testdev_ops,
	};
	struct vm_testdev *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	t->vm = vm;
	util_strlcpy(t->name, name, sizeof(t->name));
	pthread_mutex_init(&t->lock, NULL);
	t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	t->deferred_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->timer_fd < 0 || t->deferred_fd < 0) {
		ret = -errno;
		goto err;
	}
	ret = vm_devloop_add(vm->devloop, t->timer_fd, timer_fired, t);
	if (!ret)
		ret = vm_devloop_add(vm->devloop, t->deferred_fd, deferred_fired, t);
	if (ret)
		goto err;
	desc.opaque = t;
	ret = vm_pci_add(vm->pci, &desc, &t->pci);
	if (ret)
		goto err;
	return 0;

err:
	vm_devloop_del(vm->devloop, t->timer_fd);
	vm_devloop_del(vm->devloop, t->deferred_fd);
	if (t->timer_fd >= 0)
		close(t->timer_fd);
	if (t->deferred_fd >= 0)
		close(t->deferred_fd);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return ret;
}
