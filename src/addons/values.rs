//! Typed Helm values, one struct per chart, mirroring only the keys keel sets (each checked
//! against the pinned chart's `values.yaml`), and the EKS add-ons' `configuration_values`.
//! Rendered to YAML by the same renderer as the manifests ([`crate::k8s::to_yaml`]).

use std::collections::BTreeMap;

use serde::Serialize;

/// Labels, annotations, selectors.
pub type Map = BTreeMap<String, String>;

/// `serviceAccount` of most charts: created by the chart (it must exist before the
/// controller's pods, and Helm installs before `k8s/` is applied), with the IRSA role
/// annotation when the environment uses IRSA.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    /// Always `true`.
    pub create: bool,
    /// The name the IAM trust (or Pod Identity association) pins.
    pub name: String,
    /// `eks.amazonaws.com/role-arn` under IRSA; empty under Pod Identity.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Map,
}

/// `podDisruptionBudget` of charts that take `enabled` + `minAvailable`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pdb {
    /// Whether the chart renders a PodDisruptionBudget.
    pub enabled: bool,
    /// Pods that must stay up during a voluntary disruption.
    pub min_available: u32,
}

impl Pdb {
    /// One of two replicas may be evicted at a time.
    pub fn one_of_two() -> Pdb {
        Pdb {
            enabled: true,
            min_available: 1,
        }
    }
}

/// A chart's `serviceMonitor` switch with the labels the cluster's Prometheus selects.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitor {
    /// Whether the chart renders a ServiceMonitor.
    pub enabled: bool,
    /// Labels on it (the Prometheus selector).
    pub additional_labels: Map,
}

/// `service.annotations`: an internet-facing NLB made by the AWS Load Balancer Controller.
#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancerService {
    /// The controller's Service annotations.
    pub annotations: Map,
}

impl LoadBalancerService {
    /// An internet-facing NLB with IP targets, owned by the AWS Load Balancer Controller,
    /// that sends PROXY protocol v2 to every target group: with IP targets the NLB does
    /// not preserve the client's address, so without it every request would come from
    /// the NLB's own addresses, and per-client rate limits would be one global throttle.
    /// The controller behind it must read the header ([`NginxConfig`], [`TraefikPorts`]).
    pub fn nlb() -> Self {
        let a = |k: &str, v: &str| (format!("service.beta.kubernetes.io/{k}"), v.to_owned());
        LoadBalancerService {
            annotations: Map::from([
                a("aws-load-balancer-type", "external"),
                a("aws-load-balancer-nlb-target-type", "ip"),
                a("aws-load-balancer-scheme", "internet-facing"),
                a("aws-load-balancer-proxy-protocol", "*"),
            ]),
        }
    }
}

/// ingress-nginx (`charts/ingress-nginx/values.yaml`).
#[derive(Debug, Clone, Serialize)]
pub struct IngressNginx {
    /// `controller`.
    pub controller: NginxController,
}

/// ingress-nginx `controller`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NginxController {
    /// `replicaCount` (the chart renders a PDB when it is above 1).
    pub replica_count: u32,
    /// `minAvailable` of that PDB.
    pub min_available: u32,
    /// `ingressClass`.
    pub ingress_class: String,
    /// `ingressClassResource`.
    pub ingress_class_resource: NginxClass,
    /// `metrics`.
    pub metrics: NginxMetrics,
    /// `service`.
    pub service: LoadBalancerService,
    /// `config`: the controller's ConfigMap.
    pub config: NginxConfig,
}

/// ingress-nginx `controller.config` (ConfigMap values are strings).
#[derive(Debug, Clone, Serialize)]
pub struct NginxConfig {
    /// `use-proxy-protocol`: `"true"`, the client's address comes from the NLB's PROXY
    /// header, so `$remote_addr` (what `limit-rps` keys on) is the client's.
    #[serde(rename = "use-proxy-protocol")]
    pub use_proxy_protocol: String,
}

impl NginxConfig {
    /// Behind [`LoadBalancerService::nlb`].
    pub fn behind_nlb() -> Self {
        NginxConfig {
            use_proxy_protocol: "true".to_owned(),
        }
    }
}

/// ingress-nginx `controller.ingressClassResource`.
#[derive(Debug, Clone, Serialize)]
pub struct NginxClass {
    /// The IngressClass name.
    pub name: String,
    /// Create it.
    pub enabled: bool,
    /// Not the default class: every keel Ingress names its class.
    pub default: bool,
}

