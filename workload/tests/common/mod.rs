//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod private_pg;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use keel_workload::api::AppState;
use keel_workload::auth::{Verifier, mint_token};
use keel_workload::config::CorsOrigins;
use keel_workload::metrics::Metrics;
use keel_workload::store::{MemoryStore, Store};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tower::ServiceExt;

/// The signing secret every test uses.
pub const SECRET: &str = "test-secret-0123456789-test-secret!";

/// A valid bearer header value.
pub fn bearer() -> String {
    format!("Bearer {}", mint_token(SECRET, "tests", 600))
}

/// State over `store`, with authentication and no cache.
pub fn state_with(store: Store) -> AppState {
    AppState {
        store: Arc::new(store),
        cache: None,
        metrics: Arc::new(Metrics::new()),
        verifier: Some(Verifier::new(SECRET)),
        cors: CorsOrigins::None,
        draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        body_read_timeout: keel_workload::api::BODY_READ_TIMEOUT,
        body_budget: keel_workload::api::BodyBudget::default(),
    }
}

/// State over a fresh in-memory store.
pub fn memory_state() -> AppState {
    state_with(Store::Memory(MemoryStore::new(
        100_000,
        std::time::Duration::from_secs(3600),
    )))
}

/// One event, `minutes_ago` before now.
pub fn event(
    id: &str,
    model: &str,
    service: &str,
    latency_ms: f64,
    status: &str,
    minutes_ago: i64,
) -> Value {
    json!({
        "trace_id": id,
        "timestamp": (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339(),
        "service": service,
        "model": model,
        "latency_ms": latency_ms,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.25,
        "status": status,
    })
}

/// A response, with its body as JSON (or a string, when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Sends one request through `app` in process.
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app
        .clone()
        .oneshot(req)
        .await
        .expect("router is infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::String(text.clone()));
    Reply {
        status,
        headers,
        body,
        text,
    }
}

/// An authenticated `POST /v1/traces` of `events`.
pub fn post_events(events: Vec<Value>) -> Request<Body> {
    Request::post("/v1/traces")
        .header("authorization", bearer())
        .header("content-type", "application/json")
        .body(Body::from(json!({ "events": events }).to_string()))
        .expect("request")
}

/// An authenticated GET.
pub fn get_auth(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", bearer())
        .body(Body::empty())
        .expect("request")
}

/// The value of `var`, or `None` after printing why the test is skipped. With `CI=true`
/// a missing server is a failure, not a skip.
pub fn require_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set but CI=true: start the servers with \
                 `eval \"$(bash workload/scripts/ci-services.sh)\"` before the tests"
            );
            eprintln!(
                "SKIPPED: {var} is not set; run `eval \"$(bash workload/scripts/ci-services.sh)\"` to test against a real server"
            );
            None
        }
    }
}

/// A database created for one test, dropped by [`TestDb::drop_db`].
pub struct TestDb {
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl TestDb {
    /// Creates an empty database next to the one `admin_url` names.
    pub async fn create(admin_url: &str) -> TestDb {
        let name = format!("wl_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin_url)
            .await
            .expect("connecting to TEST_DATABASE_URL");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url, String::new()),
        };
        let (server, _) = base
            .rsplit_once('/')
            .expect("TEST_DATABASE_URL names a database");
        TestDb {
            url: format!("{server}/{name}{query}"),
            name,
            admin_url: admin_url.to_owned(),
        }
    }

    /// Drops the database.
    pub async fn drop_db(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
