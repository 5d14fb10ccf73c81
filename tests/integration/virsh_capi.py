#!/usr/bin/env python3
"""Runs the libvirt C API test program (virsh_capi.c) against a fresh lockstepd.

usage: virsh_capi.py VIRSH_CAPI BIN_DIR GUEST_DIR

The program connects with lockstep+unix:///system?socket=PATH and drives lifecycle, vCPU
pinning, events, keepalive and overlapping calls through libvirt0; this wrapper gives it a
daemon of its own and fails on its failure, its death by a signal, or a sanitizer report.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import virsh_env as ve  # noqa: E402
from daemon_harness import check  # noqa: E402


def main():
    program = sys.argv[1]
    with ve.VirshEnv(sys.argv[2], sys.argv[3]) as env:
        d = env.daemon("--shutdown-timeout", "10")
        # libvirt0 itself is not instrumented; its one-time allocations are not ours.
        environ = dict(env.virsh_env, ASAN_OPTIONS="detect_leaks=0")
        p = subprocess.run([program, d.uri, env.guest("idle")], capture_output=True,
                           text=True, timeout=120, env=environ, errors="replace")
        print(p.stdout, end="")
        check(p.returncode == 0, f"virsh_capi exited with {p.returncode}", p.stderr)
        check("ERROR: AddressSanitizer" not in p.stderr and "runtime error:" not in p.stderr,
              "sanitizer report from virsh_capi", p.stderr)


if __name__ == "__main__":
    main()
