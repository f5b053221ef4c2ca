//! metrics-service: the Node.js service that scores Langfuse traces against a ground-truth
//! bucket, on the environment's platform cluster (../shared/seeds/metrics-service.md).
//!
//! - Namespace `metrics-service` of its own (Pod Security restricted, quota, limits,
//!   default deny): Deployment on port 3001 with the seed's probes, sizes and variables, a
//!   ClusterIP Service, a PDB where it runs more than one replica, and a NetworkPolicy that
//!   admits nothing in and lets the pods reach only DNS and HTTPS (AWS APIs and Langfuse).
//! - Langfuse is outside keel: the service calls it at `langfuse_url` (an environment
//!   setting, HTTPS), declared as an external dependency that `keel preflight` checks.
//! - The Langfuse keys come from Secrets Manager (`keel/<env>/metrics-service/...`, set out
//!   of band) through an ExternalSecret of the stack's own SecretStore.
//! - Its pods' role (IRSA or Pod Identity, from the same value as the ServiceAccount): read
//!   the ground-truth bucket's objects, list the bucket, write its own log group.
//! - ECR repository `metrics-service` and a GitHub deploy role that deploys its namespace
//!   only. Its tags are immutable outside dev, so the pipeline tags images with the commit
//!   only: the seed also re-pushed `latest`, which an immutable repository refuses (and
//!   nothing reads; see `construct::ecr`). The deploy role reads the Langfuse credentials and
//!   the service's logs, as the seed's. The seed gave that role AmazonEKSClusterAdminPolicy:
//!   a leaked workflow token would then own every namespace, so keel's access entry maps it
//!   to the group `metrics-service-deployers`, which a Role in `metrics-service` (derived
//!   from the stack's objects, [`k8s::stack_deployer`]) lets apply those objects and roll and
//!   undo the Deployment, and nothing else.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::construct::github_deploy::ClusterAccess;
use crate::construct::ecr::{EcrEncryption, EcrRepository, EcrRepositoryProps};
use crate::construct::iam::Statement;
use crate::construct::kms::KmsKey;
use crate::construct::log_group::encrypted_log_group;
use crate::construct::secret_store::StackSecretStoreProps;
use crate::construct::secrets::Secret;
use crate::construct::{Scope, partition};
use crate::env::Env;
use crate::env::check::{self, Problems, min_copies};
use crate::env::file::{EnvFile, Image};
use crate::k8s;
use crate::plan::External;
use crate::stack::{Stack, StackDef, StackError, terraform_root};
use crate::stacks::platform::OnCluster;

/// Stack name.
pub const NAME: &str = "metrics-service";

/// Registry entry.
pub const DEF: StackDef = StackDef {
    name: NAME,
    description: "trace scoring service on the platform cluster: IRSA to its ground-truth bucket, ECR, deploy role",
    build,
};

/// Namespace (its own, created by its `k8s/`).
const NAMESPACE: &str = "metrics-service";
/// Port the service listens on (`PORT`).
const PORT: u16 = 3001;
/// Name of its ECR repository.
const REPOSITORY: &str = "metrics-service";

/// Settings of the metrics-service stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MetricsService")]
pub struct Settings {
    /// Container image: the `metrics-service` repository this stack creates (or one under
    /// `image_registries`), pinned.
    pub image: Image,
    /// Replicas (the seed runs 2; at least 2 in prod).
    pub replicas: u32,
    /// The environment's ground-truth bucket (`GROUND_TRUTH_BUCKET`), read-only.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub ground_truth_bucket: String,
    /// The Langfuse the service scores traces of (`LANGFUSE_URL`): outside keel, reached
    /// over HTTPS on port 443 (the only port the pods may reach besides DNS), checked by
    /// `keel preflight`.
    #[schemars(regex(pattern = r"^https://[a-z0-9.-]+(/.*)?$"))]
    pub langfuse_url: String,
    /// `LOG_LEVEL`.
    pub log_level: LogLevel,
    /// Days to keep the service's own log group.
    pub log_retention_days: u32,
    /// Encrypt images with the stack's KMS key instead of AES256 (the seed's choice).
    #[serde(default)]
    pub ecr_kms: bool,
    /// The GitHub repository (`owner/name`) whose workflows deploy this stack.
    #[schemars(regex(pattern = r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$"))]
    pub deploy_repository: String,
}

/// Log levels of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

