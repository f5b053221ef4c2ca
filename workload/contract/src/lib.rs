//! The analytics API's deployment contract.
//!
//! Everything a stack needs to know to run the workload binary: the ports it listens on,
//! its probe paths, the environment variables it reads (and which of them are secrets),
//! and the resources it is sized for. The binary reads its configuration through these
//! same constants, and keel's stacks build probes, ports and env from them, so the two
//! cannot drift. This crate has no dependencies, so keel can import it without pulling
//! in the server.
#![deny(missing_docs)]

/// TCP port of the HTTP API (`API_PORT`'s default).
pub const HTTP_PORT: u16 = 8080;
/// TCP port of the Prometheus metrics listener (`API_METRICS_PORT`'s default).
pub const METRICS_PORT: u16 = 9091;
/// Name of the HTTP container/service port (an IANA service name).
pub const HTTP_PORT_NAME: &str = "http";
/// Name of the metrics container/service port.
pub const METRICS_PORT_NAME: &str = "metrics";

/// Liveness probe: answers 200 while the process serves.
pub const LIVENESS_PATH: &str = "/health";
/// Readiness probe: 200 while this process can do its own work: the store answers (the
/// PostgreSQL pool hands out a connection within a bound, or the in-memory store has room for
/// another event) and the process is not draining. During the drain the listener stays open
/// and `/ready` answers 503 (not a refused connection) until in-flight requests are done. The stats cache (Redis) is not part of readiness: a cache
/// failover degrades latency, it must not mark every pod unready at once. `/ready` reports
/// the cache's state in its body for operators.
pub const READINESS_PATH: &str = "/ready";
/// Startup probe path (the liveness endpoint, probed until the process first answers).
pub const STARTUP_PATH: &str = "/health";
/// Prometheus metrics path, served on [`METRICS_PORT`].
pub const METRICS_PATH: &str = "/metrics";

/// A Prometheus metric the binary exposes on [`METRICS_PATH`], which keel's rollout analysis
/// and SLO rules query. The binary registers each one under [`Metric::registered`], so a
/// renamed metric breaks the build (or the workload's exposition test), not a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The name given to the client library (a counter's `_total` suffix is added by it).
    pub registered: &'static str,
    /// The series name as scraped: what PromQL selects (a histogram adds `_bucket`,
    /// `_sum` and `_count` to it).
    pub exposed: &'static str,
}

/// Counter of finished HTTP requests, labelled `method`, `route` and [`STATUS_LABEL`].
pub const HTTP_REQUESTS: Metric = Metric {
    registered: "http_requests",
    exposed: "http_requests_total",
};
/// Histogram of HTTP request latency in seconds, with the same labels as [`HTTP_REQUESTS`].
pub const HTTP_REQUEST_DURATION: Metric = Metric {
    registered: "http_request_duration_seconds",
    exposed: "http_request_duration_seconds",
};
/// Counter of tokens verified, labelled [`JWT_KEY_LABEL`]: `current` (`JWT_SECRET`) or
/// `previous` (`JWT_SECRET_PREVIOUS`). A rotation is over once the `previous` series stops
/// growing on every replica for the token lifetime.
pub const JWT_VERIFIED: Metric = Metric {
    registered: "jwt_verified",
    exposed: "jwt_verified_total",
};
/// Label of [`JWT_VERIFIED`] naming the secret that verified a token.
pub const JWT_KEY_LABEL: &str = "key";
/// Label of the HTTP metrics holding the response status code (`"200"`, `"503"`, ...).
pub const STATUS_LABEL: &str = "status";
/// Label of the HTTP metrics holding the matched route pattern.
pub const ROUTE_LABEL: &str = "route";
/// Upper bounds (seconds) of the latency histogram's buckets. A latency threshold in an SLO
/// or a rollout analysis should sit on one of them to be measured exactly.
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One environment variable the binary reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// Variable name, e.g. `DATABASE_URL`.
    pub name: &'static str,
    /// Whether its value is a secret: stacks must inject it from a secret store, never as a
    /// plain value in a manifest or task definition.
    pub secret: bool,
    /// Whether the binary refuses to start without it (outside development mode).
    pub required: bool,
    /// Default the binary uses when the variable is unset, if any.
    pub default: Option<&'static str>,
    /// One line saying what it is.
    pub description: &'static str,
}

