#!/usr/bin/env bash
# Whole-process scale of keel on a generated project (scripts/scale-fixture.sh) holding about
# 1k, 5k, 10k and 20k Terraform resources plus their Kubernetes objects: `synth --all` in a
# new copy of the project (no generated/ yet), `synth --all` over an existing one, `check` and `list`, each timed with
# /usr/bin/time -v (apt-get install -y time). Prints wall, user+sys CPU, peak RSS and the cost
# per resource at each size; a flat per-resource figure is linear growth.
# usage: scripts/bench-scale.sh [RUNS] [SIZES...]
set -euo pipefail
runs=${1:-3}
shift || true
sizes=${*:-1000 5000 10000 20000}
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 1; }
cargo build --release --quiet --bin keel
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/keel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$bin" "$work" "$runs" $sizes <<'PY'
import re, statistics, subprocess, sys
binary, work, runs, sizes = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(s) for s in sys.argv[4:]]

def fixture(n):
    root = f"{work}/n{n}"
    subprocess.run(["scripts/scale-fixture.sh", root, str(n)], check=True)
    return root

def counts(root):
    out = subprocess.run([binary, "--root", root, "list"], check=True, capture_output=True, text=True).stdout
    tf = sum(int(m) for m in re.findall(r"(\d+) terraform resources", out))
    k8s = sum(int(m) for m in re.findall(r"(\d+) kubernetes objects", out))
    return tf, k8s

def fresh_copy(root, i):
    # A new project folder per run, as a fresh clone is: deleting generated/ and writing it
    # again at once measures the disk (with `discard`, ext4 makes the next file creations wait
    # for the deletion: 0.3 s became 1.4-3.3 s here), not keel.
    copy = f"{root}-fresh-{i}"
    subprocess.run(["mkdir", "-p", copy], check=True)
    subprocess.run(["cp", "-r", f"{root}/environments", copy], check=True)
    return copy

def timed(root, args, fresh=False):
    walls, cpus, rss = [], [], []
    roots = [fresh_copy(root, i) for i in range(runs)] if fresh else [root] * runs
    subprocess.run(["sync"], check=True)
    for run_root in roots:
        r = subprocess.run(["/usr/bin/time", "-v", binary, "--root", run_root, *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"keel {' '.join(args)} failed:\n{r.stderr}")
        t = r.stderr
        wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", t)
        walls.append(int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3)))
        cpus.append(float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1))
                    + float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1)))
        rss.append(int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)))
    if fresh:
        subprocess.run(["rm", "-rf", *roots], check=True)
    return statistics.median(walls), statistics.median(cpus), max(rss)

one = fixture(1)
per_env, _ = counts(one)
print(f"fixture: each environment holds {per_env} Terraform resources; release build, median of {runs} runs\n")
print(f"{'resources':>9} {'k8s objs':>8} {'envs':>4}  {'command':<18} {'wall s':>7} {'cpu s':>6} {'rss MB':>6} {'wall us/res':>11} {'cpu us/res':>10}")
for target in sizes:
    n = -(-target // per_env)
    root = fixture(n)
    tf, k8s = counts(root)
    subprocess.run([binary, "--root", root, "synth", "--all"], check=True, capture_output=True)
    rows = [
        ("synth --all (new)", ["synth", "--all"], True),
        ("synth --all", ["synth", "--all"], False),
        ("check", ["check"], False),
        ("list", ["list"], False),
    ]
    for name, args, fresh in rows:
        wall, cpu, rss = timed(root, args, fresh)
        print(f"{tf:>9} {k8s:>8} {n:>4}  {name:<18} {wall:>7.3f} {cpu:>6.3f} {rss/1024:>6.1f} {wall/tf*1e6:>11.1f} {cpu/tf*1e6:>10.1f}")
    subprocess.run(["rm", "-rf", root], check=True)
PY
