/*
 * Steering: which vCPU a redirectable MSI goes to.
 *
 * A message is redirectable when the guest let the platform choose among its destinations:
 * lowest-priority delivery, or the redirection hint (KVM treats both as lowest priority).
 * Its destinations are a physical APIC id (0xFF, a broadcast, goes to every vCPU whatever the
 * delivery mode: KVM's rule, so it is not redirectable) or, in logical mode, the vCPUs whose
 * logical destination register matches (flat: a bit per CPU; cluster: a cluster and a bit
 * mask), as the guest programmed them: the worker reads each vCPU's LDR/DFR when it stops at
 * its gate, and a vCPU whose registers are unknown is left out.  A steered route gets a fixed,
 * physical message to one of them, the same vector and trigger.
 *
 * The choice (irq_steer_pick) keeps a route where it is while its target stays a good one, so
 * a schedule change moves as few routes as it must: a busy target (runs, not halted) stays;
 * otherwise a busy destination is taken, else a runnable one (halted, but its gate is open),
 * spreading routes over the candidates by GSI.  When no destination runs, the route stays put:
 * the interrupt waits for the VM's next turn wherever it goes.
 *
 * irq_steer() runs on the worker's steering thread, once per schedule change, under the
 * table's lock; it commits at most once.
 */
#include <errno.h>
#include <string.h>

#include "irq/irq_internal.h"

static uint32_t msi_dest(const struct irq_msi *msg)
{
	return (uint32_t)(msg->address >> IRQ_MSI_ADDR_DEST_SHIFT) & 0xff;
}

bool irq_msi_redirectable(const struct irq_msi *msg)
{
	uint32_t mode = (msg->data & IRQ_MSI_DATA_MODE_MASK) >> IRQ_MSI_DATA_MODE_SHIFT;

	if ((msg->address & IRQ_MSI_ADDR_MASK) != IRQ_MSI_ADDR_BASE)
		return false;
	/* A physical broadcast is delivered to every vCPU, lowest priority or not (as KVM
	 * does): nothing to choose. */
	if (!(msg->address & IRQ_MSI_ADDR_DEST_LOGICAL) && msi_dest(msg) == 0xff)
		return false;
	return mode == IRQ_MSI_MODE_LOWEST ||
	       (mode == IRQ_MSI_MODE_FIXED && (msg->address & IRQ_MSI_ADDR_REDIR_HINT));
}

bool irq_msi_targets(const struct irq_msi *msg, uint32_t vcpu, const struct irq_vcpu_view *view,
		     uint32_t nr_vcpus)
{
	uint32_t dest = msi_dest(msg), ldr;

	if (vcpu >= nr_vcpus)
		return false;
	if (dest == 0xff)
		return true; /* broadcast, in either mode */
	if (!(msg->address & IRQ_MSI_ADDR_DEST_LOGICAL))
		return dest == vcpu;
	if (!view->ldr_valid)
		return false;
	ldr = view->ldr >> 24;
	if ((view->dfr >> 28) == 0xf) /* flat model */
		return (ldr & dest) != 0;
	/* cluster model: the high nibble names the cluster, the low nibble the members */
	return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf) != 0;
}

/* The n-th (mod count) vCPU with `want` among the destinations, or IRQ_NO_VCPU. */
static uint32_t nth_candidate(const struct irq_msi *guest, const struct irq_vcpu_view *views,
			      uint32_t nr, uint32_t spread, bool busy)
{
	uint32_t count = 0, k;

	for (uint32_t v = 0; v < nr; v++)
		if (irq_msi_targets(guest, v, &views[v], nr) &&
		    (busy ? views[v].busy : views[v].runnable))
			count++;
	if (!count)
		return IRQ_NO_VCPU;
	k = spread % count;
	for (uint32_t v = 0; v < nr; v++) {
		if (!irq_msi_targets(guest, v, &views[v], nr) ||
		    !(busy ? views[v].busy : views[v].runnable))
			continue;
		if (k-- == 0)
			return v;
	}
	return IRQ_NO_VCPU;
}

