//! analytics-api: the workload binary (../workload) on Kubernetes, with PostgreSQL on RDS
//! and ElastiCache Redis in the cluster's VPC (../shared/seeds/analytics-api.md).
//!
//! The seed runs TimescaleDB. RDS PostgreSQL has no TimescaleDB extension, so hypertables,
//! continuous aggregates, compression and retention policies are not available; the workload
//! stores events in a plain table with time indexes and keeps its own per-minute rollups
//! (counts and mergeable latency sketches, written by a trigger on insert), which RDS
//! supports. A team that needs TimescaleDB runs Timescale Cloud or self-managed PostgreSQL
//! instead.
//!
//! Ports, probe paths and environment variable names come from the workload's contract
//! crate, so the manifests cannot drift from the binary.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use keel_workload_contract as contract;

use crate::construct::Scope;
use crate::construct::github_deploy::ClusterAccess;
use crate::construct::db_login::{DatabaseLogin, DatabaseLoginProps};
use crate::construct::ecr::{EcrRepository, EcrRepositoryProps};
use crate::construct::elasticache::{
    REDIS_PORT, RedisCache, RedisCacheProps, redis_family, redis_versions,
};
use crate::construct::kms::KmsKey;
use crate::construct::rds::{RdsInstance, RdsInstanceProps};
use crate::construct::secrets::{GeneratedSecret, composed_secret, seeded_secret};
use crate::construct::secret_store::StackSecretStoreProps;
use crate::construct::security_group::{Peer, SecurityGroup};
use crate::env::Env;
use crate::env::check::{self, Problems, certificate, database, min_copies, percent};
use crate::env::file::EnvFile;
use crate::env::file::{AcmeChallenge, AnalyticsApi, IngressClassName, Kubernetes};
use crate::env::file::{Database, Image};
use crate::env::load::is_prod;
use crate::k8s;
use crate::rollout::Rollout;
use crate::slo::prometheus::{RequestMetrics, ServiceSlos, rule_object};
use crate::slo::{self, LatencySupport, Slo};
use crate::stack::{Stack, StackDef, StackError, terraform_root};
use crate::stacks::platform::OnCluster;

/// Stack name.
pub const NAME: &str = "analytics-api";

/// Registry entry.
pub const DEF: StackDef = StackDef {
    name: NAME,
    description: "analytics API on Kubernetes with RDS PostgreSQL and ElastiCache Redis",
    build,
};

/// Settings of the analytics-api stack (Kubernetes + RDS + ElastiCache).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AnalyticsApi")]
pub struct Settings {
    /// Container image of the workload binary: the `analytics-api` repository this stack
    /// creates (or one under `image_registries`).
    pub image: Image,
    /// Namespace the service runs in.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub namespace: String,
    /// Public host name of the API.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"))]
    pub host: String,
    /// Replicas at rollout (the HPA takes over from there).
    pub replicas: u32,
    /// Horizontal pod autoscaling.
    pub autoscaling: PodAutoscaling,
    /// ACM certificate (only for the `alb` ingress class).
    #[serde(default)]
    pub certificate_arn: Option<String>,
    /// Requests per second per client IP at the ingress (nginx `limit-rps`; with traefik
    /// a rate-limit Middleware with the same burst, five times this).
    pub rate_limit_rps: u32,
    /// Progressive delivery: an Argo Rollouts canary driven by this schedule, rolled back
    /// by the analysis. Absent: a Deployment with a rolling update.
    #[serde(default)]
    pub rollout: Option<Rollout>,
    /// Database.
    pub database: Database,
    /// Redis cache.
    pub cache: Cache,
    /// The GitHub repository (`owner/name`) whose workflows deploy this stack: its deploy
    /// role trusts only that repository's jobs in the GitHub environment named like this
    /// one (`repo:<owner>/<name>:environment:<env>`).
    #[schemars(regex(pattern = r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$"))]
    pub deploy_repository: String,
    /// Service level objectives of the API, measured from the workload's request metrics:
    /// a `PrometheusRule` with their error ratios and burn-rate alerts. Latency thresholds
    /// must be bucket bounds of the workload's histogram. Default: none.
    #[serde(default)]
    pub slos: Vec<Slo>,
    /// How the service's PostgreSQL rollups store latency sketches (`SKETCH_ENCODING`):
    /// `legacy` (the default: what every version of the service reads) or `compact` (about
    /// a sixth of the bytes; existing rows are re-encoded in the background). Switch to
    /// `compact` only once every replica runs an image that reads it, in a change of its
    /// own: `keel diff` blocks the switch when it comes with a new image, and `keel promote`
    /// never carries it.
    #[serde(default)]
    pub sketch_encoding: SketchEncoding,
}

