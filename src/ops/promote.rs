//! `keel promote SRC DST`: carries the release pins (image `tag`/`digest` under `stacks.*`)
//! from one environment file to the next tier's, changing only those values in DST's text
//! (comments, order and formatting stay), and lists every other difference it left alone.
//!
//! Refuses (exit 2) when DST is not SRC's next tier (dev → staging → prod), when SRC's
//! `generated/` is stale, when the edited file would not load, when a pin is not a plain
//! value it can edit in place (an alias, anchor, tag or escape: the edit would land
//! elsewhere or nowhere), and when DST's file is read-only. It carries only pins committed in
//! SRC's file (`HEAD`), so what moves up a tier is what was reviewed. With `--write` it
//! replaces DST's file by rename, keeping its mode (the one file keel writes outside
//! `render`: an environment file the user asked to edit), and reads it back to confirm every
//! pin it reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::Value;

use crate::env::file::Tier;
use crate::env::{EnvError, EnvErrors};
use crate::error::Error;

use super::Project;
use super::synth::{self, Selection};

/// One scalar of a YAML file: its value and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// The value, as YAML reads it (without quotes, escapes decoded).
    pub value: String,
    /// 1-based line and column where the scalar starts.
    pub position: (usize, usize),
    /// The bytes of the text that hold the value, when the value can be replaced there:
    /// written plain or quoted, without anchor, tag, escape or line folding. Otherwise why not.
    pub edit: Result<Range<usize>, &'static str>,
}

/// A YAML text as promote sees it: every leaf scalar by dotted path
/// (`stacks.analytics-api.image.digest`, `admins[0]`), and every alias with its position.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// Leaf scalars written in the text.
    pub scalars: BTreeMap<String, Scalar>,
    /// Aliases (`*name`) by the path they stand at.
    pub aliases: Vec<(String, (usize, usize))>,
    /// Every leaf as YAML resolves it (aliases expanded), by dotted path; empty when the
    /// text is not YAML.
    pub resolved: BTreeMap<String, Value>,
}

impl Document {
    /// Reads `text`.
    pub fn parse(text: &str) -> Document {
        let mut doc = events(text);
        if let Ok(value) = serde_saphyr::from_str::<Value>(text) {
            flatten(&value, String::new(), &mut doc.resolved);
        }
        doc
    }

    /// The pins of the document as YAML resolves them.
    fn pins(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.resolved.iter().filter(|(p, _)| is_pin(p))
    }
}

/// The scalars and aliases of `text`, from the parser's events.
fn events(text: &str) -> Document {
    enum Frame {
        Map { path: String, key: Option<String> },
        Seq { path: String, index: usize },
    }
    // The parser counts characters; edits need bytes.
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let byte = |char_index: usize| bytes.get(char_index).copied().unwrap_or(text.len());
    let mut doc = Document::default();
    let mut stack: Vec<Frame> = Vec::new();
    let child = |stack: &mut Vec<Frame>| -> Option<String> {
        match stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => key.take().map(|k| {
                if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                }
            }),
        }
    };
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let position = (span.start.line(), span.start.col() + 1);
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = stack.last_mut()
                {
                    *key = Some(value.into_owned());
                } else if let Some(p) = child(&mut stack) {
                    let (start, end) = (byte(span.start.index()), byte(span.end.index()));
                    let raw = &text[start..end.max(start)];
                    let edit = if anchor != 0 {
                        Err("carries a YAML anchor (`&name`), so an alias elsewhere shares it")
                    } else if tag.is_some() {
                        Err("carries a YAML tag (`!…`)")
                    } else {
                        match style {
                            ScalarStyle::Plain if raw == value => Ok(start..end),
                            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
                                if raw.len() == value.len() + 2
                                    && raw[1..raw.len() - 1] == value =>
                            {
                                Ok(start + 1..end - 1)
                            }
                            _ => Err("is written with an escape, line folding or as a block, so \
                                      its text is not its value"),
                        }
                    };
                    doc.scalars.insert(
                        p,
                        Scalar {
                            value: value.into_owned(),
                            position,
                            edit,
                        },
                    );
                }
            }
            Event::MappingStart(..) => {
                let path = child(&mut stack).unwrap_or_default();
                stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = child(&mut stack).unwrap_or_default();
                stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Alias(_) => {
                if let Some(p) = child(&mut stack) {
                    doc.aliases.push((p, position));
                }
            }
            Event::DocumentEnd => break,
            _ => {}
        }
    }
    doc
}

