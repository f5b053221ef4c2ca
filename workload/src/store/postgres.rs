//! The PostgreSQL store: embedded migrations run at start (under sqlx's advisory lock, so
//! replicas may start together), one multi-row `INSERT ... SELECT FROM UNNEST(...)` per batch,
//! and stats merged from rollups ([`PgStore::stats`]). Uses runtime-checked queries, so no
//! database is needed at build time.
//!
//! Ingest and stats use separate pools with their own statement timeouts, so slow stats
//! queries can neither starve ingest of connections nor fail readiness; every call is also
//! bounded on the client side, so a database that stops answering (frozen, partitioned)
//! costs a 503 after a bound rather than a hung request. Rows of a batch are inserted in
//! trace-id order, so concurrent batches sharing ids lock them in the same order and do not
//! deadlock; a deadlock or serialization victim is retried once anyway.
//!
//! The migrations need only what a role owning its own schema may do (`CREATE TABLE` and
//! `CREATE INDEX` in the first schema of its `search_path`), no superuser or database-level
//! statement, so the service can log in as a least-privilege role.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, SqlStr};

use crate::event::TraceEvent;
use crate::sketch::{Sketch, SketchError};
use crate::stats::{self, GroupBy, GroupStats, Percentiles, Stats, StatsQuery};

use super::{InsertOutcome, PING_TIMEOUT, PoolUsage, StoreError};

/// The embedded migrations, in order.
/// Applied migrations this binary does not know (a newer version's, after a rollback) are
/// ignored rather than refused, so an older binary still starts during a rolling deploy or
/// a rollback; each migration keeps the previous version working, except that binaries
/// before migration 4 cannot read the compact sketches this one writes (see the README).
pub fn migrator() -> Migrator {
    let migration = |version, name, sql| {
        Migration::new(
            version,
            Cow::Borrowed(name),
            MigrationType::Simple,
            SqlStr::from_static(sql),
            false,
        )
    };
    let mut migrator = Migrator::with_migrations(vec![
        migration(
            1,
            "create traces",
            include_str!("../../migrations/0001_create_traces.sql"),
        ),
        migration(
            2,
            "trace rollups",
            include_str!("../../migrations/0002_trace_rollups.sql"),
        ),
        migration(
            3,
            "coarse rollups",
            include_str!("../../migrations/0003_coarse_rollups.sql"),
        ),
        migration(
            4,
            "compact sketches",
            include_str!("../../migrations/0004_compact_sketches.sql"),
        ),
        migration(
            5,
            "grouped day rollups",
            include_str!("../../migrations/0005_grouped_day_rollups.sql"),
        ),
    ]);
    migrator.set_ignore_missing(true);
    migrator
}

/// Pool settings: `max` connections in all, a quarter of them (at least one) for stats and
/// the rest (at least one) for ingest and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSizes {
    /// Maximum connections, both pools together (one more when `max` is 1).
    pub max: u32,
    /// Minimum connections kept open in the ingest pool.
    pub min: u32,
}

impl PoolSizes {
    /// Maximum connections of the stats pool.
    pub fn stats_max(self) -> u32 {
        (self.max / 4).max(1)
    }

    /// Maximum connections of the ingest pool.
    pub fn ingest_max(self) -> u32 {
        self.max.saturating_sub(self.stats_max()).max(1)
    }
}

/// Time bounds of database work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgTimeouts {
    /// Waiting for a pool connection (including opening one).
    pub acquire: Duration,
    /// Server-side `statement_timeout` of the ingest pool's sessions.
    pub insert_statement: Duration,
    /// Server-side `statement_timeout` of the stats pool's sessions.
    pub stats_statement: Duration,
}

impl Default for PgTimeouts {
    fn default() -> Self {
        PgTimeouts {
            acquire: Duration::from_secs(3),
            insert_statement: Duration::from_secs(5),
            stats_statement: Duration::from_secs(10),
        }
    }
}

const INSERT: &str = "\
INSERT INTO traces (trace_id, ts, service, model, latency_ms, prompt_tokens, completion_tokens, cost_usd, status, attributes)
SELECT t.trace_id, t.ts, t.service, t.model, t.latency_ms, t.prompt_tokens, t.completion_tokens, t.cost_usd, t.status, t.attributes::jsonb
FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::float8[], $6::int8[], $7::int8[], $8::float8[], $9::text[], $10::text[])
  AS t(trace_id, ts, service, model, latency_ms, prompt_tokens, completion_tokens, cost_usd, status, attributes)
ON CONFLICT (trace_id) DO NOTHING";

/// Rows to merge for a stats query: minute rollups and deltas over two minute ranges
/// (`$1..$2`, `$3..$4`), hourly rollups and the coarse deltas (per minute) over two hour
/// ranges (`$5..$6`, `$7..$8`), and over one day range (`$9..$10`) the grouped daily
/// rollups of one grouping (`$days` selects it: see migration 5) and the grouped deltas;
/// see [`RollupRanges`]. One statement, so one snapshot: a fold moving deltas into a level
/// is seen entirely or not at all.
macro_rules! stats_rows {
    ($days:literal) => {
        concat!(
            "\
SELECT model, service, count, errors, prompt_tokens, completion_tokens, cost_usd, latency_min, latency_max, sketch
FROM trace_rollups WHERE (minute >= $1 AND minute < $2) OR (minute >= $3 AND minute < $4)
UNION ALL
SELECT model, service, count, errors, prompt_tokens, completion_tokens, cost_usd, latency_min, latency_max, sketch
FROM trace_rollup_deltas WHERE (minute >= $1 AND minute < $2) OR (minute >= $3 AND minute < $4)
UNION ALL
SELECT model, service, count, errors, prompt_tokens, completion_tokens, cost_usd, latency_min, latency_max, sketch
FROM trace_rollups_hour WHERE (minute >= $5 AND minute < $6) OR (minute >= $7 AND minute < $8)
UNION ALL
SELECT model, service, count, errors, prompt_tokens, completion_tokens, cost_usd, latency_min, latency_max, sketch
FROM trace_rollup_coarse_deltas WHERE (minute >= $5 AND minute < $6) OR (minute >= $7 AND minute < $8)
UNION ALL
SELECT model, service, count, errors, prompt_tokens, completion_tokens, cost_usd, latency_min, latency_max, sketch
FROM trace_rollups_day_grouped WHERE minute >= $9 AND minute < $10 AND ",
            $days,
            "
UNION ALL
SELECT model, service, count, errors, prompt_tokens, completion_tokens, cost_usd, latency_min, latency_max, sketch
FROM trace_rollup_grouped_deltas WHERE minute >= $9 AND minute < $10"
        )
    };
}

