/*
 * The machine: builds a VM from its definition (KVM VM, RAM, image, firmware tables, devices,
 * vCPUs), runs it until something asks it to stop, and tears it down in reverse order.
 *
 * The control (main) thread owns struct vm.  vCPU threads read it and report a stop through
 * vm_request_stop(), whose first caller decides the reason and exit status; an eventfd wakes
 * the control thread, which then kicks every vCPU out of KVM_RUN and joins them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "host/host.h"
#include "pvlock/abi.h"
#include "vm/pci.h"
#include "vm/vm_internal.h"

#define IMAGE_MAX (512u << 20)
#define COM1_PORT 0x3f8
#define FWCFG_PORT 0x510

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int exit_code)
{
	uint64_t one = 1;

	/* The first request decides both the reason and the code, together. */
	pthread_mutex_lock(&vm->stop_lock);
	if (atomic_load(&vm->stop_reason) != VM_STOP_NONE) {
		pthread_mutex_unlock(&vm->stop_lock);
		return;
	}
	vm->exit_code = exit_code;
	atomic_store_explicit(&vm->stop_reason, (int)reason, memory_order_release);
	pthread_mutex_unlock(&vm->stop_lock);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow with one write; nothing else can fail here. */
	}
}

int vm_exit_status(struct vm *vm)
{
	int reason, code;

	pthread_mutex_lock(&vm->stop_lock);
	reason = atomic_load(&vm->stop_reason);
	code = vm->exit_code;
	pthread_mutex_unlock(&vm->stop_lock);
	switch (reason) {
	case VM_STOP_GUEST_EXIT:
	case VM_STOP_GUEST_CRASH:
	case VM_STOP_ERROR:
	case VM_STOP_TIMEOUT:
		return code;
	default:
		return VM_EXIT_OK;
	}
}

/*
 * A file the definition names: beneath an allowed directory and with the worker user's
 * permissions when lockstepd started us (sandbox_open), as given when a user runs us by hand.
 */
int vm_open_defined(struct vm *vm, const struct vm_options *opts, const char *key, const char *path,
		    int flags, mode_t mode)
{
	char err[768];
	int fd;

	if (!opts->allowed) {
		fd = open(path, flags | O_CLOEXEC, mode);
		if (fd < 0) {
			fd = -errno;
			util_log(&vm->log, UTIL_LOG_ERROR, "%s %s: %s", key, path, strerror(errno));
		}
		return fd;
	}
	fd = sandbox_open(opts->allowed, opts->open_as, key, path, flags, mode, err, sizeof(err));
	if (fd < 0)
		util_log(&vm->log, UTIL_LOG_ERROR, "%s", err);
	return fd;
}

/* Reads a file the definition names (the kernel, the initrd) whole. */
static int read_boot_file(struct vm *vm, const struct vm_options *opts, const char *what,
			  const char *path, uint8_t **buf, size_t *len, int *status)
{
	int fd, ret;

	fd = vm_open_defined(vm, opts, what, path, O_RDONLY, 0);
	if (fd < 0) {
		*status = VM_EXIT_NOINPUT;
		return fd;
	}
	ret = util_read_fd(fd, IMAGE_MAX, (char **)buf, len);
	close(fd);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "%s %s: %s", what, path,
			 ret == -EFBIG ? "larger than 512 MiB" : strerror(-ret));
		*status = ret == -EFBIG ? VM_EXIT_CONFIG : VM_EXIT_NOINPUT;
	}
	return ret;
}

static int load_image(struct vm *vm, const struct vm_options *opts, int *status)
{
	struct vm_boot_files files = { 0 };
	uint8_t *image = NULL, *initrd = NULL;
	char err[256];
	int ret;

	ret = read_boot_file(vm, opts, "kernel", vm->cfg.kernel, &image, &files.len, status);
	if (!ret && vm->cfg.initrd)
		ret = read_boot_file(vm, opts, "initrd", vm->cfg.initrd, &initrd, &files.initrd_len,
				     status);
	if (ret)
		goto out;
	files.name = vm->cfg.kernel;
	files.image = image;
	files.initrd = initrd;
	ret = vm_boot_load(&vm->mem, &files, vm->cfg.cmdline, &vm->boot, err, sizeof(err));
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "kernel %s: %s", vm->cfg.kernel, err);
		*status = VM_EXIT_CONFIG;
	}
