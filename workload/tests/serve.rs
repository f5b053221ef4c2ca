//! The server's connection handling over real TCP on 127.0.0.1 (in process, with short
//! limits): header-read and idle timeouts, the body timeout, the connection cap, and a second
//! signal ending the drain at once.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use keel_workload::api::{AppState, BodyBudget};
use keel_workload::connections::SHED_AFTER;
use keel_workload::event::MAX_BODY_BYTES;
use keel_workload::server::{Drain, ServeLimits, ServerError, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

struct Running {
    addr: String,
    metrics_addr: String,
    signals: mpsc::Sender<()>,
    task: JoinHandle<Result<Drain, ServerError>>,
}

async fn start(state: AppState, limits: ServeLimits, deadline: Duration) -> Running {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap().to_string();
    let metrics_addr = metrics.local_addr().unwrap().to_string();
    let (signals, rx) = mpsc::channel(4);
    let task = tokio::spawn(serve(http, metrics, state, rx, deadline, limits));
    Running {
        addr,
        metrics_addr,
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
        ..ServeLimits::default()
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
    let mut s = unfinished_post(&server.addr, r#"{"events":"#, 1000).await;
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

/// The first 12 bytes of the answer (its status line's start) if they arrive `within`.
async fn answered(s: &mut TcpStream, within: Duration) -> Option<[u8; 12]> {
    let mut buf = [0u8; 12];
    match tokio::time::timeout(within, s.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Some(buf),
        Ok(Err(_)) => Some([0; 12]),
        Err(_) => None,
    }
}

/// At the cap, a new connection sheds the longest idle kept-alive one; when every
/// connection is in the middle of a request, it waits for a free slot.
#[tokio::test]
async fn connections_beyond_the_cap_shed_the_idle_or_wait_for_a_free_slot() {
    let mut state = memory_state();
    state.body_read_timeout = Duration::from_secs(60);
    let server = start(
        state,
        limits(Duration::from_secs(30), 2),
        Duration::from_secs(5),
    )
    .await;
    let mut idle = TcpStream::connect(&server.addr).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    assert_eq!(
        answered(&mut idle, Duration::from_secs(10)).await,
        Some(*b"HTTP/1.1 200")
    );
    let busy = unfinished_post(&server.addr, "{", 1000).await;
    // Idle for longer than a response takes to go out.
    tokio::time::sleep(SHED_AFTER + Duration::from_millis(200)).await;
    // Full: the idle kept-alive connection makes room.
    let mut c = TcpStream::connect(&server.addr).await.unwrap();
    c.write_all(HEALTH).await.unwrap();
    assert_eq!(
        answered(&mut c, Duration::from_secs(10)).await,
        Some(*b"HTTP/1.1 200")
    );
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(2)).await.1,
        "the idle connection was not shed"
    );
    // Now both are busy: a third connection is not served until one of them closes.
    drop(c);
    let _busy_too = unfinished_post(&server.addr, "{", 1000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut d = TcpStream::connect(&server.addr).await.unwrap();
    d.write_all(HEALTH).await.unwrap();
    assert_eq!(
        answered(&mut d, Duration::from_millis(500)).await,
        None,
        "served beyond the cap of 2"
    );
    drop(busy);
    assert_eq!(
        answered(&mut d, Duration::from_secs(10)).await,
        Some(*b"HTTP/1.1 200")
    );
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
    let mut s = unfinished_post(&server.addr, r#"{"#, 1000).await;
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
    let _stuck = unfinished_post(&server.addr, r#"{"#, 1000).await;
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

const READY: &[u8] = b"GET /ready HTTP/1.1\r\nHost: t\r\n\r\n";
const METRICS: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";

/// Issue 24, connections: 1,030 sockets that never finish a request head (half of them send
/// nothing, half a partial head) and 40 on the metrics port, beyond both default caps, used
/// to keep new connections in the listen backlog until the header timeout: probes and the
/// scraper went unanswered. The oldest unfinished connections are shed instead.
#[tokio::test]
async fn issue_24_idle_sockets_do_not_keep_probes_or_the_scraper_out() {
    let defaults = ServeLimits::default();
    let server = start(
        memory_state(),
        ServeLimits {
            header_read_timeout: Duration::from_secs(60),
            ..defaults
        },
        Duration::from_secs(5),
    )
    .await;
    let mut idle = Vec::new();
    for i in 0..defaults.max_connections + 6 {
        let mut s = TcpStream::connect(&server.addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /v1/stats HTTP/1.1\r\nHost: t\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    let mut idle_metrics = Vec::new();
    for _ in 0..defaults.max_metrics_connections + 8 {
        idle_metrics.push(TcpStream::connect(&server.metrics_addr).await.unwrap());
    }
    for (addr, request) in [
        (&server.addr, READY),
        (&server.addr, HEALTH),
        (&server.metrics_addr, METRICS),
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut buf = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{addr}: not answered within 3 s beside idle sockets"))
            .unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200", "{addr}");
    }
    for s in idle.iter_mut().take(2).chain(&mut idle_metrics[..1]) {
        let (_, closed) = read_until_closed(s, Duration::from_secs(2)).await;
        assert!(closed, "the oldest unfinished connections were not shed");
    }
    // Operators see it: at least every idle socket beyond the API port's cap of unfinished
    // heads was shed, as unfinished (none of them idle after a request).
    tokio::time::sleep(SHED_AFTER + Duration::from_millis(600)).await;
    let mut s = TcpStream::connect(&server.metrics_addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    let shed = |kind: &str| {
        let prefix = format!("connections_shed_total{{kind=\"{kind}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.parse::<usize>().ok())
    };
    let expected = defaults.max_connections + 6 - defaults.max_unfinished_heads;
    assert!(shed("unfinished").is_some_and(|n| n >= expected), "{text}");
    assert_eq!(shed("idle"), None, "{text}");
}

/// Issue 24, connections: headers buffered before a request reaches authentication are
/// bounded per connection (a head of `max_header_bytes` is a 431; hyper's own bound is about
/// 400 KB) and in total (at most `max_unfinished_heads` connections may still be receiving
/// their first head a second after opening; the oldest beyond it are closed), while a burst
/// of new connections sending their heads at once is served.
#[tokio::test]
async fn issue_24_request_heads_are_bounded_in_bytes() {
    let limits = ServeLimits {
        max_unfinished_heads: 4,
        ..limits(Duration::from_secs(30), 64)
    };
    let server = start(memory_state(), limits, Duration::from_secs(5)).await;
    // A head well under the bound, with a long header, is served.
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    let pad = "a".repeat(limits.max_header_bytes / 2);
    s.write_all(
        format!("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Pad: {pad}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Exactly the bound, still unfinished: refused, not buffered further.
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    let mut head = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Pad: ".to_vec();
    head.resize(limits.max_header_bytes, b'a');
    s.write_all(&head).await.unwrap();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");
    assert!(closed);
    // A burst of ten new connections beyond the cap of four, each sending its head at once:
    // none is shed before it could.
    let mut burst = Vec::new();
    for _ in 0..10 {
        burst.push(TcpStream::connect(&server.addr).await.unwrap());
    }
    for s in &mut burst {
        s.write_all(HEALTH).await.unwrap();
        assert_eq!(
            answered(s, Duration::from_secs(5)).await,
            Some(*b"HTTP/1.1 200")
        );
    }
    // Ten partial heads: once they are stale, only the four newest are kept.
    let mut partial = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(&server.addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        partial.push(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(SHED_AFTER + Duration::from_millis(600)).await;
    let mut closed = Vec::new();
    for s in &mut partial {
        closed.push(read_until_closed(s, Duration::from_millis(300)).await.1);
    }
    assert_eq!(
        closed,
        [
            true, true, true, true, true, true, false, false, false, false
        ]
    );
}

/// Issue 24, connections: request bodies held at once across connections are bounded in
/// bytes. Two authenticated clients that declare 1 MiB bodies and send nothing hold the
/// whole (2 MiB) budget, so the next batch is refused at once with a 503 rather than
/// buffered; once one of them goes away, its bytes are given back.
#[tokio::test]
async fn issue_24_slow_bodies_are_refused_beyond_the_byte_budget() {
    let mut state = memory_state();
    state.body_read_timeout = Duration::from_secs(60);
    state.body_budget = BodyBudget::new(2 * MAX_BODY_BYTES);
    let server = start(
        state,
        limits(Duration::from_secs(30), 64),
        Duration::from_secs(5),
    )
    .await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(unfinished_post(&server.addr, "{", MAX_BODY_BYTES).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = post_over_tcp(&server.addr).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"error\":\"busy\""), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    drop(slow.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = post_over_tcp(&server.addr).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

/// Sends one complete authenticated batch of one event on a new connection and returns the
/// whole answer.
async fn post_over_tcp(addr: &str) -> String {
    let body = serde_json::json!({ "events": [event(&uuid::Uuid::new_v4().to_string(), "m", "s", 5.0, "ok", 1)] }).to_string();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        bearer(),
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    read_until_closed(&mut s, Duration::from_secs(5)).await.0
}

/// A connection with an authenticated POST that declares `declared` body bytes and sends
/// only `start`: a client whose body stopped arriving.
async fn unfinished_post(addr: &str, start: &str, declared: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{start}",
        bearer()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

/// Issue 24: the shedding grace is configuration (`HTTP_SHED_AFTER_MS`): beyond a cap of
/// one unfinished head, connections that never send one are shed after a short grace and
/// kept under a long one.
#[tokio::test]
async fn issue_24_the_shed_grace_is_a_limit() {
    for (shed_after, shed) in [
        (Duration::from_millis(200), true),
        (Duration::from_secs(30), false),
    ] {
        let server = start(
            memory_state(),
            ServeLimits {
                header_read_timeout: Duration::from_secs(60),
                max_unfinished_heads: 1,
                shed_after,
                ..ServeLimits::default()
            },
            Duration::from_secs(5),
        )
        .await;
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(TcpStream::connect(&server.addr).await.unwrap());
        }
        // Shed within a sweep or two of the grace, or still open well after the default grace.
        let within = Duration::from_millis(if shed { 5_000 } else { 1_500 });
        let (_, closed) = read_until_closed(&mut idle[0], within).await;
        assert_eq!(closed, shed, "grace {shed_after:?}");
    }
}
