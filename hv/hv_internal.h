/*
 * Internal layout of the hv objects, shared by the hv/ sources only.
 */
#ifndef LOCKSTEP_HV_INTERNAL_H
#define LOCKSTEP_HV_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <sys/ioctl.h>

#include "hv/hv.h"

struct hv_sys {
	int fd;
	int run_size; /* KVM_GET_VCPU_MMAP_SIZE */
	int max_vcpus;
	int api_version; /* KVM_GET_API_VERSION */
};

struct hv_vm {
	struct hv_sys *sys;
	int fd;
	bool sync_regs; /* KVM_CAP_SYNC_REGS covers KVM_SYNC_X86_REGS */
	int vfio_fd;	/* KVM's VFIO device, made with the first passthrough device; -1 */
};

struct hv_vcpu {
	struct hv_vm *vm;
	uint32_t id;
	int fd;
	struct kvm_run *run;
	int run_size;
	int kick_signo; /* 0 until the vCPU thread registered itself */
	pthread_t thread;
};

/* ioctl that retries on EINTR where the call has no side effects before failing, and returns
 * its result or -errno. */
static inline int hv_ioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, req, arg);
	} while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : ret;
}

int hv_stats_from_fd(int fd, struct hv_stats **out);

#endif /* LOCKSTEP_HV_INTERNAL_H */
