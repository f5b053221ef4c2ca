//! `keel diff` end to end: a temporary git repository holding this repository's
//! environments and their committed output, then an edit to an environment file.

use std::path::Path;
use std::process::Output;

use crate::common;
use crate::common::keel_at as keel;

use common::git;

/// `keel diff staging --format json --fail-on replace`.
fn staging_replace_report(root: &Path) -> Output {
    keel(
        root,
        &[
            "diff",
            "staging",
            "--format",
            "json",
            "--fail-on",
            "replace",
        ],
    )
}

fn copy_environments(to: &Path) {
    let from = common::repo().join("environments");
    std::fs::create_dir_all(to.join("environments")).expect("mkdir");
    for entry in std::fs::read_dir(&from).expect("environments/") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            to.join("environments")
                .join(path.file_name().expect("a file")),
        )
        .expect("copy");
    }
}

#[test]
fn diff_classifies_an_environment_edit_against_the_committed_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    copy_environments(root);
    common::synth_and_commit(root, "--all");

    let clean = keel(root, &["diff", "--fail-on", "security"]);
    let text = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(
        text.contains("0 replace risk, 0 security, 0 other"),
        "{text}"
    );

    // Staging's platform VPC moves: every subnet is carved from it, so each is replaced.
    let file = root.join("environments/staging.yaml");
    let yaml = std::fs::read_to_string(&file).expect("staging.yaml");
    assert!(
        yaml.contains("vpc_cidr: 10.220.0.0/16"),
        "the test's anchor moved"
    );
    std::fs::write(
        &file,
        yaml.replace("vpc_cidr: 10.220.0.0/16", "vpc_cidr: 10.221.0.0/16"),
    )
    .expect("write");

    let out = staging_replace_report(root);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(report["totals"]["replace"].as_u64() > Some(0), "{report:#}");
    let platform = report["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .find(|s| s["stack"] == "platform")
        .expect("the platform stack");
    let subnet = platform["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| {
            c["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("aws_subnet."))
        })
        .expect("a subnet change");
    assert_eq!(subnet["class"], "replace", "{subnet:#}");
    assert_eq!(subnet["attributes"][0]["path"], "cidr_block", "{subnet:#}");

    let md = keel(root, &["diff", "staging", "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(0));
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("<details><summary>🔴 <code>staging/platform</code>"),
        "{md}"
    );

    // Nothing else changed: the other environments are clean.
    let prod = keel(root, &["diff", "prod", "--fail-on", "security"]);
    assert_eq!(
        prod.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&prod.stdout)
    );
}

