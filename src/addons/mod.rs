//! The cluster add-on layer: what an environment's cluster must run for the objects its
//! stacks generate, derived from those objects, owned by the platform stack.
//!
//! [`layer`] reads every stack's objects ([`uses::Uses`]) and the platform settings, and
//! gives a [`Layer`]: the installs for `keel plan` (each saying what it provides, needs and
//! waits for), the EKS add-ons and controller identities the platform's Terraform root
//! creates, the typed Helm values files, and the platform's extra objects (ClusterIssuers).
//! [`attach`] is synth's hook: it rebuilds the platform stack of an
//! environment with the layer derived from all its stacks, so a platform synthesized alone
//! is the one a full synth writes.
//!
//! **Invariant:** an install provides exactly what it installs; nothing is installed that no
//! object of the environment needs (log shipping and node autoscaling serve the cluster
//! itself and follow from the platform's settings).

pub mod catalogue;
pub mod identities;
pub mod issuers;
pub mod uses;
pub mod values;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::env::Env;
use crate::env::file::IngressClassName;
use crate::k8s::{self, Object};
use crate::plan::{Capability, Install, Source, Wait};
use crate::stack::{Stack, StackError};
use crate::stacks::platform::{self, WorkloadIdentityMode};
use catalogue::Chart;
use identities::{Controller, Place};
use uses::Uses;
use values::{Map, Pdb, ServiceAccount, ServiceMonitor};

/// An add-on installed as an EKS add-on by the platform's Terraform root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksAddon {
    /// AWS's add-on name.
    pub name: &'static str,
    /// Pinned version (from the environment file).
    pub version: String,
    /// `configuration_values` (JSON), if any.
    pub configuration: Option<String>,
}

/// Everything the platform stack adds for the environment's add-ons.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// Every install, in the catalogue's order, for `keel plan`.
    pub installs: Vec<Install>,
    /// EKS add-ons beyond the platform's core ones.
    pub eks_addons: Vec<EksAddon>,
    /// `configuration_values` of the core vpc-cni add-on (NetworkPolicy enforcement).
    pub vpc_cni_configuration: Option<String>,
    /// AWS identities of the add-ons that call AWS.
    pub controllers: Vec<Controller>,
    /// `addons/<release>.values.yaml` files: name -> YAML.
    pub values: BTreeMap<String, String>,
    /// Objects for the platform's `k8s/` (applied after every install).
    pub objects: Vec<Object>,
    /// E-mail of the alerts topic Alertmanager publishes to (the SNS topic is created).
    pub alerts_email: Option<String>,
    /// The CloudWatch log groups of container logs are created (retention, encryption).
    pub container_logs: bool,
}

/// The alerts topic's name suffix (the platform's `AlarmTopic`: `eks-<env>-alarms`).
pub const ALERTS_TOPIC: &str = "alarms";

