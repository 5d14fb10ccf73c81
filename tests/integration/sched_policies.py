#!/usr/bin/env python3
"""lockstepd's scheduler with real guests on this host's CPUs.

usage: sched_policies.py BIN_DIR GUEST_DIR

Two VMs x 2 vCPUs run barrierbench (plain spin barriers: every vCPU always wants a CPU).
  - under `host`, then switched live to `gang`: the policy switched; the gates are exclusive
    (after every tick the scheduler finds every gang VM outside the current slice with all its
    gates closed), every recent slice holds exactly one of the two VMs and they take turns,
    both get the same number of slices, and no slice interleaved (a closed vCPU did not run);
    the accounting adds up (co-run <= run <= watched time, each vCPU's slices are its VM's);
  - a third VM starts and stops while the scheduler runs; the gang VMs carry on, and the
    third is gone from the slices;
  - kill -9 of one gang VM's worker releases its slots: the other VM takes every slice;
  - one VM x 4 vCPUs (twice the host's CPUs) under `relaxed`: the policy co-stops every vCPU
    in turn (each is stopped at its gate for a while, and each took co-stops);
  - a VM wider than the host is refused `gang`, with the alternatives named.
These are what the scheduler decided and the identities of its accounting, so they hold on a
busy machine: how much the VMs co-ran and how far relaxed siblings drifted apart are printed
for people, never asserted (other processes take CPUs from vCPUs whatever the gates say, and
delay the samples the skew is measured from).  ctest runs it alone (RUN_SERIAL).
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

BENCH = "mode=plain work=2000 duration_ms=600000"
SLACK_MS = 1.0  # sampling: figures read a tick apart


def vm_stats(c, name):
    vms = c.result("sched.stats", name=name)["vms"]
    check(len(vms) == 1 and vms[0]["scheduled"], f"{name} is scheduled", vms)
    return vms[0]


def identities(st):
    """The accounting's identities for one VM's cumulative figures."""
    check(0 <= st["corun_ms"] <= st["run_ms"] + SLACK_MS <= st["watched_ms"] + 2 * SLACK_MS,
          "co-run <= run <= watched", st)
    for v in st["vcpu"]:
        check(v["run_ms"] <= st["watched_ms"] + SLACK_MS and
              v["stopped_ms"] <= st["watched_ms"] + SLACK_MS,
              "a vCPU runs and stops within the watched time", v, st["watched_ms"])
        if st["policy"] in ("host", "pinned", "gang"):  # relaxed counts co-stops per vCPU
            check(v["slices"] == st["slices"], "each vCPU took every slice of its VM", v, st)
    check(max(v["run_ms"] for v in st["vcpu"]) <= st["run_ms"] + SLACK_MS <=
          sum(v["run_ms"] for v in st["vcpu"]) + 2 * SLACK_MS,
          "a VM ran while its busiest vCPU did, and no more than all of them", st)


def window(c, names, seconds):
    """Scheduler accounting of each VM over the next `seconds`, and the scheduler's own."""
    before = {n: vm_stats(c, n) for n in names}
    self_before = c.result("sched.stats")["scheduler"]
    time.sleep(seconds)
    after = {n: vm_stats(c, n) for n in names}
    self_after = c.result("sched.stats", slices=64)
    out = {"scheduler": {k: self_after["scheduler"][k] - self_before[k]
                         for k in ("ticks", "gate_checks", "gate_overlaps")},
           "slices": self_after["slices"]}
    for n in names:
        b, a = before[n], after[n]
        identities(a)
        run = a["run_ms"] - b["run_ms"]
        out[n] = {
            "id": c.result("vm.info", name=n)["id"],
            "run_ms": run,
            "corun": (a["corun_ms"] - b["corun_ms"]) / run if run > 0 else 0.0,
            "slices": a["slices"] - b["slices"],
            "interleaved": a["interleaved_slices"] - b["interleaved_slices"],
            "max_skew_us": a["max_skew_us"],
            "policy": a["policy"],
        }
    return out


