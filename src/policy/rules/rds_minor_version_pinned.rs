//! `rds_minor_version_pinned`
//!
//! *What it does:* flags RDS instances with automatic minor upgrades whose
//! `engine_version` names a minor version (`16.6` for PostgreSQL; `8.0.40` for MySQL and
//! MariaDB, whose major versions are release series such as `8.0`).
//!
//! *Why is this bad:* AWS upgrades the instance in a maintenance window; the next plan
//! then tries to downgrade it to the pinned minor, which RDS refuses.
//!
//! *Use instead:* the major version alone (`16`, `8.0`), or turn automatic minor upgrades
//! off.

use super::super::{Finding, Rule};
use crate::refs::{BlockKind, is_literal};
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "rds_minor_version_pinned",
    summary: "databases that upgrade minor versions automatically pin only the major",
    check,
};

fn check(config: &Config, out: &mut Vec<Finding>) {
    for (r, body) in config.blocks() {
        let auto = body["auto_minor_version_upgrade"] != serde_json::Value::Bool(false);
        let version = body["engine_version"].as_str().unwrap_or_default();
        // MySQL's and MariaDB's majors hold one dot (`8.4`, `10.11`), PostgreSQL's none.
        let major_dots = match body["engine"].as_str() {
            Some("mysql" | "mariadb") => 1,
            _ => 0,
        };
        if r.kind() == BlockKind::Resource
            && r.ty() == "aws_db_instance"
            && auto
            && is_literal(version)
            && version.matches('.').count() > major_dots
        {
            out.push(Finding {
                rule: RULE.name,
                address: r.address(),
                message: format!(
                    "engine_version {version} with automatic minor upgrades: the plan after an upgrade would downgrade; expected the major version"
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tf::tests::config;

    #[test]
    fn pinned_minors_are_found() {
        let mut c = config();
        c.resource(
            "d",
            "aws_db_instance",
            "minor",
            json!({"engine_version": "16.6"}),
        );
        c.resource(
            "d",
            "aws_db_instance",
            "major",
            json!({"engine_version": "16"}),
        );
        c.resource(
            "d",
            "aws_db_instance",
            "manual",
            json!({"engine_version": "16.6", "auto_minor_version_upgrade": false}),
        );
        c.resource(
            "d",
            "aws_db_instance",
            "mysql_major",
            json!({"engine": "mysql", "engine_version": "8.4"}),
        );
        c.resource(
            "d",
            "aws_db_instance",
            "mysql_minor",
            json!({"engine": "mysql", "engine_version": "8.4.3"}),
        );
        let found = crate::policy::addresses_found(&c, super::RULE.name);
        assert_eq!(
            found,
            ["aws_db_instance.minor", "aws_db_instance.mysql_minor"]
        );
    }
}
