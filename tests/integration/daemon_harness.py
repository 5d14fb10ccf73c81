"""Shared machinery for lockstepd's integration tests (daemon_*.py; Python 3 stdlib only).

Each test runs real processes: a lockstepd in a temporary directory of its own (run and
state directories, socket), real lockstep-vm workers on /dev/kvm, and talks to the daemon
through the lockstep CLI or raw JSON-RPC over its unix socket.

    with Env(sys.argv[1], sys.argv[2]) as env:     # BIN_DIR GUEST_DIR; skips without KVM
        d = env.daemon("--max-frame", "4096")      # started, socket answering
        c = d.client()                             # a raw JSON-RPC connection
        c.result("vm.define", definition=env.definition("a", "idle"))

Workers live in sessions of their own and outlive a killed daemon, so the environment
kills every process whose command line names its directory when the test ends, passed or
not.  A daemon is stopped with SIGTERM at the end and its log is searched for sanitizer
reports, so the ASan build of the suite catches leaks and memory errors in lockstepd.
"""
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(__file__))
# The client module lockstep ships (clients/python), which these tests use as a user would.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "clients", "python"))
import lockstep  # noqa: E402
import lockstep_test as lt  # noqa: E402
import schema_lite  # noqa: E402

WORKER_USER = "lockstep-vm"  # lockstepd's default worker user (scripts/worker-user.sh)
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

# lockstep's JSON-RPC error codes (api/api.h), as the client module names them.
PARSE_ERROR, INVALID_REQUEST = lockstep.PARSE_ERROR, lockstep.INVALID_REQUEST
METHOD_NOT_FOUND, INVALID_PARAMS = lockstep.METHOD_NOT_FOUND, lockstep.INVALID_PARAMS
NO_SUCH_VM, VM_EXISTS, BAD_STATE = lockstep.NO_SUCH_VM, lockstep.VM_EXISTS, lockstep.BAD_STATE
SYSTEM_ERROR, TIMEOUT, PERMISSION = lockstep.SYSTEM_ERROR, lockstep.TIMEOUT, lockstep.PERMISSION
LIMIT, BAD_DEFINITION = lockstep.LIMIT, lockstep.BAD_DEFINITION


class TestFailure(Exception):
    pass


def check(cond, what, *context):
    """Fails the test with `what` (and any context, e.g. a reply) unless cond holds."""
    if not cond:
        extra = "".join(f"\n    {c!r}" for c in context)
        raise TestFailure(f"{what}{extra}")


