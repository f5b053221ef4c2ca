//! `keel adopt ENV --from FILE`: proposes `adopt:` entries for an environment file by
//! matching resources that already exist (a `terraform show -json` document, or a state file)
//! to keel's addresses on identifying attributes (names, CIDRs, `Name` tags), and says which
//! it could not match, and why. Writes nothing: the proposal is YAML to review and paste.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::env::adopt;
use crate::error::Error;

use super::Project;
use super::synth::{self, Selection};

/// An existing resource read from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// Its address in the input (`aws_vpc.legacy`, `module.net.aws_vpc.this`).
    pub address: String,
    /// Resource type.
    pub rtype: String,
    /// Its attributes.
    pub values: Value,
}

/// Identifying attributes per type: the first must match, the others must not differ
/// where keel sets them. A dotted path reads into maps (`tags.Name`).
const IDENTIFYING: &[(&str, &[&str])] = &[
    ("aws_vpc", &["cidr_block", "tags.Name"]),
    (
        "aws_subnet",
        &["cidr_block", "availability_zone", "tags.Name"],
    ),
    ("aws_security_group", &["name"]),
    ("aws_internet_gateway", &["tags.Name"]),
    ("aws_nat_gateway", &["tags.Name"]),
    ("aws_eip", &["tags.Name"]),
    ("aws_route_table", &["tags.Name"]),
    ("aws_vpc_endpoint", &["tags.Name", "service_name"]),
    ("aws_db_instance", &["identifier"]),
    (
        "aws_elasticache_replication_group",
        &["replication_group_id"],
    ),
    ("aws_s3_bucket", &["bucket"]),
    ("aws_kms_key", &["tags.Name", "description"]),
    ("aws_iam_openid_connect_provider", &["url"]),
];

/// The attribute of the state that holds the import id (default `id`).
fn id_attribute(rtype: &str) -> &'static str {
    match rtype {
        "aws_db_instance" => "identifier",
        "aws_ecs_cluster" => "name",
        _ => "id",
    }
}

/// The identifying attributes of `rtype`; types without an entry are matched by `name`.
fn identifying(rtype: &str) -> &'static [&'static str] {
    IDENTIFYING
        .iter()
        .find(|(t, _)| *t == rtype)
        .map_or(&["name"], |(_, a)| a)
}

/// A literal string or number at a dotted path; `None` for an expression or absence.
fn literal(body: &Value, path: &str) -> Option<String> {
    let mut v = body;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    match v {
        Value::String(s) if !crate::refs::is_template(s) && !s.contains("${") => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads the resources of a `terraform show -json` document (of a state or a plan) or of a
/// state file (version 4). Data sources are skipped.
pub fn read_existing(doc: &Value) -> Result<Vec<Existing>, String> {
    let mut out = Vec::new();
    fn module(m: &Value, out: &mut Vec<Existing>) {
        for r in m["resources"].as_array().into_iter().flatten() {
            if r["mode"] == "managed"
                && let (Some(address), Some(rtype)) = (r["address"].as_str(), r["type"].as_str())
            {
                out.push(Existing {
                    address: address.to_owned(),
                    rtype: rtype.to_owned(),
                    values: r["values"].clone(),
                });
            }
        }
        for child in m["child_modules"].as_array().into_iter().flatten() {
            module(child, out);
        }
    }
    if let Some(root) = doc.pointer("/values/root_module") {
        module(root, &mut out);
    } else if let Some(root) = doc.pointer("/prior_state/values/root_module") {
        module(root, &mut out);
    } else if let Some(resources) = doc["resources"].as_array() {
        for r in resources {
            if r["mode"] != "managed" {
                continue;
            }
            let (Some(rtype), Some(name)) = (r["type"].as_str(), r["name"].as_str()) else {
                continue;
            };
            let prefix = r["module"]
                .as_str()
                .map_or(String::new(), |m| format!("{m}."));
            let instances = r["instances"].as_array().cloned().unwrap_or_default();
            let many = instances.len() > 1;
            for (i, inst) in instances.iter().enumerate() {
                let key = match &inst["index_key"] {
                    Value::Null if !many => String::new(),
                    Value::Null => format!("[{i}]"),
                    Value::String(s) => format!("[{s:?}]"),
                    k => format!("[{k}]"),
                };
                out.push(Existing {
                    address: format!("{prefix}{rtype}.{name}{key}"),
                    rtype: rtype.to_owned(),
                    values: inst["attributes"].clone(),
                });
            }
        }
    } else {
        return Err(
            "expected `terraform show -json` output (values.root_module) or a state file (resources)"
                .into(),
        );
    }
    Ok(out)
}

/// One keel resource that could be adopted.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Stack name.
    pub stack: String,
    /// Resource type.
    pub rtype: String,
    /// Keel address.
    pub address: String,
    /// The body keel renders.
    pub body: Value,
}

/// One proposed entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The existing resource's import id.
    pub id: String,
    /// The identifying attributes that matched.
    pub matched: Vec<String>,
    /// Its address in the input.
    pub source: String,
}

