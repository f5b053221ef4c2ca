//! Classifies a [`Change`]: replace risk (an attribute that forces replacement of a stateful
//! or identity-bearing resource, a destroyed stateful resource, a rename without a `moved`
//! block), security broadening (IAM grants added or conditions removed, ingress widened,
//! public exposure, encryption or deletion protection off), or anything else.
//!
//! The tables below are reviewed per resource type keel emits; "forces replacement" is the
//! AWS provider's `ForceNew` (or CloudFormation's "Update requires: Replacement" where the
//! provider follows the API).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::{Action, Change, Kind, Object, normalized};

/// How severe a change is; ordered most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Forces replacement of (or destroys) a stateful or identity-bearing resource.
    Replace,
    /// Widens access: IAM, network, public exposure, encryption, deletion protection.
    Security,
    /// Anything else.
    Other,
}

impl Class {
    /// The word used in reports and `--fail-on`.
    pub fn label(self) -> &'static str {
        match self {
            Class::Replace => "replace",
            Class::Security => "security",
            Class::Other => "other",
        }
    }
}

/// Attributes (normalized JSON paths, prefixes match) whose change forces Terraform to
/// destroy and re-create the resource, for the stateful or identity-bearing types keel emits.
pub const FORCES_REPLACEMENT: &[(&str, &[&str])] = &[
    (
        "aws_db_instance",
        &[
            "identifier",
            "engine",
            "db_subnet_group_name",
            "storage_encrypted",
            "kms_key_id",
            "availability_zone",
            "username",
            "db_name",
            "character_set_name",
            "snapshot_identifier",
        ],
    ),
    ("aws_db_subnet_group", &["name"]),
    ("aws_db_parameter_group", &["name", "family"]),
    (
        "aws_elasticache_replication_group",
        &[
            "replication_group_id",
            "at_rest_encryption_enabled",
            // In place for engine versions >= 7.0.5 (see `replaced_in_place`).
            "transit_encryption_enabled",
            "kms_key_id",
            "subnet_group_name",
            "port",
            "preferred_cache_cluster_azs",
        ],
    ),
    ("aws_elasticache_subnet_group", &["name"]),
    ("aws_elasticache_parameter_group", &["name", "family"]),
    (
        "aws_kms_key",
        &["customer_master_key_spec", "key_usage", "multi_region"],
    ),
    ("aws_kms_alias", &["name"]),
    (
        "aws_subnet",
        &[
            "cidr_block",
            "vpc_id",
            "availability_zone",
            "availability_zone_id",
        ],
    ),
    ("aws_vpc", &["cidr_block"]),
    (
        "aws_eks_cluster",
        &[
            "name",
            "role_arn",
            // Not `vpc_config.subnet_ids`: updated in place since hashicorp/aws 5.25
            // (UpdateClusterConfig; keel requires >= 5.100).
            "encryption_config",
            "kubernetes_network_config.service_ipv4_cidr",
        ],
    ),
    (
        "aws_eks_node_group",
        &[
            "cluster_name",
            "node_group_name",
            "node_role_arn",
            "subnet_ids",
            "instance_types",
            "capacity_type",
            "ami_type",
            "disk_size",
        ],
    ),
    ("aws_eks_addon", &["cluster_name", "addon_name"]),
    ("aws_s3_bucket", &["bucket", "bucket_prefix"]),
    ("aws_secretsmanager_secret", &["name", "name_prefix"]),
    ("aws_ecr_repository", &["name"]),
    ("aws_iam_role", &["name", "name_prefix", "path"]),
    ("aws_iam_openid_connect_provider", &["url"]),
    ("aws_lb", &["name", "internal", "load_balancer_type"]),
    (
        "aws_lb_target_group",
        &["name", "port", "protocol", "vpc_id", "target_type"],
    ),
    ("aws_ecs_cluster", &["name"]),
    ("aws_ecs_service", &["name", "cluster", "launch_type"]),
    ("aws_security_group", &["name", "vpc_id", "description"]),
    ("aws_cloudwatch_log_group", &["name"]),
    ("aws_sns_topic", &["name"]),
    ("aws_ssm_parameter", &["name"]),
    ("aws_codedeploy_app", &["name", "compute_platform"]),
    ("aws_nat_gateway", &["subnet_id", "allocation_id"]),
    (
        "aws_vpc_endpoint",
        &["vpc_id", "service_name", "vpc_endpoint_type"],
    ),
];