uint32_t irq_steer_pick(const struct irq_msi *guest, uint32_t current, uint32_t spread,
			const struct irq_vcpu_view *views, uint32_t nr)
{
	uint32_t allowed = 0, first = IRQ_NO_VCPU, pick;
	bool current_ok;

	if (!irq_msi_redirectable(guest))
		return IRQ_NO_VCPU;
	for (uint32_t v = 0; v < nr; v++) {
		if (!irq_msi_targets(guest, v, &views[v], nr))
			continue;
		if (first == IRQ_NO_VCPU)
			first = v;
		allowed++;
	}
	if (allowed < 2)
		return IRQ_NO_VCPU; /* one destination (or none known): nothing to choose */
	current_ok = current < nr && irq_msi_targets(guest, current, &views[current], nr);
	if (current_ok && views[current].busy)
		return current;
	pick = nth_candidate(guest, views, nr, spread, true);
	if (pick != IRQ_NO_VCPU)
		return pick;
	if (current_ok && views[current].runnable)
		return current;
	pick = nth_candidate(guest, views, nr, spread, false);
	if (pick != IRQ_NO_VCPU)
		return pick;
	return current_ok ? current : first;
}

static struct irq_msi fixed_physical(const struct irq_msi *guest, uint32_t vcpu)
{
	return (struct irq_msi){
		.address = IRQ_MSI_ADDR_BASE | (uint64_t)vcpu << IRQ_MSI_ADDR_DEST_SHIFT,
		.data = (guest->data & ~IRQ_MSI_DATA_MODE_MASK) |
			IRQ_MSI_MODE_FIXED << IRQ_MSI_DATA_MODE_SHIFT,
	};
}

/* A vCPU's place in KVM's logical map: its LDR bit (flat), or cluster and member bit. */
static unsigned logical_rank(const struct irq_vcpu_view *view)
{
	uint32_t ldr = view->ldr >> 24;

	if ((view->dfr >> 28) == 0xf)
		return ldr ? (unsigned)__builtin_ctz(ldr) : 32;
	return (ldr >> 4) * 4 + ((ldr & 0xf) ? (unsigned)__builtin_ctz(ldr & 0xf) : 4);
}

/*
 * Where KVM delivers a lowest-priority message with vector hashing on: among the matching
 * vCPUs in the order of their logical (or physical) ids, the (vector mod count)-th.
 */
static uint32_t kvm_hashed_dest(const struct irq *irq, const struct irq_msi *msg)
{
	uint32_t vcpus[256], n = 0, vector = msg->data & IRQ_MSI_DATA_VECTOR_MASK;

	for (uint32_t v = 0; v < irq->nr_vcpus; v++)
		if (irq_msi_targets(msg, v, &irq->views[v], irq->nr_vcpus))
			vcpus[n++] = v;
	if (!n)
		return IRQ_NO_VCPU;
	if (msg->address & IRQ_MSI_ADDR_DEST_LOGICAL) {
		/* order by logical bit (insertion sort: a handful of vCPUs) */
		for (uint32_t i = 1; i < n; i++)
			for (uint32_t j = i;
			     j > 0 && logical_rank(&irq->views[vcpus[j]]) <
					      logical_rank(&irq->views[vcpus[j - 1]]);
			     j--) {
				uint32_t t = vcpus[j];

				vcpus[j] = vcpus[j - 1];
				vcpus[j - 1] = t;
			}
	}
	return vcpus[vector % n];
}

/* The destination vCPU of a message that has exactly one, else IRQ_NO_VCPU. */
static uint32_t single_dest(const struct irq *irq, const struct irq_msi *msg)
{
	uint32_t dest = msi_dest(msg);

	if ((msg->address & IRQ_MSI_ADDR_MASK) != IRQ_MSI_ADDR_BASE ||
	    (msg->address & IRQ_MSI_ADDR_DEST_LOGICAL) || dest >= irq->nr_vcpus)
		return IRQ_NO_VCPU;
	return dest;
}

