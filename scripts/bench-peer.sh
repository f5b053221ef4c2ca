#!/usr/bin/env bash
# keel against the CDK for Terraform peer, measured side by side on this machine: the peer's
# 72-resource `platform-prod` stack (`node main.js`) and keel's 120-resource prod
# langgraph-platform root (`keel synth prod --stack langgraph-platform`, release build), runs
# interleaved so both see the same machine. The peer app is built in a scratch folder from
# PEER_DIR (default ../shared/peers/cdktf beside the checkout; needs node and npm); nothing of
# it is kept. Prints medians of wall and user+sys CPU, and keel's share of the peer's time.
# usage: scripts/bench-peer.sh [RUNS]
set -euo pipefail
runs=${1:-20}
cd "$(dirname "$0")/.."
peer=${PEER_DIR:-$(cd .. && pwd)/shared/peers/cdktf}
[ -f "$peer/main.ts" ] || { echo "no peer app at $peer (set PEER_DIR)" >&2; exit 1; }
cargo build --release --quiet --bin keel
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/keel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$peer" "$work/peer"
rm -rf "$work/peer/node_modules" "$work/peer/cdktf.out"
(cd "$work/peer" && npm ci --no-audit --no-fund --silent && npx --no-install tsc -p .) >/dev/null
mkdir "$work/keel"
cp -r environments "$work/keel/"
"$bin" --root "$work/keel" synth --all >/dev/null 2>&1
python3 - "$bin" "$work" "$runs" <<'PY'
import os, resource, statistics, subprocess, sys, time
binary, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = {k: v for k, v in os.environ.items() if k != "CI"}
commands = {
    "cdktf node main.js (72 resources)": (["node", "main.js"], f"{work}/peer", env),
    "keel, schema checked": ([binary, "--root", f"{work}/keel", "synth", "prod", "--stack",
                              "langgraph-platform"], None, {**env, "KEEL_SCHEMA_CACHE": "off"}),
    "keel, file passed before": ([binary, "--root", f"{work}/keel", "synth", "prod", "--stack",
                                  "langgraph-platform"], None, env),
}
figures = {name: ([], []) for name in commands}
for name, (cmd, cwd, e) in commands.items():  # warm-up
    subprocess.run(cmd, cwd=cwd, env=e, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(runs):
    for name, (cmd, cwd, e) in commands.items():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=e, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figures[name][0].append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures[name][1].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
peer_wall = statistics.median(figures["cdktf node main.js (72 resources)"][0])
peer_cpu = statistics.median(figures["cdktf node main.js (72 resources)"][1])
print(f"side by side, {runs} interleaved runs each (medians):")
for name, (walls, cpus) in figures.items():
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"  {name:<36} wall {wall*1000:8.1f} ms ({wall/peer_wall:6.1%} of the peer)"
          f"   cpu {cpu*1000:8.1f} ms ({cpu/peer_cpu:6.1%})")
PY
