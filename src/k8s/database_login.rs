//! The database-login Job: creates or updates an application's own database login
//! (PostgreSQL or MySQL, [`crate::construct::db_client`]) from inside the cluster, where the
//! database is reachable, signed in as the RDS master user.
//!
//! Objects (rendered to their own folder, applied by the deploy plan's `database-login`
//! step before the stack's workloads):
//!
//! - a `SecretStore` reading AWS Secrets Manager as a ServiceAccount of the namespace,
//!   whose IRSA role is the login's own reader (the construct adds the ServiceAccount);
//! - an `ExternalSecret` that finds the RDS-managed master secret by its
//!   `aws:rds:primaryDBInstanceArn` tag, reads the login's password and the application's
//!   `DATABASE_URL` or host secret ([`HostSecret`]), and templates them into four keys (`host`,
//!   `master-username`, `master-password`, `app-password`): no value is in any file;
//! - a `NetworkPolicy` admitting nothing in and letting the Job's pods reach only DNS,
//!   HTTPS (the RDS CA bundle, fetched before connecting with full verification) and
//!   the database's port in the data subnets (the namespace denies everything else by default);
//! - the `Job`, named `database-login-<hash of its pod template>`: a changed spec is a
//!   new Job (a Job's template is immutable), and `ttlSecondsAfterFinished` removes a
//!   finished one, so the next deploy's apply creates it again and it re-runs. Its pod
//!   passes Pod Security `restricted`: non-root, read-only root file system, no
//!   capabilities, `RuntimeDefault` seccomp, no ServiceAccount token, requests and limits.
//!
//! The SQL is idempotent and re-sets the login's password from its secret on every run,
//! so re-running after a rotation of the login's password is the whole procedure (after
//! the stack's Terraform apply, which recomposes `DATABASE_URL` from the secret's current
//! value; then the consumers restart to read it).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext,
    Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::external_secret::{
    AwsSecretStore, DataFrom, ExternalSecret, ExternalSecretData, ExternalSecretSpec,
    ExternalSecretTarget, Find, RemoteRef, Rewrite, RewriteRegexp, SecretStoreKind, SecretStoreRef,
    SecretTemplate,
};
use super::network_policy::{EgressPeer, dns_egress, peer_egress, policy_types};
use super::{K8sError, Object, Rank, meta, quantity};
use crate::construct::db_client;
use crate::env::file::DbEngine;

/// Name of the step, the folder (`jobs/database-login/`) and the objects' base name.
pub const DATABASE_LOGIN: &str = "database-login";

/// Tag Amazon RDS puts on the master-user secret it manages: the instance's ARN.
pub const RDS_PRIMARY_INSTANCE_TAG: &str = "aws:rds:primaryDBInstanceArn";

/// Where the Job mounts its Secret.
const SECRET_DIR: &str = "/run/secrets/database-login";

/// Seconds a finished Job is kept (for its logs) before Kubernetes deletes it.
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 3600;

/// Options of [`database_login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseLoginJobProps {
    /// The stack (the `part-of` label).
    pub stack: String,
    /// The stack's instance in its environment, e.g. `analytics-api-prod` (labels).
    pub instance: String,
    /// The stack's namespace (created by the stack's `k8s/`).
    pub namespace: String,
    /// The database's engine (the client, its user and port).
    pub engine: DbEngine,
    /// The engine's client image, pinned by digest (`repo:tag@sha256:...`).
    pub image: String,
    /// Database name.
    pub database: String,
    /// The idempotent SQL the Job runs as the master user ([`db_client::run_lines`]).
    pub sql: String,
    /// The reader role and region of the login's own SecretStore.
    pub store: AwsSecretStore,
    /// Tags that find the master secret (see [`RDS_PRIMARY_INSTANCE_TAG`]).
    pub master_secret_tags: BTreeMap<String, String>,
    /// Secrets Manager name of the login's password.
    pub password_secret: String,
    /// The secret the writer's host name is read from.
    pub host_secret: HostSecret,
    /// The data subnets' CIDRs: the only destinations besides DNS.
    pub data_subnet_cidrs: Vec<String>,
    /// Namespace of the cluster DNS.
    pub dns_namespace: String,
}

