#!/usr/bin/env bash
# Installs (when missing) and starts the PostgreSQL and Redis servers that the workload's
# integration tests use, on 127.0.0.1, and prints the variables the tests read:
#
#   eval "$(bash workload/scripts/ci-services.sh)"
#
# Only `export ...` lines go to stdout; progress goes to stderr. Idempotent: a second run
# reuses the running servers (same ports, same data directory). Works as root on a fresh
# Debian 12 machine (the servers then run as the `postgres` user / as root for Redis) and as
# an ordinary user when the packages are already installed.
#
# Environment:
#   KEEL_SERVICES_DIR  state directory (default /tmp/keel-workload-services)
#   KEEL_PG_PORT       preferred PostgreSQL port (default 55432; the next free one is used)
#   KEEL_REDIS_PORT    preferred Redis port (default 56379; the next free one is used)
set -euo pipefail

log() { printf 'ci-services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

STATE=${KEEL_SERVICES_DIR:-/tmp/keel-workload-services}
DB_NAME=keel_test

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    [ -n "$d" ] && [ -x "$d/initdb" ] && printf '%s' "$d"
}

# --- packages ---------------------------------------------------------------------------
if [ -z "$(pg_bindir)" ] || ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    [ "$(id -u)" = 0 ] || die "postgresql/redis-server are not installed and this is not root; run: apt-get install -y postgresql redis-server"
    log "installing postgresql and redis-server (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql redis-server >&2
fi
BIN=$(pg_bindir) || true
[ -n "$BIN" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p=$1
    while port_in_use "$p"; do p=$((p + 1)); done
    printf '%s' "$p"
}

mkdir -p "$STATE"
chmod 755 "$STATE"

# Run PostgreSQL tools as `postgres` when root (initdb refuses root).
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "user postgres is missing (install the postgresql package)"
    as_pg() { runuser -u postgres -- "$@"; }
    PG_OWNER=postgres
else
    as_pg() { "$@"; }
    PG_OWNER=$(id -un)
fi

# --- PostgreSQL -------------------------------------------------------------------------
PGDATA=$STATE/pg
if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb in $PGDATA"
    mkdir -p "$PGDATA"
    chown "$PG_OWNER" "$PGDATA"
    chmod 700 "$PGDATA"
    as_pg "$BIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-instructions >&2
fi
if as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    PG_PORT=$(cat "$STATE/pg.port")
    log "postgresql already running on 127.0.0.1:$PG_PORT"
else
    PG_PORT=$(free_port "${KEEL_PG_PORT:-55432}")
    log "starting postgresql on 127.0.0.1:$PG_PORT"
    as_pg "$BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PGDATA -c max_connections=200 -c fsync=on" >&2 \
        || { tail -n 20 "$PGDATA/server.log" >&2 || true; die "postgresql did not start"; }
    printf '%s' "$PG_PORT" > "$STATE/pg.port"
fi
PSQL=(psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
if [ "$("${PSQL[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    log "creating database $DB_NAME"
    "${PSQL[@]}" -c "CREATE DATABASE $DB_NAME" >&2
fi

# --- Redis ------------------------------------------------------------------------------
REDIS_PORT=""
if [ -f "$STATE/redis.port" ]; then
    p=$(cat "$STATE/redis.port")
    if [ "$(redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null || true)" = PONG ]; then
        REDIS_PORT=$p
        log "redis already running on 127.0.0.1:$REDIS_PORT"
    fi
fi
if [ -z "$REDIS_PORT" ]; then
    REDIS_PORT=$(free_port "${KEEL_REDIS_PORT:-56379}")
    log "starting redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
        --dir "$STATE" --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" \
        --save "" --appendonly no >&2
    for _ in $(seq 1 100); do
        [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" = PONG ] && break
        sleep 0.1
    done
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" = PONG ] \
        || { tail -n 20 "$STATE/redis.log" >&2 || true; die "redis-server did not start"; }
    printf '%s' "$REDIS_PORT" > "$STATE/redis.port"
fi

printf 'export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:%s/%s\n' "$PG_PORT" "$DB_NAME"
printf 'export TEST_REDIS_URL=redis://127.0.0.1:%s/0\n' "$REDIS_PORT"
