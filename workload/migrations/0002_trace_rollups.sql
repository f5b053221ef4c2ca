-- Per-minute rollups of the traces, so GET /v1/stats merges a few rows per minute instead of
-- sorting every latency of the window (src/store/postgres.rs, src/sketch.rs).
--
-- A statement-level trigger on traces appends one delta row per (minute, model, service)
-- of each INSERT, from the rows actually inserted (a duplicate trace_id skipped by
-- ON CONFLICT DO NOTHING is not in the transition table, so it is never counted), in the
-- inserting transaction. Appending takes no lock that concurrent batches wait for; the
-- service folds the deltas into trace_rollups every second (one replica at a time).
-- Stats read both tables in one statement (one snapshot), so no event is counted twice.
--
-- Rolling deploy: the trigger maintains the rollups for every writer, so replicas still
-- running the previous version, which insert into traces only, are counted too. The
-- backfill below runs after the trigger exists, under a lock that keeps inserts out until
-- this migration commits: every row is either in the backfill or seen by the trigger.

-- Bucket of a latency in the mergeable sketch: ceil(log_γ(x)), γ = 101/99 (relative error
-- 1%); exact zeros get their own bucket. Must match sketch::bucket in Rust.
CREATE OR REPLACE FUNCTION trace_latency_bucket(latency double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN latency > 0
        THEN ceil(ln(latency) / ln(101.0::double precision / 99.0::double precision))::integer
        ELSE -2147483648 END
$$;

-- Start of the minute of ts, independent of the session's time zone (and built of immutable
-- functions only, so PostgreSQL inlines it).
CREATE OR REPLACE FUNCTION trace_minute(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_trunc('minute', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

-- One row per (minute, model, service). sketch: (bucket int4, count int8) pairs, big-endian,
-- by ascending bucket (int4send(bucket) || int8send(count)).
CREATE TABLE IF NOT EXISTS trace_rollups (
    minute            timestamptz NOT NULL,
    model             text NOT NULL,
    service           text NOT NULL,
    count             bigint NOT NULL,
    errors            bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cost_usd          double precision NOT NULL,
    latency_min       double precision NOT NULL,
    latency_max       double precision NOT NULL,
    sketch            bytea NOT NULL,
    PRIMARY KEY (minute, model, service)
);

-- Appended by the trigger, folded into trace_rollups by the service: same columns, no key
-- and no index (it holds about a second of batches, which stats scan whole, and every
-- index would cost each insert and each fold).
CREATE TABLE IF NOT EXISTS trace_rollup_deltas (LIKE trace_rollups);

CREATE OR REPLACE FUNCTION trace_rollup_delta() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO trace_rollup_deltas
    SELECT minute, model, service, sum(n)::bigint, sum(errors)::bigint, sum(prompt)::bigint,
           sum(completion)::bigint, sum(cost), min(lo), max(hi),
           string_agg(int4send(bucket) || int8send(n), ''::bytea ORDER BY bucket)
    FROM (
        SELECT trace_minute(ts) AS minute, model, service,
               trace_latency_bucket(latency_ms) AS bucket, count(*) AS n,
               count(*) FILTER (WHERE status = 'error') AS errors,
               sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
               sum(cost_usd) AS cost, min(latency_ms) AS lo, max(latency_ms) AS hi
        FROM new_rows
        GROUP BY 1, 2, 3, 4
    ) b
    GROUP BY minute, model, service;
    RETURN NULL;
END
$$;

-- Inserts wait from here until this migration commits (the backfill then sees every row
-- committed before; later ones go through the trigger).
LOCK TABLE traces IN SHARE ROW EXCLUSIVE MODE;

DROP TRIGGER IF EXISTS traces_rollup_delta ON traces;
CREATE TRIGGER traces_rollup_delta AFTER INSERT ON traces
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION trace_rollup_delta();

TRUNCATE trace_rollups, trace_rollup_deltas;
INSERT INTO trace_rollups
SELECT minute, model, service, sum(n)::bigint, sum(errors)::bigint, sum(prompt)::bigint,
       sum(completion)::bigint, sum(cost), min(lo), max(hi),
       string_agg(int4send(bucket) || int8send(n), ''::bytea ORDER BY bucket)
FROM (
    SELECT trace_minute(ts) AS minute, model, service,
           trace_latency_bucket(latency_ms) AS bucket, count(*) AS n,
           count(*) FILTER (WHERE status = 'error') AS errors,
           sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
           sum(cost_usd) AS cost, min(latency_ms) AS lo, max(latency_ms) AS hi
    FROM traces
    GROUP BY 1, 2, 3, 4
) b
GROUP BY minute, model, service;
