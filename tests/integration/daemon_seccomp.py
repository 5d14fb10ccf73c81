#!/usr/bin/env python3
"""A worker that makes a system call outside its seccomp allow-list ends, and lockstepd says so.

usage: daemon_seccomp.py BIN_DIR GUEST_DIR

No guest can make the worker do that (that is the point of the lists), so the workers' test
hook (built with LOCKSTEP_TEST_HOOKS) does it on request: LOCKSTEP_TEST_SECCOMP_TRAP names
the VMs whose control thread, first vCPU thread (":vcpu"), device thread (":devices") or
steering thread (":irq-steer") calls getpgrp() once confined.
  - a VM whose control or vCPU thread trips fails to start: it is `failed` (nothing ran, so
    on_crash does not apply) with reason "seccomp: getpgrp" and exit status 159 (128 +
    SIGSYS), the start's error names the call, and a `failed` event says so; the device and
    steering threads race the worker's hello, so such a VM fails to start or runs and is
    `crashed` at once, with the same reason;
  - the worker's exit file holds {"reason": "seccomp", "syscall": 111 (getpgrp on x86-64)};
  - a VM the hook does not name runs on, in the same daemon, meanwhile;
  - with on_crash=restart a VM that ran is restarted (and trips again), like any crash.
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
                        ("failed", "failed", "seccomp: getpgrp")]
            else:
                # The device and steering threads race the hello: the start fails, or the VM
                # runs and crashes at once.
                started = "result" in r
                check(started or (r["error"]["code"] == dh.BAD_STATE and
                                  "seccomp: getpgrp (exit status 159)" in r["error"]["message"]),
                      f"{name}: the start fails naming the system call, or succeeds", r)
                want = [("defined", "shutoff", "defined"), ("starting", "starting", "starting")]
                want += [("started", "running", "booted")] if started else []
                want += [("crashed", "crashed", "seccomp: getpgrp") if started else
                         ("failed", "failed", "seccomp: getpgrp")]
            got = ev.next(name, len(want))
            check(got == want, f"{name}: a crashed or failed event with the reason", got, want)
            info = c.result("vm.info", name=name)
            check((info["state"], info["reason"], info["last_status"], info["pid"]) ==
                  (want[-1][1], "seccomp: getpgrp", 159, 0), f"{name} is {want[-1][1]}", info)
            with open(os.path.join(d.run_dir, "vms", f"{name}.exit")) as f:
                rec = json.load(f)
            check(rec == {"reason": "seccomp", "syscall": GETPGRP, "status": 159},
                  f"{name}: the exit file", rec)
            with open(os.path.join(d.run_dir, "vms", f"{name}.log")) as f:
                check(f"seccomp: system call {GETPGRP} is not allowed" in f.read(),
                      f"{name}: the worker's last words")
        check(c.result("vm.info", name="calm")["state"] == "running", "calm runs on")
        ok("a forbidden system call (control, vCPU, device and steering threads): failed or "
           "crashed, 'seccomp: getpgrp', status 159, event, exit file; other VMs unaffected")

        c.result("vm.define", definition=env.definition("trap-again", "idle",
                                                        on_crash="restart"))
        c.error("vm.start", {"name": "trap-again"}, dh.BAD_STATE)
        got = ev.next("trap-again", 3)
        check(got == [("defined", "shutoff", "defined"), ("starting", "starting", "starting"),
                      ("failed", "failed", "seccomp: getpgrp")],
              "a VM its seccomp filter stopped before it ran is failed", got)
        check(ev.quiet("trap-again", 1.5) and
              c.result("vm.info", name="trap-again")["state"] == "failed",
              "on_crash=restart does not restart a start that failed",
              ev.pending.get("trap-again"))
        c.result("vm.destroy", name="calm")
        ok("on_crash=restart does not apply to a start its seccomp filter stopped")


if __name__ == "__main__":
    main()
