/*
 * lockstep vm console NAME [--force], interactive: on a terminal (stdin and stdout both one)
 * cli_vm.c's console command hands over here, and the client works as `virsh console` does:
 * it attaches to the VM's serial console (vm.console_attach), the terminal goes raw so every
 * key reaches the guest (vm.console_input), the guest's output is printed as it comes
 * ("console.output"), and Ctrl-] detaches.  --force takes the console from another client.
 * Off a terminal, or with -f, --tail or --all, cli_vm.c prints the console log instead.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "util/util.h"

#include "clients/cli.h"

#define ESCAPE 0x1d /* Ctrl-] */

/* Prints what the daemon sent meanwhile; false once the console (or lockstepd) is gone. */
static bool drain(struct cli *cli, const char *name)
{
	json_t *msg;
	int ret;

	while ((ret = api_client_next_notification(cli->c, 0, &msg)) != -ETIMEDOUT) {
		if (ret) {
			fprintf(stderr, "\r\n[lockstep: lost lockstepd: %s]\r\n", strerror(-ret));
			return false;
		}
		const char *method = json_string_value(json_object_get(msg, "method"));
		json_t *params = json_object_get(msg, "params");
		bool ours = strcmp(str(params, "vm"), name) == 0;

		if (ours && method && strcmp(method, "console.output") == 0) {
			fputs(str(params, "data"), stdout);
			fflush(stdout);
		} else if (ours && method && strcmp(method, "console.detached") == 0) {
			fprintf(stderr, "\r\n[lockstep: console of %s closed: %s]\r\n", name,
				str(params, "reason"));
			json_decref(msg);
			return false;
		}
		json_decref(msg);
	}
	return true;
}

/* Sends typed bytes as text: JSON strings are UTF-8, so of input that is not, the ASCII. */
static int send_input(struct cli *cli, const char *name, const char *buf, size_t len)
{
	json_t *data = json_stringn(buf, len), *result;
	char ascii[4096];
	size_t n = 0;
	int ret;

	if (!data) {
		for (size_t i = 0; i < len && n < sizeof(ascii); i++)
			if ((unsigned char)buf[i] < 0x80)
				ascii[n++] = buf[i];
		data = json_stringn(ascii, n);
	}
	if (!data)
		return 0;
	ret = call(cli, "vm.console_input", json_pack("{s:s, s:o}", "name", name, "data", data),
		   &result);
	json_decref(result);
	return ret;
}

int console_interactive(struct cli *cli, const char *name, bool force)
{
	struct termios saved, raw;
	json_t *result;
	bool restore = false, attached = true;
	char buf[4096];
	int ret;

	ret = call(cli, "vm.console_attach", json_pack("{s:s, s:b}", "name", name, "force", force),
		   &result);
	if (ret)
		return ret;
	json_decref(result);
	fprintf(stderr, "Connected to VM %s; escape character is ^] (Ctrl + ])\n", name);
	if (tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		raw.c_oflag |= OPOST | ONLCR;
		restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
	}
	while (attached && !ret) {
		struct pollfd pfd[2] = { { STDIN_FILENO, POLLIN, 0 },
					 { api_client_fd(cli->c), POLLIN, 0 } };
		char *esc;
		ssize_t n;

		if (!drain(cli, name))
			break;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
			attached = drain(cli, name);
		if (!(pfd[0].revents & (POLLIN | POLLHUP)))
			continue;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n <= 0)
			break;
		esc = memchr(buf, ESCAPE, (size_t)n);
		if (esc)
			n = esc - buf;
		if (n)
			ret = send_input(cli, name, buf, (size_t)n);
		if (esc)
			break;
	}
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	if (attached && !ret) {
		ret = call(cli, "vm.console_detach", json_pack("{s:s}", "name", name), &result);
		json_decref(result);
		fprintf(stderr, "\n");
	}
	return ret;
}