/// A stats query: the rows of [`stats_rows!`] (with the grouped daily rollups of `$days`)
/// summed per group (`$key`: a constant for the whole window, or `model` or `service`) in
/// PostgreSQL, one row per group, with their sketches concatenated, each after its length
/// (a 4-byte big-endian integer), for [`merge_groups`]. Issue 24: a 90-day window held
/// about 7,400 rows; fetching and decoding each of them took as much of the service's CPU
/// as merging their sketches.
macro_rules! stats_by {
    ($key:literal, $days:literal) => {
        concat!(
            "SELECT ",
            $key,
            " AS key, sum(count)::int8, sum(errors)::int8, sum(prompt_tokens)::int8, \
             sum(completion_tokens)::int8, sum(cost_usd), min(latency_min), max(latency_max), \
             string_agg(int4send(octet_length(sketch)) || sketch, ''::bytea) FROM (",
            stats_rows!($days),
            ") r GROUP BY 1"
        )
    };
}

/// [`stats_by!`] for each grouping.
const STATS_TOTAL: &str = stats_by!("''::text", "model = '' AND service = ''");
const STATS_BY_MODEL: &str = stats_by!("model", "model <> '' AND service = ''");
const STATS_BY_SERVICE: &str = stats_by!("service", "model = '' AND service <> ''");

/// Takes up to $1 rows out of a delta table, for folding into the rollups.
macro_rules! take_deltas {
    ($deltas:literal) => {
        concat!(
            "DELETE FROM ",
            $deltas,
            " WHERE ctid = ANY(ARRAY(SELECT ctid FROM ",
            $deltas,
            " LIMIT $1)) RETURNING minute, model, service, count, errors, prompt_tokens, \
             completion_tokens, cost_usd, latency_min, latency_max, sketch"
        )
    };
}

/// The statements that fold merged rows into one rollup table.
struct RollupTable {
    /// Seconds per row (60, 3600 or 86,400): rows start at multiples of it since the epoch.
    period_secs: i64,
    /// The rows of the given keys, locked.
    rows_of: &'static str,
    /// Writes merged rows (replacing the previous ones).
    put: &'static str,
}

macro_rules! rollup_table {
    ($table:literal, $period_secs:expr) => {
        RollupTable {
            period_secs: $period_secs,
            rows_of: concat!(
                "SELECT r.minute, r.model, r.service, r.count, r.errors, r.prompt_tokens, \
                 r.completion_tokens, r.cost_usd, r.latency_min, r.latency_max, r.sketch FROM ",
                $table,
                " r JOIN UNNEST($1::timestamptz[], $2::text[], $3::text[]) AS k(minute, model, service) \
                 ON r.minute = k.minute AND r.model = k.model AND r.service = k.service \
                 ORDER BY r.minute, r.model, r.service FOR UPDATE OF r"
            ),
            put: concat!(
                "INSERT INTO ",
                $table,
                " (minute, model, service, count, errors, prompt_tokens, completion_tokens, \
                 cost_usd, latency_min, latency_max, sketch) \
                 SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::int8[], \
                 $5::int8[], $6::int8[], $7::int8[], $8::float8[], $9::float8[], $10::float8[], $11::bytea[]) \
                 ON CONFLICT (minute, model, service) DO UPDATE SET \
                 count = EXCLUDED.count, errors = EXCLUDED.errors, prompt_tokens = EXCLUDED.prompt_tokens, \
                 completion_tokens = EXCLUDED.completion_tokens, cost_usd = EXCLUDED.cost_usd, \
                 latency_min = EXCLUDED.latency_min, latency_max = EXCLUDED.latency_max, sketch = EXCLUDED.sketch"
            ),
        }
    };
}

/// The statements that re-encode a coarse table's legacy sketches (migration 4).
struct LegacySketches {
    /// Up to $1 rows with a legacy sketch, in key order, as many as fit $2 sketch bytes
    /// (the first always), locked.
    take: &'static str,
    /// Replaces the sketches of the given keys.
    put: &'static str,
}

macro_rules! legacy_sketches {
    ($table:literal) => {
        LegacySketches {
            take: concat!(
                "SELECT t.minute, t.model, t.service, t.sketch, t.latency_min, t.latency_max FROM ",
                $table,
                " t JOIN (SELECT minute, model, service FROM (\
                 SELECT minute, model, service, \
                 sum(octet_length(sketch)) OVER (ORDER BY minute, model, service) - octet_length(sketch) AS before \
                 FROM ",
                $table,
                " WHERE substr(sketch, 1, 1) <> '\\x01'::bytea ORDER BY minute, model, service LIMIT $1) s \
                 WHERE before = 0 OR before < $2) k USING (minute, model, service) \
                 WHERE substr(t.sketch, 1, 1) <> '\\x01'::bytea \
                 ORDER BY t.minute, t.model, t.service FOR UPDATE OF t"
            ),
            put: concat!(
                "UPDATE ",
                $table,
                " t SET sketch = k.sketch \
                 FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::bytea[]) \
                 AS k(minute, model, service, sketch) \
                 WHERE t.minute = k.minute AND t.model = k.model AND t.service = k.service"
            ),
        }
    };
}

