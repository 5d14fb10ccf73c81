#!/usr/bin/env python3
"""Passthrough on a host without an IOMMU (this machine): every way in refuses with the host
check's own reason, and nothing changes.  lockstep-vm exits 72 naming the device; lockstepd
refuses vm.define (JSON and, through virsh, domain XML <hostdev>) and device.attach; device.host
lists the host's PCI devices with why none can be passed through; device.list, vm devices and
device.detach answer for a VM without passthrough devices.  (The bed tests, bed_passthrough.py,
do the real thing behind an emulated IOMMU.)

usage: daemon_passthrough.py BIN_DIR GUEST_DIR
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as h  # noqa: E402
import lockstep_test as lt  # noqa: E402

EX_DEVICE = 72


def no_iommu():
    return not os.listdir("/sys/class/iommu") if os.path.isdir("/sys/class/iommu") else True


def main():
    bin_dir, guest_dir = sys.argv[1:3]
    if not no_iommu():
        lt.skip("this host has an IOMMU: the refusals below are for hosts without one")
    with h.Env(bin_dir, guest_dir) as env:
        dev = {"type": "vfio-pci", "host": "0000:00:03.0", "managed": True}
        # lockstep-vm alone: exit status 72 and the check's words
        path = env.path("vm.json")
        with open(path, "w") as f:
            json.dump(env.definition("pt", devices=[dev]), f)
        status, out, err = lt.run([env.vm_binary, "--config", path, "--timeout", "30"])
        h.check(status == EX_DEVICE, f"lockstep-vm exited {status}, not {EX_DEVICE}", err)
        h.check("devices[0] (vfio-pci 0000:00:03.0): no IOMMU for passthrough: none "
                "registered (iommu.hardware)" in err, "lockstep-vm's reason", err)
        h.ok("lockstep-vm refuses a vfio-pci device without an IOMMU (exit 72, the reason)")

        virt = env.path("virt.sock")
        d = env.daemon("--virt-socket", virt)
        c = d.client()
        e = c.error("vm.define", {"definition": env.definition("pt", devices=[dev])},
                    code=h.BAD_DEFINITION)
        h.check("devices[0] (vfio-pci 0000:00:03.0): no IOMMU for passthrough" in e["message"] and
                "(iommu.hardware)" in e["message"], "vm.define's reason", e["message"])
        h.check(c.result("vm.list") == [], "nothing was defined", c.result("vm.list"))
        h.ok("vm.define refuses it with the host check's reason")

        c.result("vm.define", definition=env.definition("plain"))
        e = c.error("device.attach", {"name": "plain", "device": dev}, code=h.BAD_DEFINITION)
        h.check("no IOMMU for passthrough" in e["message"], "device.attach's reason", e["message"])
        h.check(c.result("device.list", name="plain")["devices"] == [],
                "the definition is unchanged")
        e = c.error("device.attach", {"name": "plain", "device": {"type": "vfio-pci"}},
                    code=h.BAD_DEFINITION)
        h.check('"device" (vfio-pci) needs "host"' in e["message"], "a bad device object",
                e["message"])
        e = c.error("device.attach", {"name": "plain", "device": "0000:00:03.0"},
                    code=h.INVALID_PARAMS)
        e = c.error("device.detach", {"name": "plain", "host": "0000:00:03.0"},
                    code=h.INVALID_PARAMS)
        h.check("VM plain has no passthrough device 0000:00:03.0" in e["message"],
                "detaching what is not there", e["message"])
        c.error("device.list", {"name": "nosuch"}, code=h.NO_SUCH_VM)
        h.ok("device.attach refused the same way; device.detach and device.list answer")

        host = c.result("device.host")
        h.check(host["iommu_ready"] is False and "no IOMMU for passthrough" in host["why"],
                "device.host says why", host)
        for p in host["devices"]:
            h.check(p["iommu_group"] == -1 and p["passthrough"] == "no IOMMU group",
                    "a PCI device without a group", p)
        h.check(len(host["devices"]) == len([n for n in os.listdir("/sys/bus/pci/devices")]),
                "every PCI device listed", host)
        status, out, err = d.cli("device", "host")
        h.check(status == 0 and "passthrough is not possible here: no IOMMU" in out,
                "lockstep device host", out, err)
        status, out, err = d.cli("vm", "devices", "plain")
        h.check(status == 0 and "no DMA remapping report" in out, "lockstep vm devices", out)
        status, out, err = d.cli("device", "attach", "plain", "0000:00:03.0", "--managed")
        h.check(status == 1 and "no IOMMU for passthrough" in err, "lockstep device attach",
                err)
        h.ok("device.host, lockstep device host|attach and lockstep vm devices")

        if shutil.which("virsh"):
            xml = ("<domain type='kvm'><name>x</name><memory unit='MiB'>16</memory><os><type>"
                   f"hvm</type><kernel>{env.guest('idle')}</kernel></os><devices><hostdev "
                   "mode='subsystem' type='pci' managed='yes'><source><address domain='0' "
                   "bus='0' slot='3' function='0'/></source></hostdev></devices></domain>")
            path = env.path("x.xml")
            with open(path, "w") as f:
                f.write(xml)
            p = subprocess.run(["virsh", "-c", f"lockstep+unix:///system?socket={virt}",
                                "define", path], capture_output=True, text=True, timeout=60)
            h.check(p.returncode != 0 and "no IOMMU for passthrough" in p.stderr,
                    "virsh define of a <hostdev>", p.stdout, p.stderr)
            h.ok("virsh define of a <hostdev> refused with the same reason")
        c.close()
    print("PASS: passthrough refused without an IOMMU, with the reason, nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
