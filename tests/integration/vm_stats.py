#!/usr/bin/env python3
"""lockstep-vm --stats/--stats-json report what happened in the run.

usage: vm_stats.py LOCKSTEP_VM GUEST_DIR
Runs smp-counter with 4 vCPUs and the kick probe, then checks the JSON report against the
run: the console byte count equals what the guest printed, every vCPU has a host thread id,
every probe kick is accounted for with a latency, and the first serial byte came after start.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402


def main():
    vm, guest_dir = sys.argv[1:3]
    lt.need_kvm()
    report_path = os.path.join(tempfile.mkdtemp(prefix="lockstep-stats-"), "stats.json")
    kicks = 100
    status, out, err = lt.run([vm, "--kernel", os.path.join(guest_dir, "smp-counter.elf"),
                               "--vcpus", "4", "--console", "--timeout", "60", "--stats",
                               "--kick-probe", str(kicks), "--cmdline",
                               "iterations=200000000", "--stats-json", report_path])
    if status != 0:
        lt.fail(f"smp-counter exited with {status}", out + err)
    rep = json.load(open(report_path))
    problems = []
    if rep["vcpus"] != 4 or len(rep["vcpu"]) != 4:
        problems.append("report does not list 4 vCPUs")
    if rep["serial_bytes"] != len(out.encode()):
        problems.append(f"serial_bytes {rep['serial_bytes']} != console {len(out.encode())}")
    if not rep["first_serial_byte_ms"] or rep["first_serial_byte_ms"] > rep["run_ms"]:
        problems.append(f"first_serial_byte_ms {rep['first_serial_byte_ms']} not in the run")
    if any(v["tid"] <= 0 for v in rep["vcpu"]):
        problems.append("a vCPU has no host thread id")
    got = sum(v["kicks"] for v in rep["vcpu"])
    sent = rep["probe_kicks_sent"]
    # The probe stops when the guest does, so a fast run sends fewer than asked; it still
    # must have sent some.  Every probe kick ends one KVM_RUN; the final stop kicks each
    # vCPU once more at most.
    if sent < 10 or sent > kicks:
        problems.append(f"{sent} probe kicks sent of {kicks} asked")
    if got < sent or got > sent + 4:
        problems.append(f"{got} kicks recorded, {sent} probe kicks sent")
    if not any(v["kick_latency_ns"]["median"] > 0 for v in rep["vcpu"]):
        problems.append("no kick latency measured")
    if "Statistics" not in err and "statistics" not in err:
        problems.append("--stats printed no table")
    if problems:
        lt.fail("; ".join(problems), json.dumps(rep, indent=1) + err)
    print(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
