//! `keel check`: every environment's `generated/` folder holds exactly what synth would
//! write, byte for byte.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::render;

use super::Project;
use super::synth::{self, Selection};

/// What a passing check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Files compared.
    pub files: usize,
    /// Staging folders a killed synth left (`generated/.prod.keel-new-<pid>`): not output,
    /// so ignored; the next synth removes them (check holds only a shared lock).
    pub ignored: Vec<String>,
}

/// Returns what was checked, or [`Error::Stale`] naming every stale file.
pub fn check(project: &Project) -> Result<Checked, Error> {
    // Never compare against a tree a concurrent synth is swapping.
    let _lock = project.lock(super::lock::Mode::Shared)?;
    let outputs = synth::build(project, &Selection::default())?;
    let generated = project.generated_dir();
    let mut stale = Vec::new();
    let mut checked = 0;
    let mut envs = project.environment_names()?;
    // A linked folder is never followed: it is not what synth writes, whatever it holds.
    let linked = |env: &str| crate::inputs::first_link(&project.root, &generated.join(env));
    for env in &envs {
        if let Some(link) = linked(env) {
            let shown = link
                .strip_prefix(&project.root)
                .unwrap_or(&link)
                .display()
                .to_string();
            if !stale.iter().any(|s: &String| s.starts_with(&shown)) {
                stale.push(format!(
                    "{shown} is a symbolic link, not a folder synth writes"
                ));
            }
        }
    }
    let all = envs.clone();
    envs.retain(|env| linked(env).is_none());
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
    let mut ignored = Vec::new();
    if generated.is_dir() && crate::inputs::first_link(&project.root, &generated).is_none() {
        let entries = std::fs::read_dir(&generated).map_err(|e| {
            Error::Internal(
                anyhow::Error::new(e).context(format!("reading {}", generated.display())),
            )
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !all.contains(&name) && !render::is_leftover(&name) {
                stale.push(format!("generated/{name} belongs to no environment"));
            }
        }
        ignored = render::leftovers(&generated)
            .iter()
            .map(|p| {
                p.strip_prefix(&project.root)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect();
    }
    if stale.is_empty() {
        Ok(Checked {
            files: checked,
            ignored,
        })
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
