//! The README's two commands share their dependencies' builds: every crate in keel's own
//! build has the same features in the workspace's test build (the workload's dependencies
//! would otherwise widen them, and a new user would compile keel's tree twice). The
//! `workspace-hack` crate holds the union; this test says what to add to it.

use std::collections::BTreeMap;
use std::process::Command;

use crate::common;

/// `cargo tree` of `selection`: each package (`name vX.Y.Z`) with its enabled features.
fn features(selection: &[&str]) -> BTreeMap<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(common::repo())
        .args([
            "tree", "--frozen", "--prefix", "none", "--format", "{p}|{f}",
        ])
        .args(selection)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let line = line.trim_end_matches(" (*)");
            let (package, features) = line.split_once('|')?;
            // `name vX.Y.Z`, without a path or "(proc-macro)" suffix.
            let package = package.split(' ').take(2).collect::<Vec<_>>().join(" ");
            Some((package, features.to_owned()))
        })
        .collect()
}

#[test]
fn workspace_features_are_unified() {
    let keel = features(&["-p", "keel", "-e", "normal,build"]);
    let workspace = features(&["--workspace", "-e", "normal,build,dev"]);
    let differing: Vec<String> = keel
        .iter()
        .filter_map(|(package, alone)| {
            let all = workspace.get(package)?;
            (all != alone).then(|| format!("{package}: keel alone [{alone}], workspace [{all}]"))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "these crates build twice (keel's build, then the test build); add the workspace's features to workspace-hack/Cargo.toml:\n{}",
        differing.join("\n")
    );
}
