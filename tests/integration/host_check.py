#!/usr/bin/env python3
"""`lockstep host check` against a real lockstepd on this machine.

usage: host_check.py BIN_DIR GUEST_DIR

- every fact has a verdict, a value, a source and a meaning, and ids are unique; the text
  output has one line per fact with its source, and `--verbose` explains every fact;
- the KVM flavour is what /sys/module and /proc/cpuinfo say (here: PVM, a software KVM with
  neither VMX nor SVM), and what follows from it holds: on PVM no PLE (and PLE statistics
  not expected), no APICv/AVIC, no nested paging, no tagged TLB, the probe answered;
- facts agree with the files they name (halt_poll_ns, IOMMU groups, the hypervisor bit,
  transparent huge pages);
- daemon.info carries the same summary; host.check refuses parameters;
- the scheduler: an adaptive VM without pvlock on a host without PLE co-schedules throughout
  and sched.stats and the log say why; with pvlock it waits for episodes, and sched.stats
  says PLE statistics are absent;
- a lockstepd whose worker binary cannot probe still answers, with the reason.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402


def expected_flavour():
    modules = os.listdir("/sys/module")
    if "kvm_pvm" in modules:
        return "pvm"
    if "kvm_intel" in modules:
        return "vmx"
    if "kvm_amd" in modules:
        return "svm"
    return "unknown" if "kvm" in modules else "none"


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def facts_by_id(report):
    return {f["id"]: f for f in report["facts"]}


def well_formed(report):
    ids = [f["id"] for f in report["facts"]]
    check(len(ids) == len(set(ids)) and len(ids) >= 25, "fact ids unique, all there", ids)
    for f in report["facts"]:
        check(f["verdict"] in ("pass", "warn", "fail", "n/a"), "verdict", f)
        check(f["id"].startswith(f["group"] + "."), "id is group.name", f)
        for key in ("value", "source", "meaning"):
            check(isinstance(f[key], str) and f[key].strip(), f"{f['id']} has a {key}", f)
        check(f["fix"] is None or f["fix"].strip(), "fix is text or null", f)
    s = report["summary"]
    counts = {v: sum(1 for f in report["facts"] if f["verdict"] == v)
              for v in ("pass", "warn", "fail", "n/a")}
    check([s["pass"], s["warn"], s["fail"], s["na"]] ==
          [counts["pass"], counts["warn"], counts["fail"], counts["n/a"]], "summary counts",
          s, counts)
    check(sorted(s["attention"]) == sorted(f["id"] for f in report["facts"]
                                           if f["verdict"] in ("warn", "fail")),
          "attention lists warn and fail", s)
    ok(f"{len(ids)} facts, each with verdict, value, source and meaning")


def flavour_and_consequences(report):
    by = facts_by_id(report)
    s = report["summary"]
    want = expected_flavour()
    check(s["flavour"] == want, f"flavour {s['flavour']}, /sys/module says {want}", s)
    check(s["kvm_probed"] is True and s["kvm_error"] is None, "the probe answered", s)
    check(by["kvm.device"]["verdict"] == "pass" and "API version 12" in by["kvm.device"]["value"],
          "kvm.device", by["kvm.device"])
    flags = cpu_flags()
    if want == "pvm":
        f = by["kvm.flavour"]
        check(f["verdict"] == "warn" and "software KVM: PVM (kvm_pvm)" in f["value"],
              "PVM is named", f)
        check("/sys/module/kvm_pvm" in f["source"], "its source is the module", f)
        if "vmx" not in flags and "svm" not in flags:
            check("neither VMX nor SVM" in f["value"], "no VMX/SVM in CPUID", f)
            check("CPUID 0x1 ECX[5] (VMX) = 0" in f["source"] and
                  "CPUID 0x80000001 ECX[2] (SVM) = 0" in f["source"], "CPUID bits as source", f)
        check("guest ring 0 is emulated" in f["meaning"] and "no pause-loop exits" in f["meaning"],
              "what follows from PVM", f)
        for fid in ("kvm.ple", "kvm.apicv", "kvm.nested_paging", "kvm.tagged_tlb"):
            check(by[fid]["verdict"] == "warn" and by[fid]["value"].startswith("none"),
                  f"{fid}: none on PVM", by[fid])
            check("/sys/module/kvm_pvm" in by[fid]["source"], f"{fid}: source", by[fid])
        check(s["ple_expected"] is False and "kvm_pvm" in s["ple"], "PLE not expected", s)
        check(by["kvm.stats"]["verdict"] == "warn" and "stay 0" in by["kvm.stats"]["value"],
              "PLE statistics exist but stay 0", by["kvm.stats"])
        check("directed_yield_attempted" in by["kvm.stats"]["details"], "the statistic named",
              by["kvm.stats"])
        ok("PVM: software KVM, no VMX/SVM, and no PLE, APICv, nested paging or tagged TLB")
    elif want in ("vmx", "svm"):
        check(by["kvm.flavour"]["verdict"] == "pass", "hardware KVM", by["kvm.flavour"])
        check(s["ple_expected"] == (by["kvm.ple"]["verdict"] == "pass"), "PLE answer", s)
        ok(f"{want}: hardware KVM")


def facts_match_files(report):
    by = facts_by_id(report)
    with open("/sys/module/kvm/parameters/halt_poll_ns") as f:
        halt = f.read().strip()
    check(f"halt_poll_ns={halt}" in by["kvm.halt_poll"]["value"], "halt_poll_ns",
          by["kvm.halt_poll"], halt)
    groups = os.listdir("/sys/kernel/iommu_groups") if os.path.isdir(
        "/sys/kernel/iommu_groups") else []
    if groups:
        check(f"{len(groups)} group" in by["iommu.groups"]["value"], "IOMMU groups",
              by["iommu.groups"])
    else:
        check(by["iommu.groups"]["verdict"] == "warn" and
              by["iommu.dma_remapping"]["value"].startswith("off"), "no IOMMU groups",
              by["iommu.groups"])
    virtual = "hypervisor" in cpu_flags()
    check((by["cpu.hypervisor"]["verdict"] == "warn") == virtual, "hypervisor bit",
          by["cpu.hypervisor"])
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
        mode = re.search(r"\[(\w+)\]", f.read()).group(1)
    check(by["mem.hugepages"]["value"] == f"transparent huge pages: {mode}", "THP mode",
          by["mem.hugepages"])
    ok("facts agree with /sys/module/kvm, /sys/kernel/iommu_groups, cpuinfo, THP")


def text_output(d, report):
    status, out, err = d.cli("host", "check")
    check(status == 0, "lockstep host check", err)
    lines = [line for line in out.splitlines()
             if re.match(r"  (PASS|WARN|FAIL|n/a ) ", line)]
    check(len(lines) == len(report["facts"]), "one line per fact", out)
    for f, line in zip(report["facts"], lines):
        check(f["id"] in line and f["value"] in line and f"[{f['source']}]" in line,
              "verdict, fact, value and source on the line", line, f)
    check(out.count("why:") == sum(1 for f in report["facts"]
                                   if f["verdict"] in ("warn", "fail")),
          "meanings under the facts that warn or fail", out)
    status, out, err = d.cli("host", "check", "--verbose")
    check(status == 0 and out.count("why:") == len(report["facts"]), "--verbose explains all",
          out)
    status, out, err = d.cli("host", "check", "--json")
    check(status == 0 and json.loads(out)["summary"]["flavour"] == report["summary"]["flavour"],
          "host check --json", out)
    status, _, err = d.cli("host", "check", "--bogus")
    check(status == 2, "a bad option is a usage error", err)
    ok("text output: one line per fact with its source; --verbose; --json")


def daemon_info(d, report):
    c = d.client()
    info = c.result("daemon.info")
    host = info["host"]
    for key in ("flavour", "pass", "warn", "fail", "na", "ple_expected"):
        check(host[key] == report["summary"][key], f"daemon.info host.{key}", host,
              report["summary"])
    e = c.error("host.check", {"verbose": True}, dh.INVALID_PARAMS)
    check("verbose" in e["message"], "host.check names the parameter it refuses", e)
    c.close()
    status, out, _ = d.cli("daemon", "info")
    check(f"host check: {report['summary']['flavour']} KVM" in out, "lockstep daemon info", out)
    ok("daemon.info carries the summary; host.check refuses parameters")


def adaptive_signals(env, d, report):
    c = d.client()
    ple = report["summary"]["ple_expected"]
    # blind: neither the pvlock channel nor KVM's pv calls (a Linux guest's) can report
    for name, pvlock in (("blind", {"enabled": False, "kvm_features": []}),
                         ("seeing", {"enabled": True})):
        c.result("vm.define", definition=env.definition(
            name, "idle", vcpus=2, sched={"policy": "adaptive"}, pvlock=pvlock))
        c.result("vm.start", name=name)

    def scheduled():
        vms = c.result("sched.stats")["vms"]
        return vms if len(vms) == 2 else None
    vms = {v["name"]: v for v in dh.wait_for(scheduled, 20, "both VMs scheduled")}
    for v in vms.values():
        check(v["ple_statistics"] == ("expected" if ple else "absent"), "ple_statistics", v)
    blind, seeing = vms["blind"], vms["seeing"]
    check(seeing["adaptive_without_signals"] is False and seeing["warnings"] == [],
          "with pvlock adaptive waits for episodes", seeing)
    if not ple:
        check(blind["adaptive_without_signals"] is True and blind["coscheduling"] is True,
              "without pvlock or PLE adaptive co-schedules throughout", blind)
        check(any("no preemption signal" in w for w in blind["warnings"]), "sched.stats says why",
              blind)
        dh.wait_for(lambda: "VM blind: adaptive gets no preemption signal" in d.log(), 10,
                    "the warning in lockstepd's log")
        check("VM seeing: adaptive acts on pvlock episodes, KVM pv call episodes (Linux "
              "guests); PLE statistics are not expected" in d.log(),
              "the log says what adaptive acts on", d.log())
    else:
        check(blind["adaptive_without_signals"] is False, "PLE is a signal", blind)
    for name in ("blind", "seeing"):
        c.result("vm.destroy", name=name)
    c.close()
    ok("adaptive: PLE statistics " + ("expected" if ple else "absent, so a VM without pvlock "
                                      "co-schedules throughout, said in sched.stats and the log"))


def probe_failure(env):
    # A worker binary that runs but answers nothing: the check still answers, with why.
    d = env.daemon("--vm-binary", "/bin/false")
    c = d.client()
    report = c.result("host.check")
    s = report["summary"]
    check(s["kvm_probed"] is False and "exited with status 1" in s["kvm_error"],
          "the probe's failure is reported", s)
    by = facts_by_id(report)
    check(by["kvm.device"]["verdict"] == "n/a" and "exited with status 1" in
          by["kvm.device"]["value"], "kvm.device says why", by["kvm.device"])
    check(s["flavour"] == expected_flavour(), "sysfs facts are there all the same", s)
    c.close()
    d.stop()
    ok("a probe that fails: the report says why, the rest is there")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        report = d.cli_json("host", "check")
        well_formed(report)
        flavour_and_consequences(report)
        facts_match_files(report)
        text_output(d, report)
        daemon_info(d, report)
        adaptive_signals(env, d, report)
        probe_failure(env)


if __name__ == "__main__":
    main()
