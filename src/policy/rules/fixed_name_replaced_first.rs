//! `fixed_name_replaced_first`
//!
//! *What it does:* flags resources with `lifecycle.create_before_destroy` whose `name` is a
//! fixed literal.
//!
//! *Why is this bad:* on replacement Terraform creates the new resource first, under the
//! same name as the one still standing: the apply fails with "already exists" exactly when
//! the change matters (e.g. a major-version parameter group).
//!
//! *Use instead:* `name_prefix`, or a name that carries the attribute whose change replaces
//! the resource (then allow the finding in code with that reason).

use super::super::{Finding, Rule};
use crate::refs::{BlockKind, is_literal};
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "fixed_name_replaced_first",
    summary: "resources replaced create-before-destroy have no fixed name",
    check,
};

fn check(config: &Config, out: &mut Vec<Finding>) {
    for (r, body) in config.blocks() {
        let first = body["lifecycle"]["create_before_destroy"] == serde_json::Value::Bool(true);
        let fixed = body["name"].as_str().is_some_and(is_literal);
        if r.kind() == BlockKind::Resource && first && fixed {
            out.push(Finding {
                rule: RULE.name,
                address: r.address(),
                message: "created before the old one is destroyed, under the same fixed name: expected name_prefix".to_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tf::tests::config;

    #[test]
    fn fixed_names_replaced_first_are_found() {
        let mut c = config();
        c.resource(
            "d",
            "aws_db_parameter_group",
            "fixed",
            json!({"name": "x", "lifecycle": {"create_before_destroy": true}}),
        );
        c.resource(
            "d",
            "aws_db_parameter_group",
            "prefixed",
            json!({"name_prefix": "x-", "lifecycle": {"create_before_destroy": true}}),
        );
        c.resource(
            "d",
            "aws_db_parameter_group",
            "in_place",
            json!({"name": "y"}),
        );
        let found = crate::policy::addresses_found(&c, super::RULE.name);
        assert_eq!(found, ["aws_db_parameter_group.fixed"]);
    }
}
