/*
 * Internals of lockstep-vm shared by the vm/ sources: the machine (struct vm), its vCPUs, the
 * exit-dispatch bus, guest memory, boot loading and the platform devices.
 *
 * Threads: the main (control) thread builds everything, starts one thread per vCPU and then
 * only waits for a stop; vCPU threads dispatch their exits to devices, which lock themselves.
 * The bus is frozen before the first vCPU runs, so lookups take no lock.
 */
#ifndef LOCKSTEP_VM_INTERNAL_H
#define LOCKSTEP_VM_INTERNAL_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hv/hv.h"
#include "irq/irq.h"
#include "pvlock/pvlock.h"
#include "sandbox/sandbox.h"
#include "pvlock/sampler.h"
#include "sched/sched.h"
#include "util/util.h"
#include "vm/protocol.h"
#include "vm/vm.h"
#include "vmdef/vmdef.h"

struct vm;
struct vm_vcpu;

/* ---- guest memory ---- */

#define VM_LOW_RAM_END 0xc0000000ull /* RAM above 3 GiB moves to 4 GiB */
#define VM_HIGH_RAM_BASE 0x100000000ull

struct vm_memory {
	uint8_t *host;	    /* one mapping: low RAM, then high RAM */
	uint64_t size;	    /* total RAM */
	uint64_t low_size;  /* RAM at [0, low_size) */
	uint64_t high_size; /* RAM at [4 GiB, 4 GiB + high_size) */
};

int vm_memory_init(struct vm_memory *mem, uint64_t size);
void vm_memory_fini(struct vm_memory *mem);
/* Registers the RAM slots with KVM. */
int vm_memory_map(struct vm_memory *mem, struct hv_vm *hv);
/* Host pointer for [gpa, gpa+len) if it lies wholly in RAM, else NULL. */
void *vm_memory_ptr(const struct vm_memory *mem, uint64_t gpa, uint64_t len);

/* ---- exit dispatch ---- */

struct vm_io {
	uint64_t offset; /* from the start of the device's range */
	uint32_t size;	 /* bytes per access */
	uint32_t count;	 /* repeats (string port I/O); 1 for MMIO */
	bool write;
	uint8_t *data; /* size * count bytes: written data, or where read data goes */
	struct vm_vcpu *vcpu;
};

typedef void (*vm_io_fn)(void *opaque, struct vm_io *io);

#define VM_BUS_MAX 32

struct vm_bus {
	const char *name; /* "pio" or "mmio" */
	unsigned count;
	struct vm_bus_range {
		uint64_t base, len;
		vm_io_fn fn;
		void *opaque;
		const char *name;
	} ranges[VM_BUS_MAX];
};

int vm_bus_add(struct vm_bus *bus, uint64_t base, uint64_t len, vm_io_fn fn, void *opaque,
	       const char *name);
/* Calls the device covering `addr`; false if none does (the caller handles unassigned I/O). */
bool vm_bus_dispatch(const struct vm_bus *bus, uint64_t addr, struct vm_io *io);

/* ---- boot ---- */

#define VM_BOOT_AREA 0x10000ull /* boot information, memory map, command line */
#define VM_BOOT_AREA_SIZE 0x10000ull
/* The command line the multiboot loader takes: the image's name, a space, the arguments. */
#define VM_BOOT_CMDLINE_MAX 8191
#define VM_BOOT_GDT 0x1ff00ull	    /* the GDT of the Linux entries (vm_boot_write_gdt) */
#define VM_FIRMWARE_BASE 0xe0000ull /* ACPI and MP tables */
#define VM_FIRMWARE_SIZE 0x20000ull
#define VM_EBDA_BASE 0x9fc00ull

#define VM_ELF_MAX_SEGMENTS 32

struct vm_elf {
	bool is64;
	uint16_t machine;
	uint64_t entry;
	unsigned nr_segments; /* PT_LOAD segments with memsz > 0 */
	struct vm_elf_segment {
		uint64_t paddr, vaddr, offset, filesz, memsz;
		uint32_t flags;
	} seg[VM_ELF_MAX_SEGMENTS];
};

/* Parses and checks an x86 ELF32/ELF64 executable: every offset and size is validated against
 * the buffer, so the segments can be copied without further checks. */
int vm_elf_parse(const uint8_t *buf, size_t len, struct vm_elf *out, char *err, size_t err_len);

