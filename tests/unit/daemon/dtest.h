/*
 * The daemon unit tests' fixture: a real struct daemon in-process (daemon_init with temporary
 * run and state directories, a libvirt endpoint only if asked for), whose workers are the real
 * lockstep-vm booting the build's guest images (the idle guest, guest/programs/idle.c: its command line
 * says whether it runs, crashes, resets or ignores the power button), with every event it
 * announces recorded, and helpers to wait for what the loop brings and for operations to end.
 * These tests need /dev/kvm (dtest_kvm).  No cmocka here: failures are returned, the tests
 * assert.
 */
#ifndef LOCKSTEP_TESTS_DTEST_H
#define LOCKSTEP_TESTS_DTEST_H

#include <stdbool.h>

#include "daemon/daemon.h"

/* How long any wait lasts at most: generous, so that a busy machine passes too. */
#define DTEST_WAIT_MS 20000

struct dtest {
	struct daemon d;
	bool virt; /* set before dtest_start: a libvirt endpoint (its sockets in root) */
	char root[64];
	char unbootable[96]; /* a multiboot header the daemon accepts and the worker refuses */
	struct daemon_listener listener;
	json_t *events; /* ["vm:event:state:reason", ...] of every lifecycle event */
};

/* How an operation ended (an ops_done_fn's arguments), for ops_done below. */
struct dtest_done {
	int calls;
	int err;
	char message[512];
};

/* Whether /dev/kvm is usable here; if not, says so (the test then exits 77). */
bool dtest_kvm(void);
/* Starts a daemon on fresh directories (or on t->root's, if `again`). */
int dtest_start(struct dtest *t, unsigned max_vms, bool again);
/* Stops it; the directories stay for dtest_start(t, ..., true) until dtest_cleanup. */
void dtest_stop(struct dtest *t);
void dtest_cleanup(struct dtest *t);
/* Kills the daemon's workers and reaps those this process spawned: none outlives a test. */
void dtest_kill_workers(struct dtest *t);
/* A test's end: its workers killed, its lockstepd stopped, its files removed, `t` freed. */
void dtest_free(struct dtest *t);
/* Turns the loop until pred() or DTEST_WAIT_MS pass; whether pred() came true. */
bool dtest_wait(struct dtest *t, bool (*pred)(struct dtest *t, void *arg), void *arg);
/* Waits for an operation's done callback. */
bool dtest_wait_done(struct dtest *t, struct dtest_done *done);
/* Waits until the VM is in `state` (and with `reason`, unless NULL). */
bool dtest_wait_state(struct dtest *t, const char *name, enum dvm_state state, const char *reason);
/* Waits until the VM's serial console holds `text`. */
bool dtest_wait_console(struct dtest *t, const char *name, const char *text);
void dtest_done(struct dvm *vm, void *arg, int err, const char *message);
/* A definition the daemon accepts: the idle guest with `cmdline` (NULL: it runs until the
 * power button), `vcpus` vCPUs and 16 MiB. */
void dtest_def(struct vmdef *def, const char *name, uint32_t vcpus, const char *cmdline);
/* One the daemon accepts and the worker refuses before its hello: the image is not bootable. */
void dtest_def_unbootable(struct dtest *t, struct vmdef *def, const char *name);
/* The lifecycle events of `vm` since the start, "event:state:reason" joined by spaces. */
char *dtest_events(struct dtest *t, const char *vm);

#endif /* LOCKSTEP_TESTS_DTEST_H */
