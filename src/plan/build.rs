//! Builds one environment's deploy plan from its built stacks: a step per Terraform root,
//! per cluster add-on, per stack step (one-off jobs) and per Kubernetes folder, each
//! ordered after the steps that provide what it requires.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::requirements;
use super::{Action, Capability, Reach, Source, Wait};
use crate::exports::StackLinks;
use crate::stack::Stack;

/// How long `kubectl wait` and `helm --wait` wait for one thing before the step fails.
const WAIT: &str = "15m";
/// How long a progressive rollout may take (its pauses and analyses) before the step fails.
const ROLLOUT_WAIT: &str = "90m";

/// What kind of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `terraform init`, `plan`, `apply` of one root.
    Terraform,
    /// Credentials for the cluster (`aws eks update-kubeconfig`).
    Login,
    /// `helm upgrade --install` of one add-on chart.
    Install,
    /// `kubectl apply` of the Namespaces a stack creates, before its jobs and objects.
    Namespace,
    /// A stack's one-off step (a database-login job or task).
    Job,
    /// `kubectl apply -k` of a stack's `k8s/` folder.
    Apply,
    /// Force-sync of a stack's ExternalSecrets, then a restart of the workloads whose
    /// Secrets changed ([`super::resync`]).
    Restart,
}

/// One command: a program and its arguments, run from the repository root (no shell).
pub type Command = Vec<String>;

/// A requirement of a step and the step that provides it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Need {
    /// What is required, as its provider gives it.
    pub capability: Capability,
    /// The step that provides it.
    pub from: String,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Unique id, e.g. `terraform/platform`, `addon/cert-manager`, `apply/analytics-api`.
    pub id: String,
    /// What kind of step.
    pub kind: Kind,
    /// The stack it belongs to.
    pub stack: String,
    /// Where it must run.
    pub reach: Reach,
    /// One line saying what it does.
    pub description: String,
    /// Layer (1 = first): every step of a layer can run in parallel once the layers before
    /// it are done.
    pub layer: usize,
    /// The steps that must be done first (direct prerequisites).
    pub after: Vec<String>,
    /// Each requirement and the step that provides it.
    pub requires: Vec<Need>,
    /// What it gives the steps after it.
    pub provides: Vec<Capability>,
    /// What is waited for before the step counts as done (run as its last commands).
    pub waits: Vec<Wait>,
    /// Commands before the environment's approval (Terraform's `plan`); empty otherwise.
    pub plan: Vec<Command>,
    /// Commands that change the environment, in order.
    pub run: Vec<Command>,
}

/// The Helm the install steps use.
pub const HELM_VERSION: &str = "v3.17.0";

/// An environment's deploy plan: its steps in an order that satisfies every requirement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Environment name.
    pub env: String,
    /// Steps, layer by layer.
    pub steps: Vec<Step>,
    /// The CodeBuild project of the runners inside the VPC.
    pub runner: Option<String>,
    /// The `kubectl` release the cluster steps use (`v1.33.0` for Kubernetes 1.33).
    pub kubectl: Option<String>,
}

/// What the plan needs to know about the environment beside its stacks.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Environment name.
    pub env: &'a str,
    /// AWS region.
    pub region: &'a str,
    /// The stack that creates the cluster and its name, when the environment has one.
    pub cluster: Option<(&'a str, String)>,
    /// The cluster's Kubernetes minor version (`1.33`): the `kubectl` the steps use.
    pub kubernetes_version: Option<&'a str>,
    /// The CodeBuild project whose GitHub Actions runners sit inside the VPC.
    pub runner: Option<String>,
}

struct Draft {
    step: Step,
    needs: Vec<Capability>,
}

