//! The vocabulary of a deploy plan: what a step needs before it runs ([`Capability`]),
//! what it gives the steps after it, how a cluster add-on is installed ([`Install`]) and
//! what to wait for before it counts as ready ([`Wait`]).
//!
//! Requirements are read from what keel generates (an object's API group, namespace,
//! ingress class, issuer, ...); provisions are declared by whatever installs or creates
//! the thing. The plan orders steps so every requirement is provided earlier.

use std::collections::BTreeMap;

use serde::Serialize;

/// Something that must exist in the account or cluster before a step can succeed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// A Terraform root of this stack is applied (its exports exist).
    TerraformRoot(String),
    /// `kubectl` and `helm` reach the cluster's API: credentials for the environment's
    /// cluster, on a runner inside its VPC.
    ClusterLogin,
    /// The CRDs of this API group are established and its controller is running
    /// (e.g. `cert-manager.io`, `monitoring.coreos.com`).
    ApiGroup(String),
    /// This namespace exists.
    Namespace(String),
    /// An ingress controller serves this IngressClass (e.g. `nginx`, `traefik`, `alb`).
    IngressClass(String),
    /// A cert-manager ClusterIssuer of this name exists.
    ClusterIssuer(String),
    /// The resource metrics API (`metrics.k8s.io`, metrics-server): resource HPAs work.
    ResourceMetrics,
    /// The CNI enforces NetworkPolicies.
    NetworkPolicyEnforcement,
    /// A Prometheus selects monitors and rules carrying these labels (an empty map selects
    /// every one); a requirement is met when this selector is a subset of the object's
    /// labels.
    Prometheus(BTreeMap<String, String>),
    /// A ClusterSecretStore of this name exists.
    ClusterSecretStore(String),
    /// A SecretStore of this name exists in this namespace: `(namespace, name)`.
    SecretStore(String, String),
    /// The application login of this stack's database exists: `(stack, login)`.
    DatabaseLogin(String, String),
    /// The `k8s/` objects of this stack are applied and rolled out.
    Applied(String),
}

impl Capability {
    /// Whether a step that provides `self` meets the requirement `need`.
    pub fn satisfies(&self, need: &Capability) -> bool {
        match (self, need) {
            (Capability::Prometheus(selector), Capability::Prometheus(labels)) => selector
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|l| l == v)),
            (have, need) => have == need,
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Capability::TerraformRoot(s) => write!(f, "Terraform root {s} applied"),
            Capability::ClusterLogin => write!(f, "a login to the cluster from inside its VPC"),
            Capability::ApiGroup(g) => write!(f, "CRDs and controller of {g}"),
            Capability::Namespace(n) => write!(f, "namespace {n}"),
            Capability::IngressClass(c) => write!(f, "ingress controller of class {c}"),
            Capability::ClusterIssuer(i) => write!(f, "ClusterIssuer {i}"),
            Capability::ResourceMetrics => write!(f, "resource metrics API (metrics-server)"),
            Capability::NetworkPolicyEnforcement => {
                write!(f, "a CNI that enforces NetworkPolicies")
            }
            Capability::Prometheus(labels) if labels.is_empty() => {
                write!(f, "a Prometheus selecting every monitor and rule")
            }
            Capability::Prometheus(labels) => {
                let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "a Prometheus selecting {}", shown.join(","))
            }
            Capability::ClusterSecretStore(s) => write!(f, "ClusterSecretStore {s}"),
            Capability::SecretStore(ns, s) => write!(f, "SecretStore {ns}/{s}"),
            Capability::DatabaseLogin(stack, login) => {
                write!(f, "database login {login} of {stack}")
            }
            Capability::Applied(stack) => write!(f, "Kubernetes objects of {stack} applied"),
        }
    }
}

/// A readiness condition the plan waits on after a step, before the steps that need it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// A CustomResourceDefinition has the condition `Established`, e.g.
    /// `certificates.cert-manager.io`.
    CrdEstablished(String),
    /// A Deployment has rolled out: `(namespace, name)`.
    DeploymentReady(String, String),
    /// A DaemonSet has rolled out: `(namespace, name)`.
    DaemonSetReady(String, String),
    /// An Argo Rollout reports `Healthy`: `(namespace, name)`.
    RolloutHealthy(String, String),
    /// A Job completed: `(namespace, name)`.
    JobComplete(String, String),
}

/// How an add-on gets into the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An EKS add-on (`aws_eks_addon` in the platform's Terraform root): installed when that
    /// root is applied.
    EksAddon {
        /// AWS's add-on name, e.g. `metrics-server`.
        name: String,
        /// Pinned version, e.g. `v0.7.2-eksbuild.1`.
        version: String,
    },
    /// A Helm chart, pinned, with a values file keel generates.
    Helm {
        /// Chart name in its repository.
        chart: String,
        /// Chart repository URL.
        repository: String,
        /// Pinned chart version.
        version: String,
        /// Values file, relative to `generated/<env>/platform/`.
        values_file: String,
        /// The chart keeps CRDs in a `crds/` directory, which `helm upgrade` never
        /// upgrades: [`Source::crds_command`] applies them before each install.
        crds_directory: bool,
    },
}

