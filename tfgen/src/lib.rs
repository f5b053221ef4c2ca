//! tfgen: keel's typed Terraform bindings, generated from the provider schema.
//!
//! Two steps, two commands (ARCHITECTURE.md, "Typed Terraform bindings"):
//! - `cargo run -p keel-tfgen -- schema` (needs terraform, the provider mirror and
//!   `../shared`): trims both majors' schemas to the types in `tfgen/types.txt` and in
//!   `generated/`, into `tfgen/schema/`;
//! - `cargo run -p keel-tfgen -- bindings` (needs nothing but rustfmt): writes `tf-aws/src/aws/`
//!   from the committed trimmed schemas. A test fails while the two differ.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub mod emit;
pub mod schema;

/// The paths of the generator's inputs and outputs inside the keel repository.
pub struct Repo {
    /// The repository root.
    pub root: PathBuf,
}

impl Repo {
    /// The repository whose `tfgen/` this crate is.
    pub fn here() -> Repo {
        Repo {
            root: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        }
    }

    /// `tfgen/types.txt`.
    pub fn types(&self) -> PathBuf {
        self.root.join("tfgen/types.txt")
    }

    /// The trimmed schema of one provider version.
    pub fn schema(&self, version: &str) -> PathBuf {
        self.root.join(format!("tfgen/schema/aws-{version}.json"))
    }

    /// `tf-aws/src/aws/`.
    pub fn bindings_dir(&self) -> PathBuf {
        self.root.join("tf-aws/src/aws")
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn read_json(path: &Path) -> Result<Value, String> {
    serde_json::from_str(&read(path)?).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// The bindings the committed trimmed schemas give: path under `tf-aws/src/aws/` -> formatted
/// source.
pub fn bindings(repo: &Repo) -> Result<BTreeMap<String, String>, String> {
    let types = schema::read_types(&read(&repo.types())?)?;
    let v5 = read_json(&repo.schema(schema::V5))?;
    let v6 = read_json(&repo.schema(schema::V6))?;
    emit::bindings(&types, &v5, &v6)?
        .into_iter()
        .map(|(path, src)| {
            Ok((
                path.clone(),
                rustfmt(&src).map_err(|e| format!("{path}: {e}"))?,
            ))
        })
        .collect()
}

/// Formats Rust source with the toolchain's rustfmt (edition 2024, default style, as
/// `cargo fmt` formats the repository).
pub fn rustfmt(src: &str) -> Result<String, String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    // The handle is there: stdin was requested as a pipe just above.
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(src.as_bytes())
            .map_err(|e| format!("writing to rustfmt: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "rustfmt refused the generated source: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("rustfmt printed no UTF-8: {e}"))
}

/// Rebuilds `types.txt` (adding the types `generated/` uses) and both trimmed schemas.
pub fn write_schemas(repo: &Repo, sources: &schema::Sources) -> Result<(), String> {
    let mut types = schema::read_types(&read(&repo.types()).unwrap_or_default())?;
    types.extend(schema::types_in_generated(&repo.root.join("generated"))?);
    let v6 = schema::trim_v6(&read_json(&sources.v6_schema)?, &types)?;
    let v5 = schema::trim_v5(
        &schema::terraform_v5_schema(&sources.mirror, &std::env::temp_dir())?,
        &types,
        &v6,
    )?;
    write(&repo.types(), &schema::write_types(&types))?;
    for (version, doc) in [(schema::V5, v5), (schema::V6, v6)] {
        let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        text.push('\n');
        write(&repo.schema(version), &text)?;
    }
    Ok(())
}

/// Writes the bindings, removing files of `tf-aws/src/aws/` the generator no longer makes.
pub fn write_bindings(repo: &Repo) -> Result<usize, String> {
    let files = bindings(repo)?;
    let dir = repo.bindings_dir();
    for stale in existing_files(&dir)? {
        if !files.contains_key(&stale) {
            let path = dir.join(&stale);
            std::fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
        }
    }
    for (path, src) in &files {
        write(&dir.join(path), src)?;
    }
    Ok(files.len())
}

/// The `.rs` files under `dir`, relative to it, with `/` separators.
pub fn existing_files(dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .map_err(|e| format!("reading {}: {e}", d.display()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).map_err(|e| e.to_string())?;
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
