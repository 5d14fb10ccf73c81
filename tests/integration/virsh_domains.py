#!/usr/bin/env python3
"""Domain definitions and information through the real virsh and lockstepd's libvirt endpoint.

usage: virsh_domains.py BIN_DIR GUEST_DIR

define (domain XML with cputune and lockstep metadata), list with every filter, dominfo,
domstate --reason, domid/domname/domuuid, dumpxml [--inactive] (checked with
virt-xml-validate, and defined again to the same definition), vcpuinfo/vcpupin/vcpucount of
shut-off and running domains (the live pin checked against the vCPU thread's affinity),
domcontrol, undefine (of a running domain too), and XML that must be refused with the reason
while nothing is defined.
"""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import virsh_env as ve  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

HOST_CPUS = os.cpu_count()
UUID = "0e1a8f52-3c4d-4b6e-9f70-123456789abc"
META = ("<lockstep:sched policy='relaxed' quantum_us='4000' skew_us='1500'/>"
        "<lockstep:pvlock enabled='no' kvm_features='pv_unhalt,steal_time' pause_exits='on'/>"
        "<lockstep:irq steering='no'/>"
        "<lockstep:testdev type='testdev' slot='4'/><lockstep:testdev type='pc-testdev'/>")


def validate(env, text, kind="domain"):
    if not shutil.which("virt-xml-validate"):
        return
    path = env.write(f"validate-{kind}.xml", text)
    p = subprocess.run(["virt-xml-validate", path, kind], capture_output=True, text=True)
    check(p.returncode == 0, f"virt-xml-validate {kind} rejects our XML", p.stdout, p.stderr,
          text)


def names(env, d, *flags):
    return sorted(env.ok(d, "list", "--name", *flags).split())


