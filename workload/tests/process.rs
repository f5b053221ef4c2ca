//! The built binary as a process: it refuses to start without JWT_SECRET, `--help` lists
//! the contract's variables, and SIGTERM during a stream of ingest requests loses no event
//! that was acknowledged with a 2xx (in memory, through `--dump-on-exit`; and in PostgreSQL).
//! A JWT secret rotation (current and previous secret) is checked against the binary.
//! Issue 24's bugs 1 to 3 and its connection limits are checked here too, against
//! PostgreSQL and Redis.

use crate::common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use common::{SECRET, TestDb, require_env};
use keel_workload::contract;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_analytics-api");

/// The binary with a clean environment (none of the contract's variables inherited).
fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for var in contract::ENV_VARS {
        cmd.env_remove(var.name);
    }
    cmd
}

#[test]
fn refuses_to_start_without_jwt_secret_and_names_the_dev_flag() {
    let out = command().output().expect("run the binary");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("JWT_SECRET: not set") && stderr.contains("--dev"),
        "{stderr}"
    );
}

#[test]
fn invalid_variables_are_all_reported() {
    let out = command()
        .args(["--dev"])
        .env("API_PORT", "eighty")
        .env("DATABASE_POOL_SIZE", "0")
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("API_PORT: expected") && stderr.contains("DATABASE_POOL_SIZE: expected"),
        "{stderr}"
    );
}

#[test]
fn help_explains_flags_and_every_variable() {
    let out = command().arg("--help").output().expect("run the binary");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in contract::ENV_VARS {
        assert!(help.contains(var.name), "--help lacks {}", var.name);
    }
    assert!(help.contains("--dev") && help.contains("--dump-on-exit"));
}

/// A running binary whose stdout (JSON logs) is drained by a thread.
struct Server {
    child: Child,
    http_addr: String,
    metrics_addr: String,
}

impl Drop for Server {
    /// A failing test must not leave the binary running (it would hold the test's output).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(mut cmd: Command) -> Server {
    let mut child = cmd
        .env("JWT_SECRET", SECRET)
        .env("APP_HOST", "127.0.0.1")
        .env("API_PORT", "0")
        .env("API_METRICS_PORT", "0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (http_addr, metrics_addr) = loop {
        let line = rx.recv().expect("the binary exited before listening");
        let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if log["message"] == "listening" {
            let addr = |key: &str| log[key].as_str().expect(key).to_owned();
            break (addr("http_addr"), addr("metrics_addr"));
        }
    };
    // Keep draining so the binary never blocks on a full pipe.
    std::thread::spawn(move || for _ in rx {});
    Server {
        child,
        http_addr,
        metrics_addr,
    }
}

/// One `POST /v1/traces` over a fresh connection; `Some(status)` when a full response came.
async fn post(addr: &str, body: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        token = keel_workload::auth::mint_token(SECRET, "shutdown-test", 600),
        len = body.len(),
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.ok()?;
    let text = String::from_utf8_lossy(&resp);
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    // A 2xx counts as acknowledged only with its complete body.
    (status != 200 || text.ends_with('}')).then_some(status)
}

/// Streams batches from `workers` connections until the server stops answering; sends
/// SIGTERM once `signal_after` batches are acknowledged. Returns the acknowledged ids.
async fn stream_until_stopped(
    server: &Server,
    workers: usize,
    signal_after: usize,
) -> HashSet<String> {
    let acked = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let batches = Arc::new(AtomicUsize::new(0));
    let signalled = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicUsize::new(0));
    let pid = server.child.id();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (acked, batches, signalled, after, addr) = (
            acked.clone(),
            batches.clone(),
            signalled.clone(),
            after.clone(),
            server.http_addr.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Bounded so a server that never stops fails the test instead of hanging it.
            for seq in 0..20_000 {
                let ids: Vec<String> = (0..5).map(|k| format!("w{w}-s{seq}-e{k}")).collect();
                let events: Vec<_> = ids
                    .iter()
                    .map(|id| common::event(id, "m", "s", 3.0, "ok", 0))
                    .collect();
                let body = serde_json::json!({ "events": events }).to_string();
                match post(&addr, &body).await {
                    Some(200) => {
                        acked.lock().unwrap().extend(ids);
                        if signalled.load(Ordering::SeqCst) {
                            after.fetch_add(1, Ordering::SeqCst);
                        }
                        let n = batches.fetch_add(1, Ordering::SeqCst) + 1;
                        if n >= signal_after && !signalled.swap(true, Ordering::SeqCst) {
                            // The shell's built-in kill: no procps needed.
                            let ok = Command::new("sh")
                                .arg("-c")
                                .arg(format!("kill -TERM {pid}"))
                                .status()
                                .expect("sh");
                            assert!(ok.success());
                        }
                    }
                    Some(other) => panic!("unexpected status {other}"),
                    // Refused or cut: the server is stopping; this batch was not acknowledged.
                    None if signalled.load(Ordering::SeqCst) => return,
                    None => panic!("request failed before the shutdown signal"),
                }
            }
            panic!("the server kept accepting after SIGTERM");
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    eprintln!(
        "{} batches acknowledged after SIGTERM was sent",
        after.load(Ordering::SeqCst)
    );
    Arc::try_unwrap(acked)
        .expect("workers are done")
        .into_inner()
        .unwrap()
}

