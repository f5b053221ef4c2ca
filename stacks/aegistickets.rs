//! aegistickets: a ticketing app (backend API and nginx frontend) behind one shared ALB,
//! with PostgreSQL on RDS, on the environment's platform cluster
//! (../shared/seeds/aegistickets.md).
//!
//! - Namespace `tickets-<env>`: Pod Security `restricted`, ResourceQuota, LimitRange and a
//!   namespace-wide default deny.
//! - backend (`/api`): 2 replicas and an HPA, metrics scraped by a ServiceMonitor;
//!   frontend (`/`): nginx on 8080 (1 replica in dev). Ports, probe paths and users are
//!   what the seed's images serve and run as (module `image`): each runs as its image's own
//!   account, with a read-only root and emptyDirs where it writes. Both restricted, with
//!   probes, requests and limits, and PDBs where they run two or more.
//! - One ALB for both through the AWS Load Balancer Controller (ingress group
//!   `tickets-<env>`, internet-facing, pod targets, `/api` before `/`), HTTPS with the
//!   environment's ACM certificate and HTTP redirected where one is given, behind the
//!   stack's WAF web ACL (by name), access logs in the stack's bucket, deletion protection
//!   in prod. The pods admit the VPC's CIDR (the ALB reaches pod IPs) and the backend
//!   reaches only its database.
//! - RDS PostgreSQL 15: master password managed by RDS, the backend's own login
//!   (`tickets_app`) in `keel/<env>/aegistickets/`, read by an ExternalSecret through the
//!   stack's own SecretStore (which reads only secrets under that prefix). The backend and
//!   its exporter verify the server (`sslmode=verify-full`) against the RDS CA bundle an
//!   `rds-ca` init container fetches into their pods ([`rds_tls::fetch_in_pod`]).
//! - ECR repositories for both images and a GitHub deploy role that deploys the namespace
//!   only: its access entry's group `aegistickets-deployers` is bound to a Role derived
//!   from the stack's objects ([`k8s::stack_deployer`]).
//! - The backend's SLOs (`slos`): a PrometheusRule with the seed's named SLI rules and
//!   burn-rate alerts.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::construct::Scope;
use crate::construct::github_deploy::ClusterAccess;
use crate::construct::db_login::{DatabaseLogin, DatabaseLoginProps};
use crate::construct::ecr::{EcrRepository, EcrRepositoryProps};
use crate::construct::kms::KmsKey;
use crate::construct::logs_bucket::{ACCESS_LOG_PREFIX, LogsBucket};
use crate::construct::rds::{RdsInstance, RdsInstanceProps};
use crate::construct::rds_tls;
use crate::construct::secrets::composed_secret;
use crate::construct::secret_store::StackSecretStoreProps;
use crate::construct::security_group::{Peer, SecurityGroup};
use crate::construct::waf::{WebAcl, WebAclProps};
use crate::env::Env;
use crate::env::check::{self, Problems, database, min_copies, percent};
use crate::env::file::{Database, EnvFile, Image, PlainHttp, PodAutoscaling};
use crate::k8s::{self, Rule, RuleGroup};
use crate::slo::prometheus::{Matcher, RequestMetrics, ServiceSlos, rule_object};
use crate::slo::{self, ErrorClass, Indicator, LatencySupport, Slo, Window, num};
use crate::stack::{Stack, StackDef, StackError, terraform_root};
use crate::stacks::platform::OnCluster;

/// Stack name.
pub const NAME: &str = "aegistickets";

/// Registry entry.
pub const DEF: StackDef = StackDef {
    name: NAME,
    description: "ticketing app (backend API + nginx frontend) behind one ALB, RDS PostgreSQL, on the platform cluster",
    build,
};

