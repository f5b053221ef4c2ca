//! The shape of `environments/<env>.yaml`: serde + schemars structs, `deny_unknown_fields`.
//!
//! These doc comments flow into `environments/schema.json`, so editors show them. Every
//! value that differs between dev, staging and prod lives here; stacks read it through
//! [`crate::env::Env`], after `load` has validated it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One environment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    /// Environment name; must equal the file's stem (`prod` for `prod.yaml`).
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,15}$"))]
    pub name: String,
    /// Policy tier: prod requires Multi-AZ, deletion protection, pinned image digests. An
    /// environment named after a tier (`prod`, `prod-eu`) must have that tier.
    pub tier: Tier,
    /// AWS account id (12 digits, quoted). Plans against any other account fail.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: String,
    /// Other AWS accounts whose principals this file may name (cluster admins, trusted
    /// roles). Every IAM principal in the file must belong to `account_id` or to one of
    /// these, so a principal of a foreign account is a visible, reviewed line. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^[0-9]{12}$")))]
    pub trusted_accounts: Vec<String>,
    /// AWS region, e.g. `us-east-1`.
    #[schemars(regex(pattern = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"))]
    pub region: String,
    /// Terraform state: one S3 object per stack under `key_prefix`.
    pub state: StateBackend,
    /// The VPC every stack of this environment builds.
    pub network: Network,
    /// Where alarm notifications go.
    pub alerts: Alerts,
    /// Extra tags on every resource (Environment, Stack and ManagedBy are always set and
    /// cannot be given here). AWS rules: keys 1..=128 characters, values up to 256, of
    /// letters, numbers, spaces and `_ . : / = + - @`; no key starting with `aws:`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Registries (or registry paths) images may come from besides the ECR repositories the
    /// stacks create, e.g. `ghcr.io/acme`. An image's repository must be a stack's own
    /// repository (`<account_id>.dkr.ecr.<region>.amazonaws.com/<name>`) or lie under one of
    /// these (at a `/` boundary). Default: none (images only from the stacks' own
    /// repositories).
    #[serde(default)]
    #[schemars(inner(regex(
        pattern = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
    )))]
    pub image_registries: Vec<String>,
    /// The Kubernetes cluster the environment's Kubernetes stacks deploy to.
    #[serde(default)]
    pub kubernetes: Option<Kubernetes>,
    /// Per-stack settings. A stack without settings here is not synthesized for this
    /// environment.
    pub stacks: Stacks,
    /// Existing resources to adopt instead of creating them: per stack, a keel resource
    /// address (`aws_vpc.main`, as `keel show` prints it) and the id of the existing resource
    /// (in the form the type's Terraform import takes, e.g. `vpc-0a1b2c3d4e5f60718`). Synth
    /// writes a Terraform `import` block for each (`terraform/imports.tf.json`); `keel adopt
    /// ENV --from FILE` proposes entries. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub adopt: crate::env::adopt::Adoptions,
}

impl EnvFile {
    /// The URL of the ECR repository `name` in this environment's account and region: where
    /// the repository a stack creates serves its images.
    pub fn ecr_repository_url(&self, name: &str) -> String {
        format!(
            "{}.dkr.ecr.{}.amazonaws.com/{name}",
            self.account_id, self.region
        )
    }

    /// Whether `repository` lies under a registry of [`EnvFile::image_registries`].
    pub fn allows_registry_of(&self, repository: &str) -> bool {
        self.image_registries.iter().any(|r| {
            repository
                .strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// Policy tier of an environment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Development: cheapest settings allowed.
    Dev,
    /// Pre-production: prod's shape, smaller sizes.
    Staging,
    /// Production: strictest policy.
    Prod,
}

/// S3 backend settings (literal per environment: Terraform cannot template them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateBackend {
    /// State bucket name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// Key prefix; the state key is `<key_prefix>/<stack>/terraform.tfstate`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_./-]+$"))]
    pub key_prefix: String,
    /// Bucket region. Default: the environment's region.
    #[serde(default)]
    pub region: Option<String>,
    /// Encrypt the state object (required in prod). Default: `true`.
    #[serde(default = "yes")]
    pub encrypt: bool,
    /// S3-native locking (Terraform >= 1.10; required in prod). Default: `true`.
    #[serde(default = "yes")]
    pub use_lockfile: bool,
}

fn yes() -> bool {
    true
}

/// VPC layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// VPC CIDR, /16 to /24; public and private subnets are carved from it.
    pub vpc_cidr: String,
    /// Availability zones to spread over (2..=the region's count).
    #[schemars(range(min = 2, max = 6))]
    pub az_count: u8,
    /// One NAT gateway per AZ (survives an AZ outage) or one shared (cheaper).
    pub nat_gateways: NatGateways,
    /// Days to keep VPC flow logs.
    pub flow_log_retention_days: u32,
}

/// NAT gateway layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NatGateways {
    /// One per availability zone.
    PerAz,
    /// One in the first AZ, shared by all private subnets.
    Single,
}

