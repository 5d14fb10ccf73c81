/*
 * Blocking JSON-RPC client (see client.h).  Frames are lines; a reply is matched by its id,
 * and anything else that arrives meanwhile (notifications) waits in a queue.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/client.h"
#include "util/util.h"

#define CLIENT_FRAME_MAX (64u << 20)

struct api_client {
	int fd;
	long long next_id;
	struct util_lines lines;
	/* Frames read, not yet taken: an object or array each, or for a frame that was none an
	 * integer, the -errno to report for it (json_loadb never gives a bare integer). */
	json_t *frames;
	json_t *queue; /* notifications not yet taken */
};

const char *api_client_default_socket(void)
{
	const char *env = getenv("LOCKSTEP_SOCKET");

	return env ? env : "/run/lockstep/lockstepd.sock";
}

int api_client_connect(const char *path, struct api_client **out)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct api_client *c;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->queue = json_array();
	c->frames = json_array();
	util_lines_init(&c->lines, CLIENT_FRAME_MAX);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int ret = -errno;

		api_client_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

void api_client_close(struct api_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	json_decref(c->queue);
	json_decref(c->frames);
	util_lines_fini(&c->lines);
	free(c);
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int on_frame(void *arg, const char *line, size_t len, int err)
{
	struct api_client *c = arg;
	json_t *msg = err ? NULL : json_loadb(line, len, 0, NULL);

	if (!msg)
		msg = json_integer(err == -EMSGSIZE ? -E2BIG : err ? err : -EPROTO);
	json_array_append_new(c->frames, msg);
	return 0;
}

/* Reads the next frame (a JSON value); -ETIMEDOUT if none within timeout_ms. */
static int read_frame(struct api_client *c, int timeout_ms, json_t **msg)
{
	char buf[65536];

	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;
		int ret;

		if (json_array_size(c->frames)) {
			*msg = json_incref(json_array_get(c->frames, 0));
			json_array_remove(c->frames, 0);
			if (json_is_integer(*msg)) {
				ret = (int)json_integer_value(*msg);
				json_decref(*msg);
				*msg = NULL;
				return ret;
			}
			return 0;
		}
		ret = poll(&pfd, 1, timeout_ms);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return -ETIMEDOUT;
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		util_lines_feed(&c->lines, buf, (size_t)n, on_frame, c);
	}
}

int api_client_call(struct api_client *c, const char *method, json_t *params, json_t **result,
		    json_t **error)
{
	return api_client_call_ticking(c, method, params, result, error, 0, NULL, NULL);
}

int api_client_call_ticking(struct api_client *c, const char *method, json_t *params,
			    json_t **result, json_t **error, unsigned tick_ms,
			    api_client_tick_fn tick, void *arg)
{
	long long id = ++c->next_id;
	unsigned elapsed = 0;
	json_t *req, *msg;
	char *text;
	int ret;

	*result = NULL;
	if (error)
		*error = NULL;
	req = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", id, "method", method,
			"params", params ? params : json_object());
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!text)
		return -ENOMEM;
	ret = send_all(c->fd, text, strlen(text));
	if (!ret)
		ret = send_all(c->fd, "\n", 1);
	free(text);
	/* A server that refuses the connection (too many clients, not allowed) says why before
	 * it closes, possibly before the request went out: read that either way. */
	if (ret == -EPIPE || ret == -ECONNRESET)
		ret = 0;
	while (!ret) {
		json_t *msg_id;

		ret = read_frame(c, tick ? (int)tick_ms : -1, &msg);
		if (ret == -ETIMEDOUT && tick) {
			elapsed += tick_ms;
			tick(arg, elapsed);
			ret = 0;
			continue;
		}
		if (ret)
			break;
		msg_id = json_object_get(msg, "id");
		/* An error with a null id is the server's answer to a request it could not read
		 * (too large, not allowed): with one request at a time, it is about this one. */
		if ((json_is_integer(msg_id) && json_integer_value(msg_id) == id) ||
		    (json_is_null(msg_id) && json_object_get(msg, "error"))) {
			json_t *err = json_object_get(msg, "error");

			if (err) {
				if (error)
					*error = json_incref(err);
				ret = -EPROTO;
			} else {
				*result = json_incref(json_object_get(msg, "result"));
			}
			json_decref(msg);
			return ret;
		}
		json_array_append_new(c->queue, msg);
	}
	return ret;
}

int api_client_next_notification(struct api_client *c, int timeout_ms, json_t **msg)
{
	if (json_array_size(c->queue)) {
		*msg = json_incref(json_array_get(c->queue, 0));
		json_array_remove(c->queue, 0);
		return 0;
	}
	return read_frame(c, timeout_ms, msg);
}

int api_client_fd(const struct api_client *c)
{
	return c->fd;
}

const char *api_client_error_message(const json_t *error)
{
	const char *m = json_string_value(json_object_get(error, "message"));

	return m ? m : "unknown error";
}
