//! A Grafana dashboard per stack on the cluster ([`StackDashboard`]): the golden signals
//! and error budget of its service's objectives, and the saturation of its namespace, as
//! a ConfigMap the kube-prometheus-stack Grafana's dashboard sidecar loads (label
//! [`DASHBOARD_LABEL`] = [`DASHBOARD_LABEL_VALUE`], any namespace).
//!
//! Every objective panel reads only series the service's own `PrometheusRule` records
//! (see [`crate::slo::prometheus`]), so a dashboard cannot drift from the rules: traffic is
//! the recorded request rate, errors and latency the recorded bad-request ratios of the
//! availability and latency objectives, and the budget is derived from the recorded 5m
//! rates over the objective's window. Saturation reads the container and pod-limit series
//! every kube-prometheus-stack scrapes. The JSON comes from typed structs, so it is
//! deterministic.
//!
//! See <https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/>.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;

use super::{K8sError, Object, Rank};
use crate::slo::prometheus::{
    ERROR_RATE_RECORD, ERROR_RATIO_RECORD, REQUEST_RATE_RECORD, ServiceSlos,
};
use crate::slo::{Indicator, POLICY, Slo, Window, num};

/// The label Grafana's dashboard sidecar selects ConfigMaps by (kube-prometheus-stack
/// `grafana.sidecar.dashboards.label`).
pub const DASHBOARD_LABEL: &str = "grafana_dashboard";
/// Its value (`grafana.sidecar.dashboards.labelValue`).
pub const DASHBOARD_LABEL_VALUE: &str = "1";

/// A Grafana dashboard (the subset keel writes).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// Stable id, e.g. `keel-analytics-api`.
    pub uid: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Dashboard JSON schema version.
    pub schema_version: u32,
    /// Time range shown by default.
    pub time: TimeRange,
    /// Auto-refresh interval.
    pub refresh: String,
    /// Not editable in the UI: the source of truth is the stack.
    pub editable: bool,
    /// The panels.
    pub panels: Vec<Panel>,
}

/// `time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    /// Start, e.g. `now-6h`.
    pub from: String,
    /// End, `now`.
    pub to: String,
}

/// One panel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Panel {
    /// Unique within the dashboard.
    pub id: u32,
    /// `timeseries` or `stat`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Title.
    pub title: String,
    /// What it shows, for people.
    pub description: String,
    /// Position.
    pub grid_pos: GridPos,
    /// Unit and thresholds.
    pub field_config: FieldConfig,
    /// Its queries.
    pub targets: Vec<Target>,
}

/// `gridPos`: a 24-column grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GridPos {
    /// Column.
    pub x: u32,
    /// Row.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// `fieldConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldConfig {
    /// `defaults`.
    pub defaults: FieldDefaults,
}

/// `fieldConfig.defaults`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDefaults {
    /// Grafana unit, e.g. `reqps`, `percentunit`.
    pub unit: &'static str,
}

/// One PromQL query of a panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// `A`, `B`, ...
    pub ref_id: String,
    /// The query.
    pub expr: String,
    /// Series name in the legend.
    pub legend_format: String,
}

/// A stack's dashboard: one per stack on the cluster, whatever it runs. With objectives,
/// the golden signals (traffic, errors, latency) and the error budget of each; always the
/// saturation of the stack's namespace: CPU and memory of every pod against its limits
/// (cAdvisor and kube-state-metrics series, which kube-prometheus-stack scrapes), and
/// the database's connections against `max_connections` where the stack records them.
#[derive(Debug, Clone)]
pub struct StackDashboard<'a> {
    /// The stack, e.g. `whatsthecraic`: uid `keel-<stack>`, ConfigMap `<stack>-dashboard`.
    pub stack: &'a str,
    /// The namespace of its pods and of the ConfigMap.
    pub namespace: &'a str,
    /// Its service's objectives, if it has any.
    pub slos: Option<&'a ServiceSlos<'a>>,
    /// A PromQL series of open database connections over `max_connections`, where the
    /// stack records one (e.g. `sli:db:saturation:connections`).
    pub db_connections: Option<String>,
}