/// ingress-nginx `controller.metrics`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NginxMetrics {
    /// Expose Prometheus metrics.
    pub enabled: bool,
    /// `serviceMonitor`.
    pub service_monitor: ServiceMonitor,
}

/// Traefik (`traefik/values.yaml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Traefik {
    /// `deployment`.
    pub deployment: TraefikDeployment,
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: Pdb,
    /// `ingressClass`.
    pub ingress_class: TraefikClass,
    /// `metrics`.
    pub metrics: TraefikMetrics,
    /// `service`.
    pub service: LoadBalancerService,
    /// `ports`: the entry points' settings beyond the chart's.
    pub ports: TraefikPorts,
}

/// Traefik `ports`: both entry points read the NLB's PROXY header, from the VPC only, so
/// the remote address (what a `rateLimit` Middleware keys on by default) is the client's.
#[derive(Debug, Clone, Serialize)]
pub struct TraefikPorts {
    /// `web` (HTTP).
    pub web: TraefikPort,
    /// `websecure` (HTTPS).
    pub websecure: TraefikPort,
}

/// Traefik `ports.<entry point>`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraefikPort {
    /// `proxyProtocol`.
    pub proxy_protocol: ProxyProtocol,
}

/// Traefik `ports.<entry point>.proxyProtocol`.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyProtocol {
    /// `trustedIPs`: who may send the header; the NLB's addresses are in the VPC.
    #[serde(rename = "trustedIPs")]
    pub trusted_ips: Vec<String>,
}

impl TraefikPorts {
    /// Behind [`LoadBalancerService::nlb`] in a VPC of `vpc_cidr`.
    pub fn behind_nlb(vpc_cidr: &str) -> Self {
        let port = || TraefikPort {
            proxy_protocol: ProxyProtocol {
                trusted_ips: vec![vpc_cidr.to_owned()],
            },
        };
        TraefikPorts {
            web: port(),
            websecure: port(),
        }
    }
}

/// Traefik `deployment`.
#[derive(Debug, Clone, Serialize)]
pub struct TraefikDeployment {
    /// `replicas`.
    pub replicas: u32,
}

/// Traefik `ingressClass`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraefikClass {
    /// Create the IngressClass.
    pub enabled: bool,
    /// Not the default class.
    pub is_default_class: bool,
    /// Its name.
    pub name: String,
}

/// Traefik `metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct TraefikMetrics {
    /// `prometheus`.
    pub prometheus: TraefikPrometheus,
}

/// Traefik `metrics.prometheus`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraefikPrometheus {
    /// `addServicesLabels`: per-service series (the canary analyses query them).
    pub add_services_labels: bool,
    /// `service`: a Service for the metrics port, which the ServiceMonitor selects.
    pub service: Enabled,
    /// `serviceMonitor`.
    pub service_monitor: ServiceMonitor,
}

/// kube-prometheus-stack `grafana` (the grafana chart 12.11.1 of chart 88.5.3).
#[derive(Debug, Clone, Serialize)]
pub struct Grafana {
    /// Install Grafana.
    pub enabled: bool,
    /// `sidecar`: what it loads from ConfigMaps; none when Grafana is not installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<GrafanaSidecar>,
}

/// kube-prometheus-stack `grafana.sidecar`.
#[derive(Debug, Clone, Serialize)]
pub struct GrafanaSidecar {
    /// `dashboards`.
    pub dashboards: SidecarDashboards,
}

/// kube-prometheus-stack `grafana.sidecar.dashboards`: the chart's defaults, stated, since
/// the stacks' dashboard ConfigMaps must match them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarDashboards {
    /// Load dashboards from ConfigMaps.
    pub enabled: bool,
    /// The label key ConfigMaps carry ([`crate::k8s::dashboard::DASHBOARD_LABEL`]).
    pub label: String,
    /// Its value ([`crate::k8s::dashboard::DASHBOARD_LABEL_VALUE`]).
    pub label_value: String,
    /// `ALL`: every namespace (each stack's dashboard lives in its own).
    pub search_namespace: String,
}

