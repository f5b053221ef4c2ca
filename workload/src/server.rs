//! Process lifecycle: open the store and cache, bind both listeners, serve until SIGTERM or
//! SIGINT, then stop accepting, drain in-flight requests within the contract's deadline (a
//! second signal ends the drain at once), dump the in-memory store if asked, and close the
//! pool.
//!
//! Connections are served by hyper directly (HTTP/1.1), with a header-read timeout, a longer
//! idle keep-alive timeout, a bound on a request head's bytes, and a cap on open connections
//! per listener, within which connections that have not finished a request head are capped
//! too and shed first when room is needed ([`crate::connections`]); the ingest handler bounds
//! the body's arrival in time ([`crate::api::BODY_READ_TIMEOUT`]) and the bytes of all bodies
//! held at once ([`crate::api::BodyBudget`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::api::{AppState, BODY_READ_TIMEOUT, BodyBudget, app, metrics_app};
use crate::auth::Verifier;
use crate::cache::{CacheError, StatsCache};
use crate::cli::Flags;
use crate::config::Config;
use crate::connections::{Connections, SHED_AFTER, Shed, Slot};
use crate::contract;
use crate::metrics::{KindLabel, Metrics};
use crate::store::postgres::PoolSizes;
use crate::store::{MemoryStore, PgStore, Store, StoreError, check_dump_path};
use crate::timed_io::TimedIo;

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
    /// `--dump-on-exit` was given with `DATABASE_URL`.
    #[error(
        "--dump-on-exit applies only to the in-memory store, and DATABASE_URL is set; drop one of them"
    )]
    DumpWithDatabase,
}

/// Opens the store and cache the configuration names, and builds the handler state.
pub async fn build_state(config: &Config, flags: &Flags) -> Result<AppState, ServerError> {
    let store = match &config.database_url {
        None => Store::Memory(
            MemoryStore::new(flags.memory_max_events, flags.memory_retention)
                .with_max_bytes(flags.memory_max_bytes),
        ),
        Some(url) => {
            // The sqlx error may quote the URL, so only its kind is reported.
            let options: PgConnectOptions = url
                .parse()
                .map_err(|e: sqlx::Error| ServerError::DatabaseUrl(error_kind(&e)))?;
            let sizes = PoolSizes {
                max: config.pool_max,
                min: config.pool_min,
            };
            let store = PgStore::connect(options, sizes).await?;
            store.start_retention(config.retention);
            if config.compact_sketches {
                store.write_compact_sketches();
            }
            Store::Postgres(store)
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
        verifier: config.jwt_secret.as_deref().map(|s| {
            let v = Verifier::with_claims(s, config.jwt_issuer.as_deref(), &config.jwt_audiences)
                .with_max_lifetime_secs(config.jwt_max_lifetime_secs);
            match config.jwt_secret_previous.as_deref() {
                Some(previous) => v.with_previous(previous),
                None => v,
            }
        }),
        cors: config.cors.clone(),
        draining: Arc::new(AtomicBool::new(false)),
        body_read_timeout: BODY_READ_TIMEOUT,
        body_budget: BodyBudget::new(flags.body_budget_bytes),
    })
}

fn error_kind(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "invalid connection options".to_owned(),
        _ => "unparsable".to_owned(),
    }
}

/// Sends one `()` per SIGTERM or SIGINT received, for [`serve`]: the first starts the
/// drain, a second one ends it at once.
pub fn signals() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => loop {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received"),
                        _ = int.recv() => tracing::info!("SIGINT received"),
                    }
                    if tx.send(()).await.is_err() {
                        return;
                    }
                },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT; only Ctrl-C stops the service");
                }
            }
        }
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every in-flight request finished.
    Complete,
    /// The deadline passed first; the remaining requests were dropped unanswered (so none
    /// of them was acknowledged).
    DeadlineExceeded,
    /// A second signal ended the drain at once; the remaining requests were dropped
    /// unanswered.
    Interrupted,
}

/// Connection limits, per listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Time a client has to send a request's headers, counted from the connection's start or,
    /// on a kept-alive connection, from the headers' first byte.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may stay idle between a response and the next request
    /// ([`contract::IDLE_KEEPALIVE_SECS`], longer than the ingress proxy's).
    pub idle_timeout: Duration,
    /// Most connections held open on the API port. A new connection beyond it sheds the
    /// oldest connection that has not finished a request head within a second, or else the
    /// longest idle kept-alive one (nothing written to it for a second); until one of them
    /// is, it waits in the listen backlog ([`crate::connections`]).
    pub max_connections: usize,
    /// Most connections held open on the metrics port, with the same shedding.
    pub max_metrics_connections: usize,
    /// Most bytes of one request head (request line and headers); a longer head is
    /// answered 431 and the connection closed. hyper reads at most this much (and at least
    /// 8 KiB) ahead per connection.
    pub max_header_bytes: usize,
    /// Most connections per listener that have not finished their first request head (so
    /// no request of theirs has reached authentication) a second after opening; a sweep
    /// every 250 ms sheds the oldest beyond it. Headers buffered before authentication thus
    /// take at most this times `max_header_bytes` per listener, plus whatever the
    /// connections opened within the last second sent.
    pub max_unfinished_heads: usize,
    /// How long a connection must make no progress before it may be shed
    /// ([`crate::connections`]).
    pub shed_after: Duration,
}

