//! The application's Namespace with Pod Security Admission labels (restricted), its
//! ResourceQuota and its LimitRange.
//!
//! See <https://kubernetes.io/docs/concepts/security/pod-security-admission/>.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};

use super::construct::Ctx;
use super::{K8sError, Object, Rank, quantity};

/// The Pod Security Standard the namespace enforces, audits and warns about: `restricted`.
pub const POD_SECURITY_LEVEL: &str = "restricted";

/// Limits of a namespace the construct owns.
///
/// See <https://kubernetes.io/docs/concepts/policy/resource-quotas/> and
/// <https://kubernetes.io/docs/concepts/policy/limit-range/>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePolicy {
    /// Sum of CPU requests in the namespace. Default: `8`.
    pub quota_requests_cpu: String,
    /// Sum of memory requests in the namespace. Default: `16Gi`.
    pub quota_requests_memory: String,
    /// Sum of CPU limits in the namespace. Default: `16`.
    pub quota_limits_cpu: String,
    /// Sum of memory limits in the namespace. Default: `32Gi`.
    pub quota_limits_memory: String,
    /// Number of pods in the namespace. Default: `50`.
    pub quota_pods: u32,
    /// CPU request of a container that sets none. Default: `100m`.
    pub default_request_cpu: String,
    /// Memory request of a container that sets none. Default: `128Mi`.
    pub default_request_memory: String,
    /// CPU limit of a container that sets none. Default: `500m`.
    pub default_limit_cpu: String,
    /// Memory limit of a container that sets none. Default: `512Mi`.
    pub default_limit_memory: String,
}

impl Default for NamespacePolicy {
    fn default() -> Self {
        Self {
            quota_requests_cpu: "8".into(),
            quota_requests_memory: "16Gi".into(),
            quota_limits_cpu: "16".into(),
            quota_limits_memory: "32Gi".into(),
            quota_pods: 50,
            default_request_cpu: "100m".into(),
            default_request_memory: "128Mi".into(),
            default_limit_cpu: "500m".into(),
            default_limit_memory: "512Mi".into(),
        }
    }
}

/// Namespace, ResourceQuota and LimitRange, or nothing when the namespace is not owned.
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Vec<Object>, K8sError> {
    let Some(policy) = &ctx.props.namespace_policy else {
        return Ok(Vec::new());
    };
    let ns = ctx.props.namespace.as_str();
    let mut labels = ctx.labels.clone();
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            POD_SECURITY_LEVEL.to_owned(),
        );
    }
    let namespace = Namespace {
        metadata: super::meta(
            "Namespace",
            ns,
            None,
            &labels,
            BTreeMap::new(),
            &ctx.props.suppressions,
        )?,
        ..Default::default()
    };
    let q = |field: &str, value: &str| quantity(&format!("namespace_policy.{field}"), value);
    let hard = BTreeMap::from([
        (
            "requests.cpu".to_owned(),
            q("quota_requests_cpu", &policy.quota_requests_cpu)?,
        ),
        (
            "requests.memory".to_owned(),
            q("quota_requests_memory", &policy.quota_requests_memory)?,
        ),
        (
            "limits.cpu".to_owned(),
            q("quota_limits_cpu", &policy.quota_limits_cpu)?,
        ),
        (
            "limits.memory".to_owned(),
            q("quota_limits_memory", &policy.quota_limits_memory)?,
        ),
        (
            "pods".to_owned(),
            q("quota_pods", &policy.quota_pods.to_string())?,
        ),
    ]);
    let quota = ResourceQuota {
        metadata: ctx.meta("ResourceQuota", ns, BTreeMap::new())?,
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..Default::default()
        }),
        ..Default::default()
    };
    let limits = LimitRange {
        metadata: ctx.meta("LimitRange", ns, BTreeMap::new())?,
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".to_owned(),
                default_request: Some(BTreeMap::from([
                    (
                        "cpu".to_owned(),
                        q("default_request_cpu", &policy.default_request_cpu)?,
                    ),
                    (
                        "memory".to_owned(),
                        q("default_request_memory", &policy.default_request_memory)?,
                    ),
                ])),
                default: Some(BTreeMap::from([
                    (
                        "cpu".to_owned(),
                        q("default_limit_cpu", &policy.default_limit_cpu)?,
                    ),
                    (
                        "memory".to_owned(),
                        q("default_limit_memory", &policy.default_limit_memory)?,
                    ),
                ])),
                ..Default::default()
            }],
        }),
    };
    Ok(vec![
        Object::new(Rank::Namespace, &namespace)?,
        Object::new(Rank::NamespacePolicy, &quota)?,
        Object::new(Rank::NamespacePolicy, &limits)?,
    ])
}
