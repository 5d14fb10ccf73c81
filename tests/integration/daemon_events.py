#!/usr/bin/env python3
"""events.subscribe: lifecycle events arrive, in order, for every way a VM starts and ends.

usage: daemon_events.py BIN_DIR GUEST_DIR

Two subscribers and one bystander watch while a third connection drives VMs through:
define, start, shutdown (power button), destroy, a guest that exits by itself, a guest
crash (triple fault, on_crash=destroy), a crash with on_crash=restart, a guest reset
(the daemon boots it again), and undefine.  Both subscribers must see exactly the same
events, in the order the states changed, with the state and reason of each; the bystander
sees none.  The `lockstep events` CLI prints the same stream.
"""
import json
import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402


def collect(sub, count, timeout=20):
    """The next `count` event notifications of a subscriber, as (vm, event, state, reason)."""
    out, times = [], []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        n = sub.notification(timeout=max(0.0, deadline - time.monotonic()), method="event")
        check(n is not None, f"only {len(out)} of {count} events arrived", out)
        p = n["params"]
        check(p["type"] == "lifecycle", "a lifecycle event", p)
        out.append((p["vm"], p["event"], p["state"], p["reason"]))
        times.append(p["time"])
    check(times == sorted(times), "event times never go backwards", times)
    return out


class Watch:
    """The subscribers, and every event they should have seen so far."""

    def __init__(self, subs):
        self.subs = subs
        self.seen = []

    def expect(self, what, *want):
        want = list(want)
        self.seen.extend(want)
        for i, sub in enumerate(self.subs):
            got = collect(sub, len(want))
            check(got == want, f"{what}: subscriber {i} saw other events",
                  "got:", *got, "want:", *want)
        ok(f"events: {what}")


STARTING = ("ev", "starting", "starting", "starting")
STARTED = ("ev", "started", "running", "booted")
DESTROYED = ("ev", "stopped", "shutoff", "destroyed")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client()
        cli = subprocess.Popen([env.lockstep, "--socket", d.socket, "--json", "events"],
                               stdout=subprocess.PIPE, bufsize=0)
        # The CLI subscribes in its own time: an event it prints proves it is listening.
        for _ in range(100):
            c.result("vm.define", definition=env.definition("probe", "idle"))
            c.result("vm.undefine", name="probe")
            if select.select([cli.stdout], [], [], 0.1)[0]:
                break
        check(select.select([cli.stdout], [], [], 5)[0], "the events CLI printed nothing")
        subs = [d.client(), d.client()]
        for s in subs:
            check(s.result("events.subscribe") == {"subscribed": True}, "events.subscribe")
        bystander = d.client()
        w = Watch(subs)

        c.result("vm.define", definition=env.definition("ev", "idle"))
        c.result("vm.start", name="ev")
        c.result("vm.shutdown", name="ev")
        c.result("vm.start", name="ev")
        c.result("vm.destroy", name="ev")
        w.expect("define, start, shutdown, start, destroy",
                 ("ev", "defined", "shutoff", "defined"), STARTING, STARTED,
                 ("ev", "stopping", "stopping", "shutdown"),
                 ("ev", "stopped", "shutoff", "guest-poweroff"), STARTING, STARTED, DESTROYED)

        # The guest ends by itself: debug-exit 0 after 200 ms.
        c.result("vm.define", definition=env.definition("ev", "idle", "exit_after_ms=200"))
        c.result("vm.start", name="ev")
        w.expect("the guest exits", STARTING, STARTED, ("ev", "stopped", "shutoff", "guest-exit"))

        # A triple fault with on_crash=destroy: crashed, and it stays down.
        c.result("vm.define", definition=env.definition("ev", "idle", "crash_after_ms=200"))
        c.result("vm.start", name="ev")
        w.expect("a guest crash", STARTING, STARTED, ("ev", "crashed", "crashed", "guest-crash"))
        info = c.result("vm.info", name="ev")
        check((info["state"], info["last_status"]) == ("crashed", 80), "crashed, status 80",
              info)

        # on_crash=restart: the daemon starts it again with the same definition, so the
        # definition is changed to one that does not crash before the restarted guest would
        # crash again (500 ms), and the VM destroyed.
        c.result("vm.define", definition=env.definition("ev", "idle", "crash_after_ms=500",
                                                        on_crash="restart"))
        c.result("vm.start", name="ev")
        w.expect("on_crash=restart", STARTING, STARTED,
                 ("ev", "crashed", "crashed", "guest-crash"), STARTING,
                 ("ev", "restarted", "starting", "starting"), STARTED)
        c.result("vm.define", definition=env.definition("ev", "idle"))
        c.result("vm.destroy", name="ev")
        w.expect("destroy after the restart", DESTROYED)

        # A guest reset: stopped (guest-reset), and booted again at once.
        c.result("vm.define", definition=env.definition("ev", "idle", "reset_after_ms=500"))
        c.result("vm.start", name="ev")
        w.expect("a guest reset reboots", STARTING, STARTED,
                 ("ev", "stopped", "shutoff", "guest-reset"), STARTING,
                 ("ev", "rebooted", "starting", "starting"), STARTED)
        c.result("vm.define", definition=env.definition("ev", "idle"))
        c.result("vm.destroy", name="ev")
        c.result("vm.undefine", name="ev")
        w.expect("undefine", DESTROYED, ("ev", "undefined", "shutoff", "destroyed"))

        check(bystander.read_frame(timeout=0.2) is None, "a connection that did not "
              "subscribe gets no events")
        ok("events: nothing for a connection that did not subscribe")

        # The CLI printed the probes, then what the subscribers saw.
        time.sleep(0.2)
        cli.terminate()
        out, _ = cli.communicate(timeout=10)
        lines = [json.loads(line) for line in out.decode().splitlines()]
        printed = [(e["vm"], e["event"], e["state"], e["reason"]) for e in lines
                   if e["vm"] != "probe"]
        check(printed == w.seen, "lockstep events prints the same events", printed, w.seen)
        ok("events: the lockstep events CLI")


if __name__ == "__main__":
    main()
