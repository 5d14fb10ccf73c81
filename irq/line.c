/*
 * Interrupt lines: an eventfd per device interrupt, bound to its GSI with KVM_IRQFD, so that
 * raising an interrupt is one write() from whatever thread the device runs on; KVM injects it
 * in that write (MSI routes) or from its irqfd work (pins).  Level lines add a resample
 * eventfd: KVM lowers the line at the guest's EOI and signals it, and the device's thread
 * calls irq_line_resampled() and raises again if it still wants service.
 *
 * The raise path takes no lock: it counts in the GSI's atomics, reads the route's published
 * state (destination, steering generation) for the "delivered to a gated vCPU" counters (and,
 * with steering on, asks for the gated VM to run: the gated hook), and writes the eventfd.  Creating, rebinding and freeing a line take the table's lock for the
 * GSI's line count; the caller makes sure no thread raises a line while it is freed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "irq/irq_internal.h"
#include "util/util.h"

static bool gsi_in_use(const struct irq *irq, uint32_t gsi)
{
	return gsi < irq->max_routes && irq->cur[gsi].kind != IRQ_ROUTE_NONE &&
	       !(irq->cur[gsi].kind == IRQ_ROUTE_PIN && gsi == 2);
}

int irq_line_new(struct irq *irq, uint32_t gsi, enum irq_line_kind kind, const char *name,
		 struct irq_line **out)
{
	struct irq_line *line;
	int ret;

	if (kind == IRQ_LINE_LEVEL && gsi >= IRQ_PINS)
		return -EINVAL; /* only IOAPIC/PIC pins have a level to hold */
	line = calloc(1, sizeof(*line));
	if (!line)
		return -ENOMEM;
	line->irq = irq;
	line->kind = kind;
	line->resample_fd = -1;
	atomic_init(&line->gsi, gsi);
	util_strlcpy(line->name, name ? name : "", sizeof(line->name));
	line->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (line->fd < 0) {
		ret = -errno;
		goto err_free;
	}
	if (kind == IRQ_LINE_LEVEL) {
		line->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (line->resample_fd < 0) {
			ret = -errno;
			goto err_close;
		}
	}
	pthread_mutex_lock(&irq->lock);
	if (!gsi_in_use(irq, gsi)) {
		pthread_mutex_unlock(&irq->lock);
		ret = -ENOENT;
		goto err_close;
	}
	ret = irq->ops->irqfd(irq->ctx, line->fd, gsi, line->resample_fd, true);
	if (!ret)
		irq->counters[gsi].lines++;
	pthread_mutex_unlock(&irq->lock);
	if (ret)
		goto err_close;
	*out = line;
	return 0;

err_close:
	if (line->resample_fd >= 0)
		close(line->resample_fd);
	close(line->fd);
err_free:
	free(line);
	return ret;
}

void irq_line_free(struct irq_line *line)
{
	struct irq *irq;
	uint32_t gsi;

	if (!line)
		return;
	irq = line->irq;
	gsi = atomic_load(&line->gsi);
	pthread_mutex_lock(&irq->lock);
	irq->ops->irqfd(irq->ctx, line->fd, gsi, -1, false);
	irq->counters[gsi].lines--;
	if (line->bypass)
		irq->counters[gsi].bypass_lines--;
	pthread_mutex_unlock(&irq->lock);
	if (line->resample_fd >= 0)
		close(line->resample_fd);
	close(line->fd);
	free(line);
}