#[test]
fn diff_outside_a_git_repository_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_environments(tmp.path());
    let out = keel(tmp.path(), &["diff"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not inside a git repository"), "{err}");
}

#[test]
fn diff_refuses_an_unknown_base() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_environments(tmp.path());
    git(tmp.path(), &["init", "-q"]);
    let out = keel(tmp.path(), &["diff", "--base", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--base nope: no such commit"), "{err}");
}

/// The platform's cluster admin entries were addressed by position (`admin_0`) and are now
/// addressed by principal: synth writes `moved` blocks, and diff shows a move, not a
/// destroy and create. The base commit holds the output as it was before the rename.
#[test]
fn a_renamed_construct_id_gets_a_moved_block_and_diff_shows_a_move() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    copy_environments(root);
    let synth = keel(root, &["synth", "--all"]);
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    let terraform = root.join("generated/staging/platform/terraform");
    let moved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(terraform.join("moved.tf.json")).expect("moved.tf.json is written"),
    )
    .expect("JSON");
    assert_eq!(
        moved,
        serde_json::json!({"moved": [
            {"from": "aws_eks_access_entry.admin_0",
             "to": "aws_eks_access_entry.admin_role_platform_admins"},
            {"from": "aws_eks_access_policy_association.admin_0",
             "to": "aws_eks_access_policy_association.admin_role_platform_admins"},
        ]})
    );

    // The output before the rename: positional ids, no moved blocks.
    let renamed = std::fs::read_to_string(terraform.join("access.tf.json")).expect("access");
    let positional = renamed.replace("admin_role_platform_admins", "admin_0");
    assert_ne!(renamed, positional, "the test's anchor moved");
    std::fs::write(terraform.join("access.tf.json"), &positional).expect("write");
    std::fs::remove_file(terraform.join("moved.tf.json")).expect("rm");
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "before the rename"]);

    let out = staging_replace_report(root);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a move with a moved block is no replace risk: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let platform = report["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .find(|s| s["stack"] == "platform")
        .expect("the platform stack");
    let changes = platform["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2, "{platform:#}");
    for change in changes {
        assert_eq!(change["action"], "move", "{change:#}");
        assert_eq!(change["moved_block"], true, "{change:#}");
        assert!(
            change["from"]
                .as_str()
                .is_some_and(|f| f.ends_with(".admin_0")),
            "{change:#}"
        );
    }
}

/// `keel diff --envs staging prod`: what prod gets beyond staging's values, in memory (no git
/// needed). The platform VPCs differ on purpose, so prod's subnets are replace risks against
/// staging's; staging's account is read as prod's, so the account never shows as a change.
#[test]
fn diff_between_two_environments_compares_them_as_one_stack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    copy_environments(root);
    let out = keel(
        root,
        &[
            "diff", "--envs", "staging", "prod", "--stack", "platform", "--format", "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let staging_account = std::fs::read_to_string(root.join("environments/staging.yaml"))
        .expect("staging.yaml")
        .lines()
        .find_map(|l| l.strip_prefix("account_id: "))
        .expect("an account_id line")
        .trim_matches('"')
        .to_owned();
    assert!(
        !text.contains(&staging_account),
        "staging's account {staging_account} is read as prod's: {text}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let stacks = report["stacks"].as_array().expect("stacks");
    assert_eq!(stacks.len(), 1, "--stack platform: {report:#}");
    let subnets: Vec<&serde_json::Value> = stacks[0]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| {
            c["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("aws_subnet."))
        })
        .collect();
    assert!(!subnets.is_empty(), "{report:#}");
    for s in subnets {
        assert_eq!(s["class"], "replace", "{s:#}");
    }

    let gated = keel(
        root,
        &["diff", "--envs", "staging", "prod", "--fail-on", "replace"],
    );
    assert_eq!(gated.status.code(), Some(3));
    let text = String::from_utf8_lossy(&gated.stdout);
    assert!(text.starts_with("keel diff staging → prod: "), "{text}");

    let unknown = keel(root, &["diff", "--envs", "staging", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
}

/// Replaces `from` by `to` once in `file`, returning the original text.
fn edit(file: &Path, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(
        text.contains(from),
        "{}: the anchor {from:?} moved",
        file.display()
    );
    std::fs::write(file, text.replacen(from, to, 1)).expect("write");
    text
}

/// `keel diff <env> --format json --fail-on <class>`: exit code and report.
fn gate(root: &Path, env: &str, class: &str) -> (Option<i32>, serde_json::Value) {
    let out = keel(root, &["diff", env, "--format", "json", "--fail-on", class]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// Edits `file` (`from` -> `to`), runs the gate of `env` at `class`, which must fail
/// (exit 3), restores the file, and returns every change the report lists.
fn flagged(
    root: &Path,
    file: &Path,
    (from, to): (&str, &str),
    (env, class): (&str, &str),
) -> Vec<serde_json::Value> {
    let saved = edit(file, from, to);
    let (code, report) = gate(root, env, class);
    std::fs::write(file, saved).expect("restore");
    assert_eq!(code, Some(3), "{report:#}");
    all_changes(&report)
}

/// Every change of a report.
fn all_changes(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .flat_map(|s| s["changes"].as_array().expect("changes").clone())
        .collect()
}

/// Issue 22: edits a pull request author can make to environment files, each of which
/// must fail `keel diff --fail-on security` (or be refused outright).
#[test]
fn r22_hostile_changes_fail_the_gate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    copy_environments(root);
    // An environment whose name is no tier, so its tier can change.
    let staging = std::fs::read_to_string(root.join("environments/staging.yaml")).expect("read");
    std::fs::write(
        root.join("environments/qa.yaml"),
        staging
            .replacen("name: staging", "name: qa", 1)
            .replacen("key_prefix: keel/staging", "key_prefix: keel/qa", 1)
            .replacen(
                "github_oidc_provider: create",
                "github_oidc_provider: existing",
                1,
            ),
    )
    .expect("write qa.yaml");
    common::synth_and_commit(root, "--all");
    let (prod, dev, qa) = (
        root.join("environments/prod.yaml"),
        root.join("environments/dev.yaml"),
        root.join("environments/qa.yaml"),
    );
    let reasons = |report: &serde_json::Value| -> String {
        all_changes(report)
            .iter()
            .flat_map(|c| c["reasons"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Bug 5: the whole internet as two halves on dev's public endpoint.
    let saved = edit(
        &dev,
        "      - 203.0.113.0/24\n",
        "      - 0.0.0.0/1\n      - 128.0.0.0/1\n",
    );
    let (code, report) = gate(root, "dev", "security");
    assert_eq!(code, Some(3), "{report:#}");
    assert!(
        reasons(&report).contains("whole IPv4 internet"),
        "{report:#}"
    );
    std::fs::write(&dev, saved).expect("restore");

    // Bug 1: an admin of another account, refused until the file trusts that account...
    let admin = "      - arn:aws:iam::111122223333:role/platform-admins\n";
    let foreign = "      - arn:aws:iam::999999999999:role/platform-admins\n";
    let saved = edit(&prod, admin, foreign);
    let out = keel(root, &["diff", "prod", "--fail-on", "security"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environments/prod.yaml:32:9: stacks.platform.admins[0]: expected a principal of account 111122223333"),
        "{err}"
    );
    // ... and a security change once it does.
    edit(
        &prod,
        "account_id: \"111122223333\"\n",
        "account_id: \"111122223333\"\ntrusted_accounts: [\"999999999999\"]\n",
    );
    let (code, report) = gate(root, "prod", "security");
    assert_eq!(code, Some(3), "{report:#}");
    assert!(
        reasons(&report).contains("principal changes: `principal_arn` arn:aws:iam::111122223333:role/platform-admins -> arn:aws:iam::999999999999:role/platform-admins"),
        "{report:#}"
    );
    std::fs::write(&prod, saved).expect("restore");

    // Bug 3: the state bucket moves.
    let changes = flagged(
        root,
        &prod,
        ("bucket: acme-keel-tfstate-prod", "bucket: attacker-tfstate"),
        ("prod", "security"),
    );
    let backend: Vec<_> = changes
        .iter()
        .filter(|c| c["address"] == "terraform.backend")
        .collect();
    assert!(!backend.is_empty(), "{changes:#?}");
    assert!(
        backend.iter().all(|c| c["class"] == "security"),
        "{changes:#?}"
    );

    // Bug 9: prod's node group renamed, which replaces every node.
    let group = flagged(
        root,
        &prod,
        ("      - name: general\n", "      - name: workers\n"),
        ("prod", "replace"),
    )
    .into_iter()
    .find(|c| c["address"] == "aws_eks_node_group.workers")
    .expect("the renamed node group");
    assert_eq!(group["class"], "replace", "{group:#}");
    assert_eq!(group["from"], "aws_eks_node_group.general", "{group:#}");

    // The tier of an environment changes: every prod or staging rule it had is gone.
    let tier = flagged(
        root,
        &qa,
        ("tier: staging", "tier: dev"),
        ("qa", "security"),
    )
    .into_iter()
    .find(|c| c["kind"] == "environment")
    .expect("the tier change");
    assert_eq!(tier["class"], "security", "{tier:#}");
    assert_eq!(tier["address"], "environments/qa.yaml: tier", "{tier:#}");

    // An environment edited but not yet synthesized is no hand edit: generated/ is as committed.
    let saved = edit(&prod, "      max: 9\n", "      max: 12\n");
    let out = keel(root, &["diff", "prod"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hand edit"), "{text}");
    std::fs::write(&prod, saved).expect("restore");

    // A hand edit of generated/ bypasses review of the source: said loudly, in every format.
    let nodes = root.join("generated/prod/platform/terraform/nodes.tf.json");
    let saved = edit(&nodes, "\"max_size\": 9", "\"max_size\": 90");
    let shown = "generated/prod/platform/terraform/nodes.tf.json";
    let out = keel(root, &["diff", "--fail-on", "security"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "WARNING: 1 file under generated/ differs from what synth writes from the environment files and stack code (a hand edit bypasses review of the source): {shown}\n"
        )),
        "{text}"
    );
    let md = keel(root, &["diff", "--format", "markdown"]);
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("> **Warning:** 1 file under `generated/`"),
        "{md}"
    );
    assert!(md.contains(shown), "{md}");
    let (code, report) = gate(root, "prod", "security");
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(
        report["hand_edits"],
        serde_json::json!([shown]),
        "{report:#}"
    );
    let change = all_changes(&report)
        .into_iter()
        .find(|c| c["kind"] == "hand_edit")
        .expect("a hand edit change");
    assert_eq!(change["address"], shown, "{change:#}");
    assert_eq!(change["class"], "security", "{change:#}");
    std::fs::write(&nodes, saved).expect("restore");
    let (code, report) = gate(root, "prod", "security");
    assert_eq!(code, Some(0), "{report:#}");
}
