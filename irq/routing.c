/*
 * The GSI routing table: the legacy pins, MSI routes allocated at run time, one
 * KVM_SET_GSI_ROUTING per change with rollback, one-shot MSIs and userspace-driven lines, and
 * the statistics and route report.
 *
 * Two copies of the table: `cur`, which a change edits, and `committed`, what KVM has.  A
 * change edits `cur` and commits it whole; on success `committed` follows, on failure `cur`
 * is put back, so KVM and irq/ never disagree and a failed change leaves no trace.  Callers:
 * device emulation (vCPU threads), the steering thread, the control thread; all under
 * irq->lock.  The raise path (irq/line.c) reads only the per-GSI atomics published here after
 * each commit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irq/irq_internal.h"
#include "util/util.h"

/* KVM's irqchip numbering (KVM_IRQCHIP_PIC_MASTER etc.) for the legacy routes. */
static int add_pin_entries(struct kvm_irq_routing_entry *e, uint32_t gsi)
{
	int n = 0;

	if (gsi == 2)
		return 0; /* the cascade: nothing arrives on GSI 2 */
	if (gsi < 8)
		e[n++] = (struct kvm_irq_routing_entry){ .gsi = gsi,
							 .type = KVM_IRQ_ROUTING_IRQCHIP,
							 .u.irqchip = { KVM_IRQCHIP_PIC_MASTER,
									gsi } };
	else if (gsi < IRQ_ISA_IRQS)
		e[n++] = (struct kvm_irq_routing_entry){ .gsi = gsi,
							 .type = KVM_IRQ_ROUTING_IRQCHIP,
							 .u.irqchip = { KVM_IRQCHIP_PIC_SLAVE,
									gsi - 8 } };
	/* ISA IRQ 0 (the PIT) is wired to IOAPIC pin 2, as the MADT's override says. */
	e[n++] = (struct kvm_irq_routing_entry){ .gsi = gsi,
						 .type = KVM_IRQ_ROUTING_IRQCHIP,
						 .u.irqchip = { KVM_IRQCHIP_IOAPIC,
								gsi == 0 ? 2 : gsi } };
	return n;
}

static void build_kvm_table(struct irq *irq)
{
	struct kvm_irq_routing_entry *e = irq->kvm->entries;
	uint32_t n = 0;

	for (uint32_t gsi = 0; gsi < irq->max_routes; gsi++) {
		const struct irq_route *r = &irq->cur[gsi];

		if (r->kind == IRQ_ROUTE_PIN) {
			n += (uint32_t)add_pin_entries(&e[n], gsi);
		} else if (r->kind == IRQ_ROUTE_MSI) {
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi,
				.type = KVM_IRQ_ROUTING_MSI,
				.u.msi = { .address_lo = (uint32_t)r->effective.address,
					   .address_hi = (uint32_t)(r->effective.address >> 32),
					   .data = r->effective.data },
			};
		}
	}
	irq->kvm->nr = n;
	irq->kvm->flags = 0;
}

static void publish(struct irq *irq)
{
	for (uint32_t gsi = 0; gsi < irq->max_routes; gsi++) {
		const struct irq_route *r = &irq->committed[gsi];

		atomic_store_explicit(&irq->counters[gsi].state, irq_route_state(r),
				      memory_order_release);
	}
}

void irq_adopt_locked(struct irq *irq)
{
	memcpy(irq->committed, irq->cur, irq->max_routes * sizeof(*irq->cur));
	publish(irq);
}

int irq_commit_locked(struct irq *irq)
{
	int ret;

	build_kvm_table(irq);
	ret = irq->ops->set_routing(irq->ctx, irq->kvm);
	if (ret) {
		irq->commit_failures++;
		memcpy(irq->cur, irq->committed, irq->max_routes * sizeof(*irq->cur));
		return ret;
	}
	irq->commits++;
	irq_adopt_locked(irq);
	return 0;
}

