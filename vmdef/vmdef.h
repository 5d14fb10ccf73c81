/*
 * vmdef — the VM definition: what a VM is (machine, scheduling, pvlock, interrupts, devices,
 * serial console), parsed from JSON, validated, printed back and copied.  Everyone uses it:
 * lockstep-vm boots one, lockstepd stores and checks them, api/ translates domain XML to and
 * from it, the clients build them.
 *
 * Parsing is strict: an unknown key, a wrong type or an out-of-range value is an error whose
 * message names the key, and nothing is half-applied.  One file per section (vmdef/machine.c,
 * sched.c, pvlock.c, irq.c, devices.c, serial.c); vmdef/vmdef.c is the document around them.
 * vmdef/policy.h holds the scheduling policy alone, for sched/, which has no JSON.
 */
#ifndef LOCKSTEP_VMDEF_H
#define LOCKSTEP_VMDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/util.h"
#include "vmdef/policy.h"

#define VMDEF_NAME_MAX 63
#define VMDEF_VCPUS_MAX 254 /* xAPIC ids 0..253; the IOAPIC takes the next id */
#define VMDEF_MEMORY_MIN (2ull << 20)
#define VMDEF_MEMORY_MAX (256ull << 30)
#define VMDEF_MEMORY_DEFAULT (64ull << 20)
#define VMDEF_CMDLINE_MAX 4095
#define VMDEF_DEVICES_MAX 16
#define VMDEF_QUANTUM_US_DEFAULT 5000
#define VMDEF_QUANTUM_US_MIN 100
#define VMDEF_QUANTUM_US_MAX 1000000
#define VMDEF_SKEW_US_DEFAULT 2000
#define VMDEF_SKEW_US_MIN 10
#define VMDEF_SKEW_US_MAX 1000000

enum vmdef_on_crash {
	VMDEF_ON_CRASH_DESTROY = 0,
	VMDEF_ON_CRASH_RESTART,
	VMDEF_ON_CRASH_PRESERVE,
};

enum vmdef_pause_exits {
	VMDEF_PAUSE_EXITS_AUTO = 0, /* on under overcommit, off on dedicated CPUs */
	VMDEF_PAUSE_EXITS_ON,
	VMDEF_PAUSE_EXITS_OFF,
};

struct vmdef_sched {
	enum vmdef_sched_policy policy;
	uint32_t quantum_us;
	uint32_t skew_us;
	bool has_cpus;
	struct util_cpuset cpus; /* host CPUs this VM may use */
	uint32_t nr_pins;
	struct vmdef_pin {
		uint32_t vcpu;
		struct util_cpuset cpus;
	} * pins;
};

/* KVM paravirtual features (CPUID 0x40000001 EAX bit numbers). */
#define VMDEF_KVM_FEATURES_HOST UINT32_MAX /* everything the host KVM offers */

struct vmdef_pvlock {
	bool enabled;	       /* lockstep's doorbell pvlock channel */
	uint32_t kvm_features; /* mask of KVM_FEATURE_* bits, or VMDEF_KVM_FEATURES_HOST */
	enum vmdef_pause_exits pause_exits;
};

struct vmdef_irq {
	bool steering; /* route redirectable interrupts to running vCPUs */
};

/* When a passthrough device is reset (VFIO_DEVICE_RESET: FLR, or its other reset method). */
enum vmdef_reset {
	VMDEF_RESET_AUTO = 0, /* at start and stop, when the device has a reset method */
	VMDEF_RESET_ON,	      /* at start and stop; a device without a method is refused */
	VMDEF_RESET_OFF,      /* never */
};

struct vmdef_device {
	char type[16]; /* "vfio-pci", or a test device: "testdev", "pci-testdev", "pc-testdev" */
	char host[16]; /* vfio-pci: PCI address "0000:00:03.0" (lower-case hex) */
	int slot;      /* PCI devices: slot on bus 0 (1-31), -1 = the next free one */
	/* vfio-pci only */
	bool managed; /* lockstepd binds it to vfio-pci at start, back at stop */
	enum vmdef_reset reset;
	bool rom_bar;	/* the guest sees an expansion ROM: rom_file, or the device's own */
	char *rom_file; /* the ROM image the guest sees instead of the device's, or NULL */
};

