//! platform: the environment's EKS cluster in a VPC of its own, the identities of its
//! controllers, and the values other stacks import (cluster, network, identities).
//!
//! - VPC from the shared construct, subnets tagged for load-balancer discovery.
//! - EKS with access entries only (`API` mode, no implicit creator admin), secrets
//!   envelope-encrypted, all control-plane logs, private endpoint (public only from the
//!   allow-list), the IAM OIDC provider, managed node groups through launch templates
//!   (IMDSv2, hop limit 1, encrypted gp3), add-ons pinned per environment.
//! - Controller identities (IRSA or Pod Identity, per environment): vpc-cni and the EBS CSI
//!   driver (their own roles, not the node role), External Secrets (secrets under
//!   `keel/<env>/` and the stacks' own reader roles; exported).
//! - The add-on layer ([`crate::addons`]), derived from every stack of the environment:
//!   EKS add-ons, the identities of the controllers that call AWS, the alerts topic, the
//!   Helm values files (`addons/*.values.yaml`) and the objects that need the add-ons'
//!   CRDs (ClusterIssuers).
//! - The account's GitHub Actions OIDC provider where the environment owns the account.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::construct::db_login::{ClusterJob, DatabaseLogin, LoginJob};
use crate::construct::deploy_runner::{DeployRunner, DeployRunnerProps};
use crate::construct::eks::{
    CLUSTER_ADMIN_POLICY, EksCluster, EksClusterProps, NodeGroupProps, access_policy_arn,
};
use crate::construct::github_deploy::ClusterAccess;
use crate::construct::iam::{GITHUB_OIDC_HOST, Role, STS_AUDIENCE, Statement, Trust};
use crate::construct::kms::KmsKey;
use crate::construct::secret_store::{StackSecretStore, StackSecretStoreProps, stack_secret_store};
use crate::construct::vpc::{Vpc, VpcProps, split_data_subnets};
use crate::construct::workload_identity::{Mechanism, WorkloadIdentity};
use crate::addons::Layer;
use crate::construct::Scope;
use crate::construct::log_group::encrypted_log_group_named;
use crate::construct::observability::AlarmTopic;
use crate::env::Env;
use crate::tf::aws::resource::IamOpenidConnectProvider;
use crate::env::check::{Problems, min_copies, overlaps};
use crate::env::file::EnvFile;
use crate::env::file::NatGateways;
use crate::env::load::{is_prod, parse_cidr};
use crate::exports::{self, Handle, List, One};
use crate::k8s;
use crate::plan::External;
use crate::stack::{Stack, StackDef, StackError, terraform_root};

/// Stack name.
pub const NAME: &str = "platform";

/// Registry entry.
pub const DEF: StackDef = StackDef {
    name: NAME,
    description: "EKS cluster in its own VPC, controller identities, GitHub OIDC; exports for the Kubernetes stacks",
    build,
};

/// Short name: resource names start with `eks-<env>`, and so does the cluster's name.
const SHORT: &str = "eks";

/// The cluster's name in `env`: deterministic, so manifests and other stacks can name it.
pub fn cluster_name(env: &str) -> String {
    format!("{SHORT}-{env}")
}

/// The deploy runner's CodeBuild project in `env`: a workflow job runs on it with
/// `runs-on: codebuild-<this>-${{ github.run_id }}-${{ github.run_attempt }}`
/// ([`crate::construct::deploy_runner::runs_on`]).
pub fn deploy_runner_project(env: &str) -> String {
    format!("{SHORT}-{env}-deploy-runner")
}

/// The CodeConnections connection of the deploy runner in `env` (a person authorizes it
/// once in the console).
pub fn deploy_runner_connection(env: &str) -> String {
    format!("{SHORT}-{env}-github")
}

/// The IAM role the deploy workflow assumes by OIDC in `env`, created outside keel
/// before the first apply: `keel-apply-<env>`. The platform gives it a cluster-admin
/// access entry (`access_apply_role`) for kubectl.
pub fn apply_role_name(env: &str) -> String {
    format!("keel-apply-{env}")
}

/// The read-only IAM role of the deploy workflow's plan jobs in `env`, made by a person
/// (README: "First deploy of a new environment").
pub fn plan_role_name(env: &str) -> String {
    format!("keel-plan-{env}")
}

