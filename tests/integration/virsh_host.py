#!/usr/bin/env python3
"""Host-level virsh commands, sockets and connections against lockstepd's libvirt endpoint.

usage: virsh_host.py BIN_DIR GUEST_DIR

version, hostname, nodeinfo (against /proc and sysfs), capabilities (virt-xml-validate),
maxvcpus, uri; the read-only socket (reads work, every change is refused) and `virsh -r`;
peer credentials (another user is refused on the read-write socket, served on the read-only
one); procedures lockstep does not implement (a clean error, the connection goes on); URIs of
other drivers refused; keepalive with `virsh -k 1 -K 2` over an idle connection; and
`virsh -c lockstep:///system` with no socket parameter, when the default path is free.
"""
import os
import pwd
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import virsh_env as ve  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

DEFAULT_SOCKET = "/run/libvirt/virtlockstepd-sock"


def host_info(env, d):
    out = env.ok(d, "version")
    check("Using API: lockstep" in out and "Running hypervisor: lockstep 0.1.0" in out,
          "version", out)
    check(env.ok(d, "hostname").strip() == socket.gethostname(), "hostname")
    info = ve.fields(env.ok(d, "nodeinfo"))
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    cpus = int(info["CPU(s)"])
    check(info["CPU model"] == "x86_64" and cpus == os.cpu_count(), "nodeinfo CPUs", info)
    check(int(info["Memory size"].split()[0]) == mem_kib, "nodeinfo memory", info, mem_kib)
    topo = [int(info[k]) for k in ("NUMA cell(s)", "CPU socket(s)", "Core(s) per socket",
                                   "Thread(s) per core")]
    check(topo[0] * topo[1] * topo[2] * topo[3] == cpus, "nodeinfo topology adds up", info)
    caps = env.ok(d, "capabilities")
    root = ET.fromstring(caps)
    check(root.findtext("host/cpu/arch") == "x86_64", "capabilities arch", caps)
    check(len(root.findall("host/topology/cells/cell/cpus/cpu")) == cpus, "one <cpu> each")
    machine = root.find("guest/arch/machine")
    check(root.findtext("guest/os_type") == "hvm" and machine.text == "lockstep" and
          machine.get("maxCpus") == "254", "capabilities guest", caps)
    check(root.find("guest/arch/domain").get("type") == "kvm", "domain type kvm", caps)
    check(root.findtext("guest/arch/emulator") == env.vm_binary, "emulator", caps)
    if shutil.which("virt-xml-validate"):
        path = env.write("caps.xml", caps)
        p = subprocess.run(["virt-xml-validate", path, "capability"], capture_output=True,
                           text=True)
        check(p.returncode == 0, "capabilities validate", p.stdout, p.stderr)
    check(env.ok(d, "maxvcpus").strip() == "254", "maxvcpus")
    check(env.ok(d, "maxvcpus", "--type", "kvm").strip() == "254", "maxvcpus --type kvm")
    check(env.ok(d, "uri").strip() == d.uri, "uri")
    ok("version, hostname, nodeinfo, capabilities (valid), maxvcpus, uri")


def read_only(env, d):
    env.define(d, "demo")
    env.ok(d, "start", "demo")
    for uri_ro, opts in ((True, ()), (False, ("-r",))):
        names = env.ok(d, "list", "--all", "--name", ro=uri_ro, opts=opts).split()
        check(names == ["demo"], "read-only list", names)
        check(ve.fields(env.ok(d, "dominfo", "demo", ro=uri_ro, opts=opts))["State"] ==
              "running", "read-only dominfo")
        env.ok(d, "dumpxml", "demo", ro=uri_ro, opts=opts)
        for cmd in (("destroy", "demo"), ("shutdown", "demo"), ("reboot", "demo"),
                    ("undefine", "demo"), ("autostart", "demo"), ("vcpupin", "demo", "0", "0"),
                    ("define", env.write("ro.xml", env.xml("ro")))):
            env.fails(d, *cmd, ro=uri_ro, opts=opts, want="read only access prevents")
    check(env.ok(d, "domstate", "demo").strip() == "running", "nothing changed")
    check(env.ok(d, "list", "--all", "--name").split() == ["demo"], "nothing defined")
    ok("read-only socket and virsh -r: reads work, every change refused")


