#!/usr/bin/env python3
"""What an operator sees of lockstepd: failed starts, the running and the stored definition,
consoles and logs kept across runs, and what a daemon restart keeps.

usage: daemon_ops.py BIN_DIR GUEST_DIR

- define checks the kernel: a missing file, a directory, a file that boots nothing are
  refused then, naming "kernel" and why;
- a start whose worker ends before the VM ran leaves the VM failed (not crashed), quotes the
  worker's own error line (in the call's error, vm.info's error, the failed event), and
  on_crash=restart does not apply;
- while a VM runs it keeps the definition it was started with: a redefinition is stored,
  reported as pending (vm.define, vm.info, vm.list, sched.get), and applies at the next start
  (not at a vm.reboot); sched.set changes the running VM and echoes every setting;
- a restarted daemon keeps the live scheduling of running VMs (and the pending difference)
  and the state, reason and error of VMs that do not run;
- consoles and worker logs are appended run after run behind start markers, and moved aside
  past their bounds: vm.console reads the current run by default, `all` every run, `lines`
  the last lines; a follower gets console.end when the VM stops; the daemon's log lines
  carry the time;
- every event has its time; vm.autostart; vm.list refuses an unknown state; vm.define takes
  libvirt domain XML.
"""
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d lockstepd: ")


class Events:
    """A subscribed connection's events, kept per VM."""

    def __init__(self, client):
        self.c = client
        self.c.result("events.subscribe")
        self.seen = {}

    def next(self, vm, count, timeout=20):
        q = self.seen.setdefault(vm, [])
        while len(q) < count:
            n = self.c.notification(timeout=timeout, method="event")
            check(n is not None, f"only {len(q)} of {count} events for {vm}", q)
            self.seen.setdefault(n["params"]["vm"], []).append(n["params"])
        out, q[:] = q[:count], q[count:]
        return out


def kernel_checks(env, c):
    base = env.definition("k", "idle")
    # Beneath the allowed directory, as the worker opens them (docs/security.md).
    missing, folder, text = (os.path.join(env.images, n) for n in ("gone.elf", "dir", "text"))
    os.mkdir(folder, 0o755)
    with open(text, "w") as f:
        f.write("not a kernel\n")
    os.chmod(text, 0o644)
    for kernel, why in ((missing, ": No such file or directory"),
                        (folder, " is not a regular file"),
                        (text, " is not a bootable image: lockstep boots multiboot v1 images (a "
                               "header in the first 8 KiB), Linux bzImages and vmlinux files "
                               "with a PVH entry")):
        e = c.error("vm.define", {"definition": dict(base, kernel=kernel)}, dh.BAD_DEFINITION)
        check(e["message"] == f'"kernel": {kernel}{why}', "define names the kernel and why", e)
    e = c.error("vm.define", {"definition": dict(base, kernel="/etc/hostname")}, dh.PERMISSION)
    check(e["message"].startswith('"kernel": "/etc/hostname" is not beneath a directory '
                                  "lockstepd allows"), "a kernel outside them: the rule", e)
    check(c.result("vm.list") == [], "nothing was defined")
    ok("vm.define checks the kernel: missing, not a file, not bootable (outside the allowed "
       "directories: refused by that rule first)")


def failed_start(env, c, ev):
    kernel = os.path.join(env.images, "gone.elf")
    shutil.copy(env.guest("idle"), kernel)
    c.result("vm.define", definition=env.definition("gone", "idle", kernel=kernel,
                                                    on_crash="restart"))
    os.remove(kernel)
    line = (f'lockstep-vm[gone]: error: "kernel": {kernel}: No such file or directory '
            "(opened as user lockstep-vm)")
    e = c.error("vm.start", {"name": "gone"}, dh.BAD_STATE)
    check(e["message"].startswith(f"VM gone did not start: {line} (exit status 66)"),
          "the failed start quotes the worker's own error line", e)
    info = c.result("vm.info", name="gone")
    check((info["state"], info["reason"], info["error"], info["pid"]) ==
          ("failed", "error", line, 0), "the VM is failed, not crashed", info)
    got = ev.next("gone", 3)
    check([(g["event"], g["state"]) for g in got] == [("defined", "shutoff"),
                                                      ("starting", "starting"),
                                                      ("failed", "failed")] and
          got[2]["error"] == line, "events: defined, starting, failed (with the error)", got)
    time.sleep(1.5)
    check(c.result("vm.info", name="gone")["state"] == "failed" and not ev.seen.get("gone"),
          "on_crash=restart does not apply to a start that failed", ev.seen.get("gone"))
    check([v["name"] for v in c.result("vm.list", state="failed")] == ["gone"],
          "vm.list state=failed")
    s = c.result("vm.destroy", name="gone")
    check((s["state"], s["reason"]) == ("shutoff", "destroyed"), "destroy forgets it", s)
    c.result("vm.undefine", name="gone")
    ok("a failed start: state failed, the worker's error line quoted, no on_crash restart")


