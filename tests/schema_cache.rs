//! The record of files that passed the schema (`.keel/schema-valid/`): it skips the schema
//! only for the exact bytes it saw, never changes a message, and is ignored in CI.

use crate::common;

use std::path::Path;
use std::process::Output;

/// `keel --root ROOT ARGS` with the record on (no `CI`, no `KEEL_SCHEMA_CACHE`), plus `env`.
fn keel(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = common::keel_command();
    command
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("CI")
        .env_remove("KEEL_SCHEMA_CACHE");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("keel runs")
}

fn record(root: &Path, env: &str) -> Option<String> {
    std::fs::read_to_string(root.join(".keel/schema-valid").join(env)).ok()
}

/// The prod file with an alert address the schema's pattern refuses (and nothing else does).
fn with_bad_email(text: &str) -> String {
    let bad = text.replacen(
        "platform-alerts+prod@example.com",
        "platform alerts at example dot com",
        1,
    );
    assert_ne!(bad, text, "the fixture has the alert address");
    bad
}

#[test]
fn a_file_that_loaded_is_recorded_by_its_digest() {
    let project = common::temp_project();
    let root = project.path();
    let out = keel(root, &["synth", "prod"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(root.join("environments/prod.yaml")).expect("prod file");
    let digest = keel::env::schema_cache::SchemaCache::digest(&bytes);
    assert_eq!(record(root, "prod"), Some(format!("{digest}\n")));
    assert_eq!(record(root, "staging"), None, "only the loaded environment");
}

#[test]
fn a_changed_file_is_checked_again_with_the_same_messages() {
    let project = common::temp_project();
    let root = project.path();
    let file = root.join("environments/prod.yaml");
    let good = std::fs::read_to_string(&file).expect("prod file");
    assert_eq!(keel(root, &["synth", "prod"], &[]).status.code(), Some(0));
    let recorded = record(root, "prod");
    std::fs::write(&file, with_bad_email(&good)).expect("write");
    let cached = keel(root, &["synth", "prod"], &[]);
    let uncached = keel(root, &["synth", "prod"], &[("KEEL_SCHEMA_CACHE", "off")]);
    assert_eq!(cached.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&cached.stderr);
    assert!(
        stderr.contains("environments/prod.yaml:16:10: alerts.email: expected a string matching"),
        "{stderr}"
    );
    assert_eq!(
        cached.stderr, uncached.stderr,
        "the record changes no message"
    );
    assert_eq!(
        record(root, "prod"),
        recorded,
        "a refused file is not recorded"
    );
}

#[test]
fn the_record_is_trusted_only_outside_ci() {
    let project = common::temp_project();
    let root = project.path();
    let file = root.join("environments/prod.yaml");
    let bad = with_bad_email(&std::fs::read_to_string(&file).expect("prod file"));
    std::fs::write(&file, &bad).expect("write");
    // A record for these exact bytes, as a pull request could commit one.
    let digest = keel::env::schema_cache::SchemaCache::digest(bad.as_bytes());
    std::fs::create_dir_all(root.join(".keel/schema-valid")).expect("dir");
    std::fs::write(root.join(".keel/schema-valid/prod"), format!("{digest}\n")).expect("write");
    let in_ci = keel(root, &["check"], &[("CI", "true")]);
    assert_eq!(in_ci.status.code(), Some(2), "CI checks every file");
    assert!(String::from_utf8_lossy(&in_ci.stderr).contains("alerts.email"));
    let off = keel(root, &["check"], &[("KEEL_SCHEMA_CACHE", "off")]);
    assert_eq!(off.status.code(), Some(2));
    // Outside CI the record is believed (this is what makes an unchanged file fast), so the
    // schema-only mistake passes the loader; the later stages still run.
    let local = keel(root, &["list"], &[]);
    assert_eq!(
        local.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
}

#[test]
fn a_read_only_project_still_synthesizes_without_a_record() {
    let project = common::temp_project();
    let root = project.path();
    let keel_dir = root.join(".keel");
    std::fs::write(&keel_dir, "not a folder").expect("write");
    let out = keel(root, &["list"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&keel_dir).expect("still a file"),
        "not a folder"
    );
}