/// Builds the layer of `env` from every stack of it (`stacks`, the platform's own included
/// or not).
pub fn layer(env: &Env, stacks: &[&Stack]) -> Result<Layer, String> {
    let Some(cfg) = &env.spec.stacks.platform else {
        return Ok(Layer::default());
    };
    let kube = env.kubernetes()?;
    let uses = Uses::of(stacks.iter().flat_map(|s| s.objects.iter()));
    let cluster = platform::cluster_name(env.name());
    let region = env.spec.region.as_str();
    let partition = crate::construct::partition(region);
    let place = Place {
        partition,
        region,
        account: &env.spec.account_id,
        cluster: &cluster,
    };
    let irsa = cfg.workload_identity == WorkloadIdentityMode::Irsa;
    let annotations = |suffix: &str| -> Map {
        if irsa {
            Map::from([(
                k8s::IRSA_ANNOTATION.to_owned(),
                platform::controller_role_arn(env, suffix),
            )])
        } else {
            Map::new()
        }
    };
    let account = |controller: &Controller| ServiceAccount {
        create: true,
        name: controller.identity.service_account.clone(),
        annotations: annotations(&controller.identity.role_suffix),
    };
    let selector = kube.service_monitor_labels.clone();
    let monitoring = uses.group("monitoring.coreos.com");
    let service_monitor = || ServiceMonitor {
        enabled: monitoring,
        additional_labels: selector.clone(),
    };
    let versions = &cfg.addons;
    let mut out = Layer::default();
    let header = crate::stack::generated_by(env, platform::NAME);

    let monitors = Capability::ApiGroup("monitoring.coreos.com".into());
    // Monitoring: one Prometheus selecting exactly the labels keel puts on its monitors and
    // rules, in every namespace; Alertmanager publishes to the alerts topic.
    if monitoring {
        let ns = kube.monitoring_namespace.clone();
        let topic_arn = format!(
            "arn:{partition}:sns:{region}:{}:{}",
            env.spec.account_id,
            platform::resource_name(env, ALERTS_TOPIC)
        );
        let am = identities::alertmanager(&ns, "alertmanager", &topic_arn, region);
        let select = || values::Selector {
            match_labels: selector.clone(),
        };
        let all = || values::AllNamespaces {};
        // The chart labels everything `release: <release>` itself; commonLabels adds the
        // rest of the selector (a second `release` key would be a duplicate YAML key).
        let release = catalogue::KUBE_PROMETHEUS_STACK.release;
        if let Some(other) = selector.get("release").filter(|v| *v != release) {
            return Err(format!(
                "kubernetes.service_monitor_labels: release is {other:?}, but the monitoring chart labels its own monitors and rules release: {release}; use that value or another label key"
            ));
        }
        let mut common_labels = selector.clone();
        common_labels.remove("release");
        let body = values::KubePrometheusStack {
            common_labels,
            grafana: values::Grafana::for_dashboards(uses.dashboards),
            prometheus: values::Prometheus {
                pod_disruption_budget: Pdb::one_of_two(),
                prometheus_spec: values::PrometheusSpec {
                    replicas: 2,
                    service_monitor_selector: select(),
                    service_monitor_namespace_selector: all(),
                    pod_monitor_selector: select(),
                    pod_monitor_namespace_selector: all(),
                    rule_selector: select(),
                    rule_namespace_selector: all(),
                },
            },
            alertmanager: values::Alertmanager {
                service_account: account(&am),
                pod_disruption_budget: Pdb::one_of_two(),
                alertmanager_spec: values::Replicas { replicas: 2 },
                config: alertmanager_config(env.name(), &topic_arn, region),
            },
        };
        out.helm(
            &header,
            &catalogue::KUBE_PROMETHEUS_STACK,
            &ns,
            &body,
            vec![monitors.clone(), Capability::Prometheus(selector.clone())],
            vec![],
            vec![
                crd("prometheuses.monitoring.coreos.com"),
                crd("servicemonitors.monitoring.coreos.com"),
                crd("podmonitors.monitoring.coreos.com"),
                crd("prometheusrules.monitoring.coreos.com"),
                deployment(&ns, "kube-prometheus-stack-operator"),
            ],
        )?;
        out.controllers.push(am);
        out.alerts_email = Some(env.spec.alerts.email.clone());
    }

    // Ingress: a controller per class in use; NLBs of nginx and Traefik, and the alb class,
    // come from the AWS Load Balancer Controller.
    let nginx = uses.ingress_classes.contains("nginx");
    let traefik = uses.ingress_classes.contains("traefik");
    let alb = uses.ingress_classes.contains("alb");
    if let Some(unknown) = uses
        .ingress_classes
        .iter()
        .find(|c| !["nginx", "traefik", "alb"].contains(&c.as_str()))
    {
        return Err(format!(
            "an Ingress uses class {unknown:?}: keel installs controllers for nginx, traefik and alb only"
        ));
    }
    let ingress_ns = |class: IngressClassName, default: &str| {
        if kube.ingress_class == class {
            kube.ingress_namespace.clone()
        } else {
            default.to_owned()
        }
    };
    let elbv2 = Capability::ApiGroup("elbv2.k8s.aws".into());
    let behind_nlb = {
        let mut r = vec![elbv2.clone()];
        if monitoring {
            r.push(monitors.clone());
        }
        r
    };
    if alb || nginx || traefik {
        let lb = identities::lb_controller(catalogue::KUBE_SYSTEM, partition);
        let body = values::LbController {
            cluster_name: cluster.clone(),
            region: region.to_owned(),
            vpc_tags: Map::from([("Name".to_owned(), platform::vpc_name(env))]),
            replica_count: 2,
            pod_disruption_budget: values::MaxUnavailable { max_unavailable: 1 },
            service_account: account(&lb),
        };
        out.helm(
            &header,
            &catalogue::LB_CONTROLLER,
            catalogue::KUBE_SYSTEM,
            &body,
            vec![elbv2.clone(), Capability::IngressClass("alb".into())],
            vec![],
            vec![
                crd("targetgroupbindings.elbv2.k8s.aws"),
                crd("ingressclassparams.elbv2.k8s.aws"),
                deployment(catalogue::KUBE_SYSTEM, "aws-load-balancer-controller"),
            ],
        )?;
        out.controllers.push(lb);
    }
    if nginx {
        let ns = ingress_ns(IngressClassName::Nginx, catalogue::INGRESS_NGINX_NAMESPACE);
        let body = values::IngressNginx {
            controller: values::NginxController {
                replica_count: 2,
                min_available: 1,
                ingress_class: "nginx".into(),
                ingress_class_resource: values::NginxClass {
                    name: "nginx".into(),
                    enabled: true,
                    default: false,
                },
                metrics: values::NginxMetrics {
                    enabled: true,
                    service_monitor: service_monitor(),
                },
                service: values::LoadBalancerService::nlb(),
                config: values::NginxConfig::behind_nlb(),
            },
        };
        out.helm(
            &header,
            &catalogue::INGRESS_NGINX,
            &ns,
            &body,
            vec![Capability::IngressClass("nginx".into())],
            behind_nlb.clone(),
            vec![deployment(&ns, "ingress-nginx-controller")],
        )?;
    }
    if traefik || uses.group("traefik.io") {
        let default = env
            .spec
            .stacks
            .whatsthecraic
            .as_ref()
            .map_or(catalogue::TRAEFIK_NAMESPACE, |w| {
                w.traefik_namespace.as_str()
            });
        let ns = ingress_ns(IngressClassName::Traefik, default);
        let vpc_cidr = env
            .spec
            .stacks
            .platform
            .as_ref()
            .map(|p| p.vpc_cidr.as_str())
            .ok_or("Traefik runs on the platform's cluster, which this environment has not")?;
        let body = values::Traefik {
            deployment: values::TraefikDeployment { replicas: 2 },
            pod_disruption_budget: Pdb::one_of_two(),
            ingress_class: values::TraefikClass {
                enabled: true,
                is_default_class: false,
                name: "traefik".into(),
            },
            metrics: values::TraefikMetrics {
                prometheus: values::TraefikPrometheus {
                    add_services_labels: true,
                    service: values::Enabled {
                        enabled: monitoring,
                    },
                    service_monitor: service_monitor(),
                },
            },
            service: values::LoadBalancerService::nlb(),
            ports: values::TraefikPorts::behind_nlb(vpc_cidr),
        };
        out.helm(
            &header,
            &catalogue::TRAEFIK,
            &ns,
            &body,
            vec![
                Capability::IngressClass("traefik".into()),
                Capability::ApiGroup("traefik.io".into()),
            ],
            behind_nlb.clone(),
            vec![
                crd("middlewares.traefik.io"),
                crd("ingressroutes.traefik.io"),
                deployment(&ns, "traefik"),
            ],
        )?;
    }

    // Secrets and progressive delivery.
    if uses.group("external-secrets.io") {
        let ns = catalogue::EXTERNAL_SECRETS_NAMESPACE;
        let body = values::ExternalSecrets {
            install_crds: true,
            replica_count: 2,
            pod_disruption_budget: Pdb::one_of_two(),
            service_account: ServiceAccount {
                create: true,
                name: catalogue::EXTERNAL_SECRETS_SERVICE_ACCOUNT.to_owned(),
                // No AWS identity: each SecretStore authenticates with its own
                // ServiceAccount's role (IRSA), and the controller reads nothing itself.
                annotations: Map::new(),
            },
            webhook: values::ReplicasWithPdb::two(),
            cert_controller: values::ReplicasWithPdb::two(),
        };
        out.helm(
            &header,
            &catalogue::EXTERNAL_SECRETS,
            ns,
            &body,
            vec![Capability::ApiGroup("external-secrets.io".into())],
            vec![],
            vec![
                crd("externalsecrets.external-secrets.io"),
                crd("clustersecretstores.external-secrets.io"),
                crd("secretstores.external-secrets.io"),
                deployment(ns, "external-secrets"),
                deployment(ns, "external-secrets-webhook"),
                deployment(ns, "external-secrets-cert-controller"),
            ],
        )?;
    }
    if uses.group("argoproj.io") {
        let ns = catalogue::ARGO_ROLLOUTS_NAMESPACE;
        let body = values::ArgoRollouts {
            install_crds: true,
            controller: values::ArgoController {
                replicas: 2,
                pdb: Pdb::one_of_two(),
            },
            dashboard: values::Enabled { enabled: false },
        };
        out.helm(
            &header,
            &catalogue::ARGO_ROLLOUTS,
            ns,
            &body,
            vec![Capability::ApiGroup("argoproj.io".into())],
            vec![],
            vec![
                crd("rollouts.argoproj.io"),
                crd("analysistemplates.argoproj.io"),
                deployment(ns, "argo-rollouts"),
            ],
        )?;
    }

    // Certificates: cert-manager (EKS add-on) when an Ingress names an issuer, and the issuers.
    if uses.group("cert-manager.io") || !uses.cluster_issuers.is_empty() {
        let ns = catalogue::CERT_MANAGER_NAMESPACE;
        let dns01 = kube.acme_challenge == crate::env::file::AcmeChallenge::Dns01;
        let solver = dns01.then(|| identities::cert_manager_dns01(ns, "cert-manager", partition));
        let config = values::CertManagerConfig {
            replica_count: 2,
            pod_disruption_budget: Pdb::one_of_two(),
            webhook: values::ReplicasWithPdb::two(),
            cainjector: values::ReplicasWithPdb::two(),
            service_account: solver
                .as_ref()
                .filter(|_| irsa)
                .map(|c| values::Annotations {
                    annotations: annotations(&c.identity.role_suffix),
                }),
        };
        out.eks(
            catalogue::CERT_MANAGER,
            versions.cert_manager.as_deref(),
            "cert_manager",
            "an Ingress names a cert-manager ClusterIssuer",
            Some(json(&config)?),
            ns,
            vec![Capability::ApiGroup("cert-manager.io".into())],
            vec![
                crd("certificates.cert-manager.io"),
                crd("clusterissuers.cert-manager.io"),
                deployment(ns, "cert-manager"),
                deployment(ns, "cert-manager-webhook"),
                deployment(ns, "cert-manager-cainjector"),
            ],
        )?;
        out.controllers.extend(solver);
        let email = &env.spec.alerts.email;
        let challenge = issuers::Challenge {
            kind: kube.acme_challenge,
            preferred_class: match kube.ingress_class {
                IngressClassName::Nginx => "nginx",
                IngressClassName::Traefik => "traefik",
                IngressClassName::Alb => "alb",
            },
            region,
        };
        out.objects.extend(issuers::cluster_issuers(
            &uses.cluster_issuers,
            &uses.solver_classes,
            email,
            &challenge,
            &labels("cert-manager"),
        )?);
    }

    // Resource metrics and NetworkPolicy enforcement.
    if uses.resource_hpas {
        let config = values::MetricsServerConfig {
            replicas: 2,
            pod_disruption_budget: Pdb::one_of_two(),
        };
        out.eks(
            catalogue::METRICS_SERVER,
            versions.metrics_server.as_deref(),
            "metrics_server",
            "a HorizontalPodAutoscaler scales on CPU or memory",
            Some(json(&config)?),
            catalogue::KUBE_SYSTEM,
            vec![Capability::ResourceMetrics],
            vec![deployment(catalogue::KUBE_SYSTEM, "metrics-server")],
        )?;
    }
    if uses.network_policies {
        let config = json(&values::VpcCniConfig {
            enable_network_policy: "true".into(),
        })?;
        out.vpc_cni_configuration = Some(config);
        out.installs.push(Install {
            name: "vpc-cni".into(),
            namespace: catalogue::KUBE_SYSTEM.into(),
            source: Source::EksAddon {
                name: "vpc-cni".into(),
                version: versions.vpc_cni.clone(),
            },
            provides: vec![
                Capability::NetworkPolicyEnforcement,
                Capability::Namespace(catalogue::KUBE_SYSTEM.into()),
            ],
            requires: vec![],
            waits: vec![Wait::DaemonSetReady(
                catalogue::KUBE_SYSTEM.into(),
                "aws-node".into(),
            )],
        });
    }

    // The cluster itself: node autoscaling within the node groups' bounds, and pod logs.
    if cfg.node_groups.iter().any(|ng| ng.max > ng.min) {
        let ns = catalogue::KUBE_SYSTEM;
        let ca = identities::cluster_autoscaler(ns, "cluster-autoscaler", &place);
        let body = values::ClusterAutoscaler {
            fullname_override: "cluster-autoscaler".into(),
            cloud_provider: "aws".into(),
            aws_region: region.to_owned(),
            auto_discovery: values::AutoDiscovery {
                cluster_name: cluster.clone(),
            },
            image: values::ImageTag {
                tag: format!("v{}.0", kube.version),
            },
            replica_count: 2,
            pod_disruption_budget: values::MaxUnavailable { max_unavailable: 1 },
            rbac: values::Rbac {
                service_account: account(&ca),
            },
        };
        out.helm(
            &header,
            &catalogue::CLUSTER_AUTOSCALER,
            ns,
            &body,
            vec![],
            vec![],
            vec![deployment(ns, "cluster-autoscaler")],
        )?;
        out.controllers.push(ca);
    }
    let ns = catalogue::CLOUDWATCH_NAMESPACE;
    out.eks(
        catalogue::CLOUDWATCH_OBSERVABILITY,
        versions.amazon_cloudwatch_observability.as_deref(),
        "amazon_cloudwatch_observability",
        "the cluster's pod logs are shipped to CloudWatch Logs",
        None,
        ns,
        vec![],
        vec![Wait::DaemonSetReady(ns.into(), "fluent-bit".into())],
    )?;
    out.controllers.push(identities::cloudwatch_agent(ns));
    out.container_logs = true;
    Ok(out)
}