fn build(env: &Env) -> Result<Option<Stack>, StackError> {
    let Some(cfg) = &env.spec.stacks.metrics_service else {
        return Ok(None);
    };
    let fail = |message: String| StackError::new(NAME, env.name(), message);
    let mut tf = terraform_root(env, NAME);
    let scope = &mut Scope::new(&mut tf, "ms", env);
    let cluster = OnCluster::of(env, NAME).map_err(fail)?;
    let key = KmsKey::new(scope, "metrics-service: secrets, logs, images");

    let logs = encrypted_log_group(
        scope,
        &key,
        "logs",
        "service",
        "service",
        cfg.log_retention_days,
    );
    let secret_prefix = format!("keel/{}/{NAME}", env.name());
    let langfuse: Vec<(&str, Secret)> = [
        (
            "LANGFUSE_PUBLIC_KEY",
            "langfuse-public-key",
            "Langfuse public key",
        ),
        (
            "LANGFUSE_SECRET_KEY",
            "langfuse-secret-key",
            "Langfuse secret key",
        ),
    ]
    .into_iter()
    .map(|(var, name, what)| {
        let path = format!("{secret_prefix}/{name}");
        (
            var,
            Secret::at(
                scope,
                &key,
                name,
                &path,
                &format!("{what} of the metrics service (set out of band)"),
            ),
        )
    })
    .collect();
    let repo = EcrRepository::new(
        scope,
        &key,
        "service",
        &EcrRepositoryProps {
            encryption: if cfg.ecr_kms {
                EcrEncryption::Kms
            } else {
                EcrEncryption::Aes256
            },
            ..EcrRepositoryProps::releases(REPOSITORY.into(), env)
        },
    );

    let image = k8s::Image::pinned(&cfg.image, env.is_prod()).map_err(fail)?;
    let app = k8s::AppLabels {
        name: NAME.into(),
        instance: format!("{NAME}-{}", env.name()),
        version: k8s::Image::version_label(&cfg.image),
        component: "scoring".into(),
        part_of: "langfuse".into(),
    };
    let mut p = k8s::ServiceProps::new(app, NAMESPACE, image.clone());
    p.replicas = k8s::count(cfg.replicas).map_err(fail)?;
    p.ports = k8s::Ports {
        http: PORT,
        service_http: PORT,
        metrics: None,
    };
    p.probes = k8s::Probes {
        startup_path: "/health".into(),
        liveness_path: "/health".into(),
        readiness_path: "/ready".into(),
        startup_failure_threshold: 30,
    };
    p.resources = k8s::Resources {
        requests_cpu: "250m".into(),
        requests_memory: "256Mi".into(),
        limits_cpu: "500m".into(),
        limits_memory: "512Mi".into(),
    };
    let region = env.spec.region.clone();
    let settings = [
        ("LANGFUSE_URL", cfg.langfuse_url.clone()),
        ("AWS_REGION", region.clone()),
        ("GROUND_TRUTH_BUCKET", cfg.ground_truth_bucket.clone()),
        ("POLL_INTERVAL", "60000".into()),
        ("GROUND_TRUTH_CACHE_TTL", "900000".into()),
        ("LOG_LEVEL", cfg.log_level.as_str().into()),
        ("PORT", PORT.to_string()),
        ("MAX_TRACES_PER_POLL", "100".into()),
        ("RETRY_ATTEMPTS", "3".into()),
        ("RETRY_DELAY", "1000".into()),
        ("NODE_ENV", "production".into()),
        ("LOG_GROUP_NAME", format!("/keel/{}/service", scope.prefix)),
    ];
    p.config = settings
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for (var, secret) in &langfuse {
        p.secrets.env.push(k8s::SecretEnv {
            env: (*var).into(),
            source: k8s::SecretSource::SecretsManager {
                remote_key: secret.path().to_owned(),
                property: None,
            },
        });
    }
    // The stack's own store reads the Langfuse keys, and only its prefix.
    let store = cluster
        .secret_store(
            scope,
            &key,
            &StackSecretStoreProps {
                name: NAME,
                namespace: NAMESPACE,
                prefix: &secret_prefix,
                labels: &p.app.recommended().map_err(|e| fail(e.to_string()))?,
            },
        )
        .map_err(fail)?;
    p.secrets.store = Some(store.store);
    // Nothing calls the service from outside its pods' namespace in the seed; the
    // NetworkPolicy of its pods admits nothing and lets out only what it needs.
    p.network.http_from = Vec::new();
    p.network.metrics_from = Vec::new();
    // HTTPS anywhere: AWS APIs (S3, CloudWatch Logs) and Langfuse at `langfuse_url`.
    p.network.egress = vec![k8s::EgressPeer::https("0.0.0.0/0")];
    p.monitoring = None;
    p.suppressions.push(k8s::Suppression::new(
        "Deployment",
        "CKV_K8S_35",
        "the Langfuse keys arrive as env vars from a secretKeyRef (values synced by External Secrets), as the service reads them",
    ));
    let arn = |resource: String| format!("arn:{}:s3:::{resource}", partition(&region));
    let pods = cluster.workload_identity(
        scope,
        &mut p,
        vec![
            Statement::allow(
                "ReadGroundTruth",
                &["s3:GetObject"],
                vec![arn(format!("{}/*", cfg.ground_truth_bucket))],
            ),
            Statement::allow(
                "ListGroundTruth",
                &["s3:ListBucket"],
                vec![arn(cfg.ground_truth_bucket.clone())],
            ),
            Statement::allow(
                "WriteOwnLogs",
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                vec![format!("{}:*", logs.arn())],
            ),
        ],
    );
    // The seed's deploy role reads the Langfuse credentials (to check them before a
    // rollout) and the service's logs (to verify it), nothing else of the stack.
    let secrets: Vec<&Secret> = langfuse.iter().map(|(_, s)| s).collect();
    let mut deploy_statements = Secret::grant_read(scope, "ReadLangfuseCredentials", &secrets, &key);
    deploy_statements.push(Statement::allow(
        "ReadServiceLogs",
        &["logs:FilterLogEvents", "logs:GetLogEvents"],
        vec![format!("{}:*", logs.arn())],
    ));
    let deploy = cluster.deploy_role(
        scope,
        &cfg.deploy_repository,
        vec![repo.url().to_owned()],
        ClusterAccess::Group(k8s::deployer_group(NAME)),
        deploy_statements,
    );

    // The ServiceAccount the pods run as (the service bundle names it after the app).
    let service_account = p.app.name.clone();
    let out = &mut *scope.tf;
    out.output(
        "ecr_repository_url",
        "ECR repository of the service's images",
        repo.url_attr(),
        false,
    );
    // The seed's six outputs, by its names (the pods' role is IRSA or Pod Identity, as
    // the platform's `workload_identity` says).
    out.output(
        "github_actions_role_arn",
        "role the deploy workflow assumes (GitHub environment of the same name only)",
        deploy.arn(),
        false,
    );
    out.output(
        "metrics_service_irsa_role_arn",
        "role of the service's pods (IRSA or Pod Identity)",
        pods.arn(),
        false,
    );
    out.output(
        "eks_cluster_name",
        "EKS cluster the service runs on",
        cluster.cluster_name.clone(),
        false,
    );
    out.output(
        "k8s_namespace",
        "namespace of the service",
        NAMESPACE,
        false,
    );
    out.output(
        "k8s_service_account",
        "ServiceAccount of the service's pods",
        service_account,
        false,
    );
    for (var, secret) in &langfuse {
        out.output(
            &format!("{}_secret_arn", var.to_ascii_lowercase()),
            &format!("Secrets Manager ARN of {var} (set its value out of band)"),
            secret.arn(),
            false,
        );
    }
    p.namespace_policy =
        Some(k8s::NamespacePolicy::for_services(&[&p], 0).map_err(|e| fail(e.to_string()))?);
    let mut objects = store.objects;
    objects.extend(k8s::service(&p).map_err(|e| fail(e.to_string()))?);
    objects.push(
        k8s::dashboard::StackDashboard {
            stack: NAME,
            namespace: NAMESPACE,
            slos: None,
            db_connections: None,
        }
        .config_map(&p.app.recommended().map_err(|e| fail(e.to_string()))?)
        .map_err(|e| fail(e.to_string()))?,
    );
    let deployer = k8s::stack_deployer(NAME, env.name(), NAMESPACE, &objects)
        .map_err(|e| fail(e.to_string()))?;
    objects.extend(deployer);
    let mut stack = Stack::on_cluster(NAME, tf, objects, BTreeMap::new())
        .map_err(|e| fail(e.to_string()))?;
    stack.external.push(External::Service {
        what: "Langfuse".to_owned(),
        url: cfg.langfuse_url.clone(),
    });
    for (var, secret) in &langfuse {
        stack
            .external
            .push(secret.external(&format!("{var}, from Langfuse's project settings (API keys)"), None));
    }
    Ok(Some(stack))
}

/// Semantic checks of these settings in `spec`.
pub(crate) fn check(spec: &EnvFile, ms: &Settings, out: &mut Problems) {
    let p = "/stacks/metrics-service";
    if spec.stacks.platform.is_none() {
        out.push((
            p.into(),
            "stack metrics-service runs on the cluster of stack platform, which this environment does not synthesize: add stacks.platform".into(),
        ));
    }
    check::image(&ms.image, spec, REPOSITORY, &format!("{p}/image"), out);
    min_copies(
        ms.replicas,
        "replica",
        spec.tier,
        &format!("{p}/replicas"),
        out,
    );
    check::retention(
        ms.log_retention_days,
        &format!("{p}/log_retention_days"),
        out,
    );
}
