/*
 * lockstepd's core, shared by its files: the daemon, its registry of VMs and their state
 * machine, the workers (one lockstep-vm process per running VM), persistence, events, the
 * scheduler glue, the host topology and the consoles.  The front ends (daemon/rpc/,
 * daemon/virt/) change state only through daemon/ops.h and read the registry.
 *
 * The core's files call downwards only, never in a circle (a worker reports to the registry
 * through the callbacks it was spawned with):
 *   daemon.c   -> rpc/, virt/, ops.c, registry.c, scheduler.c, store.c, topology.c
 *   ops.c      -> registry.c, worker.c, schedglue.c, scheduler.c, devices.c, console.c
 *   registry.c -> worker.c, store.c, schedglue.c, scheduler.c, events.c, devices.c, console.c
 *   devices.c -> hostcheck.c
 *   worker.c -> store.c;  schedglue.c -> scheduler.c;  console.c -> store.c
 *   store.c, events.c, scheduler.c, topology.c, listener.c: nothing of the core
 *
 * Everything here lives on the libuv loop thread (the scheduler thread has its own state
 * behind scheduler.h), so nothing is locked.  The daemon never opens a KVM fd: it talks to
 * workers over their control channel (vm/protocol.h) and watches them through pidfds.
 */
#ifndef LOCKSTEP_DAEMON_H
#define LOCKSTEP_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "daemon/listener.h"
#include "daemon/ops.h"
#include "daemon/scheduler.h"
#include "sandbox/sandbox.h"
#include "util/util.h"
#include "vm/protocol.h"
#include "vmdef/vmdef.h"

struct daemon;
struct daemon_options;
struct dvm;
struct worker;

enum dvm_state {
	DVM_SHUTOFF = 0, /* defined, not running */
	DVM_STARTING,	 /* worker spawned, not yet reporting */
	DVM_RUNNING,
	DVM_STOPPING, /* shutdown requested, waiting for the guest */
	DVM_CRASHED,  /* the worker died or the guest crashed */
	DVM_FAILED,   /* the last start failed: the worker ended before the VM ran */
	DVM_STATES
};

/* ---- persistence (daemon/store.c) ---- */

int store_init(struct daemon *d);
/* Writes `json` to `path` atomically: temp file, fsync, rename, fsync of the directory. */
int store_write_atomic(const char *path, const json_t *json);
int store_save_definition(struct daemon *d, const struct vmdef *def);
int store_remove_definition(struct daemon *d, const char *name);
/* Calls `fn` for each stored definition that parses, validates and is named as its file;
 * others are logged and skipped.  A non-zero return from `fn` is logged as its failure. */
typedef int (*store_definition_fn)(struct daemon *d, const struct vmdef *def);
void store_load_definitions(struct daemon *d, store_definition_fn fn);
/* Paths in the run directory: NAME + suffix (".ctl", ".exit", ".log", ".run", ...). */
void store_run_path(const struct dvm *vm, const char *suffix, char *buf, size_t size);
/* lockstepd's copy of the VM's serial console: NAME.console in the run directory (the worker
 * writes it, and the definition's serial.log too if it has one). */
const char *store_console_path(const struct dvm *vm, char *buf, size_t size);

/* What is recorded of a running VM, so that the next daemon finds its worker. */
struct store_runtime {
	pid_t pid;
	uint64_t start_ticks; /* /proc/PID/stat starttime: tells a reused pid apart */
	int domain_id;
	uint64_t started;	/* seconds since the epoch */
	uint64_t console_start; /* where the run's output begins in the console log */
	uint64_t log_start;	/* and in the worker's log */
	json_t *devices;	/* passthrough devices held (dvm_devices_held_json): borrowed when
				   saved, the reader's to release when read; NULL = none */
};

