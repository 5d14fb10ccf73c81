/*
 * The VM's interrupt report (the "irq" section of `lockstep-vm --stats-json`, of vm.info and
 * of `lockstep vm irqs`): the routing table with each route's counters and destination, the
 * IOAPIC redirection entries as the guest programmed them, steering, whether the host could
 * post each route's interrupts, and the PCI devices with how each signals.
 *
 * Control thread (on request, and at the end of the run); it reads irq/'s snapshot and the
 * in-kernel IOAPIC (KVM_GET_IRQCHIP, read only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/pci.h"
#include "vm/vm_internal.h"

#define IOAPIC_VECTOR(rte) ((unsigned)(rte)&0xff)
#define IOAPIC_LOGICAL (1ull << 11)
#define IOAPIC_REMOTE_IRR (1ull << 14)
#define IOAPIC_LEVEL (1ull << 15)
#define IOAPIC_MASKED (1ull << 16)
#define IOAPIC_LOWEST (1ull << 8)

static json_t *hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%#llx", (unsigned long long)v);
	return json_string(buf);
}

static json_t *vcpu_or_null(uint32_t v)
{
	return v == IRQ_NO_VCPU ? json_null() : json_integer(v);
}

static json_t *msi_json(const struct irq_msi *m)
{
	return json_pack("{s:o, s:o}", "address", hex(m->address), "data", hex(m->data));
}

/* How the guest programmed IOAPIC pin `pin` (NULL when masked and idle). */
static json_t *ioapic_json(uint64_t rte)
{
	bool logical = rte & IOAPIC_LOGICAL;
	uint32_t dest = (uint32_t)(rte >> 56);

	return json_pack(
		"{s:i, s:b, s:s, s:s, s:i, s:b, s:b}", "vector", (int)IOAPIC_VECTOR(rte), "masked",
		(rte & IOAPIC_MASKED) != 0, "trigger", rte & IOAPIC_LEVEL ? "level" : "edge",
		"dest_mode", logical ? "logical" : "physical", "dest", (int)dest, "remote_irr",
		(rte & IOAPIC_REMOTE_IRR) != 0,
		/* several allowed destinations: redirectable, which lockstep cannot steer
			  * on the in-kernel IOAPIC (irq/irq.h) */
		"redirectable",
		(rte & IOAPIC_LOWEST) && (logical ? (dest & (dest - 1)) != 0 : dest == 0xff));
}

static json_t *route_json(const struct irq_route_info *r, const uint64_t *rte,
			  const struct irq_posting *posting)
{
	const char *why = NULL;
	bool posted = irq_route_posted(posting, r, &why);
	json_t *obj = json_pack("{s:i, s:s, s:s, s:i, s:I, s:I, s:I, s:o, s:o}", "gsi", (int)r->gsi,
				"kind", r->kind == IRQ_ROUTE_MSI ? "msi" : "pin", "owner", r->owner,
				"lines", (int)r->lines, "injected", (json_int_t)r->injected, "held",
				(json_int_t)r->held, "coalesced", (json_int_t)r->coalesced,
				"last_dest_vcpu", vcpu_or_null(r->last_dest_vcpu), "to_gated",
				json_pack("{s:I, s:I, s:I, s:I}", "total", (json_int_t)r->to_gated,
					  "switching", (json_int_t)r->to_gated_switching, "nowhere",
					  (json_int_t)r->to_gated_nowhere, "miss",
					  (json_int_t)r->to_gated_miss));

	if (!obj)
		return NULL;
	if (r->kind == IRQ_ROUTE_MSI) {
		json_object_set_new(obj, "guest", msi_json(&r->guest));
		json_object_set_new(obj, "effective", msi_json(&r->effective));
		json_object_set_new(obj, "redirectable", json_boolean(r->redirectable));
		json_object_set_new(obj, "steered", json_boolean(r->steered));
		json_object_set_new(obj, "dest_vcpu", vcpu_or_null(r->dest_vcpu));
	} else if (rte && r->gsi < IRQ_PINS) {
		/* ISA IRQ 0 sits on pin 2 */
		json_object_set_new(obj, "ioapic", ioapic_json(rte[r->gsi == 0 ? 2 : r->gsi]));
	}
	json_object_set_new(obj, "posted", json_boolean(posted));
	if (why)
		json_object_set_new(obj, "not_posted", json_string(why));
	return obj;
}

