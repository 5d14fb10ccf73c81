#!/usr/bin/env python3
"""lockstep installed into a scratch DESTDIR, run from there against a real lockstepd.

usage: package_install.py BUILD_DIR

`cmake --install BUILD_DIR --prefix /opt/lockstep` with DESTDIR=scratch puts every file under
the prefix given then (not the one configured); `cmake --install BUILD_DIR --prefix /usr` with
DESTDIR=scratch, then, using only what was installed there:
- lockstepd started as its systemd unit starts it (ExecStart's command, --foreground, with
  NOTIFY_SOCKET: it must say READY=1), in directories of this test's own; it finds its
  worker (lockstep-vm) from the install layout, not from the build tree;
- lockstep defines a VM from a file that names an installed guest by a relative path,
  starts it, reads its console, lists it, destroys and undefines it;
- lockstep-vm boots an installed guest by itself; lockstep-bench runs;
- the installed Python module and its example boot a guest through lockstepd;
- bash completion completes commands, VM names and policies, and lockstepd's options;
- every man page is a page (scdoc's roff), named in the unit's Documentation.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402

MAN_PAGES = ("man8/lockstepd.8", "man1/lockstep.1", "man1/lockstep-vm.1",
             "man1/lockstep-bench.1")


def fail(why, *context):
    lt.fail(why + "".join(f"\n    {c!r}" for c in context))


def check(cond, what, *context):
    if not cond:
        fail(what, *context)


def ok(what):
    print(f"ok   {what}", flush=True)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120),
                       errors="replace", **kw)
    return p.returncode, p.stdout, p.stderr


def installed_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


def unit_exec_start(root, prefix="usr"):
    with open(os.path.join(root, prefix, "lib/systemd/system/lockstepd.service")) as f:
        for line in f:
            if line.startswith("ExecStart="):
                return line.split("=", 1)[1].split()
    fail("the unit has no ExecStart")


class Daemon:
    """lockstepd as the unit starts it, told where to keep its state."""

    def __init__(self, root, tmp, guests):
        self.run_dir = os.path.join(tmp, "run")
        self.socket = os.path.join(self.run_dir, "lockstepd.sock")
        argv = unit_exec_start(root)
        check(argv[0] == "/usr/sbin/lockstepd" and argv[1:] == ["--foreground"],
              "ExecStart runs /usr/sbin/lockstepd --foreground", argv)
        notify = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify)
        sock.settimeout(30)
        self.log = open(os.path.join(tmp, "lockstepd.log"), "w+")
        self.proc = subprocess.Popen(
            # Not the machine's /etc/lockstep/lockstepd.conf: the installed guests allowed.
            [root + argv[0]] + argv[1:] + ["--run-dir", self.run_dir, "--state-dir",
                                           os.path.join(tmp, "state"), "--no-virt",
                                           "--config", "", "--allow-path", guests],
            env=dict(os.environ, NOTIFY_SOCKET=notify), stdout=self.log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            msg = sock.recv(256).decode()
        except socket.timeout:
            msg = ""
        sock.close()
        check(msg.startswith("READY=1"), "lockstepd tells systemd it is ready", msg,
              self.text())

    def text(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=30)
        check(status == 0, "lockstepd stops on SIGTERM", status, self.text())


def main():
    lt.need_kvm()
    build = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="lsinst-")
    root = os.path.join(tmp, "root")
    daemon = None
    try:
        elsewhere = os.path.join(tmp, "elsewhere")
        status, out, err = run(["cmake", "--install", build, "--prefix", "/opt/lockstep"],
                               env=dict(os.environ, DESTDIR=elsewhere))
        check(status == 0, "cmake --install --prefix /opt/lockstep into a DESTDIR", out, err)
        files = installed_files(elsewhere)
        outside = [f for f in files if not f.startswith("opt/lockstep/")]
        check(not outside, "everything installed under the prefix given to cmake --install",
              outside)
        check(unit_exec_start(elsewhere, "opt/lockstep")[0] == "/opt/lockstep/sbin/lockstepd",
              "the unit names lockstepd under that prefix")
        with open(os.path.join(elsewhere, "opt/lockstep/share/doc/lockstep/examples/"
                               "lockstepd.conf")) as f:
            conf = [line for line in f.read().splitlines() if line and line[0] != "#"]
        check(conf == ["allow_path = /opt/lockstep/share/lockstep/guests"],
              "the example lockstepd.conf allows the guests under that prefix", conf)
        shutil.rmtree(elsewhere)
        ok(f"cmake --install --prefix /opt/lockstep: {len(files)} files, all under it; the "
           "example lockstepd.conf allows its guests")

        status, out, err = run(["cmake", "--install", build, "--prefix", "/usr"],
                               env=dict(os.environ, DESTDIR=root))
        check(status == 0, "cmake --install into a DESTDIR", out, err)
        files = installed_files(root)
        for want in ("usr/lib/systemd/system/lockstepd.service", "usr/lib/sysusers.d/lockstep.conf",
                     "usr/share/bash-completion/completions/lockstep",
                     "usr/lib/python3/dist-packages/lockstep.py", "usr/share/doc/lockstep/api.md",
                     "usr/share/lockstep/guests/idle.elf"):
            check(want in files, f"{want} installed", files)
        check(all(f.startswith("usr/") for f in files), "everything under /usr", files)
        usr = os.path.join(root, "usr")
        guests = os.path.join(usr, "share/lockstep/guests")
        for prog in ("lockstepd", "lockstep", "lockstep-vm", "lockstep-bench"):
            where = "sbin" if prog == "lockstepd" else "bin"
            check(os.access(os.path.join(usr, where, prog), os.X_OK), f"{prog} in {where}")
        ok("cmake --install puts the programs, guests, unit, man pages and docs in a DESTDIR")

        # The workers' user reads the guests from here.
        os.chmod(tmp, 0o755)
        daemon = Daemon(root, tmp, guests)
        lockstep = [os.path.join(usr, "bin/lockstep"), "--socket", daemon.socket]
        info = json.loads(run(lockstep + ["--json", "daemon", "info"])[1])
        check(info["socket"] == daemon.socket, "daemon info from the installed client", info)
        ok("lockstepd started as the unit starts it: READY=1 once it serves")

        defs = os.path.join(tmp, "defs")
        os.makedirs(defs)
        with open(os.path.join(defs, "demo.json"), "w") as f:
            json.dump({"name": "demo", "vcpus": 2, "memory": "16M",
                       "kernel": os.path.relpath(os.path.join(guests, "idle.elf"), defs),
                       "cmdline": "heartbeat_ms=100"}, f)
        status, out, err = run(lockstep + ["vm", "define", "defs/demo.json"], cwd=tmp)
        check(status == 0 and out.startswith("defined VM demo"), "vm define", out, err)
        status, out, err = run(lockstep + ["vm", "start", "demo"])
        check((status, out) == (0, "started demo: running (booted)\n"), "vm start", out, err)
        vm = json.loads(run(lockstep + ["--json", "vm", "info", "demo"])[1])
        exe = os.readlink(f"/proc/{vm['pid']}/exe")
        check(exe == os.path.join(usr, "bin/lockstep-vm"),
              "the worker is the installed lockstep-vm, found from lockstepd's folder", exe)
        with open(f"/proc/{vm['pid']}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode()
        check(argv0 == exe, "lockstepd names the worker by its canonical path (no sbin/..)",
              argv0)
        check(vm["definition"]["kernel"] == os.path.join(guests, "idle.elf"),
              "the relative kernel path resolved against the file's folder", vm)

        def heartbeat():
            return "idle: heartbeat 2" in run(lockstep + ["vm", "console", "demo"])[1]
        deadline = time.monotonic() + 20
        while not heartbeat():
            check(time.monotonic() < deadline, "the guest's console",
                  run(lockstep + ["vm", "console", "demo"]))
            time.sleep(0.1)
        status, out, _ = run(lockstep + ["vm", "list"])
        check(out.splitlines()[1].split()[1:3] == ["demo", "running"], "vm list", out)
        for args in (["vm", "destroy", "demo"], ["vm", "undefine", "demo"]):
            status, out, err = run(lockstep + args)
            check(status == 0, " ".join(args), out, err)
        ok("the installed lockstep defines (relative path), starts, reads the console, "
           "destroys, undefines")

        status, out, err = run([os.path.join(usr, "bin/lockstep-vm"), "--kernel",
                                os.path.join(guests, "hello.elf"), "--vcpus", "2", "--console",
                                "-q"])
        check(status == 0 and "result: program=hello cpus=2" in out, "lockstep-vm by hand",
              out, err)
        status, out, err = run([os.path.join(usr, "bin/lockstep-bench"), "wake", "--rounds",
                                "200", "--json"])
        check(status == 0 and json.loads(out), "lockstep-bench wake", out, err)
        ok("the installed lockstep-vm boots an installed guest; lockstep-bench runs")

        pydir = os.path.join(usr, "lib/python3/dist-packages")
        env = dict(os.environ, PYTHONPATH=pydir)
        status, out, err = run([sys.executable, "-c", "import lockstep; print(lockstep.__file__)"],
                               env=env)
        check(out.strip() == os.path.join(pydir, "lockstep.py"), "the installed module", out,
              err)
        status, out, err = run([sys.executable,
                                os.path.join(usr, "share/doc/lockstep/examples/boot.py"),
                                "--socket", daemon.socket, "--vcpus", "3",
                                os.path.join(guests, "hello.elf")], env=env)
        check(status == 0 and "result: program=hello cpus=3" in out and
              "[hello: shutoff (guest-exit), exit status 0]" in out, "examples/boot.py", out,
              err)
        ok("the installed Python module and its example boot a guest through lockstepd")

        completion = os.path.join(usr, "share/bash-completion/completions/lockstep")
        if os.path.exists("/usr/share/bash-completion/bash_completion"):
            run(lockstep + ["vm", "define", "defs/demo.json"], cwd=tmp)
            script = (f"source /usr/share/bash-completion/bash_completion; "
                      f"source {completion}; PATH={usr}/bin:$PATH; "
                      "try() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
                      "COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}; _lockstep; "
                      "echo \"${COMPREPLY[*]}\"; }; "
                      f"try lockstep --socket {daemon.socket} vm st; "
                      f"try lockstep --socket {daemon.socket} vm start ''; "
                      f"try lockstep --socket {daemon.socket} sched set demo g; "
                      "try lockstep ev; "
                      f"source {completion}d; "
                      "try() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
                      "COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}; _lockstepd; "
                      "echo \"${COMPREPLY[*]}\"; }; "
                      "try lockstepd --no-s; try lockstepd --worker-user roo; "
                      "try lockstepd --log-level d")
            status, out, err = run(["bash", "-c", script])
            lines = out.splitlines()
            check(status == 0 and lines == ["start", "demo", "gang", "events", "--no-sandbox",
                                            "root", "debug"],
                  "bash completion: commands, VM names, policies; lockstepd's options", out,
                  err)
            run(lockstep + ["vm", "undefine", "demo"])
            ok("bash completion completes commands, VM names and policies, and lockstepd's "
               "options")
        else:
            print("note: bash-completion is not installed: completion not exercised")

        for page in MAN_PAGES:
            path = os.path.join(usr, "share/man", page)
            with open(path) as f:
                text = f.read()
            name = os.path.basename(page)
            check(text.startswith(".\\\" Generated by scdoc") and
                  f'.TH "{name.rsplit(".", 1)[0]}" "{name.rsplit(".", 1)[1]}"' in text and
                  ".SH NAME" in text, f"{page} is a man page", text[:300])
        ok("man pages lockstepd(8), lockstep(1), lockstep-vm(1), lockstep-bench(1)")
        daemon.stop()
        daemon = None
    finally:
        if daemon:
            daemon.proc.kill()
            print(daemon.text())
        # Workers of a failed run must not outlive the test.
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if tmp.encode() in f.read():
                            os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
