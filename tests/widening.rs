//! Issue 22: random widening changes, applied to bodies keel really generates, are each
//! classified as security (or worse) by `keel diff`: address sets (a range split, a
//! covering range added, a prefix widened, the internet as two halves), IAM actions and
//! resources (actions added, `*`, resource ARNs widened with wildcards), principals (a new
//! account, another account, `*`).

use crate::common;

use std::sync::OnceLock;

use ipnet::{IpNet, Ipv4Net};
use keel::diff::addrs::AddrSet;
use keel::diff::{Class, FileTree, diff_stack};
use keel::ops::synth::Output;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

/// Cases per property (`PROPTEST_CASES` overrides).
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn outputs() -> &'static [Output] {
    static OUTPUTS: OnceLock<Vec<Output>> = OnceLock::new();
    OUTPUTS.get_or_init(common::outputs)
}

fn output(env: &str, stack: &str) -> &'static Output {
    outputs()
        .iter()
        .find(|o| o.env == env && o.stack == stack)
        .unwrap_or_else(|| panic!("no output for {stack} in {env}"))
}

/// One Terraform block as a stack's only file.
fn tf(block: &str, rtype: &str, body: &Value) -> FileTree {
    let mut t = FileTree::new();
    let doc = json!({block: {rtype: {"x": body}}});
    t.insert(
        "terraform/main.tf.json".into(),
        serde_json::to_vec(&doc).expect("a Value serializes"),
    );
    t
}

/// One Kubernetes object as a stack's only file (JSON is YAML).
fn k8s(body: &Value) -> FileTree {
    let mut t = FileTree::new();
    t.insert(
        "k8s/80-object.yaml".into(),
        serde_json::to_vec(body).expect("a Value serializes"),
    );
    t
}

/// The one change between `before` and `after` is security or replace risk.
fn flagged(before: FileTree, after: FileTree) -> Result<(), TestCaseError> {
    let changes = diff_stack("prod", "s", &before, &after).changes;
    prop_assert_eq!(changes.len(), 1, "{:#?}", changes);
    prop_assert!(
        changes[0].class != Class::Other,
        "a widening classified as other: {:#?}",
        changes[0]
    );
    Ok(())
}

fn resource(env: &str, stack: &str, rtype: &str, name: &str) -> Value {
    common::resources(output(env, stack))
        .into_iter()
        .find(|(t, n, _)| t == rtype && n == name)
        .map(|(_, _, b)| b)
        .unwrap_or_else(|| panic!("no {rtype}.{name} in {stack}@{env}"))
}

/// Every policy document keel generates, across stacks and environments.
fn policy_documents() -> &'static [Value] {
    static DOCS: OnceLock<Vec<Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut docs = Vec::new();
        for o in outputs() {
            for (path, body) in &o.files {
                if !path.starts_with("terraform") {
                    continue;
                }
                let v: Value = serde_json::from_str(body).expect("JSON");
                if let Some(named) = v
                    .pointer("/data/aws_iam_policy_document")
                    .and_then(Value::as_object)
                {
                    docs.extend(named.values().cloned());
                }
            }
        }
        assert!(docs.len() > 20, "only {} policy documents", docs.len());
        docs
    })
}

fn net(addr: u32, len: u8) -> IpNet {
    // `len % 33 <= 32`, a valid IPv4 prefix length.
    IpNet::V4(
        Ipv4Net::new(addr.into(), len % 33)
            .expect("prefix length <= 32")
            .trunc(),
    )
}

fn set_of(list: &[IpNet]) -> AddrSet {
    let mut s = AddrSet::default();
    for n in list {
        s.insert(n);
    }
    s
}

/// How a list of CIDRs is widened.
#[derive(Debug, Clone)]
enum Widen {
    /// Entry `index` becomes its supernet `k` bits shorter.
    Prefix { index: usize, k: u8 },
    /// Entry `index` becomes the two halves of its supernet `k` bits shorter.
    Split { index: usize, k: u8 },
    /// A range is added (kept only when it reaches a new address).
    Add(IpNet),
    /// `0.0.0.0/1` and `128.0.0.0/1` are added.
    Halves,
}

fn widen_strategy() -> impl Strategy<Value = Widen> {
    prop_oneof![
        (any::<usize>(), 1u8..=32).prop_map(|(index, k)| Widen::Prefix { index, k }),
        (any::<usize>(), 1u8..=32).prop_map(|(index, k)| Widen::Split { index, k }),
        (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Widen::Add(net(a, l))),
        Just(Widen::Halves),
    ]
}

