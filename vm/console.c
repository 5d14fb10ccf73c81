/*
 * The serial console's two-way side: what is typed reaches the guest through COM1's receiver
 * (vm/uart.c), from
 *  - standard input, with --console: a terminal is put in raw mode (every key goes to the
 *    guest, restored at the end) and Ctrl-] ends the VM, since the process is the VM;
 *  - the console socket, --console-socket PATH (mode 0600): one client at a time, a new one
 *    replaces the old; it receives COM1's output as it is written and sends input.  lockstepd
 *    connects there for `lockstep vm console` and `virsh console`.
 * The console log keeps everything the guest wrote either way.
 *
 * Input is held back when the guest does not read: a source is polled only while nothing read
 * from it waits for the UART, and the UART's room eventfd says when it can take more.
 * Control thread only; the UART locks itself against the vCPU threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "vm/vm_internal.h"

/*
 * Listens at `path`, which appears only once it accepts: bound and listening under a
 * temporary name first, then renamed into place, so a client (lockstepd, a test) that sees
 * the file never finds it refusing connections.
 */
static int listen_on(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, n, ret;

	n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s.new", path);
	if (n < 0 || (size_t)n >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(addr.sun_path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		goto err_close;
	if (chmod(addr.sun_path, 0600) < 0 || listen(fd, 2) < 0 || rename(addr.sun_path, path) < 0)
		goto err_unlink;
	return fd;

err_unlink:
	ret = -errno;
	unlink(addr.sun_path);
	close(fd);
	return ret;
err_close:
	ret = -errno;
	close(fd);
	return ret;
}

static void make_raw(struct vm_console *con)
{
	struct termios *saved = malloc(sizeof(*saved));
	struct termios raw;

	if (!saved || tcgetattr(con->stdin_fd, saved) < 0) {
		free(saved);
		return;
	}
	raw = *saved;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* the host's own messages still start on a new line */
	if (tcsetattr(con->stdin_fd, TCSAFLUSH, &raw) < 0) {
		free(saved);
		return;
	}
	con->saved_termios = saved;
}

int vm_console_init(struct vm_console *con, struct vm *vm, const char *socket_path,
		    bool forward_stdin)
{
	*con = (struct vm_console){ .vm = vm, .listen_fd = -1, .client_fd = -1, .stdin_fd = -1 };
	if (socket_path) {
		con->listen_fd = listen_on(socket_path);
		if (con->listen_fd < 0)
			return con->listen_fd;
		con->listen_path = strdup(socket_path);
		if (!con->listen_path) {
			vm_console_fini(con);
			return -ENOMEM;
		}
	}
	if (forward_stdin && fcntl(STDIN_FILENO, F_GETFL) >= 0) {
		con->stdin_fd = STDIN_FILENO;
		/* Raw only when a person is at the terminal, not when output is captured. */
		con->stdin_tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
		if (con->stdin_tty) {
			make_raw(con);
			util_log(&vm->log, UTIL_LOG_INFO,
				 "console: typing goes to the guest; Ctrl-] stops the VM");
		}
	}
	return 0;
}

static void drop_client(struct vm_console *con)
{
	if (con->client_fd < 0)
		return;
	vm_uart_set_client(con->vm->uart, -1);
	close(con->client_fd);
	con->client_fd = -1;
}

void vm_console_fini(struct vm_console *con)
{
	drop_client(con);
	if (con->saved_termios) {
		tcsetattr(con->stdin_fd, TCSAFLUSH, con->saved_termios);
		free(con->saved_termios);
		con->saved_termios = NULL;
	}
	if (con->listen_fd >= 0) {
		close(con->listen_fd);
		if (!con->keep_socket_file)
			unlink(con->listen_path);
	}
	free(con->listen_path);
	con->listen_fd = -1;
	con->listen_path = NULL;
}

/* Gives the UART what is held; true when nothing is left waiting. */
static bool deliver(struct vm_console *con)
{
	size_t n;

	if (con->held_off == con->held_len)
		return true;
	n = vm_uart_input(con->vm->uart, con->held + con->held_off, con->held_len - con->held_off);
	con->held_off += n;
	con->input_bytes += n;
	return con->held_off == con->held_len;
}

int vm_console_pollfds(struct vm_console *con, struct pollfd *pfd)
{
	bool waiting = con->held_off < con->held_len;
	int n = 0;

	if (con->listen_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = con->listen_fd, .events = POLLIN };
	if (waiting) {
		pfd[n++] =
			(struct pollfd){ .fd = vm_uart_room_fd(con->vm->uart), .events = POLLIN };
		return n;
	}
	if (con->client_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = con->client_fd, .events = POLLIN };
	if (con->stdin_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = con->stdin_fd, .events = POLLIN };
	return n;
}

/* Reads what a source has (once) into the held buffer; false at its end. */
static bool read_source(struct vm_console *con, int fd)
{
	ssize_t n = read(fd, con->held, sizeof(con->held));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	con->held_off = 0;
	con->held_len = (size_t)n;
	if (fd == con->stdin_fd && con->stdin_tty) {
		uint8_t *esc = memchr(con->held, VM_CONSOLE_ESCAPE, con->held_len);

		if (esc) {
			con->held_len = (size_t)(esc - con->held);
			util_log(&con->vm->log, UTIL_LOG_INFO, "console: Ctrl-] typed, stopping");
			vm_request_stop(con->vm, VM_STOP_REQUEST, 0);
		}
	}
	deliver(con);
	return true;
}

static void accept_client(struct vm_console *con)
{
	int fd = accept4(con->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	drop_client(con); /* one client at a time: the newest */
	con->client_fd = fd;
	vm_uart_set_client(con->vm->uart, fd);
}

void vm_console_handle(struct vm_console *con, const struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t count;

		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == con->listen_fd) {
			accept_client(con);
		} else if (pfd[i].fd == vm_uart_room_fd(con->vm->uart)) {
			if (read(pfd[i].fd, &count, sizeof(count)) < 0) {
				/* nothing to clear: the next poll asks again */
			}
			deliver(con);
		} else if (pfd[i].fd == con->client_fd) {
			if (!read_source(con, con->client_fd))
				drop_client(con);
		} else if (pfd[i].fd == con->stdin_fd) {
			if (!read_source(con, con->stdin_fd))
				con->stdin_fd = -1; /* its end: the VM runs on */
		}
	}
}
