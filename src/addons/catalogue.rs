//! The pinned catalogue: every Helm chart and EKS add-on the layer can install, with where
//! it runs. Chart versions are pinned here (an upgrade is a reviewed code change); EKS
//! add-on versions are pinned per environment (`stacks.platform.addons`), because AWS
//! publishes them per Kubernetes version.
//!
//! The local Terraform provider mirror holds only `hashicorp/aws`, so charts are not
//! Terraform `helm_release`s: `keel plan` runs `helm upgrade --install` with the values
//! files keel writes under `generated/<env>/platform/addons/`.

/// A Helm chart, pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chart {
    /// Release name (also the chart's name).
    pub release: &'static str,
    /// Chart repository URL.
    pub repository: &'static str,
    /// Chart version.
    pub version: &'static str,
    /// The chart keeps CRDs in a `crds/` directory (its own or a subchart's). Helm installs
    /// those once and never upgrades them, so every install step applies the pinned
    /// chart's CRDs first ([`crate::plan::Source::crds_command`]). `false` for charts
    /// that template their CRDs (upgraded with the release) or have none.
    pub crds_directory: bool,
}

/// ingress-nginx 4.15.1 (controller v1.15.1): the `nginx` ingress class.
///
/// Retired upstream: Kubernetes SIG Network and the Security Response Committee announced
/// on 2025-11-11 that best-effort maintenance ends in March 2026, with no release or
/// security fix after it. The replacement path, for every stack that uses the class (the
/// platform warns while one does, [`INGRESS_NGINX_RETIRED`]): set the environment's
/// `kubernetes.ingress_class` to `traefik` (the Traefik chart below already serves
/// whatsthecraic, reads standard Ingresses, and its `traefik.io` Middlewares replace the
/// nginx annotations) or to `alb` (AWS Load Balancer Controller, one ALB per Ingress);
/// Gateway API (`gateway.networking.k8s.io`, served by both) is the longer-term target once
/// keel emits it. ingress-nginx stays in the catalogue until no environment names `nginx`.
pub const INGRESS_NGINX: Chart = Chart {
    release: "ingress-nginx",
    repository: "https://kubernetes.github.io/ingress-nginx",
    version: "4.15.1",
    crds_directory: false,
};

/// The platform's warning while an environment still installs [`INGRESS_NGINX`].
pub const INGRESS_NGINX_RETIRED: &str = "ingress-nginx is retired upstream (no release or security fix since March 2026): move kubernetes.ingress_class to `traefik` or `alb` (see src/addons/catalogue.rs)";

/// Traefik chart 41.3.0 (Traefik v3.7.11): the `traefik` class and the `traefik.io` CRDs
/// (in `crds/`).
pub const TRAEFIK: Chart = Chart {
    release: "traefik",
    repository: "https://traefik.github.io/charts",
    version: "41.3.0",
    crds_directory: true,
};

/// kube-prometheus-stack 88.5.3 (prometheus-operator v0.93.1): the `monitoring.coreos.com`
/// CRDs (in its `crds` subchart's `crds/` directory), the operator, one Prometheus and one
/// Alertmanager.
pub const KUBE_PROMETHEUS_STACK: Chart = Chart {
    release: "kube-prometheus-stack",
    repository: "https://prometheus-community.github.io/helm-charts",
    version: "88.5.3",
    crds_directory: true,
};

/// External Secrets 0.19.2: the `external-secrets.io` CRDs (templated, `installCRDs`) and
/// controller.
pub const EXTERNAL_SECRETS: Chart = Chart {
    release: "external-secrets",
    repository: "https://charts.external-secrets.io",
    version: "0.19.2",
    crds_directory: false,
};

/// Argo Rollouts chart 2.41.0 (Argo Rollouts v1.9.0): the `argoproj.io` Rollout CRDs
/// (templated, `installCRDs`).
pub const ARGO_ROLLOUTS: Chart = Chart {
    release: "argo-rollouts",
    repository: "https://argoproj.github.io/argo-helm",
    version: "2.41.0",
    crds_directory: false,
};

/// AWS Load Balancer Controller chart 1.14.1 (controller v2.14.1, the first line that
/// attaches a WAF web ACL named by `alb.ingress.kubernetes.io/wafv2-acl-name`): the `alb`
/// class, the `elbv2.k8s.aws` CRDs (in `crds/`), and the NLBs of the in-cluster ingress controllers'
/// Services.
pub const LB_CONTROLLER: Chart = Chart {
    release: "aws-load-balancer-controller",
    repository: "https://aws.github.io/eks-charts",
    version: "1.14.1",
    crds_directory: true,
};

/// Cluster Autoscaler chart 9.59.0: scales the managed node groups between their bounds.
pub const CLUSTER_AUTOSCALER: Chart = Chart {
    release: "cluster-autoscaler",
    repository: "https://kubernetes.github.io/autoscaler",
    version: "9.59.0",
    crds_directory: false,
};

/// EKS add-on: the Kubernetes Metrics Server (community add-on), namespace `kube-system`.
pub const METRICS_SERVER: &str = "metrics-server";
/// EKS add-on: cert-manager (community add-on), namespace `cert-manager`.
pub const CERT_MANAGER: &str = "cert-manager";
/// EKS add-on: CloudWatch agent and Fluent Bit (container logs to CloudWatch Logs),
/// namespace `amazon-cloudwatch`.
pub const CLOUDWATCH_OBSERVABILITY: &str = "amazon-cloudwatch-observability";

/// The namespace of the cert-manager EKS add-on.
pub const CERT_MANAGER_NAMESPACE: &str = "cert-manager";
/// The namespace of the CloudWatch observability EKS add-on.
pub const CLOUDWATCH_NAMESPACE: &str = "amazon-cloudwatch";
/// The namespace of External Secrets.
pub const EXTERNAL_SECRETS_NAMESPACE: &str = "external-secrets";
/// The External Secrets controller's ServiceAccount (it has no AWS role).
pub const EXTERNAL_SECRETS_SERVICE_ACCOUNT: &str = "external-secrets";
/// Where Argo Rollouts runs.
pub const ARGO_ROLLOUTS_NAMESPACE: &str = "argo-rollouts";
/// Where the cluster-wide controllers without a namespace of their own run.
pub const KUBE_SYSTEM: &str = "kube-system";
/// Where Traefik runs unless the environment's ingress namespace or the whatsthecraic stack
/// says otherwise.
pub const TRAEFIK_NAMESPACE: &str = "traefik";
/// Where ingress-nginx runs unless it is the environment's ingress class.
pub const INGRESS_NGINX_NAMESPACE: &str = "ingress-nginx";
