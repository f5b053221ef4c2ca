//! The command line: argument structs and dispatch, no logic (that lives in `ops`).

pub mod diff;
pub mod drift;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::ops::{self, Project};

/// keel: compile typed stacks and per-environment YAML into Terraform JSON and Kubernetes YAML.
#[derive(Debug, Parser)]
#[command(name = "keel", version, about)]
pub struct Cli {
    /// Project root holding environments/ and generated/.
    #[arg(long, global = true, default_value = ".")]
    pub root: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// keel's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write generated/<env>/** for one environment (or --all); nothing is written on error.
    Synth {
        /// Environment name (a file environments/<env>.yaml).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        env: Option<String>,
        /// Every environment.
        #[arg(long)]
        all: bool,
        /// Only this stack.
        #[arg(long = "stack", value_name = "NAME")]
        stack: Option<String>,
    },
    /// Exit 2 and name the stale files when generated/ differs from what synth would write.
    Check,
    /// Print the JSON Schema of environment files.
    Schema,
    /// List stacks, environments and their resource counts.
    List,
    /// What synth would change against generated/ at a git revision, classified by risk.
    Diff(diff::DiffArgs),
    /// What changed in the cloud since the last apply (Terraform refresh-only plan per root,
    /// optionally `kubectl diff` per k8s/ folder), classified like diff; exit 3 on drift.
    Drift(drift::DriftArgs),
    /// Carry the release pins (image tag/digest) of SRC's environment file to the next tier's.
    Promote {
        /// Source environment (e.g. staging).
        src: String,
        /// Target environment: the source's next tier (e.g. prod).
        dst: String,
        /// Edit the target's file in place (only the pinned values change).
        #[arg(long)]
        write: bool,
    },
    /// Print a stack's Terraform as synth would write it (JSON), or as HCL for reading.
    Show {
        /// Environment name.
        env: String,
        /// Stack name.
        stack: String,
        /// HCL instead of the JSON that is applied.
        #[arg(long)]
        hcl: bool,
    },
    /// The environment's deploy plan: ordered steps (Terraform roots, add-on installs,
    /// jobs, Kubernetes applies) with their prerequisites, waits and parallel layers; with
    /// --exec or --group, run steps of it.
    Plan {
        /// Environment name.
        env: String,
        /// `text` for people, `json` for the deploy workflow.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Run these steps, in this order (ids as `keel plan` prints them).
        #[arg(long, num_args = 1.., value_name = "STEP")]
        exec: Vec<String>,
        /// Run a workflow group: `terraform-N` (layer N of the Terraform roots) or `cluster`
        /// (every other step, in order).
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
        /// With --exec/--group: `plan` runs only what comes before the approval
        /// (`terraform plan`), `apply` the rest.
        #[arg(long, value_enum, default_value_t = ops::plan::Phase::Apply)]
        phase: ops::plan::Phase,
    },
    /// Propose `adopt:` entries for existing resources: match a `terraform show -json`
    /// document (or a state file) to the environment's addresses by names, CIDRs and tags.
    Adopt {
        /// Environment name.
        env: String,
        /// `terraform show -json` output, or a Terraform state file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Only this stack.
        #[arg(long = "stack", value_name = "NAME")]
        stack: Option<String>,
    },
    /// Refuse (exit 2) unless the AWS caller is in the environment's account and region.
    Preflight {
        /// Environment name.
        env: String,
        /// Only the external dependencies needed before this stage of a deploy
        /// (`terraform`: before the first apply; `cluster`: before the cluster steps, i.e.
        /// everything). Default: everything.
        #[arg(long, value_enum, value_name = "STAGE")]
        before: Option<crate::plan::Stage>,
    },
}

/// Output formats of `keel plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// For people.
    Text,
    /// For the deploy workflow.
    Json,
}

