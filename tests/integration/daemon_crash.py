#!/usr/bin/env python3
"""Workers that die: one VM's loss is its own, and on_crash decides what happens next.

usage: daemon_crash.py BIN_DIR GUEST_DIR

- kill -9 of one worker: its VM becomes `crashed` (reason worker-died, status 137), a
  `crashed` event goes out, and the other VMs keep running (their workers, consoles, info);
- on_crash=restart: the daemon starts a new worker (events crashed, starting, restarted,
  started) at once, and then, while runs keep crashing within a minute of their start,
  after 1 s, 2 s, 4 s ... (a restart-pending event, vm.info's "restart"); a destroy ends
  the wait;
- on_crash=preserve with a guest that crashes (idle crash_after_ms): the worker stays
  alive for inspection, the VM is `crashed` (guest-crash), vm.start refuses, vm.info still
  answers, and vm.destroy ends the worker.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402


class Events:
    """A subscriber's lifecycle events, sorted by VM as they arrive."""

    def __init__(self, client):
        self.c = client
        self.c.result("events.subscribe")
        self.pending = {}

    def next(self, vm, count, timeout=20):
        """The next `count` events of one VM as (event, state, reason)."""
        q = self.pending.setdefault(vm, [])
        while len(q) < count:
            n = self.c.notification(timeout=timeout, method="event")
            check(n is not None, f"only {len(q)} of {count} events for {vm}", q)
            p = n["params"]
            self.pending.setdefault(p["vm"], []).append((p["event"], p["state"], p["reason"]))
        out, q[:] = q[:count], q[count:]
        return out

    def quiet(self, vm, seconds):
        """True if no event for `vm` arrives within `seconds`."""
        while True:
            n = self.c.notification(timeout=seconds, method="event")
            if n is None:
                return not self.pending.get(vm)
            p = n["params"]
            self.pending.setdefault(p["vm"], []).append((p["event"], p["state"], p["reason"]))