int store_save_runtime(const struct dvm *vm, const struct store_runtime *rec);
/* -ENOENT when there is none. */
int store_read_runtime(const struct dvm *vm, struct store_runtime *rec);
void store_remove_runtime(const struct dvm *vm);
/* The reason and status a worker wrote to its exit file; -ENOENT if it wrote none.
 * *syscall (if not NULL): the forbidden system call of VM_STOP_SECCOMP. */
int store_read_exit(const struct dvm *vm, enum vm_stop_reason *reason, int *status, int *syscall);
/* Removes everything of the VM in the run directory (a forgotten VM leaves nothing). */
void store_remove_run_files(const struct dvm *vm);

/* How a VM that does not run last ended (its state and why), so a restarted daemon still
 * knows; kept in the run directory, so a host reboot forgets it. */
struct store_status {
	char state[16]; /* dvm_state_name()'s: the store knows no states, only files */
	char reason[32];
	int last_status;
	char error[256];
	uint64_t console_start, log_start;
};

int store_save_status(const struct dvm *vm, const struct store_status *st);
/* -ENOENT when there is none (or it cannot be read). */
int store_read_status(const struct dvm *vm, struct store_status *st);
/* The running VM's definition (NAME.def.json: what its worker booted, then live changes). */
int store_save_live(const struct dvm *vm);
int store_read_live(const struct dvm *vm, struct vmdef *def);
/*
 * Before a start: moves a worker log or a console log of the run directory that grew past its
 * bound aside (".1", one generation), appends a line marking the start to both, and tells
 * where this run's output begins in each (their sizes after the marker).
 */
int store_begin_run(struct dvm *vm, uint64_t *console_start, uint64_t *log_start);
/* The worker's own words on why it failed: the last "error:" line it logged since
 * `log_start` (else its last line), without the time stamp; "" when there is none. */
void store_worker_error(const struct dvm *vm, uint64_t log_start, bool any_line, char *buf,
			size_t size);

/* ---- workers (daemon/worker.c) ---- */

typedef void (*worker_reply_fn)(struct dvm *vm, void *arg, json_t *result, const char *error,
				int err);

/* What a worker tells the VM it runs: the registry's handlers. */
struct worker_events {
	void (*hello)(struct dvm *vm, const struct vm_proto_hello *hello);
	void (*pvlock)(struct dvm *vm, const struct vm_proto_pvlock *ev);
	/* The guest stopped (with preserved: the process stays for inspection). */
	void (*stopped)(struct dvm *vm, const struct vm_proto_stopped *st);
	/* The worker runs but cannot be talked to (another protocol version). */
	void (*unreachable)(struct dvm *vm, const char *why);
	/* The process has ended and its last words are read: how it went. */
	void (*ended)(struct dvm *vm, bool crashed, const char *reason, int status);
};

struct worker_request {
	struct util_list link;
	uint64_t id;
	worker_reply_fn fn;
	void *arg;
};

struct worker {
	struct dvm *vm;
	const struct worker_events *events;
	pid_t pid;
	uint64_t start_ticks; /* /proc/PID/stat starttime: tells a reused pid apart */
	bool child;	      /* spawned by this daemon process, so it must be reaped */
	int pidfd;
	uv_poll_t pid_watch;
	bool pid_watch_init;
	uv_pipe_t chan;
	bool chan_open;
	struct util_lines lines; /* what the worker sends */
	char *rbuf;		 /* libuv reads into it */
	uint64_t next_request;
	struct util_list requests;	 /* struct worker_request, awaiting replies */
	uint32_t nr_vcpus;		 /* from the worker's hello: 0 before it */
	int *tids;			 /* the vCPU threads' ids, nr_vcpus of them */
	enum vm_stop_reason stop_reason; /* from the worker's "stopped" event */
	int stop_status;
	bool stopped_event, preserved;
	uv_timer_t kill_timer; /* SIGKILL if a destroyed worker lingers */
	bool exited, finished;
	int exit_code;		       /* from waitid() for our children, -1 = unknown */
	unsigned refs;		       /* the VM's, plus one per initialised libuv handle */
	struct sandbox_cgroup *cgroup; /* its VM's cgroup, removed after it; NULL = none */
};

