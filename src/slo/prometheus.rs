//! The Kubernetes renderer of [`Slo`](super::Slo)s: PromQL over the service's request
//! counter and latency histogram, recording rules for the error ratio over every window of
//! the policy, and its burn-rate alerts, in one `PrometheusRule` group per objective.
//!
//! Series: `slo:sli_error:ratio_rate<window>{service, namespace, slo}` (the share of bad
//! requests over `<window>`); alerts `<Service><Slo>ErrorBudgetBurn` with `severity`
//! `page` or `ticket` and `burn_window` (the long window).
//!
//! Windows up to [`LONGEST_RAW`] are rates over the scraped series. Longer ones never read
//! days of raw samples: they are derived from two recorded rates over [`BASE`],
//! `slo:sli_error:rate5m` (bad requests per second) and `slo:sli_requests:rate5m` (all
//! requests per second), as `sum_over_time(bad[w]) / sum_over_time(all[w])`. That is the
//! share of bad requests over `w` weighted by traffic, like a rate over the raw series, and
//! unlike `avg_over_time` of a recorded ratio, which counts a quiet hour as much as a busy
//! one.

use std::collections::BTreeMap;

use super::{BurnAlert, ErrorClass, Indicator, POLICY, Slo, WINDOWS, Window, num};
use keel_workload_contract as contract;

use crate::k8s::{AppLabels, K8sError, Object, PrometheusRule, Rule, RuleGroup};

/// Prefix of the recorded error ratios (`slo:sli_error:ratio_rate5m`, ...).
pub const ERROR_RATIO_RECORD: &str = "slo:sli_error:ratio_rate";

/// Prefix of the recorded rate of bad requests (`slo:sli_error:rate5m`).
pub const ERROR_RATE_RECORD: &str = "slo:sli_error:rate";

/// Prefix of the recorded rate of all requests (`slo:sli_requests:rate5m`).
pub const REQUEST_RATE_RECORD: &str = "slo:sli_requests:rate";

/// The longest window computed from the scraped series; longer ones are derived.
pub const LONGEST_RAW: Window = Window::H1;

/// The window of the recorded rates the longer windows are derived from.
pub const BASE: Window = Window::M5;

/// A label matcher of a series selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `label="value"`.
    Equal(String, String),
    /// `label!~"a|b"`: none of these values (matched literally).
    NoneOf(String, Vec<String>),
}

/// What a service exposes about its HTTP requests, and which of the scraped series are its
/// own.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMetrics {
    /// The request counter as scraped, e.g. `http_requests_total`.
    pub requests: String,
    /// The latency histogram's base name, e.g. `http_request_duration_seconds`
    /// (`_bucket` and `_count` are appended).
    pub duration: String,
    /// The label holding the status code, e.g. `status` or `code`.
    pub status_label: String,
    /// Upper bounds (seconds) of the histogram's buckets.
    pub buckets: Vec<f64>,
    /// Matchers that select the service's series (and leave out probes, say).
    pub selector: Vec<Matcher>,
}

/// The objectives of one service and what is needed to measure them.
#[derive(Debug, Clone)]
pub struct ServiceSlos<'a> {
    /// The service, e.g. `analytics-api`: the `service` label of rules and alerts.
    pub service: &'a str,
    /// Namespace the service runs in: the `namespace` label of rules and alerts.
    pub namespace: &'a str,
    /// Its request metrics.
    pub metrics: &'a RequestMetrics,
    /// The objectives.
    pub slos: &'a [Slo],
}

/// The matcher of the status codes `errors` counts, e.g. `status=~"5.."`.
fn status_matcher(m: &RequestMetrics, errors: ErrorClass) -> String {
    match errors {
        ErrorClass::Server => format!("{}=~\"5..\"", m.status_label),
        ErrorClass::ClientAndServer => format!("{}=~\"[45]..\"", m.status_label),
    }
}