/// [`ServeLimits::max_header_bytes`] by default: 16 KiB, room for a long bearer token.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// [`ServeLimits::max_unfinished_heads`] by default: a quarter of the API port's
/// connections, so at most 4 MiB of headers (beyond those of the last second's new
/// connections) are buffered before authentication.
pub const DEFAULT_MAX_UNFINISHED_HEADS: usize = 256;

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(u64::from(contract::IDLE_KEEPALIVE_SECS)),
            max_connections: 1024,
            max_metrics_connections: 32,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_unfinished_heads: DEFAULT_MAX_UNFINISHED_HEADS,
            shed_after: SHED_AFTER,
        }
    }
}

/// Serves `app` on `http` and the metrics on `metrics` until the first message on
/// `signals` (or its sender is dropped), then marks the state draining, stops accepting,
/// closes idle connections and waits up to `deadline` for in-flight requests; a second
/// message ends the wait at once.
pub async fn serve(
    http: TcpListener,
    metrics: TcpListener,
    state: AppState,
    mut signals: mpsc::Receiver<()>,
    deadline: Duration,
    limits: ServeLimits,
) -> Result<Drain, ServerError> {
    let (tx, rx) = watch::channel(false);
    let draining = state.draining.clone();
    let mut api = tokio::spawn(accept_loop(
        http,
        app(state.clone()),
        limits.max_connections,
        limits,
        state.metrics.clone(),
        rx.clone(),
    ));
    let metrics_task = tokio::spawn(accept_loop(
        metrics,
        metrics_app(state.clone()),
        limits.max_metrics_connections,
        limits,
        state.metrics,
        rx,
    ));
    let _ = signals.recv().await;
    draining.store(true, Ordering::SeqCst);
    tracing::info!(
        deadline_secs = deadline.as_secs(),
        "shutting down: no new connections, draining in-flight requests (a second signal stops at once)"
    );
    let _ = tx.send(true);
    let second = async {
        if signals.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    };
    let drain = tokio::select! {
        _ = &mut api => Drain::Complete,
        () = tokio::time::sleep(deadline) => {
            tracing::warn!("shutdown deadline passed; dropping unfinished requests (none of them was acknowledged)");
            Drain::DeadlineExceeded
        }
        () = second => {
            tracing::warn!("second signal: dropping unfinished requests now (none of them was acknowledged)");
            Drain::Interrupted
        }
    };
    // Aborting a loop drops its connections, cutting requests still unanswered.
    metrics_task.abort();
    let _ = metrics_task.await;
    if drain != Drain::Complete {
        api.abort();
        let _ = api.await;
    }
    Ok(drain)
}

/// Accepts connections on `listener` (at most `max` at a time, shedding idle ones to make
/// room as [`crate::connections`] says) and serves HTTP/1.1 on each until `stop`; then lets
/// each connection finish its current request and returns once every one of them is
/// closed. Meanwhile new connections are still accepted, for one request each (so probes
/// get `/ready`'s 503 rather than a refused connection), and cut when the others are done.
async fn accept_loop(
    listener: TcpListener,
    router: Router,
    max: usize,
    limits: ServeLimits,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let permits = Arc::new(Semaphore::new(max.max(1)));
    let table = Connections::new(limits.max_unfinished_heads.min(max), limits.shed_after);
    let count = |shed: Shed, n: u64| {
        let kind = KindLabel {
            kind: shed.as_str(),
        };
        metrics.connections_shed.get_or_create(&kind).inc_by(n);
    };
    // Connections turn stale as they age: the sweep (and a newcomer waiting for room)
    // looks again this often.
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connections = JoinSet::new();
    'accept: loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // E.g. out of descriptors: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = sweep.tick() => {
                count(Shed::Unfinished, table.sweep());
                continue;
            }
            () = stopped(stop.clone()) => break,
        };
        // Full: shed a stale connection, whose permit comes back as soon as its task ends;
        // with none stale yet, try again as they age.
        let mut shed = false;
        let permit = loop {
            if let Ok(permit) = permits.clone().try_acquire_owned() {
                break permit;
            }
            if !shed && let Some(kind) = table.make_room() {
                count(kind, 1);
                shed = true;
            }
            tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => break p,
                    Err(_) => break 'accept,
                },
                _ = sweep.tick() => count(Shed::Unfinished, table.sweep()),
                () = stopped(stop.clone()) => break 'accept,
            }
        };
        let registration = table.register();
        let slot = registration.slot.clone();
        let conn = serve_connection(stream, router.clone(), limits, true, slot.clone());
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _held = (permit, registration);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection closed with an error");
                    }
                }
                () = slot.shed() => tracing::debug!("connection shed to make room"),
                () = async move { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let mut late = JoinSet::new();
    loop {
        tokio::select! {
            done = connections.join_next() => if done.is_none() { break },
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Within the same cap; beyond it the connection is closed at once.
                if let Ok(permit) = permits.clone().try_acquire_owned() {
                    let conn = serve_connection(stream, router.clone(), limits, false, Slot::detached());
                    late.spawn(async move {
                        let _permit = permit;
                        let _ = conn.await;
                    });
                }
            }
        }
    }
    drop(listener);
    late.shutdown().await;
}