def definitions(env, d):
    pinned = "<cputune><vcpupin vcpu='1' cpuset='0'/></cputune>"
    console = os.path.join(env.files, "demo.console")
    env.define(d, "demo", vcpus=2, uuid=UUID, cmdline="heartbeat_ms=100", extra=pinned
               + "<on_crash>preserve</on_crash>", metadata=META,
               devices=f"<serial type='file'><source path='{console}'/></serial>")
    rows = ve.table(env.ok(d, "list", "--all"))
    check(rows == [["-", "demo", "shut", "off"]], "list --all", rows)
    check(ve.table(env.ok(d, "list")) == [], "list shows active domains only")
    info = ve.fields(env.ok(d, "dominfo", "demo"))
    want = {"Id": "-", "Name": "demo", "UUID": UUID, "OS Type": "hvm", "State": "shut off",
            "CPU(s)": "2", "Max memory": "16384 KiB", "Used memory": "16384 KiB",
            "Persistent": "yes", "Autostart": "disable", "Managed save": "no"}
    check(all(info.get(k) == v for k, v in want.items()), "dominfo", info)
    check(ve.fields(env.ok(d, "dominfo", UUID))["Name"] == "demo", "dominfo by uuid")
    check(env.ok(d, "domstate", "demo", "--reason").strip() == "shut off (unknown)",
          "domstate --reason of a domain never started")
    check(env.ok(d, "domuuid", "demo").strip() == UUID, "domuuid")
    check(env.ok(d, "domid", "demo").strip() == "-", "domid of an inactive domain")
    check(env.ok(d, "domcontrol", "demo").strip() == "ok", "domcontrol")
    ok("define, list, dominfo (name and uuid), domstate --reason, domuuid, domid, domcontrol")

    # Files only beneath the directories lockstepd allows (docs/security.md).
    for what, xml in (("serial.log", env.xml("shadow", devices="<serial type='file'><source "
                                                            "path='/etc/shadow'/></serial>")),
                      ("kernel", env.xml("shadow").replace(env.guest("idle"), "/etc/shadow"))):
        err = env.fails(d, "define", env.write("shadow.xml", xml), want="operation forbidden")
        check(f'"{what}": "/etc/shadow" is not beneath a directory lockstepd allows' in err,
              f"define with {what} /etc/shadow names the rule", err)
    check(names(env, d, "--all") == ["demo"], "nothing else was defined")
    ok("define: a serial file or kernel outside the allowed directories is refused")

    text = env.ok(d, "dumpxml", "demo")
    check(env.ok(d, "dumpxml", "demo", ro=True) == text, "virsh -r dumpxml")
    env.fails(d, "dumpxml", "--security-info", "demo", ro=True,
              want="read only access prevents DOMAIN_GET_XML_DESC for secured data")
    check(env.ok(d, "dumpxml", "--security-info", "demo") == text,
          "dumpxml --security-info on the read-write socket")
    root = ET.fromstring(text)
    ns = {"l": ve.NAMESPACE}
    check(root.get("type") == "kvm" and root.get("id") is None, "domain type/id", text)
    check(root.findtext("name") == "demo" and root.findtext("uuid") == UUID, "name/uuid")
    check(root.find("memory").text == "16384" and root.find("memory").get("unit") == "KiB",
          "memory in KiB", text)
    check(root.findtext("vcpu") == "2", "vcpu", text)
    pin = root.find("cputune/vcpupin")
    check(pin is not None and (pin.get("vcpu"), pin.get("cpuset")) == ("1", "0"), "vcpupin")
    check(root.findtext("os/kernel") == env.guest("idle") and
          root.findtext("os/cmdline") == "heartbeat_ms=100", "os", text)
    check(root.findtext("on_crash") == "preserve", "on_crash", text)
    check(root.find("devices/serial/source").get("path") == console, "serial file", text)
    sched = root.find("metadata/l:vm/l:sched", ns)
    pv = root.find("metadata/l:vm/l:pvlock", ns)
    irq = root.find("metadata/l:vm/l:irq", ns)
    check(sched is not None and sched.attrib == {"policy": "relaxed", "quantum_us": "4000",
                                                 "skew_us": "1500"}, "sched metadata", text)
    check(pv is not None and pv.attrib == {"enabled": "no", "kvm_features":
                                           "steal_time,pv_unhalt", "pause_exits": "on"},
          "pvlock metadata", text)
    check(irq is not None and irq.get("steering") == "no", "irq metadata", text)
    devs = [t.attrib for t in root.findall("metadata/l:vm/l:testdev", ns)]
    check(devs == [{"type": "testdev", "slot": "4"}, {"type": "pc-testdev"}],
          "test devices in the metadata", text)
    validate(env, text)
    check(env.ok(d, "dumpxml", "--inactive", "demo") == text, "dumpxml --inactive")
    again = env.write("demo-again.xml", text)
    env.ok(d, "define", again)
    check(env.ok(d, "dumpxml", "demo") == text, "define(dumpxml) changes nothing")
    check(d.vm("demo")["definition"]["sched"]["policy"] == "relaxed",
          "the metadata reaches lockstep's definition")
    check(d.vm("demo")["definition"]["devices"] == [{"type": "testdev", "slot": 4},
                                                   {"type": "pc-testdev"}],
          "the test devices reach lockstep's definition", d.vm("demo")["definition"])
    ok("dumpxml [--inactive]: every field, lockstep metadata, valid, round trip")

    out = env.ok(d, "vcpuinfo", "demo")
    check("CPU Affinity:   " + "y" + "-" * (HOST_CPUS - 1) in out, "vcpuinfo (shut off) shows "
          "vCPU 1's pin", out)
    check(ve.table(env.ok(d, "vcpupin", "demo")) == [["0", f"0-{HOST_CPUS - 1}"],
                                                      ["1", "0"]], "vcpupin (config)")
    env.ok(d, "vcpupin", "demo", "0", str(HOST_CPUS - 1))
    check(ve.table(env.ok(d, "vcpupin", "demo"))[0] == ["0", str(HOST_CPUS - 1)],
          "vcpupin of a shut-off domain stores the pin")
    count = env.ok(d, "vcpucount", "demo")
    check(ve.table(count) == [["maximum", "config", "2"], ["current", "config", "2"]],
          "vcpucount (shut off)", count)
    ok("vcpuinfo, vcpupin, vcpucount of a shut-off domain")


