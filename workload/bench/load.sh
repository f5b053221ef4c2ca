#!/usr/bin/env bash
# Load benchmark of the analytics API (not a test): builds the release binary, then for the
# in-memory store and for PostgreSQL drives POST /v1/traces with wrk (batches of $BATCH
# events over $CONNS connections for $DURATION s) and prints events/s and p50/p99 latency,
# then loads exactly 1,000,000 events (bench/fill.py) into a fresh store and measures
# GET /v1/stats?window=1d&group_by=model latency (one connection, no cache; with PostgreSQL
# also through the Redis cache, after one warming miss).
#
#   bash workload/bench/load.sh        (about 2 minutes after the release build)
#
# Needs: wrk (apt-get install -y wrk), curl, psql; PostgreSQL and Redis are started by
# workload/scripts/ci-services.sh. ANALYTICS_API_BIN=path measures that binary instead of
# building one (to compare with another version on the same machine state). Logs at RUST_LOG=warn (per-request access logs off).
# The load generator runs on the same machine as the server and competes for its cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
BATCH=${BATCH:-100}
CONNS=${CONNS:-16}
DURATION=${DURATION:-10}
TARGET_EVENTS=${TARGET_EVENTS:-1000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
LUA=workload/bench/ingest.lua

command -v wrk >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk" >&2; exit 1; }
if [ -n "${ANALYTICS_API_BIN:-}" ]; then   # another build (e.g. the previous version), as is
    BIN=$ANALYTICS_API_BIN
else
    BIN=$CARGO_TARGET_DIR/release/analytics-api
    echo "== building release binary" >&2
    cargo build --release -q -p keel-workload --bin analytics-api
fi
eval "$(bash workload/scripts/ci-services.sh)"

export JWT_SECRET=bench-secret-bench-secret-bench-secret
TOKEN=$("$BIN" --mint-token bench)
TS=$(date -u -d '-5 min' +%Y-%m-%dT%H:%M:%SZ)
PORT=${PORT:-18480}
MPORT=$((PORT + 1))
URL=http://127.0.0.1:$PORT
PID=""
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap stop EXIT

start() { # start [env...]
    env APP_HOST=127.0.0.1 API_PORT=$PORT API_METRICS_PORT=$MPORT RUST_LOG=warn "$@" \
        "$BIN" --memory-max-events 8000000 > /tmp/analytics-api-bench.log 2>&1 &
    PID=$!
    for _ in $(seq 1 100); do curl -fs "$URL/health" >/dev/null 2>&1 && return; sleep 0.1; done
    cat /tmp/analytics-api-bench.log >&2; exit 1
}

# wrk_summary LABEL EVENTS_PER_REQUEST -- wrk args
wrk_summary() {
    local label=$1 per=$2; shift 3
    local out; out=$(wrk --latency "$@")
    local rps p50 p99 errs n
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '/^ +50%/ {print $2}' <<<"$out")
    p99=$(awk '/^ +99%/ {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    [ -z "$errs" ] || echo "WARNING: $label: $errs non-2xx responses; the figures are not valid" >&2
    printf '%-48s %10s req/s %10s events/s   p50 %9s   p99 %9s   (%s requests, non-2xx %s)\n' \
        "$label" "$rps" "$(awk -v r="$rps" -v p="$per" 'BEGIN {if (p > 0) printf "%.0f", r * p; else printf "-"}')" "$p50" "$p99" "$n" "${errs:-0}"
}

count() { curl -fs -H "Authorization: Bearer $TOKEN" "$URL/v1/stats?window=1d" | sed -n 's/.*"total":{"key":null,"count":\([0-9]*\).*/\1/p'; }

stats_bench() { # label
    wrk_summary "$1" 0 -- -t1 -c1 -d10s --timeout 30s -H "Authorization: Bearer $TOKEN" "$URL/v1/stats?window=1d&group_by=model"
}

echo "== results (batch $BATCH events, $CONNS connections, ${DURATION}s, $(nproc) cores shared with wrk)"

# --- in memory ---
start
wrk_summary "ingest, in-memory" "$BATCH" -- -t1 -c"$CONNS" -d"${DURATION}s" -s "$LUA" "$URL/v1/traces" -- "$BATCH" "$TS" "$TOKEN" mem
stop
start   # a fresh store holding exactly $TARGET_EVENTS events
python3 workload/bench/fill.py "$URL/v1/traces" "$TOKEN" "$TARGET_EVENTS"
stats_bench "GET /v1/stats, in-memory, $(count) events"
stop

# --- PostgreSQL ---
BENCH_DB=keel_bench
ADMIN=$TEST_DATABASE_URL
psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB"
DB_URL=${ADMIN%/*}/$BENCH_DB
start DATABASE_URL="$DB_URL"
wrk_summary "ingest, PostgreSQL" "$BATCH" -- -t1 -c"$CONNS" -d"${DURATION}s" -s "$LUA" "$URL/v1/traces" -- "$BATCH" "$TS" "$TOKEN" pg
psql -q "$DB_URL" -c "TRUNCATE traces"   # exactly $TARGET_EVENTS events for the stats figures
if [ "$(psql -tA "$DB_URL" -c "SELECT to_regclass('trace_rollups') IS NOT NULL")" = t ]; then
    psql -q "$DB_URL" -c "TRUNCATE trace_rollups, trace_rollup_deltas"
fi
python3 workload/bench/fill.py "$URL/v1/traces" "$TOKEN" "$TARGET_EVENTS"
if [ "$(psql -tA "$DB_URL" -c "SELECT to_regclass('trace_rollups') IS NOT NULL")" = t ]; then
    # Steady state: the service has folded the ingest deltas into the per-minute rollups.
    for _ in $(seq 1 120); do
        [ "$(psql -tA "$DB_URL" -c "SELECT count(*) FROM trace_rollup_deltas")" = 0 ] && break
        sleep 0.5
    done
    psql -q "$DB_URL" -c "VACUUM ANALYZE trace_rollups" -c "VACUUM ANALYZE trace_rollup_deltas"
fi
psql -q "$DB_URL" -c "VACUUM ANALYZE traces"
stats_bench "GET /v1/stats, PostgreSQL, $(count) events"
stop
start DATABASE_URL="$DB_URL" REDIS_URL="$TEST_REDIS_URL" CACHE_DEFAULT_TTL=60
redis-cli -u "$TEST_REDIS_URL" --scan --pattern 'analytics-api:*' | xargs -r redis-cli -u "$TEST_REDIS_URL" del >/dev/null
curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "$URL/v1/stats?window=1d&group_by=model"   # the one miss
stats_bench "GET /v1/stats, PostgreSQL + Redis cache"
stop
psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"
