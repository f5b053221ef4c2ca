//! Issue 22: environment-file input a hostile or careless pull request could slip past
//! synth: images from any registry, free-form versions, tags, labels and taints AWS or
//! Kubernetes refuse only at apply, and a database whose storage shrinks.

use crate::common;

use std::path::Path;

use keel::env::load_str;

const PROD: &str = include_str!("../environments/prod.yaml");

/// The rendered errors of prod.yaml with each `(from, to)` replaced once.
fn errors(edits: &[(&str, &str)]) -> Vec<String> {
    common::pin_today();
    let mut text = PROD.to_owned();
    for (from, to) in edits {
        assert!(text.contains(from), "the fixture still contains {from:?}");
        text = text.replacen(from, to, 1);
    }
    match load_str(Path::new("environments/prod.yaml"), "prod", &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const LGP_REPO: &str =
    "repository: 111122223333.dkr.ecr.us-east-1.amazonaws.com/langgraph-platform";
const API_REPO: &str = "repository: 111122223333.dkr.ecr.us-east-1.amazonaws.com/analytics-api";
const MS_REPO: &str = "repository: 111122223333.dkr.ecr.us-east-1.amazonaws.com/metrics-service";
const REGISTRIES: (&str, &str) = (
    "region: us-east-1\n",
    "region: us-east-1\nimage_registries:\n  - ghcr.io/acme\n",
);

#[test]
fn issue_22_bug_4_langgraph_platform_and_analytics_api_refuse_foreign_registries() {
    assert_eq!(
        errors(&[
            (LGP_REPO, "repository: ghcr.io/evil/agent"),
            (
                API_REPO,
                "repository: 999999999999.dkr.ecr.us-east-1.amazonaws.com/analytics-api"
            ),
        ]),
        [
            "environments/prod.yaml:59:19: stacks.langgraph-platform.image.repository: expected the repository this stack creates, 111122223333.dkr.ecr.us-east-1.amazonaws.com/langgraph-platform, or one under a registry of `image_registries` (none listed), found ghcr.io/evil/agent",
            "environments/prod.yaml:107:19: stacks.analytics-api.image.repository: expected the repository this stack creates, 111122223333.dkr.ecr.us-east-1.amazonaws.com/analytics-api, or one under a registry of `image_registries` (none listed), found 999999999999.dkr.ecr.us-east-1.amazonaws.com/analytics-api",
        ]
    );
}

#[test]
fn issue_22_bug_4_one_registry_rule_for_every_stack() {
    // Allow-listed: accepted by every stack alike.
    assert_eq!(
        errors(&[
            REGISTRIES,
            (LGP_REPO, "repository: ghcr.io/acme/agent"),
            (API_REPO, "repository: ghcr.io/acme/analytics"),
            (MS_REPO, "repository: ghcr.io/acme/metrics"),
        ]),
        Vec::<String>::new()
    );
    // A prefix that is not a path boundary is another registry.
    let found = errors(&[
        REGISTRIES,
        (LGP_REPO, "repository: ghcr.io/acmecorp/agent"),
        (MS_REPO, "repository: ghcr.io/acme2/metrics"),
    ]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].contains("stacks.langgraph-platform.image.repository: expected the repository this stack creates, 111122223333.dkr.ecr.us-east-1.amazonaws.com/langgraph-platform, or one under a registry of `image_registries` (ghcr.io/acme), found ghcr.io/acmecorp/agent"),
        "{found:#?}"
    );
    assert!(
        found[1].contains(
            "stacks.metrics-service.image.repository: expected the repository this stack creates"
        ),
        "{found:#?}"
    );
    // The allow-list itself must name registries.
    let found = errors(&[(
        "region: us-east-1\n",
        "region: us-east-1\nimage_registries:\n  - \"https://ghcr.io/acme\"\n",
    )]);
    assert!(
        found.len() == 1
            && found[0].starts_with("environments/prod.yaml:8:5: image_registries[0]:"),
        "{found:#?}"
    );
}

#[test]
fn issue_22_bug_4_the_ecs_and_kubernetes_apis_create_their_repositories() {
    for stack in ["langgraph-platform", "analytics-api"] {
        let o = common::output("prod", stack);
        let repos = common::of_type(&o, "aws_ecr_repository");
        assert_eq!(repos.len(), 1, "{stack}");
        assert_eq!(repos[0]["name"], stack, "{stack}");
    }
    // The analytics-api deploy role pushes to that repository only.
    let o = common::output("prod", "analytics-api");
    let text: String = o.files.values().map(String::as_str).collect();
    assert!(
        text.contains("arn:aws:ecr:us-east-1:111122223333:repository/analytics-api"),
        "the deploy role names the stack's own repository"
    );
}

#[test]
fn issue_22_bug_15_cache_versions_come_from_a_list() {
    let found = errors(&[("engine_version: \"7.1\"", "engine_version: \"banana\"")]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(
            "environments/prod.yaml:137:23: stacks.analytics-api.cache.engine_version:"
        ),
        "{found:#?}"
    );
    assert_eq!(
        errors(&[("engine_version: \"7.1\"", "engine_version: \"7.9\"")]),
        [
            "environments/prod.yaml:137:23: stacks.analytics-api.cache.engine_version: expected a Redis version ElastiCache supports (6.0, 6.2, 7.0, 7.1), found \"7.9\""
        ]
    );
    assert_eq!(
        errors(&[("engine_version: \"7.1\"", "engine_version: \"6.2\"")]),
        Vec::<String>::new()
    );
}

#[test]
fn issue_22_bug_15_kube_proxy_follows_the_cluster_version() {
    assert_eq!(
        errors(&[(
            "kube_proxy: v1.34.0-eksbuild.2",
            "kube_proxy: v1.32.6-eksbuild.2"
        )]),
        [
            "environments/prod.yaml:48:19: stacks.platform.addons.kube_proxy: expected a kube-proxy build of the cluster's version 1.34 (v1.34.<patch>-eksbuild.<n>), found v1.32.6-eksbuild.2"
        ]
    );
}

#[test]
fn issue_22_bug_15_kubernetes_versions_are_ones_keel_validates() {
    let found = errors(&[("  version: \"1.34\"", "  version: \"1.39\"")]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("environments/prod.yaml:18:12: kubernetes.version:"),
        "{found:#?}"
    );
}

#[test]
fn issue_22_tags_follow_aws_rules() {
    let found = errors(&[(
        "region: us-east-1\n",
        "region: us-east-1\ntags:\n  \"aws:owner\": team\n  Team: \"a*b\"\n  Environment: other\n  CostCenter: \"42\"\n",
    )]);
    assert_eq!(
        found,
        [
            "environments/prod.yaml:8:16: tags.aws:owner: tag keys starting with `aws:` are reserved for AWS; choose another prefix",
            "environments/prod.yaml:9:9: tags.Team: tag value has '*' (U+002A) at character 2; AWS allows letters, numbers, spaces and _ . : / = + - @",
            "environments/prod.yaml:10:16: tags.Environment: keel always sets the tag \"Environment\" itself; remove it from `tags`",
        ]
    );
    let long = "x".repeat(129);
    let found = errors(&[(
        "region: us-east-1\n",
        &format!("region: us-east-1\ntags:\n  {long}: v\n"),
    )]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].ends_with("expected a tag key of 1..=128 characters, found 129"),
        "{found:#?}"
    );
}

