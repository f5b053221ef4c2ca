//! Configuration from the environment: every variable named in [`crate::contract`], each
//! validated at start, with every problem reported at once.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use keel_workload_contract::{self as contract, EnvVar};

use crate::limits::LIMITS;
use crate::server::ServeLimits;

/// Minimum length of `JWT_SECRET`, in characters.
pub const MIN_JWT_SECRET_CHARS: usize = 32;
/// Minimum number of distinct characters in `JWT_SECRET` (refuses `aaaa...` and the like).
pub const MIN_JWT_SECRET_DISTINCT: usize = 8;
/// `RETENTION_DAYS` when unset: the longest stats window.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
/// Largest `RETENTION_DAYS`: ten years.
pub const MAX_RETENTION_DAYS: u64 = 3650;
/// Largest `JWT_MAX_LIFETIME_SECS`: 30 days.
pub const MAX_JWT_LIFETIME_SECS: u64 = 30 * 24 * 3600;

/// Validated service configuration.
#[derive(Clone)]
pub struct Config {
    /// Bind address (`APP_HOST`).
    pub host: IpAddr,
    /// HTTP API port (`API_PORT`); 0 picks a free port.
    pub http_port: u16,
    /// Metrics port (`API_METRICS_PORT`); 0 picks a free port.
    pub metrics_port: u16,
    /// PostgreSQL URL (`DATABASE_URL`); `None` selects the in-memory store.
    pub database_url: Option<String>,
    /// Redis URL (`REDIS_URL`); `None` disables the stats cache.
    pub redis_url: Option<String>,
    /// HS256 secret (`JWT_SECRET`); `None` only in development mode (no authentication).
    pub jwt_secret: Option<String>,
    /// The secret being rotated out (`JWT_SECRET_PREVIOUS`), still accepted for
    /// verification; `None` when not rotating.
    pub jwt_secret_previous: Option<String>,
    /// Required `iss` claim (`JWT_ISSUER`), if any.
    pub jwt_issuer: Option<String>,
    /// Accepted `aud` values (`JWT_AUDIENCE`); empty means `aud` is not checked.
    pub jwt_audiences: Vec<String>,
    /// Longest accepted token lifetime (`JWT_MAX_LIFETIME_SECS`, default 24 h).
    pub jwt_max_lifetime_secs: u64,
    /// How long PostgreSQL keeps events and rollups (`RETENTION_DAYS`, default 90 days).
    pub retention: Duration,
    /// Whether rollups are written in the compact sketch encoding (`SKETCH_ENCODING`).
    pub compact_sketches: bool,
    /// Stats cache time to live (`CACHE_DEFAULT_TTL`).
    pub cache_ttl: Duration,
    /// Log filter in `tracing` EnvFilter syntax (`RUST_LOG`).
    pub log_filter: String,
    /// Allowed CORS origins (`CORS_ORIGINS`).
    pub cors: CorsOrigins,
    /// Maximum pool connections (`DATABASE_POOL_SIZE`).
    pub pool_max: u32,
    /// Minimum pool connections (`DATABASE_MIN_CONNECTIONS`).
    pub pool_min: u32,
    /// Connection limits (`HTTP_MAX_HEADER_BYTES` and the others of [`LIMITS`]; the
    /// defaults of [`ServeLimits`] where unset).
    pub serve_limits: ServeLimits,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("http_port", &self.http_port)
            .field("metrics_port", &self.metrics_port)
            .field("database_url", &redact(&self.database_url))
            .field("redis_url", &redact(&self.redis_url))
            .field("jwt_secret", &redact(&self.jwt_secret))
            .field("jwt_secret_previous", &redact(&self.jwt_secret_previous))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audiences", &self.jwt_audiences)
            .field("jwt_max_lifetime_secs", &self.jwt_max_lifetime_secs)
            .field("retention", &self.retention)
            .field("cache_ttl", &self.cache_ttl)
            .field("log_filter", &self.log_filter)
            .field("cors", &self.cors)
            .field("pool_max", &self.pool_max)
            .field("pool_min", &self.pool_min)
            .field("serve_limits", &self.serve_limits)
            .finish()
    }
}

