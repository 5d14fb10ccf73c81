/*
 * The doorbell page: lockstep's paravirtual call interface (pvlock/abi.h), an MMIO page that
 * works from ring 3 and ring 0 on every KVM.  A call is an 8-byte read at LKS_DB_CALL(nr);
 * its arguments are in the vCPU's RDI/RSI/RDX at the exit and the value read back is the
 * result.  This file decodes and validates the access and answers the calls that need no
 * other module; malformed accesses get LKS_EINVAL (reads) or are counted and dropped (writes),
 * and the VM carries on.
 *
 * Counters are atomics: every vCPU thread calls in.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pvlock/abi.h"
#include "vm/vm_internal.h"

struct vm_doorbell {
	struct vm *vm;
	uint64_t calls[16]; /* atomic */
	uint64_t errors;    /* atomic */
};

int vm_doorbell_new(struct vm *vm, struct vm_doorbell **out)
{
	struct vm_doorbell *db = calloc(1, sizeof(*db));

	if (!db)
		return -ENOMEM;
	db->vm = vm;
	*out = db;
	return 0;
}

void vm_doorbell_free(struct vm_doorbell *db)
{
	free(db);
}

static int64_t call(struct vm_doorbell *db, struct vm_vcpu *vcpu, uint32_t nr)
{
	switch (nr) {
	case LKS_CALL_PROBE:
		return (int64_t)LKS_PROBE_VALUE;
	case LKS_CALL_NOP:
		return 0;
	case LKS_CALL_TIME_NS:
		return (int64_t)util_now_ns();
	default:
		/* WAIT, KICK, YIELD_TO, SHARED_SETUP; unknown numbers get LKS_ENOSYS there. */
		if (!db->vm->lockwatch)
			return LKS_ENOSYS;
		return vm_lockwatch_call(db->vm->lockwatch, vcpu, nr);
	}
}

static void bad_access(struct vm_doorbell *db, struct vm_io *io, const char *why)
{
	__atomic_add_fetch(&db->errors, 1, __ATOMIC_RELAXED);
	util_log_limited(&db->vm->log, &db->vm->guest_log_limit, UTIL_LOG_WARN,
			 "vCPU %u: doorbell %s %u bytes at +0x%llx: %s", io->vcpu->index,
			 io->write ? "write" : "read", io->size, (unsigned long long)io->offset,
			 why);
}

void vm_doorbell_io(void *opaque, struct vm_io *io)
{
	struct vm_doorbell *db = opaque;
	int64_t result = LKS_EINVAL;
	uint32_t nr;

	if (io->write) {
		/* A KICK write that reached userspace matched no vCPU's ioeventfd. */
		if (io->offset == LKS_DB_KICK && db->vm->lockwatch) {
			uint64_t value = 0;

			memcpy(&value, io->data, io->size < 8 ? io->size : 8);
			vm_lockwatch_bad_kick(db->vm->lockwatch, io->vcpu, value);
		}
		bad_access(db, io,
			   io->offset == LKS_DB_KICK ? "kick of a vCPU that does not exist" :
						       "not a call register");
		return;
	}
	if (io->offset >= LKS_DB_CALL_LIMIT || io->offset % 8 || io->size != 8) {
		bad_access(db, io, "calls are 8-byte reads of an aligned call register");
	} else {
		nr = (uint32_t)(io->offset / 8);
		if (nr < 16)
			__atomic_add_fetch(&db->calls[nr], 1, __ATOMIC_RELAXED);
		result = call(db, io->vcpu, nr);
	}
	memcpy(io->data, &result, io->size < 8 ? io->size : 8);
}

void vm_doorbell_stats(struct vm_doorbell *db, struct vm_doorbell_stats *st)
{
	for (int i = 0; i < 16; i++)
		st->calls[i] = __atomic_load_n(&db->calls[i], __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&db->errors, __ATOMIC_RELAXED);
}
