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

/// The platform of `env` with its layer, as synth's hook builds it.
fn platform_of(env: &Env) -> Stack {
    platform::build_with(env, &layer_of(env))
        .expect("the platform builds")
        .expect("the environment has a platform")
}

#[test]
fn dns01_gives_cert_manager_its_own_route53_role_and_the_issuers_a_route53_solver() {
    let mut env = environment("prod");
    if let Some(k) = env.spec.kubernetes.as_mut() {
        k.acme_challenge = crate::env::file::AcmeChallenge::Dns01;
    }
    let layer = layer_of(&env);
    let issuer = layer
        .objects
        .iter()
        .find(|o| o.kind == "ClusterIssuer")
        .unwrap();
    assert_eq!(
        issuer.content["spec"]["acme"]["solvers"][0]["dns01"]["route53"]["region"],
        "us-east-1"
    );
    let cm = layer
        .controllers
        .iter()
        .find(|c| c.identity.id == "cert_manager");
    let cm = cm.expect("cert-manager has an identity under DNS-01");
    assert_eq!(
        (
            cm.identity.namespace.as_str(),
            cm.identity.service_account.as_str()
        ),
        ("cert-manager", "cert-manager")
    );
    // Under IRSA the add-on's ServiceAccount carries the role through its configuration.
    let addon = layer
        .eks_addons
        .iter()
        .find(|a| a.name == "cert-manager")
        .unwrap();
    assert!(
        addon
            .configuration
            .as_deref()
            .unwrap()
            .contains("arn:aws:iam::111122223333:role/eks-prod-cert-manager"),
        "{addon:?}"
    );
    let stack = platform_of(&env);
    assert!(
        stack
            .terraform
            .body_at("aws_iam_role.cert_manager")
            .is_some()
    );
    // Under HTTP-01 there is no such role.
    let http01 = layer_of(&environment("prod"));
    assert!(
        !http01
            .controllers
            .iter()
            .any(|c| c.identity.id == "cert_manager")
    );
}

#[test]
fn under_pod_identity_charts_get_no_role_annotation_and_each_controller_an_association() {
    let mut env = environment("staging");
    if let Some(p) = env.spec.stacks.platform.as_mut() {
        p.workload_identity = WorkloadIdentityMode::PodIdentity;
    }
    let layer = layer_of(&env);
    for (file, body) in &layer.values {
        assert!(!body.contains(k8s::IRSA_ANNOTATION), "{file}");
    }
    let stack = platform_of(&env);
    for controller in &layer.controllers {
        let association = format!(
            "aws_eks_pod_identity_association.{}",
            controller.identity.id
        );
        let body = stack.terraform.body_at(&association);
        let body = body.unwrap_or_else(|| panic!("{association}"));
        assert_eq!(
            body["service_account"],
            controller.identity.service_account.as_str()
        );
        assert_eq!(body["namespace"], controller.identity.namespace.as_str());
    }
}

#[test]
fn the_platform_carries_the_layer_installs_values_and_objects() {
    let env = environment("prod");
    let layer = layer_of(&env);
    let stack = platform_of(&env);
    assert_eq!(stack.addons, layer.installs);
    assert_eq!(stack.addon_values, layer.values);
    for install in &stack.addons {
        if let Source::Helm { values_file, .. } = &install.source {
            let name = values_file.strip_prefix("addons/").unwrap();
            assert!(stack.addon_values.contains_key(name), "{values_file}");
        }
    }
    let vpc_cni = stack.terraform.body_at("aws_eks_addon.vpc_cni").unwrap();
    assert_eq!(
        vpc_cni["configuration_values"],
        r#"{"enableNetworkPolicy":"true"}"#
    );
    let topic = stack.terraform.body_at("aws_sns_topic.alarms").unwrap();
    assert!(
        topic["kms_master_key_id"]
            .as_str()
            .is_some_and(|k| k.contains("aws_kms_key.main.arn"))
    );
}

#[test]
fn each_chart_service_account_is_the_one_its_role_trusts() {
    let env = environment("prod");
    let layer = layer_of(&env);
    let charts = [
        (
            "aws-load-balancer-controller",
            "/serviceAccount",
            "lb_controller",
        ),
        (
            "kube-prometheus-stack",
            "/alertmanager/serviceAccount",
            "alertmanager",
        ),
        (
            "cluster-autoscaler",
            "/rbac/serviceAccount",
            "cluster_autoscaler",
        ),
    ];
    for (release, path, id) in charts {
        let v = values(&layer, release);
        let sa = v.pointer(path).unwrap();
        let c = layer
            .controllers
            .iter()
            .find(|c| c.identity.id == id)
            .unwrap();
        let install = install(&layer, release).unwrap();
        assert_eq!(sa["create"], true, "{release}");
        assert_eq!(sa["name"], c.identity.service_account.as_str(), "{release}");
        assert_eq!(install.namespace, c.identity.namespace, "{release}");
        assert_eq!(
            sa["annotations"][k8s::IRSA_ANNOTATION],
            platform::controller_role_arn(&env, &c.identity.role_suffix),
            "{release}"
        );
    }
    // External Secrets has no role of its own: each store authenticates as its own
    // ServiceAccount.
    let v = values(&layer, "external-secrets");
    assert_eq!(
        v["serviceAccount"]["name"],
        catalogue::EXTERNAL_SECRETS_SERVICE_ACCOUNT
    );
    assert!(v["serviceAccount"].get("annotations").is_none(), "{v}");
    assert_eq!(
        install(&layer, "external-secrets").unwrap().namespace,
        catalogue::EXTERNAL_SECRETS_NAMESPACE
    );
}

/// A stack holding only `objects`.
fn stack_of(objects: Vec<Object>) -> Stack {
    Stack::on_cluster(
        "example",
        crate::tf::tests::config(),
        objects,
        BTreeMap::new(),
    )
    .unwrap()
}

#[test]
fn an_ingress_class_keel_cannot_serve_and_a_conflicting_release_label_are_refused() {
    let ingress = Object {
        kind: "Ingress".into(),
        name: "web".into(),
        namespace: Some("web".into()),
        rank: crate::k8s::Rank::Ingress,
        content: serde_json::json!({"apiVersion": "networking.k8s.io/v1",
            "spec": {"ingressClassName": "haproxy"}}),
    };
    let env = environment("prod");
    let err = layer(&env, &[&stack_of(vec![ingress])]).unwrap_err();
    assert!(err.contains("\"haproxy\""), "{err}");

    let monitor = Object {
        kind: "ServiceMonitor".into(),
        name: "web".into(),
        namespace: Some("web".into()),
        rank: crate::k8s::Rank::Monitoring,
        content: serde_json::json!({"apiVersion": "monitoring.coreos.com/v1"}),
    };
    let mut env = environment("prod");
    if let Some(k) = env.spec.kubernetes.as_mut() {
        k.service_monitor_labels =
            BTreeMap::from([("release".to_owned(), "prometheus".to_owned())]);
    }
    let err = layer(&env, &[&stack_of(vec![monitor.clone()])]).unwrap_err();
    assert!(
        err.starts_with("kubernetes.service_monitor_labels: release"),
        "{err}"
    );
    // Another label key is added to everything the chart makes, so its own monitors match.
    if let Some(k) = env.spec.kubernetes.as_mut() {
        k.service_monitor_labels = BTreeMap::from([("team".to_owned(), "sre".to_owned())]);
    }
    let layer = layer(&env, &[&stack_of(vec![monitor])]).unwrap();
    assert_eq!(
        values(&layer, "kube-prometheus-stack")["commonLabels"]["team"],
        "sre"
    );
}
