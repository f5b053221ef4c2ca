//! An EKS cluster: access entries instead of the aws-auth ConfigMap (and no implicit admin
//! for its creator), secrets envelope-encrypted with the stack's key, all five control-plane
//! log types into a log group created first, a private endpoint (public only from an
//! allow-list), the IAM OIDC provider for IRSA, managed node groups through launch
//! templates (IMDSv2 only, hop limit 1, encrypted gp3 root volume), and pinned add-ons.

use std::collections::BTreeMap;

use super::Scope;
use super::iam::{Role, Statement, Trust};
use super::kms::KmsKey;
use super::log_group::encrypted_log_group_named;
use crate::refs::{Expr, Ref};
use crate::tf::aws::resource::eks_access_policy_association::{
    AccessScope, EksAccessPolicyAssociation,
};
use crate::tf::aws::resource::{
    EksAccessEntry, EksAddon, IamOpenidConnectProvider, eks_cluster as cluster,
    eks_node_group as node_group, launch_template as template,
};
use crate::tf::bind::{Lifecycle, Val};

/// The five control-plane log types.
const CONTROL_PLANE_LOGS: [&str; 5] = [
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
];

/// The access policy of cluster administrators.
pub const CLUSTER_ADMIN_POLICY: &str = "AmazonEKSClusterAdminPolicy";

/// `arn:<partition>:eks::aws:cluster-access-policy/<name>`.
pub fn access_policy_arn(partition: &str, name: &str) -> String {
    format!("arn:{partition}:eks::aws:cluster-access-policy/{name}")
}

/// `/aws/eks/<cluster>/cluster`: where EKS writes control-plane logs.
pub fn control_plane_log_group(cluster: &str) -> String {
    format!("/aws/eks/{cluster}/cluster")
}

/// Options for [`EksCluster`].
#[derive(Debug, Clone)]
pub struct EksClusterProps {
    /// Cluster name (deterministic: other stacks and manifests refer to it).
    pub name: String,
    /// Kubernetes minor version, e.g. `1.33`.
    pub version: String,
    /// EKS support policy, always written (`upgrade_policy.support_type`): without it AWS
    /// enrolls the cluster in extended support and bills it once the version leaves
    /// standard support.
    pub support: crate::env::file::KubernetesSupport,
    /// Subnets of the control plane's network interfaces (private).
    pub subnet_ids: Vec<Expr>,
    /// CIDRs allowed to reach the public endpoint; empty keeps the endpoint private.
    pub public_access_cidrs: Vec<String>,
    /// IAM principal ARNs that administer the cluster (access entries, cluster scope).
    pub admins: Vec<String>,
    /// Days to keep control-plane logs.
    pub log_retention_days: u32,
}

/// An EKS cluster and its OIDC provider.
#[derive(Debug, Clone)]
pub struct EksCluster {
    cluster: Ref,
    oidc: Ref,
}

/// One managed node group.
#[derive(Debug, Clone)]
pub struct NodeGroupProps {
    /// Name, e.g. `general`.
    pub name: String,
    /// EC2 instance types.
    pub instance_types: Vec<String>,
    /// `ON_DEMAND` or `SPOT`.
    pub capacity_type: &'static str,
    /// Fewest nodes.
    pub min: u32,
    /// Nodes at creation (the cluster autoscaler owns it afterwards).
    pub desired: u32,
    /// Most nodes.
    pub max: u32,
    /// Root volume size in GiB.
    pub disk_gib: u32,
    /// Kubernetes node labels.
    pub labels: BTreeMap<String, String>,
    /// Taints as (key, value, effect), effect `NO_SCHEDULE`, `NO_EXECUTE` or `PREFER_NO_SCHEDULE`.
    pub taints: Vec<(String, String, String)>,
}

