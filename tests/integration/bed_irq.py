#!/usr/bin/env python3
"""Device interrupts on a real-SVM KVM (the nested test bed, docs/testbed.md): irqtest with
two testdevs sharing an IOAPIC input, pc-testdev and pci-testdev, under this build's
lockstep-vm in an L1 whose KVM keeps an interrupt in service until the guest's EOI, as
hardware does, so that irqtest's strict level-triggered checks run (remote IRR set until EOI,
one delivery per assertion), which the development machines' KVM cannot show.

usage: bed_irq.py BUILD_DIR BIN_DIR GUEST_DIR
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed  # noqa: E402
import lockstep_test as lt  # noqa: E402

SCRIPT = r"""
cat >"$BED_OUT/vm.json" <<DEF
{"name": "irq", "vcpus": 2, "memory": "64M", "kernel": "$GUEST/irqtest.elf",
 "devices": [{"type": "testdev"}, {"type": "testdev", "slot": 4}, {"type": "pc-testdev"},
             {"type": "pci-testdev"}]}
DEF
"$BIN/lockstep-vm" --config "$BED_OUT/vm.json" --console --timeout 240 \
	--stats-json "$BED_OUT/stats.json" >"$BED_OUT/console" 2>&1
echo "status=$?"
"""


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    build_dir, bin_dir, guest_dir = sys.argv[1:4]
    with bed.for_test(build_dir, machine="q35", edu=False, smp=2, mem_mib=1024,
                      env={"BIN": os.path.abspath(bin_dir),
                           "GUEST": os.path.abspath(guest_dir)}) as b:
        r = b.run(SCRIPT, timeout=600)
        console = b.read("console")
        stats = b.read("stats.json") if os.path.exists(b.path("stats.json")) else "{}"
    res = lt.results(console)
    if "status=0" not in r.stdout or not res or res[-1].get("ok") != "1":
        lt.fail(f"irqtest in the bed: {r.stdout.strip()}", console)
    if res[-1].get("strict_eoi") != "1":
        lt.fail("the bed's KVM completed an interrupt without EOI: no strict checks ran",
                console)
    if res[-1].get("tests") != "ioapic,intx,share,msi,msix,irqfd,bad,pcitest":
        lt.fail(f"irqtest ran {res[-1].get('tests')}", console)
    irq = json.loads(stats).get("irq", {})
    if irq.get("commit_failures", 1) != 0:
        lt.fail("routing commits refused in the bed", json.dumps(irq, indent=1))
    print(f"PASS: irqtest with strict EOI checks on the bed's real-SVM KVM "
          f"({res[-1]['passed']} checks, script {r.seconds:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
