//! The ECS renderer of [`Slo`](super::Slo)s: the policy's burn-rate alerts as CloudWatch
//! alarms over an Application Load Balancer's counts.
//!
//! Each window of an alert is a metric-math alarm on the error ratio over one period of
//! that window's length (`(5XX from targets + 5XX from the load balancer) / requests`),
//! without actions; a composite alarm joins the long and the short window with `AND` and
//! notifies the topic, like a PromQL `and`. CloudWatch allows a period × evaluation periods
//! of at most one day when the period is under an hour and at most seven days otherwise,
//! so every window fits as a single period: 5m and 30m under the one-day rule, 1h to 3d
//! (259,200 s) under the seven-day one. Alarms evaluate every minute, so a one-period
//! alarm is a sliding window.
//!
//! Only availability objectives: a burn rate of a latency objective needs the share of
//! requests slower than the threshold, and CloudWatch gives the load balancer's
//! `TargetResponseTime` as per-period statistics (averages, percentiles) instead; keel
//! refuses latency objectives on ECS stacks (see [`LATENCY_UNSUPPORTED`]).

use std::collections::BTreeMap;

use super::{ErrorClass, Indicator, POLICY, Slo, Window, num};
use crate::construct::Scope;
use crate::construct::observability::{
    AlarmTopic, CompositeAlarm, MathAlarm, MathInput, Metric, MissingData,
};
use crate::refs::Expr;

/// Why an ECS stack refuses a latency objective (the environment error's message).
pub const LATENCY_UNSUPPORTED: &str = "expected an availability indicator: this stack runs on ECS, where CloudWatch reports the load balancer's TargetResponseTime only as statistics per period (averages, percentiles), not as a count of requests within a threshold, so a latency burn rate cannot be computed";

/// The load balancer whose counts measure the objectives.
#[derive(Debug, Clone)]
pub struct LoadBalancerCounts {
    /// Its `arn_suffix` (the `LoadBalancer` dimension).
    pub arn_suffix: Expr,
}

impl LoadBalancerCounts {
    fn metric(&self, name: &'static str) -> Metric {
        Metric {
            namespace: "AWS/ApplicationELB",
            name,
            dimensions: BTreeMap::from([("LoadBalancer", self.arn_suffix.clone())]),
        }
    }

    /// The error ratio of `errors` over one period: its inputs and the expression.
    ///
    /// Error counts are absent in minutes without errors, hence `FILL(…, 0)`. The
    /// denominator adds the load balancer's own 5XX to `RequestCount`, which counts only
    /// requests that reached a target: when no target is healthy every request fails with
    /// a 503 that `RequestCount` never sees, and the ratio must still be 1, not undefined.
    pub fn error_ratio(&self, errors: ErrorClass) -> (Vec<MathInput>, String) {
        let mut inputs = Vec::new();
        let mut bad = Vec::new();
        for class in errors.classes() {
            for (id, name) in match class {
                4 => [
                    ("target_4xx", "HTTPCode_Target_4XX_Count"),
                    ("elb_4xx", "HTTPCode_ELB_4XX_Count"),
                ],
                _ => [
                    ("target_5xx", "HTTPCode_Target_5XX_Count"),
                    ("elb_5xx", "HTTPCode_ELB_5XX_Count"),
                ],
            } {
                inputs.push(MathInput {
                    id,
                    metric: self.metric(name),
                    statistic: "Sum",
                });
                bad.push(format!("FILL({id}, 0)"));
            }
        }
        inputs.push(MathInput {
            id: "requests",
            metric: self.metric("RequestCount"),
            statistic: "Sum",
        });
        let expression = format!(
            "({}) / (FILL(requests, 0) + FILL(elb_5xx, 0))",
            bad.join(" + ")
        );
        (inputs, expression)
    }
}

/// Adds the burn-rate alarms of every availability objective in `slos` of `service`,
/// routed to `topic`; returns the names of the composite alarms (four per objective).
pub fn add_alarms(
    scope: &mut Scope<'_>,
    service: &str,
    slos: &[Slo],
    lb: &LoadBalancerCounts,
    topic: &AlarmTopic,
) -> Vec<Expr> {
    let mut composites = Vec::new();
    for slo in slos {
        let Indicator::Availability { errors } = slo.indicator else {
            // Refused by the environment check (LATENCY_UNSUPPORTED).
            continue;
        };
        let (inputs, expression) = lb.error_ratio(errors);
        for alert in &POLICY {
            let threshold = slo.threshold(alert);
            let window = |scope: &mut Scope<'_>, w: Window| {
                MathAlarm {
                    id: format!(
                        "slo-{}-{}-{}-window-{}",
                        slo.name,
                        alert.severity.label(),
                        alert.long.label(),
                        w.label()
                    ),
                    description: format!(
                        "{service} {}: error ratio over {} above {} ({}x the {} budget); notifies only through the composite alarm",
                        slo.name,
                        w.label(),
                        num(threshold),
                        num(alert.factor),
                        num(slo.error_budget()),
                    ),
                    inputs: inputs.clone(),
                    expression: expression.clone(),
                    label: format!("{} error ratio over {}", slo.name, w.label()),
                    period_seconds: w.seconds(),
                    threshold,
                    // No requests spend no budget.
                    missing_data: MissingData::NotBreaching,
                }
                .add(scope)
            };
            let long = window(scope, alert.long);
            let short = window(scope, alert.short);
            let name = CompositeAlarm {
                id: format!(
                    "slo-{}-{}-{}",
                    slo.name,
                    alert.severity.label(),
                    alert.long.label()
                ),
                description: format!(
                    "{}: {service} {} SLO: {}. The error ratio is above {}% over {} and over {} ({}).",
                    alert.severity.label(),
                    slo.name,
                    slo.burn_summary(alert),
                    num(threshold * 100.0),
                    alert.long.label(),
                    alert.short.label(),
                    slo.promise(),
                ),
                all_of: vec![long, short],
            }
            .add(scope, topic);
            composites.push(name);
        }
    }
    composites
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_ratio_counts_the_chosen_classes() {
        let lb = LoadBalancerCounts {
            arn_suffix: Expr::raw("aws_lb.main.arn_suffix"),
        };
        let (inputs, e) = lb.error_ratio(ErrorClass::Server);
        assert_eq!(
            e,
            "(FILL(target_5xx, 0) + FILL(elb_5xx, 0)) / (FILL(requests, 0) + FILL(elb_5xx, 0))"
        );
        assert_eq!(inputs.len(), 3);
        let (inputs, e) = lb.error_ratio(ErrorClass::ClientAndServer);
        assert_eq!(inputs.len(), 5);
        assert!(e.starts_with("(FILL(target_4xx, 0) + FILL(elb_4xx, 0) + FILL(target_5xx, 0)"));
    }

    #[test]
    fn every_window_fits_cloudwatch_evaluation_limits() {
        for a in POLICY {
            for w in [a.long, a.short] {
                let s = w.seconds();
                assert_eq!(s % 60, 0);
                let limit = if s < 3_600 { 86_400 } else { 604_800 };
                assert!(s <= limit, "{w:?}");
            }
        }
    }
}
