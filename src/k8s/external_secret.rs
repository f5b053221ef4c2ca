//! Secret references: the `ExternalSecret` custom resource (External Secrets Operator,
//! `external-secrets.io/v1`) reading AWS Secrets Manager, or a named pre-existing Secret.
//! Only references are rendered, never a secret value.
//!
//! See <https://external-secrets.io/latest/api/externalsecret/>.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::config_map::validate_env_name;
use super::construct::Ctx;
use super::{K8sError, Object, Rank};

/// `ExternalSecret` (external-secrets.io/v1): makes the operator create a Secret from a store.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecret {
    /// Always `external-secrets.io/v1` (v1beta1 is no longer served).
    pub api_version: &'static str,
    /// Always `ExternalSecret`.
    pub kind: &'static str,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// What to read and what to create.
    pub spec: ExternalSecretSpec,
}

/// `ExternalSecret.spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    /// How often the operator re-reads the store, e.g. `1h`.
    pub refresh_interval: String,
    /// The (Cluster)SecretStore to read from.
    pub secret_store_ref: SecretStoreRef,
    /// The Secret to create.
    pub target: ExternalSecretTarget,
    /// One entry per key of the created Secret.
    pub data: Vec<ExternalSecretData>,
    /// Secrets found by tag instead of by name, each renamed to one key. Default: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<DataFrom>,
}

/// `ExternalSecret.spec.dataFrom[]`: secrets found by their tags, each renamed (`rewrite`)
/// to one key of the data the template reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataFrom {
    /// Which secrets.
    pub find: Find,
    /// How each found secret's key is renamed.
    pub rewrite: Vec<Rewrite>,
}

/// `dataFrom[].find`: secrets carrying all these tags (needs `secretsmanager:ListSecrets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Find {
    /// Tag name -> value.
    pub tags: BTreeMap<String, String>,
}

/// `dataFrom[].rewrite[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// A regular-expression rename.
    pub regexp: RewriteRegexp,
}

/// `rewrite[].regexp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RewriteRegexp {
    /// The pattern (Go RE2).
    pub source: String,
    /// What it becomes.
    pub target: String,
}

/// `target.template`: the created Secret's keys as Go templates over the fetched data
/// (engine v2; External Secrets' functions such as `fromYaml` and sprig's `urlParse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// Always `v2`.
    pub engine_version: &'static str,
    /// Key -> template.
    pub data: BTreeMap<String, String>,
}

/// Which store an ExternalSecret reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretStoreRef {
    /// Namespaced `SecretStore` or `ClusterSecretStore`.
    pub kind: SecretStoreKind,
    /// The store's name, e.g. `analytics-api-secrets`.
    pub name: String,
}

/// The kind of store an ExternalSecret reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SecretStoreKind {
    /// A store in the ExternalSecret's namespace.
    SecretStore,
    /// A cluster-wide store.
    ClusterSecretStore,
}

/// `ExternalSecret.spec.target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTarget {
    /// Name of the Secret the operator creates.
    pub name: String,
    /// `Owner`: the Secret is owned by (and deleted with) the ExternalSecret.
    pub creation_policy: &'static str,
    /// The Secret's keys as templates over the fetched data. Default: the data as fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplate>,
}

/// `ExternalSecret.spec.data[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// Key in the created Secret.
    pub secret_key: String,
    /// Where the value comes from.
    pub remote_ref: RemoteRef,
}

/// `ExternalSecret.spec.data[].remoteRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteRef {
    /// Secrets Manager secret name or ARN.
    pub key: String,
    /// JSON property inside the secret's value, if it holds JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// Where one secret environment variable comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An AWS Secrets Manager secret, read by the ExternalSecret into the app's Secret.
    SecretsManager {
        /// Secret name or ARN, e.g. `prod/analytics-api/database-url`.
        remote_key: String,
        /// JSON property inside the secret's value. Default: the whole value.
        property: Option<String>,
    },
    /// A Secret that already exists in the namespace (created outside keel).
    Existing {
        /// The Secret's name.
        secret_name: String,
        /// The key inside it.
        key: String,
    },
}

/// One environment variable whose value is secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    /// Variable name, e.g. `DATABASE_URL`.
    pub env: String,
    /// Where the value comes from.
    pub source: SecretSource,
}

