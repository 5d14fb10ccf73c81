#!/usr/bin/env python3
"""Records what the host check reads on this machine into a directory the unit tests replay.

usage: record.py OUT_DIR LOCKSTEP_VM HOST_CPUID

OUT_DIR/root/ gets the /proc, /sys, /dev and /lib/modules files the check reads (files copied,
symbolic links kept as links, device nodes as empty files, /dev/kmsg as the kernel log's
records about IOMMUs and interrupt remapping); OUT_DIR/cpuid.txt the host's CPUID (HOST_CPUID,
tests/unit/host/host_cpuid.c); OUT_DIR/kvm.json what `lockstep-vm --host-probe` answers.
"""
import glob
import os
import shutil
import subprocess
import sys

FILES = [
    "/proc/cpuinfo", "/proc/cmdline", "/proc/interrupts", "/proc/mounts",
    "/proc/sys/kernel/osrelease", "/proc/sys/user/max_user_namespaces",
    "/proc/sys/kernel/seccomp/actions_avail",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/devices/system/clocksource/clocksource0/current_clocksource",
]
GLOBS = [
    "/sys/module/kvm*/parameters/*", "/sys/module/vfio*/parameters/*",
    "/sys/kernel/mm/hugepages/*/nr_hugepages", "/sys/kernel/mm/hugepages/*/free_hugepages",
    "/sys/class/iommu/*/intel-iommu/*", "/sys/class/iommu/*/amd-iommu/*",
    "/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/*/cgroup.controllers",
]
MODULES = ["kvm", "kvm_intel", "kvm_amd", "kvm_pvm", "vfio", "vfio_pci", "vfio_iommu_type1",
           "iommufd", "irqbypass"]
KMSG_MARKS = ("DMAR", "AMD-Vi", "IOMMU", "iommu", "remapping")


def out_path(root, path):
    return os.path.join(root, path.lstrip("/"))


def copy_file(root, path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return
    dest = out_path(root, path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as f:
        f.write(data)


def copy_link(root, path):
    try:
        target = os.readlink(path)
    except OSError:
        return
    dest = out_path(root, path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.lexists(dest):
        os.unlink(dest)
    os.symlink(target, dest)


def touch(root, path):
    dest = out_path(root, path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    open(dest, "w").close()


def record_kmsg(root):
    lines = []
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        while True:
            try:
                rec = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue
            head = rec.split("\n", 1)[0]
            if any(m in head.split(";", 1)[-1] for m in KMSG_MARKS):
                lines.append(head)
    finally:
        os.close(fd)
    dest = out_path(root, "/dev/kmsg")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    out, vm_binary, host_cpuid = sys.argv[1:]
    root = os.path.join(out, "root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    for path in FILES:
        copy_file(root, path)
    for pattern in GLOBS:
        for path in glob.glob(pattern):
            copy_file(root, path)
    for m in MODULES:
        if os.path.isdir(f"/sys/module/{m}"):
            # Built-in modules have no initstate; git keeps no empty directory.
            dest = out_path(root, f"/sys/module/{m}/initstate")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w") as f:
                f.write("live\n")
    for path in glob.glob("/proc/self/ns/*"):
        copy_link(root, path)
    with open("/proc/self/status") as f:
        status = "".join(line for line in f if line.startswith(("Seccomp", "NoNewPrivs")))
    dest = out_path(root, "/proc/self/status")
    with open(dest, "w") as f:
        f.write(status)
    for unit in glob.glob("/sys/class/iommu/*"):
        os.makedirs(out_path(root, unit), exist_ok=True)
    for dev in glob.glob("/sys/kernel/iommu_groups/*/devices/*"):
        copy_link(root, dev)
    for dev in glob.glob("/sys/bus/pci/devices/*"):
        os.makedirs(out_path(root, dev), exist_ok=True)
        for name in ("vendor", "device", "class"):
            copy_file(root, os.path.join(dev, name))
        for name in ("driver", "iommu_group"):
            copy_link(root, os.path.join(dev, name))
    for node in ("/dev/kvm", "/dev/vfio/vfio", "/dev/iommu"):
        if os.path.exists(node):
            touch(root, node)
    release = os.uname().release
    for name in ("modules.dep", "modules.builtin"):
        copy_file(root, f"/lib/modules/{release}/{name}")
    record_kmsg(root)
    with open(os.path.join(out, "cpuid.txt"), "w") as f:
        subprocess.run([host_cpuid], stdout=f, check=True)
    with open(os.path.join(out, "kvm.json"), "w") as f:
        subprocess.run([vm_binary, "--host-probe"], stdout=f, check=True)


if __name__ == "__main__":
    main()
