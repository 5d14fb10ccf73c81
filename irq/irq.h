/*
 * irq — a VM's interrupt routing: the GSI routing table, the interrupt lines devices raise,
 * one-shot MSIs, steering of redirectable interrupts to running vCPUs, per-route counters and
 * the posted-interrupt report.
 *
 * The table (struct irq) is the one copy of the VM's KVM GSI routing.  GSIs 0-23 are the
 * legacy lines, wired as a PC wires them: ISA IRQ n on PIC input n and IOAPIC pin n, except
 * that IRQ 0 (the PIT) arrives on IOAPIC pin 2 and GSI 2 (the cascade) has no route; 16-23
 * reach the IOAPIC only.  GSIs from IRQ_GSI_MSI_FIRST on are MSI routes that devices allocate
 * and free while the VM runs.  Every change — one call here, however many routes it touches —
 * is committed with one KVM_SET_GSI_ROUTING; when KVM refuses it, the table is rolled back to
 * what KVM still has and the call fails with nothing half-applied.
 *
 * KVM is reached through struct irq_ops only (irq/hv_ops.c backs it with hv/, the unit tests
 * with recorders), so the logic runs on pure inputs.
 *
 * Lines: an interrupt line (struct irq_line) is an eventfd bound to a GSI with KVM_IRQFD, so a
 * device raises its interrupt from its own thread with one write() and never touches a vCPU.
 * An edge line pulses its GSI (MSI, or an edge-triggered IOAPIC pin); a level line uses a
 * resample irqfd: the line stays asserted until the guest's EOI, when KVM lowers it and
 * signals the resample eventfd, and the device asserts it again if it still needs service.
 * Several level lines on one pin share it (wired-OR), as PCI INTx sharing wants.
 *
 * Steering: an MSI route whose guest message lets the interrupt go to any of several vCPUs
 * (lowest-priority delivery, or the redirection hint, with more than one vCPU in its
 * destination) is rewritten to a fixed, physical destination chosen among the vCPUs that run
 * in the current schedule, preferring ones that are not halted.  irq_steer() applies one view
 * of the vCPUs in one commit; it is called by the worker's steering thread when the schedule
 * changes, never on an injection's path.  IOAPIC pins are not steered: the in-kernel IOAPIC
 * can only be rewritten whole (KVM_SET_IRQCHIP), which would race the guest's own
 * redirection-table writes and EOIs; a pin with several allowed destinations is reported as
 * redirectable but unsteered.
 *
 * Threads: the table has a mutex that route changes take (device emulation on vCPU threads,
 * the steering thread, the control thread).  Raising a line takes no lock: it is an atomic
 * counter update and a write().
 */
#ifndef LOCKSTEP_IRQ_H
#define LOCKSTEP_IRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#define IRQ_PINS 24 /* IOAPIC pins, GSIs 0-23 */
#define IRQ_ISA_IRQS 16
#define IRQ_GSI_MSI_FIRST IRQ_PINS
#define IRQ_ROUTES_DEFAULT 1024 /* GSIs a VM may use (KVM allows 4096) */
#define IRQ_NAME_MAX 32
#define IRQ_NO_VCPU UINT32_MAX

struct irq;
struct irq_line;
struct hv_vm;

/* An MSI as the device writes it: the 64-bit address and the 32-bit data. */
struct irq_msi {
	uint64_t address;
	uint32_t data;
};

/* The fields of an x86 MSI (Intel SDM vol. 3, 11.11). */
#define IRQ_MSI_ADDR_BASE 0xfee00000ull
#define IRQ_MSI_ADDR_MASK 0xfff00000ull
#define IRQ_MSI_ADDR_DEST_SHIFT 12
#define IRQ_MSI_ADDR_REDIR_HINT (1u << 3)
#define IRQ_MSI_ADDR_DEST_LOGICAL (1u << 2)
#define IRQ_MSI_DATA_VECTOR_MASK 0xffu
#define IRQ_MSI_DATA_MODE_SHIFT 8
#define IRQ_MSI_DATA_MODE_MASK (7u << 8)
#define IRQ_MSI_MODE_FIXED 0
#define IRQ_MSI_MODE_LOWEST 1
#define IRQ_MSI_DATA_LEVEL_TRIGGER (1u << 15)

