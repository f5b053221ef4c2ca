//! Alarms and the operator's view: an encrypted SNS topic with an e-mail subscription,
//! CloudWatch metric alarms that notify it, and a CloudWatch dashboard.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::kms::KmsKey;
use super::{Scope, local_name};
use crate::refs::{Expr, Ref, jsonencode};
use crate::tf::aws::resource::cloudwatch_metric_alarm::{
    CloudwatchMetricAlarm, MetricQuery, MetricQueryMetric,
};
use crate::tf::aws::resource::{
    CloudwatchCompositeAlarm, CloudwatchDashboard, SnsTopic, SnsTopicSubscription,
};

/// The alarm topic.
#[derive(Debug, Clone)]
pub struct AlarmTopic {
    topic: Ref,
}

impl AlarmTopic {
    /// Creates the topic (encrypted with `key`) and subscribes `email`.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, email: &str) -> AlarmTopic {
        let f = "observability";
        let topic = SnsTopic::new()
            .name(scope.name("alarms"))
            .kms_master_key_id(key.arn());
        let topic = scope.tf.add(f, "alarms", topic).into_ref();
        scope.tf.add(
            f,
            "alarms_email",
            SnsTopicSubscription::new(email, "email", topic.arn()),
        );
        AlarmTopic { topic }
    }

    /// The topic's ARN.
    pub fn arn(&self) -> Expr {
        self.topic.arn()
    }
}

/// How an alarm compares the statistic with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Statistic > threshold.
    GreaterThan,
    /// Statistic < threshold.
    LessThan,
}

/// How an alarm reads a period without data (`treat_missing_data`). CodeDeploy stops a
/// deployment only on an alarm in ALARM; INSUFFICIENT_DATA and OK let it go on. See
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html>.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingData {
    /// As within the threshold: for a metric published only when something happens (5XX
    /// counts), where no data means none happened.
    NotBreaching,
    /// As breaching: for a metric published every minute whatever the traffic (ECS CPU
    /// and memory, target health), where no data means the service or the metric is gone.
    Breaching,
    /// Not evaluated: all periods missing is INSUFFICIENT_DATA, never OK. For a metric
    /// published only with traffic (response times, error shares): no traffic is no
    /// verdict, and a separate alarm stops a deployment that gets none.
    Missing,
}

impl MissingData {
    /// The `treat_missing_data` value.
    pub fn value(self) -> &'static str {
        match self {
            MissingData::NotBreaching => "notBreaching",
            MissingData::Breaching => "breaching",
            MissingData::Missing => "missing",
        }
    }
}

/// One CloudWatch metric series: namespace, name and dimensions.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Metric namespace, e.g. `AWS/ECS`.
    pub namespace: &'static str,
    /// Metric name.
    pub name: &'static str,
    /// Metric dimensions.
    pub dimensions: BTreeMap<&'static str, Expr>,
}

/// How an alarm over several series combines them into the one it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// The sum (counts from several sources, e.g. target and load-balancer 5XX).
    Sum,
    /// The largest (e.g. unhealthy hosts of whichever target group is live).
    Max,
}

/// One CloudWatch metric alarm over one series, or over several combined into one.
#[derive(Debug, Clone)]
pub struct Alarm {
    /// Construct id and name suffix, e.g. `ecs-cpu-high`.
    pub id: &'static str,
    /// What the alarm means for an operator.
    pub description: String,
    /// The series watched.
    pub metric: Metric,
    /// Further series combined with [`Alarm::metric`] by [`Alarm::combine`] (none: the
    /// alarm watches `metric` alone).
    pub combined_with: Vec<Metric>,
    /// How several series combine. Ignored without [`Alarm::combined_with`].
    pub combine: Combine,
    /// Statistic of each series: `Average`, `Sum`, `Maximum`.
    pub statistic: &'static str,
    /// Period in seconds.
    pub period_seconds: u32,
    /// Periods that must breach.
    pub evaluation_periods: u32,
    /// Threshold.
    pub threshold: f64,
    /// Comparison.
    pub comparison: Comparison,
    /// How a period without data counts.
    pub missing_data: MissingData,
}

impl Alarm {
    /// Adds the alarm; with a topic it notifies it on alarm and on recovery (an alarm
    /// that only stops deployments has none). Returns its name.
    pub fn add(&self, scope: &mut Scope<'_>, topic: Option<&AlarmTopic>) -> Expr {
        let comparison = match self.comparison {
            Comparison::GreaterThan => "GreaterThanThreshold",
            Comparison::LessThan => "LessThanThreshold",
        };
        let mut alarm =
            CloudwatchMetricAlarm::new(scope.name(self.id), comparison, self.evaluation_periods)
                .alarm_description(&self.description)
                .threshold(self.threshold)
                .treat_missing_data(self.missing_data.value());
        let all: Vec<&Metric> = std::iter::once(&self.metric)
            .chain(&self.combined_with)
            .collect();
        match all.as_slice() {
            [m] => {
                alarm = alarm
                    .namespace(m.namespace)
                    .metric_name(m.name)
                    .statistic(self.statistic)
                    .period(self.period_seconds)
                    .dimensions(m.dimensions.clone());
            }
            many => {
                let ids: Vec<String> = (0..many.len()).map(|i| format!("m{i}")).collect();
                let function = match self.combine {
                    Combine::Sum => "SUM",
                    Combine::Max => "MAX",
                };
                let mut queries: Vec<MetricQuery> = many
                    .iter()
                    .zip(&ids)
                    .map(|(m, id)| metric_query(id, m, self.statistic, self.period_seconds))
                    .collect();
                queries.push(
                    MetricQuery::new("combined")
                        .expression(format!("{function}([{}])", ids.join(", ")))
                        .label(&self.description)
                        .return_data(true),
                );
                alarm = alarm.metric_query(queries);
            }
        }
        if let Some(topic) = topic {
            alarm = alarm.alarm_actions([topic.arn()]).ok_actions([topic.arn()]);
        }
        let r = scope.tf.add("observability", &local_name(self.id), alarm);
        r.alarm_name().into()
    }
}

