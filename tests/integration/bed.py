#!/usr/bin/env python3
"""The nested test bed: Debian's kernel as an L1 guest under QEMU/TCG, with what this host
lacks -- a real-SVM /dev/kvm, an emulated VT-d or AMD-Vi IOMMU, VFIO, QEMU's edu DMA device
-- and the host's own root (read-only, under a tmpfs overlay), so the binaries of this build
run inside it unchanged.  Python 3 standard library only; docs/testbed.md has the details.

    with Bed(build_dir, iommu="intel") as bed:         # builds the images, boots, waits
        r = bed.run("lockstep-vm --kernel ... ; dmesg | grep DMAR", timeout=120)
        r.status, r.stdout, r.stderr, r.console         # the job's exit status and output
        group = bed.vfio_bind(bed.find_pci("1234:11e8")[0])
    # leaving the block powers L1 off (and kills QEMU if it does not go)

Scripts run as root in `chroot /host` under the host's /bin/sh, in the caller's working
directory, with $BED_OUT naming a directory that both sides see at the same path (files
written there are the host's to read, bed.path(name)) and the helpers of bed_lib.sh sourced
(bed_pci_find, bed_vfio_bind, bed_iommu_group, bed_fail).  One boot takes 5-20 s under
TCG, so tests batch their checks into few scripts per bed.

Command line (a command run inside a fresh L1, or, with no command, a prompt that runs each
line typed as a script in the same L1):

    bed.py [--build DIR] [--machine q35|microvm] [--iommu intel|amd] [--no-intremap]
           [--no-edu] [--smp N] [--mem MIB] [--boot auto|pvh|bzimage] [--keep] [-- CMD ...]
"""
import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed_image  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIB_SH = os.path.join(HERE, "bed_lib.sh")
EDU = "1234:11e8"
CONSOLE_TAIL = 60  # console lines quoted in an error
HEARTBEAT_LOST = 120  # seconds without a heartbeat from a ready L1 before it counts as stalled
# An L1 CPU that its kernel's watchdog finds stuck this long is not coming back: under TCG's
# nested SVM one was seen held at one instruction of L1's KVM for as long as L1 ran, while the
# other CPU (and the heartbeat) went on.  Shorter reports (20 s and up) can pass on a busy host.
SOFT_LOCKUP_STUCK = 45
SOFT_LOCKUP = re.compile(r"soft lockup - CPU#\d+ stuck for (\d+)s!")
# handed on to every script, so that a sanitizer build tested in L1 behaves as on the host
PASS_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


class BedError(Exception):
    """L1 did not boot, died, or a job could not run; the message ends with the console's
    last lines."""


class BedTimeout(BedError):
    pass


class BedDied(BedError):
    """QEMU (L1) ended on its own while a job ran: an emulation fault of the bed."""


# for_test's exit status when L1 itself died or stalled, not a check: bed_retry.py runs such
# a test once more in a fresh L1
BED_FAULT_EXIT = 3


class Result:
    """One script's run in L1."""

    def __init__(self, status, stdout, stderr, console, seconds):
        self.status = status  # the script's exit status
        self.stdout = stdout
        self.stderr = stderr
        self.console = console  # L1's console (kernel messages) while the script ran
        self.seconds = seconds

    @property
    def ok(self):
        return self.status == 0

    def __str__(self):
        return (f"status {self.status} after {self.seconds:.1f}s\n---- stdout ----\n"
                f"{self.stdout}---- stderr ----\n{self.stderr}---- L1 console ----\n"
                f"{self.console}")


