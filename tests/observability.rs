//! Regressions of the production review (issue 19) on what the cluster stacks tell their
//! operators and whom they let in: burn-rate windows, workload labels, secret stores, rate
//! limits and dashboards. Each test is named for its point of the issue.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::k8s_docs;
use common::promql::selectors;
use keel::ops::synth::Output;
use serde_json::Value;

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

/// The statements of the policy document `data.aws_iam_policy_document.<name>` of a root.
fn policy_statements(o: &Output, name: &str) -> Vec<Value> {
    for (path, body) in &o.files {
        if !path.starts_with("terraform") {
            continue;
        }
        let v: Value = serde_json::from_str(body).expect("JSON");
        if let Some(doc) = v["data"]["aws_iam_policy_document"].get(name) {
            return doc["statement"].as_array().cloned().unwrap_or_default();
        }
    }
    panic!("{} {}: no policy document {name}", o.env, o.stack)
}

/// Whether an IAM resource pattern (`*` any run) matches `arn`.
fn iam_matches(pattern: &str, arn: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == arn,
        Some((head, rest)) => {
            arn.starts_with(head)
                && (0..=arn.len() - head.len()).any(|i| iam_matches(rest, &arn[head.len() + i..]))
        }
    }
}

#[test]
fn issue19_8_every_stack_reads_only_its_own_prefix_through_its_own_store() {
    // (env, stack) -> (secret prefix, the reader's secret resources)
    let mut readers: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
    for o in common::outputs() {
        let docs: Vec<Value> = k8s_docs(&o)
            .into_iter()
            .filter(|(p, _)| p.starts_with("k8s"))
            .map(|(_, d)| d)
            .collect();
        assert!(
            docs.iter().all(|d| d["kind"] != "ClusterSecretStore"),
            "{} {}: a ClusterSecretStore lets any namespace read what its role reads",
            o.env,
            o.stack
        );
        let externals: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"] == "ExternalSecret")
            .collect();
        if externals.is_empty() {
            continue;
        }
        let at = format!("{} {}", o.env, o.stack);
        let find = |kind: &str, ns: &Value, name: &Value| {
            docs.iter()
                .find(|d| {
                    d["kind"] == kind
                        && d["metadata"]["namespace"] == *ns
                        && d["metadata"]["name"] == *name
                })
                .unwrap_or_else(|| panic!("{at}: no {kind} {ns}/{name}"))
                .clone()
        };
        let mut keys = Vec::new();
        for e in &externals {
            let ns = &e["metadata"]["namespace"];
            let store_ref = &e["spec"]["secretStoreRef"];
            assert_eq!(
                store_ref["kind"], "SecretStore",
                "{at}: {}",
                e["metadata"]["name"]
            );
            let store = find("SecretStore", ns, &store_ref["name"]);
            let aws = &store["spec"]["provider"]["aws"];
            assert!(
                aws.get("role").is_none(),
                "{at}: the controller must not assume the reader"
            );
            let sa = &aws["auth"]["jwt"]["serviceAccountRef"];
            assert!(
                sa.get("namespace").is_none(),
                "{at}: a namespaced store uses its own namespace"
            );
            let account = find("ServiceAccount", ns, &sa["name"]);
            let role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: the store's ServiceAccount has no IRSA role"));
            assert!(role_arn.ends_with("-secrets-reader"), "{at}: {role_arn}");
            // The reader trusts exactly that ServiceAccount's web identity.
            let trust = policy_statements(&o, "secrets_reader_trust");
            assert_eq!(trust.len(), 1, "{at}");
            assert_eq!(
                trust[0]["actions"],
                serde_json::json!(["sts:AssumeRoleWithWebIdentity"]),
                "{at}"
            );
            let subject = format!(
                "system:serviceaccount:{}:{}",
                ns.as_str().unwrap_or_default(),
                sa["name"].as_str().unwrap_or_default()
            );
            assert!(
                trust[0]["condition"]
                    .as_array()
                    .expect("conditions")
                    .iter()
                    .any(|c| {
                        c["variable"].as_str().is_some_and(|v| v.ends_with(":sub"))
                            && c["values"] == serde_json::json!([subject])
                    }),
                "{at}: the reader's trust is not pinned to {subject}"
            );
            for d in e["spec"]["data"].as_array().into_iter().flatten() {
                keys.push(
                    d["remoteRef"]["key"]
                        .as_str()
                        .expect("remote key")
                        .to_owned(),
                );
            }
        }
        let read: Vec<String> = policy_statements(&o, "secrets_reader")
            .iter()
            .filter(|s| {
                s["actions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "secretsmanager:GetSecretValue"))
            })
            .flat_map(|s| s["resources"].as_array().cloned().unwrap_or_default())
            .map(|r| r.as_str().expect("resource").to_owned())
            .collect();
        assert_eq!(read.len(), 1, "{at}: {read:?}");
        let prefix = read[0]
            .split_once(":secret:")
            .and_then(|(_, p)| p.strip_suffix("/*"))
            .unwrap_or_else(|| panic!("{at}: {} is no secret prefix", read[0]))
            .to_owned();
        for k in &keys {
            assert!(
                k.starts_with(&format!("{prefix}/")),
                "{at}: reads {k}, outside its reader's {prefix}/"
            );
        }
        readers.insert((o.env.clone(), o.stack.to_string()), (prefix, read));
    }
    assert_eq!(readers.len(), 4 * 3, "{:?}", readers.keys());
    // No stack's reader can read another stack's prefix.
    for ((env, a), (_, patterns)) in &readers {
        for ((env_b, b), (prefix_b, _)) in &readers {
            if a == b && env == env_b {
                continue;
            }
            for p in patterns {
                let arn = format!(
                    "{}:secret:{prefix_b}/x-AbCdEf",
                    p.split_once(":secret:").expect("arn").0
                );
                assert!(
                    !iam_matches(p, &arn),
                    "{env} {a} reads {env_b} {b}'s {prefix_b}/ through {p}"
                );
            }
        }
    }
    // Nor can the controller itself: it has no AWS role at all (every store, the login
    // Jobs' too, authenticates as its own ServiceAccount; tests/issue19_tls.rs).
    for env in ["dev", "staging", "prod"] {
        let o = common::output(env, "platform");
        let role = format!("eks-{env}-external-secrets");
        assert!(
            !o.files
                .values()
                .any(|body| body.contains(&format!("\"{role}\""))
                    || body.contains(&format!("role/{role}"))),
            "{env}: the External Secrets controller still has a role"
        );
    }
}

/// The platform's Helm values of `release` in `env`.
fn addon_values(env: &str, release: &str) -> Value {
    let o = common::output(env, "platform");
    let body = o
        .files
        .get(std::path::Path::new(&format!(
            "addons/{release}.values.yaml"
        )))
        .unwrap_or_else(|| panic!("{env}: no values of {release}"));
    serde_saphyr::from_str(body).expect("values parse")
}

#[test]
fn issue19_10_rate_limits_key_on_the_client_address_through_proxy_protocol() {
    let proxy_protocol = "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol";
    let mut limited = 0;
    for o in common::outputs() {
        for (path, doc) in k8s_docs(&o) {
            let at = format!("{} {} {path}", o.env, o.stack);
            let nginx_limit = doc["kind"] == "Ingress"
                && doc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/limit-rps"]
                    .is_string();
            let traefik_limit = doc["kind"] == "Middleware" && doc["spec"]["rateLimit"].is_object();
            if nginx_limit {
                // The NLB passes the client's address in a PROXY v2 header, and the
                // controller reads it from there (`limit-rps` keys on `$remote_addr`).
                let v = addon_values(&o.env, "ingress-nginx");
                assert_eq!(
                    v["controller"]["service"]["annotations"][proxy_protocol], "*",
                    "{at}"
                );
                assert_eq!(
                    v["controller"]["config"]["use-proxy-protocol"], "true",
                    "{at}"
                );
                limited += 1;
            }
            if traefik_limit {
                // Keyed on the remote address (no header, no hop depth), which Traefik takes
                // from the PROXY header of the NLB on both entry points, trusting the VPC only.
                assert!(
                    doc["spec"]["rateLimit"].get("sourceCriterion").is_none(),
                    "{at}"
                );
                let v = addon_values(&o.env, "traefik");
                assert_eq!(v["service"]["annotations"][proxy_protocol], "*", "{at}");
                for port in ["web", "websecure"] {
                    let trusted = v["ports"][port]["proxyProtocol"]["trustedIPs"]
                        .as_array()
                        .unwrap_or_else(|| panic!("{at}: {port} takes no PROXY header"));
                    assert_eq!(trusted.len(), 1, "{at}: {trusted:?}");
                    assert!(
                        trusted[0].as_str().is_some_and(|c| c.starts_with("10.")),
                        "{at}: {trusted:?}"
                    );
                }
                limited += 1;
            }
        }
    }
    assert!(limited >= 3 * 2, "{limited} rate limits");
}

/// Series kube-prometheus-stack scrapes in every cluster (cAdvisor through the kubelets,
/// kube-state-metrics), which saturation panels may read.
const SCRAPED: [&str; 3] = [
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_container_resource_limits",
];

#[test]
fn issue19_22_every_stack_with_objectives_has_a_dashboard_grafana_loads_reading_what_it_records() {
    let mut dashboards = BTreeSet::new();
    for o in common::outputs() {
        let rules = recording_rules(&o);
        let recorded: BTreeSet<&str> = rules.iter().map(|(r, _)| r.as_str()).collect();
        let docs = k8s_docs(&o);
        for (path, doc) in &docs {
            let Some(label) = doc["metadata"]["labels"]["grafana_dashboard"].as_str() else {
                continue;
            };
            let at = format!("{} {} {path}", o.env, o.stack);
            assert_eq!(doc["kind"], "ConfigMap", "{at}");
            // Grafana runs, and its sidecar loads ConfigMaps with this label from every
            // namespace.
            let v = addon_values(&o.env, "kube-prometheus-stack");
            let sidecar = &v["grafana"]["sidecar"]["dashboards"];
            assert_eq!(v["grafana"]["enabled"], true, "{at}");
            assert_eq!(sidecar["enabled"], true, "{at}");
            assert_eq!(sidecar["label"], "grafana_dashboard", "{at}");
            assert_eq!(sidecar["labelValue"].as_str(), Some(label), "{at}");
            assert_eq!(sidecar["searchNamespace"], "ALL", "{at}");
            let data = doc["data"].as_object().expect("data");
            assert_eq!(data.len(), 1, "{at}");
            let json = data.values().next().and_then(Value::as_str).expect("JSON");
            let dashboard: Value = serde_json::from_str(json).expect("dashboard JSON");
            let panels = dashboard["panels"].as_array().expect("panels");
            let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
            // Golden signals and budgets where the stack has objectives; saturation always.
            if !rules.is_empty() {
                for signal in ["Traffic", "Errors", "Latency", "Error budget left"] {
                    assert!(
                        titles.iter().any(|t| t.starts_with(signal)),
                        "{at}: no {signal} in {titles:?}"
                    );
                }
            }
            assert!(titles.contains(&"Saturation"), "{at}: {titles:?}");
            for p in panels {
                for t in p["targets"].as_array().expect("targets") {
                    let expr = t["expr"].as_str().expect("expr");
                    let names = selectors(expr).unwrap_or_else(|e| panic!("{at}: {expr}\n{e}"));
                    for s in names {
                        // Saturation also reads what kube-prometheus-stack scrapes from the
                        // kubelets (cAdvisor) and kube-state-metrics.
                        let scraped =
                            p["title"] == "Saturation" && SCRAPED.contains(&s.name.as_str());
                        assert!(
                            recorded.contains(s.name.as_str()) || scraped,
                            "{at}: panel {} reads {}, which the stack does not record",
                            p["title"],
                            s.name
                        );
                    }
                }
            }
            dashboards.insert((o.env.clone(), o.stack.to_string()));
        }
        if !rules.is_empty() {
            assert!(
                dashboards.contains(&(o.env.clone(), o.stack.to_string())),
                "{} {}: objectives but no dashboard",
                o.env,
                o.stack
            );
        }
    }
    // analytics-api and aegistickets (with objectives), whatsthecraic and metrics-service.
    assert_eq!(dashboards.len(), 4 * 3, "{dashboards:?}");
}
