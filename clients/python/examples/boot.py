#!/usr/bin/env python3
"""Boots a guest through lockstepd and prints its console until it stops (the lockstep
Python module, clients/python/lockstep.py; standard library only).

usage: boot.py [--socket PATH] [--vcpus N] [--keep] IMAGE [CMDLINE]

Defines a VM named after the image, starts it, prints what the guest writes until the VM
stops, prints how it ended, and undefines it again (unless --keep).  For example, with the
guests lockstep installs:

    boot.py /usr/share/lockstep/guests/hello.elf
    boot.py --vcpus 4 /usr/share/lockstep/guests/smp-counter.elf iterations=100000
"""
import argparse
import os
import sys

try:
    import lockstep
except ImportError:  # run from the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import lockstep


def main():
    ap = argparse.ArgumentParser(description="Boot a guest through lockstepd.")
    ap.add_argument("--socket", help="lockstepd's socket (default: $LOCKSTEP_SOCKET or "
                    f"{lockstep.DEFAULT_SOCKET})")
    ap.add_argument("--vcpus", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="leave the VM defined")
    ap.add_argument("image")
    ap.add_argument("cmdline", nargs="?")
    args = ap.parse_args()

    name = os.path.basename(args.image).split(".")[0] or "vm"
    definition = {"name": name, "vcpus": args.vcpus, "memory": "32M",
                  "kernel": os.path.abspath(args.image)}
    if args.cmdline:
        definition["cmdline"] = args.cmdline
    try:
        with lockstep.Client(args.socket) as c:
            c.define(definition)
            try:
                c.start(name)
                for text in c.follow_console(name):
                    sys.stdout.write(text)
                    sys.stdout.flush()
                vm = c.info(name)
                print(f"[{name}: {vm['state']} ({vm['reason']}), exit status "
                      f"{vm['last_status']}]")
            finally:
                if not args.keep:
                    if c.info(name)["pid"]:
                        c.destroy(name)
                    c.undefine(name)
    except lockstep.Error as e:
        sys.exit(f"boot.py: {e.message}")
    except OSError as e:
        sys.exit(f"boot.py: cannot reach lockstepd: {e}")


if __name__ == "__main__":
    main()