def live_and_stored(env, d, c, ev):
    first = env.definition("live", "idle", "heartbeat_ms=50", vcpus=2)
    c.result("vm.define", definition=first)
    c.result("vm.start", name="live")
    r = c.result("vm.define", definition=dict(first, vcpus=1, sched={"policy": "gang"},
                                              cmdline="heartbeat_ms=60"))
    check(r["pending"] and not r["created"], "a redefinition of a running VM is pending", r)
    info = c.result("vm.info", name="live")
    check(info["vcpus"] == 2 and info["policy"] == "host" and
          info["live"]["vcpus"] == 2 and info["definition"]["vcpus"] == 1 and
          info["pending"] == {"vcpus": 1, "sched.policy": "gang", "cmdline": "heartbeat_ms=60"},
          "vm.info: what runs, and the stored values that differ", info)
    listed = c.result("vm.list")[0]
    check(listed["vcpus"] == 2 and listed["pending"] == info["pending"], "vm.list", listed)
    s = c.result("sched.get", name="live")
    check(s["policy"] == "host" and s["running"] and s["pending"] == {"policy": "gang"},
          "sched.get: the running policy, the stored one pending", s)
    r = c.result("sched.set", name="live", policy="relaxed", skew_us=700)
    check(r["sched"] == {"policy": "relaxed", "quantum_us": 5000, "skew_us": 700} and
          r["live"] and not r["config"] and r["pending"] == {"policy": "gang", "skew_us": 2000},
          "sched.set echoes every setting in force", r)
    ok("a running VM keeps its definition; the stored one is pending; sched.set echoes it all")

    # A daemon restart keeps the live settings and the pending difference.
    pid = info["pid"]
    d.stop()
    d.start()
    c = d.client()
    ev = Events(d.client())
    s = c.result("sched.get", name="live")
    check((s["policy"], s["skew_us"], s["pending"]) ==
          ("relaxed", 700, {"policy": "gang", "skew_us": 2000}),
          "after a daemon restart: the live scheduling and the pending difference", s)
    stats = c.result("sched.stats", name="live")["vms"][0]
    check(stats["policy"] == "relaxed" and stats["scheduled"],
          "the scheduler took the live policy back", stats)
    ok("a restarted lockstepd keeps the live scheduling of a running VM")

    # vm.reboot restarts what runs; vm.start (after a stop) takes the stored definition.
    s = c.result("vm.reboot", name="live")
    info = c.result("vm.info", name="live")
    check(info["state"] == "running" and info["pid"] != pid and info["vcpus"] == 2 and
          info["policy"] == "relaxed" and "pending" in info, "vm.reboot keeps the run's", info)
    c.result("vm.destroy", name="live")
    c.result("vm.start", name="live")
    info = c.result("vm.info", name="live")
    check(info["vcpus"] == 1 and info["policy"] == "gang" and "pending" not in info,
          "the next start takes the stored definition", info)
    c.result("vm.destroy", name="live")
    c.result("vm.undefine", name="live")
    ok("vm.reboot keeps the run's definition; the next vm.start takes the stored one")
    return c, ev


def reasons_kept(env, d, c):
    c.result("vm.define", definition=env.definition("crashy", "idle", "crash_after_ms=100",
                                                    vcpus=1))
    c.result("vm.define", definition=env.definition("ends", "idle", "exit_after_ms=100",
                                                    vcpus=1))
    for name in ("crashy", "ends"):
        c.result("vm.start", name=name)
    crashed = d.wait_state("crashy", "crashed", reason="guest-crash")
    check(crashed["error"].startswith("lockstep-vm[crashy]: error: vCPU 0: triple fault"),
          "a crash keeps the worker's error line", crashed)
    d.wait_state("ends", "shutoff", reason="guest-exit")
    before = {v["name"]: v for v in c.result("vm.list")}
    d.stop()
    d.start()
    c = d.client()
    after = {v["name"]: v for v in c.result("vm.list")}
    for name in ("crashy", "ends"):
        keep = ("state", "reason", "last_status", "error")
        check({k: after[name].get(k) for k in keep} == {k: before[name].get(k) for k in keep},
              f"{name}: state, reason, status and error survive a daemon restart",
              before[name], after[name])
    for name in ("crashy", "ends"):
        c.result("vm.destroy", name=name) if after[name]["state"] == "crashed" else None
        c.result("vm.undefine", name=name)
    ok("a restarted lockstepd keeps how stopped VMs ended (crashed: guest-crash and its "
       "error; shutoff: guest-exit)")
    return c