/// A PromQL string literal: `"..."` with `\` and `"` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `value` as an RE2 pattern that matches it literally.
fn regex_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `{a="b",c!~"d|e"}` from `matchers` plus `extra`.
pub fn selector(matchers: &[Matcher], extra: &[String]) -> String {
    let mut parts: Vec<String> = matchers
        .iter()
        .map(|m| match m {
            Matcher::Equal(l, v) => format!("{l}={}", quote(v)),
            Matcher::NoneOf(l, vs) => {
                let alt: Vec<String> = vs.iter().map(|v| regex_literal(v)).collect();
                format!("{l}!~{}", quote(&alt.join("|")))
            }
        })
        .collect();
    parts.extend(extra.iter().cloned());
    format!("{{{}}}", parts.join(","))
}

/// The `le` matcher of the bucket with upper bound `bound`. Clients print whole bounds as
/// `1` or `1.0` (and Prometheus 3 normalizes to `1.0`), so those match either.
fn le_matcher(bound: f64) -> String {
    let n = num(bound);
    if n.contains('.') {
        format!("le={}", quote(&n))
    } else {
        format!("le=~{}", quote(&format!("{n}(\\.0)?")))
    }
}

impl ServiceSlos<'_> {
    /// Labels that tell this service's objective `slo` apart in the Prometheus.
    fn labels(&self, slo: &Slo) -> BTreeMap<String, String> {
        let mut labels = self.service_labels();
        labels.insert("slo".to_owned(), slo.name.clone());
        labels
    }

    /// PromQL: the share of `slo`'s bad requests over `window`: a rate over the scraped
    /// series up to [`LONGEST_RAW`], derived from the recorded [`BASE`] rates beyond.
    pub fn error_ratio(&self, slo: &Slo, window: Window) -> String {
        if window <= LONGEST_RAW {
            return self.ratio(&slo.indicator, window);
        }
        let over = |prefix: &str| {
            format!(
                "sum_over_time({}[{}])",
                self.recorded_as(prefix, slo, BASE),
                window.label()
            )
        };
        format!(
            "{} / {}",
            over(ERROR_RATE_RECORD),
            over(REQUEST_RATE_RECORD)
        )
    }

    /// PromQL: bad requests per second over `window` that `indicator` counts.
    pub fn bad_rate(&self, indicator: &Indicator, window: Window) -> String {
        let m = self.metrics;
        let w = window.label();
        match indicator {
            Indicator::Availability { errors } => format!(
                "sum(rate({}{}[{w}]))",
                m.requests,
                selector(&m.selector, &[status_matcher(m, *errors)]),
            ),
            Indicator::Latency { threshold_seconds } => format!(
                "sum(rate({h}_count{all}[{w}])) - sum(rate({h}_bucket{fast}[{w}]))",
                h = m.duration,
                fast = selector(&m.selector, &[le_matcher(*threshold_seconds)]),
                all = selector(&m.selector, &[]),
            ),
        }
    }

    /// PromQL: all requests per second over `window` that `indicator` counts.
    pub fn total_rate(&self, indicator: &Indicator, window: Window) -> String {
        match indicator {
            Indicator::Availability { .. } => self.request_rate(window),
            Indicator::Latency { .. } => format!(
                "sum(rate({}_count{}[{}]))",
                self.metrics.duration,
                selector(&self.metrics.selector, &[]),
                window.label()
            ),
        }
    }

    /// PromQL: the share of requests over `window` that `indicator` calls bad.
    pub fn ratio(&self, indicator: &Indicator, window: Window) -> String {
        let m = self.metrics;
        let w = window.label();
        match indicator {
            Indicator::Availability { errors } => format!(
                "sum(rate({req}{bad}[{w}])) / sum(rate({req}{all}[{w}]))",
                req = m.requests,
                bad = selector(&m.selector, &[status_matcher(m, *errors)]),
                all = selector(&m.selector, &[]),
            ),
            Indicator::Latency { threshold_seconds } => format!(
                "1 - (sum(rate({h}_bucket{fast}[{w}])) / sum(rate({h}_count{all}[{w}])))",
                h = m.duration,
                fast = selector(&m.selector, &[le_matcher(*threshold_seconds)]),
                all = selector(&m.selector, &[]),
            ),
        }
    }

    /// PromQL: requests per second over `window`.
    pub fn request_rate(&self, window: Window) -> String {
        format!(
            "sum(rate({}{}[{}]))",
            self.metrics.requests,
            selector(&self.metrics.selector, &[]),
            window.label()
        )
    }

    /// PromQL: the `quantile` (e.g. `0.95`) of latency over `window`, interpolated within
    /// the histogram's buckets.
    pub fn latency_quantile(&self, quantile: f64, window: Window) -> String {
        format!(
            "histogram_quantile({}, sum by (le) (rate({}_bucket{}[{}])))",
            num(quantile),
            self.metrics.duration,
            selector(&self.metrics.selector, &[]),
            window.label()
        )
    }

    /// The labels of the service's rules: `namespace` and `service`.
    pub fn service_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("namespace".to_owned(), self.namespace.to_owned()),
            ("service".to_owned(), self.service.to_owned()),
        ])
    }

    /// The recorded error ratio of `slo` over `window`, as a selector.
    pub fn recorded(&self, slo: &Slo, window: Window) -> String {
        self.recorded_as(ERROR_RATIO_RECORD, slo, window)
    }

    /// The series `<prefix><window>` recorded for `slo`, as a selector.
    fn recorded_as(&self, prefix: &str, slo: &Slo, window: Window) -> String {
        let labels: Vec<Matcher> = self
            .labels(slo)
            .into_iter()
            .map(|(k, v)| Matcher::Equal(k, v))
            .collect();
        format!("{prefix}{}{}", window.label(), selector(&labels, &[]))
    }

    /// PromQL of `alert` for `slo`: both windows burn faster than its factor.
    pub fn alert_expr(&self, slo: &Slo, alert: &BurnAlert) -> String {
        let limit = format!("({} * {})", num(alert.factor), num(slo.error_budget()));
        format!(
            "{} > {limit} and {} > {limit}",
            self.recorded(slo, alert.long),
            self.recorded(slo, alert.short)
        )
    }

    /// `AnalyticsApiAvailabilityErrorBudgetBurn`.
    fn alert_name(&self, slo: &Slo) -> String {
        format!("{}{}ErrorBudgetBurn", camel(self.service), camel(&slo.name))
    }

    /// One rule group per objective: the [`BASE`] rates of bad and all requests, the error
    /// ratio over every window (the long ones derived from those rates, which come first,
    /// since a group evaluates its rules in order), then its alerts.
    pub fn groups(&self) -> Vec<RuleGroup> {
        self.slos
            .iter()
            .map(|slo| {
                let record = |prefix: &str, window: Window, expr: String| {
                    Rule::record(
                        &format!("{prefix}{}", window.label()),
                        expr,
                        self.labels(slo),
                    )
                };
                let mut rules = vec![
                    record(ERROR_RATE_RECORD, BASE, self.bad_rate(&slo.indicator, BASE)),
                    record(
                        REQUEST_RATE_RECORD,
                        BASE,
                        self.total_rate(&slo.indicator, BASE),
                    ),
                ];
                rules.extend(
                    WINDOWS
                        .iter()
                        .map(|w| record(ERROR_RATIO_RECORD, *w, self.error_ratio(slo, *w))),
                );
                rules.extend(POLICY.iter().map(|a| self.alert(slo, a)));
                RuleGroup {
                    name: format!("slo-{}-{}", self.service, slo.name),
                    interval: None,
                    rules,
                }
            })
            .collect()
    }

    fn alert(&self, slo: &Slo, a: &BurnAlert) -> Rule {
        let mut labels = self.labels(slo);
        labels.insert("severity".into(), a.severity.label().into());
        labels.insert("burn_window".into(), a.long.label().into());
        let annotations = BTreeMap::from([
            (
                "summary".to_owned(),
                format!("{} {} SLO: {}", self.service, slo.name, slo.burn_summary(a)),
            ),
            (
                "description".to_owned(),
                format!(
                    "The error ratio of {} is {{{{ $value | humanizePercentage }}}} over the last {} and above {}% over the last {} too: more than {} times the {}% error budget of its objective ({}).",
                    self.service,
                    a.long.label(),
                    num(slo.threshold(a) * 100.0),
                    a.short.label(),
                    num(a.factor),
                    num(slo.error_budget() * 100.0),
                    slo.promise(),
                ),
            ),
        ]);
        Rule::alert(
            &self.alert_name(slo),
            self.alert_expr(slo, a),
            labels,
            annotations,
        )
    }
}

