#!/usr/bin/env bash
# Build time as a new user meets it: a fresh clone of HEAD, an empty target directory, then
# the README's two commands. Prints each run's wall time and the median of RUNS:
#   synth        `cargo run -- synth prod` from an empty target directory
#   tests        `cargo test --workspace` right after it (the README's second command)
#   incremental  `cargo run -- synth prod` after touching one stack file (stacks/aegistickets.rs)
#   aws          `cargo build --features aws --bin keel` after the tests (what workflows build)
# Run it with no other build on the machine; the figures and the method are issue 23's.
# usage: scripts/bench-build.sh [RUNS]   (default 3; each run is a cold build)
set -euo pipefail
runs=${1:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

timed() { # label command...: runs the command quietly, appends "label seconds" to times
    local label=$1 start end
    shift
    start=$(date +%s.%N)
    if ! "$@" >"$work/log" 2>&1; then
        tail -20 "$work/log" >&2
        echo "bench-build: $label failed" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    printf '%s %.1f\n' "$label" "$(echo "$end - $start" | bc)" | tee -a "$work/times"
}

for run in $(seq "$runs"); do
    echo "== run $run of $runs (cold) =="
    rm -rf "$work/clone" "$work/target"
    git clone --quiet --no-hardlinks "$repo" "$work/clone"
    cd "$work/clone"
    export CARGO_TARGET_DIR="$work/target"
    # Without PostgreSQL and Redis the workload's process tests skip, as for any new user.
    unset TEST_DATABASE_URL TEST_REDIS_URL CI
    timed synth cargo run --quiet -- synth prod
    timed tests cargo test --workspace --quiet
    touch stacks/aegistickets.rs
    timed incremental cargo run --quiet -- synth prod
    timed aws cargo build --quiet --features aws --bin keel
    cd "$repo"
done

echo "== median of $runs =="
for label in synth tests incremental aws; do
    awk -v l="$label" '$1 == l { print $2 }' "$work/times" | sort -n |
        awk -v l="$label" '{ v[NR] = $1 } END { printf "%-12s %6.1f s\n", l, v[int((NR + 1) / 2)] }'
done