/* Spawns the VM's worker with its definition as it is now; vm->worker is set on success. */
int worker_spawn(struct dvm *vm, const struct worker_events *events);
/* Re-attaches a worker that survived a daemon restart; -ESRCH if it is gone.  *reachable
 * says whether its control socket answered (a preserved crash may have lost it). */
int worker_attach(struct dvm *vm, const struct store_runtime *rec,
		  const struct worker_events *events, bool *reachable);
/* Sends a request; `fn` runs with the reply, or with an error if the worker dies first. */
int worker_request(struct worker *w, enum vm_proto_cmd cmd, worker_reply_fn fn, void *arg);
/* The irq-steering request: steering of redirectable interrupts on or off, live. */
int worker_request_steering(struct worker *w, bool on, worker_reply_fn fn, void *arg);
/* Ends the worker: a "stop" request, then SIGTERM and SIGKILL if it does not go. */
void worker_destroy(struct worker *w);
void worker_free(struct worker *w);

/* ---- VMs (daemon/registry.c) ---- */

/* A passthrough device a running VM holds (daemon/devices.c). */
struct dvm_device {
	char bdf[16];
	int group;     /* its IOMMU group, -1 = unknown */
	bool managed;  /* lockstepd bound it to vfio-pci for this run */
	bool bound;    /* ... and must give it back */
	char prev[32]; /* the driver it had ("" = none) */
};

struct dvm {
	struct util_list link;
	struct daemon *d;
	/* The stored definition: what the next start boots (a redefinition changes only this). */
	struct vmdef cfg;
	/* The definition of the current run, or of the last one (NULL if it has not run since
	 * this daemon started and none is recorded): what its worker booted plus the changes made
	 * to it live (scheduling, pins).  A start by a client boots cfg anew; a guest reset,
	 * vm.reboot and on_crash restarts boot this one again, as a reset machine would. */
	struct vmdef *live;
	enum dvm_state state;
	char reason[48]; /* why it is in its state: "guest-exit", "destroyed", "seccomp: NAME"... */
	char error[256]; /* the worker's own words on a failed start or a crash, or "" */
	int last_status; /* the worker's exit status, -1 = none yet */
	int domain_id;	 /* libvirt-style id while running, -1 otherwise */
	struct worker *worker;
	uint64_t started_realtime; /* seconds since the epoch */
	uint64_t started_ns;	   /* CLOCK_MONOTONIC at the start, for how long a run lasted */
	uint64_t console_start;	   /* where the current (or last) run begins in the console */
	uint64_t log_start;	   /* and in the worker's log */
	/* on_crash=restart (and guest resets) back off while runs end quickly: the streak of
	 * short runs, and the timer of a restart that waits for its turn. */
	unsigned quick_ends;
	uv_timer_t restart_timer;
	bool restart_pending;
	uint64_t restart_at; /* seconds since the epoch, while restart_pending */
	uint64_t restart_delay_ms;
	bool restart_reboot; /* the pending restart follows a guest reset, not a crash */
	unsigned closing;    /* its timers not yet closed, once it goes */
	struct util_list shutdown_waiters; /* struct dvm_waiter */
	uv_timer_t shutdown_timer;
	bool timer_init;
	bool destroying; /* vm.destroy in progress: the worker's end is no crash */
	/* Goes when its worker ends: made by a create, or undefined while it ran. */
	bool transient;
	uint64_t pvlock_events; /* preemption episodes the worker reported */
	bool scheduled;		/* handed to the scheduler thread (under its domain id) */
	/* How the last run ended, for vm.info and sched.stats once the worker is gone (NULL
	 * while running and before the first run): the worker's end-of-run report and the
	 * scheduler's accounting at detach. */
	json_t *last_stats;
	json_t *last_sched;
	/* Passthrough devices its worker holds, from its start to its end. */
	unsigned nr_held;
	struct dvm_device held[VMDEF_DEVICES_MAX];
	struct console_session *console; /* the client attached to its serial console, or NULL */
};

