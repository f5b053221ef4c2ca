//! Namespaced RBAC for a CI deployer, derived from what its stack emits: a `Role` that may
//! apply every namespaced object of the stack that the namespace's administrator does not
//! own ([`ADMIN_KINDS`]), change the image of each workload, follow it and undo it (read
//! the ReplicaSets that hold its history), and read pods and their logs; bound to the
//! Kubernetes group of the deployer's EKS access entry. No ClusterRole, no delete, no
//! Secrets, no RBAC: a kind the stack does not emit is not granted.
//!
//! See <https://kubernetes.io/docs/reference/access-authn-authz/rbac/> and
//! <https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html>.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::{K8sError, Object, Rank};

/// Kinds that run the pods: CI changes their image, restarts them and undoes them.
pub const WORKLOAD_KINDS: [&str; 2] = ["Deployment", "Rollout"];

/// Kinds the namespace's administrator applies (the deploy plan's apply role), never CI:
/// the namespace, its quota and limits, and RBAC, so CI cannot raise its own ceilings or
/// rights.
pub const ADMIN_KINDS: [&str; 5] = [
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "Role",
    "RoleBinding",
];

/// Verbs on every other kind the stack emits: `kubectl apply` (get, create, patch),
/// `replace` (update), and reading and following them (list, watch). No delete.
pub const APPLY_VERBS: [&str; 6] = ["get", "list", "watch", "create", "update", "patch"];

/// Verbs that only read.
const READ_VERBS: [&str; 3] = ["get", "list", "watch"];

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

/// Name of the deployer's Role and RoleBinding in every stack's namespace.
pub const DEPLOYER_ROLE: &str = "ci-deployer";

/// The Kubernetes group of `stack`'s deploy identity: `<stack>-deployers`.
pub fn deployer_group(stack: &str) -> String {
    format!("{stack}-deployers")
}