/// Which browser origins may call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers are sent: browsers on other origins are refused.
    None,
    /// Any origin (`*`).
    Any,
    /// Exactly these origins, e.g. `https://app.example.com`.
    List(Vec<String>),
}

/// One invalid or missing environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is set to a value that is not accepted.
    #[error("{var}: expected {expected}, found {found}")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// What is accepted.
        expected: String,
        /// What was found (redacted for secrets).
        found: String,
    },
    /// `JWT_SECRET` is unset outside development mode.
    #[error(
        "JWT_SECRET: not set; the service refuses to start without a signing secret for /v1/*. \
         Set JWT_SECRET to at least {MIN_JWT_SECRET_CHARS} characters, or pass --dev to run \
         without authentication (local development only)"
    )]
    MissingJwtSecret,
    /// Two variables contradict each other.
    #[error("{0}")]
    Inconsistent(String),
}

/// Every configuration problem found, in variable order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem", self.0.len())?;
        if self.0.len() != 1 {
            write!(f, "s")?;
        }
        write!(f, "):")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates the process environment. `dev` allows a missing `JWT_SECRET`.
    pub fn from_env(dev: bool) -> Result<Self, ConfigErrors> {
        Self::from_lookup(dev, |name| std::env::var(name).ok())
    }

    /// Reads and validates variables through `lookup` (the environment, or a map in tests).
    /// An empty value counts as unset.
    pub fn from_lookup(
        dev: bool,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let get = |var: &EnvVar| lookup(var.name).filter(|v| !v.is_empty());
        let raw = |var: &EnvVar| get(var).or_else(|| var.default.map(str::to_owned));

        let host = parse(
            &contract::APP_HOST,
            raw(&contract::APP_HOST),
            &mut errors,
            |v| {
                v.parse::<IpAddr>()
                    .map_err(|_| "an IP address such as 0.0.0.0 or ::".into())
            },
        );
        let port = |v: &str| {
            v.parse::<u16>()
                .map_err(|_| "a port number 0..=65535 (0 picks a free port)".to_owned())
        };
        let http_port = parse(
            &contract::API_PORT,
            raw(&contract::API_PORT),
            &mut errors,
            port,
        );
        let metrics_port = parse(
            &contract::API_METRICS_PORT,
            raw(&contract::API_METRICS_PORT),
            &mut errors,
            port,
        );
        let database_url = parse_opt(
            &contract::DATABASE_URL,
            get(&contract::DATABASE_URL),
            &mut errors,
            |v| {
                if v.starts_with("postgres://") || v.starts_with("postgresql://") {
                    Ok(v.to_owned())
                } else {
                    Err("a postgres:// or postgresql:// URL".into())
                }
            },
        );
        let redis_url = parse_opt(
            &contract::REDIS_URL,
            get(&contract::REDIS_URL),
            &mut errors,
            |v| {
                let expected = "a redis:// URL, or rediss:// for TLS verified against public roots";
                if !(v.starts_with("redis://") || v.starts_with("rediss://")) {
                    Err(expected.into())
                } else if v.ends_with("#insecure") {
                    Err(format!("{expected} (there is no #insecure mode)"))
                } else if v.contains('#') {
                    // The client would read the rest as a URL fragment and refuse it.
                    Err(format!("{expected} (write `#` in a password as %23)"))
                } else {
                    Ok(v.to_owned())
                }
            },
        );
        let jwt_secret = match get(&contract::JWT_SECRET) {
            Some(s) => strong_secret(&contract::JWT_SECRET, s, &mut errors),
            None if dev => None,
            None => {
                errors.push(ConfigError::MissingJwtSecret);
                None
            }
        };
        let jwt_secret_previous = get(&contract::JWT_SECRET_PREVIOUS)
            .and_then(|s| strong_secret(&contract::JWT_SECRET_PREVIOUS, s, &mut errors));
        match (&jwt_secret, &jwt_secret_previous) {
            (Some(current), Some(previous)) if current == previous => {
                errors.push(ConfigError::Inconsistent(
                    "JWT_SECRET_PREVIOUS equals JWT_SECRET; during a rotation JWT_SECRET holds \
                     the new secret and JWT_SECRET_PREVIOUS the old one (unset it when not \
                     rotating)"
                        .to_owned(),
                ));
            }
            (None, Some(_)) if get(&contract::JWT_SECRET).is_none() => {
                errors.push(ConfigError::Inconsistent(
                    "JWT_SECRET_PREVIOUS is set but JWT_SECRET is not; tokens are signed and \
                     verified with JWT_SECRET, the previous secret is only accepted beside it"
                        .to_owned(),
                ));
            }
            _ => {}
        }
        let jwt_issuer = parse_opt(
            &contract::JWT_ISSUER,
            get(&contract::JWT_ISSUER),
            &mut errors,
            |v| {
                if v.is_empty() || v.chars().any(char::is_control) {
                    Err("an issuer such as https://idp.example.com/".into())
                } else {
                    Ok(v.to_owned())
                }
            },
        );
        let jwt_audiences = parse_opt(
            &contract::JWT_AUDIENCE,
            get(&contract::JWT_AUDIENCE),
            &mut errors,
            |v| {
                let list: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect();
                if list.is_empty() || list.iter().any(|a| a.chars().any(char::is_control)) {
                    Err("comma-separated audiences such as `analytics-api`".into())
                } else {
                    Ok(list)
                }
            },
        )
        .unwrap_or_default();
        let jwt_max_lifetime_secs = parse_opt(
            &contract::JWT_MAX_LIFETIME_SECS,
            get(&contract::JWT_MAX_LIFETIME_SECS),
            &mut errors,
            |v| match v.parse::<u64>() {
                Ok(n) if (60..=MAX_JWT_LIFETIME_SECS).contains(&n) => Ok(n),
                _ => Err(format!(
                    "a whole number of seconds from 60 to {MAX_JWT_LIFETIME_SECS}"
                )),
            },
        )
        .unwrap_or(crate::auth::DEFAULT_MAX_LIFETIME_SECS);
        let retention_days = parse_opt(
            &contract::RETENTION_DAYS,
            get(&contract::RETENTION_DAYS),
            &mut errors,
            |v| match v.parse::<u64>() {
                Ok(n) if (1..=MAX_RETENTION_DAYS).contains(&n) => Ok(n),
                _ => Err(format!(
                    "a whole number of days from 1 to {MAX_RETENTION_DAYS}"
                )),
            },
        )
        .unwrap_or(DEFAULT_RETENTION_DAYS);
        let compact_sketches = parse(
            &contract::SKETCH_ENCODING,
            raw(&contract::SKETCH_ENCODING),
            &mut errors,
            |v| match v {
                "legacy" => Ok(false),
                "compact" => Ok(true),
                _ => Err("`legacy` or `compact`".into()),
            },
        );
        let mut serve_limits = ServeLimits::default();
        for limit in &LIMITS {
            if let Some(n) = parse_opt(limit.var, get(limit.var), &mut errors, |v| limit.parse(v)) {
                limit.set(&mut serve_limits, n);
            }
        }
        let cache_ttl = parse(
            &contract::CACHE_DEFAULT_TTL,
            raw(&contract::CACHE_DEFAULT_TTL),
            &mut errors,
            |v| match v.parse::<u64>() {
                Ok(n @ 1..=86_400) => Ok(Duration::from_secs(n)),
                _ => Err("whole seconds 1..=86400".into()),
            },
        );
        let log_filter = parse(
            &contract::RUST_LOG,
            raw(&contract::RUST_LOG),
            &mut errors,
            |v| {
                tracing_subscriber::EnvFilter::try_new(v)
                    .map(|_| v.to_owned())
                    .map_err(|e| {
                        format!("a tracing filter such as `info` or `analytics_api=debug` ({e})")
                    })
            },
        );
        let cors = match lookup(contract::CORS_ORIGINS.name)
            .or_else(|| contract::CORS_ORIGINS.default.map(str::to_owned))
        {
            Some(v) => parse(&contract::CORS_ORIGINS, Some(v), &mut errors, parse_cors),
            None => Some(CorsOrigins::None),
        };
        let count = |v: &str| match v.parse::<u32>() {
            Ok(n @ 0..=1000) => Ok(n),
            _ => Err("a whole number 0..=1000".to_owned()),
        };
        let pool_max = parse(
            &contract::DATABASE_POOL_SIZE,
            raw(&contract::DATABASE_POOL_SIZE),
            &mut errors,
            |v| match count(v)? {
                0 => Err("a whole number 1..=1000".to_owned()),
                n => Ok(n),
            },
        );
        let pool_min = parse(
            &contract::DATABASE_MIN_CONNECTIONS,
            raw(&contract::DATABASE_MIN_CONNECTIONS),
            &mut errors,
            count,
        );
        if let (Some(http), Some(metrics)) = (http_port, metrics_port)
            && http == metrics
            && http != 0
        {
            errors.push(ConfigError::Inconsistent(format!(
                "API_PORT and API_METRICS_PORT are both {http}; the API and the metrics need \
                 a port each"
            )));
        }
        if let (Some(max), Some(min)) = (pool_max, pool_min)
            && min > max
        {
            errors.push(ConfigError::Inconsistent(format!(
                "DATABASE_MIN_CONNECTIONS ({min}) exceeds DATABASE_POOL_SIZE ({max}); \
                 lower the minimum or raise the pool size"
            )));
        }

        match (
            host,
            http_port,
            metrics_port,
            cache_ttl,
            log_filter,
            cors,
            pool_max,
            pool_min,
        ) {
            (
                Some(host),
                Some(http_port),
                Some(metrics_port),
                Some(cache_ttl),
                Some(log_filter),
                Some(cors),
                Some(pool_max),
                Some(pool_min),
            ) if errors.is_empty() => Ok(Config {
                host,
                http_port,
                metrics_port,
                database_url,
                redis_url,
                jwt_secret,
                jwt_secret_previous,
                jwt_issuer,
                jwt_audiences,
                jwt_max_lifetime_secs,
                retention: Duration::from_secs(retention_days * 86_400),
                // A parse error is in `errors`, so this arm only sees a parsed value.
                compact_sketches: compact_sketches.unwrap_or(false),
                cache_ttl,
                log_filter,
                cors,
                pool_max,
                pool_min,
                serve_limits,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }
}

/// `value` of the secret variable `var` when it is strong enough to sign with; otherwise
/// records why, without showing it.
fn strong_secret(var: &EnvVar, value: String, errors: &mut Vec<ConfigError>) -> Option<String> {
    match secret_problem(&value) {
        Some(expected) => {
            errors.push(ConfigError::Invalid {
                var: var.name,
                expected: expected.to_owned(),
                found: format!("<redacted, {} characters>", value.chars().count()),
            });
            None
        }
        None => Some(value),
    }
}

/// Why `secret` is too weak to sign with, if it is.
fn secret_problem(secret: &str) -> Option<&'static str> {
    let distinct: std::collections::HashSet<char> = secret.chars().collect();
    if secret.chars().count() < MIN_JWT_SECRET_CHARS {
        Some("at least 32 characters")
    } else if secret.trim() != secret {
        Some("a secret without leading or trailing whitespace (a copy-paste slip?)")
    } else if distinct.len() < MIN_JWT_SECRET_DISTINCT {
        Some("at least 8 distinct characters (e.g. `openssl rand -hex 32`)")
    } else {
        None
    }
}

fn shown(var: &EnvVar, value: &str) -> String {
    if var.secret {
        "<redacted>".to_owned()
    } else {
        format!("{value:?}")
    }
}

fn parse<T>(
    var: &EnvVar,
    value: Option<String>,
    errors: &mut Vec<ConfigError>,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let value = value.unwrap_or_default();
    match f(value.trim()) {
        Ok(v) => Some(v),
        Err(expected) => {
            errors.push(ConfigError::Invalid {
                var: var.name,
                expected,
                found: shown(var, &value),
            });
            None
        }
    }
}

fn parse_opt<T>(
    var: &EnvVar,
    value: Option<String>,
    errors: &mut Vec<ConfigError>,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    value.and_then(|v| parse(var, Some(v), errors, f))
}

fn parse_cors(v: &str) -> Result<CorsOrigins, String> {
    match v {
        "" => Ok(CorsOrigins::None),
        "*" => Ok(CorsOrigins::Any),
        list => {
            let expected = "empty, `*`, or comma-separated origins such as \
                            `https://app.example.com,http://localhost:3000`";
            let mut origins = Vec::new();
            for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let rest = o
                    .strip_prefix("https://")
                    .or_else(|| o.strip_prefix("http://"))
                    .ok_or_else(|| expected.to_owned())?;
                if rest.is_empty() || rest.contains('/') || !o.is_ascii() || o.contains(' ') {
                    return Err(expected.to_owned());
                }
                origins.push(o.to_owned());
            }
            if origins.is_empty() {
                Ok(CorsOrigins::None)
            } else {
                Ok(CorsOrigins::List(origins))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(dev: bool, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(dev, |k| map.get(k).cloned())
    }

    #[test]
    fn sketches_stay_legacy_until_compact_is_asked_for() {
        // Legacy by default: a replica of the previous version must read what this one writes.
        assert!(!load(true, &[]).expect("defaults").compact_sketches);
        assert!(
            load(true, &[("SKETCH_ENCODING", "compact")])
                .expect("compact")
                .compact_sketches
        );
        let errors = load(true, &[("SKETCH_ENCODING", "dense")]).expect_err("refused");
        assert!(format!("{errors}").contains("SKETCH_ENCODING"), "{errors}");
    }

    /// Issue 24: the connection limits are configuration, with the previous code defaults
    /// when unset; a bad value is refused naming the variable, the value and the range.
    #[test]
    fn connection_limits_come_from_their_variables() {
        let c = load(true, &[]).expect("dev mode needs nothing");
        assert_eq!(c.serve_limits, ServeLimits::default());
        let c = load(
            true,
            &[
                ("HTTP_MAX_HEADER_BYTES", "4096"),
                ("HTTP_MAX_UNFINISHED_HEADS", "16"),
                ("HTTP_SHED_AFTER_MS", "2500"),
                ("HTTP_MAX_CONNECTIONS", "100"),
                ("METRICS_MAX_CONNECTIONS", "8"),
                ("HTTP_HEADER_READ_TIMEOUT_SECS", "30"),
            ],
        )
        .expect("valid limits");
        assert_eq!(
            c.serve_limits,
            ServeLimits {
                max_header_bytes: 4096,
                max_unfinished_heads: 16,
                shed_after: Duration::from_millis(2500),
                max_connections: 100,
                max_metrics_connections: 8,
                header_read_timeout: Duration::from_secs(30),
                ..ServeLimits::default()
            }
        );
        let errors = load(
            true,
            &[
                ("HTTP_MAX_CONNECTIONS", "0"),
                ("HTTP_HEADER_READ_TIMEOUT_SECS", "1h"),
            ],
        )
        .expect_err("refused");
        assert_eq!(
            errors.0,
            vec![
                ConfigError::Invalid {
                    var: "HTTP_MAX_CONNECTIONS",
                    expected: "a whole number of connections from 1 to 65536".into(),
                    found: "\"0\"".into(),
                },
                ConfigError::Invalid {
                    var: "HTTP_HEADER_READ_TIMEOUT_SECS",
                    expected: "a whole number of seconds from 1 to 300".into(),
                    found: "\"1h\"".into(),
                },
            ]
        );
    }

    #[test]
    fn defaults_come_from_the_contract() {
        let c = load(true, &[]).expect("dev mode needs nothing");
        assert_eq!(c.http_port, contract::HTTP_PORT);
        assert_eq!(c.metrics_port, contract::METRICS_PORT);
        assert_eq!(
            c.host.to_string(),
            contract::APP_HOST.default.unwrap_or_default()
        );
        assert_eq!(
            c.cache_ttl.as_secs().to_string(),
            contract::CACHE_DEFAULT_TTL.default.unwrap_or_default()
        );
        assert_eq!(
            c.pool_max.to_string(),
            contract::DATABASE_POOL_SIZE.default.unwrap_or_default()
        );
        assert_eq!(
            c.pool_min.to_string(),
            contract::DATABASE_MIN_CONNECTIONS
                .default
                .unwrap_or_default()
        );
        assert_eq!(c.cors, CorsOrigins::None);
        assert!(c.database_url.is_none() && c.redis_url.is_none() && c.jwt_secret.is_none());
    }

    #[test]
    fn missing_jwt_secret_is_refused_outside_dev_mode_and_names_the_flag() {
        let err = load(false, &[]).unwrap_err();
        assert_eq!(err.0, vec![ConfigError::MissingJwtSecret]);
        assert!(err.to_string().contains("--dev"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once_and_secrets_are_redacted() {
        let err = load(
            false,
            &[
                ("API_PORT", "http"),
                ("API_METRICS_PORT", "70000"),
                ("APP_HOST", "localhost"),
                ("DATABASE_URL", "mysql://u:hunter2@db/x"),
                ("REDIS_URL", "memcached://cache:11211"),
                ("JWT_SECRET", "short"),
                ("CACHE_DEFAULT_TTL", "0"),
                ("RUST_LOG", "=[bad"),
                ("CORS_ORIGINS", "app.example.com"),
                ("DATABASE_POOL_SIZE", "0"),
                ("DATABASE_MIN_CONNECTIONS", "-1"),
            ],
        )
        .unwrap_err();
        let vars: Vec<_> = err
            .0
            .iter()
            .map(|e| match e {
                ConfigError::Invalid { var, .. } => *var,
                other => panic!("unexpected {other}"),
            })
            .collect();
        assert_eq!(
            vars,
            [
                "APP_HOST",
                "API_PORT",
                "API_METRICS_PORT",
                "DATABASE_URL",
                "REDIS_URL",
                "JWT_SECRET",
                "CACHE_DEFAULT_TTL",
                "RUST_LOG",
                "CORS_ORIGINS",
                "DATABASE_POOL_SIZE",
                "DATABASE_MIN_CONNECTIONS"
            ]
        );
        let text = err.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("short"),
            "{text}"
        );
        assert!(text.contains("API_PORT: expected a port number"), "{text}");
    }

    #[test]
    fn redis_url_accepts_plain_and_tls_schemes_only() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "rediss://:an-auth-token@master.cache.abc123.euw1.cache.amazonaws.com:6379/0",
        ] {
            let c = load(true, &[("REDIS_URL", url)]).expect(url);
            assert_eq!(c.redis_url.as_deref(), Some(url));
        }
        for url in [
            "memcached://cache:11211",
            "http://cache:6379",
            "cache:6379",
            "rediss://:an-auth-token@cache:6379/0#insecure",
            "rediss://:an-auth#token@cache:6379/0",
        ] {
            let err = load(true, &[("REDIS_URL", url)]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("REDIS_URL: expected a redis:// URL, or rediss:// for TLS"),
                "{text}"
            );
            assert!(
                !text.contains("an-auth-token"),
                "the URL is a secret: {text}"
            );
        }
    }

    #[test]
    fn pool_minimum_above_maximum_is_inconsistent() {
        let err = load(
            true,
            &[
                ("DATABASE_POOL_SIZE", "2"),
                ("DATABASE_MIN_CONNECTIONS", "5"),
            ],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("exceeds DATABASE_POOL_SIZE"),
            "{err}"
        );
    }

    #[test]
    fn cors_origins_parse() {
        assert_eq!(parse_cors("*"), Ok(CorsOrigins::Any));
        assert_eq!(
            parse_cors("https://a.example.com, http://localhost:3000"),
            Ok(CorsOrigins::List(vec![
                "https://a.example.com".into(),
                "http://localhost:3000".into()
            ]))
        );
        assert!(parse_cors("https://a.example.com/path").is_err());
    }

    #[test]
    fn low_variety_secrets_are_refused_without_being_shown() {
        for weak in [
            "a".repeat(40),
            " ".repeat(40),
            "abababababababababababababababab".to_owned(),
            format!(" {}", "0123456789abcdef".repeat(2)),
            format!("{}\n", "0123456789abcdef".repeat(2)),
        ] {
            let err = load(false, &[("JWT_SECRET", &weak)]).unwrap_err();
            assert!(
                matches!(
                    &err.0[..],
                    [ConfigError::Invalid {
                        var: "JWT_SECRET",
                        ..
                    }]
                ),
                "{weak:?}: {err}"
            );
            assert!(
                !err.to_string().contains(weak.trim()) || weak.trim().is_empty(),
                "{err}"
            );
        }
        let c = load(false, &[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap();
        assert_eq!(
            c.jwt_secret.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    /// Rotation: the previous secret is optional (empty counts as unset), held to the same
    /// strength rules as JWT_SECRET, and refused when it equals JWT_SECRET or stands alone.
    #[test]
    fn the_previous_jwt_secret_is_optional_strong_and_different() {
        const CURRENT: &str = "0123456789abcdef0123456789abcdef";
        const PREVIOUS: &str = "fedcba9876543210fedcba9876543210";
        let c = load(false, &[("JWT_SECRET", CURRENT)]).unwrap();
        assert_eq!(c.jwt_secret_previous, None);
        let c = load(
            false,
            &[("JWT_SECRET", CURRENT), ("JWT_SECRET_PREVIOUS", "")],
        )
        .unwrap();
        assert_eq!(c.jwt_secret_previous, None, "empty is unset");
        let c = load(
            false,
            &[("JWT_SECRET", CURRENT), ("JWT_SECRET_PREVIOUS", PREVIOUS)],
        )
        .unwrap();
        assert_eq!(c.jwt_secret_previous.as_deref(), Some(PREVIOUS));
        assert!(!format!("{c:?}").contains(PREVIOUS));

        let err = load(
            false,
            &[
                ("JWT_SECRET", CURRENT),
                ("JWT_SECRET_PREVIOUS", "short-old-key"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.0,
            vec![ConfigError::Invalid {
                var: "JWT_SECRET_PREVIOUS",
                expected: "at least 32 characters".into(),
                found: "<redacted, 13 characters>".into(),
            }]
        );
        let err = load(
            false,
            &[("JWT_SECRET", CURRENT), ("JWT_SECRET_PREVIOUS", CURRENT)],
        )
        .unwrap_err();
        assert!(
            matches!(&err.0[..], [ConfigError::Inconsistent(m)] if m.contains("equals JWT_SECRET")),
            "{err}"
        );
        assert!(!err.to_string().contains(CURRENT), "{err}");
        let err = load(true, &[("JWT_SECRET_PREVIOUS", PREVIOUS)]).unwrap_err();
        assert!(
            matches!(&err.0[..], [ConfigError::Inconsistent(m)] if m.contains("JWT_SECRET is not")),
            "{err}"
        );
    }

    #[test]
    fn issuer_and_audiences_are_optional() {
        let c = load(true, &[]).unwrap();
        assert_eq!((c.jwt_issuer, c.jwt_audiences.len()), (None, 0));
        let c = load(
            true,
            &[
                ("JWT_ISSUER", "https://idp.example.com/"),
                ("JWT_AUDIENCE", "api, web"),
            ],
        )
        .unwrap();
        assert_eq!(c.jwt_issuer.as_deref(), Some("https://idp.example.com/"));
        assert_eq!(c.jwt_audiences, ["api", "web"]);
        assert!(load(true, &[("JWT_AUDIENCE", " , ")]).is_err());
    }

    #[test]
    fn the_api_and_metrics_ports_must_differ() {
        let err = load(true, &[("API_PORT", "9000"), ("API_METRICS_PORT", "9000")]).unwrap_err();
        assert!(
            matches!(&err.0[..], [ConfigError::Inconsistent(m)] if m.contains("9000")),
            "{err}"
        );
        // 0 picks a free port for each, so both may be 0.
        assert!(load(true, &[("API_PORT", "0"), ("API_METRICS_PORT", "0")]).is_ok());
    }
}
