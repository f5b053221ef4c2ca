//! Semantic diff of generated stacks: two file trees of one stack (before, after) →
//! changes per Terraform address and per Kubernetes object, with attribute-level paths,
//! each classified by [`classify`] (replace risk, security broadening, other).
//!
//! **Invariant:** pure: no I/O; `ops::diff` reads git and runs synth, `report` prints.

pub mod addrs;
pub mod classify;
pub mod report;
mod rollout_order;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub use classify::Class;

/// Files of one stack folder (`terraform/…`, `k8s/…`, `deploy/…`) and their bytes.
pub type FileTree = BTreeMap<PathBuf, Vec<u8>>;

/// What an address or object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A Terraform block: `resource`, `data`, `output`, `provider`, ….
    Terraform,
    /// A Kubernetes object (`Kind/namespace/name`).
    Kubernetes,
    /// Any other file, compared as text (or as YAML when it parses but is no object).
    File,
    /// A field of an environment file that decides policy but appears in no generated file
    /// (`tier`), compared between the base and the working tree.
    Environment,
    /// A file under `generated/` in the working tree that differs from what synth writes
    /// there and from the base: edited by hand, so its source was never reviewed.
    HandEdit,
}

/// What happens to an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// New address.
    Create,
    /// The address disappears.
    Delete,
    /// Same address, different body.
    Update,
    /// The body moved from another address (possibly changed on the way).
    Move {
        /// The old address.
        from: String,
        /// Whether the after side carries a Terraform `moved` block for it.
        moved_block: bool,
    },
}

/// One attribute that differs, by JSON path (`statement[0].actions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttrChange {
    /// Path inside the body; empty for the whole body.
    pub path: String,
    /// Value before (absent when added).
    pub before: Option<Value>,
    /// Value after (absent when removed).
    pub after: Option<Value>,
}

/// A change to one address or object.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `aws_db_instance.app_db`, `data.aws_iam_policy_document.x`, `output.x`,
    /// `Deployment/analytics/analytics-api`, or `deploy/x.sh` for a file.
    pub address: String,
    /// Terraform, Kubernetes or file.
    pub kind: Kind,
    /// Resource type (`aws_db_instance`) or Kubernetes kind; empty for files.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Create, delete, update or move.
    #[serde(flatten)]
    pub action: Action,
    /// Most severe class found.
    pub class: Class,
    /// Only tags, descriptions or comments changed.
    pub cosmetic: bool,
    /// Why it has its class, one sentence each.
    pub reasons: Vec<String>,
    /// Attribute-level differences (for a create or delete: none).
    pub attributes: Vec<AttrChange>,
}

/// The changes of one stack of one environment, most severe first.
#[derive(Debug, Clone, Serialize)]
pub struct StackDiff {
    /// Environment (or `staging→prod` for a comparison of two environments).
    pub env: String,
    /// Stack name.
    pub stack: String,
    /// The changes, most severe first, then by address.
    pub changes: Vec<Change>,
    /// The monthly cost estimate before and after (see [`crate::cost`]); `None` for a
    /// stack without Terraform resources on either side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::Change>,
}

impl StackDiff {
    /// Number of changes of `class`.
    pub fn count(&self, class: Class) -> usize {
        self.changes.iter().filter(|c| c.class == class).count()
    }

    /// Number of cosmetic changes.
    pub fn cosmetic(&self) -> usize {
        self.changes.iter().filter(|c| c.cosmetic).count()
    }
}

/// One address or object parsed out of a stack's files.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Terraform, Kubernetes or file.
    pub kind: Kind,
    /// Resource type or Kubernetes kind; empty for files.
    pub rtype: String,
    /// The body (a file that is no JSON/YAML is a string).
    pub body: Value,
}

/// Everything of one stack, by address, plus the Terraform `moved` blocks (from → to).
#[derive(Debug, Default)]
pub struct Parsed {
    /// Objects by address.
    pub objects: BTreeMap<String, Object>,
    /// `moved { from, to }` pairs.
    pub moved: Vec<(String, String)>,
}