def running(env, d):
    env.ok(d, "start", "demo")
    info = ve.fields(env.ok(d, "dominfo", "demo"))
    check(info["State"] == "running" and info["Id"] != "-", "dominfo running", info)
    dom_id = info["Id"]
    check(env.ok(d, "domid", "demo").strip() == dom_id, "domid")
    check(env.ok(d, "domname", dom_id).strip() == "demo", "domname ID")
    check(env.ok(d, "domstate", "demo", "--reason").strip() == "running (booted)", "domstate")
    out = env.ok(d, "vcpuinfo", "demo")
    blocks = [ve.fields(b) for b in out.strip().split("\n\n")]
    check(len(blocks) == 2 and [b["VCPU"] for b in blocks] == ["0", "1"], "vcpuinfo", out)
    check(all(b["State"] in ("running", "blocked") and b["CPU"].isdigit() for b in blocks),
          "vcpuinfo states and CPUs", out)
    check(blocks[1]["CPU Affinity"] == "y" + "-" * (HOST_CPUS - 1), "vCPU 1 pinned live",
          out)

    vm = d.vm("demo")
    tid = vm["vcpu"][0]["tid"]
    env.ok(d, "vcpupin", "demo", "0", "0", "--live")
    check(dh.status_field(vm["pid"], "Cpus_allowed_list", tid) == "0",
          "vcpupin --live changes the vCPU thread's affinity")
    check(ve.table(env.ok(d, "vcpupin", "demo", "--live"))[0] == ["0", "0"], "vcpupin --live")
    check(ve.table(env.ok(d, "vcpupin", "demo", "--config"))[0] == ["0", str(HOST_CPUS - 1)],
          "the config pin is untouched by --live")
    env.ok(d, "vcpupin", "demo", "1", f"0-{HOST_CPUS - 1}")
    check(dh.status_field(vm["pid"], "Cpus_allowed_list", vm["vcpu"][1]["tid"]) ==
          f"0-{HOST_CPUS - 1}", "vcpupin (current) pins the running vCPU")
    env.fails(d, "vcpupin", "demo", "5", "0", want="has 2 vCPUs")
    count = ve.table(env.ok(d, "vcpucount", "demo"))
    check(["current", "live", "2"] in count and ["maximum", "live", "2"] in count,
          "vcpucount live", count)
    check(env.ok(d, "domcontrol", "demo").strip() == "ok", "domcontrol running")

    text = env.ok(d, "dumpxml", "demo")
    root = ET.fromstring(text)
    check(root.get("id") == dom_id, "live XML has the id", text)
    check(root.findtext("devices/emulator") == env.vm_binary, "live XML names the emulator")
    validate(env, text)
    check(ET.fromstring(env.ok(d, "dumpxml", "--inactive", "demo")).get("id") is None,
          "dumpxml --inactive of a running domain")
    ok("running: dominfo, domid/domname, domstate, vcpuinfo, vcpupin --live/--config, "
       "vcpucount, domcontrol, live dumpxml")


def filters(env, d):
    env.define(d, "auto")
    env.ok(d, "autostart", "auto")
    env.ok(d, "create", env.write("temp.xml", env.xml("temp")))
    want = {
        ("--all",): ["auto", "demo", "temp"],
        (): ["demo", "temp"],
        ("--inactive",): ["auto"],
        ("--all", "--persistent"): ["auto", "demo"],
        ("--all", "--transient"): ["temp"],
        ("--all", "--autostart"): ["auto"],
        ("--all", "--no-autostart"): ["demo", "temp"],
        ("--all", "--state-running"): ["demo", "temp"],
        ("--all", "--state-shutoff"): ["auto"],
        ("--all", "--state-paused"): [],
        ("--all", "--state-other"): [],
        ("--all", "--with-snapshot"): [],
        ("--all", "--without-snapshot"): ["auto", "demo", "temp"],
        ("--all", "--with-managed-save"): [],
        ("--all", "--without-managed-save"): ["auto", "demo", "temp"],
        ("--all", "--persistent", "--state-running"): ["demo"],
    }
    for flags, names_wanted in want.items():
        check(names(env, d, *flags) == names_wanted, f"list --name {' '.join(flags)}",
              names(env, d, *flags))
    uuids = env.ok(d, "list", "--all", "--uuid").split()
    check(UUID in uuids and len(uuids) == 3, "list --uuid", uuids)
    table = ve.table(env.ok(d, "list", "--all"))
    check([r[1] for r in table] == ["demo", "temp", "auto"], "running first, then by name",
          table)
    ok("list: every filter (active, persistent, state, autostart, snapshot, managed save)")


def undefine(env, d):
    env.ok(d, "undefine", "auto")
    check("auto" not in names(env, d, "--all"), "undefine")
    out = env.ok(d, "undefine", "demo")
    check("demo" in names(env, d, "--all", "--transient"),
          "an undefined running domain is transient until it stops", out)
    check(ve.fields(env.ok(d, "dominfo", "demo"))["Persistent"] == "no", "Persistent: no")
    env.fails(d, "undefine", "temp", want="transient")
    env.ok(d, "destroy", "demo")
    env.ok(d, "destroy", "temp")
    check(names(env, d, "--all") == [], "both transient domains went when they stopped")
    env.fails(d, "dominfo", "demo", want="failed to get domain 'demo'")
    ok("undefine (shut off; running: transient until destroyed)")


