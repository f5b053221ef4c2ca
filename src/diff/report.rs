//! Prints [`StackDiff`]s: text (optionally coloured), Markdown (a PR comment with a
//! collapsed section per stack), JSON.

use std::fmt::Write;

use serde_json::Value;

use super::{Action, Change, Class, Kind, StackDiff};

/// Output format of `keel diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Plain text, coloured on a terminal.
    Text,
    /// Markdown for a PR comment or job summary.
    Markdown,
    /// JSON (one document).
    Json,
}

/// Totals over all stacks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Replace-risk changes.
    pub replace: usize,
    /// Security-broadening changes.
    pub security: usize,
    /// Other changes.
    pub other: usize,
    /// Of the other changes, cosmetic ones (tags, descriptions, comments).
    pub cosmetic: usize,
}

/// Sums the counts of `diffs`.
pub fn totals(diffs: &[StackDiff]) -> Totals {
    let mut t = Totals::default();
    for d in diffs {
        t.replace += d.count(Class::Replace);
        t.security += d.count(Class::Security);
        t.other += d.count(Class::Other);
        t.cosmetic += d.cosmetic();
    }
    t
}

/// The hand-edited files of `diffs`, in order.
pub fn hand_edits(diffs: &[StackDiff]) -> Vec<&str> {
    diffs
        .iter()
        .flat_map(|d| &d.changes)
        .filter(|c| c.kind == Kind::HandEdit)
        .map(|c| c.address.as_str())
        .collect()
}

/// The warning printed first when `generated/` holds hand edits.
fn hand_edit_warning(files: &[&str], code: &str) -> Option<String> {
    let n = files.len();
    (n > 0).then(|| {
        format!(
            "{n} file{} under {code}generated/{code} differ{} from what synth writes from the environment files and stack code (a hand edit bypasses review of the source): {}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
            files.iter().map(|f| format!("{code}{f}{code}")).collect::<Vec<_>>().join(", ")
        )
    })
}

fn summary(t: Totals) -> String {
    format!(
        "{} replace risk, {} security, {} other ({} cosmetic)",
        t.replace, t.security, t.other, t.cosmetic
    )
}

/// A monthly amount, or `-` for a line absent on that side.
fn amount(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), crate::cost::usd)
}

fn stack_totals(d: &StackDiff) -> Totals {
    totals(std::slice::from_ref(d))
}

fn symbol(a: &Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Delete => "-",
        Action::Update => "~",
        Action::Move { .. } => ">",
    }
}

/// Longest value shown, in characters (without the ellipses).
const WIDTH: usize = 117;
/// Characters shown before the first difference of two long values.
const LEAD: usize = 40;

/// Both sides of an attribute change as JSON, each cut to [`WIDTH`] characters around the
/// first character where they differ (with `...` where something is left out), so two long
/// values that share a prefix still show what changed.
fn shown(before: &Option<Value>, after: &Option<Value>) -> (String, String) {
    let json = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string(v).unwrap_or_default())
    };
    let (b, a) = (json(before), json(after));
    let first_difference = match (&b, &a) {
        (Some(b), Some(a)) => b
            .chars()
            .zip(a.chars())
            .position(|(x, y)| x != y)
            .unwrap_or_else(|| b.chars().count().min(a.chars().count())),
        _ => 0,
    };
    let start = first_difference.saturating_sub(LEAD);
    let cut = |s: Option<String>| match s {
        None => "(absent)".to_owned(),
        Some(s) => {
            let len = s.chars().count();
            if len <= WIDTH + 3 {
                return s;
            }
            let from = start.min(len.saturating_sub(WIDTH));
            let mut out = String::new();
            if from > 0 {
                out.push_str("...");
            }
            out.extend(s.chars().skip(from).take(WIDTH));
            if from + WIDTH < len {
                out.push_str("...");
            }
            out
        }
    };
    (cut(b), cut(a))
}

fn heading(c: &Change) -> String {
    match &c.action {
        Action::Move { from, .. } => format!("{} {} (from {from})", symbol(&c.action), c.address),
        a => format!("{} {}", symbol(a), c.address),
    }
}

/// Plain text; `color` adds ANSI colours (red replace, yellow security).
pub fn text(diffs: &[StackDiff], title: &str, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut out = String::new();
    let changed: Vec<&StackDiff> = diffs.iter().filter(|d| !d.changes.is_empty()).collect();
    if let Some(w) = hand_edit_warning(&hand_edits(diffs), "") {
        let _ = writeln!(out, "{}", paint("1;31", &format!("WARNING: {w}")));
    }
    let _ = writeln!(out, "{title}: {}", summary(totals(diffs)));
    if changed.is_empty() {
        let _ = writeln!(out, "no changes in {} stack(s)", diffs.len());
    }
    for d in changed {
        let _ = writeln!(
            out,
            "\n{}",
            paint(
                "1",
                &format!("{}/{}: {}", d.env, d.stack, summary(stack_totals(d)))
            )
        );
        if let Some(cost) = d.cost.as_ref().filter(|c| c.is_change()) {
            let _ = writeln!(out, "  cost     {}", cost.summary());
            for (address, before, after) in &cost.lines {
                let _ = writeln!(
                    out,
                    "      {address}: {} -> {}",
                    amount(*before),
                    amount(*after)
                );
            }
        }
        for c in &d.changes {
            let (label, code) = match c.class {
                Class::Replace => ("REPLACE ", "1;31"),
                Class::Security => ("SECURITY", "1;33"),
                Class::Other if c.cosmetic => ("cosmetic", "2"),
                Class::Other => ("other   ", "0"),
            };
            let _ = writeln!(out, "  {} {}", paint(code, label), heading(c));
            for r in &c.reasons {
                let _ = writeln!(out, "      {}", paint(code, &format!("! {r}")));
            }
            for a in &c.attributes {
                let path = if a.path.is_empty() { "(body)" } else { &a.path };
                let (before, after) = shown(&a.before, &a.after);
                let _ = writeln!(out, "      {path}: {before} -> {after}");
            }
        }
    }
    out
}

