//! `keel plan ENV`: the environment's deploy plan, and `--exec` to run its steps.
//!
//! The plan is derived from the stacks as synth builds them, so it is refused while
//! `generated/<env>` is stale: the steps run the files under `generated/`, and those must
//! be what the plan was derived from.

use std::process::Command;

use crate::error::Error;
use crate::plan::{self, Context, Kind, Plan};

use super::Project;
use super::synth;

/// Which commands of a step to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Before the approval: Terraform's `init` and `plan -out=tfplan`; nothing for other
    /// steps.
    Plan,
    /// After the approval: Terraform's `apply` of the reviewed `tfplan`; everything for
    /// other steps.
    Apply,
}

/// The plan of environment `env`.
pub fn plan(project: &Project, env: &str) -> Result<Plan, Error> {
    let _lock = project.lock(super::lock::Mode::Shared)?;
    let envs = project.load(&[env.to_owned()])?;
    let Some(environment) = envs.first() else {
        return Err(Error::Usage(format!("no environment {env:?}")));
    };
    let (stacks, _order) = synth::environment_stacks(environment).map_err(Error::Stacks)?;
    let outputs = synth::build(
        project,
        &synth::Selection {
            envs: vec![env.to_owned()],
            stack: None,
        },
    )?;
    let tree = synth::environment_tree(&outputs, env);
    let stale = super::check::stale_in(&project.generated_dir(), env, &tree)?;
    if !stale.is_empty() {
        return Err(Error::Stale(stale));
    }
    let links = synth::stack_links(&stacks);
    let refs: Vec<&crate::stack::Stack> = stacks.iter().collect();
    let cluster = environment.spec.stacks.platform.as_ref().map(|_| {
        (
            crate::stacks::platform::NAME,
            crate::stacks::platform::cluster_name(env),
        )
    });
    let kubernetes_version = environment
        .spec
        .kubernetes
        .as_ref()
        .map(|k| k.version.as_str());
    let cx = Context {
        env,
        region: &environment.spec.region,
        cluster,
        kubernetes_version,
        // Only an environment that configures the runner has one.
        runner: environment
            .spec
            .stacks
            .platform
            .as_ref()
            .and_then(|p| p.deploy_runner.as_ref())
            .map(|_| crate::stacks::platform::deploy_runner_project(env)),
    };
    plan::plan(&cx, &refs, &links).map_err(|problems| {
        Error::Usage(format!(
            "no deploy plan for {env}:\n{}",
            problems
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    })
}

/// Runs the steps named `ids` of `env`'s plan in the order given (or, with `group`, the
/// workflow group of that name: `cluster`, or `terraform-N` for layer N of the roots),
/// each one's `phase` commands. Stops at the first failure, naming the step and command.
pub fn exec(
    project: &Project,
    env: &str,
    ids: &[String],
    group: Option<&str>,
    phase: Phase,
) -> Result<String, Error> {
    let plan = plan(project, env)?;
    let mut wanted: Vec<String> = ids.to_vec();
    if let Some(group) = group {
        wanted.extend(group_steps(&plan, group)?);
    }
    if wanted.is_empty() {
        return Err(Error::Usage(
            "name the steps to run (--exec ID ...) or a group (--group cluster | terraform-N)"
                .into(),
        ));
    }
    let mut steps = Vec::new();
    for id in &wanted {
        let step = plan.step(id).ok_or_else(|| {
            Error::Usage(format!(
                "no step {id:?} in the plan of {env} (`keel plan {env}` lists them)"
            ))
        })?;
        steps.push(step);
    }
    let mut report = String::new();
    for step in steps {
        let commands = match (phase, step.kind) {
            (Phase::Plan, Kind::Terraform) => &step.plan,
            (Phase::Plan, _) => continue,
            (Phase::Apply, _) => &step.run,
        };
        eprintln!("==> {} ({})", step.id, step.description);
        for command in commands {
            run(&step.id, command)?;
        }
        report.push_str(&format!("done: {}\n", step.id));
    }
    Ok(report)
}

/// The step ids of a workflow group.
fn group_steps(plan: &Plan, group: &str) -> Result<Vec<String>, Error> {
    let workflow = plan.workflow();
    if group == "cluster" {
        return Ok(workflow.cluster);
    }
    let layer = group
        .strip_prefix("terraform-")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n >= 1);
    match layer {
        Some(n) => Ok(workflow
            .terraform
            .get(n - 1)
            .map(|stacks| stacks.iter().map(|s| format!("terraform/{s}")).collect())
            .unwrap_or_default()),
        None => Err(Error::Usage(format!(
            "no group {group:?}: expected `cluster` or `terraform-N` (N from 1)"
        ))),
    }
}

/// Runs one command of step `id`, with the terminal's stdin/stdout/stderr.
fn run(id: &str, command: &[String]) -> Result<(), Error> {
    let shown = plan::render::shell_words(&command.to_vec());
    eprintln!("    $ {shown}");
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    let status = Command::new(program).args(args).status();
    let failure = match status {
        Ok(s) if s.success() => return Ok(()),
        Ok(s) => match s.code() {
            Some(code) => format!("exited with {code}"),
            None => "was killed by a signal".to_owned(),
        },
        Err(e) => format!("could not start: {e}"),
    };
    if std::env::var_os("GITHUB_ACTIONS").is_some() {
        // A workflow annotation on the run's summary page.
        println!("::error title=keel plan step {id} failed::`{shown}` {failure}");
    }
    Err(Error::Step(format!(
        "step {id} failed: `{shown}` {failure}; fix the cause and run the step again (every step is idempotent)"
    )))
}
