"""Shared machinery for the virsh_*.py tests: the real `virsh` (libvirt-clients) against a
real lockstepd's libvirt endpoint (Python 3 stdlib only).

    with virsh_env.VirshEnv(sys.argv[1], sys.argv[2]) as env:  # skips without KVM or virsh
        d = env.daemon()                     # lockstepd with its libvirt sockets in env.root
        rc, out, err = env.virsh(d, "list", "--all")
        out = env.ok(d, "dominfo", "demo")   # must succeed; returns stdout
        env.define(d, "demo", prog="idle")   # domain XML through `virsh define`

Builds on daemon_harness.Env: every process the test started is killed at the end and the
daemon's log is searched for sanitizer reports.  virsh talks to the daemon with
lockstep+unix:///system?socket=PATH, so no system path is touched.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import lockstep_test as lt  # noqa: E402
from daemon_harness import check  # noqa: E402

NAMESPACE = "urn:lockstep:domain:1"


def need_virsh():
    if not shutil.which("virsh"):
        lt.skip("virsh (libvirt-clients) is not installed")


def domain_xml(name, kernel, vcpus=2, memory_mib=16, cmdline=None, extra="", devices="",
               metadata="", uuid=None, initrd=None):
    cmd = f"<cmdline>{cmdline}</cmdline>" if cmdline is not None else ""
    if initrd is not None:
        cmd = f"<initrd>{initrd}</initrd>" + cmd
    uid = f"<uuid>{uuid}</uuid>" if uuid else ""
    meta = (f"<metadata><lockstep:vm xmlns:lockstep='{NAMESPACE}'>{metadata}"
            f"</lockstep:vm></metadata>") if metadata else ""
    return (f"<domain type='kvm'><name>{name}</name>{uid}"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>{meta}{extra}"
            f"<os><type arch='x86_64'>hvm</type><kernel>{kernel}</kernel>{cmd}</os>"
            f"<devices>{devices}</devices></domain>\n")


class VirshEnv(dh.Env):
    def __init__(self, bin_dir, guest_dir):
        need_virsh()
        super().__init__(bin_dir, guest_dir)
        self.virsh_env = dict(os.environ, LC_ALL="C", LANG="C")
        self.virsh_env.pop("LIBVIRT_DEFAULT_URI", None)
        self.virsh_env.pop("VIRSH_DEFAULT_CONNECT_URI", None)

    def daemon(self, *args, root=None, start=True, **kw):
        d = super().daemon(*args, root=root, start=False)
        d.virt_socket = os.path.join(d.root, "virt.sock")
        d.uri = f"lockstep+unix:///system?socket={d.virt_socket}"
        d.uri_ro = f"lockstep+unix:///system?socket={d.virt_socket}-ro"
        d.args = ["--virt-socket", d.virt_socket] + list(args)
        if start:
            d.start()
            dh.wait_for(lambda: os.path.exists(d.virt_socket + "-ro"), 10,
                        "the libvirt sockets")
        return d

    def virsh(self, d, *args, ro=False, uri=None, opts=(), timeout=60, stdin=None):
        """Runs virsh against the daemon; returns (status, stdout, stderr)."""
        cmd = ["virsh", "-c", uri or (d.uri_ro if ro else d.uri)] + list(opts) + list(args)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               env=self.virsh_env, input=stdin, errors="replace")
        except subprocess.TimeoutExpired:
            raise dh.TestFailure(f"virsh {' '.join(args)} timed out after {timeout}s")
        check(p.returncode >= 0, f"virsh {' '.join(args)} died on signal {-p.returncode}",
              p.stderr)
        return p.returncode, p.stdout, p.stderr

    def ok(self, d, *args, **kw):
        """Runs a virsh command that must succeed; returns its stdout."""
        rc, out, err = self.virsh(d, *args, **kw)
        check(rc == 0, f"virsh {' '.join(args)} failed with {rc}", out, err)
        return out

    def fails(self, d, *args, want=None, **kw):
        """Runs a virsh command that must fail; checks `want` is in its error; returns it."""
        rc, out, err = self.virsh(d, *args, **kw)
        check(rc != 0, f"virsh {' '.join(args)} should have failed", out, err)
        if want is not None:
            check(want in err, f"virsh {' '.join(args)}: error lacks {want!r}", err)
        return err

    def write(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def xml(self, name, prog="idle", **kw):
        return domain_xml(name, self.guest(prog), **kw)

    def define(self, d, name, prog="idle", **kw):
        path = self.write(f"{name}.xml", self.xml(name, prog, **kw))
        out = self.ok(d, "define", path)
        check(f"Domain '{name}' defined" in out, "virsh define", out)
        return path


def fields(text):
    """`Key:   value` lines (dominfo, nodeinfo) as a dict."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def table(text):
    """virsh's tables (list, vcpupin) as lists of cells, without header and rule."""
    rows = []
    lines = text.strip("\n").splitlines()
    for line in lines[2:] if len(lines) >= 2 and set(lines[1].strip()) == {"-"} else lines:
        if line.strip():
            rows.append(line.split())
    return rows


def wait_state(env, d, name, want, timeout=20):
    def reached():
        rc, out, _ = env.virsh(d, "domstate", name, "--reason")
        return out.strip() if rc == 0 and out.strip() == want else None
    return dh.wait_for(reached, timeout, f"domain {name} to be '{want}'", interval=0.05)


def now():
    return time.monotonic()
