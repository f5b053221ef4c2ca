//! Rendering and writing: stack → file bytes, and the only code that writes output to disk.
//!
//! A replacement is built completely in a temporary directory next to its target and then
//! swapped in by rename, so an interrupted or failed run never leaves a half-written tree.
//! **Invariant:** only this module writes under `generated/` (the other writers are `keel
//! promote --write`, which replaces one environment file by rename, and `env::schema_cache`,
//! which keeps its records under `.keel/`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::stack::{Stack, StackError};

pub mod readme;

/// Files of one stack, relative to `generated/<env>/<stack>/`.
pub type Files = BTreeMap<PathBuf, String>;

/// Renders a stack into `terraform/*.tf.json`, `k8s/*.yaml`, `jobs/<step>/*.yaml`,
/// `deploy/*` and `addons/*`.
pub fn stack_files(stack: &Stack, env: &str) -> Result<Files, StackError> {
    let tf = stack.terraform.render().map_err(|errors| {
        let message: Vec<String> = errors.iter().map(ToString::to_string).collect();
        StackError::new(stack.name, env, message.join("; "))
    })?;
    let mut files = Files::new();
    for (name, body) in tf {
        files.insert(Path::new("terraform").join(name), body);
    }
    for (name, body) in &stack.kubernetes {
        files.insert(Path::new("k8s").join(name), body.clone());
    }
    for (name, body) in &stack.deploy {
        files.insert(Path::new("deploy").join(name), body.clone());
    }
    for (name, body) in &stack.addon_values {
        files.insert(Path::new("addons").join(name), body.clone());
    }
    for (dir, objects) in &stack.jobs {
        let rendered = crate::k8s::render(objects)
            .map_err(|e| StackError::new(stack.name, env, format!("jobs/{dir}: {e}")))?;
        for (name, body) in rendered {
            files.insert(Path::new("jobs").join(dir).join(name), body);
        }
    }
    Ok(files)
}

/// The files of one directory to replace: paths relative to it, and their text.
pub type Tree<'a> = Vec<(PathBuf, &'a str)>;

/// Replaces directory `target` by a directory holding exactly `files` (see [`replace_dirs`]).
pub fn replace_dir(target: &Path, files: &Files) -> Result<()> {
    let tree: Tree<'_> = files.iter().map(|(p, b)| (p.clone(), b.as_str())).collect();
    replace_dirs(&[(target.to_owned(), tree)])
}

