#!/usr/bin/env python3
"""What a client of lockstepd can reach, and what a worker can do (docs/security.md).

usage: daemon_security.py BIN_DIR GUEST_DIR

Files a definition names (kernel, serial.log):
  - /etc/shadow, or a path that climbs out with "..", is refused when the VM is defined
    (JSON-RPC -32006), naming the key and the rule;
  - a root-only 0600 file beneath an allowed directory is neither read nor truncated: the
    worker opens it as its unprivileged user and fails, and the file keeps its bytes;
  - a symbolic link beneath an allowed directory is not followed (to a secret, to a
    harmless image, as a directory on the way, or planted after the definition);
  - a FIFO makes the start fail at once, and the daemon answers throughout;
  - an allowed serial.log gets the console, written as the worker user; vm.console reads
    lockstepd's own copy in the run directory.
A running worker: the worker user's ids, no capabilities, no_new_privs, seccomp on every
thread, pid/mnt/net/ipc namespaces of its own, an empty root, no inherited environment,
rlimits (core 0, file size, open files), its cgroup with the memory and pids limits set;
vCPU thread ids in vm.info name its threads (translated from its namespace) and the gang
scheduler pins them; the daemon keeps only six capabilities and no_new_privs; destroy
removes the cgroup and the control socket's file, also after a daemon restart.
A worker user that does not exist: lockstepd starts, says so, and refuses vm.start.
The run and state directories: lockstepd refuses one that another user may write to or that
is not its own; files in them are never opened through a link planted at their name (a
console read by vm.console, the temporary file NAME.run is written through); a NAME.run that
names a process other than the VM's worker (another program, or another VM's worker) is not
re-attached, and destroying the VM signals nothing.
"""
import json
import os
import pwd
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

SECRET = b"root only: must stay unread and untouched\n"
# lockstepd's capabilities after start: kill, setgid, setuid, sys_ptrace, sys_admin, sys_nice,
# syslog (a passthrough worker opens the kernel log before it drops every capability).
DAEMON_CAPS = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 19) | (1 << 21) | (1 << 23) | (1 << 34)
CANARY = "LOCKSTEP_SECURITY_TEST_CANARY"


