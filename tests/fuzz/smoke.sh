#!/bin/sh
# The fuzz smoke test of one target (ctest's fuzz/<target>): every input of the committed
# corpus (tests/fuzz/corpus/<target>/) and of the build tree's work corpus is run once, then
# FRESH new inputs are tried, from a fixed seed; new finds go to the work corpus only.
#
#   smoke.sh FUZZER CORPUS WORK FRESH [libFuzzer options...]
set -eu
bin=$1 corpus=$2 work=$3 fresh=$4
shift 4
mkdir -p "$work"
# libFuzzer counts the replay in -runs: add what the corpora hold.
held=$(find "$corpus" "$work" -type f | wc -l)
exec "$bin" -runs=$((held + fresh)) -seed=1 "$@" "$work" "$corpus"
