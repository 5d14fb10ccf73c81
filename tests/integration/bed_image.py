#!/usr/bin/env python3
"""Builds the images of the nested QEMU/TCG test bed from Debian packages (stdlib only).

The bed (bed.py, docs/testbed.md) boots Debian 12's own kernel under qemu-system-x86_64
-accel tcg with a small busybox initramfs.  Both come from the Debian archive: `apt-get
download` fetches the kernel package that linux-image-amd64 currently depends on and
busybox-static into the build tree, and `dpkg-deb -x` unpacks them there.  Nothing is
installed on the host, and nothing outside the build tree is written.

    BUILD/bed/cache/*.deb          the two packages, as downloaded
    BUILD/bed/kernel/              vmlinuz, vmlinux (the PVH entry; extracted from vmlinuz),
                                   config, and lib/modules/RELEASE/ holding the modules the
                                   beds load (uncompressed, with their paths) and modules.dep
    BUILD/bed/busybox              the static busybox
    BUILD/bed/l1.cpio.gz           L1's initramfs: busybox, those modules, bed_init.sh as /init
    BUILD/bed/*.json               what each of the above was built from

Each step records its inputs (package versions, module list, the init script and this
file's hash) and is redone only when they change, so a second build does nothing but look
at the host's apt lists.  The Debian package carries no modules.dep (depmod writes it at
install time), so it is written here from the dependency list modpost records in each
module's .modinfo, and load orders are computed from that file (bed_kmod.py).

pack_initramfs() packs any initramfs, e.g. an L2 Linux guest's: busybox, the given static
binaries, an init script, optionally kernel modules in load order.

Command line: bed_image.py BUILD_DIR   builds (or checks) the images and prints their paths.
"""
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bed_kmod import (KernelFileError, extract_vmlinux, has_pvh_note, load_order,  # noqa: E402
                      modinfo, module_name, write_modules_dep)

HERE = os.path.dirname(os.path.abspath(__file__))
INIT_SCRIPT = os.path.join(HERE, "bed_init.sh")
KERNEL_META = "linux-image-amd64"
BUSYBOX_PKG = "busybox-static"

# Modules each bed feature needs, by name; their dependencies come from modules.dep.  L1's
# /init loads the groups its bed asks for, in dependency order.
MODULE_GROUPS = {
    # the host's root (read-only) and the results directory over virtio-9p, a tmpfs overlay
    # that makes the root writable inside L1; virtio-mmio for the microvm machine
    "9p": ["virtio_pci", "virtio_mmio", "9pnet_virtio", "9p", "overlay"],
    # a real-SVM /dev/kvm (-cpu max under TCG has SVM with nested paging)
    "kvm": ["kvm_amd"],
    # VFIO: the type1 container and vfio-pci; pci-stub, a driver that holds a device and
    # does nothing (the passthrough tests give edu to it to have a host driver to take it from)
    "vfio": ["vfio_pci", "vfio_iommu_type1", "pci_stub"],
    # L2 Linux guests (bed_linux_guest.py): the ACPI power button and the event devices
    # busybox acpid reads it from
    "l2": ["button", "evdev"],
}


class ArchiveUnreachable(Exception):
    """The Debian archive could not be reached and nothing usable is cached."""


class BuildError(Exception):
    pass


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _apt_error(p):
    """The gist of a failed apt command: its E: lines (or its last line)."""
    lines = (p.stdout + p.stderr).strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("E:")]
    return " / ".join(errors[:2] or lines[-1:])


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", **kw)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_atomic(path, data):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.replace(tmp, path)


# ---- the Debian archive ----------------------------------------------------------------