/// Alertmanager's routing: every alert to the alerts topic, grouped per namespace and
/// alert, except the always-firing `Watchdog` (a dead-man's switch for an external
/// checker), which goes to a receiver that sends nothing.
fn alertmanager_config(env: &str, topic_arn: &str, region: &str) -> values::AlertmanagerConfig {
    values::AlertmanagerConfig {
        route: values::Route {
            receiver: "alerts-topic".into(),
            group_by: vec!["namespace".into(), "alertname".into()],
            group_wait: "30s".into(),
            group_interval: "5m".into(),
            repeat_interval: "4h".into(),
            routes: vec![values::SubRoute {
                receiver: "null".into(),
                matchers: vec!["alertname = \"Watchdog\"".into()],
            }],
        },
        receivers: vec![
            values::Receiver {
                name: "alerts-topic".into(),
                sns_configs: vec![values::SnsConfig {
                    topic_arn: topic_arn.to_owned(),
                    subject: format!("[{env}] {{{{ .CommonLabels.alertname }}}}"),
                    sigv4: values::Sigv4 {
                        region: region.to_owned(),
                    },
                    send_resolved: true,
                }],
            },
            values::Receiver {
                name: "null".into(),
                sns_configs: vec![],
            },
        ],
    }
}

fn crd(name: &str) -> Wait {
    Wait::CrdEstablished(name.to_owned())
}

