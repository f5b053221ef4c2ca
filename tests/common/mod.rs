//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod promql;

use std::path::{Path, PathBuf};

use keel::ops::Project;
use keel::ops::synth::{Output, Selection, build};

/// The repository root (and keel's date pinned, see [`pin_today`]).
pub fn repo() -> PathBuf {
    pin_today();
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Pins the date keel judges Kubernetes support on, in this process, to the day the
/// repository's environments were written for, so no test depends on the clock.
pub fn pin_today() {
    use keel::env::kubernetes_support::{TESTED_ON, pin_today};
    pin_today(TESTED_ON);
}

/// The keel binary, with `KEEL_TODAY` pinned as [`pin_today`] pins it in process.
pub fn keel_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_keel"));
    command.env(
        keel::env::kubernetes_support::TODAY_VARIABLE,
        keel::env::kubernetes_support::TESTED_ON.to_string(),
    );
    command
}

/// Runs the keel binary on the project at `root` (`--root`), uncoloured, and waits for it.
pub fn keel_at(root: &Path, args: &[&str]) -> std::process::Output {
    keel_command()
        .arg("--root")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the keel binary runs")
}

/// Synthesizes `env` (or `--all`) in the project at `root`, which must succeed, then makes
/// the project a git repository whose one commit (`base`) holds it.
pub fn synth_and_commit(root: &Path, env: &str) {
    let synth = keel_at(root, &["synth", env]);
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "base"]);
}

/// Every stack of every environment of the repository, rendered in memory.
pub fn outputs() -> Vec<Output> {
    build(&Project::new(repo()), &Selection::default())
        .expect("the repository's environments build")
}

/// The rendered output of `stack` in `env`.
pub fn output(env: &str, stack: &str) -> Output {
    outputs()
        .into_iter()
        .find(|o| o.env == env && o.stack == stack)
        .unwrap_or_else(|| panic!("no output for {stack} in {env}"))
}

/// A rendered file parsed as JSON.
pub fn tf_json(o: &Output, file: &str) -> serde_json::Value {
    let body = &o.files[Path::new("terraform").join(file).as_path()];
    serde_json::from_str(body).expect("rendered Terraform is JSON")
}

/// Every resource of a rendered Terraform root as (type, name, body).
pub fn resources(o: &Output) -> Vec<(String, String, serde_json::Value)> {
    let mut out = Vec::new();
    for (path, body) in &o.files {
        if !path.starts_with("terraform") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        if let Some(types) = v.get("resource").and_then(|r| r.as_object()) {
            for (ty, named) in types {
                for (name, body) in named.as_object().expect("named blocks") {
                    out.push((ty.clone(), name.clone(), body.clone()));
                }
            }
        }
    }
    out
}

/// Resources of one type.
pub fn of_type(o: &Output, ty: &str) -> Vec<serde_json::Value> {
    resources(o)
        .into_iter()
        .filter(|(t, _, _)| t == ty)
        .map(|(_, _, b)| b)
        .collect()
}

/// Copies `environments/` (and `generated/` when present) into a fresh temporary project.
pub fn temp_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &repo().join("environments"),
        &dir.path().join("environments"),
    );
    dir
}

/// Recursive copy.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Runs `git -C root ARGS` as a test identity; panics with git's stderr when it fails.
pub fn git(root: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "-c",
            "user.name=keel test",
            "-c",
            "user.email=test@example.com",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every Kubernetes document a stack renders (`k8s/` and its jobs), as (path, document).
pub fn k8s_docs(o: &Output) -> Vec<(String, serde_json::Value)> {
    o.files
        .iter()
        .filter(|(p, _)| {
            (p.starts_with("k8s") || p.starts_with("jobs"))
                && p.extension().is_some_and(|e| e == "yaml")
                && !p.ends_with("kustomization.yaml")
        })
        .map(|(p, body)| {
            let doc = serde_saphyr::from_str(body).expect("rendered YAML parses");
            (p.display().to_string(), doc)
        })
        .collect()
}
