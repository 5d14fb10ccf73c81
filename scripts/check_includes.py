#!/usr/bin/env python3
"""Every #include "..." in the tree names a header from the repository root.

usage: scripts/check_includes.py   (from anywhere; exits 1 and lists the offenders)

The build gives each target an include root holding only the modules it may use (CMakeLists.txt,
lockstep_uses), which refuses a layering violation at compile time.  A quoted include relative
to the including file ("ops.h", "../vm/vm.h") would be found beside that file first and slip
past it, so the tree has none.
"""
import os
import re
import subprocess
import sys

root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                      cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip()
files = subprocess.run(["git", "ls-files", "*.c", "*.h"], capture_output=True, text=True,
                       cwd=root, check=True).stdout.split()
bad = []
for f in files:
    with open(os.path.join(root, f), errors="replace") as src:
        for n, line in enumerate(src, 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            inc = m.group(1)
            if (inc.startswith(("./", "../")) or "/" not in inc or
                    not os.path.isfile(os.path.join(root, inc))):
                bad.append(f"{f}:{n}: #include \"{inc}\" is not a header from the repository root")
if bad:
    print("\n".join(bad))
    sys.exit(1)
print(f"includes: ok ({len(files)} files)")
