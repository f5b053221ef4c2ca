//! The PostgreSQL store: embedded migrations run at start (under sqlx's advisory lock, so
//! replicas may start together), one multi-row `INSERT ... SELECT FROM UNNEST(...)` per batch,
//! and stats computed in SQL with `percentile_cont`. Uses runtime-checked queries, so no
//! database is needed at build time.

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

/// Pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSizes {
    /// Maximum connections.
    pub max: u32,
    /// Minimum connections kept open.
    pub min: u32,
}

/// PostgreSQL-backed store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    max: u32,
}

const INSERT: &str = "\
INSERT INTO traces (trace_id, ts, service, model, latency_ms, prompt_tokens, completion_tokens, cost_usd, status, attributes)
SELECT t.trace_id, t.ts, t.service, t.model, t.latency_ms, t.prompt_tokens, t.completion_tokens, t.cost_usd, t.status, t.attributes::jsonb
FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::float8[], $6::int8[], $7::int8[], $8::float8[], $9::text[], $10::text[])
  AS t(trace_id, ts, service, model, latency_ms, prompt_tokens, completion_tokens, cost_usd, status, attributes)
ON CONFLICT (trace_id) DO NOTHING";

macro_rules! stats_sql {
    ($key:literal, $group:literal) => {
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
            $group
        )
    };
}

const STATS_ALL: &str = stats_sql!("NULL::text", "");
const STATS_BY_MODEL: &str = stats_sql!(
    "CASE WHEN GROUPING(model) = 1 THEN NULL ELSE model END",
    "GROUP BY GROUPING SETS ((), (model))"
);
const STATS_BY_SERVICE: &str = stats_sql!(
    "CASE WHEN GROUPING(service) = 1 THEN NULL ELSE service END",
    "GROUP BY GROUPING SETS ((), (service))"
);

impl PgStore {
    /// Connects with `sizes`, then runs the embedded migrations.
    pub async fn connect(options: PgConnectOptions, sizes: PoolSizes) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(sizes.max)
            .min_connections(sizes.min)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Database {
                op: "connect",
                source,
            })?;
        migrator().run(&pool).await?;
        Ok(PgStore {
            pool,
            max: sizes.max,
        })
    }

    /// Stores the batch in one statement; returns once it is committed.
    pub async fn insert(&self, events: Vec<TraceEvent>) -> Result<InsertOutcome, StoreError> {
        let n = events.len();
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
            statuses.push(e.status.as_str().to_owned());
            attributes.push(
                e.attributes
                    .map(|a| serde_json::Value::Object(a).to_string()),
            );
        }
        let done = sqlx::query(INSERT)
            .bind(ids)
            .bind(ts)
            .bind(services)
            .bind(models)
            .bind(latencies)
            .bind(prompts)
            .bind(completions)
            .bind(costs)
            .bind(statuses)
            .bind(attributes)
            .execute(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                op: "insert",
                source,
            })?;
        let inserted = done.rows_affected();
        Ok(InsertOutcome {
            inserted,
            duplicates: n as u64 - inserted,
        })
    }

    /// Aggregates in SQL.
    pub async fn stats(&self, query: &StatsQuery) -> Result<Stats, StoreError> {
        let sql = match query.group_by {
            None => STATS_ALL,
            Some(GroupBy::Model) => STATS_BY_MODEL,
            Some(GroupBy::Service) => STATS_BY_SERVICE,
        };
        let rows = sqlx::query(sql)
            .bind(query.from)
            .bind(query.to)
            .fetch_all(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                op: "stats",
                source,
            })?;
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
        Ok(stats::finish(query, total, groups))
    }

    /// `SELECT 1` within [`PING_TIMEOUT`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(PING_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool)).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(StoreError::Database { op: "ping", source }),
            Err(_) => Err(StoreError::Timeout(PING_TIMEOUT)),
        }
    }

    /// Pool occupancy.
    pub fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            open: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.max,
        }
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for checked-out connections.
    pub async fn close(&self) {
        self.pool.close().await;
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
