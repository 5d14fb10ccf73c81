#!/usr/bin/env python3
"""The test bed's emulated IOMMU and VFIO: an L1 on q35 with intel-iommu or amd-iommu (with
or without interrupt remapping) and QEMU's edu device.  edu (PCI 1234:11e8) is found, bound
to vfio-pci, /dev/vfio/GROUP appears, the group holds edu alone, sysfs names the IOMMU,
the kernel log and /proc/interrupts show whether interrupts are remapped, and
bed_vfio_probe.py drives the VFIO type1 flow with edu's DMA engine: a round trip through
translated IOVAs, and writes to unmapped, read-only and unmapped-again IOVAs blocked
(intel-iommu also logs the fault).  Without interrupt remapping vfio_iommu_type1 refuses
the container (EPERM) until allow_unsafe_interrupts is set; then the same flow works.

usage: bed_vfio.py BUILD_DIR intel|amd intremap|nointremap
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed  # noqa: E402
import lockstep_test as lt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = r"""
edus=$(bed_pci_find 1234:11e8)
echo "edus=$(echo $edus)"
bdf=${edus%% *}
[ -n "$bdf" ] || bed_fail "no edu device (1234:11e8) on L1's PCI bus"
echo "bdf=$bdf"
echo "driver_before=$(bed_driver "$bdf")"
group=$(bed_vfio_bind "$bdf") || exit 1
echo "group=$group"
echo "driver=$(bed_driver "$bdf")"
[ -c "/dev/vfio/$group" ] && echo "vfio_dev=1"
[ -c /dev/vfio/vfio ] && echo "vfio_container=1"
echo "group_devices=$(ls "/sys/kernel/iommu_groups/$group/devices" | tr '\n' ' ')"
echo "group_type=$(cat "/sys/kernel/iommu_groups/$group/type")"
for i in /sys/class/iommu/*; do
	echo "iommu=${i##*/}"
	[ -e "$i/devices/$bdf" ] && echo "edu_iommu=${i##*/}"
	for f in "$i"/intel-iommu/* "$i"/amd-iommu/*; do
		[ -f "$f" ] && echo "iommu_attr_${f##*/}=$(cat "$f")"
	done
done
echo "ir_msi_lines=$(grep -c 'IR-PCI-MSI' /proc/interrupts)"
unsafe=/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts
echo "unsafe_interrupts=$(cat $unsafe)"
python3 "$PROBE" "$bdf" "$group" >"$BED_OUT/probe" 2>&1
echo "probe=$?"
if [ "$REMAP" = nointremap ]; then
	echo Y >$unsafe
	python3 "$PROBE" "$bdf" "$group" >"$BED_OUT/probe.unsafe" 2>&1
	echo "probe_unsafe=$?"
fi
dmesg >"$BED_OUT/dmesg"
"""


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("intel", "amd") \
            or sys.argv[3] not in ("intremap", "nointremap"):
        print(__doc__)
        return 2
    build_dir, iommu, remap = sys.argv[1:4]
    intremap = remap == "intremap"
    with bed.for_test(build_dir, machine="q35", iommu=iommu, intremap=intremap, edu=True,
                      smp=2, mem_mib=1024, kvm=False,
                      env={"PROBE": os.path.join(HERE, "bed_vfio_probe.py"),
                           "REMAP": remap}) as b:
        r = b.run(SCRIPT, timeout=600)
        probe = b.read("probe")
        if not intremap:
            # vfio_iommu_type1 refuses an IOMMU that cannot remap interrupts, unless told
            # to allow unsafe interrupts; then the flow is the same
            first = probe
            probe = b.read("probe.unsafe")
        dmesg = b.read("dmesg")
    print(r.stdout, end="")
    print("---- probe ----\n" + probe, end="")

    def check(cond, what, *more):
        if not cond:
            lt.fail(what, "\n".join(more) or f"{r}\n---- probe ----\n{probe}")

    check(r.status == 0, f"the script failed (status {r.status})")
    f = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    bdf = f.get("bdf", "")
    check(f.get("edus") == bdf, f"expected one edu device, found {f.get('edus')!r}")
    check(f.get("driver") == "vfio-pci", f"edu is bound to {f.get('driver')!r}")
    check(f.get("vfio_dev") == "1" and f.get("vfio_container") == "1",
          f"/dev/vfio/{f.get('group')} or /dev/vfio/vfio missing")
    check(f.get("group_devices", "").split() == [bdf],
          f"edu's group holds {f.get('group_devices')!r}, not edu alone")
    check(f.get("group_type", "").startswith("DMA"),
          f"edu's group is {f.get('group_type')!r}, not a translated DMA domain")
    iommus = [v for k, v in (line.split("=", 1) for line in r.stdout.splitlines()
                             if line.startswith("iommu="))]
    want = r"dmar\d+" if iommu == "intel" else r"ivhd\d+"
    check(len(iommus) == 1 and re.fullmatch(want, iommus[0]),
          f"/sys/class/iommu holds {iommus}, expected one {want}")
    check(f.get("edu_iommu") == iommus[0], f"edu is not behind {iommus[0]}")

    remapped = int(f.get("ir_msi_lines", "0")) > 0
    if iommu == "intel":
        check("DMAR: IOMMU enabled" in dmesg, "dmesg lacks 'DMAR: IOMMU enabled'", dmesg)
        said = "DMAR-IR: Enabled IRQ remapping" in dmesg
    else:
        check("AMD-Vi" in dmesg, "dmesg never mentions AMD-Vi", dmesg)
        said = "AMD-Vi: Interrupt remapping enabled" in dmesg
    check(said == intremap, f"the kernel log says interrupt remapping is "
          f"{'on' if said else 'off'}; QEMU's intremap={'on' if intremap else 'off'}", dmesg)
    check(remapped == intremap, f"/proc/interrupts has {f.get('ir_msi_lines')} IR-PCI-MSI "
          f"lines; interrupt remapping is {'on' if intremap else 'off'}")

    check(f.get("unsafe_interrupts") == "N", "allow_unsafe_interrupts is on by default")
    if not intremap:
        check(f.get("probe") == "3" and "set_iommu=EPERM" in first,
              "VFIO_SET_IOMMU without interrupt remapping was not refused with EPERM", first)
        check("No interrupt remapping support" in dmesg,
              "vfio_iommu_type1 did not log why it refused", dmesg)
        f["probe"] = f.get("probe_unsafe")
    p = dict(line.split("=", 1) for line in probe.splitlines() if "=" in line)
    check(f.get("probe") == "0" and p.get("failed") == "none",
          f"the VFIO probe failed: {p.get('failed')}", probe)
    check(p.get("api_version") == "0" and p.get("type1v2") == "1",
          "VFIO API version or TYPE1v2 extension unexpected", probe)
    check(p.get("phys_a") != p.get("iova_a"), "IOVA and physical address coincide", probe)
    if iommu == "intel":
        # intel-iommu reports the blocked writes; QEMU 7.2's amd-iommu blocks silently
        short = bdf.split(":", 1)[1]
        check(re.search(rf"DMAR: \[DMA Write.*Request device \[{re.escape(short)}\]", dmesg),
              f"no DMAR write fault for {short} in the kernel log", dmesg)
    print(f"PASS: {iommu}-iommu (intremap {'on' if intremap else 'off'}): edu {bdf} in group "
          f"{f.get('group')} on vfio-pci, DMA remapped and blocked as mapped "
          f"(script {r.seconds:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
