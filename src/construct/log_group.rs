//! CloudWatch log groups: encrypted with the stack's key, named `/keel/<prefix>/<suffix>`,
//! with the retention the environment asks for.

use super::Scope;
use super::kms::KmsKey;
use crate::refs::Ref;
use crate::tf::Suppression;
use crate::tf::aws::resource::CloudwatchLogGroup;

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
    let name = log_group_name(scope, suffix);
    encrypted_log_group_named(scope, key, file, id, &name, retention_days)
}

/// Like [`encrypted_log_group`] for a name an AWS service dictates (e.g. RDS writes to
/// `/aws/rds/instance/<identifier>/<log>`): created here first, so the service finds it
/// encrypted and expiring instead of creating it plain and kept forever.
pub fn encrypted_log_group_named(
    scope: &mut Scope<'_>,
    key: &KmsKey,
    file: &str,
    id: &str,
    name: &str,
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
    scope
        .tf
        .add_with(
            file,
            id,
            CloudwatchLogGroup::new()
                .name(name)
                .retention_in_days(retention_days)
                .kms_key_id(key.arn()),
            suppressions,
        )
        .into_ref()
}

/// The name [`encrypted_log_group`] gives: `/keel/<prefix>/<suffix>`.
pub fn log_group_name(scope: &Scope<'_>, suffix: &str) -> String {
    format!("/keel/{}/{suffix}", scope.prefix)
}

/// The log-group names (patterns) a stack may create: `/keel/<prefix>/*`, for its
/// databases `/aws/rds/instance/<prefix>-*`, its web ACL's `aws-waf-logs-<prefix>`, and
/// for its EKS cluster (named like the prefix) `/aws/eks/<prefix>/*`. The stack's KMS key lets CloudWatch Logs use it for
/// these names only.
pub fn stack_log_group_names(scope: &Scope<'_>) -> Vec<String> {
    let mut names = vec![
        format!("/keel/{}/*", scope.prefix),
        format!("{}*", rds_log_group_prefix(&format!("{}-", scope.prefix))),
        super::waf::log_group_name(scope),
    ];
    if scope.prefix.starts_with("eks-") {
        names.push(format!("/aws/eks/{}/*", scope.prefix));
    }
    names
}

/// `/aws/rds/instance/<identifier>`: where RDS exports an instance's logs (one group per
/// log type below it).
pub fn rds_log_group_prefix(identifier: &str) -> String {
    format!("/aws/rds/instance/{identifier}")
}
