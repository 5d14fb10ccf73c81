#!/usr/bin/env python3
"""Starting and stopping lockstep VMs with the real virsh, watched by `virsh event --loop`.

usage: virsh_lifecycle.py BIN_DIR GUEST_DIR

start, reboot, reset, shutdown [--mode acpi] (the idle guest powers off on the ACPI button), start --force-boot,
destroy [--graceful], create FILE (transient: gone once destroyed), a guest reset (lockstepd
restarts the VM: a reboot event), crashes with on_crash preserve and destroy, autostart
[--disable] (kept across a daemon restart), undefine, and the errors of each command in the
wrong state.  A `virsh event --loop --all` running throughout must have seen every lifecycle
event in order.
"""
import os
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import virsh_env as ve  # noqa: E402
from daemon_harness import check, ok  # noqa: E402


class EventWatch:
    """`virsh event --loop --all` in the background, its lines collected as they come."""

    def __init__(self, env, d):
        cmd = ["stdbuf", "-oL", "virsh", "-c", d.uri, "event", "--loop", "--all"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env.virsh_env)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        # Registration takes a moment: define a domain until its event shows up.
        xml = env.write("sync.xml", env.xml("sync"))

        def synced():
            env.ok(d, "define", xml)
            env.ok(d, "undefine", "sync")
            return self.seen("sync", "Undefined Removed")
        dh.wait_for(synced, 15, "virsh event to register its callbacks", interval=0.2)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def seen(self, dom, what):
        return f"event 'lifecycle' for domain '{dom}': {what}" in self.lines

    def wait(self, dom, what, kind="lifecycle"):
        text = (f"event '{kind}' for domain '{dom}'" + (f": {what}" if what else ""))
        dh.wait_for(lambda: text in self.lines, 15, text)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise dh.TestFailure("virsh event --loop did not stop on SIGINT")
        self.reader.join(5)
        err = self.proc.stderr.read()
        check("error" not in err, "virsh event reported an error", err)
        return [line for line in self.lines if line.startswith("event ")]


def in_order(events, want):
    """Every wanted line appears in `events`, in this order."""
    i = 0
    for line in events:
        if i < len(want) and line == want[i]:
            i += 1
    return i == len(want)


def lc(dom, what):
    return f"event 'lifecycle' for domain '{dom}': {what}"


def lifecycle(env, d, watch):
    env.define(d, "demo", cmdline="heartbeat_ms=200")
    out = env.ok(d, "start", "demo")
    check(out.strip() == "Domain 'demo' started", "start", out)
    check(env.ok(d, "domstate", "demo", "--reason").strip() == "running (booted)", "running")
    first_id = env.ok(d, "domid", "demo").strip()
    env.fails(d, "start", "demo", want="already active")
    ok("start; start again refused")

    out = env.ok(d, "reboot", "demo")
    check("is being rebooted" in out, "reboot", out)
    check(env.ok(d, "domstate", "demo").strip() == "running", "running after reboot")
    second_id = env.ok(d, "domid", "demo").strip()
    check(second_id != first_id, "a reboot gives a new domain id")
    check("was reset" in env.ok(d, "reset", "demo"), "reset")
    check(env.ok(d, "domid", "demo").strip() not in (first_id, second_id), "reset: new id")
    ok("reboot and reset (destroy + start)")

    out = env.ok(d, "shutdown", "demo")
    check("is being shutdown" in out, "shutdown", out)
    ve.wait_state(env, d, "demo", "shut off (shutdown)")
    env.fails(d, "shutdown", "demo", want="not running")
    env.fails(d, "destroy", "demo", want="VM demo is not running")
    env.fails(d, "reboot", "demo", want="VM demo is shutoff, not running")
    ok("shutdown (the guest powers off on the ACPI button); errors when shut off")

    env.ok(d, "start", "--force-boot", "demo")
    check("is being shutdown" in env.ok(d, "shutdown", "--mode", "acpi", "demo"), "acpi")
    ve.wait_state(env, d, "demo", "shut off (shutdown)")
    env.fails(d, "shutdown", "--mode", "agent", "demo")
    env.ok(d, "start", "demo")
    out = env.ok(d, "destroy", "--graceful", "demo")
    check("destroyed" in out, "destroy --graceful", out)
    check(env.ok(d, "domstate", "demo", "--reason").strip() == "shut off (destroyed)",
          "destroyed")
    env.ok(d, "start", "demo")
    env.ok(d, "destroy", "demo")
    ok("start --force-boot, shutdown --mode acpi, destroy --graceful, destroy")

    out = env.ok(d, "create", env.write("temp.xml", env.xml("temp", vcpus=1)))
    check("Domain 'temp' created" in out, "create", out)
    check(ve.fields(env.ok(d, "dominfo", "temp"))["Persistent"] == "no", "create: transient")
    env.fails(d, "create", env.write("temp2.xml", env.xml("temp")), want="already exists")
    env.ok(d, "destroy", "temp")
    check("temp" not in env.ok(d, "list", "--all", "--name"), "transient gone on destroy")
    ok("create FILE: transient, gone once destroyed; create of a taken name refused")