fn wait_success(mut server: Server) {
    let status = server.child.wait().expect("wait for the binary");
    assert!(status.success(), "the binary exited with {status}");
}

fn dumped_ids(path: &Path) -> HashSet<String> {
    let text = std::fs::read_to_string(path).expect("the dump exists");
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("JSON line")["trace_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_no_acknowledged_event_in_memory() {
    let dir = std::env::temp_dir().join(format!("wl-shutdown-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("events.jsonl");
    let mut cmd = command();
    cmd.arg("--dump-on-exit").arg(&dump);
    let server = start(cmd);
    let acked = stream_until_stopped(&server, 8, 100).await;
    wait_success(server);
    let stored = dumped_ids(&dump);
    assert_none_lost("memory", &acked, &stored);
    let _ = std::fs::remove_dir_all(dir);
}

/// Every acknowledged event is stored, and enough were acknowledged for that to mean something.
fn assert_none_lost(label: &str, acked: &HashSet<String>, stored: &HashSet<String>) {
    let lost: Vec<_> = acked.difference(stored).collect();
    assert!(
        acked.len() >= 500,
        "only {} events acknowledged",
        acked.len()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    eprintln!(
        "{label}: {} acknowledged, {} stored",
        acked.len(),
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_no_acknowledged_event_in_postgres() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let mut cmd = command();
    cmd.env("DATABASE_URL", &db.url)
        .env("DATABASE_POOL_SIZE", "8")
        .env("DATABASE_MIN_CONNECTIONS", "1");
    let server = start(cmd);
    let acked = stream_until_stopped(&server, 8, 100).await;
    wait_success(server);
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let stored: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT trace_id FROM traces")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    pool.close().await;
    assert_none_lost("postgres", &acked, &stored);
    db.drop_db().await;
}

#[test]
fn the_image_exposes_the_contract_ports_and_runs_as_non_root() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("Dockerfile");
    let last_stage = dockerfile.rsplit("\nFROM ").next().expect("a FROM");
    let expose: Vec<u16> = last_stage
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|l| {
            l.split_whitespace()
                .map(|p| p.parse::<u16>().expect("numeric port"))
        })
        .collect();
    assert_eq!(expose, [contract::HTTP_PORT, contract::METRICS_PORT]);
    let user = last_stage
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER in the runtime stage");
    let ids: Vec<u32> = user
        .split(':')
        .map(|id| {
            id.parse()
                .expect("numeric ids (Kubernetes runAsNonRoot needs them)")
        })
        .collect();
    assert_eq!(ids, [contract::RUN_AS_USER, contract::RUN_AS_GROUP]);
    assert_ne!(contract::RUN_AS_USER, 0);
    // The RDS CA bundle sits where the stacks' sslrootcert points, read-only.
    let add = last_stage
        .lines()
        .find(|l| {
            l.starts_with("ADD ") && l.ends_with(&format!(" {}", contract::DATABASE_CA_BUNDLE_PATH))
        })
        .unwrap_or_else(|| {
            panic!(
                "no ADD of the RDS CA bundle to {}",
                contract::DATABASE_CA_BUNDLE_PATH
            )
        });
    assert!(add.contains("--chmod=0444"), "{add}");
    assert!(
        add.contains(" https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem "),
        "{add}"
    );
}

/// Waits up to `within` for the child to exit; kills it and returns `None` otherwise.
fn wait_within(child: &mut Child, within: std::time::Duration) -> Option<std::process::ExitStatus> {
    let end = std::time::Instant::now() + within;
    while std::time::Instant::now() < end {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn an_unwritable_dump_path_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("wl-missing-{}", uuid::Uuid::new_v4().simple()));
    let path = dir.join("events.jsonl");
    let mut child = command()
        .args(["--dev", "--dump-on-exit"])
        .arg(&path)
        .env("APP_HOST", "127.0.0.1")
        .env("API_PORT", "0")
        .env("API_METRICS_PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_within(&mut child, std::time::Duration::from_secs(20))
        .expect("the binary started serving instead of refusing the dump path");
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");

    let out = command()
        .args(["--dump-on-exit", "/tmp/x.jsonl"])
        .env("JWT_SECRET", SECRET)
        .env("DATABASE_URL", "postgres://u@127.0.0.1:1/db")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--dump-on-exit applies only to the in-memory store"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let mut server = start(command());
    // A request whose body never completes: the drain would wait for it.
    let mut s = TcpStream::connect(&server.http_addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        keel_workload::auth::mint_token(SECRET, "t", 600)
    );
    s.write_all(head.as_bytes()).await.expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let kill = |pid: u32| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {pid}"))
            .status()
            .expect("sh");
        assert!(ok.success());
    };
    let pid = server.child.id();
    kill(pid);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "the first SIGTERM waits for the in-flight request"
    );
    kill(pid);
    // Well under the body timeout (10 s) and the drain deadline (20 s).
    let status = wait_within(&mut server.child, std::time::Duration::from_secs(5))
        .expect("the second SIGTERM did not end the process");
    assert!(status.success(), "{status}");
}

/// One request's outcome in the restart test.
struct Outcome {
    phase: u8,
    status: Option<u16>,
    took: std::time::Duration,
    sent_at: std::time::Instant,
}

/// A GET over a fresh connection; the status when a full response came.
async fn get_status(addr: &str, path: &str) -> Option<u16> {
    get_status_with(addr, path, "").await
}

/// [`get_status`] with `headers` (each line ending in `\r\n`) added to the request.
async fn get_status_with(addr: &str, path: &str, headers: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.ok()?;
    String::from_utf8_lossy(&resp)
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()
}

/// Phases of the restart test, by when a request was sent.
const UP: u8 = 0;
/// `pg_ctl stop` running: a request may be acknowledged or refused.
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const RESTARTED: u8 = 3;
const DONE: u8 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_gets_503s_and_recovers_losing_no_acknowledged_event() {
    use std::sync::atomic::AtomicU8;
    use std::time::{Duration, Instant};

    if let Err(why) = common::private_pg::find_bindir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but PostgreSQL's server binaries are missing: {why}"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let pg = common::private_pg::PrivatePg::start_new().expect("a private PostgreSQL starts");
    let mut cmd = command();
    cmd.env("DATABASE_URL", pg.url())
        .env("DATABASE_POOL_SIZE", "8")
        .env("DATABASE_MIN_CONNECTIONS", "2");
    let server = start(cmd);

    let phase = Arc::new(AtomicU8::new(UP));
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::<Outcome>::new()));
    let acked = Arc::new(std::sync::Mutex::new(HashSet::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (phase, outcomes, acked, addr) = (
            phase.clone(),
            outcomes.clone(),
            acked.clone(),
            server.http_addr.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut seq = 0;
            loop {
                let p = phase.load(Ordering::SeqCst);
                if p == DONE {
                    return;
                }
                let ids: Vec<String> = (0..5).map(|k| format!("rs-w{w}-s{seq}-e{k}")).collect();
                seq += 1;
                let events: Vec<_> = ids
                    .iter()
                    .map(|id| common::event(id, "m", "s", 3.0, "ok", 0))
                    .collect();
                let body = serde_json::json!({ "events": events }).to_string();
                let sent_at = Instant::now();
                // A hung request shows up as None after 15 s instead of hanging the test.
                let status = tokio::time::timeout(Duration::from_secs(15), post(&addr, &body))
                    .await
                    .ok()
                    .flatten();
                if status == Some(200) {
                    acked.lock().unwrap().extend(ids);
                }
                outcomes.lock().unwrap().push(Outcome {
                    phase: p,
                    status,
                    took: sent_at.elapsed(),
                    sent_at,
                });
                if status != Some(200) {
                    // A client honouring Retry-After would wait longer; a short pause keeps
                    // the test quick while not spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    phase.store(STOPPING, Ordering::SeqCst);
    let stop_started = Instant::now();
    let (stopped, pg) = tokio::task::spawn_blocking(move || (pg.stop("immediate"), pg))
        .await
        .expect("pg_ctl stop");
    stopped.expect("PostgreSQL stops (immediate mode)");
    phase.store(DOWN, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get_status(&server.http_addr, "/ready").await,
        Some(503),
        "not ready while the database is down"
    );
    assert_eq!(get_status(&server.http_addr, "/health").await, Some(200));
    // Twice the pool's 3 s bound on getting a connection, which is what a request waits for
    // while the server refuses connections (sqlx retries until then): every worker sends
    // at least one request that is answered before the restart, however the stop lined up
    // with the workers' requests.
    tokio::time::sleep(Duration::from_millis(6500)).await;

    let restart_began = Instant::now();
    phase.store(RESTARTED, Ordering::SeqCst);
    let (started, pg) = tokio::task::spawn_blocking(move || (pg.start(), pg))
        .await
        .expect("pg_ctl start");
    started.expect("PostgreSQL starts again (crash recovery)");
    let restarted_at = Instant::now();
    let deadline = restarted_at + Duration::from_secs(20);
    let recovered_at = loop {
        let first_ok = outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.phase == RESTARTED && o.status == Some(200) && o.sent_at >= restarted_at)
            .map(|o| o.sent_at + o.took)
            .min();
        if let Some(t) = first_ok {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no request succeeded within 20 s of PostgreSQL's restart\n{}",
            pg.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(get_status(&server.http_addr, "/ready").await, Some(200));
    phase.store(DONE, Ordering::SeqCst);
    for w in workers {
        w.await.expect("worker");
    }

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let count = |p: u8, s: Option<u16>| {
        outcomes
            .iter()
            .filter(|o| o.phase == p && o.status == s)
            .count()
    };
    let odd: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o.status, Some(200 | 503)))
        .map(|o| (o.phase, o.status, o.took))
        .collect();
    assert!(
        odd.is_empty(),
        "every request is answered 200 or 503 within 15 s: {odd:?}"
    );
    assert!(count(UP, Some(200)) >= 20, "load before the stop");
    // A request sent while the database was up is refused only if the stop cut it.
    let cut = outcomes
        .iter()
        .filter(|o| o.phase == UP && o.status == Some(503))
        .filter(|o| o.sent_at + o.took < stop_started)
        .count();
    assert_eq!(cut, 0, "no 503 answered while the database was up");
    // A request sent while the server was down may wait for a connection (up to the pool's
    // bound) and succeed once it is back. Every answer given before the restart began must
    // be a 503: nothing is acknowledged without a database.
    let answered_while_down: Vec<Option<u16>> = outcomes
        .iter()
        .filter(|o| o.phase == DOWN && o.sent_at + o.took < restart_began)
        .map(|o| o.status)
        .collect();
    assert!(
        !answered_while_down.is_empty() && answered_while_down.iter().all(|s| *s == Some(503)),
        "answers while the database was down: {answered_while_down:?}"
    );
    let mut down: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == Some(503))
        .map(|o| o.took)
        .collect();
    down.sort();
    assert!(!down.is_empty(), "requests while down got 503s");
    let slowest = *down.last().expect("503s");
    // The service's own bound: connection acquire (3 s) + statement timeout (5 s) + 1 s.
    assert!(slowest <= Duration::from_secs(9), "a 503 took {slowest:?}");
    eprintln!(
        "restart: {} requests; up: {} x 200, cut by the stop: {} x 503; during pg_ctl stop: {} x 200, {} x 503; \
         down: {} x 503 (503 latency median {:?}, slowest {:?}); \
         after restart: {} x 503 then {} x 200, first 200 {:?} after pg_ctl start returned",
        outcomes.len(),
        count(UP, Some(200)),
        count(UP, Some(503)),
        count(STOPPING, Some(200)),
        count(STOPPING, Some(503)),
        count(DOWN, Some(503)),
        down[down.len() / 2],
        slowest,
        count(RESTARTED, Some(503)),
        count(RESTARTED, Some(200)),
        recovered_at.saturating_duration_since(restarted_at),
    );

    let pool = sqlx::PgPool::connect(&pg.url()).await.expect("connect");
    let stored: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT trace_id FROM traces")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert_none_lost("postgres restart", &acked, &stored);
    // The rollups went through the crash with the events: same count.
    let rolled: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(count), 0)::int8 FROM (SELECT count FROM trace_rollups \
         UNION ALL SELECT count FROM trace_rollup_deltas) r",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(rolled as usize, stored.len());
    pool.close().await;
    let pid = server.child.id();
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {pid}"))
            .status()
            .expect("sh")
            .success()
    );
    wait_success(server);
    drop(pg);
}

// --- Issue 24 against the built binary --------------------------------------------------

/// A response: its status and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// One request over a fresh connection (`Connection: close`), with a token when `auth`;
/// `None` when no complete answer came within `within`.
async fn request(
    addr: &str,
    method: &str,
    path: &str,
    auth: bool,
    body: &str,
    within: std::time::Duration,
) -> Option<Answer> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if auth {
            let token = keel_workload::auth::mint_token(SECRET, "issue-24", 600);
            req.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.ok()?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.ok()?;
        let text = String::from_utf8_lossy(&resp).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        Some(Answer {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        })
    };
    tokio::time::timeout(within, exchange).await.ok().flatten()
}

