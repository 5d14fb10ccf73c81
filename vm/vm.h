/*
 * vm — the per-VM process lockstep-vm.  Its public face is its command line and exit status;
 * the definition it boots is vmdef/'s and its control protocol vm/protocol.h's.  Everything
 * else in vm/ is internal to lockstep-vm.
 */
#ifndef LOCKSTEP_VM_H
#define LOCKSTEP_VM_H

/* What lockstep-vm's exit status means (the daemon and scripts rely on these). */
enum vm_exit_status {
	VM_EXIT_OK = 0,		  /* guest exit code 0, guest reset, or stopped by request */
	VM_EXIT_USAGE = 64,	  /* bad command line */
	VM_EXIT_CONFIG = 65,	  /* bad VM definition or guest image */
	VM_EXIT_NOINPUT = 66,	  /* a file named by the definition cannot be read */
	VM_EXIT_NOKVM = 69,	  /* KVM is missing or lacks what lockstep needs */
	VM_EXIT_INTERNAL = 70,	  /* a host-side failure */
	VM_EXIT_SANDBOX = 71,	  /* the sandbox cannot be set up (user, cgroup, namespaces) */
	VM_EXIT_DEVICE = 72,	  /* a passthrough device cannot be had here (no IOMMU, not on
				     vfio-pci, its group in use, ...) */
	VM_EXIT_GUEST_CRASH = 80, /* triple fault, emulation failure, invalid guest state */
	VM_EXIT_TIMEOUT = 124,	  /* --timeout expired (as timeout(1) reports it) */
};

#endif /* LOCKSTEP_VM_H */
