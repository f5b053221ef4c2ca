//! Classifies a [`Change`]: replace risk (an attribute that forces replacement of a stateful
//! or identity-bearing resource, a destroyed stateful resource, a rename without a `moved`
//! block), security broadening (IAM grants added or conditions removed, ingress widened,
//! public exposure, encryption or deletion protection off), or anything else.
//!
//! The tables below are reviewed per resource type keel emits; "forces replacement" is the
//! AWS provider's `ForceNew` (or CloudFormation's "Update requires: Replacement" where the
//! provider follows the API).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::addrs::AddrSet;
use super::{Action, Change, Kind, Object, Sides, normalized};

/// How severe a change is; ordered most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Forces replacement of (or destroys) a stateful or identity-bearing resource, or
    /// cannot be applied at all (an EKS version that skips a minor or goes down) or not safely
    /// in one rollout (a setting its previous image cannot handle, shipped with a new image).
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

/// Types whose address names an identity beyond [`FORCES_REPLACEMENT`]: a new address is a
/// new resource, the old one is destroyed.
const IDENTITY_ADDRESSED: &[&str] = &[
    "aws_eks_access_entry",
    "aws_eks_access_policy_association",
    "aws_eks_pod_identity_association",
];

/// Whether an address of `rtype` carries its identity (its name forces replacement, or it
/// holds state): an address of the type that disappears while another appears is a rename
/// that destroys the old resource unless a `moved` block carries it.
pub fn identity_addressed(rtype: &str) -> bool {
    FORCES_REPLACEMENT.iter().any(|(t, _)| *t == rtype)
        || STATEFUL.contains(&rtype)
        || IDENTITY_ADDRESSED.contains(&rtype)
}

/// Attributes naming the identity a resource lets in: another value hands the access to
/// someone else.
const PRINCIPAL_ATTRS: &[(&str, &str)] = &[
    ("aws_eks_access_entry", "principal_arn"),
    ("aws_eks_access_policy_association", "principal_arn"),
    ("aws_eks_pod_identity_association", "role_arn"),
    ("aws_lambda_permission", "principal"),
    ("aws_kms_grant", "grantee_principal"),
];

/// Keys whose value (a CIDR or a list of them) is a set of addresses let in.
const SOURCE_KEYS: &[&str] = &[
    "cidr_blocks",
    "ipv6_cidr_blocks",
    "cidr_ipv4",
    "cidr_ipv6",
    "public_access_cidrs",
    "addresses",
    "loadBalancerSourceRanges",
];

/// Condition variables whose values are source addresses.
const SOURCE_IP_VARIABLES: &[&str] = &["aws:SourceIp", "aws:VpcSourceIp"];

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

/// The RDS major version of an `engine_version`: its first number from 10 on (PostgreSQL
/// `15`, `16.4`), its first two below (MySQL `8.0`, `8.4`, `5.7`; PostgreSQL `9.6`), as RDS
/// counts majors and names parameter families (`postgres16`, `mysql8.4`).
fn rds_major(version: &str) -> String {
    let mut parts = version.split('.');
    let first = parts.next().unwrap_or(version);
    match (first.parse::<u32>(), parts.next()) {
        (Ok(n), Some(second)) if n < 10 => format!("{first}.{second}"),
        _ => first.to_owned(),
    }
}