/// A `metric_query` entry of a metric-math alarm reading `m` (not returned: an expression
/// combines it).
fn metric_query(id: &str, m: &Metric, statistic: &str, period_seconds: u32) -> MetricQuery {
    let metric = MetricQueryMetric::new(m.name, period_seconds, statistic)
        .namespace(m.namespace)
        .dimensions(m.dimensions.clone());
    MetricQuery::new(id).return_data(false).metric(metric)
}

/// One graph on the dashboard: a title and metrics as
/// `[namespace, metric, dimension, value, ...]` rows.
#[derive(Debug, Clone)]
pub struct Widget {
    /// Title.
    pub title: &'static str,
    /// Statistic shown.
    pub statistic: &'static str,
    /// Metric rows.
    pub metrics: Vec<Vec<Value>>,
}

/// Creates the dashboard `<prefix>` with two widgets per row; returns its name.
pub fn dashboard(scope: &mut Scope<'_>, widgets: &[Widget]) -> Expr {
    let region = scope.tf.region().to_owned();
    let body = json!({
        "widgets": widgets.iter().enumerate().map(|(i, w)| json!({
            "type": "metric",
            "x": (i % 2) * 12,
            "y": (i / 2) * 6,
            "width": 12,
            "height": 6,
            "properties": {
                "title": w.title,
                "region": region,
                "stat": w.statistic,
                "period": 60,
                "view": "timeSeries",
                "metrics": w.metrics,
            },
        })).collect::<Vec<_>>(),
    });
    let body = scope.tf.local("observability", "dashboard_body", body);
    let r = scope.tf.add(
        "observability",
        "main",
        CloudwatchDashboard::new(jsonencode(&body), scope.prefix.clone()),
    );
    r.dashboard_name().into()
}

/// One series of a metric-math alarm: its query id in the expression and its statistic.
#[derive(Debug, Clone)]
pub struct MathInput {
    /// Query id the expression names, e.g. `errors_target` (lowercase start).
    pub id: &'static str,
    /// The series.
    pub metric: Metric,
    /// Its statistic over the period, e.g. `Sum`.
    pub statistic: &'static str,
}

/// A CloudWatch alarm on a metric-math expression over one period (e.g. an error ratio
/// over an hour), evaluated once per minute over a sliding period.
#[derive(Debug, Clone)]
pub struct MathAlarm {
    /// Construct id and name suffix, e.g. `slo-availability-1h`.
    pub id: String,
    /// What the alarm means for an operator.
    pub description: String,
    /// The series the expression reads.
    pub inputs: Vec<MathInput>,
    /// The expression, e.g. `(FILL(a, 0) + FILL(b, 0)) / c`.
    pub expression: String,
    /// Label of the expression's series.
    pub label: String,
    /// Period of every input, in seconds (a multiple of 60; CloudWatch allows a period of
    /// an hour or more up to 7 days, a shorter one up to a day in all).
    pub period_seconds: u32,
    /// Threshold the expression must exceed.
    pub threshold: f64,
    /// How a period without data counts.
    pub missing_data: MissingData,
}

impl MathAlarm {
    /// Adds the alarm, without actions (a composite alarm notifies); returns its name.
    pub fn add(&self, scope: &mut Scope<'_>) -> Expr {
        let mut queries: Vec<MetricQuery> = self
            .inputs
            .iter()
            .map(|i| metric_query(i.id, &i.metric, i.statistic, self.period_seconds))
            .collect();
        queries.push(
            MetricQuery::new("ratio")
                .expression(&self.expression)
                .label(&self.label)
                .return_data(true),
        );
        let alarm = CloudwatchMetricAlarm::new(scope.name(&self.id), "GreaterThanThreshold", 1)
            .alarm_description(&self.description)
            .threshold(self.threshold)
            .treat_missing_data(self.missing_data.value())
            .metric_query(queries);
        let r = scope.tf.add("observability", &local_name(&self.id), alarm);
        r.alarm_name().into()
    }
}

/// A CloudWatch composite alarm: in alarm while every one of its alarms is, notifying the
/// topic on alarm and on recovery.
#[derive(Debug, Clone)]
pub struct CompositeAlarm {
    /// Construct id and name suffix.
    pub id: String,
    /// What the alarm means for an operator.
    pub description: String,
    /// Names of the alarms that must all be in alarm. Written unquoted into the rule
    /// (AWS allows that), so they must be letters, digits and hyphens, as keel's are.
    pub all_of: Vec<Expr>,
}

impl CompositeAlarm {
    /// Adds the alarm, routed to `topic`; returns its name.
    pub fn add(&self, scope: &mut Scope<'_>, topic: &AlarmTopic) -> Expr {
        let rule: Vec<String> = self
            .all_of
            .iter()
            .map(|name| format!("ALARM({name})"))
            .collect();
        let alarm = CloudwatchCompositeAlarm::new(scope.name(&self.id), rule.join(" AND "))
            .alarm_description(&self.description)
            .alarm_actions([topic.arn()])
            .ok_actions([topic.arn()]);
        let r = scope.tf.add("observability", &local_name(&self.id), alarm);
        r.alarm_name().into()
    }
}