def console_size(c, name):
    return c.result("vm.console", name=name, max=0)["size"]


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client()
        ev = Events(d.client())
        for name, extra in (("victim", {}), ("calm", {}), ("phoenix", {"on_crash": "restart"})):
            c.result("vm.define", definition=env.definition(name, "idle", "heartbeat_ms=20",
                                                            **extra))
            c.result("vm.start", name=name)
        ev.next("victim", 3)
        calm = c.result("vm.info", name="calm")

        # kill -9 of one worker.
        victim = c.result("vm.info", name="victim")
        os.kill(victim["pid"], signal.SIGKILL)
        check(ev.next("victim", 1) == [("crashed", "crashed", "worker-died")],
              "a crashed event for the killed worker")
        info = c.result("vm.info", name="victim")
        check((info["state"], info["reason"], info["last_status"], info["pid"], info["vcpu"])
              == ("crashed", "worker-died", 128 + signal.SIGKILL, 0, []),
              "the VM of a killed worker", info)
        before = console_size(c, "calm")
        dh.wait_for(lambda: console_size(c, "calm") > before, 5, "calm's console to grow")
        again = c.result("vm.info", name="calm")
        check(again["state"] == "running" and again["pid"] == calm["pid"] and
              dh.alive(calm["pid"]) and again["stats"]["run_ms"] > calm["stats"]["run_ms"],
              "the other VM runs on, same worker", again)
        c.error("vm.shutdown", {"name": "victim"}, dh.BAD_STATE,
                "VM victim is crashed, not running")
        s = c.result("vm.start", name="victim")
        check(s["state"] == "running" and s["pid"] != victim["pid"], "a crashed VM restarts", s)
        c.result("vm.destroy", name="victim")
        ok("kill -9 of a worker: crashed (worker-died), event sent, others keep running")

        # on_crash=restart: at once after the first crash, then backing off (1 s, 2 s, ...)
        # while the runs keep ending within a minute; each wait is announced and shown.
        ev.next("phoenix", 3)
        pids = [c.result("vm.info", name="phoenix")["pid"]]
        restarted = [("starting", "starting", "starting"), ("restarted", "starting", "starting"),
                     ("started", "running", "booted")]
        for i in range(3):
            os.kill(pids[-1], signal.SIGKILL)
            want = [("crashed", "crashed", "worker-died")]
            if i:
                want.append(("restart-pending", "crashed", "worker-died"))
            check(ev.next("phoenix", len(want)) == want, f"crash {i + 1} after kill -9")
            if i:
                info = c.result("vm.info", name="phoenix")
                r = info.get("restart")
                check(info["state"] == "crashed" and r and r["attempt"] == i + 1 and
                      r["delay_s"] == 2 ** (i - 1) and r["after"] == "crash",
                      f"vm.info shows restart {i + 1} waiting", info)
            check(ev.next("phoenix", 3) == restarted, f"restart {i + 1} after kill -9")
            info = c.result("vm.info", name="phoenix")
            check(info["state"] == "running" and info["pid"] not in pids and
                  dh.alive(info["pid"]) and "restart" not in info, "a new worker runs", info)
            pids.append(info["pid"])
        check(d.log().count("VM phoenix crashed 3 times in a row, each within a minute of its "
                            "start: restarting it in 2 s") == 1, "the back-off is logged",
              d.log())
        # The fourth waits 4 s; a destroy meanwhile ends the crash loop and the wait.
        os.kill(pids[-1], signal.SIGKILL)
        check(ev.next("phoenix", 2) == [("crashed", "crashed", "worker-died"),
                                        ("restart-pending", "crashed", "worker-died")],
              "the fourth crash waits")
        s = c.result("vm.destroy", name="phoenix")
        check((s["state"], s["reason"]) == ("shutoff", "destroyed") and "restart" not in s,
              "a destroy cancels the waiting restart", s)
        check(ev.next("phoenix", 1) == [("stopped", "shutoff", "destroyed")], "stopped")
        check(ev.quiet("phoenix", 4.5), "no restart after the destroy")
        ok("on_crash=restart: at once, then backing off 1 s, 2 s, 4 s; a destroy ends it")

        # on_crash=preserve: a guest crash keeps the worker for inspection.
        c.result("vm.define", definition=env.definition("keep", "idle", "crash_after_ms=100",
                                                        on_crash="preserve"))
        c.result("vm.start", name="keep")
        got = ev.next("keep", 4)
        check(got[3] == ("crashed", "crashed", "guest-crash"),
              "a crashed event for the preserved VM", got)
        info = c.result("vm.info", name="keep")
        pid = info["pid"]
        check(info["state"] == "crashed" and info["reason"] == "guest-crash" and pid > 0 and
              dh.alive(pid) and "stats" in info, "a preserved crash keeps its worker", info)
        c.error("vm.start", {"name": "keep"}, dh.BAD_STATE,
                "VM keep is already crashed (preserved): destroy it first")
        c.error("vm.undefine", {"name": "keep"}, dh.BAD_STATE,
                "VM keep is crashed: destroy or shut it down first")
        check(ev.quiet("keep", 0.3) and dh.alive(pid), "still preserved")
        s = c.result("vm.destroy", name="keep")
        check((s["state"], s["reason"], s["last_status"]) == ("shutoff", "destroyed", 80),
              "destroy ends a preserved VM", s)
        check(ev.next("keep", 1) == [("stopped", "shutoff", "destroyed")],
              "a stopped event")
        dh.wait_for(lambda: not dh.alive(pid), 5, "the preserved worker to exit")
        ok("on_crash=preserve: the crashed guest's worker lives until vm.destroy")

        c.result("vm.destroy", name="calm")
        check(dh.alive(calm["pid"]) is False, "calm's worker is gone")


if __name__ == "__main__":
    main()