/// Table entries that the provider changes in place under a condition of the new body:
/// `transit_encryption_enabled` of a replication group whose engine is 7.0.5 or later
/// (hashicorp/aws 5.x changelog: "can now be done in-place for engine versions > 7.0.5").
fn replaced_in_place(rtype: &str, path: &str, after: &Object) -> bool {
    match (rtype, path) {
        ("aws_elasticache_replication_group", "transit_encryption_enabled") => after
            .body
            .get("engine_version")
            .and_then(Value::as_str)
            .map(|v| {
                let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
                let version = (
                    parts.next().unwrap_or(0),
                    parts.next().unwrap_or(0),
                    parts.next().unwrap_or(0),
                );
                version >= (7, 0, 5)
            })
            .unwrap_or(false),
        _ => false,
    }
}

/// Types whose destruction loses data or an identity others depend on.
pub const STATEFUL: &[&str] = &[
    "aws_db_instance",
    "aws_elasticache_replication_group",
    "aws_kms_key",
    "aws_s3_bucket",
    "aws_secretsmanager_secret",
    "aws_ecr_repository",
    "aws_eks_cluster",
    "aws_vpc",
    "aws_subnet",
    "aws_cloudwatch_log_group",
    "aws_iam_openid_connect_provider",
];

/// Boolean attributes whose turning false (or disappearing) weakens protection.
const PROTECTIONS: &[&str] = &[
    "storage_encrypted",
    "at_rest_encryption_enabled",
    "transit_encryption_enabled",
    "encrypted",
    "enable_key_rotation",
    "deletion_protection",
    "enable_deletion_protection",
    "block_public_acls",
    "block_public_policy",
    "ignore_public_acls",
    "restrict_public_buckets",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "automountServiceAccountToken",
];

/// Boolean attributes whose turning true exposes something.
const EXPOSURES: &[&str] = &[
    "publicly_accessible",
    "endpoint_public_access",
    "map_public_ip_on_launch",
    "associate_public_ip_address",
    "skip_final_snapshot",
    "privileged",
    "allowPrivilegeEscalation",
    "hostNetwork",
    "hostPID",
];

