//! Regressions of the production review (issue 12): what failed after `terraform apply`, on
//! the second deployment, or over time. Each test is named for its point of the issue.

use crate::common;

use common::{of_type, output, resources};
use keel::ops::synth::Output;
use keel_workload_contract as contract;
use serde_json::{Value, json};

/// Every data source of a root as (type, name, body).
fn data_sources(o: &Output) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, body) in &o.files {
        if !path.starts_with("terraform") {
            continue;
        }
        let v: Value = serde_json::from_str(body).expect("JSON");
        for (ty, named) in v["data"].as_object().into_iter().flatten() {
            for (name, body) in named.as_object().expect("named blocks") {
                out.push((ty.clone(), name.clone(), body.clone()));
            }
        }
    }
    out
}

/// The resource `ty.name`.
fn resource(o: &Output, ty: &str, name: &str) -> Value {
    resources(o)
        .into_iter()
        .find(|(t, n, _)| t == ty && n == name)
        .map(|(_, _, b)| b)
        .unwrap_or_else(|| panic!("no {ty}.{name} in {} {}", o.env, o.stack))
}

/// The statements of the policy document `data.aws_iam_policy_document.<name>`.
fn statements(o: &Output, name: &str) -> Vec<Value> {
    data_sources(o)
        .into_iter()
        .find(|(t, n, _)| t == "aws_iam_policy_document" && n == name)
        .map(|(_, _, b)| b["statement"].as_array().cloned().unwrap_or_default())
        .unwrap_or_else(|| panic!("no policy document {name}"))
}

fn file<'a>(o: &'a Output, path: &str) -> &'a str {
    o.files
        .get(std::path::Path::new(path))
        .unwrap_or_else(|| panic!("no {path} in {} {}", o.env, o.stack))
}