impl StackDashboard<'_> {
    /// The dashboard.
    pub fn dashboard(&self) -> Dashboard {
        let mut panels = Panels::default();
        if let Some(svc) = self.slos {
            slo_panels(svc, &mut panels);
        }
        let ns = self.namespace;
        let container = format!("namespace=\"{ns}\",container!=\"\",container!=\"POD\"");
        let limit = |resource: &str| {
            format!(
                "sum by (pod) (kube_pod_container_resource_limits{{namespace=\"{ns}\",resource=\"{resource}\"}})"
            )
        };
        let mut targets = vec![
            Panels::target(
                0,
                format!(
                    "sum by (pod) (rate(container_cpu_usage_seconds_total{{{container}}}[5m])) / {}",
                    limit("cpu")
                ),
                "cpu {{pod}}",
            ),
            Panels::target(
                1,
                format!(
                    "sum by (pod) (container_memory_working_set_bytes{{{container}}}) / {}",
                    limit("memory")
                ),
                "memory {{pod}}",
            ),
        ];
        let mut description =
            "CPU (5m rate) and memory (working set) of each pod of the namespace against its limits"
                .to_owned();
        let mut full = "a pod is throttled or killed".to_owned();
        if let Some(db) = &self.db_connections {
            targets.push(Panels::target(2, db.clone(), "database connections"));
            description.push_str(", and the database's open connections against max_connections");
            full.push_str(", the database refuses connections");
        }
        description.push_str(&format!(": at 100% {full}."));
        panels.add(
            "timeseries",
            "Saturation".to_owned(),
            description,
            "percentunit",
            targets,
        );
        Dashboard {
            uid: format!("keel-{}", self.stack),
            title: format!("{} ({})", self.stack, self.namespace),
            tags: std::iter::once("keel")
                .chain(self.slos.map(|_| "slo"))
                .map(str::to_owned)
                .collect(),
            schema_version: 39,
            time: TimeRange {
                from: "now-6h".to_owned(),
                to: "now".to_owned(),
            },
            refresh: "1m".to_owned(),
            editable: false,
            panels: panels.0,
        }
    }

    /// The ConfigMap `<stack>-dashboard` in the namespace holding the dashboard as
    /// `<stack>.json`, labelled `labels` and for Grafana's sidecar.
    pub fn config_map(&self, labels: &BTreeMap<String, String>) -> Result<Object, K8sError> {
        let mut labels = labels.clone();
        labels.insert(DASHBOARD_LABEL.to_owned(), DASHBOARD_LABEL_VALUE.to_owned());
        let json = serde_json::to_string_pretty(&self.dashboard()).map_err(|e| {
            K8sError::InvalidProps {
                field: "dashboard".to_owned(),
                found: e.to_string(),
                expected: "a dashboard that serializes to JSON".to_owned(),
            }
        })?;
        let map = ConfigMap {
            metadata: super::meta(
                "ConfigMap",
                &format!("{}-dashboard", self.stack),
                Some(self.namespace),
                &labels,
                BTreeMap::new(),
                &[],
            )?,
            data: Some(BTreeMap::from([(format!("{}.json", self.stack), json)])),
            ..Default::default()
        };
        Object::new(Rank::Config, &map)
    }
}

/// Panels laid out two a row, each half the grid wide.
#[derive(Default)]
struct Panels(Vec<Panel>);

impl Panels {
    fn add(
        &mut self,
        kind: &'static str,
        title: String,
        description: String,
        unit: &'static str,
        targets: Vec<Target>,
    ) {
        let id = u32::try_from(self.0.len()).unwrap_or(u32::MAX) + 1;
        let (x, y) = (((id - 1) % 2) * 12, ((id - 1) / 2) * 8);
        self.0.push(Panel {
            id,
            kind,
            title,
            description,
            grid_pos: GridPos { x, y, w: 12, h: 8 },
            field_config: FieldConfig {
                defaults: FieldDefaults { unit },
            },
            targets,
        });
    }

    fn target(i: usize, expr: String, legend: &str) -> Target {
        Target {
            ref_id: char::from(b'A' + u8::try_from(i % 26).unwrap_or(0)).to_string(),
            expr,
            legend_format: legend.to_owned(),
        }
    }
}

/// Traffic, then per objective its error ratio against the burn thresholds and the budget
/// left over its window.
fn slo_panels(svc: &ServiceSlos<'_>, panels: &mut Panels) {
    let target = Panels::target;
    // Traffic: the request rate any objective records (all requests, whatever it counts).
    if let Some(first) = svc.slos.first() {
        panels.add(
            "timeseries",
            "Traffic".to_owned(),
            "Requests per second over 5m (probes left out).".to_owned(),
            "reqps",
            vec![target(
                0,
                recorded(svc, REQUEST_RATE_RECORD, first, Window::M5),
                "requests/s",
            )],
        );
    }
    for slo in svc.slos {
        let (signal, what) = match slo.indicator {
            Indicator::Availability { .. } => ("Errors", "share of requests with an error"),
            Indicator::Latency { .. } => ("Latency", "share of requests slower than the threshold"),
        };
        panels.add(
            "timeseries",
            format!("{signal}: {} ({})", slo.name, slo.promise()),
            format!(
                "The {what} over 5m and 1h, against the page thresholds ({} and {}).",
                num(slo.threshold(&POLICY[0])),
                num(slo.threshold(&POLICY[1]))
            ),
            "percentunit",
            vec![
                target(0, recorded(svc, ERROR_RATIO_RECORD, slo, Window::M5), "5m"),
                target(1, recorded(svc, ERROR_RATIO_RECORD, slo, Window::H1), "1h"),
                target(
                    2,
                    format!("vector({})", num(slo.threshold(&POLICY[0]))),
                    "page (14.4x)",
                ),
            ],
        );
        panels.add(
            "stat",
            format!("Error budget left: {} ({} days)", slo.name, slo.window_days),
            format!(
                "1 − bad share / budget ({}) over the last {} days, from the recorded 5m rates (weighted by traffic).",
                num(slo.error_budget()),
                slo.window_days
            ),
            "percentunit",
            vec![target(0, budget_left(svc, slo), "left")],
        );
    }
}

