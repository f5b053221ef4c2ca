#!/usr/bin/env bash
# Whole-process time of `keel synth --all` from a release build, in a scratch copy of the
# project (so generated/ in the checkout is untouched). Prints wall, user+sys CPU and max RSS.
# usage: scripts/bench-synth.sh [RUNS]
set -euo pipefail
runs=${1:-20}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin keel
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/keel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r environments "$work/"
"$bin" --root "$work" synth --all >/dev/null 2>&1   # warm the page cache
python3 - "$bin" "$work" "$runs" <<'PY'
import resource, statistics, subprocess, sys, time
binary, root, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
import os
def measure(args, command=None, env=None, label=""):
    command = command or [binary, "--root", root, *args]
    env = {**os.environ, **(env or {})}
    env.pop("CI", None)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(command, check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    name = ("keel " + " ".join(args) if args else " ".join(command)) + label
    print(f"{name} ({'release, ' if args else ''}{runs} runs): wall median {statistics.median(walls)*1000:.1f} ms "
          f"(min {min(walls)*1000:.1f} ms), cpu median {statistics.median(cpus)*1000:.1f} ms, "
          f"max rss so far {rss/1024:.1f} MB")
# What starting any process costs on this machine (the floor under every figure below).
measure([], ["/bin/true"])
measure(["--version"])
# One 120-resource root, comparable with cdktf synthesizing a 72-resource stack: with every
# file checked against the schema (a fresh checkout, and CI), and with the file unchanged
# since it last passed (src/env/schema_cache.rs).
one = ["synth", "prod", "--stack", "langgraph-platform"]
measure(one, env={"KEEL_SCHEMA_CACHE": "off"}, label=" [schema checked]")
measure(one, label=" [file passed before]")
# Everything: every environment, every stack.
measure(["synth", "--all"], env={"KEEL_SCHEMA_CACHE": "off"}, label=" [schema checked]")
measure(["synth", "--all"], label=" [files passed before]")
PY