struct vm_multiboot_header {
	size_t offset; /* in the image */
	uint32_t flags;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

/* Finds a valid multiboot v1 header in the first 8 KiB; -ENOENT if there is none. */
int vm_multiboot_find(const uint8_t *image, size_t len, struct vm_multiboot_header *hdr);

/* The kinds of kernel lockstep boots (vm/boot.c decides from the image). */
enum vm_boot_kind {
	VM_BOOT_MULTIBOOT = 0, /* multiboot v1: lockstep's guest programs */
	VM_BOOT_LINUX,	       /* a Linux bzImage, x86 boot protocol, 32-bit entry */
	VM_BOOT_PVH,	       /* an uncompressed vmlinux through its PVH entry */
};

const char *vm_boot_kind_name(enum vm_boot_kind kind);

/* Where and how the boot processor starts: flat 32-bit protected mode, paging off. */
struct vm_boot_entry {
	enum vm_boot_kind kind;
	uint32_t entry;			 /* 32-bit protected-mode entry point */
	uint32_t eax, ebx, esi;		 /* multiboot magic and info; PVH start info; boot_params */
	uint64_t image_start, image_end; /* guest-physical extent of the loaded image */
};

/* What is booted: the kernel image and an optional initrd (NULL), both in host memory. */
struct vm_boot_files {
	const char *name; /* the image's file name: a multiboot command line begins with it */
	const uint8_t *image;
	size_t len;
	const uint8_t *initrd;
	size_t initrd_len;
};

/* One range of the guest's memory map, in E820's layout (multiboot's mmap and PVH's memmap
 * carry the same three fields). */
struct vm_e820 {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

#define VM_E820_RAM 1
#define VM_E820_RESERVED 2

/* Loads any kernel lockstep boots, choosing the protocol from the image; errors in `err`. */
int vm_boot_load(struct vm_memory *mem, const struct vm_boot_files *files, const char *cmdline,
		 struct vm_boot_entry *entry, char *err, size_t err_len);
/* The guest's memory map, at most `max` ranges; returns how many. */
unsigned vm_boot_memory_map(const struct vm_memory *mem, struct vm_e820 *map, unsigned max);
/* Rejects a range for the image that is outside RAM or on the boot area or firmware tables. */
int vm_boot_check_range(const struct vm_memory *mem, uint64_t start, uint64_t size, char *err,
			size_t err_len);
/* Copies the initrd (if any) page-aligned to the top of low RAM (at most `max_addr`, 0 = no
 * limit), above `kernel_end`; *addr is where it went, 0 without one. */
int vm_boot_place_initrd(struct vm_memory *mem, const struct vm_boot_files *files,
			 uint64_t kernel_end, uint64_t max_addr, uint32_t *addr, char *err,
			 size_t err_len);
/* The GDT with Linux's boot selectors (code 0x10, data 0x18) at VM_BOOT_GDT. */
void vm_boot_write_gdt(struct vm_memory *mem);

/* Linux: a bzImage (vm_linux_load) or a PVH vmlinux (vm_pvh_load; vmdef_pvh_entry finds its
 * entry note). */
int vm_linux_load(struct vm_memory *mem, const struct vm_boot_files *files, const char *cmdline,
		  struct vm_boot_entry *entry, char *err, size_t err_len);
int vm_pvh_load(struct vm_memory *mem, const struct vm_boot_files *files, const char *cmdline,
		struct vm_boot_entry *entry, char *err, size_t err_len);

/* Loads a multiboot v1 image (ELF32, ELF64 or a.out-kludge flat binary) into guest memory and
 * builds the multiboot information.  Errors name the problem in `err`. */
int vm_multiboot_load(struct vm_memory *mem, const uint8_t *image, size_t len, const char *cmdline,
		      struct vm_boot_entry *entry, char *err, size_t err_len);

/* The ACPI PM registers (vm/acpi_pm.c) the FADT points at, and the SCI's ISA IRQ. */
#define VM_ACPI_PM1_EVT 0x600 /* PM1_STS (16 bits), PM1_EN (16 bits) */
#define VM_ACPI_PM1_CNT 0x604 /* PM1_CNT (16 bits) */
#define VM_ACPI_PM_TMR 0x608  /* PM_TMR (32 bits, 3.579545 MHz) */
#define VM_ACPI_SCI_IRQ 9
#define VM_ACPI_RSDP_ADDR 0xe0000u /* where vm_firmware_build() puts the RSDP */

/* The PCI devices' interrupt pins, for the MP table (NULL: none). */
struct vm_firmware_pci {
	unsigned nr;
	struct {
		uint8_t slot, pin; /* pin 1-4 = INTA-INTD */
	} intx[32];
};

/* ACPI RSDP/RSDT/FADT/FACS/DSDT/MADT/MCFG and the MP table for `vcpus` processors, written
 * into guest memory at VM_FIRMWARE_BASE. */
int vm_firmware_build(struct vm_memory *mem, uint32_t vcpus, const struct vm_firmware_pci *pci);

/* Adds to KVM's supported CPUID what it emulates without reporting it: the TSC-deadline timer
 * (when KVM_CAP_TSC_DEADLINE_TIMER says so). */
void vm_cpuid_add_emulated(struct kvm_cpuid2 *supported, bool tsc_deadline);
/* CPUID for vCPU `index`, from what KVM supports; the caller frees it. */
int vm_cpuid_build(const struct kvm_cpuid2 *supported, const struct vmdef *cfg, uint32_t index,
		   uint32_t tsc_khz, struct kvm_cpuid2 **out);

/* ---- devices ---- */

struct vm_uart;
struct vm_fwcfg;
struct vm_doorbell;

struct vm_console_stats {
	uint64_t bytes;
	uint64_t first_byte_ns;	 /* CLOCK_MONOTONIC of the first byte, 0 = none yet */
	uint64_t client_dropped; /* output a slow console client did not take */
	bool irq_level;		 /* COM1's interrupt line */
};

/* Output goes to every descriptor of `log_fds` that is not -1 (at most two), and to stdout. */
int vm_uart_new(struct vm *vm, const int *log_fds, unsigned nr_logs, bool to_stdout,
		struct vm_uart **out);
void vm_uart_free(struct vm_uart *uart);
void vm_uart_io(void *opaque, struct vm_io *io);
void vm_uart_stats(struct vm_uart *uart, struct vm_console_stats *st);
/* Typed input for the guest: returns how much the receive buffer took (the rest waits for
 * vm_uart_room_fd() to become readable). */
size_t vm_uart_input(struct vm_uart *uart, const uint8_t *buf, size_t len);
bool vm_uart_has_room(struct vm_uart *uart);
int vm_uart_room_fd(struct vm_uart *uart);
/* The console client's socket (non-blocking) gets the output too; -1: none. */
void vm_uart_set_client(struct vm_uart *uart, int fd);

/* ---- the serial console's input and its client (vm/console.c), control thread ---- */

#define VM_CONSOLE_ESCAPE 0x1d /* Ctrl-]: on a terminal, ends `lockstep-vm --console` */
#define VM_CONSOLE_POLLFDS 3

struct vm_console {
	struct vm *vm;
	int listen_fd; /* --console-socket, -1 = none */
	char *listen_path;
	bool keep_socket_file; /* confined: it can no longer unlink; lockstepd removes it */
	int client_fd;	       /* the connected console client, -1 = none */
	int stdin_fd;	       /* forwarded standard input, -1 = none or at its end */
	bool stdin_tty;	       /* ... a terminal, put in raw mode */
	void *saved_termios;   /* the terminal's mode to restore */
	uint8_t held[512];     /* input read but not yet taken by the UART */
	size_t held_off, held_len;
	uint64_t input_bytes;
};

int vm_console_init(struct vm_console *con, struct vm *vm, const char *socket_path,
		    bool forward_stdin);
void vm_console_fini(struct vm_console *con);
/* Adds the console's fds to a poll set (at most VM_CONSOLE_POLLFDS); returns how many. */
int vm_console_pollfds(struct vm_console *con, struct pollfd *pfd);
void vm_console_handle(struct vm_console *con, const struct pollfd *pfd, int n);

int vm_fwcfg_new(struct vm *vm, struct vm_fwcfg **out);
void vm_fwcfg_free(struct vm_fwcfg *fw);
void vm_fwcfg_io(void *opaque, struct vm_io *io);

/* ACPI fixed-feature power management: the power button (how `vm.shutdown` asks a guest to
 * stop) and soft-off (S5), raising the SCI on IOAPIC pin 9. */
struct vm_acpi_pm;
int vm_acpi_pm_new(struct vm *vm, struct vm_acpi_pm **out);
void vm_acpi_pm_free(struct vm_acpi_pm *pm);
void vm_acpi_pm_io(void *opaque, struct vm_io *io);
void vm_acpi_pm_power_button(struct vm_acpi_pm *pm);

/* Debug-exit port, reset ports (0xcf9, i8042 0x64) and the ports Linux pokes for delays. */
int vm_platform_register(struct vm *vm);

struct vm_doorbell_stats {
	uint64_t calls[16]; /* by call number (LKS_CALL_*) */
	uint64_t errors;    /* malformed accesses */
};

int vm_doorbell_new(struct vm *vm, struct vm_doorbell **out);
void vm_doorbell_free(struct vm_doorbell *db);
void vm_doorbell_io(void *opaque, struct vm_io *io);
void vm_doorbell_stats(struct vm_doorbell *db, struct vm_doorbell_stats *st);

/* ---- the device thread (vm/devloop.c) ---- */

struct vm_devloop;
typedef void (*vm_devloop_fn)(void *arg);

int vm_devloop_new(struct vm *vm, struct vm_devloop **out);
void vm_devloop_free(struct vm_devloop *dl);
/* Calls fn(arg) on the device thread whenever fd is readable; NULL dl: does nothing. */
int vm_devloop_add(struct vm_devloop *dl, int fd, vm_devloop_fn fn, void *arg);
void vm_devloop_del(struct vm_devloop *dl, int fd);
int vm_devloop_start(struct vm_devloop *dl);
void vm_devloop_stop(struct vm_devloop *dl);

/* ---- test devices (vm/testdev.c, vm/qtestdev.c) ---- */

struct vm_pc_testdev;

/* lockstep's PCI test device, and QEMU's pci-testdev, in `slot` (-1: the next free one). */
int vm_testdev_add(struct vm *vm, int slot, const char *name);
int vm_pci_testdev_add(struct vm *vm, int slot, const char *name);
/* QEMU's pc-testdev at its fixed ports and MMIO page. */
int vm_pc_testdev_new(struct vm *vm, struct vm_pc_testdev **out);
void vm_pc_testdev_free(struct vm_pc_testdev *t);

/* ---- passthrough devices (vm/passthrough.c, vm/vfio.c) ---- */

struct vm_passthrough;
struct vm_vfio;
struct iommu_dev;

/* KVM memory slots: RAM has the first ones, passthrough BARs take them from here on. */
#define VM_SLOT_FIRST_FREE 8

/*
 * Checks, opens and maps what the definition's vfio-pci devices need: host_iommu_ready, each
 * device bound to vfio-pci with a viable group, the DMA address space with all of guest RAM
 * mapped at its guest-physical addresses, KVM's VFIO device.  After guest RAM and the KVM VM,
 * before the devices; nothing to do without vfio-pci devices.  On failure *status is the exit
 * status (VM_EXIT_DEVICE for what the host cannot give) and the log says why.  A ROM file is
 * opened as the kernel image is (vm_open_defined).
 */
struct vm_options;
int vm_passthrough_init(struct vm *vm, const struct vm_options *opts, int *status);
/* Puts devices[index] (a vfio-pci device) on the PCI bus. */
int vm_passthrough_add(struct vm *vm, unsigned index);
/* Closes the devices and unmaps guest RAM (after the PCI bus is gone). */
void vm_passthrough_fini(struct vm *vm);
/* The DMA remapping report: back end, mappings, each device (NULL without devices). */
json_t *vm_passthrough_json(struct vm *vm);

/* rom_fd: the definition's ROM file, opened as vm_open_defined does, or -1 (not closed). */
int vm_vfio_add(struct vm *vm, struct iommu_dev *dev, const struct vmdef_device *def,
		unsigned index, int rom_fd, struct vm_vfio **out);
void vm_vfio_free(struct vm_vfio *v);
json_t *vm_vfio_json(struct vm_vfio *v);

/* ---- pvlock glue (vm/lockwatch.c) ---- */

struct vm_lockwatch;
struct vm_control;

/* Sets up the pvlock calls (per-vCPU kick eventfds and their ioeventfds) for the VM. */
int vm_lockwatch_new(struct vm *vm, struct vm_lockwatch **out);
void vm_lockwatch_free(struct vm_lockwatch *lw);
/* A doorbell call other than PROBE/NOP/TIME, from vCPU `vcpu` with its argument registers. */
int64_t vm_lockwatch_call(struct vm_lockwatch *lw, struct vm_vcpu *vcpu, uint32_t nr);
void vm_lockwatch_bad_kick(struct vm_lockwatch *lw, struct vm_vcpu *vcpu, uint64_t value);
/* Detector period: the control loop calls vm_lockwatch_tick() at least this often. */
#define VM_LOCKWATCH_PERIOD_NS 2000000ull
/* Whether the detector needs vCPU run-state samples (the guest registered its shared page,
 * or pause-loop statistics are watched). */
bool vm_lockwatch_wants_samples(struct vm_lockwatch *lw);
/* The guest's registered shared page and its slot count, or NULL (none, or pvlock off). */
const struct lks_shared_page *vm_lockwatch_shared(struct vm_lockwatch *lw, uint32_t *nr);
/* Feeds the detector with the latest run-state sample, if it is new; events go to the
 * controller.  Returns ns until it wants to look again (0: nothing to watch). */
uint64_t vm_lockwatch_tick(struct vm_lockwatch *lw, struct vm_control *ctl);
json_t *vm_lockwatch_json(struct vm_lockwatch *lw);
/* KVM paravirtual features (CPUID 0x40000001 EAX) the VM's vCPUs were given. */
uint32_t vm_kvm_features(const struct vm *vm);
json_t *vm_kvm_features_json(struct vm *vm);

/* ---- the multiplexer's worker side (vm/mux.c) ---- */

struct vm_mux;

/* Maps the scheduling hints page into the guest; the sched page must exist. */
int vm_mux_new(struct vm *vm, struct vm_mux **out);
void vm_mux_free(struct vm_mux *mx);
bool vm_mux_hints_mapped(const struct vm_mux *mx);
/* vCPU threads, out of KVM_RUN: */
bool vm_mux_try_open(struct vm_vcpu *vcpu); /* at its closed gate: a free slot? */
void vm_mux_kicked(struct vm_vcpu *vcpu);   /* after a kick: the scheduler's CHECK/FORCE */
void vm_mux_passed(struct vm_vcpu *vcpu, bool waited);		 /* passed its gate */
int64_t vm_mux_switch_call(struct vm *vm, uint32_t vcpu);	 /* LKS_CALL_SWITCH */
bool vm_mux_yield_to(struct vm *vm, uint32_t from, uint32_t to); /* YIELD_TO; false: not done */
void vm_mux_sleeping(struct vm *vm, uint32_t vcpu);		 /* about to sleep in WAIT */
void vm_mux_awake(struct vm *vm, uint32_t vcpu);		 /* ... and woke */
/* Control thread: the guest's lock activity for the scheduler. */
void vm_mux_sample(struct vm *vm);

/* ---- vCPUs ---- */

struct vm_vcpu_counters {
	uint64_t exits_io, exits_mmio, exits_intr, exits_other;
	uint64_t kicks;
	uint64_t unassigned_io;
};

/* What the control thread last sampled of a vCPU thread (vm/runstate.c). */
struct vm_runstate {
	bool clock_valid;
	clockid_t clock; /* the thread's CPU-time clock */
	int stat_fd;	 /* /proc/self/task/TID/stat */
	uint64_t cpu_ns, sample_ns;
	enum sched_run state;
};

struct vm_vcpu {
	struct vm *vm;
	uint32_t index;
	struct hv_vcpu *hv;
	struct hv_stats *stats;
	pthread_t thread;
	bool thread_started;
	atomic_int tid;			    /* host thread id, 0 until the thread runs */
	atomic_uint_least64_t kick_sent_ns; /* when the last kick was sent, 0 = consumed */
	struct vm_vcpu_counters counters;   /* written by the vCPU thread only */
	struct sched_slot *slot;	    /* its gate in the sched page */
	struct vm_filter *filter;	    /* seccomp filter it installs first, or NULL */
	struct vm_runstate run;		    /* control thread only */
	struct util_samples kick_latency;   /* kick sent -> KVM_RUN returned, in ns */
	/* Its LAPIC's logical destination, as the guest set it, for interrupt steering:
	 * the vCPU thread reads it now and then (vm/steering.c). */
	uint64_t lapic_read_ns; /* vCPU thread */
	atomic_uint ldr, dfr;
	atomic_bool ldr_valid;
	bool mux_woken;	      /* woke from a WAIT that gave its slot away: it wants one back */
	bool mux_self_opened; /* its gate was opened by itself (a free slot), not by a hand-off */
};

/* Creates the KVM vCPU; vm_vcpu_setup() then gives it CPUID, statistics and boot state. */
int vm_vcpu_init(struct vm *vm, struct vm_vcpu *vcpu, uint32_t index);
int vm_vcpu_setup(struct vm_vcpu *vcpu);
void vm_vcpu_fini(struct vm_vcpu *vcpu);
int vm_vcpu_start(struct vm_vcpu *vcpu);
/* Counts a kick that reached the vCPU thread (and its latency). */
void vm_vcpu_note_kick(struct vm_vcpu *vcpu);
/* Makes the vCPU leave KVM_RUN as soon as possible (it re-checks the VM's state). */
int vm_vcpu_kick(struct vm_vcpu *vcpu);
void vm_vcpu_join(struct vm_vcpu *vcpu);

/* ---- interrupt steering (vm/steering.c) ---- */

/* Starts and stops the steering thread; it follows the sched page's schedule generation. */
int vm_steering_start(struct vm *vm);
void vm_steering_stop(struct vm *vm);
/* irq/'s gate probe: whether vCPU `vcpu` may run now, and the schedule generation. */
bool vm_steering_gate_probe(void *vm, uint32_t vcpu, uint64_t *gen);
/* irq/'s gated hook: asks the scheduler to run the VM soon (interrupt boost). */
void vm_steering_gated(void *vm, uint64_t raise_ns);
/* vCPU thread, after an exit: refreshes its published LDR/DFR every so often. */
void vm_steering_note_exit(struct vm_vcpu *vcpu);
/* Turns steering on or off while the VM runs (the control channel). */
int vm_steering_set(struct vm *vm, bool on);

/* Run-state sampling of the vCPU threads (vm/runstate.c), control thread only. */
void vm_runstate_init(struct vm_vcpu *v);
void vm_runstate_fini(struct vm_vcpu *v);
/* Samples every vCPU if one is due (for lockstepd's scheduler, or for the detector when
 * `detector`); returns ns until the next sample, 0 if nobody wants samples. */
uint64_t vm_runstate_tick(struct vm *vm, bool detector);

/* ---- the machine ---- */

struct vm {
	struct vmdef cfg;
	struct util_log log;
	struct util_ratelimit guest_log_limit; /* for messages a guest can trigger */
	uint64_t start_ns;		       /* CLOCK_MONOTONIC at process start */

