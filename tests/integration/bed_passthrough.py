#!/usr/bin/env python3
"""PCI passthrough in the nested test bed (docs/testbed.md, docs/passthrough.md): QEMU's edu
device behind an emulated VT-d (intel) or AMD-Vi (amd) IOMMU in L1, which runs this build.

(a) lockstep's iommu/ (build/tests/bed_iommu_probe, linked with it): the back end chosen (type1;
    Debian's 6.1 has no iommufd, which is probed and refused with the reason), edu's group
    and BAR 0, a DMA round trip through IOVAs that are not the buffers' physical addresses,
    DMA to an unmapped IOVA, into a read-only mapping and after an unmap blocked, the faults
    the kernel logged (VT-d logs them; QEMU 7.2's amd-iommu does not), edu's MSI to an
    eventfd through VFIO_DEVICE_SET_IRQS.
(b) full passthrough: lockstepd and lockstep-vm in L1 give edu (managed: bound to vfio-pci at
    start, given back to its driver, pci-stub, at stop) to the passthru guest program, which
    finds it on its PCI bus, uses INTx, copies patterns into and out of its RAM with edu's DMA
    engine, takes edu's MSIs, reads the ROM it was given, and aims a DMA outside its RAM,
    which the IOMMU blocks; lockstep's DMA remapping report while it runs (VT-d, the
    mappings, interrupt remapping, the fault).  amd: the same through lockstep-vm alone.
    Every worker runs sandboxed (lockstepd's default as root; lockstep-vm by hand as root):
    checked to have run as its user, in its namespaces, empty root and cgroup, with its seccomp
    lists and RLIMIT_MEMLOCK raised by guest RAM; amd runs the guest once more with
    --no-sandbox.
(c) (intel) the refusals: a device on a host driver that is not managed, an address the host
    does not have, a device another VM holds, a group that is not viable (two edu functions
    of one slot, one of them on pci-stub), a reset the device cannot do, no vfio-pci driver;
    each leaves edu where it was and the VM shut off.  Also: domain XML's <hostdev> through
    virsh both ways, device.attach/detach on a shut-off VM (and refused on a running one),
    device.host, and the host check's iommu.faults.

With "measure" (by hand, on a quiet machine; never in ctest) it checks nothing and prints
the figures of the closing note instead, from an L1 with 4 GiB: iommu/ mapping and unmapping
64 MiB ... 2 GiB (bed_iommu_probe --sizes), edu DMA round trips and MSI latency from L1's
userspace (bed_iommu_probe --rates), and from the passthru guest in lockstep-vm with 64 MiB
... 2 GiB of RAM: the time to map all of it at start, its round trips and MSI latency.

usage: bed_passthrough.py BUILD_DIR BIN_DIR GUEST_DIR intel|amd [measure]
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bed  # noqa: E402
import lockstep_test as lt  # noqa: E402

COMMON = r"""
run=/tmp/lockstep
mkdir -p $run
# where_stuck WHAT: where lockstepd's and the workers' threads are, for a hang's log
where_stuck() {
	echo "stuck: $1" >&2
	{
		echo "==== $1"
		for p in $(pgrep -f lockstep); do
			echo "== $p $(tr '\0' ' ' </proc/$p/cmdline)"
			for t in /proc/$p/task/*; do
				echo "$t $(cat $t/comm) $(cut -d' ' -f3 $t/stat) $(cat $t/wchan)"
				head -n 8 $t/stack 2>/dev/null
			done
		done
	} >>"$BED_OUT/stuck.txt" 2>&1
	cp $run/lockstepd.log "$BED_OUT/lockstepd.log"
}
# every request bounded: a hang is recorded, not waited out
lsc() {
	timeout 120 "$BIN/lockstep" --socket $run/run/lockstepd.sock "$@"
	rc=$?
	[ $rc -eq 124 ] && where_stuck "lockstep $*"
	return $rc
}
# stop_daemon: SIGTERM, then at most 60 s; prints lockstepd=STATUS
stop_daemon() {
	kill $lockstepd
	i=0
	while kill -0 $lockstepd 2>/dev/null && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
	if kill -0 $lockstepd 2>/dev/null; then
		where_stuck "lockstepd stopping"
		kill -9 $lockstepd
	fi
	wait $lockstepd
	echo "lockstepd=$?"
	cp $run/lockstepd.log "$BED_OUT/lockstepd.log"
}
# to_driver BDF DRIVER: gives a device to a host driver ("" = none) as an administrator would
to_driver() {
	d=/sys/bus/pci/devices/$1
	echo "$2" >$d/driver_override
	[ -e $d/driver ] && echo $1 >$d/driver/unbind
	[ -n "$2" ] && echo $1 >/sys/bus/pci/drivers_probe
	echo >$d/driver_override
	return 0
}
# state NAME: the VM's state
state() { lsc --json vm info "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
wait_state() {
	i=0
	while [ "$(state $1)" != "$2" ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
	state $1
}
# lockstepd logs to L1's own /tmp, copied to the share when it stops: its loop thread writes
# the log, and a write to the 9p share can stall (a whole script and lockstepd once stopped
# together at their next writes there)
start_daemon() {
	"$BIN/lockstepd" --foreground --allow-path "$GUEST" --allow-path $run \
		--run-dir $run/run --state-dir $run/state \
		--virt-socket $run/virt.sock --vm-binary "$BIN/lockstep-vm" >>$run/lockstepd.log 2>&1 &
	lockstepd=$!
	i=0
	while [ ! -S $run/run/lockstepd.sock ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
}
"""

# (a): iommu/ alone, then edu goes to pci-stub, the host driver managed devices come from
PROBE = r"""
edu=$(bed_pci_find 1234:11e8 | head -n 1)
echo "edu=$edu"
echo "group=$(bed_vfio_bind $edu)"
"$TOOLS/bed_iommu_probe" $edu --rates 2 >"$BED_OUT/probe" 2>&1
echo "probe=$?"
to_driver $edu pci-stub
echo "driver_after_probe=$(bed_driver $edu)"
"""

# (b): the guest gets edu, managed, with a ROM file; the report while it runs
PASS = r"""
edu=$(bed_pci_find 1234:11e8 | head -n 1)
start_daemon
printf '\125\252' >$run/edu.rom
dd if=/dev/zero bs=14 count=1 2>/dev/null >>$run/edu.rom
printf 'lockstep passthrough rom' >>$run/edu.rom
cat >$run/pt.json <<DEF
{"name": "pt", "vcpus": 2, "memory": "64M", "kernel": "$GUEST/passthru.elf",
 "cmdline": "rounds=4 msi=32 outside=0x6000000 rom=1 hold=1",
 "devices": [{"type": "vfio-pci", "host": "$edu", "managed": true,
              "rom": {"file": "$run/edu.rom"}}]}
DEF
lsc vm define $run/pt.json
# The kernel logs IOMMU faults rate-limited (10 lines per 5 s): let the probe's faults of step
# (a) age out, or the fault this guest provokes may never reach the log the report reads
sleep 6
lsc vm start pt
echo "start=$?"
echo "driver_running=$(bed_driver $edu)"
end=$(($(date +%s) + 180))
while ! grep -q '^result:' "$BED_OUT/console" 2>/dev/null && [ $(date +%s) -lt $end ]; do
	sleep 0.2
	lsc vm console pt >"$BED_OUT/console"
done
grep -q '^result:' "$BED_OUT/console" || where_stuck "no result from passthru"
# VT-d reports the blocked DMA by an interrupt of its own, and the kernel logs it: the guest
# can print its result before the faults reach the log the report reads
end=$(($(date +%s) + 60))
while :; do
	lsc --json vm devices pt >"$BED_OUT/report.json"
	python3 -c 'import json, sys
sys.exit(json.load(open(sys.argv[1]))["devices"][0]["faults"]["count"] < 2)' \
		"$BED_OUT/report.json" 2>/dev/null && break
	[ $(date +%s) -lt $end ] || break
	sleep 0.5
done
dmesg | grep -i -E 'dmar|iommu|fault|suppressed' | tail -n 40 >"$BED_OUT/dmesg_faults"
lsc vm devices pt >"$BED_OUT/report.txt"
lsc --json device list pt >"$BED_OUT/list.json"
lsc --json vm info pt >"$BED_OUT/info.json"
lsc --json device host >"$BED_OUT/host.json"
lsc device attach pt $edu >"$BED_OUT/attach_running" 2>&1
echo "attach_running=$?"
lsc vm shutdown pt --timeout 60
echo "shutdown=$?"
echo "state_after=$(wait_state pt shutoff)"
cp $run/run/vms/pt.log "$BED_OUT/pt.log"
echo "driver_after=$(bed_driver $edu)"
lsc vm console pt >"$BED_OUT/console"
stop_daemon
"""

# (b) MSI-X: a modern virtio-rng (iommu_platform=on: its DMA goes through the IOMMU) given to
# ptrng by lockstep-vm; its MSI-X table and PBA are lockstep's, its queue in guest RAM
MSIX = r"""
rng=$(bed_pci_find 1af4:1044 | head -n 1)
echo "rng=$rng"
echo "rng_group=$(bed_vfio_bind $rng)"
cat >/tmp/rng.json <<DEF
{"name": "rng", "vcpus": 1, "memory": "64M", "kernel": "$GUEST/ptrng.elf",
 "cmdline": "requests=8", "devices": [{"type": "vfio-pci", "host": "$rng"}]}
DEF
# as root by hand: sandboxed (the relay, a pid namespace and cgroup, the worker user)
"$BIN/lockstep-vm" --config /tmp/rng.json --console --timeout 200 \
	--stats-json "$BED_OUT/rng_stats.json" >"$BED_OUT/rng_console" 2>&1
echo "rng_vm=$?"
"""

# (c): what must be refused, each leaving everything as it was
REFUSE = r"""
start_daemon
edu=$(bed_pci_find 1234:11e8 | head -n 1)
f0=0000:00:06.0
f1=0000:00:06.1
echo "group0=$(bed_iommu_group $f0)"
echo "group1=$(bed_iommu_group $f1)"
echo "f1_driver=$(bed_driver $f1)"
defvm() { # NAME KERNEL DEVICES_JSON
	printf '{"name": "%s", "memory": "64M", "kernel": "%s", "devices": [%s]}' "$1" "$2" "$3" \
		>$run/$1.json
	lsc vm define $run/$1.json
}
try() { # WHAT CMD...: runs it, records status and message
	what=$1
	shift
	"$@" >"$BED_OUT/$what" 2>&1
	echo "$what=$?"
	echo "${what}_driver=$(bed_driver $edu)"
}
defvm unmanaged "$GUEST/idle.elf" "{\"type\": \"vfio-pci\", \"host\": \"$edu\"}"
try c_unmanaged lsc vm start unmanaged
echo "c_unmanaged_state=$(state unmanaged)"
printf '{"name": "nodev", "memory": "64M", "kernel": "%s", "devices": [{"type": "vfio-pci", "host": "0000:00:1e.7"}]}' \
	"$GUEST/idle.elf" >$run/nodev.json
try c_nodev lsc vm define $run/nodev.json
defvm holder "$GUEST/idle.elf" "{\"type\": \"vfio-pci\", \"host\": \"$edu\", \"managed\": true}"
defvm second "$GUEST/idle.elf" "{\"type\": \"vfio-pci\", \"host\": \"$edu\", \"managed\": true}"
lsc vm start holder
echo "holder_driver=$(bed_driver $edu)"
try c_taken lsc vm start second
lsc vm destroy holder
echo "holder_after=$(wait_state holder shutoff) $(bed_driver $edu)"
defvm grp "$GUEST/idle.elf" "{\"type\": \"vfio-pci\", \"host\": \"$f0\", \"managed\": true}"
try c_group lsc vm start grp
echo "c_group_f0=$(bed_driver $f0)"
defvm noreset "$GUEST/idle.elf" "{\"type\": \"vfio-pci\", \"host\": \"$edu\", \"managed\": true, \"reset\": \"on\"}"
try c_reset lsc vm start noreset
echo "c_reset_state=$(state noreset)"
# device.attach / detach on a shut-off VM
defvm cold "$GUEST/idle.elf" ""
try d_attach lsc device attach cold $edu --managed --slot 6 --reset off --no-rom
try d_attach_twice lsc device attach cold $edu
lsc --json device list cold >"$BED_OUT/cold.json"
try d_detach lsc device detach cold $edu
try d_detach_again lsc device detach cold $edu
# domain XML both ways through virsh
cat >$run/x.xml <<XML
<domain type='kvm'><name>x</name><memory unit='MiB'>64</memory>
 <os><type>hvm</type><kernel>$GUEST/idle.elf</kernel></os>
 <metadata><lockstep:vm xmlns:lockstep='urn:lockstep:domain:1'>
  <lockstep:hostdev host='$edu' reset='off'/></lockstep:vm></metadata>
 <devices><hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/>
  <source><address domain='0x0000' bus='0x00' slot='0x${edu#0000:00:}' function='0x0'/></source>
  <rom bar='off'/><address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
 </hostdev></devices></domain>
XML
sed -i "s/slot='0x\([0-9a-f]*\)\.0'/slot='0x\1'/" $run/x.xml
virsh -q -c "lockstep+unix:///system?socket=$run/virt.sock" define $run/x.xml >"$BED_OUT/virsh_define" 2>&1
echo "virsh_define=$?"
virsh -q -c "lockstep+unix:///system?socket=$run/virt.sock" dumpxml x >"$BED_OUT/dumpxml" 2>&1
echo "virsh_dumpxml=$?"
lsc --json device list x >"$BED_OUT/x.json"
# no vfio-pci driver at all (nothing may hold a vfio-pci device while it goes)
for v in grp holder second unmanaged noreset; do lsc vm destroy $v >/dev/null 2>&1; done
for d in /sys/bus/pci/drivers/vfio-pci/0000:*; do [ -e "$d" ] && to_driver ${d##*/} ""; done
"$BUSYBOX" rmmod vfio_pci
echo "rmmod=$?"
try c_nodriver lsc vm start holder
"$BUSYBOX" insmod $(find "$BEDKERNEL/lib/modules" -name vfio-pci.ko | head -n 1)
echo "insmod=$?"
lsc host check --json >"$BED_OUT/hostcheck.json"
stop_daemon
"""

AMD = r"""
edu=$(bed_pci_find 1234:11e8 | head -n 1)
echo "edu=$edu"
echo "group=$(bed_vfio_bind $edu)"
"$TOOLS/bed_iommu_probe" $edu >"$BED_OUT/probe" 2>&1
echo "probe=$?"
cat >/tmp/pt.json <<DEF
{"name": "pt", "vcpus": 1, "memory": "64M", "kernel": "$GUEST/passthru.elf",
 "cmdline": "rounds=2 msi=8 outside=0x6000000",
 "devices": [{"type": "vfio-pci", "host": "$edu"}]}
DEF
"$BIN/lockstep-vm" --config /tmp/pt.json --console --timeout 200 \
	--stats-json "$BED_OUT/stats.json" >"$BED_OUT/console" 2>&1
echo "vm=$?"
# and once unconfined (--no-sandbox: debugging and measurements), briefly
sed -i 's/rounds=2 msi=8/rounds=1 msi=2/' /tmp/pt.json
"$BIN/lockstep-vm" --no-sandbox --config /tmp/pt.json --console --timeout 200 \
	--stats-json "$BED_OUT/plain_stats.json" >"$BED_OUT/plain_console" 2>&1
echo "plain_vm=$?"
"""

MEASURE = r"""
edu=$(bed_pci_find 1234:11e8 | head -n 1)
bed_vfio_bind $edu >/dev/null
"$TOOLS/bed_iommu_probe" $edu --rates $ROUNDS --sizes | grep -E '^(map_|l1_)'
for mem in 64 256 1024 2048; do
	cat >/tmp/m$mem.json <<DEF
{"name": "m$mem", "vcpus": 1, "memory": "${mem}M", "kernel": "$GUEST/passthru.elf",
 "cmdline": "rounds=$ROUNDS msi=$((ROUNDS * 4))",
 "devices": [{"type": "vfio-pci", "host": "$edu"}]}
DEF
	"$BIN/lockstep-vm" --no-sandbox --config /tmp/m$mem.json --console --timeout 900 \
		--stats-json /tmp/m$mem.stats >/tmp/m$mem.console 2>&1
	rc=$?
	ms=$(python3 -c 'import json, sys
print("%.0f" % json.load(open(sys.argv[1]))["passthrough"]["dma"]["map_ms"])' /tmp/m$mem.stats)
	res=$(grep '^result:' /tmp/m$mem.console |
		grep -oE '(round_trips_per_s|msi|msi_lat_us_p50|msi_lat_us_p99|ok)=[^ ]*' | tr '\n' ' ')
	echo "vm_${mem}M=$rc map_ms=$ms $res"
done
"""


def measure(build_dir, iommu, env):
    """The closing note's figures, printed; by hand only (timings are never checked)."""
    env = dict(env, ROUNDS=os.environ.get("ROUNDS", "20"))
    with bed.for_test(build_dir, machine="q35", iommu=iommu, intremap=True, edu=True, smp=2,
                      mem_mib=4096, kvm=True, env=env) as b:
        r = b.run(COMMON + MEASURE, timeout=3600)
        print(r.stdout, end="")
        print(f"({iommu}-iommu, L1 4 GiB, 2 vCPUs under TCG; {r.seconds:.0f}s)")
        return 0 if r.status == 0 else 1


STEP_TIMEOUT = 300  # seconds per script: a run takes 20-100 s here


def kv(text):
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(" "):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), v.strip())
    return out


