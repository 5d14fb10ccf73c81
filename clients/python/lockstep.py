"""A client for lockstepd's JSON-RPC 2.0 API (Python 3 standard library only).

lockstepd serves newline-delimited JSON-RPC 2.0 on a unix socket (docs/api.md): one JSON
object per line each way, requests with an id, replies matched by it, and notifications (no
id) for events and console output that may arrive at any time in between.

    import lockstep

    with lockstep.Client() as c:        # $LOCKSTEP_SOCKET, else /run/lockstep/lockstepd.sock
        c.define({"name": "demo", "vcpus": 2, "memory": "64M",
                  "kernel": "/usr/share/lockstep/guests/hello.elf"})
        print(c.start("demo")["state"])                # waits until the guest runs
        for vm in c.list():
            print(vm["name"], vm["state"])
        try:
            c.start("nosuch")
        except lockstep.Error as e:
            print(e.code == lockstep.NO_SUCH_VM, e.message)

    with lockstep.Client() as c:        # events as they happen
        for ev in c.events():
            print(ev["time"], ev["vm"], ev["type"], ev.get("event") or ev.get("kind"))

One request is in flight at a time per Client unless you use send()/reply_to() yourself;
notifications that arrive while a reply is awaited wait in a queue for notification().
"""
import json
import os
import socket
import time

__all__ = ["Client", "Error", "default_socket"]

# JSON-RPC 2.0's error codes, and lockstep's (docs/api.md).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NO_SUCH_VM = -32001
VM_EXISTS = -32002
BAD_STATE = -32003
SYSTEM_ERROR = -32004
TIMEOUT = -32005
PERMISSION = -32006
LIMIT = -32007
BAD_DEFINITION = -32008
UNSUPPORTED = -32009

DEFAULT_SOCKET = "/run/lockstep/lockstepd.sock"


def default_socket():
    """The socket a client uses when not told: $LOCKSTEP_SOCKET, else lockstepd's default."""
    return os.environ.get("LOCKSTEP_SOCKET", DEFAULT_SOCKET)


class Error(Exception):
    """An error reply: .code (see the constants), .message, .data (e.g. {"errno": 28})."""

    def __init__(self, method, error):
        self.method = method
        self.error = error
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")
        super().__init__(f"{method}: {self.message} ({self.code})")


