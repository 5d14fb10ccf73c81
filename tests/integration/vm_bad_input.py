#!/usr/bin/env python3
"""Bad input to lockstep-vm gets a clear error and a documented exit status, never a crash.

usage: vm_bad_input.py LOCKSTEP_VM GUEST_DIR
Cases: truncated ELF (header, program headers, segment data), no multiboot header, a kernel
larger than memory, 0 and 1000 vCPUs (flag and definition), unknown definition keys, syntax
errors, missing files, an unwritable serial log, bad sizes and an over-long command line;
Linux kernels: an initrd for a multiboot image, a missing initrd, a bzImage of too old a boot
protocol or too large for the VM, an ELF file with neither a multiboot header nor a PVH note.
Each refusal also leaves its exit file (--exit-file): reason "error" and the exit status, what
lockstepd reads to say why a start failed.
"""
import json
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402

EX_USAGE, EX_CONFIG, EX_NOINPUT = 64, 65, 66


def flat_multiboot(load_size, bss_size):
    """A flat (a.out kludge) multiboot image loading at 1 MiB."""
    magic, flags = 0x1BADB002, 0x00010003
    load = 0x100000
    hdr = struct.pack("<IIIIIIII", magic, flags, (-(magic + flags)) & 0xFFFFFFFF,
                      load, load, load + load_size, load + load_size + bss_size, load + 32)
    body = hdr + b"\xf4" * (load_size - len(hdr))  # hlt
    return body


def main():
    vm, guest_dir = sys.argv[1:3]
    lt.need_kvm()
    hello = os.path.join(guest_dir, "hello.elf")
    image = open(hello, "rb").read()
    tmp = tempfile.mkdtemp(prefix="lockstep-badinput-")

    def write(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    def definition(name, **fields):
        d = {"name": "bad", "vcpus": 2, "kernel": hello}
        d.update(fields)
        return write(name, json.dumps(d))

    phoff = struct.unpack_from("<I", image, 28)[0]
    cases = [
        # (description, extra args, expected status, expected stderr substring)
        ("ELF cut inside its header", ["--kernel", write("cut1.elf", image[:30])],
         EX_CONFIG, "truncated ELF header"),
        ("ELF cut inside its program headers",
         ["--kernel", write("cut2.elf", image[:phoff + 10])], EX_CONFIG,
         "program headers lie past the end of the file"),
        ("ELF cut inside segment data",
         ["--kernel", write("cut3.elf", image[:len(image) // 2])], EX_CONFIG,
         "past the end of the file"),
        ("no multiboot header", ["--kernel", write("zeros.bin", b"\0" * 65536)], EX_CONFIG,
         "no multiboot header"),
        ("kernel larger than memory",
         ["--memory", "4", "--kernel", write("big.bin", flat_multiboot(6 << 20, 0))],
         EX_CONFIG, "outside the VM's 4 MiB of RAM"),
        ("bss larger than memory",
         ["--memory", "8", "--kernel", write("bss.bin", flat_multiboot(4096, 64 << 20))],
         EX_CONFIG, "give the VM more memory"),
        ("0 vCPUs (flag)", ["--kernel", hello, "--vcpus", "0"], EX_USAGE,
         "--vcpus must be between 1 and 254"),
        ("1000 vCPUs (flag)", ["--kernel", hello, "--vcpus", "1000"], EX_USAGE,
         "--vcpus must be between 1 and 254"),
        ("0 vCPUs (definition)", ["--config", definition("v0.json", vcpus=0)], EX_CONFIG,
         '"vcpus" must be between 1 and 254'),
        ("1000 vCPUs (definition)", ["--config", definition("v1000.json", vcpus=1000)],
         EX_CONFIG, '"vcpus" must be between 1 and 254'),
        ("unknown top-level key", ["--config", definition("k1.json", vpcus=2)], EX_CONFIG,
         'unknown key "vpcus"'),
        ("unknown nested key",
         ["--config", definition("k2.json", sched={"polcy": "gang"})], EX_CONFIG,
         'unknown key "sched.polcy"'),
        ("wrong type", ["--config", definition("t.json", vcpus="four")], EX_CONFIG,
         '"vcpus" must be an integer'),
        ("JSON syntax error", ["--config", write("syntax.json", '{"name": "x",\n "vcpus": }')],
         EX_CONFIG, "line 2"),
        ("missing kernel file", ["--kernel", os.path.join(tmp, "nope.elf")], EX_NOINPUT,
         "No such file"),
        ("missing definition file", ["--config", os.path.join(tmp, "nope.json")], EX_NOINPUT,
         "No such file"),
        ("kernel is a directory", ["--kernel", tmp], EX_NOINPUT, "Is a directory"),
        ("serial log in a missing directory",
         ["--kernel", hello, "--serial-log", os.path.join(tmp, "no", "such", "log")],
         EX_NOINPUT, "serial.log"),
        ("memory below the minimum", ["--kernel", hello, "--memory", "1"], EX_USAGE,
         "--memory must be"),
        ("memory with a bad unit", ["--kernel", hello, "--memory", "12Q"], EX_USAGE,
         "--memory must be"),
        ("command line too long", ["--kernel", hello, "--cmdline", "x" * 5000], EX_USAGE,
         "--cmdline is longer than 4095"),
        ("no kernel at all", [], EX_USAGE, "no kernel"),
        ("an initrd for a multiboot image",
         ["--kernel", hello, "--initrd", write("i.cpio", b"070701")], EX_CONFIG,
         "multiboot image and takes no initrd"),
        ("a missing initrd", ["--kernel", write("bz", lt.bzimage()), "--initrd",
                              os.path.join(tmp, "nope.cpio")], EX_NOINPUT, "initrd"),
        ("boot protocol 2.04", ["--kernel", write("old.bz", lt.bzimage(0x0204))], EX_CONFIG,
         "boot protocol 2.04; lockstep needs 2.06"),
        ("a bzImage that unpacks beyond RAM",
         ["--memory", "8", "--kernel", write("big.bz", lt.bzimage(init_size=64 << 20))], EX_CONFIG,
         "give the VM more memory"),
        ("an ELF with no multiboot header or PVH note",
         ["--kernel", write("plain.elf", image.replace(struct.pack("<I", 0x1BADB002),
                                                       b"\0\0\0\0"))], EX_CONFIG,
         "no PVH entry note"),
        ("unknown flag", ["--kernel", hello, "--frobnicate"], EX_USAGE, "usage:"),
    ]
    failures = 0
    exit_file = os.path.join(tmp, "exit.json")
    for desc, args, want_status, want_text in cases:
        if os.path.exists(exit_file):
            os.unlink(exit_file)
        status, out, err = lt.run([vm, "--exit-file", exit_file, "--timeout", "30"] + args,
                                  timeout=60)
        try:
            with open(exit_file) as f:
                said = json.load(f)
        except (OSError, ValueError) as e:
            said = repr(e)
        want_said = {"reason": "error", "status": want_status}
        ok = status == want_status and want_text in err and said == want_said
        print(f"{'ok  ' if ok else 'FAIL'} {desc}: status {status} (want {want_status})")
        if not ok:
            failures += 1
            print(f"     wanted stderr to contain {want_text!r}; got:\n{err.strip()}")
            print(f"     wanted the exit file to say {want_said}; it says {said}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
