#!/bin/sh
# /init of the test bed's L1 guest (packed by bed_image.py, driven by bed.py; see
# docs/testbed.md).  Runs under busybox, as PID 1, with the kernel console on ttyS0.
#
# 1. Loads the virtio/9p modules and mounts the bed's share (9p tag "bed", writable) at /bed;
#    /bed/bed.conf (written by bed.py) says which module groups to load and where the share
#    is on the host.
# 2. Mounts the host's root (9p tag "hostroot", read-only) at /lower, and at /host either an
#    overlay with a tmpfs upper layer (a writable root whose writes stay in L1's memory) or,
#    if overlayfs refuses, the read-only root itself; then /proc, /sys, /dev, a fresh /run
#    and the share at its host path, so that binaries built on the host run unchanged in
#    `chroot /host` and write their results where the host reads them.
# 3. Writes /bed/ready, then runs /bed/jobs/N.sh (N = 0, 1, ...) one after the other in the
#    chroot, each with its stdout, stderr and exit status in /bed/jobs/N.{out,err,rc}, until
#    /bed/poweroff appears; then powers off.
# A step that fails prints "bed: FATAL ..." and powers off, so the host never waits in vain.

# The module groups in dependency order (filled in by bed_image.py from modules.dep).
@MODULE_GROUPS@

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "bed: $*"; }
fatal() {
	say "FATAL $*"
	sync
	poweroff -f
	sleep 10
}

failed=""
load() {
	for m in "$@"; do
		n=${m##*/}
		n=$(echo "${n%.ko}" | tr - _)
		[ -d "/sys/module/$n" ] && continue
		insmod "$m" || failed="$failed $n"
	done
}

# shellcheck disable=SC2154 # mods_* come from @MODULE_GROUPS@
load $mods_9p
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 bed /bed ||
	fatal "cannot mount the bed share (9p tag bed)"
[ -r /bed/bed.conf ] || fatal "no /bed/bed.conf"
BED_GROUPS="" BED_SHARE="" BED_ROOTFS=overlay
. /bed/bed.conf
for g in $BED_GROUPS; do
	eval "load \$mods_$g"
done

mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower ||
	fatal "cannot mount the host's root (9p tag hostroot)"
rootfs=ro
if [ "$BED_ROOTFS" = overlay ]; then
	mount -t tmpfs -o mode=0755 rw /rw && mkdir /rw/upper /rw/work &&
		mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /host &&
		rootfs=overlay
fi
[ "$rootfs" = ro ] && { mount --bind /lower /host || fatal "cannot bind /lower"; }
mount -t proc proc /host/proc &&
	mount -t sysfs sysfs /host/sys &&
	mount -t devtmpfs devtmpfs /host/dev &&
	mount -t tmpfs -o mode=0755 run /host/run || fatal "cannot mount /proc, /sys, /dev, /run"
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs -o mode=1777 shm /host/dev/shm
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup
mount -t debugfs debugfs /host/sys/kernel/debug
mount -t tracefs tracefs /host/sys/kernel/tracing
if [ "$rootfs" = ro ]; then
	# nothing else is writable: at least /tmp
	mount -t tmpfs -o mode=1777 tmp /host/tmp
fi
mkdir -p "/host$BED_SHARE" && mount --bind /bed "/host$BED_SHARE" ||
	fatal "cannot mount the share at $BED_SHARE"

{
	echo "release=$(uname -r)"
	echo "rootfs=$rootfs"
	echo "failed_modules=${failed# }"
	echo "modules=$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
} >/bed/ready.tmp && mv /bed/ready.tmp /bed/ready
say "ready: rootfs=$rootfs failed_modules=${failed:-none}"

# A heartbeat through the share: the host gives up on an L1 that stops beating (a guest
# kernel stuck under TCG, or the share itself stalled) long before a job's own deadline.
(while :; do
	date +%s >/bed/alive.tmp && mv /bed/alive.tmp /bed/alive
	sleep 5
done) &

n=0
while :; do
	if [ -e "/bed/jobs/$n.sh" ]; then
		# a job still running near its deadline: the blocked tasks' kernel stacks go to the
		# console, which is no 9p file (a stall of the share must not hide where it stalled)
		watch=$(cat "/bed/jobs/$n.watch" 2>/dev/null)
		watchdog=
		if [ -n "$watch" ]; then
			(
				sleep "$watch"
				say "job $n still running after ${watch}s; user tasks (tid comm state wchan):"
				for t in /proc/[0-9]*/task/[0-9]*; do
					[ -n "$(head -c 1 "$t/cmdline" 2>/dev/null)" ] || continue
					echo "  ${t##*/} $(cat "$t/comm") $(cut -d' ' -f3 "$t/stat")" \
						"$(cat "$t/wchan")"
				done
				say "blocked tasks:"
				echo w >/proc/sysrq-trigger
			) &
			watchdog=$!
		fi
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			LANG=C.UTF-8 TERM=dumb BED_OUT="$BED_SHARE" \
			chroot /host /bin/sh "$BED_SHARE/jobs/$n.sh" \
			</dev/null >"/bed/jobs/$n.out" 2>"/bed/jobs/$n.err"
		rc=$?
		[ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
		echo $rc >"/bed/jobs/$n.rc.tmp" && mv "/bed/jobs/$n.rc.tmp" "/bed/jobs/$n.rc"
		n=$((n + 1))
		continue
	fi
	[ -e /bed/poweroff ] && break
	sleep 0.1
done
say "powering off"
sync
poweroff -f
sleep 10
