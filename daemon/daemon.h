/*
 * lockstepd internals: the daemon, its registry of VMs, the workers (one lockstep-vm process
 * per running VM), client connections and event subscribers.
 *
 * Everything here lives on the libuv loop thread; nothing is shared with other threads, so
 * nothing is locked.  The daemon never opens a KVM fd: it talks to workers over their control
 * channel (vm/protocol.h) and watches them through pidfds.
 */
#ifndef LOCKSTEP_DAEMON_H
#define LOCKSTEP_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "api/api.h"
#include "daemon/ops.h"
#include "daemon/scheduler.h"
#include "util/util.h"
#include "vm/protocol.h"
#include "vmdef/vmdef.h"

struct daemon;
struct dvm;
struct worker;
struct ucred;

enum dvm_state {
	DVM_SHUTOFF = 0, /* defined, not running */
	DVM_STARTING,	 /* worker spawned, not yet reporting */
	DVM_RUNNING,
	DVM_STOPPING, /* shutdown requested, waiting for the guest */
	DVM_CRASHED,  /* the worker died or the guest crashed */
};

const char *dvm_state_name(enum dvm_state state);

/* ---- workers (daemon/worker.c) ---- */

typedef void (*worker_reply_fn)(struct dvm *vm, void *arg, json_t *result, const char *error,
				int err);

struct worker_request {
	struct util_list link;
	uint64_t id;
	worker_reply_fn fn;
	void *arg;
};

struct worker {
	struct dvm *vm;
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
	int exit_code; /* from waitid() for our children, -1 = unknown */
	unsigned refs; /* the VM's, plus one per initialised libuv handle */
};

int worker_spawn(struct dvm *vm);
/* Re-attaches a worker that survived a daemon restart; -ESRCH if it is gone. */
int worker_attach(struct dvm *vm, pid_t pid, uint64_t start_ticks);
/* Sends a request; `fn` runs with the reply, or with an error if the worker dies first. */
int worker_request(struct worker *w, enum vm_proto_cmd cmd, worker_reply_fn fn, void *arg);
/* Ends the worker: a "stop" request, then SIGTERM and SIGKILL if it does not go. */
void worker_destroy(struct worker *w);
void worker_free(struct worker *w);

/* ---- VMs (daemon/registry.c) ---- */

struct dvm {
	struct util_list link;
	struct daemon *d;
	struct vmdef cfg;
	enum dvm_state state;
	char reason[32]; /* why it is in its state: "guest-exit", "destroyed", "crashed"... */
	int last_status; /* the worker's exit status, -1 = none yet */
	int domain_id;	 /* libvirt-style id while running, -1 otherwise */
	struct worker *worker;
	uint64_t started_realtime; /* seconds since the epoch */
	unsigned restarts;	   /* on_crash=restart, within the current window */
	uint64_t restart_window_ns;
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
};

struct dvm_waiter {
	struct util_list link;
	ops_done_fn done;
	void *arg;
	bool for_stop;	      /* shutdown and destroy wait for the stop; start for "running" */
	bool destroy;	      /* a destroy: no shutdown timeout applies */
	uint64_t deadline_ns; /* a shutdown's own timeout (CLOCK_MONOTONIC), 0 = none */
};

/* Fails every parked operation with -errno (the daemon is going away). */
void dvm_fail_waiters(struct dvm *vm, int err, const char *message);

struct dvm *registry_find(struct daemon *d, const char *name);
struct dvm *registry_find_uuid(struct daemon *d, const char *uuid);
struct dvm *registry_find_id(struct daemon *d, int domain_id);
/* Adds a validated definition (persisted first); -EEXIST if the name or uuid is taken,
 * -EUSERS beyond --max-vms. */
