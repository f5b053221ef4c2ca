//! Properties of the committed output: current, deterministic, free of secret values.

use crate::common;

use keel::ops::Project;
use keel_workload_contract as contract;

#[test]
fn committed_generated_tree_is_current() {
    keel::ops::check::check(&Project::new(common::repo())).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn two_builds_give_identical_bytes() {
    let a: Vec<_> = common::outputs()
        .into_iter()
        .map(|o| (o.env, o.stack, o.files))
        .collect();
    let b: Vec<_> = common::outputs()
        .into_iter()
        .map(|o| (o.env, o.stack, o.files))
        .collect();
    assert_eq!(a, b);
    for (_, _, files) in &a {
        for (path, body) in files {
            assert!(
                body.ends_with('\n'),
                "{} ends with a newline",
                path.display()
            );
            assert!(
                !body.contains('\u{F8F0}'),
                "{} has no unrendered expression",
                path.display()
            );
        }
    }
}

/// Attribute names whose value is a secret: in Terraform they must be references.
const SECRET_ATTRIBUTES: &[&str] = &["password", "auth_token", "secret_string", "master_password"];

/// A JSON object whose every property is an empty string: the seed of a secret an operator
/// fills later (analytics-api's `{"previous":""}`), which holds no secret.
fn is_empty_seed(s: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s)
        .is_ok_and(|m| !m.is_empty() && m.values().all(|v| v == ""))
}

fn walk(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if SECRET_ATTRIBUTES.contains(&k.as_str()) {
                    match v.as_str() {
                        Some(s) if s.contains("${") || is_empty_seed(s) => {}
                        _ => out.push(format!("{path}.{k} = {v}")),
                    }
                }
                walk(v, &format!("{path}.{k}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn no_secret_value_is_generated() {
    let tree = keel::render::read_tree(&common::repo().join("generated")).unwrap();
    assert!(!tree.is_empty());
    let mut findings = Vec::new();
    for (path, bytes) in &tree {
        let text = String::from_utf8_lossy(bytes);
        let shown = path.display().to_string();
        for needle in [
            "BEGIN PRIVATE KEY",
            "BEGIN RSA PRIVATE KEY",
            "aws_secret_access_key",
            "AKIA",
        ] {
            if text.contains(needle) {
                findings.push(format!("{shown}: contains {needle}"));
            }
        }
        if shown.ends_with(".tf.json") {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            walk(&v, &shown, &mut findings);
        }
        if shown.ends_with(".yaml") {
            if text.lines().any(|l| l == "kind: Secret") {
                findings.push(format!(
                    "{shown}: a Secret object (values belong in Secrets Manager)"
                ));
            }
            let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
            for var in contract::ENV_VARS.iter().filter(|v| v.secret) {
                if doc.get("data").and_then(|d| d.get(var.name)).is_some() {
                    findings.push(format!("{shown}: {} as plain config", var.name));
                }
            }
            for c in doc
                .pointer("/spec/template/spec/containers")
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
            {
                for e in c["env"].as_array().into_iter().flatten() {
                    if e.get("value").is_some()
                        && contract::ENV_VARS
                            .iter()
                            .any(|v| v.secret && e["name"] == v.name)
                    {
                        findings.push(format!("{shown}: {} has a literal value", e["name"]));
                    }
                }
            }
        }
    }
    assert!(
        findings.is_empty(),
        "secret values in generated/:\n{}",
        findings.join("\n")
    );
}

#[test]
fn secret_scan_catches_a_literal_password() {
    let mut findings = Vec::new();
    walk(
        &serde_json::json!({"resource": {"aws_db_instance": {"x": {"password": "hunter2hunter2"}}}}),
        "f",
        &mut findings,
    );
    assert_eq!(findings.len(), 1);
    // A seed with empty properties holds no secret; one with a value does.
    for (seed, found) in [
        (r#"{"previous":""}"#, 0),
        (r#"{"previous":"hunter2hunter2"}"#, 1),
        (r#"{"a":"","b":"x"}"#, 1),
        ("{}", 1),
        ("", 1),
    ] {
        let mut findings = Vec::new();
        walk(
            &serde_json::json!({"secret_string": seed}),
            "f",
            &mut findings,
        );
        assert_eq!(findings.len(), found, "{seed}");
    }
}

/// Each stack folder's README.md is derived from the model: the load balancer routes to the
/// service, the service reaches its database and runs as its roles, the cluster runs the
/// Kubernetes workloads; its apply order and imports are the linker's.
#[test]
fn stack_pages_derive_their_diagram_from_the_model() {
    let outputs = common::outputs();
    let page = |env: &str, stack: &str| -> String {
        let o = outputs
            .iter()
            .find(|o| o.env == env && o.stack == stack)
            .expect("the stack is built");
        o.files[std::path::Path::new("README.md")].clone()
    };
    let lgp = page("prod", "langgraph-platform");
    for line in [
        "aws_lb_main -->|routes to| aws_ecs_service_app",
        "aws_ecs_service_app -->|uses| aws_db_instance_main",
        "aws_ecs_service_app -->|runs as| aws_iam_role_task",
        "| `aws_db_instance` | 1 |",
    ] {
        assert!(lgp.contains(line), "{line}\n{lgp}");
    }
    let aapi = page("prod", "analytics-api");
    for line in [
        "cluster -->|runs| k8s_Rollout_analytics_analytics_api",
        "k8s_Ingress_analytics_analytics_api -->|routes to| k8s_Rollout_analytics_analytics_api",
        "cluster -->|uses| aws_db_instance_main",
        "Applied after: platform.",
        "| `vpc_id` of platform | `/keel/prod/platform/vpc_id` |",
    ] {
        assert!(aapi.contains(line), "{line}\n{aapi}");
    }
    let platform = page("prod", "platform");
    assert!(platform.contains("aws_eks_cluster_main -->|runs| aws_eks_node_group_general"));
    assert!(platform.contains("2 `moved` blocks"), "{platform}");
    let again = common::outputs();
    for (a, b) in outputs.iter().zip(&again) {
        let readme = std::path::Path::new("README.md");
        assert_eq!(
            a.files[readme], b.files[readme],
            "{}/{}: byte-identical",
            a.env, a.stack
        );
    }
}