/// Alarm notification settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// E-mail address subscribed to the alarm topic.
    #[schemars(regex(pattern = r"^[^@ ]+@[^@ ]+\.[^@ ]+$"))]
    pub email: String,
}

/// The Kubernetes cluster of the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// Cluster minor version, `"1.33"` to `"1.37"` (the versions keel validates manifests
    /// against); the platform's kube-proxy add-on must be a build of the same version.
    #[schemars(regex(pattern = r"^1\.3[3-7]$"))]
    pub version: String,
    /// EKS support policy of the cluster (its `upgrade_policy.support_type`). `standard`:
    /// a version past its end of standard support is an error. `extended`: the cluster
    /// may run a version up to 12 months longer, at $0.60 instead of $0.10 per
    /// cluster-hour while it does (a warning says so on every synth); past extended
    /// support it is an error too. Default: `standard`, set explicitly (a cluster without
    /// a policy is enrolled in extended support by AWS and billed for it). See
    /// <https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html>.
    #[serde(default)]
    pub support: KubernetesSupport,
    /// Ingress controller class used by this cluster.
    pub ingress_class: IngressClassName,
    /// Namespace the ingress controller runs in (allowed through NetworkPolicies).
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub ingress_namespace: String,
    /// Namespace Prometheus runs in (allowed to scrape metrics ports).
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub monitoring_namespace: String,
    /// cert-manager ClusterIssuer for TLS certificates (nginx and traefik classes).
    #[serde(default)]
    pub cluster_issuer: Option<String>,
    /// How that issuer proves control of the host names. With `http01` the ACME solver pod
    /// in the app's namespace must be reachable from the ingress controller (port 8089),
    /// which keel's NetworkPolicies then allow. Default: `http01`.
    #[serde(default)]
    pub acme_challenge: AcmeChallenge,
    /// Labels the cluster's Prometheus selects ServiceMonitors by (its
    /// `serviceMonitorSelector`; kube-prometheus-stack: `release: <helm release>`).
    /// Default: none (a Prometheus that selects every ServiceMonitor).
    #[serde(default)]
    pub service_monitor_labels: BTreeMap<String, String>,
}

impl Kubernetes {
    /// The cluster's Prometheus: the `prometheus-operated` Service prometheus-operator
    /// creates beside every Prometheus it runs, in the monitoring namespace.
    pub fn prometheus_address(&self) -> String {
        format!(
            "http://prometheus-operated.{}.svc.cluster.local:9090",
            self.monitoring_namespace
        )
    }
}

/// EKS support policies of a cluster's Kubernetes version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesSupport {
    /// Standard support only (14 months per minor on EKS).
    #[default]
    Standard,
    /// Opted in to extended support (12 more months, six times the cluster-hour price).
    Extended,
}

impl KubernetesSupport {
    /// The value of `aws_eks_cluster.upgrade_policy.support_type`.
    pub fn support_type(self) -> &'static str {
        match self {
            KubernetesSupport::Standard => "STANDARD",
            KubernetesSupport::Extended => "EXTENDED",
        }
    }
}

/// ACME challenge types of a cert-manager issuer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcmeChallenge {
    /// HTTP-01: a solver pod answers on the ingress.
    #[default]
    Http01,
    /// DNS-01: a TXT record; nothing reaches the cluster.
    Dns01,
}

/// Ingress controller families keel can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IngressClassName {
    /// ingress-nginx.
    Nginx,
    /// Traefik.
    Traefik,
    /// AWS Load Balancer Controller.
    Alb,
}

/// Settings per stack: one optional field per registered stack, each struct defined in
/// its stack's file (`stacks/<name>.rs`); see [`crate::stacks::Settings`].
pub type Stacks = crate::stacks::Settings;

