//! The HTTP API: [`app`] builds the router on the API port (ingest, stats, probes) and
//! [`metrics_app`] the one on the metrics port. Both are plain [`Router`]s, tested in
//! process with `oneshot`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::{AuthError, Verifier};
use crate::cache::{REDIS_TIMEOUT, StatsCache};
use crate::config::CorsOrigins;
use crate::contract;
use crate::event::{self, BatchError, FieldError};
use crate::metrics::{HttpLabels, KeyLabel, KindLabel, Metrics};
use crate::stats::StatsQuery;
use crate::store::{Store, StoreError};

/// Route of the ingest endpoint.
pub const TRACES_PATH: &str = "/v1/traces";
/// Route of the stats endpoint.
pub const STATS_PATH: &str = "/v1/stats";
/// Response header saying whether stats came from the cache: `hit`, `miss` or `off`.
pub const CACHE_HEADER: &str = "x-cache";
/// Request/response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id kept from a request (visible ASCII only); others are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;
/// Time allowed to receive a request body once the handler reads it.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The event store.
    pub store: Arc<Store>,
    /// The stats cache, when Redis is configured.
    pub cache: Option<StatsCache>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Token verifier; `None` only in development mode (no authentication).
    pub verifier: Option<Verifier>,
    /// Allowed CORS origins.
    pub cors: CorsOrigins,
    /// Set once shutdown begins: readiness then answers 503.
    pub draining: Arc<AtomicBool>,
    /// Time allowed to receive a request body ([`BODY_READ_TIMEOUT`] in production).
    pub body_read_timeout: Duration,
    /// Bytes of request bodies held at once, across every connection.
    pub body_budget: BodyBudget,
}

/// [`BodyBudget`]'s size by default: [`contract::BODY_BUDGET_PERCENT`] of the container's
/// memory limit ([`contract::MEMORY_LIMIT_BYTES`]), 256 MiB.
pub const DEFAULT_BODY_BUDGET_BYTES: usize =
    (contract::MEMORY_LIMIT_BYTES / 100 * contract::BODY_BUDGET_PERCENT) as usize;

/// The smallest [`BodyBudget`]: one largest gzip body and its inflated copy.
pub const MIN_BODY_BUDGET_BYTES: usize = 2 * event::MAX_BODY_BYTES;

/// The bytes request bodies may take at once, across every connection: each ingest request
/// reserves its body's size before reading it (the declared `Content-Length`, or
/// [`event::MAX_BODY_BYTES`] when the body is chunked, plus that much again for a gzip
/// body's inflated copy) and gives it back when answered. A request that finds the budget
/// spent is answered 503 at once, so slow bodies cannot grow the process's memory.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `bytes` (at least [`MIN_BODY_BUDGET_BYTES`]).
    pub fn new(bytes: usize) -> Self {
        let bytes = bytes.clamp(MIN_BODY_BUDGET_BYTES, Semaphore::MAX_PERMITS);
        BodyBudget {
            bytes: Arc::new(Semaphore::new(bytes)),
        }
    }

    /// Reserves `bytes` until the returned permit is dropped, or `None` if they are not
    /// available now.
    fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(bytes).ok()?;
        self.bytes.clone().try_acquire_many_owned(n).ok()
    }
}

impl Default for BodyBudget {
    fn default() -> Self {
        BodyBudget::new(DEFAULT_BODY_BUDGET_BYTES)
    }
}