/// Exports (see [`crate::exports`]).
pub const CLUSTER_NAME: Handle<One> = Handle::new(NAME, "cluster_name");
/// The API server endpoint.
pub const CLUSTER_ENDPOINT: Handle<One> = Handle::new(NAME, "cluster_endpoint");
/// The cluster CA (base64 PEM).
pub const CLUSTER_CA: Handle<One> = Handle::new(NAME, "cluster_ca");
/// The OIDC issuer URL.
pub const OIDC_ISSUER: Handle<One> = Handle::new(NAME, "oidc_issuer");
/// The IAM OIDC provider ARN.
pub const OIDC_PROVIDER_ARN: Handle<One> = Handle::new(NAME, "oidc_provider_arn");
/// The VPC id.
pub const VPC_ID: Handle<One> = Handle::new(NAME, "vpc_id");
/// The VPC CIDR.
pub const VPC_CIDR: Handle<One> = Handle::new(NAME, "vpc_cidr");
/// Private subnet ids (nodes, pods, data stores).
pub const PRIVATE_SUBNET_IDS: Handle<List> = Handle::new(NAME, "private_subnet_ids");
/// Data subnet ids (databases and caches of the stacks on the cluster).
pub const DATA_SUBNET_IDS: Handle<List> = Handle::new(NAME, "data_subnet_ids");
/// The security group of the nodes (EKS's cluster security group).
pub const NODE_SECURITY_GROUP_ID: Handle<One> = Handle::new(NAME, "node_security_group_id");

/// Settings of the platform stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Platform")]
pub struct Settings {
    /// The cluster VPC's CIDR (/16 to /24); must not overlap the environment's other VPCs.
    pub vpc_cidr: String,
    /// NAT layout of the cluster VPC (`per_az` required in prod). Default: the
    /// environment's `network.nat_gateways`, so one tier has one NAT layout.
    #[serde(default)]
    pub nat_gateways: Option<NatGateways>,
    /// CIDRs that may reach the public API endpoint. Default: none (private endpoint only,
    /// reached from inside the VPC).
    #[serde(default)]
    pub public_endpoint_cidrs: Vec<String>,
    /// IAM principals (role or user ARNs) that administer the cluster: access entries with
    /// AmazonEKSClusterAdminPolicy, cluster scope.
    #[schemars(length(min = 1))]
    #[schemars(inner(regex(
        pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$"
    )))]
    pub admins: Vec<String>,
    /// How pods get AWS roles: `irsa` (OIDC provider) or `pod_identity` (EKS Pod Identity).
    pub workload_identity: WorkloadIdentityMode,
    /// Managed node groups.
    #[schemars(length(min = 1))]
    pub node_groups: Vec<NodeGroup>,
    /// Add-on versions (e.g. `v1.19.5-eksbuild.1`), pinned so upgrades show in the PR.
    pub addons: Addons,
    /// Whether this environment creates the account's GitHub Actions OIDC provider
    /// (`create`) or uses one another environment in the same account created (`existing`).
    pub github_oidc_provider: GithubOidcProvider,
    /// CodeBuild-hosted GitHub Actions runners inside the cluster VPC: the deploy
    /// workflow's jobs that need the private API endpoint run there. Default: none (then
    /// nothing generated can reach a private endpoint).
    #[serde(default)]
    pub deploy_runner: Option<DeployRunnerSettings>,
}

impl Settings {
    /// The cluster VPC's NAT layout: the setting, else the environment's network default.
    pub fn nat_gateways(&self, network: &crate::env::file::Network) -> NatGateways {
        self.nat_gateways.unwrap_or(network.nat_gateways)
    }
}

/// The deploy runner of an environment (see `src/construct/deploy_runner.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRunnerSettings {
    /// The GitHub repository (`owner/name`) holding keel's deploy workflow: the only one
    /// whose workflow jobs the runner takes.
    #[schemars(regex(pattern = r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$"))]
    pub repository: String,
    /// Minutes a job may run before CodeBuild stops it. Default: 60.
    #[serde(default = "default_runner_timeout")]
    #[schemars(range(min = 5, max = 480))]
    pub timeout_minutes: u32,
}

fn default_runner_timeout() -> u32 {
    60
}

/// How pods get AWS roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadIdentityMode {
    /// IAM Roles for Service Accounts.
    Irsa,
    /// EKS Pod Identity.
    PodIdentity,
}

/// Who creates the account's GitHub OIDC provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GithubOidcProvider {
    /// This environment (one per account).
    Create,
    /// Another environment in the same account.
    Existing,
}

/// One managed node group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// Name, e.g. `general`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,30}$"))]
    pub name: String,
    /// EC2 instance types, e.g. `m6i.large`.
    #[schemars(length(min = 1))]
    #[schemars(inner(regex(pattern = r"^[a-z0-9]+\.[a-z0-9]+$")))]
    pub instance_types: Vec<String>,
    /// `on_demand` or `spot`.
    pub capacity_type: CapacityType,
    /// Fewest nodes.
    pub min: u32,
    /// Nodes at creation.
    pub desired: u32,
    /// Most nodes.
    pub max: u32,
    /// Root volume in GiB.
    #[schemars(range(min = 20, max = 16384))]
    pub disk_gib: u32,
    /// Node labels: keys are qualified names (`[prefix/]name`, name 1..=63 characters),
    /// values up to 63 characters of letters, digits, `-`, `_` and `.`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Node taints.
    #[serde(default)]
    pub taints: Vec<Taint>,
}

