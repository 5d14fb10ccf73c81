#!/usr/bin/env python3
"""Measurements of Linux guests under lockstep inside the test bed's L1 (run by
bed_linux_bench.py; docs/linux-guests.md shows results).  Not a test: it asserts nothing.

usage: bed_linux_bench_l1.py BIN_DIR GUEST_DIR VMLINUX INITRD OUT.json [ROUNDS]

1. Boot: the same kernel (PVH vmlinux), initramfs and command line, 2 vCPUs, 256 MiB, under
   lockstepd (vm.start until Linux's init prints, and until the first console byte) and under
   QEMU -accel kvm (-machine microvm and q35; process start until the same two moments),
   interleaved round by round.
2. The lock-heavy program (10 s, one thread per vCPU) in guests that serve a shell: one
   2-vCPU VM (1x: as many vCPUs as L1 has CPUs) and two at once (2x), each under `host` and
   `gang`, interleaved; per VM its throughput and, from lockstep's per-vCPU KVM statistics,
   hypercalls (KICK_CPU: PV IPIs and yields are masked off) and halt exits per second.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed_linux_guest as lg  # noqa: E402
import daemon_harness as dh  # noqa: E402

KICKS_ONLY = ["clocksource", "clocksource2", "steal_time", "pv_eoi", "pv_unhalt",
              "pv_tlb_flush", "poll_control"]
BOOT_CMDLINE = lg.CMDLINE + " l2_mode=poweroff"
LOCK_SECONDS = 10


RUN_MARKER = re.compile(rb"^---- lockstepd: VM \S+ starts .*----\r?\n", re.M)


def watch_file(path, t0, timeout=300):
    """Polls a console file: (seconds to its first byte, seconds to 'l2: init', the guest
    kernel's uptime at init, the first line)."""
    first = init = None
    deadline = t0 + timeout
    while time.monotonic() < deadline and init is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        # lockstepd's own line opening each run in its console log is not the guest's.
        data = RUN_MARKER.sub(b"", data)
        now = time.monotonic() - t0
        if data and first is None:
            first = now
        if re.search(rb"l2: init uptime=\S+ cpus=\d+\r?\n", data):  # the tty writes CR LF
            init = now
        time.sleep(0.02)
    m = re.search(rb"l2: init uptime=([0-9.]+)", data)
    return (first, init, float(m.group(1)) if m else None,
            data.split(b"\n", 1)[0][:160].decode(errors="replace"))


def boot_lockstepd(d, c, vmlinux, initrd, n):
    name = f"boot{n}"
    c.result("vm.define", definition={"name": name, "vcpus": 2, "memory": 256,
                                      "kernel": vmlinux, "initrd": initrd,
                                      "cmdline": BOOT_CMDLINE})
    path = os.path.join(d.run_dir, "vms", f"{name}.console")
    t0 = time.monotonic()
    c.send({"jsonrpc": "2.0", "id": 1000 + n, "method": "vm.start", "params": {"name": name}})
    got = watch_file(path, t0)
    c.reply_to(1000 + n)
    dh.wait_for(lambda: c.result("vm.info", name=name)["state"] == "shutoff", 300, "power-off")
    c.result("vm.undefine", name=name)
    return got


def boot_qemu(machine, vmlinux, initrd, n):
    path = f"/tmp/qemu-{machine}-{n}.console"
    if os.path.exists(path):
        os.unlink(path)
    argv = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-machine", machine,
            "-smp", "2", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-kernel", vmlinux, "-initrd", initrd, "-append", BOOT_CMDLINE,
            "-serial", f"file:{path}"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    got = watch_file(path, t0)
    p.wait(300)
    return got


def kvm_totals(c, name):
    info = c.result("vm.info", name=name)
    calls = sum(v["kvm"].get("hypercalls", 0) for v in info["stats"]["vcpu"])
    halts = sum(v["kvm"].get("halt_exits", 0) for v in info["stats"]["vcpu"])
    return calls, halts


def lockheavy(c, names, policy):
    """Runs the lock-heavy program in each VM at once; per VM: ops/s, hypercalls/s,
    halts/s."""
    for name in names:
        c.result("sched.set", name=name, policy=policy)
    time.sleep(0.5)
    before = {n: kvm_totals(c, n) for n in names}
    marks = {name: c.result("vm.console", name=name, max=0)["size"] for name in names}
    t0 = time.monotonic()
    for name in names:
        c.result("vm.console_input", name=name, data=f"lockheavy 2 {LOCK_SECONDS}\r")

    def results():
        got = {}
        for name in names:
            text = c.result("vm.console", name=name, offset=marks[name])["data"]
            m = re.search(r"lockheavy: .*ops_per_s=(\d+)", text)
            if m:
                got[name] = int(m.group(1))
        return got if len(got) == len(names) else None
    ops = dh.wait_for(results, LOCK_SECONDS + 120, "the lock-heavy results", interval=0.2)
    secs = time.monotonic() - t0
    out = {}
    for name in names:
        calls, halts = kvm_totals(c, name)
        out[name] = {"ops_per_s": ops[name],
                     "hypercalls_per_s": (calls - before[name][0]) / secs,
                     "halt_exits_per_s": (halts - before[name][1]) / secs}
    return out


def serve(c, name, vmlinux, initrd):
    c.result("vm.define", definition={
        "name": name, "vcpus": 2, "memory": 256, "kernel": vmlinux, "initrd": initrd,
        "cmdline": lg.CMDLINE + " l2_mode=serve", "pvlock": {"kvm_features": KICKS_ONLY}})
    c.result("vm.start", name=name)
    dh.wait_for(lambda: "l2: ready" in c.result("vm.console", name=name)["data"], 400,
                f"{name}'s shell")
    c.result("vm.console_attach", name=name)


def progress(out_path, line):
    """Prints a progress line and appends it to OUT.json's .log beside it: the bed hands
    back the job's stdout only when the job ends, a log in $BED_OUT can be read meanwhile
    and survives a run that is stopped."""
    print(line, flush=True)
    with open(out_path + ".log", "a") as f:
        f.write(line + "\n")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    bin_dir, guest_dir, vmlinux, initrd, out_path = sys.argv[1:6]
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    res = {"rounds": rounds, "cmdline": BOOT_CMDLINE, "boot": {}, "lockheavy": {}}
    for path in (vmlinux, initrd):
        with open(path, "rb") as f:  # into L1's page cache: 9p reads the first time are slow
            while f.read(1 << 20):
                pass
    with dh.Env(bin_dir, guest_dir) as env:
        vmlinux, initrd = env.image(vmlinux), env.image(initrd)  # where lockstepd allows
        d = env.daemon()
        c = d.client(timeout=600)
        boot = {k: [] for k in ("lockstepd", "qemu-microvm", "qemu-q35")}
        for n in range(rounds):
            boot["lockstepd"].append(boot_lockstepd(d, c, vmlinux, initrd, n))
            boot["qemu-microvm"].append(boot_qemu("microvm", vmlinux, initrd, n))
            boot["qemu-q35"].append(boot_qemu("q35", vmlinux, initrd, n))
            progress(out_path, f"boot round {n}: " +
                     ", ".join(f"{k} {v[-1]}" for k, v in boot.items()))
        for k, v in boot.items():
            res["boot"][k] = {"first_byte_s": median([x[0] for x in v]),
                              "init_s": median([x[1] for x in v]),
                              "guest_uptime_at_init_s": median([x[2] for x in v]), "runs": v}

        serve(c, "a", vmlinux, initrd)
        runs = {("1x", p): [] for p in ("host", "gang")}
        for n in range(rounds):
            for p in ("host", "gang"):
                runs[("1x", p)].append(lockheavy(c, ["a"], p))
                progress(out_path, f"1x {p}: {runs[('1x', p)][-1]}")
        serve(c, "b", vmlinux, initrd)
        runs.update({("2x", p): [] for p in ("host", "gang")})
        for n in range(rounds):
            for p in ("host", "gang"):
                runs[("2x", p)].append(lockheavy(c, ["a", "b"], p))
                progress(out_path, f"2x {p}: {runs[('2x', p)][-1]}")
        for (load, p), rs in runs.items():
            per_vm = [r for run in rs for r in run.values()]
            res["lockheavy"][f"{load}-{p}"] = {
                "ops_per_s_per_vm": median([r["ops_per_s"] for r in per_vm]),
                "hypercalls_per_s_per_vm": median([r["hypercalls_per_s"] for r in per_vm]),
                "halt_exits_per_s_per_vm": median([r["halt_exits_per_s"] for r in per_vm]),
                "runs": rs}
    with open(out_path, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "runs"}
                      for k, v in {**res["boot"], **res["lockheavy"]}.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