impl Grafana {
    /// Grafana with the dashboard sidecar when `dashboards`, else not installed.
    pub fn for_dashboards(dashboards: bool) -> Self {
        Grafana {
            enabled: dashboards,
            sidecar: dashboards.then(|| GrafanaSidecar {
                dashboards: SidecarDashboards {
                    enabled: true,
                    label: crate::k8s::dashboard::DASHBOARD_LABEL.to_owned(),
                    label_value: crate::k8s::dashboard::DASHBOARD_LABEL_VALUE.to_owned(),
                    search_namespace: "ALL".to_owned(),
                },
            }),
        }
    }
}

/// `{enabled: <bool>}`.
#[derive(Debug, Clone, Serialize)]
pub struct Enabled {
    /// The switch.
    pub enabled: bool,
}

/// kube-prometheus-stack (`charts/kube-prometheus-stack/values.yaml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubePrometheusStack {
    /// `commonLabels`: the chart's own monitors and rules carry the selector labels too
    /// (beyond the `release` label the chart always sets).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub common_labels: Map,
    /// `grafana`: installed, with its dashboard sidecar, when a stack emits a dashboard.
    pub grafana: Grafana,
    /// `prometheus`.
    pub prometheus: Prometheus,
    /// `alertmanager`.
    pub alertmanager: Alertmanager,
}

/// kube-prometheus-stack `prometheus`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prometheus {
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: Pdb,
    /// `prometheusSpec`.
    pub prometheus_spec: PrometheusSpec,
}

/// A label selector (`matchLabels` only).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Labels an object must carry.
    pub match_labels: Map,
}

/// An empty namespace selector: every namespace.
#[derive(Debug, Clone, Serialize)]
pub struct AllNamespaces {}

/// kube-prometheus-stack `prometheus.prometheusSpec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// `replicas`.
    pub replicas: u32,
    /// `serviceMonitorSelector`.
    pub service_monitor_selector: Selector,
    /// `serviceMonitorNamespaceSelector`.
    pub service_monitor_namespace_selector: AllNamespaces,
    /// `podMonitorSelector`.
    pub pod_monitor_selector: Selector,
    /// `podMonitorNamespaceSelector`.
    pub pod_monitor_namespace_selector: AllNamespaces,
    /// `ruleSelector`.
    pub rule_selector: Selector,
    /// `ruleNamespaceSelector`.
    pub rule_namespace_selector: AllNamespaces,
}

/// kube-prometheus-stack `alertmanager`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alertmanager {
    /// `serviceAccount`.
    pub service_account: ServiceAccount,
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: Pdb,
    /// `alertmanagerSpec`.
    pub alertmanager_spec: Replicas,
    /// `config`: Alertmanager's configuration file.
    pub config: AlertmanagerConfig,
}

/// `{replicas: <n>}`.
#[derive(Debug, Clone, Serialize)]
pub struct Replicas {
    /// Pods.
    pub replicas: u32,
}

/// The Alertmanager configuration (prometheus.io/docs/alerting/latest/configuration).
#[derive(Debug, Clone, Serialize)]
pub struct AlertmanagerConfig {
    /// `route`.
    pub route: Route,
    /// `receivers`.
    pub receivers: Vec<Receiver>,
}

/// The root route.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Receiver of every alert.
    pub receiver: String,
    /// Labels alerts are grouped by.
    pub group_by: Vec<String>,
    /// Wait before the first notification of a group.
    pub group_wait: String,
    /// Wait before notifying of new alerts in a group.
    pub group_interval: String,
    /// Wait before repeating a notification.
    pub repeat_interval: String,
    /// Sub-routes (the always-firing `Watchdog` goes nowhere).
    pub routes: Vec<SubRoute>,
}

/// A sub-route.
#[derive(Debug, Clone, Serialize)]
pub struct SubRoute {
    /// Receiver.
    pub receiver: String,
    /// Matchers, e.g. `alertname = "Watchdog"`.
    pub matchers: Vec<String>,
}

/// A receiver.
#[derive(Debug, Clone, Serialize)]
pub struct Receiver {
    /// Name.
    pub name: String,
    /// SNS notifications (none for the null receiver).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sns_configs: Vec<SnsConfig>,
}

/// One SNS notification target, signed with SigV4 by the pod's AWS identity.
#[derive(Debug, Clone, Serialize)]
pub struct SnsConfig {
    /// Topic ARN.
    pub topic_arn: String,
    /// Subject of the e-mail.
    pub subject: String,
    /// `sigv4`.
    pub sigv4: Sigv4,
    /// Also notify when an alert resolves.
    pub send_resolved: bool,
}