/// A request that could not be served, as a JSON error body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Invalid fields (400).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Malformed JSON or query string (400).
    #[error("{0}")]
    BadRequest(String),
    /// Body or batch above the limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Not JSON, or a content encoding the service does not decode (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body did not arrive in time (408).
    #[error("the request body did not arrive within {0:?}")]
    RequestTimeout(Duration),
    /// Missing or bad token (401).
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// The store failed (503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request bodies in flight already take the whole [`BodyBudget`] (503).
    #[error("too many request bodies are in flight; retry later")]
    Busy,
    /// No such route (404).
    #[error("no route for this path")]
    NotFound,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Store(StoreError::Full { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_full")
            }
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        };
        let message = match &self {
            // Driver errors go to the log, not to the caller.
            ApiError::Store(e @ StoreError::Full { .. }) => e.to_string(),
            ApiError::Store(e) => {
                tracing::error!(error = %e, "store failure");
                "the event store is unavailable; retry later".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({ "error": code, "message": message });
        if let ApiError::Validation(details) = &self {
            body["details"] = json!(details);
        }
        let mut response = (status, Json(body)).into_response();
        match self {
            ApiError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Store(_) | ApiError::Busy => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// The answer to an accepted batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IngestResponse {
    /// Events stored by this request.
    pub stored: u64,
    /// Events skipped because their trace id was already stored.
    pub duplicates: u64,
}

/// The API router: `POST /v1/traces`, `GET /v1/stats` (JWT), the liveness and readiness
/// probes, with request ids, security headers, CORS, access logs and request metrics.
pub fn app(state: AppState) -> Router {
    let v1 = Router::new()
        .route(TRACES_PATH, post(ingest))
        .route(STATS_PATH, get(stats))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_jwt));
    let router = Router::new()
        .route(contract::LIVENESS_PATH, get(health))
        .route(contract::READINESS_PATH, get(ready))
        .merge(v1)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(event::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .layer(cors_layer(&state.cors))
        .with_state(state);
    common_layers(router)
}

/// The metrics router: `GET /metrics`, with the same request ids, security headers and
/// access logs as the API.
pub fn metrics_app(state: AppState) -> Router {
    let router = Router::new()
        .route(contract::METRICS_PATH, get(metrics))
        .fallback(not_found)
        .with_state(state);
    common_layers(router)
}

/// Request ids (kept from the request when short and visible ASCII), access logs and the
/// security headers, on every response of both routers.
fn common_layers(router: Router) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(bound_request_id))
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request<Body>| {
                        let id = req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
                        tracing::info_span!("request", method = %method_label(req.method()), path = %req.uri().path(), request_id = %id)
                    })
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_XSS_PROTECTION,
                HeaderValue::from_static("1; mode=block"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            )),
    )
}

/// Drops a request id that is too long, repeated, or not visible ASCII, so a fresh one is
/// made instead of echoing it.
async fn bound_request_id(mut req: Request, next: Next) -> Response {
    let ids = req.headers().get_all(REQUEST_ID_HEADER);
    let mut n = 0;
    let mut ok = true;
    for v in ids {
        n += 1;
        ok &= !v.is_empty()
            && v.len() <= MAX_REQUEST_ID_LEN
            && v.as_bytes().iter().all(u8::is_ascii_graphic);
    }
    if n > 1 || !ok {
        req.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(req).await
}

/// The method as a metrics/log label: one of the standard methods, or `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The matched route as a metrics label: one of the service's routes, or `unmatched`.
fn route_label(path: Option<&MatchedPath>) -> &'static str {
    match path.map(MatchedPath::as_str) {
        Some(TRACES_PATH) => TRACES_PATH,
        Some(STATS_PATH) => STATS_PATH,
        Some(contract::LIVENESS_PATH) => contract::LIVENESS_PATH,
        Some(contract::READINESS_PATH) => contract::READINESS_PATH,
        _ => "unmatched",
    }
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([HeaderName::from_static("x-request-id")]);
    match origins {
        // No origin is allowed: browsers on other origins are refused.
        CorsOrigins::None => CorsLayer::new(),
        CorsOrigins::Any => base.allow_origin(tower_http::cors::Any),
        CorsOrigins::List(list) => base.allow_origin(AllowOrigin::list(
            list.iter().filter_map(|o| HeaderValue::from_str(o).ok()),
        )),
    }
}

