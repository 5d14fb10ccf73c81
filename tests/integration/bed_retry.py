#!/usr/bin/env python3
"""Runs a bed test, and once more in a fresh L1 when the first run's L1 died or stalled.

usage: bed_retry.py COMMAND [ARG...]

The nested bed (bed.py) runs Debian's kernel under QEMU/TCG with nested SVM; now and then that
emulation itself fails under load (L1 ends on its own, or a write to its 9p share never
returns), which bed.for_test reports with exit status 3 (bed.BED_FAULT_EXIT) rather than as a
failed check.  Such a run is tried once more; a second fault, and any other failure, is the
test's result.  A check that fails (exit 1) is never retried.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from bed import BED_FAULT_EXIT  # noqa: E402


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    rc = subprocess.call(sys.argv[1:])
    if rc != BED_FAULT_EXIT:
        return rc
    print("bed_retry: the bed's L1 died or stalled (above); one more try in a fresh L1",
          flush=True)
    rc = subprocess.call(sys.argv[1:])
    return 1 if rc == BED_FAULT_EXIT else rc


if __name__ == "__main__":
    sys.exit(main())