def host_tsc_khz():
    """The host's TSC frequency in kHz (TCG's guest TSC runs at the host's rate), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    except (OSError, ValueError):
        pass
    return None


class Bed:
    """One L1 guest.  Arguments:

    build_dir  the CMake build tree; images are built/cached in build_dir/bed
    machine    "q35" (PCI, IOMMU, edu) or "microvm" (no PCI: fastest boot; KVM only)
    iommu      None, "intel" (intel-iommu, caching-mode=on) or "amd" (amd-iommu); q35 only
    intremap   interrupt remapping on the IOMMU (kernel-irqchip=split)
    edu        QEMU's edu DMA test device (PCI 1234:11e8); q35 only
    devices    more QEMU -device specifications (q35: after edu), e.g. two edu functions
               of one slot, which share an IOMMU group
    smp, mem_mib   L1's CPUs and memory
    kvm, vfio  load kvm_amd (a real-SVM /dev/kvm), and vfio-pci + vfio_iommu_type1
               (default: when there is an IOMMU)
    boot       "pvh" (the uncompressed vmlinux), "bzimage", or "auto" (the faster for the
               machine, measured: docs/testbed.md)
    cmdline    extra kernel command line words
    timeout    seconds to wait for L1 to boot and for it to power off
    rootfs     "overlay" (the host's root with a tmpfs upper layer: writable, nothing reaches
               the host) or "ro" (the host's root read-only, a tmpfs on /tmp)
    env        {name: value} exported to every script
    keep       keep the run directory (console log, share) even when all went well
    log        a callable for progress lines (default: none)
    """

    def __init__(self, build_dir, machine="q35", iommu=None, intremap=True, edu=True, smp=2,
                 mem_mib=2048, kvm=True, vfio=None, boot="auto", cmdline="", timeout=300,
                 rootfs="overlay", env=None, keep=False, qemu=None, log=None, devices=()):
        if machine not in ("q35", "microvm"):
            raise ValueError(f"machine {machine!r}: q35 or microvm")
        if iommu not in (None, "intel", "amd"):
            raise ValueError(f"iommu {iommu!r}: None, 'intel' or 'amd'")
        if machine == "microvm" and (iommu or edu):
            raise ValueError("microvm has no PCI: no IOMMU, no edu (pass edu=False)")
        if boot not in ("auto", "pvh", "bzimage"):
            raise ValueError(f"boot {boot!r}: auto, pvh or bzimage")
        if rootfs not in ("overlay", "ro"):
            raise ValueError(f"rootfs {rootfs!r}: overlay or ro")
        self.build_dir = os.path.abspath(build_dir)
        self.machine, self.iommu, self.intremap, self.edu = machine, iommu, intremap, edu
        self.devices = list(devices)
        self.smp, self.mem_mib, self.kvm = smp, mem_mib, kvm
        self.vfio = (iommu is not None) if vfio is None else vfio
        self.boot, self.cmdline, self.timeout, self.rootfs = boot, cmdline, timeout, rootfs
        self.env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        self.env.update(env or {})
        self.keep = keep or os.environ.get("BED_KEEP") == "1"
        self.qemu = qemu or os.environ.get("QEMU", "qemu-system-x86_64")
        self.log = log or (lambda msg: None)
        self.proc = None
        self.images = None
        self.run_dir = None
        self.share = None
        self.jobs = 0
        self.ready = {}
        self.boot_seconds = None
        self.failed = False

    # ---- life cycle ---------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.failed = True
            self.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.failed = True
        self.close()
        return False

    def qemu_command(self, kernel):
        machine = self.machine
        if self.machine == "q35" and self.iommu and self.intremap:
            machine += ",kernel-irqchip=split"
        cmd = [self.qemu, "-accel", "tcg", "-cpu", "max", "-machine", machine,
               "-smp", str(self.smp), "-m", str(self.mem_mib), "-nodefaults", "-no-user-config",
               "-display", "none", "-no-reboot",
               "-kernel", kernel, "-initrd", self.images.l1_initrd,
               "-append", self.kernel_cmdline(),
               "-serial", "file:" + os.path.join(self.run_dir, "console.log")]
        onoff = "on" if self.intremap else "off"
        if self.iommu == "intel":  # before the other PCI devices, which it translates
            cmd += ["-device", f"intel-iommu,intremap={onoff},caching-mode=on"]
        elif self.iommu == "amd":
            cmd += ["-device", f"amd-iommu,intremap={onoff}"]
        # = -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,
        #   multidevs=remap (and the share), spelt out so that microvm gets virtio-mmio
        dev = "virtio-9p-pci" if self.machine == "q35" else "virtio-9p-device"
        for tag, path, ro in (("hostroot", "/", ",readonly=on"), ("bed", self.share, "")):
            path = path.replace(",", ",,")  # QEMU's option syntax
            cmd += ["-fsdev", f"local,id={tag},path={path},security_model=none,"
                              f"multidevs=remap{ro}",
                    "-device", f"{dev},fsdev={tag},mount_tag={tag}"]
        if self.edu:
            cmd += ["-device", "edu"]
        for spec in self.devices:
            cmd += ["-device", spec]
        return cmd

    def kernel_cmdline(self):
        # no_timer_check: on a busy host TCG can miss the few ticks the kernel waits for
        # when it tests the IO-APIC timer, and with interrupt remapping that is a panic
        # ("timer doesn't work through Interrupt-remapped IO-APIC")
        words = ["console=ttyS0", "panic=-1", "rdinit=/init", "no_timer_check"]
        if self.iommu == "intel":
            words.append("intel_iommu=on")
        if self.machine == "microvm":
            # without it, boots on microvm have been seen to hang calibrating the TSC;
            # TCG's TSC runs at the host's rate
            khz = host_tsc_khz()
            if khz:
                words.append(f"tsc_early_khz={khz}")
        return " ".join(words + self.cmdline.split())

    def boot_kernel(self):
        """The image QEMU boots: PVH (vmlinux) or the bzImage (docs/testbed.md measures)."""
        how = self.boot
        if how == "auto":
            how = "pvh" if self.images.vmlinux else "bzimage"
        if how == "pvh":
            if not self.images.vmlinux:
                raise BedError("the kernel has no PVH entry (boot='bzimage')")
            return self.images.vmlinux
        return self.images.vmlinuz

    def start(self):
        if not shutil.which(self.qemu):
            raise FileNotFoundError(f"{self.qemu} not found")
        self.images = bed_image.build(self.build_dir, log=self.log)
        runs = os.path.join(self.images.bed_dir, "runs")
        os.makedirs(runs, exist_ok=True)
        self.run_dir = _mkdtemp(runs, f"{self.machine}-{self.iommu or 'noiommu'}-")
        self.share = os.path.join(self.run_dir, "share")
        os.makedirs(os.path.join(self.share, "jobs"))
        for c in self.share:
            if c.isspace() or c in "'\"\\$`":
                raise BedError(f"the build directory's path is not usable in L1: {self.share}")
        shutil.copy(LIB_SH, os.path.join(self.share, "lib.sh"))
        groups = ["kvm"] * self.kvm + ["vfio"] * self.vfio
        with open(os.path.join(self.share, "bed.conf"), "w") as f:
            f.write(f"BED_GROUPS='{' '.join(groups)}'\nBED_SHARE='{self.share}'\n"
                    f"BED_ROOTFS='{self.rootfs}'\n")
        cmd = self.qemu_command(self.boot_kernel())
        with open(os.path.join(self.run_dir, "qemu.cmd"), "w") as f:
            f.write(shlex.join(cmd) + "\n")
        self.log(f"booting L1: {shlex.join(cmd)}")
        t0 = time.monotonic()
        with open(os.path.join(self.run_dir, "qemu.log"), "w") as qlog:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        ready = os.path.join(self.share, "ready")
        self._wait(lambda: os.path.exists(ready), self.timeout, "L1 to boot")
        self.boot_seconds = time.monotonic() - t0
        with open(ready) as f:
            self.ready = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        self.log(f"L1 ready after {self.boot_seconds:.1f}s: {self.ready}")
        if self.ready.get("failed_modules"):
            raise BedError(f"L1 could not load {self.ready['failed_modules']}"
                           + self._tail())

    def close(self):
        """Powers L1 off (kills QEMU if it does not go in `timeout`), removes the run
        directory unless it is kept or something failed."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                open(os.path.join(self.share, "poweroff"), "w").close()
                self.proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.failed = True
                self._kill()
        if self.proc is not None and self.proc.returncode not in (0, None):
            self.failed = True
        if self.run_dir and not self.keep and not self.failed:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        elif self.run_dir:
            print(f"bed: run directory kept: {self.run_dir}", file=sys.stderr)

    def _kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    # ---- jobs --------------------------------------------------------------------------

    def run(self, script, timeout=300, env=None, cwd=None):
        """Runs a shell script in L1 (chroot /host, host's /bin/sh, as root); returns a
        Result.  Raises BedTimeout (after killing QEMU) when it takes longer than timeout
        seconds, BedError when L1 is gone."""
        if self.proc is None or self.proc.poll() is not None:
            raise BedError("L1 is not running" + self._tail())
        n = self.jobs
        self.jobs += 1
        jobs = os.path.join(self.share, "jobs")
        lines = [f"export BED_OUT={shlex.quote(self.share)}"]
        for k, v in {**self.env, **(env or {})}.items():
            lines.append(f"export {k}={shlex.quote(str(v))}")
        lines += [f"cd {shlex.quote(cwd or os.getcwd())} || exit 125",
                  '. "$BED_OUT/lib.sh"', script]
        tmp = os.path.join(jobs, f"{n}.tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        # L1 dumps its blocked tasks to the console if the script is still running at 80 %
        with open(os.path.join(jobs, f"{n}.watch"), "w") as f:
            f.write(f"{max(1, int(timeout * 0.8))}\n")
        console_at = self._console_size()
        t0 = time.monotonic()
        os.rename(tmp, os.path.join(jobs, f"{n}.sh"))
        rc = os.path.join(jobs, f"{n}.rc")
        try:
            self._wait(lambda: os.path.exists(rc), timeout, f"script {n} to finish",
                       lambda: self._read(os.path.join(jobs, f"{n}.out"), None)
                       + self._read(os.path.join(jobs, f"{n}.err"), None))
        except BedError:
            self.failed = True
            raise
        with open(rc) as f:
            status = int(f.read().strip() or -1)
        return Result(status, self._read(os.path.join(jobs, f"{n}.out")),
                      self._read(os.path.join(jobs, f"{n}.err")),
                      self.console()[console_at:], time.monotonic() - t0)

    def check(self, script, what, timeout=300, **kw):
        """run(), raising BedError with the whole Result unless the script exits 0."""
        r = self.run(script, timeout=timeout, **kw)
        if not r.ok:
            raise BedError(f"{what}: {r}")
        return r

    # ---- helpers -----------------------------------------------------------------------

    def path(self, name):
        """The host path of a file a script wrote as "$BED_OUT/name"."""
        return os.path.join(self.share, name)

    def read(self, name):
        """The text of "$BED_OUT/name" as a script left it ("" when there is none)."""
        return self._read(self.path(name))

    def console(self):
        """L1's console log so far (the kernel's messages and /init's)."""
        return self._read(os.path.join(self.run_dir, "console.log")) if self.run_dir else ""

    def dmesg(self):
        return self.check("dmesg", "dmesg").stdout

    def find_pci(self, vendor_device=EDU):
        """The addresses (0000:00:03.0) of L1's PCI devices with this vendor:device."""
        return self.check(f"bed_pci_find {vendor_device}", "bed_pci_find").stdout.split()

    def vfio_bind(self, bdf):
        """Binds an L1 PCI device to vfio-pci; returns its IOMMU group (/dev/vfio/GROUP)."""
        return self.check(f"bed_vfio_bind {shlex.quote(bdf)}", f"bind {bdf}").stdout.strip()

    def _console_size(self):
        try:
            return os.path.getsize(os.path.join(self.run_dir, "console.log"))
        except OSError:
            return 0

    @staticmethod
    def _read(path, missing=""):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return missing if missing is not None else ""

    def _tail(self):
        lines = self.console().splitlines()[-CONSOLE_TAIL:]
        qemu = self._read(os.path.join(self.run_dir, "qemu.log")).strip() if self.run_dir else ""
        return ("\n---- L1 console (last lines) ----\n" + "\n".join(lines)
                + (f"\n---- QEMU ----\n{qemu}" if qemu else "")
                + (f"\n---- run directory: {self.run_dir}" if self.run_dir else ""))

    def _heartbeat_age(self):
        """Seconds since L1 last wrote its heartbeat (bed_init.sh, every 5 s once ready);
        None before the first one."""
        try:
            return time.time() - os.stat(os.path.join(self.share, "alive")).st_mtime
        except FileNotFoundError:
            return None

    def _stuck_cpu(self):
        """The first L1 kernel report of a CPU stuck SOFT_LOCKUP_STUCK s or more, or None."""
        for m in SOFT_LOCKUP.finditer(self.console()):
            if int(m.group(1)) >= SOFT_LOCKUP_STUCK:
                return m.group(0)
        return None

    def _wait(self, done, timeout, what, partial=lambda: ""):
        def give_up(why):
            self._kill()
            out = partial()
            raise BedTimeout(f"{why} while waiting for {what}; QEMU killed"
                             + (f"\n---- output so far ----\n{out}" if out else "")
                             + self._tail())

        deadline = time.monotonic() + timeout
        next_look = time.monotonic()
        while not done():
            if self.proc.poll() is not None:
                panic = [ln for ln in self.console().splitlines() if "Kernel panic" in ln]
                raise BedDied(f"QEMU exited with status {self.proc.returncode} while waiting "
                               f"for {what}" + (f"; L1 {panic[0].strip()}" if panic else "")
                               + self._tail())
            silent = self._heartbeat_age()
            if silent is not None and silent > HEARTBEAT_LOST:
                give_up(f"L1 stopped its heartbeat {silent:.0f}s ago")
            if time.monotonic() > next_look:
                next_look = time.monotonic() + 2
                stuck = self._stuck_cpu()
                if stuck:
                    give_up(f"L1's kernel reports \"{stuck}\": the emulated CPU is stuck")
            if time.monotonic() > deadline:
                give_up(f"timed out after {timeout}s")
            time.sleep(0.05)


class for_test:
    """`with for_test(build_dir, **bed_args) as bed:` for ctest: skips (77) when QEMU is
    missing or Debian's archive is unreachable with nothing cached, fails (1) on BedError
    with the console's tail, and prints how long the boot and the whole bed took."""

    def __init__(self, build_dir, **kw):
        sys.path.insert(0, HERE)
        import lockstep_test
        self.lt = lockstep_test
        self.bed = Bed(build_dir, **kw)
        self.t0 = None

    def __enter__(self):
        qemu = self.bed.qemu
        if not shutil.which(qemu):
            self.lt.skip(f"{qemu} not found")
        self.t0 = time.monotonic()
        try:
            self.bed.__enter__()
        except bed_image.ArchiveUnreachable as e:
            self.lt.skip(f"Debian's archive is unreachable and the bed's kernel is not cached: "
                         f"{e}")
        except (BedDied, BedTimeout) as e:
            print(f"FAIL (the bed's L1 died or stalled): {e}", flush=True)
            sys.exit(BED_FAULT_EXIT)
        except BedError as e:
            self.lt.fail(str(e))
        b = self.bed
        print(f"bed: {b.machine} iommu={b.iommu} intremap={b.intremap} smp={b.smp} "
              f"mem={b.mem_mib}MiB, L1 {b.ready.get('release')} ready in {b.boot_seconds:.1f}s")
        return b

    def __exit__(self, exc_type, exc, tb):
        self.bed.__exit__(exc_type, exc, tb)
        print(f"bed: {time.monotonic() - self.t0:.1f}s from start to power-off")
        if isinstance(exc, (BedDied, BedTimeout)):
            print(f"FAIL (the bed's L1 died or stalled): {exc}", flush=True)
            sys.exit(BED_FAULT_EXIT)
        if isinstance(exc, BedError):
            self.lt.fail(str(exc))
        return False


def _die_with_parent():
    """In QEMU's child before exec: SIGKILL when the harness dies, however it dies (a test
    killed by ctest's timeout must not leave an L1 behind)."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _mkdtemp(parent, prefix):
    import tempfile
    return tempfile.mkdtemp(dir=parent, prefix=prefix)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[-2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--machine", default="q35", choices=("q35", "microvm"))
    ap.add_argument("--iommu", choices=("intel", "amd"))
    ap.add_argument("--no-intremap", dest="intremap", action="store_false")
    ap.add_argument("--no-edu", dest="edu", action="store_false")
    ap.add_argument("--no-kvm", dest="kvm", action="store_false")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", type=int, default=2048, help="MiB")
    ap.add_argument("--boot", default="auto", choices=("auto", "pvh", "bzimage"))
    ap.add_argument("--rootfs", default="overlay", choices=("overlay", "ro"))
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per command")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    edu = a.edu and a.machine == "q35"
    log = (lambda m: print(f"bed: {m}", file=sys.stderr)) if a.verbose else None
    try:
        with Bed(a.build, machine=a.machine, iommu=a.iommu, intremap=a.intremap, edu=edu,
                 smp=a.smp, mem_mib=a.mem, kvm=a.kvm, boot=a.boot, cmdline=a.append,
                 rootfs=a.rootfs, keep=a.keep, log=log) as bed:
            print(f"bed: L1 {bed.ready.get('release')} up in {bed.boot_seconds:.1f}s "
                  f"(console: {bed.run_dir}/console.log)", file=sys.stderr)
            if command:
                r = bed.run(shlex.join(command) if len(command) > 1 else command[0],
                            timeout=a.timeout)
                sys.stdout.write(r.stdout)
                sys.stderr.write(r.stderr)
                return r.status
            status = 0
            while True:
                if sys.stdin.isatty():
                    print("bed$ ", end="", file=sys.stderr, flush=True)
                line = sys.stdin.readline()
                if not line:
                    return status
                if line.strip():
                    r = bed.run(line, timeout=a.timeout)
                    sys.stdout.write(r.stdout)
                    sys.stderr.write(r.stderr)
                    status = r.status
    except bed_image.ArchiveUnreachable as e:
        print(f"bed: {e}", file=sys.stderr)
        return 77
    except (BedError, bed_image.BuildError, FileNotFoundError) as e:
        print(f"bed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