/// Sets `class`, `cosmetic` and `reasons` of `c`; `before` is the old body for an update or
/// move, `object` the new object (the old one for a delete).
pub fn classify(c: &mut Change, before: Option<&Value>, object: &Object) {
    let mut replace = Vec::new();
    let mut security = Vec::new();
    let is_resource = c.kind == Kind::Terraform
        && !c.address.starts_with("data.")
        && !c.address.starts_with("output.")
        && c.rtype.starts_with("aws_");
    // Replace risk.
    match &c.action {
        Action::Delete if is_resource && STATEFUL.contains(&c.rtype.as_str()) => {
            replace.push(format!("destroys this {} and what it holds", c.rtype));
        }
        Action::Delete if c.kind == Kind::Kubernetes && c.rtype == "Namespace" => {
            replace.push("deleting a namespace deletes every object in it".into());
        }
        Action::Delete if c.kind == Kind::Kubernetes && c.rtype == "PersistentVolumeClaim" => {
            replace.push("deleting a claim can delete its volume".into());
        }
        Action::Move { from, moved_block } if c.kind == Kind::Terraform => {
            if *moved_block {
                c.reasons.push(format!(
                    "moved from {from} (a `moved` block keeps the resource)"
                ));
            } else if is_resource {
                replace.push(format!(
                    "renamed from {from} without a `moved` block: Terraform destroys {from} and creates {}",
                    c.address
                ));
            }
        }
        Action::Move { from, .. } => {
            c.reasons.push(format!(
                "renamed from {from}: the new object is created, the old one stays until pruned"
            ));
        }
        _ => {}
    }
    if is_resource && let Some((_, attrs)) = FORCES_REPLACEMENT.iter().find(|(t, _)| *t == c.rtype)
    {
        for a in &c.attributes {
            let p = normalized(&a.path);
            if attrs
                .iter()
                .any(|f| p == *f || p.starts_with(&format!("{f}.")))
                && !replaced_in_place(&c.rtype, &p, object)
            {
                replace.push(format!(
                    "`{}` changes: forces replacement of the {}",
                    a.path, c.rtype
                ));
            }
        }
    }
    if is_resource
        && matches!(
            c.rtype.as_str(),
            "aws_db_subnet_group" | "aws_elasticache_subnet_group"
        )
        && c.attributes
            .iter()
            .any(|a| normalized(&a.path) == "subnet_ids")
    {
        replace.push(format!(
            "`subnet_ids` of the {} change: a running database or cache cannot leave a subnet it uses (the apply fails with the subnet in use); moving it means a new instance or a restore",
            c.rtype
        ));
    }
    if is_resource && c.rtype == "aws_db_instance" {
        for a in c.attributes.iter().filter(|a| a.path == "engine_version") {
            let major = |v: &Option<Value>| {
                v.as_ref()
                    .and_then(Value::as_str)
                    .map(|s| s.split('.').next().unwrap_or(s).to_owned())
            };
            if major(&a.before) != major(&a.after) {
                replace.push(
                    "`engine_version` changes its major version: an upgrade with downtime that needs allow_major_version_upgrade, and no way back"
                        .into(),
                );
            }
        }
    }
    // Security broadening.
    if c.kind == Kind::Terraform && c.rtype == "aws_iam_policy_document" {
        let old = before.map(|b| statements(b, false)).unwrap_or_default();
        let new = match c.action {
            Action::Delete => Vec::new(),
            _ => statements(&object.body, false),
        };
        security.extend(policy_broadening(&old, &new));
    }
    if is_resource {
        for key in ["assume_role_policy", "policy"] {
            let parse = |v: Option<&Value>| {
                v.and_then(|b| b.get(key))
                    .and_then(Value::as_str)
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    .map(|doc| statements(&doc, true))
            };
            let new = if c.action == Action::Delete {
                None
            } else {
                parse(Some(&object.body))
            };
            if let Some(new) = new {
                let old = parse(before).unwrap_or_default();
                security.extend(policy_broadening(&old, &new));
            }
        }
        match (c.rtype.as_str(), &c.action) {
            (
                "aws_iam_role_policy_attachment" | "aws_eks_access_policy_association",
                Action::Create,
            ) => security.push(format!(
                "attaches {}",
                object
                    .body
                    .get("policy_arn")
                    .and_then(Value::as_str)
                    .unwrap_or("a policy")
            )),
            ("aws_vpc_security_group_ingress_rule", Action::Create) => {
                security.push("adds an ingress rule".into())
            }
            ("aws_vpc_security_group_ingress_rule", _) => {
                if let Some(b) = before
                    && ingress_wider(b, &object.body)
                {
                    security.push("ingress widened (ports or source range)".into());
                }
            }
            ("aws_security_group", _) => {
                let count = |v: Option<&Value>| {
                    v.and_then(|b| b.get("ingress"))
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                };
                if count(Some(&object.body)) > count(before) {
                    security.push("adds inline ingress".into());
                }
            }
            _ => {}
        }
    }
    if c.kind == Kind::Kubernetes && c.rtype == "NetworkPolicy" {
        if c.action == Action::Delete {
            security.push("removes a NetworkPolicy: its pods lose that isolation".into());
        } else if let Some(b) = before {
            for dir in ["ingress", "egress"] {
                let rules = |v: &Value| -> Vec<Value> {
                    v.pointer(&format!("/spec/{dir}"))
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                };
                let (old, new) = (rules(b), rules(&object.body));
                let added = new
                    .iter()
                    .filter(|r| !old.iter().any(|o| within(r, o)))
                    .count();
                if added > 0 {
                    security.push(format!(
                        "{dir} widened: {added} rule(s) reach peers or ports no rule reached before"
                    ));
                }
                let types = |v: &Value| {
                    v.pointer("/spec/policyTypes")
                        .and_then(Value::as_array)
                        .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(&capitalized(dir))))
                };
                if types(b) && !types(&object.body) {
                    security.push(format!("{dir} is no longer restricted (policyTypes)"));
                }
            }
        }
    }
    if c.kind == Kind::Kubernetes
        && c.rtype == "Service"
        && let Some(t) = object.body.pointer("/spec/type").and_then(Value::as_str)
        && matches!(t, "LoadBalancer" | "NodePort")
        && before.and_then(|b| b.pointer("/spec/type")) != object.body.pointer("/spec/type")
    {
        security.push(format!("public exposure: Service type {t}"));
    }
    if c.action != Action::Delete {
        for a in &c.attributes {
            security.extend(attribute_broadening(a));
        }
        if c.action == Action::Create {
            let mut found = Vec::new();
            open_ranges(&mut String::new(), &object.body, &mut found);
            security.extend(
                found
                    .into_iter()
                    .map(|p| format!("public exposure: `{p}` opens to the internet")),
            );
            let mut flags = Vec::new();
            exposure_flags(&mut String::new(), &object.body, &mut flags);
            security.extend(flags);
        }
    }
    dedup(&mut replace);
    dedup(&mut security);
    c.class = if !replace.is_empty() {
        Class::Replace
    } else if !security.is_empty() {
        Class::Security
    } else {
        Class::Other
    };
    c.cosmetic = c.class == Class::Other
        && c.action == Action::Update
        && !c.attributes.is_empty()
        && c.attributes.iter().all(|a| is_cosmetic(&a.path));
    let mut reasons = replace;
    reasons.extend(security);
    reasons.append(&mut c.reasons);
    c.reasons = reasons;
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// Tags, descriptions and `//` comments.
fn is_cosmetic(path: &str) -> bool {
    let p = normalized(path);
    let first = p.split('.').next().unwrap_or(&p);
    matches!(first, "tags" | "tags_all" | "description" | "//")
        || p.ends_with(".description")
        || p.ends_with(".//")
}

