//! Secrets Manager secrets whose values are set out of band: keel creates the container,
//! encrypted with the stack's key, and never writes a value into any generated file.

use super::kms::KmsKey;
use super::{Scope, local_name};
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;
use crate::tf::aws::data::{
    SecretsmanagerRandomPassword, SecretsmanagerSecretVersion as CurrentVersion,
    SecretsmanagerSecretVersions,
};
use crate::tf::aws::resource::{SecretsmanagerSecret, SecretsmanagerSecretVersion};
use crate::tf::bind::{Lifecycle, Precondition, Val};

/// One secret.
#[derive(Debug, Clone)]
pub struct Secret {
    secret: Ref,
    path: String,
}

/// `aws_secretsmanager_secret.<id>` named `path`, encrypted with `key`; deleted secrets
/// stay recoverable for 30 days in prod, 7 elsewhere.
fn secret_resource(
    scope: &mut Scope<'_>,
    key: &KmsKey,
    id: &str,
    path: &str,
    description: &str,
    rotation: &'static str,
) -> Ref {
    let secret = SecretsmanagerSecret::new()
        .name(path)
        .description(description)
        .kms_key_id(key.arn())
        .recovery_window_in_days(if scope.prod { 30 } else { 7 });
    let rotation = [Suppression {
        check: "CKV2_AWS_57",
        reason: rotation,
    }];
    scope
        .tf
        .add_with("secrets", id, secret, &rotation)
        .into_ref()
}

impl Secret {
    /// Creates `aws_secretsmanager_secret.<id>` named `<prefix>/<name>`.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, name: &str, description: &str) -> Secret {
        let path = format!(
            "{}/{}",
            scope.prefix,
            name.to_ascii_lowercase().replace('_', "-")
        );
        Secret::at(scope, key, name, &path, description)
    }

    /// Creates `aws_secretsmanager_secret.<id>` named `path` (e.g. under `keel/<env>/`,
    /// which the stack's own SecretStore may read).
    pub fn at(
        scope: &mut Scope<'_>,
        key: &KmsKey,
        id: &str,
        path: &str,
        description: &str,
    ) -> Secret {
        let secret = secret_resource(
            scope,
            key,
            &local_name(id),
            path,
            description,
            "third-party credential issued by its provider; rotated there, then stored here by the operator",
        );
        Secret {
            secret,
            path: path.to_owned(),
        }
    }

    /// The secret's ARN.
    pub fn arn(&self) -> Expr {
        self.secret.arn()
    }

    /// The secret's name in Secrets Manager, e.g. `lgp-prod/jira-api-token`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Statements that let a role read exactly `secrets` (value and description) and
    /// decrypt them with `key` through Secrets Manager only (CDK `grantRead`).
    pub fn grant_read(
        scope: &Scope<'_>,
        sid: &str,
        secrets: &[&Secret],
        key: &KmsKey,
    ) -> Vec<super::iam::Statement> {
        use super::iam::Statement;
        vec![
            Statement::allow(
                &format!("{sid}Values"),
                &[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                ],
                secrets.iter().map(|s| s.arn().to_string()).collect(),
            ),
            Statement::allow(
                &format!("{sid}Decrypt"),
                &["kms:Decrypt"],
                vec![key.arn().to_string()],
            )
            .when(
                "StringEquals",
                "kms:ViaService",
                vec![format!(
                    "secretsmanager.{}.amazonaws.com",
                    scope.tf.region()
                )],
            ),
        ]
    }

    /// The secret as an external dependency of the deploy: keel creates it empty, a
    /// person fills it (`what` it holds; `how` defaults to `put-secret-value`).
    pub fn external(&self, what: &str, how: Option<&str>) -> crate::plan::External {
        let how = how.map_or_else(
            || {
                format!(
                    "{what}: aws secretsmanager put-secret-value --secret-id {} --secret-string ...",
                    self.path
                )
            },
            |h| format!("{what}: {h}"),
        );
        crate::plan::External::SecretValue {
            name: self.path.clone(),
            how,
        }
    }

    /// A `lifecycle.precondition` for the resource that starts consumers of this secret:
    /// the apply stops there, saying which secret to fill, while the secret has no value
    /// yet (on the first apply, keel creates it empty), instead of starting tasks that
    /// fail to read it and are replaced again and again. Reads version ids only, never a
    /// value.
    pub fn require_value(&self, scope: &mut Scope<'_>) -> Precondition {
        let versions = scope.tf.add(
            "secrets",
            self.secret.name(),
            SecretsmanagerSecretVersions::new(self.secret.id()),
        );
        // A secret without versions has a null list (length(null) would fail the apply
        // with a type error instead of this message).
        let has_value = Expr::raw(format!(
            "try(length({}), 0) > 0",
            versions.versions().expr().as_hcl()
        ));
        Precondition::new(
            has_value,
            format!(
                "secret {} has no value yet: set it (aws secretsmanager put-secret-value --secret-id {} --secret-string ...), then apply again",
                self.path, self.path
            ),
        )
    }
}