/// A raised `min_size` of a node group whose desired size Terraform leaves to the Cluster
/// Autoscaler (`ignore_changes`): Terraform sends the live desired size with the new
/// minimum, and EKS refuses a minimum above it ("Minimum capacity N can't be greater than
/// desired size M") whenever the autoscaler has the group at its old minimum. The reason
/// names the one command that lets the apply through.
fn node_group_minimum_raised(c: &Change, body: &Value) -> Option<String> {
    let desired_ignored = body["lifecycle"]["ignore_changes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == "scaling_config[0].desired_size"));
    let a = c
        .attributes
        .iter()
        .find(|a| a.path == "scaling_config[0].min_size")?;
    let (from, to) = (a.before.as_ref()?.as_u64()?, a.after.as_ref()?.as_u64()?);
    if !desired_ignored || to <= from {
        return None;
    }
    let group = body["node_group_name"].as_str().unwrap_or("<node group>");
    Some(format!(
        "`scaling_config.min_size` rises from {from} to {to}: the desired size is the Cluster Autoscaler's (ignore_changes), and EKS refuses a minimum above the live desired size, so the apply fails while the group runs fewer than {to} nodes; first raise it: aws eks update-nodegroup-config --cluster-name <cluster> --nodegroup-name {group} --scaling-config desiredSize={to}, then apply"
    ))
}

/// Sets `class`, `cosmetic` and `reasons` of `c`; `before` is the old body for an update or
/// move, `object` the new object (the old one for a delete); `sides` says whether the
/// difference is a step that gets applied.
pub fn classify(c: &mut Change, before: Option<&Value>, object: &Object, sides: Sides) {
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
            let major = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(rds_major);
            if major(&a.before) != major(&a.after) {
                replace.push(
                    "`engine_version` changes its major version: an upgrade with downtime (in the maintenance window) and no way back; keep a snapshot and test the application on the new major first"
                        .into(),
                );
            }
        }
    }
    if is_resource && c.rtype == "aws_eks_cluster" && sides == Sides::Revisions {
        for a in c.attributes.iter().filter(|a| a.path == "version") {
            let minor = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_owned);
            if let (Some(from), Some(to)) = (minor(&a.before), minor(&a.after))
                && let Some(why) = crate::env::kubernetes_support::step_problem(&from, &to)
            {
                // Not a replacement, but the apply fails: the gate's most severe class.
                replace.push(format!(
                    "`version` changes: {why}; the apply fails otherwise"
                ));
            }
        }
    }
    if is_resource && c.rtype == "aws_eks_node_group" && sides == Sides::Revisions {
        replace.extend(node_group_minimum_raised(c, &object.body));
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
    if c.kind == Kind::Terraform && c.address == "terraform.backend" {
        let paths: Vec<&str> = c.attributes.iter().map(|a| a.path.as_str()).collect();
        security.push(format!(
            "state backend changes{}: where Terraform keeps this stack's state, and whether it is encrypted and locked",
            if paths.is_empty() {
                String::new()
            } else {
                format!(" (`{}`)", paths.join("`, `"))
            }
        ));
    }
    if is_resource {
        security.extend(principal_changes(c, object));
    }
    if c.action != Action::Delete {
        security.extend(reach_widened(c, before, object));
        if let Some(b) = before {
            security.extend(image_repository_changes(b, &object.body));
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
    /// Source address conditions (`IpAddress aws:SourceIp`) as address sets, compared by
    /// address rather than by string.
    pub source_ips: BTreeMap<String, AddrSet>,
}

impl Statement {
    /// Records one condition: a source address condition as a set (when every value is an
    /// address), any other as `test variable = values`.
    fn condition(&mut self, test: &str, var: &str, mut values: Vec<String>) {
        if SOURCE_IP_VARIABLES.contains(&var) {
            let (set, bad) = AddrSet::from_strs(values.iter().map(String::as_str));
            if bad.is_empty() {
                let entry = self.source_ips.entry(format!("{test} {var}")).or_default();
                *entry = entry.union(&set);
                return;
            }
        }
        values.sort();
        self.conditions
            .insert(format!("{test} {var} = {}", values.join(",")));
    }
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
                                st.condition(test, var, strings(Some(values)));
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
                    st.condition(test, var, strings(c.get("values")));
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
        for (cond, old_set) in &o.source_ips {
            // `NotIpAddress` lets in what it does not list: fewer addresses there is wider.
            let wider = match n.source_ips.get(cond) {
                None => Some("removed".to_owned()),
                Some(new_set) if cond.starts_with("Not") => {
                    let freed = old_set.minus(new_set);
                    (!freed.is_empty()).then(|| format!("no longer excludes {}", freed.describe(4)))
                }
                Some(new_set) => {
                    let added = new_set.minus(old_set);
                    (!added.is_empty()).then(|| format!("now also lets in {}", added.describe(4)))
                }
            };
            if let Some(how) = wider {
                out.push(format!(
                    "IAM statement {}: condition `{cond}` widened: {how}",
                    n.key
                ));
            }
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
                && n.iter().all(|(k, v)| {
                    o.get(k).is_some_and(|ov| {
                        if k == "ipBlock" {
                            ip_block_within(v, ov)
                        } else {
                            within(v, ov)
                        }
                    })
                })
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

/// The addresses of a NetworkPolicy `ipBlock` (`cidr` minus `except`), and the values that
/// are no address.
fn ip_block_addresses(block: &Value) -> (AddrSet, Vec<String>) {
    let cidr = strings(block.get("cidr"));
    let except = strings(block.get("except"));
    let (set, mut bad) = AddrSet::from_strs(cidr.iter().map(String::as_str));
    let (holes, bad_holes) = AddrSet::from_strs(except.iter().map(String::as_str));
    bad.extend(bad_holes.into_iter().map(|h| format!("except {h}")));
    (set.minus(&holes), bad)
}

/// Whether the addresses of the `ipBlock` `new` (its `cidr` minus its `except`) lie within
/// those of `old`.
fn ip_block_within(new: &Value, old: &Value) -> bool {
    let addresses = |b: &Value| {
        let (set, bad) = ip_block_addresses(b);
        bad.is_empty().then_some(set)
    };
    match (addresses(new), addresses(old)) {
        (Some(n), Some(o)) => n.is_subset(&o),
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

/// A principal attribute that changes (or a new resource that names one).
fn principal_changes(c: &Change, object: &Object) -> Vec<String> {
    let Some((_, attr)) = PRINCIPAL_ATTRS.iter().find(|(t, _)| *t == c.rtype) else {
        return Vec::new();
    };
    let text = |v: &Option<Value>| {
        v.as_ref().map_or_else(
            || "(none)".to_owned(),
            |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned),
        )
    };
    match c.action {
        Action::Create => object
            .body
            .get(*attr)
            .map(|p| {
                vec![format!(
                    "principal `{attr}` {} is let in by a new {}",
                    text(&Some(p.clone())),
                    c.rtype
                )]
            })
            .unwrap_or_default(),
        Action::Delete => Vec::new(),
        _ => c
            .attributes
            .iter()
            .filter(|a| normalized(&a.path) == *attr)
            .map(|a| {
                format!(
                    "principal changes: `{}` {} -> {}: another identity gets this access",
                    a.path,
                    text(&a.before),
                    text(&a.after)
                )
            })
            .collect(),
    }
}

/// Addresses each source list of a body lets in, by normalized path, with the values that
/// are no address (references keel cannot judge).
type Reach = BTreeMap<String, (AddrSet, BTreeSet<String>)>;

/// The source lists of `body`: Terraform's CIDR attributes outside egress rules, Kubernetes
/// `ipBlock`s (`cidr` minus `except`, both directions) and `loadBalancerSourceRanges`.
fn reach(kind: Kind, rtype: &str, body: &Value) -> Reach {
    fn walk(kind: Kind, path: &mut String, v: &Value, out: &mut Reach) {
        match v {
            Value::Object(m) => {
                if let Some(block) = m.get("ipBlock") {
                    let (set, bad) = ip_block_addresses(block);
                    let len = path.len();
                    super::push_key(path, "ipBlock");
                    let entry = out.entry(normalized(path)).or_default();
                    entry.0 = entry.0.union(&set);
                    entry.1.extend(bad);
                    path.truncate(len);
                }
                for (k, x) in m {
                    if k == "ipBlock" || (kind == Kind::Terraform && k.contains("egress")) {
                        continue;
                    }
                    let len = path.len();
                    super::push_key(path, k);
                    if SOURCE_KEYS.contains(&k.as_str()) {
                        let list = strings(Some(x));
                        let (set, bad) = AddrSet::from_strs(list.iter().map(String::as_str));
                        let entry = out.entry(normalized(path)).or_default();
                        entry.0 = entry.0.union(&set);
                        entry.1.extend(bad);
                    } else {
                        walk(kind, path, x, out);
                    }
                    path.truncate(len);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(kind, path, x, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Reach::new();
    let egress_rule =
        rtype.contains("egress") || body.get("type").and_then(Value::as_str) == Some("egress");
    if !(kind == Kind::Terraform && egress_rule) {
        walk(kind, &mut String::new(), body, &mut out);
    }
    out
}

/// Source lists that reach addresses they did not (by address set, not by string), and new
/// lists that cover a whole address family.
fn reach_widened(c: &Change, before: Option<&Value>, object: &Object) -> Vec<String> {
    let new = reach(c.kind, &c.rtype, &object.body);
    let old = before
        .map(|b| reach(c.kind, &c.rtype, b))
        .unwrap_or_default();
    let empty = (AddrSet::default(), BTreeSet::new());
    let mut out = Vec::new();
    for (path, (set, opaque)) in &new {
        let (old_set, old_opaque) = old.get(path).unwrap_or(&empty);
        let shown = if path.is_empty() { "(body)" } else { path };
        for (covers, family, all) in [
            (
                AddrSet::covers_ipv4_internet as fn(&AddrSet) -> bool,
                "IPv4",
                "0.0.0.0/0",
            ),
            (AddrSet::covers_ipv6_internet, "IPv6", "::/0"),
        ] {
            if covers(set) && !covers(old_set) {
                out.push(format!(
                    "public exposure: `{shown}` covers the whole {family} internet ({all}, however it is spelled)"
                ));
            }
        }
        if before.is_some() {
            let added = set.minus(old_set);
            if !added.is_empty() {
                out.push(format!(
                    "`{shown}` widened: now also lets in {}",
                    added.describe(4)
                ));
            }
            let unknown: Vec<&String> = opaque.difference(old_opaque).collect();
            if !unknown.is_empty() {
                out.push(format!(
                    "`{shown}` gains values that are no addresses keel can judge: {}",
                    unknown
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    out
}

/// The repository part of an image reference: without `@digest` and without `:tag`.
pub fn image_repository(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].find(':') {
        Some(i) => &name[..last + i],
        None => name,
    }
}

/// Every image repository a body runs: `image` strings (Kubernetes containers, ECS
/// container definitions, also inside a `container_definitions` JSON string).
fn image_repositories(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("image", Value::String(s)) => {
                        out.insert(image_repository(s).to_owned());
                    }
                    ("container_definitions", Value::String(s)) => {
                        if let Ok(inner) = serde_json::from_str::<Value>(s) {
                            image_repositories(&inner, out);
                        }
                    }
                    _ => image_repositories(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| image_repositories(x, out)),
        _ => {}
    }
}

/// Image repositories `after` runs that `before` did not.
fn image_repository_changes(before: &Value, after: &Value) -> Vec<String> {
    let (mut old, mut new) = (BTreeSet::new(), BTreeSet::new());
    image_repositories(before, &mut old);
    image_repositories(after, &mut new);
    let added: Vec<&str> = new.difference(&old).map(String::as_str).collect();
    if added.is_empty() {
        return Vec::new();
    }
    let was: Vec<&str> = old.difference(&new).map(String::as_str).collect();
    vec![format!(
        "image repository changes: now runs images from {}{}",
        added.join(", "),
        if was.is_empty() {
            String::new()
        } else {
            format!(" (was {})", was.join(", "))
        }
    )]
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

    #[test]
    fn an_eks_version_that_skips_a_minor_or_goes_down_blocks_and_one_up_passes() {
        let cluster = |v: &str| json!({"name": "eks-prod", "version": v});
        // Issue 19 point 14: staging and prod ran 1.33, the file said 1.35.
        let jump = one("aws_eks_cluster", cluster("1.33"), cluster("1.35"));
        assert_eq!(jump.class, Class::Replace, "{jump:#?}");
        assert_eq!(
            jump.reasons,
            [
                "`version` changes: Kubernetes 1.33 -> 1.35 skips 1.34: EKS upgrades a cluster one minor per update, so apply one change per minor: 1.34, then 1.35 (each with the kube_proxy add-on of its minor); the apply fails otherwise"
            ]
        );
        let down = one("aws_eks_cluster", cluster("1.35"), cluster("1.34"));
        assert_eq!(down.class, Class::Replace, "{down:#?}");
        assert!(down.reasons[0].contains("is a downgrade, which EKS cannot do"));
        let up = one("aws_eks_cluster", cluster("1.34"), cluster("1.35"));
        assert_eq!(up.class, Class::Other, "{up:#?}");
        // Between two environments nothing is applied: no step rule.
        let across = crate::diff::diff_environments(
            "staging→prod",
            "platform",
            &tf(json!({"resource": {"aws_eks_cluster": {"x": cluster("1.35")}}})),
            &tf(json!({"resource": {"aws_eks_cluster": {"x": cluster("1.33")}}})),
        );
        assert_eq!(across.changes[0].class, Class::Other, "{across:#?}");
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

    /// Day-2 review point 5: the node group's desired size belongs to the Cluster
    /// Autoscaler (`ignore_changes`), so Terraform sends the live one with a raised
    /// minimum, and EKS refuses it ("Minimum capacity 4 can't be greater than desired size
    /// 3") whenever the autoscaler has the group at its old minimum.
    #[test]
    fn day2_5_raising_a_node_groups_minimum_blocks_with_the_step_that_lets_it_apply() {
        let group = |min: u32, max: u32| {
            json!({"node_group_name": "general", "scaling_config": [{"desired_size": min, "max_size": max, "min_size": min}],
                "lifecycle": {"ignore_changes": ["scaling_config[0].desired_size"]}})
        };
        let c = one("aws_eks_node_group", group(3, 9), group(4, 9));
        assert_eq!(c.class, Class::Replace, "{c:#?}");
        assert!(
            c.reasons[0].contains("--nodegroup-name general")
                && c.reasons[0].contains("desiredSize=4"),
            "{:?}",
            c.reasons
        );
        // A lower minimum or a higher maximum applies as it is.
        let c = one("aws_eks_node_group", group(3, 9), group(2, 9));
        assert_eq!(c.class, Class::Other, "{c:#?}");
        let c = one("aws_eks_node_group", group(3, 9), group(3, 12));
        assert_eq!(c.class, Class::Other, "{c:#?}");
    }

    /// Day-2 review point 2: MySQL's majors are release series (`8.0`, `8.4`, the
    /// parameter families `mysql8.0`, `mysql8.4`), so `8.0` -> `8.4` is a major upgrade
    /// with no way back, though its first number stays.
    #[test]
    fn day2_2_a_mysql_release_series_change_is_a_major_upgrade() {
        let db = |v: &str| json!({"identifier": "app", "engine": "mysql", "engine_version": v});
        let c = one("aws_db_instance", db("8.0"), db("8.4"));
        assert_eq!(c.class, Class::Replace, "{c:#?}");
        assert!(c.reasons[0].contains("major version"), "{:?}", c.reasons);
        // RDS's minor of a series is no major change, on either engine.
        let c = one("aws_db_instance", db("8.0.39"), db("8.0.40"));
        assert_eq!(c.class, Class::Other, "{c:#?}");
        let pg = |v: &str| json!({"identifier": "app", "engine": "postgres", "engine_version": v});
        let c = one("aws_db_instance", pg("15.7"), pg("15.8"));
        assert_eq!(c.class, Class::Other, "{c:#?}");
        let c = one("aws_db_instance", pg("9.6"), pg("10"));
        assert_eq!(c.class, Class::Replace, "{c:#?}");
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

    /// Issue 22, bug 1: a cluster admin moved to another account was "other".
    #[test]
    fn r22_a_changed_principal_is_security() {
        let entry = |account: &str| {
            json!({"cluster_name": "${aws_eks_cluster.main.name}",
                "principal_arn": format!("arn:aws:iam::{account}:role/platform-admins"), "type": "STANDARD"})
        };
        for rtype in ["aws_eks_access_entry", "aws_eks_access_policy_association"] {
            let c = one(rtype, entry("111122223333"), entry("999999999999"));
            assert_ne!(c.class, Class::Other, "{c:#?}");
            assert!(
                c.reasons.iter().any(|r| r.contains("principal")
                    && r.contains("arn:aws:iam::999999999999:role/platform-admins")),
                "{c:#?}"
            );
        }
        // A key policy and a trust policy in IAM's JSON, as the provider takes them.
        let key_policy = |principal: &str| {
            json!({"policy": serde_json::to_string(&json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "Admins", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
                 "Principal": {"AWS": principal}}]})).expect("serializes")})
        };
        let c = one(
            "aws_kms_key",
            key_policy("arn:aws:iam::111122223333:root"),
            key_policy("arn:aws:iam::999999999999:root"),
        );
        assert_eq!(c.class, Class::Security, "{c:#?}");
        let trust = |principal: &str| {
            json!({"name": "r", "assume_role_policy": serde_json::to_string(&json!({"Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": principal}}]}))
                .expect("serializes")})
        };
        let c = one(
            "aws_iam_role",
            trust("arn:aws:iam::111122223333:role/ci"),
            trust("*"),
        );
        assert_eq!(c.class, Class::Security, "{c:#?}");
    }

    /// Issue 22, bug 3: moving the state bucket or turning encryption off was "other".
    #[test]
    fn r22_any_backend_change_is_security() {
        let backend = |bucket: &str, encrypt: bool| {
            tf(
                json!({"terraform": {"backend": {"s3": {"bucket": bucket, "encrypt": encrypt,
                "key": "keel/prod/platform/terraform.tfstate", "region": "us-east-1",
                "use_lockfile": true}}, "required_version": ">= 1.10.0"}}),
            )
        };
        for after in [
            backend("attacker-bucket", true),
            backend("acme-keel-tfstate-prod", false),
        ] {
            let c = changes(backend("acme-keel-tfstate-prod", true), after);
            assert_eq!(c.len(), 1, "{c:#?}");
            assert_eq!(c[0].class, Class::Security, "{c:#?}");
            assert!(c[0].reasons[0].contains("state backend"), "{c:#?}");
        }
    }

    /// Issue 22, bug 5: widening was judged by the literal `0.0.0.0/0` only.
    #[test]
    fn r22_widening_compares_address_sets() {
        let rule = |cidr: &str| json!({"cidr_ipv4": cidr, "from_port": 443, "to_port": 443});
        let rtype = "aws_vpc_security_group_ingress_rule";
        for (before, after) in [
            ("10.0.0.0/24", "10.0.0.0/8"),
            ("10.0.1.0/24", "10.0.2.0/24"),
        ] {
            let c = one(rtype, rule(before), rule(after));
            assert_eq!(c.class, Class::Security, "{before} -> {after}: {c:#?}");
        }
        // Inline ingress: the two halves of the internet.
        let sg = |cidrs: Value| {
            json!({"name": "x", "ingress": [{"from_port": 443, "to_port": 443, "protocol": "tcp",
                "cidr_blocks": cidrs}]})
        };
        let c = one(
            "aws_security_group",
            sg(json!(["10.0.0.0/16"])),
            sg(json!(["0.0.0.0/1", "128.0.0.0/1"])),
        );
        assert_eq!(c.class, Class::Security, "{c:#?}");
        assert!(
            c.reasons.iter().any(|r| r.contains("whole IPv4 internet")),
            "{c:#?}"
        );
        assert_eq!(
            one(
                "aws_security_group",
                sg(json!(["10.0.0.0/16"])),
                sg(json!(["10.0.0.0/17", "10.0.128.0/17"]))
            )
            .class,
            Class::Other,
            "the same addresses, spelled differently"
        );
        // The EKS public endpoint's allow-list.
        let eks = |cidrs: Value| json!({"vpc_config": [{"public_access_cidrs": cidrs}]});
        let c = one(
            "aws_eks_cluster",
            eks(json!(["203.0.113.0/24"])),
            eks(json!(["203.0.113.0/24", "198.51.100.0/24"])),
        );
        assert_eq!(c.class, Class::Security, "{c:#?}");
        assert_eq!(
            one(
                "aws_eks_cluster",
                eks(json!(["203.0.113.0/24", "198.51.100.0/24"])),
                eks(json!(["203.0.113.0/24"]))
            )
            .class,
            Class::Other
        );
        // A WAF IP set.
        let ips = |a: Value| json!({"name": "allow", "addresses": a, "ip_address_version": "IPV4"});
        let c = one(
            "aws_wafv2_ip_set",
            ips(json!(["192.0.2.0/24"])),
            ips(json!(["192.0.0.0/16"])),
        );
        assert_eq!(c.class, Class::Security, "{c:#?}");
        // A NetworkPolicy whose ipBlock loses an exception.
        let np = |except: Value| {
            k8s(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "api", "namespace": "a"},
                "spec": {"policyTypes": ["Ingress"], "ingress": [{"from": [{"ipBlock":
                    {"cidr": "10.0.0.0/8", "except": except}}]}]}}),
            )
        };
        let c = changes(np(json!(["10.1.0.0/16"])), np(json!(["10.1.0.0/24"])));
        assert_eq!(c[0].class, Class::Security, "{c:#?}");
        let c = changes(np(json!(["10.1.0.0/24"])), np(json!(["10.1.0.0/16"])));
        assert_eq!(c[0].class, Class::Other, "{c:#?}");
        // A bucket policy's source address condition.
        let bucket = |ips: &[&str]| {
            doc(
                "bucket",
                json!({"statement": [{"sid": "S", "effect": "Allow", "actions": ["s3:GetObject"],
                    "resources": ["arn:aws:s3:::b/*"], "principals": [{"type": "AWS", "identifiers": ["*"]}],
                    "condition": [{"test": "IpAddress", "variable": "aws:SourceIp", "values": ips}]}]}),
            )
        };
        let c = changes(bucket(&["192.0.2.0/24"]), bucket(&["192.0.0.0/16"]));
        assert_eq!(c[0].class, Class::Security, "{c:#?}");
        let c = changes(
            bucket(&["192.0.2.0/24"]),
            bucket(&["0.0.0.0/1", "128.0.0.0/1"]),
        );
        assert_eq!(c[0].class, Class::Security, "{c:#?}");
        let c = changes(bucket(&["192.0.0.0/16"]), bucket(&["192.0.2.0/24"]));
        assert_eq!(c[0].class, Class::Other, "narrowed: {c:#?}");
        // A new rule for the whole internet, spelled as two halves.
        let c = changes(
            tf(json!({})),
            tf(
                json!({"resource": {"aws_security_group": {"x": sg(json!(["0.0.0.0/1", "128.0.0.0/1"]))}}}),
            ),
        );
        assert!(
            c[0].reasons
                .iter()
                .any(|r| r.contains("whole IPv4 internet")),
            "{c:#?}"
        );
    }

    /// Issue 22, bug 9: renaming a node group (a new address and a new name) was "other".
    #[test]
    fn r22_a_renamed_identity_without_moved_block_is_replace_risk() {
        let group = |name: &str| {
            json!({"cluster_name": "${aws_eks_cluster.main.name}", "node_group_name": name,
                "launch_template": [{"id": format!("${{aws_launch_template.{name}.id}}")}],
                "scaling_config": [{"desired_size": 3, "max_size": 9, "min_size": 3}]})
        };
        let c = changes(
            tf(json!({"resource": {"aws_eks_node_group": {"general": group("general")}}})),
            tf(json!({"resource": {"aws_eks_node_group": {"workers": group("workers")}}})),
        );
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(c[0].class, Class::Replace, "{c:#?}");
        assert_eq!(
            c[0].action,
            Action::Move {
                from: "aws_eks_node_group.general".into(),
                moved_block: false
            }
        );
        let entry = |arn: &str| json!({"cluster_name": "c", "principal_arn": arn});
        let c = changes(
            tf(
                json!({"resource": {"aws_eks_access_entry": {"admin_a": entry("arn:aws:iam::1:role/a")}}}),
            ),
            tf(
                json!({"resource": {"aws_eks_access_entry": {"admin_b": entry("arn:aws:iam::1:role/b")}}}),
            ),
        );
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(c[0].class, Class::Replace, "{c:#?}");
        // With a `moved` block the same rename keeps the group (the body change remains).
        let c = changes(
            tf(json!({"resource": {"aws_eks_node_group": {"general": group("general")}}})),
            tf(
                json!({"resource": {"aws_eks_node_group": {"workers": group("general")}},
                "moved": [{"from": "aws_eks_node_group.general", "to": "aws_eks_node_group.workers"}]}),
            ),
        );
        assert_eq!(c[0].class, Class::Other, "{c:#?}");
    }

    /// Issue 22, bug 4: a changed image repository was "other".
    #[test]
    fn r22_a_changed_image_repository_is_security() {
        let deployment = |image: &str| {
            k8s(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "a"},
                "spec": {"template": {"spec": {"containers": [{"name": "api", "image": image}]}}}}))
        };
        let ecr = "111122223333.dkr.ecr.us-east-1.amazonaws.com/api";
        let d1 = format!("{ecr}@sha256:{}", "1".repeat(64));
        let d2 = format!("{ecr}@sha256:{}", "2".repeat(64));
        let c = changes(deployment(&d1), deployment(&d2));
        assert_eq!(
            c[0].class,
            Class::Other,
            "a new digest of the same repository: {c:#?}"
        );
        let evil = format!("docker.io/attacker/api@sha256:{}", "2".repeat(64));
        let c = changes(deployment(&d1), deployment(&evil));
        assert_eq!(c[0].class, Class::Security, "{c:#?}");
        assert!(
            c[0].reasons
                .iter()
                .any(|r| r.contains("docker.io/attacker/api")),
            "{c:#?}"
        );
        // An ECS task definition's containers, rendered as a local.
        let local = |image: &str| {
            tf(json!({"locals": {"app_containers": [{"name": "app", "image": image}]}}))
        };
        let c = changes(local(&d1), local("registry.example.com:5000/api:v1"));
        assert_eq!(c[0].class, Class::Security, "{c:#?}");
        let c = changes(local(&format!("{ecr}:v1")), local(&format!("{ecr}:v2")));
        assert_eq!(c[0].class, Class::Other, "{c:#?}");
    }
}