/// The rollout's readiness and liveness probe timeout: a probe answered later counts as
/// failed, and enough failures restart the pod.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Issue 24, bug 1, against the built binary and PostgreSQL: 50 model/service pairs with an
/// event every two hours over 89 days, latencies spread over the whole sketch range (wide
/// sketches), folded into the minute, hour and day rollups by the binary itself. Uncached
/// 90-day stats count exactly the stored events, per service too, and while four clients
/// loop on them every liveness and readiness probe is answered within the probe timeout (the
/// merge runs off the request runtime). How fast is `scripts/bench-stats.sh`'s business.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_24_long_window_stats_are_exact_and_leave_probes_answered() {
    use std::time::{Duration, Instant};

    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let mut cmd = command();
    cmd.env("DATABASE_URL", &db.url);
    let server = start(cmd);
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    sqlx::query(
        "INSERT INTO traces (trace_id, ts, service, model, latency_ms, prompt_tokens, completion_tokens, cost_usd, status)
         SELECT 'p-' || g || '-' || p, now() - g * interval '2 hours' - interval '1 minute',
                's' || (p % 10), 'm' || (p / 10),
                exp(random() * 16) / 100, 10, 5, 0.001,
                CASE WHEN g % 50 = 0 THEN 'error' ELSE 'ok' END
         FROM generate_series(0, 1067) g, generate_series(0, 49) p",
    )
    .execute(&pool)
    .await
    .expect("fill");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM trace_rollup_deltas) + (SELECT count(*) FROM trace_rollup_coarse_deltas)",
        )
        .fetch_one(&pool)
        .await
        .expect("deltas");
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} deltas unfolded after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let per_service: Vec<(String, i64)> =
        sqlx::query_as("SELECT service, count(*) FROM traces GROUP BY service ORDER BY service")
            .fetch_all(&pool)
            .await
            .expect("counts");
    let stats = "/v1/stats?window=90d&group_by=service";
    let answer = request(
        &server.http_addr,
        "GET",
        stats,
        true,
        "",
        Duration::from_secs(30),
    )
    .await
    .expect("stats answered");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["total"]["count"], 53_400, "{body}");
    let mut groups: Vec<(String, i64)> = body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap_or_default().to_owned(),
                g["count"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(groups, per_service, "{body}");

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, addr) = (stop.clone(), server.http_addr.clone());
        clients.push(tokio::spawn(async move {
            let mut served = 0;
            while !stop.load(Ordering::SeqCst) {
                let a = request(&addr, "GET", stats, true, "", Duration::from_secs(30)).await;
                assert_eq!(
                    a.map(|a| a.status),
                    Some(200),
                    "a stats call failed under load"
                );
                served += 1;
            }
            served
        }));
    }
    let end = Instant::now() + Duration::from_secs(4);
    let mut probes = 0;
    while Instant::now() < end {
        for path in [contract::LIVENESS_PATH, contract::READINESS_PATH] {
            let a = request(&server.http_addr, "GET", path, false, "", PROBE_TIMEOUT).await;
            assert_eq!(
                a.map(|a| a.status),
                Some(200),
                "{path} not answered 200 within the probe timeout beside 4 stats clients"
            );
            probes += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut served = 0;
    for c in clients {
        served += c.await.expect("stats client");
    }
    eprintln!("{probes} probes answered beside {served} 90-day stats calls");
    assert!(served >= 4, "the stats clients made no progress");
    pool.close().await;
    drop(server);
    db.drop_db().await;
}

/// The resident set of process `pid`, in bytes (Linux).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Issue 24, bug 2, against the built binary: the in-memory store is bounded in bytes and
/// keeps attributes compactly. Batches of 100 events, each with 8 KiB of attributes made of
/// small numbers (131,853 B of memory per event before), fill a store given 8 MiB: it then
/// answers 503 `store_full`, and once not even one such event fits it fails readiness; the
/// process's resident memory after 20 such batches (2,000 events, about 260 MB at the old
/// cost) stays under 128 MiB.
#[tokio::test]
async fn issue_24_the_memory_store_fills_in_bytes_and_rss_stays_bounded() {
    use std::time::Duration;

    let mut cmd = command();
    cmd.args(["--memory-max-bytes", "8388608"]);
    let server = start(cmd);
    let numbers: Vec<u8> = (0..3_900).map(|i| (i % 10) as u8).collect();
    let ingest = |name: String, n: usize| {
        let events: Vec<_> = (0..n)
            .map(|i| {
                let mut e = common::event(&format!("{name}-e{i}"), "m", "s", 3.0, "ok", 0);
                e["attributes"] = serde_json::json!({ "n": numbers });
                e
            })
            .collect();
        let body = serde_json::json!({ "events": events }).to_string();
        let addr = server.http_addr.clone();
        async move {
            let a = request(
                &addr,
                "POST",
                "/v1/traces",
                true,
                &body,
                Duration::from_secs(30),
            )
            .await
            .expect("ingest answered");
            if a.status == 503 {
                assert!(a.body.contains("store_full"), "{}", a.body);
            }
            a.status
        }
    };
    let mut statuses = Vec::new();
    for b in 0..20 {
        statuses.push(ingest(format!("b{b}"), 100).await);
    }
    let stored = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        stored >= 5 && statuses[stored..].iter().all(|s| *s == 503),
        "expected some batches stored, then 503s: {statuses:?}"
    );
    // A refused batch leaves room for smaller ones: single events, until not one fits.
    let mut fitted = 0;
    while ingest(format!("single{fitted}"), 1).await == 200 {
        fitted += 1;
        assert!(fitted < 200, "single events kept fitting in a full store");
    }
    let ready = request(
        &server.http_addr,
        "GET",
        contract::READINESS_PATH,
        false,
        "",
        PROBE_TIMEOUT,
    )
    .await
    .expect("ready answered");
    assert_eq!(ready.status, 503, "{}", ready.body);
    let rss = rss_bytes(server.child.id());
    eprintln!(
        "{stored} batches and {fitted} single events stored; resident memory {} MiB",
        rss >> 20
    );
    assert!(rss < 128 << 20, "resident memory {} MiB", rss >> 20);
}

