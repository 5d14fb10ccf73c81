/*
 * COM1: a 16550A as Linux's 8250 driver and lockstep's guest runtime use it.  The transmitter
 * is always empty: each byte written to THR leaves at once, to the serial logs (the
 * definition's serial.log and lockstepd's copy in its run directory), to stdout (--console)
 * and to the console client (vm/console.c), and string I/O (`rep outsb`) arrives as one exit
 * and leaves as one write per output.  The receiver holds what the console's input delivered
 * (vm_uart_input) in a buffer larger than a 16550's FIFO; the guest drains it through RBR
 * while LSR says data ready.
 *
 * Interrupts on ISA IRQ 4, by the 16550's priorities: line status, received data, THR empty,
 * modem status.  "THR empty" is pending after each write to THR and when IER's THRI bit is
 * set while the transmitter is empty, and reading IIR while it reports it clears it — the
 * behaviour Linux's driver probes for at start-up and relies on to send a tty's output.  The
 * line follows "an interrupt is pending", so each new one is a rising edge.  MCR's loopback
 * mode routes THR to the receiver and the modem outputs to MSR, as the driver's probe checks.
 *
 * vCPU threads call vm_uart_io() concurrently and the control thread delivers input and sets
 * the console client; one mutex covers the registers, the buffer and the outputs, so output
 * keeps its order.  The log stops growing at VM_SERIAL_LOG_MAX so a chatty guest cannot fill
 * the host's disk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vm/vm_internal.h"

#define VM_SERIAL_LOG_MAX (64ull << 20)
#define RX_BUF 4096 /* bytes of input held for the guest */
#define COM1_IRQ 4

enum {
	REG_DATA = 0,
	REG_IER,
	REG_IIR_FCR,
	REG_LCR,
	REG_MCR,
	REG_LSR,
	REG_MSR,
	REG_SCR
};
#define LCR_DLAB 0x80
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_FIFO_ON 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define MSR_DCD_DSR_CTS 0xb0

struct vm_uart {
	struct vm *vm;
	pthread_mutex_t lock;
	int log_fd[2]; /* -1: none */
	bool to_stdout;
	int client_fd; /* the console client (vm/console.c), -1: none */
	int room_fd;   /* eventfd: the receive buffer had been full and has room again */
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	uint8_t lsr_errors; /* OE (from loopback), cleared by reading LSR */
	uint8_t msr_prev;   /* MSR's status bits at the last read, for its delta bits */
	bool thr_pending;   /* the THR-empty interrupt is pending */
	bool irq_level;
	bool rx_full_seen; /* a producer found the buffer full: tell it when room returns */
	uint32_t rx_head, rx_len;
	uint8_t rx[RX_BUF];
	uint64_t log_bytes;
	uint64_t client_dropped; /* output the console client was too slow to take */
	struct vm_console_stats stats;
};

int vm_uart_new(struct vm *vm, const int *log_fds, unsigned nr_logs, bool to_stdout,
		struct vm_uart **out)
{
	struct vm_uart *u;

	if (nr_logs > 2)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->room_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->room_fd < 0) {
		free(u);
		return -errno;
	}
	u->vm = vm;
	u->log_fd[0] = u->log_fd[1] = -1;
	for (unsigned i = 0; i < nr_logs; i++)
		u->log_fd[i] = log_fds[i];
	u->to_stdout = to_stdout;
	u->client_fd = -1;
	u->lcr = 0x03; /* 8N1 */
	u->dll = 1;    /* 115200 baud */
	u->msr_prev = MSR_DCD_DSR_CTS;
	pthread_mutex_init(&u->lock, NULL);
	*out = u;
	return 0;
}

void vm_uart_free(struct vm_uart *u)
{
	if (!u)
		return;
	close(u->room_fd);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static void write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* a full disk or closed stdout must not stop the guest */
		buf += n;
		len -= (size_t)n;
	}
}

static void write_logs(struct vm_uart *u, const uint8_t *buf, size_t len)
{
	for (int i = 0; i < 2; i++)
		if (u->log_fd[i] >= 0)
			write_all(u->log_fd[i], buf, len);
}

/* Never blocking: a console client that does not keep up loses output (counted) rather than
 * stalling the vCPU that prints, and one that went away raises no SIGPIPE. */
