//! `service_created_log_group`
//!
//! *What it does:* flags RDS instances that export logs (`enabled_cloudwatch_logs_exports`)
//! to a log group the root does not create (`/aws/rds/instance/<identifier>/<log>`).
//!
//! *Why is this bad:* RDS then creates the group itself: unencrypted, kept forever, and
//! outside Terraform.
//!
//! *Use instead:* the RDS construct creates each group first, encrypted, with retention,
//! and the instance depends on them.

use super::super::{Finding, Rule};
use crate::refs::BlockKind;
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "service_created_log_group",
    summary: "log groups an AWS service writes to are created first, encrypted and expiring",
    check,
};

fn check(config: &Config, out: &mut Vec<Finding>) {
    let groups: Vec<&str> = config
        .blocks()
        .filter(|(r, _)| r.kind() == BlockKind::Resource && r.ty() == "aws_cloudwatch_log_group")
        .filter_map(|(_, body)| body["name"].as_str())
        .collect();
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Resource || r.ty() != "aws_db_instance" {
            continue;
        }
        let identifier = body["identifier"].as_str().unwrap_or_default();
        let exports = body["enabled_cloudwatch_logs_exports"].as_array();
        for log in exports.into_iter().flatten().filter_map(|v| v.as_str()) {
            let name = format!("/aws/rds/instance/{identifier}/{log}");
            if !groups.contains(&name.as_str()) {
                out.push(Finding {
                    rule: RULE.name,
                    address: r.address(),
                    message: format!("exports {log} logs to {name}, which RDS would create unencrypted and kept forever: expected an aws_cloudwatch_log_group of that name"),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::check;
    use crate::tf::tests::config;

    #[test]
    fn missing_rds_log_groups_are_found() {
        let mut c = config();
        c.resource("d", "aws_db_instance", "db",
            json!({"identifier": "x-db", "enabled_cloudwatch_logs_exports": ["postgresql", "upgrade"]}));
        c.resource(
            "d",
            "aws_cloudwatch_log_group",
            "pg",
            json!({"name": "/aws/rds/instance/x-db/postgresql", "kms_key_id": "k"}),
        );
        let found: Vec<String> = check(&c)
            .into_iter()
            .filter(|f| f.rule == super::RULE.name)
            .map(|f| f.message)
            .collect();
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("/aws/rds/instance/x-db/upgrade"),
            "{found:?}"
        );
    }
}
