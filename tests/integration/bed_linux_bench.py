#!/usr/bin/env python3
"""Measures Linux guests under lockstep in the nested test bed, beside QEMU in the same L1:
boot times (vm.start to Linux's init and to the first console byte), and the lock-heavy
program's throughput with KICK_CPU hypercalls and halt exits per second at 1x and 2x vCPU
overcommit under `host` and `gang` (bed_linux_bench_l1.py does the work in L1).  Not a test:
nothing is asserted; the figures go to stdout and BUILD_DIR/bed/linux-bench.json.  The bed
runs under TCG on a shared machine: compare figures of one run with each other, not across
runs.

usage: bed_linux_bench.py BUILD_DIR BIN_DIR GUEST_DIR [ROUNDS]
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed  # noqa: E402
import bed_image  # noqa: E402
import bed_linux_guest as lg  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__)
        return 2
    build_dir, bin_dir, guest_dir = (os.path.abspath(a) for a in sys.argv[1:4])
    rounds = sys.argv[4] if len(sys.argv) == 5 else "3"
    images = bed_image.build(build_dir)
    initrd = lg.pack(images)
    with bed.Bed(build_dir, machine="q35", edu=False, smp=2, mem_mib=2048) as b:
        log = os.path.join(build_dir, "bed", "linux-bench.json.log")
        print(f"progress: {b.path('linux-bench.json.log')} (copied to {log} at the end)",
              flush=True)
        try:
            r = b.run(f"python3 {HERE}/bed_linux_bench_l1.py {bin_dir} {guest_dir} "
                      f"{images.vmlinux} {initrd} $BED_OUT/linux-bench.json {rounds}",
                      timeout=7200)
        finally:
            if os.path.exists(b.path("linux-bench.json.log")):
                shutil.copy(b.path("linux-bench.json.log"), log)
        print(r.stdout, end="")
        print(r.stderr, end="", file=sys.stderr)
        if r.status == 0:
            shutil.copy(b.path("linux-bench.json"),
                        os.path.join(build_dir, "bed", "linux-bench.json"))
    return r.status


if __name__ == "__main__":
    sys.exit(main())