/// `API_PORT`: HTTP listen port.
pub const API_PORT: EnvVar = EnvVar {
    name: "API_PORT",
    secret: false,
    required: false,
    default: Some("8080"),
    description: "HTTP server port",
};
/// `API_METRICS_PORT`: metrics listen port.
pub const API_METRICS_PORT: EnvVar = EnvVar {
    name: "API_METRICS_PORT",
    secret: false,
    required: false,
    default: Some("9091"),
    description: "Prometheus metrics port",
};
/// `APP_HOST`: bind address.
pub const APP_HOST: EnvVar = EnvVar {
    name: "APP_HOST",
    secret: false,
    required: false,
    default: Some("0.0.0.0"),
    description: "Bind address",
};
/// `DATABASE_URL`: PostgreSQL connection string; unset means the in-memory store.
pub const DATABASE_URL: EnvVar = EnvVar {
    name: "DATABASE_URL",
    secret: true,
    required: false,
    default: None,
    description: "PostgreSQL connection string (in-memory store when unset)",
};
/// `REDIS_URL`: Redis connection string for the stats cache; unset means no cache.
pub const REDIS_URL: EnvVar = EnvVar {
    name: "REDIS_URL",
    secret: true,
    required: false,
    default: None,
    description: "Redis connection string for the stats cache (no cache when unset)",
};
/// `JWT_SECRET`: HS256 signing secret for `/v1/*`.
pub const JWT_SECRET: EnvVar = EnvVar {
    name: "JWT_SECRET",
    secret: true,
    required: true,
    default: None,
    description: "HS256 JWT signing secret: at least 32 characters, 8 of them distinct, no surrounding whitespace",
};
/// `JWT_SECRET_PREVIOUS`: the secret being rotated out, still accepted for verification.
pub const JWT_SECRET_PREVIOUS: EnvVar = EnvVar {
    name: "JWT_SECRET_PREVIOUS",
    secret: true,
    required: false,
    default: None,
    description: "Previous HS256 secret, still accepted (never signed with) during a rotation: same strength rules as JWT_SECRET and different from it; unset or empty when not rotating",
};
/// `JWT_ISSUER`: when set, tokens must carry this `iss`.
pub const JWT_ISSUER: EnvVar = EnvVar {
    name: "JWT_ISSUER",
    secret: false,
    required: false,
    default: None,
    description: "Required JWT `iss` claim (not checked when unset)",
};
/// `JWT_AUDIENCE`: when set, tokens must carry an `aud` naming one of these.
pub const JWT_AUDIENCE: EnvVar = EnvVar {
    name: "JWT_AUDIENCE",
    secret: false,
    required: false,
    default: None,
    description: "Comma-separated accepted JWT `aud` values (not checked when unset)",
};
/// `JWT_MAX_LIFETIME_SECS`: longest token lifetime accepted (`exp` at most this far ahead).
pub const JWT_MAX_LIFETIME_SECS: EnvVar = EnvVar {
    name: "JWT_MAX_LIFETIME_SECS",
    secret: false,
    required: false,
    default: None,
    description: "Longest accepted JWT lifetime in seconds: `exp` at most this far ahead (86400 when unset)",
};
/// `RETENTION_DAYS`: with PostgreSQL, raw events and rollups older than this are deleted.
pub const RETENTION_DAYS: EnvVar = EnvVar {
    name: "RETENTION_DAYS",
    secret: false,
    required: false,
    default: None,
    description: "Days PostgreSQL keeps raw events and rollups, deleted in bounded batches every 10 minutes (90 when unset)",
};
/// `SKETCH_ENCODING`: how PostgreSQL rollups store latency sketches.
pub const SKETCH_ENCODING: EnvVar = EnvVar {
    name: "SKETCH_ENCODING",
    secret: false,
    required: false,
    default: Some("legacy"),
    description: "Rollup sketch encoding the service writes: `legacy` (12 bytes a bucket, what every version reads) or `compact` (about a sixth; set it only once every replica reads it, and then legacy rows are re-encoded in the background)",
};
/// `HTTP_MAX_CONNECTIONS`: most connections held open on the API port.
pub const HTTP_MAX_CONNECTIONS: EnvVar = EnvVar {
    name: "HTTP_MAX_CONNECTIONS",
    secret: false,
    required: false,
    default: None,
    description: "Most connections open on the API port; a new one beyond it sheds a stale one first (1024 when unset)",
};
/// `METRICS_MAX_CONNECTIONS`: most connections held open on the metrics port.
pub const METRICS_MAX_CONNECTIONS: EnvVar = EnvVar {
    name: "METRICS_MAX_CONNECTIONS",
    secret: false,
    required: false,
    default: None,
    description: "Most connections open on the metrics port, shed the same way (32 when unset)",
};
/// `HTTP_MAX_HEADER_BYTES`: most bytes of one request head.
pub const HTTP_MAX_HEADER_BYTES: EnvVar = EnvVar {
    name: "HTTP_MAX_HEADER_BYTES",
    secret: false,
    required: false,
    default: None,
    description: "Most bytes of one request head (request line and headers); a longer one is answered 431 (16384 when unset)",
};
/// `HTTP_MAX_UNFINISHED_HEADS`: most connections per listener without a finished first
/// request head once they are stale.
pub const HTTP_MAX_UNFINISHED_HEADS: EnvVar = EnvVar {
    name: "HTTP_MAX_UNFINISHED_HEADS",
    secret: false,
    required: false,
    default: None,
    description: "Most stale connections per listener that have not finished their first request head; the oldest beyond it are shed (256 when unset)",
};
/// `HTTP_SHED_AFTER_MS`: how long a connection must make no progress before it may be shed.
pub const HTTP_SHED_AFTER_MS: EnvVar = EnvVar {
    name: "HTTP_SHED_AFTER_MS",
    secret: false,
    required: false,
    default: None,
    description: "Milliseconds without progress (no finished head, or idle since the last response) after which a connection may be shed (1000 when unset)",
};
/// `HTTP_HEADER_READ_TIMEOUT_SECS`: time a client has to send a request head.
pub const HTTP_HEADER_READ_TIMEOUT_SECS: EnvVar = EnvVar {
    name: "HTTP_HEADER_READ_TIMEOUT_SECS",
    secret: false,
    required: false,
    default: None,
    description: "Seconds a client has to send a request head, from the connection's start or the head's first byte (10 when unset)",
};
/// `CACHE_DEFAULT_TTL`: stats cache TTL in seconds.
pub const CACHE_DEFAULT_TTL: EnvVar = EnvVar {
    name: "CACHE_DEFAULT_TTL",
    secret: false,
    required: false,
    default: Some("60"),
    description: "Stats cache TTL in seconds",
};
/// `RUST_LOG`: log filter.
pub const RUST_LOG: EnvVar = EnvVar {
    name: "RUST_LOG",
    secret: false,
    required: false,
    default: Some("info"),
    description: "Log filter (tracing EnvFilter syntax)",
};
/// `CORS_ORIGINS`: comma-separated allowed origins.
pub const CORS_ORIGINS: EnvVar = EnvVar {
    name: "CORS_ORIGINS",
    secret: false,
    required: false,
    default: Some(""),
    description: "Comma-separated allowed CORS origins (none when empty, `*` for any)",
};
/// `DATABASE_POOL_SIZE`: maximum pool connections.
pub const DATABASE_POOL_SIZE: EnvVar = EnvVar {
    name: "DATABASE_POOL_SIZE",
    secret: false,
    required: false,
    default: Some("20"),
    description: "Maximum database connections (a quarter, at least 1, serve stats; the rest ingest)",
};
/// `DATABASE_MIN_CONNECTIONS`: minimum idle pool connections.
pub const DATABASE_MIN_CONNECTIONS: EnvVar = EnvVar {
    name: "DATABASE_MIN_CONNECTIONS",
    secret: false,
    required: false,
    default: Some("5"),
    description: "Minimum database connections",
};

