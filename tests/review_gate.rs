//! Issue 22: environment files a hostile pull request could write to slip past the review
//! gate, each refused at synth with its file, line and key path.

use crate::common;

use std::path::Path;

use keel::env::load_str;

const PROD: &str = include_str!("../environments/prod.yaml");
const DEV: &str = include_str!("../environments/dev.yaml");

/// Loads `text` as `environments/<stem>.yaml` and returns the rendered errors.
fn errors_of(stem: &str, text: &str) -> Vec<String> {
    common::pin_today();
    match load_str(Path::new(&format!("environments/{stem}.yaml")), stem, text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// prod.yaml with each `(from, to)` replaced once.
fn prod_with(edits: &[(&str, &str)]) -> String {
    let mut text = PROD.to_owned();
    for (from, to) in edits {
        assert!(text.contains(from), "the fixture still contains {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

const ADMIN: &str = "      - arn:aws:iam::111122223333:role/platform-admins\n";
const FOREIGN_ADMIN: &str = "      - arn:aws:iam::999999999999:role/platform-admins\n";

#[test]
fn r22_bug1_a_principal_of_another_account_is_refused() {
    assert_eq!(
        errors_of("prod", &prod_with(&[(ADMIN, FOREIGN_ADMIN)])),
        [
            "environments/prod.yaml:32:9: stacks.platform.admins[0]: expected a principal of account 111122223333 (account_id) or of an account listed in `trusted_accounts`, found account 999999999999"
        ]
    );
    // Declared at the top of the file, where the pull request's diff shows it.
    let trusted = prod_with(&[
        (ADMIN, FOREIGN_ADMIN),
        (
            "account_id: \"111122223333\"\n",
            "account_id: \"111122223333\"\ntrusted_accounts:\n  - \"999999999999\"\n",
        ),
    ]);
    assert_eq!(errors_of("prod", &trusted), Vec::<String>::new());
    let malformed = prod_with(&[(
        "account_id: \"111122223333\"\n",
        "account_id: \"111122223333\"\ntrusted_accounts: [\"9999\"]\n",
    )]);
    let errors = errors_of("prod", &malformed);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("environments/prod.yaml:6:20: trusted_accounts[0]:"),
        "{errors:?}"
    );
}

#[test]
fn r22_bug3_prod_state_is_encrypted_and_locked() {
    for key in ["encrypt", "use_lockfile"] {
        let text = prod_with(&[(
            "  key_prefix: keel/prod\n",
            &format!("  key_prefix: keel/prod\n  {key}: false\n"),
        )]);
        assert_eq!(
            errors_of("prod", &text),
            [format!(
                "environments/prod.yaml:10:{}: state.{key}: expected true in a prod-tier environment (state holds secrets and must not be written by two applies at once), found false",
                key.len() + 5
            )]
        );
    }
    let dev = DEV.replacen(
        "  key_prefix: keel/dev\n",
        "  key_prefix: keel/dev\n  encrypt: false\n",
        1,
    );
    assert_ne!(dev, DEV, "the fixture's anchor moved");
    assert_eq!(errors_of("dev", &dev), Vec::<String>::new());
}

#[test]
fn r22_tier_is_tied_to_the_environment_name() {
    assert_eq!(
        errors_of("prod", &prod_with(&[("tier: prod", "tier: staging")])),
        [
            "environments/prod.yaml:4:7: tier: expected prod for the environment named prod (the name says which policy applies), found staging"
        ]
    );
    let dev = DEV.replacen("tier: dev", "tier: prod", 1);
    assert!(
        errors_of("dev", &dev)
            .iter()
            .any(|e| e.starts_with("environments/dev.yaml:4:7: tier: expected dev")),
        "{:?}",
        errors_of("dev", &dev)
    );
}

#[test]
fn r22_bug5_prod_public_endpoint_refuses_the_whole_internet() {
    for cidrs in [
        "[0.0.0.0/0]",
        "[0.0.0.0/1, 128.0.0.0/1]",
        "[0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/1]",
    ] {
        let text = prod_with(&[(
            "    nat_gateways: per_az\n    admins:\n",
            &format!("    nat_gateways: per_az\n    public_endpoint_cidrs: {cidrs}\n    admins:\n"),
        )]);
        assert_eq!(
            errors_of("prod", &text),
            [
                "environments/prod.yaml:31:28: stacks.platform.public_endpoint_cidrs: expected a list of trusted networks in a prod-tier environment, found one that covers the whole IPv4 internet (0.0.0.0/0)"
            ],
            "{cidrs}"
        );
    }
    let text = prod_with(&[(
        "    nat_gateways: per_az\n    admins:\n",
        "    nat_gateways: per_az\n    public_endpoint_cidrs: [0.0.0.0/1, 203.0.113.0/24]\n    admins:\n",
    )]);
    assert_eq!(errors_of("prod", &text), Vec::<String>::new());
}

fn keel(root: &Path, args: &[&str]) -> std::process::Output {
    common::keel_command()
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("the keel binary runs")
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
fn r22_bug3_two_environments_may_not_share_a_state_backend() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    copy_environments(root);
    let file = root.join("environments/staging.yaml");
    let yaml = std::fs::read_to_string(&file).expect("staging.yaml");
    let shared = yaml
        .replacen(
            "bucket: acme-keel-tfstate-staging",
            "bucket: acme-keel-tfstate-prod",
            1,
        )
        .replacen("key_prefix: keel/staging", "key_prefix: keel/prod/", 1);
    assert_ne!(shared, yaml, "the test's anchor moved");
    std::fs::write(&file, shared).expect("write");
    let expected = "environments/staging.yaml:8:11: state.bucket: expected a state backend (bucket and key prefix) of its own, found the one of environments/prod.yaml (acme-keel-tfstate-prod, keel/prod): one environment's apply would overwrite the other's state";
    for args in [&["synth", "--all"][..], &["synth", "staging"], &["check"]] {
        let out = keel(root, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(!root.join("generated").exists(), "nothing is written");
    // Synth of prod alone names the same clash, from prod's side.
    let out = keel(root, &["synth", "prod"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("environments/prod.yaml:8:11: state.bucket: expected a state backend (bucket and key prefix) of its own, found the one of environments/staging.yaml"),
        "{err}"
    );
}
