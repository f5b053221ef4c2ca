//! `github_trust_unpinned`
//!
//! *What it does:* flags an `Allow` statement of an `aws_iam_policy_document` that trusts
//! GitHub Actions' OIDC provider (a `Federated` principal ending in
//! `oidc-provider/token.actions.githubusercontent.com`, or a reference to an
//! `aws_iam_openid_connect_provider` whose `url` is `https://token.actions.githubusercontent.com`,
//! or a provider ARN the root cannot resolve, such as one imported from another stack, when
//! the statement tests a `token.actions.githubusercontent.com:` claim) unless it pins:
//!
//! - `token.actions.githubusercontent.com:sub` with `StringEquals` to literal subjects, each
//!   `repo:<owner>/<repo>:environment:<name>`, `repo:<owner>/<repo>:ref:refs/heads/<branch>`
//!   or `repo:<owner>/<repo>:ref:refs/tags/<tag>`, with no `*` (or `?`) anywhere;
//! - `token.actions.githubusercontent.com:aud` with `StringEquals` to exactly
//!   `["sts.amazonaws.com"]`;
//!
//! and tests neither claim with anything else (`StringLike`, `ForAnyValue:...`).
//!
//! *Why is this bad:* every repository on GitHub can get a token from that provider. Without
//! an exact `sub`, a fork, another repository of the organisation, a pull request or any
//! branch can assume the role and act with its rights in the account.
//!
//! *Use instead:* one subject per deploying repository, bound to a protected GitHub
//! environment (`repo:acme/api:environment:prod`) or to a protected branch or tag.

use serde_json::Value;

use super::super::{Finding, Rule};
use super::web_identity_unpinned::{conditions, literal_tail};
use crate::refs::{self, BlockKind};
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "github_trust_unpinned",
    summary: "a GitHub Actions OIDC trust pins sub to a repository's environment, branch or tag, and aud to STS",
    check,
};

/// GitHub Actions' token issuer (host of `https://token.actions.githubusercontent.com`).
const GITHUB_ISSUER: &str = "token.actions.githubusercontent.com";
/// The `sub` claim's condition key.
const GITHUB_SUB: &str = "token.actions.githubusercontent.com:sub";
/// The `aud` claim's condition key.
const GITHUB_AUD: &str = "token.actions.githubusercontent.com:aud";
/// The audience `aws-actions/configure-aws-credentials` requests.
const STS_AUDIENCE: &str = "sts.amazonaws.com";

/// The body of the block at `address` (`aws_x.y` or `data.aws_x.y`), if the root has one.
pub(crate) fn block<'c>(config: &'c Config, address: &str) -> Option<&'c Value> {
    config.body_at(address)
}

/// Which OIDC provider a federated principal identifier names, as far as the root tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    /// GitHub Actions' provider.
    Github,
    /// Another provider (an EKS cluster's, ...).
    Other,
    /// A reference the root cannot resolve (e.g. an ARN imported from another stack).
    Unknown,
}

/// Which provider `identifier` (a literal ARN, a template or a reference) names.
fn provider(config: &Config, identifier: &str) -> Provider {
    if identifier.ends_with(&format!("oidc-provider/{GITHUB_ISSUER}")) {
        return Provider::Github;
    }
    if refs::is_literal(identifier) {
        return Provider::Other;
    }
    let mut found = Provider::Unknown;
    for text in refs::references(identifier) {
        let Some(address) = text.strip_suffix(".arn").filter(|a| {
            a.strip_prefix("data.")
                .unwrap_or(a)
                .starts_with("aws_iam_openid_connect_provider.")
        }) else {
            continue;
        };
        if let Some(body) = block(config, address) {
            let url = body["url"].as_str().unwrap_or_default();
            let arn = body["arn"].as_str().unwrap_or_default();
            if url.trim_end_matches('/') == format!("https://{GITHUB_ISSUER}")
                || arn.ends_with(&format!("oidc-provider/{GITHUB_ISSUER}"))
            {
                return Provider::Github;
            }
            found = Provider::Other;
        }
    }
    found
}

