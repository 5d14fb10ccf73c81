/*
 * vm/protocol.h — the control protocol between lockstepd and its lockstep-vm workers, the one
 * place that spells it: both ends include this header and link vm/protocol.c (the library
 * lockstep_vmproto), and neither spells a message name of its own.
 *
 * Start.  lockstepd runs `lockstep-vm --config DEF.json --console-log RUN_DIR/vms/NAME.console
 * --control-fd 3 --control-socket RUN_DIR/vms/NAME.ctl --exit-file RUN_DIR/vms/NAME.exit`
 * followed by its sandbox's flags (--sandbox or --no-sandbox, --user, --confine-paths and an
 * --allow-path per allowed directory; docs/security.md), with its end of a socketpair as fd 3
 * (VM_PROTO_CONTROL_FD), in a session of its own so that VMs outlive the daemon, and when
 * sandboxed as pid 1 of a pid namespace of its own.  A restarted daemon connects to the
 * worker's --control-socket (mode 0600; one controller at a time, a new connection replaces
 * the old one).  The vCPU thread ids in "hello" are the worker's own (its pid namespace's);
 * lockstepd translates them.
 *
 * Transport.  Newline-delimited JSON objects, one per line, over that unix stream socket.
 * Daemon -> worker lines are at most VM_PROTO_REQUEST_MAX bytes, worker -> daemon lines at
 * most VM_PROTO_MSG_MAX; a peer that sends longer lines is disconnected.
 *
 * Worker -> daemon, events {"event": NAME, ...}:
 *   hello    {"version", "pid", "name", "state", "vcpus": [{"vcpu", "tid"}], "sched_fd"}
 *            on every new connection, as soon as every vCPU thread has its thread id.
 *            "version" is VM_PROTO_VERSION; a daemon talks to no worker of another version.
 *            "sched_fd" is the fd number of the sched page (a sealed memfd) in the worker,
 *            which the daemon takes with pidfd_getfd and maps, or -1.
 *   pvlock   {"kind", "ended", "lock", "culprit", "waiters", "duration_ns", "pressure"}
 *            a lock-holder or waiter preemption episode began or ended (rate-limited).
 *   stopped  {"reason", "status", "preserved", "stats"?}  the guest stopped: why (a stop
 *            reason below), the process's exit status, whether the process stays for
 *            inspection (a preserved crash: it goes on "stop"), and the end-of-run report
 *            when it fits in VM_PROTO_REPORT_MAX.  Sent again with preserved false when a
 *            preserved worker is let go.
 * Daemon -> worker, requests {"id": N, "cmd": NAME}:
 *   ping       an empty result
 *   info       the hello fields, without "version"
 *   stats      the run's report so far (the --stats-json document)
 *   powerdown  presses the ACPI power button; an empty result (the guest decides what next)
 *   stop       ends the VM (and a preserved process); an empty result
 *   irqs       the interrupt report (the --stats-json document's "irq" section)
 *   irq-steering {"steering": true|false}: steering of redirectable interrupts on or off;
 *              the interrupt report as it is after the change
 *   devices    the DMA remapping report of the passthrough devices (the --stats-json
 *              document's "passthrough" section), or {} without any
 * Worker -> daemon, replies: {"id": N, "result": {...}} or {"id": N, "error": TEXT, "errno": E}
 *   (a request without "id" or "cmd", or with an unknown "cmd", gets an error reply).
 *
 * The exit file.  At its end the worker writes {"reason", "status"} to its --exit-file, so
 * that a daemon that was not connected when the VM stopped learns how.  The worker opens it
 * (empty) at start, because a confined worker creates no files, and overwrites it in place; a
 * worker that made a system call outside its seccomp allow-list writes
 * {"reason": "seccomp", "syscall": NR, "status": 159} there from its SIGSYS handler and ends.
 * A worker that refuses to run its VM (a bad definition or image, no usable KVM: it exits
 * before its hello) writes reason "error" and its exit status.
 */
#ifndef LOCKSTEP_VM_PROTOCOL_H
#define LOCKSTEP_VM_PROTOCOL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define VM_PROTO_VERSION 1
#define VM_PROTO_CONTROL_FD 3		 /* the daemon's end of the socketpair, in the worker */
#define VM_PROTO_REQUEST_MAX (64u << 10) /* daemon -> worker line, without its '\n' */
#define VM_PROTO_MSG_MAX (1u << 20)	 /* worker -> daemon line */
#define VM_PROTO_REPORT_MAX (64u << 10)	 /* "stats" in "stopped": well inside a socket buffer */

/* The signal that kicks a vCPU thread out of KVM_RUN: the worker's own kicks and lockstepd's
 * scheduler, which closes a gate and then signals the vCPU thread. */
#define VM_KICK_SIGNAL SIGUSR1

enum vm_proto_cmd {
	VM_CMD_PING = 0,
	VM_CMD_INFO,
	VM_CMD_STATS,
	VM_CMD_POWERDOWN,
	VM_CMD_STOP,
	VM_CMD_IRQS,
	VM_CMD_IRQ_STEERING,
	VM_CMD_DEVICES,
	VM_CMDS
};

enum vm_proto_event {
	VM_EVENT_HELLO = 0,
	VM_EVENT_PVLOCK,
	VM_EVENT_STOPPED,
	VM_EVENTS
};

