//! Targeted assertions on what each stack builds (CDK-style: "3 AZs → 3 NAT gateways").

use crate::common;

use common::{of_type, output, tf_json};
use keel_workload_contract as contract;

#[test]
fn prod_langgraph_platform_has_the_seed_resources() {
    let o = output("prod", "langgraph-platform");
    let subnets = of_type(&o, "aws_subnet");
    let public = subnets
        .iter()
        .filter(|s| s["tags"]["Tier"] == "public")
        .count();
    let private = subnets
        .iter()
        .filter(|s| s["tags"]["Tier"] == "private")
        .count();
    assert_eq!((public, private), (3, 3));
    assert_eq!(
        of_type(&o, "aws_nat_gateway").len(),
        3,
        "one NAT gateway per AZ in prod"
    );
    assert_eq!(
        of_type(&o, "aws_vpc_endpoint")[0]["vpc_endpoint_type"],
        "Gateway"
    );
    assert_eq!(of_type(&o, "aws_flow_log").len(), 1);
    assert_eq!(of_type(&o, "aws_lb").len(), 1);
    let tgs = of_type(&o, "aws_lb_target_group");
    assert_eq!(tgs.len(), 2);
    assert!(
        tgs.iter()
            .all(|t| t["target_type"] == "ip" && t["health_check"][0]["path"] == "/health")
    );
    let listeners = of_type(&o, "aws_lb_listener");
    assert_eq!(listeners.len(), 2);
    assert!(
        listeners
            .iter()
            .any(|l| l["default_action"][0]["type"] == "redirect")
    );
    assert!(
        listeners
            .iter()
            .any(|l| l["protocol"] == "HTTPS" && l["certificate_arn"].is_string())
    );
    let service = &of_type(&o, "aws_ecs_service")[0];
    assert_eq!(service["deployment_controller"][0]["type"], "CODE_DEPLOY");
    assert_eq!(
        service["lifecycle"]["ignore_changes"],
        serde_json::json!([
            "task_definition",
            "load_balancer",
            "desired_count",
            "network_configuration",
            "platform_version"
        ])
    );
    assert_eq!(
        service["network_configuration"][0]["assign_public_ip"],
        false
    );
    assert_eq!(of_type(&o, "aws_appautoscaling_policy").len(), 3);
    let target = &of_type(&o, "aws_appautoscaling_target")[0];
    assert_eq!(
        (
            target["min_capacity"].as_u64(),
            target["max_capacity"].as_u64()
        ),
        (Some(2), Some(10))
    );
    let group = &of_type(&o, "aws_codedeploy_deployment_group")[0];
    assert_eq!(
        group["deployment_config_name"],
        "${aws_codedeploy_deployment_config.canary_10_percent_15_minutes.id}"
    );
    // The seed's five rollback alarms, and the two of prod's rollout analysis with its
    // no-traffic alarm.
    assert_eq!(
        group["alarm_configuration"][0]["alarms"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
    assert_eq!(
        group["auto_rollback_configuration"][0]["events"],
        serde_json::json!(["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"])
    );
    let db = &of_type(&o, "aws_db_instance")[0];
    assert_eq!(db["multi_az"], true);
    assert_eq!(db["storage_encrypted"], true);
    assert_eq!(db["deletion_protection"], true);
    assert_eq!(db["manage_master_user_password"], true);
    assert_eq!(
        db["max_allocated_storage"],
        db["allocated_storage"].as_u64().unwrap() * 2
    );
    assert_eq!(db["backup_retention_period"], 7);
    assert!(db["final_snapshot_identifier"].is_string());
    assert!(db.get("password").is_none());
    // Five monitoring alarms (the seed's), five that roll deployments back plus three from
    // the rollout's analysis (success rate, p99, no traffic), and the availability SLO's
    // eight burn-rate windows joined by four composite alarms.
    assert_eq!(of_type(&o, "aws_cloudwatch_metric_alarm").len(), 21);
    assert_eq!(of_type(&o, "aws_cloudwatch_composite_alarm").len(), 4);
    assert_eq!(of_type(&o, "aws_cloudwatch_dashboard").len(), 1);
    assert_eq!(of_type(&o, "aws_sns_topic").len(), 1);
    assert_eq!(
        of_type(&o, "aws_sns_topic_subscription")[0]["protocol"],
        "email"
    );
}

#[test]
fn dev_shares_one_nat_gateway_and_serves_http_without_a_certificate() {
    let o = output("dev", "langgraph-platform");
    assert_eq!(of_type(&o, "aws_nat_gateway").len(), 1);
    let listeners = of_type(&o, "aws_lb_listener");
    assert_eq!(listeners.len(), 1);
    assert_eq!(listeners[0]["protocol"], "HTTP");
    assert!(
        o.warnings.iter().any(|w| w.contains("plain HTTP")),
        "{:?}",
        o.warnings
    );
    assert_eq!(of_type(&o, "aws_db_instance")[0]["multi_az"], false);
}

#[test]
fn providers_are_pinned_to_the_account_and_both_aws_majors() {
    for o in common::outputs() {
        let main = common::tf_json(&o, "main.tf.json");
        let aws = &main["provider"]["aws"];
        assert_eq!(aws["allowed_account_ids"].as_array().map(Vec::len), Some(1));
        assert!(
            aws["allowed_account_ids"][0].is_string(),
            "account ids are strings"
        );
        assert_eq!(aws["default_tags"]["tags"]["ManagedBy"], "keel");
        let versions = common::tf_json(&o, "versions.tf.json");
        let tf = &versions["terraform"];
        assert_eq!(
            tf["required_providers"]["aws"]["version"],
            ">= 5.100.0, < 7.0.0"
        );
        let s3 = &tf["backend"]["s3"];
        assert_eq!(
            s3["key"],
            format!("keel/{}/{}/terraform.tfstate", o.env, o.stack)
        );
        assert_eq!(
            (s3["encrypt"].as_bool(), s3["use_lockfile"].as_bool()),
            (Some(true), Some(true))
        );
    }
}

#[test]
fn task_secrets_come_from_secrets_manager() {
    let o = output("prod", "langgraph-platform");
    let ecs = common::tf_json(&o, "ecs.tf.json");
    let task = &ecs["resource"]["aws_ecs_task_definition"]["app"];
    assert_eq!(
        task["container_definitions"],
        "${jsonencode(local.app_container_definitions)}"
    );
    let defs = common::tf_json(&o, "ecs.tf.json")["locals"]["app_container_definitions"].clone();
    let env_names: Vec<&str> = defs[0]["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let secret_names: Vec<&str> = defs[0]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for secret in [
        "DATABASE_URL",
        "LANGSMITH_API_KEY",
        "JIRA_API_TOKEN",
        "JIRA_WEBHOOK_SECRET",
    ] {
        assert!(
            secret_names.contains(&secret),
            "{secret} injected as a secret"
        );
        assert!(!env_names.contains(&secret), "{secret} never a plain value");
    }
    assert_eq!(defs[0]["readonlyRootFilesystem"], true);
}

fn k8s_doc(o: &keel::ops::synth::Output, prefix: &str) -> serde_json::Value {
    let (_, body) = o
        .files
        .iter()
        .find(|(p, _)| {
            p.starts_with("k8s") && p.file_name().unwrap().to_str().unwrap().starts_with(prefix)
        })
        .unwrap_or_else(|| panic!("no k8s file {prefix}*"));
    serde_saphyr::from_str(body).expect("rendered YAML parses")
}

#[test]
fn prod_analytics_api_matches_the_seed_and_the_contract() {
    let o = output("prod", "analytics-api");
    // prod rolls out through an Argo Rollout, whose pod template is a Deployment's.
    let deployment = k8s_doc(&o, "40-rollout");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"],
        contract::LIVENESS_PATH
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        contract::READINESS_PATH
    );
    let ports: Vec<u64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ports,
        vec![
            u64::from(contract::HTTP_PORT),
            u64::from(contract::METRICS_PORT)
        ]
    );
    assert!(container["image"].as_str().unwrap().contains("@sha256:"));
    for var in contract::ENV_VARS.iter().filter(|v| v.secret) {
        let entry = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == var.name)
            .unwrap();
        assert!(
            entry["valueFrom"]["secretKeyRef"].is_object(),
            "{} from a secret",
            var.name
        );
    }
    let hpa = k8s_doc(&o, "60-horizontalpodautoscaler");
    assert_eq!(
        (
            hpa["spec"]["minReplicas"].as_u64(),
            hpa["spec"]["maxReplicas"].as_u64()
        ),
        (Some(3), Some(10))
    );
    k8s_doc(&o, "65-poddisruptionbudget");
    let ingress = k8s_doc(&o, "70-ingress");
    assert_eq!(ingress["spec"]["tls"][0]["hosts"][0], "api.example.com");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    k8s_doc(&o, "80-networkpolicy-analytics-api");
    let es = k8s_doc(&o, "30-externalsecret");
    assert_eq!(es["apiVersion"], "external-secrets.io/v1");
    k8s_doc(&o, "90-podmonitor");
    let cache = &of_type(&o, "aws_elasticache_replication_group")[0];
    assert_eq!(cache["at_rest_encryption_enabled"], true);
    assert_eq!(cache["transit_encryption_enabled"], true);
    assert_eq!(cache["automatic_failover_enabled"], true);
    assert_eq!(of_type(&o, "aws_db_instance")[0]["storage_encrypted"], true);
}

