//! Regressions of the production review (issue 19), the data and cluster-lifecycle points:
//! database TLS, the version policy, node bootstrap order, cost per tier, MySQL for
//! whatsthecraic and aegistickets' database saturation. Each test is named for its point.

use crate::common;

use common::{output, resources};
use serde_json::Value;

/// The resource `ty.name` of a rendered root.
fn resource(o: &keel::ops::synth::Output, ty: &str, name: &str) -> Value {
    resources(o)
        .into_iter()
        .find(|(t, n, _)| t == ty && n == name)
        .map(|(_, _, b)| b)
        .unwrap_or_else(|| panic!("no {ty}.{name} in {} {}", o.env, o.stack))
}

fn depends_on(body: &Value) -> Vec<String> {
    body["depends_on"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn issue19_15_node_groups_wait_for_the_cni_and_its_role() {
    for env in ["dev", "staging", "prod"] {
        let o = output(env, "platform");
        let cni = resource(&o, "aws_eks_addon", "vpc_cni");
        // The CNI comes before any node, so it waits for no node group.
        assert!(
            depends_on(&cni)
                .iter()
                .all(|d| !d.starts_with("aws_eks_node_group.")),
            "{env}: vpc-cni waits for nodes"
        );
        let groups: Vec<(String, Value)> = resources(&o)
            .into_iter()
            .filter(|(t, _, _)| t == "aws_eks_node_group")
            .map(|(_, n, b)| (n, b))
            .collect();
        assert!(!groups.is_empty());
        for (name, group) in groups {
            let after = depends_on(&group);
            assert!(
                after.contains(&"aws_eks_addon.vpc_cni".to_owned()),
                "{env}: node group {name} does not wait for vpc-cni: {after:?}"
            );
            assert!(
                after
                    .iter()
                    .any(|d| d.starts_with("aws_iam_role_policy_attachment.vpc_cni")),
                "{env}: node group {name} does not wait for the CNI role's policy: {after:?}"
            );
        }
    }
}

/// `retention_in_days` of the log group named `name` in a rendered root.
fn retention_of(o: &keel::ops::synth::Output, name: &str) -> u64 {
    resources(o)
        .into_iter()
        .find(|(t, _, b)| t == "aws_cloudwatch_log_group" && b["name"] == name)
        .and_then(|(_, _, b)| b["retention_in_days"].as_u64())
        .unwrap_or_else(|| panic!("no log group {name} in {} {}", o.env, o.stack))
}

#[test]
fn issue19_16_audit_logs_are_kept_by_tier() {
    for (env, days) in [("dev", 30), ("staging", 90), ("prod", 365)] {
        let platform = output(env, "platform");
        assert_eq!(
            retention_of(&platform, &format!("/aws/eks/eks-{env}/cluster")),
            days,
            "{env}: EKS control-plane (audit) logs"
        );
        let ecs = output(env, "langgraph-platform");
        assert_eq!(
            retention_of(&ecs, &format!("/keel/lgp-{env}/ecs-exec")),
            days,
            "{env}: ECS exec session logs"
        );
    }
}

#[test]
fn issue19_16_the_platform_follows_the_environments_nat_layout() {
    for (env, nats) in [("dev", 1), ("staging", 1), ("prod", 3)] {
        let o = output(env, "platform");
        let found = resources(&o)
            .iter()
            .filter(|(t, _, _)| t == "aws_nat_gateway")
            .count();
        assert_eq!(found, nats, "{env}: NAT gateways of the cluster VPC");
    }
}

/// The rendered errors of prod.yaml with `from` replaced by `to` (once each).
fn prod_errors(edits: &[(&str, &str)]) -> Vec<String> {
    common::pin_today();
    let mut text = include_str!("../environments/prod.yaml").to_owned();
    for (from, to) in edits {
        assert!(text.contains(from), "the fixture still contains {from:?}");
        text = text.replacen(from, to, 1);
    }
    match keel::env::load_str(
        std::path::Path::new("environments/prod.yaml"),
        "prod",
        &text,
    ) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn issue19_14_a_cluster_past_standard_support_is_refused_where_it_is_set() {
    use keel::env::kubernetes_support::{Date, Status, TESTED_ON, status};
    // The tests judge support on TESTED_ON (2026-12-04), never on the clock: prod's 1.34
    // is past standard support and opted in to extended support.
    assert_eq!(TESTED_ON, Date::new(2026, 12, 4));
    assert!(prod_errors(&[]).is_empty());
    let standard = prod_errors(&[(
        "  support: extended # 1.34 left standard support on 2026-12-02; next change: 1.35, back to standard\n",
        "",
    )]);
    assert_eq!(standard.len(), 1, "{standard:#?}");
    assert!(
        standard[0].starts_with(
            "environments/prod.yaml:18:12: kubernetes.version: Kubernetes 1.34 left EKS standard support on 2026-12-02: upgrade the cluster one minor (kubernetes.version: \"1.35\", with the kube_proxy add-on of 1.35), or opt in to extended support with kubernetes.support: extended (until 2027-12-02, at $0.60 instead of $0.10 per cluster-hour"
        ),
        "{standard:#?}"
    );
    assert!(matches!(status("1.33", TESTED_ON), Status::Ended(_)));
}

#[test]
fn issue19_14_the_support_check_reads_keel_today_not_the_clock() {
    use keel::env::kubernetes_support::TODAY_VARIABLE;
    let check = |today: &str| {
        let out = common::keel_command()
            .env(TODAY_VARIABLE, today)
            .arg("--root")
            .arg(common::repo())
            .arg("check")
            .output()
            .expect("keel runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The day after dev's 1.35 leaves standard support, whatever the clock says.
    let (code, stderr) = check("2027-03-28");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("environments/dev.yaml:18:12: kubernetes.version: Kubernetes 1.35 left EKS standard support on 2027-03-27"),
        "{stderr}"
    );
    let (code, stderr) = check("28.03.2027");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("KEEL_TODAY is set to \"28.03.2027\": expected a date as YYYY-MM-DD"),
        "{stderr}"
    );
}

#[test]
fn issue19_14_the_tiers_run_one_minor_apart_at_most() {
    let versions: Vec<String> = ["dev", "staging", "prod"]
        .iter()
        .map(|env| {
            let o = output(env, "platform");
            resource(&o, "aws_eks_cluster", "main")["version"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let minors: Vec<u32> = versions
        .iter()
        .map(|v| v.strip_prefix("1.").unwrap().parse().unwrap())
        .collect();
    assert!(
        minors.iter().max().unwrap() - minors.iter().min().unwrap() <= 1,
        "{versions:?}"
    );
}

/// Every rendered Kubernetes object of a stack (all `k8s/` files, every document).
fn k8s_objects(o: &keel::ops::synth::Output) -> Vec<Value> {
    let mut out = Vec::new();
    for (path, body) in &o.files {
        if !path.starts_with("k8s") || path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for doc in body.split("\n---\n") {
            if let Ok(v) = serde_saphyr::from_str::<Value>(doc)
                && v.is_object()
            {
                out.push(v);
            }
        }
    }
    out
}

#[test]
fn issue19_19_aegistickets_db_saturation_from_an_exporter_against_a_known_max() {
    for env in ["dev", "staging", "prod"] {
        let o = output(env, "aegistickets");
        let params = resource(&o, "aws_db_parameter_group", "main");
        let max: u32 = params["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "max_connections")
            .unwrap_or_else(|| panic!("{env}: max_connections is not set in the parameter group"))
            ["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(max >= 50, "{env}: {max}");
        let objects = k8s_objects(&o);
        let rules: Vec<&Value> = objects
            .iter()
            .filter(|v| v["kind"] == "PrometheusRule")
            .flat_map(|v| v["spec"]["groups"].as_array().unwrap())
            .flat_map(|g| g["rules"].as_array().unwrap())
            .collect();
        let sli = rules
            .iter()
            .find(|r| r["record"] == "sli:db:saturation:connections")
            .unwrap_or_else(|| panic!("{env}: no sli:db:saturation:connections"));
        let expr = sli["expr"].as_str().unwrap();
        assert!(expr.contains("pg_stat_database_numbackends"), "{expr}");
        assert!(expr.ends_with(&format!("/ {max}")), "{expr}");
        promql_parser::parser::parse(expr).unwrap();
        let alert = rules
            .iter()
            .find(|r| r["alert"] == "AegisticketsDatabaseSaturation")
            .unwrap_or_else(|| panic!("{env}: no saturation alert"));
        assert!(
            alert["expr"]
                .as_str()
                .unwrap()
                .starts_with("sli:db:saturation:connections"),
            "{alert}"
        );
        // The input: postgres_exporter in the namespace, scraped by the cluster's Prometheus.
        let exporter = objects
            .iter()
            .find(|v| v["kind"] == "Deployment" && v["metadata"]["name"] == "postgres-exporter")
            .unwrap_or_else(|| panic!("{env}: no postgres-exporter Deployment"));
        let container = &exporter["spec"]["template"]["spec"]["containers"][0];
        assert!(
            container["image"].as_str().unwrap()
                == "quay.io/prometheuscommunity/postgres-exporter@sha256:38606faa38c54787525fb0ff2fd6b41b4cfb75d455c1df294927c5f611699b17"
        );
        assert!(
            container["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "DATA_SOURCE_NAME"
                    && e["valueFrom"]["secretKeyRef"].is_object())
        );
        assert!(
            objects
                .iter()
                .any(|v| v["kind"] == "ServiceMonitor"
                    && v["metadata"]["name"] == "postgres-exporter")
        );
    }
}

#[test]
fn issue19_9_langgraph_verifies_the_database_with_the_rds_ca_it_fetches_before_start() {
    for env in ["dev", "staging", "prod"] {
        let o = output(env, "langgraph-platform");
        let url = resources(&o)
            .into_iter()
            .find(|(t, n, _)| t == "aws_secretsmanager_secret_version" && n == "database_url")
            .map(|(_, _, b)| b["secret_string"].as_str().unwrap().to_owned())
            .unwrap();
        assert!(
            url.ends_with("?sslmode=verify-full&sslrootcert=/etc/rds-ca/global-bundle.pem"),
            "{env}: {url}"
        );
        let defs = &common::tf_json(&o, "ecs.tf.json")["locals"]["app_container_definitions"];
        let ca = defs
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "rds-ca")
            .unwrap_or_else(|| panic!("{env}: no rds-ca container"));
        assert_eq!(ca["essential"], false);
        let script = ca["command"][2].as_str().unwrap();
        assert!(
            script.contains("https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"),
            "{script}"
        );
        let app = &defs[0];
        assert!(
            app["dependsOn"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"containerName": "rds-ca", "condition": "SUCCESS"})),
            "{env}: {app}"
        );
        assert!(
            app["mountPoints"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"sourceVolume": "rds-ca", "containerPath": "/etc/rds-ca", "readOnly": true}))
        );
        // The login task verifies the server too.
        let login = &common::tf_json(&o, "database_login.tf.json")["locals"]["database_login_container_definitions"]
            [0];
        let env_vars = login["environment"].as_array().unwrap();
        assert!(
            env_vars.contains(&serde_json::json!({"name": "PGSSLMODE", "value": "verify-full"}))
        );
        assert!(
            login["command"][2]
                .as_str()
                .unwrap()
                .contains("truststore.pki.rds.amazonaws.com")
        );
    }
}

#[test]
fn issue19_9_the_login_job_verifies_the_database_with_the_rds_ca() {
    for (env, stack) in [("prod", "aegistickets"), ("prod", "analytics-api")] {
        let o = output(env, stack);
        let (_, body) = o
            .files
            .iter()
            .find(|(p, _)| p.starts_with("jobs") && p.to_string_lossy().contains("job-"))
            .unwrap_or_else(|| panic!("{stack}: no login Job"));
        let job: Value = serde_saphyr::from_str(body).unwrap();
        let c = &job["spec"]["template"]["spec"]["containers"][0];
        let env_vars = c["env"].as_array().unwrap();
        assert!(
            env_vars.contains(&serde_json::json!({"name": "PGSSLMODE", "value": "verify-full"})),
            "{stack}: {env_vars:?}"
        );
        assert!(
            c["command"][2]
                .as_str()
                .unwrap()
                .contains("truststore.pki.rds.amazonaws.com")
        );
    }
}

#[test]
fn issue19_22_every_stack_on_a_cluster_has_a_dashboard_with_its_saturation() {
    let outputs = common::outputs();
    let on_cluster: Vec<_> = outputs
        .iter()
        .filter(|o| o.stack != "platform" && o.files.keys().any(|p| p.starts_with("k8s")))
        .collect();
    // analytics-api, aegistickets, metrics-service and whatsthecraic, where they are on.
    assert!(on_cluster.len() >= 8, "{}", on_cluster.len());
    for o in on_cluster {
        let objects = k8s_objects(o);
        let map = objects
            .iter()
            .find(|v| {
                v["kind"] == "ConfigMap"
                    && v["metadata"]["name"] == format!("{}-dashboard", o.stack).as_str()
            })
            .unwrap_or_else(|| panic!("{}/{}: no dashboard ConfigMap", o.env, o.stack));
        assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
        let json = map["data"][format!("{}.json", o.stack)]
            .as_str()
            .expect("the dashboard JSON");
        let dashboard: Value = serde_json::from_str(json).expect("JSON");
        let saturation = dashboard["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .find(|p| p["title"] == "Saturation")
            .unwrap_or_else(|| panic!("{}/{}: no saturation panel", o.env, o.stack));
        let exprs: Vec<&str> = saturation["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .map(|t| t["expr"].as_str().expect("expr"))
            .collect();
        assert!(exprs[0].contains("container_cpu_usage_seconds_total"));
        assert!(exprs[1].contains("container_memory_working_set_bytes"));
        for e in &exprs {
            common::promql::selectors(e).unwrap_or_else(|err| panic!("{e}: {err}"));
        }
        // The database's connections where the stack records them (aegistickets).
        let db = exprs
            .iter()
            .any(|e| e.starts_with("sli:db:saturation:connections"));
        assert_eq!(db, o.stack == "aegistickets", "{}/{}", o.env, o.stack);
    }
}