/* Why a VM stopped (the worker decides; "stopped" and the exit file carry it). */
enum vm_stop_reason {
	VM_STOP_NONE = 0,	/* "running": not stopped */
	VM_STOP_GUEST_EXIT,	/* "guest-exit": debug-exit port */
	VM_STOP_GUEST_RESET,	/* "guest-reset": reset port or KVM system event */
	VM_STOP_GUEST_POWEROFF, /* "guest-poweroff": ACPI soft-off */
	VM_STOP_GUEST_CRASH,	/* "guest-crash": triple fault, emulation failure */
	VM_STOP_REQUEST,	/* "requested": signal or control request */
	VM_STOP_ERROR,		/* "error": host-side failure */
	VM_STOP_TIMEOUT,	/* "timeout": the run-time limit expired */
	VM_STOP_SECCOMP,	/* "seccomp": a forbidden system call (the exit file only) */
	VM_STOP_REASONS
};

const char *vm_proto_cmd_name(enum vm_proto_cmd cmd);
const char *vm_stop_reason_name(enum vm_stop_reason reason);
/* -EINVAL for a name that is none of the reasons. */
int vm_stop_reason_parse(const char *name, enum vm_stop_reason *out);
/* Whether a stop is a crash (the guest crashed or the worker failed), not an end. */
bool vm_stop_reason_is_crash(enum vm_stop_reason reason);

/* ---- messages ---- */

struct vm_proto_hello {
	uint32_t version;
	int pid;
	char name[64];
	enum vm_stop_reason state;
	uint32_t nr_vcpus;
	int *tids; /* per vCPU; decoded: malloc'ed (vm_proto_msg_fini frees it) */
	int sched_fd;
};

struct vm_proto_pvlock {
	char kind[24]; /* pvlock_event_name() */
	bool ended;
	uint64_t lock;
	uint32_t culprit;
	uint32_t waiters;
	uint64_t duration_ns;
	double pressure;
};

struct vm_proto_stopped {
	enum vm_stop_reason reason;
	int status;
	bool preserved;
	json_t *stats; /* the end-of-run report, or NULL; decoded: borrowed from the message */
};

/* Everything a worker sends, decoded. */
struct vm_proto_msg {
	bool is_event;
	enum vm_proto_event event; /* is_event */
	union {
		struct vm_proto_hello hello;
		struct vm_proto_pvlock pvlock;
		struct vm_proto_stopped stopped;
	};
	uint64_t id;	/* !is_event: the request it answers */
	json_t *result; /* the reply's result (borrowed), or NULL for an error reply */
	const char *error;
	int err;      /* errno of an error reply, 0 if it gave none */
	json_t *json; /* the whole message, which the borrowed parts live in */
};

/* A request, as the worker decodes it. */
struct vm_proto_request {
	json_t *id; /* echoed in the reply as it came (a new reference, or JSON null) */
	enum vm_proto_cmd cmd;
	bool steering; /* irq-steering */
};

/*
 * Each encoder returns one line ready to send — JSON and its '\n', malloc'ed — with its
 * length in *len, or NULL when memory runs out.  Each decoder takes one line without its
 * '\n' and returns 0, or -EPROTO (malformed, with the reason in `why`), or -EPROTONOSUPPORT
 * (a hello of another version).
 */
char *vm_proto_request_encode(uint64_t id, enum vm_proto_cmd cmd, size_t *len);
char *vm_proto_steering_encode(uint64_t id, bool steering, size_t *len);
int vm_proto_request_decode(const char *line, size_t len, struct vm_proto_request *req, char *why,
			    size_t why_len);
void vm_proto_request_fini(struct vm_proto_request *req);

/* `result` (stolen; NULL = {}) or an error text and its errno. */
char *vm_proto_reply_encode(const json_t *id, json_t *result, size_t *len);
char *vm_proto_error_encode(const json_t *id, const char *error, int err, size_t *len);

/* The hello fields as the result of "info" (no "version"); NULL when memory runs out. */
json_t *vm_proto_info_json(const struct vm_proto_hello *hello);
char *vm_proto_hello_encode(const struct vm_proto_hello *hello, size_t *len);
char *vm_proto_pvlock_encode(const struct vm_proto_pvlock *ev, size_t *len);
/* `stats` (borrowed) is left out when it is larger than VM_PROTO_REPORT_MAX. */
char *vm_proto_stopped_encode(const struct vm_proto_stopped *st, size_t *len);

int vm_proto_msg_decode(const char *line, size_t len, struct vm_proto_msg *msg, char *why,
			size_t why_len);
void vm_proto_msg_fini(struct vm_proto_msg *msg);

/* ---- the exit file ---- */

/* How a worker exits after a forbidden system call (as if killed by SIGSYS). */
#define VM_PROTO_EXIT_SECCOMP (128 + SIGSYS)

/* Writes it into the open file `fd` (from offset 0, truncated after); -errno. */
int vm_proto_exit_write_fd(int fd, enum vm_stop_reason reason, int status);
/* -ENOENT if there is none, -EPROTO if it is not one (an empty one: the worker did not get to
 * write it).  *syscall (if not NULL): the forbidden call's number for VM_STOP_SECCOMP, else -1. */
int vm_proto_exit_read(const char *path, enum vm_stop_reason *reason, int *status, int *syscall);

#endif /* LOCKSTEP_VM_PROTOCOL_H */
