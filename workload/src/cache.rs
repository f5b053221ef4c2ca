//! The optional Redis cache for `GET /v1/stats`: answers are kept for `CACHE_DEFAULT_TTL`
//! seconds, so with Redis configured stats may be that much behind ingestion. A cache failure
//! never fails a request: the store answers instead, and readiness reports Redis unhealthy.
//!
//! `redis://` is plain TCP; `rediss://` is TLS through rustls (ring), verifying the server
//! certificate and host name against the Mozilla roots compiled in from `webpki-roots` (which
//! include the Amazon roots ElastiCache's certificates chain to). There is no insecure mode:
//! a `#insecure` fragment is refused by the configuration and by this build of the client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one Redis command may take before the cache is bypassed.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// After a failed `GET` or `SET`, the cache is skipped for this long (stats come from the
/// store without waiting for Redis), then tried again: a Redis outage costs one call its
/// timeout per period instead of every call.
pub const CIRCUIT_OPEN_FOR: Duration = Duration::from_secs(5);

/// The circuit breaker in front of Redis: open (skipping it) until an instant after a
/// failure, closed again by the first success after that.
#[derive(Debug)]
struct Circuit {
    open_until: Mutex<Option<Instant>>,
    open_for: Duration,
}

impl Circuit {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // The value is a plain instant, valid whatever a panicking holder was doing.
        self.open_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_open(&self) -> bool {
        self.lock().is_some_and(|t| Instant::now() < t)
    }

    fn record<T, E>(&self, result: &Result<T, E>) {
        *self.lock() = result.is_err().then(|| Instant::now() + self.open_for);
    }
}

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

impl CacheError {
    fn circuit_open(op: &'static str) -> Self {
        CacheError {
            op,
            source: redis::RedisError::from((
                redis::ErrorKind::Io,
                "skipped: Redis failed within the last few seconds (circuit open)",
            )),
        }
    }

    /// Whether Redis was not even asked, the circuit being open after a recent failure.
    pub fn is_circuit_open(&self) -> bool {
        self.source.kind() == redis::ErrorKind::Io
            && self.source.to_string().contains("circuit open")
    }
}

/// Makes ring the process's rustls provider (the one sqlx uses too), so `rediss://` does not
/// depend on which rustls backends other crates happen to enable. Idempotent.
fn install_crypto_provider() {
    // Err only means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Stats cache over a reconnecting Redis connection.
#[derive(Clone)]
pub struct StatsCache {
    conn: ConnectionManager,
    ttl: Duration,
    prefix: String,
    circuit: Arc<Circuit>,
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
    /// Connects to `url` (`redis://` or `rediss://`, password as the AUTH token); keys are
    /// `prefix` + the query's cache key.
    pub async fn connect(url: &str, ttl: Duration, prefix: &str) -> Result<Self, CacheError> {
        install_crypto_provider();
        let client =
            redis::Client::open(url).map_err(|source| CacheError { op: "open", source })?;
        Self::with_client(client, ttl, prefix).await
    }

    async fn with_client(
        client: redis::Client,
        ttl: Duration,
        prefix: &str,
    ) -> Result<Self, CacheError> {
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
            circuit: Arc::new(Circuit {
                open_until: Mutex::new(None),
                open_for: CIRCUIT_OPEN_FOR,
            }),
        })
    }

    /// The same cache, skipping Redis for `open_for` after a failure instead of
    /// [`CIRCUIT_OPEN_FOR`].
    pub fn with_circuit_open_for(mut self, open_for: Duration) -> Self {
        self.circuit = Arc::new(Circuit {
            open_until: Mutex::new(None),
            open_for,
        });
        self
    }

    /// Runs `cmd` unless the circuit is open, and records its outcome.
    async fn run<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, CacheError> {
        if self.circuit.is_open() {
            return Err(CacheError::circuit_open(op));
        }
        let mut conn = self.conn.clone();
        let result = cmd.query_async(&mut conn).await;
        self.circuit.record(&result);
        result.map_err(|source| CacheError { op, source })
    }

    /// The cached value of `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        self.run(
            "GET",
            redis::cmd("GET").arg(format!("{}{key}", self.prefix)),
        )
        .await
    }

    /// Stores `value` under `key` for the TTL.
    pub async fn set(&self, key: &str, value: &str) -> Result<(), CacheError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}{key}", self.prefix))
            .arg(value)
            .arg("EX")
            .arg(self.ttl.as_secs().max(1));
        self.run("SET", &cmd).await
    }

    /// `PING`, whatever the circuit's state (readiness reports Redis's own); a success
    /// closes the circuit.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let result = redis::cmd("PING").query_async::<()>(&mut conn).await;
        if result.is_ok() {
            self.circuit.record(&result);
        }
        result.map_err(|source| CacheError { op: "PING", source })
    }
}