/// What the seed's images serve and who they run as (its public repository,
/// `OluwaTossin/aegistickets-platform`: `app/*/Dockerfile`, `app/frontend/nginx.conf`,
/// `app/backend/app.py`).
mod image {
    /// The backend: gunicorn on 8000 as the image's `appuser` (uid and gid 1000).
    pub const BACKEND_PORT: u16 = 8000;
    /// Liveness (and startup): answers while the process runs.
    pub const BACKEND_HEALTH: &str = "/healthz";
    /// Readiness: answers 200 only with a database connection.
    pub const BACKEND_READY: &str = "/readiness";
    /// Prometheus metrics, on the same port.
    pub const BACKEND_METRICS: &str = "/metrics";
    /// The backend image's account, uid and gid.
    pub const BACKEND_USER: (&str, i64, i64) = ("appuser", 1000, 1000);
    /// The frontend: nginx:alpine on 8080 as its `nginx` account (uid and gid 101).
    pub const FRONTEND_PORT: u16 = 8080;
    /// The frontend's health location.
    pub const FRONTEND_HEALTH: &str = "/healthz";
    /// The frontend image's account, uid and gid.
    pub const FRONTEND_USER: (&str, i64, i64) = ("nginx", 101, 101);
    /// Where nginx writes: its pid file (`/var/run/nginx.pid`) and its temp files
    /// (`/var/cache/nginx/*_temp`), with their size bounds.
    pub const FRONTEND_WRITES: [(&str, &str); 2] = [("/var/cache/nginx", "64Mi"), ("/var/run", "1Mi")];
}

/// Settings of the aegistickets stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Aegistickets")]
pub struct Settings {
    /// Public host name of the app.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"))]
    pub host: String,
    /// ACM certificate of the HTTPS listener; without one the ALB serves plain HTTP
    /// (not allowed in prod).
    #[serde(default)]
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$"
    ))]
    pub certificate_arn: Option<String>,
    /// Who may reach the load balancer when there is no `certificate_arn` (then required):
    /// `internal` (the VPC only) or `internet_facing`.
    #[serde(default)]
    pub plain_http: Option<PlainHttp>,
    /// The backend API (`/api`).
    pub backend: Backend,
    /// The nginx frontend (`/`).
    pub frontend: Frontend,
    /// The backend's database.
    pub database: Database,
    /// The GitHub repository (`owner/name`) whose workflows deploy this stack.
    #[schemars(regex(pattern = r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$"))]
    pub deploy_repository: String,
    /// Service level objectives of the backend API, measured from its request metrics: a
    /// `PrometheusRule` with their error ratios, burn-rate alerts and the seed's named
    /// SLI rules. Latency thresholds must be bucket bounds of the backend's histogram
    /// (the Python client's defaults: ..., 0.5, 0.75, 1, 2.5, ... s). Default: none.
    #[serde(default)]
    pub slos: Vec<Slo>,
}

/// Upper bounds of the backend's latency histogram: the Python Prometheus client's default
/// buckets, which the seed's backend keeps.
const BACKEND_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The backend's request metrics (the seed's Flask app): `http_requests_total` with the
/// status in `code`, the latency histogram `http_request_latency_seconds`; only `/api/*`
/// handlers are counted, so probes need no exclusion.
fn backend_metrics(namespace: &str, job: &str) -> RequestMetrics {
    RequestMetrics {
        requests: "http_requests_total".into(),
        duration: "http_request_latency_seconds".into(),
        status_label: "code".into(),
        buckets: BACKEND_LATENCY_BUCKETS.to_vec(),
        selector: vec![
            Matcher::Equal("namespace".into(), namespace.into()),
            Matcher::Equal("job".into(), job.into()),
        ],
    }
}

/// The seed's named recording rules (`sli:http:*`, `slo:*:target`), from the typed
/// objectives: the availability target from the objective counting server errors, the
/// latency target and percentile from the latency objective, the error-rate target from
/// the objective counting every failed request. A rule whose objective is not configured
/// is left out; so is `sli:db:saturation:connections`, which needs the database's
/// `max_connections`, an RDS parameter derived from the instance's memory at boot.
fn seed_rules(svc: &ServiceSlos<'_>) -> RuleGroup {
    let labels = svc.service_labels();
    let record = |name: &str, expr: String| Rule::record(name, expr, labels.clone());
    let mut rules = vec![
        record("sli:http:request_rate:5m", svc.request_rate(Window::M5)),
        record(
            "sli:http:error_rate:5m",
            svc.ratio(
                &Indicator::Availability {
                    errors: ErrorClass::Server,
                },
                Window::M5,
            ),
        ),
    ];
    for slo in svc.slos {
        match slo.indicator {
            Indicator::Availability {
                errors: ErrorClass::Server,
            } => rules.push(record(
                "slo:availability:target",
                format!("vector({})", num(slo.objective())),
            )),
            Indicator::Availability {
                errors: ErrorClass::ClientAndServer,
            } => rules.push(record(
                "slo:error_rate:target",
                format!("vector({})", num(slo.error_budget())),
            )),
            Indicator::Latency { threshold_seconds } => {
                rules.push(record(
                    &format!(
                        "sli:http:request_duration_seconds:p{}",
                        num(slo.objective_percent).replace('.', "_")
                    ),
                    svc.latency_quantile(slo.objective(), Window::M5),
                ));
                rules.push(record(
                    "slo:latency:target",
                    format!("vector({})", num(threshold_seconds)),
                ));
            }
        }
    }
    RuleGroup {
        name: "aegistickets-sli".into(),
        interval: None,
        rules,
    }
}

