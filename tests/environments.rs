//! Broken environment files and the exact errors they produce; proof that a failed synth
//! leaves `generated/` byte for byte as it was.

use crate::common;

use std::path::Path;
use std::process::Command;

use keel::env::{load_str, schema};

const PROD: &str = include_str!("../environments/prod.yaml");

/// Loads prod.yaml with `from` replaced by `to` and returns the rendered errors.
fn errors(from: &str, to: &str) -> Vec<String> {
    common::pin_today();
    assert!(PROD.contains(from), "the fixture still contains {from:?}");
    let text = PROD.replacen(from, to, 1);
    match load_str(Path::new("environments/prod.yaml"), "prod", &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn broken_files_give_exact_errors() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "      - arn:aws:iam::111122223333:role/platform-admins\n",
            "      - arn:aws:iam::111122223333:role/platform-admins\n      - arn:aws:iam::111122223333:role/Platform.Admins\n",
            &[
                "environments/prod.yaml:33:9: stacks.platform.admins[1]: arn:aws:iam::111122223333:role/Platform.Admins and arn:aws:iam::111122223333:role/platform-admins both become the access entry admin_role_platform_admins (names compare without case and punctuation); list each principal once",
            ],
        ),
        (
            "  az_count: 3\n",
            "  az_count: 9\n",
            &["environments/prod.yaml:12:13: network.az_count: expected at most 6, found 9"],
        ),
        (
            "  az_count: 3\n",
            "  az_count: 3\n  az_cuont: 3\n",
            &[
                "environments/prod.yaml:11:3: network: unexpected key `az_cuont`; remove the key or check its spelling against environments/schema.json",
            ],
        ),
        (
            "account_id: \"111122223333\"",
            "account_id: \"1111\"",
            &["environments/prod.yaml:5:13: account_id: expected a string matching ^[0-9]{12}$"],
        ),
        (
            "vpc_cidr: 10.30.0.0/16",
            "vpc_cidr: 10.30.1.0/16",
            &[
                "environments/prod.yaml:11:13: network.vpc_cidr: expected a network address, found 10.30.1.0/16 (host bits set); did you mean 10.30.0.0/16?",
            ],
        ),
        (
            "      min: 2\n      desired: 2\n      max: 10\n",
            "      min: 2\n      desired: 12\n      max: 10\n",
            &[
                "environments/prod.yaml:67:7: stacks.langgraph-platform.scaling: expected min <= desired <= max, found 2 <= 12 <= 10",
            ],
        ),
        (
            "      cpu_percent: 70\n      memory_percent: 80\n      requests_per_target",
            "      cpu_percent: 170\n      memory_percent: 80\n      requests_per_target",
            &[
                "environments/prod.yaml:70:20: stacks.langgraph-platform.scaling.cpu_percent: expected a percentage 1..=100, found 170",
            ],
        ),
        (
            "      multi_az: true\n      deletion_protection: true\n      backup_retention_days: 7\n    alarms:",
            "      multi_az: false\n      deletion_protection: true\n      backup_retention_days: 7\n    alarms:",
            &[
                "environments/prod.yaml:85:17: stacks.langgraph-platform.database.multi_az: expected true in a prod-tier environment, found false",
            ],
        ),
        (
            "          canary: {percent: 10, wait_minutes: 15}\n",
            "          steps:\n            - {percent: 10, wait_minutes: 5}\n            - {percent: 50, wait_minutes: 10}\n",
            &[
                "environments/prod.yaml:77:13: stacks.langgraph-platform.deployment.rollout.strategy.steps: CodeDeploy shifts traffic once (canary) or in equal steps at equal intervals (linear); these 2 steps are neither: use canary or linear on an ECS stack",
            ],
        ),
        (
            "name: prod",
            "name: production",
            &[
                "environments/prod.yaml:3:7: name: expected \"prod\" (the file name), found \"production\"",
            ],
        ),
        (
            "      digest: sha256:4f1e",
            "      tag: latest\n      digest: sha256:4f1e",
            &[
                "environments/prod.yaml:59:7: stacks.langgraph-platform.image: expected exactly one of `tag` and `digest`",
            ],
        ),
        (
            "tier: prod",
            "tier: production",
            &[
                "environments/prod.yaml:4:7: tier: expected one of dev, staging, prod, found another string",
            ],
        ),
        (
            "    replicas: 3\n",
            "    replicas: 30\n",
            &[
                "environments/prod.yaml:111:15: stacks.analytics-api.replicas: expected autoscaling.min <= replicas <= autoscaling.max, found 3 <= 30 <= 10",
            ],
        ),
        (
            "    vpc_cidr: 10.130.0.0/16",
            "    vpc_cidr: 10.30.0.0/16",
            &[
                "environments/prod.yaml:29:15: stacks.platform.vpc_cidr: 10.30.0.0/16 overlaps network.vpc_cidr 10.30.0.0/16: the VPCs of one environment must not overlap",
            ],
        ),
        (
            "        min: 3\n        desired: 3\n        max: 9\n",
            "        min: 3\n        desired: 30\n        max: 9\n",
            &[
                "environments/prod.yaml:35:9: stacks.platform.node_groups[0]: expected min <= desired <= max and max >= 1, found 3 <= 30 <= 9",
            ],
        ),
        (
            "      repository: 111122223333.dkr.ecr.us-east-1.amazonaws.com/metrics-service",
            "      repository: 111122223333.dkr.ecr.us-east-1.amazonaws.com/metrics",
            &[
                "environments/prod.yaml:154:19: stacks.metrics-service.image.repository: expected the repository this stack creates, 111122223333.dkr.ecr.us-east-1.amazonaws.com/metrics-service, or one under a registry of `image_registries` (none listed), found 111122223333.dkr.ecr.us-east-1.amazonaws.com/metrics",
            ],
        ),
        (
            "    replicas: 3\n    ground_truth_bucket",
            "    replicas: 1\n    ground_truth_bucket",
            &[
                "environments/prod.yaml:156:15: stacks.metrics-service.replicas: expected at least 2 replicas in a prod-tier environment, found 1",
            ],
        ),
        (
            "    host: tickets.example.com\n    certificate_arn: arn:aws:acm:us-east-1:111122223333:certificate/7c1f0a2b-3d4e-4f5a-8b6c-9d0e1f2a3b4c\n",
            "    host: tickets.example.com\n",
            &[
                "environments/prod.yaml:163:5: stacks.aegistickets: expected certificate_arn (an ACM certificate) in a prod-tier environment",
            ],
        ),
        (
            "            threshold_seconds: 0.75\n",
            "            threshold_seconds: 0.8\n",
            &[
                "environments/prod.yaml:203:32: stacks.aegistickets.slos[1].indicator.latency.threshold_seconds: expected the upper bound of one of the service's latency histogram buckets (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10 s), found 0.8",
            ],
        ),
        (
            "        objective_percent: 99.9\n        window_days: 30\n        indicator:\n          availability:\n            errors: server\n      - name: latency",
            "        objective_percent: 100\n        window_days: 3\n        indicator:\n          availability:\n            errors: server\n      - name: latency",
            &[
                "environments/prod.yaml:142:22: stacks.analytics-api.slos[0].window_days: expected at least 7, found 3",
            ],
        ),
        (
            "        objective_percent: 99.9\n        window_days: 30\n        indicator:\n          availability:\n            errors: server\n      - name: latency",
            "        objective_percent: 90\n        window_days: 30\n        indicator:\n          availability:\n            errors: server\n      - name: availability",
            &[
                "environments/prod.yaml:141:28: stacks.analytics-api.slos[0].objective_percent: expected a percentage above 93.06 and below 100",
                "environments/prod.yaml:146:15: stacks.analytics-api.slos[1].name: expected a name unique among the service's SLOs, found \"availability\" twice",
            ],
        ),
        (
            "          availability:\n            errors: server\n  analytics-api:",
            "          latency:\n            threshold_seconds: 0.5\n  analytics-api:",
            &[
                "environments/prod.yaml:104:32: stacks.langgraph-platform.slos[0].indicator.latency.threshold_seconds: expected an availability indicator: this stack runs on ECS",
            ],
        ),
        (
            "  az_count: 3\n",
            "  az_count: [3\n",
            &["environments/prod.yaml:13:15: not valid YAML: illegal placement of ':' indicator"],
        ),
    ];
    for (from, to, expected) in cases {
        let got = errors(from, to);
        assert_eq!(got.len(), expected.len(), "{to:?}: {got:#?}");
        for (g, e) in got.iter().zip(expected.iter()) {
            assert!(g.starts_with(e), "{to:?}:\n  got      {g}\n  expected {e}");
        }
    }
}

