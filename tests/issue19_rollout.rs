//! Regressions of the production review of issue 19, on the workload and rollout side:
//! what the images need to start, what the quota must hold during a canary, what a canary
//! without data does, what a secret rotation restarts, and what the deploy identities may
//! do. Each test is named for its point of the issue and reads the rendered output.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use keel::ops::synth::Output;
use serde_json::{Value, json};

/// Every Kubernetes object of the stack's `k8s/` folder.
fn objects(o: &Output) -> Vec<Value> {
    o.files
        .iter()
        .filter(|(p, _)| p.starts_with("k8s") && p.extension().is_some_and(|e| e == "yaml"))
        .filter(|(p, _)| !p.ends_with("kustomization.yaml"))
        .map(|(_, body)| serde_saphyr::from_str(body).expect("rendered YAML parses"))
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

/// The one container of a workload's pod template.
fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

/// Mount path → emptyDir of a workload's pod template.
fn empty_dirs(workload: &Value) -> BTreeMap<String, Value> {
    let pod = &workload["spec"]["template"]["spec"];
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap(), &v["emptyDir"]))
        .collect();
    container(workload)["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let dir = volumes[m["name"].as_str().unwrap()];
            assert!(dir.is_object(), "{m}: not an emptyDir");
            (m["mountPath"].as_str().unwrap().to_owned(), dir.clone())
        })
        .collect()
}

#[test]
fn issue19_2_the_aegistickets_images_run_as_their_users_where_they_can_write() {
    for env in ["dev", "staging", "prod"] {
        let o = common::output(env, "aegistickets");
        let objects = objects(&o);
        // nginx:alpine's `nginx` user (uid and gid 101), which owns what the image prepared;
        // nginx writes its pid file under /var/run and its temp files under /var/cache/nginx.
        let frontend = find(&objects, "Deployment", "frontend");
        let pod = &frontend["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsUser"], 101, "{env}");
        assert_eq!(pod["securityContext"]["runAsGroup"], 101, "{env}");
        let c = container(frontend);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        let dirs = empty_dirs(frontend);
        for path in ["/var/cache/nginx", "/var/run", "/tmp"] {
            assert!(
                dirs[path]["sizeLimit"].is_string(),
                "{env}: {path}: {dirs:?}"
            );
        }
        assert_eq!(c["ports"][0]["containerPort"], 8080);
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{env} {probe}");
        }
        // The Flask backend (gunicorn on 8000 as `appuser`, uid 1000): /healthz, /readiness
        // (which checks the database) and /metrics on the same port.
        let backend = find(&objects, "Deployment", "backend");
        let pod = &backend["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsUser"], 1000, "{env}");
        let c = container(backend);
        assert_eq!(
            c["ports"],
            json!([{"name": "http", "containerPort": 8000, "protocol": "TCP"}])
        );
        assert_eq!(c["startupProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readiness");
        assert!(empty_dirs(backend).contains_key("/tmp"));
        assert_eq!(
            c["resources"],
            json!({"requests": {"cpu": "150m", "memory": "256Mi"},
                   "limits": {"cpu": "500m", "memory": "512Mi"}}),
            "the seed chart's sizes"
        );
        // A uid below 10000 is the image's, said so to checkov with the account's name.
        for w in [frontend, backend] {
            let annotations = w["metadata"]["annotations"].to_string();
            assert!(annotations.contains("CKV_K8S_40"), "{env}: {annotations}");
        }
        let monitor = find(&objects, "ServiceMonitor", "backend");
        assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
        assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    }
}

#[test]
fn issue19_3_ml_service_keeps_models_and_data_on_sized_empty_dirs() {
    for env in ["dev", "staging", "prod"] {
        let o = common::output(env, "whatsthecraic");
        let objects = objects(&o);
        let ml = find(&objects, "Deployment", "ml-service");
        let dirs = empty_dirs(ml);
        for path in ["/app/models", "/app/data"] {
            assert!(
                dirs.get(path).is_some_and(|d| d["sizeLimit"].is_string()),
                "{env}: {path} in {dirs:?}"
            );
        }
    }
}

