-- Issue 24: the service now writes rollup sketches in a compact encoding (src/sketch.rs: a
-- tag byte 0x01, then varints; about a sixth of the 12-byte pairs SQL writes). Rows written
-- before (the backfills of migrations 2 and 3, every fold of the previous version) stay
-- readable as they are; the service re-encodes the hourly and daily ones, which long
-- windows read, in bounded batches after each fold (`PgStore::reencode_legacy`). These
-- partial indexes find them without scanning the tables, and are empty once done. Minute
-- rows are re-encoded only when a fold rewrites them (a one-event minute saves a few bytes).

CREATE INDEX IF NOT EXISTS trace_rollups_hour_legacy_sketch ON trace_rollups_hour (minute, model, service)
    WHERE substr(sketch, 1, 1) <> '\x01'::bytea;
CREATE INDEX IF NOT EXISTS trace_rollups_day_legacy_sketch ON trace_rollups_day (minute, model, service)
    WHERE substr(sketch, 1, 1) <> '\x01'::bytea;