out:
	free(initrd);
	free(image);
	return ret;
}

/*
 * A Linux kernel spends its boot in ring 0, which a PVM KVM emulates an instruction at a
 * time: it would not come up for many minutes, if ever.  Say so at once instead.
 */
static int check_kernel_runs_here(struct vm *vm, int *status)
{
	if (vm->boot.kind == VM_BOOT_MULTIBOOT || host_flavour_detect(NULL) != HOST_KVM_PVM)
		return 0;
	util_log(&vm->log, UTIL_LOG_ERROR,
		 "kernel %s is a Linux kernel (%s), and this host's KVM is PVM (kvm_pvm), which "
		 "emulates guest ring 0 one instruction at a time: Linux cannot boot on it. Run "
		 "Linux guests on a host with hardware virtualization (kvm_intel or kvm_amd)",
		 vm->cfg.kernel, vm_boot_kind_name(vm->boot.kind));
	*status = VM_EXIT_NOKVM;
	return -EOPNOTSUPP;
}

static int open_serial_log(struct vm *vm, const struct vm_options *opts, int *status)
{
	int fd;

	vm->serial_fd = -1;
	if (!vm->cfg.serial_log)
		return 0;
	fd = vm_open_defined(vm, opts, "serial.log", vm->cfg.serial_log,
			     O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0640);
	if (fd < 0) {
		*status = VM_EXIT_NOINPUT;
		return fd;
	}
	vm->serial_fd = fd;
	return 0;
}

/* The devices the definition asks for (test devices and passthrough devices), on the PCI
 * bus or at their fixed ports: the ones that name a slot first, so that the others cannot
 * take it. */
static int add_test_devices(struct vm *vm)
{
	int ret = 0;

	for (uint32_t k = 0; k < 2 * vm->cfg.nr_devices && !ret; k++) {
		uint32_t i = k % vm->cfg.nr_devices;
		const struct vmdef_device *d = &vm->cfg.devices[i];
		char name[24];

		if ((k < vm->cfg.nr_devices) != (d->slot >= 0))
			continue;
		snprintf(name, sizeof(name), "%.15s%u", d->type, i % 100);
		if (!strcmp(d->type, "testdev"))
			ret = vm_testdev_add(vm, d->slot, name);
		else if (!strcmp(d->type, "pci-testdev"))
			ret = vm_pci_testdev_add(vm, d->slot, name);
		else if (!strcmp(d->type, "pc-testdev"))
			ret = vm_pc_testdev_new(vm, &vm->pc_testdev);
		else if (!strcmp(d->type, "vfio-pci"))
			ret = vm_passthrough_add(vm, i); /* says why itself */
		if (ret && !strcmp(d->type, "vfio-pci"))
			break;
		if (ret)
			util_log(&vm->log, UTIL_LOG_ERROR, "devices[%u] (%s): %s", i, d->type,
				 ret == -EEXIST ? "its PCI slot is taken" : strerror(-ret));
	}
	return ret;
}

/* The interrupt routing table (irq/), the device thread and the PCI host bridge. */
static int add_interrupts_and_pci(struct vm *vm)
{
	int max = hv_vm_check_cap(vm->hv, KVM_CAP_IRQ_ROUTING);
	struct irq_params params = {
		.max_routes = max > 0 && max < IRQ_ROUTES_DEFAULT ? (uint32_t)max : 0,
		.nr_vcpus = vm->cfg.vcpus,
		.steering = vm->cfg.irq.steering,
	};
	char *hashing = NULL;
	size_t len;
	int ret;

	/* Where KVM sends an unsteered lowest-priority interrupt, for the report's counters. */
	if (!util_read_file("/sys/module/kvm/parameters/vector_hashing", 8192, &hashing, &len))
		params.kvm_vector_hashing = hashing[0] == 'Y' || hashing[0] == '1';
	free(hashing);

	ret = irq_new(&irq_hv_ops, vm->hv, &params, &vm->irq);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "cannot set up interrupt routing: %s",
			 strerror(-ret));
		return ret;
	}
	irq_set_gate_probe(vm->irq, vm_steering_gate_probe, vm);
	irq_set_gated_hook(vm->irq, vm_steering_gated, vm);
	/* What the host offers for posting, while /sys is still there (the sandbox hides it). */
	irq_posting_probe("/", &vm->host_posting);
	ret = vm_devloop_new(vm, &vm->devloop);
	if (!ret)
		ret = vm_pci_new(vm, &vm->pci);
	if (!ret)
		ret = vm_pci_register(vm->pci);
	return ret;
}

