//! An S3 bucket for load balancer access logs: private, versioned, encrypted, expiring,
//! writable only by the regional log delivery service.

use serde_json::json;

use super::Scope;
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;

/// The access-log bucket.
#[derive(Debug, Clone)]
pub struct LogsBucket {
    bucket: Ref,
    policy: Ref,
}

const SUPPRESSIONS: &[Suppression] = &[
    Suppression {
        check: "CKV_AWS_145",
        reason: "ALB access logs support only SSE-S3 (AES256) buckets, not SSE-KMS",
    },
    Suppression {
        check: "CKV_AWS_18",
        reason: "this bucket is itself the access-log destination; logging it would recurse",
    },
    Suppression {
        check: "CKV_AWS_144",
        reason: "access logs are regional diagnostics, expired after the retention period; no replica needed",
    },
    Suppression {
        check: "CKV2_AWS_62",
        reason: "nothing consumes events of new log objects",
    },
];

impl LogsBucket {
    /// Creates the bucket `<prefix>-<account>-alb-logs` with its policy and settings;
    /// objects expire after `retention_days`.
    pub fn new(scope: &mut Scope<'_>, retention_days: u32) -> LogsBucket {
        let f = "logs";
        let name = format!("{}-{}-alb-logs", scope.prefix, scope.tf.account_id());
        let bucket = scope.tf.resource_with(
            f,
            "aws_s3_bucket",
            "alb_logs",
            json!({"bucket": name, "force_destroy": !scope.prod}),
            SUPPRESSIONS,
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_public_access_block",
            "alb_logs",
            json!({
                "bucket": bucket.id(),
                "block_public_acls": true,
                "block_public_policy": true,
                "ignore_public_acls": true,
                "restrict_public_buckets": true,
            }),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_ownership_controls",
            "alb_logs",
            json!({"bucket": bucket.id(), "rule": [{"object_ownership": "BucketOwnerEnforced"}]}),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_versioning",
            "alb_logs",
            json!({"bucket": bucket.id(), "versioning_configuration": [{"status": "Enabled"}]}),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_server_side_encryption_configuration",
            "alb_logs",
            json!({
                "bucket": bucket.id(),
                "rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}],
            }),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_lifecycle_configuration",
            "alb_logs",
            json!({
                "bucket": bucket.id(),
                "rule": [{
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": [{"prefix": ""}],
                    "expiration": [{"days": retention_days}],
                    "noncurrent_version_expiration": [{"noncurrent_days": 7}],
                    "abort_incomplete_multipart_upload": [{"days_after_initiation": 1}],
                }],
            }),
        );
        let account = scope.tf.account_id().to_owned();
        let doc = scope.tf.data(
            f,
            "aws_iam_policy_document",
            "alb_logs",
            json!({
                "statement": [
                    {
                        "sid": "LogDeliveryWritesAccessLogs",
                        "effect": "Allow",
                        "actions": ["s3:PutObject"],
                        "resources": [format!("{}/alb/AWSLogs/{account}/*", bucket.arn())],
                        "principals": [{"type": "Service", "identifiers": ["logdelivery.elasticloadbalancing.amazonaws.com"]}],
                    },
                    {
                        "sid": "DenyInsecureTransport",
                        "effect": "Deny",
                        "actions": ["s3:*"],
                        "resources": [bucket.arn(), format!("{}/*", bucket.arn())],
                        "principals": [{"type": "*", "identifiers": ["*"]}],
                        "condition": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
                    },
                ]
            }),
        );
        let policy = scope.tf.resource(
            f,
            "aws_s3_bucket_policy",
            "alb_logs",
            json!({"bucket": bucket.id(), "policy": doc.attr("json")}),
        );
        LogsBucket { bucket, policy }
    }

    /// The bucket name.
    pub fn name(&self) -> Expr {
        self.bucket.id()
    }

    /// Address of the bucket policy; the load balancer depends on it.
    pub fn policy_address(&self) -> String {
        self.policy.address()
    }
}
