/*
 * The PCI platform of lockstep-vm (internal to vm/): a host bridge on bus 0, configuration
 * space through ports 0xCF8/0xCFC and ECAM, BARs the guest sizes and moves, INTx wired to
 * IOAPIC pins as on QEMU's PC machine, and MSI and MSI-X turned into irq/ routes.
 *
 * A device is a struct vm_pci_dev with an ops table.  Emulated devices implement bar_io and
 * leave the rest NULL; the platform emulates their whole configuration space from cfg[]
 * and the write masks.  A passthrough device (VFIO, vm/vfio.c) seeds cfg[] with its own
 * configuration space and fills config_read/config_write to forward what the platform does not
 * own (everything but the header's BARs, command register and interrupt line, and the MSI and
 * MSI-X capabilities, which stay where the device has them), maps its BARs itself in
 * bar_moved (memory slots) or traps them through bar_io, drives its INTx line itself, and
 * learns in irqs_changed when the guest enabled, masked or reprogrammed vectors, so that it
 * can point VFIO's eventfds at the lines (vm_pci_irq_state_locked) — the MSI-X table and PBA
 * stay emulated here in any case, wherever in the BARs the device has them.  An expansion ROM
 * (rom_size) is a seventh BAR, VM_PCI_ROM, read through bar_io.
 *
 * Interrupts: vm_pci_raise() delivers vector v through MSI-X, MSI or INTx, whichever the guest
 * enabled, from any thread; masked vectors set their pending bit and fire on unmask.  INTx is
 * level: vm_pci_intx_set() says whether the device wants service, and the line stays asserted
 * (resample irqfd) until the guest has both acknowledged the device and sent EOI.
 *
 * Locks: pci->lock serialises configuration accesses and BAR changes; pci->map (a rwlock)
 * guards the decode map that BAR accesses read; dev->lock guards a device's interrupt state.
 * Order: pci->lock, then map (write) or dev->lock; map (read), then dev->lock; dev->lock, then
 * the routing table's lock.
 */
#ifndef LOCKSTEP_VM_PCI_H
#define LOCKSTEP_VM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "irq/irq.h"

struct vm;
struct vm_io;
struct vm_pci;
struct vm_pci_dev;

/* The guest-physical layout (docs/guest-platform.md). */
#define VM_PCI_ECAM_BASE 0xe0000000ull
#define VM_PCI_ECAM_SIZE 0x10000000ull /* buses 0-255, 1 MiB each */
#define VM_PCI_MMIO_BASE 0xc0000000ull /* 32-bit BAR window, up to the ECAM */
#define VM_PCI_MMIO_SIZE 0x20000000ull
#define VM_PCI_MMIO64_BASE 0x8000000000ull /* 64-bit BARs that do not fit below 4 GiB */
#define VM_PCI_MMIO64_SIZE 0x1000000000ull
#define VM_PCI_IO_BASE 0xc000u /* I/O BAR window */
#define VM_PCI_IO_SIZE 0x4000u
#define VM_PCI_CONFIG_ADDRESS 0xcf8u
#define VM_PCI_CONFIG_DATA 0xcfcu
#define VM_PCI_SLOTS 32
#define VM_PCI_FIRST_SLOT 3 /* as QEMU's PC machine: 0 host bridge, 1 ISA bridge, 2 VGA */

/* QEMU's PC machine (SeaBIOS) routes PIRQ A-D to these ISA IRQs. */
#define VM_PCI_PIRQ_IRQS       \
	{                      \
		10, 10, 11, 11 \
	}
/* ISA IRQs that carry PCI interrupts: level-triggered, active high (MADT overrides). */
#define VM_PCI_ISA_IRQ_MASK ((1u << 5) | (1u << 9) | (1u << 10) | (1u << 11))

/* The IOAPIC pin (= ISA IRQ) of INTx pin `pin` (1 = INTA) of the device in `slot`. */
unsigned vm_pci_intx_irq(unsigned slot, unsigned pin);

/* Configuration-space registers and bits the platform uses. */
#define PCI_CFG_VENDOR 0x00
#define PCI_CFG_DEVICE 0x02
#define PCI_CFG_COMMAND 0x04
#define PCI_CFG_STATUS 0x06
#define PCI_CFG_REVISION 0x08
#define PCI_CFG_CLASS_PROG 0x09
#define PCI_CFG_HEADER_TYPE 0x0e
#define PCI_CFG_BAR0 0x10
#define PCI_CFG_SUBSYS_VENDOR 0x2c
#define PCI_CFG_ROM 0x30
#define PCI_CFG_CAP_PTR 0x34
#define PCI_CFG_INTX_LINE 0x3c
#define PCI_CFG_INTX_PIN 0x3d
#define PCI_CFG_SIZE 4096
#define PCI_CFG_LEGACY_SIZE 256

