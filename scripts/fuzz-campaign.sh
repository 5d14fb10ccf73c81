#!/bin/sh
# A fuzzing campaign for one libFuzzer target (tests/fuzz/TARGET.c), or for every target:
# runs it from its committed corpus, then merges what it found into that corpus, minimised,
# so tests/fuzz/corpus/TARGET/ holds the smallest set of inputs that reaches everything the
# corpus and the campaign reached.  Commit the corpus afterwards; `make check-fuzz` replays it.
#
#   scripts/fuzz-campaign.sh TARGET [EXECS]     # EXECS executions (default 10000000)
#   scripts/fuzz-campaign.sh all [EXECS]
#
# Environment:
#   FUZZ_BUILD      the clang build tree (default build-fuzz; made with `make fuzz`)
#   FUZZ_MAX_TIME   stop each target after this many seconds even before EXECS
#   FUZZ_FORK       run N fuzzing processes at once (libFuzzer's -fork=N); default 1
#   FUZZ_SEED       libFuzzer's -seed (default: a new one each run)
#
# Named seeds (any file whose name is not a 40-digit hash: the hand-written and generated
# ones) are kept as they are; inputs the fuzzer found are kept only where they add coverage.
# The last line for each target gives executions, executions per second, coverage (edges
# and features) and the corpus before and after, also appended to FUZZ_BUILD/campaigns.log.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-build-fuzz}
case $build in /*) ;; *) build=$top/$build ;; esac
fuzzdir=$top/tests/fuzz

usage() {
	echo "usage: $0 TARGET|all [EXECS]" >&2
	echo "targets: $(targets | tr '\n' ' ')" >&2
	exit 2
}

targets() {
	sed -n 's/^lockstep_fuzz_target(\([a-z_0-9]*\) .*/\1/p' "$fuzzdir/CMakeLists.txt"
}

max_len() {
	sed -n "s/^lockstep_fuzz_target($1 \([0-9]*\) .*/\1/p" "$fuzzdir/CMakeLists.txt"
}

is_hash() {
	echo "$1" | grep -Eq '^[0-9a-f]{40}$'
}

campaign() {
	target=$1 execs=$2
	bin=$build/bin/fuzz_$target
	corpus=$fuzzdir/corpus/$target
	work=$build/campaign/$target
	len=$(max_len "$target")
	[ -n "$len" ] || { echo "$0: no fuzz target '$target'" >&2; usage; }
	cmake --build "$build" --target "fuzz_$target" >/dev/null
	rm -rf "$work"
	mkdir -p "$work/found" "$work/seeds" "$work/rest" "$work/merged" "$corpus"
	before=$(find "$corpus" -type f | wc -l)

	set -- -runs="$execs" -max_len="$len" -print_final_stats=1
	[ -f "$fuzzdir/$target.dict" ] && set -- "$@" -dict="$fuzzdir/$target.dict"
	[ -n "${FUZZ_MAX_TIME:-}" ] && set -- "$@" -max_total_time="$FUZZ_MAX_TIME"
	[ -n "${FUZZ_SEED:-}" ] && set -- "$@" -seed="$FUZZ_SEED"
	[ "${FUZZ_FORK:-1}" -gt 1 ] && set -- "$@" -fork="$FUZZ_FORK" -ignore_crashes=0
	echo "fuzz_$target: $execs executions from $before inputs ($work/fuzz.log)"
	(cd "$work" && "$bin" "$@" "$work/found" "$corpus") >"$work/fuzz.log" 2>&1 || {
		echo "fuzz_$target failed: see $work/fuzz.log (the input that failed is in $work)" >&2
		tail -n 30 "$work/fuzz.log" >&2
		return 1
	}

	# Named seeds stay as they are; everything else competes for coverage beyond them.
	for f in "$corpus"/* "$work/found"/*; do
		[ -f "$f" ] || continue
		name=$(basename "$f")
		if is_hash "$name"; then cp "$f" "$work/rest/$name"; else cp "$f" "$work/seeds/$name"; fi
	done
	cp "$work/seeds"/* "$work/merged/" 2>/dev/null || true
	"$bin" -merge=1 -max_len="$len" "$work/merged" "$work/rest" >"$work/merge.log" 2>&1 || {
		echo "merging fuzz_$target's corpus failed: see $work/merge.log" >&2
		return 1
	}
	rm -rf "$corpus"
	mkdir -p "$corpus"
	cp "$work/merged"/* "$corpus/"
	after=$(find "$corpus" -type f | wc -l)

	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log" | tail -n 1)
	cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$work/fuzz.log" | tail -n 1)
	# -fork=N prints no stat:: lines; its status lines read "#RUNS: cov: ... exec/s RATE ..."
	if [ -z "$runs" ]; then
		runs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$work/fuzz.log" | tail -n 1)
		rate=$(sed -n 's/^#[0-9]*: cov:.* exec\/s \([0-9]*\).*/\1/p' "$work/fuzz.log" | tail -n 1)
	fi
	line="fuzz_$target: ${runs:-?} executions, ${rate:-?} exec/s, ${cov:-cov: ?}, corpus $before -> $after inputs"
	echo "$line"
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $line" >>"$build/campaigns.log"
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
execs=${2:-10000000}
case $execs in '' | *[!0-9]*) usage ;; esac
[ -d "$build" ] || { echo "$0: no $build: run 'make fuzz' first" >&2; exit 1; }
if [ "$1" = all ]; then
	for t in $(targets); do campaign "$t" "$execs"; done
else
	campaign "$1" "$execs"
fi
