#!/usr/bin/env python3
"""No call circle among the files of a folder (lockstepd's core: daemon/).

usage: scripts/check_calls.py [FOLDER...]   (default: daemon; exits 1 and names the circles)

A file calls another when it calls a function the other defines (not static).  The core's
files must call downwards only — the registry uses the workers and the store, workers report
back through callbacks — so that a change to one does not drag the others.  Calls through
function pointers are not calls here, which is the point: that is how a lower file reports
upwards.  A reading of the source, not a compiler: good enough for the tree's kernel style.
"""
import os
import re
import subprocess
import sys

DEFINITION = re.compile(r"^(static\s+)?[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)\s*\([^;{]*\)\s*\{",
                        re.M)


def strip(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', src)


def graph(folder):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".c") and f != "main.c")
    exported, bodies = {}, {}
    for f in files:
        with open(os.path.join(folder, f)) as fp:
            src = strip(fp.read())
        bodies[f] = src
        for m in DEFINITION.finditer(src):
            if not m.group(1):
                exported.setdefault(m.group(2), f)
    edges = {f: set() for f in files}
    for f, src in bodies.items():
        for name in set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", src)):
            g = exported.get(name)
            if g and g != f:
                edges[f].add(g)
    return edges


def circles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, cwd=os.path.dirname(os.path.abspath(__file__)),
                          check=True).stdout.strip()
    bad = False
    for folder in sys.argv[1:] or ["daemon"]:
        found = circles(graph(os.path.join(root, folder)))
        for c in found:
            print(f"{folder}: these files call each other in a circle: {', '.join(c)}")
        bad = bad or bool(found)
    if bad:
        sys.exit(1)
    print("calls: ok (no circle in " + ", ".join(sys.argv[1:] or ["daemon"]) + ")")


if __name__ == "__main__":
    main()
