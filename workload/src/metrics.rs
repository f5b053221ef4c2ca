//! Prometheus metrics, served as text on the metrics port: request counts and latency
//! histograms per route and status, ingested and duplicate events, store errors, cache hits
//! and misses, database pool usage, and connections shed to make room.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use keel_workload_contract as contract;

use crate::store::PoolUsage;

/// Labels of the HTTP metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Request method: a standard method name, or `other` (bounded, so clients cannot grow
    /// the label set).
    pub method: &'static str,
    /// Matched route pattern, or `unmatched`.
    pub route: &'static str,
    /// Response status code.
    pub status: u16,
}

/// A label naming an operation or state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The operation (`insert`, `stats`, ...) or state (`idle`, `in_use`, `max`).
    pub kind: &'static str,
}

/// The label of [`contract::JWT_VERIFIED`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabel {
    /// Which secret verified the token: `current` or `previous`.
    pub key: &'static str,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(contract::LATENCY_BUCKETS_SECONDS.iter().copied())
}

/// Every metric, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `http_requests_total{method,route,status}`.
    pub http_requests: Family<HttpLabels, Counter>,
    /// `http_request_duration_seconds{method,route,status}`.
    pub http_duration: HistogramFamily,
    /// `ingested_events_total`: events stored.
    pub ingested_events: Counter,
    /// `duplicate_events_total`: events skipped as duplicates.
    pub duplicate_events: Counter,
    /// `store_errors_total{kind}`.
    pub store_errors: Family<KindLabel, Counter>,
    /// `cache_hits_total`.
    pub cache_hits: Counter,
    /// `cache_misses_total`.
    pub cache_misses: Counter,
    /// `cache_errors_total`.
    pub cache_errors: Counter,
    /// `db_pool_connections{kind="idle"|"in_use"|"max"}`.
    pub db_pool: Family<KindLabel, Gauge>,
    /// `connections_shed_total{kind="unfinished"|"idle"}`: connections closed to make room
    /// for new ones, by [`crate::connections::Shed`].
    pub connections_shed: Family<KindLabel, Counter>,
    /// `jwt_verified_total{key="current"|"previous"}`: tokens verified, by secret.
    pub jwt_verified: Family<KeyLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = HistogramFamily::new_with_constructor(latency_histogram);
        let ingested_events = Counter::default();
        let duplicate_events = Counter::default();
        let store_errors = Family::<KindLabel, Counter>::default();
        let cache_hits = Counter::default();
        let cache_misses = Counter::default();
        let cache_errors = Counter::default();
        let db_pool = Family::<KindLabel, Gauge>::default();
        let connections_shed = Family::<KindLabel, Counter>::default();
        let jwt_verified = Family::<KeyLabel, Counter>::default();
        registry.register(
            contract::HTTP_REQUESTS.registered,
            "HTTP requests by method, route and status",
            http_requests.clone(),
        );
        registry.register(
            contract::HTTP_REQUEST_DURATION.registered,
            "HTTP request latency",
            http_duration.clone(),
        );
        registry.register(
            "ingested_events",
            "Trace events stored",
            ingested_events.clone(),
        );
        registry.register(
            "duplicate_events",
            "Trace events skipped as duplicates",
            duplicate_events.clone(),
        );
        registry.register(
            "store_errors",
            "Store failures by operation",
            store_errors.clone(),
        );
        registry.register("cache_hits", "Stats cache hits", cache_hits.clone());
        registry.register("cache_misses", "Stats cache misses", cache_misses.clone());
        registry.register(
            "cache_errors",
            "Stats cache (Redis) failures",
            cache_errors.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            db_pool.clone(),
        );
        registry.register(
            "connections_shed",
            "Connections closed to make room for new ones, by what they were doing",
            connections_shed.clone(),
        );
        registry.register(
            contract::JWT_VERIFIED.registered,
            "Bearer tokens verified, by the secret that verified them (current or previous)",
            jwt_verified.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_duration,
            ingested_events,
            duplicate_events,
            store_errors,
            cache_hits,
            cache_misses,
            cache_errors,
            db_pool,
            connections_shed,
            jwt_verified,
        }
    }

    /// Records one finished request.
    pub fn observe_request(&self, labels: HttpLabels, seconds: f64) {
        self.http_duration.get_or_create(&labels).observe(seconds);
        self.http_requests.get_or_create(&labels).inc();
    }

    /// Encodes every metric as Prometheus/OpenMetrics text, after refreshing pool gauges.
    pub fn encode(&self, pool: Option<PoolUsage>) -> String {
        if let Some(p) = pool {
            let in_use = p.open.saturating_sub(p.idle);
            self.db_pool
                .get_or_create(&KindLabel { kind: "idle" })
                .set(i64::from(p.idle));
            self.db_pool
                .get_or_create(&KindLabel { kind: "in_use" })
                .set(i64::from(in_use));
            self.db_pool
                .get_or_create(&KindLabel { kind: "max" })
                .set(i64::from(p.max));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keel's rollout analysis and SLO rules select these series by the contract's names;
    /// this fails when the exposition drifts from them.
    #[test]
    fn exposition_uses_the_contract_names() {
        let metrics = Metrics::new();
        let labels = HttpLabels {
            method: "GET",
            route: "/v1/stats",
            status: 503,
        };
        metrics.observe_request(labels, 0.3);
        let text = metrics.encode(None);
        let status = contract::STATUS_LABEL;
        let route = contract::ROUTE_LABEL;
        let counter = format!(
            "{}{{method=\"GET\",{route}=\"/v1/stats\",{status}=\"503\"}} 1",
            contract::HTTP_REQUESTS.exposed
        );
        assert!(text.contains(&counter), "{counter} missing from\n{text}");
        let bucket = format!(
            "{}_bucket{{le=\"0.5\",method=\"GET\",{route}=\"/v1/stats\",{status}=\"503\"}} 1",
            contract::HTTP_REQUEST_DURATION.exposed
        );
        assert!(text.contains(&bucket), "{bucket} missing from\n{text}");
    }

    /// Operators watch the previous secret's series to know when a rotation is over.
    #[test]
    fn verified_tokens_are_counted_by_key_under_the_contract_name() {
        let metrics = Metrics::new();
        for key in ["current", "previous", "previous"] {
            metrics.jwt_verified.get_or_create(&KeyLabel { key }).inc();
        }
        let text = metrics.encode(None);
        for (key, n) in [("current", 1), ("previous", 2)] {
            let line = format!(
                "{}{{{}=\"{key}\"}} {n}",
                contract::JWT_VERIFIED.exposed,
                contract::JWT_KEY_LABEL
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }
}
