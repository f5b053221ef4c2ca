//! Command-line flags. Configuration proper comes from the environment ([`crate::config`]);
//! flags only select development mode and memory bounds (the in-memory store's, and the
//! request bodies'), and override the connection limits ([`crate::limits`]). `--help` lists every
//! variable from the contract, so the help text cannot drift from what is read.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use keel_workload_contract as contract;

use crate::limits::{LIMITS, Limit};

/// Default capacity of the in-memory store, in events.
pub const DEFAULT_MEMORY_MAX_EVENTS: usize = 2_000_000;
/// Smallest `--memory-max-bytes`: room for a batch of the largest events, about.
pub const MIN_MEMORY_MAX_BYTES: usize = 1 << 20;
/// Default retention of the in-memory store.
pub const DEFAULT_MEMORY_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Flags for a server run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// `--dev`: allow running without `JWT_SECRET` (no authentication on `/v1/*`).
    pub dev: bool,
    /// `--memory-max-events`: capacity of the in-memory store.
    pub memory_max_events: usize,
    /// `--memory-max-bytes`: capacity of the in-memory store in bytes (events, attributes'
    /// JSON text, ids).
    pub memory_max_bytes: usize,
    /// `--memory-retention-secs`: events older than this (by arrival) are dropped.
    pub memory_retention: Duration,
    /// `--body-budget-bytes`: bytes request bodies may take at once across connections.
    pub body_budget_bytes: usize,
    /// `--dump-on-exit`: after draining, write the in-memory store here as JSON lines.
    pub dump_on_exit: Option<PathBuf>,
    /// Connection limits given as flags (`--max-header-bytes` and the like), each over its
    /// variable; the last of a repeated flag wins.
    pub limits: Vec<(&'static Limit, u64)>,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            dev: false,
            memory_max_events: DEFAULT_MEMORY_MAX_EVENTS,
            memory_max_bytes: crate::store::memory::DEFAULT_MAX_BYTES,
            memory_retention: DEFAULT_MEMORY_RETENTION,
            body_budget_bytes: crate::api::DEFAULT_BODY_BUDGET_BYTES,
            dump_on_exit: None,
            limits: Vec::new(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve.
    Run(Flags),
    /// Print a signed token for `subject`, valid for one hour, and exit.
    MintToken {
        /// The token's `sub` claim.
        subject: String,
    },
    /// Print help and exit.
    Help,
    /// Print the version and exit.
    Version,
}

/// A command-line mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// An unknown flag or stray argument.
    #[error("unexpected argument `{0}`; see --help")]
    Unexpected(String),
    /// A flag without its value.
    #[error("{0} needs a value; see --help")]
    MissingValue(&'static str),
    /// A flag with a value that is not accepted.
    #[error("{flag}: expected {expected}, found {found:?}")]
    InvalidValue {
        /// The flag.
        flag: &'static str,
        /// What is accepted.
        expected: String,
        /// What was found.
        found: String,
    },
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, CliError> {
    let mut flags = Flags::default();
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |flag: &'static str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(CliError::MissingValue(flag))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--dev" => flags.dev = true,
            "--memory-max-events" => {
                let v = value("--memory-max-events")?;
                flags.memory_max_events = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        return Err(CliError::InvalidValue {
                            flag: "--memory-max-events",
                            expected: "a positive whole number".into(),
                            found: v,
                        });
                    }
                };
            }
            "--memory-max-bytes" => {
                let v = value("--memory-max-bytes")?;
                flags.memory_max_bytes = match v.parse::<usize>() {
                    Ok(n) if n >= MIN_MEMORY_MAX_BYTES => n,
                    _ => {
                        return Err(CliError::InvalidValue {
                            flag: "--memory-max-bytes",
                            expected: "a whole number of bytes, at least 1048576".into(),
                            found: v,
                        });
                    }
                };
            }
            "--memory-retention-secs" => {
                let v = value("--memory-retention-secs")?;
                flags.memory_retention = match v.parse::<u64>() {
                    Ok(n) if n > 0 => Duration::from_secs(n),
                    _ => {
                        return Err(CliError::InvalidValue {
                            flag: "--memory-retention-secs",
                            expected: "a positive whole number of seconds".into(),
                            found: v,
                        });
                    }
                };
            }
            "--body-budget-bytes" => {
                let v = value("--body-budget-bytes")?;
                flags.body_budget_bytes = match v.parse::<usize>() {
                    Ok(n) if n >= crate::api::MIN_BODY_BUDGET_BYTES => n,
                    _ => {
                        return Err(CliError::InvalidValue {
                            flag: "--body-budget-bytes",
                            expected: "a whole number of bytes, at least 2097152".into(),
                            found: v,
                        });
                    }
                };
            }
            "--dump-on-exit" => flags.dump_on_exit = Some(PathBuf::from(value("--dump-on-exit")?)),
            "--mint-token" => {
                return Ok(Command::MintToken {
                    subject: value("--mint-token")?,
                });
            }
            other => {
                let Some(limit) = Limit::of_flag(other) else {
                    return Err(CliError::Unexpected(arg));
                };
                let v = value(limit.flag)?;
                let n = limit.parse(&v).map_err(|expected| CliError::InvalidValue {
                    flag: limit.flag,
                    expected,
                    found: v,
                })?;
                flags.limits.retain(|(l, _)| *l != limit);
                flags.limits.push((limit, n));
            }
        }
    }
    Ok(Command::Run(flags))
}