class Apt:
    """apt-cache and apt-get download, on the host's package lists or, when those cannot
    resolve a package (never updated, or stale), on lists of its own in the build tree."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.private = False

    def _opts(self):
        opts = []
        if self.private:
            opts += ["-o", f"Dir::State::Lists={self.state_dir}/lists",
                     "-o", f"Dir::Cache={self.state_dir}/cache"]
        if os.geteuid() == 0:
            # downloads go to the build tree, which apt's _apt user may not be able to enter
            opts += ["-o", "APT::Sandbox::User=root"]
        return opts

    def use_private_lists(self):
        """apt-get update into the build tree (the host's lists stay as they are)."""
        os.makedirs(f"{self.state_dir}/lists/partial", exist_ok=True)
        os.makedirs(f"{self.state_dir}/cache/archives/partial", exist_ok=True)
        self.private = True
        p = _run(["apt-get", "-q", *self._opts(), "update"], timeout=600)
        if p.returncode != 0 or "Err:" in p.stdout:
            raise ArchiveUnreachable(f"apt-get update failed: {_apt_error(p)}")

    def show(self, pkg):
        """The candidate's control fields (Version, Depends, Filename, ...) or None."""
        p = _run(["apt-cache", *self._opts(), "show", "--no-all-versions", pkg], timeout=120)
        if p.returncode != 0:
            return None
        fields, key = {}, None
        for line in p.stdout.splitlines():
            if not line.strip():
                break
            if line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        return fields if "Version" in fields else None

    def download(self, pkg, version, dest):
        """Downloads pkg=version to the file dest."""
        with tempfile.TemporaryDirectory(dir=os.path.dirname(dest), prefix=".download.") as tmp:
            p = _run(["apt-get", "-q", *self._opts(), "download", f"{pkg}={version}"],
                     cwd=tmp, timeout=900)
            debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
            if p.returncode != 0 or len(debs) != 1:
                raise ArchiveUnreachable(f"apt-get download {pkg}={version}: {_apt_error(p)}")
            os.replace(os.path.join(tmp, debs[0]), dest)


def _resolve(apt):
    """{"kernel": (package, version), "busybox": (package, version)} from apt's lists."""
    meta = apt.show(KERNEL_META)
    if not meta:
        return None
    names = re.findall(r"(linux-image-[0-9][^\s,|]*-amd64)\b", meta.get("Depends", ""))
    if not names:
        raise BuildError(f"{KERNEL_META} depends on no linux-image-*-amd64: {meta}")
    kernel = apt.show(names[0])
    busybox = apt.show(BUSYBOX_PKG)
    if not kernel or not busybox:
        return None
    return {"kernel": [names[0], kernel["Version"]], "busybox": [BUSYBOX_PKG, busybox["Version"]]}


def _deb_name(pkg, version):
    return f"{pkg}_{version.replace(':', '%3a')}_amd64.deb"


def fetch_packages(bed_dir):
    """Resolves and downloads (once) the kernel and busybox packages.  Returns the resolved
    {"kernel": [pkg, version], "busybox": [...]} and {"kernel": .deb path, ...}.

    In turn until one works: the previous answer while the host's package lists are
    unchanged; the host's lists; lists of our own in the build tree (the host's were never
    updated, or name a version gone from the archive); offline, the previous answer if its
    packages are still cached."""
    cache = os.path.join(bed_dir, "cache")
    os.makedirs(cache, exist_ok=True)
    apt = Apt(os.path.join(bed_dir, "apt"))
    previous = _read_json(os.path.join(bed_dir, "packages.json")) or {}
    previous_lists = previous.pop("lists", None)
    lists = _lists_fingerprint()

    def private():
        apt.use_private_lists()
        return _resolve(apt)

    steps = [lambda: _resolve(apt), private]
    if previous and lists is not None and previous_lists == lists:
        steps.insert(0, lambda: previous)
    elif previous:
        steps.append(lambda: previous)
    errors = []
    for step in steps:
        try:
            resolved = step()
            if not resolved:
                raise ArchiveUnreachable(f"apt knows no {KERNEL_META} or {BUSYBOX_PKG}")
            debs = {}
            for key, (pkg, version) in resolved.items():
                debs[key] = os.path.join(cache, _deb_name(pkg, version))
                if not os.path.exists(debs[key]):
                    apt.download(pkg, version, debs[key])
            break
        except (ArchiveUnreachable, subprocess.TimeoutExpired, OSError) as e:
            errors.append(str(e))
    else:
        raise ArchiveUnreachable(f"cannot fetch {KERNEL_META}'s kernel and {BUSYBOX_PKG} from "
                                 f"Debian's archive, and they are not cached in {cache}: "
                                 + "; ".join(errors))
    # older downloads of the same packages are not needed any more
    keep = {os.path.basename(p) for p in debs.values()}
    for f in os.listdir(cache):
        if f.endswith(".deb") and f not in keep:
            os.unlink(os.path.join(cache, f))
    # while the host's lists stay as they are, so does this answer (also one found through
    # lists of our own: deleting packages.json asks again)
    if (previous, previous_lists) != (resolved, lists):
        _write_atomic(os.path.join(bed_dir, "packages.json"),
                      json.dumps(dict(resolved, lists=lists)) + "\n")
    return resolved, debs


def _lists_fingerprint(lists_dir="/var/lib/apt/lists"):
    """Names, sizes and mtimes of the host's package lists: a resolution made against the
    same lists gives the same answer."""
    try:
        entries = sorted(os.scandir(lists_dir), key=lambda e: e.name)
        return [[e.name, e.stat().st_size, e.stat().st_mtime_ns]
                for e in entries if e.is_file() and "Packages" in e.name]
    except OSError:
        return None


# ---- the kernel --------------------------------------------------------------------------


def unpack_kernel(deb, dest, wanted):
    """Unpacks the kernel package into dest: boot files, the vmlinux with a PVH entry, and
    the closure of the `wanted` modules with modules.dep and modules.softdep."""
    parent = os.path.dirname(dest)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".unpack.") as tmp:
        p = _run(["dpkg-deb", "-x", deb, tmp])
        if p.returncode != 0:
            raise BuildError(f"dpkg-deb -x {deb}: {p.stderr.strip()}")
        releases = os.listdir(os.path.join(tmp, "lib", "modules"))
        if len(releases) != 1:
            raise BuildError(f"{deb}: expected one kernel release, found {releases}")
        release = releases[0]
        full = os.path.join(tmp, "lib", "modules", release)
        try:
            count = write_modules_dep(full)
            order = load_order(full, wanted)
        except KernelFileError as e:
            raise BuildError(f"{deb}: {e}") from None
        staging = os.path.join(tmp, "out")
        moddir = os.path.join(staging, "lib", "modules", release)
        os.makedirs(moddir)
        for rel in order:
            os.makedirs(os.path.join(moddir, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(full, rel), os.path.join(moddir, rel))
        # modules.dep of what is kept (a closure: every dependency is kept too)
        with open(os.path.join(full, "modules.dep")) as src:
            kept = [line for line in src if line.split(":", 1)[0] in order]
        _write_atomic(os.path.join(moddir, "modules.dep"), "".join(kept))
        for f in ("modules.softdep", "modules.order", "modules.builtin"):
            if os.path.exists(os.path.join(full, f)):
                shutil.copy2(os.path.join(full, f), os.path.join(moddir, f))
        boot = os.path.join(tmp, "boot")
        shutil.copy2(os.path.join(boot, f"vmlinuz-{release}"), os.path.join(staging, "vmlinuz"))
        shutil.copy2(os.path.join(boot, f"config-{release}"), os.path.join(staging, "config"))
        vmlinux = extract_vmlinux(os.path.join(staging, "vmlinuz"))
        pvh = bool(vmlinux) and has_pvh_note(vmlinux)
        if pvh:
            with open(os.path.join(staging, "vmlinux"), "wb") as f:
                f.write(vmlinux)
        info = {"release": release, "modules_in_package": count, "modules_kept": order,
                "pvh": pvh}
        _write_atomic(os.path.join(staging, "kernel.json"), json.dumps(info, indent=1) + "\n")
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.replace(staging, dest)
    return info


# ---- initramfs ---------------------------------------------------------------------------


class Cpio:
    """A newc ("070701") cpio archive, as the kernel's initramfs unpacker reads it; every
    entry is owned by root with mtime 0, so equal inputs give equal archives."""

    def __init__(self):
        self.chunks = []
        self.ino = 0
        self.names = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name = name.strip("/")
        if name in self.names:
            return
        self.names.add(name)
        self.ino += 1
        encoded = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        header = b"070701" + b"".join(b"%08x" % v for v in fields)
        pad = (4 - (len(header) + len(encoded)) % 4) % 4
        self.chunks += [header, encoded, b"\0" * pad, data, b"\0" * ((4 - len(data) % 4) % 4)]

    def dir(self, name, mode=0o755):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | mode)

    def file(self, name, data, mode=0o644):
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def gzip(self):
        self._entry("TRAILER!!!", 0)
        return gzip.compress(b"".join(self.chunks), compresslevel=6, mtime=0)


