//! `unencrypted_storage`
//!
//! *What it does:* flags data stores and log sinks created without encryption: RDS
//! instances without `storage_encrypted`, ElastiCache replication groups without encryption
//! at rest and in transit, SNS topics, log groups and Secrets Manager secrets without a KMS
//! key, and S3 buckets without a server-side encryption configuration.
//!
//! *Why is this bad:* encryption at rest cannot be added to an RDS instance or a cache
//! later without replacing it, and an auditor asks for it first.
//!
//! *Use instead:* the constructs encrypt by default with the stack's KMS key.

use serde_json::Value;

use super::super::{Finding, Rule};
use crate::refs::BlockKind;
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "unencrypted_storage",
    summary: "data stores, topics, secrets and log groups are encrypted",
    check,
};

fn check(config: &Config, out: &mut Vec<Finding>) {
    let mut encrypted_buckets = Vec::new();
    for (r, body) in config.blocks() {
        if r.ty() == "aws_s3_bucket_server_side_encryption_configuration" {
            encrypted_buckets.push(body["bucket"].as_str().unwrap_or_default().to_owned());
        }
    }
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Resource {
            continue;
        }
        let is_true = |key: &str| body[key] == Value::Bool(true);
        let has = |key: &str| body[key].as_str().is_some_and(|s| !s.is_empty());
        let missing: Option<&str> = match r.ty() {
            "aws_db_instance" if !is_true("storage_encrypted") => Some("storage_encrypted = true"),
            "aws_elasticache_replication_group" if !is_true("at_rest_encryption_enabled") => {
                Some("at_rest_encryption_enabled = true")
            }
            "aws_elasticache_replication_group" if !is_true("transit_encryption_enabled") => {
                Some("transit_encryption_enabled = true")
            }
            "aws_sns_topic" if !has("kms_master_key_id") => Some("kms_master_key_id"),
            "aws_cloudwatch_log_group" | "aws_secretsmanager_secret" if !has("kms_key_id") => {
                Some("kms_key_id")
            }
            "aws_s3_bucket" if !encrypted_buckets.contains(&r.id().to_string()) => {
                Some("an aws_s3_bucket_server_side_encryption_configuration")
            }
            _ => None,
        };
        if let Some(missing) = missing {
            out.push(Finding {
                rule: RULE.name,
                address: r.address(),
                message: format!("not encrypted: expected {missing}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::check;
    use crate::tf::tests::config;

    #[test]
    fn unencrypted_stores_are_found() {
        let mut c = config();
        c.resource(
            "d",
            "aws_db_instance",
            "plain",
            json!({"storage_encrypted": false}),
        );
        c.resource(
            "d",
            "aws_db_instance",
            "safe",
            json!({"storage_encrypted": true}),
        );
        let bucket = c.resource("d", "aws_s3_bucket", "logs", json!({}));
        c.resource("d", "aws_s3_bucket", "open", json!({}));
        c.resource(
            "d",
            "aws_s3_bucket_server_side_encryption_configuration",
            "logs",
            json!({"bucket": bucket.id()}),
        );
        c.resource("d", "aws_sns_topic", "t", json!({"name": "t"}));
        let addresses: Vec<String> = check(&c).into_iter().map(|f| f.address).collect();
        assert_eq!(
            addresses,
            [
                "aws_db_instance.plain",
                "aws_s3_bucket.open",
                "aws_sns_topic.t"
            ]
        );
    }
}