#define PCI_CMD_IO (1u << 0)
#define PCI_CMD_MEM (1u << 1)
#define PCI_CMD_MASTER (1u << 2)
#define PCI_CMD_PARITY (1u << 6)
#define PCI_CMD_SERR (1u << 8)
#define PCI_CMD_INTX_DISABLE (1u << 10)
#define PCI_STATUS_INTX (1u << 3)
#define PCI_STATUS_CAP_LIST (1u << 4)

#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_MSIX 0x11
#define PCI_MSI_FLAGS_ENABLE (1u << 0)
#define PCI_MSI_FLAGS_64BIT (1u << 7)
#define PCI_MSI_FLAGS_MASKBIT (1u << 8)
#define PCI_MSIX_FLAGS_ENABLE (1u << 15)
#define PCI_MSIX_FLAGS_MASKALL (1u << 14)
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 1u
#define PCI_ROM_ENABLE 1u

#define VM_PCI_BARS 6
#define VM_PCI_ROM VM_PCI_BARS /* the expansion ROM, as a seventh BAR */
#define VM_PCI_BAR_IO (1u << 0)
#define VM_PCI_BAR_MEM64 (1u << 2)
#define VM_PCI_BAR_PREFETCH (1u << 3)
#define VM_PCI_MSI_MAX 32
#define VM_PCI_MSIX_MAX 64

struct vm_pci_dev_ops {
	/* An access to BAR `bar` (or VM_PCI_ROM) at io->offset (MSI-X table and PBA accesses
	 * never come here). */
	void (*bar_io)(struct vm_pci_dev *dev, unsigned bar, struct vm_io *io);
	/* Passthrough: a configuration read the platform does not own; false = use cfg[]. */
	bool (*config_read)(struct vm_pci_dev *dev, uint32_t off, uint32_t size, uint32_t *val);
	/* Passthrough: a configuration write, after the platform applied its part. */
	void (*config_write)(struct vm_pci_dev *dev, uint32_t off, uint32_t size, uint32_t val);
	/* BAR `bar` is now decoded at `addr` (0: not decoded). */
	void (*bar_moved)(struct vm_pci_dev *dev, unsigned bar, uint64_t addr);
	/* MSI/MSI-X was enabled, disabled, masked, unmasked or reprogrammed (dev->lock held). */
	void (*irqs_changed)(struct vm_pci_dev *dev);
	/* The device goes away (with the VM). */
	void (*free)(struct vm_pci_dev *dev);
};

struct vm_pci_bar {
	uint64_t size;	  /* a power of two; 0 = no BAR */
	uint32_t flags;	  /* VM_PCI_BAR_* */
	uint64_t decoded; /* where it answers now, 0 = nowhere */
};

/* What a device offers, given when it is added. */
struct vm_pci_dev_desc {
	const char *name;
	int slot; /* -1: the first free one from VM_PCI_FIRST_SLOT */
	uint16_t vendor, device, subsys_vendor, subsys;
	uint8_t revision;
	uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
	uint8_t intx_pin;    /* 1-4 = INTA-INTD, 0 none */
	struct {
		uint64_t size;
		uint32_t flags;
	} bar[VM_PCI_BARS];
	unsigned msi_vectors;  /* 0 (no MSI capability), 1, 2, 4, ... 32 */
	bool msi_maskable;     /* per-vector masking */
	unsigned msix_vectors; /* 0 (no MSI-X capability) .. VM_PCI_MSIX_MAX */
	unsigned msix_bar;     /* table at offset 0, PBA at msix_pba_offset of this BAR */
	uint32_t msix_pba_offset;
	uint64_t rom_size; /* expansion ROM: a power of two from 2 KiB, 0 = none */
	const struct vm_pci_dev_ops *ops;
	void *opaque;
	/*
	 * Passthrough: the device's own configuration space (config_len bytes, at least 256)
	 * seeds cfg[]; its capability list stays.  MSI (msi_cap, 64-bit or not) and MSI-X
	 * (msix_cap; table and PBA anywhere in the BARs) are emulated where the device has them.
	 * The device drives its own INTx line (the platform makes it and leaves its resample
	 * eventfd to the device).
	 */
	const uint8_t *config;
	size_t config_len;
	uint8_t msi_cap, msix_cap;
	bool msi_64bit;
	unsigned msix_table_bar, msix_pba_bar;
	uint32_t msix_table_offset;
};

struct vm_pci_msix_vector {
	uint32_t entry[4]; /* address low, address high, data, vector control */
	uint32_t gsi;	   /* its route, when routed */
	bool routed;
	struct irq_line *line;
	struct irq_msi routed_msg;
	uint64_t raised, delivered;
};