/* The firmware tables, once every PCI device is in place. */
static int build_firmware(struct vm *vm)
{
	struct vm_firmware_pci pci = { 0 };

	for (unsigned i = 0; i < vm_pci_count(vm->pci); i++) {
		struct vm_pci_dev *dev = vm_pci_dev_at(vm->pci, i);
		uint8_t pin = dev->cfg[PCI_CFG_INTX_PIN];

		if (pin && pci.nr < 32) {
			pci.intx[pci.nr].slot = (uint8_t)dev->slot;
			pci.intx[pci.nr++].pin = pin;
		}
	}
	return vm_firmware_build(&vm->mem, vm->cfg.vcpus, &pci);
}

static int add_devices(struct vm *vm)
{
	const int logs[] = { vm->serial_fd, vm->console_fd };
	int ret;

	ret = vm_uart_new(vm, logs, 2, vm->cfg.serial_stdout, &vm->uart);
	if (!ret)
		ret = vm_bus_add(&vm->pio, COM1_PORT, 8, vm_uart_io, vm->uart, "com1");
	if (!ret)
		ret = vm_fwcfg_new(vm, &vm->fwcfg);
	if (!ret)
		ret = vm_bus_add(&vm->pio, FWCFG_PORT, 12, vm_fwcfg_io, vm->fwcfg, "fw_cfg");
	if (!ret)
		ret = vm_platform_register(vm);
	if (!ret)
		ret = vm_acpi_pm_new(vm, &vm->acpi_pm);
	if (!ret)
		ret = vm_bus_add(&vm->pio, VM_ACPI_PM1_EVT, 12, vm_acpi_pm_io, vm->acpi_pm,
				 "acpi-pm");
	if (!ret)
		ret = add_interrupts_and_pci(vm);
	if (!ret)
		ret = add_test_devices(vm);
	if (!ret)
		ret = vm_lockwatch_new(vm, &vm->lockwatch);
	if (!ret)
		ret = vm_doorbell_new(vm, &vm->doorbell);
	if (!ret)
		ret = vm_bus_add(&vm->mmio, LKS_DOORBELL_GPA_DEFAULT, LKS_DOORBELL_SIZE,
				 vm_doorbell_io, vm->doorbell, "doorbell");
	return ret;
}

static int create_vcpus(struct vm *vm)
{
	int ret;

	vm->vcpus = calloc(vm->cfg.vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	/* Every gate starts open: without lockstepd's scheduler the vCPUs run freely. */
	ret = sched_page_create(vm->cfg.vcpus, &vm->sched_fd, &vm->sched_page);
	if (!ret)
		ret = vm_mux_new(vm, &vm->mux);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < vm->cfg.vcpus; i++)
		vm->vcpus[i].slot = &vm->sched_page->slot[i];
	for (uint32_t i = 0; i < vm->cfg.vcpus && !ret; i++) {
		ret = vm_vcpu_init(vm, &vm->vcpus[i], i);
		if (!ret)
			vm->nr_vcpus++;
	}
	if (!ret) {
		/* Every vCPU's CPUID carries the TSC frequency, which only a vCPU can tell. */
		ret = hv_vcpu_tsc_khz(vm->vcpus[0].hv);
		vm->tsc_khz = ret > 0 ? (uint32_t)ret : 0;
		ret = 0;
	}
	for (uint32_t i = 0; i < vm->nr_vcpus && !ret; i++)
		ret = vm_vcpu_setup(&vm->vcpus[i]);
	if (ret)
		util_log(&vm->log, UTIL_LOG_ERROR, "cannot create vCPUs: %s", strerror(-ret));
	return ret;
}

