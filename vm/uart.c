/*
 * COM1: a 16550A whose transmitter is always empty.  Output goes to the serial log files (the
 * definition's serial.log and lockstepd's copy in its run directory) and, if asked, to stdout;
 * string I/O (`rep outsb`) arrives as one exit and leaves as one write per file.
 * Input is not wired: the receiver is always empty.
 *
 * vCPU threads call in concurrently; one mutex keeps the registers and the order of output.
 * The log stops growing at VM_SERIAL_LOG_MAX so a chatty guest cannot fill the host's disk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/vm_internal.h"

#define VM_SERIAL_LOG_MAX (64ull << 20)

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
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_DCD_DSR_CTS 0xb0
#define IIR_NO_INT 0x01
#define IIR_FIFO_ON 0xc0

struct vm_uart {
	struct vm *vm;
	pthread_mutex_t lock;
	int log_fd[2]; /* -1: none */
	bool to_stdout;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	uint64_t log_bytes;
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
	u->vm = vm;
	u->log_fd[0] = u->log_fd[1] = -1;
	for (unsigned i = 0; i < nr_logs; i++)
		u->log_fd[i] = log_fds[i];
	u->to_stdout = to_stdout;
	u->lcr = 0x03; /* 8N1 */
	u->dll = 1;    /* 115200 baud */
	pthread_mutex_init(&u->lock, NULL);
	*out = u;
	return 0;
}

void vm_uart_free(struct vm_uart *u)
{
	if (!u)
		return;
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

static void emit(struct vm_uart *u, const uint8_t *buf, size_t len)
{
	static const char full[] = "\n[lockstep: serial log limit reached; output continues "
				   "elsewhere only]\n";

	if (!u->stats.first_byte_ns)
		u->stats.first_byte_ns = util_now_ns();
	u->stats.bytes += len;
	if (u->to_stdout)
		write_all(STDOUT_FILENO, buf, len);
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

static void transmit(struct vm_uart *u, struct vm_io *io)
{
	uint8_t chunk[256];
	size_t n = 0;

	if (io->size == 1) {
		emit(u, io->data, io->count);
		return;
	}
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

static uint8_t read_reg(struct vm_uart *u, unsigned reg)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case REG_DATA:
		return dlab ? u->dll : 0;
	case REG_IER:
		return dlab ? u->dlm : u->ier;
	case REG_IIR_FCR:
		return IIR_NO_INT | ((u->fcr & 1) ? IIR_FIFO_ON : 0);
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		return LSR_THRE | LSR_TEMT;
	case REG_MSR:
		return MSR_DCD_DSR_CTS;
	default:
		return u->scr;
	}
}

static void write_reg(struct vm_uart *u, unsigned reg, uint8_t v)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case REG_IER:
		if (dlab)
			u->dlm = v;
		else
			u->ier = v & 0x0f;
		break;
	case REG_DATA:
		u->dll = v; /* only reached with DLAB set */
		break;
	case REG_IIR_FCR:
		u->fcr = v;
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
	pthread_mutex_unlock(&u->lock);
}

void vm_uart_stats(struct vm_uart *u, struct vm_console_stats *st)
{
	pthread_mutex_lock(&u->lock);
	*st = u->stats;
	pthread_mutex_unlock(&u->lock);
}
