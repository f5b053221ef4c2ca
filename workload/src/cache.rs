//! The optional Redis cache for `GET /v1/stats`: answers are kept for `CACHE_DEFAULT_TTL`
//! seconds, so with Redis configured stats may be that much behind ingestion. A cache failure
//! never fails a request: the store answers instead, and readiness reports Redis unhealthy.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one Redis command may take before the cache is bypassed.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// A Redis failure.
#[derive(Debug, thiserror::Error)]
#[error("redis {op}: {source}")]
pub struct CacheError {
    /// What was being done.
    pub op: &'static str,
    /// The client error.
    #[source]
    pub source: redis::RedisError,
}

/// Stats cache over a reconnecting Redis connection.
#[derive(Clone)]
pub struct StatsCache {
    conn: ConnectionManager,
    ttl: Duration,
    prefix: String,
}

impl std::fmt::Debug for StatsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCache")
            .field("ttl", &self.ttl)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl StatsCache {
    /// Connects to `url`; keys are `prefix` + the query's cache key.
    pub async fn connect(url: &str, ttl: Duration, prefix: &str) -> Result<Self, CacheError> {
        let client =
            redis::Client::open(url).map_err(|source| CacheError { op: "open", source })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|source| CacheError {
                op: "connect",
                source,
            })?;
        Ok(StatsCache {
            conn,
            ttl,
            prefix: prefix.to_owned(),
        })
    }

    /// The cached value of `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(format!("{}{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(|source| CacheError { op: "GET", source })
    }

    /// Stores `value` under `key` for the TTL.
    pub async fn set(&self, key: &str, value: &str) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(format!("{}{key}", self.prefix))
            .arg(value)
            .arg("EX")
            .arg(self.ttl.as_secs().max(1))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|source| CacheError { op: "SET", source })
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|source| CacheError { op: "PING", source })
    }
}