/// SigV4 settings: the region only (credentials from the pod's identity).
#[derive(Debug, Clone, Serialize)]
pub struct Sigv4 {
    /// Region of the topic.
    pub region: String,
}

/// External Secrets (`deploy/charts/external-secrets/values.yaml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecrets {
    /// `installCRDs`.
    #[serde(rename = "installCRDs")]
    pub install_crds: bool,
    /// `replicaCount`.
    pub replica_count: u32,
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: Pdb,
    /// `serviceAccount`.
    pub service_account: ServiceAccount,
    /// `webhook`.
    pub webhook: ReplicasWithPdb,
    /// `certController`.
    pub cert_controller: ReplicasWithPdb,
}

/// `{replicaCount, podDisruptionBudget}` of a chart's secondary deployment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicasWithPdb {
    /// `replicaCount`.
    pub replica_count: u32,
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: Pdb,
}

impl ReplicasWithPdb {
    /// Two replicas, one may be evicted.
    pub fn two() -> Self {
        ReplicasWithPdb {
            replica_count: 2,
            pod_disruption_budget: Pdb::one_of_two(),
        }
    }
}

/// Argo Rollouts (`charts/argo-rollouts/values.yaml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgoRollouts {
    /// `installCRDs`.
    #[serde(rename = "installCRDs")]
    pub install_crds: bool,
    /// `controller`.
    pub controller: ArgoController,
    /// `dashboard`: not installed.
    pub dashboard: Enabled,
}

/// Argo Rollouts `controller`.
#[derive(Debug, Clone, Serialize)]
pub struct ArgoController {
    /// `replicas` (leader election: one active).
    pub replicas: u32,
    /// `pdb`.
    pub pdb: Pdb,
}

/// AWS Load Balancer Controller (`helm/aws-load-balancer-controller/values.yaml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LbController {
    /// `clusterName`.
    pub cluster_name: String,
    /// `region`.
    pub region: String,
    /// `vpcTags`: the controller finds the VPC by its Name tag.
    pub vpc_tags: Map,
    /// `replicaCount`.
    pub replica_count: u32,
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: MaxUnavailable,
    /// `serviceAccount`.
    pub service_account: ServiceAccount,
}

/// `{maxUnavailable: <n>}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MaxUnavailable {
    /// Pods that may be down at once.
    pub max_unavailable: u32,
}

/// Cluster Autoscaler (`cluster-autoscaler/charts/cluster-autoscaler/values.yaml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAutoscaler {
    /// `fullnameOverride`: the Deployment's name.
    pub fullname_override: String,
    /// `cloudProvider`.
    pub cloud_provider: String,
    /// `awsRegion`.
    pub aws_region: String,
    /// `autoDiscovery`.
    pub auto_discovery: AutoDiscovery,
    /// `image`: the autoscaler's minor matches the cluster's.
    pub image: ImageTag,
    /// `replicaCount` (leader election: one active).
    pub replica_count: u32,
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: MaxUnavailable,
    /// `rbac`.
    pub rbac: Rbac,
}

/// Cluster Autoscaler `autoDiscovery`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoDiscovery {
    /// The cluster whose node groups' Auto Scaling groups (tagged by EKS) are discovered.
    pub cluster_name: String,
}

/// `image.tag`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageTag {
    /// Tag.
    pub tag: String,
}

/// Cluster Autoscaler `rbac`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rbac {
    /// `serviceAccount`.
    pub service_account: ServiceAccount,
}

/// `configuration_values` of the metrics-server and cert-manager EKS add-ons (their
/// upstream charts' keys).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsServerConfig {
    /// `replicas`.
    pub replicas: u32,
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: Pdb,
}

/// `configuration_values` of the cert-manager EKS add-on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertManagerConfig {
    /// `replicaCount`.
    pub replica_count: u32,
    /// `podDisruptionBudget`.
    pub pod_disruption_budget: Pdb,
    /// `webhook`.
    pub webhook: ReplicasWithPdb,
    /// `cainjector`.
    pub cainjector: ReplicasWithPdb,
    /// `serviceAccount.annotations`: the IRSA role for DNS-01 (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<Annotations>,
}

/// `{annotations: {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct Annotations {
    /// The annotations.
    pub annotations: Map,
}

/// `configuration_values` of the vpc-cni EKS add-on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcCniConfig {
    /// `"true"`: the node agent enforces NetworkPolicies.
    pub enable_network_policy: String,
}
