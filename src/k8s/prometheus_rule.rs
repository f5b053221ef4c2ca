//! The `PrometheusRule` custom resource (prometheus-operator, `monitoring.coreos.com/v1`):
//! groups of recording and alerting rules that the cluster's Prometheus loads.
//!
//! See <https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.PrometheusRule>.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::{K8sError, Object, Rank};

/// `PrometheusRule` (monitoring.coreos.com/v1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRule {
    /// Always `monitoring.coreos.com/v1`.
    pub api_version: &'static str,
    /// Always `PrometheusRule`.
    pub kind: &'static str,
    /// Standard object metadata; its labels must match the Prometheus' `ruleSelector`.
    pub metadata: ObjectMeta,
    /// The rule groups.
    pub spec: PrometheusRuleSpec,
}

/// `PrometheusRule.spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrometheusRuleSpec {
    /// Rule groups, evaluated independently; names unique within the object.
    pub groups: Vec<RuleGroup>,
}

/// `PrometheusRule.spec.groups[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleGroup {
    /// Group name.
    pub name: String,
    /// Evaluation interval, e.g. `30s`. `None`: the Prometheus' global interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Rules, evaluated in order (a recording rule before the rules that read it).
    pub rules: Vec<Rule>,
}

/// `PrometheusRule.spec.groups[].rules[]`: a recording rule (`record`) or an alerting rule
/// (`alert`), never both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Name of the series a recording rule writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Name of the alert an alerting rule fires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// The PromQL expression.
    pub expr: String,
    /// How long the condition must hold before the alert fires. `None`: at once.
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Labels added to the recorded series or the alert.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations of an alert (`summary`, `description`, `runbook_url`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// A recording rule writing `expr` as `record` with `labels`.
    pub fn record(record: &str, expr: String, labels: BTreeMap<String, String>) -> Self {
        Self {
            record: Some(record.to_owned()),
            alert: None,
            expr,
            for_: None,
            labels,
            annotations: BTreeMap::new(),
        }
    }

    /// An alerting rule firing `alert` while `expr` returns a series.
    pub fn alert(
        alert: &str,
        expr: String,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> Self {
        Self {
            record: None,
            alert: Some(alert.to_owned()),
            expr,
            for_: None,
            labels,
            annotations,
        }
    }
}

impl PrometheusRule {
    /// A `PrometheusRule` with `metadata` and `groups`; fails on an empty or duplicate group
    /// name, an empty group, or a rule that is both or neither recording and alerting.
    pub fn new(metadata: ObjectMeta, groups: Vec<RuleGroup>) -> Result<Self, K8sError> {
        let mut seen = std::collections::BTreeSet::new();
        for g in &groups {
            if g.name.is_empty() || !seen.insert(g.name.as_str()) {
                return Err(K8sError::InvalidProps {
                    field: "PrometheusRule group name".to_owned(),
                    found: format!("{:?}", g.name),
                    expected: "a non-empty name, unique within the object".to_owned(),
                });
            }
            if g.rules.is_empty() {
                return Err(K8sError::InvalidProps {
                    field: format!("PrometheusRule group {}", g.name),
                    found: "no rules".to_owned(),
                    expected: "at least one rule".to_owned(),
                });
            }
            for r in &g.rules {
                if r.record.is_some() == r.alert.is_some() || r.expr.trim().is_empty() {
                    return Err(K8sError::InvalidProps {
                        field: format!("PrometheusRule group {} rule", g.name),
                        found: format!("record {:?}, alert {:?}", r.record, r.alert),
                        expected: "exactly one of record and alert, and an expression".to_owned(),
                    });
                }
            }
        }
        Ok(Self {
            api_version: "monitoring.coreos.com/v1",
            kind: "PrometheusRule",
            metadata,
            spec: PrometheusRuleSpec { groups },
        })
    }

    /// The object to render (after the workloads and ServiceMonitors it measures).
    pub fn to_object(&self) -> Result<Object, K8sError> {
        Object::new(Rank::Monitoring, self)
    }
}
