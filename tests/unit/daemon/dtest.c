/*
 * The daemon unit tests' fixture (dtest.h): directories, the in-process daemon, the event
 * recorder and the waits.  The stand-in worker's path comes from the build (DTEST_STAND_IN).
 */
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/daemon/dtest.h"

#define WAIT_NS (20ull * 1000000000ull)

static void record(void *arg, json_t *event)
{
	struct dtest *t = arg;
	const char *type = json_string_value(json_object_get(event, "type"));

	if (!type || strcmp(type, "lifecycle") != 0)
		return;
	json_array_append_new(t->events,
			      json_sprintf("%s:%s:%s:%s",
					   json_string_value(json_object_get(event, "vm")),
					   json_string_value(json_object_get(event, "event")),
					   json_string_value(json_object_get(event, "state")),
					   json_string_value(json_object_get(event, "reason"))));
}

int dtest_start(struct dtest *t, unsigned max_vms, bool again)
{
	struct daemon_options o = {
		.log_level = UTIL_LOG_ERROR,
		.foreground = true,
		.max_clients = 16,
		.max_vms = max_vms,
		.max_frame = 1u << 20,
		.shutdown_timeout_ms = 5000,
		.no_virt = true,
	};
	int ret;

	signal(SIGPIPE, SIG_IGN); /* as lockstepd's main(): a dead worker's channel */
	if (!again) {
		snprintf(t->root, sizeof(t->root), "/tmp/lockstep-dtest-XXXXXX");
		if (!mkdtemp(t->root))
			return -1;
		t->events = json_array();
	}
	snprintf(o.run_dir, sizeof(o.run_dir), "%s/run", t->root);
	snprintf(o.state_dir, sizeof(o.state_dir), "%s/state", t->root);
	snprintf(o.socket_path, sizeof(o.socket_path), "%s/run/sock", t->root);
	util_strlcpy(o.vm_binary, DTEST_STAND_IN, sizeof(o.vm_binary));
	mkdir(o.run_dir, 0755);
	ret = daemon_init(&t->d, &o);
	if (ret) {
		daemon_fini(&t->d);
		return ret;
	}
	uv_signal_stop(&t->d.sig_term);
	uv_signal_stop(&t->d.sig_int);
	t->listener = (struct daemon_listener){ .fn = record, .arg = t };
	daemon_add_listener(&t->d, &t->listener);
	return 0;
}

void dtest_stop(struct dtest *t)
{
	daemon_remove_listener(&t->listener);
	daemon_fini(&t->d);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

void dtest_cleanup(struct dtest *t)
{
	nftw(t->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	json_decref(t->events);
	t->events = NULL;
}

bool dtest_wait(struct dtest *t, bool (*pred)(struct dtest *t, void *arg), void *arg)
{
	uint64_t deadline = util_now_ns() + WAIT_NS;

	while (!pred(t, arg)) {
		if (util_now_ns() > deadline)
			return false;
		uv_run(t->d.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return true;
}

void dtest_done(struct dvm *vm, void *arg, int err, const char *message)
{
	struct dtest_done *done = arg;

	done->calls++;
	done->err = err;
	util_strlcpy(done->message, message ? message : "", sizeof(done->message));
}

static bool is_done(struct dtest *t, void *arg)
{
	return ((struct dtest_done *)arg)->calls > 0;
}

bool dtest_wait_done(struct dtest *t, struct dtest_done *done)
{
	return dtest_wait(t, is_done, done);
}

struct state_wait {
	const char *name;
	enum dvm_state state;
	const char *reason;
};

static bool in_state(struct dtest *t, void *arg)
{
	struct state_wait *w = arg;
	struct dvm *vm = registry_find(&t->d, w->name);

	return vm && vm->state == w->state && (!w->reason || strcmp(vm->reason, w->reason) == 0);
}

bool dtest_wait_state(struct dtest *t, const char *name, enum dvm_state state, const char *reason)
{
	struct state_wait w = { .name = name, .state = state, .reason = reason };

	return dtest_wait(t, in_state, &w);
}

void dtest_def(struct vmdef *def, const char *name, uint32_t vcpus, const char *cmdline)
{
	vmdef_init(def);
	util_strlcpy(def->name, name, sizeof(def->name));
	def->vcpus = vcpus;
	def->kernel = strdup("/dev/null"); /* the stand-in boots nothing */
	def->cmdline = cmdline ? strdup(cmdline) : NULL;
}

char *dtest_events(struct dtest *t, const char *vm)
{
	size_t len = strlen(vm), i;
	char *out = calloc(1, 4096);
	json_t *e;

	json_array_foreach(t->events, i, e) {
		const char *s = json_string_value(e);

		if (strncmp(s, vm, len) == 0 && s[len] == ':' && strlen(out) + strlen(s) < 4000) {
			strcat(out, out[0] ? " " : "");
			strcat(out, s + len + 1);
		}
	}
	return out;
}