/// Parses one stack's files into addresses and objects.
pub fn parse(files: &FileTree) -> Parsed {
    let mut out = Parsed::default();
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(bytes);
        let name = path.to_string_lossy().into_owned();
        let under = |dir: &str| path.starts_with(dir);
        if under("terraform") && name.ends_with(".json") {
            if let Ok(Value::Object(top)) = serde_json::from_str::<Value>(&text) {
                terraform_blocks(&top, &mut out);
                continue;
            }
        } else if under("k8s")
            && (name.ends_with(".yaml") || name.ends_with(".yml"))
            && let Ok(value) = serde_saphyr::from_str::<Value>(&text)
        {
            if let Some(address) = kubernetes_address(&value) {
                let rtype = value["kind"].as_str().unwrap_or_default().to_owned();
                let object = Object {
                    kind: Kind::Kubernetes,
                    rtype,
                    body: value,
                };
                out.objects.insert(address, object);
            } else {
                out.objects.insert(name, file_object(value));
            }
            continue;
        }
        out.objects
            .insert(name, file_object(Value::String(text.into_owned())));
    }
    out
}

fn file_object(body: Value) -> Object {
    Object {
        kind: Kind::File,
        rtype: String::new(),
        body,
    }
}

/// `Kind/namespace/name` (or `Kind/name` for cluster-scoped objects).
fn kubernetes_address(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    Some(match meta.get("namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    })
}

fn terraform_blocks(top: &serde_json::Map<String, Value>, out: &mut Parsed) {
    let mut insert = |address: String, rtype: &str, body: &Value| {
        out.objects.insert(
            address,
            Object {
                kind: Kind::Terraform,
                rtype: rtype.to_owned(),
                body: body.clone(),
            },
        );
    };
    for (block, value) in top {
        match (block.as_str(), value) {
            ("resource" | "data", Value::Object(types)) => {
                for (rtype, names) in types {
                    let Value::Object(names) = names else {
                        continue;
                    };
                    for (name, body) in names {
                        let address = if block == "data" {
                            format!("data.{rtype}.{name}")
                        } else {
                            format!("{rtype}.{name}")
                        };
                        insert(address, rtype, body);
                    }
                }
            }
            ("moved", Value::Array(list)) => {
                for m in list {
                    if let (Some(from), Some(to)) = (
                        m.get("from").and_then(Value::as_str),
                        m.get("to").and_then(Value::as_str),
                    ) {
                        out.moved.push((from.to_owned(), to.to_owned()));
                    }
                }
            }
            ("//", _) => {}
            (_, Value::Object(named)) => {
                for (name, body) in named {
                    insert(format!("{block}.{name}"), block, body);
                }
            }
            _ => insert(block.clone(), block, value),
        }
    }
}

/// The change of an environment's `tier` between the base and the working tree: security,
/// since the tier decides which policy rules apply to everything the file builds.
pub fn tier_change(env: &str, before: &str, after: &str) -> Change {
    Change {
        address: format!("environments/{env}.yaml: tier"),
        kind: Kind::Environment,
        rtype: "tier".into(),
        action: Action::Update,
        class: Class::Security,
        cosmetic: false,
        reasons: vec![format!(
            "the tier changes from {before} to {after}: the tier decides which policy rules (prod's and staging's) apply"
        )],
        attributes: vec![AttrChange {
            path: "tier".into(),
            before: Some(Value::String(before.to_owned())),
            after: Some(Value::String(after.to_owned())),
        }],
    }
}

/// A file under `generated/` (`shown`, e.g. `generated/prod/platform/terraform/x.tf.json`)
/// that the working tree holds otherwise than synth writes it and than the base: security,
/// since what is applied is then not what the reviewed sources say.
pub fn hand_edit(shown: &str, how: &str) -> Change {
    Change {
        address: shown.to_owned(),
        kind: Kind::HandEdit,
        rtype: String::new(),
        action: Action::Update,
        class: Class::Security,
        cosmetic: false,
        reasons: vec![format!(
            "hand edit: {how}; a hand edit bypasses review of the source (run `keel synth` and commit what it writes)"
        )],
        attributes: Vec::new(),
    }
}

/// What the two sides of a diff are, which decides whether a difference is a step that
/// gets applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    /// Two states of one stack (a revision and the next, or the state before and after a
    /// refresh): the difference is applied as a change.
    Revisions,
    /// One stack in two environments (`keel diff --envs`): nothing moves from one to the
    /// other, so rules about steps (a cluster's version) do not apply.
    Environments,
}

/// Diffs one stack: `before` as committed, `after` as synth would write it.
pub fn diff_stack(env: &str, stack: &str, before: &FileTree, after: &FileTree) -> StackDiff {
    diff_parsed(env, stack, &parse(before), &parse(after))
}

/// Diffs one stack of two environments (`label` is `from→to`): `before` is the first's
/// files, `after` the second's ([`Sides::Environments`]).
pub fn diff_environments(
    label: &str,
    stack: &str,
    before: &FileTree,
    after: &FileTree,
) -> StackDiff {
    diff_sides(
        label,
        stack,
        &parse(before),
        &parse(after),
        Sides::Environments,
    )
}

/// Diffs two parsed stacks (see [`diff_stack`]).
pub fn diff_parsed(env: &str, stack: &str, before: &Parsed, after: &Parsed) -> StackDiff {
    diff_sides(env, stack, before, after, Sides::Revisions)
}

fn diff_sides(env: &str, stack: &str, before: &Parsed, after: &Parsed, sides: Sides) -> StackDiff {
    let mut changes = Vec::new();
    let deleted: BTreeSet<&String> = before
        .objects
        .keys()
        .filter(|a| !after.objects.contains_key(*a))
        .collect();
    let created: BTreeSet<&String> = after
        .objects
        .keys()
        .filter(|a| !before.objects.contains_key(*a))
        .collect();
    // Moves: first the declared ones, then an equal body under a new address.
    let mut moves: Vec<(&String, &String, bool)> = Vec::new();
    for (from, to) in &after.moved {
        if let (Some(f), Some(t)) = (deleted.get(from), created.get(to)) {
            moves.push((f, t, true));
        }
    }
    for d in &deleted {
        if moves.iter().any(|(f, _, _)| f == d) {
            continue;
        }
        let old = &before.objects[*d];
        let found = created.iter().find(|c| {
            let new = &after.objects[**c];
            !moves.iter().any(|(_, t, _)| t == *c)
                && new.kind == old.kind
                && new.kind != Kind::File
                && new.rtype == old.rtype
                && without_name(&new.body) == without_name(&old.body)
        });
        if let Some(c) = found {
            moves.push((d, c, false));
        }
    }
    // Renames with a changed body (a node group's `node_group_name` follows its id): an
    // address of an identity-bearing type disappears while another of the type appears.
    // Paired with the most similar new address, they are a move without a `moved` block.
    for d in &deleted {
        let old = &before.objects[*d];
        if moves.iter().any(|(f, _, _)| f == d)
            || old.kind != Kind::Terraform
            || d.starts_with("data.")
            || !classify::identity_addressed(&old.rtype)
        {
            continue;
        }
        let found = created
            .iter()
            .filter(|c| {
                let new = &after.objects[**c];
                !c.starts_with("data.")
                    && new.kind == old.kind
                    && new.rtype == old.rtype
                    && !moves.iter().any(|(_, t, _)| t == *c)
            })
            .min_by_key(|c| {
                let mut differences = Vec::new();
                diff_values(
                    &mut String::new(),
                    &old.body,
                    &after.objects[**c].body,
                    &mut differences,
                );
                differences.len()
            });
        if let Some(c) = found {
            moves.push((d, c, false));
        }
    }
    for (from, to, moved_block) in &moves {
        let (old, new) = (&before.objects[*from], &after.objects[*to]);
        let mut attributes = Vec::new();
        diff_values(&mut String::new(), &old.body, &new.body, &mut attributes);
        changes.push(change(
            to,
            new,
            Action::Move {
                from: (*from).clone(),
                moved_block: *moved_block,
            },
            attributes,
            Some(old),
            sides,
        ));
    }
    let moved_from: BTreeSet<&String> = moves.iter().map(|(f, _, _)| *f).collect();
    let moved_to: BTreeSet<&String> = moves.iter().map(|(_, t, _)| *t).collect();
    for d in deleted.iter().filter(|d| !moved_from.contains(*d)) {
        changes.push(change(
            d,
            &before.objects[*d],
            Action::Delete,
            Vec::new(),
            None,
            sides,
        ));
    }
    for c in created.iter().filter(|c| !moved_to.contains(*c)) {
        changes.push(change(
            c,
            &after.objects[*c],
            Action::Create,
            Vec::new(),
            None,
            sides,
        ));
    }
    for (address, old) in &before.objects {
        if let Some(new) = after.objects.get(address)
            && new.body != old.body
        {
            let mut attributes = Vec::new();
            diff_values(&mut String::new(), &old.body, &new.body, &mut attributes);
            changes.push(change(
                address,
                new,
                Action::Update,
                attributes,
                Some(old),
                sides,
            ));
        }
    }
    if sides == Sides::Revisions {
        rollout_order::flag(&mut changes, before, after);
    }
    sort_changes(&mut changes);
    let cost = crate::cost::Change::between(
        crate::cost::Estimate::of_parsed(before).as_ref(),
        crate::cost::Estimate::of_parsed(after).as_ref(),
    );
    StackDiff {
        env: env.to_owned(),
        stack: stack.to_owned(),
        changes,
        cost,
    }
}

/// Most severe first, then by address.
pub fn sort_changes(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        a.class
            .cmp(&b.class)
            .then(a.cosmetic.cmp(&b.cosmetic))
            .then(a.address.cmp(&b.address))
    });
}