int registry_define(struct daemon *d, const struct vmdef *cfg, struct dvm **out);
/* Replaces the definition of a VM that exists (takes effect at its next start). */
int registry_redefine(struct dvm *vm, const struct vmdef *cfg);
int registry_undefine(struct dvm *vm);
/* Sets a vCPU's pin in the stored definition. */
int dvm_set_pin(struct dvm *vm, uint32_t vcpu, const struct util_cpuset *cpus);
unsigned registry_count(struct daemon *d);
/* Moves a VM to a new state, persisting runtime records and notifying subscribers. */
void dvm_set_state(struct dvm *vm, enum dvm_state state, const char *reason);
/* The worker ended (exited or died): applies on_crash, answers waiters, frees the worker. */
void dvm_worker_gone(struct dvm *vm, bool crashed, const char *reason, int status);
int dvm_start(struct dvm *vm);
/* Paths in the run directory: control socket, console log, runtime record, exit file. */
void dvm_run_path(const struct dvm *vm, const char *suffix, char *buf, size_t size);
const char *dvm_console_path(const struct dvm *vm, char *buf, size_t size);
void dvm_answer_waiters(struct dvm *vm, bool stopped);

/* ---- persistence (daemon/store.c) ---- */

int store_init(struct daemon *d);
int store_save_definition(struct daemon *d, const struct vmdef *cfg);
int store_remove_definition(struct daemon *d, const char *name);
/* Loads every stored definition into the registry; bad files are logged and skipped. */
int store_load_definitions(struct daemon *d);
int store_save_runtime(struct dvm *vm);
/* The reason and status a worker wrote to its exit file; -ENOENT if it wrote none. */
int store_read_exit(struct dvm *vm, enum vm_stop_reason *reason, int *status);
void store_remove_runtime(struct dvm *vm);
/* Re-attaches to workers that outlived the previous daemon, or records how they ended. */
void store_recover_runtime(struct daemon *d);
/* Writes `json` to `path` atomically: temp file, fsync, rename, fsync of the directory. */
int store_write_atomic(const char *path, const json_t *json);

/* ---- clients and events (daemon/server.c, daemon/events.c) ---- */

struct client {
	struct util_list link;
	struct daemon *d;
	uv_pipe_t pipe;
	struct api_session *session;
	bool subscribed;
	bool closing;
	bool dead; /* to be closed by the sweeper */
	bool eof;  /* the client half-closed: close once its replies are out */
	uid_t uid;
	pid_t pid;
	struct util_list follows; /* console followers on this client */
};

/* Internal subscribers to events (the libvirt endpoint); `event` is borrowed. */
struct daemon_listener {
	struct util_list link;
	void (*fn)(void *arg, json_t *event);
	void *arg;
};

void daemon_add_listener(struct daemon *d, struct daemon_listener *l);
void daemon_remove_listener(struct daemon_listener *l);

int server_listen(struct daemon *d);
void server_close(struct daemon *d);
/* Root, the daemon's own user and members of the "lockstep" group may change things. */
/* Reads the peer's credentials on `fd` into *cred; true if it may use lockstepd (root, the
 * daemon's user, or a process holding group "lockstep"). */
bool server_peer_allowed(struct daemon *d, int fd, struct ucred *cred);
/* Sends an event notification to every subscribed client.  Steals `event`. */
void events_emit(struct daemon *d, json_t *event);
void events_lifecycle(struct dvm *vm, const char *what);

/* ---- console (daemon/console.c) ---- */

void console_read(struct dvm *vm, struct api_call *call, uint64_t offset, uint64_t max);
int console_follow(struct client *c, struct dvm *vm, uint64_t offset);
void console_unfollow_client(struct client *c);
void console_unfollow_vm(struct daemon *d, struct dvm *vm);

/* ---- host topology (daemon/topology.c) ---- */

int topology_init(struct daemon *d);
void topology_fini(struct daemon *d);
json_t *topology_json(struct daemon *d);
/* The host's CPUs (cores, SMT siblings, NUMA nodes) as the scheduler wants them. */
void topology_sched_host(struct daemon *d, struct sched_host *host);