def consoles_and_logs(env, d, c, ev):
    c.result("vm.define", definition=env.definition("con", "idle", "exit_after_ms=50",
                                                    vcpus=1))
    for _ in range(2):
        c.result("vm.start", name="con")
        d.wait_state("con", "shutoff", reason="guest-exit")
    run = c.result("vm.console", name="con")
    whole = c.result("vm.console", name="con", all=True)
    check(run["data"].count("result: program=idle") == 1 and run["offset"] > 0 and
          "---- lockstepd: VM con starts" not in run["data"],
          "vm.console reads the current run, after its marker", run)
    check(whole["offset"] == 0 and whole["data"].count("result: program=idle") == 2 and
          whole["data"].count("---- lockstepd: VM con starts") == 2 and
          whole["data"].endswith(run["data"]), "all=true: both runs, each after its marker",
          whole)
    last = c.result("vm.console", name="con", lines=2)
    check(last["data"].count("\n") == 2 and whole["data"].endswith(last["data"]),
          "lines=2: the last two lines", last)
    with open(os.path.join(d.run_dir, "vms", "con.log")) as f:
        log = f.read()
    check(log.count("---- lockstepd: VM con starts") == 2, "the worker log is appended", log)
    c.error("vm.console", {"name": "con", "lines": 2, "all": True}, dh.INVALID_PARAMS,
            'parameters "offset", "tail", "lines" and "all" exclude each other')
    ok("consoles and worker logs kept across runs behind start markers; all, lines")

    # Past their bounds (console 16 MiB, worker log 4 MiB) they are moved aside at a start.
    vms = os.path.join(d.run_dir, "vms")
    for name, size in (("con.console", 17 << 20), ("con.log", 5 << 20)):
        with open(os.path.join(vms, name), "ab") as f:
            f.truncate(size)
    c.result("vm.start", name="con")
    d.wait_state("con", "shutoff", reason="guest-exit")
    for name, size in (("con.console", 17 << 20), ("con.log", 5 << 20)):
        check(os.path.getsize(os.path.join(vms, name + ".1")) == size and
              os.path.getsize(os.path.join(vms, name)) < 4096,
              f"{name} over its bound moved to {name}.1 at the start", os.listdir(vms))
    run = c.result("vm.console", name="con")
    check(run["data"].count("result: program=idle") == 1 and run["size"] < 4096,
          "the new console starts afresh", run)
    ok("a console over 16 MiB and a worker log over 4 MiB are moved aside at the next start")

    # A follower ends when the VM stops.
    c.result("vm.define", definition=env.definition("fol", "idle", "heartbeat_ms=20", vcpus=1))
    c.result("vm.start", name="fol")
    f = d.client()
    r = f.result("vm.console", name="fol", follow=True)
    check(f.notification(timeout=10, method="console.output"), "console.output", r)
    c.result("vm.destroy", name="fol")
    end = f.notification(timeout=10, method="console.end")
    check(end and end["params"]["vm"] == "fol" and end["params"]["state"] == "shutoff" and
          end["params"]["reason"] == "destroyed", "console.end when the VM stops", end)
    # what the client skipped while it waited for console.end arrived before it
    f.queue.clear()
    check(f.notification(timeout=0.5, method="console.output") is None, "nothing after it")
    f.close()
    for name in ("con", "fol"):
        c.result("vm.undefine", name=name)
    ok("a console follower gets console.end when the VM stops")

    lines = [line for line in d.log().splitlines() if "lockstepd: " in line]
    check(lines and all(STAMP.match(line) for line in lines),
          "every line of lockstepd's log starts with the local time", lines[:5])
    ok("lockstepd's log lines carry the time")


def small_ones(env, d, c, ev):
    t0 = time.time()
    c.result("vm.define", definition=env.definition("auto", "idle", vcpus=1))
    got = ev.next("auto", 1)[0]
    check(got["event"] == "defined" and abs(got["time"] - t0) < 30, "events carry the time",
          got)
    s = c.result("vm.autostart", name="auto", enabled=True)
    check(s["autostart"] and c.result("vm.info", name="auto")["definition"]["autostart"],
          "vm.autostart", s)
    c.result("vm.autostart", name="auto", enabled=False)
    check(not c.result("vm.info", name="auto")["autostart"], "vm.autostart off")
    c.error("vm.list", {"state": "sleeping"}, dh.INVALID_PARAMS,
            'parameter "state" must be one of shutoff, starting, running, stopping, crashed, '
            'failed, active')
    c.result("vm.undefine", name="auto")
    xml = (f"<domain type='kvm'><name>fromxml</name><memory unit='MiB'>16</memory>"
           f"<vcpu>2</vcpu><os><type>hvm</type><kernel>{env.guest('idle')}</kernel></os>"
           f"</domain>")
    r = c.result("vm.define", xml=xml)
    check(r["created"] and c.result("vm.info", name="fromxml")["vcpus"] == 2,
          "vm.define takes libvirt domain XML", r)
    c.error("vm.define", {"xml": "<domain"}, dh.BAD_DEFINITION)
    c.result("vm.undefine", name="fromxml")
    ok("events' time; vm.autostart; vm.list refuses an unknown state; vm.define xml")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client()
        ev = Events(d.client())
        kernel_checks(env, c)
        failed_start(env, c, ev)
        c, ev = live_and_stored(env, d, c, ev)
        c = reasons_kept(env, d, c)
        ev = Events(d.client())
        consoles_and_logs(env, d, c, ev)
        small_ones(env, d, c, ev)


if __name__ == "__main__":
    main()
