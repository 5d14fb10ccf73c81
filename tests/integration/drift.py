#!/usr/bin/env python3
"""The two front ends agree: every rule of lockstepd's operations (daemon/ops.h), driven
through JSON-RPC and through the real virsh, on one real daemon.

usage: drift.py BIN_DIR GUEST_DIR

For each case the same request goes in through both front ends; both must refuse it with the
same message (the rule's, from daemon/ops.c), each with the code its one table gives for the
rule's errno (JSON-RPC code <-> the libvirt error's prefix as virsh prints it), and a refused
request must change nothing.  Cases where the two protocols are meant to differ (libvirt makes
a running domain transient on undefine; JSON-RPC refuses) are checked as documented.  A rule
virsh checks itself before it calls (start of a running domain, a host CPU beyond the map) is
checked for the refusal only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import virsh_env as ve  # noqa: E402
from daemon_harness import check, ok  # noqa: E402

# errno of the rule -> (JSON-RPC code, the libvirt error's prefix): api_code_from_errno and
# api_virt_error_from_errno, as the wire shows them.
ERRNO = {
    "ENOENT": (dh.NO_SUCH_VM, "Domain not found"),
    "EEXIST": (dh.VM_EXISTS, "operation failed"),
    "EBUSY": (dh.BAD_STATE, "Requested operation is not valid"),
    "EINVAL": (dh.BAD_DEFINITION, "unsupported configuration"),
    "E2BIG": (dh.BAD_DEFINITION, "unsupported configuration"),
    "ERANGE": (dh.INVALID_PARAMS, "invalid argument"),
    "EUSERS": (dh.LIMIT, "operation failed"),
    "EPERM": (dh.PERMISSION, "operation forbidden"),
}
NCPU = os.cpu_count()
UUID_A = "6f1c3a52-0000-4000-8000-00000000000a"
UUID_B = "6f1c3a52-0000-4000-8000-00000000000b"


class Drift:
    def __init__(self, env, d):
        self.env, self.d = env, d
        self.c = d.client()
        self.cases = []

    def names(self):
        rpc = sorted(v["name"] for v in self.c.result("vm.list"))
        out = self.env.ok(self.d, "list", "--all", "--name")
        check(sorted(n for n in out.split() if n) == rpc, "both front ends list the same VMs",
              rpc, out)
        return rpc

    def virsh_error(self, *args):
        err = self.env.fails(self.d, *args)
        lines = [ln[len("error: "):] for ln in err.splitlines() if ln.startswith("error: ")]
        check(lines, f"virsh {' '.join(args)}: an error line", err)
        return lines[-1]

    def agree(self, what, errno, method, params, virsh_args, same_message=True):
        """Both refuse: the JSON-RPC code and the libvirt prefix of `errno`, one message."""
        code, prefix = ERRNO[errno]
        before = self.names()
        e = self.c.error(method, params, code)
        line = self.virsh_error(*virsh_args)
        check(line.startswith(prefix + ": "), f"{what}: virsh says {prefix!r}", line, e)
        if same_message:
            check(line[len(prefix) + 2:] == e["message"], f"{what}: one message for both",
                  line, e["message"])
        check(self.names() == before, f"{what}: refused, so nothing changed", before)
        self.cases.append(what)
        return e["message"]

    def refused(self, what, code, method, params, virsh_args, want):
        """Both refuse; virsh checks this one itself before it calls lockstepd."""
        before = self.names()
        self.c.error(method, params, code)
        self.env.fails(self.d, *virsh_args, want=want)
        check(self.names() == before, f"{what}: refused, so nothing changed", before)
        self.cases.append(what + " (virsh refuses it itself)")


def definitions(dr):
    env, d = dr.env, dr.d
    wide = NCPU + 1
    gang = "<lockstep:sched policy='gang'/>"
    msg = dr.agree("gang wider than the host", "E2BIG", "vm.define",
                   {"definition": env.definition("wide", vcpus=wide, sched={"policy": "gang"})},
                   ["define", env.write("wide.xml", env.xml("wide", vcpus=wide, metadata=gang))])
    check("\"relaxed\"" in msg and "\"adaptive\"" in msg, "the alternatives are named", msg)
    dr.agree("virsh create of a gang VM wider than the host", "E2BIG", "vm.define",
             {"definition": env.definition("wide", vcpus=wide, sched={"policy": "gang"})},
             ["create", env.path("wide.xml")])

    far = f"{NCPU + 64}"
    xml = env.xml("nocpu").replace("<vcpu>2</vcpu>", f"<vcpu cpuset='{far}'>2</vcpu>")
    dr.agree("CPUs the host does not have", "EINVAL", "vm.define",
             {"definition": env.definition("nocpu", sched={"cpus": far})},
             ["define", env.write("nocpu.xml", xml)])

    rel = env.xml("rel").replace(f"<kernel>{env.guest('idle')}</kernel>",
                                 "<kernel>guest/idle.elf</kernel>")
    dr.agree("a relative kernel path", "EINVAL", "vm.define",
             {"definition": dict(env.definition("rel"), kernel="guest/idle.elf")},
             ["define", env.write("rel.xml", rel)])
    rel = env.xml("rel").replace(f"<kernel>{env.guest('idle')}</kernel>",
                                 f"<kernel>{env.guest('idle')}</kernel><initrd>i.img</initrd>")
    dr.agree("a relative initrd path", "EINVAL", "vm.define",
             {"definition": dict(env.definition("rel"), initrd="i.img")},
             ["define", env.write("reli.xml", rel)])
    rel = env.xml("rel", devices="<serial type='file'><source path='rel.log'/></serial>")
    dr.agree("a relative serial log", "EINVAL", "vm.define",
             {"definition": env.definition("rel", serial={"log": "rel.log"})},
             ["define", env.write("rels.xml", rel)])

    # Files only beneath the directories lockstepd allows (docs/security.md).
    shadow = env.xml("shadow", devices="<serial type='file'><source path='/etc/shadow'/></serial>")
    dr.agree("a serial log outside the allowed directories", "EPERM", "vm.define",
             {"definition": env.definition("shadow", serial={"log": "/etc/shadow"})},
             ["define", env.write("shadow.xml", shadow)])
    shadow = env.xml("shadow").replace(f"<kernel>{env.guest('idle')}</kernel>",
                                       "<kernel>/etc/shadow</kernel>")
    dr.agree("a kernel outside the allowed directories", "EPERM", "vm.define",
             {"definition": dict(env.definition("shadow"), kernel="/etc/shadow")},
             ["define", env.write("shadow-k.xml", shadow)])
    shadow = env.xml("shadow").replace(f"<kernel>{env.guest('idle')}</kernel>",
                                       f"<kernel>{env.guest('idle')}</kernel>"
                                       "<initrd>/etc/shadow</initrd>")
    dr.agree("an initrd outside the allowed directories", "EPERM", "vm.define",
             {"definition": dict(env.definition("shadow"), initrd="/etc/shadow")},
             ["define", env.write("shadow-i.xml", shadow)])

    dr.c.result("vm.define", definition=env.definition("a", uuid=UUID_A))
    dr.agree("a redefinition with another uuid", "EEXIST", "vm.define",
             {"definition": env.definition("a", uuid=UUID_B)},
             ["define", env.write("a-b.xml", env.xml("a", uuid=UUID_B))])
    dr.agree("a new name with a uuid that is taken", "EEXIST", "vm.define",
             {"definition": env.definition("b", uuid=UUID_A)},
             ["define", env.write("b-a.xml", env.xml("b", uuid=UUID_A))])
    dr.agree("virsh create of a name that exists", "EEXIST", "vm.define",
             {"definition": env.definition("b", uuid=UUID_A)},
             ["create", env.write("a-new.xml", env.xml("a"))], same_message=False)
    ok("definitions: width, host CPUs, paths, names and uuids refused alike")


def states(dr):
    env, d, c = dr.env, dr.d, dr.c
    for name, op, virsh in (("shutdown", "vm.shutdown", "shutdown"),
                            ("destroy", "vm.destroy", "destroy")):
        dr.agree(f"{name} of a shut-off VM", "EBUSY", op, {"name": "a"}, [virsh, "a"])
    for name, op, virsh in (("info", "vm.info", "dominfo"), ("start", "vm.start", "start"),
                            ("undefine", "vm.undefine", "undefine")):
        dr.refused(f"{name} of a VM that does not exist", dh.NO_SUCH_VM, op, {"name": "ghost"},
                   [virsh, "ghost"], want="failed to get domain 'ghost'")

    c.result("vm.start", name="a")
    dr.refused("start of a running VM", dh.BAD_STATE, "vm.start", {"name": "a"},
               ["start", "a"], want="already active")
    c.error("vm.undefine", {"name": "a"}, dh.BAD_STATE,
            "VM a is running: destroy or shut it down first")
    env.ok(d, "undefine", "a")
    check(ve.fields(env.ok(d, "dominfo", "a"))["Persistent"] == "no" and
          c.result("vm.info", name="a")["state"] == "running",
          "libvirt's undefine of a running VM makes it transient (JSON-RPC refuses it)")
    dr.cases.append("undefine of a running VM (documented to differ)")
    dr.agree("undefine of a transient VM", "EBUSY", "vm.undefine", {"name": "a"},
             ["undefine", "a"])
    c.result("vm.destroy", name="a")
    check("a" not in dr.names(), "a transient VM goes when it stops")
    ok("states: stopped, missing, running and transient VMs refused alike")


def pins(dr):
    env, d, c = dr.env, dr.d, dr.c
    c.result("vm.define", definition=env.definition("p"))
    dr.agree("a pin of a vCPU the VM does not have", "ERANGE", "vcpu.pin",
             {"name": "p", "vcpu": 5, "cpus": "0"}, ["vcpupin", "p", "5", "0"])
    c.result("vm.start", name="p")
    dr.agree("a live pin of a vCPU the VM does not have", "ERANGE", "vcpu.pin",
             {"name": "p", "vcpu": 2, "cpus": "0"}, ["vcpupin", "p", "2", "0"])
    dr.refused("a pin to a host CPU that does not exist", dh.INVALID_PARAMS, "vcpu.pin",
               {"name": "p", "vcpu": 0, "cpus": str(NCPU + 3)},
               ["vcpupin", "p", "0", str(NCPU + 3)], want=str(NCPU + 3))
    c.result("vm.destroy", name="p")
    ok("pins: vCPUs and host CPUs that do not exist refused alike")


def limits(env):
    d = env.daemon("--max-vms", "2")
    dr = Drift(env, d)
    dr.c.result("vm.define", definition=env.definition("one"))
    dr.c.result("vm.define", definition=env.definition("two"))
    dr.agree("--max-vms", "EUSERS", "vm.define", {"definition": env.definition("three")},
             ["define", env.write("three.xml", env.xml("three"))])
    ok("--max-vms 2: the third definition refused alike")
    return dr.cases


def main():
    with ve.VirshEnv(sys.argv[1], sys.argv[2]) as env:
        d = env.daemon()
        dr = Drift(env, d)
        definitions(dr)
        states(dr)
        pins(dr)
        cases = dr.cases + limits(env)
        ok(f"{len(cases)} cases through both front ends:\n       " + "\n       ".join(cases))


if __name__ == "__main__":
    main()