fn k8s(o: &Output, prefix: &str) -> Value {
    let (_, body) = o
        .files
        .iter()
        .find(|(p, _)| {
            p.starts_with("k8s")
                && p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no k8s file {prefix}*"));
    serde_saphyr::from_str(body).expect("rendered YAML parses")
}

fn container_definitions(o: &Output) -> Value {
    common::tf_json(o, "ecs.tf.json")["locals"]["app_container_definitions"][0].clone()
}

#[test]
fn issue12_1_only_the_stacks_own_reader_decrypts_and_reads_its_secrets() {
    let o = output("prod", "analytics-api");
    // Issue 19 point 8: trusted by the store's own ServiceAccount (IRSA), reading the
    // stack's prefix.
    let trust = statements(&o, "secrets_reader_trust");
    assert_eq!(
        trust[0]["condition"][0]["values"],
        json!(["system:serviceaccount:analytics:analytics-api-secrets"])
    );
    let policy = statements(&o, "secrets_reader");
    let read = &policy[0];
    assert_eq!(
        read["resources"],
        json!(["arn:aws:secretsmanager:us-east-1:111122223333:secret:analytics-api/prod/*"])
    );
    let decrypt = &policy[1];
    assert_eq!(decrypt["actions"], json!(["kms:Decrypt"]));
    assert_eq!(decrypt["resources"], json!(["${aws_kms_key.main.arn}"]));
    assert_eq!(
        decrypt["condition"][0],
        json!({"test": "StringEquals", "variable": "kms:ViaService",
               "values": ["secretsmanager.us-east-1.amazonaws.com"]})
    );
    let store = k8s(&o, "30-secretstore");
    assert_eq!(
        store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"],
        "analytics-api-secrets"
    );
    assert_eq!(
        k8s(&o, "10-serviceaccount-analytics-api-secrets")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/aapi-prod-secrets-reader"
    );
    assert_eq!(
        resource(&o, "aws_iam_role", "secrets_reader")["name"],
        "aapi-prod-secrets-reader",
        "the SecretStore names the role the stack creates"
    );
    let es = k8s(&o, "30-externalsecret");
    assert_eq!(
        es["spec"]["secretStoreRef"],
        json!({"kind": "SecretStore", "name": "analytics-api"})
    );
    let outputs = common::tf_json(&o, "outputs.tf.json");
    assert_eq!(
        outputs["output"]["kms_key_arn"]["value"],
        "${aws_kms_key.main.arn}"
    );
}

#[test]
fn issue12_2_applications_log_in_as_their_own_user_never_the_rotated_master() {
    for (stack, user) in [
        ("langgraph-platform", "langgraph_app"),
        ("analytics-api", "analytics_app"),
    ] {
        let o = output("prod", stack);
        let url = resource(&o, "aws_secretsmanager_secret_version", "database_url");
        let url = url["secret_string"].as_str().unwrap();
        assert!(
            url.starts_with(&format!(
                "postgres://{user}:${{data.aws_secretsmanager_secret_version.database_app_password.secret_string}}@"
            )),
            "{stack}: {url}"
        );
        let db = &of_type(&o, "aws_db_instance")[0];
        assert_eq!(db["manage_master_user_password"], true, "{stack}");
        assert_ne!(db["username"], user, "{stack}");
        // Nothing but an output and the login step (issue 18: its reader role or its
        // task's execution role and container) names the master secret.
        for (path, body) in o.files.iter().filter(|(p, _)| p.starts_with("terraform")) {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            for (kind, blocks) in v.as_object().unwrap() {
                let Some(blocks) = blocks.as_object() else {
                    continue;
                };
                for (ty, named) in blocks {
                    let Some(named) = named.as_object() else {
                        continue;
                    };
                    for (name, body) in named {
                        let allowed = kind == "output"
                            || name.starts_with("database_login")
                            || ty.starts_with("database_login");
                        assert!(
                            allowed || !body.to_string().contains("master_user_secret[0]"),
                            "{stack}: {} {kind}.{ty}.{name} names the master secret",
                            path.display()
                        );
                    }
                }
            }
        }
        let login_step = o
            .files
            .values()
            .find(|b| b.contains(&format!("ALTER ROLE {user} WITH LOGIN NOSUPERUSER")));
        assert!(login_step.is_some(), "{stack}: the login step's SQL");
    }
}

#[test]
fn issue12_3_ecs_exec_agent_paths_are_writable_under_a_read_only_root() {
    let o = output("prod", "langgraph-platform");
    let defs = container_definitions(&o);
    assert_eq!(defs["readonlyRootFilesystem"], true);
    let mounted: Vec<&str> = defs["mountPoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["containerPath"].as_str().unwrap())
        .collect();
    for path in [
        "/managed-agents",
        "/var/lib/amazon/ssm",
        "/var/log/amazon/ssm",
    ] {
        assert!(mounted.contains(&path), "{path}: {mounted:?}");
    }
    assert_eq!(
        of_type(&o, "aws_ecs_service")[0]["enable_execute_command"],
        true
    );
}

#[test]
fn issue12_4_a_new_revision_is_kept_output_and_deployable() {
    let o = output("prod", "langgraph-platform");
    assert_eq!(
        resource(&o, "aws_ecs_task_definition", "app")["skip_destroy"],
        true
    );
    let outputs = common::tf_json(&o, "outputs.tf.json");
    assert_eq!(
        outputs["output"]["task_definition_arn"]["value"],
        "${aws_ecs_task_definition.app.arn}"
    );
    assert_eq!(outputs["output"]["container_name"]["value"], "app");
    assert_eq!(outputs["output"]["container_port"]["value"], 3000);
    let appspec = file(&o, "deploy/appspec.yaml");
    assert!(appspec.contains("Type: AWS::ECS::Service"));
    assert!(appspec.contains("ContainerPort: 3000"));
    let script = file(&o, "deploy/create-deployment.sh");
    assert!(script.contains("aws deploy create-deployment"));
    for name in [
        "task_definition_arn",
        "codedeploy_app_name",
        "codedeploy_deployment_group_name",
    ] {
        assert!(
            outputs["output"][name].is_object(),
            "the script reads output {name}"
        );
    }
}

#[test]
fn issue12_5_the_ingress_controller_reaches_the_http01_solver() {
    let o = output("prod", "analytics-api");
    let policy = k8s(&o, "80-networkpolicy-acme-http01-solver");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        json!({"acme.cert-manager.io/http01-solver": "true"})
    );
    assert_eq!(
        policy["spec"]["ingress"][0],
        json!({
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"port": 8089, "protocol": "TCP"}],
        })
    );
}

