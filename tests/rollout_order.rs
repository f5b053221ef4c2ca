//! Settings that must not ship with a new image: analytics-api's `sketch_encoding` switched
//! to `compact` in the same change as a new image is a blocking risk in `keel diff` (the
//! previous image's pods keep serving during the canary and cannot read compact rows); the
//! switch alone is not; and `keel promote` never carries it.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common;
use crate::common::keel_at as keel;

const NEW_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// A temporary project with prod synthesized and committed.
fn committed_project() -> tempfile::TempDir {
    let tmp = common::temp_project();
    let root = tmp.path();
    common::synth_and_commit(root, "--all");
    tmp
}

/// Replaces `from` by `to` in the analytics-api section of `file`.
fn edit_analytics_api(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    let start = text
        .find("\n  analytics-api:\n")
        .expect("an analytics-api section");
    let at = start
        + text[start..]
            .find(from)
            .unwrap_or_else(|| panic!("{from:?}"));
    let edited = format!("{}{to}{}", &text[..at], &text[at + from.len()..]);
    std::fs::write(file, edited).expect("write");
}

fn switch_to_compact(file: &Path) {
    let text = std::fs::read_to_string(file).expect("read");
    let line = text
        .lines()
        .find(|l| l.starts_with("    rate_limit_rps: "))
        .expect("a rate limit line")
        .to_owned();
    edit_analytics_api(
        file,
        &line,
        &format!("{line}\n    sketch_encoding: compact"),
    );
}

fn new_image(file: &Path) {
    let text = std::fs::read_to_string(file).expect("read");
    let start = text.find("\n  analytics-api:\n").expect("section");
    let digest = text[start..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("digest: "))
        .expect("a digest")
        .to_owned();
    edit_analytics_api(file, &digest, NEW_DIGEST);
}

/// `keel diff prod --stack analytics-api` with `extra` arguments: the run and its changes
/// (JSON; empty without `--format json`).
fn diff_analytics_api(root: &Path, extra: &[&str]) -> (Output, Vec<Value>) {
    let mut args = vec!["diff", "prod", "--stack", "analytics-api"];
    args.extend_from_slice(extra);
    let out = keel(root, &args);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let changes = report["stacks"][0]["changes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (out, changes)
}

/// The JSON report's change of analytics-api's ConfigMap.
fn config_map_change(root: &Path) -> (Output, Value) {
    let (out, changes) = diff_analytics_api(root, &["--format", "json"]);
    let change = changes
        .iter()
        .find(|c| c["address"] == "ConfigMap/analytics/analytics-api-config")
        .cloned()
        .unwrap_or_else(|| panic!("no ConfigMap change in {changes:#?}: {out:?}"));
    (out, change)
}

#[test]
fn compact_sketches_with_a_new_image_block_the_review() {
    let tmp = committed_project();
    let root = tmp.path();
    let prod = root.join("environments/prod.yaml");
    switch_to_compact(&prod);
    new_image(&prod);
    let (out, change) = config_map_change(root);
    assert_eq!(change["class"], "replace", "{change:#}");
    let reasons = change["reasons"].to_string();
    assert!(
        reasons.contains("`SKETCH_ENCODING` legacy -> compact")
            && reasons.contains("Rollout/analytics/analytics-api container analytics-api now runs")
            && reasons.contains(NEW_DIGEST),
        "{reasons}"
    );
    assert_eq!(out.status.code(), Some(0), "a report without --fail-on");
    // The review gate (pr.yml: `--fail-on security`) stops on it.
    let (gate, _) = diff_analytics_api(root, &["--fail-on", "security"]);
    assert_eq!(gate.status.code(), Some(3));
}

#[test]
fn compact_sketches_alone_or_a_new_image_alone_pass() {
    let tmp = committed_project();
    let root = tmp.path();
    let prod = root.join("environments/prod.yaml");
    switch_to_compact(&prod);
    let (_, change) = config_map_change(root);
    assert_eq!(change["class"], "other", "{change:#}");
    assert_eq!(
        change["attributes"][0]["path"], "data.SKETCH_ENCODING",
        "{change:#}"
    );

    let tmp = committed_project();
    let root = tmp.path();
    new_image(&root.join("environments/prod.yaml"));
    let (_, changes) = diff_analytics_api(root, &["--format", "json"]);
    assert!(
        changes.iter().all(|c| c["class"] != "replace"),
        "{changes:#?}"
    );
}

#[test]
fn promote_never_carries_the_sketch_encoding() {
    let tmp = committed_project();
    let root = tmp.path();
    switch_to_compact(&root.join("environments/staging.yaml"));
    let synth = keel(root, &["synth", "staging"]);
    assert!(synth.status.success());
    common::git(root, &["commit", "-qam", "staging reads compact sketches"]);
    let out = keel(root, &["promote", "staging", "prod"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("stacks.analytics-api.sketch_encoding: compact | (absent)"),
        "{report}"
    );
    assert!(!report.contains("sketch_encoding: compact ->"), "{report}");
}
