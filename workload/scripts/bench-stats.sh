#!/usr/bin/env bash
# Stats benchmark at a realistic shape (not a test): 50 model/service pairs with one event per
# minute each over $DAYS days (90 by default: 6.48 million events), stored in PostgreSQL with
# their rollups built, then, with no cache:
#   - uncached GET /v1/stats?window=${WINDOW} p50/p99, alone, with and without group_by;
#   - /health p99 (and /ready p99) while four clients loop on the same stats query;
#   - CPU time per sequential stats query, of the service and of PostgreSQL's processes
#     (from /proc, so it does not depend on the machine's load as wall times do).
#
#   bash workload/scripts/bench-stats.sh          (release build, then a few minutes of fill)
#
# Needs: curl, psql, python3; PostgreSQL is started by workload/scripts/ci-services.sh.
# ANALYTICS_API_BIN=path measures that binary instead (e.g. the previous version's, to
# compare on the same machine state). DAYS, PAIRS, WINDOW, QUERIES (sequential queries per
# figure), LOAD_SECS (length of the concurrent phase) and VACUUM_FULL (see below) change
# the shape; KEEP_DB=1 keeps
# the database for inspection, REUSE_DB=1 measures the kept one instead of filling a new one
# (with the binary that filled it: migrations are checksummed). The clients run on the same
# machine as the server and PostgreSQL and compete for their cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
DAYS=${DAYS:-90}
PAIRS=${PAIRS:-50}
WINDOW=${WINDOW:-${DAYS}d}
QUERIES=${QUERIES:-40}
LOAD_SECS=${LOAD_SECS:-15}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${ANALYTICS_API_BIN:-}" ]; then
    BIN=$ANALYTICS_API_BIN
else
    BIN=$CARGO_TARGET_DIR/release/analytics-api
    echo "== building release binary" >&2
    cargo build --release -q -p keel-workload --bin analytics-api
fi
eval "$(bash workload/scripts/ci-services.sh)"

