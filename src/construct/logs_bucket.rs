//! An S3 bucket for load balancer access logs: private, versioned, encrypted, expiring,
//! writable only by the region's Elastic Load Balancing log delivery (and, under `s3/`,
//! by S3 server access logging of the stack's own buckets that are named to it).

use super::Scope;
use super::bucket::{deny_insecure_transport, lifecycle_rule, private_settings};
use super::iam::{self, condition, principals};
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;
use crate::tf::aws::data::iam_policy_document::StatementPrincipals;
use crate::tf::aws::resource::s3_bucket_lifecycle_configuration::RuleExpiration;
use crate::tf::aws::resource::s3_bucket_server_side_encryption_configuration as sse;
use crate::tf::aws::resource::{
    S3Bucket, S3BucketLifecycleConfiguration, S3BucketPolicy,
    S3BucketServerSideEncryptionConfiguration,
};

/// The access-log bucket.
#[derive(Debug, Clone)]
pub struct LogsBucket {
    bucket: Ref,
    policy: Ref,
    name: String,
}

/// Key prefix of load balancer access logs in the bucket (the policy allows only it).
pub const ACCESS_LOG_PREFIX: &str = "alb";

/// Key prefix of S3 server access logs in the bucket.
pub const SERVER_ACCESS_LOG_PREFIX: &str = "s3";

/// Without a bucket's server access logs to hold, checkov asks the log bucket to log itself.
const NO_OWN_ACCESS_LOGS: Suppression = Suppression {
    check: "CKV_AWS_18",
    reason: "this bucket is itself the access-log destination; logging it would recurse",
};