/// Rollup sketch encoding of the workload (see its README's upgrade steps).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SketchEncoding {
    /// 12 bytes a bucket; read by every version.
    #[default]
    Legacy,
    /// About 2 bytes a bucket; read only by versions with the compact decoder.
    Compact,
}

impl SketchEncoding {
    /// The value of the workload's `SKETCH_ENCODING`.
    pub fn as_str(self) -> &'static str {
        match self {
            SketchEncoding::Legacy => "legacy",
            SketchEncoding::Compact => "compact",
        }
    }
}

/// Horizontal pod autoscaling bounds and targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodAutoscaling {
    /// Fewest replicas.
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    /// Average CPU utilization target, percent of requests.
    pub cpu_percent: u32,
    /// Average memory utilization target, percent of requests.
    pub memory_percent: u32,
}

/// ElastiCache Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// Node type, e.g. `cache.t4g.small`.
    #[schemars(regex(pattern = r"^cache\.[a-z0-9]+\.[a-z0-9]+$"))]
    pub node_type: String,
    /// Redis engine version, `major.minor`: one of `6.0`, `6.2`, `7.0`, `7.1` (its parameter
    /// group family, `redis6.x` or `redis7`, follows from it).
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+$"))]
    pub engine_version: String,
    /// Nodes (primary + replicas); 2 or more enables Multi-AZ failover.
    #[schemars(range(min = 1, max = 6))]
    pub nodes: u32,
}

/// Database name, its master user (administrators only) and the service's own login.
/// Property of the `jwt-secret-previous` secret's JSON holding `JWT_SECRET_PREVIOUS`: empty
/// (no previous secret, which the workload reads as unset) until an operator rotates
/// `jwt-secret`. A JSON property rather than the whole value, so the secret always holds a
/// value and the property always exists: External Secrets fails the whole sync on either
/// missing.
const JWT_PREVIOUS_PROPERTY: &str = "previous";
const DB_NAME: &str = "analytics";
const DB_ADMIN: &str = "analytics_admin";
const DB_USER: &str = "analytics_app";