def _is_static(path):
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return True  # a script: the caller knows what runs it
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def pack_initramfs(out, init, busybox, files=None, modules=None, kernel_dir=None,
                   extra_dirs=()):
    """Packs a gzip'd newc initramfs at `out` and returns True, or returns False when `out`
    already holds exactly these inputs.

    init        the /init script (text or bytes); run by busybox sh unless it has a #! line
    busybox     a static busybox, installed as /bin/busybox with a link for each applet
    files       {path in the image: host path} -- e.g. {"/bin/lockbench": "build/x"};
                ELF executables must be static (there are no shared libraries in the image)
    modules     module names to load: their closure from kernel_dir's modules.dep is copied
                to /lib/modules/RELEASE/ and /etc/modules.order lists it in load order
    kernel_dir  an unpacked kernel (BUILD/bed/kernel), for `modules`
    """
    files = dict(files or {})
    key = {"init": hashlib.sha256(init.encode() if isinstance(init, str) else init).hexdigest(),
           "busybox": _sha256(busybox), "modules": list(modules or []),
           "dirs": list(extra_dirs), "builder": _sha256(__file__)}
    for dest, src in sorted(files.items()):
        if not _is_static(src):
            raise BuildError(f"{src} is dynamically linked; the initramfs has no libraries")
        key[dest] = _sha256(src)
    order, moddir, release = [], None, None
    if modules:
        with open(os.path.join(kernel_dir, "kernel.json")) as f:
            release = json.load(f)["release"]
        moddir = os.path.join(kernel_dir, "lib", "modules", release)
        try:
            order = load_order(moddir, modules)
        except KernelFileError as e:
            raise BuildError(f"{e} (the bed's kernel keeps only the modules that "
                             f"MODULE_GROUPS in {__file__} name, and what they need)") from None
        key["release"] = release
        key["module_files"] = {rel: _sha256(os.path.join(moddir, rel)) for rel in order}
    stamp = out + ".json"
    if _read_json(stamp) == key and os.path.exists(out):
        return False

    cpio = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "run", "mnt", "etc", "root",
              *extra_dirs):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    with open(busybox, "rb") as f:
        cpio.file("bin/busybox", f.read(), 0o755)
    applets = _run([busybox, "--list-full"])
    if applets.returncode != 0:
        raise BuildError(f"{busybox} --list-full: {applets.stderr.strip()}")
    for applet in applets.stdout.split():
        if applet != "bin/busybox":
            cpio.dir(os.path.dirname(applet))
            cpio.symlink(applet, "/bin/busybox")
    data = init.encode() if isinstance(init, str) else init
    if not data.startswith(b"#!"):
        data = b"#!/bin/sh\n" + data
    cpio.file("init", data, 0o755)
    for dest, src in sorted(files.items()):
        with open(src, "rb") as f:
            cpio.file(dest, f.read(), stat.S_IMODE(os.stat(src).st_mode) | 0o500)
    if order:
        for rel in order:
            with open(os.path.join(moddir, rel), "rb") as f:
                cpio.file(f"lib/modules/{release}/{rel}", f.read())
        for f in ("modules.dep", "modules.softdep"):
            with open(os.path.join(moddir, f), "rb") as fh:
                cpio.file(f"lib/modules/{release}/{f}", fh.read())
        cpio.file("etc/modules.order", "".join(f"/lib/modules/{release}/{rel}\n"
                                               for rel in order).encode())
    _write_atomic(out, cpio.gzip())
    _write_atomic(stamp, json.dumps(key, indent=1) + "\n")
    return True


