#!/usr/bin/env python3
"""The serial console both ways, with the `idle` guest in its echo mode (it reads COM1's
receiver and prints each line back as "idle: echo LINE"):

  lockstep-vm   --console forwards stdin; --console-socket serves one client at a time (a
                new one replaces the old); the log keeps everything either way.
  lockstepd     vm.console_attach/input/detach: output as console.output notifications, one
                client at a time (the second is refused, force takes over and the first is
                told), console.detached when the VM stops, errors when not running or not
                attached; UTF-8 split across reads arrives whole.
  lockstep      `vm console NAME` on a pty types into the guest, Ctrl-] detaches (status 0);
                without a terminal it prints the log.
  virsh         `console` on a pty through DOMAIN_OPEN_CONSOLE and the stream; read-only and
                a second client refused; --force takes over and the first virsh says why;
                the stream ends when the VM stops.

usage: console.py BIN_DIR GUEST_DIR
"""
import os
import pty
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import virsh_env as ve  # noqa: E402

check, ok = dh.check, dh.ok
ECHO = "echo_ms=10"


def worker(env):
    vm = env.vm_binary
    idle = env.guest("idle")
    # stdin forwarded: lines typed before the guest reads are held for it
    p = subprocess.run([vm, "--kernel", idle, "--cmdline", f"{ECHO} exit_after_ms=3000",
                        "--console", "--timeout", "60"], input="first line\rsecond\n",
                       capture_output=True, text=True, errors="replace", timeout=90)
    check(p.returncode == 0, "lockstep-vm --console ran", p.returncode, p.stderr)
    check("idle: echo first line\n" in p.stdout and "idle: echo second\n" in p.stdout,
          "stdin reached the guest", p.stdout)
    ok("lockstep-vm --console: stdin typed into COM1, line by line")

    sock, log = env.path("w.cons"), env.path("w.log")
    proc = subprocess.Popen([vm, "--kernel", idle, "--cmdline", f"{ECHO} exit_after_ms=20000",
                             "--console-socket", sock, "--serial-log", log, "--timeout", "60"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        dh.wait_for(lambda: os.path.exists(sock), 10, "the console socket")
        a = connect(sock)
        a.sendall(b"via socket\r")
        got = read_until(a, b"idle: echo via socket\n", 20)
        check(b"idle: echo via socket\n" in got, "the socket client typed and saw the echo", got)
        b = connect(sock)
        check(read_until(a, b"", 5, eof=True) == b"", "a new client replaces the old one")
        b.sendall(b"second client\r")
        got = read_until(b, b"idle: echo second client\n", 20)
        check(b"second client" in got, "the new client types", got)
        check("idle: echo via socket" in open(log).read(), "the log keeps the output")
        a.close()
        b.close()
    finally:
        proc.terminate()
        proc.wait(30)
    ok("lockstep-vm --console-socket: one client at a time, the newest; the log keeps all")


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def read_until(s, want, timeout, eof=False):
    s.settimeout(0.2)
    got, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            return got if eof else got
        got += chunk
        if want and want in got:
            return got
    return None if eof else got


def outputs(c, timeout, until):
    """console.output data (and the console.detached reason) until `until` is in it."""
    text, detached, deadline = "", None, time.monotonic() + timeout
    while time.monotonic() < deadline and until not in text:
        n = c.notification(timeout=0.5)
        if not n or n.get("method") not in ("console.output", "console.detached"):
            continue
        if n["method"] == "console.output":
            check(n["params"]["live"] is True, "live output is marked so", n)
            text += n["params"]["data"]
        else:
            detached = n["params"]["reason"]
            break
    return text, detached


def daemon_rpc(env, d):
    c, other = d.client(), d.client()
    c.result("vm.define", definition=env.definition("e", "idle", cmdline=ECHO))
    e = c.error("vm.console_attach", {"name": "e"}, dh.BAD_STATE)
    check("not running" in e["message"], "attach to a stopped VM is refused", e)
    c.result("vm.start", name="e")
    e = c.error("vm.console_input", {"name": "e", "data": "x"}, dh.BAD_STATE)
    check("vm.console_attach first" in e["message"], "input needs an attach", e)
    check(c.result("vm.console_attach", name="e") == {"vm": "e", "attached": True}, "attach")
    e = other.error("vm.console_attach", {"name": "e"}, dh.BAD_STATE)
    check("in use by another client" in e["message"], "one client at a time", e)
    c.result("vm.console_input", name="e", data="h\u00e9llo w\u00f6rld\r")
    text, _ = outputs(c, 20, "idle: echo h\u00e9llo w\u00f6rld\n")
    check("idle: echo h\u00e9llo w\u00f6rld\n" in text, "typed text comes back whole (UTF-8)",
          text)
    check(other.result("vm.console_attach", name="e", force=True)["attached"], "force")
    _, why = outputs(c, 10, "\0")
    check(why == "another client took the console over", "the first client is told", why)
    other.result("vm.console_input", name="e", data="two\r")
    text, _ = outputs(other, 20, "idle: echo two\n")
    check("idle: echo two\n" in text, "the new client types", text)
    check(other.result("vm.console_detach", name="e")["attached"] is False, "detach")
    check(c.result("vm.console_attach", name="e")["attached"], "attach again after a detach")
    c.result("vm.destroy", name="e")
    _, why = outputs(c, 20, "\0")
    check(why == "the VM stopped", "console.detached when the VM stops", why)
    log = c.result("vm.console", name="e")["data"]
    check(log.count("idle: echo h\u00e9llo w\u00f6rld") == 1 and "idle: echo two" in log,
          "the console log has everything, once", log)
    ok("vm.console_attach/input/detach: live output, one client, force, detached on stop, "
       "UTF-8, the log intact")


def on_pty(argv, env, typed, want, timeout=30, banner=(b"escape character is",
                                                        b"Escape character is")):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    out, sent, deadline = b"", not typed, time.monotonic() + timeout
    while time.monotonic() < deadline and (want is None or want not in out):
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not sent and any(b in out for b in banner):
            time.sleep(0.3)
            os.write(fd, typed)
            sent = True
    if want is not None:
        try:
            os.write(fd, b"\x1d")
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def cli(env, d):
    c = d.client()
    c.result("vm.define", definition=env.definition("t", "idle", cmdline=ECHO))
    c.result("vm.start", name="t")
    out, status = on_pty([env.lockstep, "--socket", d.socket, "vm", "console", "t"],
                         os.environ, b"from the cli\r", b"idle: echo from the cli")
    check(status == 0 and "idle: echo from the cli" in out and "Connected to VM t" in out,
          "lockstep vm console on a pty", status, out)
    # without a terminal: the log
    status, out, _ = d.cli("vm", "console", "t")
    check(status == 0 and "idle: echo from the cli" in out, "lockstep vm console (log)", out)
    c.result("vm.destroy", name="t")
    ok("lockstep vm console: interactive on a pty (Ctrl-] detaches), the log otherwise")


def wait_attached(fd, word, timeout):
    """Types `word` into a virsh console on pty `fd` until the guest's echo comes back: then
    virsh holds the console (probing with an attach of our own could take it from under a
    virsh that was just opening it).  Returns what the pty printed."""
    got, deadline, sent = b"", time.monotonic() + timeout, 0.0
    want = b"idle: echo " + word
    while want not in got:
        check(time.monotonic() < deadline, f"virsh attached (no echo of {word!r})", got)
        if time.monotonic() - sent > 1:
            os.write(fd, word + b"\r")
            sent = time.monotonic()
        if select.select([fd], [], [], 0.2)[0]:
            got += os.read(fd, 4096)
    return got


def virsh(env, d):
    ve.need_virsh()
    c = d.client()
    c.result("vm.define", definition=env.definition("v", "idle", cmdline=ECHO))
    c.result("vm.start", name="v")
    base = ["virsh", "-c", d.uri, "console", "v"]
    out, status = on_pty(base, env.virsh_env, b"through virsh\r", b"idle: echo through virsh")
    check(status == 0 and "idle: echo through virsh" in out, "virsh console", status, out)
    out, status = on_pty(["virsh", "-r", "-c", d.uri, "console", "v"], env.virsh_env, None,
                         None)
    check(status != 0 and "read only access prevents" in out, "virsh -r console refused", out)

    # a second virsh is refused; --force takes the console and the first one ends
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("virsh", base, env.virsh_env)
    first = b""
    deadline = time.monotonic() + 60
    while b"Escape character" not in first and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            first += os.read(fd, 4096)
    first += wait_attached(fd, b"first-ready", 60)
    out, status = on_pty(base, env.virsh_env, None, None)
    check(status != 0 and "in use by another client" in out, "a second virsh console", out)
    out, status = on_pty(base + ["--force"], env.virsh_env, b"forced\r", b"idle: echo forced")
    check(status == 0 and "idle: echo forced" in out, "virsh console --force", out)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096) if select.select([fd], [], [], 0.2)[0] else b""
        except OSError:
            break
        first += chunk
        if b"took the console over" in first:
            break
    _, st = os.waitpid(pid, 0)
    os.close(fd)
    check(b"another client took the console over" in first, "the first virsh says why",
          first)

    # the VM stopping ends the stream: virsh returns on its own
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("virsh", base, env.virsh_env)
    out = b""
    while b"Escape character" not in out:
        out += os.read(fd, 4096)
    # virsh prints its banner before it opens the console: wait until it has
    out += wait_attached(fd, b"ready", 60)
    c.result("vm.destroy", name="v")
    deadline = time.monotonic() + 20
    done = 0
    while time.monotonic() < deadline and not done:
        done, st = os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    check(done == pid and os.waitstatus_to_exitcode(st) == 0,
          "virsh console returns when the VM stops", out)
    os.close(fd)
    ok("virsh console: typed through the stream; read-only and a second client refused; "
       "--force takes over and the first is told; ends when the VM stops")


def main():
    with ve.VirshEnv(sys.argv[1], sys.argv[2]) as env:
        worker(env)
        d = env.daemon()
        daemon_rpc(env, d)
        cli(env, d)
        virsh(env, d)


if __name__ == "__main__":
    main()