async fn require_jwt(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(verifier) = &state.verifier {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match verifier.verify_header_key(header) {
            Ok((_, used)) => {
                state
                    .metrics
                    .jwt_verified
                    .get_or_create(&KeyLabel { key: used.label() })
                    .inc();
            }
            Err(e) => return ApiError::Unauthorized(e).into_response(),
        }
    }
    next.run(req).await
}

async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route_label(req.extensions().get::<MatchedPath>());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let labels = HttpLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state
        .metrics
        .observe_request(labels, start.elapsed().as_secs_f64());
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "healthy", "timestamp": Utc::now() }))
}

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let draining = state.draining.load(Ordering::SeqCst);
    let cache = async {
        match &state.cache {
            None => "disabled",
            Some(cache) => match tokio::time::timeout(REDIS_TIMEOUT, cache.ping()).await {
                Ok(Ok(())) => "healthy",
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "readiness: redis unhealthy (reported, not failing readiness)");
                    "unhealthy"
                }
                Err(_) => {
                    tracing::warn!(
                        "readiness: redis did not answer in time (reported, not failing readiness)"
                    );
                    "unhealthy"
                }
            },
        }
    };
    // Both checks are bounded (the store's by PING_TIMEOUT) and run together.
    let (store, redis) = tokio::join!(state.store.ping(), cache);
    let store_ok = match store {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unhealthy");
            state
                .metrics
                .store_errors
                .get_or_create(&KindLabel { kind: "ping" })
                .inc();
            false
        }
    };
    let healthy = store_ok && !draining;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "store": state.store.kind(),
        "draining": draining,
        "redis": redis,
        "timestamp": Utc::now(),
    });
    if let Store::Postgres(_) = state.store.as_ref() {
        body["database"] = json!(if store_ok { "healthy" } else { "unhealthy" });
    }
    (status, Json(body))
}

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

/// Checks the body is JSON (`Content-Type: application/json`) in an encoding the service
/// decodes: none (`identity`) or one `gzip`; anything else is a 415.
fn check_content_headers(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let mut encoding = Encoding::Identity;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let value = value.to_str().unwrap_or("?");
        for coding in value.split(',').map(str::trim) {
            if coding.eq_ignore_ascii_case("identity") {
                continue;
            }
            let gzip = coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip");
            if !gzip || encoding == Encoding::Gzip {
                let shown: String = coding.chars().take(32).collect();
                return Err(ApiError::UnsupportedMediaType(format!(
                    "Content-Encoding `{shown}` is not supported; send the body uncompressed or gzip-compressed once"
                )));
            }
            encoding = Encoding::Gzip;
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match content_type {
        Some(ct) if ct.eq_ignore_ascii_case("application/json") => Ok(encoding),
        _ => Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json".to_owned(),
        )),
    }
}

/// Inflates a gzip body, every member of it (RFC 1952 allows several, concatenated),
/// refusing it (413) as soon as all of them together would exceed [`event::MAX_BODY_BYTES`]
/// inflated, so a small "zip bomb" costs at most that much; bytes after the last member
/// that do not start another are a 400.
fn gunzip(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    use std::io::Read as _;
    let limit = event::MAX_BODY_BYTES as u64;
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(event::MAX_BODY_BYTES));
    flate2::read::MultiGzDecoder::new(body)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|_| ApiError::BadRequest("the body is not valid gzip".to_owned()))?;
    if out.len() as u64 > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "request body exceeds {} bytes once decompressed",
            event::MAX_BODY_BYTES
        )));
    }
    Ok(out)
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "request body exceeds {} bytes",
        event::MAX_BODY_BYTES
    ))
}

/// The body's declared `Content-Length`, if any; above [`event::MAX_BODY_BYTES`] a 413.
fn declared_length(headers: &HeaderMap) -> Result<Option<usize>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > event::MAX_BODY_BYTES as u64 => Err(too_large()),
        // At most MAX_BODY_BYTES, so it fits.
        Some(n) => Ok(Some(n as usize)),
        None => Ok(None),
    }
}

