//! The service construct: [`ServiceProps`] describes one HTTP service, [`service`] turns it
//! into every object it needs, in apply order.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::autoscaling::Autoscaling;
use super::deployment::{
    Image, InitContainer, PodSecurity, Ports, Probes, Resources, RollingUpdate, TopologySpread,
};
use super::external_secret::SecretsProps;
use super::ingress::IngressProps;
use super::labels::AppLabels;
use super::namespace::NamespacePolicy;
use super::network_policy::NetworkPolicyProps;
use super::pod_disruption_budget::DisruptionBudget;
use super::rollout::CanaryProps;
use super::service_account::ServiceAccountProps;
use super::service_monitor::MonitoringProps;
use super::{K8sError, Object, Suppression};

/// One HTTP service on Kubernetes. [`ServiceProps::new`] fills every field with a safe default.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceProps {
    /// Recommended labels; `app.name` is also the name of the Deployment, Service and the rest.
    pub app: AppLabels,
    /// Namespace of every object.
    pub namespace: String,
    /// Quota and limits of the namespace when the construct creates it (with Pod Security
    /// Admission `restricted` labels and a namespace-wide deny-all NetworkPolicy); its quota
    /// must hold this service at its peak ([`super::Peak::service`]): stacks derive it with
    /// [`NamespacePolicy::for_peak`] from every service and one-off pod of the namespace.
    /// Default: `Some(NamespacePolicy::default())`; `None` when the namespace exists already.
    pub namespace_policy: Option<NamespacePolicy>,
    /// Container image. Stacks call [`Image::require_digest`] where digests are required.
    pub image: Image,
    /// Desired pods without autoscaling. With autoscaling the Deployment leaves the count to
    /// the HPA (no `spec.replicas`, or every apply would reset it), and this is only checked
    /// to lie within the HPA's range. Default: `2`.
    pub replicas: i32,
    /// Container and Service ports. Default: http 8080 (Service 80), metrics 9091.
    pub ports: Ports,
    /// Probe paths. Default: `/health` for all three.
    pub probes: Probes,
    /// Requests and limits. Default: 500m/512Mi requested, 1 CPU/1Gi limit.
    pub resources: Resources,
    /// User, group, read-only root and the directories the image writes (emptyDirs).
    /// Default: 10001/10001 (keel's), read-only root with a 256Mi `/tmp`.
    pub security: PodSecurity,
    /// Containers that run to completion, in order, before the app's starts, each filling
    /// a directory the app mounts read-only. Default: none.
    pub init_containers: Vec<InitContainer>,
    /// Rollout strategy. Default: maxSurge 25%, maxUnavailable 0.
    pub rollout: RollingUpdate,
    /// Progressive delivery: an Argo Rollouts canary with Prometheus analysis replaces the
    /// Deployment (and a PodMonitor the ServiceMonitor). Default: none (a Deployment).
    pub canary: Option<CanaryProps>,
    /// Zone and node spread. Default: both `ScheduleAnyway`.
    pub topology_spread: TopologySpread,
    /// Seconds between the start of termination and SIGKILL, pre-stop pause included.
    /// Default: `30`.
    pub termination_grace_period_seconds: i64,
    /// Seconds the container keeps serving before it gets SIGTERM (a `preStop` sleep), so
    /// endpoints and load balancers drop the pod first; must be shorter than the grace
    /// period. Default: `5`.
    pub pre_stop_pause_seconds: i64,
    /// The pods' ServiceAccount. Default: no API token, no IAM role. A pod that needs the API
    /// also needs an egress rule to the API server in [`ServiceProps::network`].
    pub service_account: ServiceAccountProps,
    /// Non-secret settings (ConfigMap, read with `envFrom`). Default: none (no ConfigMap).
    pub config: BTreeMap<String, String>,
    /// Keys of [`Self::config`] whose change must not ship together with a new image (the
    /// previous image's pods keep serving during a rollout). The ConfigMap names them in
    /// its [`super::config_map::APART_FROM_IMAGE`] annotation, and `keel diff` blocks a
    /// change of one of them that comes with an image change. Default: none.
    pub config_apart_from_image: BTreeSet<String>,
    /// Secret environment variables. Default: none (no ExternalSecret).
    pub secrets: SecretsProps,
    /// Horizontal autoscaling. Default: none.
    pub autoscaling: Option<Autoscaling>,
    /// PodDisruptionBudget, rendered when the app runs at least 2 pods. Default: maxUnavailable 1.
    pub disruption_budget: DisruptionBudget,
    /// Public entry. Default: none.
    pub ingress: Option<IngressProps>,
    /// Allowed traffic. Default: http from `ingress-nginx`, metrics from `monitoring`, DNS out.
    pub network: NetworkPolicyProps,
    /// Prometheus scraping. Default: `Some(MonitoringProps::default())` (`/metrics` every 30s).
    pub monitoring: Option<MonitoringProps>,
    /// checkov checks that do not apply, with reasons (rendered as annotations). Default: none.
    pub suppressions: Vec<Suppression>,
}

