//! `iam_wildcard_action`
//!
//! *What it does:* flags an `Allow` statement of an `aws_iam_policy_document` that grants a
//! wildcard action (`*` or `service:*`) on every resource (`*`).
//!
//! *Why is this bad:* it grants everything a service can do to everything in the account;
//! least privilege names the actions and the resources.
//!
//! *Use instead:* list the actions, and scope resources to ARNs from typed references.
//! A KMS key policy (where `Resource: "*"` means the key itself) is allowed in code.

use serde_json::Value;

use super::super::{Finding, Rule};
use crate::refs::BlockKind;
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "iam_wildcard_action",
    summary: "no Allow of a wildcard action on every resource",
    check,
};

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn check(config: &Config, out: &mut Vec<Finding>) {
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Data || r.ty() != "aws_iam_policy_document" {
            continue;
        }
        for statement in body["statement"].as_array().into_iter().flatten() {
            if statement["effect"].as_str().unwrap_or("Allow") != "Allow" {
                continue;
            }
            let actions = strings(&statement["actions"]);
            let wildcard: Vec<&str> = actions
                .iter()
                .copied()
                .filter(|a| *a == "*" || a.ends_with(":*"))
                .collect();
            if !wildcard.is_empty() && strings(&statement["resources"]).contains(&"*") {
                out.push(Finding {
                    rule: RULE.name,
                    address: r.address(),
                    message: format!(
                        "statement {:?} allows {} on every resource; name the actions and scope the resources",
                        statement["sid"].as_str().unwrap_or(""),
                        wildcard.join(", ")
                    ),
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
    fn wildcard_on_everything_is_found_and_scoped_grants_pass() {
        let mut c = config();
        c.data(
            "iam",
            "aws_iam_policy_document",
            "bad",
            json!({"statement": [
            {"sid": "All", "effect": "Allow", "actions": ["s3:*"], "resources": ["*"]}]}),
        );
        c.data(
            "iam",
            "aws_iam_policy_document",
            "good",
            json!({"statement": [
            {"sid": "Read", "effect": "Allow", "actions": ["s3:GetObject"], "resources": ["*"]},
            {"sid": "Deny", "effect": "Deny", "actions": ["*"], "resources": ["*"]}]}),
        );
        let findings = check(&c);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].to_string(),
            "policy iam_wildcard_action: data.aws_iam_policy_document.bad: statement \"All\" allows s3:* on every resource; name the actions and scope the resources"
        );
    }

    #[test]
    fn an_allowance_in_code_silences_the_finding() {
        let mut c = config();
        let r = c.data(
            "kms",
            "aws_iam_policy_document",
            "key",
            json!({"statement": [
            {"sid": "Admin", "effect": "Allow", "actions": ["kms:*"], "resources": ["*"]}]}),
        );
        c.allow(
            &r,
            "iam_wildcard_action",
            "key policy: Resource * is this key",
        );
        assert!(check(&c).is_empty());
    }
}