def main():
    if len(sys.argv) not in (5, 6) or sys.argv[4] not in ("intel", "amd") or \
            sys.argv[5:] not in ([], ["measure"]):
        print(__doc__)
        return 2
    build_dir, bin_dir, guest_dir, iommu = sys.argv[1:5]
    env = {"BIN": os.path.abspath(bin_dir), "GUEST": os.path.abspath(guest_dir),
           "TOOLS": os.path.join(os.path.abspath(build_dir), "tests"),
           "BEDKERNEL": os.path.join(os.path.abspath(build_dir), "bed", "kernel"),
           "BUSYBOX": os.path.join(os.path.abspath(build_dir), "bed", "busybox")}
    if sys.argv[5:] == ["measure"]:
        return measure(build_dir, iommu, env)
    files = {}
    # two functions of one slot share an IOMMU group (no ACS between them): edu, and a
    # virtio device that L1's virtio-pci driver takes (VFIO allows pci-stub in a group, not it);
    # and, alone, a virtio device with MSI-X whose DMA the IOMMU translates
    devices = ["edu,addr=0x6.0,multifunction=on", "virtio-rng-pci,addr=0x6.1",
               "virtio-rng-pci,disable-legacy=on,iommu_platform=on"] if iommu == "intel" else []
    # A script that stalls in L1 (seen: a write to the bed's 9p share that never returned,
    # with lockstepd idle; L1 prints its blocked tasks when a script nears its timeout) gets
    # one more try in a fresh L1; a second stall fails the test.
    for attempt in (1, 2):
        files, stalled = {}, None
        with bed.for_test(build_dir, machine="q35", iommu=iommu, intremap=True, edu=True,
                          smp=2, mem_mib=1024, kvm=True, env=env, devices=devices) as b:
            try:
                if iommu == "amd":
                    r = b.run(COMMON + AMD, timeout=STEP_TIMEOUT)
                    for name in ("probe", "console", "stats.json", "plain_console",
                                 "plain_stats.json"):
                        files[name] = b.read(name) if os.path.exists(b.path(name)) else ""
                    return check_amd(r, files)
                steps = [(name, b.run(COMMON + script, timeout=STEP_TIMEOUT))
                         for name, script in (("probe", PROBE), ("pass", PASS),
                                              ("msix", MSIX), ("refuse", REFUSE))]
                for name in os.listdir(b.share):
                    path = os.path.join(b.share, name)
                    if os.path.isfile(path):
                        files[name] = open(path, errors="replace").read()
            except bed.BedTimeout as e:
                stalled = e
        if stalled is None:
            return check_intel(dict(steps), files)
        if attempt == 2:
            lt.fail(f"the bed stalled twice: {stalled}")
        print(f"bed stalled ({stalled}); trying once more in a fresh L1", flush=True)