/// Applies the CRDs of a chart's `crds/` directories (`helm show crds` includes its
/// subcharts') server-side: whole CRDs exceed the client-side annotation limit, and the
/// fields Helm set at install are taken over. An empty output fails `kubectl apply`, so a
/// chart that cannot be fetched stops the step.
const APPLY_CRDS: &str = "set -eu; crds=$(helm show crds \"$1\" --repo \"$2\" --version \"$3\"); printf '%s\\n' \"$crds\" | kubectl apply --server-side --force-conflicts -f -";

impl Source {
    /// The command that applies a Helm chart's `crds/` CRDs at its pinned version, run
    /// before `helm upgrade --install`; `None` for EKS add-ons and charts without one.
    /// Helm installs such CRDs on the first install only and never upgrades them, so a
    /// chart bump would otherwise run the new controller against the old CRDs.
    pub fn crds_command(&self) -> Option<Vec<String>> {
        match self {
            Source::Helm {
                chart,
                repository,
                version,
                crds_directory: true,
                ..
            } => Some(
                ["sh", "-c", APPLY_CRDS, "sh", chart, repository, version]
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// One cluster add-on of an environment: what installs it, what it gives, what it needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Install {
    /// Release (or add-on) name, unique per environment, e.g. `cert-manager`.
    pub name: String,
    /// Namespace it runs in.
    pub namespace: String,
    /// How it is installed.
    pub source: Source,
    /// What it gives the steps after it.
    pub provides: Vec<Capability>,
    /// What must exist before it is installed (besides the platform's Terraform root).
    pub requires: Vec<Capability>,
    /// What to wait for before it counts as installed.
    pub waits: Vec<Wait>,
}

/// What a stack's extra step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `kubectl apply -k` of a folder relative to `generated/<env>/<stack>/`, e.g.
    /// `jobs/database-login`.
    KubectlApply {
        /// The folder, holding a `kustomization.yaml`.
        dir: String,
    },
    /// A script relative to `generated/<env>/<stack>/` (e.g. `deploy/run-database-login.sh`),
    /// run from the repository root with the arguments given. Must be idempotent.
    Script {
        /// The script's path.
        path: String,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// Where a step must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// Needs only AWS's public APIs (Terraform, `aws` calls): any runner.
    AwsApi,
    /// Needs the cluster's private API endpoint or the databases: a runner in the VPC.
    Vpc,
}

/// A step a stack adds to the plan beside its Terraform root and its `k8s/` apply, e.g.
/// a one-off database-login job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackStep {
    /// Short name, unique within the stack, e.g. `database-login`.
    pub name: String,
    /// What it does.
    pub action: Action,
    /// Where it must run.
    pub reach: Reach,
    /// What it gives the steps after it (e.g. [`Capability::DatabaseLogin`]).
    pub provides: Vec<Capability>,
    /// What must exist before it runs, besides the stack's own Terraform root.
    pub requires: Vec<Capability>,
    /// What to wait for before it counts as done.
    pub waits: Vec<Wait>,
    /// ExternalSecrets (`(namespace, name)`) of the step's folder that are force-synced,
    /// and waited for, before its Jobs run ([`super::resync`]): a Job reads its Secret at
    /// start, which External Secrets refreshes only on its interval otherwise.
    pub sync_before: Vec<(String, String)>,
}

/// Something outside keel that a deploy of the environment needs, made by a person or
/// another system: `keel preflight ENV` checks each one and says how to create what is
/// missing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum External {
    /// The S3 bucket holding the environment's Terraform state.
    StateBucket {
        /// Bucket name.
        bucket: String,
    },
    /// The IAM role the deploy workflow assumes by OIDC to apply.
    ApplyRole {
        /// Role name.
        name: String,
    },
    /// The read-only IAM role the deploy workflow's plan jobs assume by OIDC.
    PlanRole {
        /// Role name.
        name: String,
    },
    /// A public Route 53 hosted zone that serves these host names.
    HostedZone {
        /// The host name that must resolve in it, e.g. `api.example.com`.
        host: String,
    },
    /// An ACM certificate that must be issued.
    Certificate {
        /// Certificate ARN.
        arn: String,
    },
    /// A Secrets Manager secret keel creates empty, whose value a person sets.
    SecretValue {
        /// Secret name.
        name: String,
        /// What to put in it, and how (e.g. the script that sets it).
        how: String,
    },
    /// An HTTP service outside the environment a workload calls.
    Service {
        /// What it is, e.g. `Langfuse`.
        what: String,
        /// Base URL.
        url: String,
    },
    /// A CodeConnections (GitHub) connection that a person must authorize once.
    Connection {
        /// Connection name.
        name: String,
    },
}

/// When a deploy needs an external dependency: some must exist before any Terraform is
/// applied, others only once the Terraform roots created what they fill or authorize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Before the first `terraform apply`: the state bucket, the apply role, hosted zones
    /// and certificates the roots reference.
    Terraform,
    /// Before the cluster steps: secret values (their secrets are created empty by the
    /// roots), the runner's connection (created by the platform root, authorized by a
    /// person), the services workloads call.
    Cluster,
}

impl External {
    /// The stage of a deploy by which this must exist.
    pub fn needed_before(&self) -> Stage {
        match self {
            External::StateBucket { .. }
            | External::ApplyRole { .. }
            | External::PlanRole { .. }
            | External::HostedZone { .. }
            | External::Certificate { .. } => Stage::Terraform,
            External::SecretValue { .. }
            | External::Service { .. }
            | External::Connection { .. } => Stage::Cluster,
        }
    }
}