int irq_new(const struct irq_ops *ops, void *ctx, const struct irq_params *params, struct irq **out)
{
	uint32_t max = params->max_routes ? params->max_routes : IRQ_ROUTES_DEFAULT;
	struct irq *irq;
	int ret;

	if (max <= IRQ_PINS || params->nr_vcpus == 0 || params->nr_vcpus > 255)
		return -EINVAL;
	irq = calloc(1, sizeof(*irq));
	if (!irq)
		return -ENOMEM;
	irq->ops = ops;
	irq->ctx = ctx;
	irq->max_routes = max;
	irq->nr_vcpus = params->nr_vcpus;
	irq->steering = params->steering;
	irq->kvm_vector_hashing = params->kvm_vector_hashing;
	pthread_mutex_init(&irq->lock, NULL);
	irq->cur = calloc(max, sizeof(*irq->cur));
	irq->committed = calloc(max, sizeof(*irq->committed));
	irq->counters = calloc(max, sizeof(*irq->counters));
	irq->views = calloc(params->nr_vcpus, sizeof(*irq->views));
	/* Up to two entries (PIC and IOAPIC) per legacy GSI, one per MSI route. */
	irq->kvm = calloc(1, sizeof(*irq->kvm) +
				     (max + IRQ_ISA_IRQS) * sizeof(struct kvm_irq_routing_entry));
	if (!irq->cur || !irq->committed || !irq->counters || !irq->views || !irq->kvm) {
		ret = -ENOMEM;
		goto err_free;
	}
	for (uint32_t gsi = 0; gsi < max; gsi++) {
		irq->cur[gsi].dest = IRQ_NO_VCPU;
		atomic_init(&irq->counters[gsi].last_dest, IRQ_NO_VCPU);
		atomic_init(&irq->counters[gsi].state, irq_route_state(&irq->cur[gsi]));
	}
	for (uint32_t gsi = 0; gsi < IRQ_PINS; gsi++) {
		irq->cur[gsi].kind = IRQ_ROUTE_PIN;
		strcpy(irq->cur[gsi].owner, gsi < IRQ_ISA_IRQS ? "isa" : "ioapic");
	}
	memcpy(irq->committed, irq->cur, max * sizeof(*irq->cur));
	ret = irq_commit_locked(irq);
	if (ret)
		goto err_free;
	*out = irq;
	return 0;

err_free:
	irq_free(irq);
	return ret;
}

void irq_free(struct irq *irq)
{
	if (!irq)
		return;
	free(irq->kvm);
	free(irq->views);
	free(irq->counters);
	free(irq->committed);
	free(irq->cur);
	pthread_mutex_destroy(&irq->lock);
	free(irq);
}

static bool physical_dest_valid(const struct irq *irq, const struct irq_msi *msg)
{
	uint32_t dest = (uint32_t)(msg->address >> IRQ_MSI_ADDR_DEST_SHIFT) & 0xff;

	if (msg->address & IRQ_MSI_ADDR_DEST_LOGICAL)
		return dest != 0;
	return dest == 0xff || dest < irq->nr_vcpus;
}

bool irq_msi_valid(const struct irq *irq, const struct irq_msi *msg)
{
	uint32_t mode = (msg->data & IRQ_MSI_DATA_MODE_MASK) >> IRQ_MSI_DATA_MODE_SHIFT;

	if ((msg->address & IRQ_MSI_ADDR_MASK) != IRQ_MSI_ADDR_BASE)
		return false;
	/* Fixed and lowest-priority messages carry a vector, and vectors 0-15 are reserved. */
	if ((mode == IRQ_MSI_MODE_FIXED || mode == IRQ_MSI_MODE_LOWEST) &&
	    (msg->data & IRQ_MSI_DATA_VECTOR_MASK) < 16)
		return false;
	return physical_dest_valid(irq, msg);
}

