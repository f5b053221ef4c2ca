//! The AWS Load Balancer Controller's published IAM policy as typed [`Statement`]s.
//!
//! Source: `docs/install/iam_policy.json` of `kubernetes-sigs/aws-load-balancer-controller`,
//! as published for the v2.13.x line (the one that added `ec2:DescribeRouteTables` and
//! `elasticloadbalancing:SetRulePriorities`; unchanged through v2.14.1): 16 statements, all
//! `Allow`, each with a `Resource`. One action is keel's: `wafv2:ListWebACLs`, which the
//! controller calls (from v2.14.0) to resolve `alb.ingress.kubernetes.io/wafv2-acl-name`
//! and which no published version of the file grants (checked through v2.17.1). The published file has no `Sid`s; the ids here are keel's, one per
//! statement, in the published order. Every `arn:aws:` is replaced with the partition, so
//! the same list serves `aws`, `aws-cn` and `aws-us-gov` (condition keys and values, such as
//! `iam:AWSServiceName = elasticloadbalancing.amazonaws.com`, are kept as published).
//! When the controller is upgraded, compare this file with that version's JSON.
//!
//! No statement allows a wildcard action (`*` or `service:*`); the policy names every
//! action, so `iam_wildcard_action` does not flag it. Statements that do grant named actions
//! on `Resource: "*"`, as published, because the controller discovers or creates the
//! resources they apply to:
//!
//! - without condition: `DescribeNetworkAndLoadBalancers` (the `ec2:Describe*`/`Get*` and
//!   `elasticloadbalancing:Describe*` reads, and `ec2:GetSecurityGroupsForVpc`),
//!   `ReadCertificatesAndProtection` (Cognito, ACM, IAM server certificates, WAF Regional,
//!   WAFv2, Shield), `ManageSecurityGroupIngress`, `CreateSecurityGroup`,
//!   `ManageListenersAndRules`, `ModifyListenersAndRules`;
//! - limited by a condition: `CreateElbServiceLinkedRole` (`iam:AWSServiceName`),
//!   `ManageClusterSecurityGroups` and `ModifyClusterLoadBalancers` (resource tagged
//!   `elbv2.k8s.aws/cluster`), `CreateTaggedLoadBalancers` (request tags
//!   `elbv2.k8s.aws/cluster`).

use super::iam::Statement;

/// The tag the controller puts on everything it creates.
const CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";

