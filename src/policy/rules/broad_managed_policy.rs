//! `broad_managed_policy`
//!
//! *What it does:* flags attachments of AWS managed policies that grant far more than their
//! use needs where AWS publishes a narrower one: `AWSCodeDeployRoleForECS` (Lambda invoke,
//! S3 read, SNS publish and PassRole on `*`), `AdministratorAccess`, `PowerUserAccess`,
//! `IAMFullAccess`.
//!
//! *Why is this bad:* a compromised or confused service role can then act on every
//! resource of the account.
//!
//! *Use instead:* `AWSCodeDeployRoleForECSLimited` plus `sns:Publish` on the stack's topic;
//! inline least-privilege statements for the rest.

use super::super::{Finding, Rule};
use crate::refs::BlockKind;
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "broad_managed_policy",
    summary: "no AWS managed policy broader than its use where a narrower one exists",
    check,
};

/// Managed policies that are too broad, and what to use instead.
const BROAD: [(&str, &str); 4] = [
    ("AWSCodeDeployRoleForECS", "AWSCodeDeployRoleForECSLimited"),
    ("AdministratorAccess", "least-privilege statements"),
    ("PowerUserAccess", "least-privilege statements"),
    ("IAMFullAccess", "least-privilege statements"),
];

fn check(config: &Config, out: &mut Vec<Finding>) {
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Resource || r.ty() != "aws_iam_role_policy_attachment" {
            continue;
        }
        let arn = body["policy_arn"].as_str().unwrap_or_default();
        let name = arn.rsplit('/').next().unwrap_or_default();
        if let Some((broad, instead)) = BROAD.iter().find(|(broad, _)| *broad == name) {
            out.push(Finding {
                rule: RULE.name,
                address: r.address(),
                message: format!("{broad} is broader than its use: expected {instead}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tf::tests::config;

    #[test]
    fn broad_policies_are_found() {
        let mut c = config();
        c.resource(
            "d",
            "aws_iam_role_policy_attachment",
            "broad",
            json!({"policy_arn": "arn:aws:iam::aws:policy/AWSCodeDeployRoleForECS"}),
        );
        c.resource(
            "d",
            "aws_iam_role_policy_attachment",
            "limited",
            json!({"policy_arn": "arn:aws:iam::aws:policy/AWSCodeDeployRoleForECSLimited"}),
        );
        let found = crate::policy::addresses_found(&c, super::RULE.name);
        assert_eq!(found, ["aws_iam_role_policy_attachment.broad"]);
    }
}
