#!/usr/bin/env python3
"""The idle guest's ways of ending under lockstep-vm.

usage: vm_idle.py LOCKSTEP_VM GUEST_DIR CASE VCPUS
CASE is one of:
  exit        exit_after_ms with heartbeats: exit 0, reason guest-exit, every heartbeat printed
  powerdown   the power button through the control socket ("powerdown", what lockstepd's
              vm.shutdown sends): 'idle: power button', exit 0, reason guest-poweroff
  crash       crash_after_ms: a triple fault, exit 80, reason guest-crash
  reset       reset_after_ms: port 0xCF9, exit 0, reason guest-reset
  ignored     ignore_power=1: the power button is acknowledged and ignored ('idle: power
              button ignored'), the VM runs on until a "stop" request: exit 0, reason requested
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402

READY_TIMEOUT = 30
STOP_TIMEOUT = 30

CASES = {
    # case: (cmdline, expected status, expected reason, console lines that must appear)
    "exit": ("exit_after_ms=400 heartbeat_ms=100", 0, "guest-exit",
             ["idle: heartbeat 1", "idle: heartbeat 3"]),
    "powerdown": ("", 0, "guest-poweroff", ["idle: power button"]),
    "crash": ("crash_after_ms=100", 80, "guest-crash", ["idle: crash"]),
    "reset": ("reset_after_ms=100", 0, "guest-reset", ["idle: reset"]),
    "ignored": ("ignore_power=1", 0, "requested", ["idle: power button ignored"]),
}


def wait_ready(proc, lines):
    """Reads the console until the ready line; returns False if the VM ended first."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return False
        lines.append(line)
        if line.startswith("idle: ready"):
            return True
    return False


def wait_line(proc, lines, want):
    """Reads the console until a line that starts with `want`; False if the VM ended first."""
    while True:
        line = proc.stdout.readline()
        if not line:
            return False
        lines.append(line)
        if line.startswith(want):
            return True


def request(path, cmd):
    """Sends one control request (what lockstepd sends) and waits for its reply."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(json.dumps({"id": 1, "cmd": cmd}).encode() + b"\n")
        replies = s.makefile()
        reply = {}
        while reply.get("id") != 1:  # events ("hello") come first
            line = replies.readline()
            if not line:
                lt.fail(f"the control socket closed before the {cmd} reply")
            reply = json.loads(line)
    if "result" not in reply:
        lt.fail(f"{cmd} request failed: {reply}")


def main():
    if len(sys.argv) != 5 or sys.argv[3] not in CASES:
        print(__doc__)
        return 2
    vm, guest_dir, case, vcpus = sys.argv[1:5]
    cmdline, want_status, want_reason, want_lines = CASES[case]
    lt.need_kvm()
    with tempfile.TemporaryDirectory(prefix="vm_idle.") as tmp:
        ctl = os.path.join(tmp, "ctl.sock")
        exit_file = os.path.join(tmp, "exit.json")
        cmd = [vm, "--kernel", os.path.join(guest_dir, "idle.elf"), "--vcpus", vcpus,
               "--console", "--timeout", "60", "--control-socket", ctl,
               "--exit-file", exit_file]
        if cmdline:
            cmd += ["--cmdline", cmdline]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace")
        lines = []
        try:
            if not wait_ready(proc, lines):
                proc.kill()
                lt.fail("no 'idle: ready' line", "".join(lines) + proc.stderr.read())
            if not lines[-1].startswith(f"idle: ready cpus={vcpus} "):
                lt.fail(f"ready line says {lines[-1].strip()!r}", "".join(lines))
            if case in ("powerdown", "ignored"):
                request(ctl, "powerdown")
            if case == "ignored":
                # The guest saw the press and runs on; only a stop request ends it.
                if not wait_line(proc, lines, "idle: power button ignored"):
                    lt.fail("the VM ended instead of ignoring the power button",
                            "".join(lines) + proc.stderr.read())
                request(ctl, "stop")
            out, err = proc.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            lt.fail(f"the VM did not stop within {STOP_TIMEOUT}s", "".join(lines) + out + err)
        console = "".join(lines) + out
        if proc.returncode < 0:
            lt.fail(f"lockstep-vm killed by signal {-proc.returncode}", console + err)
        if proc.returncode != want_status:
            lt.fail(f"exit status {proc.returncode}, expected {want_status}", console + err)
        with open(exit_file) as f:
            reason = json.load(f).get("reason")
        if reason != want_reason:
            lt.fail(f"stop reason {reason!r}, expected {want_reason!r}", console + err)
        for want in want_lines:
            if want not in console:
                lt.fail(f"no {want!r} on the console", console + err)
    print(console, end="")
    print(f"PASS: idle/{case} with {vcpus} vCPUs: status {want_status}, {want_reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
