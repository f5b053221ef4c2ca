//! A customer-managed KMS key (rotation on) that encrypts a stack's logs, topic, secrets,
//! database storage and Performance Insights.

use serde_json::json;

use super::Scope;
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;

/// Why a key policy's `Resource: "*"` is not a wildcard.
const KEY_POLICY_RESOURCE: &str = "in a key policy Resource * means this key only; the account principal delegates to IAM policies";

/// A customer-managed KMS key with an alias.
#[derive(Debug, Clone)]
pub struct KmsKey {
    key: Ref,
}

impl KmsKey {
    /// Creates the key and `alias/<prefix>`. Its policy lets the account administer it
    /// through IAM, CloudWatch Logs use it for this stack's log groups only (the names
    /// [`super::log_group::stack_log_group_names`] reserves), and CloudWatch alarms publish
    /// to topics it encrypts.
    pub fn new(scope: &mut Scope<'_>, description: &str) -> KmsKey {
        let region = scope.tf.region().to_owned();
        let account = scope.tf.account_id().to_owned();
        let partition = scope.partition();
        let policy = json!({
            "statement": [
                {
                    "sid": "AccountAdministersThroughIam",
                    "effect": "Allow",
                    "actions": ["kms:*"],
                    "resources": ["*"],
                    "principals": [{"type": "AWS", "identifiers": [scope.account_root_arn()]}],
                },
                {
                    "sid": "CloudWatchLogsEncryptsThisStacksLogGroups",
                    "effect": "Allow",
                    "actions": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                    "resources": ["*"],
                    "principals": [{"type": "Service", "identifiers": [format!("logs.{region}.amazonaws.com")]}],
                    "condition": [{
                        "test": "ArnLike",
                        "variable": "kms:EncryptionContext:aws:logs:arn",
                        "values": super::log_group::stack_log_group_names(scope)
                            .iter()
                            .map(|name| format!("arn:{partition}:logs:{region}:{account}:log-group:{name}"))
                            .collect::<Vec<_>>(),
                    }],
                },
                {
                    "sid": "CloudWatchAlarmsPublishToEncryptedTopics",
                    "effect": "Allow",
                    "actions": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "resources": ["*"],
                    "principals": [{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}],
                    "condition": [{
                        "test": "StringEquals",
                        "variable": "aws:SourceAccount",
                        "values": [account],
                    }],
                },
            ]
        });
        let doc = scope.tf.data_with(
            "kms",
            "aws_iam_policy_document",
            "key",
            policy,
            &[
                Suppression {
                    check: "CKV_AWS_109",
                    reason: KEY_POLICY_RESOURCE,
                },
                Suppression {
                    check: "CKV_AWS_111",
                    reason: KEY_POLICY_RESOURCE,
                },
                Suppression {
                    check: "CKV_AWS_356",
                    reason: KEY_POLICY_RESOURCE,
                },
            ],
        );
        scope
            .tf
            .allow(&doc, "iam_wildcard_action", KEY_POLICY_RESOURCE);
        let key = scope.tf.resource(
            "kms",
            "aws_kms_key",
            "main",
            json!({
                "description": description,
                "enable_key_rotation": true,
                "deletion_window_in_days": 30,
                "policy": doc.attr("json"),
            }),
        );
        scope.tf.resource(
            "kms",
            "aws_kms_alias",
            "main",
            json!({"name": format!("alias/{}", scope.prefix), "target_key_id": key.attr("key_id")}),
        );
        KmsKey { key }
    }

    /// The key's ARN.
    pub fn arn(&self) -> Expr {
        self.key.arn()
    }
}
