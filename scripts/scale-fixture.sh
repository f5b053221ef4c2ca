#!/usr/bin/env bash
# A reproducible large project: DIR/environments/ with N environments s0001..sNNNN, each a
# copy of environments/staging.yaml under its own name (so each holds every stack: the ECS
# Fargate platform, the Kubernetes service bundle with its RDS and ElastiCache, and the rest).
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
  # One GitHub OIDC provider per account: the first environment owns it.
  oidc=existing
  [ "$i" = 1 ] && oidc=create
  sed -e "s/^name: staging$/name: $name/" \
    -e "s/github_oidc_provider: create$/github_oidc_provider: $oidc/" \
    "$src/staging.yaml" >"$dir/environments/$name.yaml"
done
