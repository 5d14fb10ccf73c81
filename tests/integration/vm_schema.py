#!/usr/bin/env python3
"""docs/vm.schema.json against the examples and against lockstepd's own validation.

usage: vm_schema.py BIN_DIR GUEST_DIR

- every VM definition shown in README.md and docs/*.md (a JSON block with "name" and
  "kernel") and the valid ones of the fuzz corpus satisfy the schema;
- the same cases go to the schema and to a real lockstepd's vm.define: every keyword's
  edges, valid and invalid, get the same verdict from both.  The rules the schema says it
  cannot state (a memory string's range, CPU ranges, pins of vCPUs the VM lacks, a device
  listed twice, paths, a kernel that is missing or boots nothing, gang wider than the host)
  are accepted by the schema and refused by lockstepd, never the other way round;
- what lockstepd stores and shows (vm.info's definition) satisfies the schema too.
The daemon tests check the schema on every definition lockstepd accepts (daemon_harness.py).
"""
import copy
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def doc_definitions():
    """(where, definition) for each JSON block of the docs that is a VM definition."""
    out = []
    for path in [os.path.join(SOURCE, "README.md")] + sorted(
            glob.glob(os.path.join(SOURCE, "docs", "*.md"))):
        with open(path) as f:
            text = f.read()
        for i, block in enumerate(re.findall(r"```json\n(.*?)```", text, re.S)):
            try:
                obj = json.loads(block)
            except ValueError:
                continue
            if isinstance(obj, dict) and "name" in obj and "kernel" in obj:
                out.append((f"{os.path.relpath(path, SOURCE)} block {i + 1}", obj))
    return out


def examples():
    docs = doc_definitions()
    check(docs, "the docs show VM definitions")
    for where, d in docs:
        errors = dh.schema_errors(d)
        check(not errors, f"{where} satisfies docs/vm.schema.json", d, errors)
    corpus = os.path.join(SOURCE, "tests", "fuzz", "corpus", "vmdef")
    for name, valid in (("minimal", True), ("full", True), ("limits", True),
                        ("cross-field-errors", True), ("unknown-key", False)):
        with open(os.path.join(corpus, name + ".json")) as f:
            d = json.load(f)
        check(not dh.schema_errors(d) == valid, f"fuzz corpus {name}: schema says "
              f"{'valid' if valid else 'invalid'}", dh.schema_errors(d))
    ok(f"{len(docs)} definitions in the docs and the fuzz corpus against the schema")


