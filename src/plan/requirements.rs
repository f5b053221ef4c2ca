//! What a Kubernetes object needs before `kubectl apply` can succeed and work, and what it
//! gives the objects after it, read from the object itself (its API group, namespace,
//! ingress class, issuer annotation, metrics, store reference, labels).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Capability;
use crate::k8s::Object;

/// API groups every conformant cluster serves: nothing needs installing for them.
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apps",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
];

/// Namespaces every cluster has from its start.
const BUILT_IN_NAMESPACES: &[&str] = &["default", "kube-node-lease", "kube-public", "kube-system"];

/// Kinds that live outside any namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterIssuer",
    "ClusterSecretStore",
    "CustomResourceDefinition",
    "IngressClass",
    "PriorityClass",
    "StorageClass",
];

/// The API group of an `apiVersion` (`cert-manager.io/v1` -> `cert-manager.io`, `v1` -> ``).
pub fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Everything `object` needs from earlier steps.
pub fn requires(object: &Object) -> Vec<Capability> {
    let c = &object.content;
    let mut out = Vec::new();
    let group = api_group(c["apiVersion"].as_str().unwrap_or_default());
    if !BUILT_IN_GROUPS.contains(&group) {
        out.push(Capability::ApiGroup(group.to_owned()));
    }
    if let Some(ns) = &object.namespace
        && !CLUSTER_SCOPED.contains(&object.kind.as_str())
        && !BUILT_IN_NAMESPACES.contains(&ns.as_str())
    {
        out.push(Capability::Namespace(ns.clone()));
    }
    match object.kind.as_str() {
        "Ingress" => {
            if let Some(class) = c["spec"]["ingressClassName"].as_str() {
                out.push(Capability::IngressClass(class.to_owned()));
            }
            if let Some(issuer) =
                c["metadata"]["annotations"]["cert-manager.io/cluster-issuer"].as_str()
            {
                out.push(Capability::ClusterIssuer(issuer.to_owned()));
            }
        }
        "HorizontalPodAutoscaler" => {
            let metrics = c["spec"]["metrics"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            if metrics
                .iter()
                .any(|m| m["type"] == "Resource" || m["type"] == "ContainerResource")
            {
                out.push(Capability::ResourceMetrics);
            }
        }
        "NetworkPolicy" => out.push(Capability::NetworkPolicyEnforcement),
        "ServiceMonitor" | "PodMonitor" | "PrometheusRule" => {
            out.push(Capability::Prometheus(labels(c)));
        }
        "ExternalSecret" => {
            let store = &c["spec"]["secretStoreRef"];
            if let Some(name) = store["name"].as_str() {
                out.push(match store["kind"].as_str() {
                    Some("ClusterSecretStore") => Capability::ClusterSecretStore(name.to_owned()),
                    // `SecretStore` is the API's default kind.
                    _ => Capability::SecretStore(
                        object.namespace.clone().unwrap_or_default(),
                        name.to_owned(),
                    ),
                });
            }
        }
        _ => {}
    }
    out
}

/// What `object`, once applied, gives the steps after it.
pub fn provides(object: &Object) -> Vec<Capability> {
    let name = object.name.clone();
    match object.kind.as_str() {
        "Namespace" => vec![Capability::Namespace(name)],
        "ClusterIssuer" => vec![Capability::ClusterIssuer(name)],
        "ClusterSecretStore" => vec![Capability::ClusterSecretStore(name)],
        "SecretStore" => vec![Capability::SecretStore(
            object.namespace.clone().unwrap_or_default(),
            name,
        )],
        _ => Vec::new(),
    }
}

fn labels(content: &Value) -> BTreeMap<String, String> {
    content["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A workload-ranked object of `content` (which names its kind and name).
    fn object(content: Value) -> Object {
        Object::new(crate::k8s::Rank::Workload, &content)
            .expect("a test object has a kind and a name")
    }

    #[test]
    fn an_ingress_needs_its_class_its_issuer_and_its_namespace() {
        let ingress = object(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop",
                         "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt-prod"}},
            "spec": {"ingressClassName": "nginx"}
        }));
        assert_eq!(
            requires(&ingress),
            vec![
                Capability::Namespace("shop".into()),
                Capability::IngressClass("nginx".into()),
                Capability::ClusterIssuer("letsencrypt-prod".into()),
            ]
        );
    }

    #[test]
    fn custom_resources_need_their_group_and_monitors_a_prometheus_selecting_them() {
        let monitor = object(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "api", "namespace": "shop", "labels": {"release": "kps", "app": "api"}}
        }));
        let needs = requires(&monitor);
        assert!(needs.contains(&Capability::ApiGroup("monitoring.coreos.com".into())));
        let selecting = Capability::Prometheus(BTreeMap::from([("release".into(), "kps".into())]));
        let other = Capability::Prometheus(BTreeMap::from([("release".into(), "other".into())]));
        let need = needs
            .iter()
            .find(|c| matches!(c, Capability::Prometheus(_)))
            .unwrap();
        assert!(selecting.satisfies(need));
        assert!(!other.satisfies(need));
    }

    #[test]
    fn resource_hpas_need_metrics_and_external_secrets_their_store() {
        let hpa = object(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"metrics": [{"type": "Resource"}]}
        }));
        assert!(requires(&hpa).contains(&Capability::ResourceMetrics));
        let secret = object(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"secretStoreRef": {"kind": "SecretStore", "name": "aws"}}
        }));
        assert!(requires(&secret).contains(&Capability::SecretStore("shop".into(), "aws".into())));
        let store = object(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
            "metadata": {"name": "aws"}
        }));
        assert_eq!(
            requires(&store),
            vec![Capability::ApiGroup("external-secrets.io".into())]
        );
        assert_eq!(
            provides(&store),
            vec![Capability::ClusterSecretStore("aws".into())]
        );
    }
}
