//! `keel diff`: what the working tree's synth would change against `generated/` as committed
//! at a git revision (or between two environments of the same stacks), classified by
//! [`crate::diff::classify`].
//!
//! Git is run as a process (`git ls-tree`, `git cat-file --batch`); nothing is written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::diff::{self, FileTree, StackDiff};
use crate::error::Error;
use crate::{env, render};

use super::Project;
use super::synth::{self, Selection};

/// What to compare.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Environments; empty means every environment (in the working tree or at the base).
    pub envs: Vec<String>,
    /// Only this stack.
    pub stack: Option<String>,
    /// Git revision whose `generated/` is the "before" side.
    pub base: String,
}

/// Diffs the working tree's synth against `generated/` at `request.base`, one entry per
/// stack that exists on either side, in environment then stack order.
pub fn against_git(project: &Project, request: &Request) -> Result<Vec<StackDiff>, Error> {
    let git = Git::open(&project.root)?;
    let commit = git.resolve(&request.base)?;
    let mut before_envs = by_env(git.read_tree(&commit, "generated")?);
    let working = project.environment_names()?;
    let envs: Vec<String> = if request.envs.is_empty() {
        let all: BTreeSet<String> = working
            .iter()
            .cloned()
            .chain(before_envs.keys().cloned())
            .collect();
        all.into_iter().collect()
    } else {
        for e in &request.envs {
            if !working.contains(e) && !before_envs.contains_key(e) {
                return Err(Error::Usage(format!(
                    "no environment {e:?} in the working tree or in generated/ at {}: expected one of {}",
                    request.base,
                    working.join(", ")
                )));
            }
        }
        request.envs.clone()
    };
    let to_build: Vec<String> = envs
        .iter()
        .filter(|e| working.contains(e))
        .cloned()
        .collect();
    let outputs = if to_build.is_empty() {
        Vec::new()
    } else {
        synth::build(
            project,
            &Selection {
                envs: to_build.clone(),
                stack: request.stack.clone(),
            },
        )?
    };
    // Read before `before_envs` is consumed below; under the lock synth takes to write.
    let hand_edits = {
        let _lock = project.lock(super::lock::Mode::Shared)?;
        hand_edits(project, &to_build, &outputs, &before_envs, request)?
    };
    let mut diffs = Vec::new();
    for env in &envs {
        let before = diff::split_stacks(before_envs.remove(env).unwrap_or_default());
        let mut after: BTreeMap<String, FileTree> = BTreeMap::new();
        for o in outputs.iter().filter(|o| &o.env == env) {
            after.insert(o.stack.to_owned(), to_tree(&o.files));
        }
        let stacks: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for stack in stacks {
            if request.stack.as_ref().is_some_and(|s| s != stack) {
                continue;
            }
            let empty = FileTree::new();
            diffs.push(diff::diff_stack(
                env,
                stack,
                before.get(stack).unwrap_or(&empty),
                after.get(stack).unwrap_or(&empty),
            ));
        }
    }
    let base_files = git.read_tree(&commit, "environments")?;
    for env in envs.iter().filter(|e| working.contains(e)) {
        let file = format!("{env}.yaml");
        let now = env::load::read_file(
            &project.environments_dir().join(&file),
            &Path::new("environments").join(&file),
        )
        .ok();
        diffs.extend(tier_diff(
            env,
            base_files.get(Path::new(&file)).map(Vec::as_slice),
            now.as_deref(),
        ));
    }
    for (env, stack, change) in hand_edits {
        match diffs.iter_mut().find(|d| d.env == env && d.stack == stack) {
            Some(d) => {
                d.changes.push(change);
                diff::sort_changes(&mut d.changes);
            }
            None => diffs.push(StackDiff {
                env,
                stack,
                changes: vec![change],
                cost: None,
            }),
        }
    }
    Ok(diffs)
}