/// The PostgreSQL exporter: its name, also the `job` of its series.
const EXPORTER: &str = "postgres-exporter";
/// postgres_exporter v0.17.1, pinned by the index digest public repositories pin.
const EXPORTER_IMAGE: (&str, &str) = (
    "quay.io/prometheuscommunity/postgres-exporter",
    "sha256:38606faa38c54787525fb0ff2fd6b41b4cfb75d455c1df294927c5f611699b17",
);
/// The exporter's port (its default).
const EXPORTER_PORT: u16 = 9187;
/// The seed's database saturation objective: connections below 80% of `max_connections`.
const DB_SATURATION_OBJECTIVE: f64 = 0.8;

/// The input of `sli:db:saturation:connections`: postgres_exporter in the namespace, one
/// replica, logged in as the backend (its `DATABASE_URL`: `pg_stat_database` needs no
/// privilege), reaching only the database and scraped only by the cluster's Prometheus.
/// Chosen over CloudWatch's `DatabaseConnections` (a CloudWatch exporter would need an
/// AWS role and a cluster-wide add-on, and report a 1-minute average a minute late).
fn postgres_exporter(
    env: &Env,
    namespace: &str,
    database_url_path: &str,
    store: &k8s::SecretStoreRef,
    data_subnet_cidrs: &[String],
    kube: &crate::env::file::Kubernetes,
) -> Result<k8s::ServiceProps, String> {
    let pin = Image {
        repository: EXPORTER_IMAGE.0.to_owned(),
        tag: None,
        digest: Some(EXPORTER_IMAGE.1.to_owned()),
    };
    let app = k8s::AppLabels {
        name: EXPORTER.to_owned(),
        instance: format!("{EXPORTER}-{}", env.name()),
        version: "v0.17.1".to_owned(),
        component: "database-exporter".to_owned(),
        part_of: NAME.to_owned(),
    };
    let mut p = k8s::ServiceProps::new(app, namespace, k8s::Image::from_pin(&pin)?);
    p.replicas = 1;
    p.ports = k8s::Ports {
        http: EXPORTER_PORT,
        service_http: EXPORTER_PORT,
        metrics: None,
    };
    p.probes = k8s::Probes {
        startup_path: "/".into(),
        liveness_path: "/".into(),
        readiness_path: "/".into(),
        startup_failure_threshold: 6,
    };
    p.resources = k8s::Resources {
        requests_cpu: "25m".into(),
        requests_memory: "32Mi".into(),
        limits_cpu: "100m".into(),
        limits_memory: "64Mi".into(),
    };
    p.namespace_policy = None;
    p.secrets.env.push(k8s::SecretEnv {
        env: "DATA_SOURCE_NAME".into(),
        source: k8s::SecretSource::SecretsManager {
            remote_key: database_url_path.to_owned(),
            property: None,
        },
    });
    // The stack's own store, as the backend's: no cluster-wide store reads its prefix.
    p.secrets.store = Some(store.clone());
    p.network.http_from = vec![k8s::TrafficSource::Namespace(
        kube.monitoring_namespace.clone(),
    )];
    p.network.metrics_from = Vec::new();
    p.network.egress = data_subnet_cidrs
        .iter()
        .map(|c| k8s::EgressPeer::postgres(c))
        .collect();
    p.monitoring = Some(k8s::MonitoringProps {
        path: "/metrics".into(),
        labels: kube.service_monitor_labels.clone(),
        ..Default::default()
    });
    p.suppressions.push(k8s::Suppression::new(
        "Deployment",
        "CKV_K8S_35",
        "postgres_exporter reads DATA_SOURCE_NAME from env (secretKeyRef only, value synced by External Secrets)",
    ));
    Ok(p)
}