impl RequestMetrics {
    /// The workload binary's metrics (its contract crate), for the Service `job` in
    /// `namespace`; probe requests are left out, they would dilute the error ratio.
    pub fn workload(namespace: &str, job: &str) -> Self {
        let mut probes = vec![
            contract::LIVENESS_PATH,
            contract::READINESS_PATH,
            contract::STARTUP_PATH,
        ];
        probes.sort_unstable();
        probes.dedup();
        RequestMetrics {
            requests: contract::HTTP_REQUESTS.exposed.to_owned(),
            duration: contract::HTTP_REQUEST_DURATION.exposed.to_owned(),
            status_label: contract::STATUS_LABEL.to_owned(),
            buckets: contract::LATENCY_BUCKETS_SECONDS.to_vec(),
            selector: vec![
                Matcher::Equal("namespace".into(), namespace.into()),
                Matcher::Equal("job".into(), job.into()),
                Matcher::NoneOf(
                    contract::ROUTE_LABEL.into(),
                    probes.into_iter().map(str::to_owned).collect(),
                ),
            ],
        }
    }
}

/// The `PrometheusRule` `<service>-slos` in the service's namespace, labelled like the
/// service (`app`) plus `selector_labels` (what the cluster's Prometheus selects rules by,
/// e.g. `release: kube-prometheus-stack`).
pub fn rule_object(
    svc: &ServiceSlos<'_>,
    app: &AppLabels,
    selector_labels: &BTreeMap<String, String>,
    groups: Vec<RuleGroup>,
) -> Result<Object, K8sError> {
    let mut labels = app.recommended()?;
    labels.extend(selector_labels.clone());
    let metadata = crate::k8s::meta(
        "PrometheusRule",
        &format!("{}-slos", svc.service),
        Some(svc.namespace),
        &labels,
        BTreeMap::new(),
        &[],
    )?;
    PrometheusRule::new(metadata, groups)?.to_object()
}