	struct hv_sys *sys;
	struct hv_vm *hv;
	struct vm_memory mem;
	struct vm_bus pio, mmio;
	struct vm_uart *uart;
	struct vm_fwcfg *fwcfg;
	struct vm_doorbell *doorbell;
	struct vm_acpi_pm *acpi_pm;
	struct irq *irq;		    /* GSI routing, lines, steering (irq/) */
	struct irq_posting host_posting;    /* as probed at start (the sandbox hides /sys later) */
	struct vm_devloop *devloop;	    /* the device thread */
	struct vm_pci *pci;		    /* host bridge, bus 0 */
	struct vm_passthrough *passthrough; /* vfio-pci devices, NULL without them */
	uint32_t next_slot;		    /* the next free KVM memory slot (building only) */
	struct vm_pc_testdev *pc_testdev;
	struct vm_lockwatch *lockwatch; /* pvlock calls and the preemption detector */
	struct vm_mux *mux;		/* the multiplexer's worker side */
	struct kvm_cpuid2 *supported_cpuid;
	uint32_t tsc_khz;
	bool pause_exits; /* PAUSE still exits (PLE / pause filter), so its statistics mean something */
	int kick_signal;
	long host_cpus; /* online host CPUs at start (sysconf() reads /sys, out of a sandbox's reach) */
	uint64_t probe_kicks_sent; /* --kick-probe kicks delivered so far (control thread) */
	int serial_fd;
	struct vm_boot_entry boot;