/// Every variable the binary reads, in a stable order.
pub const ENV_VARS: &[EnvVar] = &[
    API_PORT,
    API_METRICS_PORT,
    APP_HOST,
    DATABASE_URL,
    REDIS_URL,
    JWT_SECRET,
    JWT_SECRET_PREVIOUS,
    JWT_ISSUER,
    JWT_AUDIENCE,
    JWT_MAX_LIFETIME_SECS,
    RETENTION_DAYS,
    SKETCH_ENCODING,
    HTTP_MAX_CONNECTIONS,
    METRICS_MAX_CONNECTIONS,
    HTTP_MAX_HEADER_BYTES,
    HTTP_MAX_UNFINISHED_HEADS,
    HTTP_SHED_AFTER_MS,
    HTTP_HEADER_READ_TIMEOUT_SECS,
    CACHE_DEFAULT_TTL,
    RUST_LOG,
    CORS_ORIGINS,
    DATABASE_POOL_SIZE,
    DATABASE_MIN_CONNECTIONS,
];

/// Variables whose change must not ship in the same rollout as a new image: replicas of the
/// previous image keep serving beside the new ones during a canary (and again after a
/// rollback), so the new value must be one every serving version handles. Stacks mark
/// them, and `keel diff` blocks a change that sets one together with an image change.
/// `SKETCH_ENCODING=compact` writes rollup rows only this version reads.
pub const CHANGE_APART_FROM_IMAGE: &[EnvVar] = &[SKETCH_ENCODING];

