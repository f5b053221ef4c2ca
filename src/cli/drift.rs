//! `keel drift` arguments and output.

use std::io::{IsTerminal, Write};

use clap::Args;

use crate::diff::report::{self, Format};
use crate::error::Error;
use crate::ops::{self, Project};

/// `keel drift ENV [--stack NAME] [--format ...] [--kubernetes]`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Environment name.
    pub env: String,
    /// Only this stack.
    #[arg(long = "stack", value_name = "NAME")]
    pub stack: Option<String>,
    /// `text`, `markdown` (an issue body) or `json`.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also compare each `k8s/` folder with the cluster (`kubectl diff --server-side`).
    #[arg(long)]
    pub kubernetes: bool,
}

/// Runs `terraform plan -refresh-only` per root, prints the drift, and exits 3 when there
/// is any.
pub fn run(project: &Project, args: DriftArgs) -> Result<(), Error> {
    let request = ops::drift::Request {
        env: args.env.clone(),
        stack: args.stack.clone(),
        kubernetes: args.kubernetes,
    };
    let diffs = ops::drift::drift(project, &request)?;
    let title = format!("keel drift {}", args.env);
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let text = match args.format {
        Format::Text => report::text(&diffs, &title, color),
        Format::Markdown => report::markdown(&diffs, &title),
        Format::Json => report::json(&diffs, "refresh-only plan"),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::Internal(e.into()))?;
    let drifted: usize = diffs.iter().map(|d| d.changes.len()).sum();
    if drifted > 0 {
        return Err(Error::Gate(format!(
            "drift: {drifted} resource(s) or object(s) differ from the last apply in {}",
            args.env
        )));
    }
    Ok(())
}