/* KVM, as irq/ needs it.  Every function returns 0 (or a count) or -errno. */
struct irq_ops {
	int (*set_routing)(void *ctx, const struct kvm_irq_routing *routing);
	int (*irqfd)(void *ctx, int fd, uint32_t gsi, int resample_fd, bool assign);
	/* > 0 delivered, 0 blocked by the guest (masked, or coalesced with a pending one) */
	int (*signal_msi)(void *ctx, const struct irq_msi *msg);
	int (*set_line)(void *ctx, uint32_t gsi, bool level);
	/* The in-kernel IOAPIC's redirection table (for the report); may be NULL. */
	int (*ioapic_redirtbl)(void *ctx, uint64_t rte[IRQ_PINS]);
};

/* struct irq_ops over an hv_vm (the `ctx` to pass with it). */
extern const struct irq_ops irq_hv_ops;

struct irq_params {
	uint32_t max_routes; /* GSIs 0 .. max_routes - 1; 0 = IRQ_ROUTES_DEFAULT */
	uint32_t nr_vcpus;   /* APIC id n is vCPU n */
	bool steering;	     /* steer redirectable routes (irq_set_steering changes it) */
	/* KVM picks a lowest-priority destination by vector hashing (kvm.vector_hashing): then
	 * irq/ knows where an unsteered redirectable interrupt goes, for the counters. */
	bool kvm_vector_hashing;
};

/* Builds the table and commits the legacy routes. */
int irq_new(const struct irq_ops *ops, void *ctx, const struct irq_params *params,
	    struct irq **out);
void irq_free(struct irq *irq);

/* ---- MSI routes ---- */

/* Allocates a GSI for `msg` and commits it; -ENOSPC when the table is full. */
int irq_msi_add(struct irq *irq, const struct irq_msi *msg, const char *owner, uint32_t *gsi);
/* Allocates `n` GSIs (all or none) in one commit. */
int irq_msi_add_many(struct irq *irq, const struct irq_msi *msgs, size_t n, const char *owner,
		     uint32_t *gsis);
/* Changes the messages of `n` routes in one commit. */
int irq_msi_update(struct irq *irq, const uint32_t *gsis, const struct irq_msi *msgs, size_t n);
/* Frees `n` MSI routes in one commit; their lines must be gone. */
int irq_msi_remove(struct irq *irq, const uint32_t *gsis, size_t n);

/* Whether an MSI names a vCPU of this VM at all (0xFEExxxxx, destination in range). */
bool irq_msi_valid(const struct irq *irq, const struct irq_msi *msg);

/* One-shot MSI (KVM_SIGNAL_MSI): > 0 delivered, 0 blocked, -errno. */
int irq_signal_msi(struct irq *irq, const struct irq_msi *msg);
/* Drives legacy line `gsi` (KVM_IRQ_LINE) from userspace; > 0 delivered, 0 coalesced. */
int irq_set_level(struct irq *irq, uint32_t gsi, bool level);

/* ---- lines ---- */

enum irq_line_kind {
	IRQ_LINE_EDGE = 0, /* MSI, or a pulse on a pin */
	IRQ_LINE_LEVEL,	   /* a pin held until EOI (resample irqfd) */
};

/* A line on `gsi` (a pin, or an MSI route from irq_msi_add). */
int irq_line_new(struct irq *irq, uint32_t gsi, enum irq_line_kind kind, const char *name,
		 struct irq_line **out);
void irq_line_free(struct irq_line *line);
/* Moves a line to another GSI (e.g. an MSI-X vector whose route was reallocated). */
int irq_line_rebind(struct irq_line *line, uint32_t gsi);
uint32_t irq_line_gsi(const struct irq_line *line);
/* The line's eventfd is written by an irq-bypass producer (a VFIO device), which the kernel
 * may post straight to a vCPU (see irq_route_posted). */