fn build(env: &Env) -> Result<Option<Stack>, StackError> {
    let Some(cfg) = &env.spec.stacks.analytics_api else {
        return Ok(None);
    };
    let fail = |message: String| StackError::new(NAME, env.name(), message);
    let kube = env.kubernetes().map_err(fail)?;
    let mut tf = terraform_root(env, NAME);
    let scope = &mut Scope::new(&mut tf, "aapi", env);
    let secret_path = |name: &str| format!("{NAME}/{}/{name}", env.name());

    let key = KmsKey::new(scope, "analytics-api: database, cache, secrets, logs");
    let log_retention_days = env.database_log_retention_days();
    // The cluster's network and identities come from the platform stack (SSM exports).
    let cluster = OnCluster::of(env, NAME).map_err(fail)?;
    let vpc_id = cluster.vpc_id(scope);
    let subnets = cluster.data_subnet_ids(scope);
    let nodes = Peer::Group(cluster.node_security_group(scope));
    let db_sg = SecurityGroup::new(
        scope,
        "security",
        "database",
        "PostgreSQL: 5432 from the cluster's nodes only",
        vpc_id.clone(),
    );
    db_sg.allow_in(
        scope,
        "postgres_from_cluster",
        &nodes,
        5432,
        "PostgreSQL from the EKS nodes/pods",
    );
    let cache_sg = SecurityGroup::new(
        scope,
        "security",
        "cache",
        "Redis: 6379 from the cluster's nodes only",
        vpc_id,
    );
    cache_sg.allow_in(
        scope,
        "redis_from_cluster",
        &nodes,
        REDIS_PORT,
        "Redis (TLS) from the EKS nodes/pods",
    );

    let mut redis_token = GeneratedSecret::new(
        scope,
        &key,
        "redis_auth_token",
        &secret_path("redis-auth-token"),
        "AUTH token of the Redis cache",
    );
    let jwt = GeneratedSecret::new(
        scope,
        &key,
        "jwt_secret",
        &secret_path("jwt-secret"),
        "HS256 signing key of the API's JWTs",
    );
    let jwt_previous = seeded_secret(
        scope,
        &key,
        "jwt_secret_previous",
        &secret_path("jwt-secret-previous"),
        "JWT_SECRET_PREVIOUS of the analytics API: the HS256 key being rotated out, in property `previous` (empty when not rotating)",
        &format!("{{\"{JWT_PREVIOUS_PROPERTY}\":\"\"}}"),
    );
    let db = RdsInstance::new(
        scope,
        &key,
        &RdsInstanceProps {
            settings: cfg.database.clone(),
            db_name: DB_NAME.into(),
            username: DB_ADMIN.into(),
            subnet_ids: subnets.clone(),
            security_group_id: db_sg.id(),
            log_retention_days,
        },
    )
    .map_err(fail)?;
    let mut login = DatabaseLogin::new(
        scope,
        &key,
        &db,
        &DatabaseLoginProps {
            username: DB_USER,
            secret_path: &secret_path("database-app-password"),
            extensions: &[],
        },
    )
    .map_err(fail)?;
    let redis_auth_token = redis_token.value(scope);
    let cache = RedisCache::new(
        scope,
        &key,
        &RedisCacheProps {
            settings: cfg.cache.clone(),
            subnet_ids: subnets,
            security_group_id: cache_sg.id(),
            auth_token: redis_auth_token.clone(),
            log_retention_days,
        },
    )
    .map_err(fail)?;
    // The server's certificate and host name are both verified, against the RDS CA bundle
    // the image carries (workload contract).
    let url = login.url(
        scope,
        &crate::construct::rds_tls::url_query(crate::construct::rds_tls::CaBundle::InImage(
            contract::DATABASE_CA_BUNDLE_PATH,
        )),
    );
    let database_url = composed_secret(
        scope,
        &key,
        "database_url",
        &secret_path("database-url"),
        "DATABASE_URL of the analytics API: its own login, TLS with full verification",
        url,
    );
    let redis_url = composed_secret(
        scope,
        &key,
        "redis_url",
        &secret_path("redis-url"),
        "REDIS_URL of the analytics API (TLS)",
        format!(
            "rediss://:{}@{}:{REDIS_PORT}/0",
            redis_auth_token,
            cache.primary_address()
        ),
    );

    // The repository the deploy workflow pushes to and the pods pull from (unless the
    // environment file allow-lists another registry).
    let repo = EcrRepository::new(
        scope,
        &key,
        "service",
        &EcrRepositoryProps::releases(NAME.into(), env),
    );
    let deploy = cluster.deploy_role(
        scope,
        &cfg.deploy_repository,
        vec![repo.url().to_owned()],
        ClusterAccess::Group(k8s::deployer_group(NAME)),
        vec![],
    );
    let out = &mut *scope.tf;
    out.output(
        "ecr_repository_url",
        "ECR repository of the service's images",
        repo.url_attr(),
        false,
    );
    out.output(
        "db_endpoint",
        "PostgreSQL writer endpoint (host:port)",
        db.endpoint(),
        false,
    );
    out.output(
        "redis_primary_address",
        "Redis primary endpoint host",
        cache.primary_address(),
        false,
    );
    out.output(
        "database_url_secret_arn",
        "Secrets Manager ARN of DATABASE_URL (read by the ExternalSecret)",
        database_url,
        false,
    );
    out.output(
        "redis_url_secret_arn",
        "Secrets Manager ARN of REDIS_URL (read by the ExternalSecret)",
        redis_url,
        false,
    );
    out.output(
        "jwt_secret_arn",
        "Secrets Manager ARN of JWT_SECRET (read by the ExternalSecret)",
        jwt.arn(),
        false,
    );
    out.output(
        "jwt_secret_previous_arn",
        "Secrets Manager ARN of JWT_SECRET_PREVIOUS, property `previous` (read by the ExternalSecret)",
        jwt_previous,
        false,
    );
    out.output(
        "kms_key_arn",
        "KMS key of the stack's secrets, database, cache and logs",
        key.arn(),
        false,
    );
    out.output(
        "github_deploy_role_arn",
        "role the deploy workflow assumes (GitHub environment of the same name only)",
        deploy.arn(),
        false,
    );
    // The stack's own store reads its secrets, and only these (`analytics-api/<env>/*`).
    let mut props = service_props(env, cfg, kube, &cluster, &secret_path).map_err(fail)?;
    let store = cluster
        .secret_store(
            scope,
            &key,
            &StackSecretStoreProps {
                name: NAME,
                namespace: &cfg.namespace,
                prefix: &format!("{NAME}/{}", env.name()),
                labels: &props.app.recommended().map_err(|e| fail(e.to_string()))?,
            },
        )
        .map_err(fail)?;
    scope.tf.output(
        "secrets_reader_role_arn",
        "role the stack's SecretStore reads its secrets with (IRSA of its ServiceAccount)",
        store.role.arn(),
        false,
    );
    props.secrets.store = Some(store.store);
    let mut objects = store.objects;
    objects.extend(k8s::service(&props).map_err(|e| fail(e.to_string()))?);
    let metrics = RequestMetrics::workload(&cfg.namespace, &props.app.name);
    let slos = ServiceSlos {
        service: NAME,
        namespace: &cfg.namespace,
        metrics: &metrics,
        slos: &cfg.slos,
    };
    if !cfg.slos.is_empty() {
        objects.push(
            rule_object(&slos, &props.app, &kube.service_monitor_labels, slos.groups())
                .map_err(|e| fail(e.to_string()))?,
        );
    }
    objects.push(
        k8s::dashboard::StackDashboard {
            stack: NAME,
            namespace: &cfg.namespace,
            slos: (!cfg.slos.is_empty()).then_some(&slos),
            db_connections: None,
        }
        .config_map(&props.app.recommended().map_err(|e| fail(e.to_string()))?)
        .map_err(|e| fail(e.to_string()))?,
    );
    let deployer = k8s::stack_deployer(NAME, env.name(), &cfg.namespace, &objects)
        .map_err(|e| fail(e.to_string()))?;
    objects.extend(deployer);
    let login_job = cluster
        .database_login_job(
            scope,
            &key,
            &login,
            NAME,
            &objects,
            k8s::HostSecret::Url(secret_path("database-url")),
        )
        .map_err(fail)?;
    let mut stack = Stack::on_cluster(NAME, tf, objects, BTreeMap::new())
        .map_err(|e| fail(e.to_string()))?;
    stack.add_job(login_job.objects, login_job.step);
    stack.external =
        crate::stack::web_externals(&[cfg.host.as_str()], cfg.certificate_arn.as_deref());
    Ok(Some(stack))
}