/// A change of the `tier` two versions of `env`'s file declare (security), if any.
fn tier_diff(env: &str, before: Option<&[u8]>, after: Option<&[u8]>) -> Option<StackDiff> {
    let (before, after) = (tier_of(before?)?, tier_of(after?)?);
    (before != after).then(|| StackDiff {
        env: env.to_owned(),
        stack: "(environment file)".into(),
        changes: vec![diff::tier_change(env, &before, &after)],
        cost: None,
    })
}

/// The `tier` an environment file's bytes declare, if they parse.
fn tier_of(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_saphyr::from_str(&String::from_utf8_lossy(bytes)).ok()?;
    value.get("tier")?.as_str().map(str::to_owned)
}

/// Files of the working tree's `generated/<env>/` (only `request.stack`'s, if one is given)
/// that differ from what synth writes there (`outputs`) and from the base: each as
/// (env, stack, change). A file the working tree holds as the base does is no hand edit
/// (the environment changed and synth has not run yet).
fn hand_edits(
    project: &Project,
    envs: &[String],
    outputs: &[synth::Output],
    base: &BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>>,
    request: &Request,
) -> Result<Vec<(String, String, diff::Change)>, Error> {
    let generated = project.generated_dir();
    let mut out = Vec::new();
    for env in envs {
        let tree = synth::environment_tree(outputs, env);
        let differences = render::compare(&generated.join(env), &tree)
            .map_err(|e| Error::Internal(e.context(format!("reading generated/{env}"))))?;
        for difference in differences {
            let (rel, how) = match difference {
                render::Difference::Differs(p) => (p, "differs from what synth writes"),
                render::Difference::Missing(p) => (p, "is missing, though synth writes it"),
                render::Difference::Extra(p) => (p, "is not written by synth"),
            };
            let stack = rel
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            if request.stack.as_ref().is_some_and(|s| *s != stack) {
                continue;
            }
            let working = std::fs::read(generated.join(env).join(&rel)).ok();
            let committed = base.get(env).and_then(|files| files.get(&rel));
            if working.as_ref() == committed {
                continue;
            }
            let shown = Path::new("generated").join(env).join(&rel);
            let shown = shown.to_string_lossy();
            out.push((
                env.clone(),
                stack,
                diff::hand_edit(&shown, &format!("{shown} {how}")),
            ));
        }
    }
    Ok(out)
}

/// Files under `generated/`, grouped by their first folder (the environment).
type EnvTrees = BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>>;

fn by_env(tree: BTreeMap<PathBuf, Vec<u8>>) -> EnvTrees {
    let mut envs = EnvTrees::new();
    for (path, bytes) in tree {
        let mut parts = path.components();
        let Some(env) = parts.next() else { continue };
        let rest: PathBuf = parts.collect();
        envs.entry(env.as_os_str().to_string_lossy().into_owned())
            .or_default()
            .insert(rest, bytes);
    }
    envs
}

