/*
 * Fuzz target: lockstepd's JSON-RPC endpoint, from the bytes a client sends to the methods
 * that act on them.  The session is a real api_session over the daemon's own method table
 * (daemon_methods), on a real in-process struct daemon (daemon_init with temporary run and
 * state directories in /dev/shm, so definitions are written and fsync'ed for real but
 * cheaply).  vm.start is harmless: the worker binary is /bin/false, which exits at once, so
 * starts, on_crash restarts, destroys and the replies parked on them all run their course.
 *
 * Input: one flags byte, then the bytes of the connection.  Every 0xff byte in them (never
 * valid in UTF-8 JSON) is a read boundary: the session is fed the pieces between them one by
 * one, with a turn of the event loop in between, so the fuzzer chooses where frames split.
 *   flags bit 0  the session is read-only (state-changing methods are refused)
 *   flags bit 1  the client goes away before its parked calls are answered
 *   flags bit 2  tight limits: 256-byte frames, 4 calls in flight, batches of 4
 *
 * Every frame the daemon sends must be one line of JSON: a response (jsonrpc "2.0", an id,
 * exactly one of result/error, an error with a known code and a message), a batch of them,
 * or a notification.  After each input every worker is gone, every call answered, and the
 * registry, the directories and the client are torn down, so inputs do not leak into each
 * other (and LeakSanitizer sees a clean slate).
 *
 * libFuzzer offers no context pointer, so the daemon lives in one file-scope struct.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPLIT 0xff
#define SETTLE_TURNS_MAX 10000

enum {
	FLAG_READ_ONLY = 1 << 0,
	FLAG_HANG_UP = 1 << 1,
	FLAG_TIGHT = 1 << 2,
};

static struct {
	struct daemon d;
	char root[64];
} fz;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void remove_root(void)
{
	daemon_fini(&fz.d);
	nftw(fz.root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Empties a directory of files (the run directory's per-VM files). */
static void empty_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dp = opendir(dir);

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(dp);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct daemon_options o = {
		.log_level = UTIL_LOG_ERROR,
		.foreground = true,
		.max_clients = 16,
		.max_vms = 64,
		.max_frame = 1u << 16,
		.shutdown_timeout_ms = 1000,
		.no_virt = true, /* JSON-RPC only: no libvirt socket */
	};
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	int null;

	signal(SIGPIPE, SIG_IGN); /* as lockstepd's main(): a dead worker's channel */
	snprintf(fz.root, sizeof(fz.root), "%s/lockstep-fuzz-XXXXXX", base);
	if (!mkdtemp(fz.root))
		abort();
	snprintf(o.run_dir, sizeof(o.run_dir), "%s/run", fz.root);
	snprintf(o.state_dir, sizeof(o.state_dir), "%s/state", fz.root);
	snprintf(o.socket_path, sizeof(o.socket_path), "%s/run/sock", fz.root);
	strcpy(o.vm_binary, access("/bin/false", X_OK) == 0 ? "/bin/false" : "/usr/bin/false");
	if (mkdir(o.run_dir, 0755) < 0 || daemon_init(&fz.d, &o) != 0)
		abort();
	/* Ctrl-C and timeouts are libFuzzer's, not the daemon's. */
	uv_signal_stop(&fz.d.sig_term);
	uv_signal_stop(&fz.d.sig_int);
	/* Crash reports of /bin/false "workers" are expected by the thousand. */
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0)
		fz.d.log.fd = null;
	atexit(remove_root);
	return 0;
}

static bool known_code(json_int_t code)
{
	return (code >= API_PARSE_ERROR && code <= -32600 &&
		(code == API_PARSE_ERROR || code >= API_INTERNAL_ERROR)) ||
	       (code >= API_UNSUPPORTED && code <= API_NO_SUCH_VM);
}