void irq_line_mark_bypass(struct irq_line *line);
/* The eventfd a device (or VFIO) writes; the resample eventfd of a level line (-1 else). */
int irq_line_fd(const struct irq_line *line);
int irq_line_resample_fd(const struct irq_line *line);

/* Edge: one interrupt.  Level: asserts the line (counted as coalesced if it already was). */
int irq_line_raise(struct irq_line *line);
/*
 * Level: the resample eventfd fired (the guest EOI'd and KVM lowered the line).  Clears the
 * asserted state; the caller raises again if the device still wants service.
 */
void irq_line_resampled(struct irq_line *line);
/* The device held an interrupt back (masked vector); `merged` if one was already pending. */
void irq_line_held(struct irq_line *line, bool merged);

/* ---- steering ---- */

/* What the steering thread knows about one vCPU. */
struct irq_vcpu_view {
	bool runnable; /* its gate is open (or there is no scheduler) and it is not asleep in
			  a pv WAIT or gone */
	bool busy;     /* runnable and not known to be halted */
	bool ldr_valid;
	uint32_t ldr; /* xAPIC logical destination register, as the guest set it */
	uint32_t dfr; /* xAPIC destination format register (flat 0xffffffff, cluster 0x0fffffff) */
};

struct irq_steer_result {
	uint32_t steerable; /* routes that may go to several vCPUs */
	uint32_t moved;	    /* routes whose destination changed */
	bool committed;	    /* one KVM_SET_GSI_ROUTING was issued */
};

/*
 * Re-steers every steerable route for `views` (nr_vcpus of them) as of schedule generation
 * `gen`; commits once if any destination changed.  With steering off, does nothing.
 */
int irq_steer(struct irq *irq, const struct irq_vcpu_view *views, uint64_t gen,
	      struct irq_steer_result *res);
/* Turns steering on or off; off puts every route back to the guest's own message. */
int irq_set_steering(struct irq *irq, bool on);
bool irq_steering(const struct irq *irq);

/*
 * Decides one redirectable message: the vCPU it goes to (or IRQ_NO_VCPU to leave it), given
 * the current target, a spread hint (routes are spread over the candidates) and the views.
 * Pure; exposed for tests.
 */
uint32_t irq_steer_pick(const struct irq_msi *guest, uint32_t current, uint32_t spread,
			const struct irq_vcpu_view *views, uint32_t nr_vcpus);
/* Whether `msg` may be delivered to any of several vCPUs (lowest priority or RH). */
bool irq_msi_redirectable(const struct irq_msi *msg);
/* Whether vCPU `vcpu` (APIC id = index) is in `msg`'s destination. */
bool irq_msi_targets(const struct irq_msi *msg, uint32_t vcpu, const struct irq_vcpu_view *view,
		     uint32_t nr_vcpus);

/*
 * A hook the raise path calls to learn whether a vCPU can take an interrupt now (its gate is
 * open); for the "delivered to a gated vCPU" counters.  `gen` receives the schedule
 * generation (odd while the scheduler is switching).  Set once, before lines are raised.
 */
typedef bool (*irq_gate_fn)(void *arg, uint32_t vcpu, uint64_t *gen);
void irq_set_gate_probe(struct irq *irq, irq_gate_fn fn, void *arg);
/*
 * A hook the raise path calls, with steering on, when an interrupt goes to a vCPU whose gate
 * is closed (as the gate probe says): the worker asks the scheduler to run the VM soon (an
 * interrupt boost).  `raise_ns`: CLOCK_MONOTONIC of the raise.  It must be cheap and never
 * block.  Set once, before lines are raised.
 */
typedef void (*irq_gated_fn)(void *arg, uint64_t raise_ns);
void irq_set_gated_hook(struct irq *irq, irq_gated_fn fn, void *arg);

/* ---- counters and the report ---- */

enum irq_route_kind {
	IRQ_ROUTE_NONE = 0,
	IRQ_ROUTE_PIN, /* legacy line: PIC and/or IOAPIC */
	IRQ_ROUTE_MSI,
};