BAD = [
    ("<domain type='kvm'><name>x</name>", "XML error: line"),
    ("<domain type='qemu'><name>bad</name></domain>", "lockstep has only 'kvm'"),
    ("<domain type='kvm'><name>-bad</name></domain>", "a lockstep name is"),
    (None, "<devices><disk> is not supported"),
    ("<domain type='kvm'><name>bad</name><memory unit='KiB'>1500</memory><vcpu>1</vcpu>"
     "<os><type>hvm</type><kernel>/k</kernel></os></domain>", "whole number of MiB"),
    ("<domain type='kvm'><name>bad</name><vcpu>1</vcpu><os><type>hvm</type><kernel>/k</kernel>"
     "<loader>/ovmf</loader></os></domain>", "<os><loader> is not supported"),
    ("<domain type='kvm'><name>bad</name><vcpu>300</vcpu></domain>", "from 1 to 254"),
    ("<domain type='kvm'><name>bad</name><vcpu>1</vcpu></domain>", "needs a \"kernel\""),
    ("<!DOCTYPE d [<!ENTITY a 'aaaa'>]><domain type='kvm'><name>&a;</name></domain>",
     "DOCTYPE"),
    (None, "unknown element <lockstep:sched2>"),
    (None, "<lockstep:testdev type='virtio'>: testdev, pci-testdev or pc-testdev"),
    (None, "<cputune><emulatorpin> is not supported"),
    (None, "names a vCPU the VM does not have"),
]


def linux_boot(env, d):
    """<os><initrd> both ways; a multiboot kernel refuses it at start, saying why."""
    initrd = os.path.join(env.images, "initrd.cpio")  # beneath what the daemon allows
    with open(initrd, "w") as f:
        f.write("070701")
    os.chmod(initrd, 0o644)
    env.define(d, "lnx", cmdline="console=ttyS0 quiet", initrd=initrd)
    text = env.ok(d, "dumpxml", "lnx")
    root = ET.fromstring(text)
    check([c.tag for c in root.find("os")] == ["type", "kernel", "initrd", "cmdline"] and
          root.findtext("os/initrd") == initrd, "<os> with <initrd>", text)
    check(d.vm("lnx")["definition"]["initrd"] == initrd, "the initrd reaches the definition")
    validate(env, text)
    env.ok(d, "define", env.write("lnx-again.xml", text))
    check(env.ok(d, "dumpxml", "lnx") == text, "define(dumpxml) with an initrd changes nothing")
    err = env.fails(d, "start", "lnx")
    check("multiboot image and takes no initrd" in err, "start says why", err)
    env.ok(d, "undefine", "lnx")
    ok("<os><initrd>: define, dumpxml, round trip; refused at start for a multiboot kernel")


def bad_xml(env, d):
    env.define(d, "keep")
    before = env.ok(d, "dumpxml", "keep")
    kernel = env.guest("idle")
    generated = [
        env.xml("bad", devices="<disk type='file'/>"),
        env.xml("bad", metadata="<lockstep:sched2/>"),
        env.xml("bad", metadata="<lockstep:testdev type='virtio'/>"),
        env.xml("bad", extra="<cputune><emulatorpin cpuset='0'/></cputune>"),
        env.xml("keep", extra="<cputune><vcpupin vcpu='7' cpuset='0'/></cputune>"),
    ]
    for i, (text, reason) in enumerate(BAD):
        text = text or generated.pop(0)
        err = env.fails(d, "define", env.write(f"bad{i}.xml", text), want="XML error")
        check(reason in err, f"bad XML #{i}: the reason", err, reason)
        check(names(env, d, "--all") == ["keep"], f"bad XML #{i} defined nothing")
    check(env.ok(d, "dumpxml", "keep") == before, "a refused redefinition changed nothing")
    err = env.fails(d, "create", env.write("badc.xml", env.xml("bad", vcpus=0)),
                    want="XML error")
    check(names(env, d, "--all") == ["keep"], "bad create defined nothing", err)
    schema_bad = ve.domain_xml("valid", kernel).replace("<name>", "<name foo='1'>")
    env.fails(d, "define", "--validate", env.write("schema.xml", schema_bad),
              want="failed to validate against schema")
    check(names(env, d, "--all") == ["keep"], "--validate refused and defined nothing")
    env.ok(d, "define", "--validate", env.write("valid.xml", ve.domain_xml("valid", kernel)))
    env.ok(d, "undefine", "valid")
    env.ok(d, "undefine", "keep")
    ok(f"{len(BAD) + 2} kinds of bad XML refused with the reason, nothing defined; "
       "define --validate")


def main():
    with ve.VirshEnv(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        definitions(env, d)
        running(env, d)
        filters(env, d)
        undefine(env, d)
        linux_boot(env, d)
        bad_xml(env, d)


if __name__ == "__main__":
    main()
