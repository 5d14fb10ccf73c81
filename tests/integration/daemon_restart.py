#!/usr/bin/env python3
"""lockstepd restarts: VMs outlive the daemon, and definitions outlive both.

usage: daemon_restart.py BIN_DIR GUEST_DIR

- kill -9 of the daemon while VMs run: the workers keep running; a new daemon on the same
  directories lists them again (re-attached) and controls them: vm.info (vCPU threads,
  statistics), vm.console (still growing), vcpu.pin, vm.shutdown, vm.destroy, events;
- VMs whose workers ended while no daemon watched show how they ended: a guest that exited
  (its exit file: guest-exit, status 0), one that crashed (guest-crash, 80), and a worker
  killed with no last word (worker-died);
- definitions (uuids, every field) survive a graceful restart, which also leaves VMs
  running; a corrupt stored definition, and one whose file name is not its VM's name, are
  skipped with a log line, not fatal;
- a second daemon on a run directory in use refuses to start and names the first.
"""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402


def by_name(c):
    return {v["name"]: v for v in c.result("vm.list")}


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client()
        plan = {
            "steady": "heartbeat_ms=20",  # runs throughout
            "killed": "",  # its worker is killed while no daemon runs
            "exits": "exit_after_ms=1500",  # the guest ends by itself meanwhile
            "crashes": "crash_after_ms=1500",  # the guest triple-faults meanwhile
        }
        for name, cmdline in plan.items():
            c.result("vm.define", definition=env.definition(name, "idle", cmdline))
            c.result("vm.start", name=name)
        c.result("vm.define", definition=env.definition("idle-def", "idle", vcpus=3,
                                                        on_crash="preserve", autostart=False))
        before = {n: c.result("vm.info", name=n) for n in list(plan) + ["idle-def"]}
        c.close()

        d.kill9()
        for name in plan:
            check(dh.alive(before[name]["pid"]), f"{name}'s worker survives kill -9 of "
                  "lockstepd")
        os.kill(before["killed"]["pid"], signal.SIGKILL)
        for name in ("exits", "crashes"):
            exit_file = os.path.join(d.run_dir, "vms", f"{name}.exit")
            dh.wait_for(lambda: os.path.exists(exit_file), 10, f"{name}'s exit file")
        # The workers were children of the dead daemon; init reaps them.
        dh.wait_for(lambda: not any(dh.alive(before[n]["pid"])
                                    for n in ("killed", "exits", "crashes")),
                    10, "the ended workers to go")

        d.start()
        c = d.client()
        ev = d.client()
        ev.result("events.subscribe")
        vms = by_name(c)
        check(sorted(vms) == sorted(before), "every VM is listed again", sorted(vms))
        got = {n: (v["state"], v["reason"], v["last_status"]) for n, v in vms.items()}
        want = {"steady": ("running", "re-attached", -1),
                "killed": ("crashed", "worker-died", -1),
                "exits": ("shutoff", "guest-exit", 0),
                "crashes": ("crashed", "guest-crash", 80),
                "idle-def": ("shutoff", "defined", -1)}
        check(got == want, "states after the restart", got, want)
        check(vms["steady"]["pid"] == before["steady"]["pid"] and
              vms["steady"]["id"] == before["steady"]["id"], "the same worker and id",
              vms["steady"])
        for n, v in vms.items():
            check(v["uuid"] == before[n]["uuid"], "uuids survive", v)
        ok("kill -9 of lockstepd: running VMs re-attached, ended ones show how they ended")

        info = c.result("vm.info", name="steady")
        pid = info["pid"]
        check([v["tid"] for v in info["vcpu"]] == [v["tid"] for v in before["steady"]["vcpu"]]
              and info["stats"]["run_ms"] > before["steady"]["stats"]["run_ms"],
              "vm.info of a re-attached VM: same vCPU threads, fresh statistics", info)
        size = c.result("vm.console", name="steady", max=0)["size"]
        dh.wait_for(lambda: c.result("vm.console", name="steady", max=0)["size"] > size, 5,
                    "the re-attached VM's console to grow")
        r = c.result("vcpu.pin", name="steady", vcpu=1, cpus="0")
        check(r["live"] and dh.status_field(pid, "Cpus_allowed_list", info["vcpu"][1]["tid"])
              == "0", "vcpu.pin on a re-attached VM", r)
        s = c.result("vm.shutdown", name="steady", timeout=20)
        check((s["state"], s["reason"], s["last_status"]) == ("shutoff", "guest-poweroff", 0),
              "vm.shutdown of a re-attached VM", s)
        check([(e["params"]["event"], e["params"]["reason"]) for e in
               (ev.notification(5, "event"), ev.notification(5, "event"))] ==
              [("stopping", "shutdown"), ("stopped", "guest-poweroff")], "its events")
        dh.wait_for(lambda: not dh.alive(pid), 5, "the re-attached worker to exit")
        c.result("vm.start", name="steady")
        ok("a re-attached VM is controllable: info, console, pin, shutdown, events")

        # A second restart, by the book this time (SIGTERM), then one more kill -9 with a
        # re-attached (not child) worker destroyed by the third daemon.
        d.stop()
        check(dh.alive(recorded_pid(d, "steady")),
              "SIGTERM leaves VMs running")
        d.start()
        c = d.client()
        vms = by_name(c)
        check(vms["steady"]["state"] == "running" and vms["steady"]["reason"] == "re-attached",
              "re-attached after a graceful restart", vms["steady"])
        for n in before:
            want_def = dict(before[n]["definition"])
            check(c.result("vm.info", name=n)["definition"] == want_def,
                  f"{n}'s definition survives restarts", want_def)
        pid = vms["steady"]["pid"]
        s = c.result("vm.destroy", name="steady")
        check((s["state"], s["reason"]) == ("shutoff", "destroyed") and not dh.alive(pid),
              "vm.destroy of a re-attached VM", s)
        ok("definitions survive a restart; SIGTERM leaves VMs running")

        # Corrupt stored definitions are skipped, not fatal.
        d.stop()
        vms_dir = os.path.join(d.state_dir, "vms")
        with open(os.path.join(vms_dir, "broken.json"), "w") as f:
            f.write('{"name": "broken", "vcpus": ')
        with open(os.path.join(vms_dir, "alias.json"), "w") as f:
            json.dump(env.definition("other", "idle"), f)
        with open(os.path.join(vms_dir, "typo.json"), "w") as f:
            json.dump(env.definition("typo", "idle", vpcus=2), f)
        d.start()
        c = d.client()
        check(sorted(by_name(c)) == sorted(before), "the good definitions load", by_name(c))
        log = d.log()
        for needle in (f"skipping a stored definition: {vms_dir}/broken.json",
                       f'{vms_dir}/alias.json: defines VM "other", not "alias"',
                       'unknown key "vpcus"'):
            check(needle in log, f"the log names the bad file: {needle}", log)
        ok("corrupt stored definitions are skipped with a log line")

        # One daemon per run directory.
        p = subprocess.run([env.lockstepd, "--foreground", "--run-dir", d.run_dir,
                            "--state-dir", d.state_dir], capture_output=True, text=True,
                           timeout=30)
        check(p.returncode == 1 and f"another lockstepd (pid {d.pid}) serves {d.run_dir}"
              in p.stderr, "a second daemon refuses the same run directory", p.stderr)
        check(c.result("daemon.info")["pid"] == d.pid, "the first one still serves")
        ok("a second lockstepd on the same run directory refuses to start")


def recorded_pid(d, name):
    """The pid a VM's runtime record names (the daemon is down, so read it directly)."""
    with open(os.path.join(d.run_dir, "vms", f"{name}.run")) as f:
        return json.load(f)["pid"]


if __name__ == "__main__":
    main()