def guest_endings(env, d, watch):
    env.define(d, "resetter", cmdline="reset_after_ms=300")
    env.ok(d, "start", "resetter")
    watch.wait("resetter", None, kind="reboot")
    ve.wait_state(env, d, "resetter", "running (booted)")
    env.ok(d, "destroy", "resetter")
    ok("a guest reset: lockstepd restarts the VM, libvirt sees a reboot event")

    env.define(d, "keeper", cmdline="crash_after_ms=200",
               extra="<on_crash>preserve</on_crash>")
    env.ok(d, "start", "keeper")
    ve.wait_state(env, d, "keeper", "crashed (unknown)")
    check("keeper" in env.ok(d, "list", "--name", "--state-other"), "crashed is 'other'")
    env.ok(d, "destroy", "keeper")
    check(env.ok(d, "domstate", "keeper", "--reason").strip() == "shut off (destroyed)",
          "a preserved crash destroyed")
    env.define(d, "crasher", cmdline="crash_after_ms=200")
    env.ok(d, "start", "crasher")
    ve.wait_state(env, d, "crasher", "shut off (crashed)")
    ok("crashes: on_crash preserve (crashed, then destroyed) and destroy (shut off, crashed)")


def autostart(env, d):
    env.ok(d, "autostart", "demo")
    check(ve.fields(env.ok(d, "dominfo", "demo"))["Autostart"] == "enable", "autostart")
    check("demo" in env.ok(d, "list", "--all", "--name", "--autostart"), "list --autostart")
    check(d.vm("demo")["autostart"] is True, "stored in lockstep's definition")
    env.fails(d, "autostart", "nosuch")
    d.stop()
    d.start()
    ve.wait_state(env, d, "demo", "running (booted)")  # an autostart domain starts with it
    env.ok(d, "autostart", "--disable", "demo")
    check(ve.fields(env.ok(d, "dominfo", "demo"))["Autostart"] == "disable", "--disable")
    env.ok(d, "destroy", "demo")
    ok("autostart (started by the next daemon), autostart --disable")


def main():
    with ve.VirshEnv(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon("--shutdown-timeout", "10")
        watch = EventWatch(env, d)
        lifecycle(env, d, watch)
        guest_endings(env, d, watch)
        env.ok(d, "undefine", "crasher")
        watch.wait("crasher", "Undefined Removed")
        events = watch.stop()
        want = [lc("demo", "Defined Added"), lc("demo", "Started Booted"),
                lc("demo", "Stopped Destroyed"), lc("demo", "Started Booted"),
                lc("demo", "Stopped Shutdown"), lc("demo", "Started Booted"),
                lc("demo", "Stopped Destroyed"), lc("demo", "Started Booted"),
                lc("demo", "Stopped Destroyed"), lc("temp", "Started Booted"),
                lc("temp", "Stopped Destroyed"), lc("resetter", "Started Booted"),
                lc("resetter", "Stopped Shutdown"), "event 'reboot' for domain 'resetter'",
                lc("resetter", "Started Booted"), lc("keeper", "Crashed Panicked"),
                lc("keeper", "Stopped Destroyed"), lc("crasher", "Stopped Crashed"),
                lc("crasher", "Undefined Removed")]
        check(in_order(events, want), "virsh event saw every lifecycle event in order",
              events)
        check(lc("temp", "Defined Added") not in events, "create defines nothing persistent")
        ok(f"virsh event --loop --all: {len(events)} events, in order")
        autostart(env, d)


if __name__ == "__main__":
    main()