/// The series `<prefix><window>` recorded for `slo`.
fn recorded(svc: &ServiceSlos<'_>, prefix: &str, slo: &Slo, window: Window) -> String {
    let mut labels = svc.service_labels();
    labels.insert("slo".to_owned(), slo.name.clone());
    let matchers: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{prefix}{}{{{}}}", window.label(), matchers.join(","))
}

/// PromQL: the share of `slo`'s error budget left over its window.
fn budget_left(svc: &ServiceSlos<'_>, slo: &Slo) -> String {
    let over = |prefix: &str| {
        format!(
            "sum_over_time({}[{}d])",
            recorded(svc, prefix, slo, Window::M5),
            slo.window_days
        )
    };
    format!(
        "1 - ({} / {}) / {}",
        over(ERROR_RATE_RECORD),
        over(REQUEST_RATE_RECORD),
        num(slo.error_budget())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::ErrorClass;
    use crate::slo::prometheus::{Matcher, RequestMetrics};

    #[test]
    fn traffic_then_two_panels_per_objective_reading_recorded_series() {
        let metrics = RequestMetrics {
            requests: "http_requests_total".into(),
            duration: "http_request_duration_seconds".into(),
            status_label: "status".into(),
            buckets: vec![0.5],
            selector: vec![Matcher::Equal("job".into(), "api".into())],
        };
        let slos = [Slo {
            name: "availability".into(),
            objective_percent: 99.9,
            window_days: 30,
            indicator: Indicator::Availability {
                errors: ErrorClass::Server,
            },
        }];
        let svc = ServiceSlos {
            service: "api",
            namespace: "shop",
            metrics: &metrics,
            slos: &slos,
        };
        let stack = StackDashboard {
            stack: "api",
            namespace: "shop",
            slos: Some(&svc),
            db_connections: None,
        };
        let d = stack.dashboard();
        assert_eq!(d, stack.dashboard(), "deterministic");
        let titles: Vec<&str> = d.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Traffic",
                "Errors: availability (99.9% of requests without a server error (5xx) over 30 days)",
                "Error budget left: availability (30 days)",
                "Saturation"
            ]
        );
        assert_eq!(
            d.panels[2].targets[0].expr,
            r#"1 - (sum_over_time(slo:sli_error:rate5m{namespace="shop",service="api",slo="availability"}[30d]) / sum_over_time(slo:sli_requests:rate5m{namespace="shop",service="api",slo="availability"}[30d])) / 0.001"#
        );
        let map = stack.config_map(&BTreeMap::new()).unwrap();
        assert_eq!(map.content["metadata"]["labels"][DASHBOARD_LABEL], "1");
        assert!(
            map.content["data"]["api.json"]
                .as_str()
                .unwrap()
                .contains("\"uid\": \"keel-api\"")
        );
    }

    #[test]
    fn without_objectives_a_stack_still_shows_its_saturation() {
        let d = StackDashboard {
            stack: "shop",
            namespace: "shop",
            slos: None,
            db_connections: Some("sli:db:saturation:connections{namespace=\"shop\"}".into()),
        }
        .dashboard();
        assert_eq!(d.panels.len(), 1);
        let exprs: Vec<&str> = d.panels[0]
            .targets
            .iter()
            .map(|t| t.expr.as_str())
            .collect();
        assert_eq!(
            exprs,
            [
                r#"sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="shop",container!="",container!="POD"}[5m])) / sum by (pod) (kube_pod_container_resource_limits{namespace="shop",resource="cpu"})"#,
                r#"sum by (pod) (container_memory_working_set_bytes{namespace="shop",container!="",container!="POD"}) / sum by (pod) (kube_pod_container_resource_limits{namespace="shop",resource="memory"})"#,
                r#"sli:db:saturation:connections{namespace="shop"}"#,
            ]
        );
        for e in exprs {
            promql_parser::parser::parse(e).unwrap_or_else(|err| panic!("{e}: {err}"));
        }
    }
}