/// One IAM statement, normalized from a Terraform policy document (`actions`, `principals`
/// blocks) or IAM JSON (`Action`, `Principal`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Statement {
    /// `sid`, or the position when there is none.
    pub key: String,
    /// `Allow` unless it says `Deny`.
    pub deny: bool,
    /// Actions (and `not:`-prefixed NotActions).
    pub actions: BTreeSet<String>,
    /// Resources (and `not:`-prefixed NotResources).
    pub resources: BTreeSet<String>,
    /// `Type:identifier` principals.
    pub principals: BTreeSet<String>,
    /// `test variable` → values.
    pub conditions: BTreeSet<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The statements of a policy document (`iam_json`: IAM's own JSON form).
pub fn statements(doc: &Value, iam_json: bool) -> Vec<Statement> {
    let list = match doc.get(if iam_json { "Statement" } else { "statement" }) {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    };
    let k = |tf: &'static str, iam: &'static str| if iam_json { iam } else { tf };
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let mut st = Statement {
                key: s
                    .get(k("sid", "Sid"))
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("#{i}"), str::to_owned),
                deny: s.get(k("effect", "Effect")).and_then(Value::as_str) == Some("Deny"),
                ..Statement::default()
            };
            st.actions.extend(strings(s.get(k("actions", "Action"))));
            st.actions.extend(
                strings(s.get(k("not_actions", "NotAction")))
                    .into_iter()
                    .map(|a| format!("not:{a}")),
            );
            st.resources
                .extend(strings(s.get(k("resources", "Resource"))));
            st.resources.extend(
                strings(s.get(k("not_resources", "NotResource")))
                    .into_iter()
                    .map(|a| format!("not:{a}")),
            );
            if iam_json {
                match s.get("Principal") {
                    Some(Value::String(p)) => {
                        st.principals.insert(format!("*:{p}"));
                    }
                    Some(Value::Object(m)) => {
                        for (t, ids) in m {
                            for id in strings(Some(ids)) {
                                st.principals.insert(format!("{t}:{id}"));
                            }
                        }
                    }
                    _ => {}
                }
                if let Some(Value::Object(tests)) = s.get("Condition") {
                    for (test, vars) in tests {
                        if let Value::Object(vars) = vars {
                            for (var, values) in vars {
                                let mut vals = strings(Some(values));
                                vals.sort();
                                st.conditions
                                    .insert(format!("{test} {var} = {}", vals.join(",")));
                            }
                        }
                    }
                }
            } else {
                for p in s
                    .get("principals")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let t = p.get("type").and_then(Value::as_str).unwrap_or("?");
                    for id in strings(p.get("identifiers")) {
                        st.principals.insert(format!("{t}:{id}"));
                    }
                }
                for c in s
                    .get("condition")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let test = c.get("test").and_then(Value::as_str).unwrap_or("?");
                    let var = c.get("variable").and_then(Value::as_str).unwrap_or("?");
                    let mut vals = strings(c.get("values"));
                    vals.sort();
                    st.conditions
                        .insert(format!("{test} {var} = {}", vals.join(",")));
                }
            }
            st
        })
        .collect()
}

