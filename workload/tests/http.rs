//! The HTTP API in process (`app(state).oneshot(...)`), against the in-memory store, and
//! against real PostgreSQL and Redis servers when TEST_DATABASE_URL / TEST_REDIS_URL are set
//! (skipped with a printed reason otherwise; a failure when CI=true).

use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use keel_workload::api::{AppState, app, metrics_app};
use keel_workload::cache::StatsCache;
use keel_workload::config::CorsOrigins;
use keel_workload::event::MAX_BODY_BYTES;
use keel_workload::stats::{GroupStats, Stats};
use keel_workload::store::postgres::{PgTimeouts, PoolSizes};
use keel_workload::store::{MemoryStore, PgStore, Store};
use serde_json::{Value, json};

#[tokio::test]
async fn liveness_answers_with_security_headers_and_a_request_id() {
    let app = app(memory_state());
    let r = send(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "healthy");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["x-xss-protection"], "1; mode=block");
    assert_eq!(r.headers["x-request-id"].to_str().unwrap().len(), 36);

    let r = send(
        &app,
        Request::get("/health")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.headers["x-request-id"], "abc-123",
        "a caller's request id is kept"
    );
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let r = send(
        &app(memory_state()),
        Request::get("/ready").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "healthy");
    assert_eq!(r.body["store"], "memory");
    assert_eq!(r.body["redis"], "disabled");
    assert_eq!(r.body["draining"], false);
    assert!(
        r.body.get("database").is_none(),
        "no database is reported for the in-memory store: {}",
        r.body
    );
}