/// A namespaced `SecretStore` reading AWS Secrets Manager with a role that may read only
/// one stack's secrets, so no cluster-wide store can read every stack's secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSecretStore {
    /// AWS region of the secrets.
    pub region: String,
    /// How the store gets the reader role.
    pub auth: StoreAuth,
}

/// How a namespaced store gets its reader role. There is no variant in which the External
/// Secrets controller assumes a role with its own credentials: any namespace's store could
/// name such a role, so its trust alone would guard it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAuth {
    /// The web identity (IRSA) of this ServiceAccount of the store's own namespace, whose
    /// annotation names the role: a store of another namespace cannot use it.
    ServiceAccount(String),
}

impl AwsSecretStore {
    /// The namespaced `SecretStore` object with `metadata`; `field` names the setting in
    /// errors.
    pub(super) fn store_object(
        &self,
        field: &str,
        metadata: ObjectMeta,
    ) -> Result<Object, K8sError> {
        let StoreAuth::ServiceAccount(name) = &self.auth;
        if name.is_empty() {
            return Err(K8sError::InvalidProps {
                field: field.to_owned(),
                found: "an empty ServiceAccount name".to_owned(),
                expected:
                    "the ServiceAccount of the store's namespace whose role reads the secrets"
                        .to_owned(),
            });
        }
        let auth = AwsAuth {
            jwt: JwtAuth {
                service_account_ref: ServiceAccountRef {
                    name: name.clone(),
                    namespace: None,
                },
            },
        };
        if self.region.trim().is_empty() {
            return Err(K8sError::InvalidProps {
                field: field.to_owned(),
                found: "an empty region".to_owned(),
                expected: "the secrets' AWS region".to_owned(),
            });
        }
        let store = SecretStore {
            api_version: "external-secrets.io/v1",
            kind: "SecretStore",
            metadata,
            spec: SecretStoreSpec {
                provider: SecretStoreProvider {
                    aws: AwsProvider {
                        service: "SecretsManager",
                        region: self.region.clone(),
                        auth,
                    },
                },
            },
        };
        Object::new(Rank::Secret, &store)
    }
}

/// The `SecretStore` `name` in `namespace` for `store`, labelled `labels`.
pub fn secret_store(
    name: &str,
    namespace: &str,
    store: &AwsSecretStore,
    labels: &BTreeMap<String, String>,
) -> Result<Object, K8sError> {
    let metadata = super::meta(
        "SecretStore",
        name,
        Some(namespace),
        labels,
        BTreeMap::new(),
        &[],
    )?;
    store.store_object("secret store", metadata)
}

/// `SecretStore` (external-secrets.io/v1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretStore {
    /// Always `external-secrets.io/v1`.
    pub api_version: &'static str,
    /// Always `SecretStore`.
    pub kind: &'static str,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The provider.
    pub spec: SecretStoreSpec,
}

/// `SecretStore.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretStoreSpec {
    /// Where secrets come from.
    pub provider: SecretStoreProvider,
}

/// `SecretStore.spec.provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretStoreProvider {
    /// AWS.
    pub aws: AwsProvider,
}

/// `SecretStore.spec.provider.aws`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsProvider {
    /// Always `SecretsManager`.
    pub service: &'static str,
    /// Region.
    pub region: String,
    /// The store's ServiceAccount, whose web identity the controller uses (never its own
    /// credentials).
    pub auth: AwsAuth,
}

/// `provider.aws.auth`: a ServiceAccount's web identity (IRSA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsAuth {
    /// The token of this ServiceAccount.
    pub jwt: JwtAuth,
}

/// `provider.aws.auth.jwt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuth {
    /// The ServiceAccount.
    pub service_account_ref: ServiceAccountRef,
}

/// A ServiceAccount by name and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAccountRef {
    /// Name.
    pub name: String,
    /// Namespace; none for a namespaced store, which uses its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Secret environment variables and the store they are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsProps {
    /// The store the ExternalSecret reads: the stack's own `SecretStore` (see
    /// `construct::secret_store`). Default: none, which is refused as soon as a variable
    /// comes from Secrets Manager (every caller names its store; there is no cluster-wide
    /// one).
    pub store: Option<SecretStoreRef>,
    /// How often the operator re-reads the store. Default: `1h`.
    pub refresh_interval: String,
    /// The variables. Default: none.
    pub env: Vec<SecretEnv>,
}

