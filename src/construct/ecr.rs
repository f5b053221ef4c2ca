//! An ECR repository: scan on push, encrypted (AES256 by default, or the stack's KMS key),
//! immutable tags where the environment requires them, and a lifecycle policy that expires
//! untagged images and keeps the last releases.

use serde_json::json;

use super::Scope;
use super::kms::KmsKey;
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;

/// How the repository encrypts images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcrEncryption {
    /// Amazon S3-managed keys (the seed's choice).
    Aes256,
    /// The stack's KMS key.
    Kms,
}

/// Options for [`EcrRepository`].
#[derive(Debug, Clone)]
pub struct EcrRepositoryProps {
    /// Repository name, e.g. `metrics-service` (not prefixed: image references name it).
    pub name: String,
    /// Encryption. Default: AES256.
    pub encryption: EcrEncryption,
    /// Tags cannot be overwritten (staging and prod: a release tag always names one image).
    pub immutable_tags: bool,
    /// Days before an untagged image expires.
    pub untagged_expiry_days: u32,
    /// Tagged images kept (the newest).
    pub keep_releases: u32,
}

impl EcrRepositoryProps {
    /// A repository of release images named `name` in an environment of `tier`: AES256,
    /// tags immutable outside dev, untagged images expire after 7 days, the newest 30
    /// releases kept.
    pub fn releases(name: String, tier: crate::env::file::Tier) -> Self {
        Self {
            name,
            encryption: EcrEncryption::Aes256,
            immutable_tags: tier != crate::env::file::Tier::Dev,
            untagged_expiry_days: 7,
            keep_releases: 30,
        }
    }
}

/// An ECR repository.
#[derive(Debug, Clone)]
pub struct EcrRepository {
    repo: Ref,
    url: String,
    arn: String,
}

impl EcrRepository {
    /// Creates the repository and its lifecycle policy.
    pub fn new(
        scope: &mut Scope<'_>,
        key: &KmsKey,
        id: &str,
        props: &EcrRepositoryProps,
    ) -> EcrRepository {
        let f = "ecr";
        let encryption = match props.encryption {
            EcrEncryption::Aes256 => json!([{"encryption_type": "AES256"}]),
            EcrEncryption::Kms => json!([{"encryption_type": "KMS", "kms_key": key.arn()}]),
        };
        let mut suppressions = Vec::new();
        if props.encryption == EcrEncryption::Aes256 {
            suppressions.push(Suppression {
                check: "CKV_AWS_136",
                reason: "images are encrypted with AES256 as the seed chose; set ecr_kms in the environment file for the stack's KMS key",
            });
        }
        if !props.immutable_tags {
            suppressions.push(Suppression {
                check: "CKV_AWS_51",
                reason: "mutable tags in this dev-tier environment only; keel makes them immutable in staging and prod",
            });
        }
        let repo = scope.tf.resource_with(
            f,
            "aws_ecr_repository",
            id,
            json!({
                "name": props.name,
                "image_tag_mutability": if props.immutable_tags { "IMMUTABLE" } else { "MUTABLE" },
                "image_scanning_configuration": [{"scan_on_push": true}],
                "encryption_configuration": encryption,
            }),
            &suppressions,
        );
        let policy = json!({
            "rules": [
                {
                    "rulePriority": 1,
                    "description": format!("expire untagged images after {} days", props.untagged_expiry_days),
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": props.untagged_expiry_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": format!("keep the last {} tagged images", props.keep_releases),
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": props.keep_releases,
                    },
                    "action": {"type": "expire"},
                },
            ]
        });
        let policy = scope.tf.local(f, &format!("{id}_lifecycle"), policy);
        scope.tf.resource(
            f,
            "aws_ecr_lifecycle_policy",
            id,
            json!({
                "repository": repo.attr("name"),
                "policy": crate::refs::jsonencode(&policy),
            }),
        );
        let (region, account) = (
            scope.tf.region().to_owned(),
            scope.tf.account_id().to_owned(),
        );
        EcrRepository {
            repo,
            url: format!("{account}.dkr.ecr.{region}.amazonaws.com/{}", props.name),
            arn: format!(
                "arn:{}:ecr:{region}:{account}:repository/{}",
                scope.partition(),
                props.name
            ),
        }
    }

    /// The repository URL (deterministic: `<account>.dkr.ecr.<region>.amazonaws.com/<name>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The repository ARN (deterministic).
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The repository's Terraform URL attribute.
    pub fn url_attr(&self) -> Expr {
        self.repo.attr("repository_url")
    }
}