/// `analytics-api` → `AnalyticsApi`.
pub fn camel(s: &str) -> String {
    s.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::Indicator;

    fn metrics() -> RequestMetrics {
        RequestMetrics {
            requests: "http_requests_total".into(),
            duration: "http_request_duration_seconds".into(),
            status_label: "status".into(),
            buckets: vec![0.25, 0.5, 1.0],
            selector: vec![
                Matcher::Equal("namespace".into(), "analytics".into()),
                Matcher::Equal("job".into(), "analytics-api".into()),
                Matcher::NoneOf("route".into(), vec!["/health".into(), "/ready".into()]),
            ],
        }
    }

    fn slos() -> Vec<Slo> {
        vec![
            Slo {
                name: "availability".into(),
                objective_percent: 99.9,
                window_days: 30,
                indicator: Indicator::Availability {
                    errors: ErrorClass::Server,
                },
            },
            Slo {
                name: "latency".into(),
                objective_percent: 95.0,
                window_days: 30,
                indicator: Indicator::Latency {
                    threshold_seconds: 1.0,
                },
            },
        ]
    }

    fn service<'a>(m: &'a RequestMetrics, s: &'a [Slo]) -> ServiceSlos<'a> {
        ServiceSlos {
            service: "analytics-api",
            namespace: "analytics",
            metrics: m,
            slos: s,
        }
    }

    #[test]
    fn error_ratios_select_the_service_and_its_errors() {
        let (m, s) = (metrics(), slos());
        let svc = service(&m, &s);
        assert_eq!(
            svc.error_ratio(&s[0], Window::M5),
            r#"sum(rate(http_requests_total{namespace="analytics",job="analytics-api",route!~"/health|/ready",status=~"5.."}[5m])) / sum(rate(http_requests_total{namespace="analytics",job="analytics-api",route!~"/health|/ready"}[5m]))"#
        );
        assert_eq!(
            svc.error_ratio(&s[1], Window::H1),
            r#"1 - (sum(rate(http_request_duration_seconds_bucket{namespace="analytics",job="analytics-api",route!~"/health|/ready",le=~"1(\\.0)?"}[1h])) / sum(rate(http_request_duration_seconds_count{namespace="analytics",job="analytics-api",route!~"/health|/ready"}[1h])))"#
        );
        assert_eq!(
            svc.error_ratio(&s[1], Window::D3),
            r#"sum_over_time(slo:sli_error:rate5m{namespace="analytics",service="analytics-api",slo="latency"}[3d]) / sum_over_time(slo:sli_requests:rate5m{namespace="analytics",service="analytics-api",slo="latency"}[3d])"#
        );
        assert_eq!(
            svc.bad_rate(&s[1].indicator, Window::M5),
            r#"sum(rate(http_request_duration_seconds_count{namespace="analytics",job="analytics-api",route!~"/health|/ready"}[5m])) - sum(rate(http_request_duration_seconds_bucket{namespace="analytics",job="analytics-api",route!~"/health|/ready",le=~"1(\\.0)?"}[5m]))"#
        );
        assert_eq!(
            svc.alert_expr(&s[0], &POLICY[0]),
            r#"slo:sli_error:ratio_rate1h{namespace="analytics",service="analytics-api",slo="availability"} > (14.4 * 0.001) and slo:sli_error:ratio_rate5m{namespace="analytics",service="analytics-api",slo="availability"} > (14.4 * 0.001)"#
        );
    }

    #[test]
    fn one_group_per_objective_with_nine_records_and_four_alerts() {
        let (m, s) = (metrics(), slos());
        let svc = service(&m, &s);
        let groups = svc.groups();
        assert_eq!(groups.len(), 2);
        let g = &groups[0];
        assert_eq!(g.name, "slo-analytics-api-availability");
        let records: Vec<&str> = g.rules.iter().filter_map(|r| r.record.as_deref()).collect();
        assert_eq!(records.len(), 9);
        // The rates the long windows derive from come before them (a group evaluates in order).
        assert_eq!(
            records[..2],
            ["slo:sli_error:rate5m", "slo:sli_requests:rate5m"]
        );
        let alerts: Vec<&Rule> = g.rules.iter().filter(|r| r.alert.is_some()).collect();
        assert_eq!(alerts.len(), 4);
        assert_eq!(
            alerts[0].alert.as_deref(),
            Some("AnalyticsApiAvailabilityErrorBudgetBurn")
        );
        assert_eq!(alerts[0].labels["severity"], "page");
        assert_eq!(alerts[3].labels["severity"], "ticket");
        assert_eq!(
            alerts[0].annotations["summary"],
            "analytics-api availability SLO: 14.4x burn: 2% of the 30-day error budget in 1h (all of it in 2.1 days)"
        );
        assert!(alerts[0].annotations["description"].contains(
            "above 1.44% over the last 5m too: more than 14.4 times the 0.1% error budget"
        ));
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(regex_literal("/v1.0/(x)"), r"/v1\.0/\(x\)");
        assert_eq!(le_matcher(0.5), r#"le="0.5""#);
        assert_eq!(camel("analytics-api"), "AnalyticsApi");
    }
}
