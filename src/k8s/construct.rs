//! The service construct: [`ServiceProps`] describes one HTTP service, [`service`] turns it
//! into every object it needs, in apply order.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::autoscaling::Autoscaling;
use super::deployment::{Image, PodSecurity, Ports, Probes, Resources, RollingUpdate, TopologySpread};
use super::external_secret::SecretsProps;
use super::ingress::IngressProps;
use super::labels::AppLabels;
use super::namespace::NamespacePolicy;
use super::network_policy::NetworkPolicyProps;
use super::pod_disruption_budget::DisruptionBudget;
use super::service_account::ServiceAccountProps;
use super::service_monitor::MonitoringProps;
use super::{K8sError, Object, Suppression};

/// One HTTP service on Kubernetes. [`ServiceProps::new`] fills every field with a safe default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProps {
    /// Recommended labels; `app.name` is also the name of the Deployment, Service and the rest.
    pub app: AppLabels,
    /// Namespace of every object.
    pub namespace: String,
    /// Quota and limits of the namespace when the construct creates it (with Pod Security
    /// Admission `restricted` labels and a namespace-wide deny-all NetworkPolicy).
    /// Default: `Some(NamespacePolicy::default())`; `None` when the namespace exists already.
    pub namespace_policy: Option<NamespacePolicy>,
    /// Container image. Stacks call [`Image::require_digest`] where digests are required.
    pub image: Image,
    /// Desired pods (within the autoscaling range, if any). Default: `2`.
    pub replicas: i32,
    /// Container and Service ports. Default: http 8080 (Service 80), metrics 9091.
    pub ports: Ports,
    /// Probe paths. Default: `/health` for all three.
    pub probes: Probes,
    /// Requests and limits. Default: 500m/512Mi requested, 1 CPU/1Gi limit.
    pub resources: Resources,
    /// User, group, read-only root. Default: 10001/10001, read-only root with `/tmp` emptyDir.
    pub security: PodSecurity,
    /// Rollout strategy. Default: maxSurge 25%, maxUnavailable 0.
    pub rollout: RollingUpdate,
    /// Zone and node spread. Default: both `ScheduleAnyway`.
    pub topology_spread: TopologySpread,
    /// Seconds between SIGTERM and SIGKILL. Default: `30`.
    pub termination_grace_period_seconds: i64,
    /// The pods' ServiceAccount. Default: no API token, no IAM role.
    pub service_account: ServiceAccountProps,
    /// Non-secret settings (ConfigMap, read with `envFrom`). Default: none (no ConfigMap).
    pub config: BTreeMap<String, String>,
    /// Secret environment variables. Default: none (no ExternalSecret).
    pub secrets: SecretsProps,
    /// Horizontal autoscaling. Default: none.
    pub autoscaling: Option<Autoscaling>,
    /// PodDisruptionBudget, rendered when the app runs at least 2 pods. Default: maxUnavailable 1.
    pub disruption_budget: DisruptionBudget,
    /// Public entry. Default: none.
    pub ingress: Option<IngressProps>,
    /// Allowed traffic. Default: http from `ingress-nginx`, metrics from `monitoring`, DNS out.
    pub network: NetworkPolicyProps,
    /// Prometheus scraping. Default: `Some(MonitoringProps::default())` (`/metrics` every 30s).
    pub monitoring: Option<MonitoringProps>,
    /// checkov checks that do not apply, with reasons (rendered as annotations). Default: none.
    pub suppressions: Vec<Suppression>,
}

impl ServiceProps {
    /// Props for `app` in `namespace` running `image`, every other field at its default.
    pub fn new(app: AppLabels, namespace: &str, image: Image) -> Self {
        Self {
            app,
            namespace: namespace.to_owned(),
            namespace_policy: Some(NamespacePolicy::default()),
            image,
            replicas: 2,
            ports: Ports::default(),
            probes: Probes::default(),
            resources: Resources::default(),
            security: PodSecurity::default(),
            rollout: RollingUpdate::default(),
            topology_spread: TopologySpread::default(),
            termination_grace_period_seconds: 30,
            service_account: ServiceAccountProps::default(),
            config: BTreeMap::new(),
            secrets: SecretsProps::default(),
            autoscaling: None,
            disruption_budget: DisruptionBudget::default(),
            ingress: None,
            network: NetworkPolicyProps::default(),
            monitoring: Some(MonitoringProps::default()),
            suppressions: Vec::new(),
        }
    }
}

/// What every builder of the construct shares: the props and the validated labels.
pub(super) struct Ctx<'a> {
    pub(super) props: &'a ServiceProps,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) selector: BTreeMap<String, String>,
}

impl Ctx<'_> {
    pub(super) fn name(&self) -> &str {
        &self.props.app.name
    }

    pub(super) fn meta(&self, kind: &str, name: &str, annotations: BTreeMap<String, String>) -> Result<ObjectMeta, K8sError> {
        super::meta(kind, name, Some(&self.props.namespace), &self.labels, annotations, &self.props.suppressions)
    }
}

/// Every object of one service: Namespace, ResourceQuota, LimitRange (if owned),
/// ServiceAccount, ConfigMap, ExternalSecret, Deployment, Service, HorizontalPodAutoscaler,
/// PodDisruptionBudget, Ingress, NetworkPolicies and ServiceMonitor, as the props ask.
///
/// Fails on construct misuse (empty or invalid names, min > max replicas, ...), saying what
/// was found and what was expected.
pub fn service(props: &ServiceProps) -> Result<Vec<Object>, K8sError> {
    super::labels::validate_dns_label("app.name", &props.app.name)?;
    super::labels::validate_dns_label("namespace", &props.namespace)?;
    if props.replicas < 1 {
        return Err(K8sError::InvalidProps {
            field: "replicas".to_owned(),
            found: props.replicas.to_string(),
            expected: "at least 1".to_owned(),
        });
    }
    if let Some(a) = props.autoscaling {
        a.validate()?;
        if !(a.min_replicas..=a.max_replicas).contains(&props.replicas) {
            return Err(K8sError::InvalidProps {
                field: "replicas".to_owned(),
                found: format!("{} outside autoscaling {}..={}", props.replicas, a.min_replicas, a.max_replicas),
                expected: "replicas within the autoscaling range".to_owned(),
            });
        }
    }
    let ctx = Ctx { props, labels: props.app.recommended()?, selector: props.app.selector()? };
    let mut objects = super::namespace::build(&ctx)?;
    objects.push(super::service_account::build(&ctx)?);
    let config_map = super::config_map::build(&ctx)?;
    let config_map_name = config_map.as_ref().map(|o| o.name.clone());
    objects.extend(config_map);
    let secret_refs = super::external_secret::env_refs(&ctx)?;
    objects.extend(super::external_secret::build(&ctx)?);
    objects.push(super::deployment::build(&ctx, &secret_refs, config_map_name.as_deref())?);
    objects.push(super::service::build(&ctx)?);
    objects.extend(super::autoscaling::build(&ctx)?);
    objects.extend(super::pod_disruption_budget::build(&ctx)?);
    objects.extend(super::ingress::build(&ctx)?);
    objects.extend(super::network_policy::build(&ctx)?);
    objects.extend(super::service_monitor::build(&ctx)?);
    Ok(objects)
}
