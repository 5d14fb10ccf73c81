/*
 * The daemon unit tests' fixture: a real struct daemon in-process (daemon_init with temporary
 * run and state directories, no libvirt endpoint), whose workers are the stand-in
 * (tests/unit/daemon/stand_in.c), with every event it announces recorded, and helpers to
 * wait for what the loop brings and for operations to end.  No cmocka here: failures are
 * returned, the tests assert.
 */
#ifndef LOCKSTEP_TESTS_DTEST_H
#define LOCKSTEP_TESTS_DTEST_H

#include <stdbool.h>

#include "daemon/daemon.h"

struct dtest {
	struct daemon d;
	char root[64];
	struct daemon_listener listener;
	json_t *events; /* ["vm:event:state:reason", ...] of every lifecycle event */
};

/* How an operation ended (an ops_done_fn's arguments), for ops_done below. */
struct dtest_done {
	int calls;
	int err;
	char message[512];
};

/* Starts a daemon on fresh directories (or on t->root's, if `again`). */
int dtest_start(struct dtest *t, unsigned max_vms, bool again);
/* Stops it; the directories stay for dtest_start(t, ..., true) until dtest_cleanup. */
void dtest_stop(struct dtest *t);
void dtest_cleanup(struct dtest *t);
/* Turns the loop until pred() or 20 s pass; whether pred() came true. */
bool dtest_wait(struct dtest *t, bool (*pred)(struct dtest *t, void *arg), void *arg);
/* Waits for an operation's done callback. */
bool dtest_wait_done(struct dtest *t, struct dtest_done *done);
/* Waits until the VM is in `state` (and with `reason`, unless NULL). */
bool dtest_wait_state(struct dtest *t, const char *name, enum dvm_state state, const char *reason);
void dtest_done(struct dvm *vm, void *arg, int err, const char *message);
/* A definition the daemon accepts: the stand-in does what `cmdline` says. */
void dtest_def(struct vmdef *def, const char *name, uint32_t vcpus, const char *cmdline);
/* The lifecycle events of `vm` since the start, "event:state:reason" joined by spaces. */
char *dtest_events(struct dtest *t, const char *vm);

#endif /* LOCKSTEP_TESTS_DTEST_H */