/// The labels of a login's objects: the Job and its pods, its store and the store's
/// ServiceAccount, of `stack`'s `instance` (e.g. `analytics-api-prod`).
pub fn database_login_labels(stack: &str, instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            DATABASE_LOGIN.to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), instance.to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            "database-login".to_owned(),
        ),
        ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "keel".to_owned()),
        (super::labels::APP.to_owned(), DATABASE_LOGIN.to_owned()),
    ])
}

/// Where the login Job reads the writer's host name (it exists only after the apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSecret {
    /// The application's connection URL, at this Secrets Manager name: its host.
    Url(String),
    /// A secret holding only the host name (e.g. the application's `DB_HOST`).
    Host(String),
}

impl HostSecret {
    /// The secret's Secrets Manager name.
    pub fn path(&self) -> &str {
        match self {
            Self::Url(p) | Self::Host(p) => p,
        }
    }

    /// The ExternalSecret's key for it, and the template of `host` over that key.
    fn key_and_template(&self) -> (&'static str, &'static str) {
        match self {
            Self::Url(_) => ("url", "{{ (.url | urlParse).hostname }}"),
            Self::Host(_) => ("host", "{{ .host }}"),
        }
    }
}

/// The SecretStore, ExternalSecret, NetworkPolicy and Job of one login, and the Job's name
/// (for the plan's wait).
pub fn database_login(p: &DatabaseLoginJobProps) -> Result<(Vec<Object>, String), K8sError> {
    if !p.image.contains("@sha256:") {
        return Err(K8sError::InvalidProps {
            field: "database login image".to_owned(),
            found: format!("`{}`", p.image),
            expected: "an image pinned by digest (`repo:tag@sha256:...`)".to_owned(),
        });
    }
    if p.data_subnet_cidrs.is_empty() {
        return Err(K8sError::InvalidProps {
            field: "database login data_subnet_cidrs".to_owned(),
            found: "none".to_owned(),
            expected: "the CIDRs of the subnets the database lives in".to_owned(),
        });
    }
    let labels = database_login_labels(&p.stack, &p.instance);
    let selector = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            DATABASE_LOGIN.to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), p.instance.clone()),
    ]);
    let suppressions = [super::Suppression::new(
        "Job",
        "CKV_K8S_40",
        db_client::uid_reason(p.engine),
    )];
    let m = |kind: &str, name: &str| {
        meta(
            kind,
            name,
            Some(&p.namespace),
            &labels,
            BTreeMap::new(),
            &suppressions,
        )
    };

    let (host_key, host_template) = p.host_secret.key_and_template();
    let store = p
        .store
        .store_object("database login store", m("SecretStore", DATABASE_LOGIN)?)?;
    let external = ExternalSecret {
        api_version: "external-secrets.io/v1",
        kind: "ExternalSecret",
        metadata: m("ExternalSecret", DATABASE_LOGIN)?,
        spec: ExternalSecretSpec {
            // The master password rotates every 7 days: a short refresh keeps the copy
            // current for the next run.
            refresh_interval: "5m".to_owned(),
            secret_store_ref: SecretStoreRef {
                kind: SecretStoreKind::SecretStore,
                name: DATABASE_LOGIN.to_owned(),
            },
            target: ExternalSecretTarget {
                name: DATABASE_LOGIN.to_owned(),
                creation_policy: "Owner",
                template: Some(SecretTemplate {
                    engine_version: "v2",
                    data: BTreeMap::from([
                        ("host".to_owned(), host_template.to_owned()),
                        (
                            "master-username".to_owned(),
                            "{{ (.master | fromYaml).username }}".to_owned(),
                        ),
                        (
                            "master-password".to_owned(),
                            "{{ (.master | fromYaml).password }}".to_owned(),
                        ),
                        ("app-password".to_owned(), "{{ .app }}".to_owned()),
                    ]),
                }),
            },
            data: vec![
                ExternalSecretData {
                    secret_key: "app".to_owned(),
                    remote_ref: RemoteRef {
                        key: p.password_secret.clone(),
                        property: None,
                    },
                },
                ExternalSecretData {
                    secret_key: host_key.to_owned(),
                    remote_ref: RemoteRef {
                        key: p.host_secret.path().to_owned(),
                        property: None,
                    },
                },
            ],
            data_from: vec![DataFrom {
                find: Find {
                    tags: p.master_secret_tags.clone(),
                },
                rewrite: vec![Rewrite {
                    regexp: RewriteRegexp {
                        source: "^.*$".to_owned(),
                        target: "master".to_owned(),
                    },
                }],
            }],
        },
    };

    // DNS, HTTPS for the RDS CA bundle (AWS's trust store, a CDN without fixed
    // addresses), the database's port in the data subnets.
    let mut egress = vec![
        dns_egress(&p.dns_namespace)?,
        peer_egress("database login egress", &EgressPeer::https("0.0.0.0/0"))?,
    ];
    for cidr in &p.data_subnet_cidrs {
        egress.push(peer_egress(
            "database login egress",
            &EgressPeer {
                cidr: cidr.clone(),
                port: p.engine.port(),
                protocol: super::network_policy::Protocol::Tcp,
            },
        )?);
    }
    let policy = NetworkPolicy {
        metadata: m("NetworkPolicy", DATABASE_LOGIN)?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            }),
            policy_types: policy_types(),
            ingress: Some(Vec::new()),
            egress: Some(egress),
        }),
    };

    let template = pod_template(p, &labels)?;
    let name = format!("{DATABASE_LOGIN}-{}", template_hash(&template)?);
    let job = Job {
        metadata: m("Job", &name)?,
        spec: Some(JobSpec {
            backoff_limit: Some(4),
            active_deadline_seconds: Some(900),
            ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
            template,
            ..Default::default()
        }),
        status: None,
    };
    let objects = vec![
        store,
        Object::new(Rank::Secret, &external)?,
        Object::new(Rank::NetworkPolicy, &policy)?,
        Object::new(Rank::Workload, &job)?,
    ];
    Ok((objects, name))
}

