#!/usr/bin/env python3
"""Clients cannot lock others out of lockstepd or make it hold much memory.

usage: daemon_clients.py BIN_DIR GUEST_DIR

- each socket has its own cap: idle read-only libvirt connections from an unprivileged user
  (as many as --max-clients) leave root's `virsh list` on the read-write socket working;
- one user holds at most --max-clients-per-user connections (the next one is refused with a
  message the client reads), other users and root still get in, and the last slots of a
  socket are kept for root;
- a libvirt connection that does not reach CONNECT_OPEN within --handshake-timeout (sending
  nothing, or only AUTH_LIST) is told so and dropped; an opened one stays;
- before CONNECT_OPEN a client cannot make lockstepd buffer a 16 MiB packet: three
  connections sending a 16 MiB length prefix and streaming its bytes get an error at once,
  and lockstepd's peak resident set grows by less than PEAK_SLACK_KIB; a read-only
  connection that opened is capped the same way at 64 KiB;
- --max-buffered is one budget for both endpoints: a JSON-RPC client holding part of a long
  frame and a libvirt client sending a large packet together cannot pass it (the one that
  adds to it is dropped with a message), and the daemon serves on;
- console followers are capped: 16 per connection, 64 per VM (-32007 saying which), and a
  connection that let go of one may follow again.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import virsh_env as ve  # noqa: E402
import virsh_protocol as vp  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

NOBODY = 65534
PEAK_SLACK_KIB = 8 * 1024
PACKET_16M = 16 << 20

# Run as another user: opens N connections to a socket and reports, for each, "held" or the
# error message lockstepd sent before closing it; then keeps the held ones open until its
# standard input closes.
HOLDER = r"""
import json, socket, struct, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks, out = [], []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
    except OSError as e:
        s = type(e).__name__
    socks.append(s)
time.sleep(2)  # a refused connection has its refusal and its end by now
for s in socks:
    if isinstance(s, str):
        out.append(s)
        continue
    s.setblocking(False)
    data, eof = b"", False
    while True:
        try:
            chunk = s.recv(65536)
        except BlockingIOError:
            break
        except OSError:
            eof = True
            break
        if not chunk:
            eof = True
            break
        data += chunk
    if not eof and not data:
        out.append("held")
        continue
    msg = "closed"
    if len(data) >= 44:
        present, length = struct.unpack(">II", data[36:44])
        if present:
            msg = data[44:44 + length].decode(errors="replace")
    out.append(msg)