/*
 * Pause-loop exiting: on under overcommit, where it catches spinning vCPUs; off when every
 * vCPU has a host CPU to itself (pinned or gang-scheduled within the host's size), where an
 * exit only slows a spinner whose lock holder is running anyway.  Must precede the vCPUs.
 */
static int set_pause_exits(struct vm *vm)
{
	const struct vmdef_pvlock *pc = &vm->cfg.pvlock;
	long host_cpus = vm->host_cpus;
	bool dedicated = (vm->cfg.sched.policy == VMDEF_SCHED_PINNED ||
			  vm->cfg.sched.policy == VMDEF_SCHED_GANG) &&
			 vm->cfg.vcpus <= (uint32_t)host_cpus;
	bool off = pc->pause_exits == VMDEF_PAUSE_EXITS_OFF ||
		   (pc->pause_exits == VMDEF_PAUSE_EXITS_AUTO && dedicated);
	int ret;

	vm->pause_exits = true;
	if (!off)
		return 0;
	ret = hv_vm_disable_exits(vm->hv, KVM_X86_DISABLE_EXITS_PAUSE);
	if (ret && pc->pause_exits == VMDEF_PAUSE_EXITS_OFF) {
		util_log(&vm->log, UTIL_LOG_ERROR, "this KVM cannot turn off pause exits: %s",
			 strerror(-ret));
		return ret;
	}
	vm->pause_exits = ret != 0;
	return 0;
}

static int build(struct vm *vm, const struct vm_options *opts, int *status)
{
	char why[256] = "";
	int ret;

	*status = VM_EXIT_INTERNAL;
	ret = hv_sys_open(opts->kvm_path, &vm->sys, why, sizeof(why));
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "%s", why);
		*status = VM_EXIT_NOKVM;
		return ret;
	}
	if (vm->cfg.vcpus > (uint32_t)hv_sys_max_vcpus(vm->sys)) {
		util_log(&vm->log, UTIL_LOG_ERROR, "this KVM allows at most %d vCPUs per VM",
			 hv_sys_max_vcpus(vm->sys));
		*status = VM_EXIT_CONFIG;
		return -EINVAL;
	}
	ret = vm_memory_init(&vm->mem, vm->cfg.memory);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "cannot reserve %llu MiB of guest RAM: %s",
			 (unsigned long long)(vm->cfg.memory >> 20), strerror(-ret));
		return ret;
	}
	ret = load_image(vm, opts, status);
	if (!ret)
		ret = check_kernel_runs_here(vm, status);
	if (ret)
		return ret;
	ret = open_serial_log(vm, opts, status);
	if (ret)
		return ret;
	*status = VM_EXIT_NOKVM;
	ret = hv_vm_create(vm->sys, &vm->hv);
	if (!ret)
		ret = hv_vm_create_irqchip(vm->hv);
	if (!ret)
		ret = vm_memory_map(&vm->mem, vm->hv);
	if (!ret)
		ret = hv_sys_supported_cpuid(vm->sys, &vm->supported_cpuid);
	if (!ret)
		vm_cpuid_add_emulated(vm->supported_cpuid,
				      hv_vm_check_cap(vm->hv, KVM_CAP_TSC_DEADLINE_TIMER) > 0);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "cannot create the KVM VM: %s", strerror(-ret));
		return ret;
	}
	ret = set_pause_exits(vm);
	if (ret)
		return ret;
	ret = vm_passthrough_init(vm, opts, status);
	if (ret)
		return ret;
	*status = VM_EXIT_INTERNAL;
	ret = add_devices(vm);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "cannot create devices: %s", strerror(-ret));
		return ret;
	}
	ret = build_firmware(vm);
	if (ret)
		return ret;
	return create_vcpus(vm);
}