/// Serves HTTP/1.1 on `stream` (keeping it alive between requests or not), with the header
/// and idle clocks of [`TimedIo`], its phases reported to `slot`, and heads bounded by
/// [`ServeLimits::max_header_bytes`].
fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    limits: ServeLimits,
    keep_alive: bool,
    slot: Arc<Slot>,
) -> hyper::server::conn::http1::Connection<
    TokioIo<TimedIo<tokio::net::TcpStream>>,
    impl hyper::service::Service<
        hyper::Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Send,
> {
    /// hyper's smallest read buffer bound (it panics below it).
    const MIN_BUF_BYTES: usize = 8192;
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = http1::Builder::new();
    // The header clock is TimedIo's: hyper's would also count the idle time.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_BYTES))
        .keep_alive(keep_alive);
    let io = TimedIo::new(
        stream,
        limits.header_read_timeout,
        limits.idle_timeout,
        slot,
    );
    builder.serve_connection(TokioIo::new(io), service)
}

/// How often each listener sheds stale unfinished connections beyond its cap.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// How long closing the pool may take at exit.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection limits of a run: the configuration's, each replaced by its flag if given.
fn serve_limits(config: &Config, flags: &Flags) -> ServeLimits {
    let mut limits = config.serve_limits;
    for &(limit, value) in &flags.limits {
        limit.set(&mut limits, value);
    }
    limits
}

/// Runs the service until a shutdown signal, then drains and closes everything.
pub async fn run(config: Config, flags: Flags) -> Result<(), ServerError> {
    if let Some(path) = &flags.dump_on_exit {
        if config.database_url.is_some() {
            return Err(ServerError::DumpWithDatabase);
        }
        // Refused now, before any event is acknowledged, rather than at exit.
        check_dump_path(path)?;
    }
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
        jwt_previous_key = config.jwt_secret_previous.is_some(),
        "listening"
    );
    if state.verifier.is_none() {
        tracing::warn!(
            "development mode: JWT_SECRET is not set, /v1/* is served WITHOUT authentication"
        );
    }
    let store = state.store.clone();
    let drain = serve(
        http,
        metrics,
        state,
        signals(),
        SHUTDOWN_DEADLINE,
        serve_limits(&config, &flags),
    )
    .await?;
    if let (Store::Memory(memory), Some(path)) = (store.as_ref(), &flags.dump_on_exit) {
        let n = memory.dump_jsonl(path)?;
        tracing::info!(events = n, path = %path.display(), "in-memory store dumped");
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, store.close())
        .await
        .is_err()
    {
        tracing::warn!("closing the database pool timed out");
    }
    tracing::info!(?drain, "stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgSslMode;

    #[test]
    fn database_urls_with_verify_full_and_a_ca_bundle_parse() {
        let url = format!(
            "postgres://analytics_api:p%40ss@db.cluster-abc.eu-west-1.rds.amazonaws.com:5432/analytics?sslmode=verify-full&sslrootcert={}",
            contract::DATABASE_CA_BUNDLE_PATH
        );
        let options: PgConnectOptions = url.parse().expect("verify-full with a CA bundle parses");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!(
            options.get_host(),
            "db.cluster-abc.eu-west-1.rds.amazonaws.com"
        );
        assert_eq!(options.get_username(), "analytics_api");
        assert_eq!(options.get_database(), Some("analytics"));
        let debug = format!("{options:?}");
        assert!(debug.contains(contract::DATABASE_CA_BUNDLE_PATH), "{debug}");
    }
}
