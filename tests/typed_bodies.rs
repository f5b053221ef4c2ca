//! Issue 20: every Terraform resource and data source is built through the typed bindings
//! (`keel::tf::aws`, in `tf-aws/`). The untyped `Config::resource`/`resource_with`/`data`/
//! `data_with` exist only under `#[cfg(test)]` (policy rules are tested on bodies no construct
//! builds), so keel's code cannot call them; this scan is the second line, and says where a
//! call is. Test modules (after `#[cfg(test)]`) and the model itself (`src/tf/`) are not
//! scanned.
//!
//! The provider block too is built through its binding (`aws::provider::Aws`): no code
//! outside `tf-aws/`, `src/tf/` included, names a member of the provider configuration as a
//! string, which an untyped provider body (`json!({"aws": {"allowed_account_ids": ..}})`)
//! must.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// Files that still build untyped bodies, with how many calls: none since every construct
/// was migrated. Shrink only.
const UNTYPED: &[(&str, usize)] = &[];

/// The calls that take an untyped body.
const CALLS: &[&str] = &[".resource(", ".resource_with(", ".data(", ".data_with("];

/// Every `.rs` file under `dir` as (path relative to `root`, code before its test module),
/// sorted.
fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        if path.is_dir() {
            sources(&path, root, out);
        } else if rel.ends_with(".rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            out.push((rel, non_test_code(&text).to_owned()));
        }
    }
}

/// `text` up to its test module (an unindented `#[cfg(test)]` before a `mod` line):
/// `#[cfg(test)]` items elsewhere (the model's test-only methods) stay in.
fn non_test_code(text: &str) -> &str {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let next = lines.peek().copied().unwrap_or("");
        if line.trim_end() == "#[cfg(test)]" && next.split_whitespace().any(|w| w == "mod") {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// The code of keel's constructs and stacks (`src/`, `stacks/`).
fn keel_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    sources(&root.join("src"), root, &mut out);
    sources(&root.join("stacks"), root, &mut out);
    out
}

fn scan(out: &mut BTreeMap<String, usize>) {
    for (rel, code) in keel_sources() {
        if rel.starts_with("src/tf/") {
            continue;
        }
        let n: usize = CALLS.iter().map(|c| code.matches(c).count()).sum();
        if n > 0 {
            out.insert(rel, n);
        }
    }
}

/// The members of the provider configuration (either major) that no bound resource or
/// data source has, from the committed trimmed schemas: a string naming one is a piece of
/// a provider body.
fn provider_only_members() -> BTreeSet<String> {
    fn members(block: &Value, out: &mut BTreeSet<String>) {
        for key in ["a", "b"] {
            for (name, member) in block
                .get(key)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                out.insert(name.clone());
                members(member, out);
                if let Some(nested) = member.get("n") {
                    members(nested, out);
                }
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut provider, mut types) = (BTreeSet::new(), BTreeSet::new());
    for version in ["5.100.0", "6.47.0"] {
        let path = root.join(format!("tfgen/schema/aws-{version}.json"));
        let text = std::fs::read_to_string(&path).expect("the trimmed schema is committed");
        let schema: Value = serde_json::from_str(&text).expect("the trimmed schema is JSON");
        members(&schema["provider_config"], &mut provider);
        for kind in ["resource", "data"] {
            for block in schema[kind].as_object().expect("types by name").values() {
                members(block, &mut types);
            }
        }
    }
    provider.difference(&types).cloned().collect()
}

#[test]
fn untyped_terraform_bodies_only_shrink() {
    let mut found = BTreeMap::new();
    scan(&mut found);
    let allowed: BTreeMap<String, usize> =
        UNTYPED.iter().map(|(f, n)| ((*f).to_owned(), *n)).collect();
    let mut problems = Vec::new();
    for (file, n) in &found {
        match allowed.get(file) {
            None => problems.push(format!(
                "{file}: {n} untyped Terraform bodies; build them with crate::tf::aws (Config::add)"
            )),
            Some(max) if n > max => problems.push(format!(
                "{file}: {n} untyped Terraform bodies, {max} allowed; build the new ones with crate::tf::aws"
            )),
            Some(max) if n < max => problems.push(format!(
                "{file}: {n} untyped Terraform bodies, {max} listed; lower its entry in UNTYPED"
            )),
            Some(_) => {}
        }
    }
    for file in allowed.keys().filter(|f| !found.contains_key(*f)) {
        problems.push(format!(
            "{file}: no untyped body left; remove it from UNTYPED"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_untyped_provider_body() {
    let members = provider_only_members();
    // The scan sees the members an untyped body of keel's provider would name.
    for m in [
        "allowed_account_ids",
        "default_tags",
        "assume_role",
        "ignore_tags",
    ] {
        assert!(
            members.contains(m),
            "{m} is not a provider-only member: {members:?}"
        );
    }
    let mut problems = Vec::new();
    for (file, code) in keel_sources() {
        // The HCL renderer knows which blocks are written as objects; it builds no body.
        if file == "src/tf/hcl.rs" {
            continue;
        }
        for m in &members {
            let n = code.matches(&format!("\"{m}\"")).count();
            if n > 0 {
                problems.push(format!(
                    "{file}: names the provider member \"{m}\" {n} time(s); build the provider block with keel::tf::aws::provider::Aws"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