#[tokio::test]
async fn readiness_fails_while_draining() {
    let state = memory_state();
    let api = app(state.clone());
    state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let r = send(&api, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (&r.body["status"], &r.body["draining"]),
        (&json!("unhealthy"), &json!(true))
    );
    // Liveness is unaffected.
    let r = send(&api, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_methods_and_routes_collapse_to_one_metrics_label() {
    let state = memory_state();
    let api = app(state.clone());
    for i in 0..20 {
        let method = format!("X{}{i}", "M".repeat(2000));
        let req = Request::builder()
            .method(method.as_str())
            .uri(format!("/random/{i}/{}", "p".repeat(500)))
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&api, req).await.status, StatusCode::NOT_FOUND);
        let req = Request::builder()
            .method(method.as_str())
            .uri("/v1/stats")
            .body(Body::empty())
            .unwrap();
        send(&api, req).await;
    }
    let m = send(
        &metrics_app(state),
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        !m.text.contains("MMMM") && !m.text.contains("pppp"),
        "{}",
        m.text.len()
    );
    let series: Vec<_> = m
        .text
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .collect();
    assert!(
        series
            .contains(&r#"http_requests_total{method="other",route="unmatched",status="404"} 20"#),
        "{series:?}"
    );
    assert!(series.len() <= 3, "{series:?}");
    assert!(m.text.len() < 20_000, "{} bytes of metrics", m.text.len());
}

#[tokio::test]
async fn the_metrics_port_sends_the_same_headers() {
    let r = send(
        &metrics_app(memory_state()),
        Request::get("/metrics")
            .header("x-request-id", "scrape-1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["x-xss-protection"], "1; mode=block");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    assert_eq!(r.headers["x-request-id"], "scrape-1");
    let r = send(
        &metrics_app(memory_state()),
        Request::get("/other").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn an_overlong_or_odd_request_id_is_replaced_not_echoed() {
    let app = app(memory_state());
    for bad in ["x".repeat(1000), "has space".to_owned(), String::new()] {
        let r = send(
            &app,
            Request::get("/health")
                .header("x-request-id", bad.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let id = r.headers["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "{bad:?} -> {id}");
    }
    let ok = "a".repeat(128);
    let r = send(
        &app,
        Request::get("/health")
            .header("x-request-id", ok.as_str())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.headers["x-request-id"], ok.as_str());
}

#[tokio::test]
async fn v1_needs_a_valid_token() {
    let app = app(memory_state());
    let r = send(&app, Request::get("/v1/stats").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(r.body["error"], "unauthorized");

    let forged = keel_workload::auth::mint_token("some-other-secret-some-other-secret", "x", 60);
    let req = Request::get("/v1/stats")
        .header("authorization", format!("Bearer {forged}"))
        .body(Body::empty());
    assert_eq!(
        send(&app, req.unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        send(&app, get_auth("/v1/stats")).await.status,
        StatusCode::OK
    );
}

fn signed(claims: Value) -> String {
    let t = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    format!("Bearer {t}")
}

#[tokio::test]
async fn tokens_not_yet_valid_are_refused_and_refusals_name_no_internals() {
    let app = app(memory_state());
    let now = chrono::Utc::now().timestamp();
    let get = |auth: String| {
        Request::get("/v1/stats")
            .header("authorization", auth)
            .body(Body::empty())
            .unwrap()
    };
    let r = send(
        &app,
        get(signed(
            json!({"sub": "a", "exp": now + 7200, "nbf": now + 3600}),
        )),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a token valid only in an hour"
    );
    assert_eq!(r.body["message"], "token not yet valid (nbf)");
    // An identity provider's audience does not get a token refused when none is configured.
    let r = send(
        &app,
        get(signed(
            json!({"sub": "a", "exp": now + 60, "aud": "something"}),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    for junk in ["Bearer e30.e30.e30", "Bearer !!!", "Bearer a.b.c"] {
        let r = send(&app, get(junk.to_owned())).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let msg = r.body["message"].as_str().unwrap();
        assert_eq!(
            msg, "malformed token; expected a JWT with `sub` and `exp` claims",
            "{junk}"
        );
    }
    let r = send(&app, get(signed(json!({"exp": now + 60})))).await;
    assert_eq!(
        r.body["message"],
        "malformed token; expected a JWT with `sub` and `exp` claims"
    );
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_configured() {
    let mut state = memory_state();
    state.verifier = Some(keel_workload::auth::Verifier::with_claims(
        SECRET,
        Some("https://idp.example.com/"),
        &["analytics-api".to_owned()],
    ));
    let app = app(state);
    let now = chrono::Utc::now().timestamp();
    let get = |claims: Value| {
        Request::get("/v1/stats")
            .header("authorization", signed(claims))
            .body(Body::empty())
            .unwrap()
    };
    let good = json!({"sub": "a", "exp": now + 60, "iss": "https://idp.example.com/", "aud": ["analytics-api", "x"]});
    assert_eq!(send(&app, get(good)).await.status, StatusCode::OK);
    let r = send(
        &app,
        get(json!({"sub": "a", "exp": now + 60, "iss": "https://idp.example.com/", "aud": "web"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["message"].as_str().unwrap()),
        (
            StatusCode::UNAUTHORIZED,
            "token audience (aud) is missing or not accepted"
        )
    );
    let r = send(
        &app,
        get(json!({"sub": "a", "exp": now + 60, "iss": "https://other/", "aud": "analytics-api"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn development_mode_serves_v1_without_a_token() {
    let mut state = memory_state();
    state.verifier = None;
    let r = send(
        &app(state),
        Request::get("/v1/stats").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_duplicate_trace_id_is_not_counted_twice() {
    let app = app(memory_state());
    let a = event("dup-a", "m", "s", 10.0, "ok", 1);
    let b = event("dup-b", "m", "s", 20.0, "ok", 1);
    let r = send(&app, post_events(vec![a.clone(), b.clone(), a.clone()])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"stored": 2, "duplicates": 1}));
    let r = send(&app, post_events(vec![b])).await;
    assert_eq!(r.body, json!({"stored": 0, "duplicates": 1}));
    let r = send(&app, get_auth("/v1/stats")).await;
    assert_eq!(r.body["total"]["count"], 2);
}

fn sample() -> Vec<Value> {
    vec![
        event("s1", "gpt-4o", "chat", 100.0, "ok", 5),
        event("s2", "gpt-4o", "chat", 200.0, "error", 5),
        event("s3", "gpt-4o", "search", 300.0, "ok", 5),
        event("s4", "gpt-4o", "search", 400.0, "ok", 5),
        event("s5", "claude", "chat", 50.0, "ok", 5),
        event("s6", "claude", "chat", 70.0, "error", 30),
        // Outside a 1h window:
        event("s7", "claude", "chat", 9999.0, "ok", 120),
    ]
}

#[tokio::test]
async fn stats_aggregate_the_window_by_model_and_service() {
    let app = app(memory_state());
    assert_eq!(
        send(&app, post_events(sample())).await.status,
        StatusCode::OK
    );

    let r = send(&app, get_auth("/v1/stats?window=1h&group_by=model")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["x-cache"], "off");
    let stats: Stats = serde_json::from_value(r.body).unwrap();
    assert_eq!(stats.total.count, 6);
    assert_eq!(stats.total.errors, 2);
    assert_eq!(stats.total.prompt_tokens, 60);
    assert_eq!(stats.total.total_tokens, 90);
    assert!((stats.total.cost_usd - 1.5).abs() < 1e-9);
    let gpt = &stats.groups[0];
    assert_eq!(gpt.key.as_deref(), Some("gpt-4o"));
    assert_eq!((gpt.count, gpt.errors, gpt.error_rate), (4, 1, 0.25));
    assert_eq!(gpt.latency_ms.p50, Some(250.0));
    assert!((gpt.latency_ms.p95.unwrap() - 385.0).abs() < 1e-9);
    assert!((gpt.latency_ms.p99.unwrap() - 397.0).abs() < 1e-9);
    assert_eq!(stats.groups[1].key.as_deref(), Some("claude"));
    assert_eq!(stats.groups[1].count, 2);

    let r = send(&app, get_auth("/v1/stats?window=10m&group_by=service")).await;
    let stats: Stats = serde_json::from_value(r.body).unwrap();
    let keys: Vec<_> = stats
        .groups
        .iter()
        .map(|g| (g.key.clone().unwrap(), g.count))
        .collect();
    assert_eq!(keys, [("chat".to_owned(), 3), ("search".to_owned(), 2)]);

    let r = send(&app, get_auth("/v1/stats?window=1d")).await;
    let stats: Stats = serde_json::from_value(r.body).unwrap();
    assert_eq!(stats.total.count, 7);
    assert!(stats.groups.is_empty());
}

#[tokio::test]
async fn stats_of_an_empty_window_have_null_percentiles() {
    let r = send(&app(memory_state()), get_auth("/v1/stats")).await;
    assert_eq!(r.body["total"]["count"], 0);
    assert_eq!(r.body["total"]["latency_ms"]["p99"], Value::Null);
}

#[tokio::test]
async fn invalid_fields_are_named_in_a_400() {
    let app = app(memory_state());
    let mut bad = event("x", "m", "s", 1.0, "ok", 0);
    bad["latency_ms"] = json!("fast");
    bad["prompt_tokens"] = json!(-3);
    bad.as_object_mut().unwrap().remove("model");
    let r = send(
        &app,
        post_events(vec![event("ok", "m", "s", 1.0, "ok", 0), bad]),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "validation_failed");
    let fields: Vec<_> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "events[1].model",
            "events[1].latency_ms",
            "events[1].prompt_tokens"
        ]
    );
    // Nothing from a rejected batch is stored.
    let r = send(&app, get_auth("/v1/stats")).await;
    assert_eq!(r.body["total"]["count"], 0);

    let r = send(&app, get_auth("/v1/stats?window=1y&group_by=color")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["details"].as_array().unwrap().len(), 2);
}

fn detail_fields(r: &Reply) -> Vec<String> {
    r.body["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details in {}", r.text))
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn nul_characters_get_a_400_naming_the_field_in_memory_too() {
    let app = app(memory_state());
    let mut bad = event("nul-1", "m", "s", 1.0, "ok", 0);
    bad["service"] = json!("chat\u{0}");
    bad["attributes"] = json!({"prompt": "a\u{0}b"});
    let r = send(&app, post_events(vec![bad])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        detail_fields(&r),
        ["events[0].service", "events[0].attributes"]
    );
    assert_eq!(
        send(&app, get_auth("/v1/stats")).await.body["total"]["count"],
        0
    );
}

#[tokio::test]
async fn timestamps_and_attribute_numbers_are_bounded() {
    let app = app(memory_state());
    let mut old = event("b-1", "m", "s", 1.0, "ok", 0);
    old["timestamp"] = json!("0001-01-01T00:00:00Z");
    let mut future = event("b-2", "m", "s", 1.0, "ok", 0);
    future["timestamp"] = json!("9999-12-31T23:59:59Z");
    let r = send(&app, post_events(vec![old, future])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        detail_fields(&r),
        ["events[0].timestamp", "events[1].timestamp"]
    );

    let body = format!(
        r#"{{"events": [{}]}}"#,
        event("b-3", "m", "s", 1.0, "ok", 0).to_string().replacen(
            '{',
            r#"{"attributes": {"big": 123456789012345678901234567890},"#,
            1
        )
    );
    let req = Request::post("/v1/traces")
        .header("authorization", bearer())
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(detail_fields(&r), ["events[0].attributes"]);
}

#[tokio::test]
async fn a_batch_over_the_event_limit_is_413() {
    let app = app(memory_state());
    let events = (0..1001)
        .map(|i| event(&format!("many-{i}"), "m", "s", 1.0, "ok", 0))
        .collect();
    let r = send(&app, post_events(events)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.body["error"], "payload_too_large");
    assert!(
        r.body["message"].as_str().unwrap().contains("1000"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn stats_queries_are_bounded() {
    let app = app(memory_state());
    for q in [
        "/v1/stats?window=1s",
        "/v1/stats?window=29s",
        "/v1/stats?window=1h&window=90d",
    ] {
        let r = send(&app, get_auth(q)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text);
        assert_eq!(detail_fields(&r), ["window"], "{q}");
    }
    assert_eq!(
        send(&app, get_auth("/v1/stats?window=30s")).await.status,
        StatusCode::OK
    );

    // More groups than an answer holds: the largest are kept, the answer says so.
    let groups = keel_workload::stats::MAX_GROUPS + 10;
    let events: Vec<Value> = (0..groups)
        .map(|i| {
            event(
                &format!("g-{i}"),
                &format!("model-{i:05}"),
                "s",
                1.0,
                "ok",
                1,
            )
        })
        .collect();
    for chunk in events.chunks(1000) {
        assert_eq!(
            send(&app, post_events(chunk.to_vec())).await.status,
            StatusCode::OK
        );
    }
    let r = send(&app, get_auth("/v1/stats?group_by=model")).await;
    let stats: Stats = serde_json::from_value(r.body).unwrap();
    assert_eq!(stats.groups.len(), keel_workload::stats::MAX_GROUPS);
    assert!(stats.groups_truncated);
    assert_eq!(stats.total.count, groups as u64);
}

#[tokio::test]
async fn malformed_bodies_are_refused() {
    let app = app(memory_state());
    let req = |ct: &str, body: Body| {
        Request::post("/v1/traces")
            .header("authorization", bearer())
            .header("content-type", ct)
            .body(body)
            .unwrap()
    };
    let r = send(&app, req("application/json", Body::from("{not json"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "bad_request");
    let r = send(&app, req("text/plain", Body::from("{}"))).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // No Content-Type at all is refused too.
    let ok_body = json!({"events": [event("ct-1", "m", "s", 1.0, "ok", 0)]}).to_string();
    let r = send(
        &app,
        Request::post("/v1/traces")
            .header("authorization", bearer())
            .body(Body::from(ok_body.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    // Only gzip is decoded: any other encoding is refused, even on plain JSON.
    for encoding in ["br", "deflate", "gzip, gzip", "br, gzip", "x-unknown"] {
        let r = send(
            &app,
            Request::post("/v1/traces")
                .header("authorization", bearer())
                .header("content-type", "application/json")
                .header("content-encoding", encoding)
                .body(Body::from(ok_body.clone()))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{encoding}");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("Content-Encoding"),
            "{}",
            r.text
        );
    }
    let r = send(
        &app,
        Request::post("/v1/traces")
            .header("authorization", bearer())
            .header("content-type", "application/json; charset=utf-8")
            .header("content-encoding", "identity")
            .body(Body::from(ok_body))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let big = format!(
        "{{\"events\": [], \"pad\": \"{}\"}}",
        "x".repeat(MAX_BODY_BYTES)
    );
    let r = send(&app, req("application/json", Body::from(big))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.body["error"], "payload_too_large");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn post_gzip(body: Vec<u8>) -> Request<Body> {
    Request::post("/v1/traces")
        .header("authorization", bearer())
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn gzip_bodies_are_decoded_within_the_size_limit() {
    let app = app(memory_state());
    let batch = json!({"events": [event("gz-1", "m", "s", 1.0, "ok", 0)]}).to_string();
    let r = send(&app, post_gzip(gzip(batch.as_bytes()))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["stored"], 1);
    // A small body that inflates past the limit (a "zip bomb") is refused, not inflated.
    let bomb = gzip(&vec![b' '; 64 * MAX_BODY_BYTES]);
    assert!(bomb.len() < MAX_BODY_BYTES / 4);
    let r = send(&app, post_gzip(bomb)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert!(
        r.body["message"].as_str().unwrap().contains("decompressed"),
        "{}",
        r.text
    );
    // Not gzip at all.
    let r = send(&app, post_gzip(batch.into_bytes())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["message"], "the body is not valid gzip");
}

/// Issue 24, bug 6: every gzip member is inflated (within the same cap), so a batch split
/// over two members is stored whole and two batches in two members are refused rather than
/// half-stored; bytes after the last member are refused.
#[tokio::test]
async fn issue_24_multi_member_gzip_is_inflated_whole_or_refused() {
    let app = app(memory_state());
    let batch = json!({"events": [event("mm-1", "m", "s", 1.0, "ok", 0), event("mm-2", "m", "s", 1.0, "ok", 0)]})
        .to_string();
    let (a, b) = batch.split_at(batch.len() / 2);
    let mut split = gzip(a.as_bytes());
    split.extend(gzip(b.as_bytes()));
    let r = send(&app, post_gzip(split)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["stored"], 2);

    let other = json!({"events": [event("mm-3", "m", "s", 1.0, "ok", 0)]}).to_string();
    let mut two = gzip(other.as_bytes());
    two.extend(gzip(other.replace("mm-3", "mm-4").as_bytes()));
    let r = send(&app, post_gzip(two)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    let mut trailing = gzip(other.replace("mm-3", "mm-5").as_bytes());
    trailing.extend_from_slice(b"garbage");
    let r = send(&app, post_gzip(trailing)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // The cap holds across members.
    let half = gzip(&vec![b' '; MAX_BODY_BYTES / 2 + 1]);
    let r = send(&app, post_gzip([half.clone(), half].concat())).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let r = send(
        &app(memory_state()),
        Request::get("/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "not_found");
}

#[tokio::test]
async fn a_full_memory_store_answers_503_and_stores_nothing() {
    let app = app(state_with(Store::Memory(MemoryStore::new(
        2,
        Duration::from_secs(60),
    ))));
    let events = (0..3)
        .map(|i| event(&format!("f{i}"), "m", "s", 1.0, "ok", 0))
        .collect();
    let r = send(&app, post_events(events)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["error"], "store_full");
    assert_eq!(r.headers["retry-after"], "1");
}

/// Issue 24: a full in-memory store fails readiness, so traffic goes to replicas with room.
#[tokio::test]
async fn issue_24_a_full_memory_store_is_not_ready() {
    let app = app(state_with(Store::Memory(MemoryStore::new(
        2,
        Duration::from_secs(60),
    ))));
    let ready = Request::get("/ready").body(Body::empty()).unwrap();
    assert_eq!(send(&app, ready).await.status, StatusCode::OK);
    let events = (0..2)
        .map(|i| event(&format!("f{i}"), "m", "s", 1.0, "ok", 0))
        .collect();
    assert_eq!(send(&app, post_events(events)).await.status, StatusCode::OK);
    let ready = Request::get("/ready").body(Body::empty()).unwrap();
    let r = send(&app, ready).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let mut state = memory_state();
    state.cors = CorsOrigins::List(vec!["https://app.example.com".into()]);
    let app = app(state);
    let preflight = |origin: &str| {
        Request::options("/v1/stats")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&app, preflight("https://app.example.com")).await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let r = send(&app, preflight("https://evil.example.com")).await;
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    // Without CORS_ORIGINS no origin is allowed.
    let r = send(
        &self::app(memory_state()),
        preflight("https://app.example.com"),
    )
    .await;
    assert!(!r.headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status_and_events() {
    let state = memory_state();
    let api = app(state.clone());
    send(
        &api,
        post_events(vec![
            event("m1", "m", "s", 1.0, "ok", 0),
            event("m2", "m", "s", 1.0, "ok", 0),
        ]),
    )
    .await;
    send(&api, post_events(vec![event("m1", "m", "s", 1.0, "ok", 0)])).await;
    send(&api, Request::get("/v1/stats").body(Body::empty()).unwrap()).await;
    let r = send(
        &metrics_app(state),
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text;
    for line in [
        r#"http_requests_total{method="POST",route="/v1/traces",status="200"} 2"#,
        r#"http_requests_total{method="GET",route="/v1/stats",status="401"} 1"#,
        r#"http_request_duration_seconds_count{method="POST",route="/v1/traces",status="200"} 2"#,
        "ingested_events_total 2",
        "duplicate_events_total 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
}

// --- PostgreSQL -------------------------------------------------------------------------

async fn pg_state(url: &str) -> (AppState, PgStore) {
    let options = url.parse().expect("TEST_DATABASE_URL parses");
    let store = PgStore::connect(options, PoolSizes { max: 4, min: 1 })
        .await
        .expect("connect + migrate");
    (state_with(Store::Postgres(store.clone())), store)
}

fn assert_same_group(a: &GroupStats, b: &GroupStats) {
    assert_eq!(
        (
            &a.key,
            a.count,
            a.errors,
            a.prompt_tokens,
            a.completion_tokens
        ),
        (
            &b.key,
            b.count,
            b.errors,
            b.prompt_tokens,
            b.completion_tokens
        )
    );
    assert!((a.cost_usd - b.cost_usd).abs() < 1e-6);
    assert!((a.error_rate - b.error_rate).abs() < 1e-9);
    for (x, y) in [
        (a.latency_ms.p50, b.latency_ms.p50),
        (a.latency_ms.p95, b.latency_ms.p95),
        (a.latency_ms.p99, b.latency_ms.p99),
    ] {
        // `a` from PostgreSQL's rollup sketches, `b` exact.
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(
            (x - y).abs() <= keel_workload::sketch::RELATIVE_ERROR * y + 1e-9,
            "{x} is not within the sketch's error of {y}"
        );
    }
}

#[tokio::test]
async fn postgres_stores_once_and_aggregates_like_memory() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let (state, store) = pg_state(&db.url).await;
    // Migrations are idempotent: a second replica starting on the same database is fine.
    let (_, second) = pg_state(&db.url).await;
    second.close().await;
    let pg = app(state);
    let mem = app(memory_state());

    let mut events = sample();
    for i in 0..200 {
        let model = ["a", "b", "c"][i % 3];
        let status = if i % 7 == 0 { "error" } else { "ok" };
        events.push(event(
            &format!("bulk-{i}"),
            model,
            "svc",
            (i * 37 % 1000) as f64 + 0.5,
            status,
            (i % 50) as i64,
        ));
    }
    events[3]["attributes"] = json!({"region": "eu", "tags": ["x"]});
    for chunk in events.chunks(90) {
        for app in [&pg, &mem] {
            let r = send(app, post_events(chunk.to_vec())).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    }
    let r = send(&pg, post_events(events[..10].to_vec())).await;
    assert_eq!(r.body, json!({"stored": 0, "duplicates": 10}));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM traces")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, events.len() as i64);
    let attrs: String =
        sqlx::query_scalar("SELECT attributes::text FROM traces WHERE trace_id = 's4'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&attrs).unwrap(),
        json!({"region": "eu", "tags": ["x"]})
    );

    for q in [
        "/v1/stats?window=1h&group_by=model",
        "/v1/stats?window=1h&group_by=service",
        "/v1/stats?window=1d",
    ] {
        let a: Stats = serde_json::from_value(send(&pg, get_auth(q)).await.body).unwrap();
        let b: Stats = serde_json::from_value(send(&mem, get_auth(q)).await.body).unwrap();
        assert_same_group(&a.total, &b.total);
        assert_eq!(a.groups.len(), b.groups.len(), "{q}");
        for (x, y) in a.groups.iter().zip(&b.groups) {
            assert_same_group(x, y);
        }
    }
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn postgres_readiness_and_pool_metrics_follow_the_database() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let (state, store) = pg_state(&db.url).await;
    let api = app(state.clone());
    let r = send(&api, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (r.status, &r.body["database"], &r.body["store"]),
        (StatusCode::OK, &json!("healthy"), &json!("postgres"))
    );
    let m = send(
        &metrics_app(state),
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        m.text.contains(r#"db_pool_connections{kind="max"} 4"#),
        "{}",
        m.text
    );

    store.close().await;
    let r = send(&api, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["status"], "unhealthy");
    assert_eq!(r.body["database"], "unhealthy");
    let r = send(
        &api,
        post_events(vec![event("late", "m", "s", 1.0, "ok", 0)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["error"], "store_unavailable");
    // The liveness probe does not depend on the database.
    assert_eq!(
        send(&api, Request::get("/health").body(Body::empty()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    db.drop_db().await;
}

// --- Redis ------------------------------------------------------------------------------

/// A minimal in-process RESP server: `PING` answers `PONG`, anything else `OK`. Aborting the
/// returned task closes the listener and every connection, as a Redis that went away.
async fn fake_redis() -> (u16, tokio::task::JoinHandle<()>) {
    fake_redis_with(Default::default()).await
}

/// [`fake_redis`], which holds its answers while `frozen` is set (a Redis that hangs, then
/// recovers).
async fn fake_redis_with(
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    async fn serve(
        stream: tokio::net::TcpStream,
        frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut line = String::new();
        let number = |line: &str, prefix: char| {
            line.trim_end()
                .strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
        };
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let mut args = Vec::new();
            for _ in 0..number(&line, '*') {
                line.clear();
                r.read_line(&mut line).await?;
                let mut arg = vec![0; number(&line, '$') + 2];
                r.read_exact(&mut arg).await?;
                arg.truncate(arg.len() - 2);
                args.push(arg);
            }
            while frozen.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let ping = args
                .first()
                .is_some_and(|a| a.eq_ignore_ascii_case(b"PING"));
            w.write_all(if ping { b"+PONG\r\n" } else { b"+OK\r\n" })
                .await?;
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.spawn(serve(stream, frozen.clone()));
        }
    });
    (port, task)
}

#[tokio::test]
async fn readiness_reports_redis_but_does_not_fail_when_it_stops_answering() {
    let (port, server) = fake_redis().await;
    let cache = StatsCache::connect(
        &format!("redis://:a-password@127.0.0.1:{port}/0"),
        Duration::from_secs(60),
        "test:",
    )
    .await
    .expect("connect to the fake redis");
    let mut state = memory_state();
    state.cache = Some(cache);
    let api = app(state);
    let ready = || Request::get("/ready").body(Body::empty()).unwrap();

    let r = send(&api, ready()).await;
    assert_eq!(
        (r.status, &r.body["redis"]),
        (StatusCode::OK, &json!("healthy"))
    );

    // Redis goes away: its port is closed from now on.
    server.abort();
    let _ = server.await;
    let r = send(&api, ready()).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a cache failover must not mark the pod unready: {}",
        r.body
    );
    assert_eq!(r.body["status"], "healthy");
    assert_eq!(
        r.body["redis"], "unhealthy",
        "the cache's state is still reported"
    );
    assert!(!r.text.contains("a-password"), "{}", r.text);

    // A cache failure never fails a request: the store answers.
    let r = send(&api, get_auth("/v1/stats?window=1h")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Issue 24: a Redis that stops answering costs one call its timeouts, then the cache is
/// skipped (circuit open) so stats answer from the store at once; once the open period has
/// passed and Redis answers again, the cache is used again.
#[tokio::test]
async fn issue_24_a_frozen_redis_opens_the_circuit() {
    let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (port, _server) = fake_redis_with(frozen.clone()).await;
    let cache = StatsCache::connect(
        &format!("redis://127.0.0.1:{port}/0"),
        Duration::from_secs(60),
        "test:",
    )
    .await
    .expect("connect to the fake redis")
    .with_circuit_open_for(Duration::from_secs(2));
    let mut state = memory_state();
    state.cache = Some(cache);
    let api = app(state);
    let stats = || get_auth("/v1/stats?window=1h");
    assert_ne!(send(&api, stats()).await.headers["x-cache"], "off");

    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    let first = std::time::Instant::now();
    assert_eq!(send(&api, stats()).await.status, StatusCode::OK);
    assert!(
        first.elapsed() >= Duration::from_millis(400),
        "the first call waited for Redis"
    );
    let skipped = std::time::Instant::now();
    for _ in 0..5 {
        let r = send(&api, stats()).await;
        assert_eq!(
            (r.status, r.headers["x-cache"].to_str().unwrap()),
            (StatusCode::OK, "off")
        );
    }
    assert!(
        skipped.elapsed() < Duration::from_millis(400),
        "five calls with the circuit open took {:?}",
        skipped.elapsed()
    );

    frozen.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = send(&api, stats()).await;
    assert_ne!(
        r.headers["x-cache"], "off",
        "the circuit closes again once Redis answers"
    );
}

#[tokio::test]
async fn a_closed_redis_port_is_refused_at_start_without_leaking_the_password() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for scheme in ["redis", "rediss"] {
        let url = format!("{scheme}://:a-password@127.0.0.1:{port}/0");
        let started = std::time::Instant::now();
        let err = StatsCache::connect(&url, Duration::from_secs(60), "test:")
            .await
            .expect_err("nothing listens there");
        assert!(started.elapsed() < Duration::from_secs(10), "{url}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("a-password"), "{text}");
    }
}

#[tokio::test]
async fn redis_caches_stats_for_the_ttl() {
    let Some(url) = require_env("TEST_REDIS_URL") else {
        return;
    };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let cache = StatsCache::connect(&url, Duration::from_secs(60), &prefix)
        .await
        .expect("redis");
    let mut state = memory_state();
    state.cache = Some(cache);
    let api = app(state.clone());
    send(&api, post_events(vec![event("c1", "m", "s", 1.0, "ok", 0)])).await;

    let r = send(&api, get_auth("/v1/stats?window=1h")).await;
    assert_eq!(
        (
            r.headers["x-cache"].to_str().unwrap(),
            &r.body["total"]["count"]
        ),
        ("miss", &json!(1))
    );
    send(&api, post_events(vec![event("c2", "m", "s", 1.0, "ok", 0)])).await;
    let r = send(&api, get_auth("/v1/stats?window=1h")).await;
    assert_eq!(r.headers["x-cache"], "hit");
    assert_eq!(
        r.body["total"]["count"], 1,
        "a cached answer is served until the TTL passes"
    );
    // A different query is a different key.
    let r = send(&api, get_auth("/v1/stats?window=2h")).await;
    assert_eq!(
        (
            r.headers["x-cache"].to_str().unwrap(),
            &r.body["total"]["count"]
        ),
        ("miss", &json!(2))
    );

    let r = send(&api, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (r.status, &r.body["redis"]),
        (StatusCode::OK, &json!("healthy"))
    );
    let m = send(
        &metrics_app(state),
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        m.text.lines().any(|l| l == "cache_hits_total 1"),
        "{}",
        m.text
    );
    assert!(
        m.text.lines().any(|l| l == "cache_misses_total 2"),
        "{}",
        m.text
    );
}

// --- PostgreSQL under contention, least privilege and failure --------------------------

/// A tiny deterministic shuffle (xorshift), so the test needs no extra crate.
fn shuffled(mut items: Vec<usize>, seed: u64) -> Vec<usize> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.swap(i, (x % (i as u64 + 1)) as usize);
    }
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_batches_sharing_ids_do_not_deadlock() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let options = db.url.parse().expect("url");
    let store = PgStore::connect(options, PoolSizes { max: 48, min: 1 })
        .await
        .expect("connect");
    let api = app(state_with(Store::Postgres(store.clone())));
    // 40 batches of 200 ids drawn from 500, each in its own order, all at once.
    let mut tasks = Vec::new();
    let mut sent = std::collections::HashSet::new();
    for b in 0..40u64 {
        let ids: Vec<usize> = shuffled((0..500).collect(), b + 1)
            .into_iter()
            .take(200)
            .collect();
        sent.extend(ids.iter().copied());
        let events: Vec<Value> = ids
            .iter()
            .map(|i| event(&format!("dl-{i}"), "m", "s", 1.0, "ok", 1))
            .collect();
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            send(&api, post_events(events)).await
        }));
    }
    let mut stored = 0;
    for t in tasks {
        let r = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("a batch did not finish within 60 s")
            .expect("task");
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        stored += r.body["stored"].as_u64().unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM traces")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n as usize, sent.len());
    assert_eq!(
        stored as usize,
        sent.len(),
        "each id is counted stored exactly once"
    );
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn postgres_refuses_what_it_cannot_hold_with_a_400_and_caps_groups_like_memory() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let (state, store) = pg_state(&db.url).await;
    let pg = app(state);
    let mem = app(memory_state());
    let mut bad = event("pg-nul", "m", "s", 1.0, "ok", 0);
    bad["model"] = json!("gpt\u{0}");
    bad["attributes"] = json!({"k\u{0}": "v"});
    let r = send(&pg, post_events(vec![bad])).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "not a 503 retry-later: {}",
        r.text
    );
    assert_eq!(
        detail_fields(&r),
        ["events[0].model", "events[0].attributes"]
    );

    // More groups than an answer holds, with names whose order depends on the collation.
    let groups = keel_workload::stats::MAX_GROUPS + 10;
    let events: Vec<Value> = (0..groups)
        .map(|i| {
            let model = if i % 2 == 0 {
                format!("a{i:05}")
            } else {
                format!("B{i:05}")
            };
            event(&format!("pg-g-{i}"), &model, "s", 1.0, "ok", 1)
        })
        .collect();
    for chunk in events.chunks(1000) {
        for app in [&pg, &mem] {
            assert_eq!(
                send(app, post_events(chunk.to_vec())).await.status,
                StatusCode::OK
            );
        }
    }
    let a: Stats =
        serde_json::from_value(send(&pg, get_auth("/v1/stats?group_by=model")).await.body).unwrap();
    let b: Stats =
        serde_json::from_value(send(&mem, get_auth("/v1/stats?group_by=model")).await.body)
            .unwrap();
    assert_eq!(a.groups.len(), keel_workload::stats::MAX_GROUPS);
    assert!(a.groups_truncated && b.groups_truncated);
    assert_eq!(a.total.count, groups as u64);
    let keys = |s: &Stats| s.groups.iter().map(|g| g.key.clone()).collect::<Vec<_>>();
    assert_eq!(
        keys(&a),
        keys(&b),
        "the same groups are kept in both stores"
    );
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn postgres_stats_cannot_starve_ingest_or_readiness() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let options: sqlx::postgres::PgConnectOptions = db.url.parse().expect("url");
    let sizes = PoolSizes { max: 4, min: 1 };
    let timeouts = PgTimeouts {
        acquire: Duration::from_millis(500),
        ..PgTimeouts::default()
    };
    let store = PgStore::connect_with(options, sizes, timeouts)
        .await
        .expect("connect");
    let api = app(state_with(Store::Postgres(store.clone())));

    // Each pool's sessions carry their statement timeout.
    let show = |pool: &sqlx::PgPool| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SHOW statement_timeout")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(show(store.pool()).await, "5s");
    assert_eq!(show(store.stats_pool()).await, "10s");

    // Every stats connection busy (as with slow 90-day queries): ingest and readiness still
    // answer, and stats answer 503 after the acquire bound rather than queueing forever.
    let mut held = Vec::new();
    for _ in 0..sizes.stats_max() {
        held.push(
            store
                .stats_pool()
                .acquire()
                .await
                .expect("stats connection"),
        );
    }
    let r = send(
        &api,
        post_events(vec![event("busy-1", "m", "s", 1.0, "ok", 0)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = send(&api, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = tokio::time::timeout(Duration::from_secs(20), send(&api, get_auth("/v1/stats")))
        .await
        .expect("stats are bounded");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    drop(held);
    let r = send(&api, get_auth("/v1/stats")).await;
    assert_eq!(
        (r.status, &r.body["total"]["count"]),
        (StatusCode::OK, &json!(1))
    );
    store.close().await;
    db.drop_db().await;
}

/// A TCP proxy to `upstream` that can be frozen: while frozen it forwards nothing, as a
/// PostgreSQL that stopped (SIGSTOP) or a network partition that drops packets.
async fn freezable_proxy(upstream: String) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pipe(
        mut r: tokio::net::tcp::OwnedReadHalf,
        mut w: tokio::net::tcp::OwnedWriteHalf,
        frozen: std::sync::Arc<AtomicBool>,
    ) {
        let mut buf = vec![0u8; 64 * 1024];
        // Bounded: at most a minute of 20 ms steps, then the pipe gives up.
        for _ in 0..3000 {
            if frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            match tokio::time::timeout(Duration::from_millis(20), r.read(&mut buf)).await {
                Err(_) => continue,
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => {
                    if w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frozen = std::sync::Arc::new(AtomicBool::new(false));
    let f = frozen.clone();
    tokio::spawn(async move {
        for _ in 0..100 {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                return;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, f.clone()));
            tokio::spawn(pipe(sr, cw, f.clone()));
        }
    });
    (port, frozen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_frozen_gets_503s_within_a_bound_not_hung_requests() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let direct: sqlx::postgres::PgConnectOptions = db.url.parse().expect("url");
    let upstream = format!("{}:{}", direct.get_host(), direct.get_port());
    let (port, frozen) = freezable_proxy(upstream).await;
    let options = direct.host("127.0.0.1").port(port);
    let options_again = options.clone();
    let timeouts = PgTimeouts {
        acquire: Duration::from_millis(500),
        insert_statement: Duration::from_millis(500),
        stats_statement: Duration::from_millis(500),
    };
    let store = PgStore::connect_with(options, PoolSizes { max: 4, min: 1 }, timeouts)
        .await
        .expect("connect through the proxy");
    let api = app(state_with(Store::Postgres(store.clone())));
    let r = send(
        &api,
        post_events(vec![event("fz-1", "m", "s", 1.0, "ok", 0)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    let bounded = |req| {
        let api = api.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(15), send(&api, req))
                .await
                .expect("the request hung with the database frozen")
        }
    };
    let r = bounded(post_events(vec![event("fz-2", "m", "s", 1.0, "ok", 0)])).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["error"], "store_unavailable");
    let r = bounded(get_auth("/v1/stats")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    let r = bounded(Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["database"], "unhealthy");

    // Starting against a frozen database fails within the connection bound, too.
    let started = tokio::time::timeout(
        Duration::from_secs(15),
        PgStore::connect_with(options_again, PoolSizes { max: 2, min: 1 }, timeouts),
    )
    .await
    .expect("connecting to a frozen database hung");
    assert!(started.is_err());

    frozen.store(false, std::sync::atomic::Ordering::SeqCst);
    db.drop_db().await;
}

#[tokio::test]
async fn postgres_migrations_run_as_a_role_owning_only_its_schema() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let role = format!(
        "wl_app_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let owner: sqlx::postgres::PgConnectOptions = db.url.parse().expect("url");
    let mut conn = sqlx::ConnectOptions::connect(&owner).await.expect("owner");
    for sql in [
        format!("CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
        format!("CREATE SCHEMA {role} AUTHORIZATION {role}"),
        format!(
            "ALTER ROLE {role} IN DATABASE {} SET search_path = {role}",
            db.name
        ),
        "REVOKE ALL ON SCHEMA public FROM PUBLIC".to_owned(),
        format!(
            "REVOKE CREATE, TEMPORARY ON DATABASE {} FROM PUBLIC",
            db.name
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let app_options = owner.clone().username(&role);
    let store = PgStore::connect(app_options.clone(), PoolSizes { max: 4, min: 1 })
        .await
        .expect("migrations run as the least-privilege role");
    // A second start (a rolling update) finds the migrations applied.
    PgStore::connect(app_options, PoolSizes { max: 2, min: 0 })
        .await
        .expect("second start")
        .close()
        .await;
    let api = app(state_with(Store::Postgres(store.clone())));
    let r = send(
        &api,
        post_events(vec![event("lp-1", "m", "s", 1.0, "ok", 0)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = send(&api, get_auth("/v1/stats")).await;
    assert_eq!(r.body["total"]["count"], 1);
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT schemaname::text FROM pg_tables WHERE tablename IN ('traces', '_sqlx_migrations')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        schemas,
        std::slice::from_ref(&role),
        "everything lives in the role's own schema"
    );
    store.close().await;
    let _ = sqlx::Connection::close(conn).await;
    db.drop_db().await;
    let mut admin_conn =
        sqlx::ConnectOptions::connect(&admin.parse::<sqlx::postgres::PgConnectOptions>().unwrap())
            .await
            .expect("admin");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
        .execute(&mut admin_conn)
        .await;
}
