//! RDS storage only grows: AWS refuses to decrease an instance's allocated storage, so a
//! smaller `allocated_storage_gib` would pass synth and review and fail at apply. Before
//! synth writes, every `aws_db_instance` it built is compared with the same resource in the
//! committed `generated/<env>/<stack>/` tree (when there is one) and a decrease is refused
//! at the environment file's key.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Project;
use super::synth::Output;
use crate::env::{EnvError, EnvErrors, load};
use crate::error::Error;

/// The environment-file key of a stack's database storage (every stack with a database
/// calls its settings `database`).
fn storage_pointer(stack: &str) -> String {
    format!("/stacks/{stack}/database/allocated_storage_gib")
}

/// `allocated_storage` of every `aws_db_instance` in one Terraform JSON file, by name.
fn allocated(json: &str) -> Vec<(String, u64)> {
    let Ok(value) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let Some(instances) = value
        .pointer("/resource/aws_db_instance")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    instances
        .iter()
        .filter_map(|(name, body)| Some((name.clone(), body.get("allocated_storage")?.as_u64()?)))
        .collect()
}

/// A committed file of at most 1 MiB, read without following a link; `None` when there is
/// none (a first synth) or it is not a regular file.
fn committed(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// One decrease: where it is and by how much.
struct Shrink {
    env: String,
    stack: &'static str,
    resource: String,
    file: PathBuf,
    was: u64,
    now: u64,
}

/// Refuses outputs that would decrease an RDS instance's allocated storage below what the
/// committed tree under `generated/` holds; every decrease is reported, at its key.
pub fn refuse_shrink(project: &Project, outputs: &[Output]) -> Result<(), Error> {
    let mut shrinks = Vec::new();
    for o in outputs {
        for (path, body) in &o.files {
            if !path.starts_with("terraform") {
                continue;
            }
            let shown = Path::new("generated").join(&o.env).join(o.stack).join(path);
            let Some(old) = committed(&project.root.join(&shown)) else {
                continue;
            };
            let old = allocated(&old);
            for (name, now) in allocated(body) {
                if let Some((_, was)) = old.iter().find(|(n, _)| *n == name)
                    && *was > now
                {
                    shrinks.push(Shrink {
                        env: o.env.clone(),
                        stack: o.stack,
                        resource: format!("aws_db_instance.{name}"),
                        file: shown.clone(),
                        was: *was,
                        now,
                    });
                }
            }
        }
    }
    if shrinks.is_empty() {
        return Ok(());
    }
    Err(Error::Env(EnvErrors(
        shrinks.iter().map(|s| locate(project, s)).collect(),
    )))
}

/// The error of `s`, placed at its key in the environment file when it can be found there.
fn locate(project: &Project, s: &Shrink) -> EnvError {
    let message = format!(
        "expected at least {} GiB, the allocated storage of {} in {} (RDS cannot shrink storage), found {}",
        s.was,
        s.resource,
        s.file.display(),
        s.now
    );
    let shown = Path::new("environments").join(format!("{}.yaml", s.env));
    let pointer = storage_pointer(s.stack);
    let file = project.environments_dir().join(format!("{}.yaml", s.env));
    let parsed = load::read_file(&file, &shown)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| load::parse(&shown, &s.env, &text).ok());
    match parsed {
        Some(parsed) => parsed.error(&pointer, message),
        None => EnvError {
            file: shown,
            key: pointer.trim_start_matches('/').replace('/', "."),
            position: None,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_allocated_storage_by_instance() {
        let json = r#"{"resource": {"aws_db_instance": {"main": {"allocated_storage": 100}}}}"#;
        assert_eq!(allocated(json), [("main".to_owned(), 100)]);
        assert_eq!(allocated("{}"), []);
        assert_eq!(allocated("not json"), []);
    }
}
