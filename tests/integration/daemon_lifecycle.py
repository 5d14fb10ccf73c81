#!/usr/bin/env python3
"""A VM's whole life through lockstepd, once with the lockstep CLI and once with raw JSON-RPC.

usage: daemon_lifecycle.py BIN_DIR GUEST_DIR

CLI: define from a JSON file whose kernel path is relative to the CLI's directory, list,
start, info (vCPU threads, their affinity, KVM statistics), console, pin (checked against
the kernel's Cpus_allowed_list of the vCPU thread), shutdown through the ACPI power button
(the idle guest powers off), start again, destroy, undefine; and the CLI's exit statuses.

JSON-RPC: the same steps with every result's fields checked, plus the errors each step can
give (wrong state, unknown VM, bad pin) with their exact codes and messages, and
vm.shutdown of a guest that ignores the power button: -32005 after the timeout, VM still
running; and followers of a console the guest writes every millisecond, each getting every
byte once.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

SUMMARY_KEYS = {"name", "uuid", "state", "reason", "vcpus", "memory_mib", "id", "pid",
                "autostart", "on_crash", "policy", "last_status"}
HOST_CPUS = os.cpu_count()


def vcpu_affinity(pid, tid):
    return dh.status_field(pid, "Cpus_allowed_list", tid)


def cli_lifecycle(env, d):
    defs = env.path("defs")
    os.makedirs(defs)
    kernel = os.path.relpath(env.guest("idle"), defs)
    check(not kernel.startswith("/"), "the kernel path should be relative here")
    with open(os.path.join(defs, "alpha.json"), "w") as f:
        json.dump({"name": "alpha", "vcpus": 2, "memory": "16M", "kernel": kernel,
                   "cmdline": "heartbeat_ms=50"}, f)

    status, out, err = d.cli("vm", "define", "alpha.json", cwd=defs)
    check(status == 0 and out.startswith("defined VM alpha (uuid "), "vm define", out, err)
    info = d.cli_json("vm", "info", "alpha")
    check(info["definition"]["kernel"] == env.guest("idle"),
          "the CLI sends the kernel path made absolute", info["definition"])
    status, out, err = d.cli("vm", "define", "alpha.json", cwd=defs)
    check(status == 0 and out.startswith("updated VM alpha"), "define again updates", out)
    status, out, _ = d.cli("vm", "list")
    check(status == 0 and out.splitlines()[0].split()[:3] == ["ID", "NAME", "STATE"]
          and out.splitlines()[1].split()[:3] == ["-", "alpha", "shutoff"], "vm list", out)
    ok("cli: define (relative kernel path), list")

    status, out, err = d.cli("vm", "start", "alpha")
    check((status, out) == (0, "started alpha: running (booted)\n"), "vm start", out, err)
    status, out, _ = d.cli("vm", "list", "--state", "running")
    check(out.splitlines()[1].split()[1:3] == ["alpha", "running"], "list --state", out)

    info = d.cli_json("vm", "info", "alpha")
    pid = info["pid"]
    check(info["state"] == "running" and pid > 0 and dh.alive(pid), "info: a live worker", info)
    check([v["vcpu"] for v in info["vcpu"]] == [0, 1], "info lists both vCPUs", info["vcpu"])
    for v in info["vcpu"]:
        check(os.path.isdir(f"/proc/{pid}/task/{v['tid']}"),
              "a vCPU tid is a thread of the worker", v)
        check(v["affinity"] == vcpu_affinity(pid, v["tid"]), "affinity as the kernel has it",
              v)
    kvm = [s["kvm"] for s in info["stats"]["vcpu"]]
    check(all(k["exits"] > 0 for k in kvm), "KVM statistics count exits", kvm)
    status, out, _ = d.cli("vm", "info", "alpha")
    check("state:      running (booted)" in out and "AFFINITY" in out and
          str(info["vcpu"][1]["tid"]) in out, "vm info (table)", out)
    ok("cli: start, info shows vCPU threads, affinity, KVM statistics")

    def heartbeats():
        status, out, _ = d.cli("vm", "console", "alpha")
        return out if "idle: ready cpus=2" in out and "idle: heartbeat 2\n" in out else None
    dh.wait_for(heartbeats, 10, "heartbeats on alpha's console")
    # The guest writes on meanwhile: the two lines are in a later read of the whole.
    status, out, _ = d.cli("vm", "console", "alpha", "--tail", "2")
    status, whole, _ = d.cli("vm", "console", "alpha")
    check(status == 0 and len(out.splitlines()) == 2 and out in whole and
          out.startswith("idle: heartbeat"), "console --tail 2: the last two lines", out, whole)
    ok("cli: console")

    tid = info["vcpu"][1]["tid"]
    for cpus in ("0", str(HOST_CPUS - 1)):
        status, out, err = d.cli("vm", "pin", "alpha", "1", cpus)
        check((status, out) == (0, f"vCPU 1 of alpha pinned to CPUs {cpus} (now)\n"),
              "vm pin", out, err)
        check(vcpu_affinity(pid, tid) == cpus, f"vCPU 1's thread is pinned to {cpus}",
              vcpu_affinity(pid, tid))
    check(vcpu_affinity(pid, info["vcpu"][0]["tid"]) == info["vcpu"][0]["affinity"],
          "vCPU 0 is untouched")
    status, out, _ = d.cli("vm", "pin", "alpha", "0", "0", "--config")
    check(out.endswith("(now) (stored)\n"), "pin --config", out)
    info = d.cli_json("vm", "info", "alpha")
    check(info["vcpu"][0]["affinity"] == "0" and
          info["definition"]["sched"]["pin"] == {"0": "0"}, "pin shows in info", info)
    ok("cli: pin changes the vCPU thread's affinity (and the definition with --config)")

    status, out, err = d.cli("vm", "shutdown", "alpha", "--timeout", "20")
    check((status, out) == (0, "shut down alpha: shutoff (guest-poweroff)\n"), "vm shutdown",
          out, err)
    info = d.cli_json("vm", "info", "alpha")
    check((info["state"], info["reason"], info["last_status"], info["pid"]) ==
          ("shutoff", "guest-poweroff", 0, 0), "after shutdown", info)
    check(not dh.alive(pid), "the worker is gone after the power button")
    status, out, _ = d.cli("vm", "console", "alpha")
    check("idle: power button\n" in out, "the guest saw the power button", out)
    ok("cli: shutdown through the ACPI power button")

    status, out, _ = d.cli("vm", "start", "alpha")
    pid = d.cli_json("vm", "info", "alpha")["pid"]
    status, out, err = d.cli("vm", "destroy", "alpha")
    check((status, out) == (0, "destroyed alpha: shutoff (destroyed)\n"), "vm destroy", out,
          err)
    check(not dh.alive(pid), "the worker is gone after destroy")
    check(d.cli_json("vm", "info", "alpha")["reason"] == "destroyed", "reason destroyed")
    status, out, err = d.cli("vm", "undefine", "alpha")
    check((status, out) == (0, "undefined alpha\n"), "vm undefine", out, err)
    check(d.cli_json("vm", "list") == [], "nothing left defined")
    check(os.listdir(os.path.join(d.state_dir, "vms")) == [], "the stored definition is gone")
    ok("cli: start again, destroy, undefine")

    status, out, err = d.cli("vm", "info", "alpha")
    check((status, out, err) == (1, "", 'lockstep: no VM named "alpha"\n'),
          "an unknown VM: status 1 and lockstepd's message", status, err)
    status, _, err = d.cli("vm", "frobnicate", "x")
    check(status == 2 and err.startswith("lockstep vm: unknown command 'frobnicate'"),
          "bad usage: status 2", err)
    # A later --socket wins: one where no daemon listens.
    status, _, err = d.cli("--socket", env.path("nosock"), "vm", "list")
    check(status == 3 and "cannot reach lockstepd" in err, "no daemon: status 3", err)
    ok("cli: exit statuses 1, 2, 3")


def rpc_lifecycle(env, d):
    c = d.client()
    info = c.result("daemon.info")
    check(info["pid"] == d.pid and info["socket"] == d.socket and
          info["vms"] == {"defined": 0, "running": 0} and info["clients"] == 1 and
          info["topology"]["cpus"] == HOST_CPUS, "daemon.info", info)

    definition = env.definition("beta", "idle", "heartbeat_ms=50", on_crash="destroy")
    r = c.result("vm.define", definition=definition)
    check(set(r) == {"name", "uuid", "created", "pending"} and r["name"] == "beta" and
          r["created"] and not r["pending"], "vm.define result", r)
    uuid = r["uuid"]
    r = c.result("vm.define", definition=dict(definition, uuid=uuid))
    check(r == {"name": "beta", "uuid": uuid, "created": False, "pending": False}, "redefine",
          r)
    c.error("vm.define", {"definition": dict(definition, uuid="6f1c3a52-0000-4000-8000-"
                                                             "000000000001")},
            dh.VM_EXISTS, f"VM beta exists with another uuid ({uuid})")
    c.error("vm.define", {"definition": dict(definition, kernel="guest/idle.elf")},
            dh.BAD_DEFINITION, '"kernel" must be an absolute path (the daemon has no '
            'working directory of yours)')
    ok("rpc: vm.define (created, updated, uuid clash, relative kernel refused)")

    for method in ("vm.shutdown", "vm.destroy"):
        msg = ("VM beta is shutoff, not running" if method == "vm.shutdown"
               else "VM beta is not running")
        c.error(method, {"name": "beta"}, dh.BAD_STATE, msg)
    s = c.result("vm.start", name="beta")
    check(set(s) == SUMMARY_KEYS, "vm.start returns the VM's summary", s)
    check((s["name"], s["uuid"], s["state"], s["reason"], s["vcpus"], s["memory_mib"],
           s["autostart"], s["on_crash"], s["policy"], s["last_status"]) ==
          ("beta", uuid, "running", "booted", 2, 16, False, "destroy", "host", -1),
          "vm.start summary", s)
    check(s["pid"] > 0 and s["id"] > 0, "a running VM has a pid and an id", s)
    c.error("vm.start", {"name": "beta"}, dh.BAD_STATE, "VM beta is already running")
    c.error("vm.undefine", {"name": "beta"}, dh.BAD_STATE,
            "VM beta is running: destroy or shut it down first")
    lst = c.result("vm.list")
    check([v["name"] for v in lst] == ["beta"] and lst[0] == c.result("vm.list",
                                                                     state="running")[0],
          "vm.list", lst)
    check(c.result("vm.list", state="shutoff") == [], "vm.list state=shutoff")
    check([v["name"] for v in c.result("vm.list", state="active")] == ["beta"], "active")
    ok("rpc: vm.start, vm.list, wrong-state errors")

    info = c.result("vm.info", name="beta")
    check(SUMMARY_KEYS | {"definition", "live", "vcpu", "stats", "irq"} == set(info),
          "vm.info keys",
          sorted(info))
    check(info["definition"]["uuid"] == uuid and info["stats"]["vcpus"] == 2, "vm.info", info)
    tid = info["vcpu"][0]["tid"]
    r = c.result("vcpu.pin", name="beta", vcpu=0, cpus="0")
    check(r == {"name": "beta", "vcpu": 0, "cpus": "0", "live": True, "config": False},
          "vcpu.pin result", r)
    check(vcpu_affinity(s["pid"], tid) == "0", "vcpu.pin took effect")
    c.error("vcpu.pin", {"name": "beta", "vcpu": 2, "cpus": "0"}, dh.INVALID_PARAMS,
            "VM beta has 2 vCPUs (0-1)")
    c.error("vcpu.pin", {"name": "beta", "vcpu": 0, "cpus": "512"}, dh.INVALID_PARAMS,
            f"host CPU 512 does not exist (the host has {HOST_CPUS})")
    c.error("vcpu.pin", {"name": "beta", "vcpu": 0, "cpus": "0-"}, dh.INVALID_PARAMS,
            'parameter "cpus" must be a CPU list such as "0-3,6"')
    ok("rpc: vm.info, vcpu.pin and its errors")

    def console_has_heartbeat():
        r = c.result("vm.console", name="beta")
        return r if "idle: heartbeat 1\n" in r["data"] else None
    r = dh.wait_for(console_has_heartbeat, 10, "beta's heartbeat")
    # By default the current run's console: from just after lockstepd's start marker.
    check(set(r) == {"vm", "data", "offset", "next_offset", "size"} and r["offset"] > 0 and
          r["next_offset"] == r["offset"] + len(r["data"].encode()) and
          r["size"] >= r["next_offset"], "vm.console result", r)
    o = r["offset"]
    part = c.result("vm.console", name="beta", offset=o + 3, max=10)
    check(part["data"] == r["data"][3:13] and part["next_offset"] == o + 13, "offset/max", part)
    tail = c.result("vm.console", name="beta", tail=4)
    check(len(tail["data"]) == 4 and tail["offset"] == tail["size"] - 4, "tail", tail)
    # follow: what is appended later arrives as console.output notifications.
    f = c.result("vm.console", name="beta", follow=True, tail=1)
    n = c.notification(timeout=5, method="console.output")
    check(n and n["params"]["vm"] == "beta" and n["params"]["offset"] == f["next_offset"] and
          "idle: heartbeat" in n["params"]["data"], "console.output notification", n, f)
    ok("rpc: vm.console (offset, max, tail, follow)")

    s = c.result("vm.shutdown", name="beta", timeout=20)
    check((s["state"], s["reason"], s["last_status"], s["pid"], s["id"]) ==
          ("shutoff", "guest-poweroff", 0, 0, -1), "vm.shutdown summary", s)
    c.result("vm.start", name="beta")
    s = c.result("vm.destroy", name="beta")
    check((s["state"], s["reason"], s["pid"]) == ("shutoff", "destroyed", 0), "vm.destroy", s)
    check(c.result("vm.undefine", name="beta") == {"name": "beta"}, "vm.undefine")
    for method, params in (("vm.info", {}), ("vm.start", {}), ("vm.shutdown", {}),
                           ("vm.destroy", {}), ("vm.undefine", {}), ("vm.console", {}),
                           ("vcpu.pin", {"vcpu": 0, "cpus": "0"})):
        c.error(method, dict(params, name="beta"), dh.NO_SUCH_VM, 'no VM named "beta"')
    ok("rpc: vm.shutdown, vm.destroy, vm.undefine; then -32001 from every VM method")

    # A guest that ignores the power button: smp-counter spins and never looks at ACPI.
    c.result("vm.define", definition=env.definition("spin", "smp-counter",
                                                    "iterations=100000000000", vcpus=1))
    c.result("vm.start", name="spin")
    c.error("vm.shutdown", {"name": "spin", "timeout": 1}, dh.TIMEOUT,
            "VM spin did not shut down in time: the guest may ignore the ACPI power button; "
            "destroying it stops it at once")
    info = c.result("vm.info", name="spin")
    check((info["state"], info["reason"]) == ("running", "shutdown-timeout") and
          dh.alive(info["pid"]), "still running after the shutdown timeout", info)
    c.result("vm.destroy", name="spin")
    c.result("vm.undefine", name="spin")
    ok("rpc: vm.shutdown of a guest that ignores the button: -32005, still running")
    c.close()


def follow_exact(env, d):
    """Followers of a console the guest writes to all the time (a heartbeat every ms): each
    follower's first console.output starts exactly where its reply ended.  The worker
    appends while lockstepd reads, so a follower placed by a size taken before the read got
    the bytes written in between twice (once a byte of a guest's line doubled)."""
    c = d.client()
    c.result("vm.define", definition=env.definition("chatty", "idle", "heartbeat_ms=1"))
    c.result("vm.start", name="chatty")
    dh.wait_for(lambda: "idle: heartbeat 20\n" in c.result("vm.console", name="chatty")["data"],
                30, "chatty's heartbeats")
    followers = 0
    for _ in range(8):
        clients = [d.client() for _ in range(16)]
        replies = [x.result("vm.console", name="chatty", follow=True, tail=64) for x in clients]
        for x, r in zip(clients, replies):
            n = x.notification(timeout=20, method="console.output")
            check(n and n["params"]["offset"] == r["next_offset"],
                  "a follower's first notification starts where its reply ended", r, n)
            followers += 1
        for x in clients:
            x.close()
    c.result("vm.destroy", name="chatty")
    c.result("vm.undefine", name="chatty")
    c.close()
    ok(f"rpc: {followers} followers of a console written every ms: none got a byte twice")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        cli_lifecycle(env, d)
        rpc_lifecycle(env, d)
        follow_exact(env, d)


if __name__ == "__main__":
    main()