/// The plural resource RBAC names a kind by (`NetworkPolicy` → `networkpolicies`,
/// `Ingress` → `ingresses`).
pub fn resource_of(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// The API group of an object (`""` for the core group).
fn api_group(object: &Object) -> &str {
    object.content["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map_or("", |(group, _)| group)
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..Default::default()
    }
}

/// What the deployer of `namespace` needs for `objects`: one apply rule per API group of
/// the objects there (admin kinds left out), and per workload kind present, its history
/// (ReplicaSets), its pods and logs, and for Argo Rollouts the status subresource
/// (`promote`, `abort`) and their AnalysisRuns.
pub fn deployer_rules(namespace: &str, objects: &[Object]) -> Vec<PolicyRule> {
    let mut apply: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut workloads = BTreeSet::new();
    for o in objects {
        if o.namespace.as_deref() != Some(namespace) || ADMIN_KINDS.contains(&o.kind.as_str()) {
            continue;
        }
        apply
            .entry(api_group(o))
            .or_default()
            .insert(resource_of(&o.kind));
        if WORKLOAD_KINDS.contains(&o.kind.as_str()) {
            workloads.insert(o.kind.as_str());
        }
    }
    let mut rules: Vec<PolicyRule> = apply
        .iter()
        .map(|(group, resources)| {
            let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
            rule(group, &resources, &APPLY_VERBS)
        })
        .collect();
    if !workloads.is_empty() {
        // `rollout undo` and `rollout history` read the ReplicaSets that keep old revisions.
        rules.push(rule("apps", &["replicasets"], &READ_VERBS));
        rules.push(rule("", &["pods"], &READ_VERBS));
        // `pods/log` is read with `get` only (it has no list or watch).
        rules.push(rule("", &["pods/log"], &["get"]));
    }
    if workloads.contains("Rollout") {
        // `kubectl argo rollouts promote` and `abort` patch the status subresource.
        rules.push(rule("argoproj.io", &["rollouts/status"], &["get", "patch"]));
        rules.push(rule("argoproj.io", &["analysisruns"], &READ_VERBS));
    }
    rules
}

/// The deployer's Role (rules from [`deployer_rules`] over `objects`) and RoleBinding in its
/// namespace.
pub fn deployer(
    props: &DeployerProps,
    objects: &[Object],
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
    let rules = deployer_rules(&props.namespace, objects);
    if rules.is_empty() {
        return Err(K8sError::InvalidProps {
            field: "deployer".to_owned(),
            found: format!("no object in namespace `{}`", props.namespace),
            expected: "the stack's objects, from which the Role's rules derive".to_owned(),
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
        rules: Some(rules),
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

/// The deployer of `stack` in `env`: [`DEPLOYER_ROLE`] in `namespace`, bound to
/// [`deployer_group`]`(stack)` (the group its deploy role's access entry names), with the
/// rules `objects` need.
pub fn stack_deployer(
    stack: &str,
    env: &str,
    namespace: &str,
    objects: &[Object],
) -> Result<Vec<Object>, K8sError> {
    let labels = super::AppLabels {
        name: DEPLOYER_ROLE.to_owned(),
        instance: format!("{DEPLOYER_ROLE}-{env}"),
        version: "1".to_owned(),
        component: "ci".to_owned(),
        part_of: stack.to_owned(),
    }
    .recommended()?;
    deployer(
        &DeployerProps {
            name: DEPLOYER_ROLE.to_owned(),
            namespace: namespace.to_owned(),
            group: deployer_group(stack),
        },
        objects,
        &labels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(group: &str) -> DeployerProps {
        DeployerProps {
            name: "ci-deployer".into(),
            namespace: "shop".into(),
            group: group.into(),
        }
    }

    fn object(api: &str, kind: &str, namespace: Option<&str>) -> Object {
        Object {
            kind: kind.into(),
            name: "web".into(),
            namespace: namespace.map(str::to_owned),
            rank: Rank::Workload,
            content: json!({"apiVersion": api, "kind": kind}),
        }
    }

    fn shop() -> Vec<Object> {
        vec![
            object("v1", "Namespace", None),
            object("v1", "ResourceQuota", Some("shop")),
            object("v1", "ConfigMap", Some("shop")),
            object("argoproj.io/v1alpha1", "Rollout", Some("shop")),
            object("networking.k8s.io/v1", "NetworkPolicy", Some("shop")),
            object("networking.k8s.io/v1", "Ingress", Some("shop")),
            object("apps/v1", "Deployment", Some("other")),
        ]
    }

    #[test]
    fn role_applies_what_the_namespace_holds_and_undoes_its_workloads() {
        let objects = deployer(&props("shop-deployers"), &shop(), &BTreeMap::new()).unwrap();
        let role = &objects[0].content;
        assert_eq!(role["kind"], "Role");
        let apply = json!(APPLY_VERBS);
        assert_eq!(
            role["rules"],
            json!([
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": apply},
                {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": apply},
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": apply},
                {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": ["argoproj.io"], "resources": ["rollouts/status"], "verbs": ["get", "patch"]},
                {"apiGroups": ["argoproj.io"], "resources": ["analysisruns"], "verbs": ["get", "list", "watch"]},
            ]),
            "no quota, no other namespace's Deployment"
        );
        let binding = &objects[1].content;
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["kind"], "Group");
        assert_eq!(binding["subjects"][0]["name"], "shop-deployers");
        assert!(deployer(&props("system:masters"), &shop(), &BTreeMap::new()).is_err());
        assert!(deployer(&props(""), &shop(), &BTreeMap::new()).is_err());
        assert!(deployer(&props("shop-deployers"), &[], &BTreeMap::new()).is_err());
    }

    #[test]
    fn plurals() {
        assert_eq!(resource_of("NetworkPolicy"), "networkpolicies");
        assert_eq!(resource_of("Ingress"), "ingresses");
        assert_eq!(
            resource_of("HorizontalPodAutoscaler"),
            "horizontalpodautoscalers"
        );
    }
}
