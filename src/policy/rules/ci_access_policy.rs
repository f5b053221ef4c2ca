//! `ci_access_policy`
//!
//! *What it does:* flags an `aws_eks_access_policy_association` that gives an IAM role
//! GitHub Actions can assume (found as `ci_cluster_admin` finds it) any EKS access policy
//! other than `AmazonEKSViewPolicy`, in any scope (`ci_cluster_admin` already reports the
//! cluster-wide admin ones).
//!
//! *Why is this bad:* EKS access policies are fixed sets of Kubernetes rights that fit no
//! stack: `AmazonEKSEditPolicy` covers neither `argoproj.io` (Rollouts) nor
//! `external-secrets.io`, so CI cannot roll or undo a canary or apply its ExternalSecrets,
//! and it reads every Secret of the namespace, which CI never needs.
//!
//! *Example:* `AmazonEKSEditPolicy` with `access_scope { type = "namespace" }` for the
//! deploy role of a stack that renders an Argo Rollout.
//!
//! *Use instead:* an `aws_eks_access_entry` with `kubernetes_groups = ["<stack>-deployers"]`
//! and no association, the group bound in the stack's namespace to the Role
//! [`crate::k8s::stack_deployer`] derives from the objects the stack emits.
//!
//! *References:* <https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html>

use super::super::{Finding, Rule};
use super::ci_cluster_admin::{ADMIN_POLICIES, github_trust, roles, roles_by_name, scope_type};
use crate::refs::BlockKind;
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "ci_access_policy",
    summary: "no EKS access policy (beyond view) for a role GitHub Actions can assume: a group and the stack's derived Role instead",
    check,
};

/// The one access policy CI may hold: read-only.
const VIEW_POLICY: &str = "AmazonEKSViewPolicy";

fn check(config: &Config, out: &mut Vec<Finding>) {
    let by_name = roles_by_name(config);
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Resource || r.ty() != "aws_eks_access_policy_association" {
            continue;
        }
        let policy_arn = body["policy_arn"].as_str().unwrap_or_default();
        let policy = policy_arn.rsplit('/').next().unwrap_or(policy_arn);
        let scope = scope_type(body);
        let cluster_admin = scope == "cluster" && ADMIN_POLICIES.contains(&policy);
        if policy == VIEW_POLICY || cluster_admin {
            continue;
        }
        let principal = body["principal_arn"].as_str().unwrap_or_default();
        for role in roles(config, &by_name, principal, 0) {
            if let Some(trust) = github_trust(config, &role) {
                out.push(Finding {
                    rule: RULE.name,
                    address: r.address(),
                    message: format!(
                        "grants {policy} ({scope} scope) to {role}, which GitHub Actions can assume ({trust}); EKS access policies cover no custom resources (argoproj.io, external-secrets.io) and Edit reads every Secret: map the role to a Kubernetes group and bind it to the stack's Role (k8s::stack_deployer)"
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::ci_cluster_admin::tests::{GITHUB, association, role};
    use crate::policy::check;
    use crate::tf::Config;
    use crate::tf::tests::config;

    fn found(c: &Config) -> Vec<String> {
        crate::policy::addresses_found(c, super::RULE.name)
    }

    #[test]
    fn ci_role_with_an_edit_policy_is_found() {
        let mut c = config();
        let ci = role(&mut c, "ci", GITHUB);
        association(
            &mut c,
            "ci_edit",
            ci.arn().into(),
            "AmazonEKSEditPolicy",
            "namespace",
        );
        association(
            &mut c,
            "ci_admin_ns",
            ci.arn().into(),
            "AmazonEKSAdminPolicy",
            "namespace",
        );
        assert_eq!(
            found(&c),
            [
                "aws_eks_access_policy_association.ci_admin_ns",
                "aws_eks_access_policy_association.ci_edit",
            ]
        );
        let message = check(&c)[0].message.clone();
        assert!(message.contains("argoproj.io"), "{message}");
    }

    #[test]
    fn a_group_view_cluster_admin_and_non_ci_roles_pass() {
        let mut c = config();
        let ci = role(&mut c, "ci", GITHUB);
        c.resource(
            "eks",
            "aws_eks_access_entry",
            "ci",
            json!({"cluster_name": "acme", "principal_arn": ci.arn(), "kubernetes_groups": ["api-deployers"]}),
        );
        association(
            &mut c,
            "ci_view",
            ci.arn().into(),
            "AmazonEKSViewPolicy",
            "cluster",
        );
        // Reported by ci_cluster_admin, not twice.
        association(
            &mut c,
            "ci_admin",
            ci.arn().into(),
            "AmazonEKSClusterAdminPolicy",
            "cluster",
        );
        let ops = role(
            &mut c,
            "ops",
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC",
        );
        association(
            &mut c,
            "ops_edit",
            ops.arn().into(),
            "AmazonEKSEditPolicy",
            "namespace",
        );
        assert!(found(&c).is_empty(), "{:?}", check(&c));
    }
}
