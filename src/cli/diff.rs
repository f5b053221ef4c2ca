//! `keel diff` arguments and output.

use std::io::{IsTerminal, Write};

use clap::{Args, ValueEnum};

use crate::diff::report::{self, Format};
use crate::error::Error;
use crate::ops::{self, Project};

/// Classes `--fail-on` can gate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 3 when any change risks replacing a stateful or identity-bearing resource.
    Replace,
    /// Exit 3 on replace risk or security broadening.
    Security,
}

/// Arguments of `keel diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Environment to compare (default: every environment).
    #[arg(conflicts_with_all = ["all", "envs"])]
    pub env: Option<String>,
    /// Every environment (the default).
    #[arg(long)]
    pub all: bool,
    /// Git revision whose committed generated/ is the "before" side.
    #[arg(
        long,
        value_name = "REV",
        default_value = "HEAD",
        conflicts_with = "envs"
    )]
    pub base: String,
    /// Take the "after" side from generated/ as committed at REV instead of synthesizing
    /// the working tree: nothing of REV runs and of its environment files only `tier` is
    /// read (the review gate judges a pull request's committed output with the base
    /// branch's keel).
    #[arg(long, value_name = "REV", conflicts_with = "envs")]
    pub head: Option<String>,
    /// Compare two environments of the working tree instead: what the second gets beyond
    /// the first (the first's account id and name are read as the second's).
    #[arg(long, num_args = 2, value_names = ["FROM", "TO"])]
    pub envs: Option<Vec<String>>,
    /// Only this stack.
    #[arg(long = "stack", value_name = "NAME")]
    pub stack: Option<String>,
    /// Output format (text is coloured on a terminal unless NO_COLOR is set).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Exit 3 when a change of this class (or a more severe one) is present.
    #[arg(long, value_enum, value_name = "CLASS")]
    pub fail_on: Option<FailOn>,
}

/// Runs `keel diff`, printing the report to stdout.
pub fn run(project: &Project, args: DiffArgs) -> Result<(), Error> {
    let (diffs, title) = match &args.envs {
        Some(pair) => {
            let (from, to) = match pair.as_slice() {
                [from, to] => (from, to),
                _ => {
                    return Err(Error::Usage(
                        "--envs takes two environments: FROM TO".into(),
                    ));
                }
            };
            (
                ops::diff::between_envs(project, from, to, args.stack.as_deref())?,
                format!("keel diff {from} → {to}"),
            )
        }
        None => {
            let request = ops::diff::Request {
                envs: args.env.iter().cloned().collect(),
                stack: args.stack.clone(),
                base: args.base.clone(),
            };
            match &args.head {
                Some(head) => (
                    ops::diff::between_commits(project, &request, head)?,
                    format!("keel diff {}..{head} (committed generated/)", args.base),
                ),
                None => (
                    ops::diff::against_git(project, &request)?,
                    format!("keel diff against {}", args.base),
                ),
            }
        }
    };
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let text = match args.format {
        Format::Text => report::text(&diffs, &title, color),
        Format::Markdown => report::markdown(&diffs, &title),
        Format::Json => report::json(&diffs, &args.base),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::Internal(e.into()))?;
    let t = report::totals(&diffs);
    let gated = match args.fail_on {
        Some(FailOn::Replace) => t.replace,
        Some(FailOn::Security) => t.replace + t.security,
        None => 0,
    };
    if gated > 0 {
        return Err(Error::Gate(format!(
            "{gated} change(s) at or above --fail-on {}: {} replace risk, {} security broadening",
            match args.fail_on {
                Some(FailOn::Replace) => "replace",
                _ => "security",
            },
            t.replace,
            t.security
        )));
    }
    Ok(())
}
