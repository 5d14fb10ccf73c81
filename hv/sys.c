/*
 * /dev/kvm: opening it, the API version, and the capabilities lockstep cannot run without.
 *
 * Called once per process (lockstep-vm) at start, and by its --host-probe, which opens
 * /dev/kvm unchecked so it can report what is missing.  A missing capability is reported in
 * words, because "KVM_CREATE_IRQCHIP failed: EINVAL" helps nobody decide what to do.  The check
 * itself takes the answers as a callback (hv_requirements_check), so it is tested without a KVM.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/hv_internal.h"

struct required_cap {
	long cap;
	const char *what;
};

static const struct required_cap required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "user memory slots (KVM_CAP_USER_MEMORY)" },
	{ KVM_CAP_IRQCHIP, "an in-kernel interrupt controller (KVM_CAP_IRQCHIP)" },
	{ KVM_CAP_PIT2, "an in-kernel PIT (KVM_CAP_PIT2)" },
	{ KVM_CAP_IOEVENTFD, "ioeventfd (KVM_CAP_IOEVENTFD)" },
	{ KVM_CAP_IRQFD, "irqfd (KVM_CAP_IRQFD)" },
	{ KVM_CAP_MP_STATE, "vCPU multiprocessing states (KVM_CAP_MP_STATE)" },
	{ KVM_CAP_EXT_CPUID, "CPUID control (KVM_CAP_EXT_CPUID)" },
	{ KVM_CAP_SIGNAL_MSI, "MSI injection (KVM_CAP_SIGNAL_MSI)" },
};

/* Fills the caller's `why` buffer, which may be absent. */
#define explain(why, why_len, ...)                               \
	do {                                                     \
		if ((why) && (why_len))                          \
			snprintf((why), (why_len), __VA_ARGS__); \
	} while (0)

int hv_sys_open_unchecked(const char *path, struct hv_sys **out, char *why, size_t why_len)
{
	struct hv_sys *sys;
	int ret;

	if (!path)
		path = "/dev/kvm";
	sys = calloc(1, sizeof(*sys));
	if (!sys)
		return -ENOMEM;
	sys->fd = open(path, O_RDWR | O_CLOEXEC);
	if (sys->fd < 0) {
		ret = -errno;
		explain(why, why_len,
			"cannot open %s: %s (is the kvm module loaded, and may this user use it?)",
			path, strerror(-ret));
		goto err_free;
	}
	ret = hv_ioctl(sys->fd, KVM_GET_API_VERSION, NULL);
	sys->api_version = ret;
	if (ret != KVM_API_VERSION) {
		explain(why, why_len, "%s speaks KVM API version %d, lockstep needs %d", path, ret,
			KVM_API_VERSION);
		ret = ret < 0 ? ret : -EPROTO;
		goto err_close;
	}
	sys->run_size = hv_ioctl(sys->fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (sys->run_size < (int)sizeof(struct kvm_run)) {
		ret = sys->run_size < 0 ? sys->run_size : -EPROTO;
		explain(why, why_len, "%s: KVM_GET_VCPU_MMAP_SIZE failed: %s", path,
			strerror(-ret));
		goto err_close;
	}
	ret = hv_ioctl(sys->fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_MAX_VCPUS);
	if (ret <= 0)
		ret = hv_ioctl(sys->fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_NR_VCPUS);
	sys->max_vcpus = ret > 0 ? ret : 4; /* KVM's documented default without the cap */
	*out = sys;
	return 0;

err_close:
	close(sys->fd);
err_free:
	free(sys);
	return ret;
}

int hv_requirements_check(const char *what, int api_version, int (*check_cap)(void *arg, long cap),
			  void *arg, char *why, size_t why_len)
{
	if (api_version != KVM_API_VERSION) {
		explain(why, why_len, "%s speaks KVM API version %d, lockstep needs %d", what,
			api_version, KVM_API_VERSION);
		return api_version < 0 ? api_version : -EPROTO;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (check_cap(arg, required_caps[i].cap) <= 0) {
			explain(why, why_len, "this KVM lacks %s", required_caps[i].what);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int check_extension(void *arg, long cap)
{
	return hv_ioctl(((struct hv_sys *)arg)->fd, KVM_CHECK_EXTENSION, (void *)cap);
}

int hv_sys_check_requirements(struct hv_sys *sys, char *why, size_t why_len)
{
	return hv_requirements_check("/dev/kvm", sys->api_version, check_extension, sys, why,
				     why_len);
}

int hv_sys_open(const char *path, struct hv_sys **out, char *why, size_t why_len)
{
	struct hv_sys *sys;
	int ret = hv_sys_open_unchecked(path, &sys, why, why_len);

	if (ret)
		return ret;
	ret = hv_sys_check_requirements(sys, why, why_len);
	if (ret) {
		hv_sys_close(sys);
		return ret;
	}
	*out = sys;
	return 0;
}

int hv_sys_api_version(struct hv_sys *sys)
{
	return sys->api_version;
}

void hv_sys_close(struct hv_sys *sys)
{
	if (!sys)
		return;
	close(sys->fd);
	free(sys);
}

int hv_sys_check_cap(struct hv_sys *sys, long cap)
{
	return hv_ioctl(sys->fd, KVM_CHECK_EXTENSION, (void *)cap);
}

int hv_sys_max_vcpus(struct hv_sys *sys)
{
	return sys->max_vcpus;
}

int hv_sys_supported_cpuid(struct hv_sys *sys, struct kvm_cpuid2 **out)
{
	/* KVM says E2BIG until the buffer is large enough; grow it. */
	for (uint32_t n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *cpuid;
		int ret;

		cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return -ENOMEM;
		cpuid->nent = n;
		ret = hv_ioctl(sys->fd, KVM_GET_SUPPORTED_CPUID, cpuid);
		if (ret == 0) {
			*out = cpuid;
			return 0;
		}
		free(cpuid);
		if (ret != -E2BIG)
			return ret;
	}
	return -E2BIG;
}
