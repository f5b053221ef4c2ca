//! `ci_cluster_admin`
//!
//! *What it does:* flags an `aws_eks_access_policy_association` that grants
//! `AmazonEKSClusterAdminPolicy` or `AmazonEKSAdminPolicy` with `access_scope` type `cluster`
//! to an IAM role that GitHub Actions can assume: the association's `principal_arn` is
//! `aws_iam_role.<name>.arn` (directly, through an `aws_eks_access_entry`'s
//! `principal_arn`, or as a literal role ARN whose name matches an `aws_iam_role` of the
//! root), and that role's `assume_role_policy` is a `data.aws_iam_policy_document` (or a
//! literal JSON policy) with a statement trusting GitHub's OIDC provider (see
//! `github_trust_unpinned`).
//!
//! *Why is this bad:* a CI role with cluster-wide admin turns any workflow that can get a
//! token for it (a compromised action, a pushed branch if the trust is loose) into full
//! control of the cluster: every namespace, every secret, RBAC itself.
//!
//! *Use instead:* an access entry with `kubernetes_groups` and no access policy, the group
//! bound in the namespaces it deploys to a Role derived from what the stack emits
//! ([`crate::k8s::stack_deployer`]; see `ci_access_policy`), or let an in-cluster
//! controller (Argo CD, Flux) apply the manifests so CI needs no cluster credentials at all.

use serde_json::Value;

use super::super::{Finding, Rule};
use super::github_trust_unpinned::{block, trusts_github};
use crate::refs::{self, BlockKind};
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "ci_cluster_admin",
    summary: "no cluster-wide EKS admin access policy for a role GitHub Actions can assume",
    check,
};

/// EKS access policies that are admin over what they are scoped to.
pub(super) const ADMIN_POLICIES: [&str; 2] =
    ["AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy"];

/// The `access_scope.type` of an association (a block list in Terraform JSON, or one object).
pub(super) fn scope_type(body: &Value) -> &str {
    let scope = &body["access_scope"];
    let scope = if scope.is_array() { &scope[0] } else { scope };
    scope["type"].as_str().unwrap_or_default()
}

/// Addresses of the `aws_iam_role`s a `principal_arn` names: through references
/// (`aws_iam_role.x.arn`, `aws_eks_access_entry.y.principal_arn`), or a literal role ARN
/// matched on the role's `name`.
pub(super) fn roles(
    config: &Config,
    by_name: &RolesByName<'_>,
    principal_arn: &str,
    depth: u8,
) -> Vec<String> {
    let mut out = Vec::new();
    for text in refs::references(principal_arn) {
        if let Some(role) = text
            .strip_suffix(".arn")
            .filter(|a| a.starts_with("aws_iam_role."))
        {
            out.push(role.to_owned());
        } else if let Some(entry) = text
            .strip_suffix(".principal_arn")
            .filter(|a| a.starts_with("aws_eks_access_entry."))
            && depth == 0
            && let Some(arn) = block(config, entry).and_then(|b| b["principal_arn"].as_str())
        {
            out.extend(roles(config, by_name, arn, depth + 1));
        }
    }
    if refs::is_literal(principal_arn)
        && let Some((_, path)) = principal_arn.split_once(":role/")
    {
        let name = path.rsplit('/').next().unwrap_or(path);
        out.extend(by_name.get(name).into_iter().flatten().cloned());
    }
    out
}

/// The root's `aws_iam_role` addresses by their literal `name`, in address order.
pub(super) type RolesByName<'c> = std::collections::BTreeMap<&'c str, Vec<String>>;

/// Built once per check, so matching literal role ARNs costs no more as the root grows.
pub(super) fn roles_by_name(config: &Config) -> RolesByName<'_> {
    let mut by_name = RolesByName::new();
    for (r, body) in config.blocks() {
        if r.kind() == BlockKind::Resource
            && r.ty() == "aws_iam_role"
            && let Some(name) = body["name"].as_str()
        {
            by_name.entry(name).or_default().push(r.address());
        }
    }
    by_name
}

/// Whether a literal JSON trust policy trusts GitHub Actions' OIDC provider.
fn literal_trusts_github(policy: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let statements = match &doc["Statement"] {
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && match &s["Principal"]["Federated"] {
                Value::String(id) => vec![id.as_str()],
                Value::Array(ids) => ids.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            }
            .iter()
            .any(|id| id.ends_with("oidc-provider/token.actions.githubusercontent.com"))
    })
}

/// The trust document of `role` that lets GitHub Actions assume it, if any (its address,
/// or `assume_role_policy` for a literal policy).
pub(super) fn github_trust(config: &Config, role: &str) -> Option<String> {
    let policy = block(config, role)?["assume_role_policy"].as_str()?;
    if refs::is_literal(policy) {
        return literal_trusts_github(policy).then(|| "assume_role_policy".to_owned());
    }
    refs::references(policy).into_iter().find_map(|text| {
        let doc = text
            .strip_suffix(".json")
            .filter(|a| a.starts_with("data.aws_iam_policy_document."))?;
        let body = block(config, doc)?;
        body["statement"]
            .as_array()?
            .iter()
            .any(|s| trusts_github(config, s))
            .then(|| doc.to_owned())
    })
}