void irq_route_resteer(struct irq *irq, uint32_t gsi, struct irq_route *r)
{
	uint32_t pick = IRQ_NO_VCPU;

	if (irq->steering && irq->views_valid)
		pick = irq_steer_pick(&r->guest, r->steered ? r->dest : IRQ_NO_VCPU, gsi,
				      irq->views, irq->nr_vcpus);
	if (pick == IRQ_NO_VCPU) {
		r->effective = r->guest;
		r->steered = false;
		r->dest_runnable = false;
		r->dest = single_dest(irq, &r->guest);
		if (r->dest == IRQ_NO_VCPU && irq->kvm_vector_hashing && irq->views_valid &&
		    irq_msi_redirectable(&r->guest))
			r->dest = kvm_hashed_dest(irq, &r->guest);
	} else {
		r->effective = fixed_physical(&r->guest, pick);
		r->steered = true;
		r->dest_runnable = irq->views[pick].runnable;
		r->dest = pick;
	}
	r->steer_gen = irq->gen;
}

int irq_steer(struct irq *irq, const struct irq_vcpu_view *views, uint64_t gen,
	      struct irq_steer_result *res)
{
	uint32_t steerable = 0, moved = 0;
	bool changed = false;
	int ret = 0;

	pthread_mutex_lock(&irq->lock);
	memcpy(irq->views, views, irq->nr_vcpus * sizeof(*views));
	irq->views_valid = true;
	irq->gen = gen;
	if (irq->steering)
		irq->steer_passes++;
	/* With steering off this only follows where KVM sends the guest's messages. */
	for (uint32_t gsi = IRQ_GSI_MSI_FIRST; gsi < irq->max_routes; gsi++) {
		struct irq_route *r = &irq->cur[gsi];
		uint32_t before = r->dest;
		bool was_steered = r->steered;
		struct irq_msi old = r->effective;

		if (r->kind != IRQ_ROUTE_MSI)
			continue;
		irq_route_resteer(irq, gsi, r);
		steerable += r->steered;
		if (old.address != r->effective.address || old.data != r->effective.data)
			changed = true;
		if (r->steered && (r->dest != before || !was_steered))
			moved++;
	}
	if (changed) {
		ret = irq_commit_locked(irq);
		if (!ret) {
			irq->steer_commits++;
			irq->steer_moves += moved;
		}
	} else {
		/* Nothing KVM sees changed; the generation the routes answer to did. */
		irq_adopt_locked(irq);
	}
	pthread_mutex_unlock(&irq->lock);
	if (res)
		*res = (struct irq_steer_result){ .steerable = steerable,
						  .moved = ret ? 0 : moved,
						  .committed = changed && !ret };
	return ret;
}

int irq_set_steering(struct irq *irq, bool on)
{
	bool changed = false;
	int ret = 0;

	pthread_mutex_lock(&irq->lock);
	if (irq->steering == on) {
		pthread_mutex_unlock(&irq->lock);
		return 0;
	}
	__atomic_store_n(&irq->steering, on, __ATOMIC_RELAXED);
	for (uint32_t gsi = IRQ_GSI_MSI_FIRST; gsi < irq->max_routes; gsi++) {
		struct irq_route *r = &irq->cur[gsi];
		struct irq_msi old = r->effective;

		if (r->kind != IRQ_ROUTE_MSI)
			continue;
		irq_route_resteer(irq, gsi, r);
		if (old.address != r->effective.address || old.data != r->effective.data)
			changed = true;
	}
	if (changed)
		ret = irq_commit_locked(irq);
	else
		irq_adopt_locked(irq);
	if (ret)
		__atomic_store_n(&irq->steering, !on, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

bool irq_steering(const struct irq *irq)
{
	return __atomic_load_n(&irq->steering, __ATOMIC_RELAXED);
}

void irq_set_gate_probe(struct irq *irq, irq_gate_fn fn, void *arg)
{
	irq->gate_fn = fn;
	irq->gate_arg = arg;
}

void irq_set_gated_hook(struct irq *irq, irq_gated_fn fn, void *arg)
{
	irq->gated_fn = fn;
	irq->gated_arg = arg;
}
