//! The HorizontalPodAutoscaler (autoscaling/v2) on CPU and memory utilization.
//!
//! See <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/>.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use super::construct::Ctx;
use super::{K8sError, Object, Rank};

/// Horizontal autoscaling between `min_replicas` and `max_replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoscaling {
    /// Fewest pods. Default: `2`.
    pub min_replicas: i32,
    /// Most pods. Default: `10`.
    pub max_replicas: i32,
    /// Target average CPU utilization, percent of the request. Default: `70`.
    pub cpu_utilization_percent: i32,
    /// Target average memory utilization, percent of the request. Default: `80`.
    pub memory_utilization_percent: i32,
}

impl Default for Autoscaling {
    fn default() -> Self {
        Self {
            min_replicas: 2,
            max_replicas: 10,
            cpu_utilization_percent: 70,
            memory_utilization_percent: 80,
        }
    }
}

impl Autoscaling {
    /// Checks `1 <= min <= max` and targets in 1..=100.
    pub fn validate(&self) -> Result<(), K8sError> {
        if self.min_replicas < 1 || self.min_replicas > self.max_replicas {
            return Err(K8sError::InvalidProps {
                field: "autoscaling".to_owned(),
                found: format!(
                    "min_replicas {} and max_replicas {}",
                    self.min_replicas, self.max_replicas
                ),
                expected: "1 <= min_replicas <= max_replicas".to_owned(),
            });
        }
        for (field, value) in [
            (
                "autoscaling.cpu_utilization_percent",
                self.cpu_utilization_percent,
            ),
            (
                "autoscaling.memory_utilization_percent",
                self.memory_utilization_percent,
            ),
        ] {
            if !(1..=100).contains(&value) {
                return Err(K8sError::InvalidProps {
                    field: field.to_owned(),
                    found: value.to_string(),
                    expected: "a percentage 1..=100".to_owned(),
                });
            }
        }
        Ok(())
    }
}

fn utilization(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".to_owned(),
        resource: Some(ResourceMetricSource {
            name: resource.to_owned(),
            target: MetricTarget {
                type_: "Utilization".to_owned(),
                average_utilization: Some(percent),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

pub(super) fn build(ctx: &Ctx<'_>) -> Result<Option<Object>, K8sError> {
    let Some(a) = ctx.props.autoscaling else {
        return Ok(None);
    };
    a.validate()?;
    let hpa = HorizontalPodAutoscaler {
        metadata: ctx.meta("HorizontalPodAutoscaler", ctx.name(), BTreeMap::new())?,
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(
                    if ctx.props.canary.is_some() {
                        "argoproj.io/v1alpha1"
                    } else {
                        "apps/v1"
                    }
                    .to_owned(),
                ),
                kind: if ctx.props.canary.is_some() {
                    "Rollout"
                } else {
                    "Deployment"
                }
                .to_owned(),
                name: ctx.name().to_owned(),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(vec![
                utilization("cpu", a.cpu_utilization_percent),
                utilization("memory", a.memory_utilization_percent),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(Some(Object::new(Rank::Autoscaling, &hpa)?))
}