def peer_credentials(env, d):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        print("note: no user 'nobody': peer credentials not tested")
        return
    if os.getuid() != 0 or not shutil.which("setpriv"):
        print("note: not root or no setpriv: peer credentials not tested")
        return
    os.chmod(env.root, 0o755)
    os.chmod(d.root, 0o755)
    as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                 "--clear-groups"]
    environ = dict(env.virsh_env, HOME="/tmp", XDG_CONFIG_HOME="/tmp", XDG_CACHE_HOME="/tmp")

    def run(uri, *args):
        return subprocess.run(as_nobody + ["virsh", "-c", uri] + list(args),
                              capture_output=True, text=True, env=environ, timeout=30)
    p = run(d.uri, "list", "--all", "--name")
    check(p.returncode != 0, "the read-write socket's mode keeps another user out", p.stdout)
    os.chmod(d.virt_socket, 0o666)  # past the mode, the daemon's own check must hold
    p = run(d.uri, "list", "--all", "--name")
    check(p.returncode != 0, "another user is refused on the read-write socket", p.stdout)
    p = run(d.uri_ro, "list", "--all", "--name")
    check(p.returncode == 0 and p.stdout.split() == ["demo"], "... and served read-only",
          p.stdout, p.stderr)
    check("refused a libvirt client (uid" in d.log(), "the refusal is logged")
    ok("peer credentials: another user gets the read-only socket only")


def unsupported(env, d):
    for cmd, proc in ((("suspend", "demo"), "34"), (("sysinfo",), "203"),
                      (("setmem", "demo", "8M"), None)):
        err = env.fails(d, *cmd)
        check("this function is not supported by the connection driver" in err or
              "Operation not supported" in err or "unsupported" in err.lower(),
              f"{cmd[0]}: a clean unsupported error", err)
    check(env.ok(d, "domstate", "demo").strip() == "running", "the domain is untouched")
    err = env.fails(d, "list", uri=d.uri.replace("lockstep+unix", "qemu+unix"))
    check("lockstepd serves lockstep:/// URIs only" in err, "a qemu URI is refused", err)
    ok("unimplemented procedures: clean errors; other drivers' URIs refused")


def keepalive(env, d):
    """libvirt's debug log shows the client's PINGs and our PONGs; without PONGs it would
    drop the connection after about 3 s."""
    env.virsh_env["LIBVIRT_DEBUG"] = "1"
    try:
        rc, out, err = env.virsh(d, "event", "--loop", "--event", "lifecycle", "--timeout",
                                 "4", opts=("-k", "1", "-K", "2"), timeout=30)
    finally:
        del env.virsh_env["LIBVIRT_DEBUG"]
    pongs = err.count("RPC_KEEPALIVE_RECEIVED")
    check("event loop timed out" in out and "keepalive timeout" not in err and pongs >= 2,
          f"an idle connection with -k 1 -K 2 survives 4 s ({pongs} PONGs)", out,
          err[-2000:])
    ok(f"keepalive: virsh -k 1 -K 2 stays connected through 4 idle seconds ({pongs} PONGs)")


def default_path(env):
    """virsh -c lockstep:///system finds /run/libvirt/virtlockstepd-sock on its own."""
    if os.path.exists(DEFAULT_SOCKET):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(DEFAULT_SOCKET)
            s.close()
            print(f"note: {DEFAULT_SOCKET} is served by another lockstepd: not tested")
            return
        except OSError:
            pass
    # The harness's daemons run without the endpoint; this one keeps lockstepd's defaults.
    d = dh.Daemon(env, env.path("default"), [])
    d.uri = "lockstep:///system"
    os.makedirs(d.root)
    with open(d.log_path, "wb") as log:
        d.proc = subprocess.Popen([env.lockstepd, "--foreground", "--run-dir", d.run_dir,
                                   "--state-dir", d.state_dir] + env.allow_args(),
                                  stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT)
    env.daemons.append(d)
    log = dh.wait_for(lambda: ("serving" in d.log() and d.log()), 10, "the default daemon")
    if "another lockstepd serves it" in log:
        print(f"note: another lockstepd took {DEFAULT_SOCKET} meanwhile: not tested")
        d.stop()
        return
    check(f"libvirt endpoint on {DEFAULT_SOCKET}" in log, "default libvirt socket", log)
    env.define(d, "default-path-probe")
    names = env.ok(d, "list", "--all", "--name").split()
    check("default-path-probe" in names, "virsh -c lockstep:///system", names)
    check("default-path-probe" in env.ok(d, "list", "--all", "--name", opts=("-r",)),
          "virsh -r -c lockstep:///system (the -ro socket)")
    d.stop()
    check(not os.path.exists(DEFAULT_SOCKET), "the daemon removes its default socket")
    ok("virsh -c lockstep:///system (and -r) with no socket parameter")


def main():
    with ve.VirshEnv(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        host_info(env, d)
        read_only(env, d)
        peer_credentials(env, d)
        unsupported(env, d)
        keepalive(env, d)
        env.ok(d, "destroy", "demo")
        default_path(env)


if __name__ == "__main__":
    main()
