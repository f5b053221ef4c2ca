//! Kubernetes output: typed objects (k8s-openapi with one API version feature, the oldest
//! the crate supports) and small typed custom-resource structs, the service construct that
//! builds them, and rendering to YAML files plus a `kustomization.yaml`.
//!
//! Self-contained: uses only external crates and `super::` paths.
//!
//! # Public API
//!
//! * [`service()`] with [`ServiceProps`]: one HTTP service as Namespace (Pod Security
//!   `restricted`) + ResourceQuota + LimitRange, ServiceAccount, ConfigMap, ExternalSecret,
//!   Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, Ingress,
//!   NetworkPolicies and ServiceMonitor; behind Traefik also the HTTP→HTTPS redirect
//!   Ingress and its `Middleware`s (redirect, rate limit).
//! * [`deployer()`] / [`stack_deployer()`]: a CI deployer's namespaced Role, derived from
//!   the stack's objects, and its RoleBinding (its EKS access entry's group).
//! * [`Object`]: one object (kind, name, namespace, [`Rank`], JSON content) made from a
//!   typed value with [`Object::new`].
//! * [`render()`]: `&[Object]` -> file name -> YAML text, plus `kustomization.yaml`.
//! * [`K8sError`]: every error, with lowercase messages saying what was found and expected.
//!
//! ```text
//! use keel::k8s::*;
//! let app = AppLabels { name: "analytics-api".into(), instance: "analytics-api-prod".into(),
//!     version: "1.0.0".into(), component: "api".into(), part_of: "llm-observatory".into() };
//! let image = Image::Digest { repo: "ghcr.io/acme/analytics-api".into(), digest: env.image_digest() };
//! image.require_digest()?;                                  // prod
//! let mut props = ServiceProps::new(app, "analytics", image);
//! props.replicas = 3;
//! props.autoscaling = Some(Autoscaling { min_replicas: 3, max_replicas: 10,
//!     cpu_utilization_percent: 70, memory_utilization_percent: 80 });
//! props.ingress = Some(IngressProps::new(IngressClass::Nginx(NginxIngress {
//!     cluster_issuer: "letsencrypt-prod".into(), limit_rps: Some(100) }), "api.example.com"));
//! props.secrets.env.push(SecretEnv { env: "DATABASE_URL".into(), source: SecretSource::SecretsManager {
//!     remote_key: "prod/analytics-api/database-url".into(), property: None } });
//! props.network.egress = vec![EgressPeer::postgres("10.0.32.0/20"), EgressPeer::redis("10.0.32.0/20")];
//! props.suppressions.push(Suppression::new("Deployment", "CKV_K8S_35",
//!     "the workload reads DATABASE_URL, REDIS_URL and JWT_SECRET from env by design"));
//! let files = render(&service(&props)?)?;                   // name -> YAML, incl. kustomization.yaml
//! ```
//!
//! Invariants: nothing here does I/O; every object comes from a typed struct; selectors use
//! only `app.kubernetes.io/name` and `app.kubernetes.io/instance`; no secret value is ever
//! rendered (only `secretKeyRef`s and ExternalSecret remote keys).

mod autoscaling;
mod config_map;
mod construct;
mod database_login;
mod deployment;
mod error;
mod external_secret;
mod ingress;
mod namespace;
mod network_policy;
mod object;
mod pod_disruption_budget;
mod prometheus_rule;
mod quota;
mod rbac;
mod render;
mod rollout;
mod service;
mod service_account;
mod service_monitor;
mod traefik;

pub mod dashboard;
pub mod labels;

pub use autoscaling::Autoscaling;
pub use config_map::{APART_FROM_IMAGE, config_map_name};
pub use construct::{ServiceProps, service};
pub use database_login::{
    DATABASE_LOGIN, DatabaseLoginJobProps, HostSecret, RDS_PRIMARY_INSTANCE_TAG,
    TTL_SECONDS_AFTER_FINISHED, database_login, database_login_labels,
};
pub use deployment::{
    CONFIG_HASH_ANNOTATION, HTTP_PORT_NAME, Image, InitContainer, METRICS_PORT_NAME, PodCount,
    PodSecurity, Ports, Probes, Resources, RollingUpdate, TopologySpread, UserOwner,
    WhenUnsatisfiable, WritableDir, count,
};
pub use error::K8sError;
pub use external_secret::{
    AwsSecretStore, ExternalSecret, ExternalSecretData, ExternalSecretSpec, ExternalSecretTarget,
    RemoteRef, SecretEnv, SecretSource, SecretStore, SecretStoreKind, SecretStoreRef, SecretsProps,
    StoreAuth, secret_store, target_secret_name,
};
pub use ingress::{
    AlbAttributes, AlbIngress, AlbScheme, IngressClass, IngressProps, NginxIngress,
    ROUTER_MIDDLEWARES, TraefikIngress, tls_secret_name,
};
pub use labels::AppLabels;
pub use namespace::{NamespacePolicy, POD_SECURITY_LEVEL};
pub use network_policy::{
    ACME_HTTP01_POLICY, ACME_HTTP01_SOLVER_PORT, EgressPeer, NetworkPolicyProps, Protocol,
    PublicHttps, TrafficSource,
};
pub use object::{Object, Rank, Suppression, meta, quantity};
pub use pod_disruption_budget::DisruptionBudget;
pub use prometheus_rule::{PrometheusRule, PrometheusRuleSpec, Rule, RuleGroup};
pub use quota::{ACME_SOLVER, ONE_OFF_POD, Peak, PodSizes, cpu_millis, memory_mib};
pub use rbac::{
    ADMIN_KINDS, APPLY_VERBS, DEPLOYER_ROLE, DeployerProps, WORKLOAD_KINDS, deployer,
    deployer_group, deployer_rules, resource_of, stack_deployer,
};
pub use render::{HEADER, KUSTOMIZATION, render, to_yaml};
pub use rollout::{
    CANARY_HASH_ARG, CanaryAnalysis, CanaryProps, CanaryStep, REVISION_LABEL,
    REVISION_SERIES_LABEL, canary_name, pod_queries, traefik_queries,
};
pub use service_account::{IRSA_ANNOTATION, ServiceAccountProps};
pub use service_monitor::{
    Endpoint, MonitoringProps, NamespaceSelector, ServiceMonitor, ServiceMonitorSpec,
};
pub use traefik::{
    CRD_PROVIDER, Middleware, MiddlewareSpec, RateLimit, RateLimitSpec, RedirectScheme,
    middleware_reference, rate_limit_middleware_name, redirect_middleware_name,
};
