/*
 * The worker's seccomp lists (vm/seccomp.c) for a VM without passthrough devices: no thread
 * kind may issue a VFIO ioctl, on any descriptor, nor move KVM memory slots; those are allowed
 * only where the VM has passthrough devices (vm_passthrough_ioctls, checked in the nested
 * beds).  Each filter is installed for real in a child process, which then makes one call:
 * it exits 0 if the call came back (allowed, whatever it returned), or dies of SIGSYS.  A call
 * every list allows (KVM_IRQ_LINE on the VM's descriptor) shows that a child can pass.
 *
 * Needs /dev/kvm for a real VM descriptor (the lists pin ioctls to it); skipped without.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/hv.h"
#include "iommu/iommu.h"
#include "tests/unit/vm/vmtest.h"

#define FDS_TRIED 32 /* every descriptor a test process has open, and then some */

struct fixture {
	struct hv_sys *sys;
	struct vm *vm;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char why[256];

	if (!f || hv_sys_open("/dev/kvm", &f->sys, why, sizeof(why))) {
		free(f);
		return -1;
	}
	f->vm = vmtest_vm_new("seccomp", 1, 16u << 20, -1, 10);
	if (!f->vm || hv_vm_create(f->sys, &f->vm->hv)) {
		vmtest_vm_free(f->vm);
		hv_sys_close(f->sys);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	hv_vm_destroy(f->vm->hv);
	vmtest_vm_free(f->vm);
	hv_sys_close(f->sys);
	free(f);
	return 0;
}

/* Whether the filter of `kind` lets ioctl(fd, cmd) through (the child survives it). */
static bool allowed(struct vm *vm, enum vm_thread_kind kind, int fd, unsigned long cmd)
{
	struct vm_filter *filter;
	unsigned count;
	pid_t pid;
	int st;

	assert_int_equal(vm_seccomp_build(vm, kind, NULL, &filter, &count), 0);
	assert_true(count > 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSYS, SIG_DFL);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || vm_seccomp_install(filter))
			_exit(2);
		ioctl(fd, cmd, NULL); /* NULL: an allowed call fails with EFAULT and does nothing */
		_exit(0);
	}
	vm_seccomp_free(filter);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) ? WEXITSTATUS(st) == 0 : WTERMSIG(st) == SIGSYS);
	return WIFEXITED(st);
}

static const unsigned long vfio_cmds[] = {
	VFIO_DEVICE_SET_IRQS,	    VFIO_DEVICE_RESET,	      VFIO_IOMMU_UNMAP_DMA,
	VFIO_IOMMU_MAP_DMA,	    VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER,
	VFIO_GROUP_UNSET_CONTAINER, VFIO_SET_IOMMU,	      VFIO_DEVICE_GET_REGION_INFO,
};

static void no_vfio_without_passthrough(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = f->vm;
	int vm_fd = hv_vm_fd(vm->hv);

	assert_null(vm->passthrough);
	for (int kind = 0; kind < VM_THREAD_KINDS; kind++) {
		struct iommu_ioctl calls[4];

		assert_int_equal(vm_passthrough_ioctls(vm, kind, calls, 4), 0);
		/* The harness: a call this kind makes passes. */
		if (kind != VM_THREAD_STEERING)
			assert_true(allowed(vm, kind, vm_fd, KVM_IRQ_LINE));
		else
			assert_true(allowed(vm, kind, vm_fd, KVM_SET_GSI_ROUTING));
		assert_false(allowed(vm, kind, vm_fd, KVM_SET_USER_MEMORY_REGION));
		for (size_t c = 0; c < sizeof(vfio_cmds) / sizeof(vfio_cmds[0]); c++)
			for (int fd = 0; fd < FDS_TRIED; fd++)
				assert_false(allowed(vm, kind, fd, vfio_cmds[c]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(no_vfio_without_passthrough, setup, teardown),
	};

	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		fprintf(stderr, "no /dev/kvm: skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