	uint32_t nr_vcpus;
	struct vm_vcpu *vcpus;
	int console_fd;	      /* lockstepd's copy of the serial console, or -1 */
	int task_dir_fd;      /* /proc/self/task of the worker's own pid namespace, or -1 */
	struct vm_jail *jail; /* the sandbox it runs in, or NULL */
	int sched_fd;	      /* the sched page's memfd, which lockstepd maps through /proc */
	struct sched_page *sched_page;
	uint64_t runstate_next_ns; /* when the control thread samples the vCPUs next */
	bool runstate_fresh;	   /* a sample was taken since the detector last looked */

	pthread_t steer_thread;
	bool steer_started;
	atomic_bool steer_stop;
	atomic_uint_least64_t steer_passes;

	int stop_fd;		   /* eventfd: written once when the VM must stop */
	pthread_mutex_t stop_lock; /* makes stop_reason and exit_code one decision */
	atomic_int stop_reason;	   /* enum vm_stop_reason; first writer wins */
	int exit_code;		   /* the process exit status that goes with stop_reason */
};

struct vm_options {
	const char *kvm_path;
	bool quiet;
	uint64_t start_ns; /* when the process started, for start-up figures */
	/* Files the definition names (kernel, serial.log) must lie beneath these and are opened
	 * with sandbox_open(), as `open_as` if set; NULL: opened as given (a user's own run). */
	const struct sandbox_paths *allowed;
	const struct sandbox_user *open_as;
	bool console_append; /* append to --console-log: lockstepd keeps it across runs */
	int console_fd;	     /* a copy of the serial console for whoever started us, or -1 */
};

/* ---- the sandbox (vm/jail.c, vm/seccomp.c) ---- */

/* The exit report's descriptor.  Fixed, because the SIGSYS handler, which writes to it, has no
 * argument through which to find anything; main() puts the report (or /dev/null) there. */
#define VM_REPORT_FD 10
/* How a worker that made a forbidden system call exits (as if killed by SIGSYS). */
#define VM_EXIT_SECCOMP VM_PROTO_EXIT_SECCOMP

struct vm_filter;

/* The worker's threads by what they may do (one seccomp allow-list each). */
enum vm_thread_kind {
	VM_THREAD_CONTROL,
	VM_THREAD_VCPU,
	VM_THREAD_DEVICES,
	VM_THREAD_STEERING,
	VM_THREAD_KINDS,
};

struct vm_jail {
	bool enabled;	 /* confine this process (--sandbox; the default as root) */
	bool privileged; /* started as root: also its user, namespaces, empty root, cgroup */
	struct sandbox_user user;     /* the unprivileged user (when privileged) */
	struct sandbox_cgroup cgroup; /* the cgroup it runs in, as found */
	bool namespaces;	      /* pid, mount, network and IPC of its own */
	bool relayed;		      /* started by the relay (by hand), not by lockstepd */
	uint64_t nofile, fsize;	      /* rlimits set */
	uint64_t memlock;	      /* RLIMIT_MEMLOCK, soft and hard */
	uid_t uid;		      /* what it runs as */
	gid_t gid;
	unsigned syscalls[VM_THREAD_KINDS];	   /* allow-list sizes */
	struct vm_filter *filter[VM_THREAD_KINDS]; /* but a vCPU's, which hangs off its vCPU */
#ifdef LOCKSTEP_TEST_HOOKS
	int test_trap; /* 1 + the thread kind that makes a forbidden call, 0 none (tests only) */
#endif
};

/*
 * lockstep-vm run by hand as root cannot make itself pid 1 of a new pid namespace, so it splits
 * in two: the original process creates the VM's cgroup, forks the worker into a new pid
 * namespace and that cgroup, relays SIGINT/SIGTERM/SIGHUP to it, and removes the cgroup after
 * it.  Returns 0 in the worker; 1 in the relay, with the status to exit with.
 */
int vm_jail_relay(struct vm_jail *j, const struct vmdef *cfg, int *status);
/* Everything but seccomp, in the order of the comment atop vm/jail.c. */
int vm_jail_enter(struct vm_jail *j, struct vm *vm, char *err, size_t err_len);
/* Builds every thread's filter (each thread installs its own). */
int vm_jail_filters(struct vm_jail *j, struct vm *vm);
/* The calling thread's filter: the device or steering thread as it starts, the control thread
 * once the others run.  0 without a sandbox; on failure the VM stops. */
int vm_jail_lock_thread(struct vm *vm, enum vm_thread_kind kind);
void vm_jail_fini(struct vm_jail *j);
/* The sandbox as run statistics report it ({"enabled": false} for none). */
json_t *vm_jail_json(const struct vm_jail *j);

/* The VFIO ioctls a thread of `kind` issues once confined (into out[max]); their number.  0
 * without passthrough devices. */
struct iommu_ioctl;
unsigned vm_passthrough_ioctls(const struct vm *vm, enum vm_thread_kind kind,
			       struct iommu_ioctl *out, unsigned max);

/* A filter for a thread of `kind` (vCPU `v`'s thread for VM_THREAD_VCPU); *count: the number
 * of system calls it allows. */
int vm_seccomp_build(struct vm *vm, enum vm_thread_kind kind, struct vm_vcpu *v,
		     struct vm_filter **out, unsigned *count);
/* Installs a filter on the calling thread (no_new_privs must be set). */
int vm_seccomp_install(const struct vm_filter *f);
void vm_seccomp_free(struct vm_filter *f);
/* The SIGSYS handler that reports a forbidden call and ends the process. */
int vm_seccomp_trap_init(void);

/* ---- the control channel to lockstepd (vm/control.c) ---- */

struct vm_control {
	struct vm *vm;
	int conn_fd;   /* the controller, -1 = none */
	int listen_fd; /* private socket for a restarted daemon, -1 = none */
	char *listen_path;
	bool hello_sent;
	bool release;		 /* the controller asked the process to end */
	bool keep_socket_file;	 /* leave the socket's file to whoever started us */
	struct util_lines lines; /* requests */
	char rbuf[16 << 10];
};

int vm_control_init(struct vm_control *ctl, struct vm *vm, int control_fd, const char *socket_path);
void vm_control_fini(struct vm_control *ctl);
/* Adds the channel's fds to a poll set (at most 2); returns how many. */
int vm_control_pollfds(struct vm_control *ctl, struct pollfd *pfd);
void vm_control_handle(struct vm_control *ctl, const struct pollfd *pfd, int n);
/* Sends a line of vm/protocol.h's (and frees it); a failed send drops the connection. */
void vm_control_send(struct vm_control *ctl, char *line, size_t len);
/* Tells the controller the VM stopped (and whether the process stays for inspection). */
void vm_control_stopped(struct vm_control *ctl, int status, bool preserved);

/* The interrupt report (vm/irqreport.c): routes, counters, steering, posting, PCI devices. */
json_t *vm_irq_json(struct vm *vm);

/* Statistics at the end of a run: a table for people, JSON for tools. */
void vm_report_text(struct vm *vm, int fd);
json_t *vm_report_json(struct vm *vm);

/* Builds the machine from its definition; on failure `*status` is the exit status to use. */
/*
 * A file the definition names (vm/machine.c): beneath an allowed directory and with the worker
 * user's permissions when lockstepd started us (sandbox_open), as given when a user runs us by
 * hand; the log says why not.
 */
int vm_open_defined(struct vm *vm, const struct vm_options *opts, const char *key, const char *path,
		    int flags, mode_t mode);
int vm_create(const struct vmdef *cfg, const struct vm_options *opts, struct vm **out, int *status);
void vm_destroy(struct vm *vm);
/* Starts the vCPU threads. */
int vm_run(struct vm *vm);
/* Stops every vCPU thread: the stop flag first, then a kick, so none re-enters the guest. */
void vm_stop_vcpus(struct vm *vm);
/* First caller decides the reason and exit code; wakes the control thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int exit_code);
static inline bool vm_stopping(const struct vm *vm)
{
	return atomic_load_explicit(&vm->stop_reason, memory_order_acquire) != VM_STOP_NONE;
}
int vm_exit_status(struct vm *vm);
/* Waits until the VM stops or `deadline_ns` (CLOCK_MONOTONIC) passes; true if stopped. */
bool vm_wait_stop(struct vm *vm, uint64_t deadline_ns);

/* --host-probe (vm/hostprobe.c): what /dev/kvm answers, as JSON on `out`; the exit status. */
int vm_host_probe(const char *kvm_path, FILE *out);

#endif /* LOCKSTEP_VM_INTERNAL_H */
