#!/usr/bin/env python3
"""Device interrupts under lockstep-vm: the guest's checks and the worker's interrupt report.

usage: vm_irq.py LOCKSTEP_VM GUEST_DIR CASE VCPUS
  test    irqtest with two testdevs (slots 3 and 4: one shared IOAPIC input), pc-testdev and
          pci-testdev: every guest check passes, and the report agrees with what the guest did
          (INTx lines where QEMU's PC machine puts them, the bad messages and table accesses
          it made counted, no commit refused, no steered interrupt delivered to a gated vCPU)
  lat     irqlat in every mode (msix, msi, intx, signal) for a few hundred deliveries: the
          latency program runs to the end; no figure is asserted (lockstep-bench measures)
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402


def run_vm(vm, guest_dir, program, vcpus, devices, cmdline=""):
    work = tempfile.mkdtemp(prefix="lockstep-irq-")
    report = os.path.join(work, "stats.json")
    definition = os.path.join(work, "vm.json")
    with open(definition, "w") as f:
        json.dump({"name": "irq", "vcpus": int(vcpus), "memory": "64M",
                   "kernel": os.path.join(guest_dir, program + ".elf"),
                   "cmdline": cmdline, "devices": devices}, f)
    status, out, err = lt.run([vm, "--config", definition, "--console", "--timeout", "120",
                               "--stats-json", report], timeout=180)
    rep = json.load(open(report)) if os.path.exists(report) else None
    return status, out, err, rep


def check_report(irq, problems):
    if irq["commit_failures"] != 0:
        problems.append(f"{irq['commit_failures']} routing commits refused")
    pci = {d["name"]: d for d in irq["pci"]}
    # QEMU's PC machine: slot s, INTA -> PIRQ (s - 1) mod 4 -> IRQs 10, 10, 11, 11
    for name, slot, want in (("testdev0", 3, 11), ("testdev1", 4, 11)):
        d = pci.get(name)
        if not d or d["slot"] != slot or d.get("intx_irq") != want:
            problems.append(f"{name}: expected slot {slot} on IRQ {want}, got {d}")
    t0 = pci.get("testdev0", {})
    if t0.get("bad_messages", 0) < 2:
        problems.append(f"testdev0 counted {t0.get('bad_messages')} bad messages, the guest "
                        "programmed two")
    if t0.get("bad_table_accesses", 0) < 2:
        problems.append(f"testdev0 counted {t0.get('bad_table_accesses')} bad MSI-X table "
                        "accesses, the guest made two")
    if pci.get("host-bridge", {}).get("slot") != 0:
        problems.append("no host bridge in slot 0")
    for r in irq["routes"]:
        if r["to_gated"]["miss"] != 0:
            problems.append(f"GSI {r['gsi']}: {r['to_gated']['miss']} steered interrupts "
                            "went to a gated vCPU")
        if r["kind"] == "pin" and r["gsi"] == 11 and r["lines"] != 2:
            problems.append(f"IRQ 11 has {r['lines']} lines, expected the two testdevs'")
    if irq["posting"]["apicv"] is None:
        problems.append("no posting report")


def case_test(vm, guest_dir, vcpus):
    devices = [{"type": "testdev"}, {"type": "testdev", "slot": 4}, {"type": "pc-testdev"},
               {"type": "pci-testdev"}]
    status, out, err, rep = run_vm(vm, guest_dir, "irqtest", vcpus, devices)
    res = lt.results(out)
    if status != 0 or not res or res[-1].get("ok") != "1":
        lt.fail(f"irqtest with {vcpus} vCPUs: status {status}", out + err)
    if res[-1].get("tests") != "ioapic,intx,share,msi,msix,irqfd,bad,pcitest":
        lt.fail(f"irqtest ran {res[-1].get('tests')}", out + err)
    if not rep or "irq" not in rep:
        lt.fail("no interrupt report", err)
    problems = []
    check_report(rep["irq"], problems)
    if problems:
        lt.fail("; ".join(problems), json.dumps(rep["irq"], indent=1))
    print(out, end="")


def case_lat(vm, guest_dir, vcpus):
    for mode, target in (("msix", "cpu=1"), ("msi", "cpu=1"), ("intx", "cpu=0"),
                         ("signal", "cpu=1"), ("msix", "steer=1")):
        if target == "cpu=1" and int(vcpus) < 2:
            target = "cpu=0"
        args = f"mode={mode} {target} count=200 period_us=2000 seconds=60"
        status, out, err, rep = run_vm(vm, guest_dir, "irqlat", vcpus, [{"type": "testdev"}],
                                       args)
        res = lt.results(out)
        if status != 0 or not res or res[-1].get("ok") != "1":
            lt.fail(f"irqlat {args}: status {status}", out + err)
        r = res[-1]
        if int(r["delivered"]) < 1 or int(r["raised"]) < int(r["delivered"]):
            lt.fail(f"irqlat {args}: delivered {r['delivered']} of {r['raised']}", out)
        if mode == "signal" and rep["irq"]["signal_msi"]["sent"] < int(r["delivered"]):
            lt.fail(f"signal mode sent {rep['irq']['signal_msi']['sent']} KVM_SIGNAL_MSIs",
                    json.dumps(rep["irq"], indent=1))
        print(out, end="")


def main():
    vm, guest_dir, case, vcpus = sys.argv[1:5]
    lt.need_kvm()
    {"test": case_test, "lat": case_lat}[case](vm, guest_dir, vcpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
