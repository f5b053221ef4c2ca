//! The `ServiceMonitor` custom resource (prometheus-operator, `monitoring.coreos.com/v1`)
//! scraping the Service's `metrics` port.
//!
//! See <https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.ServiceMonitor>.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;

use super::construct::Ctx;
use super::deployment::METRICS_PORT_NAME;
use super::{K8sError, Object, Rank};

/// `ServiceMonitor` (monitoring.coreos.com/v1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitor {
    /// Always `monitoring.coreos.com/v1`.
    pub api_version: &'static str,
    /// Always `ServiceMonitor`.
    pub kind: &'static str,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Which Services to scrape and how.
    pub spec: ServiceMonitorSpec,
}

/// `ServiceMonitor.spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Services whose labels match.
    pub selector: LabelSelector,
    /// Namespaces searched for those Services.
    pub namespace_selector: NamespaceSelector,
    /// Scrape endpoints (Service ports).
    pub endpoints: Vec<Endpoint>,
}

/// `ServiceMonitor.spec.namespaceSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Namespace names.
    pub match_names: Vec<String>,
}

/// `ServiceMonitor.spec.endpoints[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Name of the Service port.
    pub port: String,
    /// HTTP path of the metrics.
    pub path: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Scrape interval, e.g. `30s`.
    pub interval: String,
    /// Scrape timeout, e.g. `10s`; at most the interval.
    pub scrape_timeout: String,
}

/// Prometheus scraping of the `metrics` port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringProps {
    /// Metrics path. Default: `/metrics`.
    pub path: String,
    /// Scrape interval in seconds. Default: `30`.
    pub interval_seconds: u32,
    /// Scrape timeout in seconds, at most the interval. Default: `10`.
    pub scrape_timeout_seconds: u32,
    /// Extra labels on the ServiceMonitor, e.g. `release: kube-prometheus-stack` for the
    /// Prometheus' `serviceMonitorSelector`. Default: none.
    pub labels: BTreeMap<String, String>,
}

impl Default for MonitoringProps {
    fn default() -> Self {
        Self {
            path: "/metrics".to_owned(),
            interval_seconds: 30,
            scrape_timeout_seconds: 10,
            labels: BTreeMap::new(),
        }
    }
}

pub(super) fn build(ctx: &Ctx<'_>) -> Result<Option<Object>, K8sError> {
    let Some(m) = &ctx.props.monitoring else {
        return Ok(None);
    };
    if !m.path.starts_with('/') {
        return Err(K8sError::InvalidProps {
            field: "monitoring.path".to_owned(),
            found: format!("`{}`", m.path),
            expected: "an absolute path such as `/metrics`".to_owned(),
        });
    }
    if m.scrape_timeout_seconds == 0 || m.scrape_timeout_seconds > m.interval_seconds {
        return Err(K8sError::InvalidProps {
            field: "monitoring".to_owned(),
            found: format!(
                "interval {}s, timeout {}s",
                m.interval_seconds, m.scrape_timeout_seconds
            ),
            expected: "0 < scrape_timeout_seconds <= interval_seconds".to_owned(),
        });
    }
    let mut labels = ctx.labels.clone();
    labels.extend(m.labels.clone());
    let mut metadata = ctx.meta("ServiceMonitor", ctx.name(), BTreeMap::new())?;
    super::labels::validate_labels(&labels)?;
    metadata.labels = Some(labels);
    let monitor = ServiceMonitor {
        api_version: "monitoring.coreos.com/v1",
        kind: "ServiceMonitor",
        metadata,
        spec: ServiceMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(ctx.selector.clone()),
                ..Default::default()
            },
            namespace_selector: NamespaceSelector {
                match_names: vec![ctx.props.namespace.clone()],
            },
            endpoints: vec![Endpoint {
                port: if ctx.props.ports.metrics.is_some() {
                    METRICS_PORT_NAME
                } else {
                    super::deployment::HTTP_PORT_NAME
                }
                .to_owned(),
                path: m.path.clone(),
                scheme: "http".to_owned(),
                interval: format!("{}s", m.interval_seconds),
                scrape_timeout: format!("{}s", m.scrape_timeout_seconds),
            }],
        },
    };
    Ok(Some(Object::new(Rank::Monitoring, &monitor)?))
}