/// Container resources the binary is sized for (Kubernetes quantities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// CPU request, e.g. `500m`.
    pub cpu_request: &'static str,
    /// Memory request, e.g. `512Mi`.
    pub memory_request: &'static str,
    /// CPU limit.
    pub cpu_limit: &'static str,
    /// Memory limit.
    pub memory_limit: &'static str,
}

/// Default resources (the seed's Deployment: 500m/512Mi requested, 1 CPU/1Gi limit).
pub const DEFAULT_RESOURCES: Resources = Resources {
    cpu_request: "500m",
    memory_request: "512Mi",
    cpu_limit: "1000m",
    memory_limit: "1Gi",
};

/// [`DEFAULT_RESOURCES`]' memory limit in bytes (`1Gi`), from which the binary sizes its
/// in-memory store.
pub const MEMORY_LIMIT_BYTES: u64 = 1 << 30;

/// Percent of [`MEMORY_LIMIT_BYTES`] the in-memory store may hold by default, counted in
/// bytes (events, their attributes' JSON text and their ids); the rest is for request
/// bodies ([`BODY_BUDGET_PERCENT`]), connections, the allocator's slack and the runtime.
pub const MEMORY_STORE_PERCENT: u64 = 40;

/// Percent of [`MEMORY_LIMIT_BYTES`] that request bodies held at once, across every
/// connection, may take by default (as received, plus the inflated size of a gzip body);
/// beyond it an ingest request is answered 503 at once instead of being buffered.
pub const BODY_BUDGET_PERCENT: u64 = 25;

const _: () = assert!(MEMORY_STORE_PERCENT + BODY_BUDGET_PERCENT <= 75);

/// Numeric user id the image runs as (distroless `nonroot`); stacks set `runAsUser` to it
/// with `runAsNonRoot: true`. The binary writes no files (unless `--dump-on-exit` is given),
/// so the root filesystem can be read-only.
pub const RUN_AS_USER: u32 = 65532;
/// Numeric group id the image runs as.
pub const RUN_AS_GROUP: u32 = 65532;