fn check(config: &Config, out: &mut Vec<Finding>) {
    let by_name = roles_by_name(config);
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Resource || r.ty() != "aws_eks_access_policy_association" {
            continue;
        }
        let policy_arn = body["policy_arn"].as_str().unwrap_or_default();
        let Some(policy) = ADMIN_POLICIES.iter().find(|p| policy_arn.ends_with(*p)) else {
            continue;
        };
        if scope_type(body) != "cluster" {
            continue;
        }
        let principal = body["principal_arn"].as_str().unwrap_or_default();
        for role in roles(config, &by_name, principal, 0) {
            if let Some(trust) = github_trust(config, &role) {
                out.push(Finding {
                    rule: RULE.name,
                    address: r.address(),
                    message: format!(
                        "grants {policy} on the whole cluster to {role}, which GitHub Actions can assume ({trust}); map the CI role to a Kubernetes group bound to a namespaced Role (k8s::stack_deployer), or deploy from inside the cluster"
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::{Value, json};

    use crate::policy::check;
    use crate::refs::Ref;
    use crate::tf::Config;
    use crate::tf::tests::config;

    pub(in crate::policy::rules) const GITHUB: &str =
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";

    /// A role `name` trusted by the federated `provider`, pinned as the other rules want.
    pub(in crate::policy::rules) fn role(c: &mut Config, name: &str, provider: &str) -> Ref {
        let trust = c.data(
            "iam",
            "aws_iam_policy_document",
            &format!("{name}_trust"),
            json!({"statement": [{
                "sid": "AssumeFromGitHub",
                "effect": "Allow",
                "actions": ["sts:AssumeRoleWithWebIdentity"],
                "principals": [{"type": "Federated", "identifiers": [provider]}],
                "condition": [
                    {"test": "StringEquals", "variable": "token.actions.githubusercontent.com:sub", "values": ["repo:acme/api:environment:prod"]},
                    {"test": "StringEquals", "variable": "token.actions.githubusercontent.com:aud", "values": ["sts.amazonaws.com"]},
                ],
            }]}),
        );
        c.resource(
            "iam",
            "aws_iam_role",
            name,
            json!({"name": format!("acme-{name}"), "assume_role_policy": trust.attr("json")}),
        )
    }

    pub(in crate::policy::rules) fn association(
        c: &mut Config,
        name: &str,
        principal: Value,
        policy: &str,
        scope: &str,
    ) {
        c.resource(
            "eks",
            "aws_eks_access_policy_association",
            name,
            json!({
                "cluster_name": "acme",
                "policy_arn": format!("arn:aws:eks::aws:cluster-access-policy/{policy}"),
                "principal_arn": principal,
                "access_scope": [{"type": scope}],
            }),
        );
    }

    fn found(c: &Config) -> Vec<String> {
        crate::policy::addresses_found(c, super::RULE.name)
    }

    #[test]
    fn ci_role_with_cluster_admin_is_found() {
        let mut c = config();
        let ci = role(&mut c, "ci", GITHUB);
        association(
            &mut c,
            "ci_admin",
            ci.arn().into(),
            "AmazonEKSClusterAdminPolicy",
            "cluster",
        );
        let entry = c.resource(
            "eks",
            "aws_eks_access_entry",
            "ci",
            json!({"cluster_name": "acme", "principal_arn": ci.arn()}),
        );
        association(
            &mut c,
            "via_entry",
            entry.attr("principal_arn").into(),
            "AmazonEKSAdminPolicy",
            "cluster",
        );
        association(
            &mut c,
            "literal",
            json!("arn:aws:iam::123456789012:role/acme-ci"),
            "AmazonEKSClusterAdminPolicy",
            "cluster",
        );
        assert_eq!(
            found(&c),
            [
                "aws_eks_access_policy_association.ci_admin",
                "aws_eks_access_policy_association.literal",
                "aws_eks_access_policy_association.via_entry",
            ]
        );
    }

    #[test]
    fn namespace_scope_narrow_policy_and_non_ci_roles_pass() {
        let mut c = config();
        let ci = role(&mut c, "ci", GITHUB);
        let ops = role(
            &mut c,
            "ops",
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC",
        );
        association(
            &mut c,
            "ci_namespace",
            ci.arn().into(),
            "AmazonEKSAdminPolicy",
            "namespace",
        );
        association(
            &mut c,
            "ci_view",
            ci.arn().into(),
            "AmazonEKSViewPolicy",
            "cluster",
        );
        association(
            &mut c,
            "ops_admin",
            ops.arn().into(),
            "AmazonEKSClusterAdminPolicy",
            "cluster",
        );
        assert!(found(&c).is_empty(), "{:?}", check(&c));
    }

    #[test]
    fn a_literal_trust_policy_is_read() {
        assert!(super::literal_trusts_github(
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Federated": GITHUB}, "Action": "sts:AssumeRoleWithWebIdentity"}]})
            .to_string()
        ));
        assert!(!super::literal_trusts_github(
            &json!({"Statement": {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}})
                .to_string()
        ));
    }
}