def cases(env):
    """(label, definition, verdict): 'ok' both accept, 'bad' both refuse, 'daemon' only
    lockstepd refuses (a rule the schema cannot state)."""
    idle = env.guest("idle")
    base = {"name": "s", "kernel": idle, "vcpus": 1, "memory": 16}
    out = []

    def case(label, verdict, **changes):
        d = copy.deepcopy(base)
        for k, v in changes.items():
            if v is DROP:
                d.pop(k, None)
            else:
                d[k] = v
        out.append((label, d, verdict))

    good = "ok"
    case("minimal", good)
    case("every top-level key", good, uuid="8f3169e4-9e17-5347-a623-47fff434bb04",
         cmdline="heartbeat_ms=100", on_crash="restart", autostart=True,
         serial={"log": os.path.join(env.files, "schema.log"), "stdout": False},
         sched={"policy": "relaxed", "quantum_us": 100, "skew_us": 1000000, "cpus": "0-1",
                "pin": {"0": "1"}},
         pvlock={"enabled": False, "kvm_features": ["pv_unhalt", "steal_time"],
                 "pause_exits": "off"},
         irq={"steering": False}, devices=[])
    case("name of 63", good, name="a" * 63)
    case("name . _ -", good, name="a.b_c-d")
    for policy in ("host", "pinned", "gang", "adaptive"):
        case(f"policy {policy}", good, sched={"policy": policy})
    for m in (2, 262144, "16M", "16m", "16MiB", "16mb", "16", "1G", "16384K"):
        case(f"memory {m!r}", good, memory=m)
    for v in (1, 254):
        case(f"vcpus {v}", good, vcpus=v)
    for c in ("destroy", "preserve"):
        case(f"on_crash {c}", good, on_crash=c)
    case("serial.log null", good, serial={"log": None})
    case("initrd null", good, initrd=None)
    case("kvm_features host", good, pvlock={"kvm_features": "host"})
    case("kvm_features []", good, pvlock={"kvm_features": []})
    case("pause_exits on", good, pvlock={"pause_exits": "on"})
    case("quantum 1000000, skew 10", good, sched={"quantum_us": 1000000, "skew_us": 10})
    case("cpus 0,1", good, sched={"cpus": "0,1"})
    case("test devices", good, devices=[{"type": "testdev"}, {"type": "pci-testdev", "slot": 5},
                                        {"type": "pc-testdev"}, {"type": "testdev", "slot": 31}])

    bad = "bad"
    case("no name", bad, name=DROP)
    case("no kernel", bad, kernel=DROP)
    for n in ("", "a" * 64, "-a", ".a", "a b", "a/b", "é"):
        case(f"name {n!r}", bad, name=n)
    case("name 7", bad, name=7)
    for u in ("8f3169e4", "8f3169e4-9e17-5347-a623-47fff434bb0g", 5):
        case(f"uuid {u!r}", bad, uuid=u)
    for v in (0, 255, "2", 2.0, True, None, -1):
        case(f"vcpus {v!r}", bad, vcpus=v)
    for m in (1, 262145, 0, -1, "abc", "16X", "M", "16 M", "", 1.5, None, True):
        case(f"memory {m!r}", bad, memory=m)
    for k in ("", 7, None):
        case(f"kernel {k!r}", bad, kernel=k)
    case("cmdline too long", bad, cmdline="x" * 4096)
    for i in ("", 5, "x" * 4096):
        case(f"initrd {i!r:.10}", bad, initrd=i)
    case("cmdline 5", bad, cmdline=5)
    case("on_crash reboot", bad, on_crash="reboot")
    case("autostart 'yes'", bad, autostart="yes")
    case("serial a list", bad, serial=[])
    case("serial.log ''", bad, serial={"log": ""})
    case("serial.log 5", bad, serial={"log": 5})
    case("serial.stdout 1", bad, serial={"stdout": 1})
    case("serial.colour", bad, serial={"colour": True})
    case("sched a string", bad, sched="gang")
    case("policy fair", bad, sched={"policy": "fair"})
    for q in (99, 1000001, "5000", 5000.5):
        case(f"quantum {q!r}", bad, sched={"quantum_us": q})
    for k in (9, 1000001):
        case(f"skew {k}", bad, sched={"skew_us": k})
    for c in ("", "a", "1-", "-1", "1,,2", "0x1", " 1", 1):
        case(f"cpus {c!r}", bad, sched={"cpus": c})
    for key in ("x", "01", "254", "+1", " 1", "-1", "0x1", ""):
        case(f"pin key {key!r}", bad, sched={"pin": {key: "0"}})
    case("pin value a", bad, sched={"pin": {"0": "a"}})
    case("pin a list", bad, sched={"pin": ["0"]})
    case("sched.polcy", bad, sched={"polcy": "gang"})
    case("pvlock.enabled 1", bad, pvlock={"enabled": 1})
    for f in ("all", ["nope"], [1], {}):
        case(f"kvm_features {f!r}", bad, pvlock={"kvm_features": f})
    case("pause_exits maybe", bad, pvlock={"pause_exits": "maybe"})
    case("irq.steering 'on'", bad, irq={"steering": "on"})
    case("irq.pins", bad, irq={"pins": 1})
    case("devices an object", bad, devices={})
    case("17 devices", bad,
         devices=[{"type": "vfio-pci", "host": f"0000:00:{i:02x}.0"} for i in range(17)])
    case("device without host", bad, devices=[{"type": "vfio-pci"}])
    case("device without type", bad, devices=[{"slot": 3}])
    case("testdev with a host", bad, devices=[{"type": "testdev", "host": "0000:00:03.0"}])
    case("pc-testdev in a slot", bad, devices=[{"type": "pc-testdev", "slot": 3}])
    for slot in (0, 32, "3", 1.0):
        case(f"slot {slot!r}", bad, devices=[{"type": "testdev", "slot": slot}])
    case("device usb", bad, devices=[{"type": "usb", "host": "0000:00:03.0"}])
    for h in ("0000:00:20.0", "0000:00:03.8", "00:03.0", "0000:00:03.00", "000g:00:03.0",
              "0x00:00:03.0", "+000:00:03.0", "0000:00:3.0 "):
        case(f"device host {h!r}", bad, devices=[{"type": "vfio-pci", "host": h}])
    case("device extra key", bad,
         devices=[{"type": "vfio-pci", "host": "0000:00:03.0", "colour": "red"}])
    vfio = {"type": "vfio-pci", "host": "0000:00:03.0"}
    for label, extra in (("rom not an object", {"rom": False}),
                         ("rom extra key", {"rom": {"bar": True, "size": 4096}}),
                         ("rom.file empty", {"rom": {"file": ""}}),
                         ("reset maybe", {"reset": "maybe"}),
                         ("managed 1", {"managed": 1})):
        case(f"vfio-pci {label}", bad, devices=[dict(vfio, **extra)])
    case("managed on a test device", bad, devices=[{"type": "testdev", "managed": True}])
    case("vpcus (a typo)", bad, vpcus=2)

    daemon = "daemon"
    for m in ("1M", "300G", "1536K", "1T", "9" * 31):
        case(f"memory {m!r} (its range)", daemon, memory=m)
    for c in ("3-1", "1024", "0-1024"):
        case(f"cpus {c!r} (its range)", daemon, sched={"cpus": c})
    case("pin of a vCPU the VM lacks", daemon, sched={"pin": {"1": "0"}})
    case("a device twice", daemon, devices=[{"type": "vfio-pci", "host": "0000:00:03.0"}] * 2)
    case("a slot twice", daemon, devices=[{"type": "testdev", "slot": 4},
                                          {"type": "pci-testdev", "slot": 4}])
    case("pc-testdev twice", daemon, devices=[{"type": "pc-testdev"}] * 2)
    case("relative kernel", daemon, kernel="idle.elf")
    # Files beneath the directories the test's lockstepd allows, and one outside them.
    text = os.path.join(env.images, "text")
    with open(text, "w") as f:
        f.write("not a kernel\n")
    os.chmod(text, 0o644)
    case("kernel missing", daemon, kernel=os.path.join(env.images, "nonexistent.elf"))
    case("kernel boots nothing", daemon, kernel=text)
    case("kernel outside the allowed directories", daemon, kernel="/etc/hostname")
    case("relative serial.log", daemon, serial={"log": "console.log"})
    case("gang wider than the host", daemon, vcpus=os.cpu_count() + 1,
         sched={"policy": "gang"})
    return out