#[cfg(test)]
mod tests {
    //! `rediss://` against a local `redis-server --tls-port` whose certificate is signed by a
    //! throwaway CA (made with `openssl`). The production [`StatsCache::connect`] trusts only
    //! the public roots, so it must refuse that server; the test-only client below adds the
    //! throwaway CA as its root to check the TLS + AUTH path end to end. Skipped (printing
    //! `SKIPPED:`) when `redis-server` or `openssl` is missing, unless `CI=true`.

    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};

    const TOKEN: &str = "tls-test-auth-token";

    struct TlsRedis {
        child: Child,
        port: u16,
        dir: PathBuf,
        ca_pem: Vec<u8>,
    }

    impl Drop for TlsRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn skip_or_fail(why: String) -> Option<TlsRedis> {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{why} but CI=true"
        );
        eprintln!("SKIPPED: {why}");
        None
    }

    fn run(dir: &Path, args: &[&str]) -> Result<(), String> {
        let out = Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", args[0]))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    /// A CA, a server certificate for 127.0.0.1/localhost signed by it, and redis-server
    /// serving only TLS with `requirepass`.
    fn start_tls_redis() -> Option<TlsRedis> {
        let dir = std::env::temp_dir().join(format!(
            "keel-workload-tls-redis-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let files = [
            (
                "ca.cnf",
                "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n[dn]\n\
                 CN = keel-workload test CA\n[v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n",
            ),
            (
                "server.ext",
                "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n\
                 extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n",
            ),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write");
        }
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["openssl", "req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt"],
            ]
            .concat()
            .into_iter()
            .chain(["-days", "2", "-config", "ca.cnf"])
            .collect(),
            [&["openssl", "req"][..], &ec]
                .concat()
                .into_iter()
                .chain(["-keyout", "server.key", "-out", "server.csr"])
                .chain(["-subj", "/CN=localhost"])
                .collect(),
            vec![
                "openssl",
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        ];
        for step in &steps {
            if let Err(e) = run(&dir, step) {
                let _ = std::fs::remove_dir_all(&dir);
                return skip_or_fail(format!("cannot make test certificates ({e})"));
            }
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .args([
                "--tls-cert-file",
                "server.crt",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
            .args(["--requirepass", TOKEN, "--save", "", "--appendonly", "no"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return skip_or_fail(format!("cannot run redis-server ({e})"));
            }
        };
        let ca_pem = std::fs::read(dir.join("ca.crt")).expect("ca.crt");
        let mut server = TlsRedis {
            child,
            port,
            dir,
            ca_pem,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return skip_or_fail(format!(
                    "redis-server --tls-port exited ({status}); built without TLS?"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        skip_or_fail("redis-server --tls-port did not listen within 5 s".to_owned())
    }

    #[tokio::test]
    async fn rediss_verifies_the_certificate_and_authenticates() {
        let Some(server) = start_tls_redis() else {
            return;
        };
        let url = format!("rediss://:{TOKEN}@127.0.0.1:{}/0", server.port);

        // Production path: public roots only, so a certificate from an unknown CA is refused.
        let err = StatsCache::connect(&url, Duration::from_secs(60), "t:")
            .await
            .expect_err("a certificate outside the public roots must be refused");
        let text = format!("{err:?}");
        assert!(text.contains("UnknownIssuer"), "{text}");
        assert!(!text.contains(TOKEN), "the AUTH token leaked: {text}");

        // The same URL with the throwaway CA as root: TLS, AUTH and commands work.
        install_crypto_provider();
        let trusting = |url: &str| {
            redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(server.ca_pem.clone()),
                },
            )
            .expect("client")
        };
        let cache = StatsCache::with_client(trusting(&url), Duration::from_secs(60), "t:")
            .await
            .expect("TLS connection with the test CA");
        cache.ping().await.expect("PING");
        cache.set("k", "v").await.expect("SET");
        assert_eq!(cache.get("k").await.expect("GET").as_deref(), Some("v"));

        // TLS without the right AUTH token is refused by the server.
        let wrong = format!("rediss://:wrong-token@127.0.0.1:{}/0", server.port);
        assert!(
            StatsCache::with_client(trusting(&wrong), Duration::from_secs(60), "t:")
                .await
                .is_err()
        );
    }
}
