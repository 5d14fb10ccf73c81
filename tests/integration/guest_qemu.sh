#!/bin/sh
# Boots one guest program under QEMU (TCG by default) and checks it passed.
#
# usage: guest_qemu.sh GUEST_DIR PROGRAM CPUS [KEY=VALUE ...]
#   GUEST_DIR  the build's guest directory (LOCKSTEP_GUEST_DIR), holding PROGRAM.elf
#   PROGRAM    a guest program name (hello, smp-counter, ipi, latency, ...)
#   CPUS       QEMU -smp count
#   KEY=VALUE  words for the guest command line (e.g. iterations=1000)
#
# environment: QEMU (default qemu-system-x86_64), QEMU_ACCEL (default tcg), GUEST_MEM_MB
# (default 128), GUEST_TIMEOUT (seconds, default 60), QEMU_DEVICES (QEMU device names to add,
# space-separated, e.g. "pc-testdev pci-testdev").
#
# Passes (exit 0) when QEMU ends with status 1 -- isa-debug-exit reports guest code V as
# (V << 1) | 1, so 1 is the guest's exit 0 -- and the serial output has a
# `result: program=PROGRAM` line.  Prints the serial output when it fails (exit 1).
# Exit 77 (skipped) when QEMU is not installed.
set -u

if [ $# -lt 3 ]; then
	echo "usage: $0 GUEST_DIR PROGRAM CPUS [KEY=VALUE ...]" >&2
	exit 2
fi
guest_dir=$1
program=$2
cpus=$3
shift 3
cmdline="$*"

qemu=${QEMU:-qemu-system-x86_64}
accel=${QEMU_ACCEL:-tcg}
mem=${GUEST_MEM_MB:-128}
limit=${GUEST_TIMEOUT:-60}
image=$guest_dir/$program.elf
devices=""
for d in ${QEMU_DEVICES:-}; do
	devices="$devices -device $d"
done

if ! command -v "$qemu" >/dev/null 2>&1; then
	echo "SKIP: $qemu not found"
	exit 77
fi
if [ ! -f "$image" ]; then
	echo "FAIL: no guest image $image"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/guest_qemu.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
serial=$work/serial.log
qemu_log=$work/qemu.log

# coreutils' timeout when present; otherwise QEMU runs unbounded.
runner=""
if command -v timeout >/dev/null 2>&1; then
	runner="timeout -k 5 $limit"
fi

start=$(date +%s)
# shellcheck disable=SC2086 # $runner is a command prefix
$runner "$qemu" -accel "$accel" -cpu max -smp "$cpus" -m "$mem" -nodefaults -display none \
	-no-reboot -kernel "$image" -append "$cmdline" \
	-device isa-debug-exit,iobase=0xf4,iosize=0x4 $devices -serial "file:$serial" \
	</dev/null >"$qemu_log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))

result=$(grep "^result: program=$program\( \|$\)" "$serial" 2>/dev/null | tail -n 1)
reason=""
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
	reason="timed out after ${limit}s"
elif [ "$status" -ne 1 ]; then
	if [ "$status" -ge 3 ] && [ $((status % 2)) -eq 1 ]; then
		reason="guest exited with code $(((status - 1) / 2))"
	else
		reason="QEMU exited with status $status (0: reset or triple fault)"
	fi
elif [ -z "$result" ]; then
	reason="no 'result: program=$program' line"
fi

if [ -z "$reason" ]; then
	echo "PASS: $program on $cpus CPUs (${elapsed}s): $result"
	exit 0
fi
echo "FAIL: $program on $cpus CPUs (${elapsed}s): $reason"
echo "---- serial output ----"
cat "$serial" 2>/dev/null
if [ -s "$qemu_log" ]; then
	echo "---- QEMU ----"
	cat "$qemu_log"
fi
exit 1
