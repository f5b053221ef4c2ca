//! A customer-managed KMS key (rotation on) that encrypts a stack's logs, topic, secrets,
//! database storage and Performance Insights.

use super::Scope;
use super::iam::{allow, condition, principals};
use crate::refs::Expr;
use crate::tf::Suppression;
use crate::tf::aws::data::IamPolicyDocument;
use crate::tf::aws::resource::{KmsAlias, KmsKey as KmsKeyResource, KmsKeyRef};

/// Why a key policy's `Resource: "*"` is not a wildcard.
const KEY_POLICY_RESOURCE: &str = "in a key policy Resource * means this key only; the account principal delegates to IAM policies";

/// A customer-managed KMS key with an alias.
#[derive(Debug, Clone)]
pub struct KmsKey {
    key: KmsKeyRef,
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
        let log_groups = super::log_group::stack_log_group_names(scope)
            .iter()
            .map(|name| format!("arn:{partition}:logs:{region}:{account}:log-group:{name}"))
            .collect();
        let policy = IamPolicyDocument::new().statement([
            allow("AccountAdministersThroughIam", &["kms:*"])
                .resources(["*"])
                .principals([principals("AWS", vec![scope.account_root_arn()])]),
            allow(
                "CloudWatchLogsEncryptsThisStacksLogGroups",
                &[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
            )
            .resources(["*"])
            .principals([principals(
                "Service",
                vec![format!("logs.{region}.amazonaws.com")],
            )])
            .condition([condition(
                "ArnLike",
                "kms:EncryptionContext:aws:logs:arn",
                log_groups,
            )]),
            allow(
                "CloudWatchAlarmsPublishToEncryptedTopics",
                &["kms:Decrypt", "kms:GenerateDataKey*"],
            )
            .resources(["*"])
            .principals([principals("Service", vec!["cloudwatch.amazonaws.com"])])
            .condition([condition(
                "StringEquals",
                "aws:SourceAccount",
                vec![account.clone()],
            )]),
        ]);
        let doc = scope.tf.add_with(
            "kms",
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
            .allow(doc.tf_ref(), "iam_wildcard_action", KEY_POLICY_RESOURCE);
        let key = scope.tf.add(
            "kms",
            "main",
            KmsKeyResource::new()
                .description(description)
                .enable_key_rotation(true)
                .deletion_window_in_days(30)
                .policy(doc.json()),
        );
        scope.tf.add(
            "kms",
            "main",
            KmsAlias::new(key.key_id()).name(format!("alias/{}", scope.prefix)),
        );
        KmsKey { key }
    }

    /// The key's ARN.
    pub fn arn(&self) -> Expr {
        self.key.arn().into()
    }
}