fn change(
    address: &str,
    object: &Object,
    action: Action,
    attributes: Vec<AttrChange>,
    before: Option<&Object>,
    sides: Sides,
) -> Change {
    let mut c = Change {
        address: address.to_owned(),
        kind: object.kind,
        rtype: object.rtype.clone(),
        action,
        class: Class::Other,
        cosmetic: false,
        reasons: Vec::new(),
        attributes,
    };
    classify::classify(&mut c, before.map(|o| &o.body), object, sides);
    c
}

/// The body without its own name, to find a renamed Kubernetes object.
fn without_name(body: &Value) -> Value {
    let mut b = body.clone();
    if let Some(meta) = b.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("name");
    }
    b
}

/// Appends every difference between `a` and `b` below `path`.
pub fn diff_values(path: &mut String, a: &Value, b: &Value, out: &mut Vec<AttrChange>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let len = path.len();
                push_key(path, k);
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_values(path, va, vb, out),
                    (va, vb) => out.push(AttrChange {
                        path: path.clone(),
                        before: va.cloned(),
                        after: vb.cloned(),
                    }),
                }
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y))
            if x.len() == y.len() && x.iter().chain(y).any(|v| v.is_object()) =>
        {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                diff_values(path, va, vb, out);
                path.truncate(len);
            }
        }
        _ if a != b => out.push(AttrChange {
            path: path.clone(),
            before: Some(a.clone()),
            after: Some(b.clone()),
        }),
        _ => {}
    }
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push_str(&format!("[{}]", Value::String(key.to_owned())));
    }
}

