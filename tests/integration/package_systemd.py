#!/usr/bin/env python3
"""lockstep's Debian package under a real systemd: the unit as systemctl runs it.

usage: package_systemd.py DEB

Boots this machine's systemd as PID 1 of a container (as systemd-nspawn would: an overlay of
/ whose writes stay in a tmpfs, PID, mount, network, UTS and cgroup namespaces of its own,
read-only sysfs, a /dev holding /dev/kvm), so nothing on the machine changes, then:
- dpkg -i DEB creates the group lockstep, enables lockstepd.service and starts it; the
  socket is 0660 root:lockstep in /run/lockstep, the state in /var/lib/lockstep (0700);
- dpkg -i also creates the system user lockstep-vm, and lockstepd reads the packaged
  /etc/lockstep/lockstepd.conf (the packaged guests allowed);
- a VM defined from standard input runs sandboxed (as lockstep-vm, without capabilities,
  no_new_privs, seccomp, a pid namespace of its own, cgroup v1 memory and pids limits beneath
  the unit's cgroup: Delegate=yes) with a live scheduling change (gang); a member of
  the group lockstep lists it with lockstep and virsh, a user outside it is refused;
- systemctl restart, and stop then start, leave its worker running (KillMode=process): the
  next lockstepd re-attaches to the same worker and keeps the live policy;
- lockstepd killed by SIGKILL is restarted by systemd (Restart=on-failure) and re-attaches;
- dpkg --purge while the VM runs stops the service, says so and keeps /var/lib/lockstep and
  /run/lockstep, and the package installed again re-attaches to the same worker;
- dpkg --purge with no VM running leaves no unit, no enablement, no /run/lockstep and no
  /var/lib/lockstep.
Skips (77) where there is no systemd, no /dev/kvm or no cgroup hierarchy it can delegate.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402

SYSTEMD = "/lib/systemd/systemd"
# Services of the machine the container does not need (and must not run twice).
MASKED = ("postgresql", "e2scrub_reap", "getty@tty1", "console-getty", "systemd-timesyncd",
          "systemd-pstore", "serial-getty@ttyS0", "apt-daily", "apt-daily-upgrade")

# Run in the new namespaces, as root of them: the container's filesystems, then its systemd.
SETUP = r"""
set -eu
t=$1 cgroup=$2 r=$1/root
mount -t tmpfs tmpfs "$t/ovl"; mkdir "$t/ovl/upper" "$t/ovl/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$t/ovl/upper,workdir=$t/ovl/work" "$r"
mount -t proc proc "$r/proc"
mount -t sysfs -o ro sysfs "$r/sys"
if [ "$cgroup" = unified ]; then
	mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup"
else
	mount -t tmpfs -o mode=755 tmpfs "$r/sys/fs/cgroup"
	mkdir "$r/sys/fs/cgroup/systemd"
	mount -t cgroup -o none,name=systemd cgroup "$r/sys/fs/cgroup/systemd"
	# The hierarchies lockstepd limits its workers in (cgroup v1: memory and pids).
	for ctl in $V1_CONTROLLERS; do
		mkdir "$r/sys/fs/cgroup/$ctl"
		mount -t cgroup -o "$ctl" cgroup "$r/sys/fs/cgroup/$ctl"
	done
fi
mount -t tmpfs -o mode=755 tmpfs "$r/dev"
for n in null zero full random urandom tty kvm; do
	touch "$r/dev/$n"; mount --bind "/dev/$n" "$r/dev/$n"
done
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=666 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"; mount -t tmpfs tmpfs "$r/dev/shm"
touch "$r/dev/console"; mount --bind "$t/console" "$r/dev/console"
mount -t tmpfs tmpfs "$r/run"; mount -t tmpfs tmpfs "$r/tmp"
cp "$t/lockstep.deb" "$r/root/lockstep.deb"
# A fresh machine: no lockstep accounts, no policy-rc.d forbidding service starts.
chroot "$r" sh -c "userdel lockstep-vm; groupdel lockstep; groupdel lockstep-vm" \
	>/dev/null 2>&1 || true
rm -f "$r/usr/sbin/policy-rc.d"
for u in $MASKED; do ln -sf /dev/null "$r/etc/systemd/system/$u.service"; done
echo lockstep-systemd > "$r/etc/hostname"
exec chroot "$r" env container=lockstep-test "$SYSTEMD" --log-target=console
"""


def check(cond, what, *context):
    if not cond:
        lt.fail(what + "".join(f"\n    {c!r}" for c in context))


def ok(what):
    print(f"ok   {what}", flush=True)


# The v1 hierarchies a legacy host gives the container too (lockstepd's workers need them).
V1_CONTROLLERS = ("memory", "pids")


def own_v1_cgroup(controller):
    """This process's cgroup directory in the v1 hierarchy of `controller`, or None."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                where = os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"))
                return where if os.path.isdir(where) else None
    return None


