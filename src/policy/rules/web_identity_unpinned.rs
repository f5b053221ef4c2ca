//! `web_identity_unpinned`
//!
//! *What it does:* flags an `Allow` statement of an `aws_iam_policy_document` that allows
//! `sts:AssumeRoleWithWebIdentity` (also through `sts:*`, `sts:AssumeRole*` or `*`) unless it
//! pins both claims of the token with `StringEquals`: a variable ending in `:sub` (e.g.
//! `<issuer>:sub = system:serviceaccount:<namespace>:<service account>`) and one ending in
//! `:aud` whose values are exactly `["sts.amazonaws.com"]`. A `StringLike` (or any other
//! test) on either claim, or a value holding `*`, is refused too. The variable may embed an
//! expression (the issuer, `replace(aws_eks_cluster.x.identity[0].oidc[0].issuer, ...)`):
//! the rule reads the text after the last expression.
//!
//! *Why is this bad:* without `sub`, every identity the OIDC provider vouches for (every
//! service account of the cluster, every repository of the CI provider) can assume the
//! role; without `aud`, tokens minted for another audience are accepted.
//!
//! *Use instead:* `StringEquals` on `<issuer>:sub` with the exact subjects and on
//! `<issuer>:aud` with `sts.amazonaws.com`, as keel's IRSA trust emits.

use serde_json::Value;

use super::super::{Finding, Rule};
use crate::refs::{self, BlockKind};
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "web_identity_unpinned",
    summary: "a web-identity trust pins its token's sub and aud with StringEquals",
    check,
};

/// The action this rule is about.
const WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";

/// The only audience STS accepts for IAM roles.
const STS_AUDIENCE: &str = "sts.amazonaws.com";

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        _ => v
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default(),
    }
}

/// Whether the IAM action pattern `pattern` (case-insensitive, `*` and `?` globs) covers
/// `action`.
pub(crate) fn action_matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
            Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
            Some((c, rest)) => s
                .split_first()
                .is_some_and(|(d, tail)| c.eq_ignore_ascii_case(d) && glob(rest, tail)),
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
}

/// The literal tail of a condition variable: the text after its last embedded expression
/// (or rendered `}`), e.g. `:sub` for `"<issuer expression>:sub"`.
pub(crate) fn literal_tail(variable: &str) -> &str {
    variable
        .rsplit(|c| refs::is_reserved(c) || c == '}')
        .next()
        .unwrap_or(variable)
}

/// One condition of a statement as (test, variable, values).
pub(crate) fn conditions(statement: &Value) -> Vec<(&str, &str, Vec<&str>)> {
    statement["condition"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["test"].as_str().unwrap_or_default(),
                c["variable"].as_str().unwrap_or_default(),
                strings(&c["values"]),
            )
        })
        .collect()
}

/// What is wrong with how `statement` pins the claim whose variable ends in `claim`
/// (`:sub` or `:aud`); `None` when it is pinned.
fn claim_problem(statement: &Value, claim: &str) -> Option<String> {
    let on_claim: Vec<_> = conditions(statement)
        .into_iter()
        .filter(|(_, variable, _)| literal_tail(variable).ends_with(claim))
        .collect();
    if on_claim.is_empty() {
        return Some(format!("no StringEquals condition on {claim}"));
    }
    for (test, _, values) in &on_claim {
        if *test != "StringEquals" {
            return Some(format!(
                "{claim} is tested with {test}, expected StringEquals"
            ));
        }
        if values.is_empty() {
            return Some(format!("the {claim} condition has no values"));
        }
        if let Some(v) = values.iter().find(|v| v.contains('*')) {
            return Some(format!("{claim} value {v:?} holds a wildcard"));
        }
        if claim == ":aud" && *values != [STS_AUDIENCE] {
            return Some(format!(
                ":aud values are {values:?}, expected [\"{STS_AUDIENCE}\"]"
            ));
        }
    }
    None
}

