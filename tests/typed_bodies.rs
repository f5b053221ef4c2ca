//! Issue 20: every Terraform resource and data source is built through the typed bindings
//! (`keel::tf::aws`, in `tf-aws/`). The untyped `Config::resource`/`resource_with`/`data`/
//! `data_with` exist only under `#[cfg(test)]` (policy rules are tested on bodies no construct
//! builds), so keel's code cannot call them; this scan is the second line, and says where a
//! call is. Test modules (after `#[cfg(test)]`) and the model itself (`src/tf/`) are not
//! scanned.

use std::collections::BTreeMap;
use std::path::Path;

/// Files that still build untyped bodies, with how many calls: none since every construct
/// was migrated. Shrink only.
const UNTYPED: &[(&str, usize)] = &[];

/// The calls that take an untyped body.
const CALLS: &[&str] = &[".resource(", ".resource_with(", ".data(", ".data_with("];

fn scan(dir: &Path, root: &Path, out: &mut BTreeMap<String, usize>) {
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
        if rel == "src/tf" {
            continue;
        }
        if path.is_dir() {
            scan(&path, root, out);
        } else if rel.ends_with(".rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let n: usize = CALLS.iter().map(|c| code.matches(c).count()).sum();
            if n > 0 {
                out.insert(rel, n);
            }
        }
    }
}

#[test]
fn untyped_terraform_bodies_only_shrink() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = BTreeMap::new();
    scan(&root.join("src"), root, &mut found);
    scan(&root.join("stacks"), root, &mut found);
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