fn deployment(namespace: &str, name: &str) -> Wait {
    Wait::DeploymentReady(namespace.to_owned(), name.to_owned())
}

fn json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("add-on configuration: {e}"))
}

/// Labels of the platform's own objects.
fn labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), component.to_owned()),
        (
            "app.kubernetes.io/part-of".to_owned(),
            "platform".to_owned(),
        ),
        ("app.kubernetes.io/managed-by".to_owned(), "keel".to_owned()),
    ])
}

/// A values file's path relative to `generated/<env>/platform/`.
pub fn values_file(release: &str) -> String {
    format!("addons/{release}.values.yaml")
}

impl Layer {
    /// Adds a Helm install of `chart` into `namespace` with typed `values`.
    #[allow(clippy::too_many_arguments)]
    fn helm<T: Serialize>(
        &mut self,
        header: &str,
        chart: &Chart,
        namespace: &str,
        values: &T,
        mut provides: Vec<Capability>,
        requires: Vec<Capability>,
        waits: Vec<Wait>,
    ) -> Result<(), String> {
        let file = values_file(chart.release);
        let body = k8s::to_yaml(&file, values).map_err(|e| e.to_string())?;
        let source = Source::Helm {
            chart: chart.release.to_owned(),
            repository: chart.repository.to_owned(),
            version: chart.version.to_owned(),
            values_file: file.clone(),
            crds_directory: chart.crds_directory,
        };
        // What the plan's install step runs first (`Source::crds_command`), as a reader
        // would type it: Helm never upgrades a chart's `crds/`.
        let crds = if chart.crds_directory {
            format!(
                "# helm show crds {r} --repo {repo} --version {v} | kubectl apply --server-side --force-conflicts -f -\n",
                r = chart.release,
                repo = chart.repository,
                v = chart.version,
            )
        } else {
            String::new()
        };
        let command = format!(
            "{crds}# helm upgrade --install {r} {r} --repo {repo} --version {v} \\\n#   --namespace {namespace} --create-namespace -f {file} --wait\n",
            r = chart.release,
            repo = chart.repository,
            v = chart.version,
        );
        // The renderer's header line is replaced by the stack's, then the install command.
        let body = body.strip_prefix(k8s::HEADER).unwrap_or(&body);
        self.values.insert(
            format!("{}.values.yaml", chart.release),
            format!("# {header}\n#\n{command}{body}"),
        );
        provides.push(Capability::Namespace(namespace.to_owned()));
        self.installs.push(Install {
            name: chart.release.to_owned(),
            namespace: namespace.to_owned(),
            source,
            provides,
            requires,
            waits,
        });
        Ok(())
    }