static void reset_counters(struct irq_counter *c)
{
	atomic_store(&c->injected, 0);
	atomic_store(&c->held, 0);
	atomic_store(&c->coalesced, 0);
	atomic_store(&c->to_gated, 0);
	atomic_store(&c->to_gated_switching, 0);
	atomic_store(&c->to_gated_nowhere, 0);
	atomic_store(&c->to_gated_miss, 0);
	atomic_store(&c->last_inject_ns, 0);
	atomic_store(&c->last_dest, IRQ_NO_VCPU);
}

int irq_msi_add_many(struct irq *irq, const struct irq_msi *msgs, size_t n, const char *owner,
		     uint32_t *gsis)
{
	uint32_t gsi = IRQ_GSI_MSI_FIRST;
	int ret;

	pthread_mutex_lock(&irq->lock);
	for (size_t i = 0; i < n; i++, gsi++) {
		while (gsi < irq->max_routes && irq->cur[gsi].kind != IRQ_ROUTE_NONE)
			gsi++;
		if (gsi == irq->max_routes) {
			memcpy(irq->cur, irq->committed, irq->max_routes * sizeof(*irq->cur));
			pthread_mutex_unlock(&irq->lock);
			return -ENOSPC;
		}
		irq->cur[gsi] = (struct irq_route){ .kind = IRQ_ROUTE_MSI, .guest = msgs[i] };
		util_strlcpy(irq->cur[gsi].owner, owner ? owner : "", sizeof(irq->cur[gsi].owner));
		irq_route_resteer(irq, gsi, &irq->cur[gsi]);
		gsis[i] = gsi;
	}
	ret = n ? irq_commit_locked(irq) : 0;
	for (size_t i = 0; !ret && i < n; i++)
		reset_counters(&irq->counters[gsis[i]]);
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

int irq_msi_add(struct irq *irq, const struct irq_msi *msg, const char *owner, uint32_t *gsi)
{
	return irq_msi_add_many(irq, msg, 1, owner, gsi);
}

static bool is_msi(const struct irq *irq, uint32_t gsi)
{
	return gsi >= IRQ_GSI_MSI_FIRST && gsi < irq->max_routes &&
	       irq->cur[gsi].kind == IRQ_ROUTE_MSI;
}

int irq_msi_update(struct irq *irq, const uint32_t *gsis, const struct irq_msi *msgs, size_t n)
{
	bool changed = false;
	int ret = 0;

	pthread_mutex_lock(&irq->lock);
	for (size_t i = 0; i < n; i++) {
		if (!is_msi(irq, gsis[i])) {
			memcpy(irq->cur, irq->committed, irq->max_routes * sizeof(*irq->cur));
			pthread_mutex_unlock(&irq->lock);
			return -ENOENT;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct irq_route *r = &irq->cur[gsis[i]];
		struct irq_msi old = r->effective;

		r->guest = msgs[i];
		irq_route_resteer(irq, gsis[i], r);
		if (old.address != r->effective.address || old.data != r->effective.data)
			changed = true;
	}
	/* The guest's message is kept even when what KVM has stays the same. */
	if (changed)
		ret = irq_commit_locked(irq);
	else
		irq_adopt_locked(irq);
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

int irq_msi_remove(struct irq *irq, const uint32_t *gsis, size_t n)
{
	int ret;

	pthread_mutex_lock(&irq->lock);
	for (size_t i = 0; i < n; i++) {
		if (!is_msi(irq, gsis[i]) || irq->counters[gsis[i]].lines) {
			memcpy(irq->cur, irq->committed, irq->max_routes * sizeof(*irq->cur));
			pthread_mutex_unlock(&irq->lock);
			return is_msi(irq, gsis[i]) ? -EBUSY : -ENOENT;
		}
		irq->cur[gsis[i]] = (struct irq_route){ .dest = IRQ_NO_VCPU };
	}
	ret = n ? irq_commit_locked(irq) : 0;
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

int irq_signal_msi(struct irq *irq, const struct irq_msi *msg)
{
	int ret = irq->ops->signal_msi(irq->ctx, msg);

	if (ret >= 0) {
		atomic_fetch_add(&irq->signal_msi, 1);
		if (ret == 0)
			atomic_fetch_add(&irq->signal_msi_blocked, 1);
	}
	return ret;
}

int irq_set_level(struct irq *irq, uint32_t gsi, bool level)
{
	int ret;

	if (gsi >= IRQ_PINS)
		return -EINVAL;
	ret = irq->ops->set_line(irq->ctx, gsi, level);
	if (ret >= 0 && level) {
		atomic_fetch_add(&irq->set_level, 1);
		if (ret == 0)
			atomic_fetch_add(&irq->set_level_coalesced, 1);
	}
	return ret;
}

void irq_get_stats(struct irq *irq, struct irq_stats *out)
{
	pthread_mutex_lock(&irq->lock);
	*out = (struct irq_stats){
		.max_routes = irq->max_routes,
		.commits = irq->commits,
		.commit_failures = irq->commit_failures,
		.steer_passes = irq->steer_passes,
		.steer_commits = irq->steer_commits,
		.steer_moves = irq->steer_moves,
		.steering = irq->steering,
	};
	for (uint32_t gsi = 0; gsi < irq->max_routes; gsi++)
		out->routes += irq->committed[gsi].kind != IRQ_ROUTE_NONE;
	pthread_mutex_unlock(&irq->lock);
	out->signal_msi = atomic_load(&irq->signal_msi);
	out->signal_msi_blocked = atomic_load(&irq->signal_msi_blocked);
	out->set_level = atomic_load(&irq->set_level);
	out->set_level_coalesced = atomic_load(&irq->set_level_coalesced);
}

uint32_t irq_get_routes(struct irq *irq, struct irq_route_info *out, uint32_t max)
{
	uint32_t n = 0;

	pthread_mutex_lock(&irq->lock);
	for (uint32_t gsi = 0; gsi < irq->max_routes; gsi++) {
		const struct irq_route *r = &irq->committed[gsi];
		struct irq_counter *c = &irq->counters[gsi];

		if (r->kind == IRQ_ROUTE_NONE || (r->kind == IRQ_ROUTE_PIN && gsi == 2))
			continue;
		if (n < max) {
			struct irq_route_info *i = &out[n];

			*i = (struct irq_route_info){
				.gsi = gsi,
				.kind = r->kind,
				.guest = r->guest,
				.effective = r->effective,
				.redirectable =
					r->kind == IRQ_ROUTE_MSI && irq_msi_redirectable(&r->guest),
				.steered = r->steered,
				.dest_vcpu = r->dest,
				.lines = c->lines,
				.bypass = c->bypass_lines > 0,
				.injected = atomic_load(&c->injected),
				.held = atomic_load(&c->held),
				.coalesced = atomic_load(&c->coalesced),
				.to_gated = atomic_load(&c->to_gated),
				.to_gated_switching = atomic_load(&c->to_gated_switching),
				.to_gated_nowhere = atomic_load(&c->to_gated_nowhere),
				.to_gated_miss = atomic_load(&c->to_gated_miss),
				.last_dest_vcpu = atomic_load(&c->last_dest),
				.last_inject_ns = atomic_load(&c->last_inject_ns),
			};
			memcpy(i->owner, r->owner, sizeof(i->owner));
		}
		n++;
	}
	pthread_mutex_unlock(&irq->lock);
	return n;
}

int irq_ioapic_redirtbl(struct irq *irq, uint64_t rte[IRQ_PINS])
{
	if (!irq->ops->ioapic_redirtbl)
		return -EOPNOTSUPP;
	return irq->ops->ioapic_redirtbl(irq->ctx, rte);
}