#[test]
fn issue_22_node_labels_and_taints_follow_kubernetes_rules() {
    let long = "v".repeat(64);
    let found = errors(&[(
        "        labels:\n          workload: general\n",
        &format!(
            "        labels:\n          workload: {long}\n          \"-bad\": x\n        taints:\n          - key: dedicated/gpu\n            value: \"a b\"\n            effect: no_schedule\n          - key: Example.com/gpu\n            effect: no_execute\n"
        ),
    )]);
    assert_eq!(
        found,
        [
            "environments/prod.yaml:44:21: stacks.platform.node_groups[0].labels.workload: not a Kubernetes label value: expected a value of at most 63 characters, found 64",
            "environments/prod.yaml:45:19: stacks.platform.node_groups[0].labels.-bad: not a Kubernetes label key: the key name must begin and end with an ASCII letter or digit",
            "environments/prod.yaml:48:20: stacks.platform.node_groups[0].taints[0].value: not a Kubernetes label value: the value has U+0020 at character 2; expected ASCII letters, digits and - _ .",
            "environments/prod.yaml:50:18: stacks.platform.node_groups[0].taints[1].key: not a Kubernetes qualified name: the key prefix before `/` must be a DNS subdomain (lowercase letters, digits, - and ., at most 253 characters)",
        ]
    );
    let found = errors(&[(
        "    release: kube-prometheus-stack\n",
        "    release: \"kube prometheus\"\n",
    )]);
    assert_eq!(
        found,
        [
            "environments/prod.yaml:26:14: kubernetes.service_monitor_labels.release: not a Kubernetes label value: the value has U+0020 at character 5; expected ASCII letters, digits and - _ ."
        ]
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
fn issue_22_rds_storage_never_shrinks_at_synth() {
    let project = common::temp_project();
    let root = project.path();
    let synth = keel(root, &["synth", "prod"]);
    assert_eq!(
        synth.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    let database = root.join("generated/prod/analytics-api/terraform/database.tf.json");
    let before = std::fs::read(&database).expect("synth wrote the database");

    let file = root.join("environments/prod.yaml");
    let from = "      instance_class: db.r6g.large\n      allocated_storage_gib: 100\n      multi_az: true\n      deletion_protection: true\n      backup_retention_days: 7\n    cache:";
    assert!(PROD.contains(from));
    std::fs::write(
        &file,
        PROD.replacen(from, &from.replace("gib: 100", "gib: 50"), 1),
    )
    .expect("write");
    let shrink = keel(root, &["synth", "prod"]);
    let err = String::from_utf8_lossy(&shrink.stderr);
    assert_eq!(shrink.status.code(), Some(2), "{err}");
    assert!(
        err.contains("environments/prod.yaml:131:30: stacks.analytics-api.database.allocated_storage_gib: expected at least 100 GiB, the allocated storage of aws_db_instance.main in generated/prod/analytics-api/terraform/database.tf.json (RDS cannot shrink storage), found 50"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&database).expect("still there"),
        before,
        "nothing written"
    );

    // Growing is fine.
    std::fs::write(
        &file,
        PROD.replacen(from, &from.replace("gib: 100", "gib: 200"), 1),
    )
    .expect("write");
    let grow = keel(root, &["synth", "prod"]);
    assert_eq!(
        grow.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&grow.stderr)
    );
}