/// A quantity in thousandths of its unit (millicores, or milli-bytes for memory).
fn milli(q: &Value) -> u128 {
    let s = q
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| q.to_string());
    let units: [(&str, u128); 9] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("m", 1),
    ];
    for (suffix, factor) in units {
        if let Some(n) = s.strip_suffix(suffix) {
            let n: u128 = n.parse().unwrap_or_else(|_| panic!("quantity {s}"));
            return if suffix == "m" { n } else { n * factor * 1000 };
        }
    }
    s.parse::<u128>().unwrap_or_else(|_| panic!("quantity {s}")) * 1000
}

/// Pods of `count` when `value` is an int-or-percent of it, rounded up (as surge is).
fn of(value: &Value, count: u128) -> u128 {
    match value {
        Value::String(p) => {
            let p: u128 = p.trim_end_matches('%').parse().unwrap();
            (count * p).div_ceil(100)
        }
        v => u128::from(v.as_u64().unwrap() as u32),
    }
}

#[test]
fn issue19_4_every_quota_holds_its_workloads_at_their_peak() {
    let (mut checked, mut jobs) = (0, 0);
    for o in common::outputs() {
        let objects = objects(&o);
        for quota in objects.iter().filter(|v| v["kind"] == "ResourceQuota") {
            let ns = &quota["metadata"]["namespace"];
            let hpa_max: BTreeMap<&str, u128> = objects
                .iter()
                .filter(|v| {
                    v["kind"] == "HorizontalPodAutoscaler" && &v["metadata"]["namespace"] == ns
                })
                .map(|h| {
                    (
                        h["spec"]["scaleTargetRef"]["name"].as_str().unwrap(),
                        u128::from(h["spec"]["maxReplicas"].as_u64().unwrap() as u32),
                    )
                })
                .collect();
            let mut need: BTreeMap<&str, u128> = BTreeMap::new();
            for w in objects.iter().filter(|v| {
                (v["kind"] == "Deployment" || v["kind"] == "Rollout")
                    && &v["metadata"]["namespace"] == ns
            }) {
                let name = w["metadata"]["name"].as_str().unwrap();
                let most = hpa_max
                    .get(name)
                    .copied()
                    .unwrap_or_else(|| u128::from(w["spec"]["replicas"].as_u64().unwrap() as u32));
                let strategy = if w["kind"] == "Rollout" {
                    &w["spec"]["strategy"]["canary"]
                } else {
                    &w["spec"]["strategy"]["rollingUpdate"]
                };
                // With traffic routing, Argo keeps the stable set whole while the canary
                // grows to all of the pods (unless the stable set scales down with it).
                let pods = if strategy.get("trafficRouting").is_some()
                    && strategy["dynamicStableScale"] != true
                {
                    2 * most
                } else {
                    most + of(&strategy["maxSurge"], most)
                };
                let resources = &container(w)["resources"];
                *need.entry("pods").or_default() += pods * 1000;
                for (key, q) in [
                    ("requests.cpu", &resources["requests"]["cpu"]),
                    ("requests.memory", &resources["requests"]["memory"]),
                    ("limits.cpu", &resources["limits"]["cpu"]),
                    ("limits.memory", &resources["limits"]["memory"]),
                ] {
                    *need.entry(key).or_default() += pods * milli(q);
                }
            }
            // Jobs applied into the namespace (the database login) run beside them.
            for job in o
                .files
                .iter()
                .filter(|(p, _)| p.starts_with("jobs") && p.to_string_lossy().contains("-job-"))
                .map(|(_, body)| serde_saphyr::from_str::<Value>(body).expect("YAML"))
                .filter(|j| &j["metadata"]["namespace"] == ns)
            {
                let resources = &job["spec"]["template"]["spec"]["containers"][0]["resources"];
                jobs += 1;
                *need.entry("pods").or_default() += 1000;
                for (key, q) in [
                    ("requests.cpu", &resources["requests"]["cpu"]),
                    ("requests.memory", &resources["requests"]["memory"]),
                    ("limits.cpu", &resources["limits"]["cpu"]),
                    ("limits.memory", &resources["limits"]["memory"]),
                ] {
                    *need.entry(key).or_default() += milli(q);
                }
            }
            for (key, needed) in need {
                let hard = milli(&quota["spec"]["hard"][key]);
                assert!(
                    hard >= needed,
                    "{} {}: quota {key} {hard} below the workloads' peak {needed} (milli)",
                    o.env,
                    o.stack
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "{checked} quotas");
    assert!(
        jobs >= 6,
        "the database login Jobs of aegistickets and analytics-api: {jobs}"
    );
}

#[test]
fn issue19_5_a_canary_without_data_is_inconclusive_and_repeated_inconclusive_stops_it() {
    let mut templates = 0;
    for o in common::outputs() {
        for t in objects(&o)
            .iter()
            .filter(|v| v["kind"] == "AnalysisTemplate")
        {
            for m in t["spec"]["metrics"].as_array().unwrap() {
                let success = m["successCondition"].as_str().unwrap();
                let failure = m["failureCondition"].as_str().unwrap_or_else(|| {
                    panic!(
                        "{} {}: {m}: no failureCondition, so no data passes",
                        o.env, o.stack
                    )
                });
                // Neither condition holds on an empty or NaN result: Argo counts it
                // inconclusive, never successful.
                for c in [success, failure] {
                    assert!(
                        c.starts_with("len(result) > 0 && !isNaN(result[0]) && "),
                        "{} {}: {c}",
                        o.env,
                        o.stack
                    );
                    assert!(!c.contains("len(result) == 0") && !c.contains("|| isNaN"));
                }
                let limit = m["inconclusiveLimit"].as_u64().expect("inconclusiveLimit");
                assert!((1..=3).contains(&limit), "{m}");
                let errors = m["consecutiveErrorLimit"]
                    .as_u64()
                    .expect("consecutiveErrorLimit");
                assert!((1..=3).contains(&errors), "{m}");
            }
            templates += 1;
        }
    }
    assert!(
        templates >= 2,
        "analytics-api and the whatsthecraic aggregator in prod"
    );
}

#[test]
fn issue19_6_a_rotation_restarts_each_reader_as_the_kind_it_is() {
    for env in ["dev", "staging", "prod"] {
        let o = common::output(env, "whatsthecraic");
        let plan = keel::ops::plan::plan(&keel::ops::Project::new(common::repo()), env)
            .unwrap_or_else(|e| panic!("the plan of {env}: {e}"));
        let step = plan.step("restart/whatsthecraic").expect("restart step");
        let restart = step.run.last().expect("the restart command").join(" ");
        let mut workloads = 0;
        for w in objects(&o) {
            let kind = match w["kind"].as_str().unwrap() {
                "Deployment" => "deployment",
                "Rollout" => "rollout.argoproj.io",
                _ => continue,
            };
            let name = w["metadata"]["name"].as_str().unwrap();
            let reader = format!(" {kind}/{name}={name}-secrets");
            assert!(
                restart.contains(&reader),
                "{env}: no `{reader}` in\n{restart}"
            );
            workloads += 1;
        }
        assert_eq!(workloads, 6);
        // A Rollout restarts through spec.restartAt (`kubectl rollout restart deployment`
        // would fail on it and, with `set -e`, leave the other readers on the old value).
        assert!(restart.contains("patch rollout.argoproj.io \"$name\" --type merge"));
        assert!(restart.contains("rollout restart deployment \"$name\""));
    }
}

/// The plural resource of a kind, as RBAC names it.
fn resource(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// (api group, resource) → verbs the Role grants.
fn grants(role: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for r in rule["resources"].as_array().unwrap() {
                let verbs = rule["verbs"].as_array().unwrap();
                out.entry((group.as_str().unwrap().into(), r.as_str().unwrap().into()))
                    .or_default()
                    .extend(verbs.iter().map(|v| v.as_str().unwrap().to_owned()));
            }
        }
    }
    out
}

#[test]
fn issue19_7_every_deploy_identity_may_apply_its_kinds_and_roll_and_undo_its_workloads() {
    let mut stacks = 0;
    for o in common::outputs() {
        let objects = objects(&o);
        if o.stack == "platform" || objects.iter().all(|v| v["kind"] != "Namespace") {
            continue;
        }
        // The access entry maps the deploy role to a group and grants no access policy.
        let entries: Vec<Value> = common::resources(&o)
            .into_iter()
            .filter(|(t, n, _)| t == "aws_eks_access_entry" && n == "github_deploy")
            .map(|(_, _, b)| b)
            .collect();
        assert_eq!(entries.len(), 1, "{} {}", o.env, o.stack);
        let group = entries[0]["kubernetes_groups"][0]
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "{} {}: the deploy role's access entry names no group",
                    o.env, o.stack
                )
            });
        assert!(
            !common::resources(&o)
                .iter()
                .any(|(t, n, _)| t == "aws_eks_access_policy_association" && n == "github_deploy"),
            "{} {}: no EKS access policy for the deploy role",
            o.env,
            o.stack
        );
        let binding = objects
            .iter()
            .find(|v| v["kind"] == "RoleBinding" && v["subjects"][0]["name"] == group)
            .unwrap_or_else(|| panic!("{} {}: no RoleBinding of {group}", o.env, o.stack));
        assert_eq!(binding["roleRef"]["kind"], "Role");
        let role = find(
            &objects,
            "Role",
            binding["roleRef"]["name"].as_str().unwrap(),
        );
        let granted = grants(role);
        let has = |group: &str, resource: &str, verbs: &[&str]| {
            let got = granted
                .get(&(group.to_owned(), resource.to_owned()))
                .cloned()
                .unwrap_or_default();
            for v in verbs {
                assert!(
                    got.contains(*v),
                    "{} {}: {v} {group}/{resource} missing from {granted:?}",
                    o.env,
                    o.stack
                );
            }
        };
        // Needed, derived from what the stack emits: apply every namespaced object the
        // namespace's administrator does not own...
        for v in &objects {
            let kind = v["kind"].as_str().unwrap();
            if [
                "Namespace",
                "ResourceQuota",
                "LimitRange",
                "Role",
                "RoleBinding",
            ]
            .contains(&kind)
            {
                continue;
            }
            let api = v["apiVersion"].as_str().unwrap();
            let api_group = api.rsplit_once('/').map_or("", |(g, _)| g);
            has(
                api_group,
                &resource(kind),
                &["get", "list", "create", "patch", "update"],
            );
            // ... change the image of each workload kind, follow it, and undo it.
            match kind {
                "Deployment" => has("apps", "deployments", &["watch"]),
                "Rollout" => {
                    has("argoproj.io", "rollouts", &["watch"]);
                    has("argoproj.io", "rollouts/status", &["patch"]);
                    has("argoproj.io", "analysisruns", &["get", "list", "watch"]);
                }
                _ => continue,
            }
            has("apps", "replicasets", &["get", "list", "watch"]);
            has("", "pods", &["get", "list", "watch"]);
        }
        // ... and nothing that reads secrets or grants rights.
        for ((g, r), verbs) in &granted {
            assert!(r != "secrets" && g != "rbac.authorization.k8s.io", "{r}");
            assert!(
                !verbs.contains("*") && !verbs.contains("escalate"),
                "{verbs:?}"
            );
        }
        stacks += 1;
    }
    assert!(stacks >= 12, "{stacks}");
}
