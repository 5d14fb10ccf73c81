/*
 * struct irq_ops over hv/: how the worker's routing table reaches KVM.  `ctx` is the VM's
 * struct hv_vm.  Thin on purpose: everything irq/ decides is in the callers, which the unit
 * tests drive with their own ops.
 */
#include <string.h>

#include "hv/hv.h"
#include "irq/irq.h"

static int set_routing(void *ctx, const struct kvm_irq_routing *routing)
{
	return hv_vm_set_gsi_routing(ctx, routing);
}

static int irqfd(void *ctx, int fd, uint32_t gsi, int resample_fd, bool assign)
{
	return hv_vm_irqfd(ctx, fd, gsi, resample_fd, assign);
}

static int signal_msi(void *ctx, const struct irq_msi *msg)
{
	return hv_vm_signal_msi(ctx, msg->address, msg->data);
}

static int set_line(void *ctx, uint32_t gsi, bool level)
{
	return hv_vm_irq_line_status(ctx, gsi, level);
}

static int ioapic_redirtbl(void *ctx, uint64_t rte[IRQ_PINS])
{
	struct kvm_ioapic_state state;
	int ret = hv_vm_get_ioapic(ctx, &state);

	if (ret)
		return ret;
	for (unsigned pin = 0; pin < IRQ_PINS; pin++)
		rte[pin] = state.redirtbl[pin].bits;
	return 0;
}

const struct irq_ops irq_hv_ops = {
	.set_routing = set_routing,
	.irqfd = irqfd,
	.signal_msi = signal_msi,
	.set_line = set_line,
	.ioapic_redirtbl = ioapic_redirtbl,
};