/// Replaces every `target` by a directory holding exactly its files, all or nothing: every new
/// tree is first written completely beside its target (a full disk or a read-only folder
/// fails here, before anything changed), then each target is moved aside and the new tree
/// renamed into place; if a rename fails, the targets already swapped get their old trees back.
pub fn replace_dirs(replacements: &[(PathBuf, Tree<'_>)]) -> Result<()> {
    let pid = std::process::id();
    // Targets are distinct folders, so they are compared and staged on every core: creating
    // thousands of files is the slowest part of a first synth.
    let results =
        crate::ops::in_parallel(replacements, |(target, files)| stage(target, files, pid));
    let mut staged: Vec<Swap> = Vec::with_capacity(replacements.len());
    let mut failure = None;
    for result in results {
        match result {
            Ok(Some(swap)) => staged.push(swap),
            Ok(None) => {}
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        for swap in &staged {
            let _ = fs::remove_dir_all(&swap.staging);
        }
        return Err(e);
    }
    for i in 0..staged.len() {
        if let Err(e) = staged[i].swap() {
            for swap in staged[..i].iter().rev() {
                swap.undo();
            }
            for swap in &staged {
                let _ = fs::remove_dir_all(&swap.staging);
            }
            return Err(e);
        }
    }
    // Every new tree is in place; an old one that cannot be removed now is removed by the
    // next run's `recover_interrupted`.
    for swap in &staged {
        if swap.had_old {
            let _ = fs::remove_dir_all(&swap.backup);
        }
    }
    Ok(())
}

/// One target with its new tree written beside it.
struct Swap {
    target: PathBuf,
    staging: PathBuf,
    backup: PathBuf,
    had_old: bool,
}

/// Writes `files` to a staging folder beside `target`, or nothing when `target` already holds
/// exactly these files (the everyday run: creating files costs far more than reading them).
fn stage(target: &Path, files: &Tree<'_>, pid: u32) -> Result<Option<Swap>> {
    let parent = target.parent().context("target directory has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let leaf = target.file_name().and_then(|s| s.to_str()).unwrap_or("out");
    recover_interrupted(parent, leaf, target)?;
    if holds_exactly(target, files)? {
        return Ok(None);
    }
    let staging = parent.join(format!(".{leaf}.keel-new-{pid}"));
    let backup = parent.join(format!(".{leaf}.keel-old-{pid}"));
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    if let Err(e) = write_tree(&staging, files) {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    Ok(Some(Swap {
        target: target.to_owned(),
        staging,
        backup,
        had_old: false,
    }))
}

/// Whether directory `target` holds exactly `files`, byte for byte, and nothing else. Reads
/// one file at a time, and none at all once the names differ.
fn holds_exactly(target: &Path, files: &Tree<'_>) -> Result<bool> {
    if !target.is_dir() {
        return Ok(false);
    }
    let actual = file_paths(target)?;
    if actual.len() != files.len() || files.iter().any(|(rel, _)| !actual.contains(rel)) {
        return Ok(false);
    }
    for (rel, body) in files {
        if !holds(&target.join(rel), body)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the file at `path` holds exactly `body`: a regular file (a link, pipe or folder
/// never does, and is not followed or opened), read only when the size matches.
fn holds(path: &Path, body: &str) -> Result<bool> {
    use crate::inputs::Refused;
    let (file, size) = match crate::inputs::open_regular(path) {
        Ok(opened) => opened,
        Err(Refused::Link | Refused::NotRegular) => return Ok(false),
        Err(Refused::Io(e)) => {
            return Err(e).with_context(|| format!("reading {}", path.display()));
        }
        Err(Refused::TooLarge(_)) => return Ok(false),
    };
    if size != body.len() as u64 {
        return Ok(false);
    }
    let mut bytes = Vec::with_capacity(body.len());
    std::io::Read::read_to_end(&mut std::io::Read::take(file, size + 1), &mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes == body.as_bytes())
}

/// How a folder differs from the files it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The file is there with other bytes.
    Differs(PathBuf),
    /// The file is not there.
    Missing(PathBuf),
    /// A file is there that should not be.
    Extra(PathBuf),
}

/// Every difference between folder `target` (missing: empty) and `files`: the expected files
/// in their order, then the extra ones sorted. Reads one file at a time, and only files of
/// the expected size.
pub fn compare(target: &Path, files: &Tree<'_>) -> Result<Vec<Difference>> {
    let mut actual = if target.is_dir() {
        file_paths(target)?
    } else {
        std::collections::BTreeSet::new()
    };
    // A killed synth's staging folders are not output (`leftovers` lists them).
    actual.retain(|rel| {
        !rel.components()
            .any(|c| is_leftover(&c.as_os_str().to_string_lossy()))
    });
    let mut out = Vec::new();
    for (rel, body) in files {
        if !actual.remove(rel) {
            out.push(Difference::Missing(rel.clone()));
            continue;
        }
        if !holds(&target.join(rel), body)? {
            out.push(Difference::Differs(rel.clone()));
        }
    }
    out.extend(actual.into_iter().map(Difference::Extra));
    Ok(out)
}

/// Every file under `dir` (descending into folders, never through a link: a link is listed
/// like a file), relative to it.
fn file_paths(dir: &Path) -> Result<std::collections::BTreeSet<PathBuf>> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry.with_context(|| format!("reading {}", d.display()))?;
            let path = entry.path();
            if is_dir(&entry) {
                stack.push(path);
            } else {
                // `path` was found under `dir`, so the prefix is always there.
                out.insert(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
            }
        }
    }
    Ok(out)
}

/// Whether a directory entry is a folder (a link to one is not).
fn is_dir(entry: &fs::DirEntry) -> bool {
    entry.file_type().is_ok_and(|t| t.is_dir())
}

/// Whether `name` is a staging or backup folder of a swap (`.<leaf>.keel-new-<pid>`,
/// `.<leaf>.keel-old-<pid>`), which only a killed synth leaves behind.
pub fn is_leftover(name: &str) -> bool {
    name.starts_with('.')
        && [".keel-new-", ".keel-old-"].iter().any(|marker| {
            name.rsplit_once(marker).is_some_and(|(leaf, pid)| {
                leaf.len() > 1 && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
            })
        })
}

/// The swap leftovers in `generated` and its environment folders (where synth stages), for
/// `check` to mention and ignore.
pub fn leftovers(generated: &Path) -> Vec<PathBuf> {
    let entries = |dir: &Path| -> Vec<fs::DirEntry> {
        fs::read_dir(dir).into_iter().flatten().flatten().collect()
    };
    let mut out = Vec::new();
    for entry in entries(generated) {
        if is_leftover(&entry.file_name().to_string_lossy()) {
            out.push(entry.path());
        } else if is_dir(&entry) {
            // One level down: `generated/<env>/.<stack>.keel-new-<pid>`.
            out.extend(
                entries(&entry.path())
                    .into_iter()
                    .filter(|e| is_leftover(&e.file_name().to_string_lossy()))
                    .map(|e| e.path()),
            );
        }
    }
    out.sort();
    out
}

/// Removes every swap leftover under `generated` (see [`leftovers`]), first restoring a
/// target that a killed run moved aside and never replaced. Only for a caller holding the
/// project's exclusive lock: then no other run's staging folder can be there.
pub fn remove_leftovers(generated: &Path) -> Result<()> {
    let mut parents: Vec<PathBuf> = leftovers(generated)
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    parents.sort();
    parents.dedup();
    for parent in parents {
        recover_all(&parent)?;
    }
    Ok(())
}

impl Swap {
    fn swap(&mut self) -> Result<()> {
        self.had_old = self.target.exists();
        if self.had_old {
            fs::rename(&self.target, &self.backup)
                .with_context(|| format!("moving {} aside", self.target.display()))?;
        }
        if let Err(e) = fs::rename(&self.staging, &self.target) {
            if self.had_old {
                let _ = fs::rename(&self.backup, &self.target);
            }
            return Err(e)
                .with_context(|| format!("moving the new tree into {}", self.target.display()));
        }
        Ok(())
    }

    /// Puts the old tree back after a later swap failed (best effort: what cannot be moved
    /// now is restored by the next run's `recover_interrupted`).
    fn undo(&self) {
        if fs::rename(&self.target, &self.staging).is_ok() && self.had_old {
            let _ = fs::rename(&self.backup, &self.target);
        }
    }
}

/// [`recover_interrupted`] for every leaf with leftovers in `parent`.
fn recover_all(parent: &Path) -> Result<()> {
    let mut leaves: Vec<String> = fs::read_dir(parent)
        .with_context(|| format!("reading {}", parent.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (leaf, _) = name.rsplit_once(".keel-")?;
            (is_leftover(&name)).then(|| leaf[1..].to_owned())
        })
        .collect();
    leaves.sort();
    leaves.dedup();
    for leaf in leaves {
        recover_interrupted(parent, &leaf, &parent.join(&leaf))?;
    }
    Ok(())
}

/// Cleans up after a run that was killed mid-swap: a target that was moved aside but never
/// replaced gets its old tree back, and half-written new trees are removed.
fn recover_interrupted(parent: &Path, leaf: &str, target: &Path) -> Result<()> {
    let new_prefix = format!(".{leaf}.keel-new-");
    let old_prefix = format!(".{leaf}.keel-old-");
    let mut entries: Vec<PathBuf> = fs::read_dir(parent)
        .with_context(|| format!("reading {}", parent.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(&old_prefix) && fs::symlink_metadata(target).is_err() {
            fs::rename(&path, target).with_context(|| {
                format!("restoring {} from {}", target.display(), path.display())
            })?;
        } else if name.starts_with(&new_prefix) || name.starts_with(&old_prefix) {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

fn write_tree(root: &Path, files: &Tree<'_>) -> Result<()> {
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let mut made: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
    for (rel, body) in files {
        let path = root.join(rel);
        if let Some(dir) = path.parent()
            && !made.contains(dir)
        {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            made.insert(dir.to_owned());
        }
        fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Every regular file under `dir`, relative to it, with its bytes (missing dir: empty; links
/// and other special files are skipped, not followed).
pub fn read_tree(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    if !dir.exists() {
        return Ok(BTreeMap::new());
    }
    let mut out = BTreeMap::new();
    for rel in file_paths(dir)? {
        let path = dir.join(&rel);
        match crate::inputs::read_regular(&path, u64::MAX) {
            Ok(bytes) => {
                out.insert(rel, bytes);
            }
            Err(crate::inputs::Refused::Io(e)) => {
                return Err(e).with_context(|| format!("reading {}", path.display()));
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_names_what_differs_is_missing_or_is_extra() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("prod");
        fs::create_dir_all(target.join("k8s")).unwrap();
        fs::write(target.join("same.json"), "{}\n").unwrap();
        fs::write(target.join("size.json"), "{}\n").unwrap();
        fs::write(target.join("bytes.json"), "ab\n").unwrap();
        fs::write(target.join("k8s/stray.yaml"), "x\n").unwrap();
        let tree: Tree<'_> = vec![
            (PathBuf::from("same.json"), "{}\n"),
            (PathBuf::from("size.json"), "{ }\n"),
            (PathBuf::from("bytes.json"), "ba\n"),
            (PathBuf::from("new.json"), "{}\n"),
        ];
        assert_eq!(
            compare(&target, &tree).unwrap(),
            [
                Difference::Differs("size.json".into()),
                Difference::Differs("bytes.json".into()),
                Difference::Missing("new.json".into()),
                Difference::Extra("k8s/stray.yaml".into()),
            ]
        );
        // A folder that is not there lacks every file.
        assert_eq!(
            compare(&tmp.path().join("dev"), &tree[..1].to_vec()).unwrap(),
            [Difference::Missing("same.json".into())]
        );
    }

    #[test]
    fn an_interrupted_swap_is_recovered() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("prod");
        // Killed after moving the old tree aside and while writing the new one.
        fs::create_dir_all(tmp.path().join(".prod.keel-old-1")).unwrap();
        fs::write(tmp.path().join(".prod.keel-old-1/a.json"), "old\n").unwrap();
        fs::create_dir_all(tmp.path().join(".prod.keel-new-1")).unwrap();
        let mut files = Files::new();
        files.insert("a.json".into(), "new\n".into());
        replace_dir(&target, &files).unwrap();
        assert_eq!(fs::read_to_string(target.join("a.json")).unwrap(), "new\n");
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("prod")]);
    }

    #[test]
    fn an_unchanged_tree_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("prod");
        let mut files = Files::new();
        files.insert("a/x.json".into(), "1\n".into());
        replace_dir(&target, &files).unwrap();
        let marker = target.join("a");
        let before = fs::metadata(&marker).unwrap().modified().unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let (dir, file) = (inode(&target), inode(&target.join("a/x.json")));
        replace_dir(&target, &files).unwrap();
        assert_eq!(
            (inode(&target), inode(&target.join("a/x.json"))),
            (dir, file)
        );
        assert_eq!(fs::metadata(&marker).unwrap().modified().unwrap(), before);
        // A stray file, a changed byte, a missing file: each is replaced.
        fs::write(target.join("stray"), "x").unwrap();
        replace_dir(&target, &files).unwrap();
        assert!(!target.join("stray").exists());
        fs::write(target.join("a/x.json"), "2\n").unwrap();
        replace_dir(&target, &files).unwrap();
        assert_eq!(fs::read_to_string(target.join("a/x.json")).unwrap(), "1\n");
        fs::remove_file(target.join("a/x.json")).unwrap();
        replace_dir(&target, &files).unwrap();
        assert_eq!(fs::read_to_string(target.join("a/x.json")).unwrap(), "1\n");
    }

    #[test]
    fn replace_dir_swaps_whole_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("prod");
        let mut files = Files::new();
        files.insert("a/x.json".into(), "1\n".into());
        files.insert("b.json".into(), "2\n".into());
        replace_dir(&target, &files).unwrap();
        let mut second = Files::new();
        second.insert("b.json".into(), "3\n".into());
        replace_dir(&target, &second).unwrap();
        let tree = read_tree(&target).unwrap();
        assert_eq!(tree.len(), 1, "stale files are gone: {tree:?}");
        assert_eq!(tree[Path::new("b.json")], b"3\n");
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("prod")]);
    }
}