/// JWT secret rotation: JWT_SECRET_PREVIOUS comes from the property `previous` of its own
/// secret, which Terraform seeds as `{"previous":""}` (the workload reads empty as unset)
/// and never writes again. External Secrets fails the whole sync on a secret without a value
/// or a missing property, so a stack that is not rotating must still find both.
#[test]
fn analytics_api_reads_the_previous_jwt_secret_from_a_seeded_property() {
    for env in ["dev", "staging", "prod"] {
        let o = output(env, "analytics-api");
        let es = k8s_doc(&o, "30-externalsecret");
        let data = es["spec"]["data"].as_array().unwrap();
        let remote = |var: &str| {
            data.iter()
                .find(|d| d["secretKey"] == var)
                .map(|d| d["remoteRef"].clone())
                .unwrap_or_else(|| panic!("{env}: {var} not synced"))
        };
        for var in contract::ENV_VARS.iter().filter(|v| v.secret) {
            remote(var.name);
        }
        let previous = remote(contract::JWT_SECRET_PREVIOUS.name);
        let path = format!("analytics-api/{env}/jwt-secret-previous");
        assert_eq!(previous["key"], path.as_str(), "{env}");
        assert_eq!(previous["property"], "previous", "{env}");
        assert!(remote(contract::JWT_SECRET.name).get("property").is_none());

        let secrets = tf_json(&o, "secrets.tf.json");
        let res = &secrets["resource"];
        assert_eq!(
            res["aws_secretsmanager_secret"]["jwt_secret_previous"]["name"],
            path.as_str()
        );
        let version = &res["aws_secretsmanager_secret_version"]["jwt_secret_previous"];
        let seed: serde_json::Value =
            serde_json::from_str(version["secret_string"].as_str().unwrap()).unwrap();
        assert_eq!(seed, serde_json::json!({"previous": ""}), "{env}");
        assert_eq!(
            version["lifecycle"]["ignore_changes"],
            serde_json::json!(["secret_string"]),
            "{env}: an operator's value must survive the next apply"
        );
    }
}

#[test]
fn kustomization_lists_exactly_the_rendered_objects() {
    for o in common::outputs()
        .into_iter()
        .filter(|o| o.stack == "analytics-api")
    {
        let k = k8s_doc(&o, "kustomization");
        let listed: Vec<String> = k["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        let mut files: Vec<String> = o
            .files
            .keys()
            .filter(|p| p.starts_with("k8s"))
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .filter(|f| f != "kustomization.yaml")
            .collect();
        files.sort();
        assert_eq!(listed, files, "{}", o.env);
    }
}
