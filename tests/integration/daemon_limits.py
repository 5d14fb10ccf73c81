#!/usr/bin/env python3
"""lockstepd's limits and who may talk to it.

usage: daemon_limits.py BIN_DIR GUEST_DIR

- --max-clients: the connection over the limit gets a -32007 error and is closed, the
  others keep working, and a slot freed by a client that left is usable again; the CLI
  shows the daemon's message;
- --max-frame: a CLI request over the limit gets the daemon's error, not a hang;
- --max-vms: the definition over the limit gets -32007;
- a full disk is not the VM cap: a definition that cannot be stored on a full state directory
  (a small tmpfs) is a system error with errno ENOSPC (-32004, data.errno 28);
- calls in flight per connection: the 257th parked call gets -32007;
- a client that never reads its replies is disconnected once 16 MiB are queued for it,
  and nobody else notices;
- peer credentials (root only, with util-linux's setpriv): a non-root client cannot open
  the socket (mode 0660); where the socket's mode would let it, lockstepd itself refuses it
  with -32006 (which the CLI shows) unless its group is "lockstep" (the group is created for
  the test if the host has none, and removed again).
"""
import grp
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

NOBODY = 65534
DENIED = "not allowed: only root, lockstepd's user and group lockstep may connect"


def refused_frame(sock):
    """Everything a refused connection receives before lockstepd closes it, as frames."""
    sock.settimeout(10)
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return [json.loads(line) for line in data.splitlines()]


def max_clients(env):
    d = env.daemon("--max-clients", "3")
    held = [d.client()]
    # The harness's own probe connection may not have been reaped yet.
    dh.wait_for(lambda: held[0].result("daemon.info")["clients"] == 1, 5, "one client")
    held += [d.client(), d.client()]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.socket)
    frames = refused_frame(s)
    check(frames == [{"jsonrpc": "2.0", "id": None,
                      "error": {"code": dh.LIMIT, "message": "too many clients"}}],
          "the fourth client gets -32007 and is closed", frames)
    status, out, err = d.cli("vm", "list")
    check((status, err) == (1, "lockstep: too many clients\n"),
          "the CLI shows lockstepd's refusal", status, err)
    for c in held:
        check(c.result("daemon.info")["clients"] == 3, "the three held clients still work")
    held.pop().close()
    dh.wait_for(lambda: held[0].result("daemon.info")["clients"] == 2, 5,
                "the daemon to see a client leave")
    c = d.client()
    check(c.result("vm.list") == [], "a freed slot is usable again")
    ok("--max-clients 3: the fourth connection gets -32007 'too many clients'")
    for c in held + [c]:
        c.close()
    d.stop()


def max_vms_and_pending(env):
    d = env.daemon("--max-vms", "3", "--max-frame", "2048")
    c = d.client()
    # A request over --max-frame: the CLI reports the daemon's answer instead of waiting.
    path = env.path("long.json")
    with open(path, "w") as f:
        json.dump(env.definition("long", "idle", "x" * 3000), f)
    status, out, err = d.cli("vm", "define", path, timeout=20)
    check((status, err) == (1, "lockstep: frame larger than 2048 bytes\n"),
          "the CLI shows the frame-size refusal", status, err)
    ok("--max-frame: the CLI reports a request that is too large")
    for i in range(3):
        c.result("vm.define", definition=env.definition(f"v{i}", "idle"))
    c.error("vm.define", {"definition": env.definition("v3", "idle")}, dh.LIMIT,
            "at most 3 VMs may be defined")
    c.result("vm.define", definition=env.definition("v2", "idle", vcpus=1))  # an update
    ok("--max-vms 3: the fourth definition gets -32007")

    # 256 calls in flight: shutdowns of a guest that ignores the power button wait.
    c.result("vm.define", definition=env.definition("v0", "smp-counter",
                                                    "iterations=100000000000", vcpus=1))
    c.result("vm.start", name="v0")
    c.send_raw(b"".join(
        f'{{"jsonrpc":"2.0","id":{i},"method":"vm.shutdown","params":{{"name":"v0",'
        f'"timeout":60}}}}\n'.encode() for i in range(257)))
    r = c.reply_to(256)
    check(r["error"] == {"code": dh.LIMIT, "message": "more than 256 requests in flight"},
          "the 257th call in flight gets -32007", r)
    other = d.client()
    s = other.result("vm.destroy", name="v0")
    replies = [c.reply_to(i) for i in range(256)]
    check(all(r.get("result", {}).get("reason") == "destroyed" for r in replies),
          "the parked shutdowns end with the VM's destruction", replies[0], s)
    check(c.result("vm.list", state="running") == [], "and the connection works on")
    ok("256 calls in flight per connection; the next gets -32007")
    c.close()
    other.close()
    d.stop()