/// The seed's `sli:db:saturation:connections` (connections over `max_connections`, which
/// the parameter group sets, so it is a number here) and its objective, below 80%: an
/// alert when it holds 10 minutes above.
fn db_saturation_rules(svc: &ServiceSlos<'_>, max_connections: u32) -> RuleGroup {
    let labels = svc.service_labels();
    let expr = format!(
        "sum(pg_stat_database_numbackends{{namespace=\"{}\",job=\"{EXPORTER}\"}}) / {max_connections}",
        svc.namespace
    );
    let mut alert_labels = labels.clone();
    alert_labels.insert("severity".into(), "ticket".into());
    let mut alert = Rule::alert(
        "AegisticketsDatabaseSaturation",
        format!(
            "sli:db:saturation:connections{{namespace=\"{}\",service=\"{NAME}\"}} > {}",
            svc.namespace,
            num(DB_SATURATION_OBJECTIVE)
        ),
        alert_labels,
        BTreeMap::from([
            (
                "summary".to_owned(),
                format!("{NAME} database: connections above {}% of max_connections", num(DB_SATURATION_OBJECTIVE * 100.0)),
            ),
            (
                "description".to_owned(),
                format!("{{{{ $value | humanizePercentage }}}} of the {max_connections} connections the database allows are open (objective: below {}%).", num(DB_SATURATION_OBJECTIVE * 100.0)),
            ),
        ]),
    );
    alert.for_ = Some("10m".into());
    RuleGroup {
        name: "aegistickets-db-saturation".into(),
        interval: None,
        rules: vec![
            Rule::record("sli:db:saturation:connections", expr, labels.clone()),
            Rule::record(
                "slo:db_saturation:target",
                format!("vector({})", num(DB_SATURATION_OBJECTIVE)),
                labels,
            ),
            alert,
        ],
    }
}

/// The backend's image and scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Image: the `aegistickets-backend` repository this stack creates (or one under
    /// `image_registries`), pinned.
    pub image: Image,
    /// Replicas at rollout (the HPA takes over).
    pub replicas: u32,
    /// Horizontal autoscaling.
    pub autoscaling: PodAutoscaling,
}

/// The frontend's image and scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    /// Image: the `aegistickets-frontend` repository this stack creates (or one under
    /// `image_registries`), pinned.
    pub image: Image,
    /// Replicas (1 in dev as the seed; at least 2 in prod).
    pub replicas: u32,
}

/// The name of the ECR repository of `component`'s images.
fn repository(component: &str) -> String {
    format!("{NAME}-{component}")
}