def status(pid, tid=None):
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    with open(path) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def comm(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/comm") as f:
        return f.read().strip()


def secret_file(path):
    with open(path, "wb") as f:
        f.write(SECRET)
    os.chmod(path, 0o600)
    return os.stat(path)


def untouched(path, before):
    st = os.stat(path, follow_symlinks=False)
    with open(path, "rb") as f:
        return f.read() == SECRET and (st.st_size, st.st_mtime_ns, st.st_uid, st.st_mode) == (
            before.st_size, before.st_mtime_ns, before.st_uid, before.st_mode)


def start_fails(d, c, name, wanted):
    """vm.start must fail; the worker's log must say `wanted`; returns the log."""
    t0 = time.monotonic()
    e = c.error("vm.start", {"name": name}, dh.BAD_STATE)
    check(f"VM {name} did not start" in e["message"], f"{name}: start fails", e)
    check(time.monotonic() - t0 < 15, f"{name}: the failed start took too long")
    with open(os.path.join(d.run_dir, "vms", f"{name}.log"), errors="replace") as f:
        log = f.read()
    check(wanted in log, f"{name}: the worker's log says {wanted!r}", log)
    return log


def refused_at_define(env, c):
    for key, extra in (("serial.log", {"serial": {"log": "/etc/shadow"}}),
                       ("kernel", {"kernel": "/etc/shadow"})):
        e = c.error("vm.define", {"definition": env.definition("x", "idle", **extra)},
                    dh.PERMISSION)
        check(f'"{key}": "/etc/shadow" is not beneath a directory lockstepd allows' in
              e["message"] and env.images in e["message"], f"{key} /etc/shadow refused", e)
    escape = os.path.join(env.files, "..", "..", "..", "etc", "shadow")
    e = c.error("vm.define", {"definition": env.definition("x", "idle", serial={"log": escape})},
                dh.PERMISSION)
    check('"serial.log"' in e["message"] and '".."' in e["message"], "'..' refused", e)
    check(c.result("vm.list") == [], "nothing was defined")
    ok("define: kernel or serial.log /etc/shadow, or a '..' way out, refused naming the rule")


def root_only_files(env, d, c):
    log = os.path.join(env.files, "secret.log")
    before = secret_file(log)
    c.result("vm.define", definition=env.definition("steal-log", "idle", serial={"log": log}))
    start_fails(d, c, "steal-log", "Permission denied (opened as user lockstep-vm)")
    check(untouched(log, before), "a root-only serial.log is not truncated or written")
    kernel = os.path.join(env.images, "secret.elf")
    shutil.copyfile(os.path.join(env.guest_dir, "idle.elf"), kernel)
    os.chmod(kernel, 0o600)
    c.result("vm.define", definition=dict(env.definition("steal-kernel", "idle"), kernel=kernel))
    start_fails(d, c, "steal-kernel", "Permission denied (opened as user lockstep-vm)")
    ok("a root-only 0600 file beneath an allowed directory: not read, not truncated")


def symlinks(env, d, c):
    target = os.path.join(env.root, "target")  # outside every allowed directory
    before = secret_file(target)
    cases = []
    link = os.path.join(env.files, "link.log")
    os.symlink(target, link)
    cases.append(("link-log", {"serial": {"log": link}}))
    harmless = os.path.join(env.images, "link.elf")
    os.symlink(env.guest("idle"), harmless)
    cases.append(("link-kernel", {"kernel": harmless}))
    os.symlink(env.root, os.path.join(env.files, "up"))
    cases.append(("link-dir", {"serial": {"log": os.path.join(env.files, "up", "target")}}))
    for name, extra in cases:
        c.result("vm.define", definition=env.definition(name, "idle", **extra))
        start_fails(d, c, name, "a symbolic link or a way out of")
    # Planted after the definition was accepted: the open decides, not the define.
    later = os.path.join(env.files, "later.log")
    c.result("vm.define", definition=env.definition("link-later", "idle",
                                                    serial={"log": later}))
    os.symlink(target, later)
    start_fails(d, c, "link-later", "a symbolic link or a way out of")
    check(untouched(target, before), "no link led to the target")
    ok("symbolic links beneath allowed directories are never followed (also planted late)")


def fifos(env, d, c):
    fifo_log = os.path.join(env.files, "fifo.log")
    fifo_kernel = os.path.join(env.images, "fifo.elf")
    for path in (fifo_log, fifo_kernel):
        os.mkfifo(path)
        os.chmod(path, 0o666)
    c.result("vm.define", definition=env.definition("fifo-log", "idle",
                                                    serial={"log": fifo_log}))
    # lockstepd reads a kernel's head at define time: a FIFO is refused then, unopened.
    e = c.error("vm.define", {"definition": dict(env.definition("fifo-kernel", "idle"),
                                                 kernel=fifo_kernel)}, dh.BAD_DEFINITION)
    check("is not a regular file" in e["message"], "a FIFO kernel refused at define", e)
    # A kernel that becomes a FIFO after the define: the worker refuses it at start.
    later = os.path.join(env.images, "fifo-later.elf")
    shutil.copyfile(env.guest("idle"), later)
    os.chmod(later, 0o644)
    c.result("vm.define", definition=dict(env.definition("fifo-kernel", "idle"), kernel=later))
    os.remove(later)
    os.mkfifo(later)
    os.chmod(later, 0o666)
    other = d.client()
    start_fails(d, c, "fifo-log", "serial.log")
    check(other.result("daemon.info")["vms"]["defined"] >= 2, "the daemon answers")
    start_fails(d, c, "fifo-kernel", "is not a regular file")
    other.close()
    ok("a FIFO as serial.log or kernel: a FIFO kernel refused at define, one planted later "
       "and a FIFO serial.log fail the start at once; nothing hangs")


def allowed_log(env, d, c):
    log = os.path.join(env.files, "console.log")
    c.result("vm.define", definition=env.definition("logged", "idle", "heartbeat_ms=20",
                                                    serial={"log": log}))
    c.result("vm.start", name="logged")
    dh.wait_for(lambda: "idle: heartbeat" in c.result("vm.console", name="logged")["data"],
                10, "heartbeats on the console")
    dh.wait_for(lambda: os.path.exists(log) and b"idle: heartbeat" in open(log, "rb").read(),
                10, "heartbeats in serial.log")
    check(os.stat(log).st_uid == pwd.getpwnam(dh.WORKER_USER).pw_uid,
          "serial.log is written as the worker user")
    c.result("vm.destroy", name="logged")
    ok("an allowed serial.log is written as the worker user; vm.console reads lockstepd's copy")


def cgroup_dirs(stats):
    cg = stats["sandbox"]["cgroup"]
    return cg, sorted({cg["memory"], cg["pids"]})


def limit(path):
    with open(path) as f:
        text = f.read().strip()
    return None if text == "max" else int(text)


def running_worker(env, d, c):
    c.result("vm.define", definition=env.definition("boxed", "idle", "heartbeat_ms=50",
                                                    vcpus=2, memory="32M"))
    c.result("vm.start", name="boxed")
    info = c.result("vm.info", name="boxed")
    pid, uuid = info["pid"], info["uuid"]
    user = pwd.getpwnam(dh.WORKER_USER)
    st = status(pid)
    check(st["Uid"].split() == [str(user.pw_uid)] * 4 and
          st["Gid"].split() == [str(user.pw_gid)] * 4, "the worker user's ids", st)
    check(st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", "no_new_privs, seccomp", st)
    check(int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0 and
          int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0, "no capabilities", st)
    check(st["NSpid"].split()[1:] == ["1"], "pid 1 of its own pid namespace", st)
    # KVM's own per-VM workers (kvm-nx-lpage-recovery) sit in the thread group too.
    tasks = [t for t in os.listdir(f"/proc/{pid}/task") if not comm(pid, t).startswith("kvm")]
    names = {t: comm(pid, t) for t in tasks}
    check(sorted(names.values()) == ["devices", "irq-steer", "lockstep-vm", "vcpu0", "vcpu1"]
          and all(status(pid, t)["Seccomp"] == "2" and status(pid, t)["Seccomp_filters"] == "1"
                  for t in tasks),
          "every thread (control, devices, irq-steer, 2 vCPUs) runs under one seccomp filter "
          "of its own", names)
    print(f"     worker /proc/{pid}/status: Uid {st['Uid']}, NoNewPrivs {st['NoNewPrivs']}, "
          f"Seccomp {st['Seccomp']}")
    for ns in ("pid", "mnt", "net", "ipc"):
        check(os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/{d.pid}/ns/{ns}"),
              f"a {ns} namespace of its own")
    root = os.listdir(f"/proc/{pid}/root")
    check(root == (["proc"] if env.asan else []), "an empty root", root)
    with open(f"/proc/{pid}/environ", "rb") as f:
        environ = f.read().split(b"\0")
    check(not any(v.startswith(CANARY.encode()) for v in environ) and
          b"PATH=/usr/sbin:/usr/bin:/sbin:/bin" in environ, "a clean environment", environ)
    with open(f"/proc/{pid}/limits") as f:
        limits = {line[:26].strip(): line[26:].split()[:2] for line in f.readlines()[1:]}
    nofile = limits["Max open files"]
    check(limits["Max core file size"] == ["0", "0"] and
          limits["Max file size"] == [str(128 << 20)] * 2 and nofile[0] == nofile[1] and
          int(nofile[0]) < 1024 and int(limits["Max realtime priority"][1]) <= 1,
          "rlimits: no core, a file size cap, few descriptors, real-time priority 1 at most",
          limits)
    sandbox = info["stats"]["sandbox"]
    cg, dirs = cgroup_dirs(info["stats"])
    ram = 32 << 20
    check(sandbox["enabled"] and sandbox["user"] == dh.WORKER_USER and
          sandbox["uid"] == user.pw_uid and sandbox["no_new_privs"] and
          sandbox["namespaces"] == ["pid", "mnt", "net", "ipc"] and
          0 < sandbox["seccomp"]["irq_steer"] < sandbox["seccomp"]["devices"] <
          sandbox["seccomp"]["vcpu"] < sandbox["seccomp"]["control"] and
          cg["version"] in (1, 2) and cg["memory_max"] == ram + ram // 16 + (256 << 20) +
          2 * (4 << 20) and cg["pids_max"] == 2 + 16, "vm.info: the sandbox", sandbox)
    for path in dirs:
        check(path.endswith(f"/lockstep/boxed.{uuid}") and os.path.isdir(path),
              "cgroup lockstep/NAME.UUID", path)
        with open(os.path.join(path, "cgroup.procs")) as f:
            check(str(pid) in f.read().split(), "the worker is in its cgroup", path)
    mem_file = "memory.max" if cg["version"] == 2 else "memory.limit_in_bytes"
    check(limit(os.path.join(cg["memory"], mem_file)) == cg["memory_max"] and
          limit(os.path.join(cg["pids"], "pids.max")) == cg["pids_max"],
          "the cgroup's limits are set", cg)
    print(f"     cgroup v{cg['version']}: memory {cg['memory_max'] >> 20} MiB, "
          f"{cg['pids_max']} tasks; seccomp lists: control {sandbox['seccomp']['control']}, "
          f"vCPU {sandbox['seccomp']['vcpu']}, devices {sandbox['seccomp']['devices']}, "
          f"irq-steer {sandbox['seccomp']['irq_steer']} system calls")
    check(sorted(str(v["tid"]) for v in info["vcpu"]) ==
          sorted(t for t in tasks if names[t].startswith("vcpu")),
          "vm.info's vCPU tids are the worker's threads as the host sees them", info["vcpu"])
    c.result("sched.set", name="boxed", policy="gang")
    dh.wait_for(lambda: all(v.get("affinity") in ("0", "1")
                            for v in c.result("vm.info", name="boxed")["vcpu"]),
                10, "the gang scheduler to pin the vCPU threads")
    ds = status(d.pid)
    check(ds["NoNewPrivs"] == "1" and int(ds["CapEff"], 16) == DAEMON_CAPS and
          int(ds["CapBnd"], 16) == DAEMON_CAPS, "the daemon's own privileges", ds)
    ok("a worker: unprivileged user, no capabilities, no_new_privs, seccomp on every thread, "
       "own namespaces, empty root, clean environment, rlimits, its cgroup and limits")
    return dirs


def cleanup(env, d, c, dirs):
    ctl = os.path.join(d.run_dir, "vms", "boxed.ctl")
    check(os.path.exists(ctl), "the worker's control socket exists while it runs")
    # A restarted daemon re-attaches and still cleans up after the worker.
    d.kill9()
    d.start()
    c = d.client()
    d.wait_state("boxed", "running", reason="re-attached")
    c.result("vm.destroy", name="boxed")
    dh.wait_for(lambda: not any(os.path.exists(p) for p in dirs), 10,
                "the VM's cgroup to be removed")
    check(not os.path.exists(ctl), "the control socket's file is removed")
    ok("after the worker (re-attached by a restarted daemon): cgroup and socket removed")
    return c


def missing_user(env):
    """A worker user that does not exist: lockstepd starts, says so, and refuses vm.start."""
    d = env.daemon("--worker-user", "no-such-user-here")
    c = d.client()
    c.result("vm.define", definition=env.definition("nouser", "idle"))
    want = ("the worker user no-such-user-here does not exist: create it "
            "(scripts/worker-user.sh) or name another one")
    e = c.error("vm.start", {"name": "nouser"}, dh.BAD_STATE)
    check(want in e["message"], "vm.start names the missing user and the fix", e)
    check(c.result("vm.info", name="nouser")["state"] == "shutoff", "nothing started")
    check(want in d.log(), "lockstepd's log says so at start")
    c.close()
    d.stop()
    ok("a worker user that does not exist: vm.start refused naming it, lockstepd runs on")


def unsafe_dirs(env):
    """lockstepd refuses a run or state directory others may write to, or another user's."""
    nobody = pwd.getpwnam("nobody")
    for which, fix in (("run", lambda p: os.chmod(p, 0o777)),
                       ("state", lambda p: os.chmod(p, 0o1777)),
                       ("run", lambda p: os.chown(p, nobody.pw_uid, nobody.pw_gid)),
                       ("state", lambda p: os.chmod(p, 0o775))):
        d = env.daemon(start=False)
        path = d.run_dir if which == "run" else d.state_dir
        os.makedirs(path)
        fix(path)
        os.makedirs(os.path.dirname(d.log_path), exist_ok=True)
        with open(d.log_path, "ab") as log:
            proc = subprocess.run(
                [env.lockstepd, "--foreground", "--run-dir", d.run_dir, "--state-dir",
                 d.state_dir, "--no-virt"] + env.allow_args(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=30)
        st = os.stat(path)
        check(proc.returncode != 0, f"lockstepd refuses a {which} directory of uid "
              f"{st.st_uid} mode {st.st_mode & 0o7777:04o}", d.log())
        check(f"{path} belongs to uid {st.st_uid} and has mode {st.st_mode & 0o7777:04o}"
              in d.log(), "lockstepd says which directory and why", d.log())
        check(not os.path.exists(d.socket), "no socket was bound")
    ok("a run or state directory that is not lockstepd's own, or that others may write to: "
       "refused at start")


def planted_links(env, d, c):
    """Links planted in the run directory at the names lockstepd opens are never followed."""
    vms = os.path.join(d.run_dir, "vms")
    target = os.path.join(env.root, "run-target")
    before = secret_file(target)
    c.result("vm.define", definition=env.definition("planted-console", "idle"))
    os.symlink(target, os.path.join(vms, "planted-console.console"))
    e = c.error("vm.console", {"name": "planted-console"})
    check(SECRET.decode() not in json.dumps(e), "vm.console does not read through the link", e)
    other = d.client()
    os.mkfifo(os.path.join(vms, "planted-fifo.console"))
    c.result("vm.define", definition=env.definition("planted-fifo", "idle"))
    t0 = time.monotonic()
    c.error("vm.console", {"name": "planted-fifo"})
    check(time.monotonic() - t0 < 5 and other.result("daemon.info"), "a FIFO does not block")
    other.close()
    c.result("vm.define", definition=env.definition("planted-run", "idle"))
    os.symlink(target, os.path.join(vms, "planted-run.run.tmp"))
    c.result("vm.start", name="planted-run")
    c.result("vm.destroy", name="planted-run")
    check(untouched(target, before), "no planted link led to the target")
    for name in ("planted-console", "planted-fifo", "planted-run"):
        c.result("vm.undefine", name=name)
    ok("links and FIFOs planted in the run directory: not followed, nothing blocks")


def start_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def plant_run_file(d, name, pid):
    with open(os.path.join(d.run_dir, "vms", f"{name}.run"), "w") as f:
        json.dump({"pid": pid, "start_ticks": start_ticks(pid), "domain_id": 90,
                   "started": 0}, f)


def planted_run_files(env):
    """A NAME.run naming another program, or another VM's worker, is not re-attached."""
    d = env.daemon()
    c = d.client()
    for name in ("real", "fake-sleep", "fake-worker"):
        c.result("vm.define", definition=env.definition(name, "idle", vcpus=1))
    c.result("vm.start", name="real")
    real_pid = c.result("vm.info", name="real")["pid"]
    c.close()
    d.kill9()
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        plant_run_file(d, "fake-sleep", sleeper.pid)
        plant_run_file(d, "fake-worker", real_pid)
        d.start()
        c = d.client()
        d.wait_state("real", "running", reason="re-attached")
        for name in ("fake-sleep", "fake-worker"):
            info = c.result("vm.info", name=name)
            check(info["state"] != "running" and info.get("pid") not in (sleeper.pid, real_pid),
                  f"{name}: not re-attached", info)
            c.request("vm.destroy", {"name": name})
        check("not its worker" in d.log(), "lockstepd's log says why", d.log())
        time.sleep(0.5)
        check(sleeper.poll() is None, "the program named by a planted NAME.run still runs")
        check(dh.alive(real_pid) and c.result("vm.info", name="real")["state"] == "running",
              "the other VM's worker still runs")
        c.result("vm.destroy", name="real")
        c.close()
        d.stop()
    finally:
        sleeper.kill()
        sleeper.wait()
    ok("a NAME.run naming another program or another VM's worker: not re-attached, "
       "not signalled")


def main():
    os.environ[CANARY] = "lockstepd's environment stays with lockstepd"
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client()
        refused_at_define(env, c)
        root_only_files(env, d, c)
        symlinks(env, d, c)
        fifos(env, d, c)
        allowed_log(env, d, c)
        dirs = running_worker(env, d, c)
        c = cleanup(env, d, c, dirs)
        planted_links(env, d, c)
        c.close()
        missing_user(env)
        unsafe_dirs(env)
        planted_run_files(env)


if __name__ == "__main__":
    main()