int irq_line_rebind(struct irq_line *line, uint32_t gsi)
{
	struct irq *irq = line->irq;
	uint32_t old = atomic_load(&line->gsi);
	int ret;

	if (gsi == old)
		return 0;
	if (line->kind == IRQ_LINE_LEVEL && gsi >= IRQ_PINS)
		return -EINVAL;
	pthread_mutex_lock(&irq->lock);
	if (!gsi_in_use(irq, gsi)) {
		pthread_mutex_unlock(&irq->lock);
		return -ENOENT;
	}
	/* KVM binds an eventfd to one GSI at a time; on failure it goes back where it was. */
	ret = irq->ops->irqfd(irq->ctx, line->fd, old, -1, false);
	if (!ret) {
		ret = irq->ops->irqfd(irq->ctx, line->fd, gsi, line->resample_fd, true);
		if (ret) {
			irq->ops->irqfd(irq->ctx, line->fd, old, line->resample_fd, true);
		} else {
			irq->counters[old].lines--;
			irq->counters[gsi].lines++;
			if (line->bypass) {
				irq->counters[old].bypass_lines--;
				irq->counters[gsi].bypass_lines++;
			}
			atomic_store(&line->gsi, gsi);
		}
	}
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

void irq_line_mark_bypass(struct irq_line *line)
{
	struct irq *irq = line->irq;

	pthread_mutex_lock(&irq->lock);
	if (!line->bypass)
		irq->counters[atomic_load(&line->gsi)].bypass_lines++;
	line->bypass = true;
	pthread_mutex_unlock(&irq->lock);
}

uint32_t irq_line_gsi(const struct irq_line *line)
{
	return atomic_load(&((struct irq_line *)line)->gsi);
}

int irq_line_fd(const struct irq_line *line)
{
	return line->fd;
}

int irq_line_resample_fd(const struct irq_line *line)
{
	return line->resample_fd;
}

/* Where this injection goes, and whether that vCPU can take it now. */
static void count_injection(struct irq *irq, struct irq_counter *c)
{
	uint64_t state = atomic_load_explicit(&c->state, memory_order_acquire);
	uint32_t dest = (uint32_t)(state & IRQ_STATE_DEST_MASK);
	uint64_t gen = 0, now = util_now_ns();

	atomic_fetch_add_explicit(&c->injected, 1, memory_order_relaxed);
	atomic_store_explicit(&c->last_inject_ns, now, memory_order_relaxed);
	if (dest == IRQ_STATE_DEST_MASK) {
		atomic_store_explicit(&c->last_dest, IRQ_NO_VCPU, memory_order_relaxed);
		return;
	}
	atomic_store_explicit(&c->last_dest, dest, memory_order_relaxed);
	if (!irq->gate_fn || irq->gate_fn(irq->gate_arg, dest, &gen))
		return;
	atomic_fetch_add_explicit(&c->to_gated, 1, memory_order_relaxed);
	/* Steering means "to a running vCPU": none runs that may take it, so ask for one. */
	if (irq->gated_fn && __atomic_load_n(&irq->steering, __ATOMIC_RELAXED))
		irq->gated_fn(irq->gated_arg, now);
	if (!(state & IRQ_STATE_STEERED))
		return;
	if ((gen & 1) || gen != state >> IRQ_STATE_GEN_SHIFT)
		atomic_fetch_add_explicit(&c->to_gated_switching, 1, memory_order_relaxed);
	else if (!(state & IRQ_STATE_STEERED_RUNNABLE))
		atomic_fetch_add_explicit(&c->to_gated_nowhere, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&c->to_gated_miss, 1, memory_order_relaxed);
}

int irq_line_raise(struct irq_line *line)
{
	struct irq *irq = line->irq;
	struct irq_counter *c = &irq->counters[atomic_load(&line->gsi)];
	uint64_t one = 1;

	if (line->kind == IRQ_LINE_LEVEL && atomic_exchange(&line->asserted, true)) {
		atomic_fetch_add_explicit(&c->coalesced, 1, memory_order_relaxed);
		return 0;
	}
	count_injection(irq, c);
	if (write(line->fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

void irq_line_resampled(struct irq_line *line)
{
	uint64_t v;

	/* Drain the resample eventfd: one EOI or several, the line is low now. */
	if (line->resample_fd >= 0 && read(line->resample_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: a spurious call; the state is right either way */
	}
	atomic_store(&line->asserted, false);
}

void irq_line_held(struct irq_line *line, bool merged)
{
	struct irq_counter *c = &line->irq->counters[atomic_load(&line->gsi)];

	atomic_fetch_add_explicit(merged ? &c->coalesced : &c->held, 1, memory_order_relaxed);
}