def wait_for(pred, timeout, what, interval=0.02):
    """Polls pred() until it returns something true; returns that, or fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


RpcError = lockstep.Error


SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                           "vm.schema.json")
_schema = []


def schema_errors(definition):
    """How a definition breaks docs/vm.schema.json ([] if it does not)."""
    if not _schema:
        with open(SCHEMA_PATH) as f:
            _schema.append(json.load(f))
    return schema_lite.validate(_schema[0], definition)


class Client(lockstep.Client):
    """One JSON-RPC connection (the lockstep module's, clients/python/lockstep.py), with the
    test's way of failing: a reply that does not come in time, a call that should have
    failed, a malformed reply, all raise TestFailure.  Every definition lockstepd accepts is
    also checked against docs/vm.schema.json, which must never refuse one."""

    def __init__(self, path, timeout=15.0):
        super().__init__(path, timeout)

    def request(self, method, params=None, id=lockstep.Client.AUTO,
                timeout=lockstep.Client.AUTO):
        r = super().request(method, params, id, timeout)
        if (method == "vm.define" and isinstance(r, dict) and "result" in r and
                isinstance(params, dict) and isinstance(params.get("definition"), dict)):
            errors = schema_errors(params["definition"])
            check(not errors, "docs/vm.schema.json refuses a definition lockstepd accepted",
                  params["definition"], errors)
        return r

    def reply_to(self, id, timeout=lockstep.Client.AUTO):
        try:
            return super().reply_to(id, timeout)
        except TimeoutError:
            raise TestFailure(f"no reply to request {id!r} in time")

    def frame(self, timeout=None):
        """The next frame, taking queued ones first; fails on timeout."""
        if self.queue:
            return self.queue.pop(0)
        f = self.read_frame(self.timeout if timeout is None else timeout)
        check(f is not None, "no frame from lockstepd in time")
        return f

    def result(self, method, **params):
        r = self.request(method, params)
        if "error" in r:
            raise RpcError(method, r["error"])
        check(r.get("jsonrpc") == "2.0" and "result" in r, f"{method}: malformed reply", r)
        return r["result"]

    def error(self, method, params=None, code=None, message=None):
        """Calls a method that must fail; checks the code and exact message if given."""
        r = self.request(method, params)
        check("error" in r and "result" not in r, f"{method} {params!r} should have failed", r)
        e = r["error"]
        if code is not None:
            check(e.get("code") == code, f"{method}: error code {e.get('code')}, want {code}", e)
        if message is not None:
            check(e.get("message") == message, f"{method}: unexpected error message", e,
                  message)
        return e

    def notification(self, timeout=None, method=None):
        """The next notification (optionally of one method); None after the timeout."""
        return super().notification(self.timeout if timeout is None else timeout, method)


class Daemon:
    """A lockstepd in `root` (run/ and state/ below it), started with `args`."""

    def __init__(self, env, root, args):
        self.env = env
        self.root = root
        self.args = list(args)
        self.run_dir = os.path.join(root, "run")
        self.state_dir = os.path.join(root, "state")
        self.socket = os.path.join(self.run_dir, "lockstepd.sock")
        self.log_path = os.path.join(root, "lockstepd.log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        log = open(self.log_path, "ab")
        # No libvirt endpoint unless the test names its socket: the default path is the
        # host's /run/libvirt, shared by every test running in parallel.
        virt = [] if any(a.startswith("--virt-socket") for a in self.args) else ["--no-virt"]
        self.proc = subprocess.Popen(
            [self.env.lockstepd, "--foreground", "--run-dir", self.run_dir, "--state-dir",
             self.state_dir, "--log-level", "debug"] + self.env.allow_args() + virt
            + self.args,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def answering():
            if self.proc.poll() is not None:
                raise TestFailure(f"lockstepd exited with status {self.proc.returncode}:\n"
                                  + self.log())
            try:
                c = Client(self.socket, timeout=2)
            except OSError:
                return False
            c.close()
            return True
        wait_for(answering, 20, "lockstepd to answer on its socket")
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def client(self, timeout=15.0):
        return Client(self.socket, timeout)

    def cli(self, *args, json_out=False, cwd=None, timeout=60):
        """Runs the lockstep CLI; returns (status, stdout, stderr)."""
        cmd = [self.env.lockstep, "--socket", self.socket] + (["--json"] if json_out else [])
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd,
                           timeout=timeout, errors="replace")
        check(p.returncode >= 0, f"lockstep {' '.join(args)} died on signal {-p.returncode}",
              p.stderr)
        return p.returncode, p.stdout, p.stderr

    def cli_json(self, *args, **kw):
        status, out, err = self.cli(*args, json_out=True, **kw)
        check(status == 0, f"lockstep {' '.join(args)} failed with {status}", err)
        return json.loads(out)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM: lockstepd must exit 0 (leaving VMs running) with a clean log."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise TestFailure("lockstepd did not stop on SIGTERM within 30 s")
        check(status == 0, f"lockstepd exited with status {status} on SIGTERM", self.log())
        self.check_log()

    def check_log(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            check(mark not in text, f"sanitizer report in lockstepd's log:\n{text}")

    def vm(self, name, client=None):
        """vm.info of one VM (over a short-lived connection unless one is given)."""
        c = client or self.client()
        try:
            return c.result("vm.info", name=name)
        finally:
            if client is None:
                c.close()

    def wait_state(self, name, state, timeout=20, reason=None):
        def reached():
            info = self.vm(name)
            ok = info["state"] == state and (reason is None or info["reason"] == reason)
            return info if ok else None
        return wait_for(reached, timeout, f"VM {name} to be {state}"
                        + (f" ({reason})" if reason else ""))


class Env:
    """A test's temporary directory, binaries and guests; cleans up whatever it started."""

    def __init__(self, bin_dir, guest_dir):
        lt.need_kvm()
        self.bin_dir = os.path.abspath(bin_dir)
        self.guest_dir = os.path.abspath(guest_dir)
        self.lockstepd = os.path.join(self.bin_dir, "lockstepd")
        self.lockstep = os.path.join(self.bin_dir, "lockstep")
        self.vm_binary = os.path.join(self.bin_dir, "lockstep-vm")
        self.root = tempfile.mkdtemp(prefix="lsd-")
        # Workers open their images as an unprivileged user (docs/security.md): the test's
        # daemons allow a directory it can reach (--allow-path) holding a copy of each.
        os.chmod(self.root, 0o755)
        self.images = os.path.join(self.root, "images")
        os.mkdir(self.images, 0o755)
        # And where a definition's serial.log may go: a directory the worker user owns.
        self.files = os.path.join(self.root, "files")
        os.mkdir(self.files, 0o755)
        user = pwd.getpwnam(WORKER_USER)
        os.chown(self.files, user.pw_uid, user.pw_gid)
        self.daemons = []
        self.asan = self._is_sanitized()

    def _is_sanitized(self):
        with open(self.lockstepd, "rb") as f:
            return b"__asan_init" in f.read()

    def allow_args(self):
        """lockstepd's --allow-path arguments for this test's images and files."""
        return ["--allow-path", self.images, "--allow-path", self.files]

    def guest(self, prog):
        """The image of guest program `prog`, beneath the directory the daemons allow."""
        src = os.path.join(self.guest_dir, f"{prog}.elf")
        check(os.path.exists(src), f"guest image {src} is missing (build the guests)")
        path = os.path.join(self.images, f"{prog}.elf")
        if not os.path.exists(path):
            shutil.copyfile(src, path)
            os.chmod(path, 0o644)
        return path

    def image(self, src):
        """A copy of file `src` beneath the directory the daemons allow (a Linux kernel, an
        initrd), readable by the worker user."""
        path = os.path.join(self.images, os.path.basename(src))
        if not os.path.exists(path):
            shutil.copyfile(src, path)
            os.chmod(path, 0o644)
        return path

    def definition(self, name, prog="idle", cmdline=None, vcpus=2, **extra):
        d = {"name": name, "vcpus": vcpus, "memory": "16M", "kernel": self.guest(prog)}
        if cmdline is not None:
            d["cmdline"] = cmdline
        d.update(extra)
        return d

    def daemon(self, *args, root=None, start=True):
        d = Daemon(self, root or os.path.join(self.root, f"d{len(self.daemons)}"), args)
        self.daemons.append(d)
        return d.start() if start else d

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def our_processes(self):
        """Pids of processes whose command line names this test's directory (workers)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if self.root.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
        return pids

    def worker_logs(self):
        out = []
        for d in self.daemons:
            vms = os.path.join(d.run_dir, "vms")
            for name in sorted(os.listdir(vms)) if os.path.isdir(vms) else []:
                if name.endswith(".log"):
                    with open(os.path.join(vms, name), errors="replace") as f:
                        out.append((name, f.read()))
        return out

    def __enter__(self):
        return self

    def __exit__(self, etype, exc, tb):
        failed = etype is not None
        try:
            for d in self.daemons:
                d.stop()
        except TestFailure as e:
            if not failed:
                failed, exc = True, e
        # Workers left running have cgroups no daemon will remove: after them, the test does.
        cgroups = []
        for pid in self.our_processes():
            cgroups += vm_cgroups(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for path in cgroups:
            try:
                wait_for(lambda: rmdir_gone(path), 5, f"{path} to empty")
            except TestFailure:
                pass
        if not failed:
            for name, text in self.worker_logs():
                if any(m in text for m in SANITIZER_MARKS):
                    failed, exc = True, TestFailure(f"sanitizer report in {name}:\n{text}")
        if failed:
            if not isinstance(exc, TestFailure):
                traceback.print_exception(etype, exc, tb)
            print(f"FAIL: {exc}")
            for d in self.daemons:
                print(f"---- {d.log_path} (last 60 lines) ----")
                print("\n".join(d.log().splitlines()[-60:]))
            print(f"(kept {self.root})")
            sys.exit(1)
        shutil.rmtree(self.root, ignore_errors=True)
        return False


def ok(what):
    print(f"ok   {what}", flush=True)


# ---- host-side views of processes ----

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def status_field(pid, field, tid=None):
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return None


def vm_cgroups(pid):
    """The directories of the VM cgroup (lockstep/NAME.UUID) a worker runs in."""
    mounts = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            _, mnt, fstype, opts = line.split()[:4]
            if fstype == "cgroup2":
                mounts.setdefault("", mnt)
            elif fstype == "cgroup":
                for ctrl in opts.split(","):
                    mounts.setdefault(ctrl, mnt)
    dirs = []
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if "/lockstep/" not in path:
                    continue
                for ctrl in ctrls.split(",") if ctrls else [""]:
                    if ctrl in mounts:
                        dirs.append(mounts[ctrl] + path)
    except OSError:
        pass
    return sorted(set(dirs))


def rmdir_gone(path):
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def rss_kib(pid):
    return int(status_field(pid, "VmRSS").split()[0])


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
