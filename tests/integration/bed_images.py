#!/usr/bin/env python3
"""The test bed's images (bed_image.py), without booting anything: builds them (downloading
Debian's kernel and busybox packages the first time), then checks that a second build does
nothing, that L1's initramfs holds /init, busybox with its applets, /dev/console and every
module of every group, that each group's load order puts every module after what its
.modinfo says it depends on, and that the vmlinux has its PVH entry.  Prints the package
versions and the cache's sizes.

usage: bed_images.py BUILD_DIR
"""
import gzip
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed_image  # noqa: E402
import lockstep_test as lt  # noqa: E402


def read_cpio(path):
    """{name: (mode, rdev major, data)} of a gzip'd newc archive."""
    with open(path, "rb") as f:
        data = gzip.decompress(f.read())
    entries, pos = {}, 0
    while True:
        if data[pos:pos + 6] != b"070701":
            lt.fail(f"{path}: bad cpio header at {pos}")
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmajor, namesize = fields[1], fields[6], fields[9], fields[11]
        name_at = pos + 110
        name = data[name_at:name_at + namesize - 1].decode()
        data_at = (name_at + namesize + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, rmajor, data[data_at:data_at + size])
        pos = (data_at + size + 3) & ~3


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(root, f)).st_size
    return total


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build_dir = sys.argv[1]
    try:
        images = bed_image.build(build_dir, log=lambda m: print(f"build: {m}"))
    except bed_image.ArchiveUnreachable as e:
        lt.skip(f"Debian's archive is unreachable and nothing is cached: {e}")
    again = []
    bed_image.build(build_dir, log=again.append)
    if again:
        lt.fail(f"a second build with the same inputs redid work: {again}")

    cpio = read_cpio(images.l1_initrd)
    for name in ("init", "bin/busybox", "bin/sh", "sbin/insmod", "sbin/poweroff", "usr/sbin/chroot"):
        if name not in cpio:
            lt.fail(f"L1's initramfs lacks {name}")
    mode, major, _ = cpio["dev/console"]
    if not stat.S_ISCHR(mode) or major != 5:
        lt.fail("L1's initramfs has no /dev/console character device")
    if b"@MODULE_GROUPS@" in cpio["init"][2]:
        lt.fail("L1's /init still has its placeholder")

    groups = images.module_groups()
    for group, names in bed_image.MODULE_GROUPS.items():
        order = groups[group]
        loaded = [bed_image.module_name(p) for p in order]
        for n in names:
            if n not in loaded:
                lt.fail(f"group {group}: {n} is not in its load order {loaded}")
        for i, rel in enumerate(order):
            path = f"lib/modules/{images.release}/{rel}"
            if path not in cpio:
                lt.fail(f"L1's initramfs lacks {path}")
            if f"/{path}".encode() not in cpio["init"][2]:
                lt.fail(f"L1's /init does not load {path}")
            for entry in bed_image.modinfo(os.path.join(images.moddir, rel)):
                if entry.startswith("depends="):
                    for dep in filter(None, entry[len("depends="):].split(",")):
                        dep = dep.replace("-", "_")
                        if dep not in loaded[:i]:
                            lt.fail(f"group {group}: {loaded[i]} needs {dep}, which is not "
                                    f"loaded before it: {loaded}")
        print(f"group {group}: {' '.join(loaded)}")

    if not images.vmlinux:
        lt.fail("no vmlinux with a PVH entry was extracted from the bzImage")
    with open(images.vmlinux, "rb") as f:
        if not bed_image.has_pvh_note(f.read()):
            lt.fail(f"{images.vmlinux} has no PVH note")
    print(f"kernel: {' '.join(images.packages['kernel'])} ({images.release}); "
          f"busybox: {' '.join(images.packages['busybox'])}")
    for what in ("cache", "kernel", "busybox", "l1.cpio.gz"):
        path = os.path.join(images.bed_dir, what)
        size = du(path) if os.path.isdir(path) else os.path.getsize(path)
        print(f"{path}: {size / 2**20:.1f} MiB")
    print("PASS: images built, cached, consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
