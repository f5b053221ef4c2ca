//! Issue 22: the review gate judges a pull request's committed `generated/` with the base
//! branch's keel (`keel diff --base BASE --head HEAD`): no code of the pull request runs and
//! of its environment files only the `tier` is read, as data.

use crate::common;
use crate::common::keel_at as keel;

use common::git;

#[test]
fn issue_22_the_gate_judges_committed_output_without_reading_the_pull_requests_inputs() {
    let project = common::temp_project();
    let root = project.path();
    common::synth_and_commit(root, "prod");

    // The pull request: hand-widened committed output, and an environment file this keel
    // cannot read (as after a schema change in the pull request's own code).
    let sg = root.join("generated/prod/analytics-api/terraform/database.tf.json");
    let text = std::fs::read_to_string(&sg).expect("database.tf.json");
    assert!(text.contains("\"allocated_storage\": 100"));
    std::fs::write(
        &sg,
        text.replace(
            "\"deletion_protection\": true",
            "\"deletion_protection\": false",
        ),
    )
    .expect("write");
    let env = root.join("environments/prod.yaml");
    let yaml = std::fs::read_to_string(&env).expect("prod.yaml");
    std::fs::write(&env, format!("{yaml}future_field: 1\n")).expect("write");
    git(root, &["commit", "-q", "-am", "pull request"]);

    let judged = keel(
        root,
        &[
            "diff",
            "--all",
            "--base",
            "HEAD~1",
            "--head",
            "HEAD",
            "--fail-on",
            "security",
        ],
    );
    let out = String::from_utf8_lossy(&judged.stdout);
    assert_eq!(
        judged.status.code(),
        Some(3),
        "{out}{}",
        String::from_utf8_lossy(&judged.stderr)
    );
    assert!(out.contains("deletion_protection"), "{out}");

    // The working-tree diff would have refused to read the file instead of judging.
    let synthesized = keel(root, &["diff", "--all", "--base", "HEAD~1"]);
    assert_eq!(synthesized.status.code(), Some(2));
}
