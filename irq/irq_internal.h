/*
 * Internals of irq/, shared by its sources: the route table (two copies: what is being
 * changed and what KVM has), the per-GSI counters the raise path updates without a lock, and
 * the lines.
 */
#ifndef LOCKSTEP_IRQ_INTERNAL_H
#define LOCKSTEP_IRQ_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "irq/irq.h"

struct irq_route {
	enum irq_route_kind kind;
	char owner[IRQ_NAME_MAX];
	struct irq_msi guest;	  /* MSI: as programmed */
	struct irq_msi effective; /* MSI: what goes to KVM */
	bool steered;
	uint32_t dest;	    /* effective physical destination vCPU, IRQ_NO_VCPU if several */
	bool dest_runnable; /* steered to a vCPU that could run when it was chosen */
	uint64_t steer_gen; /* the schedule generation the choice answers to */
};

/*
 * What the raise path needs of a route, in one word so that it reads a consistent triple:
 * the steering generation, whether it was steered to a runnable vCPU, the destination.
 */
#define IRQ_STATE_DEST_MASK 0xffffull
#define IRQ_STATE_STEERED_RUNNABLE (1ull << 16)
#define IRQ_STATE_STEERED (1ull << 17)
#define IRQ_STATE_GEN_SHIFT 18
static inline uint64_t irq_route_state(const struct irq_route *r)
{
	return r->steer_gen << IRQ_STATE_GEN_SHIFT | (r->steered ? IRQ_STATE_STEERED : 0) |
	       (r->dest_runnable ? IRQ_STATE_STEERED_RUNNABLE : 0) |
	       (r->dest == IRQ_NO_VCPU ? IRQ_STATE_DEST_MASK : r->dest);
}

/* Per GSI, read and written without the table's lock. */
struct irq_counter {
	atomic_uint_least64_t injected, held, coalesced;
	atomic_uint_least64_t to_gated, to_gated_switching, to_gated_nowhere, to_gated_miss;
	atomic_uint_least64_t last_inject_ns;
	atomic_uint last_dest;
	/* irq_route_state() of the committed route, published after each commit. */
	atomic_uint_least64_t state;
	/* Bookkeeping, under the table's lock. */
	uint32_t lines;
	uint32_t bypass_lines;
};

struct irq {
	const struct irq_ops *ops;
	void *ctx;
	uint32_t max_routes;
	uint32_t nr_vcpus;
	pthread_mutex_t lock;
	struct irq_route *cur;	     /* the table as being changed */
	struct irq_route *committed; /* the table as KVM has it */
	struct kvm_irq_routing *kvm; /* the buffer KVM_SET_GSI_ROUTING takes */
	struct irq_counter *counters;
	bool steering;
	bool kvm_vector_hashing;
	/* The last view of the vCPUs the steering thread gave, to steer new routes with. */
	struct irq_vcpu_view *views;
	bool views_valid;
	uint64_t gen;
	irq_gate_fn gate_fn;
	void *gate_arg;
	irq_gated_fn gated_fn;
	void *gated_arg;
	/* statistics, under the lock */
	uint64_t commits, commit_failures;
	uint64_t steer_passes, steer_commits, steer_moves;
	atomic_uint_least64_t signal_msi, signal_msi_blocked;
	atomic_uint_least64_t set_level, set_level_coalesced;
};

struct irq_line {
	struct irq *irq;
	enum irq_line_kind kind;
	atomic_uint gsi;
	int fd;
	int resample_fd; /* level lines only, else -1 */
	atomic_bool asserted;
	bool bypass;
	char name[IRQ_NAME_MAX];
};

/* Takes `cur` as committed when nothing KVM sees changed (locked). */
void irq_adopt_locked(struct irq *irq);
/* Commits `irq->cur`; on failure restores it from `committed`.  Called with the lock held. */
int irq_commit_locked(struct irq *irq);
/* The effective message and destination of an MSI route for the current view (locked). */
void irq_route_resteer(struct irq *irq, uint32_t gsi, struct irq_route *r);

#endif /* LOCKSTEP_IRQ_INTERNAL_H */
