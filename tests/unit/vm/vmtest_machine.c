/*
 * A struct vm without KVM for device tests and the device fuzz target: the fields the
 * platform devices read (definition, RAM, log, guest rate limit, stop eventfd, buses), filled
 * the way vm_create() fills them, and the devices put on the buses at lockstep-vm's addresses.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pvlock/abi.h"
#include "tests/unit/vm/vmtest.h"

struct vm *vmtest_vm_new(const char *name, uint32_t vcpus, uint64_t memory, int log_fd,
			 uint32_t log_burst)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vmdef_init(&vm->cfg);
	util_strlcpy(vm->cfg.name, name, sizeof(vm->cfg.name));
	vm->cfg.vcpus = vcpus;
	vm->cfg.memory = memory;
	util_log_init(&vm->log, "lockstep-vm[test]", UTIL_LOG_DEBUG, log_fd);
	util_ratelimit_init(&vm->guest_log_limit, 1000000000ull, log_burst);
	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	vm->serial_fd = -1;
	vm->console_fd = -1;
	vm->task_dir_fd = -1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0 || vm_memory_init(&vm->mem, memory)) {
		if (vm->stop_fd >= 0)
			close(vm->stop_fd);
		free(vm);
		return NULL;
	}
	return vm;
}

void vmtest_vm_free(struct vm *vm)
{
	if (!vm)
		return;
	vm_doorbell_free(vm->doorbell);
	vm_acpi_pm_free(vm->acpi_pm);
	vm_fwcfg_free(vm->fwcfg);
	vm_uart_free(vm->uart);
	vm_memory_fini(&vm->mem);
	vmdef_fini(&vm->cfg);
	close(vm->stop_fd);
	free(vm);
}

int vmtest_vm_add_devices(struct vm *vm, int serial_fd)
{
	int ret;

	vm->serial_fd = serial_fd;
	ret = vm_uart_new(vm, &serial_fd, 1, false, &vm->uart);
	if (!ret)
		ret = vm_bus_add(&vm->pio, VMTEST_COM1_PORT, 8, vm_uart_io, vm->uart, "com1");
	if (!ret)
		ret = vm_fwcfg_new(vm, &vm->fwcfg);
	if (!ret)
		ret = vm_bus_add(&vm->pio, VMTEST_FWCFG_PORT, 12, vm_fwcfg_io, vm->fwcfg, "fw_cfg");
	if (!ret)
		ret = vm_platform_register(vm);
	if (!ret)
		ret = vm_acpi_pm_new(vm, &vm->acpi_pm);
	if (!ret)
		ret = vm_bus_add(&vm->pio, VM_ACPI_PM1_EVT, 12, vm_acpi_pm_io, vm->acpi_pm,
				 "acpi-pm");
	if (!ret)
		ret = vm_doorbell_new(vm, &vm->doorbell);
	if (!ret)
		ret = vm_bus_add(&vm->mmio, LKS_DOORBELL_GPA_DEFAULT, LKS_DOORBELL_SIZE,
				 vm_doorbell_io, vm->doorbell, "doorbell");
	return ret;
}