#[test]
fn issue12_6_target_group_watchers_follow_both_groups() {
    let o = output("prod", "langgraph-platform");
    for name in ["unhealthy_targets", "deploy_unhealthy_targets"] {
        let alarm = resource(&o, "aws_cloudwatch_metric_alarm", name);
        let groups: Vec<&str> = alarm["metric_query"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|q| q["metric"][0]["dimensions"]["TargetGroup"].as_str())
            .collect();
        assert_eq!(
            groups,
            [
                "${aws_lb_target_group.blue.arn_suffix}",
                "${aws_lb_target_group.green.arn_suffix}"
            ],
            "{name}"
        );
    }
    let requests = resource(&o, "aws_appautoscaling_policy", "requests");
    let text = requests.to_string();
    assert!(
        !text.contains("aws_lb_target_group"),
        "request scaling follows the load balancer, not one target group: {text}"
    );
    assert!(text.contains("requests / tasks"));
}

#[test]
fn issue12_7_deployments_roll_back_on_their_own_alarms_at_the_seeds_thresholds() {
    let o = output("prod", "langgraph-platform");
    let group = &of_type(&o, "aws_codedeploy_deployment_group")[0];
    let alarms: Vec<&str> = group["alarm_configuration"][0]["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(alarms.iter().all(|a| a.contains(".deploy_")), "{alarms:?}");
    let errors = resource(&o, "aws_cloudwatch_metric_alarm", "deploy_5xx");
    assert_eq!(errors["threshold"], 5.0);
    let metrics: Vec<(&str, u64)> = errors["metric_query"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| {
            Some((
                q["metric"][0]["metric_name"].as_str()?,
                q["metric"][0]["period"].as_u64()?,
            ))
        })
        .collect();
    assert_eq!(
        metrics,
        [
            ("HTTPCode_Target_5XX_Count", 60),
            ("HTTPCode_ELB_5XX_Count", 60)
        ]
    );
    let latency = resource(&o, "aws_cloudwatch_metric_alarm", "deploy_latency");
    assert_eq!(
        (latency["threshold"].as_f64(), latency["period"].as_u64()),
        (Some(3.0), Some(60))
    );
    assert!(
        errors.get("alarm_actions").is_none(),
        "rollback alarms page no one"
    );
    let monitoring = resource(&o, "aws_cloudwatch_metric_alarm", "alb_5xx_errors");
    assert_eq!(
        (
            monitoring["threshold"].as_f64(),
            monitoring["period"].as_u64()
        ),
        (Some(10.0), Some(300)),
        "the monitoring alarms stay as they are"
    );
}

#[test]
fn issue12_8_databases_pin_only_the_major_version() {
    for o in common::outputs() {
        for db in of_type(&o, "aws_db_instance") {
            let version = db["engine_version"].as_str().unwrap();
            // PostgreSQL's majors are whole numbers (`15`), MySQL's release series (`8.4`).
            let major_dots = if db["engine"] == "mysql" { 1 } else { 0 };
            assert_eq!(
                version.matches('.').count(),
                major_dots,
                "{} {}: {version}",
                o.env,
                o.stack
            );
            assert_eq!(db["auto_minor_version_upgrade"], true);
        }
    }
}

#[test]
fn issue12_9_groups_replaced_first_never_reuse_a_name() {
    let o = output("prod", "analytics-api");
    let params = &of_type(&o, "aws_db_parameter_group")[0];
    assert!(params.get("name").is_none());
    assert_eq!(params["name_prefix"], "aapi-prod-postgres15-");
    let cache = &of_type(&o, "aws_elasticache_parameter_group")[0];
    assert_eq!(
        cache["name"], "aapi-prod-cache-redis7",
        "the family is in the name"
    );
}

#[test]
fn issue12_10_the_hpa_owns_replicas_and_pods_leave_gracefully() {
    let o = output("prod", "analytics-api");
    // prod rolls out through an Argo Rollout: same pod template as a Deployment's.
    let d = k8s(&o, "40-rollout");
    assert!(d["spec"].get("replicas").is_none());
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        contract::PRE_STOP_PAUSE_SECS
    );
    assert_eq!(
        pod["terminationGracePeriodSeconds"],
        contract::TERMINATION_GRACE_SECS
    );
    let dev = output("dev", "analytics-api");
    assert!(
        k8s(&dev, "40-deployment")["spec"].get("replicas").is_none(),
        "dev has an HPA too"
    );
}