pub use crate::stacks::analytics_api::{Cache, PodAutoscaling, Settings as AnalyticsApi};
pub use crate::stacks::langgraph_platform::{
    AlarmThresholds, Deployment, Jira, Scaling, Settings as LanggraphPlatform, TaskSize,
};

/// A container image pinned by tag (dev) or digest (required in prod).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Repository, e.g. `111122223333.dkr.ecr.us-east-1.amazonaws.com/app`.
    #[schemars(regex(pattern = r"^[a-z0-9]+([._/-][a-z0-9]+|[.:][0-9]+/)*[a-z0-9]+$"))]
    pub repository: String,
    /// Tag (mutable); not allowed in prod. Exactly one of `tag` and `digest`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"))]
    pub tag: Option<String>,
    /// Digest `sha256:<64 hex>`. Exactly one of `tag` and `digest`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub digest: Option<String>,
}

/// Who may reach a load balancer that has no certificate, so serves plain HTTP. An
/// environment without `certificate_arn` must say which; prod-tier environments need a
/// certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlainHttp {
    /// Only clients inside the VPC: an internal load balancer.
    Internal,
    /// Anyone on the internet, unencrypted: a development environment without a domain,
    /// chosen on purpose (synth warns).
    InternetFacing,
}

/// A database on RDS: PostgreSQL or MySQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Engine: `postgres` or `mysql`. Default: `postgres`.
    #[serde(default)]
    pub engine: DbEngine,
    /// Major version of the engine: for PostgreSQL a whole number, 13 to 17 (`15`); for
    /// MySQL `"8.0"` or `"8.4"`, quoted. RDS applies minor versions in the maintenance
    /// window; a pinned minor would make the next plan try to downgrade the instance.
    pub engine_major_version: EngineMajorVersion,
    /// Instance class, e.g. `db.r6g.large`.
    #[schemars(regex(pattern = r"^db\.[a-z0-9]+\.[a-z0-9]+$"))]
    pub instance_class: String,
    /// Allocated storage in GiB, 20 (the gp3 minimum) to 32768 (storage autoscaling goes to
    /// twice this, the 64 TiB maximum). It can only grow: synth refuses less than the
    /// committed `generated/` tree holds, since RDS cannot shrink storage.
    #[schemars(range(min = 20, max = 32768))]
    pub allocated_storage_gib: u32,
    /// Synchronous standby in a second AZ (required in prod).
    pub multi_az: bool,
    /// Refuse deletion and keep a final snapshot (required in prod).
    pub deletion_protection: bool,
    /// Automated backup retention in days (1..=35).
    #[schemars(range(min = 1, max = 35))]
    pub backup_retention_days: u32,
}

/// The database engine of an RDS instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DbEngine {
    /// PostgreSQL (RDS engine `postgres`).
    #[default]
    Postgres,
    /// MySQL Community (RDS engine `mysql`).
    Mysql,
}

/// An engine major version: a PostgreSQL number or a MySQL release series. That it is
/// one of the file's `engine` is checked after loading (`env::check::database`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EngineMajorVersion {
    /// PostgreSQL major version, 13 to 17.
    Postgres(PostgresMajor),
    /// MySQL release series.
    Mysql(MysqlMajor),
}

/// A PostgreSQL major version, 13 to 17.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PostgresMajor(#[schemars(range(min = 13, max = 17))] pub u32);

/// A MySQL release series RDS offers: `8.0` (past RDS standard support since 2026-07-31,
/// Extended Support is charged) or `8.4` (LTS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MysqlMajor {
    /// MySQL 8.0.
    #[serde(rename = "8.0")]
    V8_0,
    /// MySQL 8.4 (long-term support).
    #[serde(rename = "8.4")]
    V8_4,
}

impl MysqlMajor {
    /// The series as RDS names it (`8.0`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V8_0 => "8.0",
            Self::V8_4 => "8.4",
        }
    }
}

impl DbEngine {
    /// The RDS engine name (`postgres`, `mysql`).
    pub fn rds_name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }

    /// The engine's name for people (`PostgreSQL`, `MySQL`).
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Mysql => "MySQL",
        }
    }

    /// The port its clients connect to.
    pub fn port(self) -> u16 {
        match self {
            Self::Postgres => 5432,
            Self::Mysql => 3306,
        }
    }
}