fn check(config: &Config, out: &mut Vec<Finding>) {
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Data || r.ty() != "aws_iam_policy_document" {
            continue;
        }
        for statement in body["statement"].as_array().into_iter().flatten() {
            if statement["effect"].as_str().unwrap_or("Allow") != "Allow"
                || !strings(&statement["actions"])
                    .iter()
                    .any(|a| action_matches(a, WEB_IDENTITY))
            {
                continue;
            }
            let problems: Vec<String> = [":sub", ":aud"]
                .into_iter()
                .filter_map(|claim| claim_problem(statement, claim))
                .collect();
            if !problems.is_empty() {
                out.push(Finding {
                    rule: RULE.name,
                    address: r.address(),
                    message: format!(
                        "statement {:?} allows {WEB_IDENTITY} with an unpinned token: {}; pin <issuer>:sub to the exact subjects and <issuer>:aud to {STS_AUDIENCE} with StringEquals",
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
    use crate::tf::tests::config;

    fn issuer() -> String {
        Ref::resource("aws_eks_cluster", "main")
            .attr("identity[0].oidc[0].issuer")
            .to_string()
    }

    fn trust(conditions: Value) -> Value {
        json!({"statement": [{
            "sid": "AssumeFromServiceAccount",
            "effect": "Allow",
            "actions": ["sts:AssumeRoleWithWebIdentity"],
            "principals": [{"type": "Federated", "identifiers": [
                Ref::resource("aws_iam_openid_connect_provider", "eks").arn().to_string()
            ]}],
            "condition": conditions,
        }]})
    }

    fn found(c: &crate::tf::Config) -> Vec<String> {
        crate::policy::addresses_found(c, super::RULE.name)
    }

    #[test]
    fn pinned_sub_and_aud_pass() {
        let mut c = config();
        let sub = format!("{}:sub", issuer());
        let aud = format!("{}:aud", issuer());
        c.data(
            "iam",
            "aws_iam_policy_document",
            "irsa",
            trust(json!([
                {"test": "StringEquals", "variable": sub, "values": ["system:serviceaccount:kube-system:aws-load-balancer-controller"]},
                {"test": "StringEquals", "variable": aud, "values": ["sts.amazonaws.com"]},
            ])),
        );
        c.data(
            "iam",
            "aws_iam_policy_document",
            "literal",
            trust(json!([
                {"test": "StringEquals", "variable": "oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub", "values": ["system:serviceaccount:a:b"]},
                {"test": "StringEquals", "variable": "oidc.eks.eu-west-1.amazonaws.com/id/ABC:aud", "values": ["sts.amazonaws.com"]},
            ])),
        );
        assert!(found(&c).is_empty(), "{:?}", check(&c));
    }

    #[test]
    fn missing_like_or_wildcard_claims_are_found() {
        let sub = format!("{}:sub", issuer());
        let aud = format!("{}:aud", issuer());
        let cases = [
            // no sub
            json!([{"test": "StringEquals", "variable": aud, "values": ["sts.amazonaws.com"]}]),
            // no aud
            json!([{"test": "StringEquals", "variable": sub, "values": ["system:serviceaccount:a:b"]}]),
            // StringLike on sub
            json!([
                {"test": "StringLike", "variable": sub, "values": ["system:serviceaccount:a:*"]},
                {"test": "StringEquals", "variable": aud, "values": ["sts.amazonaws.com"]},
            ]),
            // wildcard in a StringEquals value
            json!([
                {"test": "StringEquals", "variable": sub, "values": ["system:serviceaccount:*"]},
                {"test": "StringEquals", "variable": aud, "values": ["sts.amazonaws.com"]},
            ]),
            // another audience
            json!([
                {"test": "StringEquals", "variable": sub, "values": ["system:serviceaccount:a:b"]},
                {"test": "StringEquals", "variable": aud, "values": ["sts.amazonaws.com", "other"]},
            ]),
            // StringEquals on sub plus a StringLike that widens it
            json!([
                {"test": "StringEquals", "variable": sub, "values": ["system:serviceaccount:a:b"]},
                {"test": "StringLike", "variable": sub, "values": ["system:serviceaccount:a:b"]},
                {"test": "StringEquals", "variable": aud, "values": ["sts.amazonaws.com"]},
            ]),
            // nothing at all
            json!([]),
        ];
        for (i, conditions) in cases.into_iter().enumerate() {
            let mut c = config();
            c.data(
                "iam",
                "aws_iam_policy_document",
                "irsa",
                trust(conditions.clone()),
            );
            assert_eq!(
                found(&c),
                ["data.aws_iam_policy_document.irsa"],
                "case {i}: {conditions}"
            );
        }
    }

    #[test]
    fn wildcard_actions_that_cover_web_identity_count() {
        let mut c = config();
        c.data(
            "iam",
            "aws_iam_policy_document",
            "wide",
            json!({"statement": [{"sid": "S", "effect": "Allow", "actions": ["sts:AssumeRole*"],
                "principals": [{"type": "Federated", "identifiers": ["arn:aws:iam::1:oidc-provider/x"]}]}]}),
        );
        c.data(
            "iam",
            "aws_iam_policy_document",
            "service",
            json!({"statement": [{"sid": "S", "effect": "Allow", "actions": ["sts:AssumeRole"],
                "principals": [{"type": "Service", "identifiers": ["ecs-tasks.amazonaws.com"]}]}]}),
        );
        assert_eq!(found(&c), ["data.aws_iam_policy_document.wide"]);
    }

    #[test]
    fn tails_and_globs() {
        assert_eq!(super::literal_tail(&format!("{}:sub", issuer())), ":sub");
        assert_eq!(super::literal_tail("${x}:aud"), ":aud");
        assert!(super::action_matches(
            "sts:*",
            "sts:AssumeRoleWithWebIdentity"
        ));
        assert!(super::action_matches(
            "STS:assumerolewithwebidentity",
            "sts:AssumeRoleWithWebIdentity"
        ));
        assert!(!super::action_matches(
            "sts:AssumeRole",
            "sts:AssumeRoleWithWebIdentity"
        ));
    }
}
