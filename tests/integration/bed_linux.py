#!/usr/bin/env python3
"""Linux guests under lockstep, on the test bed's real-SVM KVM: packs the L2 initramfs
(bed_linux_guest.py: busybox, the static lock-heavy program, the power-button modules) and
boots one L1 (q35, 2 CPUs) in which bed_linux_l1.py runs lockstep-vm and a lockstepd with
the bed's own Debian kernel as an SMP guest: PVH and bzImage boots, KVM's pv spinlocks and
their kicks in lockstep's statistics, the per-VM feature mask, the interactive console
(lockstep and virsh), an ACPI shutdown.  One L1 boot for all of it: the bed is slow.

usage: bed_linux.py BUILD_DIR BIN_DIR GUEST_DIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed  # noqa: E402
import bed_image  # noqa: E402
import bed_linux_guest as lg  # noqa: E402
import lockstep_test as lt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    build_dir, bin_dir, guest_dir = (os.path.abspath(a) for a in sys.argv[1:4])
    # The L2 initramfs is packed before L1 boots: L1's 9p view caches what it has read.
    try:
        images = bed_image.build(build_dir)
        initrd = lg.pack(images)
    except bed_image.ArchiveUnreachable as e:
        lt.skip(f"Debian's archive is unreachable and the bed's kernel is not cached: {e}")
    except RuntimeError as e:
        lt.fail(str(e))
    if not images.vmlinux:
        lt.fail("the bed's kernel has no PVH entry (vmlinux)")
    with bed.for_test(build_dir, machine="q35", edu=False, smp=2, mem_mib=2048) as b:
        r = b.run(f"python3 {HERE}/bed_linux_l1.py {bin_dir} {guest_dir} {images.vmlinux} "
                  f"{images.vmlinuz} {initrd}", timeout=900)
    print(r.stdout, end="")
    if r.status != 0:
        lt.fail(f"the checks in L1 failed (status {r.status})", f"{r.stdout}\n{r.stderr}")
    for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if mark in r.stdout + r.stderr:
            lt.fail("a sanitizer report in L1", r.stdout + r.stderr)
    print(f"PASS: Linux guests under lockstep on the bed's KVM (L1 script {r.seconds:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
