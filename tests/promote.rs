//! `keel promote` on a copy of the repository's environments.

use std::path::Path;
use std::process::Output;

use crate::common;
use crate::common::keel_at as keel;

use common::git;

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
    // promote carries committed pins only: the project is a repository with one commit.
    git(tmp.path(), &["init", "-q"]);
    commit(tmp.path());
    tmp
}

fn commit(root: &Path) {
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "state"]);
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Replaces the first `from` in environment file `env`.
fn edit(root: &Path, env: &str, from: &str, to: &str) {
    let file = root.join(format!("environments/{env}.yaml"));
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains(from), "{env}.yaml holds {from}");
    std::fs::write(&file, text.replacen(from, to, 1)).expect("write");
}

/// 1-based line of the first line of `env`'s file holding `needle`.
fn line_of(root: &Path, env: &str, needle: &str) -> usize {
    let text =
        std::fs::read_to_string(root.join(format!("environments/{env}.yaml"))).expect("read");
    text.lines()
        .position(|l| l.contains(needle))
        .expect("found")
        + 1
}

const PROD_BACKEND: &str =
    "sha256:f19bb9564085b4846544552e75d150572caa36c75451cb479bade5bf126fc280";
const PROD_FRONTEND: &str =
    "sha256:0f4fecffd90ed8eea0fccbd2f2a15aeb8f9c4d85f9beae6b02da719e1f29b0ac";
const STAGING_BACKEND: &str =
    "sha256:29d32f4e6a8a2b59a8719a5aa23750927e9573cfccad07fecd9f548389e0a063";

#[test]
fn issue22_bug6_a_pin_written_as_an_alias_is_refused() {
    let tmp = project();
    let root = tmp.path();
    // The frontend's digest is an alias of the backend's.
    edit(
        root,
        "prod",
        &format!("digest: {PROD_BACKEND}"),
        &format!("digest: &d {PROD_BACKEND}"),
    );
    edit(
        root,
        "prod",
        &format!("digest: {PROD_FRONTEND}"),
        "digest: *d",
    );
    let line = line_of(root, "prod", "digest: *d");
    let before = std::fs::read(root.join("environments/prod.yaml")).expect("read");
    for args in [
        &["promote", "staging", "prod"][..],
        &["promote", "staging", "prod", "--write"],
    ] {
        let out = keel(root, args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {err}{}",
            stdout(&out)
        );
        assert!(
            err.contains(&format!(
                "environments/prod.yaml:{line}:17: stacks.aegistickets.frontend.image.digest:"
            )) && err.contains("alias"),
            "{err}"
        );
        assert!(
            err.contains("stacks.aegistickets.backend.image.digest:") && err.contains("anchor"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(root.join("environments/prod.yaml")).expect("read"),
        before
    );
}

#[test]
fn issue22_bug10_a_pin_written_with_escapes_is_refused_not_reported_as_written() {
    let tmp = project();
    let root = tmp.path();
    // `\x66` is `f`: the same digest, spelt with an escape.
    let escaped = format!(
        "digest: \"sha256:\\x66{}\"",
        &PROD_BACKEND["sha256:f".len()..]
    );
    edit(root, "prod", &format!("digest: {PROD_BACKEND}"), &escaped);
    let line = line_of(root, "prod", "sha256:\\x66");
    let before = std::fs::read(root.join("environments/prod.yaml")).expect("read");
    let out = keel(root, &["promote", "staging", "prod", "--write"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}{}", stdout(&out));
    assert!(!stdout(&out).contains("wrote"), "{}", stdout(&out));
    assert!(
        err.contains(&format!(
            "environments/prod.yaml:{line}:17: stacks.aegistickets.backend.image.digest:"
        )) && err.contains("escape"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(root.join("environments/prod.yaml")).expect("read"),
        before
    );
}

#[test]
fn issue22_bug11_a_symlinked_target_is_refused() {
    let tmp = project();
    let root = tmp.path();
    let real = root.join("prod-real.yaml");
    std::fs::rename(root.join("environments/prod.yaml"), &real).expect("move");
    std::os::unix::fs::symlink(&real, root.join("environments/prod.yaml")).expect("link");
    let before = std::fs::read(&real).expect("read");
    let out = keel(root, &["promote", "staging", "prod", "--write"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("environments/prod.yaml") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(
        std::fs::symlink_metadata(root.join("environments/prod.yaml"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&real).expect("read"), before);
}

#[test]
fn issue22_bug12_promote_keeps_the_mode_and_refuses_a_read_only_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = project();
    let root = tmp.path();
    let prod = root.join("environments/prod.yaml");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
    std::fs::set_permissions(&prod, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = keel(root, &["promote", "staging", "prod", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&prod)
            .expect("read")
            .contains(STAGING_BACKEND)
    );
    assert_eq!(mode(&prod), 0o600);

    let tmp = project();
    let root = tmp.path();
    let prod = root.join("environments/prod.yaml");
    std::fs::set_permissions(&prod, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let before = std::fs::read(&prod).expect("read");
    let out = keel(root, &["promote", "staging", "prod", "--write"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("environments/prod.yaml") && err.contains("read-only"),
        "{err}"
    );
    assert_eq!(std::fs::read(&prod).expect("read"), before);
    assert_eq!(mode(&prod), 0o444);
}

#[test]
fn issue22_promote_counts_the_pins_it_could_not_carry() {
    let tmp = project();
    let out = keel(tmp.path(), &["promote", "dev", "staging", "--write"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!text.contains("already carries"), "{text}");
    assert!(
        text.contains("release pins: 0 to change, 0 already equal, 11 not carried"),
        "{text}"
    );
    assert!(
        text.contains("nothing written: 11 of dev's pins could not be carried (listed above)"),
        "{text}"
    );
}

#[test]
fn issue22_promote_carries_only_committed_pins() {
    let tmp = project();
    let root = tmp.path();
    // A new staging pin, synthesized but not committed.
    let uncommitted = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    edit(root, "staging", STAGING_BACKEND, uncommitted);
    let synth = keel(root, &["synth", "staging"]);
    assert!(synth.status.success(), "{}", stderr(&synth));
    let out = keel(root, &["promote", "staging", "prod", "--write"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "stacks.aegistickets.backend.image.digest: {uncommitted} (not committed in environments/staging.yaml"
        )),
        "{text}"
    );
    assert!(
        text.contains("release pins: 3 to change, 7 already equal, 1 not carried"),
        "{text}"
    );
    let prod = std::fs::read_to_string(root.join("environments/prod.yaml")).expect("read");
    assert!(!prod.contains(uncommitted));
    assert!(prod.contains(PROD_BACKEND), "the prod pin stays");
    // Once committed, it is carried.
    commit(root);
    let out = keel(root, &["promote", "staging", "prod", "--write"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let prod = std::fs::read_to_string(root.join("environments/prod.yaml")).expect("read");
    assert!(prod.contains(uncommitted));
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