export JWT_SECRET=bench-secret-bench-secret-bench-secret
TOKEN=$("$BIN" --mint-token bench)
PORT=${PORT:-18490}
URL=http://127.0.0.1:$PORT
BENCH_DB=keel_bench_stats
ADMIN=$TEST_DATABASE_URL
DB_URL=${ADMIN%/*}/$BENCH_DB
PID=""
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap stop EXIT

if [ -z "${REUSE_DB:-}" ]; then
    psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB"
fi
# Starts the service (which applies the migrations first) and waits until it is ready.
start() {
    env APP_HOST=127.0.0.1 API_PORT=$PORT API_METRICS_PORT=$((PORT + 1)) RUST_LOG=warn SKETCH_ENCODING=compact DATABASE_URL="$DB_URL" \
        "$BIN" >> /tmp/analytics-api-bench-stats.log 2>&1 &
    PID=$!
    for _ in $(seq 1 300); do curl -fs "$URL/ready" >/dev/null 2>&1 && break; sleep 0.2; done
    curl -fs "$URL/ready" >/dev/null || { cat /tmp/analytics-api-bench-stats.log >&2; exit 1; }
}
: > /tmp/analytics-api-bench-stats.log
start

if [ -z "${REUSE_DB:-}" ]; then
# One statement per day: $PAIRS events per minute (10 services x PAIRS/10 models), log-normal
# latencies around 200 ms. The rollup trigger is off during the fill, and the rollup
# migrations are then run again, so their backfill builds the rollups
# (the state the service's fold reaches, in a fraction of the time it takes to fold 6.48
# million events' deltas). The service is stopped meanwhile: its re-encoding of the rows
# the backfills write would deadlock with their TRUNCATEs.
echo "== filling $DAYS days x $PAIRS pairs x 1440 minutes" >&2
fill_start=$(date +%s)
psql -q "$DB_URL" -c "ALTER TABLE traces DISABLE TRIGGER USER"
for d in $(seq 0 $((DAYS - 1))); do
    psql -q -o /dev/null "$DB_URL" -c "SELECT setseed($d / ($DAYS + 1.0))" -c "
INSERT INTO traces (trace_id, ts, service, model, latency_ms, prompt_tokens, completion_tokens, cost_usd, status)
SELECT 'b-$d-' || g,
       now() - ($d * 1440 + g / $PAIRS) * interval '1 minute' - random() * interval '59 seconds',
       's' || (g % $PAIRS % 10), 'm' || (g % $PAIRS / 10),
       exp(5.3 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
       (random() * 4000)::int, (random() * 1000)::int, random() / 100,
       CASE WHEN random() < 0.02 THEN 'error' ELSE 'ok' END
FROM generate_series(0, 1440 * $PAIRS - 1) g"
done
psql -q "$DB_URL" -c "ALTER TABLE traces ENABLE TRIGGER USER"
stop
echo "== filled in $(( $(date +%s) - fill_start )) s; building the rollups" >&2
# Only the migrations that backfill rollups run again (2, 3 and 5, in order: each replaces
# the trigger function, and 5's is the current one); migration 4 only adds indexes.
for v in 2 3 5; do
    PGOPTIONS="-c client_min_messages=warning" psql -q -1 -v ON_ERROR_STOP=1 "$DB_URL" -f "$(printf 'workload/migrations/%04d_' "$v")"*.sql
done
echo "== rollups built after $(( $(date +%s) - fill_start )) s" >&2
start
fi
# Rollups backfilled by SQL hold legacy sketches until the service re-encodes them (migration
# 4, a batch per second): measure once none is left, as a database reaches after the upgrade.
if [ "$(psql -tA "$DB_URL" -c "SELECT to_regclass('trace_rollups_day_legacy_sketch') IS NOT NULL")" = t ]; then
    reencode_start=$(date +%s)
    while [ "$(psql -tA "$DB_URL" -c "SELECT (SELECT count(*) FROM trace_rollups_day WHERE substr(sketch, 1, 1) <> '\x01'::bytea)
                                            + (SELECT count(*) FROM trace_rollups_hour WHERE substr(sketch, 1, 1) <> '\x01'::bytea)
                                            + (SELECT count(*) FROM trace_rollups_day_grouped WHERE substr(sketch, 1, 1) <> '\x01'::bytea)")" != 0 ]; do
        [ $(( $(date +%s) - reencode_start )) -lt 900 ] || { echo "legacy sketches left after 900 s" >&2; exit 1; }
        sleep 1
    done
    echo "== legacy sketches re-encoded in $(( $(date +%s) - reencode_start )) s" >&2
fi
# Re-encoding rewrites every coarse row, and the tables keep the pages of the legacy rows:
# the README's upgrade ends with the operator's `VACUUM FULL` of the two coarse tables, after
# which they are as compact as those of a database that wrote compact sketches from the
# start. VACUUM_FULL=0 measures them as re-encoding leaves them instead.
if [ "${VACUUM_FULL:-1}" != 0 ]; then
    psql -q "$DB_URL" -c "VACUUM FULL trace_rollups_day" -c "VACUUM FULL trace_rollups_hour" -c "VACUUM FULL trace_rollups_day_grouped"
fi
psql -q "$DB_URL" -c "VACUUM ANALYZE"
psql -tA "$DB_URL" -c "SELECT 'table pages: ' || string_agg(relname || ' ' || pg_relation_size(oid) / 8192, ', ' ORDER BY relname)
                       FROM pg_class WHERE relname IN ('trace_rollups', 'trace_rollups_hour', 'trace_rollups_day', 'trace_rollups_day_grouped')" >&2
psql -tA "$DB_URL" -c "SELECT 'sketch bytes: day ' || sum(octet_length(sketch)) || ' in ' || count(*) || ' rows' FROM trace_rollups_day" \
    -c "SELECT 'sketch bytes: hour ' || sum(octet_length(sketch)) || ' in ' || count(*) || ' rows' FROM trace_rollups_hour" >&2

python3 - "$URL" "$TOKEN" "$WINDOW" "$QUERIES" "$LOAD_SECS" "$(psql -tA "$DB_URL" -c "SELECT count(*) FROM traces")" "$PID" <<'PY'
import http.client, os, sys, threading, time, urllib.parse

url, token, window, queries, load_secs, events, server_pid = sys.argv[1:8]
queries, load_secs = int(queries), float(load_secs)
u = urllib.parse.urlparse(url)
auth = {"Authorization": f"Bearer {token}"}

def get(conn, path, headers):
    t = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    r.read()
    return time.perf_counter() - t, r.status

def cpu_secs(pids):
    """User and system CPU seconds of the given processes so far (0 for one that exited)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / os.sysconf("SC_CLK_TCK")

def postgres_pids():
    pids = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "postgres":
                    pids.append(pid)
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
            pass
    return pids

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000

print(f"== {events} events, window={window}, no cache")
for q in ["", "&group_by=service", "&group_by=model"]:
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    path = f"/v1/stats?window={window}{q}"
    times, bad = [], 0
    get(conn, path, auth)  # warm-up, not counted: opens the stats pool's connection
    pg = postgres_pids()
    cpu0 = (cpu_secs([server_pid]), cpu_secs(pg))
    for _ in range(queries):
        dt, status = get(conn, path, auth)
        times.append(dt)
        bad += status != 200
    cpu = [(b - a) * 1000 / queries for a, b in zip(cpu0, (cpu_secs([server_pid]), cpu_secs(pg)))]
    print(f"GET {path:<45} p50 {pct(times, .5):8.1f} ms   p99 {pct(times, .99):8.1f} ms   ({queries} sequential, non-200: {bad})")
    print(f"    CPU per query: service {cpu[0]:5.1f} ms, PostgreSQL {cpu[1]:5.1f} ms")

stop = threading.Event()
stats_times, stats_bad = [], [0]
def loop():
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    while not stop.is_set():
        dt, status = get(conn, f"/v1/stats?window={window}&group_by=service", auth)
        stats_times.append(dt)
        stats_bad[0] += status != 200
clients = [threading.Thread(target=loop) for _ in range(4)]
for c in clients:
    c.start()
time.sleep(0.5)
probes = {"/health": [], "/ready": []}
end = time.time() + load_secs
while time.time() < end:
    for path, times in probes.items():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        dt, _ = get(conn, path, {})
        times.append(dt)
        conn.close()
    time.sleep(0.02)
stop.set()
for c in clients:
    c.join()
print(f"under 4 concurrent stats clients ({len(stats_times)} stats calls, p50 {pct(stats_times, .5):.1f} ms, "
      f"p99 {pct(stats_times, .99):.1f} ms, non-200: {stats_bad[0]}):")
for path, times in probes.items():
    print(f"  {path:<8} p50 {pct(times, .5):8.1f} ms   p99 {pct(times, .99):8.1f} ms   max {max(times) * 1000:8.1f} ms   ({len(times)} calls, new connection each)")
PY
stop
if [ -n "${KEEP_DB:-}" ]; then
    echo "== kept database $DB_URL (KEEP_DB)" >&2
else
    psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"
fi
