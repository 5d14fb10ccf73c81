/*
 * daemon/ops.h — the operations that change lockstepd's state, and the only way in for every
 * front end: the JSON-RPC methods (daemon/rpc/) and the libvirt procedures (daemon/virt/)
 * translate their arguments into these calls and the errors out of them, nothing more.  Every
 * rule — what a definition must satisfy on this host, names and uuids, the VM cap, which
 * states allow what — is checked here, once.
 *
 * Each returns 0 or -errno with a message for a person in `err`.  The errnos are chosen so
 * that each front end maps them with one table, unambiguously:
 *   -ENOENT     no such VM (or it went away meanwhile)
 *   -EEXIST     the name or the uuid is another VM's
 *   -EBUSY      the VM's state does not allow it (running, not running, transient), or a
 *               passthrough device it needs is busy (a host driver has it, another VM has it
 *               or its IOMMU group, the group is not viable)
 *   -ECHILD     a start failed: the worker ended before the VM ran, or cannot be started
 *               (the user lockstepd runs workers as does not exist)
 *   -EINVAL     the definition breaks a rule (vmdef_validate, relative paths, CPUs this host
 *               does not have, passthrough this host cannot give: no IOMMU or remapping, no
 *               such device, no vfio-pci driver)
 *   -EPERM      a file the definition names lies outside the directories lockstepd allows
 *               (docs/security.md)
 *   -E2BIG      gang scheduling for a VM wider than its host CPUs
 *   -ERANGE     an argument out of range (a vCPU the VM does not have, a host CPU the host
 *               does not have, an empty CPU set, a device the VM does not have)
 *   -EUSERS     lockstepd's limit on defined VMs (--max-vms)
 *   -ETIMEDOUT  the guest did not finish a shutdown in time
 *   -ESHUTDOWN  lockstepd is stopping
 *   any other   a system call failed with that errno (-ENOSPC is a full disk, never a limit)
 *
 * Operations that wait for the guest (start, shutdown, destroy, reboot, create) return
 * OPS_PENDING when they have begun: `done` then runs exactly once, later, never from inside
 * the call, with 0 or -errno and a message.  They return 0 when they finished at once (done is
 * not called) and -errno when they failed at once (done is not called either).
 *
 * Loop thread only.
 */
#ifndef LOCKSTEP_DAEMON_OPS_H
#define LOCKSTEP_DAEMON_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"
#include "vmdef/vmdef.h"

struct daemon;
struct dvm;

#define OPS_PENDING 1

/* How an operation that waited ends: err 0 or -errno (message NULL when err is 0). */
typedef void (*ops_done_fn)(struct dvm *vm, void *arg, int err, const char *message);

/* ---- definitions ---- */

enum ops_define_flags {
	OPS_DEFINE_NEW = 1u << 0,	     /* refuse a name that exists (no redefinition) */
	OPS_DEFINE_KEEP_AUTOSTART = 1u << 1, /* a redefinition keeps the VM's autostart flag */
};

/*
 * Defines a VM, or redefines the one of that name (it takes effect at its next start; a
 * transient VM becomes persistent).  The definition is checked (vmdef_validate, absolute
 * paths, the host's CPUs), then the names: a redefinition that names another uuid, or a uuid
 * that is another VM's, is -EEXIST.  *out is the VM, *created whether it is new (the
 * "defined" event went out).
 */
int ops_define(struct daemon *d, const struct vmdef *def, unsigned flags, struct dvm **out,
	       bool *created, char *err, size_t err_len);

enum ops_undefine_flags {
	OPS_UNDEFINE_WHEN_STOPPED = 1u << 0, /* a running VM becomes transient (libvirt's way) */
};

/* Forgets a VM (the "undefined" event goes out).  A running VM is -EBUSY unless
 * OPS_UNDEFINE_WHEN_STOPPED; a transient one is always -EBUSY.  `vm` is freed unless it runs
 * on. */
int ops_undefine(struct dvm *vm, unsigned flags, char *err, size_t err_len);

/* The autostart flag in the definition; a transient VM has none (-EBUSY). */
int ops_set_autostart(struct dvm *vm, bool autostart, char *err, size_t err_len);

/* ---- running ---- */

/* Starts a VM; done when it runs (or did not start: -ECHILD). */
int ops_start(struct dvm *vm, ops_done_fn done, void *arg, char *err, size_t err_len);
/* Defines a transient VM and starts it: it goes when it stops, or at once if it does not
 * start.  A name that exists is -EEXIST.  *out is the VM while it lasts. */
