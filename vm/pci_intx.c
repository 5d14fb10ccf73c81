/*
 * A PCI device's INTx line and where a raised vector goes: MSI-X or MSI when the guest
 * enabled them (vm/pci_msi.c), else INTx, a level the device holds until it is serviced.
 *
 * The line is a resample irqfd on the IOAPIC pin QEMU's PC machine gives the slot; an
 * emulated device's resample eventfd is watched by the device thread, which asserts the line
 * again after the guest's EOI while the device still wants service.  A passthrough device
 * (intx_external) watches its own resample eventfd through VFIO's unmask instead.
 *
 * Threads and locks: see vm/pci.h; the state here is under dev->lock.  Raises come from any
 * thread, resamples from the device thread; lines are made and removed with pci->lock held.
 */
#include <pthread.h>
#include <stdio.h>

#include "vm/pci.h"
#include "vm/vm_internal.h"

static bool intx_enabled(const struct vm_pci_dev *dev)
{
	uint16_t cmd = (uint16_t)vm_pci_cfg_get(dev, PCI_CFG_COMMAND, 2);
	bool msi = dev->msi_cap && (dev->cfg[dev->msi_cap + 2] & PCI_MSI_FLAGS_ENABLE);
	bool msix = dev->msix_cap &&
		    (vm_pci_cfg_get(dev, dev->msix_cap + 2, 2) & PCI_MSIX_FLAGS_ENABLE);

	return dev->intx_line && !(cmd & PCI_CMD_INTX_DISABLE) && !msi && !msix;
}

void vm_pci_intx_update_locked(struct vm_pci_dev *dev)
{
	if (dev->intx_wanted && intx_enabled(dev))
		irq_line_raise(dev->intx_line);
}

void vm_pci_intx_set(struct vm_pci_dev *dev, bool wanted)
{
	pthread_mutex_lock(&dev->lock);
	dev->intx_wanted = wanted;
	vm_pci_intx_update_locked(dev);
	pthread_mutex_unlock(&dev->lock);
}

bool vm_pci_intx_wanted(struct vm_pci_dev *dev)
{
	bool wanted;

	pthread_mutex_lock(&dev->lock);
	wanted = dev->intx_wanted && dev->intx_line;
	pthread_mutex_unlock(&dev->lock);
	return wanted;
}

/* The device thread: the guest sent EOI for the pin and KVM lowered the line. */
static void intx_resampled(void *arg)
{
	struct vm_pci_dev *dev = arg;

	pthread_mutex_lock(&dev->lock);
	irq_line_resampled(dev->intx_line);
	vm_pci_intx_update_locked(dev);
	pthread_mutex_unlock(&dev->lock);
}

static void raise_vector(struct vm_pci_dev *dev, unsigned v, bool signal)
{
	pthread_mutex_lock(&dev->lock);
	/* MSI-X or MSI if enabled (vm/pci_msi.c); else INTx, a level the device holds. */
	if (!vm_pci_msi_raise_locked(dev, v, signal)) {
		if (dev->intx_line) {
			dev->intx_wanted = true;
			vm_pci_intx_update_locked(dev);
		} else {
			dev->dropped++;
		}
	}
	pthread_mutex_unlock(&dev->lock);
}

void vm_pci_raise(struct vm_pci_dev *dev, unsigned v)
{
	raise_vector(dev, v, false);
}

void vm_pci_signal(struct vm_pci_dev *dev, unsigned v)
{
	raise_vector(dev, v, true);
}

const char *vm_pci_irq_mode(struct vm_pci_dev *dev)
{
	const char *mode = "none";

	pthread_mutex_lock(&dev->lock);
	if (dev->msix_cap && (vm_pci_cfg_get(dev, dev->msix_cap + 2, 2) & PCI_MSIX_FLAGS_ENABLE))
		mode = "msix";
	else if (dev->msi_cap && (dev->cfg[dev->msi_cap + 2] & PCI_MSI_FLAGS_ENABLE))
		mode = "msi";
	else if (intx_enabled(dev))
		mode = "intx";
	pthread_mutex_unlock(&dev->lock);
	return mode;
}

int vm_pci_intx_add(struct vm_pci_dev *dev, uint8_t pin)
{
	char name[IRQ_NAME_MAX];
	int ret;

	dev->irq = vm_pci_intx_irq(dev->slot, pin);
	vm_pci_cfg_set(dev, PCI_CFG_INTX_PIN, 1, pin);
	vm_pci_cfg_set(dev, PCI_CFG_INTX_LINE, 1, dev->irq);
	snprintf(name, sizeof(name), "%.26s.intx", dev->name);
	ret = irq_line_new(dev->vm->irq, dev->irq, IRQ_LINE_LEVEL, name, &dev->intx_line);
	if (ret)
		return ret;
	if (dev->vm->devloop && !dev->intx_external)
		ret = vm_devloop_add(dev->vm->devloop, irq_line_resample_fd(dev->intx_line),
				     intx_resampled, dev);
	return ret;
}

void vm_pci_intx_remove(struct vm_pci_dev *dev)
{
	if (!dev->intx_line)
		return;
	if (!dev->intx_external)
		vm_devloop_del(dev->vm->devloop, irq_line_resample_fd(dev->intx_line));
	irq_line_free(dev->intx_line);
	dev->intx_line = NULL;
}