#[test]
fn issue12_11_a_config_change_rolls_the_pods() {
    let hash = |env: &str| {
        let o = output(env, "analytics-api");
        k8s(&o, "40-rollout")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (staging, prod) = (hash("staging"), hash("prod"));
    assert_eq!(prod.len(), 64);
    assert_ne!(staging, prod, "the two ConfigMaps differ (CORS origins)");
}

#[test]
fn issue12_12_codedeploy_has_the_limited_policy_and_publishes_to_its_topic_only() {
    let o = output("prod", "langgraph-platform");
    let attached: Vec<Value> = of_type(&o, "aws_iam_role_policy_attachment")
        .into_iter()
        .map(|a| a["policy_arn"].clone())
        .collect();
    assert!(attached.contains(&json!(
        "arn:aws:iam::aws:policy/AWSCodeDeployRoleForECSLimited"
    )));
    assert!(!attached.contains(&json!("arn:aws:iam::aws:policy/AWSCodeDeployRoleForECS")));
    let publish = &statements(&o, "codedeploy")[0];
    assert_eq!(publish["actions"], json!(["sns:Publish"]));
    assert_eq!(publish["resources"], json!(["${aws_sns_topic.alarms.arn}"]));
}

#[test]
fn issue12_13_logs_key_scoped_rds_log_groups_precreated_monitoring_ready_first() {
    let o = output("prod", "langgraph-platform");
    let key = statements(&o, "key");
    let logs = key
        .iter()
        .find(|s| s["principals"][0]["identifiers"][0] == "logs.us-east-1.amazonaws.com")
        .unwrap();
    assert_eq!(
        logs["condition"][0]["values"],
        json!([
            "arn:aws:logs:us-east-1:111122223333:log-group:/keel/lgp-prod/*",
            "arn:aws:logs:us-east-1:111122223333:log-group:/aws/rds/instance/lgp-prod-*",
            "arn:aws:logs:us-east-1:111122223333:log-group:aws-waf-logs-lgp-prod"
        ])
    );
    for log in ["postgresql", "upgrade"] {
        let group = resource(&o, "aws_cloudwatch_log_group", &format!("db_{log}"));
        assert_eq!(
            group["name"],
            format!("/aws/rds/instance/lgp-prod-db/{log}")
        );
        assert_eq!(group["kms_key_id"], "${aws_kms_key.main.arn}");
    }
    let db = &of_type(&o, "aws_db_instance")[0];
    assert_eq!(
        db["depends_on"],
        json!([
            "aws_cloudwatch_log_group.db_postgresql",
            "aws_cloudwatch_log_group.db_upgrade",
            "aws_iam_role_policy_attachment.rds_monitoring_amazonrdsenhancedmonitoringrole"
        ])
    );
}

#[test]
fn issue12_14_pod_identity_tls_verification_from_the_contract() {
    let o = output("prod", "analytics-api");
    // prod rolls out through an Argo Rollout: same pod template as a Deployment's.
    let d = k8s(&o, "40-rollout");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], contract::RUN_AS_USER);
    assert_eq!(
        pod["containers"][0]["securityContext"]["runAsGroup"],
        contract::RUN_AS_GROUP
    );
    let url = resource(&o, "aws_secretsmanager_secret_version", "database_url");
    assert!(url["secret_string"].as_str().unwrap().ends_with(&format!(
        "?sslmode=verify-full&sslrootcert={}",
        contract::DATABASE_CA_BUNDLE_PATH
    )));
}