const SUPPRESSIONS: &[Suppression] = &[
    Suppression {
        check: "CKV_AWS_145",
        reason: "ALB access logs support only SSE-S3 (AES256) buckets, not SSE-KMS",
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

/// Who delivers a region's load balancer access logs, as a bucket policy principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDelivery {
    /// The regional Elastic Load Balancing account (`arn:<partition>:iam::<id>:root`):
    /// regions available before August 2022, where the service principal is not honoured.
    ElbAccount(String),
    /// The `logdelivery.elasticloadbalancing.amazonaws.com` service principal: regions
    /// available from August 2022 on.
    ServicePrincipal,
}

/// The Elastic Load Balancing account of each region available before August 2022, from
/// the Application Load Balancer guide, "Enable access logs", step 2, "Attach a policy to
/// your S3 bucket" (as read on 2026-12-04):
/// <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html>.
/// Later regions grant the log delivery service principal instead.
const ELB_ACCOUNTS: &[(&str, &str)] = &[
    ("af-south-1", "098369216593"),
    ("ap-east-1", "754344448648"),
    ("ap-northeast-1", "582318560864"),
    ("ap-northeast-2", "600734575887"),
    ("ap-northeast-3", "383597477331"),
    ("ap-south-1", "718504428378"),
    ("ap-southeast-1", "114774131450"),
    ("ap-southeast-2", "783225319266"),
    ("ca-central-1", "985666609251"),
    ("cn-north-1", "638102146993"),
    ("cn-northwest-1", "037604701340"),
    ("eu-central-1", "054676820928"),
    ("eu-north-1", "897822967062"),
    ("eu-south-1", "635631232127"),
    ("eu-west-1", "156460612806"),
    ("eu-west-2", "652711504416"),
    ("eu-west-3", "009996457667"),
    ("me-south-1", "076674570225"),
    ("sa-east-1", "507241528517"),
    ("us-east-1", "127311923021"),
    ("us-east-2", "033677994240"),
    ("us-gov-east-1", "190560391635"),
    ("us-gov-west-1", "048591011584"),
    ("us-west-1", "027434742980"),
    ("us-west-2", "797873946194"),
];

/// The log delivery principal of `region` ([`ELB_ACCOUNTS`], else the service principal).
pub fn log_delivery(region: &str) -> LogDelivery {
    match ELB_ACCOUNTS.iter().find(|(r, _)| *r == region) {
        Some((_, account)) => LogDelivery::ElbAccount((*account).to_owned()),
        None => LogDelivery::ServicePrincipal,
    }
}

impl LogDelivery {
    /// The policy document's `principals` block.
    fn principals(&self, partition: &str) -> StatementPrincipals {
        match self {
            LogDelivery::ElbAccount(account) => {
                principals("AWS", vec![format!("arn:{partition}:iam::{account}:root")])
            }
            LogDelivery::ServicePrincipal => principals(
                "Service",
                vec!["logdelivery.elasticloadbalancing.amazonaws.com"],
            ),
        }
    }
}

impl LogsBucket {
    /// Creates the bucket `<prefix>-<account>-alb-logs` with its policy and settings;
    /// objects expire after `retention_days`. S3 writes the server access logs of the
    /// buckets named in `server_access_logs_of` (of this account) under `s3/`.
    pub fn new(
        scope: &mut Scope<'_>,
        retention_days: u32,
        server_access_logs_of: &[String],
    ) -> LogsBucket {
        let f = "logs";
        let name = format!("{}-{}-alb-logs", scope.prefix, scope.tf.account_id());
        let mut suppressions = SUPPRESSIONS.to_vec();
        if server_access_logs_of.is_empty() {
            suppressions.push(NO_OWN_ACCESS_LOGS);
        }
        let bucket = scope.tf.add_with(
            f,
            "alb_logs",
            S3Bucket::new().bucket(&name).force_destroy(!scope.prod),
            &suppressions,
        );
        private_settings(scope, f, "alb_logs", &bucket);
        scope.tf.add(
            f,
            "alb_logs",
            S3BucketServerSideEncryptionConfiguration::new(
                bucket.id(),
                sse::Rule::new().apply_server_side_encryption_by_default(
                    sse::RuleApplyServerSideEncryptionByDefault::new("AES256"),
                ),
            ),
        );
        scope.tf.add(
            f,
            "alb_logs",
            S3BucketLifecycleConfiguration::new(bucket.id()).rule([lifecycle_rule(
                "expire-access-logs",
                7,
            )
            .expiration([RuleExpiration::new().days(retention_days)])]),
        );
        let account = scope.tf.account_id().to_owned();
        let delivery = log_delivery(scope.tf.region());
        let partition = scope.partition();
        let mut statements = vec![
            iam::allow("LogDeliveryWritesAccessLogs", &["s3:PutObject"])
                .resources([format!(
                    "{}/{ACCESS_LOG_PREFIX}/AWSLogs/{account}/*",
                    bucket.arn()
                )])
                .principals([delivery.principals(partition)]),
        ];
        if !server_access_logs_of.is_empty() {
            let sources = server_access_logs_of
                .iter()
                .map(|b| format!("arn:{partition}:s3:::{b}"))
                .collect();
            statements.push(
                iam::allow("S3WritesServerAccessLogs", &["s3:PutObject"])
                    .resources([format!("{}/{SERVER_ACCESS_LOG_PREFIX}/*", bucket.arn())])
                    .principals([principals("Service", vec!["logging.s3.amazonaws.com"])])
                    .condition([
                        condition("StringEquals", "aws:SourceAccount", vec![account]),
                        condition("ArnLike", "aws:SourceArn", sources),
                    ]),
            );
        }
        statements.push(deny_insecure_transport(&bucket));
        let doc = iam::policy_document(scope, f, "alb_logs", statements);
        let policy = scope
            .tf
            .add(f, "alb_logs", S3BucketPolicy::new(bucket.id(), doc.json()))
            .into_ref();
        let bucket = bucket.into_ref();
        LogsBucket {
            bucket,
            policy,
            name,
        }
    }

    /// The bucket name.
    pub fn name(&self) -> Expr {
        self.bucket.id()
    }

    /// The bucket name as a literal (`<prefix>-<account>-alb-logs`), for load balancers
    /// that a Kubernetes controller creates from annotations.
    pub fn literal_name(&self) -> &str {
        &self.name
    }

    /// Address of the bucket policy; the load balancer depends on it.
    pub fn policy_address(&self) -> String {
        self.policy.address()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_before_august_2022_use_their_elb_account_later_ones_the_service() {
        assert_eq!(
            log_delivery("us-east-1"),
            LogDelivery::ElbAccount("127311923021".into())
        );
        assert_eq!(
            log_delivery("eu-west-1"),
            LogDelivery::ElbAccount("156460612806".into())
        );
        assert_eq!(log_delivery("eu-central-2"), LogDelivery::ServicePrincipal);
        let principals = crate::tf::bind::Nested::into_body(
            LogDelivery::ElbAccount("048591011584".into()).principals("aws-us-gov"),
        )
        .into_json();
        assert_eq!(
            principals["identifiers"][0],
            "arn:aws-us-gov:iam::048591011584:root"
        );
        let sorted = ELB_ACCOUNTS.windows(2).all(|w| w[0].0 < w[1].0);
        assert!(sorted, "one line per region, in order");
    }
}
