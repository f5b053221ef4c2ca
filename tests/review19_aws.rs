//! Regressions of the cluster-stacks review (issue 19), its AWS points: what failed after
//! `terraform apply` (CodeDeploy's task roles, the log bucket's principal), the edge, ECR
//! over time, and seed requirements. Each test is named for its point of the issue.

use crate::common;

use std::path::Path;
use std::sync::OnceLock;

use keel::env::load_str;
use keel::ops::synth::Output;
use serde_json::{Value, json};

/// Every stack of every environment, built once for this file.
fn all() -> &'static [Output] {
    static ALL: OnceLock<Vec<Output>> = OnceLock::new();
    ALL.get_or_init(common::outputs)
}

fn output(env: &str, stack: &str) -> &'static Output {
    all()
        .iter()
        .find(|o| o.env == env && o.stack == stack)
        .unwrap_or_else(|| panic!("no output for {stack} in {env}"))
}

/// Blocks of `kind` (`resource` or `data`) and type `ty` as (name, body).
fn blocks(o: &Output, kind: &str, ty: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (path, body) in &o.files {
        if !path.starts_with("terraform") {
            continue;
        }
        let v: Value = serde_json::from_str(body).expect("JSON");
        for (name, body) in v[kind][ty].as_object().into_iter().flatten() {
            out.push((name.clone(), body.clone()));
        }
    }
    out
}

fn one(o: &Output, kind: &str, ty: &str, name: &str) -> Value {
    blocks(o, kind, ty)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no {kind} {ty}.{name} in {} {}", o.env, o.stack))
}