struct vm_pci_dev {
	struct vm *vm;
	struct vm_pci *pci;
	const struct vm_pci_dev_ops *ops;
	void *opaque;
	char name[32];
	unsigned slot;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];		/* bits the guest may write */
	uint8_t w1c[PCI_CFG_SIZE];		/* bits a written 1 clears */
	struct vm_pci_bar bar[VM_PCI_BARS + 1]; /* + the expansion ROM */
	bool passthrough;			/* cfg[] came from a device (desc->config) */
	bool intx_external;			/* the device drives its INTx line itself */

	pthread_mutex_t lock; /* the interrupt state below */
	unsigned irq;	      /* INTx: IOAPIC pin, 0 = no INTx */
	struct irq_line *intx_line;
	bool intx_wanted; /* the device wants service (level) */
	unsigned msi_cap, msi_vectors;
	bool msi_maskable, msi_64bit;
	unsigned msi_data, msi_mask, msi_len; /* register offsets in the capability, its length */
	uint32_t msi_pending;
	bool msi_routed;
	unsigned msi_routed_count;
	uint32_t msi_gsi[VM_PCI_MSI_MAX];
	struct irq_line *msi_line[VM_PCI_MSI_MAX];
	struct irq_msi msi_msg; /* the base message that is routed */
	unsigned msix_cap, msix_vectors;
	unsigned msix_table_bar, msix_pba_bar;
	uint32_t msix_table_offset, msix_pba_offset;
	struct vm_pci_msix_vector *msix;
	uint64_t msix_pba[VM_PCI_MSIX_MAX / 64];
	/* what went wrong, for the report */
	uint64_t bad_messages;	   /* MSI/MSI-X programmed with an invalid address or vector */
	uint64_t dropped;	   /* raised while no interrupt mechanism was enabled */
	uint64_t bad_table_access; /* MSI-X table/PBA accesses of a wrong size or place */
};

int vm_pci_new(struct vm *vm, struct vm_pci **out);
void vm_pci_free(struct vm_pci *pci);
/* Puts the platform's windows (config ports, ECAM, BAR windows) on the VM's buses. */
int vm_pci_register(struct vm_pci *pci);
/* Adds a device, assigns its BARs and INTx as firmware would; *out stays owned by pci. */
int vm_pci_add(struct vm_pci *pci, const struct vm_pci_dev_desc *desc, struct vm_pci_dev **out);
/* Slots with a device, and the device in one; for the firmware tables and the report. */
unsigned vm_pci_count(const struct vm_pci *pci);
struct vm_pci_dev *vm_pci_dev_at(const struct vm_pci *pci, unsigned index);

/* Configuration access by bus/device/function and register (for tests and fuzzing too). */
uint32_t vm_pci_config_read(struct vm_pci *pci, uint32_t bdf, uint32_t off, uint32_t size);
void vm_pci_config_write(struct vm_pci *pci, uint32_t bdf, uint32_t off, uint32_t size,
			 uint32_t val);

/* Raises vector `v` (MSI-X, MSI, else INTx); any thread.  vm_pci_signal: the same, MSI and
 * MSI-X sent with KVM_SIGNAL_MSI rather than through the irqfd (a yardstick). */
void vm_pci_raise(struct vm_pci_dev *dev, unsigned v);
void vm_pci_signal(struct vm_pci_dev *dev, unsigned v);
/* INTx: the device does (true) or no longer does (false) want service. */
void vm_pci_intx_set(struct vm_pci_dev *dev, bool wanted);
bool vm_pci_intx_wanted(struct vm_pci_dev *dev);
/* The line vector `v` is delivered through now, NULL if none (masked vectors keep theirs). */
struct irq_line *vm_pci_vector_line(struct vm_pci_dev *dev, unsigned v);

/*
 * How a passthrough device's interrupts must be wired now (dev->lock held, as in
 * irqs_changed): the mechanism the guest enabled and, per vector, the line that delivers it
 * straight to the guest while it is live (enabled, unmasked, routed), or NULL when the
 * platform must see the interrupt first (masked: it sets the pending bit and delivers at
 * unmask; unroutable: it drops and counts it) through vm_pci_raise.
 */
enum vm_pci_irq_mode {
	VM_PCI_IRQ_INTX = 0, /* neither MSI nor MSI-X: the INTx pin */
	VM_PCI_IRQ_MSI,
	VM_PCI_IRQ_MSIX,
};

struct vm_pci_irq_state {
	enum vm_pci_irq_mode mode;
	unsigned vectors; /* MSI: messages enabled; MSI-X: table entries; INTx: 1 */
	struct irq_line *line[VM_PCI_MSIX_MAX];
};

