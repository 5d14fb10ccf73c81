#!/usr/bin/env python3
"""An L2 Linux guest on the test bed's real-SVM KVM: packs an L2 initramfs with
bed_image's pack_initramfs (busybox, a static probe program built now, an init script), then
inside L1 boots the bed's own kernel with it under QEMU -accel kvm -- the reference a Linux
guest under lockstep-vm is compared with.  The L2 guest must see KVM, enable KVM's PV
spinlocks, bring up 2 CPUs, run the static program and power off.

usage: bed_l2_linux.py BUILD_DIR
environment: CC (default cc), for the static probe
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed  # noqa: E402
import lockstep_test as lt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

L2_INIT = """#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "l2: init"
/bin/l2-probe
poweroff -f
"""

# without these the L2 kernel spends seconds on the AGP aperture scan and the RTC probe
L2_CMDLINE = "pci=off initcall_blacklist=cmos_init"

SCRIPT = r"""
start=$(date +%s%N)
timeout -k 5 300 qemu-system-x86_64 -accel kvm -cpu host -machine microvm -smp 2 -m 256 \
	-nodefaults -no-user-config -display none -no-reboot \
	-kernel "$VMLINUX" -initrd "$L2_INITRD" -append "console=ttyS0 panic=-1 $L2_CMDLINE" \
	-serial "file:$BED_OUT/l2.console" >"$BED_OUT/l2.qemu" 2>&1
echo "qemu=$?"
echo "l2_ms=$((($(date +%s%N) - start) / 1000000))"
"""


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build_dir = os.path.abspath(sys.argv[1])
    cc = os.environ.get("CC", "cc")
    with bed.for_test(build_dir, machine="q35", edu=False, smp=2, mem_mib=1024) as b:
        images = b.images
        if not images.vmlinux:
            lt.fail("the bed's kernel has no PVH entry (vmlinux)")
        probe = os.path.join(images.bed_dir, "l2-probe")
        p = subprocess.run([cc, "-static", "-O2", "-o", probe,
                            os.path.join(HERE, "bed_l2_probe.c")],
                           capture_output=True, text=True)
        if p.returncode != 0:
            lt.fail(f"{cc} -static failed", p.stdout + p.stderr)
        initrd = os.path.join(images.bed_dir, "l2-test.cpio.gz")
        images.pack_initramfs(initrd, L2_INIT, files={"/bin/l2-probe": probe})
        # a dynamic executable has no place in it
        try:
            images.pack_initramfs(initrd + ".bad", L2_INIT,
                                  files={"/bin/sh2": shutil.which("sh")})
            lt.fail("pack_initramfs packed a dynamically linked executable")
        except Exception as e:
            if "dynamically linked" not in str(e):
                raise
        r = b.run(SCRIPT, timeout=600, env={"VMLINUX": images.vmlinux, "L2_INITRD": initrd,
                                                "L2_CMDLINE": L2_CMDLINE})
        console = b.read("l2.console")
        qemu_log = b.read("l2.qemu")
    print(r.stdout, end="")
    f = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def check(cond, what):
        if not cond:
            lt.fail(what, f"{r}\n---- L2 console ----\n{console}\n---- L2 QEMU ----\n"
                          f"{qemu_log}")

    check(r.status == 0 and f.get("qemu") == "0", f"L2's QEMU exited {f.get('qemu')}")
    for line in ("Hypervisor detected: KVM", "kvm-guest: PV spinlocks enabled",
                 "smp: Brought up 1 node, 2 CPUs", "l2: init"):
        check(line in console, f"the L2 console lacks {line!r}")
    res = [ln for ln in console.splitlines() if ln.startswith("l2: cpus=")]
    check(res, "the static probe printed nothing in L2")
    words = dict(w.split("=", 1) for w in res[-1][4:].split())
    check(words.get("cpus") == "2" and words.get("hypervisor") == "KVMKVMKVM",
          f"L2 probe: {res[-1]}")
    features = int(words.get("kvm_features", "0"), 16)
    check(features & (1 << 7) and features & (1 << 11),
          f"KVM_FEATURE_PV_UNHALT or PV_SEND_IPI missing in L2's CPUID ({features:#x})")
    print(f"PASS: L2 Linux on L1's KVM in {int(f.get('l2_ms', 0)) / 1000:.1f}s: {res[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