/// Runs the parsed command, printing to stdout/stderr.
pub fn run(cli: Cli) -> Result<(), Error> {
    let project = Project::new(cli.root);
    // A `KEEL_TODAY` that is no date is refused before anything runs.
    crate::env::kubernetes_support::today().map_err(Error::Usage)?;
    let mut stdout = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock<'_>, text: &str| -> Result<(), Error> {
        out.write_all(text.as_bytes())
            .map_err(|e| Error::Internal(e.into()))
    };
    match cli.command {
        Command::Synth { env, all: _, stack } => {
            let selection = ops::synth::Selection {
                envs: env.into_iter().collect(),
                stack,
            };
            let outputs = ops::synth::synth(&project, &selection)?;
            for o in &outputs {
                for w in &o.warnings {
                    eprintln!("warning: {w}");
                }
                print(
                    &mut stdout,
                    &format!(
                        "synthesized generated/{}/{}: {} terraform resources, {} kubernetes objects, {} files\n",
                        o.env,
                        o.stack,
                        o.resources,
                        o.kubernetes_objects,
                        o.files.len()
                    ),
                )?;
            }
            Ok(())
        }
        Command::Check => {
            let checked = ops::check::check(&project)?;
            for dir in &checked.ignored {
                eprintln!(
                    "note: ignored {dir}, left by an interrupted synth (the next synth removes it)"
                );
            }
            print(
                &mut stdout,
                &format!("generated/ is current: {} files checked\n", checked.files),
            )
        }
        Command::Schema => print(
            &mut stdout,
            &crate::tf::to_pretty_json(crate::env::schema()),
        ),
        Command::List => print(&mut stdout, &ops::list::list(&project)?),
        Command::Promote { src, dst, write } => print(
            &mut stdout,
            &ops::promote::promote(&project, &src, &dst, write)?,
        ),
        Command::Show { env, stack, hcl } => {
            print(&mut stdout, &ops::show::show(&project, &env, &stack, hcl)?)
        }
        Command::Adopt { env, from, stack } => print(
            &mut stdout,
            &ops::adopt::adopt(&project, &env, &from, stack.as_deref())?,
        ),
        Command::Preflight { env, before } => {
            print(&mut stdout, &preflight(&project, &env, before)?)
        }
        Command::Plan {
            env,
            format,
            exec,
            group,
            phase,
        } => {
            if exec.is_empty() && group.is_none() {
                let plan = ops::plan::plan(&project, &env)?;
                let text = match format {
                    PlanFormat::Text => plan.to_text(),
                    PlanFormat::Json => plan.to_json(),
                };
                print(&mut stdout, &text)
            } else {
                let report = ops::plan::exec(&project, &env, &exec, group.as_deref(), phase)?;
                print(&mut stdout, &report)
            }
        }
        Command::Drift(args) => {
            drop(stdout);
            drift::run(&project, args)
        }
        Command::Diff(args) => {
            drop(stdout);
            diff::run(&project, args)
        }
    }
}

/// `keel preflight ENV`: the caller, then every external dependency, one line each.
#[cfg(feature = "aws")]
fn preflight(
    project: &ops::Project,
    env: &str,
    before: Option<crate::plan::Stage>,
) -> Result<String, Error> {
    let checked = ops::preflight::preflight_before(project, env, before)?;
    let id = &checked.identity;
    Ok(format!(
        "preflight {env}: ok\n  caller:  {}\n  account: {} (environments/{env}.yaml)\n  region:  {}\nexternal dependencies ({}):\n{}",
        id.arn,
        id.account,
        id.region,
        checked.dependencies.findings.len(),
        checked.dependencies
    ))
}

/// `keel preflight` in a keel built without the `aws` feature: says how to get one that
/// talks to AWS (the SDK is left out of the everyday build; see README, build time).
#[cfg(not(feature = "aws"))]
fn preflight(
    _project: &ops::Project,
    env: &str,
    _before: Option<crate::plan::Stage>,
) -> Result<String, Error> {
    Err(Error::Usage(format!(
        "preflight {env}: this keel was built without AWS access; build it with the `aws` feature: `cargo run --features aws -- preflight {env}` (or `cargo build --features aws`)"
    )))
}