impl EksCluster {
    /// Creates the cluster role, log group, cluster, OIDC provider and admin access entries.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, props: &EksClusterProps) -> EksCluster {
        let f = "eks";
        let role = Role::new(
            scope,
            "cluster",
            "cluster",
            Trust::ServiceOnly("eks.amazonaws.com"),
            &["AmazonEKSClusterPolicy"],
            vec![Statement::allow(
                "EnvelopeEncryptSecrets",
                &[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:DescribeKey",
                    "kms:ListGrants",
                    "kms:CreateGrant",
                ],
                vec![key.arn().to_string()],
            )],
        );
        let logs = encrypted_log_group_named(
            scope,
            key,
            f,
            "control_plane",
            &control_plane_log_group(&props.name),
            props.log_retention_days,
        );
        let public = !props.public_access_cidrs.is_empty();
        let mut vpc_config = cluster::VpcConfig::new(props.subnet_ids.clone())
            .endpoint_private_access(true)
            .endpoint_public_access(public);
        if public {
            vpc_config = vpc_config.public_access_cidrs(props.public_access_cidrs.clone());
        }
        let mut depends_on: Vec<String> = role.policy_addresses().to_vec();
        depends_on.push(logs.address());
        let public_endpoint = [crate::tf::Suppression {
            check: "CKV_AWS_39",
            reason: "the environment file opens the public endpoint to its listed CIDRs only; keel keeps it private by default",
        }];
        let cluster = cluster::EksCluster::new(&props.name, role.arn(), vpc_config)
            .version(&props.version)
            .upgrade_policy(
                cluster::UpgradePolicy::new().support_type(props.support.support_type()),
            )
            .access_config(
                cluster::AccessConfig::new()
                    .authentication_mode("API")
                    .bootstrap_cluster_creator_admin_permissions(false),
            )
            .encryption_config(cluster::EncryptionConfig::new(
                ["secrets"],
                cluster::EncryptionConfigProvider::new(key.arn()),
            ))
            .enabled_cluster_log_types(CONTROL_PLANE_LOGS)
            .depends_on(depends_on);
        let suppressions: &[crate::tf::Suppression] = if public { &public_endpoint } else { &[] };
        let cluster = scope
            .tf
            .add_with(f, "main", cluster, suppressions)
            .into_ref();
        let oidc = IamOpenidConnectProvider::new(
            [super::iam::STS_AUDIENCE],
            cluster.attr("identity[0].oidc[0].issuer"),
        );
        let oidc = scope.tf.add(f, "cluster", oidc).into_ref();
        let eks = EksCluster { cluster, oidc };
        let policy = access_policy_arn(scope.partition(), CLUSTER_ADMIN_POLICY);
        for (i, admin) in props.admins.iter().enumerate() {
            let entry = eks.grant_access(scope, &admin_id(admin), admin.into(), &policy, &[]);
            // Renamed construct id: admin entries were addressed by their position in
            // `admins` (`admin_<i>`), so removing the first admin re-created every other
            // entry. State applied before the rename moves to the principal's address.
            entry.renamed_from(scope, &format!("admin_{i}"));
        }
        eks
    }

    /// Gives `principal` an access entry with `policy_arn`, cluster-wide when `namespaces`
    /// is empty, else in those namespaces only.
    pub fn grant_access(
        &self,
        scope: &mut Scope<'_>,
        id: &str,
        principal: Val<String>,
        policy_arn: &str,
        namespaces: &[String],
    ) -> AccessEntry {
        access_entry(scope, self.name(), id, principal, policy_arn, namespaces)
    }

    /// Adds a managed node group through its own launch template. It waits for the node
    /// role's policies and for `after` (the vpc-cni add-on and its role: a node whose
    /// `aws-node` starts without its permissions never becomes Ready; terraform-aws-eks
    /// calls this `before_compute`).
    pub fn add_node_group(
        &self,
        scope: &mut Scope<'_>,
        node_role: &Role,
        subnet_ids: &[Expr],
        ng: &NodeGroupProps,
        after: &[String],
    ) -> String {
        let f = "nodes";
        let id = super::local_name(&ng.name);
        let ebs = template::BlockDeviceMappingsEbs::new()
            .volume_size(ng.disk_gib)
            .volume_type("gp3")
            .encrypted("true")
            .delete_on_termination("true");
        let template = template::LaunchTemplate::new()
            .name_prefix(scope.name(&format!("{}-", ng.name)))
            .description(format!(
                "keel: node group {} (IMDSv2 only, encrypted gp3 root)",
                ng.name
            ))
            .update_default_version(true)
            .metadata_options(
                template::MetadataOptions::new()
                    .http_endpoint("enabled")
                    .http_tokens("required")
                    .http_put_response_hop_limit(1),
            )
            .block_device_mappings([template::BlockDeviceMappings::new()
                .device_name("/dev/xvda")
                .ebs(ebs)])
            .lifecycle(Lifecycle::new().create_before_destroy(true));
        let template = scope.tf.add(f, &id, template);
        let taints: Vec<node_group::Taint> = ng
            .taints
            .iter()
            .map(|(key, value, effect)| node_group::Taint::new(effect, key).value(value))
            .collect();
        let mut group = node_group::EksNodeGroup::new(
            self.name(),
            node_role.arn(),
            subnet_ids.to_vec(),
            node_group::ScalingConfig::new(ng.desired, ng.max, ng.min),
        )
        .node_group_name(&ng.name)
        // Nodes follow the control plane: a node group keeps the Kubernetes version it was
        // created with unless told otherwise, so after a few cluster upgrades its kubelets
        // would fall outside the supported skew. Referencing the cluster's version makes
        // Terraform upgrade the cluster first, then roll the nodes (one at a time, below).
        .version(self.version())
        .ami_type("AL2023_x86_64_STANDARD")
        .instance_types(ng.instance_types.clone())
        .capacity_type(ng.capacity_type)
        .update_config(node_group::UpdateConfig::new().max_unavailable(1))
        .labels(ng.labels.clone())
        // `latest_version` is a number and the node group's `version` a string: Terraform
        // converts it, so the reference goes in untyped.
        .launch_template(
            node_group::LaunchTemplate::new(Expr::from(template.latest_version()))
                .id(template.id()),
        )
        // The cluster autoscaler owns the count after creation.
        .lifecycle(Lifecycle::new().ignore_changes(["scaling_config[0].desired_size".to_owned()]))
        .depends_on(node_role.policy_addresses().iter().chain(after).cloned());
        if !taints.is_empty() {
            group = group.taint(taints);
        }
        scope.tf.add(f, &id, group).tf_ref().address()
    }

    /// Installs add-on `name` at `version`, with an IRSA role when it calls AWS; returns
    /// its address.
    pub fn add_addon(
        &self,
        scope: &mut Scope<'_>,
        name: &str,
        version: &str,
        role_arn: Option<Expr>,
        configuration: Option<&str>,
        depends_on: &[String],
    ) -> String {
        let mut addon = EksAddon::new(name, self.name())
            .addon_version(version)
            .resolve_conflicts_on_create("OVERWRITE")
            .resolve_conflicts_on_update("PRESERVE");
        if let Some(arn) = role_arn {
            addon = addon.service_account_role_arn(arn);
        }
        if let Some(configuration) = configuration {
            addon = addon.configuration_values(configuration);
        }
        if !depends_on.is_empty() {
            addon = addon.depends_on(depends_on.to_vec());
        }
        scope
            .tf
            .add("addons", &super::local_name(name), addon)
            .tf_ref()
            .address()
    }

    /// The cluster name.
    pub fn name(&self) -> Expr {
        self.cluster.attr("name")
    }

    /// The control plane's Kubernetes version (`1.35`).
    pub fn version(&self) -> Expr {
        self.cluster.attr("version")
    }

    /// The API server endpoint.
    pub fn endpoint(&self) -> Expr {
        self.cluster.attr("endpoint")
    }

    /// The cluster CA (base64 PEM).
    pub fn certificate_authority(&self) -> Expr {
        self.cluster.attr("certificate_authority[0].data")
    }

    /// The OIDC issuer URL.
    pub fn oidc_issuer(&self) -> Expr {
        self.cluster.attr("identity[0].oidc[0].issuer")
    }

    /// The IAM OIDC provider ARN.
    pub fn oidc_provider_arn(&self) -> Expr {
        self.oidc.arn()
    }

    /// The security group EKS gives the control plane and managed nodes.
    pub fn cluster_security_group_id(&self) -> Expr {
        self.cluster.attr("vpc_config[0].cluster_security_group_id")
    }
}