def check_sandboxed(check, sandbox, ram, who):
    """The worker of a passthrough VM ran in the whole sandbox, with RLIMIT_MEMLOCK raised by
    its guest RAM (on top of what it inherited: 8 MiB here, at most 64 MiB anywhere sane)."""
    check(sandbox.get("enabled") is True and sandbox.get("root") == "empty" and
          sandbox.get("user") == "lockstep-vm" and sandbox.get("uid", 0) != 0 and
          "mnt" in sandbox.get("namespaces", []) and sandbox.get("cgroup"),
          f"{who}: the worker was sandboxed (user, namespaces, empty root, cgroup)", sandbox)
    memlock = sandbox.get("rlimits", {}).get("memlock", 0)
    check(ram <= memlock <= ram + (64 << 20), f"{who}: RLIMIT_MEMLOCK is guest RAM plus the "
          "inherited limit", sandbox)
    check(all(sandbox.get("seccomp", {}).get(k, 0) > 0 for k in ("control", "vcpu", "devices")),
          f"{who}: seccomp lists installed", sandbox)


def check_amd(r, f):
    out = kv(r.stdout)
    p = kv(f["probe"])
    res = lt.results(f["console"])
    stats = json.loads(f["stats.json"] or "{}")

    def check(cond, what, *more):
        if not cond:
            lt.fail(what, "\n".join(str(m) for m in more) or f"{r}\n{f['probe']}")

    check(out.get("probe") == "0" and p.get("failed") == "0", "iommu/ probe on AMD-Vi", f["probe"])
    check(p.get("faults") == "0", "QEMU 7.2's amd-iommu logs no faults", f["probe"])
    check(out.get("vm") == "0" and res and res[-1].get("ok") == "1",
          "the passthru guest on AMD-Vi", f["console"], r)
    check_sandboxed(check, stats.get("sandbox", {}), 64 << 20, "the passthru guest on AMD-Vi")
    dev = stats["passthrough"]["devices"][0]
    check(dev["iommu"]["kind"] == "AMD-Vi" and dev["iommu"]["unit"].startswith("ivhd"),
          "the report names AMD-Vi", dev)
    check(res[-1].get("outside_readback") in ("kept", "zero", "ones"),
          "the blocked read brought nothing in", res[-1])
    plain = lt.results(f["plain_console"])
    check(out.get("plain_vm") == "0" and plain and plain[-1].get("ok") == "1" and
          json.loads(f["plain_stats.json"] or "{}").get("sandbox") == {"enabled": False},
          "the passthru guest on AMD-Vi with --no-sandbox", f["plain_console"], r)
    print(f"PASS: amd-iommu: iommu/ maps and blocks (no faults logged, as QEMU 7.2's amd-iommu "
          f"does); edu passed through: {res[-1]['dma_rounds']} DMA round trips, "
          f"{res[-1]['msi']} MSIs, a DMA outside RAM blocked; sandboxed, and once with "
          f"--no-sandbox ({r.seconds:.0f}s)")
    return 0


