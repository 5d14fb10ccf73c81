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
                           errors="replace", stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        fail(f"timed out after {timeout}s: {' '.join(cmd)}",
             (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes)
             else e.stdout)
    if p.returncode < 0:
        fail(f"killed by signal {-p.returncode}: {' '.join(cmd)}", p.stdout + p.stderr)
    if "ERROR: AddressSanitizer" in p.stderr or "runtime error:" in p.stderr:
        fail(f"sanitizer report: {' '.join(cmd)}", p.stderr)
    return p.returncode, p.stdout, p.stderr


def busy_cpus(seconds=1.0):
    """CPUs' worth of work the whole machine did over `seconds` (from /proc/stat)."""
    import time

    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])
    b0, t0 = sample()
    time.sleep(seconds)
    b1, t1 = sample()
    return (os.cpu_count() or 1) * (b1 - b0) / max(1, t1 - t0)


def wait_quiet(limit=0.25, quiet_s=3, wait_s=30):
    """Waits (at most wait_s seconds) for quiet_s seconds in a row with less than `limit`
    CPUs of work on the machine.  Returns (quiet, the last second's load): a test that needs
    a quiet machine skips with skip_busy() when it gets none."""
    import time
    give_up, quiet, seen = time.monotonic() + wait_s, 0, 0.0
    while True:
        seen = busy_cpus()
        quiet = quiet + 1 if seen < limit else 0
        if quiet >= quiet_s:
            return True, seen
        if time.monotonic() >= give_up:
            return False, seen


def skip_busy(load, what):
    skip(f"machine busy: {load:.2f} CPUs of other work; {what}")


def bzimage(version=0x020F, payload=4096, init_size=1 << 20):
    """A Linux bzImage as far as a loader looks: the setup header (boot protocol `version`,
    loaded high, 4 setup sectors) and `payload` bytes of HLT as the protected-mode kernel."""
    import struct
    setup = bytearray(5 * 512)
    setup[0x1F1] = 4
    setup[0x1FE:0x200] = b"\x55\xaa"
    setup[0x200:0x202] = b"\xeb\x66"
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = 0x01
    struct.pack_into("<I", setup, 0x214, 0x100000)
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)
    struct.pack_into("<I", setup, 0x238, 2047)
    struct.pack_into("<I", setup, 0x260, init_size)
    return bytes(setup) + b"\xf4" * payload
