//! One rollout setting, two platforms: CodeDeploy on ECS (langgraph-platform) and an Argo
//! Rollouts canary on Kubernetes (analytics-api) follow the same traffic schedule.

use crate::common;

use std::path::Path;

use common::{of_type, temp_project};
use keel::ops::Project;
use keel::ops::synth::{Output, Selection, build};
use serde_json::{Value, json};

/// (percent, minutes before the next shift), ending with (100, 0).
type Schedule = Vec<(u64, u64)>;

fn k8s(o: &Output, file: &str) -> Value {
    let body = o
        .files
        .get(Path::new("k8s").join(file).as_path())
        .unwrap_or_else(|| panic!("no k8s/{file} in {} {}", o.env, o.stack));
    serde_saphyr::from_str(body).expect("YAML")
}

/// The prod environment with both stacks given `strategy` (a YAML flow mapping).
fn prod_with(strategy: &str) -> Vec<Output> {
    let dir = temp_project();
    let path = dir.path().join("environments/prod.yaml");
    let text = std::fs::read_to_string(&path).expect("prod.yaml");
    let ecs = "        strategy:\n          canary: {percent: 10, wait_minutes: 15}\n";
    let kube = "      strategy:\n        steps:\n          - {percent: 10, wait_minutes: 5}\n          - {percent: 25, wait_minutes: 5}\n          - {percent: 50, wait_minutes: 10}\n";
    assert!(
        text.contains(ecs) && text.contains(kube),
        "prod.yaml changed"
    );
    let text = text
        .replace(ecs, &format!("        strategy: {strategy}\n"))
        .replace(kube, &format!("      strategy: {strategy}\n"));
    std::fs::write(&path, text).expect("write");
    build(
        &Project::new(dir.path().to_path_buf()),
        &Selection::default(),
    )
    .expect("the environment builds")
    .into_iter()
    .filter(|o| o.env == "prod")
    .collect()
}

/// The schedule CodeDeploy runs: the deployment group's config, expanded as CodeDeploy does.
fn codedeploy_schedule(outputs: &[Output]) -> Schedule {
    let o = outputs
        .iter()
        .find(|o| o.stack == "langgraph-platform")
        .expect("langgraph-platform");
    let group = &of_type(o, "aws_codedeploy_deployment_group")[0];
    let chosen = group["deployment_config_name"].as_str().expect("config");
    if chosen == "CodeDeployDefault.ECSAllAtOnce" {
        return vec![(100, 0)];
    }
    let label = chosen
        .trim_start_matches("${aws_codedeploy_deployment_config.")
        .trim_end_matches(".id}");
    let (_, _, config) = common::resources(o)
        .into_iter()
        .find(|(ty, name, _)| ty == "aws_codedeploy_deployment_config" && name == label)
        .unwrap_or_else(|| panic!("config {label} not found"));
    let routing = &config["traffic_routing_config"][0];
    let mut out = Vec::new();
    match routing["type"].as_str() {
        Some("TimeBasedCanary") => {
            let c = &routing["time_based_canary"][0];
            out.push((
                c["percentage"].as_u64().unwrap(),
                c["interval"].as_u64().unwrap(),
            ));
        }
        Some("TimeBasedLinear") => {
            let c = &routing["time_based_linear"][0];
            let (step, every) = (
                c["percentage"].as_u64().unwrap(),
                c["interval"].as_u64().unwrap(),
            );
            out.extend(
                (1..)
                    .map(|k| k * step)
                    .take_while(|p| *p < 100)
                    .map(|p| (p, every)),
            );
        }
        other => panic!("unexpected traffic routing {other:?}"),
    }
    out.push((100, 0));
    out
}