# ---- the bed's images ---------------------------------------------------------------------


class Images:
    """What build() made: paths and facts a bed boots from."""

    def __init__(self, bed_dir, kernel_info, packages):
        self.bed_dir = bed_dir
        self.kernel_dir = os.path.join(bed_dir, "kernel")
        self.release = kernel_info["release"]
        self.vmlinuz = os.path.join(self.kernel_dir, "vmlinuz")
        self.vmlinux = os.path.join(self.kernel_dir, "vmlinux") if kernel_info["pvh"] else None
        self.busybox = os.path.join(bed_dir, "busybox")
        self.l1_initrd = os.path.join(bed_dir, "l1.cpio.gz")
        self.packages = packages
        self.moddir = os.path.join(self.kernel_dir, "lib", "modules", self.release)

    def pack_initramfs(self, out, init, files=None, modules=None):
        """An initramfs for a Linux guest of this kernel (e.g. L2 inside the bed): this
        busybox, `files` ({path in the image: host path}, static executables), `init`
        as /init, and `modules` from this kernel in load order (/etc/modules.order).
        Returns whether it was (re)packed."""
        return pack_initramfs(out, init, self.busybox, files=files, modules=modules,
                              kernel_dir=self.kernel_dir)

    def module_groups(self):
        """{group: [module paths in load order]} as L1's /init loads them."""
        return {g: load_order(self.moddir, names) for g, names in MODULE_GROUPS.items()}