def cgroup_layout():
    """'unified' (cgroup2 at /sys/fs/cgroup), 'legacy' (name=systemd v1) or None."""
    with open("/proc/mounts") as f:
        mounts = [line.split() for line in f]
    for dev, where, fstype, opts, *_ in mounts:
        if where == "/sys/fs/cgroup" and fstype == "cgroup2":
            return "unified", "/sys/fs/cgroup"
        if where == "/sys/fs/cgroup/systemd" and "name=systemd" in opts.split(","):
            return "legacy", where
    return None, None


class Container:
    def __init__(self, deb):
        layout, hierarchy = cgroup_layout()
        if not layout:
            lt.skip("no cgroup2 or name=systemd hierarchy at /sys/fs/cgroup to delegate")
        self.tmp = tempfile.mkdtemp(prefix="lssd-")
        for d in ("ovl", "root"):
            os.mkdir(os.path.join(self.tmp, d))
        shutil.copy(deb, os.path.join(self.tmp, "lockstep.deb"))
        self.console = os.path.join(self.tmp, "console")
        open(self.console, "w").close()
        # A cgroup of its own, which the container's systemd sees as its root; on a legacy
        # host one in the memory and pids hierarchies too, which lockstepd's see as theirs.
        self.layout = layout
        self.cgroups = [os.path.join(hierarchy, os.path.basename(self.tmp))]
        if layout == "legacy":
            for ctl in V1_CONTROLLERS:
                own = own_v1_cgroup(ctl)
                if not own:
                    lt.skip(f"no cgroup v1 {ctl} hierarchy for lockstepd's workers")
                self.cgroups.append(os.path.join(own, os.path.basename(self.tmp)))
        for cg in self.cgroups:
            os.mkdir(cg)
        self.pid1 = None

        def enter_cgroup():
            for cg in self.cgroups:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))

        env = dict(os.environ, MASKED=" ".join(MASKED), SYSTEMD=SYSTEMD,
                   V1_CONTROLLERS=" ".join(V1_CONTROLLERS))
        self.unshare = subprocess.Popen(
            ["unshare", "-m", "-p", "-f", "-n", "-u", "-C", "--propagation", "private", "sh",
             "-c", SETUP, "sh", self.tmp, layout], env=env, preexec_fn=enter_cgroup,
            stdin=subprocess.DEVNULL, stdout=open(self.console, "a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.pid1:
            try:
                with open(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children") as f:
                    child = f.read().split()
                if child and os.readlink(f"/proc/{child[0]}/exe").endswith("/systemd/systemd"):
                    self.pid1 = int(child[0])
            except OSError:
                pass
            time.sleep(0.2)
        check(self.pid1, "the container's systemd runs", self.text())

    def text(self):
        with open(self.console, errors="replace") as f:
            return f.read()[-3000:]

    def sh(self, script, timeout=120):
        """Runs a shell script in the container: (status, output)."""
        p = subprocess.run(
            ["nsenter", "-t", str(self.pid1), "-m", "-p", "-n", "-u", "-C", "-r", "-w", "env",
             "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "sh", "-c", script],
            capture_output=True, text=True, errors="replace", timeout=timeout,
            stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout + p.stderr

    def out(self, script, what):
        status, text = self.sh(script)
        check(status == 0, what, script, text)
        return text

    def show(self, *props):
        text = self.out("systemctl show lockstepd " + " ".join(f"-p {p}" for p in props),
                        "systemctl show")
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def close(self):
        if self.pid1:
            try:
                os.kill(self.pid1, signal.SIGKILL)  # takes its whole PID namespace along
            except OSError:
                pass
        try:
            self.unshare.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.unshare.kill()
        for cg in self.cgroups:
            for d, _, _ in sorted(os.walk(cg), reverse=True):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def vm(c):
    """The demo VM as lockstep vm info shows it: state, reason, worker pid, policy."""
    info = json.loads(c.out("lockstep --json vm info demo", "lockstep vm info"))
    return info["state"], info["reason"], info.get("pid"), info["policy"]


def main():
    deb = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        lt.skip("needs root (namespaces, mounts)")
    lt.need_kvm()
    for tool in ("unshare", "nsenter"):
        if not shutil.which(tool):
            lt.skip(f"{tool} is missing")
    if not os.access(SYSTEMD, os.X_OK):
        lt.skip(f"no {SYSTEMD} on this machine")
    check(os.path.exists(deb), "the package package/deb built", deb)

    c = Container(deb)
    try:
        deadline = time.monotonic() + 60
        while c.sh("test -S /run/systemd/private")[0] != 0:
            check(time.monotonic() < deadline, "the container's systemd listens", c.text())
            time.sleep(0.2)
        status, text = c.sh("timeout 120 systemctl is-system-running --wait")
        check(text.strip() in ("running", "degraded"), "the container's systemd boots", text,
              c.sh("systemctl --failed --no-legend")[1], c.text())
        ok(f"systemd as PID 1 of a container ({text.strip()})")

        text = c.out("dpkg -i /root/lockstep.deb", "dpkg -i")
        group = c.out("getent group lockstep", "the group lockstep exists")
        worker_user = c.out("getent passwd lockstep-vm", "the user lockstep-vm exists").split(":")
        check(worker_user[6].strip() == "/usr/sbin/nologin" and int(worker_user[2]) < 1000,
              "lockstep-vm: a system user without a shell", worker_user)
        check(c.out("systemctl is-enabled lockstepd", "is-enabled").strip() == "enabled",
              "the unit enabled by the package")
        props = c.show("Type", "KillMode", "ActiveState", "SubState", "MainPID")
        check(props == dict(props, Type="notify", KillMode="process", ActiveState="active",
                            SubState="running"), "dpkg -i started lockstepd", props, text)
        perms = c.out("stat -c '%a %U:%G %n' /run/lockstep/lockstepd.sock /run/lockstep "
                      "/var/lib/lockstep", "stat").split("\n")
        check(perms[:3] == ["660 root:lockstep /run/lockstep/lockstepd.sock",
                            "755 root:root /run/lockstep", "700 root:root /var/lib/lockstep"],
              "socket, runtime and state directories", perms)
        ok(f"dpkg -i: group {group.split(':')[0]}, system user lockstep-vm (uid "
           f"{worker_user[2]}), lockstepd.service enabled and started (Type=notify, "
           "KillMode=process), socket 0660 root:lockstep")

        c.out("printf '%s' '{\"name\": \"demo\", \"vcpus\": 2, \"memory\": \"16M\", "
              "\"kernel\": \"/usr/share/lockstep/guests/idle.elf\", "
              "\"cmdline\": \"heartbeat_ms=100\"}' | lockstep vm define - && "
              "lockstep vm start demo && lockstep sched set demo gang", "define, start, sched")
        state, reason, worker, policy = vm(c)
        check((state, policy) == ("running", "gang") and worker, "the VM runs, gang", state,
              policy)
        status = dict(line.split(":", 1) for line in
                      c.out("cat /proc/%d/status" % worker, "the worker's status").splitlines())
        check(status["Uid"].split() == [worker_user[2]] * 4 and
              status["Gid"].split() == [worker_user[3]] * 4 and
              status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2" and
              status["CapEff"].strip() == "0000000000000000",
              "the worker runs sandboxed as lockstep-vm (no capabilities, no_new_privs, "
              "seccomp)", status)
        check(status["NSpid"].split()[1:] == ["1"],
              "the worker is pid 1 of a pid namespace of its own", status["NSpid"])
        confinement = json.loads(c.out("lockstep --json daemon info",
                                       "lockstep daemon info"))["confinement"]
        check(confinement.get("sandbox") is True and
              confinement.get("worker_user") == "lockstep-vm" and
              confinement.get("allowed_paths") == ["/usr/share/lockstep/guests"],
              "lockstepd: sandbox on, worker user lockstep-vm, the packaged guests allowed "
              "(lockstepd.conf)", confinement)
        cgroup = c.out("cat /proc/%d/cgroup" % worker, "the worker's cgroup")
        if c.layout == "legacy":
            check("name=systemd:/system.slice/lockstepd.service" in cgroup and
                  all(re.search(rf":{ctl}:/.*lockstepd\.service/lockstep/demo\.[-0-9a-f]+\n",
                                cgroup) for ctl in V1_CONTROLLERS),
                  "the worker is in the unit's cgroup, limited in memory and pids cgroups "
                  "beneath the unit's", cgroup)
        else:
            check(re.search(r"^0::/system\.slice/lockstep/demo\.[-0-9a-f]+$", cgroup, re.M),
                  "the worker is in its own cgroup in the unit's slice", cgroup)
        ok(f"a VM defined from standard input runs sandboxed as lockstep-vm (Uid "
           f"{worker_user[2]}, seccomp, own pid namespace) in cgroups beneath "
           "lockstepd.service's, policy gang")

        c.out("useradd -M alice && usermod -a -G lockstep alice && useradd -M bob", "users")
        status, text = c.sh("su -s /bin/sh alice -c 'lockstep vm list'")
        check(status == 0 and " demo " in text, "a member of lockstep uses lockstepd", text)
        status, text = c.sh("su -s /bin/sh bob -c 'lockstep vm list'")
        check(status == 3 and "Permission denied" in text, "a user outside it is refused",
              status, text)
        if shutil.which("virsh"):
            status, text = c.sh("su -s /bin/sh alice -c 'virsh -c lockstep:///system list'")
            check(status == 0 and " demo " in text, "virsh as a member of lockstep", text)
        ok("a member of the group lockstep uses lockstep" +
           (" and virsh" if shutil.which("virsh") else "") + "; a user outside it is refused")

        main_pid = c.show("MainPID")["MainPID"]
        c.out("systemctl restart lockstepd", "systemctl restart")
        check(c.show("MainPID")["MainPID"] != main_pid, "a new lockstepd after the restart")
        check(vm(c) == ("running", "re-attached", worker, "gang"),
              "after systemctl restart: the same worker, re-attached, still gang", vm(c))
        ok("systemctl restart: the VM runs on in the same worker; lockstepd re-attaches, gang")

        c.out("systemctl stop lockstepd", "systemctl stop")
        props = c.show("ActiveState")
        alive = c.sh(f"kill -0 {worker}")[0] == 0
        check(props["ActiveState"] == "inactive" and alive,
              "systemctl stop stops lockstepd alone", props, alive)
        c.out("test -S /run/lockstep/vms/demo.ctl", "the run directory is kept over a stop")
        c.out("systemctl start lockstepd", "systemctl start")
        check(vm(c) == ("running", "re-attached", worker, "gang"),
              "after stop and start: the same worker, re-attached", vm(c))
        ok("systemctl stop leaves the worker and /run/lockstep; start re-attaches")

        main_pid = c.show("MainPID")["MainPID"]
        c.out(f"kill -KILL {main_pid}", "kill lockstepd")
        deadline = time.monotonic() + 30
        while True:
            props = c.show("MainPID", "ActiveState", "NRestarts")
            if props["ActiveState"] == "active" and props["MainPID"] not in ("0", main_pid):
                break
            check(time.monotonic() < deadline, "systemd restarts a killed lockstepd", props)
            time.sleep(0.5)
        check(props["NRestarts"] == "1" and vm(c)[:3] == ("running", "re-attached", worker),
              "restarted once, re-attached", props, vm(c))
        ok("lockstepd killed: systemd restarts it (Restart=on-failure), the VM runs on")

        status, text = c.sh("dpkg --purge lockstep")
        check(status == 0 and "VMs still run (demo)" in text, "a purge while a VM runs", text)
        for path in ("/run/lockstep/vms/demo.ctl", "/var/lib/lockstep", "/usr/sbin/lockstepd"):
            exists = c.sh(f"test -e {path}")[0] == 0
            check(exists == (path != "/usr/sbin/lockstepd"), f"{path} after that purge")
        check(c.sh(f"kill -0 {worker}")[0] == 0, "the worker runs on")
        c.out("dpkg -i /root/lockstep.deb", "dpkg -i again")
        check(vm(c) == ("running", "re-attached", worker, "gang"),
              "the package installed again re-attaches to the worker", vm(c))
        ok("dpkg --purge while a VM runs keeps its definition and run directory, says so; "
           "installed again, lockstepd re-attaches to it")

        text = c.out("lockstep vm shutdown demo", "lockstep vm shutdown")
        check(vm(c)[0] == "shutoff", "the VM shut down", text)
        c.out("dpkg --purge lockstep", "dpkg --purge")
        status, text = c.sh("systemctl is-active lockstepd; ps -eo comm")
        check(text.startswith("inactive\n") and "lockstep" not in text,
              "after the purge: lockstepd stopped, no lockstep process left", text)
        for path in ("/lib/systemd/system/lockstepd.service",
                     "/etc/systemd/system/multi-user.target.wants/lockstepd.service",
                     "/run/lockstep", "/var/lib/lockstep", "/usr/sbin/lockstepd"):
            check(c.sh(f"test -e {path}")[0] != 0, f"{path} is gone after the purge")
        ok("dpkg --purge: lockstepd stopped; unit, enablement, /run/lockstep and "
           "/var/lib/lockstep gone (the group lockstep stays)")
    finally:
        c.close()


if __name__ == "__main__":
    main()