/// Coarse tables whose legacy sketches the service re-encodes, the daily ones per grouping
/// first (a long window reads mostly those).
const LEGACY_SKETCHES: [LegacySketches; 3] = [
    legacy_sketches!("trace_rollups_day_grouped"),
    legacy_sketches!("trace_rollups_day"),
    legacy_sketches!("trace_rollups_hour"),
];

/// Whether any hourly or daily rollup holds a legacy sketch (a probe of the partial indexes
/// of migrations 4 and 5).
const ANY_LEGACY_SKETCH: &str = "\
SELECT EXISTS (SELECT 1 FROM trace_rollups_day_grouped WHERE substr(sketch, 1, 1) <> '\\x01'::bytea)
    OR EXISTS (SELECT 1 FROM trace_rollups_day WHERE substr(sketch, 1, 1) <> '\\x01'::bytea)
    OR EXISTS (SELECT 1 FROM trace_rollups_hour WHERE substr(sketch, 1, 1) <> '\\x01'::bytea)";

/// Most rows and sketch bytes re-encoded per coarse table and fold tick, so re-encoding a
/// large backfill holds neither many locks nor much memory at once.
pub const REENCODE_BATCH: (i64, i64) = (5_000, 8 << 20);

const MINUTE_ROLLUPS: RollupTable = rollup_table!("trace_rollups", 60);
const HOUR_ROLLUPS: RollupTable = rollup_table!("trace_rollups_hour", 3600);
const DAY_ROLLUPS: RollupTable = rollup_table!("trace_rollups_day", 86_400);
const DAY_GROUPED_ROLLUPS: RollupTable = rollup_table!("trace_rollups_day_grouped", 86_400);

/// Which names of a delta row the rows it is folded into keep: both (the rollups per
/// pair), or one or neither (the grouped daily rollups of migration 5, '' in the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Pair,
    Model,
    Service,
    Neither,
}

/// Half-open time ranges `[start, end)` (empty when `start == end`).
pub type Range = (DateTime<Utc>, DateTime<Utc>);

/// How a stats window `[from, to)` of whole minutes splits over the rollup levels: the
/// whole days inside it from the daily rollups, the whole hours left at either end from
/// the hourly ones, and the minutes left at either end from the minute ones. A 90-day
/// window thus merges at most 90 + 2·23 + 2·59 rows per pair instead of 129,600.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupRanges {
    /// Minute ranges (before the first whole hour, after the last).
    pub minutes: [Range; 2],
    /// Hour ranges (before the first whole day, after the last).
    pub hours: [Range; 2],
    /// The whole days.
    pub days: Range,
}

/// The start of the period of `secs` seconds (since the epoch) holding `t`.
fn period_start(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    // A period boundary within chrono's range whenever `t` is.
    DateTime::from_timestamp(t.timestamp().div_euclid(secs) * secs, 0).unwrap_or(t)
}

/// The first period boundary at or after `t`.
fn period_ceil(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let start = period_start(t, secs);
    if start == t {
        t
    } else {
        start + chrono::Duration::seconds(secs)
    }
}

impl RollupRanges {
    /// The split of `[from, to)`.
    pub fn of(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let empty = (to, to);
        let (h0, h1) = (period_ceil(from, 3600), period_start(to, 3600));
        if h0 >= h1 {
            return RollupRanges {
                minutes: [(from, to), empty],
                hours: [empty; 2],
                days: empty,
            };
        }
        let (d0, d1) = (period_ceil(h0, 86_400), period_start(h1, 86_400));
        let (hours, days) = if d0 >= d1 {
            ([(h0, h1), empty], empty)
        } else {
            ([(h0, d0), (d1, h1)], (d0, d1))
        };
        RollupRanges {
            minutes: [(from, h0), (h1, to)],
            hours,
            days,
        }
    }
}

/// Advisory lock key of the fold, so one replica folds at a time (`keelroll` in ASCII).
pub const FOLD_LOCK: i64 = 0x6b65_656c_726f_6c6c;

/// Bounds of the fold transaction, set first thing in it: a replica frozen while folding
/// (holding the fold lock and row locks) loses its session after 5 s idle, so another
/// replica folds instead of the deltas piling up; and a fold waits at most 2 s for a row
/// lock.
pub const FOLD_TRANSACTION_BOUNDS: &str =
    "SET LOCAL idle_in_transaction_session_timeout = '5s'; SET LOCAL lock_timeout = '2s'";

/// Deletes up to $2 raw events older than $1 (one bounded batch).
const PURGE_EVENTS: &str = "\
DELETE FROM traces WHERE ctid = ANY(ARRAY(SELECT ctid FROM traces WHERE ts < $1 LIMIT $2))";

/// Deletes up to $2 rows older than $1 from a rollup or delta table.
macro_rules! purge_rows {
    ($table:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE ctid = ANY(ARRAY(SELECT ctid FROM ",
            $table,
            " WHERE minute < $1 LIMIT $2))"
        )
    };
}

/// Rows deleted per statement by [`PgStore::purge_before`] in production: each batch is its
/// own short transaction, well inside the ingest statement timeout.
pub const PURGE_BATCH: i64 = 5_000;

/// How often each replica applies the retention.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(600);

/// What [`PgStore::purge_before`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Raw events.
    pub events: u64,
    /// Rollup and delta rows, every level.
    pub rollups: u64,
    /// Statements run (each deleting at most the batch size).
    pub batches: u64,
}

/// Most deltas folded in one transaction.
const FOLD_BATCH: i64 = 20_000;

/// How often each replica folds the deltas into the rollups.
pub const FOLD_INTERVAL: Duration = Duration::from_secs(1);

/// Longest the migrations may take at start, connecting and waiting for another replica's
/// migration lock included.
pub const MIGRATION_TIMEOUT: Duration = Duration::from_secs(120);