/// What `new` allows beyond `old`, one sentence each.
pub fn policy_broadening(old: &[Statement], new: &[Statement]) -> Vec<String> {
    let mut out = Vec::new();
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    for n in new.iter().filter(|s| !s.deny) {
        let Some(o) = old.iter().find(|o| o.key == n.key && !o.deny) else {
            out.push(format!(
                "IAM statement {} allows {} on {}{}",
                n.key,
                list(&n.actions),
                list(&n.resources),
                if n.principals.is_empty() {
                    String::new()
                } else {
                    format!(" to {}", list(&n.principals))
                }
            ));
            continue;
        };
        let added = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> BTreeSet<String> {
            b.difference(a).cloned().collect()
        };
        let acts = added(&o.actions, &n.actions);
        if !acts.is_empty() {
            out.push(format!(
                "IAM statement {}: actions added: {}",
                n.key,
                list(&acts)
            ));
        }
        let res = added(&o.resources, &n.resources);
        if !res.is_empty() {
            out.push(format!(
                "IAM statement {}: resources added: {}",
                n.key,
                list(&res)
            ));
        }
        let pr = added(&o.principals, &n.principals);
        if !pr.is_empty() {
            out.push(format!(
                "IAM statement {}: principals added (trust loosened): {}",
                n.key,
                list(&pr)
            ));
        }
        let gone = added(&n.conditions, &o.conditions);
        if !gone.is_empty() {
            out.push(format!(
                "IAM statement {}: conditions removed or changed: {}",
                n.key,
                list(&gone)
            ));
        }
    }
    for o in old.iter().filter(|s| s.deny) {
        match new.iter().find(|n| n.key == o.key && n.deny) {
            None => out.push(format!("IAM Deny statement {} removed", o.key)),
            Some(n) if !o.actions.is_subset(&n.actions) => {
                out.push(format!("IAM Deny statement {} denies fewer actions", o.key))
            }
            _ => {}
        }
    }
    out
}

/// Whether `new` allows nothing beyond `old`: the same shape, where every CIDR of `new`
/// lies inside the CIDR at the same place in `old`.
fn within(new: &Value, old: &Value) -> bool {
    match (new, old) {
        (Value::Object(n), Value::Object(o)) => {
            n.len() == o.len()
                && n.iter()
                    .all(|(k, v)| o.get(k).is_some_and(|ov| within(v, ov)))
        }
        (Value::Array(n), Value::Array(o)) => n.iter().all(|v| o.iter().any(|ov| within(v, ov))),
        (Value::String(n), Value::String(o)) if n != o => {
            match (n.parse::<ipnet::IpNet>(), o.parse::<ipnet::IpNet>()) {
                (Ok(n), Ok(o)) => o.contains(&n),
                _ => false,
            }
        }
        _ => new == old,
    }
}

fn ingress_wider(before: &Value, after: &Value) -> bool {
    let port = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64);
    let wider_ports = port(after, "from_port") < port(before, "from_port")
        || port(after, "to_port") > port(before, "to_port");
    let net = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<ipnet::IpNet>().ok())
    };
    let wider_net =
        ["cidr_ipv4", "cidr_ipv6"]
            .iter()
            .any(|k| match (net(before, k), net(after, k)) {
                (Some(b), Some(a)) => a != b && (a.contains(&b) || a.prefix_len() < b.prefix_len()),
                (None, Some(_)) => true,
                _ => false,
            });
    let source_changed = ["referenced_security_group_id", "prefix_list_id"]
        .iter()
        .any(|k| before.get(*k) != after.get(*k) && after.get(*k).is_some());
    wider_ports || wider_net || source_changed
}

fn last_key(path: &str) -> String {
    let p = normalized(path);
    p.rsplit('.').next().unwrap_or(&p).to_owned()
}

fn is_open(v: &Value) -> bool {
    matches!(v.as_str(), Some("0.0.0.0/0" | "::/0"))
        || v.as_array().is_some_and(|a| a.iter().any(is_open))
}

