//! A private S3 bucket for an application's objects: encrypted with the stack's KMS key
//! (bucket key on), versioned, public access blocked, objects owned by the bucket owner,
//! TLS required, old versions expiring, server access logs in the stack's log bucket.
//! [`PrivateBucket::read_write`] is the least privilege an application needs to use it.

use super::Scope;
use super::iam::{self, Statement};
use super::kms::KmsKey;
use super::logs_bucket::{LogsBucket, SERVER_ACCESS_LOG_PREFIX};
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;
use crate::tf::aws::data::iam_policy_document::Statement as DocStatement;
use crate::tf::aws::resource::s3_bucket_lifecycle_configuration as lifecycle;
use crate::tf::aws::resource::s3_bucket_server_side_encryption_configuration as sse;
use crate::tf::aws::resource::{
    S3Bucket, S3BucketLifecycleConfiguration, S3BucketLogging, S3BucketOwnershipControls,
    S3BucketPolicy, S3BucketPublicAccessBlock, S3BucketRef,
    S3BucketServerSideEncryptionConfiguration, S3BucketVersioning, s3_bucket_ownership_controls,
    s3_bucket_versioning,
};

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

/// Public access blocked, objects owned by the bucket owner, versioning on: what every
/// bucket of keel has, as `<type>.<id>` in `file`.
pub(super) fn private_settings(scope: &mut Scope<'_>, file: &str, id: &str, bucket: &S3BucketRef) {
    scope.tf.add(
        file,
        id,
        S3BucketPublicAccessBlock::new(bucket.id())
            .block_public_acls(true)
            .block_public_policy(true)
            .ignore_public_acls(true)
            .restrict_public_buckets(true),
    );
    scope.tf.add(
        file,
        id,
        S3BucketOwnershipControls::new(
            bucket.id(),
            s3_bucket_ownership_controls::Rule::new("BucketOwnerEnforced"),
        ),
    );
    scope.tf.add(
        file,
        id,
        S3BucketVersioning::new(
            bucket.id(),
            s3_bucket_versioning::VersioningConfiguration::new("Enabled"),
        ),
    );
}

/// A lifecycle rule `id` for all objects: replaced versions expire after
/// `noncurrent_days`, incomplete multipart uploads are aborted after a day.
pub(super) fn lifecycle_rule(id: &str, noncurrent_days: u32) -> lifecycle::Rule {
    lifecycle::Rule::new(id, "Enabled")
        .filter([lifecycle::RuleFilter::new().prefix("")])
        .noncurrent_version_expiration([lifecycle::RuleNoncurrentVersionExpiration::new(
            noncurrent_days,
        )])
        .abort_incomplete_multipart_upload([
            lifecycle::RuleAbortIncompleteMultipartUpload::new().days_after_initiation(1)
        ])
}

/// The bucket policy statement that denies every request without TLS.
pub(super) fn deny_insecure_transport(bucket: &S3BucketRef) -> DocStatement {
    DocStatement::new()
        .sid("DenyInsecureTransport")
        .effect("Deny")
        .actions(["s3:*"])
        .resources([bucket.arn().to_string(), format!("{}/*", bucket.arn())])
        .principals([iam::principals("*", vec!["*"])])
        .condition([iam::condition(
            "Bool",
            "aws:SecureTransport",
            vec!["false".into()],
        )])
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
        let bucket = scope.tf.add_with(
            f,
            id,
            S3Bucket::new().bucket(&name).force_destroy(!scope.prod),
            SUPPRESSIONS,
        );
        private_settings(scope, f, id, &bucket);
        let by_default = sse::RuleApplyServerSideEncryptionByDefault::new("aws:kms")
            .kms_master_key_id(key.arn());
        scope.tf.add(
            f,
            id,
            S3BucketServerSideEncryptionConfiguration::new(
                bucket.id(),
                sse::Rule::new()
                    .apply_server_side_encryption_by_default(by_default)
                    .bucket_key_enabled(true),
            ),
        );
        scope.tf.add(
            f,
            id,
            S3BucketLifecycleConfiguration::new(bucket.id()).rule([lifecycle_rule(
                "expire-old-versions",
                props.noncurrent_version_days,
            )]),
        );
        scope.tf.add(
            f,
            id,
            S3BucketLogging::new(
                bucket.id(),
                logs.name(),
                format!("{SERVER_ACCESS_LOG_PREFIX}/{name}/"),
            ),
        );
        let doc = iam::policy_document(scope, f, id, [deny_insecure_transport(&bucket)]);
        scope
            .tf
            .add(f, id, S3BucketPolicy::new(bucket.id(), doc.json()));
        let bucket = bucket.into_ref();
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