int vm_create(const struct vmdef *cfg, const struct vm_options *opts, struct vm **out, int *status)
{
	char prefix[96];
	struct vm *vm;
	int ret;

	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		*status = VM_EXIT_INTERNAL;
		return -ENOMEM;
	}
	vm->start_ns = opts->start_ns ? opts->start_ns : util_now_ns();
	vm->serial_fd = -1;
	vm->console_fd = opts->console_fd; /* borrowed: its opener closes it */
	vm->sched_fd = -1;
	vm->kick_signal = VM_KICK_SIGNAL;
	vm->host_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	vm->next_slot = VM_SLOT_FIRST_FREE;
	snprintf(prefix, sizeof(prefix), "lockstep-vm[%s]", cfg->name);
	util_log_init(&vm->log, prefix, opts->quiet ? UTIL_LOG_ERROR : UTIL_LOG_INFO, 2);
	util_log_stamp_auto(&vm->log, false); /* times in lockstepd's NAME.log, none by hand */
	util_ratelimit_init(&vm->guest_log_limit, 5ull * 1000000000ull, 10);
	pthread_mutex_init(&vm->stop_lock, NULL);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0) {
		free(vm);
		*status = VM_EXIT_INTERNAL;
		return -errno;
	}
	/* Run-state sampling reads its threads' stat files through this (vm/runstate.c). */
	vm->task_dir_fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = vmdef_copy(&vm->cfg, cfg);
	if (!ret)
		ret = build(vm, opts, status);
	else
		*status = VM_EXIT_INTERNAL;
	if (ret) {
		vm_destroy(vm);
		return ret;
	}
	*out = vm;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	/* The steering thread reads the vCPUs' statistics, the device thread raises lines. */
	vm_steering_stop(vm);
	vm_devloop_stop(vm->devloop);
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		vm_vcpu_join(&vm->vcpus[i]);
		vm_vcpu_fini(&vm->vcpus[i]);
	}
	free(vm->vcpus);
	vm_pci_free(vm->pci);
	vm_passthrough_fini(vm); /* DMA unmapped once no device uses it */
	vm_pc_testdev_free(vm->pc_testdev);
	vm_devloop_free(vm->devloop);
	irq_free(vm->irq);
	vm_mux_free(vm->mux);
	sched_page_unmap(vm->sched_page, vm->cfg.vcpus, SCHED_PAGE_VERSION);
	if (vm->sched_fd >= 0)
		close(vm->sched_fd);
	vm_doorbell_free(vm->doorbell);
	vm_lockwatch_free(vm->lockwatch);
	vm_acpi_pm_free(vm->acpi_pm);
	vm_fwcfg_free(vm->fwcfg);
	vm_uart_free(vm->uart);
	free(vm->supported_cpuid);
	hv_vm_destroy(vm->hv);
	hv_sys_close(vm->sys);
	vm_memory_fini(&vm->mem);
	if (vm->serial_fd >= 0)
		close(vm->serial_fd);
	if (vm->task_dir_fd >= 0)
		close(vm->task_dir_fd);
	close(vm->stop_fd);
	pthread_mutex_destroy(&vm->stop_lock);
	vmdef_fini(&vm->cfg);
	free(vm);
}

bool vm_wait_stop(struct vm *vm, uint64_t deadline_ns)
{
	for (;;) {
		struct pollfd pfd = { .fd = vm->stop_fd, .events = POLLIN };
		uint64_t now = util_now_ns();
		int timeout_ms;

		if (vm_stopping(vm))
			return true;
		if (deadline_ns && now >= deadline_ns)
			return false;
		timeout_ms = deadline_ns ? (int)((deadline_ns - now + 999999) / 1000000) : -1;
		if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
			return vm_stopping(vm);
	}
}

int vm_run(struct vm *vm)
{
	int ret;

	/* Devices and interrupt steering first: the guest's first interrupt finds them. */
	ret = vm_devloop_start(vm->devloop);
	if (!ret)
		ret = vm_steering_start(vm);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "cannot start the device threads: %s",
			 strerror(-ret));
		vm_request_stop(vm, VM_STOP_ERROR, VM_EXIT_INTERNAL);
		return ret;
	}

	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		ret = vm_vcpu_start(&vm->vcpus[i]);
		if (ret) {
			util_log(&vm->log, UTIL_LOG_ERROR, "cannot start vCPU %u: %s", i,
				 strerror(-ret));
			vm_request_stop(vm, VM_STOP_ERROR, VM_EXIT_INTERNAL);
			break;
		}
	}
	return ret;
}

void vm_stop_vcpus(struct vm *vm)
{
	vm_request_stop(vm, VM_STOP_REQUEST, 0);
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].thread_started)
			vm_vcpu_kick(&vm->vcpus[i]);
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		vm_vcpu_join(&vm->vcpus[i]);
}
