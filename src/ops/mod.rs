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

    /// The named environments (all when `names` is empty), each as (name, file to read,
    /// path to show in messages); an unknown name is a user error.
    pub fn select(&self, names: &[String]) -> Result<Vec<(String, PathBuf, PathBuf)>, Error> {
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
        let wanted = if names.is_empty() {
            known
        } else {
            names.to_vec()
        };
        Ok(wanted
            .into_iter()
            .map(|n| {
                let file = self.environments_dir().join(format!("{n}.yaml"));
                let shown = Path::new("environments").join(format!("{n}.yaml"));
                (n, file, shown)
            })
            .collect())
    }

    /// Loads and validates the named environments (all when `names` is empty), reporting
    /// every error of every file at once.
    pub fn load(&self, names: &[String]) -> Result<Vec<Env>, Error> {
        let mut envs = Vec::new();
        let mut errors = Vec::new();
        for (name, file, shown) in self.select(names)? {
            match read(&file, &shown).and_then(|text| env::load_str(&shown, &name, &text)) {
                Ok(e) => envs.push(e),
                Err(env::EnvErrors(list)) => errors.extend(list),
            }
        }
        if errors.is_empty() {
            Ok(envs)
        } else {
            Err(Error::Env(env::EnvErrors(errors)))
        }
    }
}

/// Reads an environment file; a failure is reported like any other error of that file.
pub(crate) fn read(file: &Path, shown: &Path) -> Result<String, env::EnvErrors> {
    std::fs::read_to_string(file).map_err(|e| {
        env::EnvErrors(vec![env::EnvError {
            file: shown.to_owned(),
            key: String::new(),
            position: None,
            message: format!("cannot read the file: {e}"),
        }])
    })
}
