"""Shared helpers for lockstep's integration tests (Python 3 standard library only).

Tests run real binaries: lockstep-vm on /dev/kvm, QEMU, and later lockstepd with real
sockets.  Exit code 77 tells ctest a test was skipped because the machine lacks something
(no /dev/kvm, no QEMU); everything else is a pass (0) or a failure (1).
"""
import os
import re
import subprocess
import sys

SKIP = 77


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def fail(why, output=None):
    print(f"FAIL: {why}")
    if output:
        print("---- output ----")
        print(output)
    sys.exit(1)


def need_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not available")


def results(text):
    """Every 'result: k=v k=v' line of a guest's console, as a list of dicts."""
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*result:\s*(.*)$", line)
        if m:
            out.append(dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv))
    return out


def run(cmd, timeout=120, env=None):
    """Runs a command; returns (status, stdout, stderr).  A signal death is a failure here:
    nothing a guest or an input does may crash a lockstep process."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                           errors="replace")
    except subprocess.TimeoutExpired as e:
        fail(f"timed out after {timeout}s: {' '.join(cmd)}",
             (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes)
             else e.stdout)
    if p.returncode < 0:
        fail(f"killed by signal {-p.returncode}: {' '.join(cmd)}", p.stdout + p.stderr)
    if "ERROR: AddressSanitizer" in p.stderr or "runtime error:" in p.stderr:
        fail(f"sanitizer report: {' '.join(cmd)}", p.stderr)
    return p.returncode, p.stdout, p.stderr
