#!/usr/bin/env python3
"""The preemption detector sees lock and barrier preemption in real guests.

usage: vm_detect.py LOCKSTEP_VM GUEST_DIR
Runs `lockbench lock=ticket mode=published` and `barrierbench mode=published` with 4 vCPUs
confined to 2 host CPUs (taskset), so that the host must preempt vCPUs that hold the lock or
that a barrier waits for, and checks the worker's report: the guest registered its shared
page, the detector reported lock-holder or lock-waiter episodes for the lock and waiter
episodes (never holder ones) for the barrier, with durations.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402

VCPUS = 4
HOST_CPUS = "0,1" if (os.cpu_count() or 1) > 1 else "0"


def episodes(report):
    total = {"lhp": 0, "lwp": 0}
    ms = 0.0
    for v in report["pvlock"]["vcpu"]:
        for kind in total:
            total[kind] += v["culprit_events"][kind]
            ms += v["culprit_ms"][kind]
    return total, ms


def run_guest(vm, guest_dir, program, cmdline):
    path = os.path.join(tempfile.mkdtemp(prefix="lockstep-detect-"), "stats.json")
    status, out, err = lt.run(["taskset", "-c", HOST_CPUS, vm, "--kernel", os.path.join(guest_dir, program + ".elf"),
                               "--vcpus", str(VCPUS), "--console", "--timeout", "60",
                               "--cmdline", cmdline, "--stats-json", path])
    if status != 0:
        lt.fail(f"{program} exited with {status}", out + err)
    res = (lt.results(out) or [{}])[-1]
    if res.get("ok", res.get("counter_ok")) != "1":
        lt.fail(f"{program} did not pass", out)
    return json.load(open(path))


def main():
    vm, guest_dir = sys.argv[1:3]
    lt.need_kvm()
    problems = []

    rep = run_guest(vm, guest_dir, "lockbench",
                              "lock=ticket mode=published duration_ms=500")
    got, ms = episodes(rep)
    if not rep["pvlock"]["shared_page"]:
        problems.append("lockbench: the shared page is not registered")
    if got["lhp"] + got["lwp"] == 0 or ms <= 0:
        problems.append(f"lockbench: no lock preemption detected ({got}, {ms} ms)")

    rep = run_guest(vm, guest_dir, "barrierbench", "mode=published duration_ms=500")
    got, ms = episodes(rep)
    # A barrier has no holder: its episodes are waiter episodes (a latecomer preempted).
    if got["lhp"] != 0:
        problems.append(f"barrierbench: holder episodes at a barrier ({got})")
    if got["lwp"] == 0 or ms <= 0:
        problems.append(f"barrierbench: no barrier preemption detected ({got}, {ms} ms)")
    if problems:
        lt.fail("; ".join(problems), json.dumps(rep["pvlock"], indent=1))
    print(f"PASS: lock and barrier preemption detected ({got['lwp']} barrier episodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
