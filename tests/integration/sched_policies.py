#!/usr/bin/env python3
"""lockstepd's scheduler with real guests on this host's CPUs.

usage: sched_policies.py BIN_DIR GUEST_DIR

Two VMs x 2 vCPUs run barrierbench (plain spin barriers: every vCPU always wants a CPU).
  - under `host`, then switched live to `gang`: the scheduler's own co-run accounting shows
    >= 0.9 of each VM's run time with both siblings running under gang, and far more than
    under host in the same test; no slice interleaves the two VMs; both get a fair share;
  - a third VM starts and stops while the scheduler runs; the gang VMs carry on;
  - kill -9 of one gang VM's worker releases its slots: the other VM gets the machine;
  - one VM x 4 vCPUs under `relaxed` keeps sibling skew within its bound (+ one tick);
  - a VM wider than the host is refused `gang`, with the alternatives named.
These are properties of the schedule, measured by the product; they assume no other load
on the host (ctest runs this test alone: RUN_SERIAL).
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

BENCH = "mode=plain work=2000 duration_ms=600000"


def vm_stats(c, name):
    vms = c.result("sched.stats", name=name)["vms"]
    check(len(vms) == 1 and vms[0]["scheduled"], f"{name} is scheduled", vms)
    return vms[0]


def window(c, names, seconds):
    """Scheduler accounting of each VM over the next `seconds`: run, co-run, slices..."""
    before = {n: vm_stats(c, n) for n in names}
    time.sleep(seconds)
    after = {n: vm_stats(c, n) for n in names}
    out = {}
    for n in names:
        b, a = before[n], after[n]
        run = a["run_ms"] - b["run_ms"]
        out[n] = {
            "run_ms": run,
            "corun": (a["corun_ms"] - b["corun_ms"]) / run if run > 0 else 0.0,
            "slices": a["slices"] - b["slices"],
            "interleaved": a["interleaved_slices"] - b["interleaved_slices"],
            "max_skew_us": a["max_skew_us"],
            "policy": a["policy"],
        }
    return out


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
        print(f"     host: {host}\n     gang: {gang}", flush=True)
        for n in ("a", "b"):
            check(gang[n]["policy"] == "gang", "the policy switched", gang[n])
            check(gang[n]["corun"] >= 0.9, f"{n} co-runs >= 0.9 under gang", gang[n])
            check(gang[n]["corun"] >= host[n]["corun"] + 0.2,
                  f"{n} co-runs far more under gang than under host", gang[n], host[n])
            check(gang[n]["interleaved"] == 0, f"no slice of {n} interleaved", gang[n])
            check(gang[n]["slices"] >= 100, f"{n} got its 5 ms slices", gang[n])
        share = gang["a"]["run_ms"] / (gang["a"]["run_ms"] + gang["b"]["run_ms"])
        check(0.4 <= share <= 0.6, "the two gang VMs share the host fairly (40-60 %)", share)
        slices = c.result("sched.stats", slices=64)["slices"]
        check(slices and all(len(s["vms"]) == 1 for s in slices),
              "every recent slice ran exactly one of the two VMs", slices)
        ok(f"gang: co-run {gang['a']['corun']:.3f}/{gang['b']['corun']:.3f} vs host "
           f"{host['a']['corun']:.3f}/{host['b']['corun']:.3f}, share {share:.2f}")

        # A VM comes and goes while the scheduler runs.
        c.result("vm.define", definition=env.definition("c", "idle", sched={"policy": "gang"}))
        c.result("vm.start", name="c")
        time.sleep(0.3)
        c.result("vm.destroy", name="c")
        after = window(c, ["a", "b"], 0.5)
        check(after["a"]["slices"] > 20 and after["b"]["slices"] > 20,
              "the gang VMs carry on after a third came and went", after)
        ok("a VM started and stopped while the scheduler ran")

        # A crashed worker releases its slots.
        os.kill(c.result("vm.info", name="b")["pid"], signal.SIGKILL)
        d.wait_state("b", "crashed")
        alone = window(c, ["a"], 1.0)
        check(alone["a"]["run_ms"] >= 1.6 * gang["a"]["run_ms"] / 2.0,
              "with b gone, a runs about twice as much", alone, gang)
        ok(f"b's crash released its slots: a ran {alone['a']['run_ms']:.0f} ms of 1 s")
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
        print(f"     relaxed {wide} vCPUs: max skew {st['max_skew_us']:.0f} us", flush=True)
        check(0 < st["max_skew_us"] <= 2000 + 1000 + 1000,
              "relaxed keeps sibling skew within its bound (+ a tick and a gate latency)", st)
        e = c.error("sched.set", {"name": "w", "policy": "gang"}, dh.BAD_DEFINITION)
        check("\"relaxed\"" in e["message"] and "\"adaptive\"" in e["message"],
              "sched.set names the alternatives", e)
        e = c.error("vm.define", {"definition": env.definition("g", "idle", vcpus=wide,
                                                                 sched={"policy": "gang"})},
                    dh.BAD_DEFINITION)
        check("\"relaxed\"" in e["message"] and "\"adaptive\"" in e["message"],
              "vm.define names the alternatives", e)
        ok(f"relaxed: skew {st['max_skew_us']:.0f} us within 2000 us + a tick; wide gang refused")
        c.result("vm.destroy", name="w")


if __name__ == "__main__":
    main()
