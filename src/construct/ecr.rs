//! An ECR repository: scan on push, encrypted (AES256 by default, or the stack's KMS key),
//! immutable tags where the environment requires them, and a lifecycle policy that never
//! expires what an environment file pins or a rollback may need.
//!
//! Lifecycle rules select images by tag only, never by digest, so the policy is:
//! 1. the tags the environment file pins in this repository are never expired;
//! 2. untagged images expire after a few days;
//! 3. where tags can move (dev, mutable tags), only the newest releases are kept.
//!
//! Under immutable tags (staging, prod) a tag never leaves its image, so every image pushed
//! with a tag stays tagged, and rule 3 is left out: a digest pinned in an environment file
//! (prod pins digests) and every earlier release stay until someone deletes them. The cost
//! is storage, about $0.10 per GB-month.
//!
//! Immutable tags also mean a pipeline cannot re-push a moving tag such as `latest`: the
//! exclusion form (`IMMUTABLE_WITH_EXCLUSION`) exists only from hashicorp/aws 6.x, and keel
//! supports 5.100 too, so the pipelines push the commit tag only (nothing keel generates
//! reads `latest`, and workloads refuse it).

use serde_json::json;

use super::Scope;
use super::kms::KmsKey;
use crate::refs::Expr;
use crate::tf::Suppression;
use crate::tf::aws::resource::ecr_repository::{
    EncryptionConfiguration, ImageScanningConfiguration,
};
use crate::tf::aws::resource::{EcrLifecyclePolicy, EcrRepository as Repository, EcrRepositoryRef};

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
    /// Images kept (the newest) where tags are mutable; with immutable tags no tagged image
    /// expires.
    pub keep_releases: u32,
    /// Tags the environment file pins in this repository ([`pinned_tags`]): never expired.
    pub pinned_tags: Vec<String>,
}

impl EcrRepositoryProps {
    /// A repository of release images named `name` in `env`: AES256, tags immutable
    /// outside dev, untagged images expire after 7 days, the environment file's pins in it
    /// never expire, and with mutable tags the newest 30 images are kept.
    pub fn releases(name: String, env: &crate::env::Env) -> Self {
        let url = repository_url(&env.spec.account_id, &env.spec.region, &name);
        Self {
            name,
            encryption: EcrEncryption::Aes256,
            immutable_tags: env.spec.tier != crate::env::file::Tier::Dev,
            untagged_expiry_days: 7,
            keep_releases: 30,
            pinned_tags: pinned_tags(&env.spec, &url),
        }
    }
}

/// `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
fn repository_url(account: &str, region: &str, name: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com/{name}")
}

/// Every tag the environment file pins in `repository_url`, wherever it pins an image
/// (`image: {repository, tag}`), sorted. Digest pins cannot be protected by a lifecycle
/// rule, which selects by tag; see the module documentation for why they stay anyway.
pub fn pinned_tags(spec: &crate::env::file::EnvFile, repository_url: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, url: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if map.get("repository").and_then(|r| r.as_str()) == Some(url)
                    && let Some(tag) = map.get("tag").and_then(|t| t.as_str())
                {
                    out.push(tag.to_owned());
                }
                map.values().for_each(|c| walk(c, url, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|c| walk(c, url, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    // The file was deserialized from YAML into these types, so it serializes back.
    if let Ok(value) = serde_json::to_value(spec) {
        walk(&value, repository_url, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// The lifecycle rules of `props` (see the module documentation).
fn lifecycle_rules(props: &EcrRepositoryProps) -> serde_json::Value {
    let mut rules = Vec::new();
    if !props.pinned_tags.is_empty() {
        // A rule that matches an image keeps it from every rule of lower priority; this
        // one matches only the pinned tags and never has that many images to expire.
        rules.push(json!({
            "description": "never expire the images the environment file pins",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": props.pinned_tags,
                "countType": "imageCountMoreThan",
                "countNumber": NEVER,
            },
            "action": {"type": "expire"},
        }));
    }
    rules.push(json!({
        "description": format!("expire untagged images after {} days", props.untagged_expiry_days),
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": props.untagged_expiry_days,
        },
        "action": {"type": "expire"},
    }));
    if !props.immutable_tags {
        rules.push(json!({
            "description": format!("keep the last {} images (mutable tags)", props.keep_releases),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": props.keep_releases,
            },
            "action": {"type": "expire"},
        }));
    }
    for (rule, priority) in rules.iter_mut().zip(1u32..) {
        rule["rulePriority"] = priority.into();
    }
    json!({ "rules": rules })
}

/// More images than one tag pattern list of pins can ever match.
const NEVER: u32 = 10_000;

/// An ECR repository.
#[derive(Debug, Clone)]
pub struct EcrRepository {
    repo: EcrRepositoryRef,
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
            EcrEncryption::Aes256 => EncryptionConfiguration::new().encryption_type("AES256"),
            EcrEncryption::Kms => EncryptionConfiguration::new()
                .encryption_type("KMS")
                .kms_key(key.arn()),
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
        let mutability = if props.immutable_tags {
            "IMMUTABLE"
        } else {
            "MUTABLE"
        };
        let repo = scope.tf.add_with(
            f,
            id,
            Repository::new(&props.name)
                .image_tag_mutability(mutability)
                .image_scanning_configuration(ImageScanningConfiguration::new(true))
                .encryption_configuration([encryption]),
            &suppressions,
        );
        let policy = lifecycle_rules(props);
        let policy = scope.tf.local(f, &format!("{id}_lifecycle"), policy);
        scope.tf.add(
            f,
            id,
            EcrLifecyclePolicy::new(crate::refs::jsonencode(&policy), repo.name()),
        );
        let (region, account) = (
            scope.tf.region().to_owned(),
            scope.tf.account_id().to_owned(),
        );
        EcrRepository {
            repo,
            url: repository_url(&account, &region, &props.name),
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
        self.repo.repository_url().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(immutable_tags: bool, pinned_tags: &[&str]) -> EcrRepositoryProps {
        EcrRepositoryProps {
            name: "app".into(),
            encryption: EcrEncryption::Aes256,
            immutable_tags,
            untagged_expiry_days: 7,
            keep_releases: 30,
            pinned_tags: pinned_tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn pinned_tags_come_first_and_immutable_repositories_expire_no_tagged_image() {
        let rules = lifecycle_rules(&props(false, &["1.2.0"]));
        let rules = rules["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0]["rulePriority"], 1);
        assert_eq!(rules[0]["selection"]["tagPatternList"], json!(["1.2.0"]));
        assert_eq!(rules[2]["selection"]["tagStatus"], "any");
        let immutable = lifecycle_rules(&props(true, &[]));
        let immutable = immutable["rules"].as_array().unwrap();
        assert_eq!(immutable.len(), 1);
        assert_eq!(immutable[0]["selection"]["tagStatus"], "untagged");
        assert_eq!(immutable[0]["rulePriority"], 1);
    }
}
