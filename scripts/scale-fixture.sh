#!/usr/bin/env bash
# A reproducible large project: DIR/environments/ with N environments s0001..sNNNN, each a
# copy of environments/staging.yaml under its own name (so each holds both stacks: the ECS
# Fargate platform and the Kubernetes service bundle with its RDS and ElastiCache).
# usage: scripts/scale-fixture.sh DIR N
set -euo pipefail
dir=$1
n=$2
src="$(cd "$(dirname "$0")/.." && pwd)/environments"
rm -rf "$dir/environments" "$dir/generated"
mkdir -p "$dir/environments"
cp "$src/schema.json" "$dir/environments/"
for i in $(seq 1 "$n"); do
  name=$(printf 's%04d' "$i")
  sed -e "s/^name: staging$/name: $name/" "$src/staging.yaml" >"$dir/environments/$name.yaml"
done