/// The statements of `data.aws_iam_policy_document.<name>`.
fn statements(o: &Output, name: &str) -> Vec<Value> {
    one(o, "data", "aws_iam_policy_document", name)["statement"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn statement(o: &Output, doc: &str, sid: &str) -> Value {
    statements(o, doc)
        .into_iter()
        .find(|s| s["sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in {doc} ({} {})", o.env, o.stack))
}

fn k8s(o: &Output, file: &str) -> Value {
    let body = &o.files[Path::new("k8s").join(file).as_path()];
    serde_saphyr::from_str(body).expect("rendered YAML parses")
}

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

#[test]
fn issue19_1_codedeploy_passes_exactly_the_task_roles_to_ecs_tasks() {
    for env in ENVS {
        let o = output(env, "langgraph-platform");
        let task = one(o, "resource", "aws_ecs_task_definition", "app");
        let pass = statement(o, "codedeploy", "PassTaskRolesToEcs");
        assert_eq!(pass["actions"], json!(["iam:PassRole"]));
        assert_eq!(
            pass["resources"],
            json!([task["task_role_arn"], task["execution_role_arn"]]),
            "{env}: exactly the roles the task definition names"
        );
        assert_eq!(
            pass["condition"],
            json!([{"test": "StringEquals", "variable": "iam:PassedToService",
                    "values": ["ecs-tasks.amazonaws.com"]}])
        );
    }
    let rule = keel::policy::RULES
        .iter()
        .find(|r| r.name == "codedeploy_cannot_pass_task_roles");
    assert!(rule.is_some(), "the class is a policy rule");
}

/// The load balancer attributes annotation of aegistickets' ingresses, as key=value pairs.
fn alb_attributes(env: &str) -> Vec<String> {
    let o = output(env, "aegistickets");
    let mut seen = Vec::new();
    for file in ["70-ingress-backend.yaml", "70-ingress-frontend.yaml"] {
        let ing = k8s(o, file);
        seen.push(
            ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"]
                .as_str()
                .unwrap_or_else(|| panic!("{env} {file}: no load-balancer-attributes"))
                .to_owned(),
        );
    }
    assert_eq!(seen[0], seen[1], "one group, one set of attributes");
    seen[0].split(',').map(str::to_owned).collect()
}

#[test]
fn issue19_11_public_albs_have_a_waf_access_logs_and_deletion_protection_in_prod() {
    for env in ENVS {
        for stack in ["langgraph-platform", "aegistickets"] {
            let o = output(env, stack);
            let acl = one(o, "resource", "aws_wafv2_web_acl", "edge");
            assert_eq!(acl["scope"], "REGIONAL");
            let groups: Vec<&str> = acl["rule"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r["statement"][0]["managed_rule_group_statement"][0]["name"]
                        .as_str()
                        .unwrap()
                })
                .collect();
            assert_eq!(
                groups,
                [
                    "AWSManagedRulesCommonRuleSet",
                    "AWSManagedRulesKnownBadInputsRuleSet"
                ],
                "{env} {stack}"
            );
            let logging = one(
                o,
                "resource",
                "aws_wafv2_web_acl_logging_configuration",
                "edge",
            );
            assert_eq!(
                logging["log_destination_configs"],
                json!(["${aws_cloudwatch_log_group.waf.arn}"])
            );
        }
        // The controller attaches aegistickets' web ACL by its name (the ARN holds an id
        // Terraform learns at apply).
        let tickets = output(env, "aegistickets");
        let acl_name = one(tickets, "resource", "aws_wafv2_web_acl", "edge")["name"].clone();
        for file in ["70-ingress-backend.yaml", "70-ingress-frontend.yaml"] {
            assert_eq!(
                k8s(tickets, file)["metadata"]["annotations"]["alb.ingress.kubernetes.io/wafv2-acl-name"],
                acl_name,
                "{env} {file}"
            );
        }
        let o = output(env, "langgraph-platform");
        let association = one(o, "resource", "aws_wafv2_web_acl_association", "alb");
        assert_eq!(association["resource_arn"], "${aws_lb.main.arn}");
        assert_eq!(association["web_acl_arn"], "${aws_wafv2_web_acl.edge.arn}");
        let lb = one(o, "resource", "aws_lb", "main");
        assert_eq!(lb["access_logs"][0]["enabled"], true);
        assert_eq!(lb["enable_deletion_protection"], env == "prod");
        let attributes = alb_attributes(env);
        assert!(attributes.contains(&"access_logs.s3.enabled=true".to_owned()));
        assert!(attributes.contains(&format!(
            "access_logs.s3.bucket={}",
            one(
                output(env, "aegistickets"),
                "resource",
                "aws_s3_bucket",
                "alb_logs"
            )["bucket"]
            .as_str()
            .unwrap()
        )));
        assert!(attributes.contains(&format!("deletion_protection.enabled={}", env == "prod")));
    }
    for o in all() {
        for (path, body) in &o.files {
            assert!(
                !body.contains("shared firewall"),
                "{} {} {}: a suppression points at a firewall keel does not create",
                o.env,
                o.stack,
                path.display()
            );
        }
    }
}

#[test]
fn issue19_11_dev_plain_http_is_a_stated_choice() {
    common::pin_today();
    const DEV: &str = include_str!("../environments/dev.yaml");
    for stack in ["langgraph-platform", "aegistickets"] {
        assert!(
            output("dev", stack).warnings.iter().any(|w| w
                .contains("plain HTTP to the internet, unencrypted (plain_http: internet_facing)")),
            "{stack}"
        );
    }
    assert_eq!(DEV.matches("    plain_http: internet_facing\n").count(), 2);
    let unstated = DEV.replace("    plain_http: internet_facing\n", "");
    let errors: Vec<String> = match load_str(Path::new("environments/dev.yaml"), "dev", &unstated) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(errors.len(), 2, "{errors:#?}");
    for (error, stack) in errors.iter().zip(["langgraph-platform", "aegistickets"]) {
        assert!(
            error.contains(&format!("stacks.{stack}: expected certificate_arn, or plain_http (internal or internet_facing)")),
            "{error}"
        );
    }
    let internal = DEV.replace(
        "    plain_http: internet_facing\n",
        "    plain_http: internal\n",
    );
    assert!(load_str(Path::new("environments/dev.yaml"), "dev", &internal).is_ok());
}

#[test]
fn issue19_12_the_access_log_bucket_admits_the_regions_elb_account_in_us_east_1() {
    for (env, stack) in [("prod", "langgraph-platform"), ("dev", "aegistickets")] {
        let o = output(env, stack);
        let write = statement(o, "alb_logs", "LogDeliveryWritesAccessLogs");
        assert_eq!(
            write["principals"],
            json!([{"type": "AWS", "identifiers": ["arn:aws:iam::127311923021:root"]}]),
            "us-east-1 is older than August 2022: the service principal is not honoured there"
        );
    }
}

#[test]
fn issue19_13_ecr_never_expires_pins_or_rollbacks_and_every_pin_has_its_repository() {
    for o in all() {
        for (name, repo) in blocks(o, "resource", "aws_ecr_repository") {
            let immutable = repo["image_tag_mutability"] == "IMMUTABLE";
            assert_eq!(immutable, o.env != "dev", "{} {} {name}", o.env, o.stack);
            let policy =
                common::tf_json(o, "ecr.tf.json")["locals"][format!("{name}_lifecycle")].clone();
            let rules = policy["rules"].as_array().unwrap();
            let counts_tagged = rules.iter().any(|r| {
                r["selection"]["tagStatus"] != "untagged" && r["selection"]["countNumber"] != 10_000
            });
            assert_eq!(
                counts_tagged, !immutable,
                "{} {} {name}: only repositories whose tags move expire tagged images",
                o.env, o.stack
            );
        }
    }
    let dev = output("dev", "metrics-service");
    let policy = &common::tf_json(dev, "ecr.tf.json")["locals"]["service_lifecycle"];
    assert_eq!(
        policy["rules"][0]["selection"]["tagPatternList"],
        json!(["2026.11.28-9b1c4e7"]),
        "dev's pinned tag comes first and is never expired"
    );
    for env in ENVS {
        for stack in ["analytics-api", "langgraph-platform"] {
            let repos = blocks(output(env, stack), "resource", "aws_ecr_repository");
            assert_eq!(repos.len(), 1, "{env} {stack}");
            assert_eq!(repos[0].1["name"], stack);
        }
    }
}

#[test]
fn issue19_20_metrics_service_deploy_role_reads_langfuse_and_the_seeds_outputs() {
    let o = output("prod", "metrics-service");
    let read = statement(o, "github_deploy", "ReadLangfuseCredentialsValues");
    assert_eq!(
        read["resources"],
        json!([
            "${aws_secretsmanager_secret.langfuse_public_key.arn}",
            "${aws_secretsmanager_secret.langfuse_secret_key.arn}"
        ])
    );
    let decrypt = statement(o, "github_deploy", "ReadLangfuseCredentialsDecrypt");
    assert_eq!(
        decrypt["condition"][0]["values"],
        json!(["secretsmanager.us-east-1.amazonaws.com"])
    );
    let outputs = common::tf_json(o, "outputs.tf.json");
    let outputs = outputs["output"].as_object().unwrap();
    for name in [
        "github_actions_role_arn",
        "metrics_service_irsa_role_arn",
        "ecr_repository_url",
        "eks_cluster_name",
        "k8s_namespace",
        "k8s_service_account",
    ] {
        assert!(outputs.contains_key(name), "seed output {name}");
    }
    assert_eq!(outputs["eks_cluster_name"]["value"], "eks-prod");
    let sa = k8s(o, "10-serviceaccount-metrics-service.yaml");
    assert_eq!(
        outputs["k8s_service_account"]["value"],
        sa["metadata"]["name"]
    );
    assert_eq!(
        outputs["k8s_namespace"]["value"],
        sa["metadata"]["namespace"]
    );
}

#[test]
fn issue19_21_langgraph_task_role_uses_its_own_encrypted_bucket_only() {
    for env in ENVS {
        let o = output(env, "langgraph-platform");
        let bucket = one(o, "resource", "aws_s3_bucket", "data");
        let name = bucket["bucket"].as_str().unwrap();
        let sse = one(
            o,
            "resource",
            "aws_s3_bucket_server_side_encryption_configuration",
            "data",
        );
        assert_eq!(
            sse["rule"][0]["apply_server_side_encryption_by_default"][0],
            json!({"sse_algorithm": "aws:kms", "kms_master_key_id": "${aws_kms_key.main.arn}"})
        );
        let objects = statement(o, "task", "ServiceDataObjects");
        assert_eq!(objects["actions"], json!(["s3:GetObject", "s3:PutObject"]));
        assert_eq!(
            objects["resources"],
            json!([format!("arn:aws:s3:::{name}/*")])
        );
        let list = statement(o, "task", "ServiceDataList");
        assert_eq!(list["resources"], json!([format!("arn:aws:s3:::{name}")]));
        let defs = common::tf_json(o, "ecs.tf.json");
        let env_vars = &defs["locals"]["app_container_definitions"][0]["environment"];
        assert!(
            env_vars
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "S3_BUCKET" && v["value"] == name),
            "{env_vars}"
        );
    }
}