/// The `--help` text, with the environment variables taken from the contract.
pub fn help() -> String {
    let mut s = format!(
        "analytics-api {version}: ingests trace events (POST /v1/traces) and serves aggregates (GET /v1/stats).

USAGE:
    analytics-api [FLAGS]

FLAGS:
    --dev                        Development mode: start without JWT_SECRET, serving /v1/* WITHOUT
                                 authentication (the service refuses to start otherwise)
    --memory-max-events <N>      Capacity of the in-memory store; a full store answers 503
                                 to ingest and fails readiness [default: {max}]
    --memory-max-bytes <BYTES>   Capacity of the in-memory store in bytes (events, their
                                 attributes' JSON text, their ids) [default: {bytes}, {pct}%
                                 of the container's {limit} memory limit]
    --memory-retention-secs <S>  In-memory retention window by arrival time [default: {ret}]
    --body-budget-bytes <BYTES>  Bytes request bodies may hold at once across connections
                                 (declared length, plus 1 MiB more for gzip); an ingest
                                 request beyond it is answered 503 at once [default:
                                 {budget}, {budget_pct}% of the container's memory limit]
    --dump-on-exit <PATH>        After draining on SIGTERM/SIGINT, write every event held by the
                                 in-memory store to PATH as JSON lines (mode 0600); PATH is
                                 checked at start, and refused with DATABASE_URL
    --mint-token <SUBJECT>       Print an HS256 token for SUBJECT signed with JWT_SECRET (never
                                 JWT_SECRET_PREVIOUS), valid for one hour (with JWT_ISSUER /
                                 JWT_AUDIENCE's first value as iss / aud when set), and exit
                                 (for local testing)
{limit_flags}    -h, --help                   Print this help
    -V, --version                Print the version

ENDPOINTS:
    POST /v1/traces, GET /v1/stats  (Authorization: Bearer <JWT, HS256>)
    GET {live} (liveness), GET {ready} (readiness)  on API_PORT
    GET {metrics} (Prometheus text)               on API_METRICS_PORT

ENVIRONMENT:
",
        version = env!("CARGO_PKG_VERSION"),
        max = DEFAULT_MEMORY_MAX_EVENTS,
        bytes = crate::store::memory::DEFAULT_MAX_BYTES,
        pct = contract::MEMORY_STORE_PERCENT,
        limit = contract::DEFAULT_RESOURCES.memory_limit,
        ret = DEFAULT_MEMORY_RETENTION.as_secs(),
        budget = crate::api::DEFAULT_BODY_BUDGET_BYTES,
        budget_pct = contract::BODY_BUDGET_PERCENT,
        live = contract::LIVENESS_PATH,
        ready = contract::READINESS_PATH,
        metrics = contract::METRICS_PATH,
        limit_flags = LIMITS.iter().fold(String::new(), |mut s, l| {
            let _ = writeln!(
                s,
                "    {:<28} Sets {} (see ENVIRONMENT), over the variable",
                format!("{} <N>", l.flag),
                l.var.name
            );
            s
        }),
    );
    for var in contract::ENV_VARS {
        let mut notes = Vec::new();
        if let Some(d) = var.default.filter(|d| !d.is_empty()) {
            notes.push(format!("default: {d}"));
        }
        if var.required {
            notes.push("required unless --dev".to_owned());
        }
        if var.secret {
            notes.push("secret".to_owned());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        };
        let _ = writeln!(s, "    {:<26} {}{}", var.name, var.description, notes);
    }
    let _ = write!(
        s,
        "
REDIS_URL is redis://[:PASSWORD@]HOST[:PORT][/DB], or rediss://... for TLS (e.g. ElastiCache
with in-transit encryption: rediss://:AUTH_TOKEN@PRIMARY_ENDPOINT:6379/0). TLS certificates are
verified against the public (Mozilla/webpki) roots built into the binary; there is no insecure
mode. Redis must answer at start; afterwards a failure only bypasses the cache ({ready}
reports it but stays ready: readiness is the store and not draining).

On SIGTERM or SIGINT the service stops accepting connections, finishes in-flight requests
within {deadline} s (a second signal stops waiting at once), flushes the in-memory dump if
asked, closes the database pool and exits 0.
",
        deadline = contract::SHUTDOWN_DEADLINE_SECS,
        ready = contract::READINESS_PATH,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, CliError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn flags_parse() {
        assert_eq!(p(&[]), Ok(Command::Run(Flags::default())));
        assert_eq!(
            p(&[
                "--dev",
                "--memory-max-events=10",
                "--memory-max-bytes=2000000",
                "--memory-retention-secs",
                "60",
                "--body-budget-bytes=3000000",
                "--dump-on-exit",
                "/tmp/x"
            ]),
            Ok(Command::Run(Flags {
                dev: true,
                memory_max_events: 10,
                memory_max_bytes: 2_000_000,
                memory_retention: Duration::from_secs(60),
                body_budget_bytes: 3_000_000,
                dump_on_exit: Some("/tmp/x".into()),
                limits: Vec::new(),
            }))
        );
        assert_eq!(p(&["--help"]), Ok(Command::Help));
        let header = Limit::of_flag("--max-header-bytes").expect("a limit");
        let shed = Limit::of_flag("--shed-after-ms").expect("a limit");
        assert_eq!(
            p(&[
                "--max-header-bytes=4096",
                "--shed-after-ms",
                "250",
                "--max-header-bytes",
                "8192"
            ]),
            Ok(Command::Run(Flags {
                limits: vec![(shed, 250), (header, 8192)],
                ..Flags::default()
            }))
        );
        assert_eq!(
            p(&["--shed-after-ms", "50"]),
            Err(CliError::InvalidValue {
                flag: "--shed-after-ms",
                expected: "a whole number of milliseconds from 100 to 60000".into(),
                found: "50".into(),
            })
        );
        assert_eq!(p(&["--bogus"]), Err(CliError::Unexpected("--bogus".into())));
        assert_eq!(
            p(&["--dump-on-exit"]),
            Err(CliError::MissingValue("--dump-on-exit"))
        );
        for bad in [
            ["--memory-max-events", "0"],
            ["--memory-max-bytes", "1000"],
            ["--body-budget-bytes", "1048576"],
        ] {
            assert!(matches!(p(&bad), Err(CliError::InvalidValue { .. })));
        }
    }

    #[test]
    fn help_lists_every_contract_variable() {
        let h = help();
        for var in contract::ENV_VARS {
            assert!(h.contains(var.name), "help lacks {}", var.name);
        }
        assert!(h.contains("--dev"));
        for limit in &LIMITS {
            assert!(h.contains(limit.flag), "help lacks {}", limit.flag);
        }
        assert!(h.contains("rediss://") && h.contains("no insecure"));
    }
}