/// The Kubernetes description of the service, from the environment and the contract.
fn service_props(
    env: &Env,
    cfg: &AnalyticsApi,
    kube: &Kubernetes,
    cluster: &OnCluster,
    secret_path: &dyn Fn(&str) -> String,
) -> Result<k8s::ServiceProps, String> {
    let image = k8s::Image::pinned(&cfg.image, env.is_prod())?;
    let app = k8s::AppLabels {
        name: NAME.into(),
        instance: format!("{NAME}-{}", env.name()),
        version: k8s::Image::version_label(&cfg.image),
        component: "api".into(),
        part_of: "llm-observatory".into(),
    };
    let mut p = k8s::ServiceProps::new(app, &cfg.namespace, image.clone());
    p.replicas = k8s::count(cfg.replicas)?;
    p.ports = k8s::Ports {
        http: contract::HTTP_PORT,
        service_http: 80,
        metrics: Some(contract::METRICS_PORT),
    };
    p.probes.startup_path = contract::STARTUP_PATH.into();
    p.probes.liveness_path = contract::LIVENESS_PATH.into();
    p.probes.readiness_path = contract::READINESS_PATH.into();
    let r = contract::DEFAULT_RESOURCES;
    p.resources = k8s::Resources {
        requests_cpu: r.cpu_request.into(),
        requests_memory: r.memory_request.into(),
        limits_cpu: r.cpu_limit.into(),
        limits_memory: r.memory_limit.into(),
    };
    p.termination_grace_period_seconds = i64::from(contract::TERMINATION_GRACE_SECS);
    p.pre_stop_pause_seconds = i64::from(contract::PRE_STOP_PAUSE_SECS);
    p.security.run_as_user = i64::from(contract::RUN_AS_USER);
    p.security.run_as_group = i64::from(contract::RUN_AS_GROUP);
    let a = &cfg.autoscaling;
    p.autoscaling = Some(k8s::Autoscaling {
        min_replicas: k8s::count(a.min)?,
        max_replicas: k8s::count(a.max)?,
        cpu_utilization_percent: k8s::count(a.cpu_percent)?,
        memory_utilization_percent: k8s::count(a.memory_percent)?,
    });

    // Non-secret settings: every non-secret variable of the contract, at its default
    // unless the stack sets it here.
    let overrides = BTreeMap::from([
        (
            contract::RUST_LOG.name,
            "analytics_api=info,tower_http=info".to_owned(),
        ),
        (contract::CORS_ORIGINS.name, format!("https://{}", cfg.host)),
        (contract::CACHE_DEFAULT_TTL.name, "60".to_owned()),
        (
            contract::SKETCH_ENCODING.name,
            cfg.sketch_encoding.as_str().to_owned(),
        ),
    ]);
    p.config_apart_from_image = contract::CHANGE_APART_FROM_IMAGE
        .iter()
        .map(|var| var.name.to_owned())
        .collect();
    // (remote key, JSON property) of each secret variable.
    let mut secret_sources = BTreeMap::from([
        (contract::DATABASE_URL.name, (secret_path("database-url"), None)),
        (contract::REDIS_URL.name, (secret_path("redis-url"), None)),
        (contract::JWT_SECRET.name, (secret_path("jwt-secret"), None)),
        (
            contract::JWT_SECRET_PREVIOUS.name,
            (
                secret_path("jwt-secret-previous"),
                Some(JWT_PREVIOUS_PROPERTY.to_owned()),
            ),
        ),
    ]);
    for var in contract::ENV_VARS {
        if var.secret {
            let (remote_key, property) = secret_sources.remove(var.name).ok_or_else(|| {
                format!(
                    "the workload reads secret {} but the stack gives it no source",
                    var.name
                )
            })?;
            p.secrets.env.push(k8s::SecretEnv {
                env: var.name.into(),
                source: k8s::SecretSource::SecretsManager {
                    remote_key,
                    property,
                },
            });
        } else if let Some(value) = overrides
            .get(var.name)
            .cloned()
            .or(var.default.map(str::to_owned))
        {
            p.config.insert(var.name.into(), value);
        }
    }
    if let Some((name, _)) = secret_sources.into_iter().next() {
        return Err(format!(
            "the stack sources secret {name}, which the workload's contract does not read"
        ));
    }

    let class = match kube.ingress_class {
        IngressClassName::Nginx => k8s::IngressClass::Nginx(k8s::NginxIngress {
            cluster_issuer: issuer(kube)?,
            limit_rps: Some(cfg.rate_limit_rps),
        }),
        // The same limit as nginx's `limit-rps` (burst five times the rate), and the
        // HTTP→HTTPS redirect nginx does with `ssl-redirect`.
        IngressClassName::Traefik => k8s::IngressClass::Traefik(k8s::TraefikIngress {
            rate_limit: Some(k8s::RateLimit::like_nginx(cfg.rate_limit_rps)),
            ..k8s::TraefikIngress::new(&issuer(kube)?)
        }),
        IngressClassName::Alb => k8s::IngressClass::Alb(k8s::AlbIngress {
            certificate_arn: Some(
                cfg.certificate_arn
                    .clone()
                    .ok_or("the alb ingress class needs certificate_arn")?,
            ),
            group: None,
            scheme: k8s::AlbScheme::InternetFacing,
            attributes: k8s::AlbAttributes::default(),
        }),
    };
    p.ingress = Some(k8s::IngressProps::new(class, &cfg.host));
    // nginx and traefik proxy from their own namespace; the AWS load balancer sends
    // traffic straight to pod IPs (target type ip) from inside the VPC.
    p.network.http_from = match kube.ingress_class {
        IngressClassName::Alb => vec![k8s::TrafficSource::Cidr(cluster.vpc_cidr.clone())],
        IngressClassName::Nginx | IngressClassName::Traefik => {
            vec![k8s::TrafficSource::Namespace(
                kube.ingress_namespace.clone(),
            )]
        }
    };
    p.network.metrics_from = vec![k8s::TrafficSource::Namespace(
        kube.monitoring_namespace.clone(),
    )];
    // The data stores live in the platform's data subnets (apart from nodes and pods),
    // which it carves from its VPC CIDR deterministically: known at synth, no id pasted in.
    p.network.egress = cluster
        .data_subnet_cidrs
        .iter()
        .flat_map(|c| [k8s::EgressPeer::postgres(c), k8s::EgressPeer::redis(c)])
        .collect();
    if kube.acme_challenge == AcmeChallenge::Http01
        && matches!(
            kube.ingress_class,
            IngressClassName::Nginx | IngressClassName::Traefik
        )
    {
        p.network.acme_http01_from = Some(k8s::TrafficSource::Namespace(
            kube.ingress_namespace.clone(),
        ));
    }
    p.monitoring = Some(k8s::MonitoringProps {
        path: contract::METRICS_PATH.into(),
        labels: kube.service_monitor_labels.clone(),
        ..Default::default()
    });
    p.canary = cfg
        .rollout
        .as_ref()
        .map(|r| canary(r, &cfg.namespace, kube))
        .transpose()?;
    p.suppressions.push(k8s::Suppression::new(
        "Deployment",
        "CKV_K8S_35",
        "the workload reads DATABASE_URL, REDIS_URL, JWT_SECRET and JWT_SECRET_PREVIOUS from env (secretKeyRef only, values synced by External Secrets)",
    ));
    // The quota holds the canary at its peak, the solvers and the database login Job.
    p.namespace_policy =
        Some(k8s::NamespacePolicy::for_services(&[&p], 1).map_err(|e| e.to_string())?);
    Ok(p)
}