impl Default for SecretsProps {
    fn default() -> Self {
        Self {
            store: None,
            refresh_interval: "1h".to_owned(),
            env: Vec::new(),
        }
    }
}

/// Name of the Secret the ExternalSecret of application `name` creates: `<name>-secrets`.
pub fn target_secret_name(name: &str) -> String {
    format!("{name}-secrets")
}

/// `(env var, secret name, key)` for each secret variable: what the Deployment references.
pub(super) fn env_refs(ctx: &Ctx<'_>) -> Result<Vec<(String, String, String)>, K8sError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut refs = Vec::new();
    for var in &ctx.props.secrets.env {
        validate_env_name("secrets.env", &var.env)?;
        if !seen.insert(var.env.as_str()) || ctx.props.config.contains_key(&var.env) {
            return Err(K8sError::InvalidProps {
                field: "secrets.env".to_owned(),
                found: format!("`{}` more than once (or also in config)", var.env),
                expected: "each environment variable once".to_owned(),
            });
        }
        let (secret, key) = match &var.source {
            SecretSource::SecretsManager { .. } => {
                (target_secret_name(ctx.name()), var.env.clone())
            }
            SecretSource::Existing { secret_name, key } => {
                super::labels::validate_dns_subdomain("secret name", secret_name)?;
                validate_env_name("secret key", key)?;
                (secret_name.clone(), key.clone())
            }
        };
        refs.push((var.env.clone(), secret, key));
    }
    Ok(refs)
}

/// The ExternalSecret (and the app's own SecretStore), or nothing when no variable comes
/// from Secrets Manager.
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Vec<Object>, K8sError> {
    let secrets = &ctx.props.secrets;
    let data: Vec<ExternalSecretData> = secrets
        .env
        .iter()
        .filter_map(|var| match &var.source {
            SecretSource::SecretsManager {
                remote_key,
                property,
            } => Some(ExternalSecretData {
                secret_key: var.env.clone(),
                remote_ref: RemoteRef {
                    key: remote_key.clone(),
                    property: property.clone(),
                },
            }),
            SecretSource::Existing { .. } => None,
        })
        .collect();
    if data.is_empty() {
        return Ok(Vec::new());
    }
    for d in &data {
        if d.remote_ref.key.trim().is_empty() {
            return Err(K8sError::InvalidProps {
                field: format!("secrets.env {} remote_key", d.secret_key),
                found: "an empty key".to_owned(),
                expected: "a Secrets Manager secret name or ARN".to_owned(),
            });
        }
    }
    let store_ref = secrets
        .store
        .clone()
        .ok_or_else(|| K8sError::InvalidProps {
            field: "secrets.store".to_owned(),
            found: "no store".to_owned(),
            expected: "the stack's own SecretStore (construct::secret_store), named by the caller"
                .to_owned(),
        })?;
    super::labels::validate_dns_subdomain("secrets.store.name", &store_ref.name)?;
    let interval_ok = secrets.refresh_interval.len() > 1
        && secrets.refresh_interval.ends_with(['s', 'm', 'h'])
        && secrets.refresh_interval[..secrets.refresh_interval.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_digit());
    if !interval_ok {
        return Err(K8sError::InvalidProps {
            field: "secrets.refresh_interval".to_owned(),
            found: format!("`{}`", secrets.refresh_interval),
            expected: "a duration like `30m` or `1h`".to_owned(),
        });
    }
    let mut objects = Vec::new();
    let external = ExternalSecret {
        api_version: "external-secrets.io/v1",
        kind: "ExternalSecret",
        metadata: ctx.meta("ExternalSecret", ctx.name(), BTreeMap::new())?,
        spec: ExternalSecretSpec {
            refresh_interval: secrets.refresh_interval.clone(),
            secret_store_ref: store_ref,
            target: ExternalSecretTarget {
                name: target_secret_name(ctx.name()),
                creation_policy: "Owner",
                template: None,
            },
            data,
            data_from: Vec::new(),
        },
    };
    objects.push(Object::new(Rank::Secret, &external)?);
    Ok(objects)
}