struct irq_route_info {
	uint32_t gsi;
	enum irq_route_kind kind;
	char owner[IRQ_NAME_MAX];
	struct irq_msi guest;	  /* MSI: as the guest programmed it */
	struct irq_msi effective; /* MSI: what KVM has (steered or the guest's) */
	bool redirectable;	  /* may go to several vCPUs */
	bool steered;		  /* the effective destination was chosen by lockstep */
	uint32_t dest_vcpu;	  /* where its interrupts go: the effective physical destination,
				     or the vCPU KVM's vector hashing picks; IRQ_NO_VCPU if several */
	uint32_t lines;		  /* lines bound to it */
	bool bypass;		  /* a line comes from an irq-bypass producer (VFIO) */
	/* counters */
	uint64_t injected;  /* interrupts handed to KVM through its lines */
	uint64_t held;	    /* held back by the device (masked vector), later pending */
	uint64_t coalesced; /* raised while one was already pending or asserted */
	/*
	 * Injected while the destination vCPU's gate was closed (known for routes with one
	 * destination); with steering on, split by why: the schedule was switching and the
	 * route not yet re-steered, none of the message's destinations could run, or neither
	 * (a steering miss: never expected).
	 */
	uint64_t to_gated;
	uint64_t to_gated_switching, to_gated_nowhere, to_gated_miss;
	uint32_t last_dest_vcpu; /* destination of the last injection, IRQ_NO_VCPU unknown */
	uint64_t last_inject_ns; /* CLOCK_MONOTONIC, 0 = never */
};

struct irq_stats {
	uint32_t routes; /* in use, pins included */
	uint32_t max_routes;
	uint64_t commits, commit_failures;
	uint64_t steer_passes, steer_commits, steer_moves;
	uint64_t signal_msi, signal_msi_blocked;
	uint64_t set_level, set_level_coalesced;
	bool steering;
};

void irq_get_stats(struct irq *irq, struct irq_stats *out);
/* Fills up to `max` routes in use (GSI order); returns how many exist. */
uint32_t irq_get_routes(struct irq *irq, struct irq_route_info *out, uint32_t max);
/* The IOAPIC's redirection entries, if the ops can read them; -EOPNOTSUPP otherwise. */
int irq_ioapic_redirtbl(struct irq *irq, uint64_t rte[IRQ_PINS]);

/* ---- posted interrupts ---- */

/*
 * What the host offers for posting: APICv (kvm_intel enable_apicv) or AVIC (kvm_amd avic) for
 * interrupts to running vCPUs, and an IOMMU that remaps and posts device interrupts (Intel
 * VT-d posted interrupts, AMD-Vi guest virtual APIC mode).  Read from sysfs under `root`
 * ("/" normally) and /proc/interrupts' PIN/PIW lines.  A route can be posted only if it is an
 * MSI from an irq-bypass producer (a VFIO device's irqfd) and both halves are there.
 */
struct irq_posting {
	bool apicv;	     /* kvm_intel.enable_apicv or kvm_amd.avic */
	const char *vendor;  /* "intel", "amd" or "none" (no kvm_intel/kvm_amd: e.g. kvm_pvm) */
	bool iommu_ir;	     /* an IOMMU with interrupt remapping */
	bool iommu_posting;  /* ... that can post (VT-d PI, AMD-Vi GA) */
	uint32_t iommus;     /* IOMMUs found */
	bool counters_valid; /* /proc/interrupts had the lines below */
	uint64_t pi_notifications; /* PIN: posted-interrupt notification events, all CPUs */
	uint64_t pi_wakeups;	   /* PIW: posted-interrupt wake-up events */
	char why[160];		   /* for people: what is missing */
};

int irq_posting_probe(const char *root, struct irq_posting *out);
/* Whether the kernel would post `route`, and why not (a short phrase) when it would not. */
bool irq_route_posted(const struct irq_posting *host, const struct irq_route_info *route,
		      const char **why_not);

#endif /* LOCKSTEP_IRQ_H */