struct dvm_waiter {
	struct util_list link;
	ops_done_fn done;
	void *arg;
	bool for_stop;	      /* shutdown and destroy wait for the stop; start for "running" */
	bool destroy;	      /* a destroy: no shutdown timeout applies */
	uint64_t deadline_ns; /* a shutdown's own timeout (CLOCK_MONOTONIC), 0 = none */
};

const char *dvm_state_name(enum dvm_state state);
/* -EINVAL unless `name` is a state (or "active": any state with a worker). */
int dvm_state_parse(const char *name, enum dvm_state *out);
/* The definition in force: the running VM's while it runs, else the stored one. */
static inline const struct vmdef *dvm_def(const struct dvm *vm)
{
	return vm->worker && vm->live ? vm->live : &vm->cfg;
}
struct dvm *registry_find(struct daemon *d, const char *name);
struct dvm *registry_find_uuid(struct daemon *d, const char *uuid);
struct dvm *registry_find_id(struct daemon *d, int domain_id);
unsigned registry_count(struct daemon *d);
/* Adds a validated definition (persisted first); -EEXIST if the name or uuid is taken,
 * -EUSERS beyond --max-vms. */
int registry_define(struct daemon *d, const struct vmdef *def, struct dvm **out);
/* Replaces the definition of a VM that exists (takes effect at its next start). */
int registry_redefine(struct dvm *vm, const struct vmdef *def);
/* Forgets a VM that does not run (-EBUSY if it does) and frees it. */
int registry_undefine(struct dvm *vm);
/* Sets a vCPU's pin in the stored definition. */
int dvm_set_pin(struct dvm *vm, uint32_t vcpu, const struct util_cpuset *cpus);
/* Moves a VM to a new state, persisting runtime records and announcing it. */
void dvm_set_state(struct dvm *vm, enum dvm_state state, const char *reason);
/* Tells event listeners what happened to a VM ("defined", "started", ...). */
void dvm_announce(struct dvm *vm, const char *what);
/* Starts the worker, its passthrough devices acquired first: with the stored definition
 * (`fresh`) or the last run's again; err says why not. */
int dvm_start(struct dvm *vm, bool fresh, char *err, size_t err_len);
/* Forgets a restart that waits for its turn (a client started, destroyed or undefined it). */
void dvm_cancel_restart(struct dvm *vm);
/* Sets a live change of the running VM's definition (takes `def`'s contents) and records it. */
int dvm_set_live(struct dvm *vm, struct vmdef *def);
/* Fails every parked operation with -errno (the daemon is going away). */
void dvm_fail_waiters(struct dvm *vm, int err, const char *message);
/* Loads the stored definitions, then re-attaches to workers that outlived the previous
 * daemon (or records how they ended), then starts the autostart VMs. */
void registry_load(struct daemon *d);
/* Drops the daemon's hold on every VM; running workers are left running. */
void registry_fini(struct daemon *d);

/* ---- events (daemon/events.c) ---- */

/* Internal subscribers to events (the front ends); `event` is borrowed. */
struct daemon_listener {
	struct util_list link;
	void (*fn)(void *arg, json_t *event);
	void *arg;
};

void daemon_add_listener(struct daemon *d, struct daemon_listener *l);
void daemon_remove_listener(struct daemon_listener *l);
/* Hands an event to every listener.  Steals `event`. */
void events_emit(struct daemon *d, json_t *event);

/* ---- console (daemon/console.c) ---- */

/* Reads [offset, offset + max) of the VM's console log; *size is the log's size.  A VM that
 * never ran has an empty console.  *data is malloc'ed (NULL when nothing was read). */
int console_read(const struct dvm *vm, uint64_t offset, size_t max, unsigned char **data,
		 size_t *len, uint64_t *size);