/// Diffs `generated/` as committed at `head` against `generated/` at `request.base`: both
/// sides are committed bytes and nothing is synthesized; of the environment files only the
/// `tier` is read (a tier change is security), as data. This
/// is what the review gate runs with the base branch's keel: the bytes that get applied,
/// classified by code the pull request cannot change.
pub fn between_commits(
    project: &Project,
    request: &Request,
    head: &str,
) -> Result<Vec<StackDiff>, Error> {
    let git = Git::open(&project.root)?;
    let (base, head_commit) = (git.resolve(&request.base)?, git.resolve(head)?);
    let mut before = by_env(git.read_tree(&base, "generated")?);
    let mut after = by_env(git.read_tree(&head_commit, "generated")?);
    let all: BTreeSet<String> = before.keys().chain(after.keys()).cloned().collect();
    for e in &request.envs {
        if !all.contains(e) {
            return Err(Error::Usage(format!(
                "no environment {e:?} in generated/ at {} or {head}: expected one of {}",
                request.base,
                all.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let envs: Vec<String> = if request.envs.is_empty() {
        all.into_iter().collect()
    } else {
        request.envs.clone()
    };
    let before_files = git.read_tree(&base, "environments")?;
    let head_files = git.read_tree(&head_commit, "environments")?;
    let mut diffs = Vec::new();
    for env in &envs {
        let before = diff::split_stacks(before.remove(env).unwrap_or_default());
        let after = diff::split_stacks(after.remove(env).unwrap_or_default());
        let file = PathBuf::from(format!("{env}.yaml"));
        diffs.extend(tier_diff(
            env,
            before_files.get(&file).map(Vec::as_slice),
            head_files.get(&file).map(Vec::as_slice),
        ));
        let stacks: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for stack in stacks {
            if request.stack.as_ref().is_some_and(|s| s != stack) {
                continue;
            }
            let empty = FileTree::new();
            diffs.push(diff::diff_stack(
                env,
                stack,
                before.get(stack).unwrap_or(&empty),
                after.get(stack).unwrap_or(&empty),
            ));
        }
    }
    Ok(diffs)
}

/// Compares two environments of the working tree: what `to` gets beyond `from`'s values.
/// `from`'s account id and name are read as `to`'s, so only real differences remain.
pub fn between_envs(
    project: &Project,
    from: &str,
    to: &str,
    stack: Option<&str>,
) -> Result<Vec<StackDiff>, Error> {
    if from == to {
        return Err(Error::Usage(format!(
            "--envs names {from} twice: expected two different environments"
        )));
    }
    let envs = project.load(&[from.to_owned(), to.to_owned()])?;
    let account = |name: &str| {
        envs.iter()
            .find(|e| e.name() == name)
            .map(|e| e.spec.account_id.to_string())
            .unwrap_or_default()
    };
    let (from_account, to_account) = (account(from), account(to));
    let outputs = synth::build(
        project,
        &Selection {
            envs: vec![from.to_owned(), to.to_owned()],
            stack: stack.map(str::to_owned),
        },
    )?;
    let files = |env: &str| -> BTreeMap<String, FileTree> {
        outputs
            .iter()
            .filter(|o| o.env == env)
            .map(|o| (o.stack.to_owned(), to_tree(&o.files)))
            .collect()
    };
    let (before, after) = (files(from), files(to));
    let stacks: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let label = format!("{from}→{to}");
    let mut diffs = Vec::new();
    for s in stacks {
        let mut old = before.get(s).cloned().unwrap_or_default();
        for bytes in old.values_mut() {
            let text = String::from_utf8_lossy(bytes);
            let text = if from_account.is_empty() {
                text.into_owned()
            } else {
                text.replace(&from_account, &to_account)
            };
            *bytes = replace_token(&text, from, to).into_bytes();
        }
        let old: FileTree = old
            .into_iter()
            .map(|(p, b)| {
                (
                    PathBuf::from(replace_token(&p.to_string_lossy(), from, to)),
                    b,
                )
            })
            .collect();
        let empty = FileTree::new();
        diffs.push(diff::diff_environments(
            &label,
            s,
            &old,
            after.get(s).unwrap_or(&empty),
        ));
    }
    Ok(diffs)
}

fn to_tree(files: &crate::render::Files) -> FileTree {
    files
        .iter()
        .map(|(p, b)| (p.clone(), b.as_bytes().to_vec()))
        .collect()
}

/// Replaces `from` by `to` where it stands as a token (not inside a longer word).
pub fn replace_token(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_owned();
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + from.len()..].chars().next();
        out.push_str(&rest[..i]);
        if word(before) || word(after) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

/// A git work tree, with the project's path inside it.
struct Git {
    root: PathBuf,
    prefix: String,
}

impl Git {
    fn command(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("-C").arg(&self.root);
        c
    }

    fn open(root: &Path) -> Result<Git, Error> {
        let git = Git {
            root: root.to_owned(),
            prefix: String::new(),
        };
        let out = run(git.command().args(["rev-parse", "--show-prefix"]))?;
        if !out.status.success() {
            return Err(Error::Usage(format!(
                "keel diff compares with generated/ as committed in git, but {} is not inside a git repository ({}); run it in a clone, or use `keel check`",
                root.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Git {
            prefix: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            ..git
        })
    }

    fn resolve(&self, rev: &str) -> Result<String, Error> {
        if rev.starts_with('-') {
            return Err(Error::Usage(format!(
                "--base {rev:?}: expected a git revision such as HEAD, main or a commit id"
            )));
        }
        let out = run(self.command().args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ]))?;
        if !out.status.success() {
            return Err(Error::Usage(format!(
                "--base {rev}: no such commit in this repository (a repository without commits has none; try `git log` for one)"
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Every file under `dir` (relative to the project) at `commit`, relative to `dir`.
    fn read_tree(&self, commit: &str, dir: &str) -> Result<BTreeMap<PathBuf, Vec<u8>>, Error> {
        let full = format!("{}{dir}/", self.prefix);
        let out =
            run(self
                .command()
                .args(["ls-tree", "-r", "-z", "--full-tree", commit, "--", &full]))?;
        if !out.status.success() {
            return Err(Error::Internal(anyhow::anyhow!(
                "git ls-tree {commit}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let mut entries = Vec::new();
        for record in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let record = String::from_utf8_lossy(record);
            let Some((meta, path)) = record.split_once('\t') else {
                continue;
            };
            let mut meta = meta.split(' ');
            let (_, kind, oid) = (meta.next(), meta.next(), meta.next());
            if let (Some("blob"), Some(oid)) = (kind, oid)
                && let Some(rel) = path.strip_prefix(&full)
            {
                entries.push((PathBuf::from(rel), oid.to_owned()));
            }
        }
        let blobs = self.cat_blobs(entries.iter().map(|(_, oid)| oid.as_str()))?;
        Ok(entries
            .into_iter()
            .zip(blobs)
            .map(|((p, _), b)| (p, b))
            .collect())
    }

    /// The contents of `oids`, in order, through one `git cat-file --batch`.
    fn cat_blobs<'a>(&self, oids: impl Iterator<Item = &'a str>) -> Result<Vec<Vec<u8>>, Error> {
        let input: String = oids.map(|o| format!("{o}\n")).collect();
        if input.is_empty() {
            return Ok(Vec::new());
        }
        let mut child = self
            .command()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(git_missing)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("git cat-file: no stdin"))?;
        // Written from another thread: git answers while we still write.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("git cat-file: no stdout"))?;
        let mut reader = BufReader::new(stdout);
        let mut blobs = Vec::new();
        let mut header = String::new();
        loop {
            header.clear();
            let n = reader
                .read_line(&mut header)
                .map_err(|e| anyhow::anyhow!("reading git cat-file: {e}"))?;
            if n == 0 {
                break;
            }
            let mut parts = header.split_whitespace();
            let (_oid, kind, size) = (parts.next(), parts.next(), parts.next());
            let size: usize = match (kind, size.and_then(|s| s.parse().ok())) {
                (Some("blob"), Some(size)) => size,
                _ => {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "git cat-file answered {:?}",
                        header.trim()
                    )));
                }
            };
            let mut body = vec![0; size + 1];
            reader
                .read_exact(&mut body)
                .map_err(|e| anyhow::anyhow!("reading git cat-file: {e}"))?;
            body.pop(); // the newline after each object
            blobs.push(body);
        }
        let _ = writer.join();
        let status = child
            .wait()
            .map_err(|e| anyhow::anyhow!("waiting for git cat-file: {e}"))?;
        if !status.success() {
            return Err(Error::Internal(anyhow::anyhow!(
                "git cat-file --batch failed ({status})"
            )));
        }
        Ok(blobs)
    }
}

fn git_missing(e: std::io::Error) -> Error {
    Error::Usage(format!(
        "cannot run git ({e}): keel diff reads the committed generated/ with git; install git or put it on PATH"
    ))
}

fn run(cmd: &mut Command) -> Result<std::process::Output, Error> {
    cmd.output().map_err(git_missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_only_as_whole_words() {
        assert_eq!(
            replace_token(
                "eks-staging /keel/staging stagingx xstaging",
                "staging",
                "prod"
            ),
            "eks-prod /keel/prod stagingx xstaging"
        );
    }
}
