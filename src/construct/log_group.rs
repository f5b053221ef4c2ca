//! CloudWatch log groups: encrypted with the stack's key, named `/keel/<prefix>/<suffix>`,
//! with the retention the environment asks for.

use serde_json::json;

use super::Scope;
use super::kms::KmsKey;
use crate::refs::Ref;
use crate::tf::Suppression;

/// Creates `aws_cloudwatch_log_group.<id>` in `file`. Under a year of retention carries a
/// suppression of checkov's one-year rule: the period is an environment setting, and the
/// PR diff shows it.
pub fn encrypted_log_group(
    scope: &mut Scope<'_>,
    key: &KmsKey,
    file: &str,
    id: &str,
    suffix: &str,
    retention_days: u32,
) -> Ref {
    let suppressions: &[Suppression] = if retention_days >= 365 {
        &[]
    } else {
        &[Suppression {
            check: "CKV_AWS_338",
            reason: "retention is set per environment in environments/<env>.yaml (shorter outside audit scope)",
        }]
    };
    scope.tf.resource_with(
        file,
        "aws_cloudwatch_log_group",
        id,
        json!({
            "name": log_group_name(scope, suffix),
            "retention_in_days": retention_days,
            "kms_key_id": key.arn(),
        }),
        suppressions,
    )
}

/// The name [`encrypted_log_group`] gives: `/keel/<prefix>/<suffix>`.
pub fn log_group_name(scope: &Scope<'_>, suffix: &str) -> String {
    format!("/keel/{}/{suffix}", scope.prefix)
}