/// A secret whose value Terraform generates once (64 letters and digits, from Secrets
/// Manager's own generator) and then leaves alone, so an operator can rotate it in place.
/// No value appears in any generated file; it lives in the encrypted Terraform state.
///
/// Its [`value`](GeneratedSecret::value) is the secret's current value (`AWSCURRENT`, read
/// on every plan), not the version Terraform created: that version ignores `secret_string`
/// and keeps reading what it first wrote, so whatever is composed from it (a
/// `DATABASE_URL`, a cache's AUTH token) would never follow a rotation.
#[derive(Debug, Clone)]
pub struct GeneratedSecret {
    id: String,
    secret: Ref,
    /// The created version's `secret_id`: reading through it waits for the version.
    secret_id: Expr,
    /// `data.aws_secretsmanager_secret_version.<id>.secret_string`, once something reads it.
    current: Option<Expr>,
}

impl GeneratedSecret {
    /// Creates the secret `<path>` (e.g. `analytics-api/prod/jwt-secret`) with a generated
    /// value.
    pub fn new(
        scope: &mut Scope<'_>,
        key: &KmsKey,
        id: &str,
        path: &str,
        description: &str,
    ) -> Self {
        let id = local_name(id);
        let random = SecretsmanagerRandomPassword::new()
            .password_length(64)
            .exclude_punctuation(true);
        let random = scope.tf.add("secrets", &id, random);
        let secret = secret_resource(
            scope,
            key,
            &id,
            path,
            description,
            "rotated by the operator runbook together with its consumers; no rotation Lambda in this stack",
        );
        // Generated once; a new random value on every plan must not replace it.
        let version = written_once(&secret, random.random_password());
        let secret_id = scope.tf.add("secrets", &id, version).secret_id().into();
        GeneratedSecret {
            id,
            secret,
            secret_id,
            current: None,
        }
    }

    /// The secret's ARN.
    pub fn arn(&self) -> Expr {
        self.secret.arn()
    }

    /// The secret's current value, the generated one until an operator rotates it (a
    /// reference; it never appears in a file). The first call adds the data source that
    /// reads it: through the created version's `secret_id`, so it is read after the apply
    /// that creates the version, and on every later plan.
    pub fn value(&mut self, scope: &mut Scope<'_>) -> Expr {
        if let Some(current) = &self.current {
            return current.clone();
        }
        let data = CurrentVersion::new(self.secret_id.clone()).version_stage("AWSCURRENT");
        let current: Expr = scope
            .tf
            .add("secrets", &self.id, data)
            .secret_string()
            .into();
        self.current = Some(current.clone());
        current
    }

    /// Records that the secret's resource was `old_id` before (a `moved` block), so that
    /// Terraform keeps the secret: deleting it would reserve its name for the recovery
    /// window, and creating it again under that name would fail.
    pub fn moved_from(&self, scope: &mut Scope<'_>, old_id: &str) {
        scope.tf.moved(&self.secret, &local_name(old_id));
    }
}

/// The first version of `secret`, holding `value`; Terraform never writes it again, so an
/// operator may set the secret in place.
fn written_once(secret: &Ref, value: impl Into<Val<String>>) -> SecretsmanagerSecretVersion {
    SecretsmanagerSecretVersion::new(secret.id())
        .secret_string(value)
        .lifecycle(Lifecycle::new().ignore_changes(["secret_string".to_owned()]))
}

/// A secret Terraform creates holding `initial`, a fixed value that is no secret (e.g. a JSON
/// document whose properties are empty), and then leaves alone: an optional value that an
/// operator sets in place when needed, which its readers can always read (an External
/// Secrets sync fails on a secret without a value, or on a missing JSON property). Returns
/// the secret's ARN.
pub fn seeded_secret(
    scope: &mut Scope<'_>,
    key: &KmsKey,
    id: &str,
    path: &str,
    description: &str,
    initial: &str,
) -> Expr {
    let id = local_name(id);
    let secret = secret_resource(
        scope,
        key,
        &id,
        path,
        description,
        "set by the operator runbook when needed; no rotation Lambda in this stack",
    );
    scope
        .tf
        .add("secrets", &id, written_once(&secret, initial.to_owned()));
    secret.arn()
}

/// A secret whose value Terraform composes from references (e.g. a connection URL with a
/// generated password), kept current on every apply.
pub fn composed_secret(
    scope: &mut Scope<'_>,
    key: &KmsKey,
    id: &str,
    path: &str,
    description: &str,
    value: String,
) -> Expr {
    let id = local_name(id);
    let secret = secret_resource(
        scope,
        key,
        &id,
        path,
        description,
        "derived from other secrets by Terraform; it changes when they are rotated and re-applied",
    );
    scope.tf.add(
        "secrets",
        &id,
        SecretsmanagerSecretVersion::new(secret.id()).secret_string(value),
    );
    secret.arn()
}