impl ServiceProps {
    /// Props for `app` in `namespace` running `image`, every other field at its default.
    pub fn new(app: AppLabels, namespace: &str, image: Image) -> Self {
        Self {
            app,
            namespace: namespace.to_owned(),
            namespace_policy: Some(NamespacePolicy::default()),
            image,
            replicas: 2,
            ports: Ports::default(),
            probes: Probes::default(),
            resources: Resources::default(),
            security: PodSecurity::default(),
            init_containers: Vec::new(),
            rollout: RollingUpdate::default(),
            canary: None,
            topology_spread: TopologySpread::default(),
            termination_grace_period_seconds: 30,
            pre_stop_pause_seconds: 5,
            service_account: ServiceAccountProps::default(),
            config: BTreeMap::new(),
            config_apart_from_image: BTreeSet::new(),
            secrets: SecretsProps::default(),
            autoscaling: None,
            disruption_budget: DisruptionBudget::default(),
            ingress: None,
            network: NetworkPolicyProps::default(),
            monitoring: Some(MonitoringProps::default()),
            suppressions: Vec::new(),
        }
    }
}

/// What every builder of the construct shares: the props and the validated labels.
pub(super) struct Ctx<'a> {
    pub(super) props: &'a ServiceProps,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) selector: BTreeMap<String, String>,
}

impl Ctx<'_> {
    pub(super) fn name(&self) -> &str {
        &self.props.app.name
    }

    pub(super) fn meta(
        &self,
        kind: &str,
        name: &str,
        annotations: BTreeMap<String, String>,
    ) -> Result<ObjectMeta, K8sError> {
        super::meta(
            kind,
            name,
            Some(&self.props.namespace),
            &self.labels,
            annotations,
            &self.props.suppressions,
        )
    }
}