/// The controller's IAM policy, with ARNs in `partition` (`aws`, `aws-cn`, `aws-us-gov`).
pub fn statements(partition: &str) -> Vec<Statement> {
    let arn = |rest: &str| format!("arn:{partition}:{rest}");
    let request_tag = format!("aws:RequestTag/{CLUSTER_TAG}");
    let resource_tag = format!("aws:ResourceTag/{CLUSTER_TAG}");
    let any = || vec!["*".to_owned()];
    let t = |s: &str| vec![s.to_owned()];
    let security_groups = || vec![arn("ec2:*:*:security-group/*")];
    let load_balancers = || {
        vec![
            arn("elasticloadbalancing:*:*:targetgroup/*/*"),
            arn("elasticloadbalancing:*:*:loadbalancer/net/*/*"),
            arn("elasticloadbalancing:*:*:loadbalancer/app/*/*"),
        ]
    };
    vec![
        Statement::allow(
            "CreateElbServiceLinkedRole",
            &["iam:CreateServiceLinkedRole"],
            any(),
        )
        .when(
            "StringEquals",
            "iam:AWSServiceName",
            t("elasticloadbalancing.amazonaws.com"),
        ),
        Statement::allow(
            "DescribeNetworkAndLoadBalancers",
            &[
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeVpcs",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeInstances",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeTags",
                "ec2:GetCoipPoolUsage",
                "ec2:DescribeCoipPools",
                "ec2:GetSecurityGroupsForVpc",
                "ec2:DescribeIpamPools",
                "ec2:DescribeRouteTables",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTrustStores",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeCapacityReservation",
            ],
            any(),
        ),
        Statement::allow(
            "ReadCertificatesAndProtection",
            &[
                "cognito-idp:DescribeUserPoolClient",
                "acm:ListCertificates",
                "acm:DescribeCertificate",
                "iam:ListServerCertificates",
                "iam:GetServerCertificate",
                "waf-regional:GetWebACL",
                "waf-regional:GetWebACLForResource",
                "waf-regional:AssociateWebACL",
                "waf-regional:DisassociateWebACL",
                "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource",
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
                "wafv2:ListWebACLs",
                "shield:GetSubscriptionState",
                "shield:DescribeProtection",
                "shield:CreateProtection",
                "shield:DeleteProtection",
            ],
            any(),
        ),
        Statement::allow(
            "ManageSecurityGroupIngress",
            &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
            ],
            any(),
        ),
        Statement::allow("CreateSecurityGroup", &["ec2:CreateSecurityGroup"], any()),
        Statement::allow(
            "TagSecurityGroupOnCreate",
            &["ec2:CreateTags"],
            security_groups(),
        )
        .when("StringEquals", "ec2:CreateAction", t("CreateSecurityGroup"))
        .when("Null", &request_tag, t("false")),
        Statement::allow(
            "TagClusterSecurityGroups",
            &["ec2:CreateTags", "ec2:DeleteTags"],
            security_groups(),
        )
        .when("Null", &request_tag, t("true"))
        .when("Null", &resource_tag, t("false")),
        Statement::allow(
            "ManageClusterSecurityGroups",
            &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
            ],
            any(),
        )
        .when("Null", &resource_tag, t("false")),
        Statement::allow(
            "CreateTaggedLoadBalancers",
            &[
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
            ],
            any(),
        )
        .when("Null", &request_tag, t("false")),
        Statement::allow(
            "ManageListenersAndRules",
            &[
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
            ],
            any(),
        ),
        Statement::allow(
            "TagClusterLoadBalancers",
            &[
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags",
            ],
            load_balancers(),
        )
        .when("Null", &request_tag, t("true"))
        .when("Null", &resource_tag, t("false")),
        Statement::allow(
            "TagListenersAndRules",
            &[
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags",
            ],
            vec![
                arn("elasticloadbalancing:*:*:listener/net/*/*/*"),
                arn("elasticloadbalancing:*:*:listener/app/*/*/*"),
                arn("elasticloadbalancing:*:*:listener-rule/net/*/*/*"),
                arn("elasticloadbalancing:*:*:listener-rule/app/*/*/*"),
            ],
        ),
        Statement::allow(
            "ModifyClusterLoadBalancers",
            &[
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyIpPools",
            ],
            any(),
        )
        .when("Null", &resource_tag, t("false")),
        Statement::allow(
            "TagLoadBalancersOnCreate",
            &["elasticloadbalancing:AddTags"],
            load_balancers(),
        )
        .when(
            "StringEquals",
            "elasticloadbalancing:CreateAction",
            vec![
                "CreateTargetGroup".to_owned(),
                "CreateLoadBalancer".to_owned(),
            ],
        )
        .when("Null", &request_tag, t("false")),
        Statement::allow(
            "RegisterTargets",
            &[
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeregisterTargets",
            ],
            vec![arn("elasticloadbalancing:*:*:targetgroup/*/*")],
        ),
        Statement::allow(
            "ModifyListenersAndRules",
            &[
                "elasticloadbalancing:SetWebAcl",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities",
            ],
            any(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn has(s: &Statement, test: &str, variable: &str, values: &[&str]) -> bool {
        s.conditions
            .iter()
            .any(|(t, v, vs)| t == test && v == variable && vs.iter().eq(values.iter()))
    }

    #[test]
    fn every_published_statement_is_there_once() {
        let all = statements("aws");
        assert_eq!(all.len(), 16);
        let sids: BTreeSet<&str> = all.iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(sids.len(), all.len(), "sids are unique");
        assert!(
            all.iter()
                .all(|s| !s.sid.is_empty() && s.sid.chars().all(|c| c.is_ascii_alphanumeric())),
            "IAM sids are alphanumeric"
        );
        let actions: usize = all.iter().map(|s| s.actions.len()).sum();
        // The 86 published actions and keel's `wafv2:ListWebACLs` (web ACLs by name).
        assert_eq!(actions, 87);
        assert!(
            all.iter()
                .any(|s| s.actions.iter().any(|a| a == "wafv2:ListWebACLs"))
        );
        assert!(all.iter().all(|s| !s.resources.is_empty()));
    }

    #[test]
    fn creating_statements_keep_their_cluster_tag_conditions() {
        let all = statements("aws");
        let by = |sid: &str| all.iter().find(|s| s.sid == sid).expect(sid);
        let tag_sg = by("TagSecurityGroupOnCreate");
        assert_eq!(tag_sg.actions, ["ec2:CreateTags"]);
        assert!(has(
            tag_sg,
            "StringEquals",
            "ec2:CreateAction",
            &["CreateSecurityGroup"]
        ));
        for sid in [
            "TagSecurityGroupOnCreate",
            "CreateTaggedLoadBalancers",
            "TagLoadBalancersOnCreate",
        ] {
            assert!(
                has(
                    by(sid),
                    "Null",
                    "aws:RequestTag/elbv2.k8s.aws/cluster",
                    &["false"]
                ),
                "{sid}"
            );
        }
        for sid in ["TagClusterSecurityGroups", "TagClusterLoadBalancers"] {
            let s = by(sid);
            assert!(has(
                s,
                "Null",
                "aws:RequestTag/elbv2.k8s.aws/cluster",
                &["true"]
            ));
            assert!(has(
                s,
                "Null",
                "aws:ResourceTag/elbv2.k8s.aws/cluster",
                &["false"]
            ));
        }
        for sid in ["ManageClusterSecurityGroups", "ModifyClusterLoadBalancers"] {
            assert!(has(
                by(sid),
                "Null",
                "aws:ResourceTag/elbv2.k8s.aws/cluster",
                &["false"]
            ));
        }
        assert!(has(
            by("TagLoadBalancersOnCreate"),
            "StringEquals",
            "elasticloadbalancing:CreateAction",
            &["CreateTargetGroup", "CreateLoadBalancer"]
        ));
    }

    #[test]
    fn no_statement_allows_a_wildcard_action() {
        for s in statements("aws") {
            for a in &s.actions {
                assert!(!a.contains('*'), "{}: {a}", s.sid);
                assert!(
                    a.split_once(':')
                        .is_some_and(|(svc, name)| !svc.is_empty() && !name.is_empty())
                );
            }
        }
    }

    #[test]
    fn arns_are_in_the_given_partition() {
        for s in statements("aws-us-gov") {
            for r in &s.resources {
                assert!(r == "*" || r.starts_with("arn:aws-us-gov:"), "{r}");
            }
        }
        let gov = statements("aws-us-gov");
        assert!(gov.iter().any(|s| {
            s.resources
                .contains(&"arn:aws-us-gov:elasticloadbalancing:*:*:targetgroup/*/*".to_owned())
        }));
    }
}