/// `url` with its database number replaced by `db`.
fn redis_database(url: &str, db: u8) -> String {
    let base = match url.rsplit_once('/') {
        Some((base, last)) if last.bytes().all(|b| b.is_ascii_digit()) && !base.ends_with('/') => {
            base
        }
        _ => url.trim_end_matches('/'),
    };
    format!("{base}/{db}")
}

/// Issue 24, bug 3, against the built binary and Redis: one window has one cache key
/// (`60m`, `1h` and `3600s` share it), non-canonical or over-long spellings are refused
/// before the cache, so 300 such requests add no key, and Redis ends up holding one key
/// per distinct query, each at most a bounded length.
#[tokio::test]
async fn issue_24_redis_holds_one_key_per_window_however_it_is_spelled() {
    use std::time::Duration;

    let Some(url) = require_env("TEST_REDIS_URL") else {
        return;
    };
    // A database of its own, emptied first: the keys are counted.
    let url = redis_database(&url, 11);
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: () = redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .expect("FLUSHDB");
    let mut cmd = command();
    cmd.env("REDIS_URL", &url);
    let server = start(cmd);
    let get = |path: String| {
        let addr = server.http_addr.clone();
        async move {
            request(&addr, "GET", &path, true, "", Duration::from_secs(10))
                .await
                .expect("stats answered")
        }
    };
    let mut caches = Vec::new();
    for window in ["60m", "1h", "3600s", "60m"] {
        let a = get(format!("/v1/stats?window={window}")).await;
        assert_eq!(a.status, 200, "{window}: {}", a.body);
        caches.push(
            a.head
                .lines()
                .find_map(|l| l.strip_prefix("x-cache: "))
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(caches, ["miss", "hit", "hit", "hit"]);
    let a = get("/v1/stats?window=1h&group_by=model".to_owned()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    for i in 0..300 {
        let zeros = "0".repeat(1 + i % 40);
        let window = match i % 3 {
            0 => format!("{zeros}1h"),
            1 => format!("%2B{}h", 1 + i % 24),
            _ => format!("{}s", 100_000_000 + i),
        };
        let a = get(format!("/v1/stats?window={window}")).await;
        assert_eq!(a.status, 400, "{window}: {}", a.body);
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert_eq!(keys.len(), 2, "{keys:?}");
    let longest =
        keel_workload::server::CACHE_PREFIX.len() + keel_workload::stats::MAX_CACHE_KEY_BYTES;
    assert!(keys.iter().all(|k| k.len() <= longest), "{keys:?}");
    let _: () = redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .expect("FLUSHDB");
}

/// Issue 24, connections, against the built binary: 1,030 sockets that never send a request
/// head on the API port and 40 on the metrics port, beyond the default caps, and still
/// `/ready` and `/metrics` are answered within the probe timeout.
#[tokio::test]
async fn issue_24_idle_sockets_leave_probes_and_scrapes_answered() {
    let server = start(command());
    let mut idle = Vec::new();
    for _ in 0..1030 {
        idle.push(
            TcpStream::connect(&server.http_addr)
                .await
                .expect("connect"),
        );
    }
    for _ in 0..40 {
        idle.push(
            TcpStream::connect(&server.metrics_addr)
                .await
                .expect("connect"),
        );
    }
    for (addr, path) in [
        (&server.http_addr, contract::READINESS_PATH),
        (&server.http_addr, contract::LIVENESS_PATH),
        (&server.metrics_addr, contract::METRICS_PATH),
    ] {
        let a = request(addr, "GET", path, false, "", PROBE_TIMEOUT).await;
        assert_eq!(
            a.map(|a| a.status),
            Some(200),
            "{path} not answered within the probe timeout beside idle sockets"
        );
    }
}

/// The status of `GET /health` with a request head of about `head_bytes` (one padding
/// header), over a fresh connection.
async fn health_with_head_of(addr: &str, head_bytes: usize) -> Option<u16> {
    let pad = "a".repeat(head_bytes);
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!(
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {pad}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.ok()?;
    let text = String::from_utf8_lossy(&resp);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Issue 24: the header and shedding limits are configuration. A value out of range, as a
/// variable or a flag, is refused at start (exit 2, naming it, the value and what is
/// expected); a changed limit takes effect: a 6 KiB request head passes the default 16 KiB
/// bound, is answered 431 under `HTTP_MAX_HEADER_BYTES=4096`, and passes again with
/// `--max-header-bytes 8192`, the flag winning over the variable.
#[tokio::test]
async fn issue_24_connection_limits_are_configuration() {
    let out = command()
        .arg("--dev")
        .env("HTTP_MAX_HEADER_BYTES", "512")
        .env("HTTP_SHED_AFTER_MS", "1s")
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [
        r#"HTTP_MAX_HEADER_BYTES: expected a whole number of bytes from 1024 to 1048576, found "512""#,
        r#"HTTP_SHED_AFTER_MS: expected a whole number of milliseconds from 100 to 60000, found "1s""#,
    ] {
        assert!(stderr.contains(line), "{stderr}");
    }
    let out = command()
        .args(["--dev", "--max-unfinished-heads", "0"])
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"--max-unfinished-heads: expected a whole number of connections from 1 to 65536, found "0""#),
        "{stderr}"
    );

    let six_kib = 6 * 1024;
    let server = start(command());
    assert_eq!(
        health_with_head_of(&server.http_addr, six_kib).await,
        Some(200)
    );
    drop(server);
    let mut cmd = command();
    cmd.env("HTTP_MAX_HEADER_BYTES", "4096");
    let server = start(cmd);
    assert_eq!(
        health_with_head_of(&server.http_addr, six_kib).await,
        Some(431)
    );
    assert_eq!(
        health_with_head_of(&server.http_addr, 1024).await,
        Some(200)
    );
    drop(server);
    let mut cmd = command();
    cmd.env("HTTP_MAX_HEADER_BYTES", "4096")
        .args(["--max-header-bytes", "8192"]);
    let server = start(cmd);
    assert_eq!(
        health_with_head_of(&server.http_addr, six_kib).await,
        Some(200)
    );
}

// --- JWT secret rotation --------------------------------------------------------------

/// The secret being rotated out in the rotation tests (the current one is [`SECRET`]).
const OLD_SECRET: &str = "old-secret-9876543210-old-secret-xyz";

/// The `jwt_verified_total` count for `key` in a metrics scrape, if the series exists.
async fn verified_count(metrics_addr: &str, key: &str) -> Option<u64> {
    let mut s = TcpStream::connect(metrics_addr).await.ok()?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {metrics_addr}\r\nConnection: close\r\n\r\n",
        contract::METRICS_PATH
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.ok()?;
    let prefix = format!(
        "{}{{{}=\"{key}\"}} ",
        contract::JWT_VERIFIED.exposed,
        contract::JWT_KEY_LABEL
    );
    String::from_utf8_lossy(&resp)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

/// During a rotation the binary accepts a token of the current or the previous secret,
/// refuses one of neither, and counts which secret verified each; `--mint-token` signs
/// with the current secret only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_rotation_accepts_either_key_counts_which_and_mints_with_the_current() {
    let mut cmd = command();
    cmd.env("JWT_SECRET_PREVIOUS", OLD_SECRET);
    let server = start(cmd);
    let stats = "/v1/stats?window=1h";
    let bearer = |secret: &str| {
        let token = keel_workload::auth::mint_token(secret, "rotation", 600);
        format!("Authorization: Bearer {token}\r\n")
    };
    let addr = &server.http_addr;
    assert_eq!(
        get_status_with(addr, stats, &bearer(SECRET)).await,
        Some(200)
    );
    for _ in 0..2 {
        assert_eq!(
            get_status_with(addr, stats, &bearer(OLD_SECRET)).await,
            Some(200)
        );
    }
    let neither = "neither-secret-0123456789-neither";
    assert_eq!(
        get_status_with(addr, stats, &bearer(neither)).await,
        Some(401)
    );
    assert_eq!(get_status(addr, stats).await, Some(401));
    assert_eq!(
        verified_count(&server.metrics_addr, "current").await,
        Some(1)
    );
    assert_eq!(
        verified_count(&server.metrics_addr, "previous").await,
        Some(2)
    );

    let out = command()
        .args(["--mint-token", "ops"])
        .env("JWT_SECRET", SECRET)
        .env("JWT_SECRET_PREVIOUS", OLD_SECRET)
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{out:?}");
    let header = format!("Bearer {}", String::from_utf8_lossy(&out.stdout).trim());
    let current_only = keel_workload::auth::Verifier::new(SECRET);
    assert_eq!(
        current_only.verify_header(Some(&header)).map(|c| c.sub),
        Ok("ops".into())
    );
    let previous_only = keel_workload::auth::Verifier::new(OLD_SECRET);
    assert!(previous_only.verify_header(Some(&header)).is_err());
}

/// A previous secret equal to the current one, or too weak, is refused at start: exit 2,
/// naming JWT_SECRET_PREVIOUS, showing no secret.
#[test]
fn jwt_rotation_an_equal_or_short_previous_secret_is_refused_at_start() {
    for (previous, expected) in [
        (SECRET, "JWT_SECRET_PREVIOUS equals JWT_SECRET"),
        (
            "old-but-short",
            "JWT_SECRET_PREVIOUS: expected at least 32 characters",
        ),
    ] {
        let out = command()
            .env("JWT_SECRET", SECRET)
            .env("JWT_SECRET_PREVIOUS", previous)
            .output()
            .expect("run the binary");
        assert_eq!(out.status.code(), Some(2), "{previous}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains(previous), "the secret is shown: {stderr}");
    }
}