/// Every leaf of `value` by dotted path (the paths [`events`] gives).
fn flatten(value: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, format!("{path}[{i}]"), out);
            }
        }
        leaf => {
            out.insert(path, leaf.clone());
        }
    }
}

/// Whether `path` is a release pin: `stacks.<stack>.….image.tag|digest`.
pub fn is_pin(path: &str) -> bool {
    path.starts_with("stacks.") && (path.ends_with(".image.tag") || path.ends_with(".image.digest"))
}

/// Every pin of `doc` (the file `shown`) that promote cannot read, or with `edited` edit,
/// exactly: one written through an alias, one whose text is not its value, and (`edited`)
/// one with an anchor, a tag or an escape.
pub fn pin_errors(shown: &Path, doc: &Document, edited: bool) -> Vec<EnvError> {
    let error = |path: &str, position, message: String| EnvError {
        file: shown.to_owned(),
        key: path.to_owned(),
        position: Some(position),
        message,
    };
    let mut errors = Vec::new();
    for (path, value) in doc.pins() {
        match doc.scalars.get(path) {
            None => {
                // Written at an alias (of the pin, or of a mapping that holds it).
                let alias = doc
                    .aliases
                    .iter()
                    .filter(|(a, _)| {
                        path == a
                            || path.starts_with(&format!("{a}."))
                            || path.starts_with(&format!("{a}["))
                    })
                    .max_by_key(|(a, _)| a.len());
                let position = alias.map_or((1, 1), |(_, p)| *p);
                errors.push(error(
                    path,
                    position,
                    "the pin is a YAML alias (`*name`) of another key's value, so promote \
                     would read or change that key instead; write the value itself here"
                        .into(),
                ));
            }
            Some(s) if value.as_str() != Some(s.value.as_str()) => errors.push(error(
                path,
                s.position,
                "the pin does not read back as the string it is written as; quote it".into(),
            )),
            Some(s) => {
                if let (true, Err(why)) = (edited, &s.edit) {
                    errors.push(error(
                        path,
                        s.position,
                        format!(
                            "the pin {why}; promote edits pins in place, so write it as a plain \
                             or quoted string"
                        ),
                    ));
                }
            }
        }
    }
    errors
}

/// One pin carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinChange {
    /// Dotted path.
    pub path: String,
    /// DST's value before.
    pub from: String,
    /// SRC's value, DST's after.
    pub to: String,
}

/// What a promotion would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Pins that change in DST.
    pub changes: Vec<PinChange>,
    /// Pins already equal.
    pub unchanged: usize,
    /// SRC's pins that are not carried (no place in DST, or not committed).
    pub uncarried: usize,
    /// Pins of SRC that DST has no place for or that are not committed, and DST's pins that
    /// SRC lacks, with why.
    pub not_carried: Vec<String>,
    /// Other differences between the files (`path: src | dst`), left alone.
    pub other: Vec<String>,
    /// DST's text with the pins changed.
    pub new_text: String,
}

/// The source of a promotion: its working file, and the same file as committed.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// The file as shown in messages (`environments/staging.yaml`).
    pub shown: &'a Path,
    /// The working tree's text.
    pub text: &'a str,
    /// The text committed at `HEAD`.
    pub committed: &'a str,
}

