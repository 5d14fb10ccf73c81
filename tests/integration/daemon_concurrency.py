#!/usr/bin/env python3
"""50 clients at once, each on its own connection, issuing a mix of requests.

usage: daemon_concurrency.py BIN_DIR GUEST_DIR

Every client thread connects, waits until all 50 are connected (the daemon must count 51
clients, the checker included), then runs a seeded random mix: daemon.info, vm.list,
vm.info of running and stopped shared VMs (the running ones answer through their
workers), vm.console, errors (unknown VM, bad parameters, unknown method), batches,
pipelined requests, and define/info/undefine of a VM of its own; every fifth client also
starts and destroys its VM, so workers start and stop while the others are served.
Every answer is checked exactly; afterwards the daemon is back to one client and the
shared VMs are as they were.
"""
import os
import random
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

CLIENTS = 50
ROUNDS = 25
SHARED = ["shared0", "shared1", "shared2", "shared3"]
RUNNING = SHARED[:2]


class Worker(threading.Thread):
    def __init__(self, env, d, index, barrier):
        super().__init__(name=f"client{index}")
        self.env, self.d, self.i, self.barrier = env, d, index, barrier
        self.rng = random.Random(index)
        self.requests = 0
        self.error = None

    def run(self):
        try:
            self.c = self.d.client(timeout=60)
            self.barrier.wait(timeout=60)
            self.barrier.wait(timeout=60)  # the checker counts the connections between
            for _ in range(ROUNDS):
                self.rng.choice(self.actions())()
            if self.i % 5 == 0:
                self.own_vm(start=True)
            self.c.close()
        except Exception as e:  # reported by the main thread, with the client's name
            self.error = f"{self.name}: {type(e).__name__}: {e}"
            self.barrier.abort()

    def call(self, method, **params):
        self.requests += 1
        return self.c.result(method, **params)

    def fail(self, method, params, code, message):
        self.requests += 1
        self.c.error(method, params, code, message)

    def actions(self):
        return [self.info, self.list, self.vm_info, self.console, self.errors, self.batch,
                self.pipeline, self.own_vm]

    def info(self):
        r = self.call("daemon.info")
        check(r["pid"] == self.d.pid and r["vms"]["defined"] >= len(SHARED) and
              r["vms"]["running"] >= len(RUNNING), "daemon.info", r)

    def list(self):
        names = [v["name"] for v in self.call("vm.list")]
        check(set(SHARED) <= set(names), "vm.list has the shared VMs", names)
        running = {v["name"] for v in self.call("vm.list", state="running")}
        check(set(RUNNING) <= running and not running & set(SHARED[2:]), "vm.list running",
              running)

    def vm_info(self):
        name = self.rng.choice(SHARED)
        r = self.call("vm.info", name=name)
        if name in RUNNING:
            check(r["state"] == "running" and len(r["vcpu"]) == 1 and
                  r["stats"]["name"] == name, "vm.info of a running VM", r)
        else:
            check(r["state"] == "shutoff" and r["vcpu"] == [] and "stats" not in r,
                  "vm.info of a stopped VM", r)

    def console(self):
        r = self.call("vm.console", name=self.rng.choice(RUNNING), max=64)
        # The run's console begins after lockstepd's start marker.
        check(r["data"].startswith("rt: 1 cpu, ") and r["offset"] > 0, "vm.console", r)

    def errors(self):
        ghost = f"ghost{self.i}"
        self.fail("vm.info", {"name": ghost}, dh.NO_SUCH_VM, f'no VM named "{ghost}"')
        self.fail("vm.start", {"name": 7}, dh.INVALID_PARAMS,
                  'parameter "name" must be a string')
        self.fail("vm.destroy", {"name": "shared0", "now": True}, dh.INVALID_PARAMS,
                  'unknown parameter "now"')
        self.fail(f"vm.frob{self.i}", None, dh.METHOD_NOT_FOUND, f'no method "vm.frob{self.i}"')

    def batch(self):
        self.requests += 3
        self.c.send([{"jsonrpc": "2.0", "id": f"b{self.i}-{k}", "method": m, "params": p}
                     for k, (m, p) in enumerate((("vm.info", {"name": "shared2"}),
                                                 ("vm.list", {}),
                                                 ("vm.info", {"name": "nope"})))])
        f = self.c.frame()
        check(isinstance(f, list) and sorted(r["id"] for r in f) ==
              [f"b{self.i}-{k}" for k in range(3)], "a batch's replies", f)
        by_id = {r["id"]: r for r in f}
        check(by_id[f"b{self.i}-0"]["result"]["name"] == "shared2" and
              by_id[f"b{self.i}-2"]["error"]["code"] == dh.NO_SUCH_VM, "batch results", f)

    def pipeline(self):
        ids = [f"p{self.i}-{k}" for k in range(5)]
        self.requests += len(ids)
        self.c.send_raw(b"".join(
            f'{{"jsonrpc":"2.0","id":"{id}","method":"vm.info","params":{{"name":"shared3"}}}}\n'
            .encode() for id in ids))
        got = [self.c.frame() for _ in ids]
        check([r["id"] for r in got] == ids and
              all(r["result"]["name"] == "shared3" for r in got), "pipelined replies in order",
              got)

    def own_vm(self, start=False):
        name = f"c{self.i}"
        r = self.call("vm.define", definition=self.env.definition(name, "idle", vcpus=1))
        check(r["name"] == name and r["created"], "vm.define", r)
        if start:
            s = self.call("vm.start", name=name)
            check(s["state"] == "running" and s["pid"] > 0, "vm.start", s)
            s = self.call("vm.destroy", name=name)
            check((s["state"], s["reason"]) == ("shutoff", "destroyed"), "vm.destroy", s)
        check(self.call("vm.info", name=name)["state"] == "shutoff", "own VM shut off")
        check(self.call("vm.undefine", name=name) == {"name": name}, "vm.undefine")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client()
        for name in SHARED:
            c.result("vm.define", definition=env.definition(name, "idle", "heartbeat_ms=100",
                                                            vcpus=1))
        for name in RUNNING:
            c.result("vm.start", name=name)
        before = {n: c.result("vm.info", name=n)["pid"] for n in SHARED}

        barrier = threading.Barrier(CLIENTS + 1)
        workers = [Worker(env, d, i, barrier) for i in range(CLIENTS)]
        for w in workers:
            w.start()
        try:
            barrier.wait(timeout=60)
            check(c.result("daemon.info")["clients"] == CLIENTS + 1,
                  f"{CLIENTS} clients connected at once")
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass  # a client failed early; its error is reported below
        for w in workers:
            w.join(timeout=120)
            check(not w.is_alive(), f"{w.name} is stuck")
        errors = [w.error for w in workers if w.error]
        check(not errors, f"{len(errors)} clients saw wrong answers", *errors[:5])
        total = sum(w.requests for w in workers)
        ok(f"{CLIENTS} concurrent clients, {total} requests, every answer right")

        dh.wait_for(lambda: c.result("daemon.info")["clients"] == 1, 10,
                    "the other clients' connections to close")
        after = {v["name"]: v for v in c.result("vm.list")}
        check(sorted(after) == SHARED, "only the shared VMs are left", sorted(after))
        check({n: after[n]["pid"] for n in SHARED} == before, "shared VMs untouched", after)
        ok("afterwards: one client left, shared VMs untouched")


if __name__ == "__main__":
    main()