def _lock(bed_dir):
    fd = os.open(os.path.join(bed_dir, ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def build(build_dir, log=None):
    """Makes (or finds up to date) everything a bed boots from under BUILD_DIR/bed and
    returns an Images.  Raises ArchiveUnreachable when the packages are neither cached nor
    downloadable.  Concurrent callers wait for each other (a lock file)."""
    log = log or (lambda msg: None)
    bed_dir = os.path.join(os.path.abspath(build_dir), "bed")
    os.makedirs(bed_dir, exist_ok=True)
    fd = _lock(bed_dir)
    try:
        packages, debs = fetch_packages(bed_dir)
        wanted = sorted({m for names in MODULE_GROUPS.values() for m in names})
        kernel_key = {"package": packages["kernel"], "deb": os.path.basename(debs["kernel"]),
                      "modules": wanted, "layout": 2}
        kernel_dir = os.path.join(bed_dir, "kernel")
        kernel_stamp = os.path.join(bed_dir, "kernel.stamp.json")
        info = _read_json(os.path.join(kernel_dir, "kernel.json"))
        if _read_json(kernel_stamp) != kernel_key or not info:
            log(f"unpacking {os.path.basename(debs['kernel'])}")
            info = unpack_kernel(debs["kernel"], kernel_dir, wanted)
            _write_atomic(kernel_stamp, json.dumps(kernel_key) + "\n")
        busybox = os.path.join(bed_dir, "busybox")
        bb_stamp = os.path.join(bed_dir, "busybox.stamp.json")
        bb_key = {"package": packages["busybox"]}
        if _read_json(bb_stamp) != bb_key or not os.path.exists(busybox):
            log(f"unpacking {os.path.basename(debs['busybox'])}")
            with tempfile.TemporaryDirectory(dir=bed_dir, prefix=".unpack.") as tmp:
                p = _run(["dpkg-deb", "-x", debs["busybox"], tmp])
                if p.returncode != 0:
                    raise BuildError(f"dpkg-deb -x {debs['busybox']}: {p.stderr.strip()}")
                os.replace(os.path.join(tmp, "bin", "busybox"), busybox)
            _write_atomic(bb_stamp, json.dumps(bb_key) + "\n")
        images = Images(bed_dir, info, packages)
        with open(INIT_SCRIPT) as f:
            init = f.read()
        groups = images.module_groups()
        # the load order of each group, as /init reads it
        init = init.replace("@MODULE_GROUPS@", "\n".join(
            f"mods_{g}='{' '.join(f'/lib/modules/{images.release}/{p}' for p in paths)}'"
            for g, paths in sorted(groups.items())))
        all_modules = [m for names in MODULE_GROUPS.values() for m in names]
        if pack_initramfs(images.l1_initrd, init, busybox, modules=all_modules,
                          kernel_dir=kernel_dir, extra_dirs=("host", "bed", "lower", "rw")):
            log(f"packed {images.l1_initrd}")
        return images
    finally:
        os.close(fd)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    try:
        images = build(sys.argv[1], log=lambda m: print(m, file=sys.stderr))
    except ArchiveUnreachable as e:
        print(f"archive unreachable: {e}", file=sys.stderr)
        return 77
    print(json.dumps({"release": images.release, "packages": images.packages,
                      "vmlinuz": images.vmlinuz, "vmlinux": images.vmlinux,
                      "initrd": images.l1_initrd, "busybox": images.busybox,
                      "module_groups": images.module_groups()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