void vm_pci_irq_state_locked(struct vm_pci_dev *dev, struct vm_pci_irq_state *out);
/* Whether the platform emulates configuration byte `off` of the device (passthrough: the rest
 * is the device's own). */
bool vm_pci_config_owned(const struct vm_pci_dev *dev, uint32_t off);
/* How the device signals now: "msix", "msi", "intx" or "none". */
const char *vm_pci_irq_mode(struct vm_pci_dev *dev);

/* Window accesses that hit no BAR. */
uint64_t vm_pci_unassigned(const struct vm_pci *pci);

/* Configuration-space bytes of a device as the platform holds them (little-endian). */
static inline uint32_t vm_pci_cfg_get(const struct vm_pci_dev *dev, uint32_t off, uint32_t size)
{
	uint32_t v = 0;

	memcpy(&v, dev->cfg + off, size);
	return v;
}

static inline void vm_pci_cfg_set(struct vm_pci_dev *dev, uint32_t off, uint32_t size, uint32_t v)
{
	memcpy(dev->cfg + off, &v, size);
}

/* Whether [addr, addr + size) lies wholly inside [base, base + len), without overflow. */
static inline bool vm_pci_within(uint64_t addr, uint64_t size, uint64_t base, uint64_t len)
{
	return addr >= base && size <= len && addr - base <= len - size;
}

/* vm/pci_header.c, called by vm_pci_add with pci->lock held. */
/* Where the firmware puts the next BAR of each kind. */
struct vm_pci_cursors {
	uint64_t mmio, mmio64, io;
};

/* The header's fixed fields, write masks, BAR flags and ROM from the description (a
 * passthrough device's own configuration space first); -EINVAL for a BAR or ROM the
 * platform cannot present. */
int vm_pci_header_init(struct vm_pci_dev *dev, const struct vm_pci_dev_desc *d);
/* Firmware's part: an address for each BAR and the ROM, decoding on, advancing `next`. */
void vm_pci_header_assign(struct vm_pci_dev *dev, struct vm_pci_cursors *next);

/* vm/pci_intx.c: the INTx line of a device with pin `pin` (1-4), wired as QEMU's PC machine
 * wires the slot; removed again when the device goes. */
int vm_pci_intx_add(struct vm_pci_dev *dev, uint8_t pin);
void vm_pci_intx_remove(struct vm_pci_dev *dev);
/* Asserts the line if the device wants service and INTx may signal now (dev->lock held): after
 * a command or capability write that may have let it signal again. */
void vm_pci_intx_update_locked(struct vm_pci_dev *dev);

/* vm/pci_msi.c, called by vm/pci.c with dev->lock held (and pci->lock for configuration). */
void vm_pci_msi_config_written(struct vm_pci_dev *dev, uint32_t off, uint32_t size);
/* Delivers or holds vector v through MSI-X or MSI; false if neither is enabled.  `signal`:
 * with KVM_SIGNAL_MSI from the calling thread instead of the vector's irqfd line. */
bool vm_pci_msi_raise_locked(struct vm_pci_dev *dev, unsigned v, bool signal);
/* BAR accesses to the MSI-X table or PBA (the map's read lock held, not dev->lock). */
void vm_pci_msix_access(struct vm_pci_dev *dev, unsigned bar, uint64_t off, struct vm_io *io);
bool vm_pci_msix_hit(const struct vm_pci_dev *dev, unsigned bar, uint64_t off);
void vm_pci_msi_teardown(struct vm_pci_dev *dev);
int vm_pci_msi_setup(struct vm_pci_dev *dev, const struct vm_pci_dev_desc *desc, uint8_t *next);

/* ---- a passthrough device's description (vm/vfio_describe.c) ---- */

/* What VFIO says of a device beyond its configuration space. */
struct vm_vfio_facts {
	uint64_t bar_size[VM_PCI_BARS]; /* the BAR regions' sizes, 0 = none */
	uint32_t nr_intx, nr_msi, nr_msix;
};

/*
 * The platform's description of a passthrough device from its configuration space `cfg`
 * (256 bytes at least, as the device gives it: untrusted) and the facts: BARs with their kind
 * and size, the INTx pin, MSI and MSI-X where the capability list has them (MSI-X's table and
 * PBA in BARs the device has).  Fills the BARs, interrupts and capability fields of `d`;
 * -EINVAL with `why` for a device the platform cannot present.  Pure.
 */
int vm_vfio_describe(const uint8_t *cfg, const struct vm_vfio_facts *f, struct vm_pci_dev_desc *d,
		     char *why, size_t why_len);

#endif /* LOCKSTEP_VM_PCI_H */
