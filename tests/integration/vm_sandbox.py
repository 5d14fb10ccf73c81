#!/usr/bin/env python3
"""lockstep-vm run by hand: its sandbox (docs/security.md).

usage: vm_sandbox.py LOCKSTEP_VM GUEST_DIR HOOKS(0|1)

As root, lockstep-vm confines itself by default: the process started by hand stays outside
as a relay, and the VM runs in a child that is pid 1 of a pid namespace of its own:
  - that child runs as the worker user with no capabilities, no_new_privs and seccomp on
    every thread, in its own pid/mnt/net/ipc namespaces, with an empty root and its cgroup;
    --stats-json reports the sandbox; the relay passes SIGTERM on and exits with the VM's
    status, and the cgroup is gone after it;
  - a run with hundreds of probe kicks reports in full under the control thread's filter;
  - --no-sandbox runs the VM in the process itself, unconfined, and says so;
  - a missing --user is refused (status 71) with the way out named;
  - --allow-path: a kernel outside it, or a symbolic link beneath it, is refused (status 66);
  - with the test hook (HOOKS=1): a forbidden system call ends the VM with status 159, a
    line on stderr and {"reason": "seccomp", "syscall": 111} in the --exit-file.
"""
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402

WORKER_USER = "lockstep-vm"


def check(cond, what, *context):
    if not cond:
        lt.fail(what, "\n".join(repr(c) for c in context))


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def child_of(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
            if kids and os.path.exists(f"/proc/{kids[0]}/status") and \
                    status(kids[0]).get("Uid", "").split()[0] != "0":
                return int(kids[0])
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    lt.fail("the relay started no confined child")


def sandboxed_run(vm, guest_dir, tmp):
    stats = os.path.join(tmp, "stats.json")
    p = subprocess.Popen([vm, "--kernel", os.path.join(guest_dir, "idle.elf"), "--vcpus", "2",
                          "--cmdline", "heartbeat_ms=20", "--stats-json", stats],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    child = child_of(p.pid)
    user = pwd.getpwnam(WORKER_USER)
    # The user changes first; the control thread installs its filter once the vCPUs run.
    deadline = time.monotonic() + 10
    while status(child)["Seccomp"] != "2" and time.monotonic() < deadline:
        time.sleep(0.02)
    st = status(child)
    check(st["Uid"].split() == [str(user.pw_uid)] * 4 and st["NoNewPrivs"] == "1" and
          st["Seccomp"] == "2" and int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0,
          "the VM process: worker user, no capabilities, no_new_privs, seccomp", st)
    check(st["NSpid"].split()[1:] == ["1"], "pid 1 of a pid namespace of its own", st)
    for ns in ("pid", "mnt", "net", "ipc"):
        check(os.readlink(f"/proc/{child}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"),
              f"a {ns} namespace of its own")
    check(status(p.pid)["Uid"].split()[0] == "0", "the relay stays as it was started")
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=30)[1]
    check(p.returncode == 0, f"SIGTERM through the relay: status {p.returncode}", err)
    with open(stats) as f:
        sb = json.load(f)["sandbox"]
    cg = sb["cgroup"]
    check(sb["enabled"] and sb["user"] == WORKER_USER and sb["uid"] == user.pw_uid and
          sb["namespaces"] == ["pid", "mnt", "net", "ipc"] and sb["root"] == "empty" and
          sb["seccomp"]["control"] > 0 and sb["seccomp"]["vcpu"] > 0 and
          cg["version"] in (1, 2) and cg["pids_max"] == 2 + 16, "--stats-json: the sandbox", sb)
    check(not os.path.exists(cg["memory"]) and not os.path.exists(cg["pids"]),
          "the relay removes the VM's cgroup", cg)
    print(f"ok   as root: confined by default (uid {sb['uid']}, cgroup v{cg['version']}, "
          f"seccomp {sb['seccomp']['control']}/{sb['seccomp']['vcpu']}), SIGTERM relayed")


def full_report(vm, guest_dir, tmp):
    """Everything the end-of-run report computes runs under the control thread's filter:
    enough probe kicks that the latency percentiles sort a large array (glibc's qsort asks
    the kernel for the memory size first)."""
    stats = os.path.join(tmp, "kicks.json")
    status_, _, err = lt.run([vm, "--kernel", os.path.join(guest_dir, "smp-counter.elf"),
                              "--vcpus", "2", "--cmdline", "iterations=300000000",
                              "--kick-probe", "400", "--timeout", "60", "--stats",
                              "--stats-json", stats])
    check(status_ == 0, f"smp-counter with the kick probe, confined: status {status_}", err)
    with open(stats) as f:
        rep = json.load(f)
    check(rep["sandbox"]["enabled"] and rep["probe_kicks_sent"] > 128 and
          all(v["kick_latency_ns"]["median"] > 0 for v in rep["vcpu"]),
          "the confined run's report", rep["probe_kicks_sent"])
    print(f"ok   a confined run's full report ({rep['probe_kicks_sent']} probe kicks)")


def unsandboxed_run(vm, guest_dir, tmp):
    stats = os.path.join(tmp, "plain.json")
    status_, out, err = lt.run([vm, "--no-sandbox", "--kernel",
                                os.path.join(guest_dir, "hello.elf"), "--vcpus", "2",
                                "--stats-json", stats])
    check(status_ == 0, f"--no-sandbox: status {status_}", err)
    with open(stats) as f:
        check(json.load(f)["sandbox"] == {"enabled": False}, "--no-sandbox says so")
    status_, _, err = lt.run([vm, "--user", "no-such-user-here", "--kernel",
                              os.path.join(guest_dir, "hello.elf")])
    check(status_ == 71 and "no-such-user-here does not exist" in err and
          "--no-sandbox" in err, f"a missing user: status {status_}", err)
    print("ok   --no-sandbox runs unconfined; a missing --user is refused (71)")


def allowed_paths(vm, guest_dir, tmp):
    images = os.path.join(tmp, "images")
    os.mkdir(images, 0o755)
    os.chmod(tmp, 0o755)
    link = os.path.join(images, "hello.elf")
    os.symlink(os.path.join(guest_dir, "hello.elf"), link)
    for kernel, want in ((os.path.join(guest_dir, "hello.elf"), "is not beneath"),
                         (link, "a symbolic link")):
        status_, _, err = lt.run([vm, "--allow-path", images, "--kernel", kernel])
        check(status_ == 66 and '"kernel"' in err and want in err,
              f"--allow-path, kernel {kernel}: status {status_}", err)
    print("ok   --allow-path: a kernel outside, or a symbolic link beneath, is refused (66)")


def seccomp_trap(vm, guest_dir, tmp):
    exit_file = os.path.join(tmp, "vm.exit")
    env = dict(os.environ, LOCKSTEP_TEST_SECCOMP_TRAP="trapped:vcpu")
    status_, _, err = lt.run([vm, "--name", "trapped", "--kernel",
                              os.path.join(guest_dir, "idle.elf"), "--exit-file", exit_file],
                             env=env)
    with open(exit_file) as f:
        rec = json.load(f)
    check(status_ == 159 and "seccomp: system call 111 is not allowed" in err and
          rec == {"reason": "seccomp", "syscall": 111, "status": 159},
          f"a forbidden system call: status {status_}", err, rec)
    print("ok   a forbidden system call: status 159, stderr, the exit file")


def main():
    vm, guest_dir, hooks = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3] == "1"
    lt.need_kvm()
    if os.geteuid() != 0:
        lt.skip("the sandbox's default (and this test) needs root")
    tmp = tempfile.mkdtemp(prefix="lockstep-sandbox-")
    sandboxed_run(vm, guest_dir, tmp)
    full_report(vm, guest_dir, tmp)
    unsandboxed_run(vm, guest_dir, tmp)
    allowed_paths(vm, guest_dir, tmp)
    if hooks:
        seccomp_trap(vm, guest_dir, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
