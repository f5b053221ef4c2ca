#!/usr/bin/env bash
# Slow-body memory benchmark (not a test): $CLIENTS authenticated clients each declare a
# 1 MiB body, send 960 KiB of it and stop; the script prints the binary's resident memory
# (VmRSS, VmHWM from /proc) while they hold, then after they close, and the ingest answers
# from /metrics. Run twice: with the body budget off (--body-budget-bytes 1000000000000, as
# before issue 24) and with the default budget (256 MiB).
#
#   bash workload/bench/slow-bodies.sh          (release build, then about 20 s)
#
# Needs: curl, python3 (Linux: reads /proc/PID/status). ANALYTICS_API_BIN=path measures that
# binary instead of building one; CLIENTS (default 600) sets the number of clients. The
# clients run on the same machine as the server and compete for its cores; the body read
# timeout (10 s) bounds how long they may hold.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${CLIENTS:-600}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${ANALYTICS_API_BIN:-}" ]; then
    BIN=$ANALYTICS_API_BIN
else
    BIN=$CARGO_TARGET_DIR/release/analytics-api
    echo "== building release binary" >&2
    cargo build --release -q -p keel-workload --bin analytics-api
fi
export JWT_SECRET=bench-secret-bench-secret-bench-secret
TOKEN=$("$BIN" --mint-token bench)
PORT=${PORT:-18600}
PID=""
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap stop EXIT

for budget in 1000000000000 default; do
    args=()
    [ "$budget" != default ] && args=(--body-budget-bytes "$budget")
    env APP_HOST=127.0.0.1 API_PORT=$PORT API_METRICS_PORT=$((PORT + 1)) RUST_LOG=warn \
        "$BIN" "${args[@]}" > /tmp/analytics-api-slow-bodies.log 2>&1 &
    PID=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break; sleep 0.1; done
    echo "== body budget: $budget"
    python3 - "$PORT" "$TOKEN" "$PID" "$CLIENTS" <<'PY'
import asyncio, collections, sys, time

port, token, pid, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def rss():
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            d[k] = f"{int(v.split()[0]) // 1024} MiB"
    return d

async def one(held):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write((f"POST /v1/traces HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
             f"Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n").encode())
    sent, err = 0, None
    try:
        while sent < 1048576 - 65536:
            w.write(b" " * 65536)
            sent += 65536
            await w.drain()
    except OSError as e:
        err = type(e).__name__
    held.append((w, err))

async def main():
    print("idle:", rss())
    held, t = [], time.time()
    await asyncio.gather(*(one(held) for _ in range(n)))
    print(f"{n} clients sent up to 960 KiB each in {time.time() - t:.1f} s;",
          "cut by the server:", collections.Counter(e for _, e in held if e))
    for _ in range(3):
        await asyncio.sleep(1)
        print(f"  holding, {time.time() - t:.1f} s:", rss())
    for w, _ in held:
        w.close()
    await asyncio.sleep(2)
    print("after they closed:", rss())

asyncio.run(main())
PY
    curl -fs "http://127.0.0.1:$((PORT + 1))/metrics" \
        | grep -E '^(http_requests_total\{method="POST",route="/v1/traces"|connections_shed_total)' || true
    stop
done
