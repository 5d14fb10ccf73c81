"""A Linux guest for the nested test bed (Python 3 stdlib only): the L2 initramfs that
bed_linux.py (the tests) and bed_linux_bench.py (the measurements) boot under lockstep and
under QEMU inside L1, with the bed's own Debian kernel.

The initramfs holds busybox, the static lock-heavy program (bed_l2_lockheavy.c, built here),
the ACPI power button and event-device modules, and an /init that reads what to do from the
kernel command line:

    l2_lockheavy=SECONDS  run the lock-heavy program for that long first (l2_threads=N,
                          default: one thread per CPU)
    l2_mode=poweroff      print the facts, then power off (the default)
    l2_mode=serve         print the facts, start acpid (the power button powers the guest off)
                          and run a shell on the console

It prints "l2: init uptime=S cpus=N" as soon as it runs, the kernel's lines that show what it
made of the machine as "l2: dmesg ...", "lockheavy: ..." and, in serve mode, "l2: ready".
"""
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))

# What lockstep recommends for Linux guests without PCI devices (docs/linux-guests.md): no
# PCI probing (the AGP aperture scan reads config space of every bus), quiet (each byte of
# console output is a port write that exits to the VMM).
CMDLINE = "console=ttyS0 panic=-1 quiet pci=off"

# The kernel lines each boot is checked for (and printed as "l2: dmesg ...").
DMESG_FACTS = {
    "kvm": "Hypervisor detected: KVM",
    "pv_spinlocks": "kvm-guest: PV spinlocks enabled",
    "pv_ipis": "kvm-guest: setup PV IPIs",
    "kvm_clock": "clocksource: Switched to clocksource kvm-clock",
    "smp": "smp: Brought up 1 node, ",
    "tsc_deadline": "TSC deadline timer available",
    "acpi_s5": "ACPI: PM: (supports S0 S5)",
    "serial": "ttyS0 at I/O 0x3f8 (irq = 4",
}

INIT = r"""#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "l2: init uptime=$(cut -d' ' -f1 /proc/uptime) cpus=$(nproc)"
for m in $(cat /etc/modules.order); do insmod "$m"; done
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -1; }
dmesg | grep -E '@FACTS@' | sed 's/^\[[ 0-9.]*\] /l2: dmesg /'
secs=$(arg l2_lockheavy)
if [ -n "$secs" ]; then
	threads=$(arg l2_threads)
	/bin/lockheavy "${threads:-$(nproc)}" "$secs"
fi
case "$(arg l2_mode)" in
serve)
	# busybox acpid: the power button's event runs /etc/acpi/PWRF/00000080
	mkdir -p /etc/acpi/PWRF
	printf '#!/bin/sh\necho "l2: power button" >/dev/console\npoweroff -f\n' \
		>/etc/acpi/PWRF/00000080
	chmod +x /etc/acpi/PWRF/00000080
	acpid -c /etc/acpi -l /tmp/acpid.log
	echo "l2: ready"
	exec setsid cttyhack sh
	;;
*)
	poweroff -f
	;;
esac
""".replace("@FACTS@", "|".join(re.escape(f) for f in DMESG_FACTS.values()))

# The power button (ACPI_BUTTON=m in Debian) and the event devices busybox acpid reads.
MODULES = ["button", "evdev"]


def build_lockheavy(bed_dir, cc=None):
    """Compiles the lock-heavy program statically into the bed directory; returns its path."""
    out = os.path.join(bed_dir, "l2-lockheavy")
    src = os.path.join(HERE, "bed_l2_lockheavy.c")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    p = subprocess.run([cc or os.environ.get("CC", "cc"), "-static", "-O2", "-pthread", "-o",
                        out, src], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"cannot build {src}:\n{p.stdout}{p.stderr}")
    return out


def pack(images, cc=None):
    """The L2 initramfs (repacked only when an input changed); returns its path."""
    out = os.path.join(images.bed_dir, "l2-linux.cpio.gz")
    images.pack_initramfs(out, INIT, files={"/bin/lockheavy": build_lockheavy(images.bed_dir,
                                                                              cc)},
                          modules=MODULES)
    return out


def facts(console):
    """What a console log shows: {fact: bool}, the CPUs, the lockheavy result, init's
    uptime."""
    got = {k: v in console for k, v in DMESG_FACTS.items()}
    m = re.search(r"smp: Brought up 1 node, (\d+) CPUs?", console)
    got["cpus"] = int(m.group(1)) if m else 0
    m = re.search(r"lockheavy: (.*)", console)
    got["lockheavy"] = dict(w.split("=", 1) for w in m.group(1).split()) if m else None
    m = re.search(r"l2: init uptime=([0-9.]+)", console)
    got["init_uptime"] = float(m.group(1)) if m else None
    return got