/// The shell the container runs: the RDS CA bundle fetched, the four values from the
/// mounted Secret into the client's variables, then the SQL through the engine's client
/// (stops at the first error).
fn command(p: &DatabaseLoginJobProps) -> String {
    let fetch = db_client::fetch_lines(p.engine);
    let [host, user, password] = db_client::credential_vars(p.engine);
    let run = db_client::run_lines(p.engine, &p.database, &p.sql);
    format!(
        "set -eu\n{fetch}s={SECRET_DIR}\n{host}=$(cat \"$s/host\")\n{user}=$(cat \"$s/master-username\")\n{password}=$(cat \"$s/master-password\")\nAPP_PASSWORD=$(cat \"$s/app-password\")\nexport {host} {user} {password} APP_PASSWORD\n{run}"
    )
}

fn pod_template(
    p: &DatabaseLoginJobProps,
    labels: &BTreeMap<String, String>,
) -> Result<PodTemplateSpec, K8sError> {
    let seccomp = || SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..Default::default()
    };
    let env = |name: &str, value: &str| EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    };
    let resources = |cpu: &str, memory: &str| -> Result<_, K8sError> {
        Ok(BTreeMap::from([
            ("cpu".to_owned(), quantity("database login cpu", cpu)?),
            (
                "memory".to_owned(),
                quantity("database login memory", memory)?,
            ),
        ]))
    };
    let uid = db_client::uid(p.engine);
    let container = Container {
        name: DATABASE_LOGIN.to_owned(),
        image: Some(p.image.clone()),
        image_pull_policy: Some("Always".to_owned()),
        command: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), command(p)]),
        env: Some(
            db_client::env(p.engine, &p.database)
                .iter()
                .map(|(k, v)| env(k, v))
                .collect(),
        ),
        resources: Some(ResourceRequirements {
            requests: Some(resources("50m", "64Mi")?),
            limits: Some(resources("200m", "128Mi")?),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: Some(uid),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: Some(seccomp()),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "credentials".to_owned(),
                mount_path: SECRET_DIR.to_owned(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "tmp".to_owned(),
                mount_path: "/tmp".to_owned(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".to_owned()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(uid),
                run_as_group: Some(uid),
                fs_group: Some(uid),
                seccomp_profile: Some(seccomp()),
                ..Default::default()
            }),
            volumes: Some(vec![
                Volume {
                    name: "credentials".to_owned(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(DATABASE_LOGIN.to_owned()),
                        default_mode: Some(0o440),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "tmp".to_owned(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        size_limit: Some(quantity("tmp", "16Mi")?),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }),
    })
}

/// The first 10 hex digits of the SHA-256 of the pod template's JSON.
fn template_hash(template: &PodTemplateSpec) -> Result<String, K8sError> {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(template).map_err(|e| K8sError::Serialize {
        what: "database login pod template".to_owned(),
        message: e.to_string(),
    })?;
    let digest = Sha256::digest(&json);
    Ok(digest.iter().take(5).map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> DatabaseLoginJobProps {
        DatabaseLoginJobProps {
            stack: "analytics-api".into(),
            instance: "analytics-api-prod".into(),
            namespace: "analytics".into(),
            engine: DbEngine::Postgres,
            image: "docker.io/library/postgres:17-alpine@sha256:742f40ea20b9ff2ff31db5458d127452988a2164df9e17441e191f3b72252193".into(),
            database: "analytics".into(),
            sql: "SELECT 1;\n".into(),
            store: AwsSecretStore {
                region: "us-east-1".into(),
                auth: crate::k8s::StoreAuth::ServiceAccount("database-login-secrets".into()),
            },
            master_secret_tags: BTreeMap::from([(
                RDS_PRIMARY_INSTANCE_TAG.to_owned(),
                "arn:aws:rds:us-east-1:111122223333:db:aapi-prod-db".to_owned(),
            )]),
            password_secret: "analytics-api/prod/database-app-password".into(),
            host_secret: HostSecret::Url("analytics-api/prod/database-url".into()),
            data_subnet_cidrs: vec!["10.130.112.0/24".into(), "10.130.113.0/24".into()],
            dns_namespace: "kube-system".into(),
        }
    }

    fn kind<'a>(objects: &'a [Object], kind: &str) -> &'a serde_json::Value {
        &objects
            .iter()
            .find(|o| o.kind == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
            .content
    }

    #[test]
    fn job_passes_pod_security_restricted() {
        let (objects, name) = database_login(&props()).unwrap();
        let job = kind(&objects, "Job");
        assert_eq!(job["metadata"]["name"], name.as_str());
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let containers = pod["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        let c = &containers[0];
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert!(sc["capabilities"]["add"].is_null());
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert!(sc["runAsUser"].as_i64().unwrap() > 0);
        for k in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(c["resources"][k][r].is_string(), "{k}.{r}");
            }
        }
        // No secret value in the object: only the mounted Secret's name.
        assert!(
            c["env"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["valueFrom"].is_null())
        );
        assert!(c["image"].as_str().unwrap().contains("@sha256:"));
    }

    #[test]
    fn network_policy_admits_only_postgres_to_the_data_subnets() {
        let p = props();
        let (objects, _) = database_login(&p).unwrap();
        let policy = kind(&objects, "NetworkPolicy");
        let spec = &policy["spec"];
        assert_eq!(
            spec["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
        assert_eq!(spec["ingress"], serde_json::json!([]));
        assert_eq!(
            spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
            DATABASE_LOGIN
        );
        let egress = spec["egress"].as_array().unwrap();
        // DNS first, HTTPS for the CA bundle, then exactly one rule per data subnet: TCP
        // 5432 to that CIDR.
        assert_eq!(egress.len(), 2 + p.data_subnet_cidrs.len());
        assert!(egress[0]["to"][0]["ipBlock"].is_null());
        assert_eq!(
            egress[1]["ports"],
            serde_json::json!([{"port": 443, "protocol": "TCP"}])
        );
        for (rule, cidr) in egress[2..].iter().zip(&p.data_subnet_cidrs) {
            assert_eq!(rule["to"].as_array().unwrap().len(), 1);
            assert_eq!(rule["to"][0]["ipBlock"]["cidr"], cidr.as_str());
            assert_eq!(
                rule["ports"],
                serde_json::json!([{"port": 5432, "protocol": "TCP"}])
            );
        }
    }

    #[test]
    fn job_name_follows_its_spec() {
        let (_, a) = database_login(&props()).unwrap();
        let (_, same) = database_login(&props()).unwrap();
        let mut changed = props();
        changed.sql = "SELECT 2;\n".into();
        let (_, b) = database_login(&changed).unwrap();
        assert_eq!(a, same);
        assert_ne!(a, b);
        assert!(a.starts_with("database-login-") && a.len() == "database-login-".len() + 10);
    }

    #[test]
    fn secrets_come_from_the_store_by_reference() {
        let (objects, _) = database_login(&props()).unwrap();
        let es = kind(&objects, "ExternalSecret");
        assert_eq!(
            es["spec"]["dataFrom"][0]["find"]["tags"][RDS_PRIMARY_INSTANCE_TAG],
            "arn:aws:rds:us-east-1:111122223333:db:aapi-prod-db"
        );
        assert_eq!(es["spec"]["secretStoreRef"]["name"], DATABASE_LOGIN);
        let keys: Vec<&String> = es["spec"]["target"]["template"]["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            keys,
            ["app-password", "host", "master-password", "master-username"]
        );
    }

    #[test]
    fn a_mysql_login_runs_mysql_as_its_user_to_3306_with_the_host_secret() {
        let mut p = props();
        p.engine = DbEngine::Mysql;
        p.image = db_client::MYSQL_CLIENT_IMAGE.into();
        p.host_secret = HostSecret::Host("keel/prod/whatsthecraic/db-host".into());
        let (objects, _) = database_login(&p).unwrap();
        let pod = &kind(&objects, "Job")["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsUser"], 999);
        let script = pod["containers"][0]["command"][2].as_str().unwrap();
        assert!(
            script.contains("\nDB_HOST=$(cat \"$s/host\")\n"),
            "{script}"
        );
        assert!(
            script.contains("| mysql --defaults-extra-file="),
            "{script}"
        );
        assert!(script.contains("--ssl-mode=VERIFY_IDENTITY"), "{script}");
        assert!(!script.contains("psql"), "{script}");
        let egress = kind(&objects, "NetworkPolicy")["spec"]["egress"].clone();
        assert_eq!(
            egress[2]["ports"],
            serde_json::json!([{"port": 3306, "protocol": "TCP"}])
        );
        let es = kind(&objects, "ExternalSecret");
        assert_eq!(
            es["spec"]["target"]["template"]["data"]["host"],
            "{{ .host }}"
        );
        assert_eq!(es["spec"]["data"][1]["secretKey"], "host");
        assert_eq!(
            es["spec"]["data"][1]["remoteRef"]["key"],
            "keel/prod/whatsthecraic/db-host"
        );
    }

    #[test]
    fn refuses_an_unpinned_image() {
        let mut p = props();
        p.image = "postgres:17".into();
        assert!(database_login(&p).is_err());
    }
}
