"""Reading a Linux kernel package's files, for the test bed (bed_image.py; stdlib only):
module metadata (.modinfo), modules.dep written from it and read back, module load orders,
the vmlinux inside a bzImage and its PVH entry note.  Pure functions of the files they are
given; nothing here downloads or runs anything.
"""
import lzma
import os
import struct
import zlib


class KernelFileError(Exception):
    pass


def _write_atomic(path, data):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def modinfo(path):
    """The key=value strings of a module's .modinfo section (ELF64 little-endian)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise KernelFileError(f"{path}: not an ELF64 little-endian module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    names = sections[shstrndx][4]
    for name_off, _, _, _, off, size, *_ in sections:
        end = data.index(b"\0", names + name_off)
        if data[names + name_off:end] == b".modinfo":
            return [s.decode(errors="replace") for s in data[off:off + size].split(b"\0") if s]
    return []


def module_name(path):
    base = os.path.basename(path)
    return base[:base.index(".ko")].replace("-", "_")


def write_modules_dep(moddir):
    """Writes moddir/modules.dep and modules.softdep (depmod's formats) from the modules'
    own .modinfo; returns the number of modules."""
    paths = {}
    for root, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if f.endswith(".ko"):
                rel = os.path.relpath(os.path.join(root, f), moddir)
                paths[module_name(f)] = rel
    deps, soft = [], []
    for name, rel in sorted(paths.items(), key=lambda kv: kv[1]):
        info = modinfo(os.path.join(moddir, rel))
        direct = []
        for entry in info:
            key, _, value = entry.partition("=")
            if key == "depends":
                direct += [d.replace("-", "_") for d in value.split(",") if d]
            elif key == "softdep":
                soft.append(f"softdep {name} {value}")
        # depmod lists every module a module needs, nearest first
        closure, todo = [], list(direct)
        while todo:
            d = todo.pop(0)
            if d in closure or d not in paths:
                continue
            closure.append(d)
            todo += [e.replace("-", "_") for entry in modinfo(os.path.join(moddir, paths[d]))
                     if entry.startswith("depends=")
                     for e in entry[len("depends="):].split(",") if e]
        deps.append(f"{rel}: " + " ".join(paths[d] for d in closure))
    _write_atomic(os.path.join(moddir, "modules.dep"), "\n".join(deps) + "\n")
    _write_atomic(os.path.join(moddir, "modules.softdep"), "\n".join(soft) + "\n")
    return len(paths)


def read_modules_dep(moddir):
    """{name: (path, [dependency names])} and {name: (pre names, post names)} from
    modules.dep and modules.softdep."""
    mods = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            if ":" not in line:
                continue
            path, _, rest = line.partition(":")
            mods[module_name(path)] = (path.strip(), [module_name(d) for d in rest.split()])
    softdeps = {}
    try:
        with open(os.path.join(moddir, "modules.softdep")) as f:
            for line in f:
                words = line.split()
                if len(words) < 2 or words[0] != "softdep":
                    continue
                pre, post, where = [], [], None
                for w in words[2:]:
                    if w in ("pre:", "post:"):
                        where = pre if w == "pre:" else post
                    elif where is not None:
                        where.append(w.replace("-", "_"))
                softdeps[words[1].replace("-", "_")] = (pre, post)
    except FileNotFoundError:
        pass
    return mods, softdeps


def load_order(moddir, names):
    """The module paths (relative to moddir) to insmod, in order, so that `names` and
    everything they need are loaded, each after its dependencies; soft dependencies that
    exist here are loaded with them (pre before, post after)."""
    mods, softdeps = read_modules_dep(moddir)
    order, visiting = [], set()

    def visit(name, required):
        name = name.replace("-", "_")
        if name not in mods:
            if required:
                raise KernelFileError(f"module {name} is not in {moddir}/modules.dep")
            return
        if mods[name][0] in order or name in visiting:
            return
        visiting.add(name)
        pre, post = softdeps.get(name, ([], []))
        for d in pre:
            visit(d, False)
        # modules.dep lists the nearest dependencies first: load the farthest first
        for d in reversed(mods[name][1]):
            visit(d, True)
        order.append(mods[name][0])
        for d in post:
            visit(d, False)

    for n in names:
        visit(n, True)
    return order


def extract_vmlinux(vmlinuz):
    """The uncompressed ELF kernel inside a bzImage (the xz- or gzip-compressed payload,
    found by its magic as the kernel's scripts/extract-vmlinux does), or None."""
    with open(vmlinuz, "rb") as f:
        data = f.read()
    for magic, make in ((b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)),
                        (b"\x1f\x8b\x08", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))):
        at = data.find(magic)
        while at >= 0:
            try:
                out = make().decompress(data[at:])
                if out[:4] == b"\x7fELF":
                    return out
            except (lzma.LZMAError, zlib.error, EOFError):
                pass
            at = data.find(magic, at + 1)
    return None


def has_pvh_note(elf):
    """Whether an ELF64 kernel has the Xen PHYS32_ENTRY note QEMU boots through (PVH)."""
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        ptype, _, off, _, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", elf,
                                                               phoff + i * phentsize)
        if ptype != 4:  # PT_NOTE
            continue
        pos, end = off, off + filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:  # XEN_ELFNOTE_PHYS32_ENTRY
                return True
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False
