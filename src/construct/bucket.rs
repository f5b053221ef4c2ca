//! A private S3 bucket for an application's objects: encrypted with the stack's KMS key
//! (bucket key on), versioned, public access blocked, objects owned by the bucket owner,
//! TLS required, old versions expiring, server access logs in the stack's log bucket.
//! [`PrivateBucket::read_write`] is the least privilege an application needs to use it.

use serde_json::json;

use super::Scope;
use super::iam::Statement;
use super::kms::KmsKey;
use super::logs_bucket::{LogsBucket, SERVER_ACCESS_LOG_PREFIX};
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;

/// Options for [`PrivateBucket`].
#[derive(Debug, Clone)]
pub struct PrivateBucketProps {
    /// Construct id (Terraform name) and name suffix: the bucket is `<prefix>-<account>-<id>`.
    pub id: &'static str,
    /// Days a replaced or deleted object version is kept. Default: 30.
    pub noncurrent_version_days: u32,
}

/// The bucket.
#[derive(Debug, Clone)]
pub struct PrivateBucket {
    bucket: Ref,
    name: String,
    arn: String,
    key_arn: Expr,
    region: String,
}

const SUPPRESSIONS: &[Suppression] = &[
    Suppression {
        check: "CKV_AWS_144",
        reason: "the service's objects live in its one region, versioned against overwrites, as the seed's single-region design; no replica",
    },
    Suppression {
        check: "CKV2_AWS_62",
        reason: "nothing consumes events of new objects",
    },
];

/// `<prefix>-<account>-<id>`: the name [`PrivateBucket::new`] gives, known before it exists.
pub fn bucket_name(scope: &Scope<'_>, id: &str) -> String {
    format!("{}-{}-{id}", scope.prefix, scope.tf.account_id())
}

impl PrivateBucket {
    /// Creates the bucket and its settings; its server access logs go to `logs`, which
    /// must have been created with this bucket's name in `server_access_logs_of`.
    pub fn new(
        scope: &mut Scope<'_>,
        key: &KmsKey,
        logs: &LogsBucket,
        props: &PrivateBucketProps,
    ) -> PrivateBucket {
        let f = "storage";
        let id = props.id;
        let name = bucket_name(scope, id);
        let bucket = scope.tf.resource_with(
            f,
            "aws_s3_bucket",
            id,
            json!({"bucket": name, "force_destroy": !scope.prod}),
            SUPPRESSIONS,
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_public_access_block",
            id,
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
            id,
            json!({"bucket": bucket.id(), "rule": [{"object_ownership": "BucketOwnerEnforced"}]}),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_versioning",
            id,
            json!({"bucket": bucket.id(), "versioning_configuration": [{"status": "Enabled"}]}),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_server_side_encryption_configuration",
            id,
            json!({
                "bucket": bucket.id(),
                "rule": [{
                    "apply_server_side_encryption_by_default": [{"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn()}],
                    "bucket_key_enabled": true,
                }],
            }),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_lifecycle_configuration",
            id,
            json!({
                "bucket": bucket.id(),
                "rule": [{
                    "id": "expire-old-versions",
                    "status": "Enabled",
                    "filter": [{"prefix": ""}],
                    "noncurrent_version_expiration": [{"noncurrent_days": props.noncurrent_version_days}],
                    "abort_incomplete_multipart_upload": [{"days_after_initiation": 1}],
                }],
            }),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_logging",
            id,
            json!({
                "bucket": bucket.id(),
                "target_bucket": logs.name(),
                "target_prefix": format!("{SERVER_ACCESS_LOG_PREFIX}/{name}/"),
            }),
        );
        let doc = scope.tf.data(
            f,
            "aws_iam_policy_document",
            id,
            json!({"statement": [{
                "sid": "DenyInsecureTransport",
                "effect": "Deny",
                "actions": ["s3:*"],
                "resources": [bucket.arn(), format!("{}/*", bucket.arn())],
                "principals": [{"type": "*", "identifiers": ["*"]}],
                "condition": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
            }]}),
        );
        scope.tf.resource(
            f,
            "aws_s3_bucket_policy",
            id,
            json!({"bucket": bucket.id(), "policy": doc.attr("json")}),
        );
        let arn = format!("arn:{}:s3:::{name}", scope.partition());
        PrivateBucket {
            bucket,
            name,
            arn,
            key_arn: key.arn(),
            region: scope.tf.region().to_owned(),
        }
    }

    /// The bucket name (deterministic).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bucket's Terraform id, for outputs.
    pub fn id(&self) -> Expr {
        self.bucket.id()
    }

    /// Statements that let a role list the bucket and read and write its objects, and use
    /// the key through S3 only: no delete (versions expire by lifecycle), no bucket
    /// settings, no other bucket.
    pub fn read_write(&self, sid: &str) -> Vec<Statement> {
        vec![
            Statement::allow(
                &format!("{sid}Objects"),
                &["s3:GetObject", "s3:PutObject"],
                vec![format!("{}/*", self.arn)],
            ),
            Statement::allow(
                &format!("{sid}List"),
                &["s3:ListBucket"],
                vec![self.arn.clone()],
            ),
            Statement::allow(
                &format!("{sid}Key"),
                &["kms:Decrypt", "kms:GenerateDataKey"],
                vec![self.key_arn.to_string()],
            )
            .when(
                "StringEquals",
                "kms:ViaService",
                vec![format!("s3.{}.amazonaws.com", self.region)],
            ),
        ]
    }
}
