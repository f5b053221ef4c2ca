//! Process lifecycle: open the store and cache, bind both listeners, serve until SIGTERM or
//! SIGINT, then stop accepting, drain in-flight requests within the contract's deadline,
//! dump the in-memory store if asked, and close the pool.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{AppState, app, metrics_app};
use crate::auth::Verifier;
use crate::cache::{CacheError, StatsCache};
use crate::cli::Flags;
use crate::config::Config;
use crate::contract;
use crate::metrics::Metrics;
use crate::store::postgres::PoolSizes;
use crate::store::{MemoryStore, PgStore, Store, StoreError};

/// Prefix of every Redis key the service writes.
pub const CACHE_PREFIX: &str = "analytics-api:";

/// Time allowed to drain in-flight requests after a shutdown signal.
pub const SHUTDOWN_DEADLINE: Duration =
    Duration::from_secs(contract::SHUTDOWN_DEADLINE_SECS as u64);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `DATABASE_URL` did not parse as connection options.
    #[error("DATABASE_URL: not a valid PostgreSQL URL ({0})")]
    DatabaseUrl(String),
    /// The store could not be opened or failed at shutdown.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Redis could not be reached at start.
    #[error("REDIS_URL: {0}")]
    Cache(#[from] CacheError),
    /// A listener could not bind.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Serving failed.
    #[error("serving HTTP: {0}")]
    Serve(#[source] io::Error),
}

/// Opens the store and cache the configuration names, and builds the handler state.
pub async fn build_state(config: &Config, flags: &Flags) -> Result<AppState, ServerError> {
    let store = match &config.database_url {
        None => Store::Memory(MemoryStore::new(
            flags.memory_max_events,
            flags.memory_retention,
        )),
        Some(url) => {
            // The sqlx error may quote the URL, so only its kind is reported.
            let options: PgConnectOptions = url
                .parse()
                .map_err(|e: sqlx::Error| ServerError::DatabaseUrl(error_kind(&e)))?;
            let sizes = PoolSizes {
                max: config.pool_max,
                min: config.pool_min,
            };
            Store::Postgres(PgStore::connect(options, sizes).await?)
        }
    };
    let cache = match &config.redis_url {
        None => None,
        Some(url) => Some(StatsCache::connect(url, config.cache_ttl, CACHE_PREFIX).await?),
    };
    Ok(AppState {
        store: Arc::new(store),
        cache,
        metrics: Arc::new(Metrics::new()),
        verifier: config.jwt_secret.as_deref().map(Verifier::new),
        cors: config.cors.clone(),
    })
}

fn error_kind(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "invalid connection options".to_owned(),
        _ => "unparsable".to_owned(),
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = ctrl_c => tracing::info!("SIGINT received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the service");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every in-flight request finished.
    Complete,
    /// The deadline passed first; the remaining requests were dropped unanswered (so none
    /// of them was acknowledged).
    DeadlineExceeded,
}

/// Serves `app` on `http` and the metrics on `metrics` until `shutdown` resolves, then stops
/// accepting and waits up to `deadline` for in-flight requests.
pub async fn serve(
    http: TcpListener,
    metrics: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    deadline: Duration,
) -> Result<Drain, ServerError> {
    let (tx, rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let api = axum::serve(http, app(state.clone())).with_graceful_shutdown(stopped(rx.clone()));
    let metrics_server =
        axum::serve(metrics, metrics_app(state)).with_graceful_shutdown(stopped(rx.clone()));
    let metrics_task = tokio::spawn(metrics_server.into_future());
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            deadline_secs = deadline.as_secs(),
            "shutting down: no new connections, draining in-flight requests"
        );
        let _ = tx.send(true);
    });
    let deadline_passed = async move {
        stopped(rx).await;
        tokio::time::sleep(deadline).await;
    };
    let drain = tokio::select! {
        result = api.into_future() => {
            result.map_err(ServerError::Serve)?;
            Drain::Complete
        }
        () = deadline_passed => {
            tracing::warn!("shutdown deadline passed; dropping unfinished requests (none of them was acknowledged)");
            Drain::DeadlineExceeded
        }
    };
    metrics_task.abort();
    Ok(drain)
}

/// Runs the service until a shutdown signal, then drains and closes everything.
pub async fn run(config: Config, flags: Flags) -> Result<(), ServerError> {
    let state = build_state(&config, &flags).await?;
    let bind = |port: u16| async move {
        let addr = SocketAddr::new(config.host, port);
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })
    };
    let http = bind(config.http_port).await?;
    let metrics = bind(config.metrics_port).await?;
    let local = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(
        http_addr = %local(&http),
        metrics_addr = %local(&metrics),
        store = state.store.kind(),
        redis = state.cache.is_some(),
        authentication = state.verifier.is_some(),
        "listening"
    );
    if state.verifier.is_none() {
        tracing::warn!(
            "development mode: JWT_SECRET is not set, /v1/* is served WITHOUT authentication"
        );
    }
    let store = state.store.clone();
    let drain = serve(http, metrics, state, shutdown_signal(), SHUTDOWN_DEADLINE).await?;
    if let (Store::Memory(memory), Some(path)) = (store.as_ref(), &flags.dump_on_exit) {
        let n = memory.dump_jsonl(path)?;
        tracing::info!(events = n, path = %path.display(), "in-memory store dumped");
    }
    store.close().await;
    tracing::info!(?drain, "stopped");
    Ok(())
}
