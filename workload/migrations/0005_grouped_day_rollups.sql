-- Issue 24: daily rollups merged per grouping, so a long stats window reads one row per day
-- and group (90 for the whole of a 90-day window, 90 per service or model) instead of one
-- per day and model/service pair (4,450 for 50 pairs). Same columns as trace_rollups_day;
-- `model` and `service` hold '' where a row spans every value (event names are never
-- empty): ('', '') the whole day, (model, '') one model, ('', service) one service.
--
-- The trigger now also appends each delta row to trace_rollup_grouped_deltas, which the
-- service folds into the three groupings in one transaction (one replica at a time, under
-- the fold lock). A stats query reads the whole days of its window from these rows and the
-- grouped deltas in one statement, so nothing is counted twice or missed. The service keeps
-- folding trace_rollups_day too, which replicas of the previous version read. A replica of
-- the previous version inserts through the same trigger and does not fold the grouped
-- deltas: during a rolling deploy or after a rollback they wait (still counted by stats)
-- for a replica of this version, one row per minute and pair of each batch.

CREATE TABLE IF NOT EXISTS trace_rollups_day_grouped (LIKE trace_rollups INCLUDING ALL);
CREATE TABLE IF NOT EXISTS trace_rollup_grouped_deltas (LIKE trace_rollups);
ALTER TABLE trace_rollups_day_grouped SET (toast_tuple_target = 8160);
-- The backfill below writes legacy sketches; the service re-encodes them as migration 4's
-- indexes let it do for the hourly and daily rollups.
CREATE INDEX IF NOT EXISTS trace_rollups_day_grouped_legacy_sketch ON trace_rollups_day_grouped (minute, model, service)
    WHERE substr(sketch, 1, 1) <> '\x01'::bytea;

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
    ), coarse_deltas AS (
        INSERT INTO trace_rollup_coarse_deltas SELECT * FROM minute_deltas
    )
    INSERT INTO trace_rollup_grouped_deltas SELECT * FROM minute_deltas;
    RETURN NULL;
END
$$;

-- Inserts wait from here until this migration commits: the backfill sees every row
-- committed before, later ones reach the grouped deltas through the trigger.
LOCK TABLE traces IN SHARE ROW EXCLUSIVE MODE;

TRUNCATE trace_rollups_day_grouped, trace_rollup_grouped_deltas;
INSERT INTO trace_rollups_day_grouped
SELECT period, coalesce(model, ''), coalesce(service, ''), sum(n)::bigint, sum(errors)::bigint,
       sum(prompt)::bigint, sum(completion)::bigint, sum(cost), min(lo), max(hi),
       string_agg(int4send(bucket) || int8send(n), ''::bytea ORDER BY bucket)
FROM (
    SELECT date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period, model, service,
           trace_latency_bucket(latency_ms) AS bucket, count(*) AS n,
           count(*) FILTER (WHERE status = 'error') AS errors,
           sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
           sum(cost_usd) AS cost, min(latency_ms) AS lo, max(latency_ms) AS hi
    FROM traces
    GROUP BY GROUPING SETS (
        (date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', trace_latency_bucket(latency_ms)),
        (date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model, trace_latency_bucket(latency_ms)),
        (date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', service, trace_latency_bucket(latency_ms))
    )
) b
GROUP BY period, model, service;
