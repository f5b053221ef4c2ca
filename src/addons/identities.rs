//! The AWS identities of the add-ons that call AWS: each a [`WorkloadIdentity`] (namespace,
//! ServiceAccount, least-privilege statements) that the platform stack turns into a role
//! and, under Pod Identity, an association. Published policies, scoped to the cluster.

use crate::construct::iam::Statement;
use crate::construct::lb_controller_policy;
use crate::construct::workload_identity::WorkloadIdentity;
use crate::tf::Suppression;

/// An add-on's identity and how its policy is allowed past checkov.
#[derive(Debug, Clone)]
pub struct Controller {
    /// The role, its trust subject and its statements.
    pub identity: WorkloadIdentity,
    /// The EKS add-on that runs it, which gets the role (`service_account_role_arn`).
    pub eks_addon: Option<&'static str>,
    /// The role may also use the platform's KMS key through this service (e.g. SNS
    /// publishing to the encrypted alerts topic): `kms:GenerateDataKey*`/`kms:Decrypt`.
    pub platform_key_via: Option<String>,
    /// Checkov checks its published policy cannot pass, with the reason.
    pub suppressions: Vec<Suppression>,
}

fn identity(
    id: &str,
    namespace: &str,
    service_account: &str,
    managed: Vec<&'static str>,
    statements: Vec<Statement>,
) -> WorkloadIdentity {
    WorkloadIdentity {
        id: id.to_owned(),
        role_suffix: id.replace('_', "-"),
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        managed,
        statements,
    }
}

/// The checks a published policy that writes to resources created at run time fails.
fn published_suppressions(reason: &'static str) -> Vec<Suppression> {
    ["CKV_AWS_111", "CKV_AWS_356"]
        .into_iter()
        .map(|check| Suppression { check, reason })
        .collect()
}

/// The AWS Load Balancer Controller: its published policy.
pub fn lb_controller(namespace: &str, partition: &str) -> Controller {
    const PUBLISHED: &str = "the AWS Load Balancer Controller's published policy: it creates ELB and EC2 resources that have no ARN before it runs, and scopes writes by the elbv2.k8s.aws/cluster tag";
    Controller {
        identity: identity(
            "lb_controller",
            namespace,
            "aws-load-balancer-controller",
            vec![],
            lb_controller_policy::statements(partition),
        ),
        eks_addon: None,
        platform_key_via: None,
        suppressions: published_suppressions(PUBLISHED),
    }
}

/// Where a cluster's resources are: partition, region, account and cluster name.
#[derive(Debug, Clone)]
pub struct Place<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: &'a str,
    /// Region.
    pub region: &'a str,
    /// Account id.
    pub account: &'a str,
    /// Cluster name.
    pub cluster: &'a str,
}

/// Cluster Autoscaler: the published policy (autoscaler `cloudprovider/aws/README.md`),
/// scaling only Auto Scaling groups tagged as owned by this cluster (EKS tags its managed
/// node groups' groups so).
pub fn cluster_autoscaler(namespace: &str, service_account: &str, at: &Place<'_>) -> Controller {
    let Place {
        partition,
        region,
        account,
        cluster,
    } = at;
    Controller {
        identity: identity(
            "cluster_autoscaler",
            namespace,
            service_account,
            vec![],
            vec![
                Statement::allow(
                    "DescribeScalingInputs",
                    &[
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                    ],
                    vec!["*".into()],
                ),
                Statement::allow(
                    "DescribeOwnNodeGroups",
                    &["eks:DescribeNodegroup"],
                    vec![format!(
                        "arn:{partition}:eks:{region}:{account}:nodegroup/{cluster}/*/*"
                    )],
                ),
                Statement::allow(
                    "ScaleOwnNodeGroups",
                    &[
                        "autoscaling:SetDesiredCapacity",
                        "autoscaling:TerminateInstanceInAutoScalingGroup",
                    ],
                    vec![format!(
                        "arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/*"
                    )],
                )
                .when(
                    "StringEquals",
                    &format!("aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}"),
                    vec!["owned".into()],
                ),
            ],
        ),
        eks_addon: None,
        platform_key_via: None,
        // Describe calls on `*` are reads; the writes are scoped by ARN and cluster tag, so
        // checkov needs no exception.
        suppressions: vec![],
    }
}

/// Alertmanager: publish to the alerts topic only (and encrypt for it through SNS).
pub fn alertmanager(
    namespace: &str,
    service_account: &str,
    topic_arn: &str,
    region: &str,
) -> Controller {
    Controller {
        identity: identity(
            "alertmanager",
            namespace,
            service_account,
            vec![],
            vec![Statement::allow(
                "PublishAlerts",
                &["sns:Publish"],
                vec![topic_arn.to_owned()],
            )],
        ),
        eks_addon: None,
        platform_key_via: Some(format!("sns.{region}.amazonaws.com")),
        suppressions: vec![],
    }
}

/// cert-manager solving DNS-01 in Route 53: TXT records under `_acme-challenge.` only
/// (cert-manager's documented policy, narrowed by record type and name).
pub fn cert_manager_dns01(namespace: &str, service_account: &str, partition: &str) -> Controller {
    Controller {
        identity: identity(
            "cert_manager",
            namespace,
            service_account,
            vec![],
            vec![
                Statement::allow(
                    "ReadChanges",
                    &["route53:GetChange"],
                    vec![format!("arn:{partition}:route53:::change/*")],
                ),
                Statement::allow(
                    "ListRecords",
                    &["route53:ListResourceRecordSets"],
                    vec![format!("arn:{partition}:route53:::hostedzone/*")],
                ),
                Statement::allow(
                    "WriteChallengeRecords",
                    &["route53:ChangeResourceRecordSets"],
                    vec![format!("arn:{partition}:route53:::hostedzone/*")],
                )
                .when(
                    "ForAllValues:StringEquals",
                    "route53:ChangeResourceRecordSetsRecordTypes",
                    vec!["TXT".into()],
                )
                .when(
                    "ForAllValues:StringLike",
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                    vec!["_acme-challenge.*".into()],
                ),
                Statement::allow(
                    "FindZones",
                    &["route53:ListHostedZonesByName"],
                    vec!["*".into()],
                ),
            ],
        ),
        // The add-on's ServiceAccount carries the IRSA annotation through its configuration
        // values (the add-on declares no ServiceAccount for `service_account_role_arn`).
        eks_addon: None,
        platform_key_via: None,
        suppressions: vec![],
    }
}

/// The CloudWatch agent and Fluent Bit of the observability add-on: AWS's managed
/// `CloudWatchAgentServerPolicy` (put logs and metrics, read its own SSM parameters).
pub fn cloudwatch_agent(namespace: &str) -> Controller {
    Controller {
        identity: identity(
            "cloudwatch_agent",
            namespace,
            "cloudwatch-agent",
            vec!["CloudWatchAgentServerPolicy"],
            vec![],
        ),
        eks_addon: Some(super::catalogue::CLOUDWATCH_OBSERVABILITY),
        platform_key_via: None,
        suppressions: vec![],
    }
}
