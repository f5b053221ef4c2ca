//! The derivation over the repository's environments, and environments edited to drop
//! what needs an add-on.

use std::path::Path;

use super::*;

fn environment(name: &str) -> Env {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    crate::env::load_all(&dir)
        .expect("the repository's environments load")
        .into_iter()
        .find(|e| e.name() == name)
        .expect("the environment exists")
}

/// The layer of `env` from every stack it configures, as synth derives it.
fn layer_of(env: &Env) -> Layer {
    let stacks: Vec<Stack> = crate::stacks::ALL
        .iter()
        .filter(|d| d.name != platform::NAME)
        .filter_map(|d| (d.build)(env).expect("the stack builds"))
        .collect();
    let refs: Vec<&Stack> = stacks.iter().collect();
    layer(env, &refs).expect("the layer derives")
}

fn install<'a>(layer: &'a Layer, name: &str) -> Option<&'a Install> {
    layer.installs.iter().find(|i| i.name == name)
}

fn values(layer: &Layer, release: &str) -> serde_json::Value {
    let body = &layer.values[&format!("{release}.values.yaml")];
    serde_saphyr::from_str(body).expect("a values file is YAML")
}

#[test]
fn an_environment_without_traefik_objects_gets_no_traefik() {
    let mut env = environment("prod");
    assert!(install(&layer_of(&env), "traefik").is_some());
    env.spec.stacks.whatsthecraic = None;
    let layer = layer_of(&env);
    assert!(install(&layer, "traefik").is_none(), "{:?}", layer.installs);
    assert!(!layer.values.contains_key("traefik.values.yaml"));
    // The other ingress controllers stay: their classes are still used.
    assert!(install(&layer, "ingress-nginx").is_some());
    assert!(install(&layer, "aws-load-balancer-controller").is_some());
}

#[test]
fn an_environment_with_no_cluster_stacks_gets_only_what_the_cluster_itself_needs() {
    let mut env = environment("dev");
    let s = &mut env.spec.stacks;
    (
        s.analytics_api,
        s.metrics_service,
        s.aegistickets,
        s.whatsthecraic,
    ) = (None, None, None, None);
    let layer = layer_of(&env);
    let names: Vec<&str> = layer.installs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["cluster-autoscaler", "amazon-cloudwatch-observability"]
    );
    assert!(layer.vpc_cni_configuration.is_none());
    assert!(layer.objects.is_empty());
    assert!(layer.alerts_email.is_none());
}

#[test]
fn the_prometheus_selector_is_the_environments_labels_on_monitors_and_rules() {
    for name in ["dev", "staging", "prod"] {
        let env = environment(name);
        let labels = env.kubernetes().unwrap().service_monitor_labels.clone();
        let layer = layer_of(&env);
        let kps = install(&layer, "kube-prometheus-stack").expect("monitors are used");
        assert!(
            kps.provides
                .contains(&Capability::Prometheus(labels.clone()))
        );
        let v = values(&layer, "kube-prometheus-stack");
        let spec = &v["prometheus"]["prometheusSpec"];
        for selector in [
            "serviceMonitorSelector",
            "podMonitorSelector",
            "ruleSelector",
        ] {
            assert_eq!(
                spec[selector]["matchLabels"],
                serde_json::to_value(&labels).unwrap(),
                "{name}: {selector}"
            );
            let namespaces = selector.replace("Selector", "NamespaceSelector");
            assert_eq!(spec[namespaces.as_str()], serde_json::json!({}), "{name}");
        }
        // The controllers' own ServiceMonitors carry the same labels.
        for (release, path) in [
            ("ingress-nginx", "/controller/metrics/serviceMonitor"),
            ("traefik", "/metrics/prometheus/serviceMonitor"),
        ] {
            let sm = values(&layer, release);
            let sm = sm.pointer(path).unwrap();
            assert_eq!(sm["enabled"], true, "{release}");
            assert_eq!(
                sm["additionalLabels"],
                serde_json::to_value(&labels).unwrap()
            );
        }
    }
}

#[test]
fn every_install_that_provides_an_api_group_waits_for_crds_of_that_group() {
    for name in ["dev", "staging", "prod"] {
        let layer = layer_of(&environment(name));
        for i in &layer.installs {
            assert!(
                i.provides
                    .contains(&Capability::Namespace(i.namespace.clone())),
                "{}: its namespace",
                i.name
            );
            for p in &i.provides {
                if let Capability::ApiGroup(group) = p {
                    assert!(
                        i.waits.iter().any(|w| matches!(
                            w,
                            Wait::CrdEstablished(crd) if crd.ends_with(&format!(".{group}"))
                        )),
                        "{name}: {} provides {group} but installs none of its CRDs",
                        i.name
                    );
                }
            }
        }
    }
}