/// Seconds the ingress proxy in front of the pods keeps an idle upstream connection open for
/// reuse (ingress-nginx's `upstream-keepalive-timeout` default; the ALB's idle timeout is
/// also 60 s).
pub const INGRESS_UPSTREAM_KEEPALIVE_SECS: u32 = 60;

/// Seconds the binary keeps an idle keep-alive connection open between requests: longer
/// than [`INGRESS_UPSTREAM_KEEPALIVE_SECS`], so the proxy always closes an idle connection
/// first and never sends a request on one the pod is closing (which it would answer 502).
/// A request's headers must still arrive within 10 s of the connection opening or of their
/// first byte.
pub const IDLE_KEEPALIVE_SECS: u32 = 75;

const _: () = assert!(IDLE_KEEPALIVE_SECS > INGRESS_UPSTREAM_KEEPALIVE_SECS);

/// Seconds the binary needs to drain in-flight requests after SIGTERM; stacks set the
/// termination grace period above it.
pub const SHUTDOWN_DEADLINE_SECS: u32 = 20;

/// Seconds a stack pauses the container before SIGTERM (a `preStop` sleep), so load balancers
/// and kube-proxy stop sending new connections to a terminating pod before it stops
/// accepting them; without it a rolling update answers 502s.
pub const PRE_STOP_PAUSE_SECS: u32 = 10;

/// Seconds of termination grace a stack gives the container: the pre-stop pause, the drain
/// deadline, and a margin for the process to exit.
pub const TERMINATION_GRACE_SECS: u32 = PRE_STOP_PAUSE_SECS + SHUTDOWN_DEADLINE_SECS + 5;

/// Path of the Amazon RDS certificate bundle inside the image. Stacks connect with
/// `sslmode=verify-full&sslrootcert=` this path, so the server's certificate and host name
/// are both checked.
pub const DATABASE_CA_BUNDLE_PATH: &str = "/etc/ssl/certs/rds-global-bundle.pem";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names_are_unique() {
        let mut names: Vec<_> = ENV_VARS.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ENV_VARS.len());
    }

    #[test]
    fn the_memory_limit_in_bytes_matches_the_resources() {
        let gi = DEFAULT_RESOURCES.memory_limit.strip_suffix("Gi");
        assert_eq!(
            gi.and_then(|n| n.parse::<u64>().ok()).map(|n| n << 30),
            Some(MEMORY_LIMIT_BYTES)
        );
    }

    #[test]
    fn defaults_match_port_constants() {
        assert_eq!(API_PORT.default, Some("8080"));
        assert_eq!(HTTP_PORT.to_string(), API_PORT.default.unwrap_or_default());
        assert_eq!(
            METRICS_PORT.to_string(),
            API_METRICS_PORT.default.unwrap_or_default()
        );
    }

    #[test]
    fn the_secret_variables_are_exactly_the_four_stacks_provide() {
        let secrets: Vec<_> = ENV_VARS
            .iter()
            .filter(|v| v.secret)
            .map(|v| v.name)
            .collect();
        assert_eq!(
            secrets,
            [
                "DATABASE_URL",
                "REDIS_URL",
                "JWT_SECRET",
                "JWT_SECRET_PREVIOUS"
            ]
        );
        // Only during a rotation is there a previous secret.
        assert!(!JWT_SECRET_PREVIOUS.required && JWT_SECRET_PREVIOUS.default.is_none());
        // The token checks are optional plain settings: unset, they are not checked.
        for v in [
            JWT_ISSUER,
            JWT_AUDIENCE,
            JWT_MAX_LIFETIME_SECS,
            RETENTION_DAYS,
        ] {
            assert!(
                !v.secret && !v.required && v.default.is_none(),
                "{}",
                v.name
            );
        }
    }
}