/// Reserves the body's bytes in the state's [`BodyBudget`]: as declared (the largest body
/// when chunked), plus the largest body again for a gzip body's inflated copy.
fn reserve_body(
    state: &AppState,
    declared: Option<usize>,
    encoding: Encoding,
) -> Result<OwnedSemaphorePermit, ApiError> {
    let received = declared.unwrap_or(event::MAX_BODY_BYTES);
    let inflated = match encoding {
        Encoding::Identity => 0,
        Encoding::Gzip => event::MAX_BODY_BYTES,
    };
    state
        .body_budget
        .reserve(received + inflated)
        .ok_or(ApiError::Busy)
}

/// Reads the body, at most [`event::MAX_BODY_BYTES`] and within the state's body timeout.
async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limited = Limited::new(body, event::MAX_BODY_BYTES);
    match tokio::time::timeout(state.body_read_timeout, limited.collect()).await {
        Err(_) => Err(ApiError::RequestTimeout(state.body_read_timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err(ApiError::BadRequest(
            "the request body could not be read".to_owned(),
        )),
    }
}

async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let encoding = check_content_headers(&headers)?;
    let declared = declared_length(&headers)?;
    // Held until the answer: the body, its inflated copy and the parsed batch live as long.
    let _reserved = reserve_body(&state, declared, encoding)?;
    let body = read_body(&state, body).await?;
    let inflated;
    let body: &[u8] = match encoding {
        Encoding::Identity => &body,
        Encoding::Gzip => {
            inflated = gunzip(&body)?;
            &inflated
        }
    };
    let events = event::parse_batch(body).map_err(|e| match e {
        BatchError::InvalidJson(msg) => {
            ApiError::BadRequest(format!("body is not valid JSON: {msg}"))
        }
        e @ BatchError::TooMany(_) => ApiError::PayloadTooLarge(e.to_string()),
        BatchError::Invalid(fields) => ApiError::Validation(fields),
    })?;
    let outcome = state.store.insert(events).await.inspect_err(|_| {
        state
            .metrics
            .store_errors
            .get_or_create(&KindLabel { kind: "insert" })
            .inc();
    })?;
    state.metrics.ingested_events.inc_by(outcome.inserted);
    state.metrics.duplicate_events.inc_by(outcome.duplicates);
    Ok(Json(IngestResponse {
        stored: outcome.inserted,
        duplicates: outcome.duplicates,
    }))
}

async fn stats(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let query = StatsQuery::parse(&params, Utc::now()).map_err(ApiError::Validation)?;
    let key = query.cache_key();
    let mut cache_state = "off";
    if let Some(cache) = &state.cache {
        match cache.get(&key).await {
            Ok(Some(hit)) => {
                state.metrics.cache_hits.inc();
                return Ok(json_response(hit, "hit"));
            }
            Ok(None) => {
                state.metrics.cache_misses.inc();
                cache_state = "miss";
            }
            Err(e) if e.is_circuit_open() => {
                tracing::debug!("stats cache skipped (circuit open); using the store");
            }
            Err(e) => {
                state.metrics.cache_errors.inc();
                tracing::warn!(error = %e, "stats cache read failed; using the store; skipping it for a few seconds");
            }
        }
    }
    let stats = state.store.stats(&query).await.inspect_err(|_| {
        state
            .metrics
            .store_errors
            .get_or_create(&KindLabel { kind: "stats" })
            .inc();
    })?;
    let body = serde_json::to_string(&stats).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(cache) = &state.cache
        && let Err(e) = cache.set(&key, &body).await
        && !e.is_circuit_open()
    {
        state.metrics.cache_errors.inc();
        tracing::warn!(error = %e, "stats cache write failed");
    }
    Ok(json_response(body, cache_state))
}

fn json_response(body: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (HeaderName::from_static(CACHE_HEADER), cache),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.encode(state.store.pool_usage());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