struct vmdef {
	char name[VMDEF_NAME_MAX + 1];
	char uuid[37]; /* canonical text form, or "" */
	uint32_t vcpus;
	uint64_t memory; /* bytes */
	char *kernel;	 /* a multiboot image, a Linux bzImage, or a vmlinux with a PVH entry */
	char *initrd;	 /* Linux only: the initial ramdisk, or NULL */
	char *cmdline;
	char *serial_log; /* NULL: no log file */
	bool serial_stdout;
	enum vmdef_on_crash on_crash;
	bool autostart;
	struct vmdef_sched sched;
	struct vmdef_pvlock pvlock;
	struct vmdef_irq irq;
	uint32_t nr_devices;
	struct vmdef_device devices[VMDEF_DEVICES_MAX];
};

/* Defaults for every field (no name, no kernel). */
void vmdef_init(struct vmdef *def);
void vmdef_fini(struct vmdef *def);
/* Deep copy. */
int vmdef_copy(struct vmdef *dst, const struct vmdef *src);

/*
 * Fills `def` (already vmdef_init'ed) from a JSON object.  On error returns -EINVAL (or
 * -ENOMEM) with a message in `err` naming the offending key; `def` is then unchanged.
 */
int vmdef_from_json(struct vmdef *def, const json_t *obj, char *err, size_t err_len);
/* Parses a JSON document (a file's contents). */
int vmdef_parse(struct vmdef *def, const char *text, size_t len, char *err, size_t err_len);
int vmdef_load(struct vmdef *def, const char *path, char *err, size_t err_len);
/* Checks the cross-field rules and required fields (name, kernel). */
int vmdef_validate(const struct vmdef *def, char *err, size_t err_len);
/* The definition as JSON (every field, defaults included); NULL on allocation failure. */
json_t *vmdef_to_json(const struct vmdef *def);

/* Sets vCPU `vcpu`'s pin (adding one if it has none). */
int vmdef_set_pin(struct vmdef *def, uint32_t vcpu, const struct util_cpuset *cpus);

/* The kinds of kernel image lockstep boots (vmdef/image.c), in the order they are checked. */
enum vmdef_image_kind {
	VMDEF_IMAGE_NONE = 0,
	VMDEF_IMAGE_BZIMAGE,   /* a Linux setup header: the x86 boot protocol */
	VMDEF_IMAGE_MULTIBOOT, /* a multiboot v1 header in the first 8 KiB */
	VMDEF_IMAGE_ELF,       /* an ELF file without one: booted through its PVH note */
};
/* What `image` (the whole file, or as much as there is) is; pure, any bytes. */
enum vmdef_image_kind vmdef_image_kind(const uint8_t *image, size_t len);
/* The offset of a valid multiboot v1 header (4-byte aligned, in the first 8 KiB, checksum
 * adding up), or -ENOENT. */
int vmdef_multiboot_offset(const uint8_t *image, size_t len);
/* The PVH entry of an ELF image (Xen's PHYS32_ENTRY note in a PT_NOTE segment): 0 and
 * *entry, -ENOENT if there is none, -ENOEXEC with the reason for a malformed file. */
int vmdef_pvh_entry(const uint8_t *image, size_t len, uint64_t *entry, char *err, size_t err_len);
/* -EINVAL, with the reason naming "kernel", unless `path` is a readable regular file that
 * lockstep boots: a bzImage, a multiboot image, or an ELF file with a PVH entry. */
int vmdef_kernel_check(const char *path, char *err, size_t err_len);
/* The same for a file already open (`path` only names it in messages). */
int vmdef_kernel_check_fd(int fd, const char *path, char *err, size_t err_len);

/* True if `name` is a valid VM name: 1..63 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool vmdef_name_valid(const char *name);

const char *vmdef_on_crash_name(enum vmdef_on_crash on_crash);
const char *vmdef_pause_exits_name(enum vmdef_pause_exits pause_exits);
const char *vmdef_reset_name(enum vmdef_reset reset);
/* Gives a device its own copy of a ROM file name (NULL for none); -ENOMEM. */
int vmdef_dup_device_rom(struct vmdef_device *dev, const char *rom_file);
/*
 * One entry of "devices" from JSON, as vmdef_from_json reads it (every key checked; `path`
 * names it in errors, "device").  *out is vmdef_device_fini'ed by the caller.
 */
int vmdef_device_from_json(const json_t *obj, struct vmdef_device *out, char *err, size_t err_len);
void vmdef_device_fini(struct vmdef_device *dev);
json_t *vmdef_device_json(const struct vmdef_device *dev);
/* -EINVAL for a name that is none of them. */
int vmdef_reset_parse(const char *name, enum vmdef_reset *out);
/* Name of KVM paravirtual feature bit `bit` ("pv_unhalt"), or NULL for an unnamed bit. */
const char *vmdef_kvm_feature_name(unsigned bit);

#endif /* LOCKSTEP_VMDEF_H */
