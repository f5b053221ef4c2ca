//! The operations the CLI calls: synth, check, list. They load environments, build stacks,
//! render, and (synth only) write through `render`.

pub mod check;
pub mod list;
pub mod synth;

use std::path::{Path, PathBuf};

use crate::env::{self, Env};
use crate::error::Error;

/// Where keel finds its inputs and writes its output.
#[derive(Debug, Clone)]
pub struct Project {
    /// The repository root (holds `environments/` and `generated/`).
    pub root: PathBuf,
}

impl Project {
    /// A project rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Project { root: root.into() }
    }

    /// `environments/`.
    pub fn environments_dir(&self) -> PathBuf {
        self.root.join("environments")
    }

    /// `generated/`.
    pub fn generated_dir(&self) -> PathBuf {
        self.root.join("generated")
    }

    /// Names of all environment files, sorted.
    pub fn environment_names(&self) -> Result<Vec<String>, Error> {
        let dir = self.environments_dir();
        let files = env::env_files(&dir)
            .map_err(|e| Error::Usage(format!("cannot list {}: {e}", dir.display())))?;
        Ok(files
            .iter()
            .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
            .collect())
    }

    /// Loads the named environments (all when `names` is empty), reporting every error of
    /// every file at once.
    pub fn load(&self, names: &[String]) -> Result<Vec<Env>, Error> {
        let known = self.environment_names()?;
        for n in names {
            if !known.contains(n) {
                return Err(Error::Usage(format!(
                    "no environment {n:?}: expected one of {} (files in {})",
                    known.join(", "),
                    self.environments_dir().display()
                )));
            }
        }
        let wanted: Vec<&String> = if names.is_empty() {
            known.iter().collect()
        } else {
            names.iter().collect()
        };
        let mut envs = Vec::new();
        let mut errors = Vec::new();
        for n in wanted {
            let path = self.environments_dir().join(format!("{n}.yaml"));
            let shown = Path::new("environments").join(format!("{n}.yaml"));
            match env::load_file(&path) {
                Ok(mut e) => {
                    e.path = shown;
                    envs.push(e);
                }
                Err(env::EnvErrors(list)) => errors.extend(list.into_iter().map(|mut e| {
                    e.file = shown.clone();
                    e
                })),
            }
        }
        if errors.is_empty() {
            Ok(envs)
        } else {
            Err(Error::Env(env::EnvErrors(errors)))
        }
    }
}