#[test]
fn every_capability_the_objects_need_from_an_install_is_provided() {
    for name in ["dev", "staging", "prod"] {
        let env = environment(name);
        let stacks: Vec<Stack> = crate::stacks::ALL
            .iter()
            .filter_map(|d| (d.build)(&env).unwrap())
            .collect();
        let refs: Vec<&Stack> = stacks.iter().collect();
        let uses = Uses::of(refs.iter().flat_map(|s| s.objects.iter()));
        let layer = layer(&env, &refs).unwrap();
        let provided = layer.provided();
        for group in &uses.api_groups {
            assert!(
                provided.contains(&Capability::ApiGroup(group.clone())),
                "{name}: {group}"
            );
        }
        for class in &uses.ingress_classes {
            assert!(provided.contains(&Capability::IngressClass(class.clone())));
        }
        assert!(provided.contains(&Capability::ResourceMetrics));
        assert!(provided.contains(&Capability::NetworkPolicyEnforcement));
        // Each named issuer is a ClusterIssuer of the platform.
        for issuer in uses.cluster_issuers.keys() {
            assert!(
                layer
                    .objects
                    .iter()
                    .any(|o| o.kind == "ClusterIssuer" && &o.name == issuer),
                "{name}: {issuer}"
            );
        }
        // Installs are ordered so each one's requirements come earlier.
        for (at, i) in layer.installs.iter().enumerate() {
            for need in &i.requires {
                assert!(
                    layer.installs[..at]
                        .iter()
                        .any(|p| p.provides.iter().any(|c| c.satisfies(need))),
                    "{name}: {} needs {need}",
                    i.name
                );
            }
        }
    }
}

#[test]
fn cluster_critical_controllers_run_two_replicas_with_a_disruption_budget() {
    let layer = layer_of(&environment("prod"));
    let cases: [(&str, &[&str], &[&str]); 7] = [
        (
            "ingress-nginx",
            &["/controller/replicaCount"],
            &["/controller/minAvailable"],
        ),
        (
            "traefik",
            &["/deployment/replicas"],
            &["/podDisruptionBudget/enabled"],
        ),
        (
            "aws-load-balancer-controller",
            &["/replicaCount"],
            &["/podDisruptionBudget/maxUnavailable"],
        ),
        (
            "external-secrets",
            &[
                "/replicaCount",
                "/webhook/replicaCount",
                "/certController/replicaCount",
            ],
            &[
                "/podDisruptionBudget/enabled",
                "/webhook/podDisruptionBudget/enabled",
                "/certController/podDisruptionBudget/enabled",
            ],
        ),
        (
            "argo-rollouts",
            &["/controller/replicas"],
            &["/controller/pdb/enabled"],
        ),
        (
            "kube-prometheus-stack",
            &[
                "/prometheus/prometheusSpec/replicas",
                "/alertmanager/alertmanagerSpec/replicas",
            ],
            &[
                "/prometheus/podDisruptionBudget/enabled",
                "/alertmanager/podDisruptionBudget/enabled",
            ],
        ),
        (
            "cluster-autoscaler",
            &["/replicaCount"],
            &["/podDisruptionBudget/maxUnavailable"],
        ),
    ];
    for (release, replicas, budgets) in cases {
        let v = values(&layer, release);
        for path in replicas {
            assert_eq!(
                v.pointer(path),
                Some(&serde_json::json!(2)),
                "{release}{path}"
            );
        }
        for path in budgets {
            let set = v.pointer(path);
            assert!(
                set == Some(&serde_json::json!(true)) || set == Some(&serde_json::json!(1)),
                "{release}{path}: {set:?}"
            );
        }
    }
    // The EKS add-ons that keep the cluster serving: the same, in configuration values.
    for name in ["metrics-server", "cert-manager"] {
        let addon = layer.eks_addons.iter().find(|a| a.name == name).unwrap();
        let config: serde_json::Value =
            serde_json::from_str(addon.configuration.as_deref().unwrap()).unwrap();
        let replicas = config.get("replicas").or(config.get("replicaCount"));
        assert_eq!(replicas, Some(&serde_json::json!(2)), "{name}");
        assert_eq!(config["podDisruptionBudget"]["enabled"], true, "{name}");
    }
}

#[test]
fn a_missing_eks_addon_version_names_the_key_and_the_reason() {
    let mut env = environment("prod");
    if let Some(p) = env.spec.stacks.platform.as_mut() {
        p.addons.metrics_server = None;
    }
    let stacks: Vec<Stack> = crate::stacks::ALL
        .iter()
        .filter_map(|d| (d.build)(&env).unwrap())
        .collect();
    let refs: Vec<&Stack> = stacks.iter().collect();
    let err = layer(&env, &refs).unwrap_err();
    assert!(
        err.starts_with("stacks.platform.addons.metrics_server: expected the pinned version"),
        "{err}"
    );
    assert!(err.contains("HorizontalPodAutoscaler"), "{err}");
}
