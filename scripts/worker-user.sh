#!/bin/sh
# Creates the unprivileged system user lockstep's VM workers run as (docs/security.md), if it
# is missing.  `make demo`, `make check` and the test suite call it; packaging does the same.
# Usage: scripts/worker-user.sh [NAME]   (default: lockstep-vm)
set -eu
name=${1:-lockstep-vm}

if getent passwd "$name" >/dev/null; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "lockstep's VM workers need the system user $name; as root run: $0 $name" >&2
	exit 1
fi
# No home, no shell, no password: nobody logs in as it; it only owns confined VM processes.
useradd --system --user-group --no-create-home --home-dir /nonexistent \
	--shell /usr/sbin/nologin --comment "lockstep VM workers" "$name"
echo "created system user $name"
