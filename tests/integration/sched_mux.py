#!/usr/bin/env python3
"""The multiplexer with real guests: one VM of 4 vCPUs on 2 host CPUs, policy mux.

usage: sched_mux.py BIN_DIR GUEST_DIR

Checks the multiplexer's promises from lockstepd's own accounting (sched.stats), over a
window of a guest that never stops contending -- invariants, not throughput, so that the
test holds on a loaded machine:
  - never more open gates than CPUs: the worker's count at every gate it opened, and the
    scheduler's samples of the vCPUs that ran behind open gates (beyond the CPUs only by
    vCPUs whose slots were lent while they looked halted);
  - a vCPU that holds a published lock or waits for one is not stopped at a request before it
    reaches a release point (out_holding stays 0); stops of such vCPUs happen only when the
    grace period ran out, and are counted as grace overruns;
  - nobody starves: every vCPU runs a share of the window, and the longest a ready vCPU
    waits for a slot stays below a bound;
  - a waiter that gives up its CPU while its lock's holder is stopped gives it to that holder
    (or to a waiter ahead of it): handoff_astray stays 0, and with critical sections longer
    than the grace period (so that holders are forced out) such hand-offs happen;
  - the guest's own check: the lock excluded (counter_ok=1).
Also: a worker-side switch on the guest's request (LKS_CALL_SWITCH at release points) is
what rotates the vCPUs of a pv guest, and adaptive multiplexes a wide VM once its pv
waiters are seen.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

VCPUS = 4
GRACE_MS = 4  # SCHED_MUX_GRACE_NS


def stats(c, name):
    vms = c.result("sched.stats", name=name)["vms"]
    check(len(vms) == 1 and vms[0]["scheduled"], f"{name} is scheduled", vms)
    return vms[0]


def mux_sum(st, key):
    return sum(v["mux"][key] for v in st["vcpu"])


def outs(st, reason):
    return sum(v["mux"]["outs"][reason] for v in st["vcpu"])


def settled(c, name, timeout=30.0):
    """Waits for the guest's loop: its banner, then half a second (the start line's halts,
    lent slots, and the first rotations are over by then)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = c.result("vm.console", name=name).get("data", "")
        if "pv backend" in text:
            time.sleep(0.5)
            return
        time.sleep(0.1)
    check(False, f"{name} reached its loop", text)


def window(c, name, seconds):
    a = stats(c, name)
    time.sleep(seconds)
    b = stats(c, name)
    return a, b


def over(st):
    m = st["mux"]
    return (f"{m['over_ticks']} of {m['ticks']} ticks with more running than slots "
            f"(at most {m['busy_open_max']}), {m['over_unlent']} beyond lent slots")


def check_invariants(a, b, label):
    m = b["mux"]
    check(m["active"] and m["slots"] == 2, f"{label}: multiplexed on 2 slots", m)
    check(m["open_max"] <= m["slots"],
          f"{label}: the multiplexer never opened a gate beyond its slots", m)
    # Sampled every tick: vCPUs that ran behind open gates.  Beyond the slots only while a
    # vCPU whose slot was lent (seen halted: on a loaded host a vCPU thread blocked in the
    # kernel looks the same) runs again, or one open from before the multiplexer took over.
    check(m["over_unlent"] == 0,
          f"{label}: never more vCPUs running behind open gates than CPUs and lent slots", m)
    check(m["out_holding"] == 0,
          f"{label}: no holder or queued waiter stopped before its release point", m)
    check(m["forced_holding"] <= outs(b, "force") <= m["grace_overruns"],
          f"{label}: holders stopped only by forced stops, each one a counted grace overrun",
          m, [v["mux"] for v in b["vcpu"]])
    check(m["handoff_astray"] == 0,
          f"{label}: waiters hand their CPU to the stopped holder, not elsewhere", m)
    run = [vb["run_ms"] - va["run_ms"] for va, vb in zip(a["vcpu"], b["vcpu"])]
    total = sum(run)
    check(total > 0 and min(run) >= 0.25 * total / VCPUS,
          f"{label}: every vCPU ran at least a quarter of its share", run)
    # A ready vCPU waits for the others' quanta (5 ms each) and a grace period, give or
    # take what the host's other load takes: a second is starvation on any machine.
    check(m["ready_max_us"] < 1e6, f"{label}: no ready vCPU waited a second for a slot", m)
    return run


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client(timeout=30)

        # A pv ticket lock: vCPUs rotate at release points, asked through the hints page.
        c.result("vm.define", definition=env.definition(
            "t", "lockbench", "lock=ticket mode=pv duration_ms=600000", vcpus=VCPUS,
            sched={"policy": "mux"}))
        c.result("vm.start", name="t")
        settled(c, "t")
        a, b = window(c, "t", 2.0)
        run = check_invariants(a, b, "ticket pv")
        check(outs(b, "release") - outs(a, "release") > 20,
              "the guest switched at its release points when asked",
              [v["mux"]["outs"] for v in b["vcpu"]])
        info = c.result("vm.info", name="t")
        calls = info["stats"]["doorbell"]["calls"]
        check(calls["switch"] > 0, "the guest made SWITCH calls", calls)
        ok(f"ticket pv on 4 vCPUs / 2 CPUs: runs {[round(r) for r in run]} ms in 2 s, "
           f"open max {b['mux']['open_max']}, grace overruns {b['mux']['grace_overruns']}, "
           f"{over(b)}")
        c.result("vm.destroy", name="t")

        # MCS with critical sections of 20 ms (> the grace period) and as much work outside:
        # vCPUs with work wait for slots, holders may be forced out to make room, and
        # waiters hand their CPUs to the holders.
        c.result("vm.define", definition=env.definition(
            "m", "lockbench", "lock=mcs mode=pv cs=52000000 ncs=52000000 duration_ms=600000",
            vcpus=VCPUS, sched={"policy": "mux"}))
        c.result("vm.start", name="m")
        settled(c, "m")
        a, b = window(c, "m", 3.0)
        check_invariants(a, b, "mcs pv, long critical sections")
        check(b["mux"]["handoff_holder"] > a["mux"]["handoff_holder"],
              "waiters handed their CPU to the stopped holder", b["mux"])
        ok(f"mcs pv, 20 ms critical sections: {b['mux']['forced_holding']} holders forced, "
           f"{b['mux']['handoff_holder']} hand-offs to them, none astray, {over(b)}")
        c.result("vm.destroy", name="m")

        # adaptive: host scheduling until pv waiters show up, then the multiplexer.
        c.result("vm.define", definition=env.definition(
            "a", "lockbench", "lock=ticket mode=pv duration_ms=600000", vcpus=VCPUS,
            sched={"policy": "adaptive"}))
        c.result("vm.start", name="a")
        deadline = time.time() + 20
        st = stats(c, "a")
        while time.time() < deadline and not st["mux"]["active"]:
            time.sleep(0.2)
            st = stats(c, "a")
        check(st["mux"]["active"] and st["coscheduling"],
              "adaptive multiplexes a VM wider than its CPUs once waiters are seen", st["mux"],
              st["preemption_events"], st["contention_events"])
        ok(f"adaptive multiplexed the wide VM after {st['preemption_events']} episodes, "
           f"{st['contention_events']} of sibling contention")
        c.result("vm.destroy", name="a")


if __name__ == "__main__":
    main()
