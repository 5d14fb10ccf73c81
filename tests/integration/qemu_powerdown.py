#!/usr/bin/env python3
"""The idle guest under QEMU: QMP system_powerdown presses QEMU's ACPI power button, the
guest answers with ACPI soft-off, and QEMU exits 0 -- the same image and the same runtime code
as under lockstep-vm, against QEMU's own FADT, DSDT and PM registers.

usage: qemu_powerdown.py GUEST_DIR MACHINE CPUS
MACHINE is a QEMU machine type (pc, q35).  Environment: QEMU (default qemu-system-x86_64),
QEMU_ACCEL (default tcg).  Exit 77 (skipped) when QEMU is not installed.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402

READY_TIMEOUT = 60
STOP_TIMEOUT = 30


def qmp_command(path, command):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        f = s.makefile("rw")
        f.readline()  # greeting
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}) + "\n")
            f.flush()
            while True:  # skip events until the command's answer
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
            if "error" in reply:
                lt.fail(f"QMP {cmd}: {reply['error']}")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    guest_dir, machine, cpus = sys.argv[1:4]
    qemu = os.environ.get("QEMU", "qemu-system-x86_64")
    if not shutil.which(qemu):
        lt.skip(f"{qemu} not found")
    with tempfile.TemporaryDirectory(prefix="qemu_powerdown.") as tmp:
        qmp = os.path.join(tmp, "qmp.sock")
        serial = os.path.join(tmp, "serial.log")
        cmd = [qemu, "-M", machine, "-accel", os.environ.get("QEMU_ACCEL", "tcg"), "-cpu", "max",
               "-smp", cpus, "-m", "128", "-nodefaults", "-display", "none", "-no-reboot",
               "-kernel", os.path.join(guest_dir, "idle.elf"),
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-serial", "file:" + serial,
               "-qmp", f"unix:{qmp},server=on,wait=off"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        console = ""
        deadline = time.monotonic() + READY_TIMEOUT
        while "idle: ready" not in console:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                lt.fail("no 'idle: ready' line", console + proc.communicate()[0])
            time.sleep(0.1)
            if os.path.exists(serial):
                with open(serial, errors="replace") as f:
                    console = f.read()
        if "power_button=acpi" not in console:
            proc.kill()
            lt.fail("the guest found no ACPI power button", console)
        qmp_command(qmp, "system_powerdown")
        try:
            out = proc.communicate(timeout=STOP_TIMEOUT)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
            lt.fail(f"QEMU did not stop within {STOP_TIMEOUT}s of system_powerdown",
                    console + out)
        with open(serial, errors="replace") as f:
            console = f.read()
        if proc.returncode != 0:
            lt.fail(f"QEMU exited with status {proc.returncode}, expected 0 (soft-off)",
                    console + out)
        if "idle: power button" not in console:
            lt.fail("no 'idle: power button' line", console + out)
    print(console, end="")
    print(f"PASS: idle powered off on QMP system_powerdown ({machine}, {cpus} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