/// Computes the promotion of `src`'s committed pins into `dst_text`.
pub fn plan(src: &Source<'_>, dst_text: &str) -> Plan {
    let (s, c, d) = (
        Document::parse(src.text),
        Document::parse(src.committed),
        Document::parse(dst_text),
    );
    let (src_pins, committed, dst) = (&s.scalars, &c.scalars, &d.scalars);
    let mut plan = Plan::default();
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for (path, s) in src_pins.iter().filter(|(p, _)| is_pin(p)) {
        if committed.get(path).map(|c| &c.value) != Some(&s.value) {
            plan.uncarried += 1;
            plan.not_carried.push(format!(
                "{path}: {} (not committed in {}: commit it, then promote)",
                s.value,
                src.shown.display()
            ));
            continue;
        }
        match dst.get(path) {
            Some(d) if d.value == s.value => plan.unchanged += 1,
            Some(d) => {
                plan.changes.push(PinChange {
                    path: path.clone(),
                    from: d.value.clone(),
                    to: s.value.clone(),
                });
                // `pin_errors` refuses a pin that cannot be edited before anything is written.
                if let Ok(range) = &d.edit {
                    edits.push((range.clone(), s.value.clone()));
                }
            }
            None => {
                plan.uncarried += 1;
                let image = path.rsplit_once('.').map_or(path.as_str(), |(p, _)| p);
                let why = if dst.keys().any(|k| k.starts_with(&format!("{image}."))) {
                    "the target pins this image the other way (tag vs digest); pin it by hand"
                } else {
                    "the target has no such stack or image"
                };
                plan.not_carried
                    .push(format!("{path}: {} ({why})", s.value));
            }
        }
    }
    for (path, d) in dst.iter().filter(|(p, _)| is_pin(p)) {
        if !src_pins.contains_key(path) {
            plan.not_carried.push(format!(
                "{path}: {} stays (the source has no such pin)",
                d.value
            ));
        }
    }
    let paths: std::collections::BTreeSet<&String> = src_pins.keys().chain(dst.keys()).collect();
    for p in paths.into_iter().filter(|p| !is_pin(p)) {
        let (a, b) = (
            src_pins.get(p).map(|s| &s.value),
            dst.get(p).map(|s| &s.value),
        );
        if a != b {
            plan.other.push(format!(
                "{p}: {} | {}{}",
                a.map_or("(absent)", String::as_str),
                b.map_or("(absent)", String::as_str),
                match (p.as_str(), a, b) {
                    ("kubernetes.version", Some(a), Some(b)) => cluster_step(b, a),
                    _ => String::new(),
                }
            ));
        }
    }
    // Apply from the end so earlier offsets stay valid.
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut text = dst_text.to_owned();
    for (range, new) in edits {
        text.replace_range(range, &new);
    }
    plan.new_text = text;
    plan
}

/// How the target's cluster (at `dst`) gets to the source's version (`src`): never by
/// promote, one minor per reviewed change, and never down.
fn cluster_step(dst: &str, src: &str) -> String {
    match crate::env::kubernetes_support::step_problem(dst, src) {
        Some(why) => format!(" (not carried: {why})"),
        None => " (not carried: upgrade the target's cluster in a change of its own)".into(),
    }
}

/// The pins of `text` that do not hold what `plan` says they will: each changed pin must
/// read back as its new value, and every other value as before.
fn misread(dst_text: &str, plan: &Plan, text: &str) -> Vec<String> {
    let mut expected = Document::parse(dst_text).resolved;
    for c in &plan.changes {
        expected.insert(c.path.clone(), Value::String(c.to.clone()));
    }
    let actual = Document::parse(text).resolved;
    let paths: std::collections::BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    paths
        .into_iter()
        .filter(|p| expected.get(*p) != actual.get(*p))
        .map(|p| {
            let shown = |v: Option<&Value>| v.map_or("(absent)".to_owned(), ToString::to_string);
            format!(
                "{p}: expected {}, reads {}",
                shown(expected.get(p)),
                shown(actual.get(p))
            )
        })
        .collect()
}

fn next_tier(t: Tier) -> Option<Tier> {
    match t {
        Tier::Dev => Some(Tier::Staging),
        Tier::Staging => Some(Tier::Prod),
        Tier::Prod => None,
    }
}

fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Dev => "dev",
        Tier::Staging => "staging",
        Tier::Prod => "prod",
    }
}

