#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs each libFuzzer target of a build configured with -Dfuzzing=true for a bounded time,
# starting from a scratch copy of its seed corpus (the checked-in corpus is never written).
#
#   run-fuzzers.sh BUILD_DIR SECONDS_PER_TARGET [TARGET...]
#
# Prints one summary line per target. Exits 1 if any target found something (its reproducer
# is kept under BUILD_DIR/fuzz-artifacts/TARGET/) or could not run, 2 on bad usage.
set -uo pipefail

ALL_TARGETS=(config tailnet-status ipn-bus k0s-status render-k0s)

usage() {
    echo "Usage: $0 BUILD_DIR SECONDS_PER_TARGET [TARGET...]" >&2
    echo "Targets: ${ALL_TARGETS[*]}" >&2
    exit 2
}

[ $# -ge 2 ] || usage
build=$(cd "$1" 2>/dev/null && pwd) || { echo "No build directory '$1'" >&2; exit 2; }
seconds=$2
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/run-fuzzers.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

failed=0
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz-$t
    seeds=$src/tests/fuzz/corpus/$t
    if [ ! -x "$bin" ]; then
        echo "FAIL $t: no fuzz binary $bin (configure with -Dfuzzing=true)"
        failed=1
        continue
    fi
    # A target linked without libFuzzer would replay and exit at once: that is not fuzzing.
    help=$("$bin" -help=1 2>&1)
    if [[ $help != *max_total_time* ]]; then
        echo "FAIL $t: $bin is not a libFuzzer binary (configure with -Dfuzzing=true)"
        failed=1
        continue
    fi
    if [ ! -d "$seeds" ]; then
        echo "FAIL $t: no seed corpus $seeds"
        failed=1
        continue
    fi

    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    cp -- "$seeds"/* "$work/$t/corpus/" 2>/dev/null
    n_seeds=$(find "$work/$t/corpus" -type f | wc -l)

    "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1
    rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/$t/log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$work/$t/log" | tail -1)
    n_corpus=$(find "$work/$t/corpus" -type f | wc -l)
    mapfile -t found < <(find "$work/$t/artifacts" -type f)

    if [ $rc -eq 0 ] && [ ${#found[@]} -eq 0 ]; then
        echo "PASS $t: ${execs:-?} execs in ${seconds}s, corpus $n_seeds -> $n_corpus"
        continue
    fi

    failed=1
    keep=$build/fuzz-artifacts/$t
    mkdir -p "$keep"
    cp -- "$work/$t/log" "$keep/fuzz.log"
    for f in "${found[@]}"; do
        cp -- "$f" "$keep/"
    done
    echo "FAIL $t: exit $rc after ${execs:-?} execs, ${#found[@]} reproducer(s) in $keep"
    # The sanitizer report, so CI logs show the bug without digging.
    grep -m1 -A25 -E '^==[0-9]+==ERROR|runtime error|deadly signal|Timeout|out-of-memory' \
        "$work/$t/log" | sed 's/^/    /'
done

exit $failed