def check_intel(steps, f):
    probe, pas, msix, ref = (kv(steps[k].stdout) for k in ("probe", "pass", "msix", "refuse"))
    p = kv(f["probe"])
    log = f.get("lockstepd.log", "")

    def check(cond, what, *more):
        if not cond:
            lt.fail(what, "\n".join(str(m) for m in more) or
                    "\n".join(f"---- {k} ----\n{v}" for k, v in steps.items()) +
                    "\n---- lockstepd.log ----\n" + log)

    check("stuck.txt" not in f, "nothing hung (where lockstepd and the workers were)",
          f.get("stuck.txt"), log)
    # (a)
    check(probe.get("probe") == "0" and p.get("failed") == "0", "(a) iommu/ against VT-d",
          f["probe"])
    check(p.get("backend") == "vfio-type1" and "no /dev/iommu" in p.get("backend_why", ""),
          "(a) type1 chosen, saying why iommufd is not", f["probe"])
    check(p.get("iommufd_forced") == "-19", "(a) iommufd asked for and refused", f["probe"])
    check(p.get("faults") == "3" and "fault=" in f["probe"], "(a) three faults logged for edu",
          f["probe"])
    check(probe.get("driver_after_probe") == "pci-stub", "edu on pci-stub", steps["probe"])
    edu = probe["edu"]

    # (b)
    res = lt.results(f.get("console", ""))
    check(pas.get("start") == "0" and pas.get("driver_running") == "vfio-pci",
          "(b) the VM started with edu bound to vfio-pci", steps["pass"], log)
    check(res and res[-1].get("ok") == "1" and res[-1].get("rom") == "ok" and
          res[-1].get("dma_irq") == "ok", "(b) the passthru guest", f.get("console"))
    check(pas.get("lockstepd") == "0", "lockstepd stopped cleanly after (b)", log)
    check(pas.get("shutdown") == "0" and pas.get("state_after") == "shutoff" and
          pas.get("driver_after") == "pci-stub", "(b) edu back on pci-stub at stop",
          steps["pass"], log)
    report = json.loads(f["report.json"])
    dev = report["devices"][0]
    check(report["backend"] == "vfio-type1" and report["dma"]["mappings"] == 1 and
          report["dma"]["bytes"] == 64 << 20, "(b) all guest RAM mapped, once", report)
    check(dev["host"] == edu and dev["iommu"]["kind"] == "VT-d" and
          dev["iommu"]["interrupt_remapping"] is True and dev["iommu"]["group"] >= 0,
          "(b) the report: VT-d, its group, interrupt remapping", dev)
    check(dev["faults"]["count"] >= 2 and dev["faults"]["last"]["address"] == "0x6000000",
          "(b) the DMA outside RAM: faults at its address", dev, f.get("dmesg_faults"))
    check(dev["interrupts"]["wired"] == "msi" and dev["interrupts"]["straight_to_kvm"] == 1,
          "(b) edu's MSI goes straight to KVM", dev)
    check(dev["host_interrupts"]["count"] >= int(res[-1]["msi"]) and
          dev["host_interrupts"]["remapped"] is True, "(b) the host saw them, remapped", dev)
    check(dev["bars"][0]["mapped"] == 1 << 20 and dev["rom"]["source"].endswith("edu.rom"),
          "(b) BAR 0 mapped into the guest, the ROM file", dev)
    info = json.loads(f["info.json"])
    check(info.get("passthrough", {}).get("devices"), "(b) vm.info has the report", info)
    check_sandboxed(check, info.get("stats", {}).get("sandbox", {}), 64 << 20,
                    "(b) lockstepd's worker")
    check("seccomp" not in f.get("pt.log", "seccomp?"), "(b) no seccomp trap in the worker",
          f.get("pt.log"))
    hosts = {d["bdf"]: d for d in json.loads(f["host.json"])["devices"]}
    check(hosts[edu]["passthrough"] == "in use by a VM" and hosts[edu]["vm"] == "pt" and
          hosts[edu]["driver"] == "vfio-pci", "(b) device.host: edu held by pt", hosts[edu])
    check(pas.get("attach_running") == "1" and "devices are attached and detached while it "
          "is shut off" in f["attach_running"], "(c) no attach to a running VM",
          f["attach_running"])

    # (b) MSI-X
    rng = lt.results(f.get("rng_console", ""))
    check(msix.get("rng_vm") == "0" and rng and rng[-1].get("ok") == "1" and
          rng[-1].get("msix") == rng[-1].get("requests") == rng[-1].get("filled") == "8" and
          rng[-1].get("masked_pending") == "1" and rng[-1].get("unmask_delivered") == "1",
          "(b) ptrng: virtio-rng's queue by DMA, one MSI-X per request, masking and the PBA",
          f.get("rng_console"), steps["msix"])
    rstats = json.loads(f["rng_stats.json"])
    check_sandboxed(check, rstats.get("sandbox", {}), 64 << 20, "(b) ptrng")
    rdev = rstats["passthrough"]["devices"][0]
    check(rdev["interrupts"]["wired"] == "msix" and rdev["faults"]["count"] == 0 and
          rdev["interrupts"]["trapped_while_masked"] >= 1,
          "(b) ptrng: MSI-X wired, the masked one through the worker, no faults", rdev)

    # (c)
    def refused(key, words, driver="pci-stub"):
        check(ref.get(key) == "1" and words in f[key] and ref.get(key + "_driver") == driver,
              f"(c) {key}: refused with {words!r}, edu left on {driver}", f[key], ref)

    refused("c_unmanaged", f"{edu} is in use by the host driver pci-stub: bind it to vfio-pci")
    check(ref.get("c_unmanaged_state") == "shutoff", "(c) unmanaged: still shut off")
    refused("c_nodev", "no PCI device 0000:00:1e.7")
    check(ref.get("holder_driver") == "vfio-pci", "(c) the holder has edu", ref)
    refused("c_taken", f"{edu} is passed through to VM holder", driver="vfio-pci")
    check(ref.get("holder_after") == "shutoff pci-stub", "(c) edu back when the holder stops",
          ref)
    check(ref.get("f1_driver") == "virtio-pci" and ref.get("group0") == ref.get("group1"),
          "(c) 06.0 and 06.1 share a group, 06.1 on virtio-pci", ref)
    refused("c_group", "in the same group is in use by the host driver virtio-pci")
    check("0000:00:06.1 [1af4:" in f["c_group"], "(c) the device in the way named", f["c_group"])
    check(ref.get("c_group_f0") == "", "(c) the group's device was left unbound", ref)
    refused("c_reset", "no reset method")
    check(ref.get("c_reset_state") == "shutoff", "(c) a refused reset leaves the VM off", ref)
    check(ref.get("d_attach") == "0" and ref.get("d_detach") == "0", "(c) attach, detach",
          f.get("d_attach"), f.get("d_detach"))
    cold = json.loads(f["cold.json"])["devices"][0]
    check(cold["host"] == edu and cold["managed"] and cold["slot"] == 6 and
          cold["reset"] == "off" and cold["rom"]["bar"] is False, "(c) attached as asked", cold)
    check(ref.get("d_attach_twice") == "1" and "is listed twice" in f["d_attach_twice"],
          "(c) a device attached twice", f["d_attach_twice"])
    check(ref.get("d_detach_again") == "1" and "has no passthrough device" in
          f["d_detach_again"], "(c) detaching what is not there", f["d_detach_again"])
    check(ref.get("virsh_define") == "0" and ref.get("virsh_dumpxml") == "0",
          "(c) virsh define/dumpxml", f.get("virsh_define"), f.get("dumpxml"))
    x = f["dumpxml"]
    for want in ("managed='yes'", "<driver name='vfio'/>", "<rom bar='off'/>",
                 f"<lockstep:hostdev host='{edu}' reset='off'/>", "slot='0x07'"):
        check(want in x.replace('"', "'"), f"(c) dumpxml has {want}", x)
    xd = json.loads(f["x.json"])["devices"][0]
    check(xd["managed"] and xd["reset"] == "off" and xd["slot"] == 7 and
          xd["rom"]["bar"] is False, "(c) the XML's hostdev in the definition", xd)
    check(ref.get("rmmod") == "0" and ref.get("insmod") == "0", "(c) vfio-pci unloaded, and "
          "loaded again", ref)
    refused("c_nodriver", "the vfio-pci driver is not loaded (modprobe vfio-pci)")
    facts = {fa["id"]: fa for fa in json.loads(f["hostcheck.json"])["facts"]}
    check(facts["iommu.faults"]["verdict"] == "warn" and
          any(d.startswith(edu[5:] + ": DMA") for d in facts["iommu.faults"]["details"]),
          "(c) the host check lists edu's faults", facts["iommu.faults"])
    check(ref.get("lockstepd") == "0", "lockstepd stopped cleanly", log)
    for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        check(mark not in log, "a sanitizer report from lockstepd", log)
    r = res[-1]
    print(f"PASS: intel-iommu: (a) iommu/ maps, round-trips and blocks ({p['faults']} faults "
          f"logged; type1, iommufd refused with the reason); (b) edu passed through managed: "
          f"INTx, {r['dma_rounds']} DMA round trips ({r['round_trips_per_s']}/s), {r['msi']} "
          f"MSIs (p50 {r['msi_lat_us_p50']} us), ROM, DMA outside RAM blocked "
          f"({dev['faults']['count']} faults); a virtio-rng's MSI-X (8 requests, masked, "
          f"pending, unmasked); (c) every refusal said why and left edu where "
          f"it was; XML and attach/detach both ways "
          f"(scripts {sum(s.seconds for s in steps.values()):.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