DROP = object()


def agreement(env):
    d = env.daemon()
    c = d.client()
    counts = {"ok": 0, "bad": 0, "daemon": 0}
    for label, definition, verdict in cases(env):
        errors = dh.schema_errors(definition)
        r = c.request("vm.define", {"definition": definition})
        accepted = "result" in r
        if verdict == "ok":
            check(not errors and accepted, f"{label}: both accept", errors, r)
        elif verdict == "bad":
            check(errors and not accepted, f"{label}: both refuse", errors, r)
            check(r["error"]["code"] in (dh.BAD_DEFINITION, dh.INVALID_PARAMS),
                  f"{label}: a definition error", r)
        else:
            check(not errors and not accepted,
                  f"{label}: the schema accepts, lockstepd refuses", errors, r)
        counts[verdict] += 1
        if accepted:
            stored = c.result("vm.info", name=definition["name"])["definition"]
            check(not dh.schema_errors(stored), f"{label}: what lockstepd stores satisfies "
                  "the schema", stored, dh.schema_errors(stored))
            c.result("vm.undefine", name=definition["name"])
    ok(f"schema and lockstepd agree: {counts['ok']} accepted by both, {counts['bad']} refused "
       f"by both, {counts['daemon']} refused by lockstepd alone, by a rule the schema names")


def main():
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        examples()
        agreement(env)


if __name__ == "__main__":
    main()