fn build(env: &Env) -> Result<Option<Stack>, StackError> {
    let Some(cfg) = &env.spec.stacks.aegistickets else {
        return Ok(None);
    };
    let fail = |message: String| StackError::new(NAME, env.name(), message);
    let kube = env.kubernetes().map_err(fail)?;
    let mut tf = terraform_root(env, NAME);
    let scope = &mut Scope::new(&mut tf, "tix", env);
    let cluster = OnCluster::of(env, NAME).map_err(fail)?;
    let namespace = format!("tickets-{}", env.name());
    let key = KmsKey::new(scope, "aegistickets: database, secrets, logs");
    // The controller's ALB writes its access logs here (the policy admits the region's
    // log delivery) and, in prod, refuses deletion.
    let edge_log_days = if env.is_prod() { 365 } else { 90 };
    let alb_logs = LogsBucket::new(scope, edge_log_days, &[]);
    // The controller attaches the web ACL by name: it exists once this root is applied,
    // before the Ingresses are.
    let web_acl = WebAcl::new(
        scope,
        &key,
        &WebAclProps {
            log_retention_days: edge_log_days,
            large_bodies: None,
        },
    );
    let alb_attributes = k8s::AlbAttributes {
        access_logs: Some((
            alb_logs.literal_name().to_owned(),
            ACCESS_LOG_PREFIX.to_owned(),
        )),
        deletion_protection: env.is_prod(),
        web_acl_name: Some(web_acl.name().to_owned()),
    };

    let vpc_id = cluster.vpc_id(scope);
    let subnets = cluster.data_subnet_ids(scope);
    let nodes = Peer::Group(cluster.node_security_group(scope));
    let db_sg = SecurityGroup::new(
        scope,
        "security",
        "database",
        "PostgreSQL: 5432 from the cluster's nodes only",
        vpc_id,
    );
    db_sg.allow_in(
        scope,
        "postgres_from_cluster",
        &nodes,
        5432,
        "PostgreSQL from the EKS nodes/pods",
    );
    let db = RdsInstance::new(
        scope,
        &key,
        &RdsInstanceProps {
            settings: cfg.database.clone(),
            db_name: "tickets".into(),
            username: "tickets_admin".into(),
            subnet_ids: subnets,
            security_group_id: db_sg.id(),
            log_retention_days: env.database_log_retention_days(),
        },
    )
    .map_err(fail)?;
    let secrets = format!("keel/{}/{NAME}", env.name());
    let mut login = DatabaseLogin::new(
        scope,
        &key,
        &db,
        &DatabaseLoginProps {
            username: "tickets_app",
            secret_path: &format!("{secrets}/database-app-password"),
            extensions: &[],
        },
    )
    .map_err(fail)?;
    let database_url_path = format!("{secrets}/database-url");
    let url = login.url(scope, &rds_tls::url_query(rds_tls::APP_BUNDLE));
    let database_url = composed_secret(
        scope,
        &key,
        "database_url",
        &database_url_path,
        "DATABASE_URL of the backend and its exporter: their own login, TLS with full verification",
        url,
    );
    let repos: Vec<EcrRepository> = ["backend", "frontend"]
        .iter()
        .map(|component| {
            EcrRepository::new(
                scope,
                &key,
                component,
                &EcrRepositoryProps::releases(repository(component), env),
            )
        })
        .collect();
    let deploy = cluster.deploy_role(
        scope,
        &cfg.deploy_repository,
        repos.iter().map(|r| r.url().to_owned()).collect(),
        ClusterAccess::Group(k8s::deployer_group(NAME)),
        vec![],
    );
    let out = &mut *scope.tf;
    out.output(
        "db_endpoint",
        "PostgreSQL writer endpoint (host:port)",
        db.endpoint(),
        false,
    );
    out.output(
        "database_url_secret_arn",
        "Secrets Manager ARN of the backend's DATABASE_URL (read by the ExternalSecret)",
        database_url,
        false,
    );
    out.output(
        "github_deploy_role_arn",
        "role the deploy workflow assumes (GitHub environment of the same name only)",
        deploy.arn(),
        false,
    );
    for (repo, component) in repos.iter().zip(["backend", "frontend"]) {
        out.output(
            &format!("ecr_{component}_repository_url"),
            &format!("ECR repository of the {component} images"),
            repo.url_attr(),
            false,
        );
    }

    let group = format!("tickets-{}", env.name());
    let service = |component: &str,
                   pin: &Image,
                   replicas: u32,
                   path: &str,
                   order: u16,
                   port: u16,
                   (account, uid, gid): (&str, i64, i64)| {
        let image = k8s::Image::pinned(pin, env.is_prod())?;
        let app = k8s::AppLabels {
            name: component.to_owned(),
            instance: format!("{component}-{}", env.name()),
            version: k8s::Image::version_label(pin),
            component: component.to_owned(),
            part_of: NAME.to_owned(),
        };
        let mut p = k8s::ServiceProps::new(app, &namespace, image.clone());
        p.replicas = k8s::count(replicas)?;
        p.ports = k8s::Ports {
            http: port,
            service_http: 80,
            metrics: None,
        };
        p.security = k8s::PodSecurity::image_user(account, uid, gid);
        let mut ingress = k8s::IngressProps::new(
            k8s::IngressClass::Alb(k8s::AlbIngress {
                certificate_arn: cfg.certificate_arn.clone(),
                scheme: match cfg.plain_http {
                    Some(PlainHttp::Internal) => k8s::AlbScheme::Internal,
                    Some(PlainHttp::InternetFacing) | None => k8s::AlbScheme::InternetFacing,
                },
                group: Some((group.clone(), order)),
                attributes: alb_attributes.clone(),
            }),
            &cfg.host,
        );
        ingress.path = path.to_owned();
        p.ingress = Some(ingress);
        // The ALB sends traffic straight to pod IPs from inside the VPC.
        p.network.http_from = vec![k8s::TrafficSource::Cidr(cluster.vpc_cidr.clone())];
        p.network.metrics_from = Vec::new();
        p.monitoring = None;
        Ok::<_, String>(p)
    };
    let b = &cfg.backend;
    let mut backend = service(
        "backend",
        &b.image,
        b.replicas,
        "/api",
        10,
        image::BACKEND_PORT,
        image::BACKEND_USER,
    )
    .map_err(fail)?;
    backend.probes = k8s::Probes {
        startup_path: image::BACKEND_HEALTH.into(),
        liveness_path: image::BACKEND_HEALTH.into(),
        readiness_path: image::BACKEND_READY.into(),
        startup_failure_threshold: 30,
    };
    // The seed chart's sizes (deploy/helm/backend/values.yaml).
    backend.resources = k8s::Resources {
        requests_cpu: "150m".into(),
        requests_memory: "256Mi".into(),
        limits_cpu: "500m".into(),
        limits_memory: "512Mi".into(),
    };
    let a = &b.autoscaling;
    backend.autoscaling = Some(k8s::Autoscaling {
        min_replicas: k8s::count(a.min).map_err(fail)?,
        max_replicas: k8s::count(a.max).map_err(fail)?,
        cpu_utilization_percent: k8s::count(a.cpu_percent).map_err(fail)?,
        memory_utilization_percent: k8s::count(a.memory_percent).map_err(fail)?,
    });
    backend.secrets.env.push(k8s::SecretEnv {
        env: "DATABASE_URL".into(),
        source: k8s::SecretSource::SecretsManager {
            remote_key: database_url_path.clone(),
            property: None,
        },
    });
    // The stack's own store reads its prefix, and nothing else.
    let store = cluster
        .secret_store(
            scope,
            &key,
            &StackSecretStoreProps {
                name: NAME,
                namespace: &namespace,
                prefix: &secrets,
                labels: &backend.app.recommended().map_err(|e| fail(e.to_string()))?,
            },
        )
        .map_err(fail)?;
    backend.secrets.store = Some(store.store.clone());
    backend.network.egress = cluster
        .data_subnet_cidrs
        .iter()
        .map(|c| k8s::EgressPeer::postgres(c))
        .collect();
    // Its image carries no RDS CA: an init container fetches it before the app starts.
    rds_tls::fetch_in_pod(&mut backend, &cluster.vpc_cidr);
    backend.network.metrics_from = vec![k8s::TrafficSource::Namespace(
        kube.monitoring_namespace.clone(),
    )];
    backend.monitoring = Some(k8s::MonitoringProps {
        path: image::BACKEND_METRICS.into(),
        labels: kube.service_monitor_labels.clone(),
        ..Default::default()
    });
    backend.suppressions.push(k8s::Suppression::new(
        "Deployment",
        "CKV_K8S_35",
        "the backend reads DATABASE_URL from env (secretKeyRef only, value synced by External Secrets)",
    ));
    let f = &cfg.frontend;
    let mut frontend = service(
        "frontend",
        &f.image,
        f.replicas,
        "/",
        20,
        image::FRONTEND_PORT,
        image::FRONTEND_USER,
    )
    .map_err(fail)?;
    frontend.probes = k8s::Probes {
        startup_path: image::FRONTEND_HEALTH.into(),
        liveness_path: image::FRONTEND_HEALTH.into(),
        readiness_path: image::FRONTEND_HEALTH.into(),
        startup_failure_threshold: 12,
    };
    frontend.security.writable_dirs.extend(
        image::FRONTEND_WRITES
            .iter()
            .map(|(path, size)| k8s::WritableDir::new(path, size)),
    );
    frontend.resources = k8s::Resources {
        requests_cpu: "50m".into(),
        requests_memory: "64Mi".into(),
        limits_cpu: "200m".into(),
        limits_memory: "128Mi".into(),
    };
    // The backend owns the namespace's objects (namespace, quota, limits, default deny);
    // the quota holds both services at their peak and the database login Job.
    frontend.namespace_policy = None;
    let mut exporter = postgres_exporter(
        env,
        &namespace,
        &database_url_path,
        &store.store,
        &cluster.data_subnet_cidrs,
        kube,
    )
    .map_err(fail)?;
    // The same DATABASE_URL, so the same bundle, fetched the same way.
    rds_tls::fetch_in_pod(&mut exporter, &cluster.vpc_cidr);
    backend.namespace_policy = Some(
        k8s::NamespacePolicy::for_services(&[&backend, &frontend, &exporter], 1)
            .map_err(|e| fail(e.to_string()))?,
    );

    let mut objects = store.objects;
    objects.extend(k8s::service(&backend).map_err(|e| fail(e.to_string()))?);
    objects.extend(k8s::service(&frontend).map_err(|e| fail(e.to_string()))?);
    objects.extend(k8s::service(&exporter).map_err(|e| fail(e.to_string()))?);
    let metrics = backend_metrics(&namespace, &backend.app.name);
    let slos = ServiceSlos {
        service: NAME,
        namespace: &namespace,
        metrics: &metrics,
        slos: &cfg.slos,
    };
    let recorded = !cfg.slos.is_empty();
    if recorded {
        let mut groups = vec![seed_rules(&slos)];
        groups.extend(slos.groups());
        groups.push(db_saturation_rules(&slos, db.max_connections()));
        objects.push(
            rule_object(&slos, &backend.app, &kube.service_monitor_labels, groups)
                .map_err(|e| fail(e.to_string()))?,
        );
    }
    objects.push(
        k8s::dashboard::StackDashboard {
            stack: NAME,
            namespace: &namespace,
            slos: recorded.then_some(&slos),
            // The series `db_saturation_rules` records, with the objectives' rules.
            db_connections: recorded.then(|| {
                format!(
                    "sli:db:saturation:connections{{namespace=\"{namespace}\",service=\"{NAME}\"}}"
                )
            }),
        }
        .config_map(&backend.app.recommended().map_err(|e| fail(e.to_string()))?)
        .map_err(|e| fail(e.to_string()))?,
    );
    let deployer = k8s::stack_deployer(NAME, env.name(), &namespace, &objects)
        .map_err(|e| fail(e.to_string()))?;
    objects.extend(deployer);
    let login_job = cluster
        .database_login_job(
            scope,
            &key,
            &login,
            NAME,
            &objects,
            k8s::HostSecret::Url(database_url_path.to_owned()),
        )
        .map_err(fail)?;
    let mut stack = Stack::on_cluster(NAME, tf, objects, BTreeMap::new())
        .map_err(|e| fail(e.to_string()))?;
    stack.add_job(login_job.objects, login_job.step);
    stack.external =
        crate::stack::web_externals(&[cfg.host.as_str()], cfg.certificate_arn.as_deref());
    stack
        .warnings
        .extend(crate::stack::plain_http_warning(NAME, env.name(), cfg.plain_http));
    Ok(Some(stack))
}