int ops_create(struct daemon *d, const struct vmdef *def, ops_done_fn done, void *arg,
	       struct dvm **out, char *err, size_t err_len);
/* Presses the guest's ACPI power button; done when the VM stopped, or -ETIMEDOUT after
 * timeout_ms (the VM then runs on). */
int ops_shutdown(struct dvm *vm, uint64_t timeout_ms, ops_done_fn done, void *arg, char *err,
		 size_t err_len);
/* Ends the worker: a stop request, then SIGTERM and SIGKILL.  A crashed VM whose worker is
 * gone is reset to shut off at once (0). */
int ops_destroy(struct dvm *vm, ops_done_fn done, void *arg, char *err, size_t err_len);
/* Destroys a running VM and starts it again (lockstep has no in-place reset); done when it
 * runs again.  A transient VM stays transient. */
int ops_reboot(struct dvm *vm, ops_done_fn done, void *arg, char *err, size_t err_len);

/* ---- scheduling ---- */

enum ops_affect {
	OPS_AFFECT_LIVE = 1u << 0,   /* the running VM: -EBUSY if it does not run */
	OPS_AFFECT_CONFIG = 1u << 1, /* the stored definition */
};

/*
 * Pins a vCPU to host CPUs: the running vCPU whenever the VM runs, the definition when
 * OPS_AFFECT_CONFIG or when the VM does not run.  *live and *stored say which happened.
 */
int ops_pin(struct dvm *vm, uint32_t vcpu, const struct util_cpuset *cpus, unsigned affect,
	    bool *live, bool *stored, char *err, size_t err_len);

/*
 * Sets the scheduling policy, and the gang quantum and relaxed skew bound when not 0: for the
 * running VM whenever it is scheduled, in the definition when OPS_AFFECT_CONFIG or when the VM
 * does not run.  *now receives the settings that resulted (no pins).
 */
int ops_set_sched(struct dvm *vm, enum vmdef_sched_policy policy, uint32_t quantum_us,
		  uint32_t skew_us, unsigned affect, struct vmdef_sched *now, bool *live,
		  bool *stored, char *err, size_t err_len);

/* ---- interrupts ---- */

/*
 * Turns steering of redirectable interrupts on or off: in the definition when
 * OPS_AFFECT_CONFIG or when the VM does not run (*stored), and for the running VM, whose
 * worker answers: OPS_PENDING, then `done`.
 */
int ops_set_irq_steering(struct dvm *vm, bool on, unsigned affect, ops_done_fn done, void *arg,
			 bool *stored, char *err, size_t err_len);

/* ---- passthrough devices ---- */

/*
 * Adds a device to the definition of a VM that is shut off ("cold": -EBUSY while it runs);
 * the definition with it must pass everything a define checks (for vfio-pci: an IOMMU that
 * remaps, the device there in an IOMMU group).  *index is its place in "devices".
 */
int ops_device_attach(struct dvm *vm, const struct vmdef_device *dev, unsigned *index, char *err,
		      size_t err_len);
/* Removes the vfio-pci device with host address `bdf` from a shut-off VM's definition
 * (-ERANGE when it has none). */
int ops_device_detach(struct dvm *vm, const char *bdf, char *err, size_t err_len);

/* ---- the serial console ---- */

struct console_session;

/* Who is attached to a console session: the front end's side. */
struct console_client {
	/* The guest's output, as it comes. */
	void (*output)(void *arg, const unsigned char *data, size_t len);
	/* The session ended: the VM stopped (`stopped`), or another client took the console over,
	 * or the worker's console went away; `why` is for a person.  The session is gone when
	 * this returns.  Never called from inside ops_console_open(). */
	void (*ended)(void *arg, bool stopped, const char *why);
	void *arg;
};

enum ops_console_flags {
	OPS_CONSOLE_FORCE = 1u << 0, /* take the console from the client that has it */
};

/*
 * Attaches `client` to a running VM's serial console: it gets what the guest writes from now
 * on (the console log keeps everything) and may type with ops_console_input().  -EBUSY when
 * the VM does not run, or when another client has the console and OPS_CONSOLE_FORCE is not
 * given (with it, that client's session ends: "taken over").
 */
int ops_console_open(struct dvm *vm, unsigned flags, const struct console_client *client,
		     struct console_session **out, char *err, size_t err_len);
/* Types `len` bytes into the guest; -ENOBUFS when the guest is that far behind. */
int ops_console_input(struct console_session *s, const void *data, size_t len);
/* Detaches the client (no `ended` call). */
void ops_console_close(struct console_session *s);

#endif /* LOCKSTEP_DAEMON_OPS_H */