/// Slack above `acquire + statement_timeout` before the client gives up on a call itself.
const CLIENT_MARGIN: Duration = Duration::from_secs(1);

impl PgTimeouts {
    fn insert_call(&self) -> Duration {
        self.acquire + self.insert_statement + CLIENT_MARGIN
    }

    fn stats_call(&self) -> Duration {
        self.acquire + self.stats_statement + CLIENT_MARGIN
    }
}

/// PostgreSQL-backed store.
#[derive(Debug, Clone)]
pub struct PgStore {
    ingest: PgPool,
    stats: PgPool,
    sizes: PoolSizes,
    timeouts: PgTimeouts,
    /// Whether folds write the compact sketch encoding and legacy rows are re-encoded
    /// (`SKETCH_ENCODING=compact`); shared by the clones the background loops hold.
    compact: Arc<AtomicBool>,
}

fn pool(max: u32, min: u32, acquire: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .min_connections(min.min(max))
        .acquire_timeout(acquire)
}

fn with_statement_timeout(options: &PgConnectOptions, timeout: Duration) -> PgConnectOptions {
    // A startup parameter, so every session of the pool has it from its first statement.
    options
        .clone()
        .options([("statement_timeout", timeout.as_millis().to_string())])
}

/// Whether `e` is a deadlock or serialization failure, which a retry may get past.
fn is_retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

impl PgStore {
    /// Connects with `sizes` and the default [`PgTimeouts`], then runs the embedded
    /// migrations.
    pub async fn connect(options: PgConnectOptions, sizes: PoolSizes) -> Result<Self, StoreError> {
        Self::connect_with(options, sizes, PgTimeouts::default()).await
    }

    /// Connects with `sizes` and `timeouts`, then runs the embedded migrations.
    pub async fn connect_with(
        options: PgConnectOptions,
        sizes: PoolSizes,
        timeouts: PgTimeouts,
    ) -> Result<Self, StoreError> {
        let connect_err = |source| StoreError::Database {
            op: "connect",
            source,
        };
        let ingest = pool(sizes.ingest_max(), sizes.min, timeouts.acquire)
            .connect_with(with_statement_timeout(&options, timeouts.insert_statement))
            .await
            .map_err(connect_err)?;
        // Migrations may take longer than an insert (or wait for another replica's): they run
        // on a connection of their own, without the statement timeout, within MIGRATION_TIMEOUT.
        let migrate = async {
            let mut conn = sqlx::ConnectOptions::connect(&options)
                .await
                .map_err(connect_err)?;
            migrator().run(&mut conn).await?;
            let _ = sqlx::Connection::close(conn).await;
            Ok::<(), StoreError>(())
        };
        tokio::time::timeout(MIGRATION_TIMEOUT, migrate)
            .await
            .map_err(|_| StoreError::Timeout(MIGRATION_TIMEOUT))??;
        let stats = pool(sizes.stats_max(), 0, timeouts.acquire)
            .connect_lazy_with(with_statement_timeout(&options, timeouts.stats_statement));
        let store = PgStore {
            ingest,
            stats,
            sizes,
            timeouts,
            compact: Arc::new(AtomicBool::new(false)),
        };
        tokio::spawn(fold_loop(store.clone()));
        Ok(store)
    }

    /// Stores the batch in one statement; returns once it is committed.
    pub async fn insert(&self, mut events: Vec<TraceEvent>) -> Result<InsertOutcome, StoreError> {
        let n = events.len();
        // A stable sort: of two events with one id, the first sent is the one stored.
        events.sort_by(|a, b| a.trace_id.cmp(&b.trace_id));
        let mut ids = Vec::with_capacity(n);
        let mut ts: Vec<DateTime<Utc>> = Vec::with_capacity(n);
        let mut services = Vec::with_capacity(n);
        let mut models = Vec::with_capacity(n);
        let mut latencies = Vec::with_capacity(n);
        let mut prompts = Vec::with_capacity(n);
        let mut completions = Vec::with_capacity(n);
        let mut costs = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut attributes: Vec<Option<String>> = Vec::with_capacity(n);
        for e in events {
            ids.push(e.trace_id);
            ts.push(e.timestamp);
            services.push(e.service);
            models.push(e.model);
            latencies.push(e.latency_ms);
            prompts.push(e.prompt_tokens);
            completions.push(e.completion_tokens);
            costs.push(e.cost_usd);
            statuses.push(e.status.as_str());
            attributes.push(e.attributes.map(|a| a.as_str().to_owned()));
        }
        let bound = self.timeouts.insert_call();
        let mut retried = false;
        let done = loop {
            let insert = sqlx::query(INSERT)
                .bind(&ids[..])
                .bind(&ts[..])
                .bind(&services[..])
                .bind(&models[..])
                .bind(&latencies[..])
                .bind(&prompts[..])
                .bind(&completions[..])
                .bind(&costs[..])
                .bind(&statuses[..])
                .bind(&attributes[..])
                .execute(&self.ingest);
            match tokio::time::timeout(bound, insert).await {
                Err(_) => return Err(StoreError::Timeout(bound)),
                Ok(Ok(done)) => break done,
                Ok(Err(e)) if !retried && is_retryable(&e) => {
                    tracing::warn!(error = %e, "insert chosen as a deadlock/serialization victim; retrying once");
                    retried = true;
                }
                Ok(Err(source)) => {
                    return Err(StoreError::Database {
                        op: "insert",
                        source,
                    });
                }
            }
        };
        let inserted = done.rows_affected();
        Ok(InsertOutcome {
            inserted,
            duplicates: n as u64 - inserted,
        })
    }

