//! Where events live: an in-memory store (the default, bounded, with a retention window) or
//! PostgreSQL (when `DATABASE_URL` is set). Both answer only after the events are stored, so
//! a 2xx response always means the events are held (committed, for PostgreSQL).

pub mod memory;
pub mod postgres;

use std::time::Duration;

use crate::event::TraceEvent;
use crate::stats::{Stats, StatsQuery};

pub use memory::{MemoryStore, check_dump_path};
pub use postgres::PgStore;

/// How long a readiness check waits for the store (a connection and `SELECT 1`); below the
/// readiness probe's timeout, so a slow store fails the check rather than the probe.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Result of an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InsertOutcome {
    /// Events stored by this call.
    pub inserted: u64,
    /// Events skipped because their trace id was already stored (or repeated in the batch).
    pub duplicates: u64,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The in-memory store is at capacity; nothing from the batch was stored.
    #[error(
        "in-memory store is full (at most {max_events} events and {max_bytes} bytes); retry later or raise --memory-max-events / --memory-max-bytes"
    )]
    Full {
        /// The configured capacity in events.
        max_events: usize,
        /// The configured capacity in bytes.
        max_bytes: usize,
    },
    /// A database error during `op`.
    #[error("database error during {op}: {source}")]
    Database {
        /// What was being done, e.g. `insert`.
        op: &'static str,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// Migrations failed at start.
    #[error("running database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The store did not answer in time.
    #[error("store did not answer within {0:?}")]
    Timeout(Duration),
    /// Writing the in-memory dump failed.
    #[error("writing {path}: {source}")]
    Dump {
        /// The dump file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Connection pool occupancy, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Open connections.
    pub open: u32,
    /// Idle connections.
    pub idle: u32,
    /// Configured maximum.
    pub max: u32,
}

/// The configured store.
#[derive(Debug)]
pub enum Store {
    /// In-memory.
    Memory(MemoryStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl Store {
    /// Stores `events`, skipping trace ids already stored; returns once they are held.
    pub async fn insert(&self, events: Vec<TraceEvent>) -> Result<InsertOutcome, StoreError> {
        match self {
            Store::Memory(m) => m.insert(events),
            Store::Postgres(p) => p.insert(events).await,
        }
    }

    /// Aggregates over the query's window.
    pub async fn stats(&self, query: &StatsQuery) -> Result<Stats, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.stats(query).await),
            Store::Postgres(p) => p.stats(query).await,
        }
    }

    /// Checks that the store answers (and, in memory, that it has room for an event).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) if m.is_full() => Err(m.full()),
            Store::Memory(_) => Ok(()),
            Store::Postgres(p) => p.ping().await,
        }
    }

    /// `memory` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Pool occupancy (PostgreSQL only).
    pub fn pool_usage(&self) -> Option<PoolUsage> {
        match self {
            Store::Memory(_) => None,
            Store::Postgres(p) => Some(p.pool_usage()),
        }
    }

    /// Closes connections (PostgreSQL: waits for checked-out connections to return).
    pub async fn close(&self) {
        if let Store::Postgres(p) = self {
            p.close().await;
        }
    }
}