#[test]
fn every_error_of_a_file_is_reported_at_once() {
    common::pin_today();
    let text = PROD
        .replacen("  az_count: 3\n", "  az_count: 9\n", 1)
        .replacen("tier: prod", "tier: nope", 1)
        .replacen("account_id: \"111122223333\"", "account_id: 12", 1);
    let err = load_str(Path::new("environments/prod.yaml"), "prod", &text).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["tier", "account_id", "network.az_count"]);
}

#[test]
fn the_repository_environments_load() {
    common::pin_today();
    for name in ["dev", "staging", "prod"] {
        let path = common::repo()
            .join("environments")
            .join(format!("{name}.yaml"));
        keel::env::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# yaml-language-server: $schema=./schema.json\n"));
    }
}

#[test]
fn committed_schema_is_current() {
    let committed =
        std::fs::read_to_string(common::repo().join("environments/schema.json")).unwrap();
    assert_eq!(
        committed,
        keel::tf::to_pretty_json(schema()),
        "environments/schema.json is stale: run `cargo run -- schema > environments/schema.json`"
    );
}

fn keel(root: &Path, args: &[&str]) -> std::process::Output {
    common::keel_command()
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("keel runs")
}

#[test]
fn a_broken_environment_writes_nothing_and_exits_2() {
    let project = common::temp_project();
    let root = project.path();
    let first = keel(root, &["synth", "--all"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = keel::render::read_tree(&root.join("generated")).unwrap();
    assert!(!before.is_empty());

    let staging = root.join("environments/staging.yaml");
    let text = std::fs::read_to_string(&staging).unwrap();
    std::fs::write(
        &staging,
        text.replacen("  az_count: 3\n", "  az_count: 7\n", 1),
    )
    .unwrap();
    let prod = root.join("environments/prod.yaml");
    let text = std::fs::read_to_string(&prod).unwrap();
    std::fs::write(&prod, text.replacen("  email: ", "  emial: ", 1)).unwrap();

    for args in [
        &["synth", "--all"][..],
        &["synth", "staging"][..],
        &["check"][..],
    ] {
        let out = keel(root, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("environments/staging.yaml:12:13: network.az_count:"),
            "{stderr}"
        );
        if args[0] != "synth" || args.get(1) == Some(&"--all") {
            assert!(
                stderr.contains("environments/prod.yaml:"),
                "all files' errors at once: {stderr}"
            );
        }
        assert_eq!(
            keel::render::read_tree(&root.join("generated")).unwrap(),
            before,
            "{args:?} wrote nothing"
        );
    }
}

#[test]
fn check_names_stale_files_and_synth_repairs_them() {
    let project = common::temp_project();
    let root = project.path();
    assert!(keel(root, &["synth", "--all"]).status.success());
    assert!(keel(root, &["check"]).status.success());
    let alarms = root.join("generated/prod/langgraph-platform/terraform/observability.tf.json");
    std::fs::write(&alarms, "{}\n").unwrap();
    std::fs::write(root.join("generated/dev/stray.txt"), "x").unwrap();
    let out = keel(root, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("generated/prod/langgraph-platform/terraform/observability.tf.json differs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("generated/dev/stray.txt is not produced by synth"),
        "{stderr}"
    );
    assert!(keel(root, &["synth", "--all"]).status.success());
    assert!(keel(root, &["check"]).status.success());
}

#[test]
fn unknown_names_are_user_errors() {
    let project = common::temp_project();
    let out = keel(project.path(), &["synth", "qa"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no environment \"qa\": expected one of dev, prod, staging")
    );
    let out = keel(project.path(), &["synth", "prod", "--stack", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stack \"nope\""));
}

#[test]
fn synth_of_one_stack_leaves_the_others_alone() {
    let project = common::temp_project();
    let root = project.path();
    assert!(keel(root, &["synth", "prod"]).status.success());
    let marker = root.join("generated/prod/langgraph-platform/terraform/main.tf.json");
    let before = std::fs::read(&marker).unwrap();
    assert!(
        keel(root, &["synth", "prod", "--stack", "analytics-api"])
            .status
            .success()
    );
    assert_eq!(std::fs::read(&marker).unwrap(), before);
}

/// Loads prod.yaml's bytes with `from` replaced by `to` and returns the rendered errors.
fn byte_errors(from: &[u8], to: &[u8]) -> Vec<String> {
    common::pin_today();
    let bytes = PROD.as_bytes();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("the fixture still contains {from:?}"));
    let mut text = bytes[..at].to_vec();
    text.extend_from_slice(to);
    text.extend_from_slice(&bytes[at + from.len()..]);
    match keel::env::load::load_bytes(Path::new("environments/prod.yaml"), "prod", &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// Issue 11: a NUL byte cut the file short (silently, or as a confusing "required property"
/// error); control characters and invalid UTF-8 are now refused where they stand.
#[test]
fn issue_11_control_characters_and_invalid_utf8_are_refused_with_their_position() {
    common::pin_today();
    let nul =
        "environments/prod.yaml:4:9: character U+0000 (NUL) is not allowed in an environment file";
    let cases: &[(&[u8], &[u8], &[&str])] = &[
        (b"tier: prod", b"tier: pr\0od", &[nul]),
        (
            b"tier: prod",
            b"tier: pr\x1bod\x7f",
            &[
                "environments/prod.yaml:4:9: character U+001B (a control character) is not allowed",
                "environments/prod.yaml:4:12: character U+007F (DEL) is not allowed",
            ],
        ),
        (
            b"tier: prod",
            b"tier: pr\xc2\x85od",
            &["environments/prod.yaml:4:9: character U+0085 (NEL) is not allowed"],
        ),
        (
            b"tier: prod",
            b"tier: \xc3\xa9pr\xffod\xe2\x82",
            &[
                "environments/prod.yaml:4:10: not valid UTF-8: byte 0xFF; save the file as UTF-8",
                "environments/prod.yaml:4:13: not valid UTF-8: byte sequence 0xE2 0x82; save the file as UTF-8",
            ],
        ),
        (
            b"alerts:",
            b"tags:\n  owner: \"a\\0b\"\nalerts:",
            &[
                "environments/prod.yaml:16:10: tags.owner: the value holds character U+0000 (NUL), which is not allowed; remove the escape sequence",
            ],
        ),
        (
            b"alerts:",
            b"tags:\n  \"a\\x01\": b\nalerts:",
            &[
                "environments/prod.yaml:16:12: tags.a\\u{1}: the key holds character U+0001 (a control character)",
            ],
        ),
        // The characters refs.rs reserves for Terraform expressions: accepted, they would
        // have turned a tag into a `${...}` interpolation.
        (
            b"alerts:",
            b"tags:\n  owner: \"\\uF8F0aws_iam_role.x.arn\\uF8F1\"\nalerts:",
            &[
                "environments/prod.yaml:16:10: tags.owner: the value holds character U+F8F0 (reserved by keel for Terraform expressions)",
            ],
        ),
        (
            b"alerts:",
            b"tags:\n  owner: \xef\xa3\xb0x\nalerts:",
            &[
                "environments/prod.yaml:16:10: character U+F8F0 (reserved by keel for Terraform expressions) is not allowed",
            ],
        ),
        (
            b"name: prod",
            b"name: prod\nname: prod",
            &[
                "environments/prod.yaml:4:1: not valid YAML: duplicate key `name`; a key may appear only once in a mapping",
            ],
        ),
        (
            b"tier: prod\n",
            b"tier: prod\n---\ntier: prod\n",
            &[
                "environments/prod.yaml:6:1: not valid YAML: expected one YAML document, found a second one",
            ],
        ),
    ];
    for (from, to, expected) in cases {
        let got = byte_errors(from, to);
        assert_eq!(
            got.len(),
            expected.len(),
            "{:?}: {got:#?}",
            String::from_utf8_lossy(to)
        );
        for (g, e) in got.iter().zip(expected.iter()) {
            assert!(g.starts_with(e), "got      {g}\nexpected {e}");
        }
    }
    // A NUL after the last line was accepted.
    let mut text = PROD.as_bytes().to_vec();
    text.push(0);
    let err = keel::env::load::load_bytes(Path::new("environments/prod.yaml"), "prod", &text)
        .unwrap_err();
    assert!(err.to_string().contains("prod.yaml:"), "{err}");
    // Many bad characters: the first ten are listed, the rest counted.
    let err = load_str(
        Path::new("environments/prod.yaml"),
        "prod",
        &PROD.replacen(
            "tier: prod",
            &format!("tier: {}prod", "\u{1}".repeat(25)),
            1,
        ),
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 11);
    assert_eq!(
        err.0[10].to_string(),
        "environments/prod.yaml: 15 more like these"
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    common::pin_today();
    let mut text = b"\xEF\xBB\xBF".to_vec();
    text.extend_from_slice(PROD.as_bytes());
    keel::env::load::load_bytes(Path::new("environments/prod.yaml"), "prod", &text)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = byte_errors(b"tier: prod", b"tier: \xEF\xBB\xBFprod");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("U+FEFF (byte order mark)"), "{err:?}");
}

#[test]
fn aliases_that_expand_too_far_and_deep_nesting_are_refused() {
    common::pin_today();
    let mut bomb = String::from("a: &a [1,1,1,1,1,1,1,1,1]\n");
    for (name, prev) in ["b", "c", "d", "e", "f", "g"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let err = load_str(Path::new("environments/prod.yaml"), "prod", &bomb).unwrap_err();
    assert!(
        err.to_string()
            .contains("the document is beyond the parser's limits (nodes: 250001)"),
        "{err}"
    );
    let deep = PROD.replacen(
        "  az_count: 3",
        &format!("  az_count: {}{}", "[".repeat(5000), "]".repeat(5000)),
        1,
    );
    let err = load_str(Path::new("environments/prod.yaml"), "prod", &deep).unwrap_err();
    assert!(
        err.to_string()
            .contains("not valid YAML: nested too deeply"),
        "{err}"
    );
}

/// Every way a path can hold something other than an environment file.
#[test]
fn files_that_are_not_environment_files_are_refused_without_reading_them() {
    let project = common::temp_project();
    let root = project.path();
    let envs = root.join("environments");
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "big.yaml",
            Box::new(|| std::fs::write(envs.join("big.yaml"), "#".repeat(2 << 20)).unwrap()),
            "environments/big.yaml: the file is larger than 1024 KiB",
        ),
        (
            "zero.yaml",
            // Reading it would never end.
            Box::new(|| std::os::unix::fs::symlink("/dev/zero", envs.join("zero.yaml")).unwrap()),
            "environments/zero.yaml: the file is a symbolic link; keel reads only regular files inside the project",
        ),
        (
            "fifo.yaml",
            // Opening it would wait for a writer forever.
            Box::new(|| {
                let status = Command::new("mkfifo")
                    .arg(envs.join("fifo.yaml"))
                    .status()
                    .unwrap();
                assert!(status.success());
            }),
            "environments/fifo.yaml: cannot read the file: expected a regular file",
        ),
        (
            "a\nb.yaml",
            Box::new(|| std::fs::write(envs.join("a\nb.yaml"), PROD).unwrap()),
            "environments/\"a\\nb.yaml\": expected a file name <env>.yaml where <env> is a lowercase letter",
        ),
        (
            "qa.yml",
            Box::new(|| std::fs::write(envs.join("qa.yml"), PROD).unwrap()),
            "environments/\"qa.yml\": environment files end in .yaml, so this one would be ignored",
        ),
    ];
    for (name, make, expected) in cases {
        make();
        for args in [&["synth", "--all"][..], &["check"][..], &["list"][..]] {
            let out = keel(root, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name:?} {args:?}: {stderr}");
            assert!(stderr.contains(expected), "{name:?} {args:?}: {stderr}");
        }
        std::fs::remove_file(envs.join(name)).unwrap();
    }
    assert!(!root.join("generated").exists(), "nothing was written");
}