/// The Argo Rollouts canary of a rollout setting, analysed on the workload's own request
/// metrics (contract names), probes left out.
fn canary(r: &Rollout, namespace: &str, kube: &Kubernetes) -> Result<k8s::CanaryProps, String> {
    let queries = k8s::pod_queries(
        namespace,
        contract::HTTP_REQUESTS.exposed,
        contract::STATUS_LABEL,
        contract::HTTP_REQUEST_DURATION.exposed,
        // Probes answer 200 whatever the release does: they would dilute the errors.
        &format!(
            "{}!~\"{}|{}\"",
            contract::ROUTE_LABEL,
            contract::LIVENESS_PATH,
            contract::READINESS_PATH
        ),
    );
    crate::rollout::argo_canary(r, kube.prometheus_address(), queries)
}

fn issuer(kube: &Kubernetes) -> Result<String, String> {
    kube.cluster_issuer
        .clone()
        .ok_or_else(|| "kubernetes.cluster_issuer is required for TLS with cert-manager".into())
}

/// Semantic checks of these settings in `spec` (what the JSON Schema cannot say), as
/// (JSON pointer, message) pairs that the loader locates in the file.
pub(crate) fn check(spec: &EnvFile, api: &Settings, out: &mut Problems) {
    let p = "/stacks/analytics-api";
    if spec.kubernetes.is_none() {
        out.push((
            p.into(),
            "expected a top-level `kubernetes` section: this stack deploys to a cluster".into(),
        ));
    }
    if spec.stacks.platform.is_none() {
        out.push((
            p.into(),
            "stack analytics-api imports its cluster's network and identities from stack platform, which this environment does not synthesize: add stacks.platform".into(),
        ));
    }
    check::image(&api.image, spec, NAME, &format!("{p}/image"), out);
    if let Some(r) = &api.rollout {
        r.check(spec.tier, true, &format!("{p}/rollout"), out);
    }
    let a = &api.autoscaling;
    if !(a.min <= api.replicas && api.replicas <= a.max) {
        out.push((
            format!("{p}/replicas"),
            format!(
                "expected autoscaling.min <= replicas <= autoscaling.max, found {} <= {} <= {}",
                a.min, api.replicas, a.max
            ),
        ));
    }
    min_copies(
        a.min,
        "replica",
        spec.tier,
        &format!("{p}/autoscaling/min"),
        out,
    );
    percent(a.cpu_percent, &format!("{p}/autoscaling/cpu_percent"), out);
    percent(
        a.memory_percent,
        &format!("{p}/autoscaling/memory_percent"),
        out,
    );
    if api.rate_limit_rps == 0 {
        out.push((format!("{p}/rate_limit_rps"), "expected at least 1".into()));
    }
    certificate(
        api.certificate_arn.as_deref(),
        spec,
        &format!("{p}/certificate_arn"),
        out,
    );
    if let Some(k) = &spec.kubernetes
        && k.ingress_class == crate::env::file::IngressClassName::Alb
        && api.certificate_arn.is_none()
    {
        out.push((
            format!("{p}/certificate_arn"),
            "expected an ACM certificate ARN: the alb ingress class terminates TLS with ACM".into(),
        ));
    }
    database(&api.database, spec.tier, &format!("{p}/database"), out);
    slo::check(
        &api.slos,
        LatencySupport::Buckets(contract::LATENCY_BUCKETS_SECONDS),
        &format!("{p}/slos"),
        out,
    );
    if redis_family(&api.cache.engine_version).is_none() {
        out.push((
            format!("{p}/cache/engine_version"),
            format!(
                "expected a Redis version ElastiCache supports ({}), found {:?}",
                redis_versions(),
                api.cache.engine_version
            ),
        ));
    }
    if is_prod(spec.tier) && api.cache.nodes < 2 {
        out.push((
            format!("{p}/cache/nodes"),
            format!("expected at least 2 nodes (Multi-AZ failover) in a prod-tier environment, found {}", api.cache.nodes),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod() -> Env {
        use crate::env::kubernetes_support::{TESTED_ON, pin_today};
        pin_today(TESTED_ON);
        let path = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/environments/prod.yaml"
        ));
        crate::env::load_file(path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rendered(env: &Env) -> BTreeMap<String, String> {
        build(env)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap()
            .kubernetes
    }

    #[test]
    fn alb_ingress_admits_the_vpc_and_needs_a_certificate() {
        let mut env = prod();
        if let Some(k) = env.spec.kubernetes.as_mut() {
            k.ingress_class = IngressClassName::Alb;
        }
        let err = build(&env).unwrap_err();
        assert!(err.message.contains("certificate_arn"), "{err}");
        if let Some(api) = env.spec.stacks.analytics_api.as_mut() {
            api.certificate_arn =
                Some("arn:aws:acm:us-east-1:111122223333:certificate/0d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6".into());
        }
        let files = rendered(&env);
        let ingress = &files["70-ingress-analytics-api.yaml"];
        assert!(
            ingress.contains("alb.ingress.kubernetes.io/target-type: ip"),
            "{ingress}"
        );
        let policy = &files["80-networkpolicy-analytics-api.yaml"];
        assert!(policy.contains("cidr: \"10.130.0.0/16\""), "{policy}");
    }

    #[test]
    fn traefik_ingress_admits_its_namespace() {
        let mut env = prod();
        if let Some(k) = env.spec.kubernetes.as_mut() {
            k.ingress_class = IngressClassName::Traefik;
            k.ingress_namespace = "traefik".into();
        }
        let files = rendered(&env);
        assert!(files["70-ingress-analytics-api.yaml"].contains("ingressClassName: traefik"));
        assert!(
            files["80-networkpolicy-analytics-api.yaml"]
                .contains("kubernetes.io/metadata.name: traefik")
        );
        // The same redirect and rate limit as the nginx variant, as Traefik Middlewares.
        assert!(files["70-ingress-analytics-api.yaml"].contains(
            "traefik.ingress.kubernetes.io/router.middlewares: analytics-analytics-api-rate-limit@kubernetescrd"
        ));
        assert!(files["70-ingress-analytics-api-http.yaml"].contains(
            "traefik.ingress.kubernetes.io/router.middlewares: analytics-analytics-api-https-redirect@kubernetescrd"
        ));
        let limit = &files["70-middleware-analytics-api-rate-limit.yaml"];
        assert!(
            limit.contains("average: 100") && limit.contains("burst: 500"),
            "{limit}"
        );
        assert!(files["70-middleware-analytics-api-https-redirect.yaml"].contains("scheme: https"));
        assert!(files["kustomization.yaml"].contains("70-middleware-analytics-api-rate-limit.yaml"));
    }
}