/// Markdown: a summary line, then a collapsed `<details>` per changed stack.
pub fn markdown(diffs: &[StackDiff], title: &str) -> String {
    let mut out = String::new();
    let t = totals(diffs);
    let _ = writeln!(out, "### {title}\n");
    if let Some(w) = hand_edit_warning(&hand_edits(diffs), "`") {
        let _ = writeln!(out, "> **Warning:** {w}\n");
    }
    let _ = writeln!(
        out,
        "**{}** replace risk · **{}** security broadening · {} other ({} cosmetic)\n",
        t.replace, t.security, t.other, t.cosmetic
    );
    let esc = |s: &str| {
        s.replace('|', "\\|")
            .replace('<', "&lt;")
            .replace('\n', " ")
    };
    let costs: Vec<&StackDiff> = diffs
        .iter()
        .filter(|d| d.cost.as_ref().is_some_and(crate::cost::Change::is_change))
        .collect();
    if !costs.is_empty() {
        let _ = writeln!(
            out,
            "**Monthly cost estimate** (on-demand list prices of {}, usage not included):\n\n| stack | before | after | change |\n|---|---:|---:|---:|",
            crate::cost::prices::PRICES_AS_OF
        );
        for d in costs {
            if let Some(c) = &d.cost {
                let delta = c.after_usd - c.before_usd;
                let _ = writeln!(
                    out,
                    "| `{}/{}` | {} | {} | {}{}{} |",
                    d.env,
                    d.stack,
                    crate::cost::usd(c.before_usd),
                    crate::cost::usd(c.after_usd),
                    if delta < 0.0 { "-" } else { "+" },
                    crate::cost::usd(delta.abs()),
                    if c.unpriced.0 == c.unpriced.1 {
                        String::new()
                    } else {
                        format!(" (unpriced {} → {})", c.unpriced.0, c.unpriced.1)
                    }
                );
            }
        }
        out.push('\n');
    }
    for d in diffs.iter().filter(|d| !d.changes.is_empty()) {
        let st = stack_totals(d);
        let mark = if st.replace > 0 {
            "🔴 "
        } else if st.security > 0 {
            "🟠 "
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<details><summary>{mark}<code>{}/{}</code>: {}</summary>\n",
            d.env,
            d.stack,
            summary(st)
        );
        let _ = writeln!(out, "| class | change | why / attributes |\n|---|---|---|");
        for c in &d.changes {
            let class = if c.cosmetic {
                "cosmetic"
            } else {
                c.class.label()
            };
            let mut why: Vec<String> = c.reasons.iter().map(|r| esc(r)).collect();
            for a in &c.attributes {
                let (before, after) = shown(&a.before, &a.after);
                why.push(format!(
                    "`{}`: `{}` → `{}`",
                    esc(&a.path),
                    esc(&before).replace('`', "'"),
                    esc(&after).replace('`', "'")
                ));
            }
            let _ = writeln!(
                out,
                "| {class} | `{}` | {} |",
                esc(&heading(c)),
                why.join("<br>")
            );
        }
        let _ = writeln!(out, "\n</details>\n");
    }
    out
}

/// JSON: `{ "base", "totals", "stacks": [...] }`.
pub fn json(diffs: &[StackDiff], base: &str) -> String {
    let doc = serde_json::json!({
        "base": base,
        "totals": totals(diffs),
        "hand_edits": hand_edits(diffs),
        "stacks": diffs,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Issue 22: long values were cut to the same prefix on both sides.
    #[test]
    fn r22_long_values_show_where_they_differ() {
        let common = "x".repeat(300);
        let before = Some(json!(format!("{common}OLD-TAIL")));
        let after = Some(json!(format!("{common}NEW-TAIL")));
        let (b, a) = shown(&before, &after);
        assert!(b.contains("OLD-TAIL") && a.contains("NEW-TAIL"), "{b}\n{a}");
        assert!(b.starts_with("...") && a.starts_with("..."), "{b}\n{a}");
        assert!(b.chars().count() <= 125 && a.chars().count() <= 125);
        // A difference at the start keeps the start, cut at the end.
        let (b, a) = shown(
            &Some(json!(format!("A{common}"))),
            &Some(json!(format!("B{common}"))),
        );
        assert!(
            b.starts_with("\"A") && a.starts_with("\"B") && b.ends_with("..."),
            "{b}"
        );
        // Short values stay whole; an absent side says so.
        let (b, a) = shown(&Some(json!("a")), &None);
        assert_eq!((b.as_str(), a.as_str()), ("\"a\"", "(absent)"));
    }
}
