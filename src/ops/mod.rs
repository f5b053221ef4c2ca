//! The operations the CLI calls: synth, check, list. They load environments, build stacks,
//! render, and (synth only) write through `render`.

pub mod adopt;
pub mod check;
pub mod diff;
pub mod drift;
#[cfg(feature = "aws")]
pub mod external;
pub mod list;
pub mod lock;
pub mod plan;
#[cfg(feature = "aws")]
pub mod preflight;
pub mod promote;
pub mod show;
pub mod storage;
pub mod synth;

use std::path::{Path, PathBuf};

use crate::env::load::SchemaCheck;
use crate::env::schema_cache::SchemaCache;
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

    /// Locks the project for one operation (see [`lock`]); says so on stderr if it must wait.
    pub fn lock(&self, mode: lock::Mode) -> Result<lock::Lock, Error> {
        if !self.root.is_dir() {
            return Err(Error::Usage(format!(
                "no project at {}: expected a folder holding environments/ (see --root)",
                self.root.display()
            )));
        }
        let waiting = |dir: &Path| {
            eprintln!(
                "waiting for another keel run on {} to finish (it holds the project's lock)",
                dir.display()
            );
        };
        Ok(lock::lock(&self.root, mode, waiting)?)
    }

    /// Refuses `path` (in the project) when it resolves outside the project, as a committed
    /// symbolic link can make it; a path that does not exist is left to whoever reads it.
    pub fn refuse_outside(&self, path: &Path, shown: &str) -> Result<(), Error> {
        let (Ok(root), Ok(real)) = (self.root.canonicalize(), path.canonicalize()) else {
            return Ok(());
        };
        if real.starts_with(&root) {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "{shown} resolves outside the project (through a symbolic link); keel reads its \
                 inputs only from inside the project: replace the link with the folder itself"
            )))
        }
    }

    /// `generated/`.
    pub fn generated_dir(&self) -> PathBuf {
        self.root.join("generated")
    }

    /// Names of all environment files, sorted.
    pub fn environment_names(&self) -> Result<Vec<String>, Error> {
        let dir = self.environments_dir();
        self.refuse_outside(&dir, "environments/")?;
        let files = env::env_files(&dir)
            .map_err(|e| Error::Usage(format!("cannot list {}: {e}", dir.display())))?;
        let mut names = Vec::new();
        let mut errors = Vec::new();
        for file in &files {
            match file.file_stem().and_then(|s| s.to_str()) {
                Some(name) if valid_environment_name(name) => names.push(name.to_owned()),
                _ => errors.push(env::EnvError {
                    // Debug-escaped: the name may hold control characters or invalid UTF-8.
                    file: Path::new("environments")
                        .join(format!("{:?}", file.file_name().unwrap_or_default())),
                    key: String::new(),
                    position: None,
                    message: "expected a file name <env>.yaml where <env> is a lowercase \
                              letter followed by up to 15 lowercase letters, digits or '-'; \
                              rename the file or move it out of environments/"
                        .into(),
                }),
            }
        }
        // A `.yml` file would be skipped without a word: the environment it means to add
        // would silently not exist.
        let listed = std::fs::read_dir(&dir)
            .map_err(|e| Error::Usage(format!("cannot list {}: {e}", dir.display())))?;
        let mut yml: Vec<PathBuf> = listed
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect();
        yml.sort();
        for file in yml {
            errors.push(env::EnvError {
                file: Path::new("environments")
                    .join(format!("{:?}", file.file_name().unwrap_or_default())),
                key: String::new(),
                position: None,
                message: "environment files end in .yaml, so this one would be ignored; \
                          rename it to .yaml"
                    .into(),
            });
        }
        if errors.is_empty() {
            Ok(names)
        } else {
            Err(Error::Env(env::EnvErrors(errors)))
        }
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
        let selected = self.select(names)?;
        // A file whose exact bytes passed the schema before skips it; the validator is
        // compiled (on another thread, while the files are parsed) only if one needs it.
        let cache = SchemaCache::in_project(&self.root);
        let read = in_parallel(
            &selected,
            |(name, file, shown)| -> Result<_, env::EnvErrors> {
                let bytes = env::load::read_file(file, shown)?;
                let digest = SchemaCache::digest(&bytes);
                let check = if cache.holds(name, &digest) {
                    SchemaCheck::PassedBefore
                } else {
                    SchemaCheck::Run
                };
                Ok((bytes, digest, check))
            },
        );
        if read
            .iter()
            .any(|r| matches!(r, Ok((_, _, SchemaCheck::Run))))
        {
            env::load::prepare_validator();
        }
        let work: Vec<_> = selected.iter().zip(&read).collect();
        let loaded = in_parallel(&work, |((name, _, shown), read)| match read {
            Ok((bytes, digest, check)) => {
                let env = env::load::load_bytes_with(shown, name, bytes, *check)?;
                if *check == SchemaCheck::Run {
                    cache.record(name, digest);
                }
                Ok(env)
            }
            Err(e) => Err(e.clone()),
        });
        for result in loaded {
            match result {
                Ok(e) => envs.push(e),
                Err(env::EnvErrors(list)) => errors.extend(list),
            }
        }
        if errors.is_empty() {
            let bytes: Vec<Option<&[u8]>> = read
                .iter()
                .map(|r| r.as_ref().ok().map(|(b, _, _)| b.as_slice()))
                .collect();
            errors.extend(self.shared_backends(&selected, &bytes, &envs)?);
        }
        if errors.is_empty() {
            Ok(envs)
        } else {
            Err(Error::Env(env::EnvErrors(errors)))
        }
    }
}

