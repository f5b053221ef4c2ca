//! Namespaced RBAC for a CI deployer: a `Role` that may read and roll its namespace's
//! Deployments and Argo Rollouts (change an image, restart, follow a rollout) and read pods
//! and their logs, bound to the Kubernetes group of the deployer's EKS access entry. No
//! ClusterRole, no create or delete, no Secrets, ConfigMaps, Services or RBAC.
//!
//! See <https://kubernetes.io/docs/reference/access-authn-authz/rbac/> and
//! <https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html>.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::{K8sError, Object, Rank};

/// Verbs on workloads: read them and change them in place (`kubectl set image`,
/// `kubectl rollout restart`, `kubectl rollout status`).
pub const WORKLOAD_VERBS: [&str; 5] = ["get", "list", "watch", "patch", "update"];

/// Who deploys a namespace and what it is called there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployerProps {
    /// Name of the Role and RoleBinding, e.g. `ci-deployer`.
    pub name: String,
    /// The namespace it deploys.
    pub namespace: String,
    /// The Kubernetes group its EKS access entry maps it to (not `system:*`).
    pub group: String,
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..Default::default()
    }
}

/// The deployer's Role and RoleBinding in its namespace.
pub fn deployer(
    props: &DeployerProps,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<Object>, K8sError> {
    if props.group.is_empty()
        || props.group.starts_with("system:")
        || props.group.chars().any(char::is_whitespace)
    {
        return Err(K8sError::InvalidProps {
            field: "deployer group".to_owned(),
            found: format!("`{}`", props.group),
            expected: "a Kubernetes group name without spaces, not starting with `system:` (EKS refuses those in access entries)".to_owned(),
        });
    }
    let meta = |kind: &str| {
        super::meta(
            kind,
            &props.name,
            Some(&props.namespace),
            labels,
            BTreeMap::new(),
            &[],
        )
    };
    let role = Role {
        metadata: meta("Role")?,
        rules: Some(vec![
            rule("apps", &["deployments"], &WORKLOAD_VERBS),
            rule("argoproj.io", &["rollouts"], &WORKLOAD_VERBS),
            rule("", &["pods"], &["get", "list", "watch"]),
            // `pods/log` is read with `get` only (it has no list or watch).
            rule("", &["pods/log"], &["get"]),
        ]),
    };
    let binding = RoleBinding {
        metadata: meta("RoleBinding")?,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: props.name.clone(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Group".to_owned(),
            name: props.group.clone(),
            namespace: None,
        }]),
    };
    Ok(vec![
        Object::new(Rank::Rbac, &role)?,
        Object::new(Rank::Rbac, &binding)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(group: &str) -> DeployerProps {
        DeployerProps {
            name: "ci-deployer".into(),
            namespace: "shop".into(),
            group: group.into(),
        }
    }

    #[test]
    fn role_rolls_workloads_and_reads_pods_only() {
        let objects = deployer(&props("shop-deployers"), &BTreeMap::new()).unwrap();
        let role = &objects[0].content;
        assert_eq!(role["kind"], "Role");
        let rules = role["rules"].as_array().unwrap();
        let verbs: Vec<&str> = rules
            .iter()
            .flat_map(|r| r["verbs"].as_array().unwrap())
            .filter_map(|v| v.as_str())
            .collect();
        for forbidden in [
            "create",
            "delete",
            "deletecollection",
            "*",
            "escalate",
            "bind",
        ] {
            assert!(!verbs.contains(&forbidden), "{forbidden} in {verbs:?}");
        }
        let binding = &objects[1].content;
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["kind"], "Group");
        assert_eq!(binding["subjects"][0]["name"], "shop-deployers");
        assert!(deployer(&props("system:masters"), &BTreeMap::new()).is_err());
        assert!(deployer(&props(""), &BTreeMap::new()).is_err());
    }
}
