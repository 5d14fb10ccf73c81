#!/usr/bin/env python3
"""Steering of redirectable interrupts to running vCPUs, under lockstepd's scheduler.

usage: irq_steering.py BIN_DIR GUEST_DIR

irqlat raises a redirectable MSI-X (lowest priority, logical destination: every vCPU) from
lockstep's testdev at 1 kHz while every vCPU spins at ring 3, and the worker's interrupt
report says, for every injection, whether its destination's gate was closed and why:

- wide: 4 vCPUs on the host's 2 CPUs under `relaxed`, which runs only 2 at a time.  With
  steering on, no interrupt goes to a gated vCPU outside a schedule switch (to_gated.miss
  is 0) and the route was re-steered as the schedule moved; with steering off the guest's
  message stands (KVM picks one fixed vCPU), and it lands on a gated vCPU.
- wide under `mux`: the same VM multiplexed, whose gates the worker moves between the
  scheduler's publications: an interrupt to a gated vCPU there is one during a switch, never
  a miss.
- gang: the same 2-vCPU guest beside a CPU-bound 2-vCPU VM, both gang-scheduled on 2 CPUs:
  every vCPU of a VM runs in the same slices, so while the VM is descheduled the steered
  route has nowhere better to go (counted as `nowhere` or in a switch, never a miss); with
  steering on the scheduler brings the VM's slice forward instead (interrupt boost): boosts
  are granted, each cut the other VM's slice once, the boosted time is paid back and the VM
  takes no more than its share; with steering off nothing is asked or granted.
- live: steering turned off and on through lockstep-vm's control socket while irqlat runs,
  and through lockstepd's irq.set (live, and stored with config) and `lockstep vm irqs`:
  the report (irq.get, vm.info's irq section) follows each change; bad parameters are
  refused with the JSON-RPC codes.

Invariants only: the guest's own checks, counters that must be 0 or add up; no latency.
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402


def irqlat(env, name, vcpus, policy, steering, count=2000):
    return env.definition(name, "irqlat", f"mode=msix steer=1 count={count} seconds=90",
                          vcpus=vcpus, memory="64M", sched={"policy": policy},
                          irq={"steering": steering}, devices=[{"type": "testdev"}])


def run(d, c, defs, awaited):
    for definition in defs:
        c.result("vm.define", definition=definition)
    for definition in defs:
        c.result("vm.start", name=definition["name"])
    d.wait_state(awaited, "shutoff", timeout=150)
    info = c.result("vm.info", name=awaited)
    for definition in defs:
        if definition["name"] != awaited:
            c.result("vm.destroy", name=definition["name"])
    console = c.result("vm.console", name=awaited, max=1 << 20)["data"]
    results = [ln for ln in console.splitlines() if ln.startswith("result: program=irqlat")]
    check(results and " ok=1" in results[-1], f"{awaited}: irqlat passed", console)
    irq = info["last_run"]["stats"]["irq"]
    routes = [r for r in irq["routes"] if r["kind"] == "msi" and r["owner"] == "testdev0"]
    check(len(routes) == 1, f"{awaited}: one MSI-X route", irq["routes"])
    return irq, routes[0]


def wide(env, d, c):
    irq, r = run(d, c, [irqlat(env, "wide-on", 4, "relaxed", True)], "wide-on")
    check(r["redirectable"] and r["steered"], "the route is redirectable and steered", r)
    check(r["injected"] > 0, "interrupts were injected", r)
    check(r["to_gated"]["miss"] == 0, "steered: never to a gated vCPU outside a switch", r)
    # (the rest of the total: injections before the first steering pass, unsteered)
    check(r["to_gated"]["switching"] + r["to_gated"]["nowhere"] <= r["to_gated"]["total"],
          "gated injections add up", r)
    check(irq["steer"]["commits"] >= 1, "re-steered as the schedule moved", irq["steer"])
    ok(f"wide, steering on: {r['injected']} injections, {r['to_gated']['total']} in switches")

    irq, r = run(d, c, [irqlat(env, "wide-off", 4, "relaxed", False)], "wide-off")
    check(not r["steered"] and r["effective"] == r["guest"], "off: the guest's message", r)
    check(irq["steer"]["commits"] == 0, "off: no steering commits", irq["steer"])
    check(r["to_gated"]["total"] > 0, "off: interrupts land on gated vCPUs", r)
    ok(f"wide, steering off: {r['to_gated']['total']} of {r['injected']} to a gated vCPU")

    irq, r = run(d, c, [irqlat(env, "wide-mux", 4, "mux", True)], "wide-mux")
    check(r["redirectable"] and r["steered"], "mux: the route is steered", r)
    check(r["injected"] > 0, "mux: interrupts were injected", r)
    check(r["to_gated"]["miss"] == 0, "mux, steered: a gated destination is in a switch", r)
    check(r["to_gated"]["switching"] + r["to_gated"]["nowhere"] <= r["to_gated"]["total"],
          "mux: gated injections add up", r)
    ok(f"wide under mux, steering on: {r['injected']} injections, "
       f"{r['to_gated']['switching']} to a vCPU the worker had just gated out")


def gang_run(env, d, c, steering):
    """irqlat beside the CPU-bound VM, both gang; the route, and both VMs' scheduler stats.
    The CPU-bound VM is scheduled before irqlat starts and stopped after it ends, so irqlat
    never runs alone: its fair share of its run is half."""
    name = "gang-on" if steering else "gang-off"
    load = env.definition("load", "lockbench", "lock=ticket mode=plain duration_ms=150000",
                          vcpus=2, sched={"policy": "gang"})
    c.result("vm.define", definition=load)
    c.result("vm.start", name="load")
    deadline = time.time() + 60
    while True:
        vms = c.result("sched.stats", name="load").get("vms") or [{}]
        if vms[0].get("watched_ms", 0) > 0:
            break
        check(time.time() < deadline, "the load VM is scheduled", vms)
        time.sleep(0.1)
    irq, r = run(d, c, [irqlat(env, name, 2, "gang", steering)], name)
    c.result("vm.destroy", name="load")
    mine = c.result("vm.info", name=name)["last_run"]["sched"]
    other = c.result("vm.info", name="load")["last_run"]["sched"]
    c.result("vm.undefine", name="load")
    return r, mine, other


def gang(env, d, c):
    r, mine, other = gang_run(env, d, c, True)
    check(r["to_gated"]["miss"] == 0, "gang, steered: no miss", r)
    check(r["to_gated"]["switching"] + r["to_gated"]["nowhere"] > 0,
          "gang: the VM was descheduled at times, with nowhere to go", r)
    ok(f"gang: {r['to_gated']['nowhere']} with no vCPU of the VM running, "
       f"{r['to_gated']['switching']} in switches, none missed")
    # Interrupt boost: steering on brings the gated VM's slice forward; the other VM's
    # slices it cut short are exactly its boosts; its boosted time is paid back (what it
    # still owes is bounded by two quanta and a boosted slice); the share of its run its
    # gates were open (the scheduler's own accounting, not the host's: the CPU-bound VM runs
    # beside it throughout, so fair is half) stays within [0.35, 0.6] -- 0.6: two quanta
    # and a slice over a run of seconds; 0.35: slices it gave back while it booted halted.
    b, ob = mine["irq_boost"], other["irq_boost"]
    check(b["on"], "boost follows steering", b)
    check(b["granted"] > 0, "gang, steering on: boosts granted", b)
    check(b["granted"] + b["refused"] <= b["requests"], "boosts: no more decided than asked", b)
    check(ob["preempted"] == b["granted"], "each boost cut the other VM's slice once",
          (b, ob))
    check(ob["granted"] == 0 and ob["requests"] == 0, "the load VM asked for nothing", ob)
    # (a boosted slice lasts 0.5 ms and its switches: a quantum is a generous bound for it)
    check(b["debt_ms"] <= 3 * 5, "boosted time paid back: under two quanta and a slice", b)
    check(b["wait"]["count"] > 0, "raise -> gates open measured", b)
    share = b["slice_ms"] / mine["watched_ms"] if mine["watched_ms"] else 0
    check(0.35 <= share <= 0.6, f"gang, boosted: slice share {share:.3f} within [0.35, 0.6]",
          mine)
    ok(f"gang, steering on: {b['granted']} boosts of {b['requests']} requests "
       f"({b['refused']} refused, {b['deferred']} held), slice share {share:.3f}")
    r, mine, other = gang_run(env, d, c, False)
    b = mine["irq_boost"]
    check(not b["on"] and b["requests"] == 0 and b["granted"] == 0,
          "gang, steering off: no boost asked or granted", b)
    check(other["irq_boost"]["preempted"] == 0, "steering off: no slice cut short", other)
    check(r["to_gated"]["total"] > 0, "steering off: interrupts wait for the VM's slice", r)
    share = b["slice_ms"] / mine["watched_ms"] if mine["watched_ms"] else 0
    check(0.35 <= share <= 0.6, f"gang, not boosted: slice share {share:.3f}", mine)
    ok(f"gang, steering off: no boosts, {r['to_gated']['total']} interrupts to gated vCPUs, "
       f"slice share {share:.3f}")


def control(path, request):
    """One request on a fresh connection; its reply (the worker's hello comes first)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while True:
            while b"\n" not in buf:
                chunk = s.recv(65536)
                check(chunk, "the control socket answered")
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            msg = json.loads(line)
            if msg.get("id") == request["id"]:
                return msg


def live(env):
    ctl = env.path("live.ctl")
    definition = env.path("live.json")
    with open(definition, "w") as f:
        json.dump(irqlat(env, "live", 4, "host", True, count=4000), f)
    proc = subprocess.Popen([env.vm_binary, "--config", definition, "--control-socket", ctl,
                             "--timeout", "120"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        dh.wait_for(lambda: os.path.exists(ctl), 10, "the control socket")
        time.sleep(0.5)
        off = control(ctl, {"id": 1, "cmd": "irq-steering", "steering": False})
        check(off and "result" in off and off["result"]["steering"] is False,
              "steering off, live", off)
        routes = [r for r in off["result"]["routes"] if r["kind"] == "msi"]
        check(all(r["effective"] == r["guest"] and not r["steered"] for r in routes),
              "off: every MSI route carries the guest's message", routes)
        on = control(ctl, {"id": 2, "cmd": "irq-steering", "steering": True})
        check(on and on["result"]["steering"] is True, "steering on again", on)
        bad = control(ctl, {"id": 3, "cmd": "irq-steering", "steering": "yes"})
        check(bad and "error" in bad, "a malformed request gets an error", bad)
        report = control(ctl, {"id": 4, "cmd": "irqs"})
        check(report and report["result"]["steering"] is True, "irqs", report)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ok("live: steering off and on through the control socket")


def api(env, d, c):
    c.result("vm.define", definition=irqlat(env, "api", 2, "host", True, count=100000))
    stopped = c.result("irq.get", name="api")
    check(stopped["state"] == "shutoff" and stopped["final"], "irq.get before a run", stopped)
    c.result("vm.start", name="api")
    rep = c.result("irq.get", name="api")
    check(rep["irq"]["steering"] is True and rep["irq"]["routes"], "irq.get running", rep)
    r = c.result("irq.set", name="api", steering=False)
    check(r["live"] and not r["config"] and r["steering"] is False, "irq.set live", r)
    check(c.result("irq.get", name="api")["irq"]["steering"] is False, "irq.get follows", r)
    info = c.result("vm.info", name="api")
    check(info["irq"]["steering"] is False and info["definition"]["irq"]["steering"] is True,
          "vm.info: steering off now, on in the definition", info.get("irq"))
    r = c.result("irq.set", name="api", steering=False, config=True)
    check(r["config"], "irq.set config", r)
    check(c.result("vm.info", name="api")["definition"]["irq"]["steering"] is False,
          "stored in the definition")
    status, out, err = d.cli("vm", "irqs", "api", "--steering", "on")
    check(status == 0 and out == "api: steering on (now)\n", "lockstep vm irqs --steering", out,
          err)
    status, out, err = d.cli("vm", "irqs", "api")
    check(status == 0 and "steering on" in out and "testdev0" in out, "lockstep vm irqs", out)
    c.error("irq.set", {"name": "api"}, code=dh.INVALID_PARAMS)
    c.error("irq.set", {"name": "api", "steering": "yes"}, code=dh.INVALID_PARAMS)
    c.error("irq.get", {"name": "nobody"}, code=dh.NO_SUCH_VM)
    c.result("vm.destroy", name="api")
    r = c.result("irq.set", name="api", steering=True)
    check(not r["live"] and r["config"], "irq.set on a stopped VM changes its definition", r)
    ok("api: irq.get, irq.set (live, config), vm.info's irq section, lockstep vm irqs")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        c = d.client(timeout=60)
        api(env, d, c)
        wide(env, d, c)
        gang(env, d, c)
        live(env)
        d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
