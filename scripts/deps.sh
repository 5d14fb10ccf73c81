#!/bin/sh
# Installs the Debian packages lockstep builds and tests with, and only those that are missing.
# Usage: scripts/deps.sh [build|test|demo|deb]   (default: test = everything)
set -eu

build_pkgs="cmake make gcc clang pkg-config binutils libuv1-dev libjansson-dev libhwloc-dev \
libxml2-dev libvirt-dev libcmocka-dev libseccomp-dev scdoc"
test_pkgs="qemu-system-x86 libvirt-clients libxml2-utils libclang-rt-14-dev gnuplot-nox python3 \
bash-completion"
# make deb, and the suite's check of the package it builds.
deb_pkgs="dpkg-dev debhelper"

case "${1:-test}" in
build | demo) want="$build_pkgs" ;;
deb) want="$build_pkgs $deb_pkgs" ;;
test) want="$build_pkgs $test_pkgs $deb_pkgs" ;;
*)
	echo "usage: $0 [build|test|demo|deb]" >&2
	exit 64
	;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "lockstep needs these Debian packages:$missing" >&2
	echo "run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
