# Helpers for scripts that run inside the test bed's L1 (sourced by every script bed.py
# runs there; POSIX sh, as the host's /bin/sh runs them).  Each prints what it found on
# stdout and says why it failed on stderr (status 1).

bed_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# bed_pci_find VENDOR:DEVICE -- the addresses (0000:00:03.0) of the PCI devices with this ID
bed_pci_find() {
	want_vendor="0x${1%%:*}"
	want_device="0x${1##*:}"
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = "$want_vendor" ] && [ "$(cat "$d/device")" = "$want_device" ] &&
			echo "${d##*/}"
	done
	return 0
}

# bed_iommu_group BDF -- the device's IOMMU group number
bed_iommu_group() {
	g=$(readlink "/sys/bus/pci/devices/$1/iommu_group") || {
		echo "bed_iommu_group: $1 has no IOMMU group (no IOMMU, or no such device)" >&2
		return 1
	}
	echo "${g##*/}"
}

# bed_driver BDF -- the driver the device is bound to (empty when none)
bed_driver() {
	drv=$(readlink "/sys/bus/pci/devices/$1/driver") && echo "${drv##*/}"
	return 0
}

# bed_vfio_bind BDF -- binds the device to vfio-pci (driver_override, unbind, drivers_probe)
# and prints its IOMMU group, once /dev/vfio/GROUP exists
bed_vfio_bind() {
	dev=/sys/bus/pci/devices/$1
	[ -d "$dev" ] || {
		echo "bed_vfio_bind: no PCI device $1" >&2
		return 1
	}
	group=$(bed_iommu_group "$1") || return 1
	[ -d /sys/bus/pci/drivers/vfio-pci ] || {
		echo "bed_vfio_bind: vfio-pci is not loaded" >&2
		return 1
	}
	echo vfio-pci >"$dev/driver_override" || return 1
	if [ -e "$dev/driver" ] && [ "$(bed_driver "$1")" != vfio-pci ]; then
		echo "$1" >"$dev/driver/unbind" || return 1
	fi
	[ "$(bed_driver "$1")" = vfio-pci ] || echo "$1" >/sys/bus/pci/drivers_probe
	[ "$(bed_driver "$1")" = vfio-pci ] || {
		echo "bed_vfio_bind: $1 is bound to '$(bed_driver "$1")', not vfio-pci" >&2
		return 1
	}
	tries=0
	while [ ! -c "/dev/vfio/$group" ]; do
		tries=$((tries + 1))
		[ $tries -le 100 ] || {
			echo "bed_vfio_bind: /dev/vfio/$group did not appear" >&2
			return 1
		}
		sleep 0.1
	done
	echo "$group"
}
