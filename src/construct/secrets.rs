//! Secrets Manager secrets whose values are set out of band: keel creates the container,
//! encrypted with the stack's key, and never writes a value into any generated file.

use serde_json::json;

use super::{Scope, local_name};
use super::kms::KmsKey;
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;

/// One secret.
#[derive(Debug, Clone)]
pub struct Secret {
    secret: Ref,
}

const SUPPRESSIONS: &[Suppression] = &[Suppression {
    check: "CKV2_AWS_57",
    reason: "third-party credential issued by its provider; rotated there, then stored here by the operator",
}];

impl Secret {
    /// Creates `aws_secretsmanager_secret.<id>` named `<prefix>/<name>`.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, name: &str, description: &str) -> Secret {
        let secret = scope.tf.resource_with(
            "secrets",
            "aws_secretsmanager_secret",
            &local_name(name),
            json!({
                "name": format!("{}/{}", scope.prefix, name.to_ascii_lowercase().replace('_', "-")),
                "description": description,
                "kms_key_id": key.arn(),
                "recovery_window_in_days": if scope.prod { 30 } else { 7 },
            }),
            SUPPRESSIONS,
        );
        Secret { secret }
    }

    /// The secret's ARN.
    pub fn arn(&self) -> Expr {
        self.secret.arn()
    }
}