/// EC2 capacity type of a node group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapacityType {
    /// On-demand instances.
    OnDemand,
    /// Spot instances.
    Spot,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    /// Key: a qualified name, like a label key.
    pub key: String,
    /// Value: empty, or up to 63 characters, like a label value.
    #[serde(default)]
    pub value: String,
    /// `no_schedule`, `no_execute` or `prefer_no_schedule`.
    pub effect: TaintEffect,
}

/// What a taint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaintEffect {
    /// `NoSchedule`.
    NoSchedule,
    /// `NoExecute`.
    NoExecute,
    /// `PreferNoSchedule`.
    PreferNoSchedule,
}

/// Pinned add-on versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Addons {
    /// `vpc-cni`.
    #[schemars(regex(pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$"))]
    pub vpc_cni: String,
    /// `coredns`.
    #[schemars(regex(pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$"))]
    pub coredns: String,
    /// `kube-proxy`: a build of the cluster's Kubernetes version (`v1.33.x` on 1.33).
    #[schemars(regex(pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$"))]
    pub kube_proxy: String,
    /// `aws-ebs-csi-driver`.
    #[schemars(regex(pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$"))]
    pub aws_ebs_csi_driver: String,
    /// `eks-pod-identity-agent`.
    #[schemars(regex(pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$"))]
    pub eks_pod_identity_agent: String,
    /// `metrics-server` (community add-on): required when a HorizontalPodAutoscaler scales
    /// on CPU or memory.
    #[serde(default)]
    #[schemars(regex(pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$"))]
    pub metrics_server: Option<String>,
    /// `cert-manager` (community add-on): required when an Ingress names a ClusterIssuer.
    #[serde(default)]
    #[schemars(regex(pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$"))]
    pub cert_manager: Option<String>,
    /// `amazon-cloudwatch-observability`: ships pod logs to CloudWatch Logs (required).
    #[serde(default)]
    #[schemars(regex(pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$"))]
    pub amazon_cloudwatch_observability: Option<String>,
}

/// An AWS resource name of the platform in `env`: `eks-<env>-<suffix>`.
pub fn resource_name(env: &Env, suffix: &str) -> String {
    format!("{SHORT}-{}-{suffix}", env.name())
}

/// The name (tag) of the cluster VPC, by which the AWS Load Balancer Controller finds it.
pub fn vpc_name(env: &Env) -> String {
    resource_name(env, "vpc")
}

/// The ARN a platform role with name suffix `suffix` gets (known before it exists, for
/// ServiceAccount annotations).
pub fn controller_role_arn(env: &Env, suffix: &str) -> String {
    format!(
        "arn:{}:iam::{}:role/{}",
        crate::construct::partition(&env.spec.region),
        env.spec.account_id,
        resource_name(env, suffix)
    )
}

fn build(env: &Env) -> Result<Option<Stack>, StackError> {
    build_with(env, &Layer::default())
}