/// The schedule the Argo Rollout runs: its setWeight/pause steps, then all of the traffic.
fn argo_schedule(outputs: &[Output]) -> Schedule {
    let o = outputs
        .iter()
        .find(|o| o.stack == "analytics-api")
        .expect("analytics-api");
    let rollout = k8s(o, "40-rollout-analytics-api.yaml");
    let mut out = Vec::new();
    for step in rollout["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .expect("steps")
    {
        if let Some(w) = step["setWeight"].as_u64() {
            out.push((w, 0));
        } else {
            let d = step["pause"]["duration"].as_str().expect("duration");
            let minutes: u64 = d.trim_end_matches('m').parse().expect("minutes");
            out.last_mut().expect("a weight before a pause").1 = minutes;
        }
    }
    out.push((100, 0));
    out
}

#[test]
fn one_value_gives_the_same_schedule_on_ecs_and_kubernetes() {
    for (strategy, expected) in [
        (
            "{canary: {percent: 10, wait_minutes: 15}}",
            vec![(10, 15), (100, 0)],
        ),
        (
            "{linear: {percent: 20, every_minutes: 3}}",
            vec![(20, 3), (40, 3), (60, 3), (80, 3), (100, 0)],
        ),
        (
            "{steps: [{percent: 25, wait_minutes: 4}]}",
            vec![(25, 4), (100, 0)],
        ),
    ] {
        let outputs = prod_with(strategy);
        assert_eq!(codedeploy_schedule(&outputs), expected, "ECS, {strategy}");
        assert_eq!(argo_schedule(&outputs), expected, "Kubernetes, {strategy}");
    }
}

#[test]
fn analytics_api_rolls_out_as_an_analysed_canary_in_prod() {
    let outputs = build(&Project::new(common::repo()), &Selection::default()).expect("builds");
    let o = outputs
        .iter()
        .find(|o| o.env == "prod" && o.stack == "analytics-api")
        .expect("prod analytics-api");
    assert!(
        !o.files
            .keys()
            .any(|p| p.to_string_lossy().contains("deployment-")),
        "the Rollout replaces the Deployment"
    );
    let rollout = k8s(o, "40-rollout-analytics-api.yaml");
    let canary = &rollout["spec"]["strategy"]["canary"];
    assert_eq!(canary["stableService"], "analytics-api");
    assert_eq!(canary["canaryService"], "analytics-api-canary");
    assert_eq!(
        canary["trafficRouting"],
        json!({"nginx": {"stableIngress": "analytics-api"}})
    );
    assert_eq!(
        canary["analysis"]["args"][0]["valueFrom"]["podTemplateHashValue"],
        "Latest"
    );
    assert!(rollout["spec"].get("replicas").is_none(), "the HPA owns it");
    let hpa = k8s(o, "60-horizontalpodautoscaler-analytics-api.yaml");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "analytics-api"})
    );
    let canary_svc = k8s(o, "50-service-analytics-api-canary.yaml");
    let stable_svc = k8s(o, "50-service-analytics-api.yaml");
    assert_eq!(canary_svc["spec"]["ports"], stable_svc["spec"]["ports"]);

    // The analysis selects the canary's revision by the label the PodMonitor copies onto
    // every series, and uses the contract's metric names and the env's thresholds.
    let analysis = k8s(o, "40-analysistemplate-analytics-api-canary.yaml");
    let metrics = analysis["spec"]["metrics"].as_array().expect("metrics");
    let success = &metrics[0];
    let query = success["provider"]["prometheus"]["query"].as_str().unwrap();
    assert!(query.contains(&format!(
        "{}{{",
        keel_workload_contract::HTTP_REQUESTS.exposed
    )));
    assert!(query.contains("rollouts_pod_template_hash=\"{{args.canary-hash}}\""));
    assert!(query.contains(&format!(
        "{}!~\"5..\"",
        keel_workload_contract::STATUS_LABEL
    )));
    assert!(
        success["successCondition"]
            .as_str()
            .unwrap()
            .ends_with("result[0] >= 0.995")
    );
    assert!(
        metrics[1]["successCondition"]
            .as_str()
            .unwrap()
            .ends_with("result[0] <= 0.5")
    );
    let monitor = k8s(o, "90-podmonitor-analytics-api.yaml");
    assert_eq!(
        monitor["spec"]["podTargetLabels"],
        json!(["rollouts-pod-template-hash"])
    );
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert!(
        !o.files
            .keys()
            .any(|p| p.to_string_lossy().contains("servicemonitor")),
        "scraped once, by pod"
    );

    // dev keeps a plain Deployment.
    let dev = outputs
        .iter()
        .find(|o| o.env == "dev" && o.stack == "analytics-api")
        .expect("dev analytics-api");
    assert!(
        dev.files
            .keys()
            .any(|p| p.to_string_lossy().contains("40-deployment-"))
    );
}