impl Project {
    /// Loaded environments whose state backend (bucket and key prefix) another environment
    /// file also names: one apply would overwrite the other's state. The other files are
    /// read for their `state` only; their own errors are theirs to report. `bytes` are the
    /// selected files' contents, to place each error.
    fn shared_backends(
        &self,
        selected: &[(String, PathBuf, PathBuf)],
        bytes: &[Option<&[u8]>],
        envs: &[Env],
    ) -> Result<Vec<env::EnvError>, Error> {
        let mut backends: Vec<(String, String, String)> = envs
            .iter()
            .map(|e| {
                let s = &e.spec.state;
                (e.name().to_owned(), s.bucket.clone(), s.key_prefix.clone())
            })
            .collect();
        for (name, file, shown) in self.select(&[])? {
            if envs.iter().any(|e| e.name() == name) {
                continue;
            }
            let Ok(bytes) = env::load::read_file(&file, &shown) else {
                continue;
            };
            let value: serde_json::Value =
                serde_saphyr::from_str(&String::from_utf8_lossy(&bytes)).unwrap_or_default();
            let field = |k: &str| {
                value
                    .pointer(&format!("/state/{k}"))?
                    .as_str()
                    .map(str::to_owned)
            };
            if let (Some(bucket), Some(prefix)) = (field("bucket"), field("key_prefix")) {
                backends.push((name, bucket, prefix));
            }
        }
        let mut errors = Vec::new();
        for (i, j) in env::check::shared_backends(&backends) {
            for (mine, other) in [(i, j), (j, i)] {
                let Some(at) = selected.iter().position(|(n, _, _)| *n == backends[mine].0) else {
                    continue;
                };
                let position = bytes[at].and_then(|bytes| {
                    env::load::locate(&String::from_utf8_lossy(bytes))
                        .get("/state/bucket")
                        .copied()
                });
                let (_, bucket, prefix) = &backends[other];
                errors.push(env::EnvError {
                    file: selected[at].2.clone(),
                    key: "state.bucket".into(),
                    position,
                    message: format!(
                        "expected a state backend (bucket and key prefix) of its own, found the one of environments/{}.yaml ({bucket}, {}): one environment's apply would overwrite the other's state",
                        backends[other].0,
                        prefix.trim_end_matches('/')
                    ),
                });
            }
        }
        Ok(errors)
    }
}

/// `f` of every item, in the items' order, computed on up to one thread per core.
pub(crate) fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            // A worker only panics if `f` panicked: pass that panic on unchanged.
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Whether `name` can name an environment (the schema's pattern for `name`, which must equal
/// the file's stem): `^[a-z][a-z0-9-]{0,15}$`.
fn valid_environment_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 16
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_parallel_keeps_the_items_order() {
        let items: Vec<u64> = (0..200).collect();
        let squares = in_parallel(&items, |i| i * i);
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
        assert!(in_parallel(&[] as &[u64], |i| *i).is_empty());
    }

    #[test]
    fn environment_names_follow_the_schema_pattern() {
        for ok in ["dev", "prod-eu", "a", "a234567890123456"] {
            assert!(valid_environment_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Prod",
            "1dev",
            "a2345678901234567",
            "dev.old",
            "d\nv",
            "é",
        ] {
            assert!(!valid_environment_name(bad), "{bad:?}");
        }
    }
}