/// The platform of `env` with its add-on `layer` (see [`crate::addons::attach`]).
pub fn build_with(env: &Env, layer: &Layer) -> Result<Option<Stack>, StackError> {
    let Some(cfg) = &env.spec.stacks.platform else {
        return Ok(None);
    };
    let fail = |message: String| StackError::new(NAME, env.name(), message);
    let kube = env.kubernetes().map_err(fail)?;
    let mut tf = terraform_root(env, NAME);
    let scope = &mut Scope::new(&mut tf, SHORT, env);
    let name = cluster_name(env.name());

    let key = KmsKey::new(scope, "platform: cluster secrets, logs");
    let cidr = crate::env::load::parse_cidr(&cfg.vpc_cidr).map_err(fail)?;
    let cluster_tag = format!("kubernetes.io/cluster/{name}");
    let tags = |role: &str| {
        BTreeMap::from([
            (role.to_owned(), "1".to_owned()),
            (cluster_tag.clone(), "shared".to_owned()),
        ])
    };
    let vpc = Vpc::new(
        scope,
        &key,
        &VpcProps {
            cidr,
            availability_zones: env.availability_zones(),
            nat_gateways: cfg.nat_gateways(&env.spec.network),
            flow_log_retention_days: env.spec.network.flow_log_retention_days,
            public_subnet_tags: tags("kubernetes.io/role/elb"),
            private_subnet_tags: tags("kubernetes.io/role/internal-elb"),
            data_subnets: true,
        },
    )
    .map_err(fail)?;
    let private = vpc.private_subnet_ids();

    let cluster = EksCluster::new(
        scope,
        &key,
        &EksClusterProps {
            name: name.clone(),
            version: kube.version.clone(),
            support: kube.support,
            subnet_ids: private.clone(),
            public_access_cidrs: cfg.public_endpoint_cidrs.clone(),
            admins: cfg.admins.clone(),
            log_retention_days: env.audit_log_retention_days(),
        },
    );
    let mechanism = match cfg.workload_identity {
        WorkloadIdentityMode::Irsa => Mechanism::Irsa {
            provider_arn: cluster.oidc_provider_arn(),
            issuer: cluster.oidc_issuer(),
        },
        WorkloadIdentityMode::PodIdentity => Mechanism::PodIdentity {
            cluster_name: cluster.name(),
        },
    };

    // Add-ons; vpc-cni and the EBS CSI driver call AWS with roles of their own.
    let identity =
        |id: &str, ns: &str, sa: &str, managed: Vec<&'static str>, statements| WorkloadIdentity {
            id: id.to_owned(),
            role_suffix: id.replace('_', "-"),
            namespace: ns.to_owned(),
            service_account: sa.to_owned(),
            managed,
            statements,
        };
    let cni_identity = identity(
        "vpc_cni",
        "kube-system",
        "aws-node",
        vec!["AmazonEKS_CNI_Policy"],
        vec![],
    );
    let cni = cni_identity.create(scope, &mechanism);
    let ebs = identity(
        "ebs_csi",
        "kube-system",
        "ebs-csi-controller-sa",
        vec!["service-role/AmazonEBSCSIDriverPolicy"],
        vec![],
    )
    .create(scope, &mechanism);
    let irsa = |role: &Role| match cfg.workload_identity {
        WorkloadIdentityMode::Irsa => Some(role.arn()),
        WorkloadIdentityMode::PodIdentity => None,
    };
    let a = &cfg.addons;
    cluster.add_addon(
        scope,
        "eks-pod-identity-agent",
        &a.eks_pod_identity_agent,
        None,
        None,
        &[],
    );
    // The CNI and its role come before any node (terraform-aws-eks: `before_compute`): a
    // node whose aws-node starts without its permissions never becomes Ready.
    let cni_addon = cluster.add_addon(
        scope,
        "vpc-cni",
        &a.vpc_cni,
        irsa(&cni),
        layer.vpc_cni_configuration.as_deref(),
        &[],
    );
    let cni_ready: Vec<String> = std::iter::once(cni_addon)
        .chain(cni.policy_addresses().iter().cloned())
        .chain(cni_identity.association(&mechanism))
        .collect();

    // Nodes: worker and ECR-read policies only (the CNI has its own role).
    let node_role = Role::new(
        scope,
        "node",
        "node",
        Trust::ServiceOnly("ec2.amazonaws.com"),
        &[
            "AmazonEKSWorkerNodePolicy",
            "AmazonEC2ContainerRegistryReadOnly",
        ],
        vec![],
    );
    let mut node_groups = Vec::new();
    for ng in &cfg.node_groups {
        node_groups.push(
            cluster.add_node_group(
                scope,
                &node_role,
                &private,
                &NodeGroupProps {
                    name: ng.name.clone(),
                    instance_types: ng.instance_types.clone(),
                    capacity_type: match ng.capacity_type {
                        CapacityType::OnDemand => "ON_DEMAND",
                        CapacityType::Spot => "SPOT",
                    },
                    min: ng.min,
                    desired: ng.desired,
                    max: ng.max,
                    disk_gib: ng.disk_gib,
                    labels: ng.labels.clone(),
                    taints: ng
                        .taints
                        .iter()
                        .map(|t| {
                            let effect = match t.effect {
                                TaintEffect::NoSchedule => "NO_SCHEDULE",
                                TaintEffect::NoExecute => "NO_EXECUTE",
                                TaintEffect::PreferNoSchedule => "PREFER_NO_SCHEDULE",
                            };
                            (t.key.clone(), t.value.clone(), effect.to_owned())
                        })
                        .collect(),
                },
                &cni_ready,
            ),
        );
    }

    cluster.add_addon(scope, "kube-proxy", &a.kube_proxy, None, None, &[]);
    cluster.add_addon(scope, "coredns", &a.coredns, None, None, &node_groups);
    cluster.add_addon(
        scope,
        "aws-ebs-csi-driver",
        &a.aws_ebs_csi_driver,
        irsa(&ebs),
        None,
        &node_groups,
    );

    // The add-on layer: controller identities, EKS add-ons, the alerts topic, log groups.
    let mut addon_roles = BTreeMap::new();
    for controller in &layer.controllers {
        let mut identity = controller.identity.clone();
        if let Some(service) = &controller.platform_key_via {
            identity.statements.push(
                Statement::allow(
                    "UseThePlatformKey",
                    &["kms:GenerateDataKey*", "kms:Decrypt"],
                    vec![key.arn().to_string()],
                )
                .when("StringEquals", "kms:ViaService", vec![service.clone()]),
            );
        }
        let role = identity.create(scope, &mechanism);
        if let Some(policy) = role.policy_document()
            && !controller.suppressions.is_empty()
        {
            scope.tf.suppress(policy, &controller.suppressions);
        }
        if let Some(addon) = controller.eks_addon {
            addon_roles.insert(addon, role);
        }
    }
    for addon in &layer.eks_addons {
        let role = addon_roles.get(addon.name).and_then(&irsa);
        cluster.add_addon(
            scope,
            addon.name,
            &addon.version,
            role,
            addon.configuration.as_deref(),
            &node_groups,
        );
    }
    if let Some(email) = &layer.alerts_email {
        AlarmTopic::new(scope, &key, email);
    }
    if layer.container_logs {
        // The observability add-on writes here; keel creates the groups first, encrypted
        // and with the environment's retention, so the service does not create them bare.
        for kind in ["application", "dataplane", "host", "performance"] {
            encrypted_log_group_named(
                scope,
                &key,
                "addons",
                &format!("container_insights_{kind}"),
                &format!("/aws/containerinsights/{name}/{kind}"),
                env.audit_log_retention_days(),
            );
        }
    }
    if cfg.github_oidc_provider == GithubOidcProvider::Create {
        let provider = IamOpenidConnectProvider::new(
            [STS_AUDIENCE],
            format!("https://{GITHUB_OIDC_HOST}"),
        );
        scope.tf.add("github", "github_actions", provider);
    }

    let env_name = env.name();
    let description = |what: &str| format!("{what} of the {env_name} platform");
    exports::export_one(
        scope,
        &CLUSTER_NAME,
        &description("EKS cluster name"),
        cluster.name(),
    );
    exports::export_one(
        scope,
        &CLUSTER_ENDPOINT,
        &description("API server endpoint"),
        cluster.endpoint(),
    );
    exports::export_one(
        scope,
        &CLUSTER_CA,
        &description("cluster CA"),
        cluster.certificate_authority(),
    );
    exports::export_one(
        scope,
        &OIDC_ISSUER,
        &description("OIDC issuer"),
        cluster.oidc_issuer(),
    );
    exports::export_one(
        scope,
        &OIDC_PROVIDER_ARN,
        &description("IAM OIDC provider"),
        cluster.oidc_provider_arn(),
    );
    exports::export_one(scope, &VPC_ID, &description("VPC id"), vpc.id());
    exports::export_one(scope, &VPC_CIDR, &description("VPC CIDR"), vpc.cidr_block());
    exports::export_list(
        scope,
        &PRIVATE_SUBNET_IDS,
        &description("private subnets"),
        &private,
    );
    exports::export_list(
        scope,
        &DATA_SUBNET_IDS,
        &description("data subnets"),
        &vpc.data_subnet_ids(),
    );
    exports::export_one(
        scope,
        &NODE_SECURITY_GROUP_ID,
        &description("node security group"),
        cluster.cluster_security_group_id(),
    );
    let (external, mut warnings) = reach(scope, env, cfg, &key, &vpc, &cluster);
    let out = &mut *scope.tf;
    out.output("cluster_name", "EKS cluster name", cluster.name(), false);
    out.output(
        "cluster_endpoint",
        "API server endpoint",
        cluster.endpoint(),
        false,
    );
    out.output(
        "oidc_provider_arn",
        "IAM OIDC provider of the cluster",
        cluster.oidc_provider_arn(),
        false,
    );
    out.output(
        "kms_key_arn",
        "KMS key of the cluster's secrets and logs",
        key.arn(),
        false,
    );

    // Kubernetes: what the add-on layer creates once its CRDs exist (applied after every
    // install), and the installs themselves for `keel plan`.
    let mut stack = Stack::on_cluster(NAME, tf, layer.objects.clone(), BTreeMap::new())
        .map_err(|e| fail(e.to_string()))?;
    stack.addons = layer.installs.clone();
    stack.addon_values = layer.values.clone();
    stack.external = external;
    stack.warnings.append(&mut warnings);
    if layer
        .installs
        .iter()
        .any(|i| i.name == crate::addons::catalogue::INGRESS_NGINX.release)
    {
        stack.warnings.push(format!(
            "{NAME} in {}: {}",
            env.name(),
            crate::addons::catalogue::INGRESS_NGINX_RETIRED
        ));
    }
    // The date was checked when the environment loaded.
    if let Ok(today) = crate::env::kubernetes_support::today()
        && let Some(w) = crate::env::kubernetes_support::warning(&kube.version, kube.support, today)
    {
        stack.warnings.push(format!(
            "{NAME} in {}: environments/{}.yaml: kubernetes.version: {w}",
            env.name(),
            env.name()
        ));
    }
    Ok(Some(stack))
}