/// Security reasons from one attribute change, whatever the resource.
fn attribute_broadening(a: &super::AttrChange) -> Vec<String> {
    let mut out = Vec::new();
    let key = last_key(&a.path);
    let truthy = |v: &Option<Value>| v.as_ref().and_then(Value::as_bool) == Some(true);
    if PROTECTIONS.contains(&key.as_str()) && truthy(&a.before) && !truthy(&a.after) {
        out.push(format!("`{}` turned off", a.path));
    }
    if EXPOSURES.contains(&key.as_str()) && truthy(&a.after) && !truthy(&a.before) {
        out.push(format!("`{}` turned on", a.path));
    }
    if key == "internal" && truthy(&a.before) && !truthy(&a.after) {
        out.push(format!(
            "public exposure: `{}` is no longer internal",
            a.path
        ));
    }
    if matches!(
        key.as_str(),
        "kms_key_id" | "kms_key_arn" | "encryption_config"
    ) && a.before.is_some()
        && a.after.is_none()
    {
        out.push(format!(
            "`{}` removed: encryption with the stack's key is off",
            a.path
        ));
    }
    if !normalized(&a.path).contains("egress")
        && a.after.as_ref().is_some_and(is_open)
        && !a.before.as_ref().is_some_and(is_open)
    {
        out.push(format!(
            "public exposure: `{}` opens to the internet",
            a.path
        ));
    }
    if normalized(&a.path).ends_with("capabilities.add") {
        out.push(format!("`{}`: container capabilities change", a.path));
    }
    out
}

/// Paths of `0.0.0.0/0` / `::/0` values outside egress rules in a new body.
fn open_ranges(path: &mut String, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k.contains("egress") {
                    continue;
                }
                let len = path.len();
                super::push_key(path, k);
                open_ranges(path, x, out);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                open_ranges(path, x, out);
                path.truncate(len);
            }
        }
        _ if is_open(v) => out.push(path.clone()),
        _ => {}
    }
}

