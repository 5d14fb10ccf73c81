/*
 * The paravirtual lock calls, host side: WAIT, KICK, YIELD_TO, SHARED_SETUP and SWITCH (the
 * last two hand over to the VMM's scheduler through its environment).
 *
 * Each vCPU has a kick eventfd.  A KICK from the guest's fast path is an MMIO write that KVM
 * matches against one ioeventfd per vCPU (datamatch = vCPU number) and turns into an eventfd
 * signal without leaving the kernel; the doorbell's KICK call does the same from userspace.
 * WAIT sleeps on the caller's eventfd unless the lock word already changed.  Kicks are never
 * drained before that check, so a kick that arrived before the WAIT makes it return at once:
 * no wake-up is lost, and a stale kick costs one spurious return the guest re-checks.
 *
 * Calls run on the calling vCPU's thread; per-vCPU counters have that single writer.  The
 * shared page is published to the detector's thread as one immutable registration (page and
 * slot count together) behind one pointer, with release/acquire: a reader can never pair one
 * registration's page with another's count (an old page near the end of RAM with a newer,
 * larger count would read past guest RAM).  A reader may still hold a registration that was
 * replaced, so every registration lives as long as the VM; identical ones are shared, and
 * LKS_SHARED_SETUP_MAX distinct ones bound what a guest can make the host keep.  Writers
 * (SHARED_SETUP from any vCPU) take shared_lock.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pvlock/pvlock.h"
#include "util/util.h"

#define SHARED_MAX (1u << 20)

/* One registration of the shared page: immutable once published. */
struct pvlock_shared {
	struct lks_shared_page *page; /* host pointer into guest RAM */
	uint32_t nr;		      /* entries of page->vcpu[] the host reads */
};

struct pvlock_vcpu {
	int kick_fd;
	bool ioeventfd;
	struct pvlock_vcpu_calls calls;
};

struct pvlock_vm {
	struct pvlock_env env;
	struct hv_vm *hv;
	uint64_t kick_gpa;
	uint32_t nr_vcpus;
	struct pvlock_vcpu *vcpu;
	const struct pvlock_shared *shared; /* atomic: the registration in force, or NULL */
	pthread_mutex_t shared_lock;	    /* SHARED_SETUP callers */
	struct pvlock_shared kept[LKS_SHARED_SETUP_MAX]; /* every registration published */
	unsigned nr_kept;
};

static struct hv_ioeventfd kick_ioeventfd(const struct pvlock_vm *pv, uint32_t vcpu)
{
	return (struct hv_ioeventfd){
		.addr = pv->kick_gpa,
		.len = 4,
		.datamatch = true,
		.data = vcpu,
		.fd = pv->vcpu[vcpu].kick_fd,
	};
}

int pvlock_vm_new(const struct pvlock_env *env, struct hv_vm *hv, uint32_t nr_vcpus,
		  uint64_t doorbell_gpa, struct pvlock_vm **out)
{
	struct pvlock_vm *pv;
	int ret = 0;

	pv = calloc(1, sizeof(*pv));
	if (!pv)
		return -ENOMEM;
	pv->env = *env;
	pv->hv = hv;
	pv->kick_gpa = doorbell_gpa + LKS_DB_KICK;
	pv->nr_vcpus = nr_vcpus;
	pthread_mutex_init(&pv->shared_lock, NULL);
	pv->vcpu = calloc(nr_vcpus, sizeof(*pv->vcpu));
	if (!pv->vcpu) {
		pthread_mutex_destroy(&pv->shared_lock);
		free(pv);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nr_vcpus; i++)
		pv->vcpu[i].kick_fd = -1;
	for (uint32_t i = 0; i < nr_vcpus && !ret; i++) {
		struct hv_ioeventfd io;

		pv->vcpu[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (pv->vcpu[i].kick_fd < 0) {
			ret = -errno;
			break;
		}
		io = kick_ioeventfd(pv, i);
		/* Without the in-kernel path the doorbell still works, through userspace. */
		pv->vcpu[i].ioeventfd = hv && hv_vm_ioeventfd(hv, &io, true) == 0;
	}
	if (ret) {
		pvlock_vm_free(pv);
		return ret;
	}
	*out = pv;
	return 0;
}

void pvlock_vm_free(struct pvlock_vm *pv)
{
	if (!pv)
		return;
	for (uint32_t i = 0; i < pv->nr_vcpus; i++) {
		struct hv_ioeventfd io = kick_ioeventfd(pv, i);

		if (pv->vcpu[i].ioeventfd)
			hv_vm_ioeventfd(pv->hv, &io, false);
		if (pv->vcpu[i].kick_fd >= 0)
			close(pv->vcpu[i].kick_fd);
	}
	free(pv->vcpu);
	pthread_mutex_destroy(&pv->shared_lock);
	free(pv);
}

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

static int64_t do_wait(struct pvlock_vm *pv, uint32_t vcpu, uint64_t gpa, uint64_t expected,
		       uint64_t timeout_ns)
{
	struct pvlock_vcpu *v = &pv->vcpu[vcpu];
	const uint32_t *word;
	uint64_t start;
	int ret;

	if (gpa & 3)
		return LKS_EINVAL;
	word = pv->env.guest_ptr(pv->env.opaque, gpa, sizeof(*word));
	if (!word)
		return LKS_EFAULT;
	v->calls.waits++;
	if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != (uint32_t)expected) {
		v->calls.waits_changed++;
		return LKS_WAIT_CHANGED;
	}
	start = util_now_ns();
	ret = pv->env.sleep(pv->env.opaque, vcpu, v->kick_fd, timeout_ns);
	v->calls.wait_ns += util_now_ns() - start;
	if (ret == 0) {
		v->calls.waits_timeout++;
		return LKS_WAIT_TIMEOUT;
	}
	drain(v->kick_fd);
	v->calls.waits_woken++;
	return LKS_WAIT_WOKEN; /* kicked, or the VMM wanted the thread: the guest re-checks */
}