/// The deploy path's reach into the private cluster (the CodeBuild runner, when the
/// environment configures one) and what the environment needs from outside keel: the
/// state bucket, the apply role (with its cluster access entry), and the runner's GitHub
/// connection. Returns those and the warnings for what is missing.
fn reach(
    scope: &mut Scope<'_>,
    env: &Env,
    cfg: &Settings,
    key: &KmsKey,
    vpc: &Vpc,
    cluster: &EksCluster,
) -> (Vec<External>, Vec<String>) {
    let env_name = env.name();
    let mut warnings = Vec::new();
    let apply_role = apply_role_name(env_name);
    let mut external = vec![
        External::StateBucket {
            bucket: env.spec.state.bucket.clone(),
        },
        External::ApplyRole {
            name: apply_role.clone(),
        },
        External::PlanRole {
            name: plan_role_name(env_name),
        },
    ];
    // The deploy workflow applies every stack's `k8s/` (namespaces, cluster-scoped stores):
    // its apply role administers the cluster, unless the environment lists it already.
    let apply_role_arn = format!(
        "arn:{}:iam::{}:role/{apply_role}",
        scope.partition(),
        scope.tf.account_id()
    );
    if !cfg.admins.contains(&apply_role_arn) {
        cluster.grant_access(
            scope,
            "apply_role",
            apply_role_arn.into(),
            &access_policy_arn(scope.partition(), CLUSTER_ADMIN_POLICY),
            &[],
        );
    }
    match &cfg.deploy_runner {
        Some(runner) => {
            let connection_name = deploy_runner_connection(env_name);
            let runner = DeployRunner::new(
                scope,
                key,
                &DeployRunnerProps {
                    project_name: deploy_runner_project(env_name),
                    connection_name: connection_name.clone(),
                    repository: runner.repository.clone(),
                    vpc_id: vpc.id(),
                    subnet_ids: vpc.private_subnet_ids(),
                    cluster_security_group_id: cluster.cluster_security_group_id(),
                    log_retention_days: env.spec.network.flow_log_retention_days,
                    timeout_minutes: runner.timeout_minutes,
                },
            );
            scope.tf.output(
                "deploy_runner_project",
                "CodeBuild project of the in-VPC GitHub Actions runner (runs-on: codebuild-<this>-<run id>-<attempt>)",
                runner.project_name(),
                false,
            );
            scope.tf.output(
                "deploy_runner_connection_arn",
                "CodeConnections connection to GitHub: authorize it once in the console (Developer Tools > Connections)",
                runner.connection_arn(),
                false,
            );
            external.push(External::Connection {
                name: connection_name,
            });
        }
        None => warnings.push(format!(
            "stacks.platform.deploy_runner is not set: no generated runner reaches the private API endpoint of cluster {}",
            cluster_name(env_name)
        )),
    }
    (external, warnings)
}

