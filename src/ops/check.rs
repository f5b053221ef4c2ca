//! `keel check`: every environment's `generated/` folder holds exactly what synth would
//! write, byte for byte.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::render;

use super::Project;
use super::synth::{self, Selection};

/// Returns the number of files checked, or [`Error::Stale`] naming every stale file.
pub fn check(project: &Project) -> Result<usize, Error> {
    // Never compare against a tree a concurrent synth is swapping.
    let _lock = project.lock(super::lock::Mode::Shared)?;
    let outputs = synth::build(project, &Selection::default())?;
    let generated = project.generated_dir();
    let mut stale = Vec::new();
    let mut checked = 0;
    let envs = project.environment_names()?;
    let trees: Vec<render::Tree<'_>> = envs
        .iter()
        .map(|env| synth::environment_tree(&outputs, env))
        .collect();
    // Reading thousands of files is most of a check: one environment per core, one file
    // at a time, and only the files of the right size.
    let work: Vec<_> = envs.iter().zip(&trees).collect();
    let found = super::in_parallel(&work, |(env, tree)| stale_in(&generated, env, tree));
    for ((_, tree), messages) in work.iter().zip(found) {
        checked += tree.len();
        stale.extend(messages?);
    }
    if generated.exists() {
        let entries = std::fs::read_dir(&generated).map_err(|e| {
            Error::Internal(anyhow::anyhow!("reading {}: {e}", generated.display()))
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !envs.contains(&name) {
                stale.push(format!("generated/{name} belongs to no environment"));
            }
        }
    }
    if stale.is_empty() {
        Ok(checked)
    } else {
        Err(Error::Stale(stale))
    }
}

/// The stale files of `generated/<env>` against `tree` (what synth writes there), one
/// message each: expected files in order, then the ones synth does not produce.
pub(crate) fn stale_in(
    generated: &Path,
    env: &str,
    tree: &render::Tree<'_>,
) -> anyhow::Result<Vec<String>> {
    Ok(render::compare(&generated.join(env), tree)?
        .into_iter()
        .map(|difference| match difference {
            render::Difference::Differs(p) => format!("{} differs", shown(env, &p)),
            render::Difference::Missing(p) => format!("{} is missing", shown(env, &p)),
            render::Difference::Extra(p) => {
                format!("{} is not produced by synth", shown(env, &p))
            }
        })
        .collect())
}

fn shown(env: &str, rel: &Path) -> String {
    PathBuf::from("generated")
        .join(env)
        .join(rel)
        .display()
        .to_string()
}