static int64_t do_kick(struct pvlock_vm *pv, uint32_t vcpu, uint64_t target)
{
	const uint64_t one = 1;

	if (target >= pv->nr_vcpus)
		return LKS_EINVAL;
	pv->vcpu[vcpu].calls.kicks++;
	if (write(pv->vcpu[target].kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return LKS_EFAULT;
	return 0;
}

static int64_t do_yield_to(struct pvlock_vm *pv, uint32_t vcpu, uint64_t target)
{
	if (target >= pv->nr_vcpus)
		return LKS_EINVAL;
	pv->vcpu[vcpu].calls.yields++;
	if (pv->env.yield_to)
		pv->env.yield_to(pv->env.opaque, vcpu, (uint32_t)target);
	else
		sched_yield(); /* without a scheduler: give the host CPU to whoever waits for it */
	return 0;
}

static int64_t do_switch(struct pvlock_vm *pv, uint32_t vcpu)
{
	int64_t ret;

	if (!pv->env.switch_cpu)
		return LKS_ENOSYS;
	ret = pv->env.switch_cpu(pv->env.opaque, vcpu);
	if (ret == LKS_SWITCH_DONE)
		pv->vcpu[vcpu].calls.switches++;
	else
		pv->vcpu[vcpu].calls.switches_not_asked++;
	return ret;
}

/* The kept registration equal to (page, nr), made if new; NULL when LKS_SHARED_SETUP_MAX
 * distinct ones exist.  Under shared_lock. */
static const struct pvlock_shared *keep(struct pvlock_vm *pv, struct lks_shared_page *page,
					uint32_t nr)
{
	for (unsigned i = 0; i < pv->nr_kept; i++)
		if (pv->kept[i].page == page && pv->kept[i].nr == nr)
			return &pv->kept[i];
	if (pv->nr_kept == LKS_SHARED_SETUP_MAX)
		return NULL;
	pv->kept[pv->nr_kept] = (struct pvlock_shared){ .page = page, .nr = nr };
	return &pv->kept[pv->nr_kept++];
}

static int64_t do_shared_setup(struct pvlock_vm *pv, uint64_t gpa, uint64_t size)
{
	const struct pvlock_shared *reg;
	struct lks_shared_page *page;
	uint64_t need = sizeof(*page) + (uint64_t)pv->nr_vcpus * sizeof(page->vcpu[0]);
	uint32_t nr;

	if (gpa == 0 && size == 0) {
		__atomic_store_n(&pv->shared, NULL, __ATOMIC_RELEASE);
		return 0;
	}
	if (gpa % 64 || size < sizeof(*page) || size > SHARED_MAX)
		return LKS_EINVAL;
	page = pv->env.guest_ptr(pv->env.opaque, gpa, size);
	if (!page)
		return LKS_EFAULT;
	/* A page too small for every vCPU is accepted: the detector reads what it covers. */
	nr = (uint32_t)(((size < need ? size : need) - sizeof(*page)) / sizeof(page->vcpu[0]));
	pthread_mutex_lock(&pv->shared_lock);
	reg = keep(pv, page, nr);
	if (reg)
		__atomic_store_n(&pv->shared, reg, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&pv->shared_lock);
	return reg ? 0 : LKS_EBUSY;
}

int64_t pvlock_call(struct pvlock_vm *pv, uint32_t vcpu, uint32_t nr, uint64_t a0, uint64_t a1,
		    uint64_t a2)
{
	int64_t ret;

	if (vcpu >= pv->nr_vcpus)
		return LKS_EINVAL;
	switch (nr) {
	case LKS_CALL_WAIT:
		ret = do_wait(pv, vcpu, a0, a1, a2);
		break;
	case LKS_CALL_KICK:
		ret = do_kick(pv, vcpu, a0);
		break;
	case LKS_CALL_YIELD_TO:
		ret = do_yield_to(pv, vcpu, a0);
		break;
	case LKS_CALL_SHARED_SETUP:
		ret = do_shared_setup(pv, a0, a1);
		break;
	case LKS_CALL_SWITCH:
		ret = do_switch(pv, vcpu);
		break;
	default:
		ret = LKS_ENOSYS;
		break;
	}
	if (ret < 0)
		pv->vcpu[vcpu].calls.errors++;
	return ret;
}

void pvlock_bad_kick(struct pvlock_vm *pv, uint32_t vcpu, uint64_t value)
{
	if (vcpu < pv->nr_vcpus)
		pv->vcpu[vcpu].calls.errors++;
}

void pvlock_vcpu_calls(const struct pvlock_vm *pv, uint32_t vcpu, struct pvlock_vcpu_calls *out)
{
	if (vcpu < pv->nr_vcpus)
		*out = pv->vcpu[vcpu].calls;
	else
		memset(out, 0, sizeof(*out));
}

const struct lks_shared_page *pvlock_shared_page(const struct pvlock_vm *pv, uint32_t *nr)
{
	const struct pvlock_shared *reg = __atomic_load_n(&pv->shared, __ATOMIC_ACQUIRE);

	*nr = reg ? reg->nr : 0;
	return reg ? reg->page : NULL;
}