print(json.dumps(out), flush=True)
sys.stdin.read()
"""


class Holder:
    """Connections held by another user (uid), for as long as the object lives."""

    def __init__(self, path, n, uid=NOBODY):
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable,
             "-c", HOLDER, path, str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        check(line, "the unprivileged holder reported", self.proc.poll())
        self.results = json.loads(line)

    def held(self):
        return self.results.count("held")

    def refused(self):
        return [r for r in self.results if r != "held"]

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


def open_up(env, d):
    """Lets other users reach the read-only socket (the test's directories are 0700)."""
    for path in (env.root, d.root):
        os.chmod(path, 0o755)


def read_only_flood(env):
    """Idle read-only connections do not take the read-write socket's room."""
    d = env.daemon("--max-clients", "6")
    open_up(env, d)
    env.define(d, "demo")
    flood = Holder(d.virt_socket + "-ro", 12)
    out = env.ok(d, "list", "--all")
    check("demo" in out, "root's virsh list on the read-write socket", out)
    check(flood.held() == 12, "twelve idle read-only connections from uid 65534 are held",
          flood.results)
    out = env.ok(d, "list", "--all", ro=True)
    check("demo" in out, "and root's virsh -r list on the read-only socket", out)
    flood.release()
    ok("12 idle read-only connections with --max-clients 6: root's virsh list still works")
    d.stop()


def per_user_caps(env):
    d = env.daemon("--max-clients-ro", "8", "--max-clients-per-user", "3")
    open_up(env, d)
    ro = d.virt_socket + "-ro"
    a = Holder(ro, 4)
    check(a.held() == 3 and a.refused() == ["operation failed: too many connections of this "
                                            "user"],
          "a user's fourth connection is refused with a message", a.results)
    b = Holder(ro, 3, uid=NOBODY - 1)
    check(b.held() == 3, "another user still gets in", b.results)
    c = Holder(ro, 2, uid=NOBODY - 2)
    check(c.held() == 1 and c.refused() == ["operation failed: too many clients on this "
                                            "socket"],
          "of 8 slots, the last is kept for root", c.results)
    rc, out, err = env.virsh(d, "list", "--all", ro=True)
    check(rc == 0, "root takes the kept slot: virsh -r list works", out, err)
    for h in (a, b, c):
        h.release()
    ok("--max-clients-per-user 3: the 4th connection is refused; the last slot is root's")
    d.stop()


def handshake_deadline(env):
    d = env.daemon("--handshake-timeout", "1")
    quiet = vp.Conn(d.virt_socket + "-ro")
    half = vp.Conn(d.virt_socket)
    half.ok_call(vp.AUTH_LIST)
    opened = vp.Conn(d.virt_socket).open()
    t0 = time.monotonic()
    for conn, what in ((quiet, "a connection that sends nothing"),
                       (half, "a connection that stops after AUTH_LIST")):
        got = conn.eof(timeout=10)
        check(len(got) == 1 and got[0][4] == 1 and
              vp.error(got[0]) == (vp.ERR_RPC, "RPC error: no handshake within 1000 ms of "
                                   "connecting"),
              f"{what} is told why and closed", got)
        conn.close()
    check(time.monotonic() - t0 < 10, "within the deadline's few seconds")
    time.sleep(1.5)
    opened.ok_call(vp.GET_VERSION)
    opened.close()
    ok("--handshake-timeout 1: connections that do not open are dropped; an opened one stays")
    d.stop()


def peak_kib(pid):
    return int(dh.status_field(pid, "VmHWM").split()[0])


def reset_peak(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def stream(sock, total):
    """Sends `total` bytes (or until lockstepd closes the connection); returns bytes sent."""
    chunk = b"\0" * 65536
    sent = 0
    sock.settimeout(10)
    try:
        while sent < total:
            sent += sock.send(chunk[:min(len(chunk), total - sent)])
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    return sent


def unauthenticated_memory(env):
    d = env.daemon()
    open_up(env, d)
    ro = d.virt_socket + "-ro"
    base = dh.rss_kib(d.pid)
    reset_peak(d.pid)
    conns, sent = [], []
    for i in range(3):
        c = vp.Conn(ro)
        if i == 2:
            c.open()  # opened read-only: the read-only cap
        c.send(struct.pack(">I", PACKET_16M))
        sent.append(stream(c.sock, PACKET_16M))
        conns.append(c)
    grown = peak_kib(d.pid) - base
    check(grown < PEAK_SLACK_KIB,
          f"lockstepd's peak RSS grew by {grown} KiB (at most {PEAK_SLACK_KIB})", sent)
    for c, what in zip(conns, ("before CONNECT_OPEN", "before CONNECT_OPEN",
                               "on a read-only connection")):
        got = c.eof(timeout=10)
        check(got and vp.error(got[-1])[0] == vp.ERR_RPC and
              what in vp.error(got[-1])[1],
              f"a 16 MiB packet {what} is refused", got, sent)
        c.close()
    c = vp.Conn(d.virt_socket).open()
    c.ok_call(vp.GET_VERSION)
    c.close()
    ok(f"3 connections sending a 16 MiB length prefix: refused at once, peak RSS +{grown} KiB")
    d.stop()


def shared_budget(env):
    budget = 12 << 20
    d = env.daemon("--max-buffered", str(budget), "--max-frame", str(16 << 20))
    base = dh.rss_kib(d.pid)
    reset_peak(d.pid)
    j = d.client()
    j.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"daemon.info","params":{"pad":"'
               + b"x" * (6 << 20))
    time.sleep(0.5)  # its bytes are in
    v = vp.Conn(d.virt_socket).open()
    v.send(struct.pack(">I", 8 << 20))
    stream(v.sock, 8 << 20)
    got = v.eof(timeout=10)
    check(got and vp.error(got[-1]) == (vp.ERR_RPC, "RPC error: lockstepd holds as much of "
                                        "its clients' data as it may"),
          "the libvirt client that passes the budget is told so and dropped", got)
    v.close()
    grown = peak_kib(d.pid) - base
    # ASan keeps freed buffers in its quarantine and adds shadow memory, so RSS says nothing
    # of what lockstepd holds there; the refusal above is the invariant in every build
    check(env.asan or grown < (budget >> 10) + PEAK_SLACK_KIB,
          f"peak RSS grew by {grown} KiB (budget {budget >> 10} KiB)")
    # The JSON-RPC client it shares the budget with is served on.
    j.send_raw(b'"}}\n')
    r = j.frame()
    check(r.get("id") == 1, "the long frame is answered", r)
    check(j.result("daemon.info")["pid"] == d.pid, "and its connection works on")
    j.close()
    ok(f"--max-buffered {budget >> 20} MiB spans both endpoints: the client that passes it "
       "goes, the other is served")
    d.stop()


def console_followers(env):
    d = env.daemon()
    c = d.client()
    for name in ("a", "b"):
        c.result("vm.define", definition=env.definition(name, "idle"))
    for _ in range(16):
        c.result("vm.console", name="a", follow=True)
    c.error("vm.console", {"name": "b", "follow": True}, dh.LIMIT,
            "this connection follows 16 consoles already (at most 16)")
    others = [d.client() for _ in range(3)]
    for o in others:
        for _ in range(16):
            o.result("vm.console", name="a", follow=True)
    last = d.client()
    last.error("vm.console", {"name": "a", "follow": True}, dh.LIMIT,
               "the console of a has 64 followers already (at most 64)")
    check(last.result("vm.console", name="b", follow=True)["vm"] == "b",
          "another VM's console can still be followed")
    others.pop().close()
    dh.wait_for(lambda: c.result("daemon.info")["clients"] == 4, 10, "a client to leave")
    check(last.result("vm.console", name="a", follow=True)["vm"] == "a",
          "a follower that left makes room")
    for x in others + [c, last]:
        x.close()
    ok("console followers: 16 per connection, 64 per VM, -32007 saying which")
    d.stop()


def main():
    if os.geteuid() != 0:
        dh.lt.skip("needs root to act as other users")
    with ve.VirshEnv(sys.argv[1], sys.argv[2]) as env:
        read_only_flood(env)
        per_user_caps(env)
        handshake_deadline(env)
        unauthenticated_memory(env)
        shared_budget(env)
        console_followers(env)


if __name__ == "__main__":
    main()