/* One response object: jsonrpc 2.0, an id, exactly one of result and error. */
static void check_response(json_t *r)
{
	json_t *error = json_object_get(r, "error");

	if (!json_is_object(r) || !json_is_string(json_object_get(r, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
		abort();
	if (json_object_get(r, "method")) {
		/* A notification: events and console output, always with params. */
		if (json_object_get(r, "id") || !json_is_object(json_object_get(r, "params")))
			abort();
		return;
	}
	if (!json_object_get(r, "id") || !error == !json_object_get(r, "result"))
		abort();
	if (error && (!json_is_integer(json_object_get(error, "code")) ||
		      !known_code(json_integer_value(json_object_get(error, "code"))) ||
		      !json_is_string(json_object_get(error, "message")) ||
		      !json_string_length(json_object_get(error, "message"))))
		abort();
}

static void check_frame(void *opaque, const char *frame, size_t len)
{
	json_error_t jerr;
	json_t *msg;
	size_t i;
	json_t *r;

	if (len < 2 || frame[len - 1] != '\n' || memchr(frame, '\n', len - 1))
		abort();
	msg = json_loadb(frame, len - 1, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!msg)
		abort();
	if (json_is_array(msg)) {
		if (!json_array_size(msg))
			abort();
		json_array_foreach(msg, i, r)
			if (json_object_get(r, "method"))
				abort(); /* a batch holds responses only */
			else
				check_response(r);
	} else {
		check_response(msg);
	}
	json_decref(msg);
}

static unsigned workers(void)
{
	struct util_list *pos;
	unsigned n = 0;

	util_list_for_each(pos, &fz.d.vms)
		n += util_container_of(pos, struct dvm, link)->worker != NULL;
	return n;
}

/* Runs the loop until every worker is gone (each /bin/false exits by itself; restarts are
 * bounded by on_crash's three a minute), so every parked call gets its answer. */
static void settle(void)
{
	for (unsigned turns = 0; workers(); turns++) {
		if (turns == SETTLE_TURNS_MAX)
			abort(); /* workers that never go: a daemon bug */
		uv_run(fz.d.loop, UV_RUN_ONCE);
	}
	uv_run(fz.d.loop, UV_RUN_NOWAIT);
}

static void teardown_vms(void)
{
	char dir[PATH_MAX];

	while (!util_list_empty(&fz.d.vms)) {
		struct dvm *vm = util_container_of(fz.d.vms.next, struct dvm, link);

		if (registry_undefine(vm) != 0)
			abort();
	}
	uv_run(fz.d.loop, UV_RUN_NOWAIT); /* the VMs' timers close, and the VMs go */
	snprintf(dir, sizeof(dir), "%s/vms", fz.d.opts.run_dir);
	empty_dir(dir);
	snprintf(dir, sizeof(dir), "%s/vms", fz.d.opts.state_dir);
	empty_dir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct api_session_ops ops = { .send = check_frame };
	struct api_limits limits = API_LIMITS_DEFAULT;
	struct client *c;
	size_t start = 1;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	c = calloc(1, sizeof(*c));
	if (!c)
		return 0;
	c->d = &fz.d;
	util_list_init(&c->follows);
	if (flags & FLAG_TIGHT)
		limits = (struct api_limits){ .max_frame = 256, .max_pending = 4, .max_batch = 4 };
	if (api_session_new(daemon_methods, daemon_nr_methods, &fz.d, &ops, c, &limits,
			    &c->session)) {
		free(c);
		return 0;
	}
	api_session_set_read_only(c->session, flags & FLAG_READ_ONLY);
	util_list_add_tail(&fz.d.clients, &c->link);
	fz.d.nr_clients++;

	while (start <= size) {
		const uint8_t *end = memchr(data + start, SPLIT, size - start);
		size_t len = end ? (size_t)(end - (data + start)) : size - start;

		if (len)
			api_session_feed(c->session, (const char *)data + start, len);
		uv_run(fz.d.loop, UV_RUN_NOWAIT);
		start += len + 1;
	}

	/* The client leaves now (its parked calls are cancelled) or after its answers. */
	console_unfollow_client(c);
	util_list_del(&c->link);
	fz.d.nr_clients--;
	if (flags & FLAG_HANG_UP) {
		api_session_close(c->session);
		settle();
	} else {
		settle();
		if (api_session_pending(c->session))
			abort(); /* a call that is never answered */
		api_session_close(c->session);
	}
	teardown_vms();
	if (!util_list_empty(&fz.d.follows) || fz.d.nr_clients)
		abort();
	free(c);
	return 0;
}