def exclusive(w, what):
    """The gates were checked at every tick of the window and never overlapped."""
    s = w["scheduler"]
    check(s["gate_checks"] > 0 and s["gate_checks"] >= s["ticks"] - 1,
          f"{what}: the gates were checked at every tick", s)
    check(s["gate_overlaps"] == 0, f"{what}: never two gang VMs' gates open at once", s)


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client(timeout=30)
        for name in ("a", "b"):
            c.result("vm.define", definition=env.definition(name, "barrierbench", BENCH,
                                                            sched={"policy": "host"}))
            c.result("vm.start", name=name)
        time.sleep(0.5)
        host = window(c, ["a", "b"], 2.0)

        for name in ("a", "b"):
            r = c.result("sched.set", name=name, policy="gang")
            check(r["live"] and not r["config"], "a live policy switch", r)
        time.sleep(0.5)
        gang = window(c, ["a", "b"], 2.0)
        print("     host: " + str({n: host[n] for n in ("a", "b")}) + "\n     gang: " +
              str({n: gang[n] for n in ("a", "b", "scheduler")}), flush=True)
        exclusive(gang, "gang")
        ids = {gang["a"]["id"], gang["b"]["id"]}
        for n in ("a", "b"):
            check(gang[n]["policy"] == "gang", "the policy switched", gang[n])
            check(gang[n]["slices"] > 0, f"{n} got slices", gang[n])
            check(gang[n]["interleaved"] == 0, f"no slice of {n} interleaved", gang[n])
        check(abs(gang["a"]["slices"] - gang["b"]["slices"]) <= 2,
              "the two gang VMs got the same number of slices", gang)
        slices = gang["slices"]
        check(slices and all(len(s["vms"]) == 1 and s["vms"][0] in ids for s in slices),
              "every recent slice ran exactly one of the two VMs", slices)
        turns = [s["vms"][0] for s in slices]
        check(all(x != y for x, y in zip(turns, turns[1:])), "the two VMs take turns", turns)
        ok(f"gang: {gang['a']['slices']}/{gang['b']['slices']} slices taking turns, gates "
           f"exclusive at {gang['scheduler']['gate_checks']} ticks; co-run (not asserted) "
           f"{gang['a']['corun']:.3f}/{gang['b']['corun']:.3f} vs host "
           f"{host['a']['corun']:.3f}/{host['b']['corun']:.3f}")

        # A VM comes and goes while the scheduler runs.
        c.result("vm.define", definition=env.definition("c", "idle", sched={"policy": "gang"}))
        c.result("vm.start", name="c")
        time.sleep(0.3)
        c.result("vm.destroy", name="c")
        after = window(c, ["a", "b"], 0.5)
        exclusive(after, "a VM came and went")
        check(after["a"]["slices"] > 0 and after["b"]["slices"] > 0,
              "the gang VMs carry on after a third came and went", after)
        check(all(s["vms"][0] in ids for s in after["slices"][-10:]),
              "the third VM is gone from the slices", after["slices"][-10:])
        ok("a VM started and stopped while the scheduler ran")

        # A crashed worker releases its slots.
        os.kill(c.result("vm.info", name="b")["pid"], signal.SIGKILL)
        d.wait_state("b", "crashed")
        alone = window(c, ["a"], 1.0)
        exclusive(alone, "after b's crash")
        recent = alone["slices"][-20:]
        check(alone["a"]["slices"] > 0 and recent and
              all(s["vms"] == [gang["a"]["id"]] for s in recent),
              "with b gone, a takes every slice", recent)
        ok(f"b's crash released its slots: a took all of the last {len(recent)} slices")
        c.result("vm.destroy", name="a")

        # One VM wider than the host: relaxed bounds the skew; gang is refused.
        ncpu = os.cpu_count()
        wide = 2 * ncpu
        c.result("vm.define", definition=env.definition("w", "barrierbench", BENCH, vcpus=wide,
                                                        sched={"policy": "relaxed",
                                                               "skew_us": 2000}))
        c.result("vm.start", name="w")
        time.sleep(2.0)
        st = vm_stats(c, "w")
        identities(st)
        print(f"     relaxed {wide} vCPUs: max skew (not asserted) {st['max_skew_us']:.0f} us",
              flush=True)
        check(st["policy"] == "relaxed" and st["coscheduling"], "relaxed co-schedules", st)
        for v in st["vcpu"]:
            check(v["slices"] > 0 and v["stopped_ms"] > 0,
                  f"relaxed co-stopped vCPU {v['vcpu']} in its turn", v)
        e = c.error("sched.set", {"name": "w", "policy": "gang"}, dh.BAD_DEFINITION)
        check("\"relaxed\"" in e["message"] and "\"adaptive\"" in e["message"],
              "sched.set names the alternatives", e)
        e = c.error("vm.define", {"definition": env.definition("g", "idle", vcpus=wide,
                                                                 sched={"policy": "gang"})},
                    dh.BAD_DEFINITION)
        check("\"relaxed\"" in e["message"] and "\"adaptive\"" in e["message"],
              "vm.define names the alternatives", e)
        ok(f"relaxed: {wide} vCPUs co-stopped in turn "
           f"({', '.join(str(v['slices']) for v in st['vcpu'])} co-stops); wide gang refused")
        c.result("vm.destroy", name="w")


if __name__ == "__main__":
    main()