/// The proposal.
#[derive(Debug, Default)]
pub struct Proposal {
    /// stack → keel address → entry.
    pub entries: BTreeMap<String, BTreeMap<String, Entry>>,
    /// Keel addresses (`stack address`) not matched, with the reason.
    pub unmatched: Vec<(String, String)>,
    /// Existing resources (input address) not proposed, with the reason.
    pub left: Vec<(String, String)>,
    /// Keel resources of types the input does not hold (not looked for).
    pub not_looked_for: usize,
}

/// Matches `existing` to `wanted` (pure).
pub fn propose(wanted: &[Wanted], existing: &[Existing]) -> Proposal {
    let mut p = Proposal::default();
    let mut taken: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut found: Vec<(usize, usize, Vec<String>)> = Vec::new();
    for (wi, w) in wanted.iter().enumerate() {
        if !existing.iter().any(|e| e.rtype == w.rtype) {
            p.not_looked_for += 1;
            continue;
        }
        let who = format!("{} {}", w.stack, w.address);
        if adopt::format(&w.rtype).is_none() {
            p.unmatched.push((
                who,
                format!("keel does not know the import id of {}", w.rtype),
            ));
            continue;
        }
        let attrs = identifying(&w.rtype);
        let keys: Vec<(&str, String)> = attrs
            .iter()
            .filter_map(|a| literal(&w.body, a).map(|v| (*a, v)))
            .collect();
        if keys.first().map(|(a, _)| *a) != Some(attrs[0]) {
            p.unmatched.push((
                who,
                format!(
                    "its {} is not a literal in keel's Terraform, so it cannot be matched",
                    attrs[0]
                ),
            ));
            continue;
        }
        let candidates: Vec<usize> = existing
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.rtype == w.rtype
                    && keys
                        .iter()
                        .all(|(a, v)| literal(&e.values, a).is_none_or(|x| &x == v))
                    && literal(&e.values, attrs[0]).is_some()
            })
            .map(|(i, _)| i)
            .collect();
        let described = keys
            .iter()
            .map(|(a, v)| format!("{a} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        match candidates.as_slice() {
            [] => p
                .unmatched
                .push((who, format!("no existing {} has {described}", w.rtype))),
            [one] => {
                let matched: Vec<String> = keys
                    .iter()
                    .filter(|(a, _)| literal(&existing[*one].values, a).is_some())
                    .map(|(a, _)| (*a).to_owned())
                    .collect();
                taken.entry(*one).or_default().push(wi);
                found.push((wi, *one, matched));
            }
            many => p.unmatched.push((
                who,
                format!(
                    "{} existing resources have {described}: {}",
                    many.len(),
                    many.iter()
                        .map(|i| existing[*i].address.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    for (wi, ei, matched) in found {
        let w = &wanted[wi];
        let e = &existing[ei];
        let claimants = &taken[&ei];
        if claimants.len() > 1 {
            let others: Vec<String> = claimants
                .iter()
                .filter(|i| **i != wi)
                .map(|i| format!("{} {}", wanted[*i].stack, wanted[*i].address))
                .collect();
            p.unmatched.push((
                format!("{} {}", w.stack, w.address),
                format!("{} matches it too ({}): one existing resource can be adopted by one address only", others.join(", "), e.address),
            ));
            continue;
        }
        let id = e.values[id_attribute(&e.rtype)]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let fits = adopt::format(&e.rtype).is_some_and(|f| f.shape.accepts(&id));
        if !fits {
            p.unmatched.push((
                format!("{} {}", w.stack, w.address),
                format!(
                    "{} matches, but its {} is not an import id keel accepts for {}",
                    e.address,
                    id_attribute(&e.rtype),
                    e.rtype
                ),
            ));
            continue;
        }
        p.entries.entry(w.stack.clone()).or_default().insert(
            w.address.clone(),
            Entry {
                id,
                matched,
                source: e.address.clone(),
            },
        );
    }
    for (ei, e) in existing.iter().enumerate() {
        let proposed = p
            .entries
            .values()
            .flat_map(|m| m.values())
            .any(|entry| entry.source == e.address);
        if proposed {
            continue;
        }
        let why = if !wanted.iter().any(|w| w.rtype == e.rtype) {
            format!("the environment's stacks have no {}", e.rtype)
        } else if taken.get(&ei).is_some_and(|c| c.len() > 1) {
            "several keel addresses match it (see above)".to_owned()
        } else if taken.contains_key(&ei) {
            "it matched, but could not be proposed (see above)".to_owned()
        } else {
            format!(
                "no keel {} has the same {}",
                e.rtype,
                identifying(&e.rtype).join(" and ")
            )
        };
        p.left.push((e.address.clone(), why));
    }
    p
}

impl Proposal {
    /// The proposal as YAML for the environment file, with what was not matched as comments.
    pub fn to_yaml(&self, env: &str, from: &str) -> String {
        let count: usize = self.entries.values().map(BTreeMap::len).sum();
        let mut out = format!(
            "# keel adopt {env} --from {from}: {count} proposed, {} keel addresses not matched, {} existing resources left\n# review, then add under `adopt:` in environments/{env}.yaml and run `keel synth {env}`\n",
            self.unmatched.len(),
            self.left.len()
        );
        if count > 0 {
            out.push_str("adopt:\n");
        }
        for (stack, entries) in &self.entries {
            let _ = writeln!(out, "  {stack}:");
            for (address, e) in entries {
                let _ = writeln!(
                    out,
                    "    {address}: {}  # {}, by {}",
                    e.id,
                    e.source,
                    e.matched.join(", ")
                );
            }
        }
        if !self.unmatched.is_empty() {
            out.push_str("# keel addresses not matched:\n");
            for (who, why) in &self.unmatched {
                let _ = writeln!(out, "#   {who}: {why}");
            }
        }
        if !self.left.is_empty() {
            out.push_str("# existing resources left:\n");
            for (address, why) in &self.left {
                let _ = writeln!(out, "#   {address}: {why}");
            }
        }
        if self.not_looked_for > 0 {
            let _ = writeln!(
                out,
                "# {} keel resources of types the input does not hold were not looked for",
                self.not_looked_for
            );
        }
        out
    }
}

/// `keel adopt ENV --from FILE [--stack NAME]`.
pub fn adopt(
    project: &Project,
    env: &str,
    from: &Path,
    stack: Option<&str>,
) -> Result<String, Error> {
    let text = std::fs::read_to_string(from)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", from.display())))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}:{}:{}: expected JSON (`terraform show -json` output or a state file): {e}",
            from.display(),
            e.line(),
            e.column()
        ))
    })?;
    let existing =
        read_existing(&doc).map_err(|e| Error::Usage(format!("{}: {e}", from.display())))?;
    let outputs = synth::build(
        project,
        &Selection {
            envs: vec![env.to_owned()],
            stack: stack.map(str::to_owned),
        },
    )?;
    let mut wanted = Vec::new();
    for o in &outputs {
        let files: crate::diff::FileTree = o
            .files
            .iter()
            .map(|(p, b)| (p.clone(), b.as_bytes().to_vec()))
            .collect();
        for (address, object) in crate::diff::parse(&files).objects {
            if object.kind == crate::diff::Kind::Terraform
                && object.rtype.starts_with("aws_")
                && address.starts_with(&format!("{}.", object.rtype))
            {
                wanted.push(Wanted {
                    stack: o.stack.to_owned(),
                    rtype: object.rtype,
                    address,
                    body: object.body,
                });
            }
        }
    }
    Ok(propose(&wanted, &existing).to_yaml(env, &from.display().to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wanted(address: &str, body: Value) -> Wanted {
        Wanted {
            stack: "platform".into(),
            rtype: address.split('.').next().unwrap_or_default().into(),
            address: address.into(),
            body,
        }
    }

    fn existing(address: &str, values: Value) -> Existing {
        Existing {
            address: address.into(),
            rtype: address.split('.').next().unwrap_or_default().into(),
            values,
        }
    }

    #[test]
    fn matches_by_cidr_and_name_and_says_why_not() {
        let w = vec![
            wanted(
                "aws_vpc.main",
                json!({"cidr_block": "10.0.0.0/16", "tags": {"Name": "eks-dev-vpc"}}),
            ),
            wanted(
                "aws_subnet.private_a",
                json!({"cidr_block": "10.0.128.0/20", "availability_zone": "us-east-1a", "vpc_id": "${aws_vpc.main.id}"}),
            ),
            wanted(
                "aws_subnet.private_b",
                json!({"cidr_block": "10.0.144.0/20"}),
            ),
            wanted("aws_subnet.any", json!({"cidr_block": "${var.x}"})),
        ];
        let e = vec![
            existing(
                "aws_vpc.legacy",
                json!({"id": "vpc-0a1b2c3d4e5f60718", "cidr_block": "10.0.0.0/16", "tags": {"Name": "eks-dev-vpc"}}),
            ),
            existing(
                "aws_subnet.a",
                json!({"id": "subnet-0a1b2c3d", "cidr_block": "10.0.128.0/20", "availability_zone": "us-east-1a"}),
            ),
            existing(
                "aws_subnet.other",
                json!({"id": "subnet-0a1b2c3e", "cidr_block": "10.9.0.0/24"}),
            ),
            existing("aws_instance.web", json!({"id": "i-0a1b2c3d"})),
        ];
        let p = propose(&w, &e);
        let platform = &p.entries["platform"];
        assert_eq!(platform["aws_vpc.main"].id, "vpc-0a1b2c3d4e5f60718");
        assert_eq!(
            platform["aws_vpc.main"].matched,
            vec!["cidr_block", "tags.Name"]
        );
        assert_eq!(platform["aws_subnet.private_a"].id, "subnet-0a1b2c3d");
        assert_eq!(
            p.unmatched,
            vec![
                (
                    "platform aws_subnet.private_b".to_owned(),
                    "no existing aws_subnet has cidr_block = 10.0.144.0/20".to_owned()
                ),
                (
                    "platform aws_subnet.any".to_owned(),
                    "its cidr_block is not a literal in keel's Terraform, so it cannot be matched"
                        .to_owned()
                ),
            ]
        );
        assert_eq!(
            p.left,
            vec![
                (
                    "aws_subnet.other".to_owned(),
                    "no keel aws_subnet has the same cidr_block and availability_zone and tags.Name"
                        .to_owned()
                ),
                (
                    "aws_instance.web".to_owned(),
                    "the environment's stacks have no aws_instance".to_owned()
                ),
            ]
        );
        let yaml = p.to_yaml("dev", "state.json");
        assert!(yaml.contains("adopt:\n  platform:\n    aws_subnet.private_a: subnet-0a1b2c3d  # aws_subnet.a, by cidr_block, availability_zone\n"), "{yaml}");
    }

    #[test]
    fn one_existing_resource_is_proposed_for_one_address_only() {
        let w = vec![
            wanted("aws_subnet.a", json!({"cidr_block": "10.0.0.0/24"})),
            wanted("aws_subnet.b", json!({"cidr_block": "10.0.0.0/24"})),
        ];
        let e = vec![existing(
            "aws_subnet.x",
            json!({"id": "subnet-0a1b2c3d", "cidr_block": "10.0.0.0/24"}),
        )];
        let p = propose(&w, &e);
        assert!(p.entries.is_empty());
        assert_eq!(p.unmatched.len(), 2);
        assert!(
            p.unmatched[0]
                .1
                .contains("one existing resource can be adopted by one address only")
        );
    }

    #[test]
    fn reads_show_json_and_state_files() {
        let show = json!({"values": {"root_module": {"resources": [
            {"address": "aws_vpc.a", "mode": "managed", "type": "aws_vpc", "name": "a", "values": {"id": "vpc-0a1b2c3d"}},
            {"address": "data.aws_region.r", "mode": "data", "type": "aws_region", "name": "r", "values": {}}
        ], "child_modules": [{"resources": [
            {"address": "module.n.aws_subnet.s", "mode": "managed", "type": "aws_subnet", "name": "s", "values": {"id": "subnet-0a1b2c3d"}}
        ]}]}}});
        let got = read_existing(&show).unwrap_or_default();
        assert_eq!(
            got.iter().map(|e| e.address.as_str()).collect::<Vec<_>>(),
            ["aws_vpc.a", "module.n.aws_subnet.s"]
        );
        let state = json!({"version": 4, "resources": [
            {"mode": "managed", "type": "aws_subnet", "name": "s", "instances": [
                {"index_key": 0, "attributes": {"id": "subnet-0a1b2c3d"}},
                {"index_key": 1, "attributes": {"id": "subnet-0a1b2c3e"}}]}
        ]});
        let got = read_existing(&state).unwrap_or_default();
        assert_eq!(
            got.iter().map(|e| e.address.as_str()).collect::<Vec<_>>(),
            ["aws_subnet.s[0]", "aws_subnet.s[1]"]
        );
        assert!(read_existing(&json!({"x": 1})).is_err());
    }
}