/// Semantic checks of these settings in `spec`.
pub(crate) fn check(spec: &EnvFile, at: &Settings, out: &mut Problems) {
    let p = "/stacks/aegistickets";
    if spec.stacks.platform.is_none() {
        out.push((
            p.into(),
            "stack aegistickets runs on the cluster of stack platform, which this environment does not synthesize: add stacks.platform".into(),
        ));
    }
    for (component, image) in [
        ("backend", &at.backend.image),
        ("frontend", &at.frontend.image),
    ] {
        let ptr = format!("{p}/{component}/image");
        check::image(image, spec, &repository(component), &ptr, out);
    }
    let a = &at.backend.autoscaling;
    if !(a.min <= at.backend.replicas && at.backend.replicas <= a.max) {
        out.push((
            format!("{p}/backend/replicas"),
            format!(
                "expected autoscaling.min <= replicas <= autoscaling.max, found {} <= {} <= {}",
                a.min, at.backend.replicas, a.max
            ),
        ));
    }
    min_copies(
        a.min,
        "replica",
        spec.tier,
        &format!("{p}/backend/autoscaling/min"),
        out,
    );
    percent(
        a.cpu_percent,
        &format!("{p}/backend/autoscaling/cpu_percent"),
        out,
    );
    percent(
        a.memory_percent,
        &format!("{p}/backend/autoscaling/memory_percent"),
        out,
    );
    min_copies(
        at.frontend.replicas,
        "replica",
        spec.tier,
        &format!("{p}/frontend/replicas"),
        out,
    );
    check::certificate(
        at.certificate_arn.as_deref(),
        spec,
        &format!("{p}/certificate_arn"),
        out,
    );
    check::plain_http(at.certificate_arn.as_deref(), at.plain_http, spec, p, out);
    database(&at.database, spec.tier, &format!("{p}/database"), out);
    slo::check(
        &at.slos,
        LatencySupport::Buckets(BACKEND_LATENCY_BUCKETS),
        &format!("{p}/slos"),
        out,
    );
}
