//! `keel check`: every environment's `generated/` folder holds exactly what synth would
//! write, byte for byte.

use std::collections::BTreeSet;
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
    // Reading thousands of files is most of a check: one environment per core.
    let trees = super::in_parallel(&envs, |env| render::read_tree(&generated.join(env)));
    for (env, actual) in envs.iter().zip(trees) {
        let actual = actual?;
        let mut expected_paths = BTreeSet::new();
        for o in outputs.iter().filter(|o| &o.env == env) {
            for (rel, body) in &o.files {
                let path = Path::new(o.stack).join(rel);
                checked += 1;
                match actual.get(&path) {
                    Some(bytes) if bytes == body.as_bytes() => {}
                    Some(_) => stale.push(format!("{} differs", shown(env, &path))),
                    None => stale.push(format!("{} is missing", shown(env, &path))),
                }
                expected_paths.insert(path);
            }
        }
        for path in actual.keys().filter(|p| !expected_paths.contains(*p)) {
            stale.push(format!("{} is not produced by synth", shown(env, path)));
        }
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

fn shown(env: &str, rel: &Path) -> String {
    PathBuf::from("generated")
        .join(env)
        .join(rel)
        .display()
        .to_string()
}