    /// Adds an EKS add-on pinned at `version` (`stacks.platform.addons.<key>`).
    #[allow(clippy::too_many_arguments)]
    fn eks(
        &mut self,
        name: &'static str,
        version: Option<&str>,
        key: &str,
        why: &str,
        configuration: Option<String>,
        namespace: &str,
        mut provides: Vec<Capability>,
        waits: Vec<Wait>,
    ) -> Result<(), String> {
        let version = version.ok_or_else(|| {
            format!(
                "stacks.platform.addons.{key}: expected the pinned version of the EKS add-on {name} (e.g. v1.2.3-eksbuild.1, from `aws eks describe-addon-versions --addon-name {name}`): {why}"
            )
        })?;
        provides.push(Capability::Namespace(namespace.to_owned()));
        self.eks_addons.push(EksAddon {
            name,
            version: version.to_owned(),
            configuration,
        });
        self.installs.push(Install {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            source: Source::EksAddon {
                name: name.to_owned(),
                version: version.to_owned(),
            },
            provides,
            requires: vec![],
            waits,
        });
        Ok(())
    }

    /// Every capability the installs provide.
    pub fn provided(&self) -> BTreeSet<&Capability> {
        self.installs.iter().flat_map(|i| &i.provides).collect()
    }
}

/// Synth's hook: when `built` holds the selected platform stack of `env`, rebuilds it with the layer
/// derived from every stack of the environment (building those the selection left out, and
/// keeping them unselected so the platform's README links them as a full synth does).
pub fn attach(env: &Env, built: &mut Vec<(bool, Stack)>) -> Result<(), StackError> {
    // Only a platform that is rendered needs its layer (its exports do not depend on it).
    let Some(at) = built
        .iter()
        .position(|(selected, s)| *selected && s.name == platform::NAME)
    else {
        return Ok(());
    };
    let mut others: Vec<Stack> = Vec::new();
    for def in crate::stacks::ALL {
        if def.name == platform::NAME || built.iter().any(|(_, s)| s.name == def.name) {
            continue;
        }
        if let Some(stack) = (def.build)(env).map_err(|e| {
            StackError::new(
                platform::NAME,
                env.name(),
                format!("the add-on layer reads every stack of the environment: {e}"),
            )
        })? {
            others.push(stack);
        }
    }
    // Kept, unselected: the apply order and the README's links are those of a full synth.
    built.extend(others.into_iter().map(|s| (false, s)));
    let all: Vec<&Stack> = built
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name != platform::NAME)
        .collect();
    let layer = layer(env, &all).map_err(|m| StackError::new(platform::NAME, env.name(), m))?;
    if let Some(stack) = platform::build_with(env, &layer)? {
        built[at].1 = stack;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