/// The data subnet CIDRs the platform carves from its VPC CIDR (known at synth, for
/// NetworkPolicies of the stacks on the cluster).
pub fn data_subnet_cidrs(env: &Env) -> Result<Vec<String>, String> {
    let cfg = env
        .spec
        .stacks
        .platform
        .as_ref()
        .ok_or_else(|| format!("environment {} has no platform stack", env.name()))?;
    let cidr = crate::env::load::parse_cidr(&cfg.vpc_cidr)?;
    let data = split_data_subnets(cidr, env.availability_zones().len()).ok_or_else(|| {
        format!("platform.vpc_cidr {cidr} is too small for data subnets (expected /20 or larger)")
    })?;
    Ok(data.iter().map(ToString::to_string).collect())
}

/// Semantic checks of the platform settings: its VPC CIDR apart from the environment's other VPC, node groups
/// with sane bounds, endpoint CIDRs that parse.
pub(crate) fn check(spec: &EnvFile, pl: &Settings, out: &mut Problems) {
    let p = "/stacks/platform";
    if spec.kubernetes.is_none() {
        out.push((
            p.into(),
            "expected a top-level `kubernetes` section: its version is the cluster's".into(),
        ));
    }
    match parse_cidr(&pl.vpc_cidr) {
        Ok(net) if !(16..=20).contains(&net.prefix_len()) => out.push((
            format!("{p}/vpc_cidr"),
            format!(
                "expected a prefix length of /16 to /20 (room for public, private and data subnets), found /{}",
                net.prefix_len()
            ),
        )),
        Ok(net) => {
            if let Ok(other) = parse_cidr(&spec.network.vpc_cidr)
                && overlaps(&net, &other)
            {
                out.push((
                    format!("{p}/vpc_cidr"),
                    format!(
                        "{net} overlaps network.vpc_cidr {other}: the VPCs of one environment must not overlap (they could never be peered or routed)"
                    ),
                ));
            }
        }
        Err(m) => out.push((format!("{p}/vpc_cidr"), m)),
    }
    for (i, c) in pl.public_endpoint_cidrs.iter().enumerate() {
        if let Err(m) = parse_cidr(c) {
            out.push((format!("{p}/public_endpoint_cidrs/{i}"), m));
        }
    }
    let (endpoint, _) =
        crate::diff::addrs::AddrSet::from_strs(pl.public_endpoint_cidrs.iter().map(String::as_str));
    if is_prod(spec.tier) && endpoint.covers_ipv4_internet() {
        out.push((
            format!("{p}/public_endpoint_cidrs"),
            "expected a list of trusted networks in a prod-tier environment, found one that covers the whole IPv4 internet (0.0.0.0/0)".into(),
        ));
    }
    if is_prod(spec.tier) && pl.nat_gateways(&spec.network) != NatGateways::PerAz {
        out.push((
            format!("{p}/nat_gateways"),
            "expected per_az in a prod-tier environment, found single".into(),
        ));
    }
    let mut admins = std::collections::BTreeMap::new();
    for (i, arn) in pl.admins.iter().enumerate() {
        let id = crate::construct::eks::admin_id(arn);
        if let Some(first) = admins.insert(id.clone(), arn) {
            out.push((
                format!("{p}/admins/{i}"),
                format!(
                    "{arn} and {first} both become the access entry {id} (names compare without case and punctuation); list each principal once"
                ),
            ));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, ng) in pl.node_groups.iter().enumerate() {
        let ptr = format!("{p}/node_groups/{i}");
        if !names.insert(ng.name.as_str()) {
            out.push((
                format!("{ptr}/name"),
                format!("node group {:?} is named twice", ng.name),
            ));
        }
        crate::env::names::labels(&ng.labels, &format!("{ptr}/labels"), out);
        for (j, t) in ng.taints.iter().enumerate() {
            let at = format!("{ptr}/taints/{j}");
            if let Some(m) = crate::env::names::qualified_name_problem(&t.key) {
                out.push((
                    format!("{at}/key"),
                    format!("not a Kubernetes qualified name: {m}"),
                ));
            }
            if let Some(m) = crate::env::names::label_value_problem(&t.value) {
                out.push((
                    format!("{at}/value"),
                    format!("not a Kubernetes label value: {m}"),
                ));
            }
        }
        if !(ng.min <= ng.desired && ng.desired <= ng.max) || ng.max == 0 {
            out.push((
                ptr.clone(),
                format!(
                    "expected min <= desired <= max and max >= 1, found {} <= {} <= {}",
                    ng.min, ng.desired, ng.max
                ),
            ));
        }
    }
    if let Some(kube) = &spec.kubernetes {
        let want = format!("v{}.", kube.version);
        if !pl.addons.kube_proxy.starts_with(&want) {
            out.push((
                format!("{p}/addons/kube_proxy"),
                format!(
                    "expected a kube-proxy build of the cluster's version {} ({want}<patch>-eksbuild.<n>), found {}",
                    kube.version, pl.addons.kube_proxy
                ),
            ));
        }
    }
    let nodes: u32 = pl.node_groups.iter().map(|ng| ng.min).sum();
    min_copies(nodes, "node", spec.tier, &format!("{p}/node_groups"), out);
}

/// What a stack on the environment's cluster knows about it: imports (read on first use)
/// and values known at synth from the platform's settings.
#[derive(Debug, Clone)]
pub struct OnCluster {
    /// The platform VPC's CIDR (an environment setting).
    pub vpc_cidr: String,
    /// The data subnets' CIDRs (carved from it deterministically): where databases and
    /// caches live, the only egress peers NetworkPolicies give them.
    pub data_subnet_cidrs: Vec<String>,
    /// The cluster's name (deterministic).
    pub cluster_name: String,
    /// How pods get AWS roles on this cluster.
    pub identity: WorkloadIdentityMode,
}

impl OnCluster {
    /// The cluster `env`'s platform stack builds; an error naming both stacks when the
    /// environment has none.
    pub fn of(env: &Env, consumer: &str) -> Result<OnCluster, String> {
        let cfg = env.spec.stacks.platform.as_ref().ok_or_else(|| {
            format!(
                "stack {consumer} runs on the cluster of stack platform, which environments/{}.yaml does not configure",
                env.name()
            )
        })?;
        Ok(OnCluster {
            vpc_cidr: cfg.vpc_cidr.clone(),
            data_subnet_cidrs: data_subnet_cidrs(env)?,
            cluster_name: cluster_name(env.name()),
            identity: cfg.workload_identity,
        })
    }

    /// Gives the pods of `service` an IAM role with `statements`: one value (the service's
    /// namespace and ServiceAccount name) makes the role's trust and the ServiceAccount,
    /// annotated with the role's ARN under IRSA. Returns the role.
    pub fn workload_identity(
        &self,
        scope: &mut Scope<'_>,
        service: &mut k8s::ServiceProps,
        statements: Vec<Statement>,
    ) -> Role {
        let identity = WorkloadIdentity {
            id: format!("{}_pods", crate::construct::local_name(&service.app.name)),
            role_suffix: format!("{}-pods", service.app.name),
            namespace: service.namespace.clone(),
            service_account: service.app.name.clone(),
            managed: vec![],
            statements,
        };
        let mechanism = match self.identity {
            WorkloadIdentityMode::Irsa => Mechanism::Irsa {
                provider_arn: exports::import_one(scope, &OIDC_PROVIDER_ARN),
                issuer: exports::import_one(scope, &OIDC_ISSUER),
            },
            WorkloadIdentityMode::PodIdentity => Mechanism::PodIdentity {
                cluster_name: exports::import_one(scope, &CLUSTER_NAME),
            },
        };
        let role = identity.create(scope, &mechanism);
        service.service_account.iam_role_arn = match self.identity {
            WorkloadIdentityMode::Irsa => Some(identity.role_arn(scope)),
            WorkloadIdentityMode::PodIdentity => None,
        };
        role
    }

    /// The stack's own External Secrets store and reader role (see
    /// [`stack_secret_store`](crate::construct::secret_store::stack_secret_store)), always
    /// through IRSA: External Secrets authenticates a namespaced store only with its
    /// ServiceAccount's web identity, and the cluster's OIDC provider exists in either
    /// identity mode.
    pub fn secret_store(
        &self,
        scope: &mut Scope<'_>,
        key: &KmsKey,
        props: &StackSecretStoreProps<'_>,
    ) -> Result<StackSecretStore, String> {
        let oidc = self.irsa(scope);
        stack_secret_store(scope, key, oidc, props)
            .map_err(|e| e.to_string())
    }

    /// The VPC id (imported).
    pub fn vpc_id(&self, scope: &mut Scope<'_>) -> crate::refs::Expr {
        exports::import_one(scope, &VPC_ID)
    }

    /// The data subnet ids, as a list expression (imported): for databases and caches.
    pub fn data_subnet_ids(&self, scope: &mut Scope<'_>) -> crate::tf::bind::Val<Vec<String>> {
        exports::import_list(scope, &DATA_SUBNET_IDS).into()
    }

    /// The nodes' security group (imported), to admit pods into data stores.
    pub fn node_security_group(&self, scope: &mut Scope<'_>) -> crate::refs::Expr {
        exports::import_one(scope, &NODE_SECURITY_GROUP_ID)
    }

    /// IRSA through the cluster's OIDC provider (imported): how a namespaced SecretStore's
    /// ServiceAccount gets its reader role, whatever the platform's own controllers use.
    fn irsa(&self, scope: &mut Scope<'_>) -> Mechanism {
        Mechanism::Irsa {
            provider_arn: exports::import_one(scope, &OIDC_PROVIDER_ARN),
            issuer: exports::import_one(scope, &OIDC_ISSUER),
        }
    }

    /// The stack's GitHub Actions deploy role: push to `images`, find the cluster, and
    /// `access` there (namespaced edit rights or a Kubernetes group, never cluster admin),
    /// plus `statements`.
    pub fn deploy_role(
        &self,
        scope: &mut Scope<'_>,
        repository: &str,
        images: Vec<String>,
        access: ClusterAccess,
        mut statements: Vec<Statement>,
    ) -> Role {
        let cluster_arn = format!(
            "arn:{}:eks:{}:{}:cluster/{}",
            scope.partition(),
            scope.tf.region(),
            scope.tf.account_id(),
            self.cluster_name
        );
        statements.insert(
            0,
            Statement::allow(
                "FindTheCluster",
                &["eks:DescribeCluster"],
                vec![cluster_arn],
            ),
        );
        let cluster = exports::import_one(scope, &CLUSTER_NAME);
        crate::construct::github_deploy::github_deploy_role(
            scope,
            &crate::construct::github_deploy::GithubDeployProps {
                repository: repository.to_owned(),
                images,
                statements,
                cluster: Some((cluster, access)),
            },
        )
    }
}

/// The database-login Job of a stack on this cluster.
impl OnCluster {
    /// The Job that creates `login` from inside the cluster (see
    /// [`DatabaseLogin::cluster_job`]), in the namespace of the stack's `objects`: they
    /// must hold exactly one Namespace (the Job's folder applies it too, before the login
    /// exists); `host` is the secret the Job reads the writer's host name from.
    pub fn database_login_job(
        &self,
        scope: &mut Scope<'_>,
        key: &KmsKey,
        login: &DatabaseLogin,
        stack: &str,
        objects: &[k8s::Object],
        host: k8s::HostSecret,
    ) -> Result<LoginJob, String> {
        let mut namespaces = objects.iter().filter(|o| o.kind == "Namespace");
        let (Some(namespace_object), None) = (namespaces.next().cloned(), namespaces.next())
        else {
            return Err(format!(
                "stack {stack} must create exactly one Namespace for its database-login Job"
            ));
        };
        let namespace = namespace_object.name.clone();
        let oidc = self.irsa(scope);
        login.cluster_job(
            scope,
            key,
            &ClusterJob {
                stack,
                namespace: &namespace,
                namespace_object,
                host,
                data_subnet_cidrs: &self.data_subnet_cidrs,
                oidc,
            },
        )
    }
}
