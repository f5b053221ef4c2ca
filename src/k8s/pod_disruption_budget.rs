//! The PodDisruptionBudget (policy/v1), rendered whenever the app runs at least 2 pods.
//!
//! See <https://kubernetes.io/docs/tasks/run-application/configure-pdb/>.

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::construct::Ctx;
use super::{K8sError, Object, Rank};

/// How many pods voluntary disruptions (node drains) may take down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisruptionBudget {
    /// At most this many pods unavailable at once.
    MaxUnavailable(i32),
    /// At least this many pods available at all times.
    MinAvailable(i32),
}

impl Default for DisruptionBudget {
    /// `MaxUnavailable(1)`.
    fn default() -> Self {
        Self::MaxUnavailable(1)
    }
}

/// The PDB, or nothing when the fewest pods the app runs is below 2.
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Option<Object>, K8sError> {
    let fewest = ctx.props.autoscaling.map_or(ctx.props.replicas, |a| {
        a.min_replicas.min(ctx.props.replicas)
    });
    if fewest < 2 {
        return Ok(None);
    }
    let (max_unavailable, min_available) = match ctx.props.disruption_budget {
        DisruptionBudget::MaxUnavailable(n) if n >= 1 => (Some(IntOrString::Int(n)), None),
        DisruptionBudget::MinAvailable(n) if (0..fewest).contains(&n) => {
            (None, Some(IntOrString::Int(n)))
        }
        other => {
            return Err(K8sError::InvalidProps {
                field: "disruption_budget".to_owned(),
                found: format!("{other:?} with {fewest} pods"),
                expected: "MaxUnavailable(n >= 1) or MinAvailable(n) below the pod count, so drains can proceed".to_owned(),
            });
        }
    };
    let pdb = PodDisruptionBudget {
        metadata: ctx.meta("PodDisruptionBudget", ctx.name(), BTreeMap::new())?,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable,
            min_available,
            selector: Some(LabelSelector {
                match_labels: Some(ctx.selector.clone()),
                ..Default::default()
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
        }),
        ..Default::default()
    };
    Ok(Some(Object::new(Rank::Disruption, &pdb)?))
}
