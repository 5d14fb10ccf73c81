#!/bin/sh
# Builds lockstep's Debian package with dpkg-buildpackage, in a copy of the tree (the package
# tools write beside the source, so the copy keeps the checkout clean): what `make deb` runs.
# The copy holds what a fresh clone with your changes would: tracked files and new ones that
# .gitignore does not exclude.
# Usage: scripts/mkdeb.sh [OUT_DIR]   (default build-deb/; the .deb lands there)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$src/build-deb}" && cd "${1:-$src/build-deb}" && pwd)

version=$(sed -n 's/^project(lockstep VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
changelog=$(sed -n '1s/^lockstep (\([^)]*\)).*/\1/p' "$src/debian/changelog")
if [ "$version" != "$changelog" ]; then
	echo "mkdeb: CMakeLists.txt says $version, debian/changelog $changelog: make them agree" >&2
	exit 1
fi

tree=$out/lockstep-$version
rm -rf "$tree"
mkdir -p "$tree"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$tree"
else
	(cd "$src" && tar --exclude='./build*' -cf - .) | tar -xf - -C "$tree"
fi

rm -f "$out"/lockstep_"$version"_*.deb "$out"/lockstep-dbgsym_"$version"_*.deb
echo "mkdeb: building lockstep $version in $tree (log: $out/build.log)"
if ! (cd "$tree" && dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log" >&2
	echo "mkdeb: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
fi
deb=$(ls "$out"/lockstep_"$version"_*.deb)
echo "mkdeb: $deb ($(du -k "$deb" | cut -f1) KiB)"