/// Exposure flags set to true in a new body.
fn exposure_flags(path: &mut String, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let len = path.len();
                super::push_key(path, k);
                if EXPOSURES.contains(&k.as_str()) && x.as_bool() == Some(true) {
                    out.push(format!("`{path}` is on"));
                }
                exposure_flags(path, x, out);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                exposure_flags(path, x, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::Class;
    use crate::diff::{Action, Change, FileTree, diff_stack};

    fn tf(body: Value) -> FileTree {
        let mut t = FileTree::new();
        t.insert(
            "terraform/main.tf.json".into(),
            serde_json::to_vec(&body).expect("a Value always serializes"),
        );
        t
    }

    fn k8s(body: Value) -> FileTree {
        let mut t = FileTree::new();
        t.insert(
            "k8s/80-networkpolicy-api.yaml".into(),
            serde_json::to_vec(&body).expect("a Value always serializes"),
        );
        t
    }

    fn changes(before: FileTree, after: FileTree) -> Vec<Change> {
        diff_stack("prod", "s", &before, &after).changes
    }

    /// The one change between two resources of `rtype` named `x`.
    fn one(rtype: &str, before: Value, after: Value) -> Change {
        let mut c = changes(
            tf(json!({"resource": {rtype: {"x": before}}})),
            tf(json!({"resource": {rtype: {"x": after}}})),
        );
        assert_eq!(c.len(), 1, "{c:#?}");
        c.remove(0)
    }

    fn doc(name: &str, body: Value) -> FileTree {
        tf(json!({"data": {"aws_iam_policy_document": {name: body}}}))
    }

    fn policy(actions: &[&str], conditions: Value, principals: Value) -> Value {
        json!({"statement": [{"sid": "S", "effect": "Allow", "actions": actions,
            "resources": ["arn:aws:s3:::b/*"], "condition": conditions, "principals": principals}]})
    }

    #[test]
    fn forced_replacement_of_a_database_is_replace_risk_and_resizing_is_not() {
        let base =
            json!({"identifier": "app", "instance_class": "db.t4g.large", "engine_version": "15"});
        let mut renamed = base.clone();
        renamed["identifier"] = json!("app2");
        let c = one("aws_db_instance", base.clone(), renamed);
        assert_eq!(c.class, Class::Replace, "{c:#?}");
        assert!(c.reasons[0].contains("`identifier`"), "{:?}", c.reasons);
        let mut bigger = base.clone();
        bigger["instance_class"] = json!("db.r6g.large");
        assert_eq!(
            one("aws_db_instance", base.clone(), bigger).class,
            Class::Other
        );
        let mut major = base.clone();
        major["engine_version"] = json!("16");
        assert_eq!(
            one("aws_db_instance", base.clone(), major).class,
            Class::Replace
        );
    }

    #[test]
    fn subnet_cidr_and_cluster_subnets_force_replacement_and_tags_are_cosmetic() {
        let c = one(
            "aws_subnet",
            json!({"cidr_block": "10.0.0.0/20", "tags": {"Name": "a"}}),
            json!({"cidr_block": "10.0.16.0/20", "tags": {"Name": "a"}}),
        );
        assert_eq!(c.class, Class::Replace);
        let c = one(
            "aws_eks_cluster",
            json!({"vpc_config": [{"subnet_ids": ["a"]}]}),
            json!({"vpc_config": [{"subnet_ids": ["a", "b"]}]}),
        );
        assert_eq!(
            c.class,
            Class::Other,
            "in place since hashicorp/aws 5.25: {c:#?}"
        );
        let c = one(
            "aws_eks_cluster",
            json!({"role_arn": "a"}),
            json!({"role_arn": "b"}),
        );
        assert_eq!(c.class, Class::Replace, "{c:#?}");
        let c = one(
            "aws_subnet",
            json!({"cidr_block": "10.0.0.0/20", "tags": {"Name": "a"}}),
            json!({"cidr_block": "10.0.0.0/20", "tags": {"Name": "b"}}),
        );
        assert_eq!((c.class, c.cosmetic), (Class::Other, true));
        // A security group's description is no mere comment: it forces a new group.
        let c = one(
            "aws_security_group",
            json!({"description": "a"}),
            json!({"description": "b"}),
        );
        assert_eq!((c.class, c.cosmetic), (Class::Replace, false));
    }

    #[test]
    fn transit_encryption_replaces_a_cache_only_before_engine_7_0_5() {
        let on = |engine: &str, enabled: bool| json!({"engine_version": engine, "transit_encryption_enabled": enabled});
        let c = one(
            "aws_elasticache_replication_group",
            on("7.1", false),
            on("7.1", true),
        );
        assert_eq!(c.class, Class::Other, "{c:#?}");
        let c = one(
            "aws_elasticache_replication_group",
            on("6.2", false),
            on("6.2", true),
        );
        assert_eq!(c.class, Class::Replace, "{c:#?}");
    }

    #[test]
    fn deleting_a_key_is_replace_risk_and_deleting_an_alarm_is_not() {
        let c = changes(
            tf(json!({"resource": {"aws_kms_key": {"k": {"description": "d"}}}})),
            tf(json!({})),
        );
        assert_eq!(
            (c[0].action.clone(), c[0].class),
            (Action::Delete, Class::Replace)
        );
        let c = changes(
            tf(json!({"resource": {"aws_cloudwatch_metric_alarm": {"a": {"threshold": 1}}}})),
            tf(json!({})),
        );
        assert_eq!(c[0].class, Class::Other);
    }

    #[test]
    fn a_rename_is_a_move_and_without_a_moved_block_a_replace_risk() {
        let body = json!({"bucket": "acme-data"});
        let before = tf(json!({"resource": {"aws_s3_bucket": {"old": body}}}));
        let bare = tf(json!({"resource": {"aws_s3_bucket": {"new": body}}}));
        let c = changes(before.clone(), bare);
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(
            c[0].action,
            Action::Move {
                from: "aws_s3_bucket.old".into(),
                moved_block: false
            }
        );
        assert_eq!(c[0].class, Class::Replace);
        let declared = tf(json!({"resource": {"aws_s3_bucket": {"new": body}},
            "moved": [{"from": "aws_s3_bucket.old", "to": "aws_s3_bucket.new"}]}));
        let c = changes(before, declared);
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(
            (c[0].action.clone(), c[0].class),
            (
                Action::Move {
                    from: "aws_s3_bucket.old".into(),
                    moved_block: true
                },
                Class::Other
            )
        );
    }

    #[test]
    fn iam_actions_added_are_security_and_actions_removed_are_not() {
        let narrow = doc("p", policy(&["s3:GetObject"], json!([]), json!([])));
        let wide = doc(
            "p",
            policy(&["s3:GetObject", "s3:PutObject"], json!([]), json!([])),
        );
        let c = changes(narrow.clone(), wide.clone());
        assert_eq!(c[0].class, Class::Security);
        assert!(
            c[0].reasons[0].contains("s3:PutObject"),
            "{:?}",
            c[0].reasons
        );
        assert_eq!(changes(wide, narrow)[0].class, Class::Other);
    }

    #[test]
    fn trust_loosened_is_security_and_tightened_is_not() {
        let cond = json!([{"test": "StringEquals", "variable": "token.actions.githubusercontent.com:sub",
            "values": ["repo:acme/api:environment:prod"]}]);
        let fed = json!([{"type": "Federated", "identifiers": ["arn:aws:iam::1:oidc-provider/x"]}]);
        let pinned = doc(
            "t",
            policy(&["sts:AssumeRoleWithWebIdentity"], cond, fed.clone()),
        );
        let open = doc(
            "t",
            policy(&["sts:AssumeRoleWithWebIdentity"], json!([]), fed.clone()),
        );
        let c = changes(pinned.clone(), open.clone());
        assert_eq!(c[0].class, Class::Security);
        assert!(
            c[0].reasons[0].contains("conditions removed"),
            "{:?}",
            c[0].reasons
        );
        assert_eq!(changes(open, pinned.clone())[0].class, Class::Other);
        let more = json!([{"type": "Federated", "identifiers": ["arn:aws:iam::1:oidc-provider/x", "arn:aws:iam::2:root"]}]);
        let wider = doc(
            "t",
            policy(&["sts:AssumeRoleWithWebIdentity"], json!([]), more),
        );
        assert!(
            changes(pinned, wider)[0]
                .reasons
                .iter()
                .any(|r| r.contains("trust loosened"))
        );
    }

    #[test]
    fn security_group_ingress_widened_is_security_and_narrowed_is_not() {
        let rule = |cidr: &str| json!({"cidr_ipv4": cidr, "from_port": 443, "to_port": 443});
        let c = one(
            "aws_vpc_security_group_ingress_rule",
            rule("10.0.0.0/16"),
            rule("0.0.0.0/0"),
        );
        assert_eq!(c.class, Class::Security);
        assert!(
            c.reasons.iter().any(|r| r.contains("public exposure")),
            "{:?}",
            c.reasons
        );
        let c = one(
            "aws_vpc_security_group_ingress_rule",
            rule("10.0.0.0/16"),
            rule("10.0.1.0/24"),
        );
        assert_eq!(c.class, Class::Other, "{c:#?}");
    }

    #[test]
    fn network_policy_ingress_added_is_security_and_removed_is_not() {
        let np = |rules: Value| {
            k8s(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "api", "namespace": "a"},
                "spec": {"policyTypes": ["Ingress"], "ingress": rules}}),
            )
        };
        let one_rule = np(json!([{"from": [{"podSelector": {}}]}]));
        let two = np(
            json!([{"from": [{"podSelector": {}}]}, {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]),
        );
        let c = changes(one_rule.clone(), two.clone());
        assert_eq!(
            (c[0].address.as_str(), c[0].class),
            ("NetworkPolicy/a/api", Class::Security)
        );
        assert_eq!(changes(two.clone(), one_rule)[0].class, Class::Other);
        let narrower = np(
            json!([{"from": [{"podSelector": {}}]}, {"from": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}]),
        );
        assert_eq!(
            changes(two.clone(), narrower.clone())[0].class,
            Class::Other
        );
        assert_eq!(changes(narrower, two)[0].class, Class::Security);
    }

    #[test]
    fn protection_turned_off_is_security_and_turned_on_is_not() {
        for key in ["deletion_protection", "storage_encrypted"] {
            let c = one("aws_db_instance", json!({key: true}), json!({key: false}));
            // storage_encrypted also forces replacement, which ranks first.
            assert_ne!(c.class, Class::Other, "{key}");
            assert!(
                c.reasons.iter().any(|r| r.contains("turned off")),
                "{key}: {c:#?}"
            );
            let c = one("aws_db_instance", json!({key: false}), json!({key: true}));
            assert!(!c.reasons.iter().any(|r| r.contains("turned off")), "{key}");
        }
        let c = one(
            "aws_db_instance",
            json!({"publicly_accessible": false}),
            json!({"publicly_accessible": true}),
        );
        assert_eq!(c.class, Class::Security);
        let c = one(
            "aws_db_instance",
            json!({"publicly_accessible": true}),
            json!({"publicly_accessible": false}),
        );
        assert_eq!(c.class, Class::Other);
    }
}
