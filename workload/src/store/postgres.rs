//! The PostgreSQL store: embedded migrations run at start (under sqlx's advisory lock, so
//! replicas may start together), one multi-row `INSERT ... SELECT FROM UNNEST(...)` per batch,
//! and stats computed in SQL with `percentile_cont`. Uses runtime-checked queries, so no
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
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, SqlStr};

use crate::event::TraceEvent;
use crate::stats::{self, GroupBy, GroupStats, Percentiles, Stats, StatsQuery};

use super::{InsertOutcome, PING_TIMEOUT, PoolUsage, StoreError};

/// The embedded migrations, in order.
pub fn migrator() -> Migrator {
    Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("create traces"),
        MigrationType::Simple,
        SqlStr::from_static(include_str!("../../migrations/0001_create_traces.sql")),
        false,
    )])
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

macro_rules! stats_sql {
    ($key:literal, $group:literal) => {
        stats_sql!($key, $group, "")
    };
    ($key:literal, $group:literal, $order:literal) => {
        concat!(
            "SELECT ",
            $key,
            " AS key, count(*)::int8 AS count,
       count(*) FILTER (WHERE status = 'error')::int8 AS errors,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99,
       coalesce(sum(prompt_tokens), 0)::int8 AS prompt_tokens,
       coalesce(sum(completion_tokens), 0)::int8 AS completion_tokens,
       coalesce(sum(cost_usd), 0)::float8 AS cost_usd
FROM traces WHERE ts >= $1 AND ts < $2 ",
            $group,
            $order
        )
    };
}

const STATS_ALL: &str = stats_sql!("NULL::text", "");
// The total row first, then the groups by descending count and name in byte order (as the
// in-memory store sorts), at most $3 rows: the caller asks for one more group than it keeps,
// to know whether any was left out.
const STATS_BY_MODEL: &str = stats_sql!(
    "CASE WHEN GROUPING(model) = 1 THEN NULL ELSE model END",
    "GROUP BY GROUPING SETS ((), (model))",
    " ORDER BY GROUPING(model) DESC, count(*) DESC, model COLLATE \"C\" LIMIT $3"
);
const STATS_BY_SERVICE: &str = stats_sql!(
    "CASE WHEN GROUPING(service) = 1 THEN NULL ELSE service END",
    "GROUP BY GROUPING SETS ((), (service))",
    " ORDER BY GROUPING(service) DESC, count(*) DESC, service COLLATE \"C\" LIMIT $3"
);

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
        Ok(PgStore {
            ingest,
            stats,
            sizes,
            timeouts,
        })
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
            attributes.push(
                e.attributes
                    .map(|a| serde_json::Value::Object(a).to_string()),
            );
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

    /// Aggregates in SQL, on the stats pool.
    pub async fn stats(&self, query: &StatsQuery) -> Result<Stats, StoreError> {
        let limit = i64::try_from(stats::MAX_GROUPS + 2).unwrap_or(i64::MAX);
        let q = match query.group_by {
            None => sqlx::query(STATS_ALL),
            Some(GroupBy::Model) => sqlx::query(STATS_BY_MODEL),
            Some(GroupBy::Service) => sqlx::query(STATS_BY_SERVICE),
        }
        .bind(query.from)
        .bind(query.to);
        let q = if query.group_by.is_some() {
            q.bind(limit)
        } else {
            q
        };
        let bound = self.timeouts.stats_call();
        let rows = match tokio::time::timeout(bound, q.fetch_all(&self.stats)).await {
            Err(_) => return Err(StoreError::Timeout(bound)),
            Ok(rows) => rows.map_err(|source| StoreError::Database {
                op: "stats",
                source,
            })?,
        };
        let mut total = GroupStats::default();
        let mut groups = Vec::new();
        for row in rows {
            let g = group(&row).map_err(|source| StoreError::Database {
                op: "stats",
                source,
            })?;
            if g.key.is_none() {
                total = g
            } else {
                groups.push(g)
            }
        }
        Ok(stats::finish(query, total, groups, false))
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

fn group(row: &PgRow) -> Result<GroupStats, sqlx::Error> {
    let count: i64 = row.try_get("count")?;
    let errors: i64 = row.try_get("errors")?;
    let prompt_tokens: i64 = row.try_get("prompt_tokens")?;
    let completion_tokens: i64 = row.try_get("completion_tokens")?;
    Ok(GroupStats {
        key: row.try_get("key")?,
        count: count as u64,
        errors: errors as u64,
        error_rate: if count == 0 {
            0.0
        } else {
            errors as f64 / count as f64
        },
        latency_ms: Percentiles {
            p50: row.try_get("p50")?,
            p95: row.try_get("p95")?,
            p99: row.try_get("p99")?,
        },
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
        cost_usd: row.try_get("cost_usd")?,
    })
}