/* Guest bytes as a JSON string: invalid UTF-8 (and NUL) becomes U+FFFD. */
json_t *console_text_json(const unsigned char *buf, size_t len);
/* How many of the last bytes of buf[0, len) begin a UTF-8 sequence that continues beyond it
 * (0-3): a stream holds them back for the next chunk. */
size_t console_utf8_tail(const unsigned char *buf, size_t len);

/*
 * Live console sessions: one client at a time is attached to a running VM's serial console
 * through the worker's console socket (NAME.cons in the run directory), gets the guest's
 * output as it is written and types into the guest.  ops_console_open() applies the rules;
 * these are its mechanics.
 */
int console_session_open(struct dvm *vm, const struct console_client *client,
			 struct console_session **out);
int console_session_write(struct console_session *s, const void *data, size_t len);
/* Ends a session for its client: no `ended` call follows. */
void console_session_close(struct console_session *s);
/* Ends the VM's session with `why` (its `ended` runs); for another client's takeover. */
void console_session_end(struct dvm *vm, const char *why);
/* The VM's worker is gone: its session reads what is left, then ends ("the VM stopped"). */
void console_vm_stopped(struct dvm *vm);

/* ---- confinement (daemon/confine.c, daemon/conf.c) ---- */

/* Whether workers start sandboxed: lockstepd runs as root and was not told --no-sandbox. */
bool confine_sandboxed(const struct daemon *d);
/* Refuses (-EPERM) a definition whose kernel, initrd or serial.log is not beneath an allowed
 * directory, with a message that names the key and the rule. */
int confine_check_definition(struct daemon *d, const struct vmdef *def, char *err, size_t err_len);
/* Whether a VM may start now: the worker user exists.  -ECHILD with a message otherwise. */
int confine_ready(struct daemon *d, char *err, size_t err_len);
/*
 * A define's check of its kernel (-EINVAL and why, naming "kernel"): missing, not a regular
 * file, or not a bootable image.  The file is opened as the worker opens it (beneath an
 * allowed directory, no links, a regular file) and read only if the worker's user could read
 * it; a link on the way or a file that user may not read is left for the start to report in
 * the worker's words.
 */
int confine_check_kernel(struct daemon *d, const char *path, char *err, size_t err_len);
/* At start, before the privileges go: the VMs' parent cgroup; says how workers run, and
 * warns if they cannot. */
void confine_init(struct daemon *d);
/* Starts `w`'s process: base_argv plus the sandbox's flags, its log as stdout and stderr, the
 * control channel as VM_PROTO_CONTROL_FD; a pid namespace and a cgroup when sandboxed. */
int confine_spawn(struct worker *w, char *const *base_argv, const char *log_path, int chan_fd,
		  pid_t *pid, int *pidfd);
/* The cgroup of a VM that does not run: removed if its worker ended while no lockstepd
 * watched, or when the VM is undefined. */
void confine_forget(struct dvm *vm);
/* A re-attached worker: finds its cgroup, to remove it after the worker. */
void confine_attach(struct worker *w);
/* Cleans up after an exited worker (cgroup, control socket file); frees what confine held. */
void confine_worker_free(struct worker *w);
/* Rewrites the worker's vCPU thread ids (w->tids, numbered in its pid namespace) to the ids
 * lockstepd sees; an id that names no thread of the worker becomes 0. */
void confine_host_tids(struct worker *w);
/* A stop reason's text: its name, or "seccomp: NAME" for the system call `syscall`. */
const char *confine_stop_reason(enum vm_stop_reason reason, int syscall, char *buf, size_t size);
/* After the sockets are bound: only the capabilities workers need stay; no_new_privs. */
int confine_drop_privileges(struct daemon *d);
json_t *confine_json(struct daemon *d);
/* Reads lockstepd.conf into `o` (docs/security.md); a missing file is fine unless
 * `must_exist`.  worker_user from the file yields to one given on the command line. */
