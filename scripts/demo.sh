#!/bin/sh
# make demo: lockstep at work on this machine, in about half a minute.
#
# Starts a lockstepd of its own (temporary run and state directories, its own sockets),
# defines and starts a 4-vCPU VM, shows `lockstep vm info` and the VM's console, shuts the
# guest down through its ACPI power button, then runs a ticket-lock benchmark guest with more
# vCPUs than the host has CPUs, plain and paravirtual, and stops everything.
set -eu
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
guest=$(cd "$build/guest" && pwd)

if [ ! -c /dev/kvm ]; then
	echo "demo: /dev/kvm is missing: lockstep needs KVM (load kvm_intel or kvm_amd)" >&2
	exit 1
fi
dir=$(mktemp -d /tmp/lockstep-demo.XXXXXX)
sock="$dir/run/lockstepd.sock"
# VM workers open their images as the unprivileged user lockstep-vm, and only beneath a
# directory lockstepd allows (docs/security.md): the demo's images get one of their own.
chmod 755 "$dir"
mkdir -m 755 "$dir/images"
cp "$guest/idle.elf" "$guest/lockbench.elf" "$dir/images/"
chmod 644 "$dir/images/"*
guest="$dir/images"
cleanup() {
	[ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	# Workers outlive a stopped daemon by design; the demo's own go with it.
	pkill -f "lockstep-vm --config $dir/" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
ls_() { echo "\$ lockstep $*"; "$bin/lockstep" --socket "$sock" "$@"; }

echo "== lockstepd in $dir (host: $(nproc) CPUs) =="
"$bin/lockstepd" --foreground --run-dir "$dir/run" --state-dir "$dir/state" --no-virt \
	--allow-path "$dir/images" 2>"$dir/lockstepd.log" &
daemon=$!
i=0
until [ -S "$sock" ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && { cat "$dir/lockstepd.log"; exit 1; }
	sleep 0.05
done

cat >"$dir/demo.json" <<JSON
{ "name": "demo", "vcpus": 4, "memory": "32M", "kernel": "$guest/idle.elf",
  "cmdline": "heartbeat_ms=250", "sched": { "policy": "adaptive" } }
JSON
echo
ls_ vm define "$dir/demo.json"
ls_ vm start demo
sleep 1
ls_ vm info demo
echo
ls_ vm console demo
ls_ vm shutdown demo
echo "\$ lockstep vm console demo | tail -n 2"
"$bin/lockstep" --socket "$sock" vm console demo | tail -n 2
ls_ vm list

echo
echo "== a ticket lock shared by 4 vCPUs on $(nproc) host CPUs: plain, then paravirtual =="
for mode in plain pv; do
	cat >"$dir/lock-$mode.json" <<JSON
{ "name": "lock-$mode", "vcpus": 4, "memory": "32M", "kernel": "$guest/lockbench.elf",
  "cmdline": "lock=ticket mode=$mode duration_ms=1500" }
JSON
	"$bin/lockstep" --socket "$sock" vm define "$dir/lock-$mode.json" >/dev/null
	ls_ vm start "lock-$mode"
	i=0
	while "$bin/lockstep" --socket "$sock" vm list --state running | grep -q "lock-$mode"; do
		i=$((i + 1))
		[ $i -gt 200 ] && break
		sleep 0.1
	done
	"$bin/lockstep" --socket "$sock" vm console "lock-$mode" | grep "^result:" |
		tr ' ' '\n' | grep -E "^(lock|mode|cpus|acq_per_s|fairness|max_wait_us|counter_ok)="
	echo
done
echo "(pv: waiters sleep in the host through lockstep's doorbell instead of spinning while"
echo " the vCPU they wait for is preempted; see docs/pvlock.md and docs/scheduling.md)"
ls_ daemon info
