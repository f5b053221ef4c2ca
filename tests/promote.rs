//! `keel promote` on a copy of the repository's environments.

use std::path::Path;
use std::process::{Command, Output};

mod common;

fn keel(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("the keel binary runs")
}

fn project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let from = common::repo().join("environments");
    std::fs::create_dir_all(tmp.path().join("environments")).expect("mkdir");
    for entry in std::fs::read_dir(&from).expect("environments/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("a file name");
        std::fs::copy(&path, tmp.path().join("environments").join(name)).expect("copy");
    }
    let synth = keel(tmp.path(), &["synth", "--all"]);
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    tmp
}

#[test]
fn promote_moves_only_the_pins_and_keeps_the_rest_of_the_file() {
    let tmp = project();
    let prod = tmp.path().join("environments/prod.yaml");
    let before = std::fs::read_to_string(&prod).expect("prod.yaml");

    let shown = keel(tmp.path(), &["promote", "staging", "prod"]);
    let out = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(
        shown.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(
        out.contains("release pins: 4 to change, 7 already equal"),
        "{out}"
    );
    assert!(
        out.contains("  stacks.whatsthecraic.services.events.image.digest: sha256:fa1b6127"),
        "{out}"
    );
    assert!(
        out.contains("  stacks.metrics-service.image.digest: sha256:d8a597b7"),
        "{out}"
    );
    assert!(
        out.contains("  account_id: 444455556666 | 111122223333"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&prod).expect("prod.yaml"),
        before,
        "a dry run writes nothing"
    );

    let written = keel(tmp.path(), &["promote", "staging", "prod", "--write"]);
    assert_eq!(
        written.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let after = std::fs::read_to_string(&prod).expect("prod.yaml");
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(changed.len(), 4, "{changed:#?}");
    for (a, b) in changed {
        assert!(a.trim_start().starts_with("digest: sha256:"), "{a}");
        assert_eq!(
            a.split(':').next(),
            b.split(':').next(),
            "only the value changes: {b}"
        );
    }
    let staging =
        std::fs::read_to_string(tmp.path().join("environments/staging.yaml")).expect("staging");
    assert!(
        after.contains("sha256:31bc4e24a9ad4e9f86c661d35a6f55e0a52be18e347ae4431330b1e2372a7b10")
    );
    assert!(
        staging.contains("sha256:31bc4e24a9ad4e9f86c661d35a6f55e0a52be18e347ae4431330b1e2372a7b10")
    );

    // Promoted again: nothing left to carry.
    let again = keel(tmp.path(), &["promote", "staging", "prod"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 to change, 11 already equal"));
}

#[test]
fn promote_refuses_a_skipped_tier_and_a_stale_source() {
    let tmp = project();
    let skip = keel(tmp.path(), &["promote", "dev", "prod"]);
    let err = String::from_utf8_lossy(&skip.stderr);
    assert_eq!(skip.status.code(), Some(2), "{err}");
    assert!(
        err.contains("pins move one tier at a time (dev → staging → prod)"),
        "{err}"
    );
    let back = keel(tmp.path(), &["promote", "prod", "staging"]);
    assert_eq!(back.status.code(), Some(2));

    let file = tmp
        .path()
        .join("generated/staging/platform/terraform/main.tf.json");
    let mut body = std::fs::read_to_string(&file).expect("main.tf.json");
    body.push('\n');
    std::fs::write(&file, body).expect("write");
    let stale = keel(tmp.path(), &["promote", "staging", "prod", "--write"]);
    let err = String::from_utf8_lossy(&stale.stderr);
    assert_eq!(stale.status.code(), Some(2), "{err}");
    assert!(err.contains("its generated/ output is stale"), "{err}");
    assert!(
        err.contains("generated/staging/platform/terraform/main.tf.json differs"),
        "{err}"
    );
}