int conf_load(struct daemon_options *o, const char *path, bool must_exist, bool user_given,
	      char *err, size_t err_len);

/* ---- host topology (daemon/topology.c) ---- */

int topology_init(struct daemon *d);
void topology_fini(struct daemon *d);
json_t *topology_json(struct daemon *d);
/* The host's CPUs (cores, SMT siblings, NUMA nodes) as the scheduler wants them. */
void topology_sched_host(struct daemon *d, struct sched_host *host);

/* How many of each the host has (each at least 1); false when hwloc could not tell. */
struct topology_counts {
	unsigned pus, cores, packages, numa_nodes;
};
bool topology_counts(struct daemon *d, struct topology_counts *c);

/* One host CPU: its OS index, its package's and core's logical indexes, its core's CPUs. */
struct topology_cpu {
	unsigned id, package, core;
	char siblings[64];
};
/* Every host CPU (*out malloc'ed; none without hwloc). */
int topology_cpus(struct daemon *d, struct topology_cpu **out, unsigned *n);

/* ---- the host check (daemon/hostcheck.c) ---- */

struct hostcheck;

/* Checks the host (sysfs, /proc, CPUID) and sets d->host.ple; starts lockstep-vm's probe. */
int hostcheck_init(struct daemon *d);
/* Tells waiting callers the daemon is stopping and lets a running probe go. */
void hostcheck_fini(struct daemon *d);
/*
 * A fresh check: `done` runs once the running (or a new) probe has answered, with the report
 * as host.check's JSON (the callee's to keep), or with NULL and why not.
 */
typedef void (*hostcheck_done_fn)(void *arg, json_t *report, const char *error);
int hostcheck_run(struct daemon *d, hostcheck_done_fn done, void *arg);
/* The latest report's summary, for daemon.info. */
json_t *hostcheck_summary_json(struct daemon *d);
/* Why PLE statistics can or cannot be expected on this host, for logs. */
const char *hostcheck_ple_why(struct daemon *d);
/* The passthrough path's first check (host_iommu_ready): 0 or -errno with `why`. */
int hostcheck_iommu_ready(struct daemon *d, const char *bdf, char *why, size_t why_len);

/* ---- passthrough devices (daemon/devices.c) ---- */

/* At define: every vfio-pci device on an IOMMU that remaps, in a group; -EINVAL and why. */
int dvm_devices_check_definition(struct daemon *d, const struct vmdef *def, char *err,
				 size_t err_len);
/*
 * Before the VM's worker is spawned: the devices are checked again (nobody else holds them
 * or their group, their driver lets go of them), managed ones bound to vfio-pci, and all
 * recorded in vm->held.  -EINVAL (the host cannot), -EBUSY (the device is busy) with why; on
 * failure nothing stays bound.
 */
int dvm_devices_acquire(struct dvm *vm, char *err, size_t err_len);
/* After the worker ended: managed devices go back to their drivers; vm->held is emptied. */
void dvm_devices_release(struct dvm *vm);
/* The running VM that holds `bdf` or a device of IOMMU group `group` (-1: any), or NULL. */
const char *dvm_devices_holder(struct daemon *d, const char *bdf, int group);
/* vm->held as JSON (the runtime record) and back; -EPROTO for a record that is not one. */
json_t *dvm_devices_held_json(const struct dvm *vm);
int dvm_devices_held_from_json(struct dvm *vm, const json_t *list);
/* Completes a worker's DMA remapping report with what only the host sees: each device's
 * interrupts as /proc/interrupts counts them, and through which interrupt chip. */
void dvm_devices_report_complete(json_t *report);
/* The host's PCI devices: IOMMU group, driver, what lockstep could do with each, who has it. */
json_t *dvm_devices_host_json(struct daemon *d);

/* ---- scheduling glue (daemon/schedglue.c) ---- */