def full_disk(env):
    if os.geteuid() != 0:
        ok("a full disk: skipped (needs root to mount a tmpfs)")
        return
    state = env.path("full-state")
    os.makedirs(state)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k,mode=0700", "tmpfs", state],
                   check=True)
    try:
        d = env.daemon("--state-dir", state, "--max-vms", "3")
        c = d.client()
        try:
            with open(os.path.join(state, "filler"), "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        except OSError:
            pass
        # (the harness's own --state-dir comes first on the command line; ours wins)
        e = c.error("vm.define", {"definition": env.definition("full", "idle")},
                    dh.SYSTEM_ERROR)
        check(e["data"]["errno"] == 28 and "No space left on device" in e["message"] and
              "at most" not in e["message"],
              "a full disk is ENOSPC with its errno, not the VM cap", e)
        c.close()
        d.stop()
    finally:
        subprocess.run(["umount", "-l", state], check=False)
    ok("a full disk: vm.define gets -32004 with errno 28, not the VM cap's -32007")


def slow_reader(env):
    """A client that sends and never reads is cut off at 16 MiB of queued replies."""
    d = env.daemon()
    c = d.client()
    c.result("vm.define", definition=env.definition("big", "idle"))
    # 1 MiB of console where lockstepd keeps it, no guest needed.
    with open(os.path.join(d.run_dir, "vms", "big.console"), "w") as f:
        f.write(("x" * 1023 + "\n") * 1024)
    check(len(c.result("vm.console", name="big")["data"]) == 1 << 20, "1 MiB per read")
    hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hog.connect(d.socket)
    req = b'{"jsonrpc":"2.0","id":1,"method":"vm.console","params":{"name":"big"}}\n'
    try:
        for _ in range(40):
            hog.sendall(req)
            time.sleep(0.002)
    except (BrokenPipeError, ConnectionResetError):
        pass  # cut off already
    dh.wait_for(lambda: "does not read its replies; disconnecting it" in d.log(), 10,
                "lockstepd to give up on the client")
    dh.wait_for(lambda: c.result("daemon.info")["clients"] == 1, 10,
                "the slow reader's connection to close")
    check(c.result("vm.info", name="big")["name"] == "big", "others are served meanwhile")
    hog.close()
    ok("a client that does not read its replies is disconnected at 16 MiB")
    c.close()
    d.stop()


def as_nobody(env, sock_path, gid=NOBODY):
    """Connects to `sock_path` as uid 65534 with primary group `gid` and no others, sends
    daemon.info, and returns (error name or None, frames received)."""
    code = ("import json, socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            "    s.connect(sys.argv[1])\n"
            "except OSError as e:\n"
            "    print(json.dumps([type(e).__name__, []])); sys.exit(0)\n"
            "s.settimeout(10)\n"
            "try:\n"
            "    s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"}\\n')\n"
            "except OSError:\n"
            "    pass\n"
            "data = b''\n"
            "while not data.endswith(b'\\n'):\n"
            "    try:\n"
            "        chunk = s.recv(65536)\n"
            "    except OSError:\n"
            "        break\n"
            "    if not chunk:\n"
            "        break\n"
            "    data += chunk\n"
            "print(json.dumps([None, [json.loads(l) for l in data.splitlines()]]))\n")
    p = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={gid}", "--clear-groups",
                        sys.executable, "-c", code, sock_path],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, "the unprivileged client ran", p.stderr)
    return json.loads(p.stdout)


def peer_credentials(env):
    if os.geteuid() != 0:
        ok("peer credentials: skipped (needs root to act as another user)")
        return
    check(shutil.which("setpriv"), "setpriv (util-linux) is needed for this test")
    try:
        gid = grp.getgrnam("lockstep").gr_gid
        created = False
    except KeyError:
        subprocess.run(["groupadd", "--system", "lockstep"], check=True)
        gid, created = grp.getgrnam("lockstep").gr_gid, True
    try:
        # The socket's own mode keeps strangers out before lockstepd sees them.
        d = env.daemon()
        st = os.stat(d.socket)
        check(st.st_mode & 0o777 == 0o660 and st.st_gid == gid,
              "the socket is 0660, group lockstep", oct(st.st_mode), st.st_gid)
        os.chmod(env.root, 0o755)  # the directories on the way, not the socket
        for sub in (d.root, d.run_dir):
            os.chmod(sub, 0o755)
        err, frames = as_nobody(env, d.socket)
        check(err == "PermissionError", "uid 65534 cannot open the 0660 socket", err, frames)
        ok("peer credentials: the socket's mode refuses a non-root user")

        # Where the mode lets anyone connect, lockstepd checks the peer itself.
        os.chmod(d.socket, 0o666)
        err, frames = as_nobody(env, d.socket)
        check(err is None and frames == [{"jsonrpc": "2.0", "id": None, "error": {
            "code": dh.PERMISSION, "message": DENIED}}],
              "lockstepd refuses uid 65534 with -32006 and closes", err, frames)
        check(f"refused a JSON-RPC client (uid {NOBODY})" in d.log(), "and logs it", d.log())
        p = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                            "--clear-groups", env.lockstep, "--socket", d.socket, "vm", "list"],
                           capture_output=True, text=True, timeout=30)
        check((p.returncode, p.stderr) == (1, f"lockstep: {DENIED}\n"),
              "the CLI shows the refusal", p.returncode, p.stderr)
        ok("peer credentials: lockstepd refuses a non-root client with -32006")

        err, frames = as_nobody(env, d.socket, gid=gid)
        check(err is None and frames and frames[0].get("result", {}).get("pid") == d.pid,
              "a member of group lockstep is served", err, frames)
        os.chmod(d.socket, 0o660)
        err, frames = as_nobody(env, d.socket, gid=gid)
        check(err is None and frames[0]["result"]["pid"] == d.pid,
              "through the socket's group permission too", err, frames)
        ok("peer credentials: a client in group lockstep is served")
        d.stop()
    finally:
        if created:
            subprocess.run(["groupdel", "lockstep"], check=False)


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        max_clients(env)
        max_vms_and_pending(env)
        full_disk(env)
        slow_reader(env)
        peer_credentials(env)


if __name__ == "__main__":
    main()
