//! `keel plan`: every object keel generates finds what it needs earlier in the plan, read
//! from the files under generated/ with rules written here, apart from the planner's own.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keel::ops::Project;
use keel::plan::{Capability, Kind, Plan, Step};
use serde_json::Value;

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

fn plan(env: &str) -> Plan {
    keel::ops::plan::plan(&Project::new(common::repo()), env)
        .unwrap_or_else(|e| panic!("the plan of {env}: {e}"))
}

/// Every generated Kubernetes object of `env` with the folder it is applied from (relative
/// to its stack) and its stack.
fn objects(env: &str) -> Vec<(String, String, Value)> {
    let root = common::repo().join("generated").join(env);
    let mut out = Vec::new();
    let mut stacks: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("generated/<env>")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    stacks.sort();
    for stack_dir in stacks {
        let stack = stack_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for file in yaml_files(&stack_dir) {
            let rel = file.strip_prefix(&stack_dir).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            if !(top == "k8s" || top == "jobs") || file.ends_with("kustomization.yaml") {
                continue;
            }
            let folder = rel.parent().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&file).unwrap();
            let value: Value =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            out.push((stack.clone(), folder, value));
        }
    }
    out
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(yaml_files(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out
}

/// The step that applies an object of `stack` from `folder`.
fn applying_step<'p>(plan: &'p Plan, stack: &str, folder: &str, kind: &str) -> &'p Step {
    let step = if folder == "k8s" && kind == "Namespace" {
        plan.step(&format!("namespace/{stack}"))
    } else if folder == "k8s" {
        plan.step(&format!("apply/{stack}"))
    } else {
        plan.steps.iter().find(|s| {
            s.kind == Kind::Job
                && s.stack == stack
                && s.run.iter().flatten().any(|a| a.ends_with(folder))
        })
    };
    step.unwrap_or_else(|| panic!("no step of {} applies {stack}/{folder}", plan.env))
}

/// What an object needs before it, by this test's own reading of the object.
fn needs(object: &Value) -> Vec<Capability> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let api = object["apiVersion"].as_str().unwrap_or_default();
    let meta = &object["metadata"];
    let mut out = Vec::new();
    let group = api.rsplit_once('/').map_or("", |(g, _)| g);
    let kubernetes_own = group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io");
    if !kubernetes_own {
        out.push(Capability::ApiGroup(group.to_owned()));
    }
    if let Some(ns) = meta["namespace"].as_str()
        && !["default", "kube-system", "kube-public", "kube-node-lease"].contains(&ns)
    {
        out.push(Capability::Namespace(ns.to_owned()));
    }
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match kind {
        "Ingress" => {
            out.extend(text(&object["spec"]["ingressClassName"]).map(Capability::IngressClass));
            out.extend(
                text(&meta["annotations"]["cert-manager.io/cluster-issuer"])
                    .map(Capability::ClusterIssuer),
            );
        }
        "HorizontalPodAutoscaler"
            if object["spec"]["metrics"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["type"] == "Resource")) =>
        {
            out.push(Capability::ResourceMetrics);
        }
        "NetworkPolicy" => out.push(Capability::NetworkPolicyEnforcement),
        "ServiceMonitor" | "PodMonitor" | "PrometheusRule" => {
            let labels: BTreeMap<String, String> = meta["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Capability::Prometheus(labels));
        }
        "ExternalSecret" => {
            let store = &object["spec"]["secretStoreRef"];
            let name = text(&store["name"]).unwrap_or_default();
            out.push(if store["kind"] == "ClusterSecretStore" {
                Capability::ClusterSecretStore(name)
            } else {
                Capability::SecretStore(text(&meta["namespace"]).unwrap_or_default(), name)
            });
        }
        _ => {}
    }
    out
}

/// Whether the folder an object is applied from itself creates what it needs (a
/// SecretStore beside its ExternalSecrets): one `kubectl apply -k` makes both, and the
/// controller reconciles the one after the other.
fn made_in(all: &[(String, String, Value)], stack: &str, folder: &str, need: &Capability) -> bool {
    all.iter()
        .filter(|(s, f, _)| s == stack && f == folder)
        .any(|(_, _, o)| {
            let name = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match o["kind"].as_str() {
                Some("SecretStore") => *need == Capability::SecretStore(ns, name),
                Some("ClusterSecretStore") => *need == Capability::ClusterSecretStore(name),
                _ => false,
            }
        })
}

