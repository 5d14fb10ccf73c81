/*
 * The in-process lockstepd the endpoint fuzz targets (jsonrpc, virt_proto) drive: a real
 * struct daemon from daemon_init, with temporary run and state directories in /dev/shm (so
 * definitions are written and fsync'ed for real but cheaply) and /bin/false as the worker,
 * which exits at once, so starts, on_crash restarts and the calls parked on them all run
 * their course.  libFuzzer offers no context pointer, so the daemon lives at file scope.
 */
#ifndef LOCKSTEP_FUZZ_DAEMON_H
#define LOCKSTEP_FUZZ_DAEMON_H

#include <stdbool.h>

#include "daemon/daemon.h"

/* Starts the daemon (with its libvirt endpoint when `virt`); aborts if it cannot. */
struct daemon *fuzz_daemon_start(bool virt);
/* Whether a VM still has a worker. */
bool fuzz_daemon_has_workers(const struct daemon *d);
/* Turns the loop until `busy` says no (aborts after too many turns: a daemon bug). */
void fuzz_daemon_settle(struct daemon *d, bool (*busy)(const struct daemon *d));
/* Undefines every VM and empties the per-VM directories, for the next input. */
void fuzz_daemon_teardown_vms(struct daemon *d);

#endif /* LOCKSTEP_FUZZ_DAEMON_H */
