/*
 * The daemon unit tests' fixture (dtest.h): directories, the in-process daemon, the event
 * recorder, the waits and the definitions.  The worker's path and the guest images' directory
 * come from the build (DTEST_VM_BINARY, DTEST_GUEST_DIR).
 */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/daemon/dtest.h"

#define WAIT_NS (DTEST_WAIT_MS * 1000000ull)
#define GUEST_MEMORY (16ull << 20)

bool dtest_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK) == 0)
		return true;
	printf("SKIP: /dev/kvm is not usable here (%s): these tests boot real guests\n",
	       strerror(errno));
	return false;
}

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

static int write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fwrite(data, 1, len, f) != len ? -EIO : 0;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

/* magic 0x1badb002, flags 0x8, checksum: little-endian, as the multiboot spec lays it out. */
static const unsigned char unbootable_header[12] = { 0x02, 0xb0, 0xad, 0x1b, 0x08, 0x00,
						     0x00, 0x00, 0xf6, 0x4f, 0x52, 0xe4 };

int dtest_start(struct dtest *t, unsigned max_vms, bool again)
{
	char err[256];
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
		if (!mkdtemp(t->root) || chmod(t->root, 0755) < 0)
			return -errno;
		/*
		 * A multiboot header alone, asking for a feature (flag bit 3) no loader offers:
		 * past the daemon's check of the kernel at define, refused by the worker.
		 */
		snprintf(t->unbootable, sizeof(t->unbootable), "%s/unbootable.img", t->root);
		ret = write_bytes(t->unbootable, unbootable_header, sizeof(unbootable_header));
		if (ret)
			return ret;
		t->events = json_array();
	}
	snprintf(o.run_dir, sizeof(o.run_dir), "%s/run", t->root);
	snprintf(o.state_dir, sizeof(o.state_dir), "%s/state", t->root);
	snprintf(o.socket_path, sizeof(o.socket_path), "%s/run/sock", t->root);
	if (t->virt) {
		o.no_virt = false;
		o.max_clients_ro = 16;
		snprintf(o.virt_socket, sizeof(o.virt_socket), "%s/run/virt", t->root);
	}
	util_strlcpy(o.vm_binary, DTEST_VM_BINARY, sizeof(o.vm_binary));
	/* These tests are about the daemon's state machine, not the sandbox (daemon/security's):
	 * the worker runs unconfined, and the user that opens the definitions' files is one every
	 * Debian has, for whom the guest images' directory and t->root are the ones allowed. */
	o.no_sandbox = true;
	util_strlcpy(o.worker_user, "nobody", sizeof(o.worker_user));
	if (sandbox_paths_add(&o.allowed, DTEST_GUEST_DIR, err, sizeof(err)) ||
	    sandbox_paths_add(&o.allowed, t->root, err, sizeof(err))) {
		fprintf(stderr, "dtest: %s\n", err);
		return -EINVAL;
	}
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

void dtest_kill_workers(struct dtest *t)
{
	struct util_list *pos;

	util_list_for_each(pos, &t->d.vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (!vm->worker)
			continue;
		kill(vm->worker->pid, SIGKILL);
		/* Re-attached workers too were spawned by this process; others answer ECHILD. */
		waitpid(vm->worker->pid, NULL, 0);
	}
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

struct console_wait {
	const char *name;
	const char *text;
};

static bool console_has(struct dtest *t, void *arg)
{
	struct console_wait *w = arg;
	struct dvm *vm = registry_find(&t->d, w->name);
	char path[PATH_MAX], *text;
	size_t len;
	bool found;

	if (!vm || util_read_file(store_console_path(vm, path, sizeof(path)), 1 << 20, &text, &len))
		return false;
	found = strstr(text, w->text) != NULL;
	free(text);
	return found;
}

bool dtest_wait_console(struct dtest *t, const char *name, const char *text)
{
	struct console_wait w = { .name = name, .text = text };

	return dtest_wait(t, console_has, &w);
}

void dtest_def(struct vmdef *def, const char *name, uint32_t vcpus, const char *cmdline)
{
	vmdef_init(def);
	util_strlcpy(def->name, name, sizeof(def->name));
	def->vcpus = vcpus;
	def->memory = GUEST_MEMORY;
	def->kernel = strdup(DTEST_GUEST_DIR "/idle.elf");
	def->cmdline = cmdline ? strdup(cmdline) : NULL;
}

void dtest_def_unbootable(struct dtest *t, struct vmdef *def, const char *name)
{
	dtest_def(def, name, 1, NULL);
	free(def->kernel);
	def->kernel = strdup(t->unbootable);
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

void dtest_free(struct dtest *t)
{
	dtest_kill_workers(t);
	dtest_stop(t);
	dtest_cleanup(t);
	free(t);
}
