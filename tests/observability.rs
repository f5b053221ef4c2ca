//! Regressions of the production review (issue 19) on what the cluster stacks tell their
//! operators and whom they let in: burn-rate windows, workload labels, secret stores, rate
//! limits and dashboards. Each test is named for its point of the issue.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::promql::selectors;
use keel::ops::synth::Output;
use serde_json::Value;

/// Every Kubernetes document a stack renders (`k8s/` and its jobs), as (path, document).
fn k8s_docs(o: &Output) -> Vec<(String, Value)> {
    o.files
        .iter()
        .filter(|(p, _)| {
            (p.starts_with("k8s") || p.starts_with("jobs"))
                && p.extension().is_some_and(|e| e == "yaml")
                && !p.ends_with("kustomization.yaml")
        })
        .map(|(p, body)| {
            let doc = serde_saphyr::from_str(body).expect("rendered YAML parses");
            (p.display().to_string(), doc)
        })
        .collect()
}

/// The recording rules of a stack's `PrometheusRule`s as (record, expr).
fn recording_rules(o: &Output) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (_, doc) in k8s_docs(o) {
        if doc["kind"] != "PrometheusRule" {
            continue;
        }
        for g in doc["spec"]["groups"].as_array().expect("groups") {
            for r in g["rules"].as_array().expect("rules") {
                if let Some(record) = r["record"].as_str() {
                    out.push((
                        record.to_owned(),
                        r["expr"].as_str().expect("expr").to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn issue19_17_long_burn_windows_derive_from_recorded_rates_never_raw_series() {
    let hour = Duration::from_secs(3_600);
    let mut derived = 0;
    for o in common::outputs() {
        let rules = recording_rules(&o);
        let recorded: BTreeSet<&str> = rules.iter().map(|(r, _)| r.as_str()).collect();
        for (record, expr) in &rules {
            for s in selectors(expr).unwrap_or_else(|e| panic!("{record}: {expr}\n{e}")) {
                let Some(range) = s.range else { continue };
                if range <= hour {
                    continue;
                }
                assert!(
                    recorded.contains(s.name.as_str()),
                    "{} {}: {record} reads {}[{}s] from raw series: derive windows over 1h from a recorded rate",
                    o.env,
                    o.stack,
                    s.name,
                    range.as_secs()
                );
                derived += 1;
            }
        }
    }
    // Two series (bad and all events) for each of four windows over 1h, per objective.
    assert!(derived >= 2 * 4 * 5 * 3, "{derived} derived windows");
}

/// The workload kinds whose pods the seeds' `kubectl -l app=...` commands look for.
const WORKLOADS: [&str; 6] = [
    "Deployment",
    "Rollout",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
];

/// The pod template of a workload document.
fn pod_template(doc: &Value) -> &Value {
    if doc["kind"] == "CronJob" {
        &doc["spec"]["jobTemplate"]["spec"]["template"]
    } else {
        &doc["spec"]["template"]
    }
}

#[test]
fn issue20_every_workload_and_its_pods_carry_app_beside_the_recommended_labels() {
    let name = "app.kubernetes.io/name";
    let mut pods: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut workloads = 0;
    for o in common::outputs() {
        for (path, doc) in k8s_docs(&o) {
            let kind = doc["kind"].as_str().unwrap_or_default();
            if !WORKLOADS.contains(&kind) {
                continue;
            }
            workloads += 1;
            let at = format!("{} {} {path}", o.env, o.stack);
            let labels = &doc["metadata"]["labels"];
            let template = &pod_template(&doc)["metadata"]["labels"];
            assert!(labels[name].is_string(), "{at}: no {name}");
            assert_eq!(labels["app"], labels[name], "{at}: metadata app");
            assert_eq!(template["app"], labels[name], "{at}: pod template app");
            // Selectors keep exactly name and instance (immutable on Deployments), and
            // select the pod template.
            if let Some(selector) = doc["spec"]["selector"]["matchLabels"].as_object() {
                let keys: Vec<&str> = selector.keys().map(String::as_str).collect();
                assert_eq!(keys, ["app.kubernetes.io/instance", name], "{at}");
                for (k, v) in selector {
                    assert_eq!(&template[k], v, "{at}: selector {k} misses the pods");
                }
            }
            pods.insert((
                o.env.clone(),
                doc["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                template["app"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    assert!(workloads > 20, "{workloads} workloads");
    // The seeds' own commands, e.g. `kubectl logs -n tickets-dev -l app=backend`.
    for (ns, app) in [
        ("tickets-dev", "backend"),
        ("tickets-dev", "frontend"),
        ("whatsthecraic", "events-service"),
    ] {
        assert!(
            pods.contains(&("dev".to_owned(), ns.to_owned(), app.to_owned())),
            "kubectl -n {ns} -l app={app} finds no pod in dev"
        );
    }
    for app in ["analytics-api", "metrics-service"] {
        assert!(
            pods.iter().any(|(_, _, a)| a == app),
            "kubectl -l app={app} finds no pod"
        );
    }
}