/// Every object of one service: Namespace, ResourceQuota, LimitRange (if owned),
/// ServiceAccount, ConfigMap, ExternalSecret, Deployment, Service, HorizontalPodAutoscaler,
/// PodDisruptionBudget, Ingress, NetworkPolicies and ServiceMonitor, as the props ask.
///
/// Fails on construct misuse (empty or invalid names, min > max replicas, ...), saying what
/// was found and what was expected.
pub fn service(props: &ServiceProps) -> Result<Vec<Object>, K8sError> {
    super::labels::validate_dns_label("app.name", &props.app.name)?;
    super::labels::validate_dns_label("namespace", &props.namespace)?;
    if props.replicas < 1 {
        return Err(K8sError::InvalidProps {
            field: "replicas".to_owned(),
            found: props.replicas.to_string(),
            expected: "at least 1".to_owned(),
        });
    }
    if let Some(a) = props.autoscaling {
        a.validate()?;
        if !(a.min_replicas..=a.max_replicas).contains(&props.replicas) {
            return Err(K8sError::InvalidProps {
                field: "replicas".to_owned(),
                found: format!(
                    "{} outside autoscaling {}..={}",
                    props.replicas, a.min_replicas, a.max_replicas
                ),
                expected: "replicas within the autoscaling range".to_owned(),
            });
        }
    }
    // The namespace's quota holds at least this service at its peak (the stack adds its
    // other services and one-off pods with `NamespacePolicy::for_peak`).
    if let Some(policy) = &props.namespace_policy {
        policy.check_holds(
            super::Peak::service(props)?,
            &format!("service `{}`", props.app.name),
        )?;
    }
    // A tag-pinned image (allowed below prod, where keel requires a digest) carries its
    // checkov suppression with the reason.
    let mut with_tag;
    let props = if matches!(props.image, Image::Tag { .. })
        && !props.suppressions.iter().any(|s| s.check == "CKV_K8S_43")
    {
        with_tag = props.clone();
        with_tag.suppressions.push(Suppression::new(
            "Deployment",
            "CKV_K8S_43",
            "dev-tier environment pins a tag; keel requires a digest in prod",
        ));
        &with_tag
    } else {
        props
    };
    // The image's own account runs below checkov's high-UID bound, said so with its name.
    let mut with_image_user;
    let props = if let super::UserOwner::Image { account } = &props.security.user_owner
        && !props.suppressions.iter().any(|s| s.check == "CKV_K8S_40")
    {
        with_image_user = props.clone();
        with_image_user.suppressions.push(Suppression::new(
            "Deployment",
            "CKV_K8S_40",
            &format!(
                "uid {} is the image's own `{account}` account, which owns the files the image prepared; the pod is non-root with no capabilities and a read-only root",
                props.security.run_as_user
            ),
        ));
        &with_image_user
    } else {
        props
    };
    // checkov reads pod templates of Deployments, not of Argo Rollouts: a canary service's
    // workload suppressions would annotate nothing checkov looks at.
    let without_workload;
    let props =
        if props.canary.is_some() && props.suppressions.iter().any(|s| s.kind == "Deployment") {
            without_workload = ServiceProps {
                suppressions: props
                    .suppressions
                    .iter()
                    .filter(|s| s.kind != "Deployment")
                    .cloned()
                    .collect(),
                ..props.clone()
            };
            &without_workload
        } else {
            props
        };
    let ctx = Ctx {
        props,
        labels: props.app.recommended()?,
        selector: props.app.selector()?,
    };
    let mut objects = super::namespace::build(&ctx)?;
    objects.push(super::service_account::build(&ctx)?);
    let config_map = super::config_map::build(&ctx)?;
    let config_map_name = config_map.as_ref().map(|o| o.name.clone());
    objects.extend(config_map);
    let secret_refs = super::external_secret::env_refs(&ctx)?;
    objects.extend(super::external_secret::build(&ctx)?);
    match &props.canary {
        None => objects.push(super::deployment::build(
            &ctx,
            &secret_refs,
            config_map_name.as_deref(),
        )?),
        Some(canary) => {
            let (selector, template) =
                super::deployment::pod_template(&ctx, &secret_refs, config_map_name.as_deref())?;
            objects.extend(super::rollout::build(&ctx, canary, selector, template)?);
        }
    }
    objects.extend(super::service::build(&ctx)?);
    objects.extend(super::autoscaling::build(&ctx)?);
    objects.extend(super::pod_disruption_budget::build(&ctx)?);
    objects.extend(super::ingress::build(&ctx)?);
    objects.extend(super::network_policy::build(&ctx)?);
    objects.extend(match props.canary {
        None => super::service_monitor::build(&ctx)?,
        Some(_) => super::rollout::pod_monitor(&ctx)?,
    });
    for s in &props.suppressions {
        if !objects.iter().any(|o| o.kind == s.kind) {
            return Err(K8sError::InvalidProps {
                field: format!("suppression {}", s.check),
                found: format!("kind `{}`, which this service does not render", s.kind),
                expected: "the kind of a rendered object, e.g. `Deployment`".to_owned(),
            });
        }
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn props() -> ServiceProps {
        let app = AppLabels {
            name: "analytics-api".into(),
            instance: "analytics-api-prod".into(),
            version: "1.0.0".into(),
            component: "api".into(),
            part_of: "llm-observatory".into(),
        };
        let image = Image::Tag {
            repo: "ghcr.io/acme/analytics-api".into(),
            tag: "1.0.0".into(),
        };
        let mut p = ServiceProps::new(app, "analytics", image);
        p.replicas = 3;
        p.autoscaling = Some(Autoscaling {
            min_replicas: 3,
            max_replicas: 10,
            cpu_utilization_percent: 70,
            memory_utilization_percent: 80,
        });
        p.config.insert("RUST_LOG".into(), "info".into());
        p.secrets.store = Some(SecretStoreRef {
            kind: SecretStoreKind::SecretStore,
            name: "analytics-api-secrets".into(),
        });
        p.secrets.env.push(SecretEnv {
            env: "DATABASE_URL".into(),
            source: SecretSource::SecretsManager {
                remote_key: "prod/analytics-api/database-url".into(),
                property: None,
            },
        });
        p.secrets.env.push(SecretEnv {
            env: "JWT_SECRET".into(),
            source: SecretSource::Existing {
                secret_name: "jwt".into(),
                key: "secret".into(),
            },
        });
        p.ingress = Some(IngressProps::new(
            IngressClass::Nginx(NginxIngress {
                cluster_issuer: "letsencrypt-prod".into(),
                limit_rps: Some(100),
            }),
            "api.example.com",
        ));
        p.network.egress = vec![
            EgressPeer::postgres("10.0.32.0/20"),
            EgressPeer::redis("10.0.48.0/20"),
        ];
        p
    }

    fn find<'a>(objects: &'a [Object], kind: &str, name: &str) -> &'a serde_json::Value {
        &objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .unwrap_or_else(|| panic!("no {kind}/{name}"))
            .content
    }

    #[test]
    fn prod_like_service_has_every_object() {
        let objects = service(&props()).unwrap();
        let mut kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "ConfigMap",
                "Deployment",
                "ExternalSecret",
                "HorizontalPodAutoscaler",
                "Ingress",
                "LimitRange",
                "Namespace",
                "NetworkPolicy",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "ResourceQuota",
                "Service",
                "ServiceAccount",
                "ServiceMonitor"
            ]
        );
        let d = find(&objects, "Deployment", "analytics-api");
        assert!(
            d["spec"].get("replicas").is_none(),
            "the HPA owns the count: {}",
            d["spec"]
        );
        let hpa = find(&objects, "HorizontalPodAutoscaler", "analytics-api");
        assert_eq!(
            (
                hpa["spec"]["minReplicas"].as_i64(),
                hpa["spec"]["maxReplicas"].as_i64()
            ),
            (Some(3), Some(10))
        );
        let ns = find(&objects, "Namespace", "analytics");
        assert_eq!(
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        let sa = find(&objects, "ServiceAccount", "analytics-api");
        assert_eq!(sa["automountServiceAccountToken"], false);
        let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(
            env[0]["valueFrom"]["secretKeyRef"]["name"],
            "analytics-api-secrets"
        );
        assert_eq!(
            env[1]["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": "jwt", "key": "secret", "optional": false})
        );
        let es = find(&objects, "ExternalSecret", "analytics-api");
        assert_eq!(es["apiVersion"], "external-secrets.io/v1");
        assert_eq!(
            es["spec"]["secretStoreRef"],
            serde_json::json!({"kind": "SecretStore", "name": "analytics-api-secrets"})
        );
        assert_eq!(
            es["spec"]["data"].as_array().unwrap().len(),
            1,
            "only the Secrets Manager variable"
        );
    }

    #[test]
    fn secrets_without_a_named_store_are_refused() {
        // There is no cluster-wide store to fall back on (each stack has its own).
        let mut p = props();
        p.secrets.store = None;
        let err = service(&p).unwrap_err().to_string();
        assert!(err.contains("secrets.store"), "{err}");
        // Without a Secrets Manager variable no store is needed.
        p.secrets
            .env
            .retain(|v| !matches!(v.source, SecretSource::SecretsManager { .. }));
        assert!(service(&p).is_ok());
    }

    #[test]
    fn every_object_is_labelled_and_selectors_use_name_and_instance() {
        let objects = service(&props()).unwrap();
        let selector = serde_json::json!({
            "app.kubernetes.io/name": "analytics-api",
            "app.kubernetes.io/instance": "analytics-api-prod",
        });
        for o in &objects {
            let labels = &o.content["metadata"]["labels"];
            for key in ["name", "instance", "version", "component", "part-of"] {
                assert!(
                    labels[format!("app.kubernetes.io/{key}")].is_string(),
                    "{} lacks {key}",
                    o.kind
                );
            }
            assert_eq!(labels["app.kubernetes.io/managed-by"], "keel");
        }
        assert_eq!(
            find(&objects, "Deployment", "analytics-api")["spec"]["selector"]["matchLabels"],
            selector
        );
        assert_eq!(
            find(&objects, "Service", "analytics-api")["spec"]["selector"],
            selector
        );
        assert_eq!(
            find(&objects, "PodDisruptionBudget", "analytics-api")["spec"]["selector"]["matchLabels"],
            selector
        );
        assert_eq!(
            find(&objects, "NetworkPolicy", "analytics-api")["spec"]["podSelector"]["matchLabels"],
            selector
        );
        assert_eq!(
            find(&objects, "ServiceMonitor", "analytics-api")["spec"]["selector"]["matchLabels"],
            selector
        );
    }

    #[test]
    fn pdb_only_with_two_or_more_pods() {
        let mut p = props();
        p.autoscaling = None;
        p.replicas = 1;
        assert!(
            !service(&p)
                .unwrap()
                .iter()
                .any(|o| o.kind == "PodDisruptionBudget")
        );
        p.replicas = 2;
        assert!(
            service(&p)
                .unwrap()
                .iter()
                .any(|o| o.kind == "PodDisruptionBudget")
        );
    }

    fn fetcher(name: &str, cpu: &str) -> InitContainer {
        InitContainer {
            name: name.into(),
            image: Image::Digest {
                repo: "docker.io/library/postgres".into(),
                digest: format!("sha256:{}", "a".repeat(64)),
            },
            script: "wget -q -O /etc/ca/ca.pem https://example.com/ca.pem\n".into(),
            resources: Resources {
                requests_cpu: cpu.into(),
                requests_memory: "16Mi".into(),
                limits_cpu: cpu.into(),
                limits_memory: "32Mi".into(),
            },
            fills: WritableDir::new("/etc/ca", "1Mi"),
        }
    }

    #[test]
    fn an_init_container_fills_a_directory_the_app_reads_only() {
        let mut p = props();
        p.init_containers.push(fetcher("ca", "10m"));
        let objects = service(&p).unwrap();
        let pod = &find(&objects, "Deployment", "analytics-api")["spec"]["template"]["spec"];
        let init = &pod["initContainers"][0];
        assert_eq!(init["name"], "ca");
        assert_eq!(
            init["command"],
            serde_json::json!([
                "/bin/sh",
                "-c",
                "set -eu\nwget -q -O /etc/ca/ca.pem https://example.com/ca.pem\n"
            ])
        );
        let sc = &init["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(init["resources"]["limits"]["memory"], "32Mi");
        assert_eq!(
            init["volumeMounts"],
            serde_json::json!([{"name": "etc-ca", "mountPath": "/etc/ca"}])
        );
        let app_mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
        assert!(app_mounts.contains(
            &serde_json::json!({"name": "etc-ca", "mountPath": "/etc/ca", "readOnly": true})
        ));
        assert!(
            pod["volumes"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"name": "etc-ca", "emptyDir": {"sizeLimit": "1Mi"}}))
        );
    }

    #[test]
    fn a_pod_counts_its_biggest_init_container_when_it_exceeds_the_app() {
        let mut p = props();
        let app = Peak::service(&p).unwrap();
        p.init_containers.push(fetcher("ca", "10m"));
        assert_eq!(Peak::service(&p).unwrap(), app, "the app's 500m dominates");
        p.init_containers.push(fetcher("big", "2"));
        let big = Peak::service(&p).unwrap();
        assert_eq!(big.sizes.requests_cpu_m, 2000 * big.pods);
        assert_eq!(big.sizes.requests_memory_mi, app.sizes.requests_memory_mi);
        // The namespace's quota is derived from it: the default one no longer holds.
        assert!(
            service(&p)
                .unwrap_err()
                .to_string()
                .starts_with("namespace_policy.quota_requests_cpu")
        );
    }

    #[test]
    fn init_container_misuse_is_refused() {
        for (bad, says) in [
            (
                fetcher("analytics-api", "10m"),
                "a name other than the app's",
            ),
            (
                InitContainer {
                    fills: WritableDir::new("/tmp", "1Mi"),
                    ..fetcher("ca", "10m")
                },
                "none of its writable ones",
            ),
            (
                InitContainer {
                    image: Image::Tag {
                        repo: "busybox".into(),
                        tag: "1.36".into(),
                    },
                    ..fetcher("ca", "10m")
                },
                "expected a digest",
            ),
            (
                InitContainer {
                    fills: WritableDir::new("/etc/../ca", "1Mi"),
                    ..fetcher("ca", "10m")
                },
                "init_containers.ca.fills",
            ),
        ] {
            let mut p = props();
            p.init_containers.push(bad);
            let err = service(&p).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        let mut p = props();
        p.init_containers = vec![fetcher("ca", "10m"), fetcher("ca", "10m")];
        assert!(service(&p).is_err());
    }

    #[test]
    fn public_https_leaves_out_the_private_ranges() {
        let mut p = props();
        p.network.public_https = Some(PublicHttps {
            except: vec!["10.0.0.0/16".into()],
        });
        let objects = service(&p).unwrap();
        let egress = &find(&objects, "NetworkPolicy", "analytics-api")["spec"]["egress"];
        let rule = egress.as_array().unwrap().last().unwrap();
        assert_eq!(
            rule,
            &serde_json::json!({
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/16"]}}],
                "ports": [{"port": 443, "protocol": "TCP"}],
            })
        );
        p.network.public_https = Some(PublicHttps {
            except: vec!["10.0.0.0".into()],
        });
        assert!(service(&p).is_err());
    }

    #[test]
    fn misuse_is_an_error_saying_what_was_found() {
        let mut p = props();
        p.autoscaling = Some(Autoscaling {
            min_replicas: 5,
            max_replicas: 3,
            ..Autoscaling::default()
        });
        assert_eq!(
            service(&p).unwrap_err().to_string(),
            "autoscaling: found min_replicas 5 and max_replicas 3, expected 1 <= min_replicas <= max_replicas"
        );
        let mut p = props();
        p.app.name = String::new();
        assert!(
            service(&p)
                .unwrap_err()
                .to_string()
                .starts_with("app.name: found ``, expected a DNS-1123 label")
        );
        let mut p = props();
        p.app.part_of = "llm observatory".into();
        assert!(
            service(&p)
                .unwrap_err()
                .to_string()
                .contains("`llm observatory`")
        );
        let mut p = props();
        p.network.egress.push(EgressPeer::postgres("10.0.0.0/33"));
        assert!(
            service(&p)
                .unwrap_err()
                .to_string()
                .contains("`10.0.0.0/33`")
        );
        let mut p = props();
        p.security.run_as_user = 0;
        assert!(service(&p).is_err());
        let mut p = props();
        p.suppressions
            .push(Suppression::new("Deployment", "CKV_K8S_43", ""));
        assert!(service(&p).is_err());
        let mut p = props();
        p.suppressions.push(Suppression::new(
            "Deploymnet",
            "CKV_K8S_43",
            "tag images in dev",
        ));
        assert!(
            service(&p)
                .unwrap_err()
                .to_string()
                .contains("`Deploymnet`")
        );
    }

    #[test]
    fn yaml_traps_in_labels_and_env_are_quoted() {
        let mut p = props();
        p.app.version = "on".into();
        p.config.insert("DEBUG".into(), "yes".into());
        p.config.insert("MODE".into(), "0777".into());
        let files = render(&service(&p).unwrap()).unwrap();
        let cm = &files["20-configmap-analytics-api-config.yaml"];
        assert!(
            cm.contains("DEBUG: \"yes\"") && cm.contains("MODE: \"0777\""),
            "{cm}"
        );
        assert!(cm.contains("app.kubernetes.io/version: \"on\""), "{cm}");
    }

    #[test]
    fn no_secret_value_is_rendered() {
        let files = render(&service(&props()).unwrap()).unwrap();
        let all: String = files.values().cloned().collect();
        assert!(!all.contains("kind: Secret\n"));
        assert!(all.contains("remoteRef") && all.contains("secretKeyRef"));
    }

    fn canary() -> CanaryProps {
        let (success_query, latency_query) = pod_queries(
            "analytics",
            "http_requests_total",
            "status",
            "http_request_duration_seconds",
            "",
        );
        CanaryProps {
            steps: vec![
                CanaryStep {
                    weight: 10,
                    pause_minutes: 5,
                },
                CanaryStep {
                    weight: 50,
                    pause_minutes: 10,
                },
            ],
            analysis: CanaryAnalysis {
                prometheus_address: "http://prometheus-operated.monitoring.svc:9090".into(),
                success_query,
                latency_query,
                min_success_ratio: 0.99,
                max_p99_seconds: 0.5,
            },
        }
    }

    #[test]
    fn a_canary_replaces_the_deployment_and_routes_through_nginx() {
        let mut p = props();
        p.canary = Some(canary());
        // The stable set stays whole while the canary grows: the quota holds both.
        p.namespace_policy = Some(NamespacePolicy::for_services(&[&p], 0).unwrap());
        p.suppressions
            .push(Suppression::new("Deployment", "CKV_K8S_35", "env secrets"));
        let objects = service(&p).unwrap();
        let kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
        assert!(!kinds.contains(&"Deployment") && !kinds.contains(&"ServiceMonitor"));
        for kind in ["Rollout", "AnalysisTemplate", "PodMonitor"] {
            assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
        }
        let r = find(&objects, "Rollout", "analytics-api");
        let steps = &r["spec"]["strategy"]["canary"]["steps"];
        assert_eq!(
            steps,
            &serde_json::json!([
                {"setWeight": 10}, {"pause": {"duration": "5m"}},
                {"setWeight": 50}, {"pause": {"duration": "10m"}},
            ])
        );
        assert!(find(&objects, "Service", "analytics-api-canary").is_object());
        assert!(
            r["metadata"]["annotations"].is_null(),
            "no suppression on a Rollout"
        );
    }

    #[test]
    fn without_nginx_the_canary_weighs_by_pods() {
        let mut p = props();
        p.canary = Some(canary());
        p.ingress = Some(IngressProps::new(
            IngressClass::Traefik(TraefikIngress::new("letsencrypt-prod")),
            "api.example.com",
        ));
        let objects = service(&p).unwrap();
        let strategy = &find(&objects, "Rollout", "analytics-api")["spec"]["strategy"]["canary"];
        assert!(
            strategy.get("trafficRouting").is_none() && strategy.get("canaryService").is_none()
        );
        assert!(
            !objects
                .iter()
                .any(|o| o.name == "analytics-api-canary" && o.kind == "Service")
        );
        let mut bad = canary();
        bad.steps[1].weight = 5;
        p.canary = Some(bad);
        assert!(
            service(&p)
                .unwrap_err()
                .to_string()
                .contains("canary.steps[1]")
        );
    }

    #[test]
    fn ingress_classes() {
        let mut p = props();
        p.ingress = Some(IngressProps::new(
            IngressClass::Alb(AlbIngress {
                certificate_arn: Some("arn:aws:acm:eu-west-1:111111111111:certificate/abc".into()),
                group: None,
                scheme: AlbScheme::InternetFacing,
                attributes: Default::default(),
            }),
            "api.example.com",
        ));
        let objects = service(&p).unwrap();
        let ing = find(&objects, "Ingress", "analytics-api");
        assert_eq!(ing["spec"]["ingressClassName"], "alb");
        assert_eq!(
            ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"],
            "internet-facing"
        );
        assert_eq!(
            ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/ssl-redirect"],
            "443"
        );
        p.ingress = Some(IngressProps::new(
            IngressClass::Traefik(TraefikIngress {
                rate_limit: Some(RateLimit::like_nginx(100)),
                ..TraefikIngress::new("letsencrypt-prod")
            }),
            "api.example.com",
        ));
        let objects = service(&p).unwrap();
        let ing = find(&objects, "Ingress", "analytics-api");
        assert_eq!(ing["spec"]["tls"][0]["secretName"], "analytics-api-tls");
        assert_eq!(
            ing["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.tls"],
            "true"
        );
        assert_eq!(
            ing["metadata"]["annotations"][ROUTER_MIDDLEWARES],
            "analytics-analytics-api-rate-limit@kubernetescrd"
        );
        let http = find(&objects, "Ingress", "analytics-api-http");
        assert_eq!(
            http["metadata"]["annotations"][ROUTER_MIDDLEWARES],
            "analytics-analytics-api-https-redirect@kubernetescrd"
        );
        assert_eq!(
            http["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.entrypoints"],
            "web"
        );
        assert!(http["spec"].get("tls").is_none(), "{http}");
        // Every middleware a router names is rendered in the namespace.
        for ingress in [ing, http] {
            let names = ingress["metadata"]["annotations"][ROUTER_MIDDLEWARES]
                .as_str()
                .unwrap();
            for reference in names.split(',') {
                let name = reference
                    .strip_suffix("@kubernetescrd")
                    .and_then(|n| n.strip_prefix("analytics-"))
                    .unwrap();
                assert_eq!(find(&objects, "Middleware", name)["kind"], "Middleware");
            }
        }
        assert_eq!(
            find(&objects, "Middleware", "analytics-api-rate-limit")["spec"]["rateLimit"]["burst"],
            500
        );
        // Aliases share the certificate; the ALB cannot take them.
        p.ingress.as_mut().unwrap().aliases = vec!["www.example.com".into()];
        let objects = service(&p).unwrap();
        let ing = find(&objects, "Ingress", "analytics-api");
        assert_eq!(
            ing["spec"]["tls"][0]["hosts"],
            serde_json::json!(["api.example.com", "www.example.com"])
        );
        assert_eq!(ing["spec"]["rules"][1]["host"], "www.example.com");
        p.ingress.as_mut().unwrap().class = IngressClass::Alb(AlbIngress {
            certificate_arn: None,
            group: None,
            scheme: AlbScheme::Internal,
            attributes: Default::default(),
        });
        assert!(service(&p).is_err());
    }
}