#[test]
fn a_canary_without_analysis_on_kubernetes_is_refused() {
    let dir = temp_project();
    let path = dir.path().join("environments/prod.yaml");
    let text = std::fs::read_to_string(&path).expect("prod.yaml");
    let analysis =
        "      analysis:\n        success_rate_percent: 99.5\n        p99_latency_ms: 500\n";
    assert!(text.contains(analysis));
    std::fs::write(&path, text.replace(analysis, "")).expect("write");
    let err = build(
        &Project::new(dir.path().to_path_buf()),
        &Selection::default(),
    )
    .expect_err("refused")
    .to_string();
    assert!(
        err.contains("stacks.analytics-api.rollout.analysis")
            && err.contains("the analysis is what rolls a canary back"),
        "{err}"
    );
}

#[test]
fn no_data_stops_a_deployment_on_both_platforms_after_the_same_minutes() {
    let outputs = build(&Project::new(common::repo()), &Selection::default()).expect("builds");
    let find = |stack: &str| {
        outputs
            .iter()
            .find(|o| o.env == "prod" && o.stack == stack)
            .expect("prod stack")
    };
    let ecs = find("langgraph-platform");
    let group = &of_type(ecs, "aws_codedeploy_deployment_group")[0];
    let alarms = common::resources(ecs);
    let gating: Vec<(String, Value)> = group["alarm_configuration"][0]["alarms"]
        .as_array()
        .expect("alarms")
        .iter()
        .map(|a| {
            let name = a
                .as_str()
                .and_then(|a| a.strip_prefix("${aws_cloudwatch_metric_alarm."))
                .and_then(|a| a.strip_suffix(".alarm_name}"))
                .expect("an alarm's name");
            let (_, _, body) = alarms
                .iter()
                .find(|(t, n, _)| t == "aws_cloudwatch_metric_alarm" && n == name)
                .expect("the alarm exists");
            (name.to_owned(), body.clone())
        })
        .collect();
    // Issue 19 point 5: no gating alarm reads a minute without data as a pass, but for
    // 5XX counts, which CloudWatch publishes only when there are errors.
    for (name, body) in &gating {
        let missing = body["treat_missing_data"].as_str().expect("set");
        if missing == "notBreaching" {
            assert!(body.to_string().contains("5XX_Count"), "{name}: {body:#}");
        } else {
            assert!(matches!(missing, "breaching" | "missing"), "{name}");
        }
    }
    // A deployment without requests is stopped: the no-traffic alarm breaches after as many
    // minutes as Argo's analysis tolerates inconclusive measurements, plus the one that
    // decides.
    let (_, no_traffic) = gating
        .iter()
        .find(|(n, _)| n == "deploy_no_traffic")
        .expect("a no-traffic alarm gates the deployment");
    assert_eq!(no_traffic["metric_name"], "RequestCount");
    assert_eq!(no_traffic["comparison_operator"], "LessThanThreshold");
    assert_eq!(no_traffic["treat_missing_data"], "breaching");
    let template = k8s(
        find("analytics-api"),
        "40-analysistemplate-analytics-api-canary.yaml",
    );
    for metric in template["spec"]["metrics"].as_array().expect("metrics") {
        assert_eq!(
            no_traffic["evaluation_periods"].as_i64(),
            metric["inconclusiveLimit"].as_i64().map(|n| n + 1),
            "{metric:#}"
        );
    }
}