/* ---- scheduling glue (daemon/schedglue.c) ---- */

/* The engine's parameters for a definition (pins included; `pins` has cfg.vcpus entries). */
void dvm_sched_params(const struct vmdef *cfg, struct sched_vm_params *p, struct util_cpuset *pins);
/* Refuses a policy the host cannot give the VM; fills err.  0 or -E2BIG/-EINVAL. */
int dvm_sched_check(struct daemon *d, const struct vmdef *cfg, char *err, size_t err_len);
/* Hands a running VM to the scheduler (after its worker's hello); logs failures. */
void dvm_sched_attach(struct dvm *vm, int sched_fd);
void dvm_sched_detach(struct dvm *vm);

/* ---- methods (daemon/methods.c) ---- */

/* The VM named by params.name, or NULL with the call failed (missing name, no such VM). */
struct dvm *method_find_vm(struct daemon *d, struct api_call *call, json_t *params);
void method_sched_get(void *ctx, struct api_call *call, json_t *params);
void method_sched_set(void *ctx, struct api_call *call, json_t *params);
void method_sched_stats(void *ctx, struct api_call *call, json_t *params);
extern const struct api_method daemon_methods[];
extern const size_t daemon_nr_methods;
json_t *dvm_summary_json(struct dvm *vm);

/* ---- libvirt remote protocol endpoint (daemon/virt_server.c) ---- */

struct virt_server;

/* Listens on the libvirt sockets; a default path that another daemon serves is skipped. */
int virt_server_start(struct daemon *d);
void virt_server_stop(struct daemon *d);

/* ---- the daemon ---- */

#define DAEMON_DIR_MAX 3072 /* leaves room for "/vms/NAME.suffix" in a PATH_MAX buffer */

struct daemon_options {
	char run_dir[DAEMON_DIR_MAX];
	char state_dir[DAEMON_DIR_MAX];
	char socket_path[108];	  /* sun_path */
	char vm_binary[PATH_MAX]; /* lockstep-vm */
	enum util_log_level log_level;
	bool foreground;
	unsigned max_clients;
	unsigned max_vms;
	size_t max_frame;
	uint64_t shutdown_timeout_ms;
	char virt_socket[108];	  /* libvirt endpoint; "" = /run/libvirt/virtlockstepd-sock */
	char virt_socket_ro[108]; /* "" = virt_socket + "-ro" */
	bool no_virt;
};

struct daemon {
	struct daemon_options opts;
	uv_loop_t *loop;
	struct util_log log;
	uint64_t start_ns;
	int lock_fd; /* flock on the run directory: one daemon per run directory */

	uv_pipe_t server;
	bool server_open;
	uv_check_t sweeper;
	gid_t group; /* the "lockstep" group, or -1 */
	struct util_list clients;
	unsigned nr_clients;

	struct util_list vms;
	int next_domain_id;
	struct util_list listeners; /* struct daemon_listener */

	uv_signal_t sig_term, sig_int;
	uv_timer_t console_timer;
	bool console_timer_on;
	struct util_list follows; /* every console follower */

	void *topology;		/* hwloc_topology_t */
	struct sched_host host; /* the CPUs VMs may use, for the scheduler */
	struct scheduler *scheduler;
	struct virt_server *virt;  /* the libvirt endpoint, or NULL */
	struct util_list deferred; /* reboots waiting for the check phase (daemon/ops.c) */
	uv_check_t deferred_check;
	bool quitting;
};

int daemon_init(struct daemon *d, const struct daemon_options *opts);
/* Reboots between their destroy and their start (daemon/ops.c): run from the check phase, or
 * failed when the daemon stops. */
void ops_run_deferred(uv_check_t *h);
void ops_drop_deferred(struct daemon *d);
int daemon_run(struct daemon *d);
void daemon_fini(struct daemon *d);

#endif /* LOCKSTEP_DAEMON_H */