/// `list` widened by `w`; `None` when `w` does not apply (or would not widen).
fn widened(list: &[IpNet], w: &Widen) -> Option<Vec<IpNet>> {
    let mut out = list.to_vec();
    match w {
        Widen::Prefix { index, k } | Widen::Split { index, k } => {
            let i = index % out.len().max(1);
            let n = *out.get(i)?;
            let len = n.prefix_len().checked_sub(*k)?;
            let wider = IpNet::new(n.addr(), len).ok()?.trunc();
            if matches!(w, Widen::Split { .. }) {
                let halves: Vec<IpNet> = wider.subnets(len + 1).ok()?.collect();
                out.splice(i..=i, halves);
            } else {
                out[i] = wider;
            }
        }
        Widen::Add(n) => out.push(*n),
        Widen::Halves => out.extend([net(0, 1), net(1 << 31, 1)]),
    }
    (!set_of(&out).is_subset(&set_of(list))).then_some(out)
}

fn strings(list: &[IpNet]) -> Value {
    Value::Array(list.iter().map(|n| json!(n.to_string())).collect())
}

proptest! {
    #![proptest_config(config(512))]

    /// dev's EKS public endpoint allow-list (`vpc_config[0].public_access_cidrs`).
    #[test]
    fn widened_endpoint_allow_lists_are_security(
        extra in prop::collection::vec((any::<u32>(), 8u8..=32), 0..3),
        w in widen_strategy(),
    ) {
        let cluster = resource("dev", "platform", "aws_eks_cluster", "main");
        let real: Vec<IpNet> = cluster["vpc_config"][0]["public_access_cidrs"]
            .as_array()
            .expect("dev has a public endpoint allow-list")
            .iter()
            .map(|v| v.as_str().and_then(keel::diff::addrs::parse_net).expect("a CIDR"))
            .collect();
        let mut list = real;
        list.extend(extra.iter().map(|(a, l)| net(*a, *l)));
        let Some(wider) = widened(&list, &w) else {
            return Err(TestCaseError::reject("no widening"));
        };
        let mut before = cluster.clone();
        before["vpc_config"][0]["public_access_cidrs"] = strings(&list);
        let mut after = cluster;
        after["vpc_config"][0]["public_access_cidrs"] = strings(&wider);
        flagged(tf("resource", "aws_eks_cluster", &before), tf("resource", "aws_eks_cluster", &after))?;
    }

    /// A real ingress rule of the load balancer, its one `cidr_ipv4` widened or moved.
    #[test]
    fn widened_ingress_rules_are_security(
        (addr, len) in (any::<u32>(), 1u8..=32),
        w in widen_strategy(),
    ) {
        let rule = resource(
            "prod",
            "langgraph-platform",
            "aws_vpc_security_group_ingress_rule",
            "alb_https_from_internet",
        );
        let old = net(addr, len);
        let Some(wider) = widened(&[old], &w) else {
            return Err(TestCaseError::reject("no widening"));
        };
        // One attribute holds one range: each new range is its own rule value.
        let rtype = "aws_vpc_security_group_ingress_rule";
        let mut before = rule.clone();
        before["cidr_ipv4"] = json!(old.to_string());
        let after_set = set_of(&wider);
        for n in wider.iter().filter(|n| !set_of(&[**n]).is_subset(&set_of(&[old]))) {
            let mut after = rule.clone();
            after["cidr_ipv4"] = json!(n.to_string());
            flagged(tf("resource", rtype, &before), tf("resource", rtype, &after))?;
        }
        prop_assert!(!after_set.is_subset(&set_of(&[old])));
    }

    /// A real NetworkPolicy's egress `ipBlock`: its range widened, or a peer added.
    #[test]
    fn widened_network_policies_are_security(w in widen_strategy()) {
        let path = std::path::Path::new("k8s/80-networkpolicy-backend.yaml");
        let policy: Value = serde_saphyr::from_str(&output("prod", "aegistickets").files[path])
            .expect("YAML");
        let peers = policy["spec"]["egress"]
            .as_array()
            .expect("egress rules")
            .iter()
            .position(|r| r["to"][0]["ipBlock"]["cidr"].is_string())
            .expect("an egress rule to an ipBlock");
        let old: Vec<IpNet> = policy["spec"]["egress"][peers]["to"]
            .as_array()
            .expect("peers")
            .iter()
            .filter_map(|p| p["ipBlock"]["cidr"].as_str().and_then(keel::diff::addrs::parse_net))
            .collect();
        let Some(wider) = widened(&old, &w) else {
            return Err(TestCaseError::reject("no widening"));
        };
        let mut after = policy.clone();
        after["spec"]["egress"][peers]["to"] = Value::Array(
            wider.iter().map(|n| json!({"ipBlock": {"cidr": n.to_string()}})).collect(),
        );
        flagged(k8s(&policy), k8s(&after))?;
    }
}

/// How an IAM policy document is widened.
#[derive(Debug, Clone)]
enum Grant {
    /// An action is added.
    Action(String),
    /// A resource ARN is cut at a position and ends in `*`.
    Wildcard { resource: usize, cut: usize },
    /// `*` is added to the resources.
    AnyResource,
    /// A principal of a new account is trusted.
    Account(String),
    /// An existing principal's account becomes another one.
    OtherAccount { principal: usize, account: String },
    /// Anyone is trusted.
    Anyone,
}

