#!/usr/bin/env python3
"""lockstepd's libvirt endpoint at the packet level: a raw client speaking libvirt's remote
protocol (Python's own XDR), for what virsh never sends.

usage: virsh_protocol.py BIN_DIR GUEST_DIR

Calls before CONNECT_OPEN; unknown procedures (NO_SUPPORT, the connection goes on); unknown
flags; keepalive PING -> PONG; overlapping calls answered out of order and matched by serial
(a start that waits for the guest, with quick calls behind it); a half-closed client still
gets its replies; the read-only socket and CONNECT_OPEN's read-only flag (no state change, no
secure XML); and malformed packets (bad length, bad program, bad version, a reply from the client, truncated XDR,
trailing bytes, a NUL inside a string, a bad optional-pointer flag, a length past 16 MiB,
garbage, a bad keepalive) each of which ends only its own connection, with an error reply
where the header allows one, while the daemon serves the next client.  Connections that come
and go leave no descriptor behind.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import virsh_env as ve  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

REMOTE, KEEPALIVE, QEMU = 0x20008086, 0x6b656570, 0x20008087
CALL, REPLY, MESSAGE, STREAM = 0, 1, 2, 3
OPEN_CONSOLE, CONTINUE, ERROR = 201, 2, 1
AUTH_LIST, CONNECT_OPEN, GET_VERSION, GET_HOSTNAME = 66, 1, 4, 59
LOOKUP_BY_NAME, DOMAIN_CREATE, DOMAIN_DESTROY, GET_STATE = 23, 9, 12, 212
GET_XML_DESC, XML_SECURE, XML_MIGRATABLE = 14, 1, 8
ERR_NO_SUPPORT, ERR_NO_CONNECT, ERR_INVALID_ARG = 3, 5, 8
ERR_OPERATION_DENIED, ERR_RPC, ERR_NO_DOMAIN, ERR_INTERNAL = 29, 39, 42, 1


def u32(v):
    return struct.pack(">I", v & 0xffffffff)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return u32(len(b)) + b + b"\0" * (-len(b) % 4)


def packet(proc, payload=b"", serial=0, prog=REMOTE, vers=1, type_=CALL, status=0,
           length=None):
    body = struct.pack(">IIiiIi", prog, vers, proc, type_, serial, status) + payload
    return u32(length if length is not None else 4 + len(body)) + body


class Conn:
    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.serial = 100

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def call(self, proc, payload=b"", **kw):
        self.serial += 1
        self.send(packet(proc, payload, serial=self.serial, **kw))
        return self.serial

    def read(self, timeout=10):
        """The next packet as (prog, proc, type, serial, status, payload); EOFError at EOF."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 4 or len(self.buf) < struct.unpack(">I", self.buf[:4])[0]:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise dh.TestFailure("no packet from lockstepd in time")
            if not data:
                raise EOFError
            self.buf += data
        n = struct.unpack(">I", self.buf[:4])[0]
        pkt, self.buf = self.buf[:n], self.buf[n:]
        prog, _, proc, type_, serial, status = struct.unpack(">IIiiIi", pkt[4:28])
        return prog, proc, type_, serial, status, pkt[28:]

    def reply(self, serial):
        p = self.read()
        check(p[3] == serial and p[2] == REPLY, f"reply to serial {serial}", p)
        return p

    def ok_call(self, proc, payload=b"", **kw):
        p = self.reply(self.call(proc, payload, **kw))
        if p[4] != 0:
            raise dh.TestFailure(f"procedure {proc} failed: {error(p)}")
        return p[5]

    def err_call(self, proc, payload=b"", code=None, **kw):
        p = self.reply(self.call(proc, payload, **kw))
        check(p[4] == 1, f"procedure {proc} should have failed", p)
        e = error(p)
        check(code is None or e[0] == code, f"procedure {proc}: error {e}, want code {code}")
        return e

    def open(self, flags=0):
        self.ok_call(AUTH_LIST)
        self.ok_call(CONNECT_OPEN, u32(1) + string("lockstep:///system") + u32(flags))
        return self

    def eof(self, timeout=5):
        """Reads until the daemon closes; returns the packets that came first."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self.read(max(0.01, deadline - time.monotonic())))
            except EOFError:
                return got
            except (ConnectionResetError, BrokenPipeError):
                return got


def error(p):
    """(code, message) of an error reply."""
    payload = p[5]
    code, _, present = struct.unpack(">iiI", payload[:12])
    msg = ""
    if present:
        n = struct.unpack(">I", payload[12:16])[0]
        msg = payload[16:16 + n].decode(errors="replace")
    return code, msg


def domain_arg(payload):
    """The remote_nonnull_domain at the start of a reply, re-encoded as an argument."""
    n = struct.unpack(">I", payload[:4])[0]
    end = 4 + n + (-n % 4) + 16 + 4
    return payload[:end]


def basics(d):
    c = Conn(d.virt_socket)
    c.ok_call(AUTH_LIST)
    e = c.err_call(GET_HOSTNAME, code=ERR_NO_CONNECT)
    check("before CONNECT_OPEN" in e[1], "calls need CONNECT_OPEN first", e)
    c.ok_call(CONNECT_OPEN, u32(1) + string("lockstep:///system") + u32(0))
    check(c.ok_call(GET_HOSTNAME)[4:].rstrip(b"\0").decode() == socket.gethostname(),
          "hostname")
    # Refused by name, so a person can tell which call was made.
    e = c.err_call(34, string("x"), code=ERR_NO_SUPPORT)
    check("lockstep does not implement DOMAIN_SUSPEND (procedure 34)" in e[1],
          "unknown procedure", e)
    e = c.err_call(499, code=ERR_NO_SUPPORT)
    check("lockstep does not implement procedure 499" in e[1], "a number libvirt lacks", e)
    e = c.err_call(7777, code=ERR_NO_SUPPORT)
    e = c.err_call(1, b"", code=ERR_NO_SUPPORT, prog=QEMU)
    dom = domain_arg(c.ok_call(LOOKUP_BY_NAME, string("demo")))
    e = c.err_call(GET_STATE, dom + u32(0x80), code=ERR_INVALID_ARG)
    check("unsupported flags (0x80)" in e[1], "unknown flags", e)
    c.err_call(LOOKUP_BY_NAME, string("nosuch"), code=ERR_NO_DOMAIN)
    c.send(packet(1, prog=KEEPALIVE, type_=MESSAGE))
    p = c.read()
    check(p[:5] == (KEEPALIVE, 2, MESSAGE, 0, 0) and p[5] == b"", "PING gets PONG", p)
    c.send(packet(2, prog=KEEPALIVE, type_=MESSAGE))  # an unasked PONG is fine
    check(c.ok_call(GET_VERSION) == struct.pack(">Q", 1000), "version 0.1.0 = 1000")
    # A valid call, one byte at a time.
    whole = packet(GET_HOSTNAME, serial=999)
    for i in range(len(whole)):
        c.send(whole[i:i + 1])
    check(c.reply(999)[4] == 0, "a call sent byte by byte")
    c.close()
    ok("CONNECT_OPEN first, NO_SUPPORT for unknown procedures and programs, unknown flags, "
       "PING/PONG, byte-by-byte framing")
    return dom


def overlapping(d, dom):
    c = Conn(d.virt_socket).open()
    slow = c.call(DOMAIN_CREATE, dom)   # answered once the guest has booted
    quick = [c.call(GET_HOSTNAME), c.call(GET_VERSION), c.call(LOOKUP_BY_NAME, string("demo"))]
    c.send(packet(1, prog=KEEPALIVE, type_=MESSAGE))
    order = []
    while len(order) < 5:
        p = c.read()
        order.append(p[3] if p[0] == REMOTE else "pong")
        if p[3] == slow and p[4] != 0:
            raise dh.TestFailure(f"the slow start failed: {error(p)}")
    check(order[-1] == slow and sorted(order[:4], key=str) == sorted(quick + ["pong"], key=str),
          "quick calls and the PONG overtake the slow start; serials match", order)
    # Half-close: calls in flight are still answered.
    destroy = c.call(DOMAIN_DESTROY, dom)
    c.sock.shutdown(socket.SHUT_WR)
    p = c.read()
    check(p[3] == destroy and p[4] == 0, "a half-closed client gets its reply", p)
    check(c.eof() == [], "then the daemon closes")
    c.close()
    ok("overlapping calls answered out of order by serial; half-close keeps replies")


def read_only(d, dom):
    c = Conn(d.virt_socket + "-ro").open()
    e = c.err_call(DOMAIN_CREATE, dom, code=ERR_OPERATION_DENIED)
    check("read only access prevents DOMAIN_CREATE" in e[1], "ro socket", e)
    c.ok_call(GET_STATE, dom + u32(0))
    # Secured data is not for read-only connections either (libvirt's domain:read_secure).
    c.ok_call(GET_XML_DESC, dom + u32(0))
    for flags in (XML_SECURE, XML_MIGRATABLE):
        e = c.err_call(GET_XML_DESC, dom + u32(flags), code=ERR_OPERATION_DENIED)
        check("read only access prevents DOMAIN_GET_XML_DESC for secured data" in e[1],
              "the read-only socket refuses the secure XML", e)
    c.close()
    c = Conn(d.virt_socket).open(flags=1)
    c.err_call(DOMAIN_CREATE, dom, code=ERR_OPERATION_DENIED)
    c.err_call(GET_XML_DESC, dom + u32(XML_SECURE), code=ERR_OPERATION_DENIED)
    c.close()
    c = Conn(d.virt_socket).open()
    c.ok_call(GET_XML_DESC, dom + u32(XML_SECURE))
    c.close()
    ok("read-only socket and CONNECT_OPEN's read-only flag refuse changes and secured data")


def malformed(env, d):
    hdr_ok = packet(GET_HOSTNAME, serial=5)
    cases = {
        "bad length": (u32(8) + hdr_ok[4:], True),
        "bad program": (packet(GET_HOSTNAME, serial=5, prog=0xdeadbeef), True),
        "bad version": (packet(GET_HOSTNAME, serial=5, vers=2), True),
        "a reply from the client": (packet(GET_HOSTNAME, serial=5, type_=REPLY), True),
        "a stream packet": (packet(GET_HOSTNAME, serial=5, type_=3), True),
        "truncated XDR": (packet(LOOKUP_BY_NAME, u32(100) + b"demo", serial=5), True),
        "trailing bytes": (packet(GET_HOSTNAME, u32(0), serial=5), True),
        "a NUL in a string": (packet(LOOKUP_BY_NAME, string("de\0o"), serial=5), True),
        "a bad pointer flag": (packet(5, u32(7), serial=5), True),
        "16 MiB+ length": (u32((16 << 20) + 5) + hdr_ok[4:], True),
        "garbage": (bytes((i * 37 + 11) % 256 for i in range(64)), True),
        "a keepalive with a payload": (packet(1, u32(0), prog=KEEPALIVE, type_=MESSAGE),
                                       False),
        "an unknown keepalive procedure": (packet(9, prog=KEEPALIVE, type_=MESSAGE), False),
    }
    for what, (data, replies) in cases.items():
        c = Conn(d.virt_socket).open()
        t0 = time.monotonic()
        c.send(data)
        got = c.eof()
        check(time.monotonic() - t0 < 3, f"{what}: closed at once")
        if replies:
            check(len(got) == 1 and got[0][2] == REPLY and got[0][4] == 1 and
                  error(got[0])[0] == ERR_RPC, f"{what}: one error reply, then EOF", got)
        c.close()
        check(d.proc.poll() is None, f"{what}: lockstepd is alive")
        c = Conn(d.virt_socket).open()
        c.ok_call(GET_HOSTNAME)
        c.close()
    check(env.ok(d, "domstate", "demo").strip() == "shut off", "virsh still works")
    check(d.log().count("closing its connection") >= 1, "the daemon logs bad clients")
    ok(f"{len(cases)} malformed packets: error reply where possible, only that connection "
       "closed, the next client served")


def no_leaks(d):
    before = dh.fd_count(d.pid)
    for _ in range(100):
        c = Conn(d.virt_socket).open()
        c.call(GET_HOSTNAME)
        c.close()
    c = Conn(d.virt_socket).open()
    c.ok_call(GET_HOSTNAME)
    c.close()
    dh.wait_for(lambda: dh.fd_count(d.pid) <= before, 5, "descriptors to be released")
    ok("100 connections closed mid-call leave no descriptor behind")


def streams(env, d):
    """The console stream as virsh drives it, in raw packets: OPEN_CONSOLE, data both ways,
    the client's finish confirmed; a finish for a stream that does not exist is confirmed
    too (the client waits for it), stray data dropped; a bad device name refused."""
    env.define(d, "echo", cmdline="echo_ms=10")
    c = Conn(d.virt_socket).open()
    dom = domain_arg(c.ok_call(LOOKUP_BY_NAME, string("echo")))
    c.ok_call(DOMAIN_CREATE, dom)
    e = c.err_call(OPEN_CONSOLE, dom + u32(1) + string("serial1") + u32(0),
                   code=ERR_INTERNAL)
    check("cannot find character device serial1" in e[1], "an unknown device", e)
    serial = c.call(OPEN_CONSOLE, dom + u32(0) + u32(0))
    check(c.reply(serial)[4] == 0, "OPEN_CONSOLE")
    c.send(packet(OPEN_CONSOLE, b"raw\r", serial=serial, type_=STREAM, status=CONTINUE))
    got, deadline = b"", time.monotonic() + 20
    while b"idle: echo raw\n" not in got and time.monotonic() < deadline:
        p = c.read()
        check(p[:5] == (REMOTE, OPEN_CONSOLE, STREAM, serial, CONTINUE), "stream data", p)
        got += p[5]
    check(b"idle: echo raw\n" in got, "typed through the stream, output back", got)
    c.send(packet(OPEN_CONSOLE, serial=9999, type_=STREAM, status=CONTINUE) + b"")
    c.send(packet(OPEN_CONSOLE, serial=9998, type_=STREAM, status=0))
    p = c.read()
    while p[2] == STREAM and p[4] == CONTINUE:
        p = c.read()  # output still on its way
    check(p[:5] == (REMOTE, OPEN_CONSOLE, STREAM, 9998, 0) and p[5] == b"",
          "a finish of an unknown stream is confirmed", p)
    c.send(packet(OPEN_CONSOLE, serial=serial, type_=STREAM, status=ERROR))
    p = c.read()
    while p[3] == serial and p[4] == CONTINUE:
        p = c.read()
    check(p[:5] == (REMOTE, OPEN_CONSOLE, STREAM, serial, 0), "the abort is confirmed", p)
    check(c.ok_call(GET_HOSTNAME), "the connection carries on")
    # the console is free again
    serial = c.call(OPEN_CONSOLE, dom + u32(0) + u32(0))
    check(c.reply(serial)[4] == 0, "OPEN_CONSOLE after the abort")
    c.close()
    ok("console streams in raw packets: data both ways, finish and abort confirmed (also of "
       "unknown streams), stray data dropped, unknown devices refused")


def main():
    with ve.VirshEnv(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        env.define(d, "demo")
        dom = basics(d)
        overlapping(d, dom)
        read_only(d, dom)
        streams(env, d)
        malformed(env, d)
        no_leaks(d)


if __name__ == "__main__":
    main()