    /// Aggregates the window on the stats pool by merging rollups: daily ones of the query's
    /// grouping, hourly and per-minute ones as [`RollupRanges`] splits the window (a window of
    /// [`StatsQuery::parse`] starts and ends on minute boundaries; a bound inside a minute
    /// is read as the start of the next minute).
    /// Counts and sums are exact; percentiles are within [`crate::sketch::RELATIVE_ERROR`]
    /// of `percentile_cont` over the same events. The merge runs on a blocking thread, not
    /// on the request runtime, and the query and the merge together are bounded by the
    /// stats call's time bound.
    pub async fn stats(&self, query: &StatsQuery) -> Result<Stats, StoreError> {
        let r = RollupRanges::of(query.from, query.to);
        let q = sqlx::query(match query.group_by {
            None => STATS_TOTAL,
            Some(GroupBy::Model) => STATS_BY_MODEL,
            Some(GroupBy::Service) => STATS_BY_SERVICE,
        })
        .bind(r.minutes[0].0)
        .bind(r.minutes[0].1)
        .bind(r.minutes[1].0)
        .bind(r.minutes[1].1)
        .bind(r.hours[0].0)
        .bind(r.hours[0].1)
        .bind(r.hours[1].0)
        .bind(r.hours[1].1)
        .bind(r.days.0)
        .bind(r.days.1);
        let bound = self.timeouts.stats_call();
        let deadline = std::time::Instant::now() + bound;
        let db_err = |source| StoreError::Database {
            op: "stats",
            source,
        };
        let started = std::time::Instant::now();
        let rows = match tokio::time::timeout(bound, q.fetch_all(&self.stats)).await {
            Err(_) => return Err(StoreError::Timeout(bound)),
            Ok(rows) => rows.map_err(db_err)?,
        };
        let fetched = started.elapsed();
        let query = query.clone();
        let merge = move || {
            let merging = std::time::Instant::now();
            let stats = merge_groups(&query, &rows, deadline, bound);
            // Where a query's time goes (RUST_LOG=keel_workload::store=trace), for profiling.
            tracing::trace!(
                rows = rows.len(),
                fetch_us = fetched.as_micros() as u64,
                merge_us = merging.elapsed().as_micros() as u64,
                "stats rows merged"
            );
            stats
        };
        let work = tokio::task::spawn_blocking(merge);
        match tokio::time::timeout_at(deadline.into(), work).await {
            Err(_) => Err(StoreError::Timeout(bound)),
            Ok(Ok(stats)) => stats,
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Folds up to 20,000 minute deltas into the per-minute rollups, up to 20,000 coarse
    /// deltas into the hourly and daily ones, and up to 20,000 grouped deltas into the daily
    /// rollups per grouping, in one transaction, unless another replica is folding; returns
    /// the largest number folded. Stats read every level with its deltas,
    /// so folding changes no answer; it keeps the rows a query merges to about one per
    /// period and key.
    pub async fn fold(&self) -> Result<u64, StoreError> {
        let bound = self.timeouts.insert_call();
        match tokio::time::timeout(bound, self.fold_once()).await {
            Err(_) => Err(StoreError::Timeout(bound)),
            Ok(done) => done.map_err(|source| StoreError::Database { op: "fold", source }),
        }
    }

    /// Folds write the compact sketch encoding from now on, and the fold loop re-encodes
    /// legacy rows ([`PgStore::reencode_legacy`]). Off by default: a binary without the
    /// compact reader cannot read such rows, so it is switched on only once every replica
    /// runs a version that reads both (`SKETCH_ENCODING=compact`, the second step of the
    /// upgrade the workload README describes).
    pub fn write_compact_sketches(&self) {
        self.compact.store(true, Ordering::Relaxed);
    }

    /// A transaction with the fold's time bounds that holds the fold lock, or `None` when
    /// another session holds it (the fold and the re-encoding both run under it).
    async fn begin_under_fold_lock(
        &self,
    ) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>, sqlx::Error> {
        let mut tx = self.ingest.begin().await?;
        sqlx::raw_sql(FOLD_TRANSACTION_BOUNDS)
            .execute(&mut *tx)
            .await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(FOLD_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(tx))
    }

    async fn fold_once(&self) -> Result<u64, sqlx::Error> {
        let Some(mut tx) = self.begin_under_fold_lock().await? else {
            return Ok(0);
        };
        let minute = sqlx::query(take_deltas!("trace_rollup_deltas"))
            .bind(FOLD_BATCH)
            .fetch_all(&mut *tx)
            .await?;
        let compact = self.compact.load(Ordering::Relaxed);
        fold_into(&mut tx, &MINUTE_ROLLUPS, &minute, compact, Keep::Pair).await?;
        let coarse = sqlx::query(take_deltas!("trace_rollup_coarse_deltas"))
            .bind(FOLD_BATCH)
            .fetch_all(&mut *tx)
            .await?;
        fold_into(&mut tx, &HOUR_ROLLUPS, &coarse, compact, Keep::Pair).await?;
        fold_into(&mut tx, &DAY_ROLLUPS, &coarse, compact, Keep::Pair).await?;
        let grouped = sqlx::query(take_deltas!("trace_rollup_grouped_deltas"))
            .bind(FOLD_BATCH)
            .fetch_all(&mut *tx)
            .await?;
        for keep in [Keep::Neither, Keep::Model, Keep::Service] {
            fold_into(&mut tx, &DAY_GROUPED_ROLLUPS, &grouped, compact, keep).await?;
        }
        tx.commit().await?;
        Ok(minute.len().max(coarse.len()).max(grouped.len()) as u64)
    }

    /// Re-encodes, in the compact encoding, legacy sketches (written by SQL: the backfills
    /// of migrations 2 and 3, or folds of the previous version) of the daily, then hourly,
    /// rollups: at most `rows` rows and, beyond the first row, `bytes` sketch bytes per
    /// table, in one transaction under the fold lock (so it never races a fold); returns the
    /// rows re-encoded (0 when another replica holds the lock). Stats read both encodings
    /// alike, so this changes no answer, only the bytes a long window reads. A row whose
    /// sketch is malformed is left as it is.
    pub async fn reencode_legacy(&self, rows: i64, bytes: i64) -> Result<u64, StoreError> {
        let bound = self.timeouts.insert_call();
        match tokio::time::timeout(bound, self.reencode_once(rows, bytes)).await {
            Err(_) => Err(StoreError::Timeout(bound)),
            Ok(done) => done.map_err(|source| StoreError::Database {
                op: "re-encode",
                source,
            }),
        }
    }

    async fn reencode_once(&self, rows: i64, bytes: i64) -> Result<u64, sqlx::Error> {
        // Without the lock first: with nothing left (the usual case) a fold tick takes
        // the fold lock once, not twice.
        let any: bool = sqlx::query_scalar(ANY_LEGACY_SKETCH)
            .fetch_one(&self.ingest)
            .await?;
        if !any {
            return Ok(0);
        }
        let Some(mut tx) = self.begin_under_fold_lock().await? else {
            return Ok(0);
        };
        let mut done = 0;
        for table in &LEGACY_SKETCHES {
            let legacy = sqlx::query(table.take)
                .bind(rows)
                .bind(bytes)
                .fetch_all(&mut *tx)
                .await?;
            let (mut minutes, mut models, mut services, mut sketches) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for row in &legacy {
                let mut sketch = Sketch::default();
                let merged = sketch.merge_encoded(
                    row.try_get("sketch")?,
                    row.try_get("latency_min")?,
                    row.try_get("latency_max")?,
                );
                if merged.is_err() {
                    continue;
                }
                minutes.push(row.try_get::<DateTime<Utc>, _>("minute")?);
                models.push(row.try_get::<String, _>("model")?);
                services.push(row.try_get::<String, _>("service")?);
                sketches.push(sketch.encode());
            }
            done += sqlx::query(table.put)
                .bind(&minutes)
                .bind(&models)
                .bind(&services)
                .bind(&sketches)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Deletes raw events older than `cutoff`, and the rollups of periods wholly before it
    /// (minutes, hours and days before the cutoff's minute, hour and day; deltas by their
    /// minute), each in statements of at most `batch` rows on the ingest pool, so no
    /// statement holds locks or runs long. Stats over a window reaching past the cutoff
    /// count only what is kept.
    pub async fn purge_before(
        &self,
        cutoff: DateTime<Utc>,
        batch: i64,
    ) -> Result<Purged, StoreError> {
        let mut purged = Purged::default();
        let steps: [(&'static str, DateTime<Utc>, bool); 9] = [
            (PURGE_EVENTS, cutoff, true),
            (
                purge_rows!("trace_rollup_deltas"),
                period_start(cutoff, 60),
                false,
            ),
            (
                purge_rows!("trace_rollup_coarse_deltas"),
                period_start(cutoff, 60),
                false,
            ),
            (
                purge_rows!("trace_rollup_grouped_deltas"),
                period_start(cutoff, 60),
                false,
            ),
            (
                purge_rows!("trace_rollups"),
                period_start(cutoff, 60),
                false,
            ),
            (
                purge_rows!("trace_rollups_hour"),
                period_start(cutoff, 3600),
                false,
            ),
            (
                purge_rows!("trace_rollups_day"),
                period_start(cutoff, 86_400),
                false,
            ),
            (
                purge_rows!("trace_rollups_day_grouped"),
                period_start(cutoff, 86_400),
                false,
            ),
            // Deltas folded meanwhile into an already purged period come back as rows.
            (
                purge_rows!("trace_rollups"),
                period_start(cutoff, 60),
                false,
            ),
        ];
        let bound = self.timeouts.insert_call();
        for (sql, before, events) in steps {
            loop {
                let q = sqlx::query(sql)
                    .bind(before)
                    .bind(batch)
                    .execute(&self.ingest);
                let n = match tokio::time::timeout(bound, q).await {
                    Err(_) => return Err(StoreError::Timeout(bound)),
                    Ok(done) => done
                        .map_err(|source| StoreError::Database {
                            op: "retention",
                            source,
                        })?
                        .rows_affected(),
                };
                purged.batches += 1;
                if events {
                    purged.events += n;
                } else {
                    purged.rollups += n;
                }
                if n < batch.max(1) as u64 {
                    break;
                }
            }
        }
        Ok(purged)
    }

    /// Applies `retention` every [`RETENTION_INTERVAL`] (first at once) until the pools
    /// close: see [`PgStore::purge_before`]. A failure is logged and retried next time.
    pub fn start_retention(&self, retention: Duration) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETENTION_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if store.ingest.is_closed() {
                    return;
                }
                let Ok(age) = chrono::Duration::from_std(retention) else {
                    return;
                };
                match store.purge_before(Utc::now() - age, PURGE_BATCH).await {
                    Ok(p) if p.events + p.rollups > 0 => tracing::info!(
                        events = p.events,
                        rollups = p.rollups,
                        "retention: deleted data older than {} days",
                        retention.as_secs() / 86_400
                    ),
                    Ok(_) => {}
                    Err(e) if !store.ingest.is_closed() => {
                        tracing::warn!(error = %e, "retention failed; retrying at the next interval");
                    }
                    Err(_) => return,
                }
            }
        });
    }

    /// `SELECT 1` on the ingest pool within [`PING_TIMEOUT`] (acquiring included).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(PING_TIMEOUT, sqlx::query("SELECT 1").execute(&self.ingest))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(StoreError::Database { op: "ping", source }),
            Err(_) => Err(StoreError::Timeout(PING_TIMEOUT)),
        }
    }

    /// Occupancy of both pools together.
    pub fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            open: self.ingest.size() + self.stats.size(),
            idle: (self.ingest.num_idle() + self.stats.num_idle()) as u32,
            max: self.sizes.ingest_max() + self.sizes.stats_max(),
        }
    }

    /// The ingest pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.ingest
    }

    /// The stats pool, for tests and tools.
    pub fn stats_pool(&self) -> &PgPool {
        &self.stats
    }

    /// Closes both pools, waiting for checked-out connections.
    pub async fn close(&self) {
        tokio::join!(self.ingest.close(), self.stats.close());
    }
}

