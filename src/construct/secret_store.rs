//! A stack's own External Secrets store: a namespaced `SecretStore` that authenticates with
//! a ServiceAccount of its own namespace (IRSA), and the reader role that trusts exactly
//! that ServiceAccount and reads exactly the stack's secret prefix.
//!
//! External Secrets resolves a namespaced store's ServiceAccount in the store's namespace,
//! and the controller's own role reads no secret, so a store of another namespace can
//! neither use this ServiceAccount nor assume the reader: no namespace reads another
//! stack's secrets.
//!
//! See <https://external-secrets.io/latest/provider/aws-secrets-manager/#eks-service-account-credentials>.

use std::collections::BTreeMap;

use super::Scope;
use super::iam::{Role, Statement};
use super::kms::KmsKey;
use super::workload_identity::{Mechanism, WorkloadIdentity};
use crate::k8s::{self, K8sError, Object};

/// Options for [`stack_secret_store`].
#[derive(Debug, Clone)]
pub struct StackSecretStoreProps<'a> {
    /// Name of the `SecretStore`, e.g. the stack's name; its ServiceAccount is
    /// `<name>-secrets`.
    pub name: &'a str,
    /// Namespace of the store, its ServiceAccount and the ExternalSecrets that read it.
    pub namespace: &'a str,
    /// The stack's secret prefix, e.g. `keel/prod/aegistickets`: the reader may read
    /// `<prefix>/*` and nothing else.
    pub prefix: &'a str,
    /// Labels of the store and its ServiceAccount.
    pub labels: &'a BTreeMap<String, String>,
}

/// What [`stack_secret_store`] makes.
#[derive(Debug, Clone)]
pub struct StackSecretStore {
    /// The reader role (`<stack prefix>-secrets-reader`).
    pub role: Role,
    /// The ServiceAccount and the `SecretStore`, for the stack's `k8s/`.
    pub objects: Vec<Object>,
    /// The reference ExternalSecrets use.
    pub store: k8s::SecretStoreRef,
}

/// The stack's store and reader role (`aws_iam_role.secrets_reader`): read and describe
/// `<prefix>/*`, decrypt with `key` through Secrets Manager only; trusted through the
/// cluster's OIDC provider (`oidc`) by the store's ServiceAccount only.
pub fn stack_secret_store(
    scope: &mut Scope<'_>,
    key: &KmsKey,
    oidc: Mechanism,
    props: &StackSecretStoreProps<'_>,
) -> Result<StackSecretStore, K8sError> {
    if props.prefix.is_empty() || props.prefix.ends_with('/') || props.prefix.contains('*') {
        return Err(K8sError::InvalidProps {
            field: "secret store prefix".to_owned(),
            found: format!("`{}`", props.prefix),
            expected: "a secret name prefix without `*` or a trailing `/`, e.g. `keel/prod/app`"
                .to_owned(),
        });
    }
    let region = scope.tf.region().to_owned();
    let identity = WorkloadIdentity {
        id: "secrets_reader".to_owned(),
        role_suffix: "secrets-reader".to_owned(),
        namespace: props.namespace.to_owned(),
        service_account: format!("{}-secrets", props.name),
        managed: vec![],
        statements: vec![
            Statement::allow(
                "ReadThisStacksSecrets",
                &[
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:DescribeSecret",
                ],
                vec![format!(
                    "arn:{}:secretsmanager:{region}:{}:secret:{}/*",
                    scope.partition(),
                    scope.tf.account_id(),
                    props.prefix
                )],
            ),
            Statement::allow(
                "DecryptThroughSecretsManager",
                &["kms:Decrypt"],
                vec![key.arn().to_string()],
            )
            .when(
                "StringEquals",
                "kms:ViaService",
                vec![format!("secretsmanager.{region}.amazonaws.com")],
            ),
        ],
    };
    let role = identity.create(scope, &oidc);
    let account = identity.service_account_object(scope, &oidc, props.labels)?;
    let store = k8s::AwsSecretStore {
        region,
        auth: store_auth(&identity, &oidc)?,
    };
    let store_object = k8s::secret_store(props.name, props.namespace, &store, props.labels)?;
    Ok(StackSecretStore {
        role,
        objects: vec![account, store_object],
        store: k8s::SecretStoreRef {
            kind: k8s::SecretStoreKind::SecretStore,
            name: props.name.to_owned(),
        },
    })
}

/// How a namespaced store authenticates as `identity`: with its ServiceAccount's web
/// identity (IRSA), never with the controller's own role.
pub fn store_auth(
    identity: &WorkloadIdentity,
    oidc: &Mechanism,
) -> Result<k8s::StoreAuth, K8sError> {
    match oidc {
        Mechanism::Irsa { .. } => Ok(k8s::StoreAuth::ServiceAccount(
            identity.service_account.clone(),
        )),
        // Pod Identity gives the controller, not a store, the role; a namespaced store
        // then has no credentials of its own. Stacks pass IRSA (see `OnCluster`).
        Mechanism::PodIdentity { .. } => Err(K8sError::InvalidProps {
            field: "secret store identity".to_owned(),
            found: "EKS Pod Identity".to_owned(),
            expected: "IRSA: External Secrets authenticates a namespaced store with its ServiceAccount's web identity".to_owned(),
        }),
    }
}