/// Whether a policy statement (as keel stores it) allows GitHub Actions' OIDC provider: a
/// federated principal that names it, or (for a provider ARN imported from another stack,
/// which the root cannot resolve) a federated principal with a condition on a
/// `token.actions.githubusercontent.com:` claim.
pub(crate) fn trusts_github(config: &Config, statement: &Value) -> bool {
    if statement["effect"].as_str().unwrap_or("Allow") != "Allow" {
        return false;
    }
    let providers: Vec<Provider> = statement["principals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["type"] == "Federated")
        .flat_map(|p| p["identifiers"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .map(|id| provider(config, id))
        .collect();
    providers.contains(&Provider::Github)
        || (providers.contains(&Provider::Unknown)
            && conditions(statement)
                .iter()
                .any(|(_, v, _)| v.starts_with(&format!("{GITHUB_ISSUER}:"))))
}

/// Whether `subject` is one repository's environment, branch or tag, without wildcards.
fn is_pinned_subject(subject: &str) -> bool {
    fn name_ok(s: &str) -> bool {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    }
    if subject.contains(['*', '?']) || !refs::is_literal(subject) {
        return false;
    }
    let Some(rest) = subject.strip_prefix("repo:") else {
        return false;
    };
    let Some((repository, qualifier)) = rest.split_once(':') else {
        return false;
    };
    let Some((owner, repo)) = repository.split_once('/') else {
        return false;
    };
    if !name_ok(owner) || !name_ok(repo) {
        return false;
    }
    ["environment:", "ref:refs/heads/", "ref:refs/tags/"]
        .iter()
        .any(|prefix| {
            qualifier
                .strip_prefix(prefix)
                .is_some_and(|name| !name.is_empty())
        })
}

/// What is wrong with the statement's `sub` and `aud` pins (empty when both are pinned).
fn problems(statement: &Value) -> Vec<String> {
    let all = conditions(statement);
    let mut out = Vec::new();
    for (test, variable, _) in &all {
        let tail = literal_tail(variable);
        if (tail.ends_with(":sub") || tail.ends_with(":aud")) && *test != "StringEquals" {
            out.push(format!("{variable} is tested with {test}"));
        }
    }
    let subs: Vec<&str> = all
        .iter()
        .filter(|(t, v, _)| *t == "StringEquals" && *v == GITHUB_SUB)
        .flat_map(|(_, _, values)| values.iter().copied())
        .collect();
    if subs.is_empty() {
        out.push(format!("no StringEquals on {GITHUB_SUB}"));
    }
    for s in subs.iter().filter(|s| !is_pinned_subject(s)) {
        out.push(format!(
            "sub {s:?} is not repo:<owner>/<repo>:environment:<name> or :ref:refs/heads/<branch> or :ref:refs/tags/<tag>"
        ));
    }
    let auds: Vec<&Vec<&str>> = all
        .iter()
        .filter(|(t, v, _)| *t == "StringEquals" && *v == GITHUB_AUD)
        .map(|(_, _, values)| values)
        .collect();
    if auds.is_empty() {
        out.push(format!("no StringEquals on {GITHUB_AUD}"));
    }
    for values in auds.into_iter().filter(|v| **v != [STS_AUDIENCE]) {
        out.push(format!("aud is {values:?}, expected [\"{STS_AUDIENCE}\"]"));
    }
    out
}

fn check(config: &Config, out: &mut Vec<Finding>) {
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Data || r.ty() != "aws_iam_policy_document" {
            continue;
        }
        for statement in body["statement"].as_array().into_iter().flatten() {
            if !trusts_github(config, statement) {
                continue;
            }
            let problems = problems(statement);
            if !problems.is_empty() {
                out.push(Finding {
                    rule: RULE.name,
                    address: r.address(),
                    message: format!(
                        "statement {:?} trusts GitHub Actions without pinning the workflow: {}",
                        statement["sid"].as_str().unwrap_or(""),
                        problems.join("; ")
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::policy::check;
    use crate::refs::Ref;
    use crate::tf::Config;
    use crate::tf::tests::config;

    const PROVIDER: &str =
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";

    fn trust(provider: &str, subs: Value, extra: Value) -> Value {
        let mut conditions = vec![
            json!({"test": "StringEquals", "variable": "token.actions.githubusercontent.com:sub", "values": subs}),
            json!({"test": "StringEquals", "variable": "token.actions.githubusercontent.com:aud", "values": ["sts.amazonaws.com"]}),
        ];
        conditions.extend(extra.as_array().cloned().unwrap_or_default());
        json!({"statement": [{
            "sid": "AssumeFromGitHub",
            "effect": "Allow",
            "actions": ["sts:AssumeRoleWithWebIdentity"],
            "principals": [{"type": "Federated", "identifiers": [provider]}],
            "condition": conditions,
        }]})
    }

    fn found(c: &Config) -> Vec<String> {
        crate::policy::addresses_found(c, super::RULE.name)
    }

    #[test]
    fn environment_branch_and_tag_subjects_pass() {
        let mut c = config();
        c.data(
            "iam",
            "aws_iam_policy_document",
            "deploy",
            trust(
                PROVIDER,
                json!([
                    "repo:acme/analytics-api:environment:prod",
                    "repo:acme/analytics-api:ref:refs/heads/main",
                    "repo:acme/analytics-api:ref:refs/tags/v1.2.3",
                ]),
                json!([]),
            ),
        );
        assert!(found(&c).is_empty(), "{:?}", check(&c));
    }

    #[test]
    fn wildcards_likes_and_other_subjects_are_found() {
        let bad_subjects = [
            json!(["repo:acme/*"]),
            json!(["repo:acme/api:*"]),
            json!(["repo:acme/api:ref:refs/heads/*"]),
            json!(["repo:acme/api:pull_request"]),
            json!(["repo:acme/api:environment:"]),
            json!(["repo:acme:environment:prod"]),
            json!(["repo:acme/api:environment:prod", "repo:*"]),
            json!([]),
        ];
        for subs in bad_subjects {
            let mut c = config();
            c.data(
                "iam",
                "aws_iam_policy_document",
                "deploy",
                trust(PROVIDER, subs.clone(), json!([])),
            );
            assert_eq!(found(&c), ["data.aws_iam_policy_document.deploy"], "{subs}");
        }
        let mut c = config();
        c.data(
            "iam",
            "aws_iam_policy_document",
            "like",
            trust(
                PROVIDER,
                json!(["repo:acme/api:environment:prod"]),
                json!([{"test": "StringLike", "variable": "token.actions.githubusercontent.com:sub", "values": ["repo:acme/*"]}]),
            ),
        );
        c.data(
            "iam",
            "aws_iam_policy_document",
            "no_aud",
            json!({"statement": [{
                "sid": "S", "effect": "Allow", "actions": ["sts:AssumeRoleWithWebIdentity"],
                "principals": [{"type": "Federated", "identifiers": [PROVIDER]}],
                "condition": [{"test": "StringEquals", "variable": "token.actions.githubusercontent.com:sub", "values": ["repo:acme/api:environment:prod"]}],
            }]}),
        );
        assert_eq!(
            found(&c),
            [
                "data.aws_iam_policy_document.like",
                "data.aws_iam_policy_document.no_aud"
            ]
        );
    }

    #[test]
    fn a_provider_reference_is_followed() {
        let mut c = config();
        let github = c.resource(
            "iam",
            "aws_iam_openid_connect_provider",
            "github",
            json!({"url": "https://token.actions.githubusercontent.com", "client_id_list": ["sts.amazonaws.com"]}),
        );
        let eks = c.resource(
            "iam",
            "aws_iam_openid_connect_provider",
            "eks",
            json!({"url": "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC"}),
        );
        c.data(
            "iam",
            "aws_iam_policy_document",
            "github",
            trust(&github.arn().to_string(), json!(["repo:acme/*"]), json!([])),
        );
        c.data(
            "iam",
            "aws_iam_policy_document",
            "eks",
            trust(&eks.arn().to_string(), json!(["repo:acme/*"]), json!([])),
        );
        let imported = Ref::data("aws_ssm_parameter", "github_oidc_provider_arn")
            .attr("insecure_value")
            .to_string();
        c.data(
            "iam",
            "aws_iam_policy_document",
            "imported",
            trust(
                &imported,
                json!(["repo:acme/api:ref:refs/heads/*"]),
                json!([]),
            ),
        );
        assert_eq!(
            found(&c),
            [
                "data.aws_iam_policy_document.github",
                "data.aws_iam_policy_document.imported"
            ]
        );
        let provider = |id: &str| super::provider(&c, id);
        assert_eq!(provider(&github.arn().to_string()), super::Provider::Github);
        assert_eq!(provider(&eks.arn().to_string()), super::Provider::Other);
        assert_eq!(provider(&imported), super::Provider::Unknown);
        assert_eq!(provider(PROVIDER), super::Provider::Github);
        assert_eq!(
            provider("arn:aws:iam::1:oidc-provider/gitlab.com"),
            super::Provider::Other
        );
    }
}
