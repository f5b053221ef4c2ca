-- Trace events; trace_id is the idempotency key (a duplicate is not stored twice).
CREATE TABLE IF NOT EXISTS traces (
    trace_id          text PRIMARY KEY,
    ts                timestamptz NOT NULL,
    service           text NOT NULL,
    model             text NOT NULL,
    latency_ms        double precision NOT NULL CHECK (latency_ms >= 0),
    prompt_tokens     bigint NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL CHECK (completion_tokens >= 0),
    cost_usd          double precision NOT NULL CHECK (cost_usd >= 0),
    status            text NOT NULL CHECK (status IN ('ok', 'error')),
    attributes        jsonb,
    ingested_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS traces_ts_idx ON traces (ts);
