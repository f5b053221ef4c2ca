//! `keel promote SRC DST`: carries the release pins (image `tag`/`digest` under `stacks.*`)
//! from one environment file to the next tier's, changing only those values in DST's text
//! (comments, order and formatting stay), and lists every other difference it left alone.
//!
//! Refuses (exit 2) when DST is not SRC's next tier (dev → staging → prod), when SRC's
//! `generated/` is stale, or when the edited file would not load. With `--write` it replaces
//! DST's file by rename (the one file keel writes outside `render`: an environment file the
//! user asked to edit).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser};

use crate::env::file::Tier;
use crate::error::Error;

use super::Project;
use super::synth::{self, Selection};

/// One scalar of a YAML file: its value and where it is (byte range of the line's rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// The value as written (without quotes).
    pub value: String,
    /// Byte offset where the scalar starts.
    pub start: usize,
}

/// Every leaf scalar of a YAML text by dotted path (`stacks.analytics-api.image.digest`,
/// `admins[0]`), in document order of paths' first appearance.
pub fn scalars(text: &str) -> BTreeMap<String, Scalar> {
    enum Frame {
        Map { path: String, key: Option<String> },
        Seq { path: String, index: usize },
    }
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let mut out = BTreeMap::new();
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
        match event {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = stack.last_mut()
                {
                    *key = Some(value.into_owned());
                } else if let Some(p) = child(&mut stack) {
                    let start = bytes.get(span.start.index()).copied().unwrap_or(text.len());
                    out.insert(
                        p,
                        Scalar {
                            value: value.into_owned(),
                            start,
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
                child(&mut stack);
            }
            Event::DocumentEnd => break,
            _ => {}
        }
    }
    out
}

/// Whether `path` is a release pin: `stacks.<stack>.….image.tag|digest`.
pub fn is_pin(path: &str) -> bool {
    path.starts_with("stacks.") && (path.ends_with(".image.tag") || path.ends_with(".image.digest"))
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
    /// Pins of SRC that DST has no place for, with why.
    pub not_carried: Vec<String>,
    /// Other differences between the files (`path: src | dst`), left alone.
    pub other: Vec<String>,
    /// DST's text with the pins changed.
    pub new_text: String,
}

/// Computes the promotion of `src_text`'s pins into `dst_text`.
pub fn plan(src_text: &str, dst_text: &str) -> Plan {
    let (src, dst) = (scalars(src_text), scalars(dst_text));
    let mut plan = Plan::default();
    let mut edits: Vec<(usize, String, String)> = Vec::new();
    for (path, s) in src.iter().filter(|(p, _)| is_pin(p)) {
        match dst.get(path) {
            Some(d) if d.value == s.value => plan.unchanged += 1,
            Some(d) => {
                plan.changes.push(PinChange {
                    path: path.clone(),
                    from: d.value.clone(),
                    to: s.value.clone(),
                });
                edits.push((d.start, d.value.clone(), s.value.clone()));
            }
            None => {
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
        if !src.contains_key(path) {
            plan.not_carried.push(format!(
                "{path}: {} stays (the source has no such pin)",
                d.value
            ));
        }
    }
    let paths: std::collections::BTreeSet<&String> = src.keys().chain(dst.keys()).collect();
    for p in paths.into_iter().filter(|p| !is_pin(p)) {
        let (a, b) = (src.get(p).map(|s| &s.value), dst.get(p).map(|s| &s.value));
        if a != b {
            plan.other.push(format!(
                "{p}: {} | {}",
                a.map_or("(absent)", String::as_str),
                b.map_or("(absent)", String::as_str)
            ));
        }
    }
    // Apply from the end so earlier offsets stay valid.
    edits.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
    let mut text = dst_text.to_owned();
    for (start, old, new) in edits {
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        if let Some(i) = text[start..line_end].find(&old) {
            text.replace_range(start + i..start + i + old.len(), &new);
        }
    }
    plan.new_text = text;
    plan
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
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| Error::Usage(format!("reading {}: {e}", p.display())))
    };
    let (src_text, dst_text) = (read(&src_path)?, read(&dst_path)?);
    let plan = plan(&src_text, &dst_text);
    let shown = PathBuf::from("environments").join(format!("{dst}.yaml"));
    // The edited file must load (a tag is no pin for prod, for one).
    crate::env::load::load_str(&shown, dst, &plan.new_text)?;
    let mut out = String::new();
    let _ = writeln!(out, "promote {src} → {dst}");
    let _ = writeln!(
        out,
        "release pins: {} to change, {} already equal",
        plan.changes.len(),
        plan.unchanged
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
    if write && !plan.changes.is_empty() {
        let tmp = project
            .environments_dir()
            .join(format!(".{dst}.yaml.keel-promote-{}", std::process::id()));
        std::fs::write(&tmp, &plan.new_text)
            .and_then(|()| std::fs::rename(&tmp, &dst_path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::Internal(anyhow::anyhow!("writing {}: {e}", dst_path.display()))
            })?;
        let _ = writeln!(
            out,
            "wrote {}; now run `keel synth {dst}` and review `keel diff {dst}`",
            shown.display()
        );
    } else if write {
        let _ = writeln!(out, "{} already carries {src}'s pins", shown.display());
    } else if !plan.changes.is_empty() {
        let _ = writeln!(out, "(dry run: --write edits {})", shown.display());
    }
    Ok(out)
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

    #[test]
    fn only_pins_change_and_comments_stay() {
        let p = plan(STAGING, PROD);
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
        let p = plan(PROD, PROD);
        assert!(p.changes.is_empty());
        assert_eq!(p.unchanged, 2);
        assert_eq!(p.new_text, PROD);
    }

    #[test]
    fn tiers_go_one_step_up() {
        assert_eq!(next_tier(Tier::Dev), Some(Tier::Staging));
        assert_eq!(next_tier(Tier::Staging), Some(Tier::Prod));
        assert_eq!(next_tier(Tier::Prod), None);
    }
}