class Client:
    """One connection to lockstepd.  timeout bounds each wait for a reply (seconds; None
    waits for ever, as a vm.shutdown may need its own timeout's worth)."""

    AUTO = object()

    def __init__(self, path=None, timeout=60.0):
        self.path = path or default_socket()
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""
        self.queue = []
        self.next_id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self.sock.close()

    # ---- frames ----

    def send_raw(self, data):
        """Sends bytes as they are (tests send malformed frames this way)."""
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def send(self, obj):
        """Sends one JSON value as a frame (a request, a notification or a batch)."""
        self.send_raw(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def read_frame(self, timeout=AUTO):
        """The next frame as parsed JSON; None on timeout; EOFError when lockstepd closed
        the connection.  timeout: seconds, None for ever, by default the client's."""
        wait = self.timeout if timeout is Client.AUTO else timeout
        deadline = None if wait is None else time.monotonic() + wait
        while b"\n" not in self.buf:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                raise EOFError("lockstepd closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    # ---- requests ----

    def request(self, method, params=None, id=AUTO, timeout=AUTO):
        """Sends one request and returns the whole reply object for its id."""
        if id is Client.AUTO:
            self.next_id += 1
            id = self.next_id
        req = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            req["params"] = params
        self.send(req)
        return self.reply_to(id, timeout)

    def reply_to(self, id, timeout=AUTO):
        """The reply for request `id`; other frames that come first are queued.  Raises
        TimeoutError if none comes in time (timeout as read_frame's)."""
        for i, f in enumerate(self.queue):
            if isinstance(f, dict) and "method" not in f and f.get("id") == id:
                return self.queue.pop(i)
        wait = self.timeout if timeout is Client.AUTO else timeout
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            f = self.read_frame(left)
            if f is None:
                raise TimeoutError(f"no reply to request {id!r} within {wait} s")
            if isinstance(f, dict) and "method" not in f and f.get("id") == id:
                return f
            self.queue.append(f)

    def call(self, method, params=None, wait=AUTO, **kw):
        """Calls a method with named parameters (a dict, or keywords); its result, or raises
        Error.  wait: how long to wait for the reply, as read_frame's timeout."""
        r = self.request(method, dict(params or {}, **kw), timeout=wait)
        if "error" in r:
            raise Error(method, r["error"])
        return r.get("result")

    def notification(self, timeout=AUTO, method=None):
        """The next notification (of `method`, if given), or None on timeout (as
        read_frame's).  Other frames that arrive meanwhile are queued."""
        for i, f in enumerate(self.queue):
            if isinstance(f, dict) and "id" not in f and (method is None or
                                                          f.get("method") == method):
                return self.queue.pop(i)
        wait = self.timeout if timeout is Client.AUTO else timeout
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            f = self.read_frame(left)
            if f is None:
                return None
            if isinstance(f, dict) and "id" not in f and (method is None or
                                                          f.get("method") == method):
                return f
            self.queue.append(f)

    # ---- the methods, by name ----

    def daemon_info(self):
        return self.call("daemon.info")

    def define(self, definition=None, xml=None):
        """Defines (or redefines) a VM from a definition (a dict, docs/vm.schema.json) or
        libvirt domain XML.  Paths in it must be absolute."""
        if xml is not None:
            return self.call("vm.define", xml=xml)
        return self.call("vm.define", definition=definition)

    def undefine(self, name):
        return self.call("vm.undefine", name=name)

    def start(self, name):
        return self.call("vm.start", name=name, wait=None)

    def shutdown(self, name, timeout=None):
        """Presses the power button and waits (timeout: lockstepd's, in seconds)."""
        params = {"name": name}
        if timeout is not None:
            params["timeout"] = timeout
        # The reply comes when the guest is off, or after the shutdown's own timeout.
        return self.call("vm.shutdown", params, wait=None)

    def reboot(self, name):
        return self.call("vm.reboot", name=name, wait=None)

    def destroy(self, name):
        return self.call("vm.destroy", name=name)

    def autostart(self, name, enabled=True):
        return self.call("vm.autostart", name=name, enabled=enabled)

    def list(self, state=None):
        return self.call("vm.list", **({"state": state} if state else {}))

    def info(self, name):
        return self.call("vm.info", name=name)

    def console(self, name, **params):
        """vm.console: offset, max, tail (bytes), lines, all, follow (then notifications)."""
        return self.call("vm.console", name=name, **params)

    def pin(self, name, vcpu, cpus, config=False):
        return self.call("vcpu.pin", name=name, vcpu=vcpu, cpus=cpus, config=config)

    def sched_get(self, name):
        return self.call("sched.get", name=name)

    def sched_set(self, name, **params):
        """sched.set: policy, quantum_us, skew_us, config."""
        return self.call("sched.set", name=name, **params)

    def sched_stats(self, name=None, slices=None):
        params = {}
        if name is not None:
            params["name"] = name
        if slices is not None:
            params["slices"] = slices
        return self.call("sched.stats", **params)

    def host_check(self):
        return self.call("host.check", wait=None)

    def events(self, timeout=None):
        """Subscribes, then yields each event's params as it comes (for ever, or until no
        event came within `timeout` seconds)."""
        self.call("events.subscribe")
        while True:
            n = self.notification(timeout=timeout, method="event")
            if n is None:
                return
            yield n["params"]

    def follow_console(self, name, timeout=None, **params):
        """Yields the console's text from its current run on (params as console()), then
        what the guest writes, until the VM stops (or nothing came within `timeout`)."""
        r = self.console(name, follow=True, **params)
        yield r["data"]
        while True:
            n = self.notification(timeout=timeout)
            if n is None:
                return
            if n.get("method") == "console.end":
                return
            if n.get("method") == "console.output":
                yield n["params"]["data"]