/* The engine's parameters for a definition (pins included; `pins` has def.vcpus entries). */
void dvm_sched_params(const struct vmdef *def, struct sched_vm_params *p, struct util_cpuset *pins);
/* Whether the definition offers the guest KVM pv calls (kicks, PV IPIs, yields), whose
 * statistics the worker's detector reads for Linux guests. */
bool dvm_kvm_pv_calls(const struct vmdef *cfg);
/* Refuses a policy the host cannot give the VM; fills err.  0 or -E2BIG/-EINVAL. */
int dvm_sched_check(struct daemon *d, const struct vmdef *def, char *err, size_t err_len);
/* Hands a running VM to the scheduler (after its worker's hello); logs failures. */
void dvm_sched_attach(struct dvm *vm, int sched_fd);
void dvm_sched_detach(struct dvm *vm);
/* Logs what the scheduler should tell a person about a scheduled VM on this host: which
 * signals adaptive acts on, SMT siblings in its gang slices. */
void dvm_sched_notes(struct dvm *vm, enum vmdef_sched_policy policy);

/* ---- the daemon (daemon/daemon.c) ---- */

#define DAEMON_DIR_MAX 3072 /* leaves room for "/vms/NAME.suffix" in a PATH_MAX buffer */

struct daemon_options {
	char run_dir[DAEMON_DIR_MAX];
	char state_dir[DAEMON_DIR_MAX];
	char socket_path[108];	  /* sun_path */
	char vm_binary[PATH_MAX]; /* lockstep-vm */
	enum util_log_level log_level;
	bool foreground;
	char log_file[DAEMON_DIR_MAX + 16]; /* where a daemonised lockstepd logs; "" = stderr */
	unsigned max_clients;	       /* on the JSON-RPC and the read-write libvirt socket, each */
	unsigned max_clients_ro;       /* on the read-only libvirt socket */
	unsigned max_clients_per_user; /* on each endpoint, for users other than root; 0 = none */
	uint64_t handshake_timeout_ms; /* to reach libvirt's CONNECT_OPEN; 0 = none */
	size_t max_buffered;	       /* the clients' buffer budget (listener.h); 0 = none */
	unsigned max_vms;
	size_t max_frame;
	uint64_t shutdown_timeout_ms;
	char virt_socket[108];	  /* libvirt endpoint; "" = /run/libvirt/virtlockstepd-sock */
	char virt_socket_ro[108]; /* "" = virt_socket + "-ro" */
	bool no_virt;
	struct sandbox_paths allowed; /* definitions may name files beneath these only */
	char worker_user[64];	      /* "" = lockstep-vm */
	bool no_sandbox;	      /* workers start unconfined (debugging, measurements) */
};

struct daemon {
	struct daemon_options opts;
	uv_loop_t *loop;
	struct util_log log;
	uint64_t start_ns;
	int lock_fd; /* flock on the run directory: one daemon per run directory */

	struct util_list vms;
	int next_domain_id;
	struct util_list listeners; /* struct daemon_listener */
	struct util_list deferred;  /* reboots waiting for the check phase (daemon/ops.c) */
	uv_check_t deferred_check;

	uv_signal_t sig_term, sig_int;

	void *topology;		/* hwloc_topology_t */
	struct sched_host host; /* the CPUs VMs may use, for the scheduler */
	struct scheduler *scheduler;
	struct hostcheck *hostcheck;
	struct listener_budget client_budget; /* shared by both endpoints' listeners */
	struct rpc_server *rpc;		      /* the JSON-RPC endpoint */
	struct virt_server *virt;	      /* the libvirt endpoint, or NULL */
	bool quitting;
};

int daemon_init(struct daemon *d, const struct daemon_options *opts);
int daemon_run(struct daemon *d);
void daemon_fini(struct daemon *d);
/* Reboots between their destroy and their start (daemon/ops.c): run from the check phase, or
 * failed when the daemon stops. */
void ops_run_deferred(uv_check_t *h);
void ops_drop_deferred(struct daemon *d);

#endif /* LOCKSTEP_DAEMON_H */