#[test]
fn every_object_finds_its_prerequisites_earlier_in_the_plan() {
    let mut checked = 0;
    for env in ENVS {
        let plan = plan(env);
        let all = objects(env);
        for (stack, folder, object) in &all {
            let (stack, folder) = (stack.as_str(), folder.as_str());
            let kind = object["kind"].as_str().unwrap_or_default().to_owned();
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let step = applying_step(&plan, stack, folder, &kind);
            for need in needs(object) {
                if kind == "Namespace" || made_in(&all, stack, folder, &need) {
                    continue;
                }
                let earlier = plan
                    .steps
                    .iter()
                    .filter(|s| s.layer < step.layer)
                    .find(|s| s.provides.iter().any(|p| p.satisfies(&need)));
                assert!(
                    earlier.is_some(),
                    "{env}: {kind} {name} of {stack} (step {}, layer {}) needs {need}, which no earlier step provides",
                    step.id,
                    step.layer
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} prerequisites checked");
}

#[test]
fn the_database_login_runs_before_the_workloads_that_use_it() {
    let mut logins = 0;
    for env in ENVS {
        let plan = plan(env);
        for job in plan.steps.iter().filter(|s| {
            s.provides
                .iter()
                .any(|p| matches!(p, Capability::DatabaseLogin(..)))
        }) {
            logins += 1;
            // The stack's workloads: its Kubernetes apply, or for a stack without one, its
            // job must come after the stack's Terraform root (the task it starts).
            if let Some(apply) = plan.step(&format!("apply/{}", job.stack)) {
                assert!(
                    job.layer < apply.layer,
                    "{env}: {} (layer {}) must come before {} (layer {})",
                    job.id,
                    job.layer,
                    apply.id,
                    apply.layer
                );
            }
            let root = plan.step(&format!("terraform/{}", job.stack)).unwrap();
            assert!(root.layer < job.layer, "{env}: {} before its root", job.id);
        }
    }
    assert!(
        logins >= 9,
        "three logins in each of three environments, found {logins}"
    );
}

#[test]
fn the_deploy_workflow_runs_only_the_plans_steps() {
    let workflow =
        std::fs::read_to_string(common::repo().join(".github/workflows/deploy.yml")).unwrap();
    for env in ENVS {
        let plan = plan(env);
        let w = plan.workflow();
        assert!(
            w.terraform.len() <= 3,
            "{env}: {} Terraform layers, deploy.yml has slots for 3",
            w.terraform.len()
        );
        assert!(
            w.runner.is_some(),
            "{env}: the cluster steps need a runner in the VPC"
        );
        // Every step of the plan is run by the workflow: Terraform roots by layer, the rest
        // in the cluster group, and nothing twice.
        let mut run: Vec<String> = w
            .terraform
            .iter()
            .flatten()
            .map(|s| format!("terraform/{s}"))
            .chain(w.cluster.iter().cloned())
            .collect();
        run.sort();
        let mut all: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
        all.sort();
        assert_eq!(run, all, "{env}");
    }
    // The workflow itself runs no terraform, kubectl or helm command of its own: only keel.
    for line in workflow.lines().map(str::trim) {
        for tool in ["terraform ", "kubectl ", "helm "] {
            assert!(
                !line.starts_with(tool) && !line.contains(&format!("| {tool}")),
                "deploy.yml runs `{line}` itself; it must run keel plan's steps"
            );
        }
    }
    assert!(workflow.contains("--exec \"terraform/$STACK\" --phase plan"));
    assert!(workflow.contains("--exec \"terraform/$STACK\" --phase apply"));
    assert!(workflow.contains("--group cluster"));
}

#[test]
fn plan_prints_text_and_json_and_refuses_a_stale_tree() {
    let out = common::keel_command()
        .args(["plan", "prod", "--format", "json"])
        .current_dir(common::repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["env"], "prod");
    assert_eq!(json["steps"][0]["id"], "terraform/langgraph-platform");
    assert_eq!(json["steps"][1]["id"], "terraform/platform");
    assert_eq!(json["workflow"]["runner"], "eks-prod-deploy-runner");
    assert_eq!(json["tools"]["kubectl"], "v1.34.0");
    let text = common::keel_command()
        .args(["plan", "prod"])
        .current_dir(common::repo())
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("keel plan prod: "), "{text}");
    assert!(
        text.contains("\nlayer 1\n  terraform/langgraph-platform"),
        "{text}"
    );

    // A copy of the project whose generated/ lags behind its environment file.
    let dir = tempfile::tempdir().unwrap();
    for sub in ["environments", "generated"] {
        copy_tree(&common::repo().join(sub), &dir.path().join(sub));
    }
    let prod = dir.path().join("environments/prod.yaml");
    let text = std::fs::read_to_string(&prod).unwrap();
    std::fs::write(
        &prod,
        text.replace(
            "flow_log_retention_days: 365",
            "flow_log_retention_days: 400",
        ),
    )
    .unwrap();
    let stale = common::keel_command()
        .args(["plan", "prod"])
        .current_dir(dir.path())
        .env("CI", "true")
        .output()
        .unwrap();
    assert_eq!(stale.status.code(), Some(2));
    let err = String::from_utf8_lossy(&stale.stderr);
    assert!(err.contains("generated/ is stale"), "{err}");
}

#[test]
fn a_failed_step_is_named_and_exits_4() {
    // `terraform` is not on this PATH: the step cannot start.
    let out = common::keel_command()
        .args([
            "plan",
            "dev",
            "--exec",
            "terraform/platform",
            "--phase",
            "plan",
        ])
        .current_dir(common::repo())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("step terraform/platform failed: `terraform -chdir=generated/dev/platform/terraform init -input=false` could not start"),
        "{err}"
    );
    let unknown = common::keel_command()
        .args(["plan", "dev", "--exec", "terraform/nothing"])
        .current_dir(common::repo())
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Index of the first command of `step` whose words satisfy `matches`.
fn command_index(step: &Step, what: &str, matches: impl Fn(&str) -> bool) -> usize {
    step.run
        .iter()
        .position(|c| matches(&c.join(" ")))
        .unwrap_or_else(|| panic!("{}: no command that {what}: {:#?}", step.id, step.run))
}

#[test]
fn a_password_rotation_reaches_the_login_then_the_apps_in_order() {
    let plan = plan("prod");
    let mut cluster_logins = Vec::new();
    for job in plan.steps.iter().filter(|s| {
        s.provides
            .iter()
            .any(|p| matches!(p, Capability::DatabaseLogin(..)))
    }) {
        let stack = &job.stack;
        if plan.step(&format!("apply/{stack}")).is_none() {
            // An ECS login task: ECS reads the task's secrets from Secrets Manager at start,
            // so there is no synced copy to refresh.
            assert!(
                !job.run.iter().flatten().any(|a| a.contains("force-sync")),
                "{}",
                job.id
            );
            continue;
        }
        cluster_logins.push(stack.clone());
        // sync -> wait: one command annotates the login's ExternalSecret and waits for a
        // new refreshTime with Ready=True, within a bound.
        let sync = command_index(job, "force-syncs the login's ExternalSecret", |c| {
            c.contains("external-secrets.io/force-sync=")
                && c.contains("{.status.refreshTime}")
                && c.contains("@.type==\"Ready\"")
                && c.ends_with(&format!(
                    " database-login {}",
                    keel::plan::resync::SYNC_TIMEOUT_SECONDS
                ))
        });
        let store = command_index(job, "applies the folder without its Job", |c| {
            c.starts_with("kubectl apply --filename") && c.contains("externalsecret-database-login")
        });
        let delete = command_index(job, "deletes the finished Job", |c| {
            c.starts_with("kubectl delete job database-login-")
        });
        let run = command_index(job, "applies the Job", |c| {
            c == format!("kubectl apply -k generated/prod/{stack}/jobs/database-login")
        });
        let done = command_index(job, "waits for the Job", |c| {
            c.starts_with("kubectl wait --for=condition=Complete job/database-login-")
        });
        assert!(
            store < sync && sync < delete && delete < run && run < done,
            "{}: {:#?}",
            job.id,
            job.run
        );
        assert!(
            !job.run[store].join(" ").contains("40-job-"),
            "the Job must not start before the sync"
        );
        // job -> app sync -> restart, after the workloads are applied.
        let restart = plan
            .step(&format!("restart/{stack}"))
            .unwrap_or_else(|| panic!("no restart/{stack}"));
        let apply = plan.step(&format!("apply/{stack}")).unwrap();
        assert!(job.layer < apply.layer && apply.layer < restart.layer);
        assert!(restart.after.contains(&apply.id), "{:?}", restart.after);
        let app_sync = command_index(restart, "force-syncs an app ExternalSecret", |c| {
            c.contains("external-secrets.io/force-sync=")
        });
        let bounce = command_index(restart, "restarts the readers", |c| {
            c.contains("rollout restart deployment") && c.contains("restartAt")
        });
        assert!(app_sync < bounce, "{}: {:#?}", restart.id, restart.run);
        let last_sync = restart
            .run
            .iter()
            .rposition(|c| c.join(" ").contains("external-secrets.io/force-sync="))
            .unwrap();
        assert!(last_sync < bounce, "every sync before the first restart");
        // Every workload of the stack reading a synced Secret is restarted.
        let restarted = restart.run[bounce].join(" ");
        for (_, _, object) in objects("prod")
            .iter()
            .filter(|(s, f, _)| s == stack && f == "k8s")
        {
            let kind = match object["kind"].as_str() {
                Some("Deployment") => "deployment",
                Some("Rollout") => "rollout.argoproj.io",
                _ => continue,
            };
            let text = object.to_string();
            if text.contains("secretKeyRef") || text.contains("secretRef") {
                let name = object["metadata"]["name"].as_str().unwrap();
                assert!(
                    restarted.contains(&format!(" {kind}/{name}=")),
                    "{}: {kind}/{name} not restarted: {restarted}",
                    restart.id
                );
            }
        }
    }
    assert_eq!(
        cluster_logins,
        ["aegistickets", "analytics-api", "whatsthecraic"],
        "the stacks with a login Job on the cluster"
    );
}
