#!/usr/bin/env python3
"""The test bed's real-SVM KVM: inside an L1 booted with -cpu max, kvm_amd gives /dev/kvm
with SVM and nested paging, and lockstep-vm (this build's, run from the host's root) runs
guest programs on it with 1, 2 and 4 vCPUs.  Also records the facts of this bed that the
host check is to report (CPUID flags, kvm_amd's parameters, KVM's API version and a
capability, cgroup2 controllers, transparent huge pages, the clocksource).

usage: bed_svm_kvm.py BUILD_DIR BIN_DIR GUEST_DIR [q35|microvm]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed  # noqa: E402
import lockstep_test as lt  # noqa: E402

# KVM_GET_API_VERSION = _IO(KVMIO, 0x00); KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03)
SCRIPT = r"""
echo "cpus=$(grep -c '^processor' /proc/cpuinfo)"
for f in svm npt x2apic pausefilter pfthreshold avic; do
	echo "flag_$f=$(grep -cw "$f" /proc/cpuinfo)"
done
[ -c /dev/kvm ] && echo "kvm_dev=1"
for p in /sys/module/kvm_amd/parameters/* /sys/module/kvm/parameters/halt_poll_ns; do
	echo "param_${p##*/}=$(cat "$p")"
done
python3 - <<'EOF'
import fcntl, os
fd = os.open("/dev/kvm", os.O_RDWR)
print("kvm_api=%d" % fcntl.ioctl(fd, 0xAE00, 0))
print("kvm_cap_disable_exits=%d" % fcntl.ioctl(fd, 0xAE03, 143))
EOF
echo "cgroup_controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"
echo "thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled)"
echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
dmesg >"$BED_OUT/dmesg"
for n in 1 2 4; do
	"$BIN/lockstep-vm" --kernel "$GUEST/hello.elf" --vcpus $n --console --timeout 120 \
		>"$BED_OUT/hello.$n" 2>&1
	echo "hello_$n=$?"
done
"$BIN/lockstep-vm" --kernel "$GUEST/idle.elf" --cmdline crash_after_ms=50 --timeout 120 \
	>"$BED_OUT/crash.1" 2>&1
echo "crash_1=$?"
for p in smp-counter ipi; do
	"$BIN/lockstep-vm" --kernel "$GUEST/$p.elf" --vcpus 2 --console --timeout 120 --stats \
		>"$BED_OUT/$p.2" 2>&1
	echo "$(echo $p | tr - _)_2=$?"
done
"""


def facts(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[4:] not in ([], ["q35"], ["microvm"]):
        print(__doc__)
        return 2
    build_dir, bin_dir, guest_dir = sys.argv[1:4]
    machine = sys.argv[4] if len(sys.argv) == 5 else "q35"
    with bed.for_test(build_dir, machine=machine, edu=False, smp=2, mem_mib=1024,
                      env={"BIN": os.path.abspath(bin_dir),
                           "GUEST": os.path.abspath(guest_dir)}) as b:
        r = b.run(SCRIPT, timeout=300)
        out = {name: b.read(name) for name in
               ("dmesg", "hello.1", "hello.2", "hello.4", "smp-counter.2", "ipi.2",
                "crash.1")}
    print(r.stdout, end="")
    f = facts(r.stdout)
    if r.status != 0:
        lt.fail(f"the script failed: {r}")

    def check(cond, what, *more):
        if not cond:
            lt.fail(what, "\n".join(more) or str(r))

    cpus = int(f.get("cpus", 0))
    check(cpus == 2, f"L1 has {cpus} CPUs, expected 2")
    check(f.get("flag_svm") == "2", "L1's CPUs do not all have svm (-cpu max)")
    check(f.get("flag_npt") == "2", "L1's CPUs do not all have npt")
    check(f.get("kvm_dev") == "1", "no /dev/kvm in L1 (kvm_amd not loaded?)")
    check(f.get("param_npt") in ("Y", "1"), f"kvm_amd npt={f.get('param_npt')}")
    check(f.get("param_nested") in ("Y", "1"), f"kvm_amd nested={f.get('param_nested')}")
    for p in ("avic", "pause_filter_count", "pause_filter_thresh", "halt_poll_ns"):
        check(f.get(f"param_{p}", "") != "", f"kvm parameter {p} not readable")
    # TCG's SVM has no pause filter (CPUID 0x8000000A EDX), so kvm_amd turns it off: this
    # bed can never produce pause-loop exits
    check(f.get("flag_pausefilter") == "0", "TCG now offers a pause filter: update the docs")
    check(f.get("param_pause_filter_count") == "0",
          f"pause_filter_count={f.get('param_pause_filter_count')} without a pause filter")
    controllers = f.get("cgroup_controllers", "").split()
    check("cpu" in controllers and "cpuset" in controllers,
          f"cgroup2 in L1 lacks cpu or cpuset: {controllers}")
    check(f.get("kvm_api") == "12", f"KVM_GET_API_VERSION={f.get('kvm_api')}")
    check(int(f.get("kvm_cap_disable_exits", "0")) != 0, "KVM_CAP_X86_DISABLE_EXITS is 0")
    check("SVM: kvm: Nested Paging enabled" in out["dmesg"] or
          "Nested Paging enabled" in out["dmesg"], "dmesg lacks 'Nested Paging enabled'",
          out["dmesg"])
    for name, text in out.items():
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(mark not in text, f"sanitizer report in {name}", text)
    for n in (1, 2, 4):
        text = out[f"hello.{n}"]
        check(f.get(f"hello_{n}") == "0", f"hello with {n} vCPUs exited {f.get(f'hello_{n}')}",
              text)
        res = lt.results(text)
        check(res and res[-1].get("cpus") == str(n) and res[-1].get("reported") == str(n)
              and res[-1].get("ok") == "1", f"hello with {n} vCPUs: result {res}", text)
    # A triple fault: AMD's KVM re-initialises the vCPU before lockstep-vm sees the exit, and
    # lockstep-vm says the registers it shows are that reset state.
    text = out["crash.1"]
    check(f.get("crash_1") == "80" and "vCPU 0: triple fault at rip=0xfff0" in text and
          "the state after INIT" in text, f"idle crash_after_ms exited {f.get('crash_1')}",
          text)
    text = out["smp-counter.2"]
    res = lt.results(text)
    check(f.get("smp_counter_2") == "0" and res and res[-1].get("ok") == "1"
          and res[-1].get("total") == res[-1].get("expected"),
          f"smp-counter on 2 vCPUs: status {f.get('smp_counter_2')}, result {res}", text)
    text = out["ipi.2"]
    res = lt.results(text)
    check(f.get("ipi_2") == "0" and res and res[-1].get("ok") == "1"
          and res[-1].get("sent") == res[-1].get("delivered"),
          f"ipi on 2 vCPUs: status {f.get('ipi_2')}, result {res}", text)
    # As root lockstep-vm runs confined (docs/security.md); L1 has cgroup v2, unlike the host.
    for name in ("smp-counter.2", "ipi.2"):
        check("own pid/mnt/net/ipc namespaces, empty root, cgroup v2 /sys/fs/cgroup/lockstep/"
              in out[name], f"{name}: not confined in a cgroup v2", out[name])
    print(f"PASS: lockstep-vm ran hello (1, 2, 4 vCPUs), smp-counter and ipi, confined in a "
          f"cgroup v2, on the real-SVM KVM of a {machine} L1 (script {r.seconds:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
