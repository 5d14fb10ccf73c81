/*
 * vm — the per-VM process lockstep-vm.  Its public face is the VM definition (struct
 * vm_config): lockstep-vm reads it from a JSON file and flags, lockstepd stores and validates
 * definitions with the same code.  Everything else in vm/ is internal to lockstep-vm.
 *
 * Parsing is strict: an unknown key, a wrong type or an out-of-range value is an error whose
 * message names the key, and nothing is half-applied.
 */
#ifndef LOCKSTEP_VM_H
#define LOCKSTEP_VM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/util.h"

#define VM_NAME_MAX 63
#define VM_VCPUS_MAX 254 /* xAPIC ids 0..253; the IOAPIC takes the next id */
#define VM_MEMORY_MIN (2ull << 20)
#define VM_MEMORY_MAX (256ull << 30)
#define VM_MEMORY_DEFAULT (64ull << 20)
#define VM_CMDLINE_MAX 4095
#define VM_DEVICES_MAX 16
#define VM_QUANTUM_US_DEFAULT 5000
#define VM_SKEW_US_DEFAULT 2000
/* The signal that kicks a vCPU thread out of KVM_RUN (lockstepd's scheduler sends it too). */
#define VM_KICK_SIGNAL SIGUSR1

/* What lockstep-vm's exit status means (the daemon and scripts rely on these). */
enum vm_exit_status {
	VM_EXIT_OK = 0,		  /* guest exit code 0, guest reset, or stopped by request */
	VM_EXIT_USAGE = 64,	  /* bad command line */
	VM_EXIT_CONFIG = 65,	  /* bad VM definition or guest image */
	VM_EXIT_NOINPUT = 66,	  /* a file named by the definition cannot be read */
	VM_EXIT_NOKVM = 69,	  /* KVM is missing or lacks what lockstep needs */
	VM_EXIT_INTERNAL = 70,	  /* a host-side failure */
	VM_EXIT_GUEST_CRASH = 80, /* triple fault, emulation failure, invalid guest state */
	VM_EXIT_TIMEOUT = 124,	  /* --timeout expired (as timeout(1) reports it) */
};

enum vm_on_crash {
	VM_ON_CRASH_DESTROY = 0,
	VM_ON_CRASH_RESTART,
	VM_ON_CRASH_PRESERVE,
};

enum vm_sched_policy {
	VM_SCHED_HOST = 0,
	VM_SCHED_PINNED,
	VM_SCHED_GANG,
	VM_SCHED_RELAXED,
	VM_SCHED_ADAPTIVE,
};

enum vm_pause_exits {
	VM_PAUSE_EXITS_AUTO = 0, /* on under overcommit, off on dedicated CPUs */
	VM_PAUSE_EXITS_ON,
	VM_PAUSE_EXITS_OFF,
};

struct vm_sched_config {
	enum vm_sched_policy policy;
	uint32_t quantum_us;
	uint32_t skew_us;
	bool has_cpus;
	struct util_cpuset cpus; /* host CPUs this VM may use */
	uint32_t nr_pins;
	struct vm_pin {
		uint32_t vcpu;
		struct util_cpuset cpus;
	} * pins;
};

/* KVM paravirtual features (CPUID 0x40000001 EAX bit numbers). */
#define VM_KVM_FEATURES_HOST UINT32_MAX /* everything the host KVM offers */

struct vm_pvlock_config {
	bool enabled;	       /* lockstep's doorbell pvlock channel */
	uint32_t kvm_features; /* mask of KVM_FEATURE_* bits, or VM_KVM_FEATURES_HOST */
	enum vm_pause_exits pause_exits;
};

struct vm_irq_config {
	bool steering; /* route redirectable interrupts to running vCPUs */
};

struct vm_device_config {
	char type[16]; /* "vfio-pci" */
	char host[16]; /* PCI address "0000:00:03.0" */
};

struct vm_config {
	char name[VM_NAME_MAX + 1];
	char uuid[37]; /* canonical text form, or "" */
	uint32_t vcpus;
	uint64_t memory; /* bytes */
	char *kernel;
	char *cmdline;
	char *serial_log; /* NULL: no log file */
	bool serial_stdout;
	enum vm_on_crash on_crash;
	bool autostart;
	struct vm_sched_config sched;
	struct vm_pvlock_config pvlock;
	struct vm_irq_config irq;
	uint32_t nr_devices;
	struct vm_device_config devices[VM_DEVICES_MAX];
};

/* Defaults for every field (no name, no kernel). */
void vm_config_init(struct vm_config *cfg);
void vm_config_fini(struct vm_config *cfg);
/* Deep copy. */
int vm_config_copy(struct vm_config *dst, const struct vm_config *src);

/*
 * Fills `cfg` (already vm_config_init'ed) from a JSON object.  On error returns -EINVAL (or
 * -ENOMEM) with a message in `err` naming the offending key; `cfg` is then unchanged.
 */
int vm_config_from_json(struct vm_config *cfg, const json_t *obj, char *err, size_t err_len);
/* Parses a JSON document (a file's contents). */
int vm_config_parse(struct vm_config *cfg, const char *text, size_t len, char *err, size_t err_len);
int vm_config_load(struct vm_config *cfg, const char *path, char *err, size_t err_len);
/* Checks the cross-field rules and required fields (name, kernel). */
int vm_config_validate(const struct vm_config *cfg, char *err, size_t err_len);
/* The definition as JSON (every field, defaults included); NULL on allocation failure. */
json_t *vm_config_to_json(const struct vm_config *cfg);

/* True if `name` is a valid VM name: 1..63 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool vm_config_name_valid(const char *name);

const char *vm_sched_policy_name(enum vm_sched_policy policy);
int vm_sched_policy_parse(const char *s, enum vm_sched_policy *out);
const char *vm_on_crash_name(enum vm_on_crash on_crash);
const char *vm_pause_exits_name(enum vm_pause_exits pause_exits);
/* Name of KVM paravirtual feature bit `bit` ("pv_unhalt"), or NULL for an unnamed bit. */
const char *vm_kvm_feature_name(unsigned bit);

#endif /* LOCKSTEP_VM_H */
