#!/usr/bin/env python3
"""On a PVM KVM (this development machine's kvm_pvm: guest ring 0 is emulated an instruction
at a time) a Linux kernel cannot boot: lockstep refuses it at once, saying why, instead of a
guest that hangs for minutes.  lockstep-vm exits 69 (KVM unusable) with the reason;
lockstepd's vm.start fails with the worker's own words.  Skips (77) on other KVMs, where
Linux boots (bed/linux tests that).

usage: linux_on_pvm.py BIN_DIR GUEST_DIR
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import daemon_harness as dh  # noqa: E402
import lockstep_test as lt  # noqa: E402

REASON = "this host's KVM is PVM (kvm_pvm)"


def main():
    if not os.path.exists("/sys/module/kvm_pvm"):
        lt.skip("this host's KVM is not PVM: Linux guests boot here")
    with dh.Env(sys.argv[1], sys.argv[2]) as env:
        kernel = os.path.join(env.images, "vmlinuz")  # beneath what the daemon allows
        with open(kernel, "wb") as f:
            f.write(lt.bzimage())
        os.chmod(kernel, 0o644)
        t0 = time.monotonic()
        status, out, err = lt.run([env.vm_binary, "--kernel", kernel, "--memory", "64",
                                   "--timeout", "60"], timeout=90)
        dh.check(status == 69 and REASON in err and "Linux cannot boot on it" in err,
                 "lockstep-vm refuses a Linux kernel on PVM with exit status 69", status, err)
        dh.ok(f"lockstep-vm: refused in {time.monotonic() - t0:.1f}s, status 69: "
              f"{err.strip().splitlines()[-1][:120]}")

        d = env.daemon()
        c = d.client(timeout=60)
        c.result("vm.define", definition=env.definition("lx", kernel=kernel, memory="64M"))
        t0 = time.monotonic()
        e = c.error("vm.start", {"name": "lx"}, dh.BAD_STATE)
        dh.check(REASON in e["message"] and "exit status 69" in e["message"],
                 "vm.start says why", e)
        info = c.result("vm.info", name="lx")
        dh.check(info["state"] == "failed" and info["last_status"] == 69,
                 "the VM does not run; its worker's status is 69", info)
        dh.ok(f"lockstepd: vm.start refused in {time.monotonic() - t0:.1f}s: "
              f"{e['message'][:160]}")


if __name__ == "__main__":
    main()
