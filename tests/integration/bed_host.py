#!/usr/bin/env python3
"""`lockstep host check` inside the nested test beds (docs/testbed.md), where the hardware
this machine lacks is emulated: a real-SVM KVM with nested paging, and an emulated VT-d or
AMD-Vi IOMMU with or without interrupt remapping.  A lockstepd of this build runs in L1;
its report must state what each bed is known to have, each fact with its source, and the
passthrough path's early refusal (host_iommu_ready) must follow interrupt remapping.

usage: bed_host.py BUILD_DIR BIN_DIR TOOLS_DIR svm|intel|intel-nointremap|amd|amd-nointremap

svm: q35 without an IOMMU, kvm_amd loaded.  The others add the IOMMU and QEMU's edu device:
the check runs before and after edu is bound to vfio-pci.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed  # noqa: E402
import lockstep_test as lt  # noqa: E402

SCRIPT = r"""
run=/tmp/lockstep-host
mkdir -p $run
"$BIN/lockstepd" --foreground --run-dir $run/run --state-dir $run/state --no-virt \
	--vm-binary "$BIN/lockstep-vm" >"$BED_OUT/lockstepd.log" 2>&1 &
pid=$!
i=0
while [ ! -S $run/run/lockstepd.sock ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
lsc() { "$BIN/lockstep" --socket $run/run/lockstepd.sock "$@"; }
lsc host check --json >"$BED_OUT/before.json"
echo "check_before=$?"
lsc host check --verbose >"$BED_OUT/before.txt"
if [ -n "$EDU" ]; then
	bdf=$(bed_pci_find 1234:11e8)
	echo "bdf=$bdf"
	"$TOOLS/host_iommu_ready" "$bdf" >"$BED_OUT/ready.before"
	echo "ready_before=$?"
	group=$(bed_vfio_bind "$bdf") || exit 1
	echo "group=$group"
	lsc host check --json >"$BED_OUT/after.json"
	echo "check_after=$?"
	"$TOOLS/host_iommu_ready" "$bdf" >"$BED_OUT/ready.after"
	echo "ready_after=$?"
	if [ "$REMAP" = nointremap ]; then
		echo Y >/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts
		"$TOOLS/host_iommu_ready" "$bdf" >"$BED_OUT/ready.unsafe"
		echo "ready_unsafe=$?"
	fi
fi
kill $pid
wait $pid
echo "lockstepd=$?"
"""

CONFIGS = {
    "svm": dict(iommu=None, intremap=True, edu=False),
    "intel": dict(iommu="intel", intremap=True, edu=True),
    "intel-nointremap": dict(iommu="intel", intremap=False, edu=True),
    "amd": dict(iommu="amd", intremap=True, edu=True),
    "amd-nointremap": dict(iommu="amd", intremap=False, edu=True),
}


def main():
    if len(sys.argv) != 5 or sys.argv[4] not in CONFIGS:
        print(__doc__)
        return 2
    build_dir, bin_dir, tools_dir, config = sys.argv[1:5]
    cfg = CONFIGS[config]
    env = {"BIN": os.path.abspath(bin_dir), "TOOLS": os.path.abspath(tools_dir),
           "EDU": "1" if cfg["edu"] else "", "REMAP": "intremap" if cfg["intremap"]
           else "nointremap"}
    names = ["before.json", "before.txt", "lockstepd.log"]
    if cfg["edu"]:
        names += ["after.json", "ready.before", "ready.after"]
        if not cfg["intremap"]:
            names.append("ready.unsafe")
    with bed.for_test(build_dir, machine="q35", smp=2, mem_mib=1024, env=env,
                      **cfg) as b:
        r = b.run(SCRIPT, timeout=600)
        out = {name: b.read(name) for name in names}
    print(r.stdout, end="")
    print("---- lockstep host check --verbose in L1 ----\n" + out["before.txt"], end="")

    def check(cond, what, *more):
        if not cond:
            lt.fail(what, "\n".join(str(m) for m in more) or str(r))

    f = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    check(r.status == 0 and f.get("check_before") == "0", "the script failed",
          str(r), out["lockstepd.log"])
    check(f.get("lockstepd") == "0", "lockstepd in L1 did not stop cleanly", out["lockstepd.log"])
    for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        check(mark not in out["lockstepd.log"], "sanitizer report from lockstepd in L1",
              out["lockstepd.log"])
    report = json.loads(out["before.json"])
    by = {fact["id"]: fact for fact in report["facts"]}
    s = report["summary"]

    def verdict(fid, want, value=None, source=None):
        fact = by.get(fid)
        check(fact is not None, f"no fact {fid}", report)
        check(fact["verdict"] in (want if isinstance(want, tuple) else (want,)),
              f"{fid}: {fact['verdict']} ({fact['value']}), want {want}", fact)
        if value:
            check(value in fact["value"], f"{fid}: value lacks {value!r}", fact)
        if source:
            check(source in fact["source"], f"{fid}: source lacks {source!r}", fact)
        return fact

    for fact in report["facts"]:
        check(fact["source"] and fact["meaning"] and fact["value"], "a fact without source",
              fact)
    # What every bed has: real SVM (TCG's), nested paging, no pause filter.
    check(s["flavour"] == "svm" and s["kvm_probed"], "a hardware-assisted KVM (SVM)", s)
    verdict("kvm.flavour", "pass", "hardware: AMD-V (kvm_amd)",
            "CPUID 0x80000001 ECX[2] (SVM) = 1")
    verdict("kvm.device", "pass", "API version 12")
    verdict("kvm.nested_paging", "pass", "NPT on", "CPUID 0x8000000A EDX[0] (NP) = 1")
    verdict("kvm.ple", "warn", "pause filter not offered by the CPU",
            "CPUID 0x8000000A EDX[10] (PauseFilter) = 0")
    check(s["ple_expected"] is False and "AMD pause filter off" in s["ple"],
          "no PLE statistics expected without a pause filter", s)
    verdict("kvm.ple_window", "n/a", "pause_filter_count=0")
    verdict("kvm.stats", "warn", "stay 0")
    verdict("kvm.disable_exits", "pass")
    verdict("kvm.apicv", "warn", "AVIC", "CPUID 0x8000000A EDX[13] (AVIC)")
    verdict("kvm.nested", "pass", None, "/sys/module/kvm_amd/parameters/nested")
    verdict("kvm.pv_features", "pass", "pv_unhalt")
    verdict("cpu.hypervisor", "warn", "virtual machine")
    verdict("sandbox.cgroup2", "pass", "cgroup v2 at /sys/fs/cgroup")
    ok = [f"SVM with NPT, no pause filter ({config})"]

    if not cfg["iommu"]:
        verdict("iommu.hardware", "warn", "none registered")
        verdict("iommu.dma_remapping", "warn", "off")
        print("PASS: " + "; ".join(ok))
        return 0

    kind = "Intel VT-d" if cfg["iommu"] == "intel" else "AMD-Vi"
    unit = "dmar0" if cfg["iommu"] == "intel" else "ivhd0"
    hw = verdict("iommu.hardware", "pass", f"1 unit: {kind}")
    check(any(d.startswith(f"{unit}: {kind}") for d in hw["details"]), "the unit decoded", hw)
    if cfg["iommu"] == "intel":
        # QEMU's intel-iommu sets ecap bit 3 (IR) exactly when it remaps interrupts
        check(any(f"interrupt remapping {'yes' if cfg['intremap'] else 'no'}" in d
                  for d in hw["details"]), "VT-d ecap[3] decoded as QEMU set it", hw)
    verdict("iommu.dma_remapping", "pass", "on:")
    ir = verdict("iommu.interrupt_remapping", "pass" if cfg["intremap"] else "warn",
                 "on" if cfg["intremap"] else "off")
    if cfg["intremap"]:
        check("IR-*" in ir["value"] and any("remapping" in d.lower() for d in ir["details"]),
              "interrupt remapping from /proc/interrupts and the kernel log", ir)
    verdict("iommu.posted_interrupts", ("pass", "warn"), None,
            "cap[59] (PI)" if cfg["iommu"] == "intel" else "bit 7 (GASup)")
    verdict("iommu.vfio", "pass", "vfio-pci loaded")
    bdf, group = f.get("bdf", ""), f.get("group", "")
    groups = verdict("iommu.groups", "warn", "0 ready for passthrough")
    check(any(d.startswith(f"group {group}: {bdf} [1234:11e8]") for d in groups["details"]),
          f"edu {bdf} listed in group {group}", groups)
    ok.append(f"{kind} with interrupt remapping {'on' if cfg['intremap'] else 'off'}")

    after = {fact["id"]: fact for fact in json.loads(out["after.json"])["facts"]}
    g = after["iommu.groups"]
    check(g["verdict"] == "pass" and "1 ready for passthrough" in g["value"] and
          f"group {group}: {bdf} [1234:11e8] vfio-pci -- ready for passthrough (vfio-pci)"
          in g["details"], "edu on vfio-pci is ready for passthrough", g)
    ok.append("edu ready once bound to vfio-pci")

    if cfg["intremap"]:
        check(f.get("ready_before") == "0" and f.get("ready_after") == "0" and
              out["ready.after"].strip() == "ready", "host_iommu_ready passes",
              out["ready.before"], out["ready.after"])
        ok.append("host_iommu_ready: ready")
    else:
        for name in ("ready.before", "ready.after"):
            check(f.get(name.replace(".", "_")) == "1" and
                  "no interrupt remapping, which VFIO needs" in out[name] and
                  "(iommu.interrupt_remapping)" in out[name],
                  "host_iommu_ready refuses in the check's words", out[name])
        check(f.get("ready_unsafe") == "0", "allow_unsafe_interrupts lets it through",
              out["ready.unsafe"])
        ok.append("host_iommu_ready refuses without interrupt remapping, passes with "
                  "allow_unsafe_interrupts")
    print("PASS: " + "; ".join(ok))
    return 0


if __name__ == "__main__":
    sys.exit(main())
