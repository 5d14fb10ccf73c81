#!/usr/bin/env python3
"""A worker that makes a system call outside its seccomp allow-list ends, and lockstepd says so.

usage: daemon_seccomp.py BIN_DIR GUEST_DIR

No guest can make the worker do that (that is the point of the lists), so the workers' test
hook (built with LOCKSTEP_TEST_HOOKS) does it on request: LOCKSTEP_TEST_SECCOMP_TRAP names
the VMs whose control thread, first vCPU thread (":vcpu"), device thread (":devices") or
steering thread (":irq-steer") calls getpgrp() once confined.
  - each such VM fails to start (the device and steering threads race the worker's hello: the
    VM may run first); it is `crashed` with reason "seccomp: getpgrp" and exit status 159
    (128 + SIGSYS), and a `crashed` event says so;
  - the worker's exit file holds {"reason": "seccomp", "syscall": 111 (getpgrp on x86-64)};
  - a VM the hook does not name runs on, in the same daemon, meanwhile;
  - with on_crash=restart the VM is restarted (and trips again), like any crash.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402
from daemon_crash import Events  # noqa: E402

GETPGRP = 111  # x86-64


def main():
    os.environ["LOCKSTEP_TEST_SECCOMP_TRAP"] = ("trap-control,trap-vcpu:vcpu,"
                                                "trap-devices:devices,trap-steer:irq-steer,"
                                                "trap-again:vcpu")
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client()
        ev = Events(d.client())
        c.result("vm.define", definition=env.definition("calm", "idle", "heartbeat_ms=20"))
        c.result("vm.start", name="calm")
        ev.next("calm", 3)
        for name in ("trap-control", "trap-vcpu", "trap-devices", "trap-steer"):
            c.result("vm.define", definition=env.definition(name, "idle", "heartbeat_ms=20"))
            r = c.request("vm.start", {"name": name})
            if name in ("trap-control", "trap-vcpu"):
                # Before the worker's hello: the start itself fails.
                check("error" in r and r["error"]["code"] == dh.BAD_STATE and
                      f"VM {name} did not start: seccomp: getpgrp (exit status 159)" in
                      r["error"]["message"], f"{name}: the start fails naming the system call",
                      r)
                want = [("defined", "shutoff", "defined"), ("starting", "starting", "starting"),
                        ("crashed", "crashed", "seccomp: getpgrp")]
            else:
                # The device and steering threads race the hello: the start fails, or the VM
                # runs and crashes at once.
                started = "result" in r
                check(started or (r["error"]["code"] == dh.BAD_STATE and
                                  "seccomp: getpgrp (exit status 159)" in r["error"]["message"]),
                      f"{name}: the start fails naming the system call, or succeeds", r)
                want = [("defined", "shutoff", "defined"), ("starting", "starting", "starting")]
                want += [("started", "running", "booted")] if started else []
                want += [("crashed", "crashed", "seccomp: getpgrp")]
            got = ev.next(name, len(want))
            check(got == want, f"{name}: a crashed event with the reason", got, want)
            info = c.result("vm.info", name=name)
            check((info["state"], info["reason"], info["last_status"], info["pid"]) ==
                  ("crashed", "seccomp: getpgrp", 159, 0), f"{name} is crashed", info)
            with open(os.path.join(d.run_dir, "vms", f"{name}.exit")) as f:
                rec = json.load(f)
            check(rec == {"reason": "seccomp", "syscall": GETPGRP, "status": 159},
                  f"{name}: the exit file", rec)
            with open(os.path.join(d.run_dir, "vms", f"{name}.log")) as f:
                check(f"seccomp: system call {GETPGRP} is not allowed" in f.read(),
                      f"{name}: the worker's last words")
        check(c.result("vm.info", name="calm")["state"] == "running", "calm runs on")
        ok("a forbidden system call (control, vCPU, device and steering threads): crashed, "
           "'seccomp: getpgrp', status 159, event, exit file; other VMs unaffected")

        c.result("vm.define", definition=env.definition("trap-again", "idle",
                                                        on_crash="restart"))
        c.error("vm.start", {"name": "trap-again"}, dh.BAD_STATE)
        got = ev.next("trap-again", 12)
        check(got[3:6] == [("starting", "starting", "starting"),
                           ("restarted", "starting", "starting"),
                           ("crashed", "crashed", "seccomp: getpgrp")] and
              got.count(("restarted", "starting", "starting")) == 3 and
              got[-1] == ("crashed", "crashed", "seccomp: getpgrp"),
              "on_crash=restart restarts a VM its seccomp filter stopped (three times)", got)
        c.result("vm.destroy", name="calm")
        ok("on_crash=restart applies to a seccomp stop as to any crash")


if __name__ == "__main__":
    main()