/// The plan of `stacks` (every stack of one environment, with their links), or every
/// problem found: a requirement nothing provides, a cycle.
pub fn plan(
    cx: &Context<'_>,
    stacks: &[&Stack],
    links: &[StackLinks<'_>],
) -> Result<Plan, Vec<String>> {
    let mut drafts = Vec::new();
    for (stack, link) in stacks.iter().zip(links) {
        drafts.push(terraform_step(cx, stack, link));
    }
    let has_cluster_steps = stacks.iter().any(|s| {
        !s.objects.is_empty()
            || !s.addons.is_empty()
            || s.steps.iter().any(|j| j.reach == Reach::Vpc)
    });
    if let (Some((cluster_stack, cluster)), true) = (&cx.cluster, has_cluster_steps) {
        let waits = stacks
            .iter()
            .flat_map(|s| &s.addons)
            .filter(|i| matches!(i.source, Source::EksAddon { .. }))
            .flat_map(|i| i.waits.iter().cloned())
            .collect();
        drafts.push(login_step(cx, cluster_stack, cluster, waits));
    }
    for stack in stacks {
        for install in &stack.addons {
            if let Source::Helm { .. } = install.source {
                drafts.push(install_step(cx, stack, install));
            }
        }
        for job in &stack.steps {
            drafts.push(job_step(cx, stack, job));
        }
        if stack.objects.iter().any(|o| o.kind == "Namespace") {
            drafts.push(namespace_step(cx, stack));
        }
        if !stack.objects.is_empty() {
            drafts.push(apply_step(cx, stack));
        }
        if let Some(restart) = restart_step(stack) {
            drafts.push(restart);
        }
    }
    let mut plan = resolve(cx.env, drafts)?;
    plan.runner = cx.runner.clone();
    plan.kubectl = cx.kubernetes_version.map(|v| format!("v{v}.0"));
    Ok(plan)
}

fn terraform_step(cx: &Context<'_>, stack: &Stack, link: &StackLinks<'_>) -> Draft {
    let dir = format!("-chdir=generated/{}/{}/terraform", cx.env, stack.name);
    let tf = |args: &[&str]| -> Command {
        std::iter::once("terraform")
            .chain(std::iter::once(dir.as_str()))
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    let mut provides = vec![Capability::TerraformRoot(stack.name.to_owned())];
    for install in &stack.addons {
        if let Source::EksAddon { .. } = install.source {
            provides.extend(install.provides.iter().cloned());
        }
    }
    let producers: BTreeSet<&str> = link
        .imports
        .iter()
        .map(|l| l.stack)
        .filter(|p| *p != stack.name)
        .collect();
    Draft {
        needs: producers
            .into_iter()
            .map(|p| Capability::TerraformRoot(p.to_owned()))
            .collect(),
        step: Step {
            id: format!("terraform/{}", stack.name),
            kind: Kind::Terraform,
            stack: stack.name.to_owned(),
            reach: Reach::AwsApi,
            description: format!("Terraform root of {}", stack.name),
            layer: 0,
            after: Vec::new(),
            requires: Vec::new(),
            provides,
            // EKS add-ons are installed by the apply; their readiness is checked from
            // inside the VPC, by the cluster login that every cluster step comes after.
            waits: Vec::new(),
            plan: vec![
                tf(&["init", "-input=false"]),
                tf(&["plan", "-input=false", "-out=tfplan"]),
            ],
            run: vec![
                tf(&["init", "-input=false"]),
                tf(&["apply", "-input=false", "tfplan"]),
            ],
        },
    }
}

/// The first step inside the VPC: credentials for the cluster, then the readiness of the
/// EKS add-ons the cluster's Terraform root installed (`waits`).
fn login_step(cx: &Context<'_>, cluster_stack: &str, cluster: &str, waits: Vec<Wait>) -> Draft {
    let argv = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Command>();
    let mut run = vec![
        argv(&[
            "aws",
            "eks",
            "update-kubeconfig",
            "--name",
            cluster,
            "--region",
            cx.region,
        ]),
        argv(&["kubectl", "version"]),
    ];
    run.extend(waits.iter().map(|w| wait_command(w, WAIT)));
    Draft {
        needs: vec![Capability::TerraformRoot(cluster_stack.to_owned())],
        step: Step {
            id: "cluster-login".into(),
            kind: Kind::Login,
            stack: cluster_stack.to_owned(),
            reach: Reach::Vpc,
            description: format!("kubectl credentials for cluster {cluster}"),
            layer: 0,
            after: Vec::new(),
            requires: Vec::new(),
            provides: vec![Capability::ClusterLogin],
            waits,
            plan: Vec::new(),
            run,
        },
    }
}

fn install_step(cx: &Context<'_>, stack: &Stack, install: &super::Install) -> Draft {
    let Source::Helm {
        chart,
        repository,
        version,
        values_file,
        ..
    } = &install.source
    else {
        unreachable!("install_step is called for Helm installs only")
    };
    let values = format!("generated/{}/{}/{values_file}", cx.env, stack.name);
    // The chart's `crds/` CRDs first: `helm upgrade` leaves them as first installed.
    let mut run: Vec<Command> = install.source.crds_command().into_iter().collect();
    run.push(
        [
            "helm",
            "upgrade",
            "--install",
            &install.name,
            chart,
            "--repo",
            repository,
            "--version",
            version,
            "--namespace",
            &install.namespace,
            "--create-namespace",
            "--values",
            &values,
            "--wait",
            "--timeout",
            WAIT,
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect(),
    );
    run.extend(install.waits.iter().map(|w| wait_command(w, WAIT)));
    let mut needs = vec![
        Capability::TerraformRoot(stack.name.to_owned()),
        Capability::ClusterLogin,
    ];
    needs.extend(install.requires.iter().cloned());
    Draft {
        needs,
        step: Step {
            id: format!("addon/{}", install.name),
            kind: Kind::Install,
            stack: stack.name.to_owned(),
            reach: Reach::Vpc,
            description: format!("{chart} {version} in {}", install.namespace),
            layer: 0,
            after: Vec::new(),
            requires: Vec::new(),
            provides: install.provides.clone(),
            waits: install.waits.clone(),
            plan: Vec::new(),
            run,
        },
    }
}

fn job_step(cx: &Context<'_>, stack: &Stack, job: &super::StackStep) -> Draft {
    let folder = format!("generated/{}/{}", cx.env, stack.name);
    let mut run: Vec<Command> = match &job.action {
        Action::KubectlApply { dir } => {
            let objects = stack.jobs.get(&job.name).map_or(&[][..], Vec::as_slice);
            let mut run = fresh_secrets_then_jobs(&format!("{folder}/{dir}"), objects, job);
            run.push(vec![
                "kubectl".into(),
                "apply".into(),
                "-k".into(),
                format!("{folder}/{dir}"),
            ]);
            run
        }
        Action::Script { path, args } => {
            let mut c = vec![format!("{folder}/{path}")];
            c.extend(args.iter().cloned());
            vec![c]
        }
    };
    run.extend(job.waits.iter().map(|w| wait_command(w, WAIT)));
    let mut needs = vec![Capability::TerraformRoot(stack.name.to_owned())];
    if job.reach == Reach::Vpc {
        needs.push(Capability::ClusterLogin);
    }
    needs.extend(job.requires.iter().cloned());
    Draft {
        needs,
        step: Step {
            id: format!("job/{}/{}", stack.name, job.name),
            kind: Kind::Job,
            stack: stack.name.to_owned(),
            reach: job.reach,
            description: format!("{} of {}", job.name, stack.name),
            layer: 0,
            after: Vec::new(),
            requires: Vec::new(),
            provides: job.provides.clone(),
            waits: job.waits.clone(),
            plan: Vec::new(),
            run,
        },
    }
}

/// The commands of a job folder before its `kubectl apply -k`, when the step syncs
/// ExternalSecrets first ([`super::StackStep::sync_before`]): the folder's objects other
/// than its Jobs (so the ExternalSecrets exist), each force-sync and its wait, and the
/// deletion of the folder's finished Jobs: a Job of an unchanged spec is kept for its TTL,
/// and applying it again would not run it again with the fresh Secret.
fn fresh_secrets_then_jobs(
    dir: &str,
    objects: &[crate::k8s::Object],
    job: &super::StackStep,
) -> Vec<Command> {
    if job.sync_before.is_empty() {
        return Vec::new();
    }
    let mut apply: Command = vec!["kubectl".into(), "apply".into()];
    for o in objects.iter().filter(|o| o.kind != "Job") {
        apply.push("--filename".into());
        apply.push(format!("{dir}/{}", o.file_name()));
    }
    let mut run = vec![apply];
    run.extend(
        job.sync_before
            .iter()
            .map(|(ns, name)| super::resync::sync_command(ns, name)),
    );
    for o in objects.iter().filter(|o| o.kind == "Job") {
        let mut delete: Command = ["kubectl", "delete", "job", &o.name, "--ignore-not-found"]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        if let Some(ns) = &o.namespace {
            delete.push("--namespace".into());
            delete.push(ns.clone());
        }
        run.push(delete);
    }
    run
}

/// After a stack's apply: force-sync each of its ExternalSecrets, then restart the
/// Deployments and Rollouts reading a Secret whose value changed since they last
/// restarted for it (a rotated database password, after the login Job set it; any
/// secret an operator changed). `None` when no workload of the stack reads a synced
/// Secret.
fn restart_step(stack: &Stack) -> Option<Draft> {
    let (externals, readers) = super::resync::secret_readers(&stack.objects);
    if readers.is_empty() {
        return None;
    }
    let mut run: Vec<Command> = externals
        .iter()
        .map(|(ns, name)| super::resync::sync_command(ns, name))
        .collect();
    let namespaces: BTreeSet<&str> = readers.iter().map(|r| r.namespace.as_str()).collect();
    for ns in namespaces {
        let of_ns: Vec<super::resync::Reader> = readers
            .iter()
            .filter(|r| r.namespace == ns)
            .cloned()
            .collect();
        run.push(super::resync::restart_command(ns, &of_ns));
    }
    Some(Draft {
        needs: vec![
            Capability::ClusterLogin,
            Capability::Applied(stack.name.to_owned()),
        ],
        step: Step {
            id: format!("restart/{}", stack.name),
            kind: Kind::Restart,
            stack: stack.name.to_owned(),
            reach: Reach::Vpc,
            description: format!(
                "re-sync {} ExternalSecrets of {}, restart the readers of changed Secrets",
                externals.len(),
                stack.name
            ),
            layer: 0,
            after: Vec::new(),
            requires: Vec::new(),
            provides: Vec::new(),
            waits: Vec::new(),
            plan: Vec::new(),
            run,
        },
    })
}

/// The Namespaces of a stack, applied on their own first: its one-off jobs run in them
/// before the rest of its objects (whose workloads wait for those jobs).
fn namespace_step(cx: &Context<'_>, stack: &Stack) -> Draft {
    let namespaces: Vec<&crate::k8s::Object> = stack
        .objects
        .iter()
        .filter(|o| o.kind == "Namespace")
        .collect();
    let dir = format!("generated/{}/{}/k8s", cx.env, stack.name);
    let mut run: Command = ["kubectl", "apply"]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    for o in &namespaces {
        run.push("--filename".into());
        run.push(format!("{dir}/{}", o.file_name()));
    }
    Draft {
        needs: vec![Capability::ClusterLogin],
        step: Step {
            id: format!("namespace/{}", stack.name),
            kind: Kind::Namespace,
            stack: stack.name.to_owned(),
            reach: Reach::Vpc,
            description: format!(
                "namespaces {} of {}",
                namespaces
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                stack.name
            ),
            layer: 0,
            after: Vec::new(),
            requires: Vec::new(),
            provides: namespaces
                .iter()
                .map(|o| Capability::Namespace(o.name.clone()))
                .collect(),
            waits: Vec::new(),
            plan: Vec::new(),
            run: vec![run],
        },
    }
}

fn apply_step(cx: &Context<'_>, stack: &Stack) -> Draft {
    let mut provides: Vec<Capability> = vec![Capability::Applied(stack.name.to_owned())];
    for o in stack.objects.iter().filter(|o| o.kind != "Namespace") {
        for p in requirements::provides(o) {
            if !provides.contains(&p) {
                provides.push(p);
            }
        }
    }
    let mut needs = vec![
        Capability::TerraformRoot(stack.name.to_owned()),
        Capability::ClusterLogin,
    ];
    // The workloads start only once the logins their database secrets name exist.
    for job in &stack.steps {
        for p in &job.provides {
            if matches!(p, Capability::DatabaseLogin(..)) {
                needs.push(p.clone());
            }
        }
    }
    for o in &stack.objects {
        for need in requirements::requires(o) {
            if !provides.iter().any(|p| p.satisfies(&need)) && !needs.contains(&need) {
                needs.push(need);
            }
        }
    }
    let waits: Vec<Wait> = stack
        .objects
        .iter()
        .filter_map(|o| {
            let ns = o.namespace.clone()?;
            match o.kind.as_str() {
                "Deployment" => Some(Wait::DeploymentReady(ns, o.name.clone())),
                "DaemonSet" => Some(Wait::DaemonSetReady(ns, o.name.clone())),
                "Rollout" => Some(Wait::RolloutHealthy(ns, o.name.clone())),
                _ => None,
            }
        })
        .collect();
    let dir = format!("generated/{}/{}/k8s", cx.env, stack.name);
    let mut run: Vec<Command> = vec![vec!["kubectl".into(), "apply".into(), "-k".into(), dir]];
    run.extend(waits.iter().map(|w| match w {
        Wait::RolloutHealthy(..) => wait_command(w, ROLLOUT_WAIT),
        _ => wait_command(w, WAIT),
    }));
    Draft {
        needs,
        step: Step {
            id: format!("apply/{}", stack.name),
            kind: Kind::Apply,
            stack: stack.name.to_owned(),
            reach: Reach::Vpc,
            description: format!(
                "{} Kubernetes objects of {}",
                stack.objects.len(),
                stack.name
            ),
            layer: 0,
            after: Vec::new(),
            requires: Vec::new(),
            provides,
            waits,
            plan: Vec::new(),
            run,
        },
    }
}

/// The `kubectl` command that waits for `wait`, at most `timeout`.
pub fn wait_command(wait: &Wait, timeout: &str) -> Command {
    let t = format!("--timeout={timeout}");
    let args: Vec<String> = match wait {
        Wait::CrdEstablished(crd) => vec![
            "wait".into(),
            "--for=condition=Established".into(),
            format!("crd/{crd}"),
            t,
        ],
        Wait::DeploymentReady(ns, name) => vec![
            "rollout".into(),
            "status".into(),
            format!("deployment/{name}"),
            "--namespace".into(),
            ns.clone(),
            t,
        ],
        Wait::DaemonSetReady(ns, name) => vec![
            "rollout".into(),
            "status".into(),
            format!("daemonset/{name}"),
            "--namespace".into(),
            ns.clone(),
            t,
        ],
        Wait::RolloutHealthy(ns, name) => vec![
            "wait".into(),
            "--for=jsonpath={.status.phase}=Healthy".into(),
            format!("rollout.argoproj.io/{name}"),
            "--namespace".into(),
            ns.clone(),
            t,
        ],
        Wait::JobComplete(ns, name) => vec![
            "wait".into(),
            "--for=condition=Complete".into(),
            format!("job/{name}"),
            "--namespace".into(),
            ns.clone(),
            t,
        ],
    };
    std::iter::once("kubectl".to_owned()).chain(args).collect()
}

/// Finds the provider of every requirement, orders the steps in layers, or reports every
/// requirement nothing provides and any cycle.
fn resolve(env: &str, drafts: Vec<Draft>) -> Result<Plan, Vec<String>> {
    let mut errors = Vec::new();
    let ids: Vec<String> = drafts.iter().map(|d| d.step.id.clone()).collect();
    let mut seen = BTreeSet::new();
    for id in &ids {
        if !seen.insert(id) {
            errors.push(format!("two steps are named {id}"));
        }
    }
    let mut after: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); drafts.len()];
    let mut resolved: Vec<Vec<Need>> = vec![Vec::new(); drafts.len()];
    for (i, d) in drafts.iter().enumerate() {
        for need in &d.needs {
            // The provided capability that meets the need is recorded: for a Prometheus,
            // its selector rather than every label of the monitor.
            let provider = drafts.iter().enumerate().find_map(|(j, p)| {
                let met = p.step.provides.iter().find(|c| c.satisfies(need))?;
                (j != i).then_some((j, p, met))
            });
            match provider {
                Some((j, p, met)) => {
                    after[i].insert(j);
                    resolved[i].push(Need {
                        capability: met.clone(),
                        from: p.step.id.clone(),
                    });
                }
                None => errors.push(format!(
                    "{env}: step {} needs {need}, and no step of the plan provides it",
                    d.step.id
                )),
            }
        }
    }
    // Layers by longest path; a step whose layer cannot be fixed is on a cycle.
    let mut layer: Vec<Option<usize>> = vec![None; drafts.len()];
    let mut progress = true;
    while progress {
        progress = false;
        for i in 0..drafts.len() {
            if layer[i].is_some() {
                continue;
            }
            let deps: Option<Vec<usize>> = after[i].iter().map(|&j| layer[j]).collect();
            if let Some(deps) = deps {
                layer[i] = Some(deps.into_iter().max().map_or(1, |m| m + 1));
                progress = true;
            }
        }
    }
    let stuck: Vec<&str> = (0..drafts.len())
        .filter(|&i| layer[i].is_none())
        .map(|i| ids[i].as_str())
        .collect();
    if !stuck.is_empty() {
        errors.push(format!(
            "{env}: steps {} wait for each other in a cycle, so no order exists",
            stuck.join(", ")
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut steps: Vec<Step> = drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let mut step = d.step;
            // Every layer was fixed above (no step is stuck).
            step.layer = layer[i].unwrap_or_default();
            step.after = after[i].iter().map(|&j| ids[j].clone()).collect();
            step.after.sort();
            step.requires = std::mem::take(&mut resolved[i]);
            step
        })
        .collect();
    steps.sort_by(|a, b| (a.layer, a.kind, &a.id).cmp(&(b.layer, b.kind, &b.id)));
    Ok(Plan {
        env: env.to_owned(),
        steps,
        runner: None,
        kubectl: None,
    })
}

impl Plan {
    /// The step named `id`.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Step ids layer by layer.
    pub fn layers(&self) -> Vec<Vec<&str>> {
        let mut layers: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for s in &self.steps {
            layers.entry(s.layer).or_default().push(&s.id);
        }
        layers.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::exports::{Link, Shape};
    use crate::k8s::{Object, Rank};
    use crate::plan::{Install, StackStep};

    fn stack(name: &'static str, objects: Vec<serde_json::Value>) -> Stack {
        Stack {
            name,
            terraform: crate::tf::tests::config(),
            kubernetes: BTreeMap::new(),
            objects: objects
                .into_iter()
                .map(|c| Object {
                    kind: c["kind"].as_str().unwrap_or_default().to_owned(),
                    name: c["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    namespace: c["metadata"]["namespace"].as_str().map(str::to_owned),
                    rank: Rank::Workload,
                    content: c,
                })
                .collect(),
            jobs: BTreeMap::new(),
            deploy: BTreeMap::new(),
            warnings: Vec::new(),
            steps: Vec::new(),
            addons: Vec::new(),
            addon_values: BTreeMap::new(),
            external: Vec::new(),
        }
    }

    fn links<'a>(stacks: &'a [Stack], imports: &'a [Vec<Link>]) -> Vec<StackLinks<'a>> {
        stacks
            .iter()
            .zip(imports)
            .map(|(s, i)| StackLinks {
                stack: s.name,
                exports: &[],
                imports: i,
            })
            .collect()
    }

    const CX: Context<'static> = Context {
        env: "prod",
        region: "eu-west-1",
        cluster: None,
        kubernetes_version: Some("1.33"),
        runner: None,
    };

    fn cx() -> Context<'static> {
        Context {
            cluster: Some(("platform", "eks-prod".into())),
            ..CX
        }
    }

    fn helm(name: &str, provides: Vec<Capability>, requires: Vec<Capability>) -> Install {
        Install {
            name: name.into(),
            namespace: name.into(),
            source: Source::Helm {
                chart: name.into(),
                repository: "https://charts.example.com".into(),
                version: "1.0.0".into(),
                values_file: format!("addons/{name}.values.yaml"),
                crds_directory: false,
            },
            provides,
            requires,
            waits: vec![Wait::CrdEstablished(format!("things.{name}.io"))],
        }
    }

    fn issuer_and_ingress() -> Vec<Stack> {
        let mut platform = stack(
            "platform",
            vec![
                json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                        "metadata": {"name": "letsencrypt"}}),
            ],
        );
        platform.addons = vec![
            helm(
                "cert-manager",
                vec![Capability::ApiGroup("cert-manager.io".into())],
                vec![],
            ),
            helm(
                "ingress-nginx",
                vec![Capability::IngressClass("nginx".into())],
                vec![],
            ),
        ];
        let mut app = stack(
            "app",
            vec![
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                       "metadata": {"name": "web", "namespace": "shop",
                                    "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}},
                       "spec": {"ingressClassName": "nginx"}}),
            ],
        );
        app.steps = vec![StackStep {
            name: "database-login".into(),
            action: Action::KubectlApply {
                dir: "jobs/database-login".into(),
            },
            reach: Reach::Vpc,
            provides: vec![Capability::DatabaseLogin("app".into(), "app".into())],
            requires: vec![Capability::Namespace("shop".into())],
            waits: vec![Wait::JobComplete("shop".into(), "login".into())],
            sync_before: vec![("shop".into(), "database-login".into())],
        }];
        vec![platform, app]
    }

    fn import_of_platform() -> Vec<Link> {
        vec![Link {
            stack: "platform",
            name: "vpc_id",
            shape: Shape::One,
        }]
    }

    #[test]
    fn every_requirement_comes_from_an_earlier_layer() {
        let stacks = issuer_and_ingress();
        let imports = [vec![], import_of_platform()];
        let refs: Vec<&Stack> = stacks.iter().collect();
        let plan = plan(&cx(), &refs, &links(&stacks, &imports)).unwrap();
        let layer = |id: &str| plan.step(id).unwrap().layer;
        assert_eq!(layer("terraform/platform"), 1);
        assert_eq!(layer("terraform/app"), 2);
        assert_eq!(layer("cluster-login"), 2);
        assert_eq!(layer("addon/cert-manager"), 3);
        assert_eq!(
            layer("apply/platform"),
            4,
            "its ClusterIssuer needs cert-manager"
        );
        assert!(
            layer("apply/app") > layer("apply/platform"),
            "the issuer first"
        );
        assert!(layer("apply/app") > layer("addon/ingress-nginx"));
        // The login job comes after the namespace it runs in and before the workload.
        assert!(layer("namespace/app") < layer("job/app/database-login"));
        assert!(layer("job/app/database-login") < layer("apply/app"));
        let app = plan.step("apply/app").unwrap();
        assert!(
            app.requires
                .iter()
                .any(|n| n.from == "job/app/database-login")
        );
        for s in &plan.steps {
            for n in &s.requires {
                assert!(layer(&n.from) < s.layer, "{} after {}", s.id, n.from);
            }
        }
    }

    #[test]
    fn a_requirement_nothing_provides_is_named() {
        let mut stacks = issuer_and_ingress();
        stacks[0].addons.retain(|i| i.name != "ingress-nginx");
        let imports = [vec![], import_of_platform()];
        let refs: Vec<&Stack> = stacks.iter().collect();
        let errors = plan(&cx(), &refs, &links(&stacks, &imports)).unwrap_err();
        assert_eq!(
            errors,
            vec![
                "prod: step apply/app needs ingress controller of class nginx, and no step of the plan provides it"
            ]
        );
    }

    #[test]
    fn a_cycle_is_refused() {
        let mut stacks = issuer_and_ingress();
        // cert-manager now waits for something only the platform's apply gives, which
        // waits for cert-manager.
        stacks[0].addons[0].requires = vec![Capability::ClusterIssuer("letsencrypt".into())];
        let imports = [vec![], import_of_platform()];
        let refs: Vec<&Stack> = stacks.iter().collect();
        let errors = plan(&cx(), &refs, &links(&stacks, &imports)).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("addon/cert-manager"), "{errors:?}");
        assert!(errors[0].contains("in a cycle"), "{errors:?}");
    }

    #[test]
    fn terraform_is_planned_before_the_approval_and_applied_from_the_plan_file() {
        let stacks = issuer_and_ingress();
        let imports = [vec![], import_of_platform()];
        let refs: Vec<&Stack> = stacks.iter().collect();
        let plan = plan(&cx(), &refs, &links(&stacks, &imports)).unwrap();
        let tf = plan.step("terraform/app").unwrap();
        assert_eq!(
            tf.plan.last().unwrap().join(" "),
            "terraform -chdir=generated/prod/app/terraform plan -input=false -out=tfplan"
        );
        assert_eq!(
            tf.run.last().unwrap().join(" "),
            "terraform -chdir=generated/prod/app/terraform apply -input=false tfplan"
        );
        let w = plan.workflow();
        assert_eq!(w.terraform, vec![vec!["platform"], vec!["app"]]);
        assert_eq!(w.cluster.first().map(String::as_str), Some("cluster-login"));
        assert!(!w.cluster.iter().any(|id| id.starts_with("terraform/")));
    }
}