/// Merges delta rows (per minute) into the rows of `table` of their periods and of the
/// names they `keep`, writing their sketches in the compact encoding when `compact`, else
/// in the legacy one.
async fn fold_into(
    tx: &mut sqlx::PgConnection,
    table: &RollupTable,
    deltas: &[PgRow],
    compact: bool,
    keep: Keep,
) -> Result<(), sqlx::Error> {
    if deltas.is_empty() {
        return Ok(());
    }
    type Key = (DateTime<Utc>, String, String);
    let name = |row: &PgRow, column: &str, kept: bool| -> Result<String, sqlx::Error> {
        if kept {
            row.try_get(column)
        } else {
            Ok(String::new())
        }
    };
    let key = |row: &PgRow| -> Result<Key, sqlx::Error> {
        Ok((
            period_start(row.try_get("minute")?, table.period_secs),
            name(row, "model", matches!(keep, Keep::Pair | Keep::Model))?,
            name(row, "service", matches!(keep, Keep::Pair | Keep::Service))?,
        ))
    };
    let mut merged: BTreeMap<Key, Agg> = BTreeMap::new();
    for row in deltas {
        merged.entry(key(row)?).or_default().add_row(row)?;
    }
    let minutes: Vec<_> = merged.keys().map(|k| k.0).collect();
    let models: Vec<_> = merged.keys().map(|k| k.1.clone()).collect();
    let services: Vec<_> = merged.keys().map(|k| k.2.clone()).collect();
    let existing = sqlx::query(table.rows_of)
        .bind(&minutes)
        .bind(&models)
        .bind(&services)
        .fetch_all(&mut *tx)
        .await?;
    for row in &existing {
        if let Some(agg) = merged.get_mut(&key(row)?) {
            agg.add_row(row)?;
        }
    }
    let aggs: Vec<&Agg> = merged.values().collect();
    let latency = |f: fn(&Sketch) -> Option<f64>| -> Vec<f64> {
        // Every merged row holds at least one event, so min and max exist.
        aggs.iter().map(|a| f(&a.latency).unwrap_or(0.0)).collect()
    };
    sqlx::query(table.put)
        .bind(&minutes)
        .bind(&models)
        .bind(&services)
        .bind(aggs.iter().map(|a| a.count).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.errors).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.prompt_tokens).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.completion_tokens).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.cost_usd).collect::<Vec<_>>())
        .bind(latency(Sketch::min))
        .bind(latency(Sketch::max))
        .bind(
            aggs.iter()
                .map(|a| {
                    if compact {
                        a.latency.encode()
                    } else {
                        a.latency.encode_legacy()
                    }
                })
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Sketches merged between two checks of the deadline.
const MERGE_CHECK_EVERY: usize = 1024;

/// Merges the group rows of a stats query ([`stats_by!`]) into its answer (CPU-bound: run
/// on a blocking thread), giving up with [`StoreError::Timeout`] once `deadline` passes.
fn merge_groups(
    query: &StatsQuery,
    rows: &[PgRow],
    deadline: std::time::Instant,
    bound: Duration,
) -> Result<Stats, StoreError> {
    let db_err = |source| StoreError::Database {
        op: "stats",
        source,
    };
    let mut merged = 0;
    let mut groups = Vec::with_capacity(rows.len());
    for row in rows {
        let key: String = row.try_get(0).map_err(db_err)?;
        let mut agg = Agg::default();
        agg.add_group_row(row, &mut || {
            merged += 1;
            merged % MERGE_CHECK_EVERY != 0 || std::time::Instant::now() <= deadline
        })
        .map_err(|e| match e {
            GroupRowError::Late => StoreError::Timeout(bound),
            GroupRowError::Database(e) => db_err(e),
        })?;
        groups.push((key, agg));
    }
    if query.group_by.is_none() {
        // One row, or none for an empty window.
        let total = groups.pop().map(|(_, agg)| agg).unwrap_or_default();
        return Ok(stats::finish(
            query,
            total.into_group(None),
            Vec::new(),
            false,
        ));
    }
    // The total from the groups, in key order (so two replicas sum costs alike).
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut total = Agg::default();
    for (_, agg) in &groups {
        total.add(agg);
    }
    let groups = groups
        .into_iter()
        .map(|(k, agg)| agg.into_group(Some(k)))
        .collect();
    Ok(stats::finish(query, total.into_group(None), groups, false))
}

/// Why a group row of a stats query was not merged.
enum GroupRowError {
    /// The deadline passed.
    Late,
    /// A column did not decode, or a sketch was malformed.
    Database(sqlx::Error),
}

/// Counts, sums and the latency sketch of some events: a rollup row, or several merged.
#[derive(Debug, Clone, Default)]
struct Agg {
    count: i64,
    errors: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_usd: f64,
    latency: Sketch,
}

impl Agg {
    /// Adds a rollup (or delta) row as the fold reads them (`minute`, `model`, `service`,
    /// then the columns of `trace_rollups`), merging its sketch in place.
    fn add_row(&mut self, row: &PgRow) -> Result<(), sqlx::Error> {
        let sketch: &[u8] = row.try_get(10)?;
        self.latency
            .merge_encoded(sketch, row.try_get(8)?, row.try_get(9)?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        self.count += row.try_get::<i64, _>(3)?;
        self.errors += row.try_get::<i64, _>(4)?;
        self.prompt_tokens += row.try_get::<i64, _>(5)?;
        self.completion_tokens += row.try_get::<i64, _>(6)?;
        self.cost_usd += row.try_get::<f64, _>(7)?;
        Ok(())
    }

    /// Adds a group row of [`stats_by!`], merging each of its sketches in place; `go_on`
    /// is asked before each sketch and stops the merge when it says no.
    fn add_group_row(
        &mut self,
        row: &PgRow,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<(), GroupRowError> {
        let db = GroupRowError::Database;
        let malformed =
            |what: &'static str| db(sqlx::Error::Decode(Box::new(SketchError::new(what))));
        let lo: f64 = row.try_get(6).map_err(db)?;
        let hi: f64 = row.try_get(7).map_err(db)?;
        let mut sketches: &[u8] = row.try_get(8).map_err(db)?;
        while let Some((len, rest)) = sketches.split_first_chunk::<4>() {
            if !go_on() {
                return Err(GroupRowError::Late);
            }
            let len = u32::from_be_bytes(*len) as usize;
            let (sketch, rest) = rest
                .split_at_checked(len)
                .ok_or_else(|| malformed("a sketch longer than its group's bytes"))?;
            self.latency
                .merge_encoded(sketch, lo, hi)
                .map_err(|e| db(sqlx::Error::Decode(Box::new(e))))?;
            sketches = rest;
        }
        if !sketches.is_empty() {
            return Err(malformed("a truncated sketch length"));
        }
        self.count += row.try_get::<i64, _>(1).map_err(db)?;
        self.errors += row.try_get::<i64, _>(2).map_err(db)?;
        self.prompt_tokens += row.try_get::<i64, _>(3).map_err(db)?;
        self.completion_tokens += row.try_get::<i64, _>(4).map_err(db)?;
        self.cost_usd += row.try_get::<f64, _>(5).map_err(db)?;
        Ok(())
    }

    /// Adds another aggregate, merging its sketch in place.
    fn add(&mut self, other: &Agg) {
        self.latency.merge(&other.latency);
        self.count += other.count;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost_usd += other.cost_usd;
    }

    fn into_group(self, key: Option<String>) -> GroupStats {
        GroupStats {
            key,
            count: self.count as u64,
            errors: self.errors as u64,
            error_rate: if self.count == 0 {
                0.0
            } else {
                self.errors as f64 / self.count as f64
            },
            latency_ms: Percentiles {
                p50: self.latency.percentile_cont(0.5),
                p95: self.latency.percentile_cont(0.95),
                p99: self.latency.percentile_cont(0.99),
            },
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.prompt_tokens + self.completion_tokens,
            cost_usd: self.cost_usd,
        }
    }
}

/// Folds deltas every [`FOLD_INTERVAL`] (at once again after a full batch) until the pools
/// close, then re-encodes a batch of legacy sketches ([`REENCODE_BATCH`]), if any.
/// A failure (the database restarting, say) is logged once and retried next tick.
async fn fold_loop(store: PgStore) {
    let mut tick = tokio::time::interval(FOLD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut reencode_failing = false;
    loop {
        tick.tick().await;
        if store.ingest.is_closed() {
            return;
        }
        loop {
            match store.fold().await {
                Ok(n) => {
                    if failing {
                        tracing::info!("folding rollup deltas works again");
                        failing = false;
                    }
                    if n < FOLD_BATCH as u64 || store.ingest.is_closed() {
                        break;
                    }
                }
                Err(e) => {
                    if !failing && !store.ingest.is_closed() {
                        tracing::warn!(error = %e, "folding rollup deltas failed; retrying every second");
                    }
                    failing = true;
                    break;
                }
            }
        }
        // Every tick: replicas of the previous version (during a rolling deploy) fold coarse
        // rows in the legacy encoding; with none left this is one probe of an empty index.
        if !failing && !store.ingest.is_closed() && store.compact.load(Ordering::Relaxed) {
            let (rows, bytes) = REENCODE_BATCH;
            match store.reencode_legacy(rows, bytes).await {
                Ok(_) => reencode_failing = false,
                Err(e) => {
                    if !reencode_failing && !store.ingest.is_closed() {
                        tracing::warn!(error = %e, "re-encoding legacy sketches failed; retrying every second");
                    }
                    reencode_failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn windows_split_into_days_hours_and_minutes() {
        let r = RollupRanges::of(at("2026-09-05T10:17:00Z"), at("2026-12-04T18:43:00Z"));
        assert_eq!(
            r.minutes,
            [
                (at("2026-09-05T10:17:00Z"), at("2026-09-05T11:00:00Z")),
                (at("2026-12-04T18:00:00Z"), at("2026-12-04T18:43:00Z"))
            ]
        );
        assert_eq!(
            r.hours,
            [
                (at("2026-09-05T11:00:00Z"), at("2026-09-06T00:00:00Z")),
                (at("2026-12-04T00:00:00Z"), at("2026-12-04T18:00:00Z"))
            ]
        );
        assert_eq!(
            r.days,
            (at("2026-09-06T00:00:00Z"), at("2026-12-04T00:00:00Z"))
        );

        // Under a day: hours and minutes only; under an hour boundary: minutes only.
        let r = RollupRanges::of(at("2026-12-04T01:30:00Z"), at("2026-12-04T05:10:00Z"));
        let end = at("2026-12-04T05:10:00Z");
        assert_eq!(
            r.hours[0],
            (at("2026-12-04T02:00:00Z"), at("2026-12-04T05:00:00Z"))
        );
        assert_eq!((r.hours[1], r.days), ((end, end), (end, end)));
        let r = RollupRanges::of(at("2026-12-04T01:30:00Z"), at("2026-12-04T01:59:00Z"));
        assert_eq!(
            r.minutes[0],
            (at("2026-12-04T01:30:00Z"), at("2026-12-04T01:59:00Z"))
        );
        // Aligned bounds leave the edge ranges empty.
        let r = RollupRanges::of(at("2026-12-01T00:00:00Z"), at("2026-12-04T00:00:00Z"));
        assert!(r.minutes.iter().chain(&r.hours).all(|(a, b)| a == b));
        assert_eq!(
            r.days,
            (at("2026-12-01T00:00:00Z"), at("2026-12-04T00:00:00Z"))
        );
    }
}
