//! Built-in policy: rules that run on every synth over the lowered Terraform model and stop
//! it when a stack would ship something unsafe. A stack may allow a finding only in code,
//! with a written reason (`tf::Config::allow`), which shows in the output as a
//! `keel:allow=<rule>:<reason>` comment on the block.
//!
//! One rule per file under `rules/`, each with a static [`Rule`] (name and docs) and a
//! `check` function.

pub mod rules;

use std::fmt;

use crate::tf::Config;

/// A policy rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// snake_case name saying what it forbids, e.g. `iam_wildcard_action`.
    pub name: &'static str,
    /// What it checks and why that matters.
    pub summary: &'static str,
    /// The check over one root module.
    pub check: fn(&Config, &mut Vec<Finding>),
}

/// One rule violation on one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Rule name.
    pub rule: &'static str,
    /// Terraform address of the block, e.g. `aws_security_group_rule.x`.
    pub address: String,
    /// What is wrong, in the user's words.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {}: {}: {}",
            self.rule, self.address, self.message
        )
    }
}

/// Every built-in rule.
pub const RULES: &[Rule] = &[
    rules::iam_wildcard::RULE,
    rules::world_open_ingress::RULE,
    rules::unencrypted_storage::RULE,
    rules::fixed_name_replaced_first::RULE,
    rules::rds_minor_version_pinned::RULE,
    rules::broad_managed_policy::RULE,
    rules::service_created_log_group::RULE,
    rules::web_identity_unpinned::RULE,
    rules::github_trust_unpinned::RULE,
    rules::ci_cluster_admin::RULE,
    rules::codedeploy_cannot_pass_task_roles::RULE,
    rules::ci_access_policy::RULE,
];

/// The addresses `rule` finds in `config` (the rules' unit tests ask this).
#[cfg(test)]
pub(crate) fn addresses_found(config: &Config, rule: &str) -> Vec<String> {
    check(config)
        .into_iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.address)
        .collect()
}

/// Runs every rule over `config` and returns the findings the stack has not allowed.
pub fn check(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    for rule in RULES {
        (rule.check)(config, &mut findings);
    }
    findings.retain(|f| !config.is_allowed(&f.address, f.rule));
    findings.sort_by(|a, b| (&a.address, a.rule).cmp(&(&b.address, b.rule)));
    findings
}