/// Shows (and with `write`, applies) the promotion of `src`'s pins to `dst`; returns the
/// report for stdout.
pub fn promote(project: &Project, src: &str, dst: &str, write: bool) -> Result<String, Error> {
    let _lock = project.lock(if write {
        super::lock::Mode::Exclusive
    } else {
        super::lock::Mode::Shared
    })?;
    let envs = project.load(&[src.to_owned(), dst.to_owned()])?;
    let tier = |name: &str| envs.iter().find(|e| e.name() == name).map(|e| e.spec.tier);
    let (Some(src_tier), Some(dst_tier)) = (tier(src), tier(dst)) else {
        return Err(Error::Usage(format!(
            "promote needs two environments, found {src} and {dst}"
        )));
    };
    if next_tier(src_tier) != Some(dst_tier) {
        let expected = next_tier(src_tier).map_or_else(
            || "nothing: prod is the last tier".to_owned(),
            |t| format!("an environment of tier {}", tier_name(t)),
        );
        return Err(Error::Usage(format!(
            "cannot promote {src} (tier {}) to {dst} (tier {}): pins move one tier at a time (dev → staging → prod), so {src}'s next is {expected}",
            tier_name(src_tier),
            tier_name(dst_tier)
        )));
    }
    let stale = stale_files(project, src)?;
    if !stale.is_empty() {
        return Err(Error::Usage(format!(
            "cannot promote from {src}: its generated/ output is stale, so its pins may not be what was reviewed and deployed; run `keel synth {src}`, review and commit, then promote:\n{}",
            stale
                .iter()
                .map(|s| format!("  {s}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    let src_path = project.environments_dir().join(format!("{src}.yaml"));
    let dst_path = project.environments_dir().join(format!("{dst}.yaml"));
    let src_shown = PathBuf::from("environments").join(format!("{src}.yaml"));
    let shown = PathBuf::from("environments").join(format!("{dst}.yaml"));
    // Both loaded above, so both are regular UTF-8 files; read again without following links.
    let read = |p: &Path, shown: &Path| -> Result<String, Error> {
        let bytes = crate::env::load::read_file(p, shown)?;
        String::from_utf8(bytes)
            .map_err(|_| Error::Usage(format!("{}: not UTF-8", shown.display())))
    };
    let (src_text, dst_text) = (read(&src_path, &src_shown)?, read(&dst_path, &shown)?);
    let committed = committed_text(project, &src_shown)?;
    let mut errors = pin_errors(&src_shown, &Document::parse(&src_text), false);
    errors.extend(pin_errors(&shown, &Document::parse(&dst_text), true));
    if !errors.is_empty() {
        return Err(Error::Env(EnvErrors(errors)));
    }
    let plan = plan(
        &Source {
            shown: &src_shown,
            text: &src_text,
            committed: &committed,
        },
        &dst_text,
    );
    let misread_after_edit = misread(&dst_text, &plan, &plan.new_text);
    if !misread_after_edit.is_empty() {
        return Err(Error::Usage(format!(
            "cannot promote: {} would not read back as intended after the edit (pin these by hand):\n{}",
            shown.display(),
            misread_after_edit
                .iter()
                .map(|m| format!("  {m}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    // The edited file must load (a tag is no pin for prod, for one).
    crate::env::load::load_str(&shown, dst, &plan.new_text)?;
    let mut out = String::new();
    let _ = writeln!(out, "promote {src} → {dst}");
    let _ = writeln!(
        out,
        "release pins: {} to change, {} already equal, {} not carried",
        plan.changes.len(),
        plan.unchanged,
        plan.uncarried
    );
    for c in &plan.changes {
        let _ = writeln!(out, "  {}: {} → {}", c.path, c.from, c.to);
    }
    if !plan.not_carried.is_empty() {
        let _ = writeln!(out, "pins not carried over:");
        for n in &plan.not_carried {
            let _ = writeln!(out, "  {n}");
        }
    }
    let _ = writeln!(
        out,
        "other differences, not carried over ({src} | {dst}): {}",
        plan.other.len()
    );
    for o in &plan.other {
        let _ = writeln!(out, "  {o}");
    }
    let uncarried = (plan.uncarried > 0).then(|| {
        format!(
            "{} of {src}'s pins could not be carried (listed above)",
            plan.uncarried
        )
    });
    if write && !plan.changes.is_empty() {
        replace_file(&dst_path, &shown, &plan.new_text)?;
        // Read back: the report names only what the file now holds.
        let written = read(&dst_path, &shown)?;
        let misread_on_disk = misread(&dst_text, &plan, &written);
        if written != plan.new_text || !misread_on_disk.is_empty() {
            return Err(Error::Internal(anyhow::anyhow!(
                "wrote {} but it reads back differently; check it by hand: {}",
                shown.display(),
                misread_on_disk.join("; ")
            )));
        }
        let _ = writeln!(
            out,
            "wrote {}; now run `keel synth {dst}` and review `keel diff {dst}`",
            shown.display()
        );
        if let Some(u) = uncarried {
            let _ = writeln!(out, "{u}");
        }
    } else if write {
        match uncarried {
            Some(u) => {
                let _ = writeln!(out, "nothing written: {u}");
            }
            None => {
                let _ = writeln!(out, "{} already carries {src}'s pins", shown.display());
            }
        }
    } else if !plan.changes.is_empty() {
        let _ = writeln!(out, "(dry run: --write edits {})", shown.display());
    }
    Ok(out)
}

/// The text of `shown` (a path in the project) as committed at `HEAD`, through git.
fn committed_text(project: &Project, shown: &Path) -> Result<String, Error> {
    let why = "promote carries only pins committed in the source's file, so that what moves \
               up a tier is what was reviewed";
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&project.root)
        .args(["cat-file", "blob"])
        .arg(format!("HEAD:./{}", shown.display()))
        .output()
        .map_err(|e| Error::Usage(format!("cannot run git ({e}): {why}; install git")))?;
    if !out.status.success() {
        return Err(Error::Usage(format!(
            "cannot read {} as committed at HEAD ({}): {why}; commit it in a git repository first",
            shown.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // A committed file that is not UTF-8 holds no pin the working file could match.
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replaces the file `path` (shown as `shown`) by `text`, by write-then-rename, keeping its
/// mode and (where allowed) its owner. A file without its owner's write bit is read-only and
/// refused, also for root, whom the kernel would let write it; a file the kernel refuses to
/// open for writing is refused too.
fn replace_file(path: &Path, shown: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        Error::Internal(anyhow::Error::new(e).context(format!("reading {}", shown.display())))
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o200 == 0 {
        return Err(Error::Usage(format!(
            "{} is read-only (mode {mode:o}, no write permission for its owner): promote does not \
             overwrite it; make it writable (chmod u+w) if it should change",
            shown.display()
        )));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::Usage(format!("{} is not writable: {e}", shown.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.keel-promote-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have taken bits away; the owner only where allowed (root).
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Internal(anyhow::Error::new(e).context(format!("writing {}", shown.display())))
    })
}

/// `keel check` for one environment: the stale files of `generated/<env>`.
fn stale_files(project: &Project, env: &str) -> Result<Vec<String>, Error> {
    let outputs = synth::build(
        project,
        &Selection {
            envs: vec![env.to_owned()],
            stack: None,
        },
    )?;
    let tree = synth::environment_tree(&outputs, env);
    let stale = super::check::stale_in(&project.generated_dir(), env, &tree)?;
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGING: &str = "# staging\nname: staging\ntier: staging\nstacks:\n  api:\n    image:\n      repository: r\n      digest: sha256:aaaa # the new build\n    replicas: 2\n  web:\n    image:\n      repository: w\n      tag: \"v2\"\n";
    const PROD: &str = "# prod: keep this comment\nname: prod\ntier: prod\nstacks:\n  api:\n    image:\n      repository: r\n      digest: sha256:0000 # pinned\n    replicas: 3\n  web:\n    image:\n      repository: w\n      digest: sha256:1111\n";

    fn committed(text: &str) -> Source<'_> {
        Source {
            shown: Path::new("environments/staging.yaml"),
            text,
            committed: text,
        }
    }

    #[test]
    fn only_pins_change_and_comments_stay() {
        let p = plan(&committed(STAGING), PROD);
        assert_eq!(
            p.changes,
            vec![PinChange {
                path: "stacks.api.image.digest".into(),
                from: "sha256:0000".into(),
                to: "sha256:aaaa".into()
            }]
        );
        assert_eq!(p.new_text, PROD.replace("sha256:0000", "sha256:aaaa"));
        assert!(
            p.not_carried.iter().any(|n| n
                .starts_with("stacks.web.image.tag: v2 (the target pins this image the other way")),
            "{:?}",
            p.not_carried
        );
        assert!(
            p.other.contains(&"stacks.api.replicas: 2 | 3".to_owned()),
            "{:?}",
            p.other
        );
        assert!(
            !p.other.iter().any(|o| o.contains("digest")),
            "{:?}",
            p.other
        );
    }

    #[test]
    fn equal_pins_change_nothing() {
        let p = plan(&committed(PROD), PROD);
        assert!(p.changes.is_empty());
        assert_eq!(p.unchanged, 2);
        assert_eq!(p.new_text, PROD);
    }

    #[test]
    fn scalars_are_editable_only_when_their_text_is_their_value() {
        let text = "a: &x v1\nb: *x\nc: 'v2'\nd: \"v3\"\ne: \"v\\x34\"\nf: !!str v5\ng: >-\n  v6\nh: v7 # c\n";
        let doc = Document::parse(text);
        let edit = |k: &str| doc.scalars[k].edit.clone().map(|r| &text[r]);
        assert!(edit("a").unwrap_err().contains("anchor"));
        assert_eq!(doc.aliases, vec![("b".to_owned(), (2, 4))]);
        assert_eq!(edit("c"), Ok("v2"));
        assert_eq!(edit("d"), Ok("v3"));
        assert_eq!(doc.scalars["e"].value, "v4");
        assert!(edit("e").unwrap_err().contains("escape"));
        assert!(edit("f").unwrap_err().contains("tag"));
        assert!(edit("g").is_err());
        assert_eq!(edit("h"), Ok("v7"));
        assert_eq!(doc.resolved["b"], Value::String("v1".into()));
    }

    #[test]
    fn an_aliased_pin_is_refused_where_the_alias_stands() {
        let text = "stacks:\n  a:\n    image:\n      digest: &d sha256:1\n  b:\n    image: *img\n  c:\n    image:\n      digest: *d\n";
        let text = text.replace("*img", "{digest: sha256:2}");
        let errors = pin_errors(Path::new("p.yaml"), &Document::parse(&text), true);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0]
                .starts_with("p.yaml:4:15: stacks.a.image.digest: the pin carries a YAML anchor"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("p.yaml:9:15: stacks.c.image.digest: the pin is a YAML alias"),
            "{shown:?}"
        );
    }

    #[test]
    fn uncommitted_pins_are_not_carried() {
        let source = Source {
            shown: Path::new("environments/staging.yaml"),
            text: STAGING,
            committed: &STAGING.replace("sha256:aaaa", "sha256:0000"),
        };
        let p = plan(&source, PROD);
        assert!(p.changes.is_empty(), "{:?}", p.changes);
        assert_eq!(p.uncarried, 2);
        assert!(
            p.not_carried[0].starts_with(
                "stacks.api.image.digest: sha256:aaaa (not committed in environments/staging.yaml"
            ),
            "{:?}",
            p.not_carried
        );
        assert_eq!(p.new_text, PROD);
    }

    #[test]
    fn a_cluster_version_is_never_carried_and_its_way_is_named() {
        let src = "name: dev\nkubernetes:\n  version: \"1.36\"\n";
        let dst = "name: staging\nkubernetes:\n  version: \"1.34\"\n";
        let p = plan(&committed(src), dst);
        assert_eq!(p.new_text, dst);
        assert!(
            p.other.contains(&"kubernetes.version: 1.36 | 1.34 (not carried: Kubernetes 1.34 -> 1.36 skips 1.35: EKS upgrades a cluster one minor per update, so apply one change per minor: 1.35, then 1.36 (each with the kube_proxy add-on of its minor))".to_owned()),
            "{:#?}",
            p.other
        );
        let one = plan(&committed(src), &dst.replace("1.34", "1.35"));
        assert!(one.other.iter().any(|o| o.ends_with(
            "1.36 | 1.35 (not carried: upgrade the target's cluster in a change of its own)"
        )));
    }

    #[test]
    fn tiers_go_one_step_up() {
        assert_eq!(next_tier(Tier::Dev), Some(Tier::Staging));
        assert_eq!(next_tier(Tier::Staging), Some(Tier::Prod));
        assert_eq!(next_tier(Tier::Prod), None);
    }
}