static json_t *posting_json(const struct irq_posting *p)
{
	json_t *obj = json_pack("{s:s, s:b, s:i, s:b, s:b}", "kvm", p->vendor, "apicv", p->apicv,
				"iommus", (int)p->iommus, "iommu_interrupt_remapping", p->iommu_ir,
				"iommu_posting", p->iommu_posting);

	if (obj && p->counters_valid) {
		json_object_set_new(obj, "pi_notifications",
				    json_integer((json_int_t)p->pi_notifications));
		json_object_set_new(obj, "pi_wakeups", json_integer((json_int_t)p->pi_wakeups));
	}
	if (obj && p->why[0])
		json_object_set_new(obj, "why_not", json_string(p->why));
	return obj;
}

static json_t *pci_json(struct vm *vm)
{
	json_t *list = json_array();

	for (unsigned i = 0; vm->pci && i < vm_pci_count(vm->pci); i++) {
		struct vm_pci_dev *d = vm_pci_dev_at(vm->pci, i);
		json_t *bars = json_array(), *dev;
		uint16_t vendor, device;

		memcpy(&vendor, d->cfg + PCI_CFG_VENDOR, 2);
		memcpy(&device, d->cfg + PCI_CFG_DEVICE, 2);
		for (unsigned b = 0; b < VM_PCI_BARS; b++)
			if (d->bar[b].size)
				json_array_append_new(
					bars,
					json_pack("{s:i, s:s, s:I, s:o}", "bar", (int)b, "type",
						  d->bar[b].flags & VM_PCI_BAR_IO ? "io" : "mem",
						  "size", (json_int_t)d->bar[b].size, "decoded",
						  d->bar[b].decoded ? hex(d->bar[b].decoded) :
								      json_null()));
		dev = json_pack("{s:i, s:s, s:o, s:o, s:s, s:o, s:I, s:I, s:I}", "slot",
				(int)d->slot, "name", d->name, "vendor", hex(vendor), "device",
				hex(device), "irq_mode", vm_pci_irq_mode(d), "bars", bars,
				"bad_messages", (json_int_t)d->bad_messages, "dropped",
				(json_int_t)d->dropped, "bad_table_accesses",
				(json_int_t)d->bad_table_access);
		if (dev && d->irq)
			json_object_set_new(dev, "intx_irq", json_integer(d->irq));
		json_array_append_new(list, dev);
	}
	return list;
}

json_t *vm_irq_json(struct vm *vm)
{
	struct irq_route_info *routes;
	struct irq_posting posting;
	struct irq_stats st;
	uint64_t rte[IRQ_PINS];
	bool have_rte;
	json_t *list, *obj;
	uint32_t n;

	if (!vm->irq)
		return json_null();
	irq_get_stats(vm->irq, &st);
	/* Confined, the worker sees no /sys nor /proc/interrupts: the host as it was at start,
	 * without the posted-interrupt counters. */
	posting = vm->host_posting;
	if (vm->jail && vm->jail->enabled)
		posting.counters_valid = false;
	else
		irq_posting_probe("/", &posting);
	have_rte = irq_ioapic_redirtbl(vm->irq, rte) == 0;
	routes = calloc(st.max_routes, sizeof(*routes));
	if (!routes)
		return NULL;
	n = irq_get_routes(vm->irq, routes, st.max_routes);
	list = json_array();
	for (uint32_t i = 0; list && i < n && i < st.max_routes; i++) {
		const struct irq_route_info *r = &routes[i];
		bool pin_in_use = have_rte && r->gsi < IRQ_PINS &&
				  !(rte[r->gsi == 0 ? 2 : r->gsi] & IOAPIC_MASKED);

		/* Pins nobody programmed or used are left out. */
		if (r->kind == IRQ_ROUTE_PIN && !r->lines && !r->injected && !pin_in_use)
			continue;
		json_array_append_new(list, route_json(r, have_rte ? rte : NULL, &posting));
	}
	free(routes);
	obj = json_pack("{s:b, s:i, s:i, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I}, "
			"s:{s:I, s:I}, s:o, s:o, s:o}",
			"steering", st.steering, "routes_used", (int)st.routes, "routes_max",
			(int)st.max_routes, "commits", (json_int_t)st.commits, "commit_failures",
			(json_int_t)st.commit_failures, "steer", "passes",
			(json_int_t)st.steer_passes, "commits", (json_int_t)st.steer_commits,
			"moves", (json_int_t)st.steer_moves, "thread_passes",
			(json_int_t)atomic_load(&vm->steer_passes), "signal_msi", "sent",
			(json_int_t)st.signal_msi, "blocked", (json_int_t)st.signal_msi_blocked,
			"set_level", "asserted", (json_int_t)st.set_level, "coalesced",
			(json_int_t)st.set_level_coalesced, "posting", posting_json(&posting),
			"routes", list, "pci", pci_json(vm));
	if (obj && vm->pci)
		json_object_set_new(obj, "pci_unassigned_accesses",
				    json_integer((json_int_t)vm_pci_unassigned(vm->pci)));
	return obj;
}
