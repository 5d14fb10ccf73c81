#!/usr/bin/env python3
"""virsh's statistics and the running domain against its stored definition.

usage: virsh_stats.py BIN_DIR GUEST_DIR

- virsh domstats: state, cpu, balloon and vcpu groups for a running domain (with figures
  from the worker: its resident set, CPU time, each vCPU thread), state alone for a shut-off
  one, every domain without names; --interface with --enforce is refused by name, without
  --enforce the group is absent;
- virsh dommemstat: the guest's RAM (actual) and the worker's resident set (rss); virsh
  domifaddr: no interfaces; both refuse a shut-off domain as libvirt does;
- a procedure lockstep lacks (domblkstat) is refused by its name, never by a bare number;
- a domain redefined while it runs: dominfo and vcpuinfo show the running values, dumpxml
  the running XML and dumpxml --inactive the new definition, vcpucount both;
- a live vcpupin changes the running domain only: vcpupin --config shows the stored pins.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import virsh_env as ve  # noqa: E402
from daemon_harness import check, ok  # noqa: E402


def stats(text):
    """domstats output as {domain: {key: value}}."""
    out, dom = {}, None
    for line in text.splitlines():
        m = re.match(r"Domain: '(.*)'", line)
        if m:
            dom = out.setdefault(m.group(1), {})
        elif "=" in line and dom is not None:
            k, v = line.strip().split("=", 1)
            dom[k] = v
    return out


def domstats(env, d):
    s = stats(env.ok(d, "domstats", "demo"))["demo"]
    check(s["state.state"] == "1" and s["state.reason"] == "1" and
          s["balloon.current"] == s["balloon.maximum"] == "16384" and
          int(s["balloon.rss"]) > 0 and int(s["cpu.time"]) >= 0 and
          s["vcpu.current"] == s["vcpu.maximum"] == "2" and
          {s["vcpu.0.state"], s["vcpu.1.state"]} <= {"1", "2"} and "vcpu.1.time" in s,
          "domstats of a running domain: state, cpu, balloon, vcpu", s)
    off = stats(env.ok(d, "domstats", "off"))["off"]
    check(off["state.state"] == "5" and "cpu.time" not in off and "vcpu.0.state" not in off and
          off["vcpu.current"] == "1", "a shut-off domain: state, and its definition's sizes",
          off)
    every = stats(env.ok(d, "domstats"))
    check(set(every) == {"demo", "off"}, "domstats of every domain", every)
    running = stats(env.ok(d, "domstats", "--list-running"))
    check(set(running) == {"demo"}, "domstats --list-running", running)
    s = stats(env.ok(d, "domstats", "demo", "--vcpu"))["demo"]
    check(all(k.startswith("vcpu.") for k in s), "domstats --vcpu: that group alone", s)
    check(stats(env.ok(d, "domstats", "demo", "--interface")).get("demo", {}) == {},
          "a group lockstep does not have is absent")
    err = env.fails(d, "domstats", "demo", "--interface", "--enforce")
    check("lockstep has no statistics of the groups" in err, "--enforce names what lacks", err)
    ok("virsh domstats: state, cpu, balloon and vcpu groups; others absent or refused")


def memstat_ifaddr(env, d):
    out = env.ok(d, "dommemstat", "demo")
    mem = dict(line.split() for line in out.splitlines() if line.strip())
    check(mem.get("actual") == "16384" and int(mem.get("rss", 0)) > 0,
          "dommemstat: the guest's RAM and the worker's resident set", out)
    out = env.ok(d, "domifaddr", "demo")
    check("Name" in out and "MAC address" in out and len(out.strip().splitlines()) == 2,
          "domifaddr: no interfaces", out)
    for cmd in ("dommemstat", "domifaddr"):
        err = env.fails(d, cmd, "off")
        check("domain is not running" in err, f"{cmd} of a shut-off domain", err)
    err = env.fails(d, "domblkstat", "demo")
    check("lockstep does not implement DOMAIN_BLOCK_STATS (procedure 64)" in err,
          "an unimplemented procedure is refused by its name", err)
    ok("virsh dommemstat and domifaddr answered; others refused by name")


def live_and_config(env, d):
    env.define(d, "demo", prog="idle", vcpus=3)  # while it runs with 2
    info = env.ok(d, "dominfo", "demo")
    check(re.search(r"CPU\(s\): +2\n", info), "dominfo: the running domain's vCPUs", info)
    count = env.ok(d, "vcpucount", "demo")
    check(re.search(r"maximum +config +3", count) and re.search(r"current +live +2", count),
          "vcpucount: config 3, live 2", count)
    live = env.ok(d, "dumpxml", "demo")
    inactive = env.ok(d, "dumpxml", "demo", "--inactive")
    check(re.search(r"<vcpu[^>]*>2</vcpu>", live) and
          re.search(r"<vcpu[^>]*>3</vcpu>", inactive),
          "dumpxml: the running XML; --inactive: the stored one", live, inactive)
    check(len(re.findall(r"^VCPU:", env.ok(d, "vcpuinfo", "demo"), re.M)) == 2,
          "vcpuinfo: the running vCPUs")
    env.ok(d, "vcpupin", "demo", "1", "0", "--live")
    live_pins = env.ok(d, "vcpupin", "demo", "--live")
    config_pins = env.ok(d, "vcpupin", "demo", "--config")
    check(re.search(r"^ 1 +0$", live_pins, re.M) and not re.search(r"^ 1 +0$", config_pins,
                                                                   re.M),
          "a live pin changes the running domain, not the stored definition", live_pins,
          config_pins)
    ok("while it runs: dominfo, vcpucount, dumpxml and vcpupin show the running values, "
       "--config and --inactive the stored ones")


def main():
    with ve.VirshEnv(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        env.define(d, "demo", prog="idle", vcpus=2)
        env.define(d, "off", prog="idle", vcpus=1)
        env.ok(d, "start", "demo")
        domstats(env, d)
        memstat_ifaddr(env, d)
        live_and_config(env, d)
        env.ok(d, "destroy", "demo")


if __name__ == "__main__":
    main()
