//! A Grafana dashboard per service with objectives: its golden signals and its error budget,
//! as a ConfigMap the kube-prometheus-stack Grafana's dashboard sidecar loads (label
//! [`DASHBOARD_LABEL`] = [`DASHBOARD_LABEL_VALUE`], any namespace).
//!
//! Every panel reads only series the service's own `PrometheusRule` records (see
//! [`crate::slo::prometheus`]), so a dashboard cannot drift from the rules: traffic is the
//! recorded request rate, errors and latency the recorded bad-request ratios of the
//! availability and latency objectives, and the budget is derived from the recorded 5m
//! rates over the objective's window. The JSON comes from typed structs, so it is
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

/// The service's dashboard: traffic, errors, latency, and per objective its error ratio
/// against the burn thresholds and the budget left over its window.
pub fn dashboard(svc: &ServiceSlos<'_>) -> Dashboard {
    let mut panels = Vec::new();
    let mut add = |kind, title: String, description: String, unit, targets: Vec<Target>| {
        let id = u32::try_from(panels.len()).unwrap_or(u32::MAX) + 1;
        // Two panels a row, each half the grid wide.
        let (x, y) = (((id - 1) % 2) * 12, ((id - 1) / 2) * 8);
        panels.push(Panel {
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
    };
    let target = |i: usize, expr: String, legend: &str| Target {
        ref_id: char::from(b'A' + u8::try_from(i % 26).unwrap_or(0)).to_string(),
        expr,
        legend_format: legend.to_owned(),
    };
    // Traffic: the request rate any objective records (all requests, whatever it counts).
    if let Some(first) = svc.slos.first() {
        add(
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
        add(
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
        add(
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
    Dashboard {
        uid: format!("keel-{}", svc.service),
        title: format!("{} ({})", svc.service, svc.namespace),
        tags: vec!["keel".to_owned(), "slo".to_owned()],
        schema_version: 39,
        time: TimeRange {
            from: "now-6h".to_owned(),
            to: "now".to_owned(),
        },
        refresh: "1m".to_owned(),
        editable: false,
        panels,
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

/// The ConfigMap `<service>-dashboard` in the service's namespace holding `dashboard` as
/// `<service>.json`, labelled `labels` and for the sidecar.
pub fn dashboard_config_map(
    svc: &ServiceSlos<'_>,
    dashboard: &Dashboard,
    labels: &BTreeMap<String, String>,
) -> Result<Object, K8sError> {
    let mut labels = labels.clone();
    labels.insert(DASHBOARD_LABEL.to_owned(), DASHBOARD_LABEL_VALUE.to_owned());
    let json = serde_json::to_string_pretty(dashboard).map_err(|e| K8sError::InvalidProps {
        field: "dashboard".to_owned(),
        found: e.to_string(),
        expected: "a dashboard that serializes to JSON".to_owned(),
    })?;
    let map = ConfigMap {
        metadata: super::meta(
            "ConfigMap",
            &format!("{}-dashboard", svc.service),
            Some(svc.namespace),
            &labels,
            BTreeMap::new(),
            &[],
        )?,
        data: Some(BTreeMap::from([(format!("{}.json", svc.service), json)])),
        ..Default::default()
    };
    Object::new(Rank::Config, &map)
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
        let d = dashboard(&svc);
        assert_eq!(d, dashboard(&svc), "deterministic");
        let titles: Vec<&str> = d.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Traffic",
                "Errors: availability (99.9% of requests without a server error (5xx) over 30 days)",
                "Error budget left: availability (30 days)"
            ]
        );
        assert_eq!(
            d.panels[2].targets[0].expr,
            r#"1 - (sum_over_time(slo:sli_error:rate5m{namespace="shop",service="api",slo="availability"}[30d]) / sum_over_time(slo:sli_requests:rate5m{namespace="shop",service="api",slo="availability"}[30d])) / 0.001"#
        );
        let map = dashboard_config_map(&svc, &d, &BTreeMap::new()).unwrap();
        assert_eq!(map.content["metadata"]["labels"][DASHBOARD_LABEL], "1");
        assert!(
            map.content["data"]["api.json"]
                .as_str()
                .unwrap()
                .contains("\"uid\": \"keel-api\"")
        );
    }
}
