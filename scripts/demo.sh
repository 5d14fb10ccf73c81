#!/bin/sh
# make demo: shows lockstep at work on this machine.
# Runs the smp-counter guest with 4 vCPUs on however many host CPUs there are, prints its
# serial console and lockstep-vm's run statistics.
set -eu
build=${1:-build}
vm="$build/bin/lockstep-vm"
guest="$build/guest"

if [ ! -c /dev/kvm ]; then
	echo "demo: /dev/kvm is missing: lockstep needs KVM (load kvm_intel or kvm_amd)" >&2
	exit 1
fi
echo "== lockstep demo: smp-counter, 4 vCPUs on $(nproc) host CPUs =="
echo "\$ $vm --kernel $guest/smp-counter.elf --vcpus 4 --console --stats"
"$vm" --kernel "$guest/smp-counter.elf" --vcpus 4 --console --stats --kick-probe 200 \
	--timeout 120
echo "== guest exit status $? (0: every CPU's increments were counted exactly) =="
