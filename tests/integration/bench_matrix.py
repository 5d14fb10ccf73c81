#!/usr/bin/env python3
"""lockstep-bench matrix --preset quick, as a smoke run: no figure is asserted.

usage: bench_matrix.py BIN_DIR GUEST_DIR

Runs the quick matrix against a lockstepd of the bench's own (--spawn) and checks that it
exits 0 and leaves a well-formed result directory:
  - results.jsonl: JSON lines; a run record (host, versions, options), a gang-check record
    showing lockstepd refused gang for a VM wider than the host, the switch cost S of the
    repetition (switchbench under mux, a positive figure), one kept measurement of
    every planned cell and of the references, each lockstep VM with its result line and the
    figures of its last run (worker report and scheduler accounting), and a summary;
  - table.md: a table per workload, n/a for gang at 2x one, S, the targets (one VM wider
    than the host, two VMs) and noise sections;
  - efficiency.svg (XML with the panels' titles) and efficiency.png (a PNG);
  - no sanitizer report in the spawned lockstepd's log (the ASan build of the suite).
Timings are not checked: the machine may be busy (--force), and the figures then mean
nothing, but every path of the benchmark still runs.  ctest runs it alone (RUN_SERIAL).

A measurement may fail for the benchmark's own reasons of quality: the VMs of a cell must run
side by side, which a busy machine prevents (their measurement windows overlap too little).
Such a failure on a run that other work disturbed is the machine's, not the benchmark's: the
test waits for a quiet spell (bounded) and runs the matrix once more, and if the machine stays
busy it skips (exit 77) saying so.  A measurement that fails on an undisturbed run fails the
test.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402

QUICK_WORKLOADS = ["ticket-plain", "ticket-pv", "barrier-plain", "ipi"]
POLICIES = ["host", "pinned", "gang", "relaxed", "adaptive", "mux"]
LAYOUTS = ["1x", "2x one", "2x several"]
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def check(cond, what, *context):
    if not cond:
        lt.fail(what, "\n".join(repr(c)[:2000] for c in context) or None)


def records(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                lt.fail(f"results.jsonl line {n} is not JSON: {e}", line[:500])
    return out


# The benchmark's own threshold for "other processes took CPU time" (--noisy-fraction).
NOISY_CPUS = 0.05


def disturbed(recs):
    """The most other work any measurement of the run saw, in CPUs."""
    return max([r["host"]["foreign_cpus"] for r in recs if r["type"] == "measurement"],
               default=0.0)


def check_measurements(recs, qemu):
    """Checks every planned cell was measured; returns the kept measurements that failed."""
    kept = [r for r in recs if r["type"] == "measurement" and not r["discarded"]]
    cells = {(r["workload"], r["policy"], r["layout"]) for r in kept if not r["reference_run"]}
    for w in QUICK_WORKLOADS:
        refs = [r for r in kept if r["workload"] == w and r["reference_run"]]
        check(len(refs) == 2, f"{w}: two reference runs (start and end of its block)", refs)
        for p in POLICIES + (["qemu"] if qemu else []):
            for lay in LAYOUTS:
                if p == "gang" and lay == "2x one":
                    check((w, p, lay) not in cells, "gang 2x one is n/a, not run")
                    continue
                check((w, p, lay) in cells, f"a measurement of {w} / {p} / {lay}")
    failed = [r for r in kept if r["status"] != "ok"]
    for r in failed:
        check(r["status"] == "failed" and r["reason"], "a failed measurement says why", r)
    for r in kept:
        if r["status"] != "ok":
            continue
        check(r["throughput"] > 0 and "efficiency" in r, "throughput and efficiency", r)
        check(len(r["vms"]) == r["vms_count"], "one record per VM", r)
        for vm in r["vms"]:
            check(vm.get("result", {}).get("program"), "each VM's result line", vm)
            if r["vmm"] == "lockstep":
                last = vm.get("last_run") or {}
                check("pvlock" in last.get("stats", {}), "the worker's end-of-run report", vm)
                check(last.get("sched", {}).get("policy") == r["policy"],
                      "the scheduler's accounting of the run", last.get("sched"))
            if r["workload"].endswith("-pv") and r["vmm"] == "lockstep":
                check(vm["backend"] == "lockstep", "pv runs on lockstep's doorbell", vm)
    return failed


def check_outputs(out, recs):
    table = open(os.path.join(out, "table.md")).read()
    for w in QUICK_WORKLOADS:
        check(f"(`{w}`)" in table, f"table.md has a table for {w}", table)
    check("| 2x one | 1 VM × 4 |" in table and "n/a" in table, "gang 2x one shown as n/a", table)
    check("## Targets" in table and "## Noise" in table, "targets and noise sections", table)
    check("### One VM wider than the host" in table and "ticket-pv | 1 VM × 4" in table,
          "the targets of a VM wider than the host", table)
    check("S, one vCPU switch" in table, "S in the targets", table)
    svg = ET.parse(os.path.join(out, "efficiency.svg")).getroot()
    check(svg.tag.endswith("svg"), "efficiency.svg is SVG", svg.tag)
    text = " ".join(t for t in svg.itertext())
    check("ticket lock, plain" in text, "the SVG has the workload panels", text[:500])
    with open(os.path.join(out, "efficiency.png"), "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "efficiency.png is a PNG")
    check(recs[-1]["type"] == "summary" and recs[-1]["cells"], "a summary record at the end")


def run_matrix(bench, guest_dir, out):
    """One quick matrix into `out`, checked; returns its records and failed measurements."""
    cmd = [bench, "matrix", "--preset", "quick", "--spawn", "--out", out, "--guest-dir",
           guest_dir, "--force", "--wait-idle", "0", "--retries", "0", "--no-progress"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=540)
    # 1 is the benchmark saying some measurements failed (checked below); the end of the
    # output holds what matters on any other failure (a sanitizer's report).
    check(p.returncode in (0, 1) and os.path.exists(os.path.join(out, "results.jsonl")),
          f"lockstep-bench matrix exited {p.returncode}", p.stdout[-1800:])
    recs = records(os.path.join(out, "results.jsonl"))
    run = recs[0]
    check(run["type"] == "run" and run["host"]["cpus"] >= 1 and run["lockstepd"]["version"],
          "a run record with the host and versions first", run)
    qemu = run["qemu"].startswith("ran")
    gang = [r for r in recs if r["type"] == "gang-check"]
    check(gang and all(r["refused"] for r in gang), "lockstepd refused wide gang VMs", gang)
    switch = [r for r in recs if r["type"] == "switch-cost"]
    check(switch and all(r["switch_ns"] > 0 for r in switch if r["status"] == "ok"),
          "S measured (switchbench under mux), or its failure recorded", switch)
    failed = check_measurements(recs, qemu)
    check((p.returncode == 1) == bool(failed), "the exit status says whether measurements failed",
          p.returncode, len(failed), p.stdout[-600:])
    check_outputs(out, recs)
    log = open(os.path.join(out, "lockstepd.log")).read()
    check(not any(mark in log for mark in SANITIZER_MARKS),
          "no sanitizer report from the spawned lockstepd", log[-4000:])
    return recs, failed


def main():
    bin_dir, guest_dir = sys.argv[1], sys.argv[2]
    lt.need_kvm()
    bench = os.path.join(bin_dir, "lockstep-bench")
    for prog in (bench, os.path.join(bin_dir, "lockstepd")):
        if not os.access(prog, os.X_OK):
            lt.fail(f"{prog} is not built")
    if not shutil.which("gnuplot"):
        lt.skip("gnuplot is not installed (scripts/deps.sh installs gnuplot-nox)")
    for attempt in (1, 2):
        out = tempfile.mkdtemp(prefix="bench_matrix.")
        try:
            recs, failed = run_matrix(bench, guest_dir, out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if not failed:
            print(f"PASS: quick matrix, {len(recs)} records, QEMU: {recs[0]['qemu']}")
            return
        load = disturbed(recs)
        reasons = sorted({r["reason"] for r in failed})
        check(load > NOISY_CPUS, "measurements failed on a run no other work disturbed",
              reasons, failed[:3])
        print(f"     run {attempt}: {len(failed)} measurements failed with up to {load:.2f} "
              f"CPUs of other work ({'; '.join(reasons)[:300]})", flush=True)
        if attempt == 1:
            quiet, seen = lt.wait_quiet()
            if not quiet:
                lt.skip_busy(seen, "the quick matrix's cells cannot run side by side")
    lt.skip_busy(load, "the quick matrix's cells cannot run side by side")


if __name__ == "__main__":
    main()