static void to_client(struct vm_uart *u, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = send(u->client_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			u->client_dropped += len;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void emit(struct vm_uart *u, const uint8_t *buf, size_t len)
{
	static const char full[] = "\n[lockstep: serial log limit reached; output continues "
				   "elsewhere only]\n";

	if (!len)
		return;
	if (!u->stats.first_byte_ns)
		u->stats.first_byte_ns = util_now_ns();
	u->stats.bytes += len;
	if (u->to_stdout)
		write_all(STDOUT_FILENO, buf, len);
	if (u->client_fd >= 0)
		to_client(u, buf, len);
	if ((u->log_fd[0] < 0 && u->log_fd[1] < 0) || u->log_bytes >= VM_SERIAL_LOG_MAX)
		return;
	if (u->log_bytes + len >= VM_SERIAL_LOG_MAX) {
		len = VM_SERIAL_LOG_MAX - u->log_bytes;
		write_logs(u, buf, len);
		write_logs(u, (const uint8_t *)full, sizeof(full) - 1);
		u->log_bytes = VM_SERIAL_LOG_MAX;
		return;
	}
	write_logs(u, buf, len);
	u->log_bytes += len;
}

/* ---- the receiver ---- */

static uint32_t rx_push(struct vm_uart *u, const uint8_t *buf, uint32_t len)
{
	uint32_t n = 0;

	while (n < len && u->rx_len < RX_BUF) {
		u->rx[(u->rx_head + u->rx_len) % RX_BUF] = buf[n++];
		u->rx_len++;
	}
	return n;
}

static uint8_t rx_pop(struct vm_uart *u)
{
	uint8_t c;

	if (!u->rx_len)
		return 0;
	c = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % RX_BUF;
	u->rx_len--;
	/* Wake the producer that found it full once half of it has drained. */
	if (u->rx_full_seen && u->rx_len <= RX_BUF / 2) {
		uint64_t one = 1;

		u->rx_full_seen = false;
		if (write(u->room_fd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow with ones */
		}
	}
	return c;
}

static void rx_clear(struct vm_uart *u)
{
	while (u->rx_len)
		rx_pop(u);
}

/* ---- interrupts ---- */

static uint8_t msr_status(const struct vm_uart *u)
{
	uint8_t m = u->mcr;

	if (!(u->mcr & MCR_LOOP))
		return MSR_DCD_DSR_CTS;
	/* Loopback: RTS -> CTS, DTR -> DSR, OUT1 -> RI, OUT2 -> DCD. */
	return (uint8_t)((m & 0x02 ? 0x10 : 0) | (m & 0x01 ? 0x20 : 0) | (m & 0x04 ? 0x40 : 0) |
			 (m & 0x08 ? 0x80 : 0));
}

static uint8_t msr_deltas(const struct vm_uart *u)
{
	uint8_t now = msr_status(u), changed = now ^ u->msr_prev;

	/* DCTS, DDSR, TERI (RI went from on to off), DDCD */
	return (uint8_t)((changed & 0x10 ? 0x01 : 0) | (changed & 0x20 ? 0x02 : 0) |
			 ((changed & 0x40) && !(now & 0x40) ? 0x04 : 0) |
			 (changed & 0x80 ? 0x08 : 0));
}

static uint8_t pending_iir(const struct vm_uart *u)
{
	if ((u->ier & IER_RLSI) && u->lsr_errors)
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_len)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thr_pending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && msr_deltas(u))
		return IIR_MSI;
	return IIR_NO_INT;
}

/* Called with the lock held after every change: the line follows "something is pending". */
static void update_irq(struct vm_uart *u)
{
	bool level = pending_iir(u) != IIR_NO_INT;

	if (level == u->irq_level)
		return;
	u->irq_level = level;
	if (u->vm->hv)
		hv_vm_irq_line(u->vm->hv, COM1_IRQ, level);
}

/* ---- registers ---- */

static void transmit(struct vm_uart *u, struct vm_io *io)
{
	uint8_t chunk[256];
	size_t n = 0;

	if (u->mcr & MCR_LOOP) {
		for (uint32_t i = 0; i < io->count; i++)
			if (!rx_push(u, &io->data[i * io->size], 1))
				u->lsr_errors |= LSR_OE;
	} else if (io->size == 1) {
		emit(u, io->data, io->count);
	} else {
		/* Wider accesses to THR carry one character in their low byte. */
		for (uint32_t i = 0; i < io->count; i++) {
			chunk[n++] = io->data[i * io->size];
			if (n == sizeof(chunk)) {
				emit(u, chunk, n);
				n = 0;
			}
		}
		emit(u, chunk, n);
	}
	/* The byte left at once: THR is empty again, and says so. */
	u->thr_pending = true;
}

static uint8_t read_reg(struct vm_uart *u, unsigned reg)
{
	bool dlab = u->lcr & LCR_DLAB;
	uint8_t v;

	switch (reg) {
	case REG_DATA:
		return dlab ? u->dll : rx_pop(u);
	case REG_IER:
		return dlab ? u->dlm : u->ier;
	case REG_IIR_FCR:
		v = pending_iir(u);
		if (v == IIR_THRI)
			u->thr_pending = false; /* reading IIR acknowledges THR empty */
		return (uint8_t)(v | ((u->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0));
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		v = (uint8_t)(LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0) | u->lsr_errors);
		u->lsr_errors = 0;
		return v;
	case REG_MSR:
		v = (uint8_t)(msr_status(u) | msr_deltas(u));
		u->msr_prev = msr_status(u);
		return v;
	default:
		return u->scr;
	}
}

static void write_reg(struct vm_uart *u, unsigned reg, uint8_t v)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case REG_IER:
		if (dlab) {
			u->dlm = v;
		} else {
			/* Enabling THRI with the transmitter empty raises THR empty at once. */
			if ((v ^ u->ier) & IER_THRI)
				u->thr_pending = v & IER_THRI;
			u->ier = v & 0x0f;
		}
		break;
	case REG_DATA:
		u->dll = v; /* only reached with DLAB set */
		break;
	case REG_IIR_FCR:
		if ((v ^ u->fcr) & FCR_ENABLE || (v & FCR_CLEAR_RX))
			rx_clear(u);
		u->fcr = v & 0xc9; /* enable, DMA mode, trigger level */
		break;
	case REG_LCR:
		u->lcr = v;
		break;
	case REG_MCR:
		u->mcr = v & 0x1f;
		break;
	case REG_SCR:
		u->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

void vm_uart_io(void *opaque, struct vm_io *io)
{
	struct vm_uart *u = opaque;
	unsigned reg = (unsigned)io->offset;

	pthread_mutex_lock(&u->lock);
	if (io->write && reg == REG_DATA && !(u->lcr & LCR_DLAB)) {
		transmit(u, io);
	} else if (io->write) {
		for (uint32_t i = 0; i < io->count; i++)
			write_reg(u, reg, io->data[i * io->size]);
	} else {
		memset(io->data, 0, (size_t)io->size * io->count);
		for (uint32_t i = 0; i < io->count; i++)
			io->data[i * io->size] = read_reg(u, reg);
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

/* ---- the console's side ---- */

size_t vm_uart_input(struct vm_uart *u, const uint8_t *buf, size_t len)
{
	uint32_t n;

	pthread_mutex_lock(&u->lock);
	n = rx_push(u, buf, len > RX_BUF ? RX_BUF : (uint32_t)len);
	if (n < len)
		u->rx_full_seen = true;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

bool vm_uart_has_room(struct vm_uart *u)
{
	bool room;

	pthread_mutex_lock(&u->lock);
	room = u->rx_len < RX_BUF;
	if (!room)
		u->rx_full_seen = true;
	pthread_mutex_unlock(&u->lock);
	return room;
}

int vm_uart_room_fd(struct vm_uart *u)
{
	return u->room_fd;
}

void vm_uart_set_client(struct vm_uart *u, int fd)
{
	pthread_mutex_lock(&u->lock);
	u->client_fd = fd;
	pthread_mutex_unlock(&u->lock);
}

void vm_uart_stats(struct vm_uart *u, struct vm_console_stats *st)
{
	pthread_mutex_lock(&u->lock);
	*st = u->stats;
	st->client_dropped = u->client_dropped;
	st->irq_level = u->irq_level;
	pthread_mutex_unlock(&u->lock);
}