#[test]
fn issue12_14_pods_reach_only_the_data_subnets_on_the_data_ports() {
    let o = output("prod", "analytics-api");
    let policy = k8s(&o, "80-networkpolicy-analytics-api");
    let peers: Vec<(String, u64)> = policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|rule| {
            (
                rule["to"][0]["ipBlock"]["cidr"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                rule["ports"][0]["port"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = ["10.130.112.0/24", "10.130.113.0/24", "10.130.114.0/24"]
        .iter()
        .flat_map(|c| [((*c).to_owned(), 5432), ((*c).to_owned(), 6379)])
        .collect();
    assert_eq!(
        peers, expected,
        "the /24 data subnets, not the /20s the pods live in"
    );
    let groups = of_type(&o, "aws_db_subnet_group");
    assert!(
        groups[0]["subnet_ids"]
            .as_str()
            .unwrap()
            .contains("platform_data_subnet_ids")
    );
}

#[test]
fn issue12_15_seed_fidelity() {
    let o = output("prod", "langgraph-platform");
    let env: Vec<(String, String)> = container_definitions(&o)["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (name, value) in [
        ("LANGCHAIN_TRACING_V2", "true"),
        ("LANGSMITH_PROJECT", "langgraph-platform"),
        ("JIRA_BASE_URL", "https://jira.example.com"),
        ("JIRA_EMAIL", "agents+prod@example.com"),
    ] {
        assert!(
            env.contains(&(name.into(), value.into())),
            "{name}: {env:?}"
        );
    }
    assert!(
        !env.iter().any(|(n, _)| n.starts_with("DATABASE_")),
        "one DATABASE_URL secret"
    );
    let o = output("prod", "analytics-api");
    let cache = &of_type(&o, "aws_elasticache_parameter_group")[0];
    assert_eq!(
        cache["parameter"],
        json!([{"name": "maxmemory-policy", "value": "allkeys-lru"}])
    );
    assert_eq!(
        of_type(&o, "aws_elasticache_replication_group")[0]["parameter_group_name"],
        "${aws_elasticache_parameter_group.main.name}"
    );
    assert_eq!(
        of_type(&o, "aws_db_instance")[0]["engine_version"],
        "15",
        "the seed's PostgreSQL 15"
    );
    let monitor = k8s(&o, "90-podmonitor");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
}

#[test]
fn issue12_16_the_first_apply_stops_clearly_until_third_party_secrets_are_set() {
    let o = output("prod", "langgraph-platform");
    let service = &of_type(&o, "aws_ecs_service")[0];
    let preconditions = service["lifecycle"]["precondition"].as_array().unwrap();
    let checked: Vec<&str> = preconditions
        .iter()
        .map(|p| p["condition"].as_str().unwrap())
        .collect();
    for secret in ["langsmith_api_key", "jira_api_token", "jira_webhook_secret"] {
        assert!(
            checked.contains(
                &format!(
                    "${{try(length(data.aws_secretsmanager_secret_versions.{secret}.versions), 0) > 0}}"
                )
                .as_str()
            ),
            "{secret}: {checked:?}"
        );
    }
    assert!(
        preconditions[0]["error_message"]
            .as_str()
            .unwrap()
            .contains("aws secretsmanager put-secret-value --secret-id lgp-prod/")
    );
}
