#!/usr/bin/env python3
"""The lockstep CLI as a person uses it, against a real lockstepd.

usage: cli_usage.py BIN_DIR GUEST_DIR

- --version, --help, per-command --help; a usage error names what was wrong (a missing
  argument, an unknown command or option, a bad --state or --tail) with the command's
  synopsis, status 2; --json and --socket anywhere on the line;
- vm define: from standard input; relative paths against the file's folder (not the
  current one); an XML file pointed to --xml and virsh; --xml defines; a kernel that is
  missing is lockstepd's refusal (status 1); redefining a running VM says when it applies;
- vm start of a VM whose kernel went: status 1, the worker's own error; vm list --state;
- vm console --tail N counts lines; vm console -f ends (status 0) when the VM stops;
- vm reboot, vm autostart, sched set (every setting echoed), vm info's pending section;
- shutdown shows the seconds waited on a terminal;
- events: local times and each kind's fields (lifecycle and pvlock), --kind filters and is
  checked, --json carries the time.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


def usage(env, d):
    status, out, err = d.cli("--version")
    check(status == 0 and re.fullmatch(r"lockstep \d+\.\d+\.\d+\n", out), "--version", out)
    status, out, err = d.cli("--help")
    check(status == 0 and out.startswith("usage: lockstep ") and "vm define" in out and
          "events" in out and "Exit status" in out, "--help", out)
    status, out, err = d.cli("vm", "console", "--help")
    check(status == 0 and out.startswith("usage: lockstep vm console NAME") and
          "--tail N    only the last N lines" in out, "per-command help", out)
    status, out, err = d.cli("vm", "--help")
    check(status == 0 and "vm start NAME" in out and "sched" not in out, "a group's help", out)
    for args, first in (
            (("vm", "start"), "lockstep vm start: missing NAME"),
            (("vm", "frob"), "lockstep vm: unknown command 'frob' (vm commands: list, define"),
            (("frob",), "lockstep: unknown command 'frob' (commands: vm, sched"),
            (("vm",), "lockstep vm: missing a command (list, define"),
            (("vm", "list", "--state", "sleeping"), "lockstep vm list: no state 'sleeping'"),
            (("vm", "list", "--bogus"), "lockstep vm list: unknown option '--bogus'"),
            (("vm", "console", "x", "--tail", "ten"),
             "lockstep vm console: --tail takes a number of lines"),
            (("vm", "info", "a", "b"), "lockstep vm info: unexpected argument 'b'"),
            (("vm", "pin", "a", "1"), "lockstep vm pin: missing CPUS"),
            (("sched", "set", "a"), "lockstep sched set: nothing to set"),
            (("events", "--kind", "reboots"), "lockstep events: no event kind 'reboots'")):
        status, out, err = d.cli(*args)
        check(status == 2 and err.startswith(first) and out == "", f"usage error: {args}",
              err)
    status, _, err = d.cli("vm", "start")
    check("usage: lockstep vm start NAME" in err and "--help says more" in err,
          "a usage error shows the command's synopsis", err)
    # --json and --socket anywhere.
    one = subprocess.run([env.lockstep, "vm", "list", "--json", "--socket", d.socket],
                         capture_output=True, text=True)
    check(one.returncode == 0 and json.loads(one.stdout) == [], "--json and --socket after "
          "the command", one.stdout, one.stderr)
    ok("--version, --help per command, usage errors that name what was wrong, --json anywhere")


def define(env, d):
    # Beneath the directory the test's lockstepd allows (docs/security.md).
    defs = os.path.join(env.images, "defs")
    os.makedirs(defs)
    shutil.copy(env.guest("idle"), os.path.join(defs, "idle.elf"))
    with open(os.path.join(defs, "rel.json"), "w") as f:
        json.dump({"name": "rel", "vcpus": 1, "memory": 16, "kernel": "idle.elf",
                   "cmdline": "heartbeat_ms=20"}, f)
    status, out, err = d.cli("vm", "define", "defs/rel.json", cwd=env.images)
    check(status == 0 and out.startswith("defined VM rel"), "define", out, err)
    kernel = d.cli_json("vm", "info", "rel")["definition"]["kernel"]
    check(kernel == os.path.join(defs, "idle.elf"),
          "a relative path resolves against the file's folder, not the current one", kernel)

    p = subprocess.run([env.lockstep, "--socket", d.socket, "vm", "define", "-"],
                       input=json.dumps({"name": "stdin", "vcpus": 1, "memory": 16,
                                         "kernel": "defs/idle.elf"}),
                       capture_output=True, text=True, cwd=env.images)
    check(p.returncode == 0 and p.stdout.startswith("defined VM stdin"), "define -", p.stderr)
    check(d.cli_json("vm", "info", "stdin")["definition"]["kernel"] ==
          os.path.join(defs, "idle.elf"), "standard input: relative to the current folder")

    xml = os.path.join(defs, "x.xml")
    with open(xml, "w") as f:
        f.write(f"<domain type='kvm'><name>x</name><memory unit='MiB'>16</memory>"
                f"<vcpu>1</vcpu><os><type>hvm</type><kernel>{env.guest('idle')}</kernel></os>"
                f"</domain>\n")
    status, out, err = d.cli("vm", "define", xml)
    check(status == 2 and f"lockstep vm define --xml {xml}" in err and
          f"virsh -c lockstep:///system define {xml}" in err,
          "an XML file is pointed to --xml and virsh", err)
    status, out, err = d.cli("vm", "define", "--xml", xml)
    check(status == 0 and out.startswith("defined VM x"), "define --xml", out, err)

    with open(os.path.join(defs, "bad.json"), "w") as f:
        json.dump({"name": "bad", "kernel": "nope.elf"}, f)
    status, out, err = d.cli("vm", "define", os.path.join(defs, "bad.json"))
    check(status == 1 and err == f'lockstep: "kernel": {defs}/nope.elf: No such file or '
          'directory\n', "a missing kernel: lockstepd refuses at define", err)

    d.cli("vm", "start", "rel")
    with open(os.path.join(defs, "rel.json"), "w") as f:
        json.dump({"name": "rel", "vcpus": 2, "memory": 16, "kernel": "idle.elf",
                   "cmdline": "heartbeat_ms=20"}, f)
    status, out, err = d.cli("vm", "define", os.path.join(defs, "rel.json"))
    check(status == 0 and "VM rel runs on as it was started: the new definition applies at "
          "its next start" in out, "redefining a running VM says when it applies", out)
    status, out, _ = d.cli("vm", "info", "rel")
    check(re.search(r"stored definition \(applies at the next start\):\n  vcpus +2\n", out),
          "vm info shows what is pending", out)
    status, out, _ = d.cli("vm", "list")
    check(re.search(r"\n1 +rel +running +1 +16Mi host\* ", out) and
          "* runs with other settings than its stored definition" in out,
          "vm list marks a pending definition", out)

    shutil.copy(env.guest("idle"), os.path.join(defs, "gone.elf"))
    with open(os.path.join(defs, "gone.json"), "w") as f:
        json.dump({"name": "gone", "vcpus": 1, "memory": 16, "kernel": "gone.elf"}, f)
    d.cli("vm", "define", os.path.join(defs, "gone.json"))
    os.remove(os.path.join(defs, "gone.elf"))
    status, out, err = d.cli("vm", "start", "gone")
    check(status == 1 and f'lockstep-vm[gone]: error: "kernel": {defs}/gone.elf: No such file '
          "or directory (opened as user lockstep-vm)" in err,
          "a failed start prints the worker's own error", err)
    status, out, _ = d.cli("vm", "list", "--state", "failed")
    check(len(out.splitlines()) == 2 and out.splitlines()[1].split()[1:3] == ["gone", "failed"],
          "vm list --state failed", out)
    ok("vm define: standard input, relative paths, XML, refusals; a failed start's own error")


def console(env, d):
    def lines():
        out = d.cli("vm", "console", "rel")[1]
        return out if out.count("\n") >= 5 else None
    dh.wait_for(lines, 10, "rel's console")
    status, out, _ = d.cli("vm", "console", "rel", "--tail", "3")
    beats = [int(m) for m in re.findall(r"^idle: heartbeat (\d+)$", out, re.M)]
    check(status == 0 and out.count("\n") == 3 and len(beats) == 3 and
          beats == list(range(beats[0], beats[0] + 3)), "--tail 3: the last three lines", out)
    follower = subprocess.Popen([env.lockstep, "--socket", d.socket, "vm", "console", "rel",
                                 "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    time.sleep(0.5)
    d.cli("vm", "destroy", "rel")
    try:
        out, err = follower.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        follower.kill()
        check(False, "console -f did not end when the VM stopped")
    check(follower.returncode == 0 and "idle: heartbeat" in out,
          "console -f ends with status 0 when the VM stops", out, err)
    ok("console --tail counts lines; console -f ends when the VM stops")


def lifecycle(env, d):
    status, out, err = d.cli("vm", "start", "rel")
    pid = d.cli_json("vm", "info", "rel")["pid"]
    status, out, err = d.cli("vm", "reboot", "rel")
    check(status == 0 and out == "rebooted rel: running (booted)\n" and
          d.cli_json("vm", "info", "rel")["pid"] != pid, "vm reboot", out, err)
    status, out, err = d.cli("vm", "autostart", "rel")
    check(status == 0 and out == "VM rel starts with lockstepd\n" and
          d.cli_json("vm", "info", "rel")["autostart"], "vm autostart", out, err)
    status, out, err = d.cli("vm", "autostart", "rel", "--disable")
    check(out == "VM rel no longer starts with lockstepd\n", "vm autostart --disable", out)
    status, out, err = d.cli("sched", "set", "rel", "relaxed", "--skew", "900")
    check(status == 0 and out.startswith("rel: policy relaxed, quantum 5000 us, skew bound "
                                         "900 us (now)\n"), "sched set echoes everything", out)
    status, out, err = d.cli("sched", "show", "rel")
    check("stored for its next start: policy host, skew_us 2000" in out,
          "sched show: the stored settings that differ", out)
    d.cli("vm", "destroy", "rel")
    ok("vm reboot, vm autostart, sched set echoes every setting, sched show's pending")


def progress(env, d):
    if not shutil.which("script"):
        print("note: no script(1): the progress line is not exercised")
        return
    c = d.client()
    c.result("vm.define", definition=env.definition("spin", "smp-counter",
                                                    "iterations=100000000000", vcpus=1))
    c.result("vm.start", name="spin")
    cmd = f"{env.lockstep} --socket {d.socket} vm shutdown spin --timeout 2"
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                       timeout=60)
    check("waiting for spin to power off ... 1 s" in p.stdout and
          "did not shut down in time" in p.stdout, "a long wait shows progress on a terminal",
          p.stdout)
    plain = subprocess.run(cmd.split(), capture_output=True, text=True, timeout=60)
    check("waiting for" not in plain.stderr, "no progress line off a terminal", plain.stderr)
    c.result("vm.destroy", name="spin")
    c.close()
    ok("vm shutdown shows the seconds waited on a terminal, and only there")


def events(env, d):
    text = subprocess.Popen([env.lockstep, "--socket", d.socket, "events"],
                            stdout=subprocess.PIPE, text=True)
    js = subprocess.Popen([env.lockstep, "--socket", d.socket, "events", "--json", "--kind",
                           "crashed,pvlock"], stdout=subprocess.PIPE, text=True)
    crashed = subprocess.Popen([env.lockstep, "--socket", d.socket, "events", "--kind",
                                "crashed", "--vm", "boom"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    c = d.client()
    c.result("vm.define", definition=env.definition("boom", "idle", "crash_after_ms=50",
                                                    vcpus=1))
    c.result("vm.start", name="boom")
    d.wait_state("boom", "crashed")
    # Lock-holder preemption: 4 vCPUs spinning on a published ticket lock, on one host CPU.
    c.result("vm.define", definition=env.definition(
        "lb", "lockbench", "lock=ticket mode=published duration_ms=1500", vcpus=4,
        sched={"cpus": "0"}))
    c.result("vm.start", name="lb")
    d.wait_state("lb", "shutoff", timeout=60)
    time.sleep(0.5)
    for p in (text, js, crashed):
        p.send_signal(signal.SIGTERM)
    lines = text.communicate(timeout=10)[0].splitlines()
    check(all(re.match(TIME + r"  \S+ +(lifecycle|pvlock) +\S", line) for line in lines),
          "every line starts with the local time, the VM and the type", lines[:5])
    boom = [line for line in lines if " boom " in line]
    check(any(re.match(TIME + r"  boom +lifecycle +crashed +crashed \(guest-crash\): "
                       r"lockstep-vm\[boom\]: error: vCPU 0: triple fault", line)
              for line in boom), "a crash line: the event, the state, why, the error", boom)
    pv = [line for line in lines if " pvlock " in line]
    check(pv and all(re.match(TIME + r"  lb +pvlock +pvlock(-ended)? +(lock holder|next waiter)"
                              r" preempted( \(over\))?: vCPU \d+(, lock 0x[0-9a-f]+)?"
                              r"(, \d+ waiting)?, (spin pressure \d\.\d\d|lasted \d+\.\d{3} ms)$",
                              line) for line in pv),
          "pvlock lines carry their fields", pv[:5])
    got = [json.loads(line) for line in js.communicate(timeout=10)[0].splitlines()]
    check(got and all(isinstance(e["time"], float) for e in got) and
          {e.get("event", e["type"]) for e in got} == {"crashed", "pvlock"},
          "--json --kind crashed,pvlock: only those, each with its time",
          sorted({e.get("event", e["type"]) for e in got}))
    only = crashed.communicate(timeout=10)[0].splitlines()
    check(len(only) == 1 and " boom " in only[0] and " crashed " in only[0],
          "--kind crashed --vm boom", only)
    for name in ("boom", "lb"):
        if c.result("vm.info", name=name)["state"] == "crashed":
            c.result("vm.destroy", name=name)
        c.result("vm.undefine", name=name)
    c.close()
    ok(f"events: local times, lifecycle and pvlock fields ({len(pv)} pvlock lines), --kind, "
       "--vm, --json with the time")


def daemon_info(env, d):
    status, out, err = d.cli("daemon", "info")
    want = (f"workers: {'sandboxed' if os.geteuid() == 0 else 'not sandboxed'} as user "
            f"lockstep-vm; definitions may name files beneath: {env.images}, {env.files}")
    check(status == 0 and want in out.splitlines(), "daemon info: the workers' confinement",
          out, err)
    ok("daemon info says how workers start and which directories definitions may name")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        usage(env, d)
        daemon_info(env, d)
        define(env, d)
        console(env, d)
        lifecycle(env, d)
        progress(env, d)
        events(env, d)


if __name__ == "__main__":
    main()