/// An access entry of `principal` on cluster `cluster_name` that maps it to the Kubernetes
/// group `group` and associates no access policy: the principal may do exactly what RBAC
/// bindings of that group allow.
pub fn group_access_entry(
    scope: &mut Scope<'_>,
    cluster_name: Expr,
    id: &str,
    principal: Val<String>,
    group: &str,
) {
    let entry = EksAccessEntry::new(cluster_name, principal)
        .r#type("STANDARD")
        .kubernetes_groups([group]);
    scope.tf.add("access", id, entry);
}

/// An access entry of `principal` on cluster `cluster_name` with `policy_arn`, cluster-wide
/// when `namespaces` is empty. Used by the cluster for its admins and by stacks for their
/// deploy roles (namespaced).
pub fn access_entry(
    scope: &mut Scope<'_>,
    cluster_name: Expr,
    id: &str,
    principal: Val<String>,
    policy_arn: &str,
    namespaces: &[String],
) -> AccessEntry {
    let f = "access";
    let entry = EksAccessEntry::new(&cluster_name, principal.clone()).r#type("STANDARD");
    let entry = scope.tf.add(f, id, entry).into_ref();
    let scope_block = if namespaces.is_empty() {
        AccessScope::new("cluster")
    } else {
        AccessScope::new("namespace").namespaces(namespaces.to_vec())
    };
    let association =
        EksAccessPolicyAssociation::new(cluster_name, policy_arn, principal, scope_block)
            .depends_on([entry.address()]);
    let association = scope.tf.add(f, id, association).into_ref();
    AccessEntry { entry, association }
}

/// The access entry of one principal and its policy association (one construct id).
#[derive(Debug, Clone)]
pub struct AccessEntry {
    entry: Ref,
    association: Ref,
}

impl AccessEntry {
    /// Records that this construct's id was `old_id` before: both resources get a `moved`
    /// block from their old address, so Terraform keeps the entry instead of recreating it.
    pub fn renamed_from(&self, scope: &mut Scope<'_>, old_id: &str) {
        scope.tf.moved(&self.entry, old_id);
        scope.tf.moved(&self.association, old_id);
    }
}

/// The construct id of a cluster admin's access entry: `admin_` and the principal's kind and
/// name (`arn:aws:iam::111122223333:role/platform-admins` → `admin_role_platform_admins`), so
/// the address stays with the principal whatever its position in the list.
pub fn admin_id(principal_arn: &str) -> String {
    let resource = principal_arn
        .split_once(":iam::")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map_or(principal_arn, |(_, resource)| resource);
    format!("admin_{}", super::local_name(resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_id_follows_the_principal_not_its_position() {
        assert_eq!(
            admin_id("arn:aws:iam::111122223333:role/platform-admins"),
            "admin_role_platform_admins"
        );
        assert_eq!(
            admin_id("arn:aws-us-gov:iam::111122223333:user/ops/Jane.Doe"),
            "admin_user_ops_jane_doe"
        );
    }
}
