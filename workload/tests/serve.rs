//! The server's connection handling over real TCP on 127.0.0.1 (in process, with short
//! limits): header-read and idle timeouts, the body timeout, the connection cap, and a second
//! signal ending the drain at once.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use keel_workload::api::AppState;
use keel_workload::server::{Drain, ServeLimits, ServerError, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

struct Running {
    addr: String,
    signals: mpsc::Sender<()>,
    task: JoinHandle<Result<Drain, ServerError>>,
}

async fn start(state: AppState, limits: ServeLimits, deadline: Duration) -> Running {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap().to_string();
    let (signals, rx) = mpsc::channel(4);
    let task = tokio::spawn(serve(http, metrics, state, rx, deadline, limits));
    Running {
        addr,
        signals,
        task,
    }
}

/// Limits with the idle keep-alive timeout equal to the header timeout.
fn limits(header_read_timeout: Duration, max_connections: usize) -> ServeLimits {
    ServeLimits {
        header_read_timeout,
        idle_timeout: header_read_timeout,
        max_connections,
        max_metrics_connections: 4,
    }
}

/// Reads until the peer closes or `within` passes; returns what was read and whether the
/// peer closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = start(
        memory_state(),
        limits(Duration::from_millis(300), 8),
        Duration::from_secs(5),
    )
    .await;
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "a half-sent request held its connection");
    // Nothing sent at all: the same.
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "an idle new connection was held");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = start(
        memory_state(),
        limits(Duration::from_millis(300), 8),
        Duration::from_secs(5),
    )
    .await;
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    s.write_all(HEALTH).await.unwrap();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "the connection stayed open after the idle timeout");
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() {
    let mut state = memory_state();
    state.body_read_timeout = Duration::from_millis(300);
    let server = start(
        state,
        limits(Duration::from_secs(5), 8),
        Duration::from_secs(5),
    )
    .await;
    let mut s = unfinished_post(&server.addr, r#"{"events":"#).await;
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = start(
        memory_state(),
        limits(Duration::from_secs(30), 2),
        Duration::from_secs(5),
    )
    .await;
    let mut a = TcpStream::connect(&server.addr).await.unwrap();
    a.write_all(HEALTH).await.unwrap();
    let mut b = TcpStream::connect(&server.addr).await.unwrap();
    b.write_all(HEALTH).await.unwrap();
    for s in [&mut a, &mut b] {
        let mut buf = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    // Both kept alive: a third connection is not served while they are open.
    let mut c = TcpStream::connect(&server.addr).await.unwrap();
    c.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 12];
    let early = tokio::time::timeout(Duration::from_millis(500), c.read_exact(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served beyond the cap of 2"
    );
    drop(a);
    tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut buf))
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}

#[tokio::test]
async fn a_second_signal_ends_the_drain_at_once() {
    // A request whose body never completes keeps the drain waiting (body timeout 60 s).
    let mut state = memory_state();
    state.body_read_timeout = Duration::from_secs(60);
    let draining = state.draining.clone();
    let server = start(
        state,
        limits(Duration::from_secs(30), 8),
        Duration::from_secs(60),
    )
    .await;
    let mut s = unfinished_post(&server.addr, r#"{"#).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signals.send(()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(draining.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        !server.task.is_finished(),
        "the first signal waits for the request"
    );
    server.signals.send(()).await.unwrap();
    let drain = tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the second signal ended the drain")
        .unwrap()
        .unwrap();
    assert_eq!(drain, Drain::Interrupted);
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed && text.is_empty(), "cut, never answered: {text:?}");
}

#[tokio::test]
async fn the_drain_completes_when_nothing_is_in_flight() {
    let server = start(
        memory_state(),
        limits(Duration::from_secs(30), 8),
        Duration::from_secs(60),
    )
    .await;
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    s.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).await.unwrap();
    // An idle keep-alive connection does not hold the drain up.
    server.signals.send(()).await.unwrap();
    let drain = tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("drained")
        .unwrap()
        .unwrap();
    assert_eq!(drain, Drain::Complete);
}

/// Issue 24, bug 7: while the drain waits for in-flight requests, new connections are still
/// accepted (one request each) and `/ready` answers 503, so probes see "not ready" rather
/// than a refused connection.
#[tokio::test]
async fn issue_24_ready_answers_503_during_the_drain() {
    let mut state = memory_state();
    state.body_read_timeout = Duration::from_secs(60);
    let server = start(
        state,
        limits(Duration::from_secs(30), 8),
        Duration::from_secs(60),
    )
    .await;
    let _stuck = unfinished_post(&server.addr, r#"{"#).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signals.send(()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let mut probe = TcpStream::connect(&server.addr)
            .await
            .expect("the listener stays open during the drain");
        probe
            .write_all(b"GET /ready HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let (text, closed) = read_until_closed(&mut probe, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("\"draining\":true"), "{text}");
        assert!(closed, "one request per connection while draining");
    }
    assert!(!server.task.is_finished());
    server.signals.send(()).await.unwrap();
    let drain = tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the second signal ended the drain")
        .unwrap()
        .unwrap();
    assert_eq!(drain, Drain::Interrupted);
}

/// Issue 24: an idle keep-alive connection is kept longer than the header timeout (the
/// contract's idle timeout outlives the proxy's upstream keep-alive, so the proxy closes
/// first and never sends a request on a connection being closed), while a new connection
/// must still send its headers within the header timeout.
#[tokio::test]
async fn issue_24_idle_keep_alive_outlives_the_header_timeout() {
    let server = start(
        memory_state(),
        ServeLimits {
            idle_timeout: Duration::from_millis(1500),
            ..limits(Duration::from_millis(300), 8)
        },
        Duration::from_secs(5),
    )
    .await;
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    s.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    let (_, closed) = read_until_closed(&mut s, Duration::from_millis(800)).await;
    assert!(!closed, "closed while idle for less than the idle timeout");
    s.write_all(HEALTH).await.unwrap();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(text.contains("HTTP/1.1 200"), "{text}");
    assert!(closed, "closed after the idle timeout");
    // A new connection that never finishes its headers: the header timeout.
    let mut slow = TcpStream::connect(&server.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nX-Slow: ")
        .await
        .unwrap();
    let start = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(
        closed && start.elapsed() < Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
    // Headers trickling in a byte at a time are due all the same.
    let mut trickle = TcpStream::connect(&server.addr).await.unwrap();
    let start = Instant::now();
    let mut cut = false;
    for b in b"GET /health HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if trickle.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, closed) = read_until_closed(&mut trickle, Duration::from_secs(1)).await;
    assert!(cut || closed, "a trickle outlived the header timeout");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// A connection with an authenticated POST that declares 1,000 body bytes and sends only
/// `start`: a client whose body stopped arriving.
async fn unfinished_post(addr: &str, start: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{start}",
        bearer()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}
