-- Hourly and daily rollups, so GET /v1/stats over a long window merges a row per pair and
-- day (and hours and minutes only at the window's two ends) instead of one per pair and
-- minute (src/store/postgres.rs, `RollupRanges`). Same columns as trace_rollups; `minute`
-- holds the first minute of the hour or day (UTC).
--
-- The trigger now also appends each delta row to trace_rollup_coarse_deltas, which the
-- service folds into both coarse tables (one replica at a time, as the minute deltas).
-- Stats read each level together with its deltas in one statement, so nothing is counted
-- twice or missed, whichever replica folded what. A replica of the previous version inserts
-- through the same trigger and folds only the minute deltas; the coarse deltas wait for a
-- replica of this version (after a rollback they accumulate, one row per minute and pair of
-- each batch, until the next roll forward folds them).

CREATE TABLE IF NOT EXISTS trace_rollups_hour (LIKE trace_rollups INCLUDING ALL);
CREATE TABLE IF NOT EXISTS trace_rollups_day (LIKE trace_rollups INCLUDING ALL);
CREATE TABLE IF NOT EXISTS trace_rollup_coarse_deltas (LIKE trace_rollups);
-- A day's sketch is a few KB: kept inline and uncompressed up to 8 KB rows, so a 90-day
-- query does not decompress thousands of them (pglz would, above the default 2 KB).
ALTER TABLE trace_rollups_hour SET (toast_tuple_target = 8160);
ALTER TABLE trace_rollups_day SET (toast_tuple_target = 8160);

CREATE OR REPLACE FUNCTION trace_rollup_delta() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    WITH minute_deltas AS (
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
        GROUP BY minute, model, service
        RETURNING *
    )
    INSERT INTO trace_rollup_coarse_deltas SELECT * FROM minute_deltas;
    RETURN NULL;
END
$$;

-- Inserts wait from here until this migration commits: the backfill sees every row
-- committed before, later ones reach the coarse deltas through the trigger.
LOCK TABLE traces IN SHARE ROW EXCLUSIVE MODE;

TRUNCATE trace_rollups_hour, trace_rollups_day, trace_rollup_coarse_deltas;
INSERT INTO trace_rollups_hour
SELECT period, model, service, sum(n)::bigint, sum(errors)::bigint, sum(prompt)::bigint,
       sum(completion)::bigint, sum(cost), min(lo), max(hi),
       string_agg(int4send(bucket) || int8send(n), ''::bytea ORDER BY bucket)
FROM (
    SELECT date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period, model, service,
           trace_latency_bucket(latency_ms) AS bucket, count(*) AS n,
           count(*) FILTER (WHERE status = 'error') AS errors,
           sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
           sum(cost_usd) AS cost, min(latency_ms) AS lo, max(latency_ms) AS hi
    FROM traces
    GROUP BY 1, 2, 3, 4
) b
GROUP BY period, model, service;

INSERT INTO trace_rollups_day
SELECT period, model, service, sum(n)::bigint, sum(errors)::bigint, sum(prompt)::bigint,
       sum(completion)::bigint, sum(cost), min(lo), max(hi),
       string_agg(int4send(bucket) || int8send(n), ''::bytea ORDER BY bucket)
FROM (
    SELECT date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period, model, service,
           trace_latency_bucket(latency_ms) AS bucket, count(*) AS n,
           count(*) FILTER (WHERE status = 'error') AS errors,
           sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
           sum(cost_usd) AS cost, min(latency_ms) AS lo, max(latency_ms) AS hi
    FROM traces
    GROUP BY 1, 2, 3, 4
) b
GROUP BY period, model, service;
