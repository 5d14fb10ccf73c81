#!/usr/bin/env python3
"""Runs one guest program under lockstep-vm and checks its exit status and result line.

usage: guest_vm.py LOCKSTEP_VM GUEST_DIR PROGRAM VCPUS [CMDLINE] [key=value ...]
Each key=value after the command line must appear in the guest's 'result:' line; cpus=VCPUS
and program=PROGRAM are always checked.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402


def main():
    if len(sys.argv) < 5:
        print(__doc__)
        return 2
    vm, guest_dir, program, vcpus = sys.argv[1:5]
    cmdline = sys.argv[5] if len(sys.argv) > 5 else ""
    expect = dict(kv.split("=", 1) for kv in sys.argv[6:])
    expect.setdefault("program", program)
    expect.setdefault("cpus", vcpus)
    lt.need_kvm()
    kernel = os.path.join(guest_dir, program + ".elf")
    cmd = [vm, "--kernel", kernel, "--vcpus", vcpus, "--console", "--timeout", "60"]
    if cmdline:
        cmd += ["--cmdline", cmdline]
    status, out, err = lt.run(cmd, timeout=90)
    if status != 0:
        lt.fail(f"{program} with {vcpus} vCPUs exited with status {status}", out + err)
    res = lt.results(out)
    if not res:
        lt.fail("no 'result:' line on the console", out + err)
    last = res[-1]
    for k, v in expect.items():
        if last.get(k) != v:
            lt.fail(f"result {k}={last.get(k)!r}, expected {v!r}", out + err)
    print(out, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
