//! What the environment's stacks use, read from the Kubernetes objects they generate: the
//! API groups of their kinds, the ingress classes and ClusterIssuers their Ingresses name,
//! resource-metric HPAs, NetworkPolicies. The add-on layer installs exactly what this finds.

use std::collections::{BTreeMap, BTreeSet};

use crate::k8s::Object;

/// The annotation by which an Ingress names its cert-manager ClusterIssuer.
pub const CLUSTER_ISSUER_ANNOTATION: &str = "cert-manager.io/cluster-issuer";

/// The annotation by which an Ingress asks for HTTP-01 challenges of its names through
/// another ingress class than its issuer's. cert-manager reads it from 1.20 only, so the
/// issuer also gets a solver for those names through that class ([`Uses::solver_classes`]).
pub const SOLVER_CLASS_ANNOTATION: &str = "acme.cert-manager.io/http01-ingress-ingressclassname";

/// What a set of objects needs from the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses {
    /// API groups of the objects' kinds that are not built into Kubernetes (those with a
    /// dot and not `*.k8s.io`), e.g. `monitoring.coreos.com`.
    pub api_groups: BTreeSet<String>,
    /// `spec.ingressClassName` of every Ingress.
    pub ingress_classes: BTreeSet<String>,
    /// ClusterIssuers the Ingresses name, with the ingress classes of those Ingresses.
    pub cluster_issuers: BTreeMap<String, BTreeSet<String>>,
    /// Per ClusterIssuer, the TLS names of Ingresses that ask for another HTTP-01 solver
    /// class ([`SOLVER_CLASS_ANNOTATION`]), by that class.
    pub solver_classes: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// A HorizontalPodAutoscaler scales on CPU or memory (needs the resource metrics API).
    pub resource_hpas: bool,
    /// A NetworkPolicy exists (needs a CNI that enforces it).
    pub network_policies: bool,
    /// A ConfigMap carries a Grafana dashboard (needs Grafana with its dashboard sidecar).
    pub dashboards: bool,
}

/// Whether `group` is served by Kubernetes itself (core, `apps`, `*.k8s.io`, ...).
fn built_in(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

impl Uses {
    /// Reads every object.
    pub fn of<'a>(objects: impl IntoIterator<Item = &'a Object>) -> Uses {
        let mut uses = Uses::default();
        for o in objects {
            let c = &o.content;
            if let Some((group, _)) = c["apiVersion"].as_str().and_then(|v| v.split_once('/'))
                && !built_in(group)
            {
                uses.api_groups.insert(group.to_owned());
            }
            match o.kind.as_str() {
                "Ingress" => {
                    let class = c["spec"]["ingressClassName"].as_str().map(str::to_owned);
                    if let Some(class) = &class {
                        uses.ingress_classes.insert(class.clone());
                    }
                    if let Some(issuer) =
                        c["metadata"]["annotations"][CLUSTER_ISSUER_ANNOTATION].as_str()
                    {
                        uses.cluster_issuers
                            .entry(issuer.to_owned())
                            .or_default()
                            .extend(class);
                        if let Some(solver) =
                            c["metadata"]["annotations"][SOLVER_CLASS_ANNOTATION].as_str()
                        {
                            let hosts = c["spec"]["tls"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .flat_map(|t| t["hosts"].as_array().into_iter().flatten())
                                .filter_map(|h| h.as_str().map(str::to_owned));
                            uses.solver_classes
                                .entry(issuer.to_owned())
                                .or_default()
                                .entry(solver.to_owned())
                                .or_default()
                                .extend(hosts);
                        }
                    }
                }
                "HorizontalPodAutoscaler" => {
                    let resource = c["spec"]["metrics"].as_array().is_some_and(|m| {
                        m.iter().any(|m| {
                            matches!(m["type"].as_str(), Some("Resource" | "ContainerResource"))
                        })
                    });
                    uses.resource_hpas |= resource;
                }
                "NetworkPolicy" => uses.network_policies = true,
                "ConfigMap" => {
                    uses.dashboards |=
                        c["metadata"]["labels"][crate::k8s::dashboard::DASHBOARD_LABEL].is_string();
                }
                _ => {}
            }
        }
        uses
    }

    /// Whether objects of API group `group` are emitted.
    pub fn group(&self, group: &str) -> bool {
        self.api_groups.contains(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::Rank;
    use serde_json::json;

    fn object(kind: &str, content: serde_json::Value) -> Object {
        Object {
            kind: kind.into(),
            name: "x".into(),
            namespace: Some("ns".into()),
            rank: Rank::Workload,
            content,
        }
    }

    #[test]
    fn groups_classes_issuers_hpas_and_policies_are_read_from_objects() {
        let uses = Uses::of(&[
            object("Deployment", json!({"apiVersion": "apps/v1"})),
            object(
                "Ingress",
                json!({"apiVersion": "networking.k8s.io/v1",
                    "metadata": {"annotations": {CLUSTER_ISSUER_ANNOTATION: "letsencrypt-prod"}},
                    "spec": {"ingressClassName": "nginx"}}),
            ),
            object(
                "HorizontalPodAutoscaler",
                json!({"apiVersion": "autoscaling/v2", "spec": {"metrics": [{"type": "Pods"}]}}),
            ),
            object("Middleware", json!({"apiVersion": "traefik.io/v1alpha1"})),
        ]);
        assert_eq!(uses.api_groups, BTreeSet::from(["traefik.io".to_owned()]));
        assert_eq!(uses.ingress_classes, BTreeSet::from(["nginx".to_owned()]));
        assert_eq!(
            uses.cluster_issuers["letsencrypt-prod"],
            BTreeSet::from(["nginx".to_owned()])
        );
        assert!(!uses.resource_hpas, "a Pods metric needs no metrics-server");
        assert!(!uses.network_policies);
        let more = Uses::of(&[
            object(
                "HorizontalPodAutoscaler",
                json!({"apiVersion": "autoscaling/v2", "spec": {"metrics": [{"type": "Resource"}]}}),
            ),
            object(
                "NetworkPolicy",
                json!({"apiVersion": "networking.k8s.io/v1"}),
            ),
        ]);
        assert!(more.resource_hpas && more.network_policies);
        assert!(more.api_groups.is_empty());
    }
}