fn grant_strategy() -> impl Strategy<Value = Grant> {
    let account = "[1-9][0-9]{11}";
    prop_oneof![
        "[a-z0-9]{2,12}:[A-Z][A-Za-z]{2,20}".prop_map(Grant::Action),
        "[a-z0-9]{2,12}:\\*".prop_map(Grant::Action),
        Just(Grant::Action("*".into())),
        (any::<usize>(), any::<usize>())
            .prop_map(|(resource, cut)| Grant::Wildcard { resource, cut }),
        Just(Grant::AnyResource),
        account.prop_map(Grant::Account),
        (any::<usize>(), account)
            .prop_map(|(principal, account)| Grant::OtherAccount { principal, account }),
        Just(Grant::Anyone),
    ]
}

fn push(list: &mut Value, v: Value) {
    match list.as_array_mut() {
        Some(a) => a.push(v),
        None => *list = json!([v]),
    }
}

/// `statement` widened by `g`; `None` when `g` does not apply to it.
fn granted(statement: &Value, g: &Grant) -> Option<Value> {
    let mut s = statement.clone();
    let has = |v: &Value, x: &str| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|y| y.as_str() == Some(x)))
    };
    match g {
        Grant::Action(a) => {
            if has(&s["actions"], a) || s.get("not_actions").is_some() {
                return None;
            }
            push(&mut s["actions"], json!(a));
        }
        Grant::Wildcard { resource, cut } => {
            let list = s["resources"].as_array()?.clone();
            let r = list.get(resource % list.len().max(1))?.as_str()?;
            let cut = cut % r.len().max(1);
            let wild = format!("{}*", r.get(..cut)?);
            if has(&s["resources"], &wild) || s.get("not_resources").is_some() {
                return None;
            }
            push(&mut s["resources"], json!(wild));
        }
        Grant::AnyResource => {
            if has(&s["resources"], "*") || s.get("not_resources").is_some() {
                return None;
            }
            push(&mut s["resources"], json!("*"));
        }
        Grant::Account(account) => {
            let arn = format!("arn:aws:iam::{account}:root");
            if s.to_string().contains(&arn) {
                return None;
            }
            push(
                &mut s["principals"],
                json!({"type": "AWS", "identifiers": [arn]}),
            );
        }
        Grant::OtherAccount { principal, account } => {
            let list = s["principals"].as_array_mut()?;
            let n = list.len().max(1);
            let ids = list.get_mut(principal % n)?["identifiers"].as_array_mut()?;
            let id = ids.first_mut()?;
            let parts: Vec<&str> = id.as_str()?.splitn(6, ':').collect();
            let [arn, partition, service, region, old, rest] = parts.as_slice() else {
                return None;
            };
            if old == account || old.is_empty() {
                return None;
            }
            *id = json!(format!(
                "{arn}:{partition}:{service}:{region}:{account}:{rest}"
            ));
        }
        Grant::Anyone => {
            let already = s["principals"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["type"] == "AWS" && has(&p["identifiers"], "*"))
            });
            if already {
                return None;
            }
            push(
                &mut s["principals"],
                json!({"type": "AWS", "identifiers": ["*"]}),
            );
        }
    }
    Some(s)
}

proptest! {
    #![proptest_config(config(1024))]

    /// Any real policy document (grants, trust and key policies), one Allow statement
    /// widened.
    #[test]
    fn widened_policy_documents_are_security(
        doc in any::<prop::sample::Index>(),
        statement in any::<prop::sample::Index>(),
        g in grant_strategy(),
    ) {
        let docs = policy_documents();
        let before = doc.get(docs);
        let statements = before["statement"].as_array().expect("statements");
        let i = statement.index(statements.len());
        if statements[i]["effect"] == "Deny" {
            return Err(TestCaseError::reject("a Deny statement"));
        }
        let Some(wider) = granted(&statements[i], &g) else {
            return Err(TestCaseError::reject("not applicable"));
        };
        let mut after = before.clone();
        after["statement"][i] = wider;
        flagged(
            tf("data", "aws_iam_policy_document", before),
            tf("data", "aws_iam_policy_document", &after),
        )?;
    }

    /// The platform's cluster admin entries, their principal moved to another account.
    #[test]
    fn access_entries_for_another_principal_are_security(account in "[1-9][0-9]{11}") {
        for rtype in ["aws_eks_access_entry", "aws_eks_access_policy_association"] {
            let before = resource("prod", "platform", rtype, "admin_role_platform_admins");
            let arn = before["principal_arn"].as_str().expect("a principal").to_owned();
            let moved = format!("arn:aws:iam::{account}:{}", arn.splitn(6, ':').nth(5).expect("an ARN"));
            if moved == arn {
                return Err(TestCaseError::reject("the same account"));
            }
            let mut after = before.clone();
            after["principal_arn"] = json!(moved);
            flagged(tf("resource", rtype, &before), tf("resource", rtype, &after))?;
        }
    }
}