/// The path without array indices and quoted keys' brackets: `vpc_config[0].subnet_ids` →
/// `vpc_config.subnet_ids`, for table lookups.
pub fn normalized(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let close = rest[i..].find(']').map_or(rest.len(), |j| i + j + 1);
        let inner = &rest[i + 1..close.saturating_sub(1).max(i + 1)];
        if inner.starts_with('"') {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(inner.trim_matches('"'));
        }
        rest = &rest[close.min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// Reads `generated/<env>/<stack>/` style trees: splits a tree of one environment
/// (paths `<stack>/…`) into stacks.
pub fn split_stacks(tree: BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<String, FileTree> {
    let mut out: BTreeMap<String, FileTree> = BTreeMap::new();
    for (path, bytes) in tree {
        let mut parts = path.components();
        let Some(stack) = parts.next() else { continue };
        let rest: PathBuf = parts.collect();
        if rest.as_os_str().is_empty() {
            continue;
        }
        let stack = stack.as_os_str().to_string_lossy().into_owned();
        out.entry(stack).or_default().insert(rest, bytes);
    }
    out
}

/// Joins a stack-relative path for messages.
pub fn shown(env: &str, stack: &str, rel: &Path) -> String {
    format!("generated/{env}/{stack}/{}", rel.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn tf(body: Value) -> FileTree {
        let mut t = FileTree::new();
        t.insert(
            "terraform/main.tf.json".into(),
            serde_json::to_vec(&body).expect("a Value always serializes"),
        );
        t
    }

    #[test]
    fn paths_name_attributes() {
        let mut out = Vec::new();
        diff_values(
            &mut String::new(),
            &json!({"a": {"b": [{"c": 1}]}, "tags": {"x.y/z": "1"}}),
            &json!({"a": {"b": [{"c": 2}]}, "tags": {"x.y/z": "2"}, "n": true}),
            &mut out,
        );
        let paths: Vec<_> = out.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["a.b[0].c", "n", "tags[\"x.y/z\"]"]);
        assert_eq!(normalized("a.b[0].c"), "a.b.c");
        assert_eq!(normalized("tags[\"x.y/z\"]"), "tags.x.y/z");
    }

    #[test]
    fn unchanged_trees_have_no_changes_and_edits_do() {
        let t = tf(json!({"resource": {"aws_vpc": {"main": {"cidr_block": "10.0.0.0/16"}}}}));
        assert!(diff_stack("prod", "s", &t, &t).changes.is_empty());
        let u = tf(json!({"resource": {"aws_vpc": {"main": {"cidr_block": "10.1.0.0/16"}}}}));
        let d = diff_stack("prod", "s", &t, &u);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].address, "aws_vpc.main");
        assert_eq!(d.changes[0].attributes[0].path, "cidr_block");
    }
}
