#!/usr/bin/env python3
"""Malformed JSON-RPC on one connection: exact errors, and nobody else notices.

usage: daemon_protocol.py BIN_DIR GUEST_DIR

One connection (the "bad" one) sends: invalid JSON (-32700), requests that are not
objects, wrong or missing "jsonrpc", bad ids, extra members, array and string params,
frames larger than --max-frame (whole, and trickled in pieces), unknown methods (-32601),
wrong, missing and extra parameters (-32602 naming the parameter), unknown VM names
(-32001), bad definitions (-32008 naming the key), batches (mixed valid and invalid,
notifications only, empty, too large, with a call that completes later), pipelined and
byte-by-byte requests, CRLF and blank lines.  After every case the same connection must
still answer a plain request, and a second connection, interleaved with the first, must
get exact answers throughout.  A client that half-closes its socket still gets the replies
to everything it sent, including calls that complete later.
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

MAX_FRAME = 4096
NOT_OBJECT = "a request must be an object with a string or number id"
PARAMS_NOT_OBJECT = '"params" must be an object: lockstep takes named parameters'


def error_frame(f, code, message=None, id=None, prefix=None):
    check(isinstance(f, dict) and f.get("jsonrpc") == "2.0" and "result" not in f and
          f.get("id", "missing") == id, "an error response with the right id", f, id)
    e = f.get("error", {})
    check(e.get("code") == code, f"error code {e.get('code')}, want {code}", f)
    if message is not None:
        check(e.get("message") == message, "exact error message", e.get("message"), message)
    if prefix is not None:
        check(e.get("message", "").startswith(prefix), "error message prefix", e, prefix)
    return e


class Pair:
    """The bad connection and a well-behaved one; after each case both must still work."""

    def __init__(self, d):
        self.bad = d.client(timeout=10)
        self.good = d.client(timeout=10)
        self.n = 0

    def send(self, raw):
        self.bad.send_raw(raw)

    def frame(self):
        return self.bad.frame()

    def healthy(self, what):
        self.n += 1
        r = self.good.request("vm.list", {"state": "shutoff"}, id=f"g{self.n}")
        check(r.get("result") == [] or isinstance(r.get("result"), list),
              f"after {what}: the other connection", r)
        r = self.bad.request("daemon.info", id=f"h{self.n}")
        check("result" in r and r["result"]["pid"] > 0, f"after {what}: the same connection",
              r)
        check(self.bad.read_frame(timeout=0) is None and not self.bad.queue,
              f"after {what}: no stray frames")
        ok(what)


def framing(p):
    p.send(b'{"jsonrpc": "2.0", "id": 1, "method": }\n')
    error_frame(p.frame(), dh.PARSE_ERROR, prefix="parse error at column 39: ")
    p.send(b"garbage\n")
    error_frame(p.frame(), dh.PARSE_ERROR, prefix="parse error at column 7: ")
    p.send(b'\xff\xfe{}\n')
    error_frame(p.frame(), dh.PARSE_ERROR, prefix="parse error at column 0: ")
    p.send(b'{"jsonrpc":"2.0","id":1,"id":2,"method":"vm.list"}\n')
    error_frame(p.frame(), dh.PARSE_ERROR, prefix="parse error at column 28: duplicate")
    p.send(b'{"jsonrpc":"2.0","id":1,"method":"vm.list"\n')  # cut short
    error_frame(p.frame(), dh.PARSE_ERROR, prefix="parse error at column ")
    p.healthy("invalid JSON: -32700")

    for raw in (b"42", b'"text"', b"null", b"true", b"3.5"):
        p.send(raw + b"\n")
        error_frame(p.frame(), dh.INVALID_REQUEST, NOT_OBJECT)
    for bad_id in ("{}", "[1]", "true"):
        p.send(f'{{"jsonrpc":"2.0","id":{bad_id},"method":"vm.list"}}\n'.encode())
        error_frame(p.frame(), dh.INVALID_REQUEST, NOT_OBJECT)
    p.healthy("requests that are not objects, bad ids: -32600")

    for version in ('"1.0"', "2.0", "null"):
        p.send(f'{{"jsonrpc":{version},"id":7,"method":"daemon.info"}}\n'.encode())
        error_frame(p.frame(), dh.INVALID_REQUEST, '"jsonrpc" must be "2.0"', id=7)
    p.send(b'{"id":"v","method":"daemon.info"}\n')
    error_frame(p.frame(), dh.INVALID_REQUEST, '"jsonrpc" must be "2.0"', id="v")
    p.send(b'{"jsonrpc":"2.0","id":8,"method":"vm.list","extra":1}\n')
    error_frame(p.frame(), dh.INVALID_REQUEST,
                "a request has only jsonrpc, id, method and params", id=8)
    p.send(b'{"jsonrpc":"2.0","id":9,"method":7}\n')
    error_frame(p.frame(), dh.INVALID_REQUEST, '"method" must be a string', id=9)
    p.send(b'{"jsonrpc":"2.0","id":9}\n')
    error_frame(p.frame(), dh.INVALID_REQUEST, '"method" must be a string', id=9)
    p.healthy("wrong jsonrpc version, extra members, no method: -32600")

    for params in ("[1]", "[]", '"x"', "3"):
        p.send(f'{{"jsonrpc":"2.0","id":"a","method":"vm.list","params":{params}}}\n'
               .encode())
        error_frame(p.frame(), dh.INVALID_PARAMS, PARAMS_NOT_OBJECT, id="a")
    p.healthy("array and scalar params: -32602")

    # Frames: exactly --max-frame bytes is fine, one more is not.
    head = b'{"jsonrpc":"2.0","id":"big","method":"vm.list"'
    exact = head + b" " * (MAX_FRAME - len(head) - 1) + b"}"
    check(len(exact) == MAX_FRAME, "frame arithmetic")
    p.send(exact + b"\n")
    check(p.frame() == {"jsonrpc": "2.0", "id": "big", "result": []}, "a frame of "
          "exactly --max-frame bytes is served")
    p.send(exact[:-1] + b" }\n")
    error_frame(p.frame(), dh.INVALID_REQUEST, f"frame larger than {MAX_FRAME} bytes")
    # Trickled: 3 * max-frame bytes in pieces, then the newline and a good request in the
    # same write; one error for the big frame, then the good reply.
    for _ in range(12):
        p.send(b"x" * (MAX_FRAME // 4))
        time.sleep(0.005)
    p.send(b'\n{"jsonrpc":"2.0","id":"after","method":"vm.list"}\n')
    error_frame(p.frame(), dh.INVALID_REQUEST, f"frame larger than {MAX_FRAME} bytes")
    check(p.frame() == {"jsonrpc": "2.0", "id": "after", "result": []},
          "the request after an oversized frame is served")
    p.healthy(f"frames over --max-frame {MAX_FRAME}: one -32600 each, the rest discarded")

    # Pipelined requests in one write, a request byte by byte, CRLF and blank lines.
    p.send(b"".join(f'{{"jsonrpc":"2.0","id":{i},"method":"vm.list"}}\n'.encode()
                    for i in range(20)))
    check([p.frame()["id"] for _ in range(20)] == list(range(20)), "pipelined, in order")
    for b in b'{"jsonrpc":"2.0","id":"slow","method":"vm.list"}\n':
        p.send(bytes([b]))
    check(p.frame()["id"] == "slow", "a request sent byte by byte")
    p.send(b'\n\r\n  \t\n{"jsonrpc":"2.0","id":"crlf","method":"vm.list"}\r\n')
    check(p.frame() == {"jsonrpc": "2.0", "id": "crlf", "result": []}, "CRLF, blank lines")
    for id in (1.5, None, "", 2**53, -1):
        r = p.bad.request("vm.list", id=id)
        check(r == {"jsonrpc": "2.0", "id": id, "result": []}, "ids are echoed", r, id)
    p.healthy("pipelining, byte-by-byte, CRLF, blank lines, id types")


def methods_and_params(env, p):
    c = p.bad
    c.error("nope", None, dh.METHOD_NOT_FOUND, 'no method "nope"')
    c.error("vm.List", None, dh.METHOD_NOT_FOUND, 'no method "vm.List"')
    c.error("x" * 200, None, dh.METHOD_NOT_FOUND, f'no method "{"x" * 64}"')
    p.send(b'{"jsonrpc":"2.0","method":"nope"}\n')  # a notification: no reply, even so
    p.healthy("unknown methods: -32601 (notifications get no reply)")

    c.result("vm.define", definition=env.definition("p1", "idle"))
    cases = [
        ("daemon.info", {"x": 1}, 'unknown parameter "x"'),
        ("events.subscribe", {"all": True}, 'unknown parameter "all"'),
        ("vm.list", {"state": 5}, 'parameter "state" must be a string'),
        ("vm.list", {"state": "x" * 17}, 'parameter "state" must be at most 16 bytes '
         "without NULs"),
        ("vm.info", {}, 'missing parameter "name"'),
        ("vm.info", {"name": 5}, 'parameter "name" must be a string'),
        ("vm.info", {"name": "p1", "x": 1}, 'unknown parameter "x"'),
        ("vm.info", {"name": "p" * 128}, 'parameter "name" must be at most 127 bytes '
         "without NULs"),
        ("vm.start", {"name": None}, 'parameter "name" must be a string'),
        ("vm.shutdown", {"name": "p1", "timeout": 0},
         'parameter "timeout" must be an integer from 1 to 3600'),
        ("vm.shutdown", {"name": "p1", "timeout": "5"},
         'parameter "timeout" must be an integer from 1 to 3600'),
        ("vm.shutdown", {"name": "p1", "timeout": 1.5},
         'parameter "timeout" must be an integer from 1 to 3600'),
        ("vm.console", {"name": "p1", "follow": 1}, 'parameter "follow" must be true or false'),
        ("vm.console", {"name": "p1", "max": 1048577},
         'parameter "max" must be an integer from 0 to 1048576'),
        ("vm.console", {"name": "p1", "offset": -1},
         'parameter "offset" must be an integer from 0 to 9223372036854775807'),
        ("vm.console", {"name": "p1", "tail": 0},
         'parameter "tail" must be an integer from 1 to 1048576'),
        ("vcpu.pin", {"name": "p1", "cpus": "0"}, 'missing parameter "vcpu"'),
        ("vcpu.pin", {"name": "p1", "vcpu": 0}, 'missing parameter "cpus"'),
        ("vcpu.pin", {"name": "p1", "vcpu": 0, "cpus": "0", "config": "yes"},
         'parameter "config" must be true or false'),
        ("vcpu.pin", {"name": "p1", "vcpu": 0, "cpus": ""},
         'parameter "cpus" must be a CPU list such as "0-3,6"'),
        ("vm.define", {}, 'vm.define takes one of "definition" (an object) and "xml" (libvirt '
                          'domain XML)'),
        ("vm.define", {"definition": {}, "xml": "<domain/>"},
         'vm.define takes one of "definition" (an object) and "xml" (libvirt domain XML)'),
        ("vm.define", {"xml": 7}, 'parameter "xml" must be a string'),
        ("vm.define", {"definition": []}, 'parameter "definition" must be an object'),
        ("vm.define", {"definition": {}, "force": True}, 'unknown parameter "force"'),
        ("vm.undefine", {"name": "p1", "keep": True}, 'unknown parameter "keep"'),
    ]
    for method, params, message in cases:
        c.error(method, params, dh.INVALID_PARAMS, message)
    p.healthy(f"wrong, missing and extra parameters: -32602 naming them ({len(cases)} cases)")

    for method, extra in (("vm.info", {}), ("vm.start", {}), ("vm.shutdown", {}),
                          ("vm.destroy", {}), ("vm.undefine", {}), ("vm.console", {}),
                          ("vcpu.pin", {"vcpu": 0, "cpus": "0"})):
        for name in ("ghost", "P1", "p1 ", ""):
            c.error(method, dict(extra, name=name), dh.NO_SUCH_VM, f'no VM named "{name}"')
    p.healthy("unknown VM names: -32001")

    d = env.definition
    bad = [
        (d("b", "idle", vpcus=2), 'unknown key "vpcus"'),
        (d("b", "idle", sched={"polcy": "gang"}), 'unknown key "sched.polcy"'),
        (d("b", "idle", vcpus="four"), '"vcpus" must be an integer'),
        (d("b", "idle", vcpus=0), '"vcpus" must be between 1 and 254'),
        (d("b", "idle", on_crash="explode"), '"on_crash"'),
        (d("b", "idle", kernel="rel/idle.elf"), '"kernel" must be an absolute path'),
        (d("b", "idle", serial={"log": "rel.log"}), '"serial.log" must be an absolute path'),
        (d("b", "idle", initrd="rel.cpio"), '"initrd" must be an absolute path'),
        (d("b", "idle", initrd=""), '"initrd" must not be empty'),
        (d("../etc", "idle"), '"name"'),
    ]
    for definition, needle in bad:
        e = c.error("vm.define", {"definition": definition}, dh.BAD_DEFINITION)
        check(needle in e["message"], "the message names the key", e, needle)
    check([v["name"] for v in c.result("vm.list")] == ["p1"], "nothing bad was defined")
    p.healthy(f"bad definitions: -32008 naming the key ({len(bad)} cases)")


def batches(env, p):
    def req(id, method, **params):
        r = {"jsonrpc": "2.0", "method": method}
        if params:
            r["params"] = params
        if id is not None:
            r["id"] = id
        return r

    p.bad.send([req(1, "vm.list"), req(None, "vm.list"), 3, req("b", "nope"),
                {"jsonrpc": "1.0", "id": "v", "method": "vm.list"}, req(None, "nope"),
                req(2, "vm.info", name="ghost"), req(3, "vm.info", name=5)])
    f = p.frame()
    check(isinstance(f, list) and len(f) == 6, "a batch answers each non-notification", f)
    by_id = {}
    for r in f:
        by_id.setdefault(json.dumps(r.get("id")), []).append(r)
    check(by_id["1"][0]["result"] == [{**by_id["1"][0]["result"][0]}] and
          by_id["1"][0]["result"][0]["name"] == "p1", "batch: vm.list", by_id["1"])
    error_frame(by_id["null"][0], dh.INVALID_REQUEST, NOT_OBJECT)
    error_frame(by_id['"b"'][0], dh.METHOD_NOT_FOUND, 'no method "nope"', id="b")
    error_frame(by_id['"v"'][0], dh.INVALID_REQUEST, '"jsonrpc" must be "2.0"', id="v")
    error_frame(by_id["2"][0], dh.NO_SUCH_VM, 'no VM named "ghost"', id=2)
    error_frame(by_id["3"][0], dh.INVALID_PARAMS, 'parameter "name" must be a string', id=3)
    p.healthy("a batch of valid, invalid and notification requests")

    p.bad.send([req(None, "vm.list"), req(None, "daemon.info"), req(None, "nope")])
    p.healthy("a batch of notifications only: no reply at all")
    p.send(b"[]\n")
    error_frame(p.frame(), dh.INVALID_REQUEST, "empty batch")
    p.bad.send([req(i, "vm.list") for i in range(65)])
    error_frame(p.frame(), dh.INVALID_REQUEST, "batch too large")
    p.bad.send([req(i, "vm.list") for i in range(64)])
    check(sorted(r["id"] for r in p.frame()) == list(range(64)), "a batch of 64 is served")
    p.send(b"[1, \n")
    error_frame(p.frame(), dh.PARSE_ERROR, prefix="parse error")
    p.healthy("empty, oversized and broken batches")

    # A batch holding a call that completes later (vm.start waits for the guest to boot):
    # one reply array once everything is done, and the connection serves others meanwhile.
    p.bad.send([req("start", "vm.start", name="p1"), req("list", "vm.list")])
    r = p.good.request("vm.info", {"name": "p1"})
    check(r["result"]["state"] in ("starting", "running"), "served during the batch", r)
    f = p.frame()
    check(isinstance(f, list) and sorted(r["id"] for r in f) == ["list", "start"],
          "the batch's reply", f)
    start = next(r for r in f if r["id"] == "start")
    check(start["result"]["state"] == "running", "vm.start in a batch", start)
    p.bad.result("vm.destroy", name="p1")
    p.healthy("a batch with a call that completes later")


def half_close(env, d):
    """A client that sends, then shuts its write side, still reads every reply."""
    c = d.client()
    c.result("vm.start", name="p1")
    c.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(d.socket)
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"vm.info","params":{"name":"p1"}}\n'
              b'{"jsonrpc":"2.0","id":2,"method":"vm.list"}\n')
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    replies = {r["id"]: r for r in map(json.loads, data.splitlines())}
    check(sorted(replies) == [1, 2], "replies after a half-close", data[:300])
    check(replies[1]["result"]["name"] == "p1" and "stats" in replies[1]["result"],
          "vm.info (answered by the worker) after a half-close", replies[1])
    c = d.client()
    c.result("vm.destroy", name="p1")
    c.close()
    ok("a half-closed client still gets the replies of calls that complete later")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon("--max-frame", str(MAX_FRAME))
        quiet = d.client()  # opened first, used last: untouched by all of this
        p = Pair(d)
        framing(p)
        methods_and_params(env, p)
        batches(env, p)
        check(quiet.result("daemon.info")["clients"] == 3, "three clients connected")
        check(quiet.result("vm.list")[0]["name"] == "p1", "a connection opened before all "
              "this still works")
        half_close(env, d)


if __name__ == "__main__":
    main()
